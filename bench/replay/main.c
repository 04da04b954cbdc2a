// SPDX-License-Identifier: MIT
/*
 * replay: sends a cache-access trace (one decimal key per line, plain or
 * gzip-compressed, see ../shared/traces/README.md) to a memcached-protocol
 * server, as a get of each key followed by a set of the key when the get
 * missed, and prints the hit ratio.  One blocking connection, requests in
 * trace order; the set after a miss travels in the same write as the next
 * get, so each request costs one round trip and the server still sees
 * them in order.  Exit status: 0 clean, 2 when errors were counted, 1
 * when the run could not happen.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../pxload/proto.h"

#define REPLAY_DEF_PORT   11211
#define REPLAY_DEF_VALUE  100
#define REPLAY_DEF_PREFIX "rp:"
/* A reply that takes longer than this ends the run with an error. */
#define REPLAY_RECV_TIMEOUT_S 10
#define REPLAY_PROGRESS_EVERY 100000

struct replay_opts {
	struct sockaddr_in addr;
	const char *trace;
	const char *prefix;
	uint32_t value_size;
	uint64_t limit;
	bool quiet, progress;
};

struct replay_stats {
	uint64_t requests, hits, misses, sets;
	uint64_t err_protocol, err_unexpected, bad_lines;
};

struct replay {
	const struct replay_opts *o;
	int fd;
	FILE *in;
	pid_t gzip_pid;
	char *value;
	char *tx;
	size_t tx_len;
	char rx[65536 + MC_LINE_MAX];
	size_t rx_len;
	struct replay_stats st;
};

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: replay -f TRACE [options]\n"
		"  -f, --trace FILE     .keys or .keys.gz trace\n"
		"  -H, --host ADDR      IPv4 address (default 127.0.0.1)\n"
		"  -p, --port N         port (default %d)\n"
		"  -V, --value-size N   bytes stored on a miss (default %d)\n"
		"  -n, --limit N        replay only the first N requests\n"
		"      --prefix STR     key prefix (default \"%s\")\n"
		"      --progress       a line every %d requests\n"
		"  -q, --quiet          print only the RESULT line\n",
		REPLAY_DEF_PORT, REPLAY_DEF_VALUE, REPLAY_DEF_PREFIX,
		REPLAY_PROGRESS_EVERY);
}

static bool
parse_num(const char *s, uint64_t hi, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	return !errno && end != s && !*end && s[0] != '-' && *out <= hi;
}

/* Returns 0, 1 after --help, -1 on a bad command line. */
static int
parse_args(struct replay_opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"trace", required_argument, NULL, 'f'},
	    {"host", required_argument, NULL, 'H'},
	    {"port", required_argument, NULL, 'p'},
	    {"value-size", required_argument, NULL, 'V'},
	    {"limit", required_argument, NULL, 'n'},
	    {"prefix", required_argument, NULL, 'P'},
	    {"progress", no_argument, NULL, 'g'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v;
	bool ok;
	int c;

	while ((c = getopt_long(argc, argv, "f:H:p:V:n:qh", lo, NULL)) != -1) {
		ok = true;
		switch (c) {
		case 'f':
			o->trace = optarg;
			break;
		case 'H':
			ok = inet_pton(AF_INET, optarg, &o->addr.sin_addr) == 1;
			break;
		case 'p':
			ok = parse_num(optarg, 65535, &v) && v > 0;
			o->addr.sin_port = htons((uint16_t)v);
			break;
		case 'V':
			ok = parse_num(optarg, 1u << 20, &v);
			o->value_size = (uint32_t)v;
			break;
		case 'n':
			ok = parse_num(optarg, UINT64_MAX, &o->limit);
			break;
		case 'P':
			o->prefix = optarg;
			ok = strlen(optarg) + 20 <= MC_KEY_MAX &&
			     !strpbrk(optarg, " \r\n");
			break;
		case 'g':
			o->progress = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			ok = false;
		}
		if (!ok) {
			usage(stderr);
			return -1;
		}
	}
	if (!o->trace || optind < argc) {
		usage(stderr);
		return -1;
	}
	return 0;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Opens the trace; a .gz one through a `gzip -dc` child. */
static int
trace_open(struct replay *r)
{
	int pfd[2];

	if (!ends_with(r->o->trace, ".gz")) {
		r->in = fopen(r->o->trace, "r");
		return r->in ? 0 : -errno;
	}
	if (access(r->o->trace, R_OK) < 0 || pipe(pfd) < 0)
		return -errno;
	r->gzip_pid = fork();
	if (r->gzip_pid < 0)
		return -errno;
	if (r->gzip_pid == 0) {
		dup2(pfd[1], STDOUT_FILENO);
		close(pfd[0]);
		close(pfd[1]);
		execlp("gzip", "gzip", "-dc", "--", r->o->trace, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	r->in = fdopen(pfd[0], "r");
	return r->in ? 0 : -errno;
}

/* Closes the trace; a non-zero gzip status is an error. */
static int
trace_close(struct replay *r)
{
	int status = 0;

	if (r->in)
		fclose(r->in);
	if (r->gzip_pid > 0) {
		kill(r->gzip_pid, SIGTERM);
		waitpid(r->gzip_pid, &status, 0);
	}
	return 0;
}

static int
connect_server(struct replay *r)
{
	struct timeval tv = {.tv_sec = REPLAY_RECV_TIMEOUT_S};
	int one = 1;

	r->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->fd < 0)
		return -errno;
	setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(r->fd, (const struct sockaddr *)&r->o->addr,
		    sizeof(r->o->addr)) < 0)
		return -errno;
	return 0;
}

static int
send_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads until one whole reply is buffered; consumes it into @m. */
static int
read_reply(struct replay *r, struct mc_reply *m)
{
	ssize_t n;
	int used;

	for (;;) {
		used = mc_parse_reply(r->rx, r->rx_len, m);
		if (used < 0)
			return used;
		if (used > 0) {
			memmove(r->rx, r->rx + used, r->rx_len - (size_t)used);
			r->rx_len -= (size_t)used;
			return 0;
		}
		if (r->rx_len == sizeof(r->rx))
			return -EPROTO;
		n = recv(r->fd, r->rx + r->rx_len, sizeof(r->rx) - r->rx_len,
			 0);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno != EINTR)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (n > 0)
			r->rx_len += (size_t)n;
	}
}

static void
count_error(struct replay *r, const struct mc_reply *m)
{
	if (m->kind == MC_ERROR || m->kind == MC_CLIENT_ERROR ||
	    m->kind == MC_SERVER_ERROR)
		r->st.err_protocol++;
	else
		r->st.err_unexpected++;
}

/* Reads the reply of the set sent for the previous miss. */
static int
finish_set(struct replay *r)
{
	struct mc_reply m;
	int err = read_reply(r, &m);

	if (err < 0)
		return err;
	if (m.kind == MC_STORED)
		r->st.sets++;
	else
		count_error(r, &m);
	return 0;
}

/*
 * One request: [set of the previous miss] + get of @key in one write,
 * then their replies.  Returns 1 on a miss (a set is owed), 0 on a hit.
 */
static int
one_request(struct replay *r, uint64_t key, bool owe_set, uint64_t prev)
{
	struct mc_reply m;
	int err;

	r->tx_len = 0;
	if (owe_set)
		r->tx_len = mc_format_set(r->tx, r->o->prefix, prev, r->value,
					  r->o->value_size, 0);
	r->tx_len += mc_format_get(r->tx + r->tx_len, r->o->prefix, key);
	err = send_all(r->fd, r->tx, r->tx_len);
	if (err == 0 && owe_set)
		err = finish_set(r);
	if (err == 0)
		err = read_reply(r, &m);
	if (err < 0)
		return err;
	r->st.requests++;
	if (m.kind == MC_MISS) {
		r->st.misses++;
		return 1;
	}
	if (m.kind == MC_HIT && m.nvalues == 1 &&
	    m.value_len == r->o->value_size) {
		r->st.hits++;
		return 0;
	}
	count_error(r, &m);
	return 0;
}

/* Parses one trace line; false when it is not one decimal key. */
static bool
parse_key(const char *line, uint64_t *key)
{
	char *end;

	errno = 0;
	*key = strtoull(line, &end, 10);
	if (errno || end == line || line[0] == '-')
		return false;
	while (*end == '\r' || *end == '\n' || *end == ' ')
		end++;
	return *end == '\0';
}

static int
replay_run(struct replay *r)
{
	char *line = NULL;
	size_t cap = 0;
	uint64_t key, prev = 0;
	int owe = 0;

	while (getline(&line, &cap, r->in) > 0 &&
	       (!r->o->limit || r->st.requests < r->o->limit)) {
		if (!parse_key(line, &key)) {
			r->st.bad_lines++;
			continue;
		}
		owe = one_request(r, key, owe == 1, prev);
		if (owe < 0)
			break;
		prev = key;
		if (r->o->progress &&
		    r->st.requests % REPLAY_PROGRESS_EVERY == 0)
			fprintf(stderr, "replay: %" PRIu64 " requests\n",
				r->st.requests);
	}
	free(line);
	if (owe == 1) {
		r->tx_len = mc_format_set(r->tx, r->o->prefix, prev, r->value,
					  r->o->value_size, 0);
		owe = send_all(r->fd, r->tx, r->tx_len);
		if (owe == 0)
			owe = finish_set(r);
	}
	return owe < 0 ? owe : 0;
}

static uint64_t
errors(const struct replay_stats *s)
{
	return s->err_protocol + s->err_unexpected + s->bad_lines;
}

static void
report(const struct replay *r)
{
	const struct replay_stats *s = &r->st;
	double ratio = s->requests ? (double)s->hits / (double)s->requests : 0;

	if (!r->o->quiet)
		printf("replay %s: %" PRIu64 " requests  %" PRIu64
		       " hits  %" PRIu64 " misses  hit ratio %.4f\n"
		       "errors: protocol %" PRIu64 "  unexpected %" PRIu64
		       "  bad lines %" PRIu64 "\n",
		       r->o->trace, s->requests, s->hits, s->misses, ratio,
		       s->err_protocol, s->err_unexpected, s->bad_lines);
	printf("RESULT requests=%" PRIu64 " hits=%" PRIu64 " misses=%" PRIu64
	       " sets=%" PRIu64 " hit_ratio=%.6f err_protocol=%" PRIu64
	       " err_unexpected=%" PRIu64 " bad_lines=%" PRIu64
	       " errors=%" PRIu64 "\n",
	       s->requests, s->hits, s->misses, s->sets, ratio, s->err_protocol,
	       s->err_unexpected, s->bad_lines, errors(s));
}

int
main(int argc, char **argv)
{
	struct replay_opts o = {
	    .addr = {.sin_family = AF_INET,
		     .sin_port = htons(REPLAY_DEF_PORT),
		     .sin_addr = {.s_addr = htonl(INADDR_LOOPBACK)}},
	    .prefix = REPLAY_DEF_PREFIX,
	    .value_size = REPLAY_DEF_VALUE,
	};
	struct replay *r;
	int rc, err;

	rc = parse_args(&o, argc, argv);
	if (rc)
		return rc > 0 ? 0 : 1;
	r = calloc(1, sizeof(*r));
	if (!r)
		return 1;
	r->o = &o;
	r->fd = -1;
	r->value = malloc(o.value_size + 1);
	r->tx = malloc(mc_set_size(o.prefix, o.value_size) + MC_KEY_MAX + 16);
	err = r->value && r->tx ? 0 : -ENOMEM;
	if (err == 0) {
		mc_fill_value(r->value, o.value_size, 1);
		err = trace_open(r);
	}
	if (err == 0)
		err = connect_server(r);
	if (err == 0)
		err = replay_run(r);
	trace_close(r);
	if (err < 0) {
		fprintf(stderr, "replay: %s\n", strerror(-err));
		rc = 1;
	} else {
		report(r);
		rc = errors(&r->st) ? 2 : 0;
	}
	if (r->fd >= 0)
		close(r->fd);
	free(r->value);
	free(r->tx);
	free(r);
	return rc;
}
