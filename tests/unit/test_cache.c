// SPDX-License-Identifier: MIT
/*
 * Unit tests of px_cache: every operation's memcached semantics with an
 * injected clock, eviction order of each policy, the exact budget, the
 * listener's causes, references, single-flight loads, counters, and a
 * randomized model test that checks every result and the memory
 * accounting after each operation.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <xxhash.h>
#include <urcu/urcu-memb.h>

#include <patinox/cache.h>

#include "../../src/cache/cache_int.h"

#define MIB        (1u << 20)
#define START_TIME 1700000000

static int64_t fake_now = START_TIME;

static int64_t
clock_now(void *arg)
{
	return fake_now;
}

static const struct px_cache_hooks hooks = {.now = clock_now};

/* Every listener event, in order. */
struct event {
	char key[64];
	enum px_cache_cause cause;
};
static struct event events[4096];
static unsigned nevents;

static void
record(void *arg, const void *key, size_t klen, enum px_cache_cause cause)
{
	struct event *e = &events[nevents++ % 4096];

	snprintf(e->key, sizeof(e->key), "%.*s", (int)klen, (const char *)key);
	e->cause = cause;
}

/* How many recorded events name @key with @cause. */
static unsigned
count_events(const char *key, enum px_cache_cause cause)
{
	unsigned i, n = 0;

	for (i = 0; i < nevents && i < 4096; i++)
		n += !strcmp(events[i].key, key) && events[i].cause == cause;
	return n;
}

static struct px_cache *
make(size_t limit, enum px_cache_policy pol, size_t max_items)
{
	struct px_cache_opts o;
	struct px_cache *c;

	px_cache_opts_init(&o);
	o.policy = pol;
	o.max_items = max_items;
	o.hooks = &hooks;
	o.listener = record;
	o.region.backing = PX_REGION_4K;
	fake_now = START_TIME;
	nevents = 0;
	assert_int_equal(px_cache_create(&c, limit, &o), 0);
	return c;
}

static int
set_s(struct px_cache *c, const char *k, const char *v, int64_t ttl)
{
	return px_cache_set(c, k, strlen(k), v, strlen(v), 0, ttl);
}

static int
store_s(struct px_cache *c, enum px_cache_mode m, const char *k, const char *v,
	uint64_t cas)
{
	return px_cache_store(c, m, k, strlen(k), v, strlen(v), 7, 0, cas,
			      NULL);
}

/* The value of @k as a string, or NULL on a miss. */
static const char *
get_s(struct px_cache *c, const char *k)
{
	static char buf[4096];
	struct px_cache_info info;
	int err = px_cache_get(c, k, strlen(k), buf, sizeof(buf) - 1, &info);

	if (err)
		return NULL;
	buf[info.vlen] = 0;
	return buf;
}

static uint64_t
metric(struct px_cache *c, enum px_cache_metric m)
{
	uint64_t v[PX_CACHE_METRIC_COUNT];

	px_cache_metrics(c, v);
	return v[m];
}

/* Once removed items are reclaimed, the arena is as it was @before. */
static void
assert_memory_back(struct px_cache *c, const struct px_cache_memory *before)
{
	struct px_cache_memory m;

	px_cache_maintain(c, 0);
	px_cache_memory(c, &m);
	assert_int_equal(m.used_bytes, before->used_bytes);
	assert_int_equal(m.free_bytes, before->free_bytes);
}

/* ---- Basic operations ------------------------------------------------ */

static void
test_cache_set_get_roundtrip(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_DEFAULT, 0);
	struct px_cache_info info;
	uint64_t cas1, cas2;
	char buf[16];

	assert_int_equal(px_cache_store(c, PX_CACHE_SET, "k", 1, "hello", 5,
					0xdeadbeef, 0, 0, &cas1),
			 0);
	assert_int_equal(px_cache_get(c, "k", 1, buf, sizeof(buf), &info), 0);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(info.vlen, 5);
	assert_int_equal(info.flags, 0xdeadbeef);
	assert_int_equal(info.cas, cas1);
	assert_int_equal(info.exptime, 0);
	assert_int_equal(
	    px_cache_store(c, PX_CACHE_SET, "k", 1, "", 0, 0, 0, 0, &cas2), 0);
	assert_true(cas2 > cas1);
	assert_int_equal(px_cache_get(c, "k", 1, NULL, 0, &info), 0);
	assert_int_equal(info.vlen, 0);
	assert_int_equal(px_cache_get(c, "zz", 2, buf, 16, NULL), -ENOENT);
	assert_int_equal(px_cache_items(c), 1);
	assert_int_equal(metric(c, PX_CACHE_M_get_hits), 2);
	assert_int_equal(metric(c, PX_CACHE_M_get_misses), 1);
	px_cache_destroy(c);
}

static void
test_cache_get_small_buffer_is_enospc(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_DEFAULT, 0);
	struct px_cache_info info;
	char buf[4] = "xxx";

	assert_int_equal(set_s(c, "k", "0123456789", 0), 0);
	assert_int_equal(px_cache_get(c, "k", 1, buf, 4, &info), -ENOSPC);
	assert_int_equal(info.vlen, 10);
	assert_string_equal(buf, "xxx");
	px_cache_destroy(c);
}

static void
test_cache_bad_keys_are_einval(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_DEFAULT, 0);
	char key[CONFIG_PX_CACHE_KEY_MAX + 1];

	memset(key, 'a', sizeof(key));
	assert_int_equal(px_cache_set(c, key, 0, "v", 1, 0, 0), -EINVAL);
	assert_int_equal(px_cache_set(c, key, sizeof(key), "v", 1, 0, 0),
			 -EINVAL);
	assert_int_equal(px_cache_set(c, key, sizeof(key) - 1, "v", 1, 0, 0),
			 0);
	assert_int_equal(px_cache_delete(c, key, 0), -EINVAL);
	assert_int_equal(px_cache_get(c, key, sizeof(key), NULL, 0, NULL),
			 -EINVAL);
	px_cache_destroy(c);
}

static void
test_cache_add_and_replace(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_DEFAULT, 0);

	assert_int_equal(store_s(c, PX_CACHE_REPLACE, "k", "a", 0), -ENOENT);
	assert_int_equal(store_s(c, PX_CACHE_ADD, "k", "a", 0), 0);
	assert_int_equal(store_s(c, PX_CACHE_ADD, "k", "b", 0), -EEXIST);
	assert_string_equal(get_s(c, "k"), "a");
	assert_int_equal(store_s(c, PX_CACHE_REPLACE, "k", "c", 0), 0);
	assert_string_equal(get_s(c, "k"), "c");
	/* add succeeds over an expired item */
	assert_int_equal(set_s(c, "e", "old", 5), 0);
	fake_now += 5;
	assert_int_equal(store_s(c, PX_CACHE_ADD, "e", "new", 0), 0);
	assert_string_equal(get_s(c, "e"), "new");
	assert_int_equal(metric(c, PX_CACHE_M_store_rejects), 2);
	px_cache_destroy(c);
}

static void
test_cache_cas_mismatch_and_missing(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_DEFAULT, 0);
	struct px_cache_info info;
	uint64_t cas, cas2;

	assert_int_equal(store_s(c, PX_CACHE_CAS, "k", "a", 1), -ENOENT);
	assert_int_equal(
	    px_cache_store(c, PX_CACHE_SET, "k", 1, "a", 1, 0, 0, 0, &cas), 0);
	assert_int_equal(store_s(c, PX_CACHE_CAS, "k", "b", cas + 1), -EEXIST);
	assert_int_equal(
	    px_cache_store(c, PX_CACHE_CAS, "k", 1, "c", 1, 9, 0, cas, &cas2),
	    0);
	assert_true(cas2 > cas);
	assert_int_equal(px_cache_get(c, "k", 1, NULL, 0, &info), -ENOSPC);
	assert_int_equal(info.cas, cas2);
	assert_int_equal(info.flags, 9);
	/* the old cas no longer matches */
	assert_int_equal(store_s(c, PX_CACHE_CAS, "k", "d", cas), -EEXIST);
	/* touch keeps the cas */
	assert_int_equal(px_cache_touch(c, "k", 1, 100), 0);
	assert_int_equal(store_s(c, PX_CACHE_CAS, "k", "e", cas2), 0);
	px_cache_destroy(c);
}

static void
test_cache_append_prepend(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_DEFAULT, 0);
	struct px_cache_info info;

	assert_int_equal(store_s(c, PX_CACHE_APPEND, "k", "x", 0), -ENOENT);
	assert_int_equal(store_s(c, PX_CACHE_PREPEND, "k", "x", 0), -ENOENT);
	assert_int_equal(px_cache_get(c, "k", 1, NULL, 0, NULL), -ENOENT);
	assert_int_equal(px_cache_set(c, "k", 1, "mid", 3, 42, 100), 0);
	assert_int_equal(px_cache_store(c, PX_CACHE_APPEND, "k", 1, "_end", 4,
					1, 0, 0, NULL),
			 0);
	assert_int_equal(px_cache_store(c, PX_CACHE_PREPEND, "k", 1, "beg_", 4,
					2, -1, 0, NULL),
			 0);
	assert_string_equal(get_s(c, "k"), "beg_mid_end");
	/* append and prepend keep the flags and the TTL */
	assert_int_equal(px_cache_get(c, "k", 1, NULL, 0, &info), -ENOSPC);
	assert_int_equal(info.flags, 42);
	assert_int_equal(info.exptime, START_TIME + 100);
	assert_int_equal(store_s(c, PX_CACHE_APPEND, "k", "", 0), 0);
	assert_string_equal(get_s(c, "k"), "beg_mid_end");
	px_cache_destroy(c);
}

/* REPLACE, APPEND and PREPEND compare a nonzero cas (meta set's C). */
static void
test_cache_replace_append_compare_cas(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_DEFAULT, 0);
	uint64_t cas, cas2;

	assert_int_equal(store_s(c, PX_CACHE_APPEND, "k", "x", 5), -ENOENT);
	assert_int_equal(
	    px_cache_store(c, PX_CACHE_SET, "k", 1, "a", 1, 0, 0, 0, &cas), 0);
	assert_int_equal(store_s(c, PX_CACHE_APPEND, "k", "x", cas + 1),
			 -EEXIST);
	assert_int_equal(store_s(c, PX_CACHE_PREPEND, "k", "x", cas + 1),
			 -EEXIST);
	assert_int_equal(store_s(c, PX_CACHE_REPLACE, "k", "x", cas + 1),
			 -EEXIST);
	assert_string_equal(get_s(c, "k"), "a");
	assert_int_equal(px_cache_store(c, PX_CACHE_APPEND, "k", 1, "b", 1, 0,
					0, cas, &cas2),
			 0);
	assert_string_equal(get_s(c, "k"), "ab");
	/* the old cas is stale now; 0 compares nothing */
	assert_int_equal(store_s(c, PX_CACHE_PREPEND, "k", "x", cas), -EEXIST);
	assert_int_equal(store_s(c, PX_CACHE_PREPEND, "k", "_", 0), 0);
	assert_int_equal(store_s(c, PX_CACHE_REPLACE, "k", "z", 0), 0);
	assert_string_equal(get_s(c, "k"), "z");
	px_cache_destroy(c);
}

/*
 * An item over half the budget cannot sit next to its old version: a
 * store lets it go first (APPEND and PREPEND keep a copy of its bytes)
 * rather than fail with -ENOMEM (no reference pins anything) and lose the
 * old item anyway.
 */
static unsigned
gone(const char *key)
{
	return count_events(key, PX_CACHE_CAUSE_REPLACED) +
	       count_events(key, PX_CACHE_CAUSE_EVICTED);
}

static void
test_cache_store_over_half_budget_replaces_itself(void **state)
{
	size_t vlen = 800 * 1024;
	char *v = calloc(1, vlen + 2);
	struct px_cache *c =
	    make(PX_CACHE_LIMIT_MIN, PX_CACHE_POLICY_DEFAULT, 0);
	struct px_cache_info info;
	uint64_t cas;

	assert_non_null(v);
	assert_int_equal(px_cache_set(c, "k", 1, v, vlen, 0, 0), 0);
	v[0] = 'a';
	assert_int_equal(px_cache_set(c, "k", 1, v, vlen, 0, 0), 0);
	assert_int_equal(px_cache_get(c, "k", 1, NULL, 0, &info), -ENOSPC);
	assert_int_equal(info.vlen, vlen);
	/* The old version is reported once (evicted for room or replaced). */
	assert_int_equal(gone("k"), 1);
	v[0] = 'b';
	assert_int_equal(
	    px_cache_store(c, PX_CACHE_REPLACE, "k", 1, v, vlen, 0, 0, 0, &cas),
	    0);
	v[0] = 'c';
	assert_int_equal(
	    px_cache_store(c, PX_CACHE_CAS, "k", 1, v, vlen, 0, 0, cas, &cas),
	    0);
	assert_int_equal(px_cache_get(c, "k", 1, v, vlen, &info), 0);
	assert_int_equal(v[0], 'c');
	assert_int_equal(info.cas, cas);
	assert_int_equal(gone("k"), 3);
	/* APPEND and PREPEND keep the old bytes through a private copy. */
	assert_int_equal(
	    px_cache_store(c, PX_CACHE_APPEND, "k", 1, "z", 1, 0, 0, 0, NULL),
	    0);
	assert_int_equal(
	    px_cache_store(c, PX_CACHE_PREPEND, "k", 1, "p", 1, 0, 0, 0, NULL),
	    0);
	assert_int_equal(px_cache_get(c, "k", 1, v, vlen + 2, &info), 0);
	assert_int_equal(info.vlen, vlen + 2);
	assert_int_equal(v[0], 'p');
	assert_int_equal(v[1], 'c');
	assert_int_equal(v[vlen + 1], 'z');
	assert_int_equal(gone("k"), 5);
	assert_int_equal(px_cache_delete(c, "k", 1), 0);
	px_cache_destroy(c);
	free(v);
}

/* A max_items near SIZE_MAX (no real limit) must not hang creation. */
static void
test_cache_huge_max_items_creates(void **state)
{
	enum px_cache_policy pols[] = {
	    PX_CACHE_POLICY_LRU, PX_CACHE_POLICY_SIEVE, PX_CACHE_POLICY_S3FIFO};
	size_t limits[] = {SIZE_MAX, SIZE_MAX / 2 + 2};
	unsigned i, j;

	for (i = 0; i < 3; i++) {
		for (j = 0; j < 2; j++) {
			struct px_cache *c =
			    make(PX_CACHE_LIMIT_MIN, pols[i], limits[j]);

			assert_int_equal(set_s(c, "k", "v", 0), 0);
			assert_string_equal(get_s(c, "k"), "v");
			px_cache_destroy(c);
		}
	}
}

static void
test_cache_incr_decr(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_DEFAULT, 0);
	struct px_cache_info info;
	uint64_t v, cas;

	assert_int_equal(px_cache_incr(c, "n", 1, 1, &v, NULL), -ENOENT);
	assert_int_equal(px_cache_decr(c, "n", 1, 1, &v, NULL), -ENOENT);
	assert_int_equal(px_cache_set(c, "n", 1, "10", 2, 5, 0), 0);
	assert_int_equal(px_cache_incr(c, "n", 1, 5, &v, &cas), 0);
	assert_int_equal(v, 15);
	assert_string_equal(get_s(c, "n"), "15");
	assert_int_equal(px_cache_get(c, "n", 1, NULL, 0, &info), -ENOSPC);
	assert_int_equal(info.cas, cas);
	assert_int_equal(info.flags, 5);
	/* decr stops at zero and shortens the value */
	assert_int_equal(px_cache_decr(c, "n", 1, 100, &v, NULL), 0);
	assert_int_equal(v, 0);
	assert_string_equal(get_s(c, "n"), "0");
	/* incr wraps modulo 2^64 */
	assert_int_equal(set_s(c, "m", "18446744073709551615", 0), 0);
	assert_int_equal(px_cache_incr(c, "m", 1, 2, &v, NULL), 0);
	assert_int_equal(v, 1);
	/* trailing spaces (memcached pads) are accepted */
	assert_int_equal(set_s(c, "p", "7  ", 0), 0);
	assert_int_equal(px_cache_incr(c, "p", 1, 1, &v, NULL), 0);
	assert_int_equal(v, 8);
	/* non-numeric values */
	assert_int_equal(set_s(c, "x", "abc", 0), 0);
	assert_int_equal(px_cache_incr(c, "x", 1, 1, &v, NULL), -EINVAL);
	assert_int_equal(set_s(c, "x", "", 0), 0);
	assert_int_equal(px_cache_incr(c, "x", 1, 1, &v, NULL), -EINVAL);
	assert_int_equal(set_s(c, "x", "-1", 0), 0);
	assert_int_equal(px_cache_decr(c, "x", 1, 1, &v, NULL), -EINVAL);
	assert_int_equal(set_s(c, "x", "18446744073709551616", 0), 0);
	assert_int_equal(px_cache_incr(c, "x", 1, 1, &v, NULL), -EINVAL);
	assert_int_equal(set_s(c, "x", "12a", 0), 0);
	assert_int_equal(px_cache_incr(c, "x", 1, 1, &v, NULL), -EINVAL);
	assert_string_equal(get_s(c, "x"), "12a");
	px_cache_destroy(c);
}

/* ---- Time ------------------------------------------------------------ */

static void
test_cache_ttl_boundaries(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_DEFAULT, 0);
	struct px_cache_info info;

	assert_int_equal(set_s(c, "rel", "v", 10), 0);
	assert_int_equal(set_s(c, "max", "v", PX_CACHE_TTL_RELATIVE_MAX), 0);
	assert_int_equal(set_s(c, "abs", "v", START_TIME + 20), 0);
	assert_int_equal(set_s(c, "never", "v", 0), 0);
	assert_int_equal(px_cache_get(c, "max", 3, NULL, 0, &info), -ENOSPC);
	assert_int_equal(info.exptime, START_TIME + PX_CACHE_TTL_RELATIVE_MAX);
	fake_now += 9;
	assert_non_null(get_s(c, "rel"));
	fake_now += 1; /* expiry time == now: dead, as memcached */
	assert_null(get_s(c, "rel"));
	assert_int_equal(metric(c, PX_CACHE_M_get_expired), 1);
	assert_non_null(get_s(c, "abs"));
	fake_now += 10;
	assert_null(get_s(c, "abs"));
	assert_non_null(get_s(c, "never"));
	assert_non_null(get_s(c, "max"));

	/* 30 days + 1 is an absolute time, here long past */
	assert_int_equal(set_s(c, "past", "v", PX_CACHE_TTL_RELATIVE_MAX + 1),
			 0);
	assert_null(get_s(c, "past"));
	/* a negative ttl stores nothing and removes the old item */
	nevents = 0;
	assert_int_equal(set_s(c, "never", "v", -1), 0);
	assert_null(get_s(c, "never"));
	assert_int_equal(nevents, 1);
	assert_string_equal(events[0].key, "never");
	assert_int_equal(events[0].cause, PX_CACHE_CAUSE_REPLACED);
	px_cache_destroy(c);
}

static void
test_cache_touch_and_gat(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_DEFAULT, 0);
	struct px_cache_info info;
	uint64_t cas1, cas2;
	struct px_cache_ref ref;
	char buf[8];

	assert_int_equal(px_cache_touch(c, "k", 1, 10), -ENOENT);
	assert_int_equal(set_s(c, "k", "v", 10), 0);
	fake_now += 5;
	assert_int_equal(px_cache_touch(c, "k", 1, 10), 0);
	fake_now += 9;
	assert_non_null(get_s(c, "k"));
	assert_int_equal(px_cache_gat(c, "k", 1, 0, buf, sizeof(buf), &info),
			 0);
	assert_int_equal(info.exptime, 0);
	fake_now += 1000;
	assert_int_equal(px_cache_gat_ref(c, "k", 1, 3, &ref), 0);
	assert_memory_equal(ref.value, "v", 1);
	assert_int_equal(ref.exptime, fake_now + 3);
	px_cache_ref_put(c, &ref);
	assert_null(ref.priv);
	fake_now += 3;
	assert_int_equal(px_cache_gat(c, "k", 1, 0, buf, 8, NULL), -ENOENT);
	/* a store dead on arrival still takes a cas id, as memcached's */
	assert_int_equal(
	    px_cache_store(c, PX_CACHE_SET, "d", 1, "v", 1, 0, -1, 0, &cas1),
	    0);
	assert_int_equal(
	    px_cache_store(c, PX_CACHE_SET, "e", 1, "v", 1, 0, 0, 0, &cas2), 0);
	assert_true(cas1 > 0 && cas1 < cas2);
	/* touch with a negative ttl expires the item */
	assert_int_equal(set_s(c, "t", "v", 0), 0);
	assert_int_equal(px_cache_touch(c, "t", 1, -1), 0);
	assert_null(get_s(c, "t"));
	px_cache_destroy(c);
}

static void
test_cache_flush_all_now_and_delayed(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_DEFAULT, 0);

	assert_int_equal(set_s(c, "a", "1", 0), 0);
	assert_int_equal(px_cache_flush_all(c, 0), 0);
	assert_null(get_s(c, "a"));
	assert_int_equal(metric(c, PX_CACHE_M_get_flushed), 1);
	assert_int_equal(set_s(c, "b", "2", 0), 0);
	assert_string_equal(get_s(c, "b"), "2");

	/* delayed: items stored before the instant die, later ones live */
	assert_int_equal(px_cache_flush_all(c, 10), 0);
	fake_now += 5;
	assert_int_equal(set_s(c, "c", "3", 0), 0);
	assert_non_null(get_s(c, "b"));
	assert_non_null(get_s(c, "c"));
	fake_now += 5;
	assert_null(get_s(c, "b"));
	assert_null(get_s(c, "c"));
	assert_int_equal(set_s(c, "d", "4", 0), 0);
	assert_string_equal(get_s(c, "d"), "4");
	assert_int_equal(store_s(c, PX_CACHE_ADD, "b", "5", 0), 0);
	/*
	 * Each dead item is reported once as flushed, whoever reclaims it:
	 * a store's sweep (which buckets it visits depends on the per-process
	 * hash seed), the add of "b", or maintain.
	 */
	assert_true(px_cache_maintain(c, 0) <= 2);
	assert_int_equal(nevents, 3);
	assert_int_equal(count_events("a", PX_CACHE_CAUSE_FLUSHED), 1);
	assert_int_equal(count_events("b", PX_CACHE_CAUSE_FLUSHED), 1);
	assert_int_equal(count_events("c", PX_CACHE_CAUSE_FLUSHED), 1);
	assert_int_equal(px_cache_items(c), 2);
	px_cache_destroy(c);
}

/*
 * A delayed flush that fell due, with no store since to apply it, still
 * holds when a new delayed flush_all replaces it (found by fuzz_cache).
 */
static void
test_cache_flush_all_keeps_a_due_flush_it_replaces(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_DEFAULT, 0);

	assert_int_equal(set_s(c, "a", "1", 0), 0);
	assert_int_equal(px_cache_flush_all(c, 4), 0);
	fake_now += 4;
	assert_int_equal(px_cache_flush_all(c, 4), 0);
	assert_null(get_s(c, "a"));
	px_cache_destroy(c);
}

/* A delay that overflows the clock saturates: nothing is flushed. */
static void
test_cache_flush_all_far_future_delay_flushes_nothing(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_DEFAULT, 0);

	assert_int_equal(set_s(c, "a", "1", 0), 0);
	assert_int_equal(px_cache_flush_all(c, INT64_MAX), 0);
	assert_non_null(get_s(c, "a"));
	fake_now += 1000000;
	assert_int_equal(set_s(c, "b", "2", 0), 0);
	assert_string_equal(get_s(c, "a"), "1");
	assert_string_equal(get_s(c, "b"), "2");
	assert_int_equal(metric(c, PX_CACHE_M_get_flushed), 0);
	/* A later flush still replaces it. */
	assert_int_equal(px_cache_flush_all(c, 0), 0);
	assert_null(get_s(c, "a"));
	px_cache_destroy(c);
}

/* A read-side section in a thread's last destructor, and a grace period. */
struct late_reader {
	struct px_cache *c;
	pthread_key_t key;
	atomic_bool in_section;
	atomic_bool release;
	atomic_bool grace_done;
};

/* Runs after the cache's own destructor (its key is older). */
static void
late_reader_section(void *arg)
{
	struct late_reader *l = arg;

	pxc_read_lock();
	atomic_store(&l->in_section, true);
	while (!atomic_load(&l->release))
		usleep(1000);
	pxc_read_unlock();
}

static void *
late_reader_main(void *arg)
{
	struct late_reader *l = arg;
	char buf[8];

	px_cache_get(l->c, "k", 1, buf, sizeof(buf), NULL);
	pthread_setspecific(l->key, l);
	return NULL;
}

static void *
grace_main(void *arg)
{
	struct late_reader *l = arg;

	urcu_memb_synchronize_rcu();
	atomic_store(&l->grace_done, true);
	return NULL;
}

/*
 * A thread that reads again from a destructor after the cache's has
 * unregistered it must register again: a grace period then waits for
 * that section instead of freeing items under it.
 */
static void
test_cache_reader_in_a_late_thread_destructor_is_waited_for(void **state)
{
	struct late_reader l = {0};
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_DEFAULT, 0);
	pthread_t reader, grace;

	l.c = c;
	assert_int_equal(set_s(c, "k", "v", 0), 0);
	assert_non_null(get_s(c, "k")); /* the cache's key exists */
	assert_int_equal(pthread_key_create(&l.key, late_reader_section), 0);
	assert_int_equal(pthread_create(&reader, NULL, late_reader_main, &l),
			 0);
	while (!atomic_load(&l.in_section))
		usleep(1000);
	assert_int_equal(pthread_create(&grace, NULL, grace_main, &l), 0);
	usleep(200 * 1000);
	/* The grace period still waits for the section. */
	assert_false(atomic_load(&l.grace_done));
	atomic_store(&l.release, true);
	pthread_join(reader, NULL);
	pthread_join(grace, NULL);
	assert_true(atomic_load(&l.grace_done));
	pthread_key_delete(l.key);
	px_cache_destroy(c);
}

static void
test_cache_expired_items_are_reclaimed_proactively(void **state)
{
	struct px_cache *c = make(8 * MIB, PX_CACHE_POLICY_DEFAULT, 0);
	char key[16], val[200];
	uint64_t before;
	int i;

	memset(val, 'v', sizeof(val));
	for (i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(
		    px_cache_set(c, key, strlen(key), val, sizeof(val), 0, 60),
		    0);
	}
	before = metric(c, PX_CACHE_M_bytes);
	assert_true(before >= 1000 * sizeof(val));
	fake_now += 61;
	nevents = 0;
	assert_int_equal(px_cache_maintain(c, 0), 1000);
	assert_int_equal(px_cache_items(c), 0);
	assert_int_equal(metric(c, PX_CACHE_M_bytes), 0);
	assert_int_equal(metric(c, PX_CACHE_M_expired_reclaimed), 1000);
	assert_int_equal(metric(c, PX_CACHE_M_limbo_bytes), 0);
	assert_int_equal(events[999].cause, PX_CACHE_CAUSE_EXPIRED);
	px_cache_destroy(c);
}

static void
test_cache_stores_sweep_expired_items(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_DEFAULT, 0);
	char key[16];
	int i;

	for (i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "t%d", i);
		assert_int_equal(set_s(c, key, "v", 1), 0);
	}
	fake_now += 2;
	/* enough stores to pass the sweep cursor over the whole index */
	for (i = 0; i < 20000 && px_cache_items(c) > 1; i++)
		assert_int_equal(set_s(c, "x", "y", 0), 0);
	assert_int_equal(px_cache_items(c), 1);
	assert_int_equal(metric(c, PX_CACHE_M_expired_reclaimed), 500);
	px_cache_destroy(c);
}

/* Fetched item a, unread b: both expire; c (no TTL) stays. */
static void
test_cache_expired_unfetched_counts_unread_items(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_DEFAULT, 0);

	assert_int_equal(set_s(c, "a", "1", 10), 0);
	assert_int_equal(set_s(c, "b", "2", 10), 0);
	assert_int_equal(set_s(c, "c", "3", 0), 0);
	assert_non_null(get_s(c, "a"));
	assert_non_null(get_s(c, "a")); /* a second hit changes nothing */
	fake_now += 11;
	assert_int_equal(px_cache_maintain(c, 0), 2);
	assert_int_equal(metric(c, PX_CACHE_M_expired_reclaimed), 2);
	assert_int_equal(metric(c, PX_CACHE_M_expired_unfetched), 1);
	assert_int_equal(metric(c, PX_CACHE_M_evicted_unfetched), 0);
	px_cache_destroy(c);
}

/* Item-count LRU of 2: x is read, y not; two new keys evict both. */
static void
test_cache_evicted_unfetched_counts_unread_items(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_LRU, 2);

	assert_int_equal(set_s(c, "x", "1", 0), 0);
	assert_int_equal(set_s(c, "y", "2", 0), 0);
	assert_non_null(get_s(c, "x"));
	assert_int_equal(set_s(c, "p", "3", 0), 0);
	assert_int_equal(set_s(c, "q", "4", 0), 0);
	assert_null(get_s(c, "x"));
	assert_null(get_s(c, "y"));
	assert_int_equal(metric(c, PX_CACHE_M_evictions), 2);
	assert_int_equal(metric(c, PX_CACHE_M_evicted_unfetched), 1);
	assert_int_equal(metric(c, PX_CACHE_M_expired_unfetched), 0);
	px_cache_destroy(c);
}

/*
 * gat and get_ref fetch too; touch, a replace and a store found dead do
 * not: the replacement of a read item starts unread.
 */
static void
test_cache_fetched_by_gat_and_ref_not_by_touch(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_DEFAULT, 0);
	struct px_cache_ref ref;
	char buf[8];

	assert_int_equal(set_s(c, "g", "1", 10), 0);
	assert_int_equal(set_s(c, "r", "2", 10), 0);
	assert_int_equal(set_s(c, "t", "3", 10), 0);
	assert_int_equal(set_s(c, "n", "4", 10), 0);
	assert_int_equal(px_cache_gat(c, "g", 1, 10, buf, sizeof(buf), NULL),
			 0);
	assert_int_equal(px_cache_get_ref(c, "r", 1, &ref), 0);
	px_cache_ref_put(c, &ref);
	assert_int_equal(px_cache_touch(c, "t", 1, 10), 0);
	assert_non_null(get_s(c, "n"));
	assert_int_equal(set_s(c, "n", "5", 10), 0); /* unread again */
	fake_now += 11;
	assert_int_equal(px_cache_maintain(c, 0), 4);
	assert_int_equal(metric(c, PX_CACHE_M_expired_unfetched), 2);
	px_cache_destroy(c);
}

/*
 * An item stored without a TTL has no room for one: touch and gat move it
 * to a block 4 bytes larger, keeping cas id, flags, value and its place,
 * silently (no listener event); a reference to the old block stays valid.
 */
static void
test_cache_touch_moves_an_item_without_ttl(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_LRU, 0);
	struct px_cache_ref old, ref;
	struct px_cache_info info;
	uint64_t cas;
	char buf[16];

	assert_int_equal(
	    px_cache_store(c, PX_CACHE_SET, "m", 1, "value", 5, 9, 0, 0, &cas),
	    0);
	assert_int_equal(px_cache_get_ref(c, "m", 1, &old), 0);
	nevents = 0;
	assert_int_equal(px_cache_touch(c, "m", 1, 0), 0); /* no TTL: stays */
	assert_int_equal(metric(c, PX_CACHE_M_exptime_moves), 0);
	assert_int_equal(px_cache_touch(c, "m", 1, 100), 0);
	assert_int_equal(metric(c, PX_CACHE_M_exptime_moves), 1);
	assert_int_equal(nevents, 0);
	assert_int_equal(px_cache_items(c), 1);
	assert_int_equal(px_cache_get(c, "m", 1, buf, sizeof(buf), &info), 0);
	assert_memory_equal(buf, "value", 5);
	assert_int_equal(info.flags, 9);
	assert_int_equal(info.cas, cas);
	assert_int_equal(info.exptime, START_TIME + 100);
	assert_memory_equal(old.value, "value", 5); /* the old block */
	px_cache_ref_put(c, &old);
	/* Now it has the field: no second move, even back to 0. */
	assert_int_equal(px_cache_touch(c, "m", 1, 0), 0);
	assert_int_equal(px_cache_gat_ref(c, "m", 1, 50, &ref), 0);
	assert_int_equal(ref.exptime, START_TIME + 50);
	px_cache_ref_put(c, &ref);
	assert_int_equal(metric(c, PX_CACHE_M_exptime_moves), 1);
	/* gat moves too, and the item then expires. */
	assert_int_equal(set_s(c, "g", "x", 0), 0);
	assert_int_equal(px_cache_gat(c, "g", 1, 10, buf, sizeof(buf), &info),
			 0);
	assert_int_equal(info.exptime, START_TIME + 10);
	assert_int_equal(metric(c, PX_CACHE_M_exptime_moves), 2);
	fake_now += 11;
	assert_null(get_s(c, "g"));
	assert_non_null(get_s(c, "m")); /* m expires at +50 */
	assert_int_equal(px_cache_maintain(c, 0), 1);
	assert_int_equal(metric(c, PX_CACHE_M_expired_unfetched), 0);
	px_cache_destroy(c);
}

struct snap_count {
	unsigned m, total;
};

static int
count_saved(void *arg, const struct px_cache_ref *item)
{
	struct snap_count *n = arg;

	n->total++;
	if (item->klen == 1 && !memcmp(item->key, "m", 1))
		n->m++;
	return 0;
}

/* A move during a snapshot walk hands the item over once, not twice. */
static void
test_cache_touch_move_during_snapshot_saves_once(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_SIEVE, 0);
	struct px_cache_snap_info info;
	struct snap_count n = {0};
	char key[16];
	int i, more;

	for (i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "f%d", i);
		assert_int_equal(set_s(c, key, "filler", 0), 0);
	}
	assert_int_equal(set_s(c, "m", "v", 0), 0);
	assert_int_equal(px_cache_snap_begin(c, 0, &info), 0);
	/* Walk part of the index, move m, finish. */
	assert_true(px_cache_snap_walk(c, 8, count_saved, &n) >= 0);
	assert_int_equal(px_cache_touch(c, "m", 1, 100), 0);
	do
		more = px_cache_snap_walk(c, 64, count_saved, &n);
	while (more > 0);
	assert_int_equal(more, 0);
	px_cache_snap_end(c, NULL);
	assert_int_equal(n.m, 1);
	assert_int_equal(n.total, 2001);
	assert_int_equal(metric(c, PX_CACHE_M_exptime_moves), 1);
	px_cache_destroy(c);
}

/*
 * The walker runs without the writer lock: it must not find the moved
 * copy unclaimed while the writer is still between publishing it and
 * retaining (here: spilling) the old block, or the item is saved twice.
 * The spill function holds the writer there while the walker thread
 * walks past the item's bucket.
 */
struct move_race {
	struct px_cache *c;
	const char *key;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stage; /* 1: in spill, 2: walked */
	unsigned saved;
	int touch_err;
};

static void
race_count(struct move_race *r, const struct px_cache_ref *item)
{
	if (item->klen == strlen(r->key) &&
	    !memcmp(item->key, r->key, item->klen))
		r->saved++;
}

static int
race_walk_fn(void *arg, const struct px_cache_ref *item)
{
	race_count(arg, item);
	return 0;
}

static int
race_spill_fn(void *arg, const struct px_cache_ref *item)
{
	struct move_race *r = arg;

	race_count(r, item);
	pthread_mutex_lock(&r->mu);
	r->stage = 1;
	pthread_cond_broadcast(&r->cv);
	while (r->stage != 2)
		pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
	return 0;
}

static void *
race_toucher(void *arg)
{
	struct move_race *r = arg;

	r->touch_err = px_cache_touch(r->c, r->key, strlen(r->key), 100);
	return NULL;
}

static void
test_cache_touch_move_claims_copy_before_publishing(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_SIEVE, 0);
	struct move_race r = {.c = c};
	struct px_cache_snap_info info;
	static char keys[16][8];
	size_t b = 0;
	pthread_t t;
	int i, more;

	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	for (i = 0; i < 16 && !r.key; i++) {
		snprintf(keys[i], sizeof(keys[i]), "m%d", i);
		b = pxc_hash(c, keys[i], strlen(keys[i])) & c->bucket_mask;
		if (b + 1 < c->bucket_mask + 1)
			r.key = keys[i];
	}
	assert_non_null(r.key);
	assert_int_equal(set_s(c, r.key, "v", 0), 0);
	assert_int_equal(px_cache_snap_begin(c, 0, &info), 0);
	assert_int_equal(px_cache_snap_spill(c, race_spill_fn, &r), 0);
	assert_int_equal(pthread_create(&t, NULL, race_toucher, &r), 0);
	pthread_mutex_lock(&r.mu);
	while (r.stage != 1)
		pthread_cond_wait(&r.cv, &r.mu);
	pthread_mutex_unlock(&r.mu);
	/* The writer is inside the move: walk up to the key's bucket. */
	assert_int_equal(px_cache_snap_walk(c, b + 1, race_walk_fn, &r), 1);
	pthread_mutex_lock(&r.mu);
	r.stage = 2;
	pthread_cond_broadcast(&r.cv);
	pthread_mutex_unlock(&r.mu);
	pthread_join(t, NULL);
	assert_int_equal(r.touch_err, 0);
	do
		more = px_cache_snap_walk(c, 64, race_walk_fn, &r);
	while (more > 0);
	assert_int_equal(more, 0);
	px_cache_snap_end(c, NULL);
	assert_int_equal(r.saved, 1);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	px_cache_destroy(c);
}

/*
 * Growing the index when no window of the arena can hold the new block
 * (pinned items every few KiB) must not evict the whole cache trying:
 * the index just stays as it is.
 */
static void
test_cache_index_growth_among_pins_keeps_the_cache(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_LRU, 0);
	static struct px_cache_ref refs[2048];
	char key[32], val[1000];
	size_t before, nref = 0, n, i;

	memset(val, 'v', sizeof(val));
	/* Three budgets of 1 KiB items; in the last two, every 8th is
	 * pinned, so every free hole left is at most ~8 KiB. */
	for (i = 0; i < 12000; i++) {
		snprintf(key, sizeof(key), "big%zu", i);
		assert_int_equal(
		    px_cache_set(c, key, strlen(key), val, sizeof(val), 0, 0),
		    0);
		if (i >= 4000 && i % 8 == 0 && nref < 2048)
			assert_int_equal(px_cache_get_ref(c, key, strlen(key),
							  &refs[nref++]),
					 0);
	}
	n = c->bucket_mask + 1;
	/* Small new items until the index wants to double. */
	for (i = 0; px_cache_items(c) < n - 1; i++) {
		snprintf(key, sizeof(key), "s%zu", i);
		assert_int_equal(set_s(c, key, "x", 0), 0);
		assert_true(i < 1000000);
	}
	before = px_cache_items(c);
	assert_int_equal(set_s(c, "trigger", "x", 0), 0);
	assert_int_equal(set_s(c, "trigger2", "x", 0), 0);
	assert_true(px_cache_items(c) >= before / 2);
	for (i = 0; i < nref; i++)
		px_cache_ref_put(c, &refs[i]);
	px_cache_destroy(c);
}

/*
 * A touch that moves the item counts as one hit, like a touch in place:
 * the S3-FIFO frequency goes up by one, not two.
 */
static void
test_cache_touch_move_counts_one_hit(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_S3FIFO, 0);
	const struct pxc_item *m, *t;

	assert_int_equal(set_s(c, "m", "v", 0), 0);  /* no TTL: moves */
	assert_int_equal(set_s(c, "t", "v", 50), 0); /* TTL: in place */
	assert_int_equal(px_cache_touch(c, "m", 1, 100), 0);
	assert_int_equal(px_cache_touch(c, "t", 1, 100), 0);
	assert_int_equal(metric(c, PX_CACHE_M_exptime_moves), 1);
	m = pxc_find(c, pxc_hash(c, "m", 1), "m", 1);
	t = pxc_find(c, pxc_hash(c, "t", 1), "t", 1);
	assert_non_null(m);
	assert_non_null(t);
	assert_int_equal(pxc_hot(t), 1);
	assert_int_equal(pxc_hot(m), pxc_hot(t));
	px_cache_destroy(c);
}

/*
 * When the move's room cannot be made and the eviction took the item
 * itself, the item is gone: touch says -ENOENT (as documented), not
 * -ENOMEM, which promises the item is still there without a TTL.
 */
static void
test_cache_touch_move_that_evicts_the_item_is_enoent(void **state)
{
	struct px_cache *c = make(1 * MIB, PX_CACHE_POLICY_LRU, 0);
	static struct px_cache_ref refs[16384];
	char key[32], val[2000];
	size_t nref = 0;

	memset(val, 'v', sizeof(val));
	assert_int_equal(px_cache_set(c, "m", 1, val, sizeof(val), 0, 0), 0);
	/* Pinned fillers until no block could hold m's copy (old index
	 * blocks reclaimed first, so that they are filled too). */
	for (;;) {
		px_cache_maintain(c, 1);
		if (c->arena.free_units * PXC_UNIT <= 300)
			break;
		assert_true(nref < 16384);
		snprintf(key, sizeof(key), "f%zu", nref);
		assert_int_equal(
		    px_cache_set(c, key, strlen(key), val, 100, 0, 0), 0);
		assert_int_equal(
		    px_cache_get_ref(c, key, strlen(key), &refs[nref]), 0);
		nref++;
	}
	assert_int_equal(metric(c, PX_CACHE_M_evictions), 0);
	assert_int_equal(px_cache_touch(c, "m", 1, 100), -ENOENT);
	assert_null(get_s(c, "m"));
	while (nref)
		px_cache_ref_put(c, &refs[--nref]);
	px_cache_destroy(c);
}

/* ---- Listener, references, memory ----------------------------------- */

static void
test_cache_listener_causes(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_LRU, 2);

	assert_int_equal(set_s(c, "a", "1", 0), 0);
	assert_int_equal(set_s(c, "a", "2", 0), 0);
	assert_int_equal(px_cache_delete(c, "a", 1), 0);
	assert_int_equal(px_cache_delete(c, "a", 1), -ENOENT);
	assert_int_equal(set_s(c, "b", "1", 5), 0);
	fake_now += 5;
	assert_int_equal(set_s(c, "c", "1", 0), 0);
	assert_int_equal(set_s(c, "d", "1", 0), 0);
	assert_int_equal(set_s(c, "e", "1", 0), 0);
	assert_int_equal(nevents, 4);
	assert_string_equal(events[0].key, "a");
	assert_int_equal(events[0].cause, PX_CACHE_CAUSE_REPLACED);
	assert_int_equal(events[1].cause, PX_CACHE_CAUSE_DELETED);
	assert_string_equal(events[2].key, "b");
	assert_int_equal(events[2].cause, PX_CACHE_CAUSE_EXPIRED);
	assert_string_equal(events[3].key, "c");
	assert_int_equal(events[3].cause, PX_CACHE_CAUSE_EVICTED);
	px_cache_destroy(c);
}

static void
test_cache_ref_survives_replace_and_delete(void **state)
{
	struct px_cache *c = make(2 * MIB, PX_CACHE_POLICY_DEFAULT, 0);
	struct px_cache_ref ref;
	char val[1000];
	int i;

	assert_int_equal(set_s(c, "k", "original", 0), 0);
	assert_int_equal(px_cache_get_ref(c, "k", 1, &ref), 0);
	assert_int_equal(ref.klen, 1);
	assert_int_equal(ref.vlen, 8);
	assert_int_equal(set_s(c, "k", "changed", 0), 0);
	assert_int_equal(px_cache_delete(c, "k", 1), 0);
	/* churn the whole budget: the pinned item must not be reused */
	memset(val, 'z', sizeof(val));
	for (i = 0; i < 10000; i++) {
		char key[16];

		snprintf(key, sizeof(key), "f%d", i);
		assert_int_equal(
		    px_cache_set(c, key, strlen(key), val, sizeof(val), 0, 0),
		    0);
	}
	assert_memory_equal(ref.value, "original", 8);
	assert_memory_equal(ref.key, "k", 1);
	px_cache_ref_put(c, &ref);
	px_cache_ref_put(c, &ref); /* a cleared ref is a no-op */
	assert_int_equal(px_cache_get_ref(c, "nope", 4, &ref), -ENOENT);
	px_cache_destroy(c);
}

static void
test_cache_too_big_is_e2big(void **state)
{
	struct px_cache_opts o;
	struct px_cache *c;
	char *big = calloc(1, 3 * MIB);

	assert_non_null(big);
	c = make(2 * MIB, PX_CACHE_POLICY_DEFAULT, 0);
	assert_int_equal(px_cache_set(c, "k", 1, big, 1024 * 1024 + 1, 0, 0),
			 -E2BIG);
	assert_int_equal(set_s(c, "k", "v", 0), 0);
	assert_int_equal(px_cache_set(c, "k", 1, big, 1024 * 1024, 0, 0), 0);
	assert_int_equal(store_s(c, PX_CACHE_APPEND, "k", "x", 0), -E2BIG);
	px_cache_destroy(c);

	/* a value under item_max that can never fit the budget */
	px_cache_opts_init(&o);
	o.item_max = 4 * MIB;
	o.region.backing = PX_REGION_4K;
	assert_int_equal(px_cache_create(&c, 2 * MIB, &o), 0);
	assert_int_equal(set_s(c, "a", "b", 0), 0);
	assert_int_equal(px_cache_set(c, "k", 1, big, 3 * MIB, 0, 0), -E2BIG);
	assert_string_equal(get_s(c, "a"), "b");
	px_cache_destroy(c);
	free(big);
}

/*
 * A value just under the arena's size that no free block can ever serve
 * (the allocator rounds a request up to its next size class): -E2BIG at
 * once, with nothing evicted for it.
 */
static void
test_cache_value_over_the_largest_block_is_e2big_without_eviction(void **state)
{
	struct px_cache_memory m;
	struct px_cache_opts o;
	struct px_cache *c;
	size_t vlen;
	char *big;

	px_cache_opts_init(&o);
	o.item_max = 4 * MIB;
	o.hooks = &hooks;
	o.listener = record;
	o.region.backing = PX_REGION_4K;
	nevents = 0;
	assert_int_equal(px_cache_create(&c, MIB, &o), 0);
	px_cache_memory(c, &m);
	vlen = m.arena_bytes - 4096;
	big = calloc(1, vlen);
	assert_non_null(big);
	assert_int_equal(set_s(c, "a", "b", 0), 0);
	assert_int_equal(px_cache_set(c, "k", 1, big, vlen, 0, 0), -E2BIG);
	assert_int_equal(nevents, 0);
	assert_string_equal(get_s(c, "a"), "b");
	/* Half the arena is still served. */
	assert_int_equal(px_cache_set(c, "k", 1, big, m.arena_bytes / 2, 0, 0),
			 0);
	px_cache_destroy(c);
	free(big);
}

static void
test_cache_budget_is_exact(void **state)
{
	size_t limits[] = {MIB, 3 * MIB + 12345, 5 * MIB + 4096, 16 * MIB};
	struct px_cache_memory m;
	struct px_cache *c;
	unsigned i;

	for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		assert_int_equal(px_cache_create(&c, limits[i], NULL), 0);
		px_cache_memory(c, &m);
		assert_true(m.region_bytes <= limits[i]);
		assert_true(m.region_bytes + 4096 > limits[i] ||
			    m.region_bytes + (2u << 20) > limits[i]);
		assert_int_equal(m.index_bytes + m.ghost_bytes + m.other_bytes +
				     m.arena_bytes,
				 m.region_bytes);
		px_cache_destroy(c);
	}
	assert_int_equal(px_cache_create(&c, MIB - 1, NULL), -EINVAL);
	px_cache_destroy(NULL);
}

static void
fill_and_check(enum px_cache_policy pol)
{
	struct px_cache *c = make(2 * MIB, pol, 0);
	struct px_cache_memory m;
	char key[16], val[3000];
	int i, found = 0;

	memset(val, 'q', sizeof(val));
	for (i = 0; i < 5000; i++) {
		size_t len = (size_t)(i * 7919) % sizeof(val);

		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(
		    px_cache_set(c, key, strlen(key), val, len, 0, 0), 0);
		px_cache_memory(c, &m);
		assert_true(m.region_bytes <= 2 * MIB);
		assert_int_equal(m.used_bytes + m.limbo_bytes + m.free_bytes,
				 m.arena_bytes);
	}
	/* a large value still fits by evicting small ones */
	assert_int_equal(px_cache_set(c, "big", 3, NULL, 0, 0, 0), 0);
	for (i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		found += get_s(c, key) != NULL;
	}
	assert_true(found > 100);
	assert_int_equal(found, px_cache_items(c) - 1);
	assert_true(metric(c, PX_CACHE_M_evictions) > 1000);
	px_cache_destroy(c);
}

static void
test_cache_full_cache_evicts_every_policy(void **state)
{
	fill_and_check(PX_CACHE_POLICY_LRU);
	fill_and_check(PX_CACHE_POLICY_SIEVE);
	fill_and_check(PX_CACHE_POLICY_S3FIFO);
}

static void
test_cache_sizes_shift_without_calcification(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_DEFAULT, 0);
	char *val = calloc(1, 256 * 1024);
	char key[16];
	int i;

	assert_non_null(val);
	/* fill with small items, then only large ones: all must fit */
	for (i = 0; i < 40000; i++) {
		snprintf(key, sizeof(key), "s%d", i);
		assert_int_equal(
		    px_cache_set(c, key, strlen(key), val, 50, 0, 0), 0);
	}
	for (i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "L%d", i);
		assert_int_equal(
		    px_cache_set(c, key, strlen(key), val, 256 * 1024, 0, 0),
		    0);
	}
	/* the last large items are all resident: memory moved classes */
	for (i = 30; i < 40; i++) {
		snprintf(key, sizeof(key), "L%d", i);
		assert_int_equal(
		    px_cache_get(c, key, strlen(key), NULL, 0, NULL), -ENOSPC);
	}
	px_cache_destroy(c);
	free(val);
}

static void
test_cache_large_store_evicts_about_its_size(void **state)
{
	struct px_cache *c = make(8 * MIB, PX_CACHE_POLICY_LRU, 0);
	char *val = calloc(1, MIB), key[16];
	uint64_t before;
	int i;

	assert_non_null(val);
	/* random churn scatters free space in small holes */
	srandom(11);
	for (i = 0; i < 200000; i++) {
		snprintf(key, sizeof(key), "k%ld", random() % 50000);
		assert_int_equal(px_cache_set(c, key, strlen(key), val,
					      20 + (size_t)(random() % 400), 0,
					      0),
				 0);
	}
	before = metric(c, PX_CACHE_M_bytes);
	assert_true(before > 7 * MIB);
	assert_int_equal(px_cache_set(c, "big", 3, val, MIB, 0, 0), 0);
	/* about 1 MiB evicted, not the whole cache */
	assert_true(before + MIB - metric(c, PX_CACHE_M_bytes) < 2 * MIB);
	assert_true(metric(c, PX_CACHE_M_evict_windows) >= 1);
	px_cache_destroy(c);
	free(val);
}

/*
 * The metadata figure of docs/cache.md, at a tenth of the scale: 100,000
 * items of 100-byte values under 14-byte keys in a budget sized for them.
 */
/*
 * Equal-sized items reuse each other's holes: a full cache of 2000-byte
 * values (keys of 2-5 bytes: blocks of 254 and 255 units) stays within
 * an eighth of full (measured: 571 KiB of 8 MiB; 2.4 MiB when the
 * allocator skipped its own size class) instead of evicting on to reach
 * larger free blocks.
 */
static void
test_cache_equal_sizes_reuse_holes(void **state)
{
	struct px_cache *c = make(8 * MIB, PX_CACHE_POLICY_LRU, 0);
	struct px_cache_memory m;
	char key[24], val[2000];
	size_t worst = 0;
	int i;

	memset(val, 'e', sizeof(val));
	srand(5);
	for (i = 0; i < 40000; i++) {
		/* Hits reorder the queue: victims are scattered holes. */
		snprintf(key, sizeof(key), "k%d", rand() % 9000);
		get_s(c, key);
		snprintf(key, sizeof(key), "k%d", rand() % 9000);
		assert_int_equal(
		    px_cache_set(c, key, strlen(key), val, sizeof(val), 0, 0),
		    0);
		px_cache_memory(c, &m);
		if (i > 10000 && m.free_bytes + m.limbo_bytes > worst)
			worst = m.free_bytes + m.limbo_bytes;
	}
	print_message("equal sizes: at worst %zu KiB free of %zu KiB\n",
		      worst >> 10, m.arena_bytes >> 10);
	assert_true(worst < 1024 * 1024);
	px_cache_destroy(c);
}

static void
test_cache_metadata_per_item(void **state)
{
	struct px_cache *c = make(18 * MIB, PX_CACHE_POLICY_SIEVE, 0);
	struct px_cache_memory m;
	char key[24], val[100];
	double hdr, all;
	int i;

	memset(val, 'v', sizeof(val));
	for (i = 0; i < 100000; i++) {
		/* Keys of 13 to 20 bytes: every alignment pad, 0 to 7. */
		snprintf(key, sizeof(key), "key:%0*d", 9 + i % 8, i);
		assert_int_equal(
		    px_cache_set(c, key, strlen(key), val, 100, 0, 0), 0);
	}
	px_cache_memory(c, &m);
	assert_int_equal(m.items, 100000);
	hdr = (double)(m.used_bytes - m.key_value_bytes) / (double)m.items;
	all = (double)(m.used_bytes + m.index_bytes + m.ghost_bytes +
		       m.other_bytes - m.key_value_bytes) /
	      (double)m.items;
	print_message("metadata per item: header+pad %.1f B, index %.1f B, "
		      "all %.1f B\n",
		      hdr, (double)m.index_bytes / (double)m.items, all);
	/* 24 B of header and 3.5 B of pad on average (31.5 with 28 B). */
	assert_int_equal(m.item_header, 24);
	assert_true(hdr <= 28.0);
	assert_true(all <= 34.0);
	px_cache_destroy(c);
}

/*
 * Blocks of up to 127 units keep their size in meta, larger ones in 4
 * bytes before the expiry time and flags: values on both sides of the
 * limit read back whole, with flags and a changed expiry time, and
 * freeing them all coalesces the arena back to one free block.
 */
static void
test_cache_block_sizes_across_the_meta_limit(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_LRU, 0);
	static char val[1100], buf[1100];
	struct px_cache_memory before;
	struct px_cache_info info;
	char key[16];
	size_t vlen;

	px_cache_memory(c, &before);
	for (vlen = 0; vlen < sizeof(val); vlen++)
		val[vlen] = (char)('a' + vlen % 26);
	for (vlen = 940; vlen < 1060; vlen++) {
		snprintf(key, sizeof(key), "k%zu", vlen);
		assert_int_equal(px_cache_set(c, key, strlen(key), val, vlen,
					      (uint32_t)vlen, 100),
				 0);
		assert_int_equal(px_cache_touch(c, key, strlen(key), 200), 0);
	}
	for (vlen = 940; vlen < 1060; vlen++) {
		snprintf(key, sizeof(key), "k%zu", vlen);
		memset(buf, 0, sizeof(buf));
		assert_int_equal(
		    px_cache_get(c, key, strlen(key), buf, sizeof(buf), &info),
		    0);
		assert_int_equal(info.vlen, vlen);
		assert_int_equal(info.flags, vlen);
		assert_int_equal(info.exptime, START_TIME + 200);
		assert_memory_equal(buf, val, vlen);
		assert_int_equal(px_cache_delete(c, key, strlen(key)), 0);
	}
	assert_memory_back(c, &before);
	px_cache_destroy(c);
}

/*
 * A request of 127 units (the largest size kept in meta) served from a
 * free hole of 129: the 2 units left are too few to split off, so the
 * block is a big one (size in the data) although the item was sized as a
 * small one.  Its value, flags, expiry and later moves (touch, append,
 * prepend) and frees must be right, and all memory must come back.
 */
static void
test_cache_small_request_in_a_big_hole(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_LRU, 0);
	static char val[1100], buf[1200];
	struct px_cache_memory before, m;
	struct px_cache_info info;
	size_t used;

	(void)state;
	memset(val, 'h', sizeof(val));
	px_cache_memory(c, &before);
	/* X, then A of 129 units (24 + 4 + 1 + 1003 bytes), then Y. */
	assert_int_equal(px_cache_set(c, "X", 1, "x", 1, 0, 0), 0);
	assert_int_equal(px_cache_set(c, "A", 1, val, 1003, 0, 0), 0);
	assert_int_equal(px_cache_set(c, "Y", 1, "y", 1, 0, 0), 0);
	assert_int_equal(px_cache_delete(c, "A", 1), 0);
	px_cache_maintain(c, 0);
	px_cache_memory(c, &m);
	used = m.used_bytes;
	/* B: 24 + 1 + 991 = 1016 bytes, 127 units, lands in A's hole. */
	assert_int_equal(px_cache_set(c, "B", 1, val, 991, 5, 0), 0);
	px_cache_memory(c, &m);
	assert_int_equal(m.used_bytes - used, 129 * 8);
	assert_int_equal(px_cache_get(c, "B", 1, buf, sizeof(buf), &info), 0);
	assert_int_equal(info.vlen, 991);
	assert_int_equal(info.flags, 5);
	assert_memory_equal(buf, val, 991);
	/* Moves to a block with room for the expiry time, grows, shrinks. */
	assert_int_equal(px_cache_touch(c, "B", 1, 100), 0);
	assert_int_equal(
	    px_cache_store(c, PX_CACHE_APPEND, "B", 1, "t", 1, 0, 0, 0, NULL),
	    0);
	assert_int_equal(
	    px_cache_store(c, PX_CACHE_PREPEND, "B", 1, "p", 1, 0, 0, 0, NULL),
	    0);
	assert_int_equal(px_cache_get(c, "B", 1, buf, sizeof(buf), &info), 0);
	assert_int_equal(info.vlen, 993);
	assert_int_equal(info.flags, 5);
	assert_int_equal(info.exptime, START_TIME + 100);
	assert_true(buf[0] == 'p' && buf[992] == 't');
	assert_memory_equal(buf + 1, val, 991);
	assert_int_equal(px_cache_delete(c, "B", 1), 0);
	assert_int_equal(px_cache_delete(c, "X", 1), 0);
	assert_int_equal(px_cache_delete(c, "Y", 1), 0);
	assert_memory_back(c, &before);
	px_cache_destroy(c);
}

/* ---- Policies ----------------------------------------------------------- */

static void
test_cache_lru_evicts_least_recent(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_LRU, 3);

	set_s(c, "a", "1", 0);
	set_s(c, "b", "1", 0);
	set_s(c, "c", "1", 0);
	assert_non_null(get_s(c, "a"));
	set_s(c, "d", "1", 0); /* evicts b */
	assert_null(get_s(c, "b"));
	assert_non_null(get_s(c, "c"));
	set_s(c, "e", "1", 0); /* evicts a (c, then... a is older) */
	assert_null(get_s(c, "a"));
	assert_non_null(get_s(c, "d"));
	assert_int_equal(px_cache_items(c), 3);
	assert_int_equal(px_cache_policy(c), PX_CACHE_POLICY_LRU);
	px_cache_destroy(c);
}

static void
test_cache_sieve_keeps_visited(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_SIEVE, 3);

	set_s(c, "a", "1", 0);
	set_s(c, "b", "1", 0);
	set_s(c, "c", "1", 0);
	assert_non_null(get_s(c, "a"));
	set_s(c, "d", "1", 0); /* hand passes a (clears), evicts b */
	assert_null(get_s(c, "b"));
	set_s(c, "e", "1", 0); /* hand at c: unvisited, evicted */
	assert_null(get_s(c, "c"));
	assert_non_null(get_s(c, "a"));
	assert_true(metric(c, PX_CACHE_M_sieve_hand_steps) >= 1);
	px_cache_destroy(c);
}

/*
 * The ghost keeps its entries when the index (and the ghost with it)
 * doubles: entries keep no bucket bits, so each is copied to every new
 * bucket it may belong to, with its age.  Evictions fill the ghost; then
 * deletes of small's items make room (main keeps its items, so the
 * ghost's window stays wide) and small items make the index grow; a key
 * evicted before the growth and stored again after it is still a ghost
 * hit, which only a moved entry can give.
 */
static void
test_cache_s3fifo_ghost_survives_index_growth(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_S3FIFO, 0);
	static char big[4000];
	uint64_t resizes, hits;
	uint32_t seq;
	char key[32];
	int i, evicted = -1;

	memset(big, 'b', sizeof(big));
	for (i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "big%d", i);
		assert_int_equal(
		    px_cache_set(c, key, strlen(key), big, sizeof(big), 0, 0),
		    0);
		/* Every other item is hit: main fills, so the ghost's
		 * window (main's item count) is wide. */
		if (i % 2 == 0)
			get_s(c, key);
	}
	for (i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "big%d", i);
		if (i % 2 && get_s(c, key)) /* main (hit ones) stays */
			assert_int_equal(px_cache_delete(c, key, strlen(key)),
					 0);
		else if (i % 2)
			evicted = i; /* the last one-hit wonder evicted: the
				      * youngest entry of the ghost */
	}
	assert_true(evicted >= 0);
	resizes = metric(c, PX_CACHE_M_index_resizes);
	seq = c->pol.ghost_seq;
	for (i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "t%d", i);
		assert_int_equal(set_s(c, key, "x", 0), 0);
	}
	assert_true(metric(c, PX_CACHE_M_index_resizes) > resizes);
	/* Growth may evict a few items for its block, but big%d cannot be
	 * among them (it is not in the cache): its entry dates from before
	 * the growth and was moved. */
	assert_true(c->pol.ghost_seq - seq < 100);
	hits = metric(c, PX_CACHE_M_s3fifo_ghost_hits);
	snprintf(key, sizeof(key), "big%d", evicted);
	assert_int_equal(set_s(c, key, "back", 0), 0);
	assert_int_equal(metric(c, PX_CACHE_M_s3fifo_ghost_hits), hits + 1);
	px_cache_destroy(c);
}

static void
test_cache_s3fifo_ghost_readmits_to_main(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_S3FIFO, 10);
	char key[8];
	int i;

	/* one-hit wonders go through small and into the ghost */
	for (i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "w%d", i);
		set_s(c, key, "1", 0);
	}
	assert_null(get_s(c, "w9"));
	assert_true(metric(c, PX_CACHE_M_s3fifo_small_evictions) >= 10);
	set_s(c, "w9", "1", 0); /* in the ghost: goes to main */
	assert_int_equal(metric(c, PX_CACHE_M_s3fifo_ghost_hits), 1);
	/* a hit item in small is promoted rather than evicted */
	set_s(c, "hot", "1", 0);
	assert_non_null(get_s(c, "hot"));
	for (i = 0; i < 30; i++) {
		snprintf(key, sizeof(key), "x%d", i);
		set_s(c, key, "1", 0);
	}
	assert_true(metric(c, PX_CACHE_M_s3fifo_promotions) >= 1);
	assert_int_equal(px_cache_items(c), 10);
	px_cache_destroy(c);
}

/* Hits (+1) and reinsertions (-1) racing on one item's hot counter. */
#define HOT_RACE_ROUNDS 1000000

static pthread_barrier_t hot_race_start;

static void *
hot_race_main(void *arg)
{
	struct pxc_item *it = arg;

	pthread_barrier_wait(&hot_race_start); /* overlap the two loops */
	for (int i = 0; i < HOT_RACE_ROUNDS; i++) {
		pxc_hot_add(it, 1);
		pxc_hot_add(it, -1);
	}
	return NULL;
}

static void
test_cache_s3fifo_hot_counter_keeps_racing_updates(void **state)
{
	uint32_t other = PXC_M_MAIN | PXC_M_LINKED | 5; /* klen 5 */
	_Alignas(8) char buf[sizeof(struct pxc_item) + 8] = {0};
	struct pxc_item *it = (struct pxc_item *)buf;
	pthread_t a, b;

	/* Serially: +1 and -1, clamped to 0..3, other meta bits kept. */
	atomic_store(&it->meta, other);
	pxc_hot_add(it, -1);
	assert_int_equal(pxc_hot(it), 0);
	for (int i = 0; i < 5; i++)
		pxc_hot_add(it, 1);
	assert_int_equal(pxc_hot(it), 3);
	pxc_hot_add(it, -1);
	assert_int_equal(pxc_hot(it), 2);
	pxc_set_hot(it, 0);
	/*
	 * Two threads each add one and take it back: the counter stays in
	 * 0..2, never clamps, and ends at 0 only if no update overwrote
	 * another (an absolute store of a stale value would leave it off).
	 */
	assert_int_equal(pthread_barrier_init(&hot_race_start, NULL, 2), 0);
	assert_int_equal(pthread_create(&a, NULL, hot_race_main, it), 0);
	assert_int_equal(pthread_create(&b, NULL, hot_race_main, it), 0);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	pthread_barrier_destroy(&hot_race_start);
	assert_int_equal(pxc_hot(it), 0);
	assert_int_equal(pxc_meta(it) & ~PXC_M_HOT_MASK, other);
}

/* ---- Loads, counters -------------------------------------------------- */

static int load_calls;

static int
loader(void *arg, const void *key, size_t klen, struct px_cache_value *out)
{
	load_calls++;
	if (arg == (void *)1)
		return -EIO;
	out->data = strdup("loaded");
	out->len = 6;
	out->flags = 3;
	out->ttl = arg == (void *)2 ? 10 : 0;
	out->release = free;
	return 0;
}

static void
test_cache_get_or_load(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_DEFAULT, 0);
	struct px_cache_ref ref;

	load_calls = 0;
	assert_int_equal(px_cache_get_or_load(c, "k", 1, loader, NULL, &ref),
			 0);
	assert_memory_equal(ref.value, "loaded", 6);
	assert_int_equal(ref.flags, 3);
	px_cache_ref_put(c, &ref);
	assert_int_equal(px_cache_get_or_load(c, "k", 1, loader, NULL, &ref),
			 0);
	px_cache_ref_put(c, &ref);
	assert_int_equal(load_calls, 1);
	assert_int_equal(
	    px_cache_get_or_load(c, "e", 1, loader, (void *)1, &ref), -EIO);
	assert_null(get_s(c, "e"));
	assert_int_equal(metric(c, PX_CACHE_M_loads), 2);
	px_cache_destroy(c);
}

/* No loader is refused up front, not called through NULL on a miss. */
static void
test_cache_get_or_load_without_loader_is_einval(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_DEFAULT, 0);
	struct px_cache_ref ref;

	assert_int_equal(px_cache_get_or_load(c, "m", 1, NULL, NULL, &ref),
			 -EINVAL);
	assert_int_equal(set_s(c, "k", "v", 0), 0);
	assert_int_equal(px_cache_get_or_load(c, "k", 1, NULL, NULL, &ref),
			 -EINVAL);
	px_cache_destroy(c);
}

/* The caller of get_or_load reads the loaded item: it is not unfetched. */
static void
test_cache_loaded_item_counts_as_fetched(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_DEFAULT, 0);
	struct px_cache_ref ref;

	assert_int_equal(
	    px_cache_get_or_load(c, "t", 1, loader, (void *)2, &ref), 0);
	px_cache_ref_put(c, &ref);
	fake_now += 11;
	assert_int_equal(px_cache_maintain(c, 0), 1);
	assert_int_equal(metric(c, PX_CACHE_M_expired_reclaimed), 1);
	assert_int_equal(metric(c, PX_CACHE_M_expired_unfetched), 0);
	px_cache_destroy(c);
}

static void
count_metric(void *arg, const char *name, uint64_t value)
{
	(*(unsigned *)arg)++;
	assert_non_null(name);
}

static void
test_cache_metrics_table(void **state)
{
	struct px_cache *c = make(4 * MIB, PX_CACHE_POLICY_DEFAULT, 0);
	unsigned n = 0;

	px_cache_metrics_foreach(c, count_metric, &n);
	assert_int_equal(n, PX_CACHE_METRIC_COUNT);
	assert_string_equal(px_cache_metric_name(PX_CACHE_M_get_hits),
			    "get_hits");
	assert_null(px_cache_metric_name(PX_CACHE_METRIC_COUNT));
	assert_non_null(px_cache_metric_desc(PX_CACHE_M_evictions));
	assert_int_equal(metric(c, PX_CACHE_M_limit_bytes), 4 * MIB);
	assert_string_equal(px_cache_policy_name(PX_CACHE_POLICY_SIEVE),
			    "sieve");
	assert_int_equal(px_cache_item_size(10, 100), 136); /* 24 + 110 */
	px_cache_destroy(c);
}

/* ---- Randomized model test -------------------------------------------- */

#define MKEYS 2000
#define MVAL  12000

struct model_entry {
	bool present;
	bool flushed;
	uint32_t flags;
	uint32_t exptime;
	uint64_t cas;
	size_t vlen;
	char val[MVAL + 64];
};

static struct model_entry model[MKEYS];

static void
model_listener(void *arg, const void *key, size_t klen,
	       enum px_cache_cause cause)
{
	char buf[16];
	int i;

	snprintf(buf, sizeof(buf), "%.*s", (int)klen, (const char *)key);
	i = atoi(buf + 1);
	assert_true(i >= 0 && i < MKEYS && model[i].present);
	if (cause != PX_CACHE_CAUSE_REPLACED && cause != PX_CACHE_CAUSE_DELETED)
		model[i].present = false;
}

static bool
model_live(const struct model_entry *e)
{
	return e->present && !e->flushed &&
	       !(e->exptime && (int64_t)e->exptime <= fake_now);
}

static unsigned
rnd(unsigned n)
{
	return (unsigned)random() % n;
}

/* Values of 930..1069 bytes: items either side of the 127-unit block. */
static bool model_near_limit;

static void
random_value(char *buf, size_t *len)
{
	size_t i;

	*len = rnd(3) == 0 ? rnd(MVAL) : rnd(300);
	if (model_near_limit) /* some large ones fill the budget */
		*len = rnd(4) ? 930 + rnd(140) : rnd(2) ? rnd(24) : rnd(MVAL);
	if (rnd(4) == 0) {
		*len = (size_t)snprintf(buf, 24, "%u", (unsigned)random());
		return;
	}
	for (i = 0; i < *len; i++)
		buf[i] = (char)('a' + rnd(26));
}

static void
check_get(struct px_cache *c, const char *key, struct model_entry *e)
{
	static char buf[MVAL + 64];
	struct px_cache_info info;
	int err = px_cache_get(c, key, strlen(key), buf, sizeof(buf), &info);

	if (!model_live(e)) {
		assert_int_equal(err, -ENOENT);
		return;
	}
	assert_int_equal(err, 0);
	assert_int_equal(info.vlen, e->vlen);
	assert_memory_equal(buf, e->val, e->vlen);
	assert_int_equal(info.flags, e->flags);
	assert_int_equal(info.cas, e->cas);
}

static int
expect_store(enum px_cache_mode m, const struct model_entry *e, uint64_t cas)
{
	bool live = model_live(e);

	switch (m) {
	case PX_CACHE_SET:
		return 0;
	case PX_CACHE_ADD:
		return live ? -EEXIST : 0;
	case PX_CACHE_CAS:
		return !live ? -ENOENT : cas == e->cas ? 0 : -EEXIST;
	default: /* REPLACE, APPEND, PREPEND compare a nonzero cas */
		if (!live)
			return -ENOENT;
		return cas && cas != e->cas ? -EEXIST : 0;
	}
}

static void
apply_store(struct model_entry *e, enum px_cache_mode m, const char *v,
	    size_t len, uint32_t flags, int64_t ttl, uint64_t cas,
	    const struct model_entry *old)
{
	if (m == PX_CACHE_APPEND || m == PX_CACHE_PREPEND) {
		*e = *old;
		if (m == PX_CACHE_APPEND) {
			memcpy(e->val + old->vlen, v, len);
		} else {
			memcpy(e->val, v, len);
			memcpy(e->val + len, old->val, old->vlen);
		}
		e->vlen = old->vlen + len;
	} else {
		memcpy(e->val, v, len);
		e->vlen = len;
		e->flags = flags;
		e->exptime = ttl ? (uint32_t)(fake_now + ttl) : 0;
	}
	e->present = ttl >= 0 || m == PX_CACHE_APPEND || m == PX_CACHE_PREPEND;
	e->flushed = false;
	e->cas = cas;
}

static void
model_store(struct px_cache *c, const char *key, struct model_entry *e)
{
	static struct model_entry old;
	enum px_cache_mode m = (enum px_cache_mode)rnd(6);
	char v[MVAL + 1];
	size_t len;
	uint32_t flags = (uint32_t)random();
	int64_t ttl = rnd(10) ? 0 : (int64_t)rnd(20) - 2;
	uint64_t cas = rnd(2) ? e->cas : e->cas + 1, cas_out;
	int want, err;

	random_value(v, &len);
	if ((m == PX_CACHE_APPEND || m == PX_CACHE_PREPEND) &&
	    e->vlen + len > MVAL)
		len = 0;
	old = *e;
	want = expect_store(m, e, cas);
	err = px_cache_store(c, m, key, strlen(key), v, len, flags, ttl, cas,
			     &cas_out);
	assert_int_equal(err, want);
	if (err == 0 &&
	    (ttl >= 0 || m == PX_CACHE_APPEND || m == PX_CACHE_PREPEND))
		apply_store(e, m, v, len, flags, ttl, cas_out, &old);
	else if (err == 0)
		e->present = false;
}

static void
model_delta(struct px_cache *c, const char *key, struct model_entry *e)
{
	bool incr = rnd(2);
	uint64_t d = rnd(1000), v, cas, cur = 0;
	int err = incr ? px_cache_incr(c, key, strlen(key), d, &v, &cas)
		       : px_cache_decr(c, key, strlen(key), d, &v, &cas);
	bool numeric = e->vlen > 0;
	size_t i;

	for (i = 0; numeric && i < e->vlen; i++) {
		uint64_t digit = (uint64_t)(e->val[i] - '0');

		numeric = e->val[i] >= '0' && e->val[i] <= '9' &&
			  cur <= (UINT64_MAX - digit) / 10;
		cur = cur * 10 + digit;
	}
	if (!model_live(e)) {
		assert_int_equal(err, -ENOENT);
		return;
	}
	if (!numeric) {
		assert_int_equal(err, -EINVAL);
		return;
	}
	assert_int_equal(err, 0);
	cur = incr ? cur + d : (cur > d ? cur - d : 0);
	assert_int_equal(v, cur);
	e->vlen = (size_t)snprintf(e->val, 24, "%llu", (unsigned long long)cur);
	e->cas = cas;
}

static void
model_check_memory(struct px_cache *c, size_t limit)
{
	struct px_cache_memory m;
	size_t n = 0, kv = 0;
	unsigned i;

	px_cache_memory(c, &m);
	assert_true(m.region_bytes <= limit);
	assert_int_equal(m.used_bytes + m.limbo_bytes + m.free_bytes,
			 m.arena_bytes);
	for (i = 0; i < MKEYS; i++) {
		char key[16];

		if (!model[i].present)
			continue;
		n++;
		kv += model[i].vlen +
		      (size_t)snprintf(key, sizeof(key), "k%u", i);
	}
	assert_int_equal(m.items, n);
	assert_int_equal(m.key_value_bytes, kv);
}

/* gat with a TTL (moves an item stored without one), or without. */
static void
model_gat(struct px_cache *c, const char *key, struct model_entry *e)
{
	static char buf[MVAL + 64];
	struct px_cache_info info;
	int64_t ttl = rnd(3) ? 7 : 0;
	int err =
	    px_cache_gat(c, key, strlen(key), ttl, buf, sizeof(buf), &info);

	if (!model_live(e)) {
		assert_int_equal(err, -ENOENT);
		return;
	}
	assert_int_equal(err, 0);
	assert_int_equal(info.vlen, e->vlen);
	assert_memory_equal(buf, e->val, e->vlen);
	assert_int_equal(info.flags, e->flags);
	assert_int_equal(info.cas, e->cas);
	e->exptime = ttl ? (uint32_t)(fake_now + ttl) : 0;
	assert_int_equal(info.exptime, e->exptime);
}

static void
model_step(struct px_cache *c, size_t limit)
{
	unsigned i = rnd(MKEYS), op = rnd(100);
	struct model_entry *e = &model[i];
	char key[16];

	snprintf(key, sizeof(key), "k%u", i);
	if (op < 35) {
		check_get(c, key, e);
	} else if (op < 75) {
		model_store(c, key, e);
	} else if (op < 79) {
		int err = px_cache_delete(c, key, strlen(key));

		assert_int_equal(err, model_live(e) ? 0 : -ENOENT);
		if (!err)
			e->present = false;
	} else if (op < 90) {
		model_delta(c, key, e);
	} else if (op < 95) {
		int err = px_cache_touch(c, key, strlen(key), 5);

		assert_int_equal(err, model_live(e) ? 0 : -ENOENT);
		if (!err)
			e->exptime = (uint32_t)(fake_now + 5);
	} else if (op < 97) {
		model_gat(c, key, e);
	} else if (op < 99) {
		fake_now += rnd(4);
	} else if (rnd(200) == 0) {
		px_cache_flush_all(c, 0);
		for (i = 0; i < MKEYS; i++)
			model[i].flushed = true;
	} else {
		px_cache_maintain(c, rnd(64));
	}
	model_check_memory(c, limit);
}

static void
model_run(enum px_cache_policy pol, size_t max_items, unsigned seed)
{
	size_t limit = MIB + 777;
	struct px_cache_opts o;
	struct px_cache *c;
	int n;

	memset(model, 0, sizeof(model));
	srandom(seed);
	px_cache_opts_init(&o);
	o.policy = pol;
	o.max_items = max_items;
	o.hooks = &hooks;
	o.listener = model_listener;
	o.item_max = MVAL;
	fake_now = START_TIME;
	assert_int_equal(px_cache_create(&c, limit, &o), 0);
	for (n = 0; n < 20000; n++)
		model_step(c, limit);
	assert_true(metric(c, PX_CACHE_M_evictions) > 0);
	px_cache_destroy(c);
}

static void
test_cache_model_random_ops(void **state)
{
	model_run(PX_CACHE_POLICY_LRU, 0, 1);
	model_run(PX_CACHE_POLICY_SIEVE, 0, 2);
	model_run(PX_CACHE_POLICY_S3FIFO, 0, 3);
	model_run(PX_CACHE_POLICY_S3FIFO, 100, 4);
	model_run(PX_CACHE_POLICY_LRU, 50, 5);
}

/* The same with values whose items cross the 127-unit block size of the
 * 24-byte header through sets, appends, prepends, touches and gats. */
static void
test_cache_model_random_ops_near_the_meta_limit(void **state)
{
	model_near_limit = true;
	model_run(PX_CACHE_POLICY_LRU, 0, 11);
	model_run(PX_CACHE_POLICY_SIEVE, 0, 12);
	model_run(PX_CACHE_POLICY_S3FIFO, 0, 13);
	model_run(PX_CACHE_POLICY_S3FIFO, 300, 14);
	model_near_limit = false;
}

/*
 * Keys that share a bucket under the public, unseeded XXH3-64 (low 6 bits
 * zero) must not share one in the index: the index hash is seeded per
 * process, so a client cannot flood one chain.  With a seed, each key
 * lands in bucket 0 of 64 with probability 1/64; 16 of 64 is beyond chance.
 */
static void
test_cache_hash_is_seeded(void **state)
{
	struct px_cache *c;
	char key[32];
	int found = 0, same = 0;

	assert_int_equal(px_cache_create(&c, 4 << 20, NULL), 0);
	for (unsigned i = 0; found < 64; i++) {
		int n = snprintf(key, sizeof(key), "flood%u", i);

		if (XXH3_64bits(key, (size_t)n) & 63)
			continue;
		found++;
		same += (pxc_hash(c, key, (size_t)n) & 63) == 0;
	}
	assert_true(same < 16);
	px_cache_destroy(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cache_set_get_roundtrip),
	    cmocka_unit_test(test_cache_get_small_buffer_is_enospc),
	    cmocka_unit_test(test_cache_bad_keys_are_einval),
	    cmocka_unit_test(test_cache_add_and_replace),
	    cmocka_unit_test(test_cache_cas_mismatch_and_missing),
	    cmocka_unit_test(test_cache_append_prepend),
	    cmocka_unit_test(test_cache_replace_append_compare_cas),
	    cmocka_unit_test(test_cache_store_over_half_budget_replaces_itself),
	    cmocka_unit_test(test_cache_huge_max_items_creates),
	    cmocka_unit_test(test_cache_incr_decr),
	    cmocka_unit_test(test_cache_ttl_boundaries),
	    cmocka_unit_test(test_cache_touch_and_gat),
	    cmocka_unit_test(test_cache_flush_all_now_and_delayed),
	    cmocka_unit_test(
		test_cache_flush_all_keeps_a_due_flush_it_replaces),
	    cmocka_unit_test(
		test_cache_flush_all_far_future_delay_flushes_nothing),
	    cmocka_unit_test(
		test_cache_expired_items_are_reclaimed_proactively),
	    cmocka_unit_test(test_cache_stores_sweep_expired_items),
	    cmocka_unit_test(test_cache_expired_unfetched_counts_unread_items),
	    cmocka_unit_test(test_cache_evicted_unfetched_counts_unread_items),
	    cmocka_unit_test(test_cache_fetched_by_gat_and_ref_not_by_touch),
	    cmocka_unit_test(test_cache_touch_moves_an_item_without_ttl),
	    cmocka_unit_test(test_cache_touch_move_during_snapshot_saves_once),
	    cmocka_unit_test(
		test_cache_touch_move_claims_copy_before_publishing),
	    cmocka_unit_test(
		test_cache_index_growth_among_pins_keeps_the_cache),
	    cmocka_unit_test(test_cache_touch_move_counts_one_hit),
	    cmocka_unit_test(
		test_cache_touch_move_that_evicts_the_item_is_enoent),
	    cmocka_unit_test(test_cache_listener_causes),
	    cmocka_unit_test(test_cache_ref_survives_replace_and_delete),
	    cmocka_unit_test(test_cache_too_big_is_e2big),
	    cmocka_unit_test(
		test_cache_value_over_the_largest_block_is_e2big_without_eviction),
	    cmocka_unit_test(test_cache_budget_is_exact),
	    cmocka_unit_test(test_cache_full_cache_evicts_every_policy),
	    cmocka_unit_test(test_cache_sizes_shift_without_calcification),
	    cmocka_unit_test(test_cache_large_store_evicts_about_its_size),
	    cmocka_unit_test(test_cache_metadata_per_item),
	    cmocka_unit_test(test_cache_block_sizes_across_the_meta_limit),
	    cmocka_unit_test(test_cache_equal_sizes_reuse_holes),
	    cmocka_unit_test(test_cache_small_request_in_a_big_hole),
	    cmocka_unit_test(test_cache_lru_evicts_least_recent),
	    cmocka_unit_test(test_cache_sieve_keeps_visited),
	    cmocka_unit_test(test_cache_s3fifo_ghost_readmits_to_main),
	    cmocka_unit_test(test_cache_s3fifo_ghost_survives_index_growth),
	    cmocka_unit_test(
		test_cache_s3fifo_hot_counter_keeps_racing_updates),
	    cmocka_unit_test(test_cache_get_or_load),
	    cmocka_unit_test(test_cache_get_or_load_without_loader_is_einval),
	    cmocka_unit_test(test_cache_hash_is_seeded),
	    cmocka_unit_test(test_cache_loaded_item_counts_as_fetched),
	    cmocka_unit_test(test_cache_metrics_table),
	    cmocka_unit_test(test_cache_model_random_ops),
	    cmocka_unit_test(test_cache_model_random_ops_near_the_meta_limit),
	    cmocka_unit_test(
		test_cache_reader_in_a_late_thread_destructor_is_waited_for),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
