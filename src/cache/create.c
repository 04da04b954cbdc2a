// SPDX-License-Identifier: MIT
/*
 * Creating and destroying a cache.  The budget is exact: one region of at
 * most @limit bytes holds the control block, the counter stripes, the pin
 * table and the item arena, carved in that order; the hash index and the
 * S3-FIFO ghost are a block of the arena (they grow, see cache.c).  If the
 * backing's page size would round the region above the limit, the region
 * is made smaller (whole pages), never larger.
 */
#include <errno.h>
#include <string.h>

#include "cache_int.h"

extern const struct px_cache_hooks pxc_real_clock;

static size_t
round_up(size_t v, size_t a)
{
	return (v + a - 1) / a * a;
}

/* The least power of two >= @v, saturating at the largest one. */
static size_t
pow2_at_least(size_t v)
{
	size_t p = 1;

	if (v > SIZE_MAX / 2)
		return SIZE_MAX / 2 + 1;
	while (p < v)
		p <<= 1;
	return p;
}

void
px_cache_opts_init(struct px_cache_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	px_region_opts_init(&opts->region);
	opts->region.name = "px_cache";
}

const char *
px_cache_policy_name(enum px_cache_policy p)
{
	switch (p) {
	case PX_CACHE_POLICY_LRU:
		return "lru";
	case PX_CACHE_POLICY_SIEVE:
		return "sieve";
	case PX_CACHE_POLICY_S3FIFO:
		return "s3fifo";
	default:
		return "default";
	}
}

enum px_cache_policy
px_cache_policy(const struct px_cache *c)
{
	return c->pol.kind;
}

static enum px_cache_policy
default_policy(void)
{
#if defined(CONFIG_PX_CACHE_POLICY_LRU)
	return PX_CACHE_POLICY_LRU;
#elif defined(CONFIG_PX_CACHE_POLICY_SIEVE)
	return PX_CACHE_POLICY_SIEVE;
#else
	return PX_CACHE_POLICY_S3FIFO;
#endif
}

/* A region of at most @limit bytes, as large as the backing allows. */
static int
region_within(struct px_region **out, size_t limit,
	      const struct px_region_opts *opts)
{
	struct px_region_opts o = *opts;
	size_t want = limit, ps;
	int tries, err;

	for (tries = 0; tries < 3; tries++) {
		err = px_region_create(out, want, &o);
		if (err)
			return err;
		if (px_region_size(*out) <= limit)
			return 0;
		ps = px_region_page_size(*out);
		px_region_destroy(*out);
		want = limit / ps * ps;
		if (!want) {
			o.backing = PX_REGION_4K;
			want = limit / 4096 * 4096;
		}
	}
	return -ENOMEM;
}

struct layout {
	size_t stripes, pins, nbuckets, ghost_buckets, arena;
};

/* The first index: max_items, the expected item size, or the minimum. */
static size_t
index_buckets(const struct px_cache_opts *o, size_t size)
{
	size_t want = CONFIG_PX_CACHE_INDEX_MIN_BUCKETS, n;

	if (o->max_items)
		want = o->max_items;
	else if (o->expected_item_bytes)
		want = size / o->expected_item_bytes;
	n = pow2_at_least(want < 64 ? 64 : want);

	/* An estimate in byte mode: take the nearer power of two. */
	if (!o->max_items && n > 64 && (double)want * 1.4142 < (double)n)
		n >>= 1;
	while (n > 64 && n > size / 8 / sizeof(uint32_t))
		n >>= 1;
	return n;
}

static size_t
ghost_buckets(const struct px_cache_opts *o, size_t nbuckets, size_t size)
{
	size_t want = nbuckets, n;

	/* Item-count mode is for exact comparisons: room to spare.  In
	 * byte mode one entry per expected item (main holds ~90%). */
	if (o->max_items)
		want =
		    o->max_items > SIZE_MAX / 2 ? SIZE_MAX : 2 * o->max_items;
	n = pow2_at_least(want / PXC_GHOST_WAYS + !!(want % PXC_GHOST_WAYS));
	while (n > 1 && n > size / 8 / sizeof(uint32_t) / PXC_GHOST_WAYS)
		n >>= 1;
	return n;
}

static int
plan(struct layout *l, const struct px_cache_opts *o, enum px_cache_policy pol,
     size_t size)
{
	size_t off = pxc_stripes_off();

	l->stripes = off;
	off += (size_t)CONFIG_PX_CACHE_STAT_STRIPES * sizeof(struct pxc_stripe);
	l->pins = off;
	off += PXC_PIN_SLOTS * sizeof(uint32_t);
	l->nbuckets = index_buckets(o, size);
	l->ghost_buckets = 0;
	if (pol == PX_CACHE_POLICY_S3FIFO)
		l->ghost_buckets = ghost_buckets(o, l->nbuckets, size);
	l->arena = round_up(off, 64);
	/* The arena ends with an 8-byte sentinel; want room for items. */
	if (l->arena + 64 * 1024 > size)
		return -EINVAL;
	return 0;
}

static void
init_control(struct px_cache *c, const struct px_cache_opts *o,
	     const struct layout *l, size_t size)
{
	c->magic = PXC_MAGIC;
	c->layout = px_cache_layout_id();
	c->base = (char *)c;
	c->seed = pxc_seed();
	c->region_bytes = size;
	c->max_items = o->max_items;
	c->item_max = o->item_max ? o->item_max
				  : (size_t)CONFIG_PX_CACHE_ITEM_MAX_KB * 1024;
	c->listener = o->listener;
	c->listener_arg = o->listener_arg;
	c->hooks = o->hooks && o->hooks->now ? *o->hooks : pxc_real_clock;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->load_lock, NULL);
	pthread_cond_init(&c->load_cond, NULL);
	c->stripes = (struct pxc_stripe *)(c->base + l->stripes);
	c->nstripes = CONFIG_PX_CACHE_STAT_STRIPES;
	c->pins = (_Atomic uint32_t *)(c->base + l->pins);
	pxc_arena_init(&c->arena, c->base, (uint32_t)(l->arena / PXC_UNIT),
		       (uint32_t)(size / PXC_UNIT - 1));
}

/* The first index, from the empty arena (no eviction). */
static int
init_index(struct px_cache *c, const struct layout *l)
{
	struct pxc_index *ix =
	    pxc_index_new(c, l->nbuckets, l->ghost_buckets, 0, false);

	if (!ix)
		return -EINVAL;
	pxc_index_use(c, ix);
	return 0;
}

static int
check_opts(size_t limit, const struct px_cache_opts *o)
{
	if (limit < PXC_LIMIT_MIN || limit > PXC_LIMIT_MAX)
		return -EINVAL;
	if ((unsigned)o->policy > PX_CACHE_POLICY_S3FIFO)
		return -EINVAL;
	if (o->item_max > PXC_VALUE_CAP)
		return -EINVAL;
	return 0;
}

int
px_cache_create(struct px_cache **out, size_t limit,
		const struct px_cache_opts *opts)
{
	struct px_cache_opts o;
	struct px_region *r;
	struct px_cache *c;
	enum px_cache_policy pol;
	struct layout l;
	size_t size;
	void *mem;
	int err;

	if (opts)
		o = *opts;
	else
		px_cache_opts_init(&o);
	err = check_opts(limit, &o);
	if (err)
		return err;
	pol = o.policy ? o.policy : default_policy();

	err = region_within(&r, limit, &o.region);
	if (err)
		return err;
	size = px_region_size(r);
	err = plan(&l, &o, pol, size);
	if (err)
		goto out_region;
	err = px_region_carve(r, size, 64, &mem);
	if (err)
		goto out_region;

	c = mem;
	memset(c, 0, sizeof(*c));
	c->region = r;
	c->limit = limit;
	init_control(c, &o, &l, size);
	pxc_policy_init(c, pol);
	err = init_index(c, &l);
	if (err)
		goto out_control;
	*out = c;
	return 0;

out_control:
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->load_lock);
	pthread_cond_destroy(&c->load_cond);

out_region:
	px_region_destroy(r);
	return err;
}

void
px_cache_destroy(struct px_cache *c)
{
	struct px_region *r;

	if (!c)
		return;
	r = c->region;
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->load_lock);
	pthread_cond_destroy(&c->load_cond);
	px_region_destroy(r);
}
