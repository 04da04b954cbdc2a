/* SPDX-License-Identifier: MIT */
/*
 * bench/cache: shared declarations of the cache benchmark's sections
 * (throughput against a ck_ht baseline on hugepages and 4 KiB pages, hit
 * ratio on the traces, memory per item).  See docs/bench-cache.md.
 */
#ifndef PX_BENCH_CACHE_H
#define PX_BENCH_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <patinox/cache.h>

#define BENCH_MAX_LIST 8
#define BENCH_KEY_LEN  16 /* every benchmark key: "key:" + 12 hex digits */

struct bench_opts {
	size_t keys[BENCH_MAX_LIST]; /* throughput: key counts */
	int nkeys;
	int threads[BENCH_MAX_LIST]; /* throughput: thread counts */
	int nthreads;
	double seconds;    /* per throughput measurement */
	int repeat;        /* measurements per figure, the best counts */
	size_t value_size; /* throughput values */
	double zipf_theta; /* throughput key skew */
	int get_pct;       /* share of gets in the mixed runs */
	bool huge, small;  /* throughput: hugepage run, 4 KiB run */
	enum px_cache_policy policy;       /* throughput policy */
	const char *traces;                /* trace folder, NULL if absent */
	size_t trace_limit;                /* requests per trace, 0 for all */
	size_t hr_objects[BENCH_MAX_LIST]; /* hit ratio: sizes in objects */
	int nhr_objects;  /* 0: 1%, 5% and 10% of the footprint */
	size_t mem_items; /* memory section: items */
	size_t mem_value; /* memory section: value bytes */
	const char *out_dir;
	bool run_throughput, run_hitratio, run_memory;
};

/* Zipf(theta) ranks over n keys, after Gray et al. (SIGMOD'94). */
struct zipf {
	uint64_t n;
	double theta, alpha, zetan, eta, half_pow;
};

void zipf_init(struct zipf *z, uint64_t n, double theta);
uint64_t zipf_next(const struct zipf *z, uint64_t *rng);
double rng_unit(uint64_t *rng);
uint64_t rng_next(uint64_t *rng);

/* The fixed-size key of index @i (BENCH_KEY_LEN bytes, no NUL). */
static inline void
bench_key(char *buf, uint64_t i)
{
	static const char hex[] = "0123456789abcdef";

	buf[0] = 'k';
	buf[1] = 'e';
	buf[2] = 'y';
	buf[3] = ':';
	for (int d = BENCH_KEY_LEN - 1; d >= 4; d--) {
		buf[d] = hex[i & 15];
		i >>= 4;
	}
}

static inline double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * The backing of the mapping that holds @addr, read from
 * /proc/self/smaps: "hugetlb-2M", "thp" (AnonHugePages > 0), "4K", with
 * the share of hugepage-backed bytes in *@huge_share.  The cache does not
 * export its region, so an item's address stands in for it.
 */
const char *
bench_backing_of(const void *addr, double *huge_share, size_t *resident);

/* The backing actually obtained by cache @c (looks up one of its items). */
const char *bench_cache_backing(struct px_cache *c, const void *key,
				size_t klen, double *huge_share);

int bench_throughput(const struct bench_opts *o);
int bench_hitratio(const struct bench_opts *o);
int bench_memory(const struct bench_opts *o);

#endif
