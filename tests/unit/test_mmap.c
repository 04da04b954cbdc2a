// SPDX-License-Identifier: MIT
/*
 * Unit tests of px_mmap: the views, the accessors and their bounds, a
 * file truncated under a reader, the pread and stream fallbacks, and,
 * through fake hooks, every OS call failing.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <patinox/mmap.h>

#define PAGE 4096

static char path[64];

/* A temporary file of @len bytes, byte i = i % 251; returns an fd. */
static int
make_file(size_t len, int flags)
{
	unsigned char *buf = malloc(len + 1);
	int fd;

	assert_non_null(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(i % 251);
	strcpy(path, "/tmp/px-mmap-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
	free(buf);
	fd = open(path, flags);
	assert_true(fd >= 0);
	unlink(path);
	return fd;
}

static struct px_mmap_opts
opts(enum px_mmap_mode mode, uint64_t off, size_t len)
{
	struct px_mmap_opts o;

	px_mmap_opts_init(&o);
	o.mode = mode;
	o.offset = off;
	o.len = len;
	return o;
}

/* ---- real kernel ---- */

static void
test_mmap_ro_whole_file_reads_and_checks_bounds(void **state)
{
	struct px_mmap *m;
	unsigned char b[16];
	int fd = make_file(3 * PAGE + 10, O_RDONLY);

	assert_int_equal(px_mmap_create(&m, fd, NULL), 0);
	close(fd);
	assert_int_equal(px_mmap_backend(m), PX_MMAP_MAPPED);
	assert_int_equal(px_mmap_len(m), 3 * PAGE + 10);
	assert_int_equal(((unsigned char *)px_mmap_data(m))[300], 300 % 251);
	assert_int_equal(px_mmap_read(m, 3 * PAGE, b, 10), 0);
	assert_int_equal(b[9], (3 * PAGE + 9) % 251);
	assert_int_equal(px_mmap_read(m, 3 * PAGE, b, 11), -ERANGE);
	assert_int_equal(px_mmap_read(m, UINT64_MAX, b, 1), -ERANGE);
	assert_int_equal(px_mmap_read(m, 3 * PAGE + 10, b, 0), 0);
	assert_int_equal(px_mmap_read_upto(m, 3 * PAGE + 5, b, 16), 5);
	assert_int_equal(px_mmap_read_upto(m, 3 * PAGE + 10, b, 16), 0);
	assert_int_equal(px_mmap_read_upto(m, 3 * PAGE + 11, b, 16), -ERANGE);
	assert_int_equal(px_mmap_write(m, 0, b, 1), -EACCES);
	assert_int_equal(px_mmap_advise(m, MADV_SEQUENTIAL), 0);
	assert_int_equal(px_mmap_advise_range(m, MADV_WILLNEED, 5, 100), 0);
	assert_int_equal(px_mmap_advise_range(m, MADV_WILLNEED, 5, 1 << 20),
			 -ERANGE);
	assert_int_equal(px_mmap_lock(m), 0);
	assert_int_equal(px_mmap_unlock(m), 0);
	assert_int_equal(px_mmap_make_writable(m), -EACCES);
	px_mmap_destroy(m);
	px_mmap_destroy(NULL);
}

static void
test_mmap_unaligned_offset_and_length(void **state)
{
	struct px_mmap_opts o = opts(PX_MMAP_RO, 5000, 100);
	struct px_mmap *m;
	unsigned char b[100];
	int fd = make_file(3 * PAGE, O_RDONLY);

	assert_int_equal(px_mmap_create(&m, fd, &o), 0);
	assert_int_equal(px_mmap_len(m), 100);
	assert_int_equal(((unsigned char *)px_mmap_data(m))[0], 5000 % 251);
	assert_int_equal(px_mmap_read(m, 0, b, 100), 0);
	assert_int_equal(b[99], 5099 % 251);
	assert_int_equal(px_mmap_read(m, 1, b, 100), -ERANGE);
	assert_int_equal(px_mmap_flush_range(m, 10, 20), 0);
	px_mmap_destroy(m);

	/* Offset only: to the end of the file. */
	o = opts(PX_MMAP_RO, PAGE + 1, 0);
	assert_int_equal(px_mmap_create(&m, fd, &o), 0);
	assert_int_equal(px_mmap_len(m), 2 * PAGE - 1);
	px_mmap_destroy(m);
	close(fd);
}

static void
test_mmap_empty_file_and_offset_at_end(void **state)
{
	struct px_mmap_opts o = opts(PX_MMAP_RO, 0, 0);
	struct px_mmap *m;
	char b[4];
	int fd = make_file(0, O_RDONLY);

	assert_int_equal(px_mmap_create(&m, fd, &o), 0);
	assert_int_equal(px_mmap_backend(m), PX_MMAP_MAPPED);
	assert_int_equal(px_mmap_len(m), 0);
	assert_null(px_mmap_data(m));
	assert_int_equal(px_mmap_read(m, 0, b, 0), 0);
	assert_int_equal(px_mmap_read(m, 0, b, 1), -ERANGE);
	assert_int_equal(px_mmap_flush(m), 0);
	assert_int_equal(px_mmap_advise(m, MADV_RANDOM), 0);
	assert_int_equal(px_mmap_lock(m), 0);
	px_mmap_destroy(m);
	o.offset = 1;
	assert_int_equal(px_mmap_create(&m, fd, &o), -EINVAL);
	close(fd);

	fd = make_file(100, O_RDONLY);
	o.offset = 100;
	assert_int_equal(px_mmap_create(&m, fd, &o), 0);
	assert_int_equal(px_mmap_len(m), 0);
	px_mmap_destroy(m);
	o.offset = 101;
	assert_int_equal(px_mmap_create(&m, fd, &o), -EINVAL);
	close(fd);
}

/* An offset past the end of the file is -EINVAL, with a length too. */
static void
test_mmap_offset_past_eof_with_length_is_einval(void **state)
{
	struct px_mmap_opts o = opts(PX_MMAP_RO, 1 << 20, 16);
	struct px_mmap *m;
	int fd = make_file(5, O_RDONLY), empty = make_file(0, O_RDONLY);

	assert_int_equal(px_mmap_create(&m, fd, &o), -EINVAL);
	o.offset = 6;
	assert_int_equal(px_mmap_create(&m, fd, &o), -EINVAL);
	assert_int_equal(px_mmap_create(&m, empty, &o), -EINVAL);
	o.offset = 5; /* at the end: allowed, the length reads as -EIO */
	assert_int_equal(px_mmap_create(&m, fd, &o), 0);
	px_mmap_destroy(m);
	close(empty);
	close(fd);
}

static void
test_mmap_rw_shared_reaches_the_file(void **state)
{
	struct px_mmap_opts o = opts(PX_MMAP_RW, 10, 0);
	struct px_mmap *m;
	char b[8];
	int fd = make_file(2 * PAGE, O_RDWR);

	assert_int_equal(px_mmap_create(&m, fd, &o), 0);
	assert_int_equal(px_mmap_write(m, PAGE, "patinox", 7), 0);
	assert_int_equal(px_mmap_write(m, 2 * PAGE - 10, "x", 1), -ERANGE);
	assert_int_equal(px_mmap_flush(m), 0);
	assert_int_equal(px_mmap_flush_async(m), 0);
	assert_int_equal(px_mmap_flush_async_range(m, PAGE, 7), 0);
	assert_int_equal(px_mmap_flush_range(m, PAGE, 2 * PAGE), -ERANGE);
	assert_int_equal(pread(fd, b, 7, PAGE + 10), 7);
	assert_memory_equal(b, "patinox", 7);
	assert_int_equal(px_mmap_make_read_only(m), 0);
	assert_int_equal(px_mmap_write(m, 0, "y", 1), -EACCES);
	assert_int_equal(px_mmap_make_writable(m), 0);
	assert_int_equal(px_mmap_write(m, 0, "y", 1), 0);
	px_mmap_destroy(m);
	close(fd);
}

static void
test_mmap_cow_keeps_writes_private(void **state)
{
	struct px_mmap_opts o = opts(PX_MMAP_COW, 0, 0);
	struct px_mmap *m;
	char b[4];
	int fd = make_file(PAGE, O_RDONLY);

	assert_int_equal(px_mmap_create(&m, fd, &o), 0);
	assert_int_equal(px_mmap_write(m, 0, "abc", 3), 0);
	assert_int_equal(px_mmap_read(m, 0, b, 3), 0);
	assert_memory_equal(b, "abc", 3);
	assert_int_equal(pread(fd, b, 3, 0), 3);
	assert_int_equal(b[1], 1);
	px_mmap_destroy(m);
	close(fd);
}

static void
test_mmap_rw_of_read_only_fd_is_eacces(void **state)
{
	struct px_mmap_opts o = opts(PX_MMAP_RW, 0, 0);
	struct px_mmap *m;
	int fd = make_file(PAGE, O_RDONLY);

	assert_int_equal(px_mmap_create(&m, fd, &o), -EACCES);
	o.mode = 7;
	assert_int_equal(px_mmap_create(&m, fd, &o), -EINVAL);
	assert_int_equal(px_mmap_create(&m, -1, NULL), -EBADF);
	close(fd);
}

struct trunc_reader {
	struct px_mmap *m;
	int ok, eio;
};

static void *
read_truncated(void *arg)
{
	struct trunc_reader *t = arg;
	char b[64];

	for (int i = 0; i < 2000; i++) {
		int ret =
		    px_mmap_read(t->m, (uint64_t)(i % 4) * PAGE, b, sizeof(b));

		t->ok += ret == 0;
		t->eio += ret == -EIO;
	}
	return NULL;
}

static void
test_mmap_truncated_file_reads_eio_not_sigbus(void **state)
{
	struct px_mmap_opts o = opts(PX_MMAP_RW, 0, 0);
	struct trunc_reader t[2] = {0};
	pthread_t th[2];
	struct px_mmap *m;
	char b[8];
	int fd = make_file(4 * PAGE, O_RDWR);

	assert_int_equal(px_mmap_create(&m, fd, &o), 0);
	assert_int_equal(ftruncate(fd, PAGE), 0);
	assert_int_equal(px_mmap_read(m, 0, b, 8), 0);
	assert_int_equal(px_mmap_read(m, 2 * PAGE, b, 8), -EIO);
	assert_int_equal(px_mmap_read(m, PAGE - 4, b, 8), -EIO);
	assert_int_equal(px_mmap_write(m, 3 * PAGE, "z", 1), -EIO);
	assert_int_equal(px_mmap_read_upto(m, 3 * PAGE, b, 8), -EIO);

	/* Several threads fault at once; each gets its own -EIO. */
	for (int i = 0; i < 2; i++) {
		t[i].m = m;
		assert_int_equal(
		    pthread_create(&th[i], NULL, read_truncated, &t[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].ok, 500);
		assert_int_equal(t[i].eio, 1500);
	}
	px_mmap_destroy(m);
	close(fd);
}

static void
test_mmap_sigbus_outside_the_accessors_still_kills(void **state)
{
	struct px_mmap *m;
	int status, fd = make_file(2 * PAGE, O_RDWR);
	pid_t pid;

	assert_int_equal(px_mmap_create(&m, fd, NULL), 0);
	assert_int_equal(ftruncate(fd, PAGE), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/*
		 * Under cmocka's own SIGBUS handler the child would go on
		 * running tests: start from the default action, then let
		 * px_mmap install its handler over it.  The guard is only
		 * for the accessors, so this touch must kill the child.
		 */
		volatile char *p = px_mmap_data(m);
		struct px_mmap *again;

		signal(SIGBUS, SIG_DFL);
		if (px_mmap_create(&again, fd, NULL) != 0)
			_exit(3);
		dup2(open("/dev/null", O_WRONLY), 2);
		_exit(p[PAGE] == 42 ? 0 : 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	/* SIGBUS, or a sanitizer's report of it */
	assert_false(WIFEXITED(status) &&
		     (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 3));
	px_mmap_destroy(m);
	close(fd);
}

/* An empty view at an unaligned offset (the end of the file) grows
 * into the bytes appended later. */
static void
test_mmap_remap_of_empty_view_at_unaligned_offset(void **state)
{
	struct px_mmap_opts o = opts(PX_MMAP_RO, 5, 0);
	struct px_mmap *m;
	char b[6] = {0};
	int fd = make_file(5, O_RDWR);

	assert_int_equal(px_mmap_create(&m, fd, &o), 0);
	assert_int_equal(px_mmap_len(m), 0);
	assert_int_equal(pwrite(fd, "world", 5, 5), 5);
	assert_int_equal(px_mmap_remap(m, 5, true), 0);
	assert_int_equal(px_mmap_read(m, 0, b, 5), 0);
	assert_string_equal(b, "world");
	assert_memory_equal(px_mmap_data(m), "world", 5);
	px_mmap_destroy(m);
	close(fd);
}

static void
test_mmap_remap_grows_anon_and_file_maps(void **state)
{
	struct px_mmap_opts o = opts(PX_MMAP_RW, 0, 0);
	struct px_mmap *m;
	char b[4];
	int fd = make_file(0, O_RDWR);

	assert_int_equal(px_mmap_create_anon(&m, 100, NULL), 0);
	assert_int_equal(px_mmap_write(m, 99, "a", 1), 0);
	assert_int_equal(px_mmap_write(m, 100, "a", 1), -ERANGE);
	assert_int_equal(px_mmap_remap(m, 5 * PAGE, true), 0);
	assert_int_equal(px_mmap_len(m), 5 * PAGE);
	assert_int_equal(px_mmap_write(m, 5 * PAGE - 1, "b", 1), 0);
	assert_int_equal(px_mmap_read(m, 99, b, 1), 0);
	assert_int_equal(b[0], 'a');
	assert_int_equal(px_mmap_remap(m, 0, true), -EINVAL);
	assert_int_equal(px_mmap_remap(m, PAGE, false), 0);
	px_mmap_destroy(m);

	/* An empty file grows; the empty view is remapped onto it. */
	assert_int_equal(px_mmap_create(&m, fd, &o), 0);
	assert_int_equal(ftruncate(fd, 2 * PAGE), 0);
	assert_int_equal(px_mmap_remap(m, 2 * PAGE, true), 0);
	assert_int_equal(px_mmap_write(m, PAGE, "q", 1), 0);
	assert_int_equal(pread(fd, b, 1, PAGE), 1);
	assert_int_equal(b[0], 'q');
	px_mmap_destroy(m);
	close(fd);
}

static void
test_mmap_anon_rejects_bad_arguments(void **state)
{
	struct px_mmap_opts o = opts(PX_MMAP_RW, 0, 0);
	struct px_mmap *m;

	assert_int_equal(px_mmap_create_anon(&m, 0, NULL), -EINVAL);
	o.offset = 1;
	assert_int_equal(px_mmap_create_anon(&m, 10, &o), -EINVAL);
	o.offset = 0;
	o.huge = true;
	o.huge_shift = 12;
	assert_int_equal(px_mmap_create_anon(&m, 10, &o), -EINVAL);
	o = opts(PX_MMAP_RO, 0, 0);
	assert_int_equal(px_mmap_create_anon(&m, 10, &o), 0);
	assert_int_equal(px_mmap_write(m, 0, "x", 1), -EACCES);
	px_mmap_destroy(m);
}

static void
test_mmap_pipe_uses_the_stream_fallback(void **state)
{
	struct px_mmap_opts o = opts(PX_MMAP_RO, 0, 0);
	struct px_mmap *m;
	char b[16] = {0};
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "hello, pipe world", 17), 17);
	close(p[1]);
	assert_int_equal(px_mmap_create(&m, p[0], &o), 0);
	close(p[0]);
	assert_int_equal(px_mmap_backend(m), PX_MMAP_STREAM);
	assert_string_equal(px_mmap_backend_name(px_mmap_backend(m)), "stream");
	assert_false(px_mmap_len_known(m));
	assert_null(px_mmap_data(m));
	assert_int_equal(px_mmap_read(m, 7, b, 4), 0);
	assert_memory_equal(b, "pipe", 4);
	assert_int_equal(px_mmap_read(m, 0, b, 5), 0);
	assert_memory_equal(b, "hello", 5);
	assert_int_equal(px_mmap_read_upto(m, 12, b, 16), 5);
	assert_int_equal(px_mmap_read(m, 12, b, 6), -ERANGE);
	assert_int_equal(px_mmap_read_upto(m, 100, b, 6), 0);
	assert_int_equal(px_mmap_write(m, 0, "x", 1), -EACCES);
	assert_int_equal(px_mmap_advise(m, MADV_RANDOM), -ENODEV);
	assert_int_equal(px_mmap_lock(m), -ENODEV);
	assert_int_equal(px_mmap_make_writable(m), -ENODEV);
	assert_int_equal(px_mmap_remap(m, 10, true), -ENODEV);
	assert_int_equal(px_mmap_flush(m), 0);
	px_mmap_destroy(m);
}

/* m->offset + off must neither wrap nor pass off_t in the fallbacks. */
static void
test_mmap_fallback_offset_overflow_is_erange(void **state)
{
	struct px_mmap_opts o = opts(PX_MMAP_RO, 10, 0);
	struct px_mmap *m;
	char b[8] = {0};
	int p[2], fd;

	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "0123456789ABCDEFGHIJ", 20), 20);
	close(p[1]);
	assert_int_equal(px_mmap_create(&m, p[0], &o), 0);
	close(p[0]);
	assert_int_equal(px_mmap_backend(m), PX_MMAP_STREAM);
	assert_int_equal(px_mmap_read_upto(m, UINT64_MAX - 5, b, 4), -ERANGE);
	assert_int_equal(px_mmap_read(m, UINT64_MAX - 5, b, 4), -ERANGE);
	assert_int_equal(px_mmap_read(m, 0, b, 4), 0);
	assert_memory_equal(b, "ABCD", 4);
	px_mmap_destroy(m);

	fd = open("/proc/self/status", O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(px_mmap_create(&m, fd, &o), 0);
	assert_int_equal(px_mmap_backend(m), PX_MMAP_PREAD);
	assert_int_equal(px_mmap_read_upto(m, UINT64_MAX - 5, b, 4), -ERANGE);
	assert_int_equal(px_mmap_read_upto(m, INT64_MAX, b, 4), -ERANGE);
	assert_int_equal(px_mmap_read(m, INT64_MAX - 10, b, 4), -ERANGE);
	px_mmap_destroy(m);
	close(fd);
}

static void
test_mmap_proc_file_uses_pread(void **state)
{
	struct px_mmap_opts o = opts(PX_MMAP_RO, 0, 0);
	struct px_mmap *m;
	char b[64];
	ssize_t n;
	int fd = open("/proc/self/status", O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(px_mmap_create(&m, fd, &o), 0);
	assert_int_equal(px_mmap_backend(m), PX_MMAP_PREAD);
	assert_false(px_mmap_len_known(m));
	n = px_mmap_read_upto(m, 0, b, sizeof(b));
	assert_true(n > 5);
	assert_memory_equal(b, "Name:", 5);
	assert_int_equal(px_mmap_read(m, 1 << 20, b, 1), -ERANGE);
	assert_int_equal(px_mmap_flush_async(m), 0);
	px_mmap_destroy(m);
	o.no_fallback = true;
	assert_int_equal(px_mmap_create(&m, fd, &o), -ENODEV);
	close(fd);
}

#define STREAM_LEN (256 * 1024)

static void *
feed_pipe(void *arg)
{
	int fd = *(int *)arg;
	unsigned char chunk[4096];

	for (size_t off = 0; off < STREAM_LEN; off += sizeof(chunk)) {
		for (size_t i = 0; i < sizeof(chunk); i++)
			chunk[i] = (unsigned char)((off + i) % 251);
		if (write(fd, chunk, sizeof(chunk)) != (ssize_t)sizeof(chunk))
			break;
	}
	close(fd);
	return NULL;
}

static void *
read_stream(void *arg)
{
	struct px_mmap *m = arg;
	unsigned char b[100];
	uint64_t s = (uintptr_t)&b, off;
	long bad = 0;

	for (int i = 0; i < 300; i++) {
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		off = (s >> 33) % (STREAM_LEN - sizeof(b));
		if (px_mmap_read(m, off, b, sizeof(b)) != 0 ||
		    b[7] != (off + 7) % 251)
			bad++;
	}
	return (void *)bad;
}

static void
test_mmap_stream_serves_readers_on_threads(void **state)
{
	pthread_t feeder, th[2];
	struct px_mmap *m;
	void *bad;
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(px_mmap_create(&m, p[0], NULL), 0);
	close(p[0]);
	assert_int_equal(pthread_create(&feeder, NULL, feed_pipe, &p[1]), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, read_stream, m),
				 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], &bad);
		assert_int_equal((long)bad, 0);
	}
	pthread_join(feeder, NULL);
	px_mmap_destroy(m);
}

/* ---- fakes ---- */

enum fop {
	O_MMAP,
	O_MREMAP,
	O_MPROTECT,
	O_MSYNC,
	O_MADVISE,
	O_MLOCK,
	O_MUNLOCK,
	O_FSTAT,
	O_PREAD,
	O_PWRITE,
	O_READ,
	O_FDATASYNC,
	O_DUP,
	O_NR
};

static struct {
	int fail[O_NR];
	int calls[O_NR];
	int eintr[O_NR];  /* EINTRs to return first */
	ssize_t short_io; /* cap on each pread / pwrite, 0: none */
	bool pwrite_zero;
	int open_fds;
	int mmap_flags, advice;
} ff;

static struct px_mmap_hooks real;

static int
fhit(enum fop op)
{
	ff.calls[op]++;
	if (ff.eintr[op] > 0) {
		ff.eintr[op]--;
		return -EINTR;
	}
	return ff.fail[op];
}

static int
f_mmap(void **out, void *addr, size_t len, int prot, int flags, int fd,
       off_t off)
{
	ff.mmap_flags = flags;
	return fhit(O_MMAP) ?: real.mmap(out, addr, len, prot, flags, fd, off);
}

static int
f_mremap(void **out, void *old, size_t ol, size_t nl, int flags)
{
	return fhit(O_MREMAP) ?: real.mremap(out, old, ol, nl, flags);
}

static int
f_mprotect(void *a, size_t l, int prot)
{
	return fhit(O_MPROTECT) ?: real.mprotect(a, l, prot);
}

static int
f_msync(void *a, size_t l, int flags)
{
	return fhit(O_MSYNC) ?: real.msync(a, l, flags);
}

static int
f_madvise(void *a, size_t l, int advice)
{
	ff.advice = advice;
	return fhit(O_MADVISE) ?: real.madvise(a, l, advice);
}

static int
f_mlock(const void *a, size_t l)
{
	return fhit(O_MLOCK) ?: real.mlock(a, l);
}

static int
f_munlock(const void *a, size_t l)
{
	return fhit(O_MUNLOCK) ?: real.munlock(a, l);
}

static int
f_fstat(int fd, struct stat *st)
{
	return fhit(O_FSTAT) ?: real.fstat(fd, st);
}

static ssize_t
f_pread(int fd, void *buf, size_t len, off_t off)
{
	int ret = fhit(O_PREAD);

	if (ret)
		return ret;
	if (ff.short_io && len > (size_t)ff.short_io)
		len = (size_t)ff.short_io;
	return real.pread(fd, buf, len, off);
}

static ssize_t
f_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	int ret = fhit(O_PWRITE);

	if (ret)
		return ret;
	if (ff.pwrite_zero)
		return 0;
	if (ff.short_io && len > (size_t)ff.short_io)
		len = (size_t)ff.short_io;
	return real.pwrite(fd, buf, len, off);
}

static ssize_t
f_read(int fd, void *buf, size_t len)
{
	return fhit(O_READ) ?: real.read(fd, buf, len);
}

static int
f_fdatasync(int fd)
{
	return fhit(O_FDATASYNC) ?: real.fdatasync(fd);
}

static int
f_dup(int fd)
{
	int ret = fhit(O_DUP) ?: real.dup(fd);

	ff.open_fds += ret >= 0;
	return ret;
}

static int
f_close(int fd)
{
	ff.open_fds--;
	return real.close(fd);
}

static const struct px_mmap_hooks fakes = {
    .mmap = f_mmap,
    .mremap = f_mremap,
    .mprotect = f_mprotect,
    .msync = f_msync,
    .madvise = f_madvise,
    .mlock = f_mlock,
    .munlock = f_munlock,
    .fstat = f_fstat,
    .pread = f_pread,
    .pwrite = f_pwrite,
    .read = f_read,
    .fdatasync = f_fdatasync,
    .dup = f_dup,
    .close = f_close,
};

static int
use_fakes(void **state)
{
	px_mmap_default_hooks(&real);
	memset(&ff, 0, sizeof(ff));
	px_mmap_set_hooks(&fakes);
	return 0;
}

static int
use_real(void **state)
{
	px_mmap_set_hooks(NULL);
	assert_int_equal(ff.open_fds, 0);
	return 0;
}

static void
test_mmap_refused_mmap_falls_back_to_pread(void **state)
{
	struct px_mmap_opts o = opts(PX_MMAP_RW, 100, 0);
	struct px_mmap *m;
	char b[8];
	int fd = make_file(2 * PAGE, O_RDWR);

	ff.fail[O_MMAP] = -ENODEV;
	assert_int_equal(px_mmap_create(&m, fd, &o), 0);
	assert_int_equal(px_mmap_backend(m), PX_MMAP_PREAD);
	assert_true(px_mmap_len_known(m));
	assert_int_equal(px_mmap_len(m), 2 * PAGE - 100);
	assert_int_equal(px_mmap_read(m, 0, b, 4), 0);
	assert_int_equal(b[0], 100);
	assert_int_equal(px_mmap_read(m, 2 * PAGE - 100, b, 1), -ERANGE);
	assert_int_equal(px_mmap_write(m, 0, "wxyz", 4), 0);
	assert_int_equal(pread(fd, b, 4, 100), 4);
	assert_memory_equal(b, "wxyz", 4);
	assert_int_equal(px_mmap_flush(m), 0);
	assert_int_equal(ff.calls[O_FDATASYNC], 1);
	assert_int_equal(px_mmap_flush_async_range(m, 0, 1), 0);
	assert_int_equal(ff.calls[O_FDATASYNC], 1);

	/* Short and interrupted transfers are completed. */
	ff.short_io = 3;
	ff.eintr[O_PREAD] = 2;
	ff.eintr[O_PWRITE] = 2;
	assert_int_equal(px_mmap_write(m, 10, "0123456789", 10), 0);
	assert_int_equal(px_mmap_read(m, 10, b, 8), 0);
	assert_memory_equal(b, "01234567", 8);
	ff.pwrite_zero = true;
	assert_int_equal(px_mmap_write(m, 10, "0", 1), -EIO);
	ff.fail[O_PREAD] = -EIO;
	assert_int_equal(px_mmap_read(m, 0, b, 1), -EIO);
	ff.fail[O_FDATASYNC] = -ENOSPC;
	assert_int_equal(px_mmap_flush(m), -ENOSPC);
	assert_int_equal(px_mmap_lock(m), -ENODEV);
	px_mmap_destroy(m);

	o.mode = PX_MMAP_COW;
	ff.fail[O_PREAD] = 0;
	assert_int_equal(px_mmap_create(&m, fd, &o), 0);
	assert_int_equal(px_mmap_write(m, 0, "a", 1), -EOPNOTSUPP);
	px_mmap_destroy(m);
	close(fd);
}

/* The fallbacks check the fd's access mode as mmap would. */
static void
test_mmap_fallback_rw_of_read_only_fd_is_eacces(void **state)
{
	struct px_mmap_opts o = opts(PX_MMAP_RW, 0, 0);
	struct px_mmap *m;
	int fd = make_file(PAGE, O_RDONLY), p[2];

	ff.fail[O_MMAP] = -ENODEV;
	assert_int_equal(px_mmap_create(&m, fd, &o), -EACCES);
	o.mode = PX_MMAP_RO;
	assert_int_equal(px_mmap_create(&m, fd, &o), 0);
	assert_int_equal(px_mmap_backend(m), PX_MMAP_PREAD);
	px_mmap_destroy(m);
	close(fd);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(px_mmap_create(&m, p[1], &o), -EACCES);
	close(p[0]);
	close(p[1]);
}

static void
test_mmap_other_mmap_errors_are_returned(void **state)
{
	struct px_mmap *m;
	int fd = make_file(PAGE, O_RDONLY);

	ff.fail[O_MMAP] = -ENOMEM;
	assert_int_equal(px_mmap_create(&m, fd, NULL), -ENOMEM);
	assert_int_equal(px_mmap_create_anon(&m, 100, NULL), -ENOMEM);
	ff.fail[O_MMAP] = -ENODEV;
	ff.fail[O_PREAD] = -EIO;
	assert_int_equal(px_mmap_create(&m, fd, NULL), -EIO);
	ff.fail[O_MMAP] = 0;
	ff.fail[O_FSTAT] = -EOVERFLOW;
	assert_int_equal(px_mmap_create(&m, fd, NULL), -EOVERFLOW);
	ff.fail[O_DUP] = -EMFILE;
	assert_int_equal(px_mmap_create(&m, fd, NULL), -EMFILE);
	close(fd);
}

static void
test_mmap_operation_errors_are_returned(void **state)
{
	struct px_mmap_opts o = opts(PX_MMAP_RW, 0, 0);
	struct px_mmap *m;
	void *data;
	int fd = make_file(2 * PAGE, O_RDWR);

	assert_int_equal(px_mmap_create(&m, fd, &o), 0);
	data = px_mmap_data(m);
	ff.fail[O_MSYNC] = -EIO;
	assert_int_equal(px_mmap_flush(m), -EIO);
	assert_int_equal(px_mmap_flush_async_range(m, 1, 1), -EIO);
	ff.fail[O_MADVISE] = -EINVAL;
	assert_int_equal(px_mmap_advise(m, MADV_RANDOM), -EINVAL);
	ff.fail[O_MLOCK] = -EPERM;
	assert_int_equal(px_mmap_lock(m), -EPERM);
	ff.fail[O_MUNLOCK] = -ENOMEM;
	assert_int_equal(px_mmap_unlock(m), -ENOMEM);
	ff.fail[O_MPROTECT] = -EACCES;
	assert_int_equal(px_mmap_make_read_only(m), -EACCES);
	assert_int_equal(px_mmap_write(m, 0, "k", 1), 0); /* still RW */
	ff.fail[O_MREMAP] = -ENOMEM;
	assert_int_equal(px_mmap_remap(m, 8 * PAGE, false), -ENOMEM);
	assert_ptr_equal(px_mmap_data(m), data);
	assert_int_equal(px_mmap_len(m), 2 * PAGE);
	px_mmap_destroy(m);
	close(fd);
}

static void
test_mmap_stream_read_errors_are_returned(void **state)
{
	struct px_mmap *m;
	char b[4];
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "abcdef", 6), 6);
	close(p[1]);
	assert_int_equal(px_mmap_create(&m, p[0], NULL), 0);
	close(p[0]);
	ff.eintr[O_READ] = 1;
	assert_int_equal(px_mmap_read(m, 0, b, 2), 0);
	ff.fail[O_READ] = -EAGAIN;
	assert_int_equal(px_mmap_read(m, 1, b, 1), 0); /* buffered */
	assert_int_equal(px_mmap_read(m, 10, b, 1), -EAGAIN);
	px_mmap_destroy(m);
}

static void
test_mmap_hints_reach_the_kernel_and_hint_failure_is_ignored(void **state)
{
	struct px_mmap_opts o = opts(PX_MMAP_RO, 0, 0);
	struct px_mmap *m;
	int fd = make_file(PAGE, O_RDONLY);

	o.populate = true;
	o.huge = true;
	ff.fail[O_MADVISE] = -EINVAL;
	assert_int_equal(px_mmap_create(&m, fd, &o), 0);
	assert_true(ff.mmap_flags & MAP_POPULATE);
	assert_true(ff.mmap_flags & MAP_SHARED);
	assert_int_equal(ff.advice, MADV_HUGEPAGE);
	px_mmap_destroy(m);

	o = opts(PX_MMAP_COW, 0, 0);
	assert_int_equal(px_mmap_create(&m, fd, &o), 0);
	assert_true(ff.mmap_flags & MAP_PRIVATE);
	assert_false(ff.mmap_flags & MAP_POPULATE);
	px_mmap_destroy(m);
	close(fd);
}

static void
test_mmap_every_refusal_errno_falls_back(void **state)
{
	static const int refusals[] = {-ENODEV, -EOPNOTSUPP, -ENOSYS};
	struct px_mmap_opts o = opts(PX_MMAP_RO, 0, 0);
	struct px_mmap *m;
	int fd = make_file(PAGE, O_RDONLY);

	for (size_t i = 0; i < 3; i++) {
		ff.fail[O_MMAP] = refusals[i];
		o.no_fallback = false;
		assert_int_equal(px_mmap_create(&m, fd, &o), 0);
		assert_int_equal(px_mmap_backend(m), PX_MMAP_PREAD);
		px_mmap_destroy(m);
		o.no_fallback = true;
		assert_int_equal(px_mmap_create(&m, fd, &o), -ENODEV);
	}
	ff.fail[O_MMAP] = -EACCES; /* a permission problem is not refusal */
	o.no_fallback = false;
	assert_int_equal(px_mmap_create(&m, fd, &o), -EACCES);
	close(fd);
}

static void
test_mmap_remap_of_empty_view_reports_mmap_failure(void **state)
{
	struct px_mmap *m;
	int fd = make_file(0, O_RDONLY);

	assert_int_equal(px_mmap_create(&m, fd, NULL), 0);
	ff.fail[O_MMAP] = -ENOMEM;
	assert_int_equal(px_mmap_remap(m, PAGE, true), -ENOMEM);
	assert_int_equal(px_mmap_len(m), 0);
	assert_null(px_mmap_data(m));
	px_mmap_destroy(m);
	close(fd);
}

#define FAKE_TEST(t) cmocka_unit_test_setup_teardown(t, use_fakes, use_real)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mmap_ro_whole_file_reads_and_checks_bounds),
	    cmocka_unit_test(test_mmap_unaligned_offset_and_length),
	    cmocka_unit_test(test_mmap_empty_file_and_offset_at_end),
	    cmocka_unit_test(test_mmap_offset_past_eof_with_length_is_einval),
	    cmocka_unit_test(test_mmap_rw_shared_reaches_the_file),
	    cmocka_unit_test(test_mmap_cow_keeps_writes_private),
	    cmocka_unit_test(test_mmap_rw_of_read_only_fd_is_eacces),
	    cmocka_unit_test(test_mmap_truncated_file_reads_eio_not_sigbus),
	    cmocka_unit_test(
		test_mmap_sigbus_outside_the_accessors_still_kills),
	    cmocka_unit_test(test_mmap_remap_grows_anon_and_file_maps),
	    cmocka_unit_test(test_mmap_remap_of_empty_view_at_unaligned_offset),
	    cmocka_unit_test(test_mmap_anon_rejects_bad_arguments),
	    cmocka_unit_test(test_mmap_pipe_uses_the_stream_fallback),
	    cmocka_unit_test(test_mmap_proc_file_uses_pread),
	    cmocka_unit_test(test_mmap_fallback_offset_overflow_is_erange),
	    cmocka_unit_test(test_mmap_stream_serves_readers_on_threads),
	    FAKE_TEST(test_mmap_refused_mmap_falls_back_to_pread),
	    FAKE_TEST(test_mmap_fallback_rw_of_read_only_fd_is_eacces),
	    FAKE_TEST(test_mmap_other_mmap_errors_are_returned),
	    FAKE_TEST(test_mmap_operation_errors_are_returned),
	    FAKE_TEST(test_mmap_stream_read_errors_are_returned),
	    FAKE_TEST(
		test_mmap_hints_reach_the_kernel_and_hint_failure_is_ignored),
	    FAKE_TEST(test_mmap_every_refusal_errno_falls_back),
	    FAKE_TEST(test_mmap_remap_of_empty_view_reports_mmap_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
