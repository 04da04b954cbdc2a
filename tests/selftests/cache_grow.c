// SPDX-License-Identifier: MIT
/*
 * Growth of the cache's hash index: a cache that starts with a 64-bucket
 * index is filled to a million items while two reader threads look up
 * keys already stored (each must hit, with its own value) and keys never
 * stored (each must miss); the index doubles fourteen times on the way
 * and readers race every doubling.  A second test grows the index in a
 * small cache that evicts all along and checks after every store that the
 * index stays inside the budget.  Meant to run under SANITIZE=thread too.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <patinox/cache.h>

#include "harness.h"

#define GROW_ITEMS  1000000u
#define GROW_BUDGET (128u << 20)

struct grow {
	struct px_cache *c;
	_Atomic unsigned stored; /* keys 0 .. stored-1 are in the cache */
	_Atomic bool done;
	_Atomic unsigned long hits, false_misses, wrong, phantom;
};

static size_t
key_of(char *key, unsigned k)
{
	return (size_t)snprintf(key, 16, "g%u", k);
}

static size_t
val_of(char *val, unsigned k)
{
	return (size_t)snprintf(val, 16, "v%08x", k * 2654435761u);
}

static unsigned
next_rand(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* One lookup of a stored key: it must hit with its own value. */
static void
read_stored(struct grow *g, unsigned k)
{
	char key[16], want[16], buf[16];
	struct px_cache_info info;
	size_t kl = key_of(key, k), vl = val_of(want, k);
	int err = px_cache_get(g->c, key, kl, buf, sizeof(buf), &info);

	if (err == -ENOENT)
		atomic_fetch_add(&g->false_misses, 1);
	else if (err || info.vlen != vl || memcmp(buf, want, vl))
		atomic_fetch_add(&g->wrong, 1);
	else
		atomic_fetch_add_explicit(&g->hits, 1, memory_order_relaxed);
}

static void *
reader(void *arg)
{
	struct grow *g = arg;
	unsigned seed = (unsigned)(uintptr_t)&seed, n, k;
	char key[16], buf[16];

	while (!atomic_load(&g->done)) {
		n = atomic_load(&g->stored);
		if (!n)
			continue;
		k = next_rand(&seed) % n;
		read_stored(g, k);
		/* A key never stored must miss. */
		k = GROW_ITEMS + next_rand(&seed) % GROW_ITEMS;
		key_of(key, k);
		if (px_cache_get(g->c, key, strlen(key), buf, sizeof(buf),
				 NULL) != -ENOENT)
			atomic_fetch_add(&g->phantom, 1);
	}
	return NULL;
}

static struct px_cache *
tiny_index_cache(size_t budget, enum px_cache_policy pol)
{
	struct px_cache_opts o;
	struct px_cache *c;

	px_cache_opts_init(&o);
	o.policy = pol;
	o.expected_item_bytes = budget; /* one bucket: the 64 minimum */
	o.region.backing = PX_REGION_4K;
	if (px_cache_create(&c, budget, &o))
		return NULL;
	return c;
}

static uint64_t
metric(struct px_cache *c, enum px_cache_metric m)
{
	uint64_t v[PX_CACHE_METRIC_COUNT];

	px_cache_metrics(c, v);
	return v[m];
}

static bool
budget_holds(struct px_cache *c, size_t budget)
{
	struct px_cache_memory m;

	px_cache_memory(c, &m);
	return m.region_bytes <= budget &&
	       m.index_bytes + m.ghost_bytes + m.other_bytes + m.arena_bytes ==
		   m.region_bytes &&
	       m.used_bytes + m.limbo_bytes + m.free_bytes == m.arena_bytes;
}

TEST(cache_grow_to_a_million_items_under_readers)
{
	struct grow g = {0};
	struct px_cache_memory m;
	pthread_t th[2];
	char key[16], val[16];
	unsigned k;
	int i;

	g.c = tiny_index_cache(GROW_BUDGET, PX_CACHE_POLICY_S3FIFO);
	ASSERT_NE(NULL, g.c);
	px_cache_memory(g.c, &m);
	ASSERT_EQ(64 * sizeof(uint32_t), m.index_bytes);
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, reader, &g));
	for (k = 0; k < GROW_ITEMS; k++) {
		ASSERT_EQ(0, px_cache_set(g.c, key, key_of(key, k), val,
					  val_of(val, k), 0, 0));
		atomic_store(&g.stored, k + 1);
	}
	atomic_store(&g.done, true);
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	for (k = 0; k < GROW_ITEMS; k += 7)
		read_stored(&g, k);

	px_cache_memory(g.c, &m);
	TH_LOG("%lu reader hits, index %zu buckets, %llu resizes",
	       atomic_load(&g.hits), m.index_bytes / sizeof(uint32_t),
	       (unsigned long long)metric(g.c, PX_CACHE_M_index_resizes));
	EXPECT_EQ(0, atomic_load(&g.false_misses));
	EXPECT_EQ(0, atomic_load(&g.wrong));
	EXPECT_EQ(0, atomic_load(&g.phantom));
	EXPECT_EQ(0, metric(g.c, PX_CACHE_M_evictions));
	EXPECT_EQ(GROW_ITEMS, m.items);
	EXPECT_EQ(14, metric(g.c, PX_CACHE_M_index_resizes)); /* 64 -> 1M */
	EXPECT_EQ(1u << 20, m.index_bytes / sizeof(uint32_t));
	EXPECT_EQ(1u << 20, m.ghost_bytes / sizeof(uint32_t));
	EXPECT_TRUE(budget_holds(g.c, GROW_BUDGET));
	px_cache_destroy(g.c);
}

/* A full 4 MiB cache: growth evicts like a store, never past the budget. */
TEST(cache_grow_inside_the_budget_while_evicting)
{
	static const enum px_cache_policy pols[] = {
	    PX_CACHE_POLICY_LRU, PX_CACHE_POLICY_SIEVE, PX_CACHE_POLICY_S3FIFO};
	struct px_cache_memory m;
	struct px_cache *c;
	char key[16], val[16];
	unsigned k, p;

	for (p = 0; p < 3; p++) {
		c = tiny_index_cache(4u << 20, pols[p]);
		ASSERT_NE(NULL, c);
		for (k = 0; k < 200000; k++) {
			ASSERT_EQ(0, px_cache_set(c, key, key_of(key, k), val,
						  val_of(val, k), 0, 0));
			ASSERT_TRUE(budget_holds(c, 4u << 20));
		}
		px_cache_memory(c, &m);
		TH_LOG("%s: %zu items, %zu buckets, %llu resizes",
		       px_cache_policy_name(pols[p]), m.items,
		       m.index_bytes / sizeof(uint32_t),
		       (unsigned long long)metric(c, PX_CACHE_M_index_resizes));
		/*
		 * Items of 56 B: about 80,000 fit; the index followed until
		 * its next size would pass an eighth of the arena (S3-FIFO's
		 * ghost triples the bytes per bucket: it stops one earlier).
		 */
		EXPECT_TRUE(m.items > 50000);
		EXPECT_TRUE(m.index_bytes / sizeof(uint32_t) >= m.items / 4);
		EXPECT_TRUE(metric(c, PX_CACHE_M_index_resizes) >= 9);
		EXPECT_TRUE((m.index_bytes + m.ghost_bytes) * 8 <=
			    m.arena_bytes + m.index_bytes + m.ghost_bytes);
		EXPECT_TRUE(metric(c, PX_CACHE_M_evictions) > 100000);
		/* The last keys are there. */
		EXPECT_EQ(0, px_cache_get(c, key, key_of(key, k - 1), val,
					  sizeof(val), NULL));
		px_cache_destroy(c);
	}
}

TEST_HARNESS_MAIN
