// SPDX-License-Identifier: MIT
/*
 * Memory: what an item costs when the cache is full of small items (by
 * default about 1M items of 16-byte keys and 100-byte values), for each
 * policy, against the sum of key and value sizes.
 *
 * The index and the S3-FIFO ghost are sized from the byte budget, so the
 * cost per item is only meaningful for a cache that is full: a budget
 * with room to spare would spread its index over too few items.  So each
 * policy is measured in two passes.  The first fills a cache of a
 * guessed budget with distinct keys until it evicts, and so learns what
 * one item really costs of the budget; the second creates a cache of
 * (wanted items x that cost) and fills it the same way.  The figures are
 * from the second: budget / items held, and the cache's own breakdown
 * (px_cache_memory) of arena, index, ghost and the rest.  The resident
 * size of the cache's mapping (smaps) is printed as a check from outside.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../apps/common/log.h"
#include "bench_cache.h"

#define MEM_FIRST_SLACK 1.25 /* first guess: item charge plus a quarter */
#define MEM_MIN_BUDGET  (2u << 20)
#define MEM_OVERFILL    1.5 /* insert this many times the wanted items */

struct mem_run {
	struct px_cache_memory m;
	size_t limit, items;
	const char *backing;
	size_t resident;
};

/*
 * memcached 1.6's cost of the same item, from its item layout (48-byte
 * header, 8-byte cas, key + NUL, value + CRLF) and its default slab
 * classes (96 bytes, then x1.25 rounded up to 8).  Computed, not measured.
 */
static void
mem_memcached(size_t klen, size_t vlen, size_t *item, size_t *chunk)
{
	size_t c = 96;

	*item = 48 + 8 + klen + 1 + vlen + 2;
	while (c < *item) {
		c = (size_t)((double)c * 1.25);
		c = (c + 7) & ~(size_t)7;
	}
	*chunk = c;
}

/* Inserts distinct keys until the cache is full and evicting. */
static int
mem_fill(struct px_cache *c, const struct bench_opts *o, const char *value)
{
	size_t n = (size_t)((double)o->mem_items * MEM_OVERFILL);
	uint64_t m[PX_CACHE_METRIC_COUNT];
	char key[BENCH_KEY_LEN];
	int ret;

	for (size_t i = 0; i < n; i++) {
		bench_key(key, i);
		ret = px_cache_set(c, key, sizeof(key), value, o->mem_value, 0,
				   0);
		if (ret)
			return ret;
	}
	px_cache_metrics(c, m);
	return m[PX_CACHE_M_evictions] ? 0 : -ENOSPC;
}

static void
mem_backing(struct px_cache *c, const struct bench_opts *o, struct mem_run *r)
{
	struct px_cache_ref ref;
	char key[BENCH_KEY_LEN];
	double share;

	r->backing = "unknown";
	r->resident = 0;
	/* The newest key is certainly still held. */
	bench_key(key, (size_t)((double)o->mem_items * MEM_OVERFILL) - 1);
	if (px_cache_get_ref(c, key, sizeof(key), &ref) == 0) {
		r->backing = bench_backing_of(ref.value, &share, &r->resident);
		px_cache_ref_put(c, &ref);
	}
}

static int
mem_run(const struct bench_opts *o, enum px_cache_policy policy, size_t limit,
	const char *value, struct mem_run *r)
{
	struct px_cache_opts co;
	struct px_cache *c;
	int ret;

	px_cache_opts_init(&co);
	co.policy = policy;
	co.expected_item_bytes =
	    px_cache_item_size(BENCH_KEY_LEN, o->mem_value);
	ret = px_cache_create(&c, limit, &co);
	if (ret)
		return ret;
	ret = mem_fill(c, o, value);
	if (ret == 0) {
		px_cache_memory(c, &r->m);
		r->limit = limit;
		r->items = r->m.items;
		mem_backing(c, o, r);
	}
	px_cache_destroy(c);
	return ret;
}

static void
mem_print(const struct bench_opts *o, enum px_cache_policy policy,
	  const struct mem_run *r)
{
	double n = (double)r->items;
	size_t kv = BENCH_KEY_LEN + o->mem_value;
	const struct px_cache_memory *m = &r->m;

	printf("%-7s %9zu %10.1f %8.1f %7zu %8.1f %8.1f %8.1f %8.1f %8.1f  "
	       "%s\n",
	       px_cache_policy_name(policy), r->items, (double)r->limit / n,
	       (double)r->limit / n - (double)kv, m->item_header,
	       (double)m->used_bytes / n - (double)kv,
	       (double)m->index_bytes / n, (double)m->ghost_bytes / n,
	       (double)(m->free_bytes + m->limbo_bytes + m->other_bytes +
			m->limit - m->region_bytes) /
		   n,
	       (double)r->resident / n, r->backing);
}

static int
mem_policy(const struct bench_opts *o, enum px_cache_policy policy,
	   const char *value)
{
	size_t isz = px_cache_item_size(BENCH_KEY_LEN, o->mem_value);
	size_t guess = (size_t)((double)(o->mem_items * isz) * MEM_FIRST_SLACK);
	struct mem_run r;
	double per_item;
	int ret;

	ret = mem_run(o, policy, guess + MEM_MIN_BUDGET, value, &r);
	if (ret)
		return ret;
	per_item = (double)r.limit / (double)r.items;
	ret =
	    mem_run(o, policy,
		    (size_t)(per_item * (double)o->mem_items) + MEM_MIN_BUDGET,
		    value, &r);
	if (ret == 0)
		mem_print(o, policy, &r);
	return ret;
}

int
bench_memory(const struct bench_opts *o)
{
	static const enum px_cache_policy policies[] = {
	    PX_CACHE_POLICY_LRU, PX_CACHE_POLICY_SIEVE, PX_CACHE_POLICY_S3FIFO};
	size_t kv = BENCH_KEY_LEN + o->mem_value, mc_item, mc_chunk;
	char *value;
	int ret = 0;

	printf("\n== memory: a full cache of about %zu items, %d B keys, "
	       "%zu B values (key + value = %zu B)\n",
	       o->mem_items, BENCH_KEY_LEN, o->mem_value, kv);
	printf("   bytes per item: budget = whole budget / items held; over "
	       "k+v = budget - key - value;\n   header = fixed item header; "
	       "arena = arena bytes beyond key + value (header, alignment);\n"
	       "   slack = free, limbo, control and unmapped budget; rss/it = "
	       "resident bytes of the mapping (smaps) / items\n");
	printf("%-7s %9s %10s %8s %7s %8s %8s %8s %8s %8s  %s\n", "policy",
	       "items", "budget/it", "over k+v", "header", "arena", "index",
	       "ghost", "slack", "rss/it", "pages");
	value = malloc(o->mem_value ? o->mem_value : 1);
	if (!value)
		return -ENOMEM;
	memset(value, 'm', o->mem_value);
	for (size_t p = 0; p < sizeof(policies) / sizeof(policies[0]); p++) {
		ret = mem_policy(o, policies[p], value);
		if (ret) {
			LOG_ERROR("memory, %s: %s",
				  px_cache_policy_name(policies[p]),
				  strerror(-ret));
			break;
		}
	}
	mem_memcached(BENCH_KEY_LEN, o->mem_value, &mc_item, &mc_chunk);
	printf("memcached 1.6, same item: %zu B item (%zu B over k+v), %zu B "
	       "slab chunk; computed from its layout, not measured\n",
	       mc_item, mc_item - kv, mc_chunk);
	free(value);
	return ret;
}
