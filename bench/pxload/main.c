// SPDX-License-Identifier: MIT
/*
 * pxload's command line: options, worker threads, and the report (a human
 * summary and one machine-readable RESULT line that scripts parse).
 * Exit status: 0 when the run saw no error, 2 when it counted errors, 1
 * when it could not run at all.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <patinox/error.h>

#include "../../apps/common/log.h"
#include "proto.h"
#include "pxload.h"

enum {
	OPT_PRELOAD_ONLY = 256,
	OPT_PREFIX,
	OPT_CONNECT_MS,
	OPT_STALL_MS,
	OPT_BATCH,
	OPT_PROGRESS,
};

static const struct option long_opts[] = {
    {"host", required_argument, NULL, 'H'},
    {"port", required_argument, NULL, 'p'},
    {"conns", required_argument, NULL, 'c'},
    {"depth", required_argument, NULL, 'd'},
    {"keys", required_argument, NULL, 'k'},
    {"zipf", required_argument, NULL, 'z'},
    {"uniform", no_argument, NULL, 'u'},
    {"value-size", required_argument, NULL, 'V'},
    {"ratio", required_argument, NULL, 'r'},
    {"time", required_argument, NULL, 't'},
    {"requests", required_argument, NULL, 'n'},
    {"warmup", required_argument, NULL, 'w'},
    {"preload", no_argument, NULL, 'P'},
    {"preload-only", no_argument, NULL, OPT_PRELOAD_ONLY},
    {"threads", required_argument, NULL, 'T'},
    {"seed", required_argument, NULL, 'S'},
    {"prefix", required_argument, NULL, OPT_PREFIX},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_MS},
    {"reply-timeout", required_argument, NULL, OPT_STALL_MS},
    {"batch", no_argument, NULL, OPT_BATCH},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void
usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: pxload [options]\n"
	    "  -H, --host ADDR         IPv4 address (default 127.0.0.1)\n"
	    "  -p, --port N            port (default %d)\n"
	    "  -c, --conns N           connections (default %d)\n"
	    "  -d, --depth N           requests in flight per connection "
	    "(default %d)\n"
	    "      --batch             send depth requests at once and wait\n"
	    "                          for all replies (default: refill a\n"
	    "                          slot as soon as its reply arrives)\n"
	    "  -k, --keys N            distinct keys (default %d)\n"
	    "  -z, --zipf S            Zipf exponent, 0 = uniform "
	    "(default %.2f)\n"
	    "  -u, --uniform           uniform keys (same as -z 0)\n"
	    "  -V, --value-size N      bytes per value (default %d)\n"
	    "  -r, --ratio G:S         gets to sets (default %d:%d)\n"
	    "  -t, --time SEC          measured seconds (default %g)\n"
	    "  -n, --requests N        measured requests instead of -t\n"
	    "  -w, --warmup SEC        unmeasured load first (default 0)\n"
	    "  -P, --preload           set every key once before the load\n"
	    "      --preload-only      preload, then stop\n"
	    "  -T, --threads N         worker threads, one ring each "
	    "(default %d)\n"
	    "  -S, --seed N            random seed (default %d)\n"
	    "      --prefix STR        key prefix (default \"%s\")\n"
	    "      --connect-timeout MS  (default %d)\n"
	    "      --reply-timeout MS    give up on the connections after\n"
	    "                            MS without a reply (default %d)\n"
	    "      --progress          a progress line each second\n"
	    "  -q, --quiet             print only the RESULT line\n"
	    "  -v, --verbose           log connection failures\n",
	    PXLOAD_DEF_PORT, PXLOAD_DEF_CONNS, PXLOAD_DEF_DEPTH,
	    PXLOAD_DEF_KEYS, PXLOAD_DEF_ZIPF, PXLOAD_DEF_VALUE,
	    CONFIG_PX_PXLOAD_GET_PERCENT, 100 - CONFIG_PX_PXLOAD_GET_PERCENT,
	    PXLOAD_DEF_DURATION_S, PXLOAD_DEF_THREADS, PXLOAD_DEF_SEED,
	    PXLOAD_DEF_PREFIX, PXLOAD_DEF_CONNECT_MS, PXLOAD_DEF_STALL_MS);
}

static void
opts_init(struct pxload_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->addr.sin_family = AF_INET;
	o->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	o->addr.sin_port = htons(PXLOAD_DEF_PORT);
	o->conns = PXLOAD_DEF_CONNS;
	o->depth = PXLOAD_DEF_DEPTH;
	o->keys = PXLOAD_DEF_KEYS;
	o->zipf = PXLOAD_DEF_ZIPF;
	o->value_size = PXLOAD_DEF_VALUE;
	o->get_ratio = PXLOAD_DEF_GET_RATIO;
	o->duration_s = PXLOAD_DEF_DURATION_S;
	o->threads = PXLOAD_DEF_THREADS;
	o->seed = PXLOAD_DEF_SEED;
	o->prefix = PXLOAD_DEF_PREFIX;
	o->connect_ms = PXLOAD_DEF_CONNECT_MS;
	o->stall_ms = PXLOAD_DEF_STALL_MS;
}

/* Parses an unsigned number in [lo, hi] into @out; false when bad. */
static bool
parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static bool
parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* "G:S" (9:1) or a fraction of gets (0.9). */
static bool
parse_ratio(const char *s, double *out)
{
	unsigned long g, st;
	char tail;

	if (sscanf(s, "%lu:%lu%c", &g, &st, &tail) == 2) {
		if (g + st == 0)
			return false;
		*out = (double)g / (double)(g + st);
		return true;
	}
	return parse_double(s, 0.0, 1.0, out);
}

static bool
parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	uint64_t v;

	if (!parse_u64(s, lo, hi, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

/* Handles one option; false when its argument is bad. */
static bool
parse_opt(struct pxload_opts *o, int c, const char *a)
{
	uint32_t port;

	switch (c) {
	case 'H':
		return inet_pton(AF_INET, a, &o->addr.sin_addr) == 1;
	case 'p':
		if (!parse_u32(a, 1, 65535, &port))
			return false;
		o->addr.sin_port = htons((uint16_t)port);
		return true;
	case 'c':
		return parse_u32(a, 1, 1u << 20, &o->conns);
	case 'd':
		return parse_u32(a, 1, PXLOAD_MAX_DEPTH, &o->depth);
	case 'k':
		return parse_u64(a, 1, UINT64_MAX / 2, &o->keys);
	case 'z':
		return parse_double(a, 0.0, 100.0, &o->zipf);
	case 'u':
		o->zipf = 0.0;
		return true;
	case 'V':
		return parse_u32(a, 0, PXLOAD_MAX_VALUE, &o->value_size);
	case 'r':
		return parse_ratio(a, &o->get_ratio);
	case 't':
		return parse_double(a, 0.001, 1e6, &o->duration_s);
	case 'n':
		return parse_u64(a, 1, UINT64_MAX / 2, &o->requests);
	case 'w':
		return parse_double(a, 0.0, 1e6, &o->warmup_s);
	case 'P':
		o->preload = true;
		return true;
	case OPT_PRELOAD_ONLY:
		o->preload = o->preload_only = true;
		return true;
	case 'T':
		return parse_u32(a, 1, 1024, &o->threads);
	case 'S':
		return parse_u64(a, 0, UINT64_MAX, &o->seed);
	case OPT_PREFIX:
		o->prefix = a;
		return strlen(a) + 20 <= MC_KEY_MAX && !strpbrk(a, " \r\n");
	case OPT_CONNECT_MS:
		return parse_u32(a, 0, 3600000, &o->connect_ms);
	case OPT_STALL_MS:
		return parse_u32(a, 10, 3600000, &o->stall_ms);
	case OPT_BATCH:
		o->batch = true;
		return true;
	case OPT_PROGRESS:
		o->progress = true;
		return true;
	case 'v':
		log_set_level(LOG_LVL_DEBUG);
		return true;
	}
	return false;
}

/* Returns 0, 1 after --help, or -1 on a bad command line. */
static int
parse_args(struct pxload_opts *o, bool *quiet, int argc, char **argv)
{
	int c;

	while ((c = getopt_long(argc, argv, "H:p:c:d:k:z:uV:r:t:n:w:PT:S:qvh",
				long_opts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 1;
		}
		if (c == 'q') {
			*quiet = true;
			continue;
		}
		if (c == '?' || !parse_opt(o, c, optarg)) {
			if (c != '?')
				fprintf(stderr, "pxload: bad value '%s'\n",
					optarg ? optarg : "");
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "pxload: unexpected argument %s\n",
			argv[optind]);
		return -1;
	}
	return 0;
}

void
pxload_stats_merge(struct pxload_stats *dst, const struct pxload_stats *src)
{
	dst->ops += src->ops;
	dst->gets += src->gets;
	dst->hits += src->hits;
	dst->misses += src->misses;
	dst->sets += src->sets;
	dst->preloaded += src->preloaded;
	dst->err_protocol += src->err_protocol;
	dst->err_unexpected += src->err_unexpected;
	dst->err_conn += src->err_conn;
	dst->unanswered += src->unanswered;
	if (src->measure_ns > dst->measure_ns)
		dst->measure_ns = src->measure_ns;
	hist_merge(&dst->lat, &src->lat);
}

/* Splits @total as evenly as possible: share @i of @n. */
static uint64_t
share(uint64_t total, uint32_t n, uint32_t i)
{
	return total / n + (i < total % n ? 1 : 0);
}

static void
worker_init(struct pxload_shared *sh, struct pxload_worker *w, uint32_t i)
{
	const struct pxload_opts *o = sh->o;
	uint32_t t = o->threads;

	w->id = i;
	w->sh = sh;
	w->o = o;
	w->value = sh->value;
	w->nconns = (uint32_t)share(o->conns, t, i);
	w->budget = share(o->requests, t, i);
	w->preload_next = o->keys / t * i + (i < o->keys % t ? i : o->keys % t);
	w->preload_end = w->preload_next + share(o->keys, t, i);
	rng_seed(&w->rng, o->seed + (uint64_t)i * UINT64_C(0x9e3779b97f4a7c15));
	keygen_init(&w->kg, o->keys, o->zipf);
	hist_init(&w->st.lat);
}

static double
us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static uint64_t
errors(const struct pxload_stats *s)
{
	return s->err_protocol + s->err_unexpected + s->err_conn +
	       s->unanswered;
}

static void
report_human(const struct pxload_opts *o, const struct pxload_stats *s,
	     double rate)
{
	char addr[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &o->addr.sin_addr, addr, sizeof(addr));
	printf("pxload %s:%u  conns %u  depth %u  threads %u  keys %" PRIu64
	       "  %s %.2f  value %u B  gets %.0f%%\n",
	       addr, ntohs(o->addr.sin_port), o->conns, o->depth, o->threads,
	       o->keys, o->zipf > 0 ? "zipf" : "uniform", o->zipf,
	       o->value_size, o->get_ratio * 100.0);
	if (o->preload)
		printf("preloaded  %" PRIu64 " keys\n", s->preloaded);
	printf("measured   %.3f s  %" PRIu64 " ops  %.0f ops/s\n",
	       (double)s->measure_ns / 1e9, s->ops, rate);
	printf("latency us p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  "
	       "mean %.1f\n",
	       us(hist_quantile(&s->lat, 0.5)),
	       us(hist_quantile(&s->lat, 0.99)),
	       us(hist_quantile(&s->lat, 0.999)),
	       us(s->lat.max ? s->lat.max : 0), hist_mean(&s->lat) / 1000.0);
	printf("gets %" PRIu64 " (hits %" PRIu64 ", misses %" PRIu64
	       ")  sets %" PRIu64 "\n",
	       s->gets, s->hits, s->misses, s->sets);
	printf("errors     protocol %" PRIu64 "  unexpected %" PRIu64
	       "  connection %" PRIu64 "  unanswered %" PRIu64 "\n",
	       s->err_protocol, s->err_unexpected, s->err_conn, s->unanswered);
}

static void
report_result(const struct pxload_stats *s, double rate)
{
	printf("RESULT ops=%" PRIu64 " seconds=%.3f ops_per_s=%.0f "
	       "p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f "
	       "gets=%" PRIu64 " hits=%" PRIu64 " misses=%" PRIu64
	       " sets=%" PRIu64 " preloaded=%" PRIu64 " err_protocol=%" PRIu64
	       " err_unexpected=%" PRIu64 " err_conn=%" PRIu64
	       " unanswered=%" PRIu64 " errors=%" PRIu64 "\n",
	       s->ops, (double)s->measure_ns / 1e9, rate,
	       us(hist_quantile(&s->lat, 0.5)),
	       us(hist_quantile(&s->lat, 0.99)),
	       us(hist_quantile(&s->lat, 0.999)), us(s->lat.max), s->gets,
	       s->hits, s->misses, s->sets, s->preloaded, s->err_protocol,
	       s->err_unexpected, s->err_conn, s->unanswered, errors(s));
}

/* Raises the fd limit so that many connections fit. */
static void
raise_nofile(uint32_t conns)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < conns + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Starts the workers, waits for them, merges; returns the ops rate. */
static int
run_workers(struct pxload_shared *sh, struct pxload_stats *total, double *rate)
{
	uint32_t t = sh->o->threads, i;
	pthread_t *tids = calloc(t, sizeof(*tids));
	int err = 0;

	if (!tids)
		return -ENOMEM;
	pthread_barrier_init(&sh->barrier, NULL, t);
	for (i = 0; i < t; i++)
		worker_init(sh, &sh->workers[i], i);
	sh->t_origin = pxload_now_ns();
	for (i = 0; i < t; i++)
		pthread_create(&tids[i], NULL, pxload_worker_main,
			       &sh->workers[i]);
	*rate = 0.0;
	for (i = 0; i < t; i++) {
		struct pxload_stats *ws = &sh->workers[i].st;

		pthread_join(tids[i], NULL);
		if (sh->workers[i].err)
			err = sh->workers[i].err;
		if (ws->measure_ns)
			*rate += (double)ws->ops * 1e9 / (double)ws->measure_ns;
		pxload_stats_merge(total, ws);
	}
	pthread_barrier_destroy(&sh->barrier);
	free(tids);
	return err;
}

int
main(int argc, char **argv)
{
	struct pxload_shared sh = {0};
	struct pxload_stats *total;
	struct pxload_opts o;
	bool quiet = false;
	char *value;
	double rate;
	int rc, err;

	opts_init(&o);
	log_set_level(LOG_LVL_WARN);
	rc = parse_args(&o, &quiet, argc, argv);
	if (rc)
		return rc > 0 ? 0 : 1;
	signal(SIGPIPE, SIG_IGN);
	raise_nofile(o.conns);

	value = malloc(o.value_size + 1);
	total = calloc(1, sizeof(*total));
	sh.workers = calloc(o.threads, sizeof(*sh.workers));
	if (!value || !total || !sh.workers) {
		fprintf(stderr, "pxload: out of memory\n");
		return 1;
	}
	mc_fill_value(value, o.value_size, o.seed);
	sh.o = &o;
	sh.value = value;
	hist_init(&total->lat);

	err = run_workers(&sh, total, &rate);
	if (err < 0) {
		fprintf(stderr, "pxload: %s\n",
			px_strerror_in(PX_PART_RING, err));
		rc = 1;
	} else {
		if (!quiet)
			report_human(&o, total, rate);
		report_result(total, rate);
		rc = errors(total) ? 2 : 0;
		if (!o.preload_only && total->ops == 0) {
			fprintf(stderr, "pxload: no request was answered\n");
			rc = 2;
		}
	}
	free(sh.workers);
	free(total);
	free(value);
	return rc;
}
