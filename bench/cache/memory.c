// SPDX-License-Identifier: MIT
/*
 * Memory: bytes per item with many small items (by default 1M items of
 * 16-byte keys and 100-byte values), against the sum of key and value
 * sizes.  The cache's own accounting (px_cache_memory) splits the cost
 * into the item arena, the hash index and the rest; the resident size of
 * its mapping, read from /proc/self/smaps, checks it from outside.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../apps/common/log.h"
#include "bench_cache.h"

#define MEM_BUDGET_SLACK 1.3
#define MEM_BUDGET_EXTRA (64u << 20)

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

static int
mem_fill(struct px_cache *c, const struct bench_opts *o, char *value)
{
	char key[BENCH_KEY_LEN];
	int ret;

	for (size_t i = 0; i < o->mem_items; i++) {
		bench_key(key, i);
		ret = px_cache_set(c, key, sizeof(key), value, o->mem_value, 0,
				   0);
		if (ret)
			return ret;
	}
	return px_cache_items(c) == o->mem_items ? 0 : -ENOSPC;
}

static void
mem_report(struct px_cache *c, const struct bench_opts *o)
{
	double n = (double)o->mem_items, share;
	size_t kv = BENCH_KEY_LEN + o->mem_value, mc_item, mc_chunk, resident;
	struct px_cache_memory m;
	struct px_cache_ref ref;
	const char *backing = "unknown";
	char key[BENCH_KEY_LEN];

	px_cache_memory(c, &m);
	bench_key(key, 0);
	resident = 0;
	if (px_cache_get_ref(c, key, sizeof(key), &ref) == 0) {
		backing = bench_backing_of(ref.value, &share, &resident);
		px_cache_ref_put(c, &ref);
	}
	mem_memcached(BENCH_KEY_LEN, o->mem_value, &mc_item, &mc_chunk);
	printf("items %zu, key + value %zu B; budget %zu B, region %zu B "
	       "(%s)\n",
	       m.items, kv, m.limit, m.region_bytes, backing);
	printf("  %-34s %8.1f B\n", "item charge (px_cache_item_size)",
	       (double)px_cache_item_size(BENCH_KEY_LEN, o->mem_value));
	printf("  %-34s %8.1f B  (header %zu B)\n", "arena bytes per item",
	       (double)m.used_bytes / n, m.item_header);
	printf("  %-34s %8.1f B\n", "index bytes per item",
	       (double)m.index_bytes / n);
	printf("  %-34s %8.1f B\n", "other (ghost, control) per item",
	       (double)(m.ghost_bytes + m.other_bytes) / n);
	printf("  %-34s %8.1f B  = key + value + %.1f B\n", "total per item",
	       (double)(m.used_bytes + m.index_bytes + m.ghost_bytes +
			m.other_bytes) /
		   n,
	       (double)(m.used_bytes + m.index_bytes + m.ghost_bytes +
			m.other_bytes) /
		       n -
		   (double)kv);
	printf("  %-34s %8.1f B\n", "resident (smaps) per item",
	       (double)resident / n);
	printf("  %-34s %8zu B  (slab chunk %zu B; computed from memcached's "
	       "layout, not measured)\n",
	       "memcached 1.6 item", mc_item, mc_chunk);
}

int
bench_memory(const struct bench_opts *o)
{
	size_t isz = px_cache_item_size(BENCH_KEY_LEN, o->mem_value);
	struct px_cache_opts co;
	struct px_cache *c;
	char *value;
	int ret;

	printf("\n== memory: %zu items, %d B keys, %zu B values\n",
	       o->mem_items, BENCH_KEY_LEN, o->mem_value);
	value = malloc(o->mem_value ? o->mem_value : 1);
	if (!value)
		return -ENOMEM;
	memset(value, 'm', o->mem_value);
	px_cache_opts_init(&co);
	co.expected_item_bytes = isz;
	ret = px_cache_create(
	    &c,
	    (size_t)((double)(o->mem_items * isz) * MEM_BUDGET_SLACK) +
		MEM_BUDGET_EXTRA,
	    &co);
	if (ret)
		goto out_free_value;
	ret = mem_fill(c, o, value);
	if (ret == 0)
		mem_report(c, o);
	else
		LOG_ERROR("filling %zu items: %s", o->mem_items,
			  strerror(-ret));
	px_cache_destroy(c);
out_free_value:
	free(value);
	return ret;
}
