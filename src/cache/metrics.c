// SPDX-License-Identifier: MIT
/*
 * Cache counters: names and descriptions come from the one table in
 * <patinox/cache.h> (PX_CACHE_METRICS).  Counters are summed over
 * cache-line aligned stripes, one per thread (modulo the stripe count), so
 * readers on different cores do not bounce one line; gauges are read from
 * the control block, where writers keep them under the writer lock.
 */
#include <stdatomic.h>

#include "cache_int.h"

static const char *const names[] = {
#define PXC_NAME(name, kind, desc) #name,
    PX_CACHE_METRICS(PXC_NAME)
#undef PXC_NAME
};

static const char *const descs[] = {
#define PXC_DESC(name, kind, desc) desc,
    PX_CACHE_METRICS(PXC_DESC)
#undef PXC_DESC
};

static _Atomic unsigned next_thread_id;
static _Thread_local unsigned thread_id = ~0u;

struct pxc_stripe *
pxc_stripe(const struct px_cache *c)
{
	if (thread_id == ~0u)
		thread_id = atomic_fetch_add_explicit(&next_thread_id, 1,
						      memory_order_relaxed);
	return &c->stripes[thread_id % c->nstripes];
}

const char *
px_cache_metric_name(enum px_cache_metric m)
{
	return (unsigned)m < PX_CACHE_METRIC_COUNT ? names[m] : NULL;
}

const char *
px_cache_metric_desc(enum px_cache_metric m)
{
	return (unsigned)m < PX_CACHE_METRIC_COUNT ? descs[m] : NULL;
}

static uint64_t
load(const _Atomic size_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static void
gauges(const struct px_cache *c, uint64_t *vals)
{
	vals[PX_CACHE_M_items] = load(&c->items);
	vals[PX_CACHE_M_bytes] = load(&c->used_units) * PXC_UNIT;
	vals[PX_CACHE_M_limbo_bytes] = load(&c->limbo_units) * PXC_UNIT;
	vals[PX_CACHE_M_arena_bytes] =
	    (c->arena.total_units - load(&c->table_units)) * PXC_UNIT;
	vals[PX_CACHE_M_free_bytes] = vals[PX_CACHE_M_arena_bytes] -
				      vals[PX_CACHE_M_bytes] -
				      vals[PX_CACHE_M_limbo_bytes];
	vals[PX_CACHE_M_limit_bytes] = c->limit;
}

void
px_cache_metrics(const struct px_cache *c, uint64_t *vals)
{
	unsigned s, m;

	for (m = 0; m < PX_CACHE_METRIC_COUNT; m++)
		vals[m] = 0;
	for (s = 0; s < c->nstripes; s++)
		for (m = 0; m < PX_CACHE_METRIC_COUNT; m++)
			vals[m] += atomic_load_explicit(&c->stripes[s].v[m],
							memory_order_relaxed);
	gauges(c, vals);
}

void
px_cache_metrics_foreach(const struct px_cache *c,
			 void (*fn)(void *arg, const char *name,
				    uint64_t value),
			 void *arg)
{
	uint64_t vals[PX_CACHE_METRIC_COUNT];
	unsigned m;

	px_cache_metrics(c, vals);
	for (m = 0; m < PX_CACHE_METRIC_COUNT; m++)
		fn(arg, names[m], vals[m]);
}
