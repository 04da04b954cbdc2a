/* SPDX-License-Identifier: MIT */
/*
 * Cache-access trace reader for tests and benchmarks (header only).
 *
 * Reads the common `.keys` format of shared/traces (one unsigned decimal
 * key per line, each line one unit-size GET) from a plain file or from a
 * gzip-compressed `.keys.gz` one, which is decompressed by a `gzip -dc`
 * child process so that nothing links zlib.  Keys are renumbered densely
 * in order of first appearance (0 .. nunique - 1): key identities, and so
 * every policy's hit ratio, are unchanged, and the simulators can index
 * plain arrays by key.
 *
 * The traces folder is $PX_TRACE_DIR, or ../shared/traces relative to the
 * current directory (the repository root when run by `make check`).
 * trace_dir() returns NULL when it is absent, so callers SKIP.
 *
 * Not thread-safe; every function returns 0 or a negative errno.
 */
#ifndef PX_TESTS_TRACE_H
#define PX_TESTS_TRACE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TRACE_DIR_DEFAULT "../shared/traces"
#define TRACE_NAME_MAX    64
#define TRACE_MAX_FILES   32
#define TRACE_READ_CHUNK  (1u << 16)

struct trace {
	char name[TRACE_NAME_MAX]; /* file name without .keys[.gz] */
	uint32_t *ids;             /* dense key ids, in request order */
	size_t n;                  /* requests read */
	uint32_t nunique;          /* distinct keys among them */
	bool truncated;            /* stopped at the caller's limit */
};

/* One open trace file: a descriptor, and the gzip child if any. */
struct trace_src {
	int fd;
	pid_t child;
	char buf[TRACE_READ_CHUNK];
	size_t len, pos;
};

/* Open-addressing map from a raw 64-bit key to its dense id. */
struct trace_map {
	uint64_t *keys;
	uint32_t *ids; /* id + 1; 0 marks an empty slot */
	size_t mask;
	uint32_t count;
};

static inline const char *
trace_dir(void)
{
	const char *d = getenv("PX_TRACE_DIR");
	struct stat st;

	if (!d || !*d)
		d = TRACE_DIR_DEFAULT;
	if (stat(d, &st) != 0 || !S_ISDIR(st.st_mode))
		return NULL;
	return d;
}

static inline bool
trace_has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a > b && strcmp(s + a - b, suffix) == 0;
}

static int
trace_cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * trace_list - the trace files (*.keys, *.keys.gz) in @dir, sorted by
 * name, as malloc'ed strings in @names (at most TRACE_MAX_FILES).
 * Returns the count or -errno.  Free with trace_list_free().
 */
static inline int
trace_list(const char *dir, char **names)
{
	struct dirent *e;
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)) && n < TRACE_MAX_FILES) {
		if (!trace_has_suffix(e->d_name, ".keys") &&
		    !trace_has_suffix(e->d_name, ".keys.gz"))
			continue;
		names[n] = strdup(e->d_name);
		if (names[n])
			n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), trace_cmp_names);
	return n;
}

static inline void
trace_list_free(char **names, int n)
{
	for (int i = 0; i < n; i++)
		free(names[i]);
}

static inline int
trace_src_open_gzip(struct trace_src *s, const char *path)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) != 0)
		return -errno;
	s->child = fork();
	if (s->child < 0) {
		close(p[0]);
		close(p[1]);
		return -errno;
	}
	if (s->child == 0) {
		dup2(p[1], STDOUT_FILENO);
		execlp("gzip", "gzip", "-dc", "--", path, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	s->fd = p[0];
	return 0;
}

static inline int
trace_src_open(struct trace_src *s, const char *path)
{
	s->len = s->pos = 0;
	s->child = -1;
	if (trace_has_suffix(path, ".gz"))
		return trace_src_open_gzip(s, path);
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	return s->fd < 0 ? -errno : 0;
}

/* Closes the source; a gzip child that did not finish cleanly is -EIO. */
static inline int
trace_src_close(struct trace_src *s, bool stopped_early)
{
	int status, ret = 0;

	close(s->fd);
	if (s->child <= 0)
		return 0;
	if (stopped_early)
		kill(s->child, SIGTERM);
	if (waitpid(s->child, &status, 0) != s->child)
		return -errno;
	if (!stopped_early && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		ret = -EIO;
	return ret;
}

/* Next byte, or -1 at the end of input, or -2 on a read error. */
static inline int
trace_src_byte(struct trace_src *s)
{
	ssize_t r;

	if (s->pos == s->len) {
		do
			r = read(s->fd, s->buf, sizeof(s->buf));
		while (r < 0 && errno == EINTR);
		if (r <= 0)
			return r == 0 ? -1 : -2;
		s->len = (size_t)r;
		s->pos = 0;
	}
	return (unsigned char)s->buf[s->pos++];
}

/*
 * Next key: 1 and *key set, 0 at a clean end of input, -EINVAL for a line
 * that is not one unsigned decimal number, -EIO on a read error.
 */
static inline int
trace_src_key(struct trace_src *s, uint64_t *key)
{
	uint64_t v = 0;
	int c, digits = 0;

	while ((c = trace_src_byte(s)) >= '0' && c <= '9') {
		if (v > UINT64_MAX / 10 ||
		    (v == UINT64_MAX / 10 &&
		     (uint64_t)(c - '0') > UINT64_MAX % 10))
			return -EINVAL;
		v = v * 10 + (uint64_t)(c - '0');
		digits++;
	}
	if (c == -2)
		return -EIO;
	if (digits == 0)
		return c == -1 ? 0 : -EINVAL;
	if (c != '\n' && c != -1)
		return -EINVAL;
	*key = v;
	return 1;
}

static inline uint64_t
trace_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static inline int
trace_map_init(struct trace_map *m, size_t slots)
{
	m->keys = calloc(slots, sizeof(*m->keys));
	m->ids = calloc(slots, sizeof(*m->ids));
	m->mask = slots - 1;
	m->count = 0;
	if (!m->keys || !m->ids) {
		free(m->keys);
		free(m->ids);
		return -ENOMEM;
	}
	return 0;
}

static inline void
trace_map_free(struct trace_map *m)
{
	free(m->keys);
	free(m->ids);
}

/* Slot holding @key, or the empty slot where it belongs. */
static inline size_t
trace_map_slot(const struct trace_map *m, uint64_t key)
{
	size_t i = trace_mix(key) & m->mask;

	while (m->ids[i] && m->keys[i] != key)
		i = (i + 1) & m->mask;
	return i;
}

static inline int
trace_map_grow(struct trace_map *m)
{
	struct trace_map bigger;
	size_t i, j;
	int ret;

	ret = trace_map_init(&bigger, (m->mask + 1) * 2);
	if (ret)
		return ret;
	for (i = 0; i <= m->mask; i++) {
		if (!m->ids[i])
			continue;
		j = trace_map_slot(&bigger, m->keys[i]);
		bigger.keys[j] = m->keys[i];
		bigger.ids[j] = m->ids[i];
	}
	bigger.count = m->count;
	trace_map_free(m);
	*m = bigger;
	return 0;
}

/* Dense id of @key, assigning the next one on first sight. */
static inline int
trace_map_id(struct trace_map *m, uint64_t key, uint32_t *id)
{
	size_t i;
	int ret;

	if ((size_t)m->count * 2 >= m->mask + 1) {
		ret = trace_map_grow(m);
		if (ret)
			return ret;
	}
	i = trace_map_slot(m, key);
	if (!m->ids[i]) {
		m->keys[i] = key;
		m->ids[i] = ++m->count;
	}
	*id = m->ids[i] - 1;
	return 0;
}

static inline int
trace_push(struct trace *t, size_t *cap, uint32_t id)
{
	uint32_t *p;

	if (t->n == *cap) {
		*cap = *cap ? *cap * 2 : 1u << 16;
		p = realloc(t->ids, *cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		t->ids = p;
	}
	t->ids[t->n++] = id;
	return 0;
}

static inline void
trace_set_name(struct trace *t, const char *path)
{
	const char *base = strrchr(path, '/');
	const char *src = base ? base + 1 : path;
	size_t len = strnlen(src, sizeof(t->name) - 1);
	char *dot;

	memcpy(t->name, src, len);
	t->name[len] = '\0';
	dot = strstr(t->name, ".keys");
	if (dot)
		*dot = '\0';
}

static inline int
trace_read_all(struct trace *t, struct trace_src *s, size_t limit)
{
	struct trace_map map;
	size_t cap = 0;
	uint64_t key;
	uint32_t id;
	int ret;

	ret = trace_map_init(&map, 1u << 16);
	if (ret)
		return ret;
	while (t->n < limit && (ret = trace_src_key(s, &key)) == 1) {
		ret = trace_map_id(&map, key, &id);
		if (ret == 0)
			ret = trace_push(t, &cap, id);
		if (ret)
			break;
	}
	/* Stopped at the limit: truncated only if a request is left. */
	if (ret >= 0 && t->n == limit)
		t->truncated = (ret = trace_src_key(s, &key)) == 1;
	t->nunique = map.count;
	trace_map_free(&map);
	return ret < 0 ? ret : 0;
}

/*
 * trace_load - read the trace at @path into @t, at most @limit requests
 * (0: all of them).  Returns 0, -ENOENT, -EINVAL (malformed line, empty
 * trace), -EIO (read or gzip failure) or -ENOMEM.  Free with
 * trace_free(); @t is left empty on failure.
 */
static inline int
trace_load(struct trace *t, const char *path, size_t limit)
{
	struct trace_src *s;
	int ret, cret;

	memset(t, 0, sizeof(*t));
	trace_set_name(t, path);
	s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	ret = trace_src_open(s, path);
	if (ret)
		goto out_free_src;
	ret = trace_read_all(t, s, limit ? limit : SIZE_MAX);
	cret = trace_src_close(s, t->truncated || ret);
	if (ret == 0)
		ret = cret;
	if (ret == 0 && t->n == 0)
		ret = -EINVAL;
out_free_src:
	free(s);
	if (ret) {
		free(t->ids);
		memset(t, 0, sizeof(*t));
	}
	return ret;
}

/* trace_load_named - trace_load() of @dir/@file. */
static inline int
trace_load_named(struct trace *t, const char *dir, const char *file,
		 size_t limit)
{
	char path[4096];

	if (snprintf(path, sizeof(path), "%s/%s", dir, file) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	return trace_load(t, path, limit);
}

static inline void
trace_free(struct trace *t)
{
	free(t->ids);
	memset(t, 0, sizeof(*t));
}

#endif
