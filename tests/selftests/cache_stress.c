// SPDX-License-Identifier: MIT
/*
 * Concurrent stress of px_cache: 2-4 threads of mixed operations over one
 * small cache that evicts all the time.  Every value read, copied or by
 * reference, must be intact (values describe themselves), references
 * must stay unchanged until put, counters updated by incr and cas must not
 * lose updates, single-flight loads must call the loader once, and the
 * budget must hold.  Meant to run under SANITIZE=thread as well.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <patinox/cache.h>

#include "harness.h"

#define NKEYS   3000
#define VAL_MAX 2000
#define VAL_BIG 40000 /* 1 write in 64: big enough to evict windows */

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * A value that names its key and length in its first 15 bytes and fills
 * the rest from both.
 */
static size_t
make_value(char *buf, unsigned key, unsigned seed)
{
	size_t len = 16 + (seed * 2654435761u) % (VAL_MAX - 16), i;

	if ((seed >> 3) % 64 == 0) /* seed % 8 picks the operation */
		len = VAL_BIG;
	snprintf(buf, 16, "%05u:%09zu", key, len);
	for (i = 15; i < len; i++)
		buf[i] = (char)('a' + (key + i) % 26);
	return len;
}

static bool
value_ok(const char *v, size_t len, unsigned key)
{
	char head[16];
	size_t i;

	snprintf(head, sizeof(head), "%05u:%09zu", key, len);
	if (len < 16 || memcmp(v, head, 15))
		return false;
	for (i = 15; i < len; i++)
		if (v[i] != (char)('a' + (key + i) % 26))
			return false;
	return true;
}

struct stress {
	struct px_cache *c;
	double until;
	_Atomic unsigned long ops, bad;
	unsigned id;
};

static void
key_of(char *key, unsigned k)
{
	snprintf(key, 16, "key%u", k);
}

static void
do_get(struct stress *s, unsigned k, char *buf)
{
	struct px_cache_info info;
	char key[16];

	key_of(key, k);
	if (px_cache_get(s->c, key, strlen(key), buf, VAL_BIG, &info) == 0 &&
	    !value_ok(buf, info.vlen, k))
		s->bad++;
}

/* A get that sets a TTL: moves an item stored without one (the values,
 * 16 to 2000 bytes, put items either side of the 127-unit block). */
static void
do_gat(struct stress *s, unsigned k, char *buf)
{
	struct px_cache_info info;
	char key[16];

	key_of(key, k);
	if (px_cache_gat(s->c, key, strlen(key), 100, buf, VAL_BIG, &info) ==
		0 &&
	    !value_ok(buf, info.vlen, k))
		s->bad++;
}

static void
do_ref(struct stress *s, unsigned k, struct px_cache_ref *held)
{
	char key[16];

	if (held->priv) {
		snprintf(key, sizeof(key), "%.*s", (int)held->klen,
			 (const char *)held->key);
		if (!value_ok(held->value, held->vlen, (unsigned)atoi(key + 3)))
			s->bad++;
		px_cache_ref_put(s->c, held);
		return;
	}
	key_of(key, k);
	if (px_cache_get_ref(s->c, key, strlen(key), held) == 0 &&
	    !value_ok(held->value, held->vlen, k))
		s->bad++;
}

static void
do_write(struct stress *s, unsigned k, unsigned r, char *buf)
{
	char key[16];
	size_t len = make_value(buf, k, r);
	int err;

	key_of(key, k);
	switch (r % 8) {
	case 0:
		px_cache_delete(s->c, key, strlen(key));
		return;
	case 1:
		px_cache_touch(s->c, key, strlen(key), 100);
		return;
	case 2:
		err = px_cache_store(s->c, PX_CACHE_ADD, key, strlen(key), buf,
				     len, 0, 0, 0, NULL);
		break;
	default:
		err = px_cache_set(s->c, key, strlen(key), buf, len, 0, 0);
	}
	if (err && err != -EEXIST)
		s->bad++;
}

static void *
mixed_worker(void *arg)
{
	struct stress *s = arg;
	struct px_cache_ref held = {0};
	unsigned seed = s->id * 7919 + 1;
	char *buf = malloc(VAL_BIG);

	while (now_s() < s->until) {
		unsigned r = (unsigned)rand_r(&seed);
		unsigned k = (unsigned)rand_r(&seed) % NKEYS;

		if (r % 100 < 55)
			do_get(s, k, buf);
		else if (r % 100 < 60)
			do_gat(s, k, buf);
		else if (r % 100 < 70)
			do_ref(s, k, &held);
		else if (r % 100 < 99)
			do_write(s, k, r / 100, buf);
		else
			px_cache_maintain(s->c, 64);
		s->ops++;
	}
	px_cache_ref_put(s->c, &held);
	free(buf);
	return NULL;
}

static void
run_threads(int n, void *(*fn)(void *), struct stress *s)
{
	pthread_t t[4];
	int i;

	for (i = 0; i < n; i++)
		pthread_create(&t[i], NULL, fn, &s[i]);
	for (i = 0; i < n; i++)
		pthread_join(t[i], NULL);
}

static void
mixed(struct __test_meta *_metadata, enum px_cache_policy pol, int n)
{
	struct px_cache_opts o;
	struct px_cache_memory m;
	struct stress s[4];
	uint64_t vals[PX_CACHE_METRIC_COUNT];
	unsigned long ops = 0;
	size_t limit = 2u << 20;
	int i;

	px_cache_opts_init(&o);
	o.policy = pol;
	ASSERT_EQ(px_cache_create(&s[0].c, limit, &o), 0);
	for (i = 0; i < n; i++) {
		s[i] = (struct stress){.c = s[0].c, .until = now_s() + 1.0};
		s[i].id = (unsigned)i;
	}
	run_threads(n, mixed_worker, s);
	for (i = 0; i < n; i++) {
		EXPECT_EQ(s[i].bad, 0);
		ops += s[i].ops;
	}
	px_cache_memory(s[0].c, &m);
	EXPECT_LE(m.region_bytes, limit);
	EXPECT_EQ(m.used_bytes + m.limbo_bytes + m.free_bytes, m.arena_bytes);
	px_cache_metrics(s[0].c, vals);
	TH_LOG("%s, %d threads: %lu ops, %zu items, %llu evictions, "
	       "%llu windows, %llu grace periods",
	       px_cache_policy_name(pol), n, ops, m.items,
	       (unsigned long long)vals[PX_CACHE_M_evictions],
	       (unsigned long long)vals[PX_CACHE_M_evict_windows],
	       (unsigned long long)vals[PX_CACHE_M_grace_periods]);
	EXPECT_GT(vals[PX_CACHE_M_evict_windows], 0);
	EXPECT_GT(ops, 1000);
	px_cache_destroy(s[0].c);
}

TEST(cache_stress_mixed_lru)
{
	mixed(_metadata, PX_CACHE_POLICY_LRU, 4);
}

TEST(cache_stress_mixed_sieve)
{
	mixed(_metadata, PX_CACHE_POLICY_SIEVE, 3);
}

TEST(cache_stress_mixed_s3fifo)
{
	mixed(_metadata, PX_CACHE_POLICY_S3FIFO, 2);
}

/* ---- No lost updates -------------------------------------------------- */

#define COUNTERS 4
#define INCRS    2000

static void *
incr_worker(void *arg)
{
	struct stress *s = arg;
	char key[16];
	int i;

	for (i = 0; i < INCRS * COUNTERS; i++) {
		snprintf(key, sizeof(key), "n%d", i % COUNTERS);
		if (px_cache_incr(s->c, key, strlen(key), 1, NULL, NULL))
			s->bad++;
	}
	return NULL;
}

/* Read-modify-write with gets + cas, retrying on EXISTS. */
static void *
cas_worker(void *arg)
{
	struct stress *s = arg;
	struct px_cache_info info;
	char buf[32];
	int i, err;

	for (i = 0; i < INCRS; i++) {
		do {
			unsigned long v;

			if (px_cache_get(s->c, "cas", 3, buf, 31, &info)) {
				s->bad++;
				return NULL;
			}
			buf[info.vlen] = 0;
			v = strtoul(buf, NULL, 10) + 1;
			snprintf(buf, sizeof(buf), "%lu", v);
			err = px_cache_store(s->c, PX_CACHE_CAS, "cas", 3, buf,
					     strlen(buf), 0, 0, info.cas, NULL);
		} while (err == -EEXIST);
		if (err)
			s->bad++;
	}
	return NULL;
}

TEST(cache_stress_incr_and_cas_lose_nothing)
{
	struct stress s[4];
	struct px_cache *c;
	char key[16], buf[32];
	int i;

	ASSERT_EQ(px_cache_create(&c, 4u << 20, NULL), 0);
	for (i = 0; i < COUNTERS; i++) {
		snprintf(key, sizeof(key), "n%d", i);
		ASSERT_EQ(px_cache_set(c, key, strlen(key), "0", 1, 0, 0), 0);
	}
	ASSERT_EQ(px_cache_set(c, "cas", 3, "0", 1, 0, 0), 0);
	for (i = 0; i < 4; i++)
		s[i] = (struct stress){.c = c};
	run_threads(4, incr_worker, s);
	run_threads(2, cas_worker, s);
	for (i = 0; i < 4; i++)
		EXPECT_EQ(s[i].bad, 0);
	for (i = 0; i < COUNTERS; i++) {
		struct px_cache_info info;

		snprintf(key, sizeof(key), "n%d", i);
		ASSERT_EQ(px_cache_get(c, key, strlen(key), buf, 31, &info), 0);
		buf[info.vlen] = 0;
		EXPECT_EQ(strtoul(buf, NULL, 10), 4 * INCRS);
	}
	ASSERT_EQ(px_cache_get(c, "cas", 3, buf, 31, NULL), 0);
	EXPECT_EQ(strtoul(buf, NULL, 10), 2 * INCRS);
	px_cache_destroy(c);
}

/* ---- Single flight ---------------------------------------------------- */

static _Atomic int loader_calls;

static int
slow_loader(void *arg, const void *key, size_t klen, struct px_cache_value *out)
{
	loader_calls++;
	usleep(100 * 1000); /* long enough for the others to arrive */
	out->data = "value";
	out->len = 5;
	return 0;
}

static void *
load_worker(void *arg)
{
	struct stress *s = arg;
	struct px_cache_ref ref;

	if (px_cache_get_or_load(s->c, "lazy", 4, slow_loader, NULL, &ref)) {
		s->bad++;
		return NULL;
	}
	if (ref.vlen != 5 || memcmp(ref.value, "value", 5))
		s->bad++;
	px_cache_ref_put(s->c, &ref);
	return NULL;
}

TEST(cache_stress_single_flight_loads_once)
{
	struct stress s[4];
	struct px_cache *c;
	uint64_t vals[PX_CACHE_METRIC_COUNT];
	int i;

	ASSERT_EQ(px_cache_create(&c, 4u << 20, NULL), 0);
	for (i = 0; i < 4; i++)
		s[i] = (struct stress){.c = c};
	run_threads(4, load_worker, s);
	for (i = 0; i < 4; i++)
		EXPECT_EQ(s[i].bad, 0);
	px_cache_metrics(c, vals);
	/* Late arrivals may hit instead of waiting; nobody loads twice. */
	EXPECT_EQ(loader_calls, 1);
	EXPECT_EQ(vals[PX_CACHE_M_loads], 1);
	px_cache_destroy(c);
}

TEST_HARNESS_MAIN
