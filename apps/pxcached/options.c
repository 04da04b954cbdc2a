// SPDX-License-Identifier: MIT
/*
 * pxcached's command line parser (see options.h).  Defaults come from
 * Kconfig; -t defaults to the number of online CPUs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <patinox/cache.h>

#include "options.h"

/* The names --policy takes, as the cache spells them (no DEFAULT). */
static const char *const policy_names[] = {"lru", "sieve", "s3fifo"};

/* Bounds of -I: memcached's lower one, and the cache's upper one. */
#define PXC_ITEM_MIN (1024ull)
#define PXC_ITEM_MAX (64ull << 20)

enum {
	OPT_POLICY = 256,
	OPT_HUGEPAGES,
	OPT_FEATURES,
	OPT_PORT_FILE,
	OPT_SNAPSHOT,
	OPT_SNAPSHOT_INTERVAL,
	OPT_SNAPSHOT_STRICT,
	OPT_HANDOVER,
};

static const struct option long_opts[] = {
    {"port", required_argument, NULL, 'p'},
    {"listen", required_argument, NULL, 'l'},
    {"memory-limit", required_argument, NULL, 'm'},
    {"conn-limit", required_argument, NULL, 'c'},
    {"threads", required_argument, NULL, 't'},
    {"max-item-size", required_argument, NULL, 'I'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"policy", required_argument, NULL, OPT_POLICY},
    {"hugepages", required_argument, NULL, OPT_HUGEPAGES},
    {"features", no_argument, NULL, OPT_FEATURES},
    {"port-file", required_argument, NULL, OPT_PORT_FILE},
    {"auth-file", required_argument, NULL, 'Y'},
    {"snapshot", required_argument, NULL, OPT_SNAPSHOT},
    {"snapshot-interval", required_argument, NULL, OPT_SNAPSHOT_INTERVAL},
    {"snapshot-strict", no_argument, NULL, OPT_SNAPSHOT_STRICT},
    {"handover", required_argument, NULL, OPT_HANDOVER},
    {"extended", required_argument, NULL, 'o'},
    {NULL, 0, NULL, 0},
};

static const char usage_text[] =
    "usage: pxcached [options]\n"
    "A memcached-compatible cache server on io_uring and hugepages.\n"
    "\n"
    "  -p, --port=PORT          TCP port to listen on (default %d; 0 picks\n"
    "                           a free port, see --port-file)\n"
    "  -l, --listen=ADDR        IPv4 or IPv6 address to bind (default\n"
    "                           127.0.0.1; a non-loopback address must be\n"
    "                           given explicitly)\n"
    "  -m, --memory-limit=MB    cache memory in MiB (default %d)\n"
    "  -c, --conn-limit=N       most simultaneous connections (default %d)\n"
    "  -t, --threads=N          worker threads, one io_uring each (default:\n"
    "                           the number of CPUs)\n"
    "  -I, --max-item-size=SIZE largest value, bytes with optional k/m\n"
    "                           suffix (default %dk, 1k to 64m)\n"
    "  -v, --verbose            more log output; repeat for more (-vv)\n"
    "  -Y, --auth-file=FILE     require authentication: FILE holds\n"
    "                           user:password lines; a client's first\n"
    "                           command is a set of \"user password\"\n"
    "                           (memcached's text-protocol auth)\n"
    "      --policy=NAME        cache eviction policy (default: the cache's;\n"
    "                           names are listed in docs/pxcached.md)\n"
    "      --hugepages=MODE     auto: hugepages when free, else fall back\n"
    "                           and say so (default); on: refuse to start\n"
    "                           without them; off: never use them\n"
    "      --features           print the io_uring and hugepage capabilities\n"
    "                           and exit\n"
    "      --port-file=PATH     write the port actually bound to PATH once\n"
    "                           listening (for -p 0)\n"
    "      --snapshot=FILE      warm restart: load FILE at start (a missing\n"
    "                           file starts empty), save the cache to it\n"
    "                           on SIGTERM/SIGINT/SIGUSR1 once requests\n"
    "                           are done\n"
    "      --snapshot-interval=N  also save every N seconds while serving\n"
    "                           (default 0: only at shutdown; needs\n"
    "                           --snapshot)\n"
    "      --snapshot-strict    exit non-zero when FILE exists but is\n"
    "                           refused (corrupt, truncated, foreign)\n"
    "                           instead of starting empty\n"
    "      --handover=SOCKET    warm roll: take the cache over from the\n"
    "                           pxcached serving on the Unix socket\n"
    "                           SOCKET (it stops and hands its memory\n"
    "                           over, nothing is copied), then serve\n"
    "                           SOCKET for the next one\n"
    "  -o, --extended=OPT,...   memcached's extended options, those that\n"
    "                           apply: idle_timeout=N closes a connection\n"
    "                           that finishes no request for N seconds\n"
    "                           (default %d, 0 off); partial_timeout=N one\n"
    "                           whose unfinished request began N seconds\n"
    "                           ago (default %d, 0 off).  Testing and\n"
    "                           tuning: ring_entries=N and\n"
    "                           ring_cq_entries=N size each worker's\n"
    "                           io_uring queues (default %d and %d x)\n"
    "  -h, --help               this text\n"
    "\n"
    "No UDP, no binary protocol: the text and meta protocols over TCP.\n"
    "SIGTERM, SIGINT or SIGUSR1 stops accepting, finishes requests in\n"
    "flight and exits 0.  SIGHUP is logged and ignored.\n";

const char *
pxc_usage(void)
{
	static char text[sizeof(usage_text) + 128];

	snprintf(text, sizeof(text), usage_text, CONFIG_PX_PXCACHED_PORT,
		 CONFIG_PX_PXCACHED_MEMORY_MB, CONFIG_PX_PXCACHED_MAX_CONNS,
		 CONFIG_PX_CACHE_ITEM_MAX_KB, CONFIG_PX_PXCACHED_IDLE_TIMEOUT_S,
		 CONFIG_PX_PXCACHED_PARTIAL_TIMEOUT_S,
		 CONFIG_PX_RING_SQ_ENTRIES, CONFIG_PX_RING_CQ_FACTOR);
	return text;
}

static int
parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

int
pxc_parse_size(const char *s, uint64_t *out)
{
	char digits[32];
	size_t n = s ? strlen(s) : 0;
	unsigned shift = 0;
	uint64_t v;

	if (n == 0 || n >= sizeof(digits))
		return -EINVAL;
	memcpy(digits, s, n + 1);
	switch (digits[n - 1]) {
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	default:
		break;
	}
	if (shift)
		digits[n - 1] = '\0';
	if (parse_u64(digits, &v) < 0 || v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

__attribute__((format(printf, 3, 4))) static int
opt_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int
parse_ranged(const char *arg, uint64_t lo, uint64_t hi, uint64_t *out)
{
	if (parse_u64(arg, out) < 0 || *out < lo || *out > hi)
		return -EINVAL;
	return 0;
}

static void
set_defaults(struct pxc_opts *o)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	memset(o, 0, sizeof(*o));
	o->action = PXC_RUN;
	o->listen = "127.0.0.1";
	o->port = CONFIG_PX_PXCACHED_PORT;
	o->memory_mb = CONFIG_PX_PXCACHED_MEMORY_MB;
	o->max_conns = CONFIG_PX_PXCACHED_MAX_CONNS;
	o->threads = cpus > 0 ? (uint32_t)cpus : 1;
	o->item_max = (uint64_t)CONFIG_PX_CACHE_ITEM_MAX_KB << 10;
	o->hugepages = PXC_HUGE_AUTO;
	o->idle_timeout = CONFIG_PX_PXCACHED_IDLE_TIMEOUT_S;
	o->partial_timeout = CONFIG_PX_PXCACHED_PARTIAL_TIMEOUT_S;
}

/*
 * -o: the extended options pxcached has.  Ring sizes go up to the
 * kernel's limits (IORING_MAX_ENTRIES, IORING_MAX_CQ_ENTRIES).
 */
static const struct ext_opt {
	const char *name;
	uint32_t hi;
	size_t off;
} ext_opts[] = {
    {"idle_timeout", 2592000, offsetof(struct pxc_opts, idle_timeout)},
    {"partial_timeout", 2592000, offsetof(struct pxc_opts, partial_timeout)},
    {"ring_entries", 32768, offsetof(struct pxc_opts, ring_entries)},
    {"ring_cq_entries", 65536, offsetof(struct pxc_opts, ring_cq_entries)},
};

/* One NAME=VALUE of -o, @len bytes long. */
static int
parse_ext_one(struct pxc_opts *o, const char *s, size_t len, char *err,
	      size_t errlen)
{
	const char *eq = memchr(s, '=', len);
	size_t nlen = eq ? (size_t)(eq - s) : len;
	char val[24];
	uint64_t v;

	for (size_t i = 0; i < sizeof(ext_opts) / sizeof(*ext_opts); i++) {
		const struct ext_opt *e = &ext_opts[i];

		if (strlen(e->name) != nlen || memcmp(s, e->name, nlen))
			continue;
		if (!eq || len - nlen - 1 >= sizeof(val))
			return opt_fail(err, errlen, "-o %s needs =N", e->name);
		memcpy(val, eq + 1, len - nlen - 1);
		val[len - nlen - 1] = '\0';
		if (parse_ranged(val, 0, e->hi, &v) < 0)
			return opt_fail(err, errlen,
					"-o %s: bad value '%s' "
					"(0 to %u)",
					e->name, val, e->hi);
		*(uint32_t *)((char *)o + e->off) = (uint32_t)v;
		return 0;
	}
	return opt_fail(err, errlen,
			"-o: unknown option '%.*s' (idle_timeout, "
			"partial_timeout, ring_entries, ring_cq_entries)",
			(int)len, s);
}

/* -o NAME=VALUE[,NAME=VALUE...], as memcached takes them. */
static int
parse_ext(struct pxc_opts *o, const char *arg, char *err, size_t errlen)
{
	while (*arg) {
		size_t len = strcspn(arg, ",");
		int rc = len ? parse_ext_one(o, arg, len, err, errlen) : 0;

		if (rc < 0)
			return rc;
		arg += len + (arg[len] == ',');
	}
	return 0;
}

/* The CQ must hold at least the SQ (the ring refuses less). */
static int
check_ring_sizes(const struct pxc_opts *o, char *err, size_t errlen)
{
	uint32_t sq =
	    o->ring_entries ? o->ring_entries : CONFIG_PX_RING_SQ_ENTRIES;

	if (o->ring_entries == 0 && o->ring_cq_entries == 0)
		return 0;
	if (sq == 0 || (o->ring_cq_entries && o->ring_cq_entries < sq))
		return opt_fail(err, errlen,
				"-o ring_cq_entries must be at least "
				"ring_entries (%u), and ring_entries at "
				"least 1",
				sq);
	return 0;
}

static bool
policy_known(const char *name)
{
	for (size_t i = 0; i < sizeof(policy_names) / sizeof(*policy_names);
	     i++)
		if (!strcmp(name, policy_names[i]))
			return true;
	return false;
}

/* A numeric IPv4 or IPv6 address, as -l takes (no host names). */
static bool
address_ok(const char *arg)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, arg, buf) == 1 ||
	       inet_pton(AF_INET6, arg, buf) == 1;
}

static int
parse_hugepages(const char *arg, enum pxc_hugepages *out)
{
	if (!strcmp(arg, "auto"))
		*out = PXC_HUGE_AUTO;
	else if (!strcmp(arg, "on"))
		*out = PXC_HUGE_ON;
	else if (!strcmp(arg, "off"))
		*out = PXC_HUGE_OFF;
	else
		return -EINVAL;
	return 0;
}

/*
 * One option; returns 0 or -EINVAL with @err filled.  One case per
 * option: a flat switch reads better than a table of small parsers.
 */
static int
parse_one(struct pxc_opts *o, int c, const char *arg, char *err, size_t errlen)
{
	uint64_t v;

	switch (c) {
	case 'p':
		if (parse_ranged(arg, 0, 65535, &v) < 0)
			return opt_fail(err, errlen, "-p: bad port '%s'", arg);
		o->port = (int)v;
		return 0;
	case 'l':
		if (!address_ok(arg))
			return opt_fail(err, errlen,
					"-l: '%s' is not an IPv4 or IPv6 "
					"address",
					arg);
		o->listen = arg;
		return 0;
	case 'm':
		if (parse_u64(arg, &v) == 0 && v > PX_CACHE_LIMIT_MAX >> 20)
			return opt_fail(err, errlen,
					"-m: %s MiB is over the cache's limit "
					"of %llu MiB (%llu GiB)",
					arg, PX_CACHE_LIMIT_MAX >> 20,
					PX_CACHE_LIMIT_MAX >> 30);
		if (parse_ranged(arg, 1, PX_CACHE_LIMIT_MAX >> 20, &v) < 0)
			return opt_fail(err, errlen, "-m: bad size '%s' (MiB)",
					arg);
		o->memory_mb = v;
		return 0;
	case 'o':
		return parse_ext(o, arg, err, errlen);
	case 'c':
		if (parse_ranged(arg, 1, 1u << 20, &v) < 0)
			return opt_fail(err, errlen, "-c: bad count '%s'", arg);
		o->max_conns = (uint32_t)v;
		return 0;
	case 't':
		if (parse_ranged(arg, 1, 1024, &v) < 0)
			return opt_fail(err, errlen, "-t: bad count '%s'", arg);
		o->threads = (uint32_t)v;
		return 0;
	case 'I':
		if (pxc_parse_size(arg, &v) < 0 || v < PXC_ITEM_MIN ||
		    v > PXC_ITEM_MAX)
			return opt_fail(err, errlen,
					"-I: bad size '%s' (1k to 64m)", arg);
		o->item_max = v;
		return 0;
	case 'v':
		o->verbose++;
		return 0;
	case 'Y':
		o->auth_file = arg;
		return 0;
	case 'h':
		o->action = PXC_HELP;
		return 0;
	case OPT_POLICY:
		if (!policy_known(arg))
			return opt_fail(err, errlen,
					"unknown policy '%s' (lru, sieve, "
					"s3fifo)",
					arg);
		o->policy = arg;
		return 0;
	case OPT_HUGEPAGES:
		if (parse_hugepages(arg, &o->hugepages) < 0)
			return opt_fail(
			    err, errlen,
			    "--hugepages: '%s' is not auto, on or off", arg);
		return 0;
	case OPT_FEATURES:
		o->action = PXC_FEATURES;
		return 0;
	case OPT_PORT_FILE:
		o->port_file = arg;
		return 0;
	case OPT_SNAPSHOT:
		if (!*arg)
			return opt_fail(err, errlen,
					"--snapshot: needs a file name");
		o->snapshot = arg;
		return 0;
	case OPT_SNAPSHOT_INTERVAL:
		if (parse_ranged(arg, 0, 1u << 30, &v) < 0)
			return opt_fail(err, errlen,
					"--snapshot-interval: bad seconds '%s'",
					arg);
		o->snapshot_interval = (uint32_t)v;
		return 0;
	case OPT_SNAPSHOT_STRICT:
		o->snapshot_strict = true;
		return 0;
	case OPT_HANDOVER:
		if (!*arg || strlen(arg) >= PXC_HANDOVER_PATH_MAX)
			return opt_fail(err, errlen,
					"--handover: needs a socket path "
					"shorter than %d bytes",
					PXC_HANDOVER_PATH_MAX);
		o->handover = arg;
		return 0;
	default:
		return opt_fail(err, errlen, "unknown option (see --help)");
	}
}

/* getopt's '?': name the option it did not know. */
static int
unknown_option(int argc, char **argv, char *err, size_t errlen)
{
	const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";

	if (optopt)
		return opt_fail(err, errlen,
				"unknown option '-%c' (see --help)", optopt);
	return opt_fail(err, errlen, "unknown option '%s' (see --help)", arg);
}

int
pxc_opts_parse(struct pxc_opts *o, int argc, char **argv, char *err,
	       size_t errlen)
{
	int c, rc;

	set_defaults(o);
	optind = 0; /* 0 also resets getopt's internal state */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":p:l:m:c:t:I:vhY:o:", long_opts,
				NULL)) != -1) {
		if (c == ':')
			return opt_fail(err, errlen, "option needs a value: %s",
					argv[optind - 1]);
		if (c == '?')
			return unknown_option(argc, argv, err, errlen);
		rc = parse_one(o, c, optarg, err, errlen);
		if (rc < 0)
			return rc;
	}
	if (optind < argc)
		return opt_fail(err, errlen, "unexpected argument '%s'",
				argv[optind]);
	if (o->item_max > o->memory_mb << 20)
		return opt_fail(err, errlen, "-I is larger than -m");
	if (check_ring_sizes(o, err, errlen) < 0)
		return -EINVAL;
	if (!o->snapshot && (o->snapshot_interval || o->snapshot_strict))
		return opt_fail(err, errlen,
				"--snapshot-interval and --snapshot-strict "
				"need --snapshot FILE");
	return 0;
}
