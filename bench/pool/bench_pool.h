/* SPDX-License-Identifier: MIT */
/*
 * Shared pieces of bench/pool: the r2d2-style blocking baseline (a mutex
 * and a condition variable around a stack of objects), latency sampling
 * and percentiles.
 */
#ifndef BENCH_POOL_H
#define BENCH_POOL_H

#include <pthread.h>
#include <stdint.h>
#include <stddef.h>

/* The classic blocking pool: get waits on a condvar, put signals it. */
struct bpool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	void **idle;
	int nidle;
	int size;
	int max;
	void *(*create)(void *arg);
	void *arg;
};

int bpool_init(struct bpool *p, int max, void *(*create)(void *arg), void *arg);
void bpool_deinit(struct bpool *p, void (*destroy)(void *obj));
void *bpool_get(struct bpool *p);
void bpool_put(struct bpool *p, void *obj);

/*
 * Latency histogram (ns): log-linear, 32 buckets per power of two, so a
 * percentile is within 3 % of the true value.  Adding is a few
 * instructions and never allocates; the benchmarks stamp every operation
 * and must not measure a growing sample array instead of the pools.
 */
#define LAT_SUB_BITS 5
#define LAT_BUCKETS  (64 << LAT_SUB_BITS)

struct lat {
	uint64_t n;
	uint64_t b[LAT_BUCKETS];
};

void lat_add(struct lat *l, uint64_t ns);
void lat_merge(struct lat *dst, const struct lat *src);
uint64_t lat_pct(const struct lat *l, double pct);
void lat_free(struct lat *l);

uint64_t now_ns(void); /* TSC-based; call tsc_calibrate() first */
uint64_t cpu_ns(void); /* CPU time of the process, every thread */
void tsc_calibrate(void);

/* Result of one configuration: two runs, see baseline_run(). */
struct result {
	double ops_per_s;       /* from the run without stamps */
	double timed_ops_per_s; /* from the run that stamps every acquire */
	double ops_per_cpu_s;   /* bare run: ops per CPU second, all threads */
	uint64_t p50, p99, p9999; /* acquire wait */
	uint64_t cycle9999;       /* p99.99 between two acquires of a client */
};

/*
 * Run the blocking baseline: @threads threads on a pool of @size for
 * @secs seconds of acquire+release with @work(obj) while held, twice:
 * once bare for the throughput, once with a TSC stamp around every
 * acquire for the latencies (a stamp costs about 16 ns in this VM, as
 * much as an acquire+release).
 */
void baseline_run(int size, int threads, double secs,
		  void *(*create)(void *arg), void (*destroy)(void *obj),
		  int (*work)(void *obj), void *arg, struct result *out);

#endif
