// SPDX-License-Identifier: MIT
/*
 * bench/cache: the cache benchmark.  Three sections, all by default:
 * throughput against a ck_ht bare-lookup baseline on hugepages and 4 KiB
 * pages, hit ratio of every policy on every trace, and memory per item.
 * `--quick` shrinks everything to under a minute.  Method and figures:
 * docs/bench-cache.md.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../apps/common/log.h"
#include "../../tests/selftests/trace.h"
#include "bench_cache.h"

#define MAX_VALUE_SIZE 256 /* the throughput loops copy into 256 B */
#define MIN_KEYS       16  /* fewer makes no sense for a Zipf spread */

static void
usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s [options]\n"
		"  -q, --quick           small sizes, short runs (< 1 min)\n"
		"      --only LIST       sections: throughput,hitratio,memory\n"
		"  -k, --keys LIST       throughput key counts (1M,10M)\n"
		"  -t, --threads LIST    thread counts (1,2)\n"
		"  -s, --seconds S       seconds per measurement (1)\n"
		"  -r, --repeat N        measurements per figure, best "
		"counts (3)\n"
		"      --value-size N    throughput value bytes (32, <= %d)\n"
		"      --theta X         zipf skew (0.99)\n"
		"      --get-pct N       gets in the mixed runs (90)\n"
		"      --pages WHICH     huge, 4k or both (both)\n"
		"      --policy NAME     throughput policy: lru, sieve, s3fifo "
		"(Kconfig default)\n"
		"      --traces DIR      trace folder ($PX_TRACE_DIR, "
		"../shared/traces)\n"
		"      --trace-limit N   requests per trace (all)\n"
		"      --hr-objects LIST hit ratio at these sizes in objects "
		"(1%%,5%%,10%%\n"
		"                        of each trace's footprint)\n"
		"      --mem-items N     memory section items (1M)\n"
		"      --mem-value N     memory section value bytes (100)\n"
		"  -o, --out DIR         plot and data folder (build/bench)\n"
		"  -v, --verbose         progress messages\n",
		prog, MAX_VALUE_SIZE);
}

/* "10M", "100k", "5000" -> a count; 0 on a malformed one. */
static size_t
parse_count(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || v < 0)
		return 0;
	if (*end == 'k' || *end == 'K')
		v *= 1e3, end++;
	else if (*end == 'm' || *end == 'M')
		v *= 1e6, end++;
	return *end ? 0 : (size_t)v;
}

static int
parse_sizes(const char *arg, size_t *out, int *n)
{
	char buf[256], *tok, *save;

	snprintf(buf, sizeof(buf), "%s", arg);
	*n = 0;
	for (tok = strtok_r(buf, ",", &save); tok && *n < BENCH_MAX_LIST;
	     tok = strtok_r(NULL, ",", &save)) {
		out[*n] = parse_count(tok);
		if (out[(*n)++] == 0)
			return -EINVAL;
	}
	return *n ? 0 : -EINVAL;
}

/* Key counts: the streams keep a key index in 31 bits. */
static int
parse_keys(const char *arg, struct bench_opts *o)
{
	int ret = parse_sizes(arg, o->keys, &o->nkeys);

	for (int i = 0; i < o->nkeys && ret == 0; i++) {
		if (o->keys[i] < MIN_KEYS || o->keys[i] >= (1ul << 31))
			return -EINVAL;
	}
	return ret;
}

static int
parse_threads(const char *arg, struct bench_opts *o)
{
	size_t v[BENCH_MAX_LIST];
	int ret = parse_sizes(arg, v, &o->nthreads);

	for (int i = 0; i < o->nthreads && ret == 0; i++) {
		if (v[i] > BENCH_MAX_LIST)
			return -EINVAL;
		o->threads[i] = (int)v[i];
	}
	return ret;
}

/* Hit-ratio sizes: the replay counts capacity in 32 bits. */
static int
parse_objects(const char *arg, struct bench_opts *o)
{
	int ret = parse_sizes(arg, o->hr_objects, &o->nhr_objects);

	for (int i = 0; i < o->nhr_objects && ret == 0; i++) {
		if (o->hr_objects[i] > UINT32_MAX)
			return -EINVAL;
	}
	return ret;
}

static int
parse_sections(const char *arg, struct bench_opts *o)
{
	o->run_throughput = strstr(arg, "throughput") != NULL;
	o->run_hitratio = strstr(arg, "hitratio") != NULL;
	o->run_memory = strstr(arg, "memory") != NULL;
	return o->run_throughput || o->run_hitratio || o->run_memory ? 0
								     : -EINVAL;
}

static int
parse_pages(const char *arg, struct bench_opts *o)
{
	o->huge = !strcmp(arg, "huge") || !strcmp(arg, "both");
	o->small = !strcmp(arg, "4k") || !strcmp(arg, "both");
	return o->huge || o->small ? 0 : -EINVAL;
}

static int
parse_policy(const char *arg, struct bench_opts *o)
{
	static const enum px_cache_policy all[] = {
	    PX_CACHE_POLICY_LRU, PX_CACHE_POLICY_SIEVE, PX_CACHE_POLICY_S3FIFO};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (!strcmp(arg, px_cache_policy_name(all[i]))) {
			o->policy = all[i];
			return 0;
		}
	}
	return -EINVAL;
}

static void
defaults(struct bench_opts *o)
{
	*o = (struct bench_opts){
	    .keys = {1000000, 10000000},
	    .nkeys = 2,
	    .threads = {1, 2},
	    .nthreads = 2,
	    .seconds = 1,
	    .repeat = 3,
	    .value_size = 32,
	    .zipf_theta = 0.99,
	    .get_pct = 90,
	    .huge = true,
	    .small = true,
	    .traces = trace_dir(),
	    .mem_items = 1000000,
	    .mem_value = 100,
	    .out_dir = "build/bench",
	    .run_throughput = true,
	    .run_hitratio = true,
	    .run_memory = true,
	};
}

/* --quick: what fits in under a minute on a loaded 2-core machine. */
static void
quick(struct bench_opts *o)
{
	o->keys[0] = 100000;
	o->keys[1] = 1000000;
	o->nkeys = 2;
	o->seconds = 0.25;
	o->repeat = 2;
	o->trace_limit = 1000000;
	o->mem_items = 200000;
}

static const struct option long_opts[] = {
    {"quick", no_argument, NULL, 'q'},
    {"only", required_argument, NULL, 'O'},
    {"keys", required_argument, NULL, 'k'},
    {"threads", required_argument, NULL, 't'},
    {"seconds", required_argument, NULL, 's'},
    {"repeat", required_argument, NULL, 'r'},
    {"value-size", required_argument, NULL, 'V'},
    {"theta", required_argument, NULL, 'z'},
    {"get-pct", required_argument, NULL, 'g'},
    {"pages", required_argument, NULL, 'p'},
    {"policy", required_argument, NULL, 'P'},
    {"traces", required_argument, NULL, 'T'},
    {"trace-limit", required_argument, NULL, 'L'},
    {"hr-objects", required_argument, NULL, 'H'},
    {"mem-items", required_argument, NULL, 'M'},
    {"mem-value", required_argument, NULL, 'W'},
    {"out", required_argument, NULL, 'o'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {0},
};

/* One option; 0, 1 for --help, or -EINVAL. */
static int
parse_one(int c, const char *arg, struct bench_opts *o)
{
	switch (c) {
	case 'q':
		quick(o);
		return 0;
	case 'O':
		return parse_sections(arg, o);
	case 'k':
		return parse_keys(arg, o);
	case 't':
		return parse_threads(arg, o);
	case 's':
		o->seconds = atof(arg);
		return o->seconds > 0 ? 0 : -EINVAL;
	case 'r':
		o->repeat = atoi(arg);
		return o->repeat > 0 ? 0 : -EINVAL;
	case 'V':
		o->value_size = parse_count(arg);
		return o->value_size && o->value_size <= MAX_VALUE_SIZE
			   ? 0
			   : -EINVAL;
	case 'z':
		o->zipf_theta = atof(arg);
		return o->zipf_theta > 0 && o->zipf_theta < 1 ? 0 : -EINVAL;
	case 'g':
		o->get_pct = atoi(arg);
		return o->get_pct >= 0 && o->get_pct <= 100 ? 0 : -EINVAL;
	case 'p':
		return parse_pages(arg, o);
	case 'P':
		return parse_policy(arg, o);
	case 'T':
		o->traces = arg;
		return 0;
	case 'L':
		o->trace_limit = parse_count(arg);
		return 0;
	case 'H':
		return parse_objects(arg, o);
	case 'M':
		o->mem_items = parse_count(arg);
		return o->mem_items ? 0 : -EINVAL;
	case 'W':
		o->mem_value = parse_count(arg);
		return 0;
	case 'o':
		o->out_dir = arg;
		return 0;
	case 'v':
		log_set_level(LOG_LVL_INFO);
		return 0;
	case 'h':
		return 1;
	default:
		return -EINVAL;
	}
}

int
main(int argc, char **argv)
{
	struct bench_opts o;
	double t0 = bench_now();
	int c, ret = 0;

	defaults(&o);
	while ((c = getopt_long(argc, argv, "qk:t:s:r:o:vh", long_opts,
				NULL)) != -1) {
		ret = parse_one(c, optarg, &o);
		if (ret) {
			usage(ret > 0 ? stdout : stderr, argv[0]);
			return ret > 0 ? 0 : 2;
		}
	}
	mkdir(o.out_dir, 0755);
	printf("bench/cache: figures from a shared machine are noisy; "
	       "compare ratios measured in the same run\n");
	if (o.run_throughput)
		ret = bench_throughput(&o);
	if (ret == 0 && o.run_hitratio)
		ret = bench_hitratio(&o);
	if (ret == 0 && o.run_memory)
		ret = bench_memory(&o);
	printf("\nbench/cache: %s in %.0f s\n", ret ? "FAILED" : "done",
	       bench_now() - t0);
	return ret ? 1 : 0;
}
