/* SPDX-License-Identifier: MIT */
/*
 * Replays a trace (trace.h) through the real cache, for the policy test
 * and the benchmark's hit-ratio table (header only).
 *
 * Method: each request is a px_cache_get() of the key; a miss is
 * followed by a px_cache_set(), as a look-aside cache is used.  Keys are
 * the dense id as 8 hex digits, values 8 bytes: every item has the same
 * size.  The cache is created with max_items = the capacity in objects,
 * so its policy evicts exactly one item per insert once that many are
 * held (the cache's documented contract for this comparison), and with a
 * byte budget of twice what that many items charge plus 2 MiB, so bytes
 * never evict first.  The replay checks that this held: at the end the
 * cache holds exactly min(capacity, distinct keys) items and evicted
 * exactly (misses - items) of them; trace_cache_run() fails with
 * -EPROTO otherwise, because the miss ratio would then not be one at
 * the capacity asked for.
 */
#ifndef PX_TESTS_TRACE_CACHE_H
#define PX_TESTS_TRACE_CACHE_H

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <patinox/cache.h>

#include "trace.h"

#define TRACE_CACHE_KEY_LEN   8
#define TRACE_CACHE_VALUE_LEN 8
#define TRACE_CACHE_EXTRA     (2u << 20)

struct trace_cache_result {
	uint64_t requests, misses, evictions;
	size_t items;  /* held at the end */
	size_t budget; /* bytes given to the cache */
	double miss_ratio;
};

static inline void
trace_cache_key(char *buf, uint32_t id)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = TRACE_CACHE_KEY_LEN - 1; i >= 0; i--) {
		buf[i] = hex[id & 15];
		id >>= 4;
	}
}

static inline int
trace_cache_create(struct px_cache **c, enum px_cache_policy policy,
		   uint32_t cap, size_t *budget)
{
	size_t isz =
	    px_cache_item_size(TRACE_CACHE_KEY_LEN, TRACE_CACHE_VALUE_LEN);
	struct px_cache_opts o;

	px_cache_opts_init(&o);
	o.policy = policy;
	o.max_items = cap;
	o.expected_item_bytes = isz;
	*budget = 2 * (size_t)cap * isz + TRACE_CACHE_EXTRA;
	return px_cache_create(c, *budget, &o);
}

/* One GET, and a SET after a miss: 1 hit, 0 miss, or -errno. */
static inline int
trace_cache_access(struct px_cache *c, uint32_t id)
{
	static const char value[TRACE_CACHE_VALUE_LEN] = "01234567";
	char key[TRACE_CACHE_KEY_LEN], buf[TRACE_CACHE_VALUE_LEN];
	int ret;

	trace_cache_key(key, id);
	ret = px_cache_get(c, key, sizeof(key), buf, sizeof(buf), NULL);
	if (ret == 0)
		return 1;
	if (ret != -ENOENT)
		return ret;
	ret = px_cache_set(c, key, sizeof(key), value, sizeof(value), 0, 0);
	return ret ? ret : 0;
}

/* Distinct keys among the first @n requests of @t. */
static inline size_t
trace_cache_distinct(const struct trace *t, size_t n)
{
	uint8_t *seen = calloc(t->nunique, 1);
	size_t count = 0;

	if (!seen)
		return 0;
	for (size_t i = 0; i < n; i++) {
		count += !seen[t->ids[i]];
		seen[t->ids[i]] = 1;
	}
	free(seen);
	return count;
}

static inline int
trace_cache_check(struct px_cache *c, struct trace_cache_result *r,
		  const struct trace *t, uint32_t cap)
{
	uint64_t m[PX_CACHE_METRIC_COUNT];
	size_t distinct = trace_cache_distinct(t, r->requests);
	size_t want = distinct < cap ? distinct : cap;

	px_cache_metrics(c, m);
	r->items = px_cache_items(c);
	r->evictions = m[PX_CACHE_M_evictions];
	if (r->items != want || r->evictions != r->misses - r->items)
		return -EPROTO;
	return 0;
}

/*
 * trace_cache_run - replay the first @n requests of @t (0: all) through a
 * fresh cache with @policy holding @cap items, filling @r.  Returns 0,
 * -EPROTO when the cache did not hold exactly @cap items (see above), or
 * an error from the cache.
 */
static inline int
trace_cache_run(const struct trace *t, enum px_cache_policy policy,
		uint32_t cap, size_t n, struct trace_cache_result *r)
{
	struct px_cache *c;
	int ret;

	memset(r, 0, sizeof(*r));
	ret = trace_cache_create(&c, policy, cap, &r->budget);
	if (ret)
		return ret;
	r->requests = n == 0 || n > t->n ? t->n : n;
	for (size_t i = 0; i < r->requests; i++) {
		ret = trace_cache_access(c, t->ids[i]);
		if (ret < 0)
			goto out_destroy;
		r->misses += ret == 0;
	}
	r->miss_ratio = (double)r->misses / (double)r->requests;
	ret = trace_cache_check(c, r, t, cap);
out_destroy:
	px_cache_destroy(c);
	return ret;
}

#endif
