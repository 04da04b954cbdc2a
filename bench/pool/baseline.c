// SPDX-License-Identifier: MIT
/*
 * The r2d2-style baseline for bench/pool: a blocking pool guarded by one
 * mutex, waiters parked on one condition variable, driven by one thread
 * per client.  Written here only as the peer the io_uring pool is
 * measured against in the same run.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_pool.h"

static uint64_t
clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t
mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

uint64_t
cpu_ns(void)
{
	return clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

/*
 * Latency stamps come from the TSC, scaled once against CLOCK_MONOTONIC:
 * a clock_gettime() costs about 45 ns in this VM, more than a whole
 * acquire+release, and would drown what both pools are measured for.
 */
static double tsc_ns_per_tick;

void
tsc_calibrate(void)
{
	uint64_t t0 = mono_ns(), c0 = __builtin_ia32_rdtsc(), t1, c1;

	usleep(50000);
	t1 = mono_ns();
	c1 = __builtin_ia32_rdtsc();
	tsc_ns_per_tick = (double)(t1 - t0) / (double)(c1 - c0);
}

uint64_t
now_ns(void)
{
	return (uint64_t)((double)__builtin_ia32_rdtsc() * tsc_ns_per_tick);
}

int
bpool_init(struct bpool *p, int max, void *(*create)(void *arg), void *arg)
{
	memset(p, 0, sizeof(*p));
	p->idle = calloc((size_t)max, sizeof(*p->idle));
	if (!p->idle)
		return -1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->max = max;
	p->create = create;
	p->arg = arg;
	return 0;
}

void
bpool_deinit(struct bpool *p, void (*destroy)(void *obj))
{
	for (int i = 0; i < p->nidle; i++)
		destroy(p->idle[i]);
	free(p->idle);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
}

void *
bpool_get(struct bpool *p)
{
	void *obj = NULL;

	pthread_mutex_lock(&p->mu);
	while (p->nidle == 0 && p->size >= p->max)
		pthread_cond_wait(&p->cv, &p->mu);
	if (p->nidle > 0) {
		obj = p->idle[--p->nidle];
		pthread_mutex_unlock(&p->mu);
		return obj;
	}
	p->size++;
	pthread_mutex_unlock(&p->mu);
	/* Create outside the lock, as r2d2 does. */
	return p->create(p->arg);
}

void
bpool_put(struct bpool *p, void *obj)
{
	pthread_mutex_lock(&p->mu);
	p->idle[p->nidle++] = obj;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static unsigned int
lat_index(uint64_t v)
{
	unsigned int shift;

	if (v < (1u << LAT_SUB_BITS))
		return (unsigned int)v;
	shift = 63u - (unsigned int)__builtin_clzll(v) - LAT_SUB_BITS;
	return ((shift + 1) << LAT_SUB_BITS) +
	       (unsigned int)((v >> shift) & ((1u << LAT_SUB_BITS) - 1));
}

/* The smallest value of bucket @i. */
static uint64_t
lat_value(unsigned int i)
{
	unsigned int shift;

	if (i < (1u << LAT_SUB_BITS))
		return i;
	shift = (i >> LAT_SUB_BITS) - 1;
	return ((uint64_t)(1u << LAT_SUB_BITS) +
		(i & ((1u << LAT_SUB_BITS) - 1)))
	       << shift;
}

void
lat_add(struct lat *l, uint64_t ns)
{
	l->b[lat_index(ns)]++;
	l->n++;
}

void
lat_merge(struct lat *dst, const struct lat *src)
{
	for (unsigned int i = 0; i < LAT_BUCKETS; i++)
		dst->b[i] += src->b[i];
	dst->n += src->n;
}

uint64_t
lat_pct(const struct lat *l, double pct)
{
	uint64_t want, seen = 0;

	if (!l->n)
		return 0;
	want = (uint64_t)(pct / 100.0 * (double)l->n);
	if (want >= l->n)
		want = l->n - 1;
	for (unsigned int i = 0; i < LAT_BUCKETS; i++) {
		seen += l->b[i];
		if (seen > want)
			return lat_value(i);
	}
	return lat_value(LAT_BUCKETS - 1);
}

void
lat_free(struct lat *l)
{
	memset(l, 0, sizeof(*l));
}

struct bthread {
	pthread_t t;
	struct bpool *p;
	int (*work)(void *obj);
	volatile int *stop;
	bool timed;
	uint64_t ops;
	struct lat lat;
	struct lat cycle;
};

/* The throughput run: the same loop without stamps. */
static void
bthread_bare(struct bthread *b)
{
	while (!__atomic_load_n(b->stop, __ATOMIC_RELAXED)) {
		void *obj = bpool_get(b->p);

		if (b->work)
			b->work(obj);
		bpool_put(b->p, obj);
		b->ops++;
	}
}

static void *
bthread_main(void *arg)
{
	struct bthread *b = arg;
	uint64_t last = 0;

	if (!b->timed) {
		bthread_bare(b);
		return NULL;
	}
	while (!__atomic_load_n(b->stop, __ATOMIC_RELAXED)) {
		uint64_t t0 = now_ns(), t1;
		void *obj = bpool_get(b->p);

		t1 = now_ns();
		lat_add(&b->lat, t1 - t0);
		if (last)
			lat_add(&b->cycle, t1 - last);
		last = t1;
		if (b->work)
			b->work(obj);
		bpool_put(b->p, obj);
		b->ops++;
	}
	return NULL;
}

/* One run; with @timed, every acquire is stamped into @out's latencies. */
static double
one_run(int size, int threads, double secs, void *(*create)(void *arg),
	void (*destroy)(void *obj), int (*work)(void *obj), void *arg,
	bool timed, struct result *out)
{
	struct bthread *b = calloc((size_t)threads, sizeof(*b));
	struct lat *all = calloc(2, sizeof(*all)), *cycle = all + 1;
	struct bpool p;
	volatile int stop = 0;
	uint64_t ops = 0, t0, t1, c0, c1;

	bpool_init(&p, size, create, arg);
	c0 = cpu_ns();
	t0 = now_ns();
	for (int i = 0; i < threads; i++) {
		b[i].p = &p;
		b[i].work = work;
		b[i].stop = &stop;
		b[i].timed = timed;
		pthread_create(&b[i].t, NULL, bthread_main, &b[i]);
	}
	while (now_ns() - t0 < (uint64_t)(secs * 1e9))
		usleep(10000);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	t1 = now_ns();
	c1 = cpu_ns();
	for (int i = 0; i < threads; i++) {
		pthread_join(b[i].t, NULL);
		ops += b[i].ops;
		lat_merge(all, &b[i].lat);
		lat_merge(cycle, &b[i].cycle);
	}
	if (timed) {
		out->p50 = lat_pct(all, 50);
		out->p99 = lat_pct(all, 99);
		out->p9999 = lat_pct(all, 99.99);
		out->cycle9999 = lat_pct(cycle, 99.99);
	}
	if (!timed)
		out->ops_per_cpu_s = (double)ops / ((double)(c1 - c0) / 1e9);
	free(all);
	bpool_deinit(&p, destroy);
	free(b);
	return (double)ops / ((double)(t1 - t0) / 1e9);
}

void
baseline_run(int size, int threads, double secs, void *(*create)(void *arg),
	     void (*destroy)(void *obj), int (*work)(void *obj), void *arg,
	     struct result *out)
{
	out->ops_per_s = one_run(size, threads, secs, create, destroy, work,
				 arg, false, out);
	out->timed_ops_per_s =
	    one_run(size, threads, secs, create, destroy, work, arg, true, out);
}
