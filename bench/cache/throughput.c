// SPDX-License-Identifier: MIT
/*
 * Throughput: Zipf-distributed gets and sets on a cache holding every key
 * (no evictions), against the same keys in ConcurrencyKit's ck_ht as a
 * bare-lookup baseline measured in the same run, once on hugepages and
 * once on 4 KiB pages.
 *
 * Every thread replays its own pregenerated stream of operations (key
 * index, get or set), so the timed loops do no random-number work.  Keys
 * are fixed 16-byte strings; key indices are spread by a random
 * permutation so that popular keys are not neighbours in memory.  A
 * "get" on either side hashes the key, finds the entry and reads the
 * value's first byte; the cache also copies the value out, as a server's
 * get does.  ck_ht is single-writer, so it is measured with gets only.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <ck_ht.h>

#include "../../apps/common/log.h"
#include "bench_cache.h"

#define STREAM_LEN   (1u << 22) /* operations per thread stream */
#define STREAM_SET   (1u << 31) /* flag bit of a set in a stream entry */
#define CHECK_EVERY  1024       /* operations between clock reads */
#define BUDGET_SLACK 1.25       /* budget over the items' exact charge */
#define BUDGET_EXTRA (64u << 20)

/* Issue 5's targets: a get costs at most 1.5 bare lookups; hugepages
 * make gets at least 1.5x faster (meant for 10M keys). */
#define GET_COST_TARGET     1.5
#define HUGE_SPEEDUP_TARGET 1.5

enum loop_kind {
	LOOP_CACHE_MIXED,
	LOOP_CACHE_GET,
	LOOP_CK_GET,
};

/* One backing's shared state: the key set in a cache and in a ck_ht. */
struct tp_state {
	const struct bench_opts *o;
	size_t n;       /* keys */
	uint32_t *perm; /* rank -> key index */
	uint32_t *streams[BENCH_MAX_LIST];
	bool huge; /* this run's backing */
	struct px_cache *cache;
	ck_ht_t ht;
	bool ht_ready;
	char *ck_keys;   /* n * BENCH_KEY_LEN, the keys ck_ht points to */
	char *ck_values; /* n * value_size */
	size_t ck_keys_len, ck_values_len;
	char *value; /* the bytes every set stores */
};

struct tp_worker {
	pthread_t thread;
	struct tp_state *s;
	pthread_barrier_t *start;
	enum loop_kind kind;
	const uint32_t *stream;
	uint64_t ops;
	double secs;
	uint64_t sink; /* keeps the reads from being optimised away */
};

/* ck_ht's allocator, on the backing of the run being measured. */
static bool ck_huge;

static void *
ck_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, len, ck_huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	return p;
}

/* ck_ht frees with the size it allocated, so mmap/munmap fit it. */
static void *
ck_malloc_fn(size_t len)
{
	return ck_map(len);
}

static void
ck_free_fn(void *p, size_t len, bool defer)
{
	munmap(p, len);
}

static void *
ck_realloc_fn(void *p, size_t old, size_t len, bool defer)
{
	void *q = ck_map(len);

	if (q) {
		memcpy(q, p, old < len ? old : len);
		munmap(p, old);
	}
	return q;
}

static struct ck_malloc ck_alloc = {
    .malloc = ck_malloc_fn,
    .realloc = ck_realloc_fn,
    .free = ck_free_fn,
};

static uint64_t
loop_cache_mixed(struct tp_worker *w, size_t i)
{
	struct tp_state *s = w->s;
	size_t vlen = s->o->value_size;
	char key[BENCH_KEY_LEN], buf[256];
	uint32_t op = w->stream[i];

	bench_key(key, op & ~STREAM_SET);
	if (op & STREAM_SET)
		return px_cache_set(s->cache, key, sizeof(key), s->value, vlen,
				    0, 0) == 0;
	if (px_cache_get(s->cache, key, sizeof(key), buf, sizeof(buf), NULL))
		return 0;
	return (unsigned char)buf[0];
}

static uint64_t
loop_cache_get(struct tp_worker *w, size_t i)
{
	char key[BENCH_KEY_LEN], buf[256];

	bench_key(key, w->stream[i] & ~STREAM_SET);
	if (px_cache_get(w->s->cache, key, sizeof(key), buf, sizeof(buf), NULL))
		return 0;
	return (unsigned char)buf[0];
}

static uint64_t
loop_ck_get(struct tp_worker *w, size_t i)
{
	char key[BENCH_KEY_LEN];
	ck_ht_entry_t e;
	ck_ht_hash_t h;

	bench_key(key, w->stream[i] & ~STREAM_SET);
	ck_ht_hash(&h, &w->s->ht, key, sizeof(key));
	ck_ht_entry_key_set(&e, key, sizeof(key));
	if (!ck_ht_get_spmc(&w->s->ht, h, &e))
		return 0;
	return *(const unsigned char *)ck_ht_entry_value(&e);
}

/* Runs one kind of loop until the deadline; one specialised loop each so
 * that no indirect call sits in the timed path. */
#define TIMED_LOOP(fn)                                          \
	do {                                                    \
		for (;;) {                                      \
			for (int k = 0; k < CHECK_EVERY; k++) { \
				sink += fn(w, i);               \
				i = (i + 1) & (STREAM_LEN - 1); \
			}                                       \
			ops += CHECK_EVERY;                     \
			if (bench_now() >= deadline)            \
				break;                          \
		}                                               \
	} while (0)

static void *
tp_worker_main(void *arg)
{
	struct tp_worker *w = arg;
	uint64_t ops = 0, sink = 0;
	double t0, deadline;
	size_t i = 0;

	pthread_barrier_wait(w->start);
	t0 = bench_now();
	deadline = t0 + w->s->o->seconds;
	if (w->kind == LOOP_CACHE_MIXED)
		TIMED_LOOP(loop_cache_mixed);
	else if (w->kind == LOOP_CACHE_GET)
		TIMED_LOOP(loop_cache_get);
	else
		TIMED_LOOP(loop_ck_get);
	w->secs = bench_now() - t0;
	w->ops = ops;
	w->sink = sink;
	return NULL;
}

/* Mops/s of @nthreads threads running @kind, summed over threads. */
static double
tp_measure(struct tp_state *s, enum loop_kind kind, int nthreads)
{
	struct tp_worker w[BENCH_MAX_LIST];
	pthread_barrier_t start;
	double mops = 0;

	pthread_barrier_init(&start, NULL, (unsigned)nthreads);
	for (int t = 0; t < nthreads; t++) {
		w[t] = (struct tp_worker){.s = s,
					  .start = &start,
					  .kind = kind,
					  .stream = s->streams[t]};
		pthread_create(&w[t].thread, NULL, tp_worker_main, &w[t]);
	}
	for (int t = 0; t < nthreads; t++) {
		pthread_join(w[t].thread, NULL);
		mops += (double)w[t].ops / w[t].secs / 1e6;
	}
	pthread_barrier_destroy(&start);
	return mops;
}

static int
tp_make_streams(struct tp_state *s, int nstreams)
{
	const struct bench_opts *o = s->o;
	uint64_t rng = 0x5eed0001;
	struct zipf z;

	s->perm = malloc(s->n * sizeof(*s->perm));
	if (!s->perm)
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++)
		s->perm[i] = (uint32_t)i;
	for (size_t i = s->n - 1; i > 0; i--) {
		size_t j = rng_next(&rng) % (i + 1);
		uint32_t t = s->perm[i];

		s->perm[i] = s->perm[j];
		s->perm[j] = t;
	}
	zipf_init(&z, s->n, o->zipf_theta);
	for (int t = 0; t < nstreams; t++) {
		s->streams[t] = malloc(STREAM_LEN * sizeof(uint32_t));
		if (!s->streams[t])
			return -ENOMEM;
		for (size_t i = 0; i < STREAM_LEN; i++) {
			uint32_t k = s->perm[zipf_next(&z, &rng)];
			bool set = rng_next(&rng) % 100 >= (uint64_t)o->get_pct;

			s->streams[t][i] = k | (set ? STREAM_SET : 0);
		}
	}
	return 0;
}

static int
tp_load_cache(struct tp_state *s, double *msets)
{
	size_t isz = px_cache_item_size(BENCH_KEY_LEN, s->o->value_size);
	struct px_cache_opts co;
	char key[BENCH_KEY_LEN];
	double t0;
	int ret;

	px_cache_opts_init(&co);
	co.policy = s->o->policy;
	co.expected_item_bytes = isz;
	co.region.backing = s->huge ? PX_REGION_BEST : PX_REGION_4K;
	ret = px_cache_create(
	    &s->cache,
	    (size_t)((double)(s->n * isz) * BUDGET_SLACK) + BUDGET_EXTRA, &co);
	if (ret)
		return ret;
	t0 = bench_now();
	for (size_t i = 0; i < s->n; i++) {
		bench_key(key, s->perm[i]);
		ret = px_cache_set(s->cache, key, sizeof(key), s->value,
				   s->o->value_size, 0, 0);
		if (ret)
			return ret;
	}
	*msets = (double)s->n / (bench_now() - t0) / 1e6;
	return px_cache_items(s->cache) == s->n ? 0 : -ENOSPC;
}

static int
tp_load_ck(struct tp_state *s)
{
	size_t vsz = s->o->value_size;
	ck_ht_entry_t e;
	ck_ht_hash_t h;

	ck_huge = s->huge;
	s->ck_keys_len = s->n * BENCH_KEY_LEN;
	s->ck_values_len = s->n * vsz;
	s->ck_keys = ck_map(s->ck_keys_len);
	s->ck_values = ck_map(s->ck_values_len);
	if (!s->ck_keys || !s->ck_values)
		return -ENOMEM;
	s->ht_ready = ck_ht_init(&s->ht, CK_HT_MODE_BYTESTRING, NULL, &ck_alloc,
				 s->n * 2, 0x5eed);
	if (!s->ht_ready)
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++) {
		size_t k = s->perm[i];
		char *key = s->ck_keys + k * BENCH_KEY_LEN;

		bench_key(key, k);
		memcpy(s->ck_values + k * vsz, s->value, vsz);
		ck_ht_hash(&h, &s->ht, key, BENCH_KEY_LEN);
		ck_ht_entry_set(&e, h, key, BENCH_KEY_LEN,
				s->ck_values + k * vsz);
		if (!ck_ht_put_spmc(&s->ht, h, &e))
			return -ENOMEM;
	}
	return 0;
}

static void
tp_unload(struct tp_state *s)
{
	px_cache_destroy(s->cache);
	s->cache = NULL;
	if (s->ht_ready)
		ck_ht_destroy(&s->ht);
	s->ht_ready = false;
	if (s->ck_keys)
		munmap(s->ck_keys, s->ck_keys_len);
	if (s->ck_values)
		munmap(s->ck_values, s->ck_values_len);
	s->ck_keys = s->ck_values = NULL;
}

/* Results of one (keys, backing) run, per thread count. */
struct tp_result {
	const char *backing, *policy;
	double huge_share, msets;
	double mixed[BENCH_MAX_LIST], get[BENCH_MAX_LIST], ck[BENCH_MAX_LIST];
};

static void
tp_print_run(const struct tp_state *s, const struct tp_result *r)
{
	const struct bench_opts *o = s->o;

	printf("keys %zu, %s, pages asked %s, got %s (%.0f%% of resident "
	       "bytes in hugepages), load %.2f Msets/s\n",
	       s->n, r->policy, s->huge ? "huge" : "4K", r->backing,
	       r->huge_share * 100, r->msets);
	printf("  %-7s %12s %12s %12s %14s\n", "threads", "mixed Mops/s",
	       "get Mops/s", "ck_ht Mops/s", "get/ck_ht cost");
	for (int t = 0; t < o->nthreads; t++) {
		double cost = r->ck[t] / r->get[t];

		printf("  %-7d %12.2f %12.2f %12.2f %13.2fx  %s\n",
		       o->threads[t], r->mixed[t], r->get[t], r->ck[t], cost,
		       cost <= GET_COST_TARGET ? "meets target"
					       : "misses target");
	}
	fflush(stdout);
}

static double
max2(double a, double b)
{
	return a > b ? a : b;
}

/*
 * The best of --repeat measurements of each figure, taken in turns (cache
 * mixed, cache get, ck_ht get, again), so that a burst of load from other
 * processes on a shared machine hits all three alike and the fastest run
 * of each, the least disturbed, is the one reported.
 */
static void
tp_best_of(struct tp_state *s, int nthreads, struct tp_result *r, int t)
{
	r->mixed[t] = r->get[t] = r->ck[t] = 0;
	for (int i = 0; i < s->o->repeat; i++) {
		r->mixed[t] = max2(r->mixed[t],
				   tp_measure(s, LOOP_CACHE_MIXED, nthreads));
		r->get[t] =
		    max2(r->get[t], tp_measure(s, LOOP_CACHE_GET, nthreads));
		r->ck[t] = max2(r->ck[t], tp_measure(s, LOOP_CK_GET, nthreads));
	}
}

static int
tp_run(struct tp_state *s, struct tp_result *r)
{
	char key[BENCH_KEY_LEN];
	int ret;

	LOG_INFO("loading %zu keys (%s pages)", s->n, s->huge ? "huge" : "4K");
	ret = tp_load_cache(s, &r->msets);
	if (ret == 0)
		ret = tp_load_ck(s);
	if (ret) {
		LOG_ERROR("loading %zu keys: %s", s->n, strerror(-ret));
		tp_unload(s);
		return ret;
	}
	bench_key(key, s->perm[0]);
	r->policy = px_cache_policy_name(px_cache_policy(s->cache));
	r->backing =
	    bench_cache_backing(s->cache, key, sizeof(key), &r->huge_share);
	for (int t = 0; t < s->o->nthreads; t++)
		tp_best_of(s, s->o->threads[t], r, t);
	tp_print_run(s, r);
	tp_unload(s);
	return 0;
}

static void
tp_print_compare(const struct tp_state *s, const struct tp_result *huge,
		 const struct tp_result *small)
{
	const struct bench_opts *o = s->o;

	for (int t = 0; t < o->nthreads; t++) {
		double get = huge->get[t] / small->get[t];

		printf("  keys %zu, %d thread(s): hugepages (%s) vs 4K (%s): "
		       "get %.2fx, mixed %.2fx faster  %s\n",
		       s->n, o->threads[t], huge->backing, small->backing, get,
		       huge->mixed[t] / small->mixed[t],
		       get >= HUGE_SPEEDUP_TARGET ? "meets target"
						  : "misses target");
	}
}

static int
tp_keys(const struct bench_opts *o, size_t n)
{
	struct tp_result huge = {0}, small = {0};
	struct tp_state s = {.o = o, .n = n};
	int ret, maxt = 1;

	for (int t = 0; t < o->nthreads; t++)
		maxt = o->threads[t] > maxt ? o->threads[t] : maxt;
	s.value = malloc(o->value_size);
	ret = s.value ? tp_make_streams(&s, maxt) : -ENOMEM;
	if (s.value)
		memset(s.value, 'v', o->value_size);
	if (ret == 0 && o->huge) {
		s.huge = true;
		ret = tp_run(&s, &huge);
	}
	if (ret == 0 && o->small) {
		s.huge = false;
		ret = tp_run(&s, &small);
	}
	if (ret == 0 && o->huge && o->small)
		tp_print_compare(&s, &huge, &small);
	for (int t = 0; t < maxt; t++)
		free(s.streams[t]);
	free(s.perm);
	free(s.value);
	return ret;
}

int
bench_throughput(const struct bench_opts *o)
{
	int ret = 0;

	printf("\n== throughput: zipf %.2f, %d%% get / %d%% set, %zu B values, "
	       "best of %d runs of %.2f s per figure\n",
	       o->zipf_theta, o->get_pct, 100 - o->get_pct, o->value_size,
	       o->repeat, o->seconds);
	printf("   get/ck_ht cost = time of a cache get / time of a bare "
	       "ck_ht lookup (target <= 1.5)\n");
	for (int k = 0; k < o->nkeys && ret == 0; k++)
		ret = tp_keys(o, o->keys[k]);
	return ret;
}
