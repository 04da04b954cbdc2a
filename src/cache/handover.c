// SPDX-License-Identifier: MIT
/*
 * Handing a cache to another process without copying it (a warm roll, in
 * the manner of CacheLib's): everything of a cache lives in one region,
 * and everything in the region refers to the rest by offsets, except for
 * a few pointers in the control block.  A cache made on a shareable
 * (memfd) region is quiesced by px_cache_handover(), its memfd passed on
 * (SCM_RIGHTS, or kept across exec), and px_cache_adopt() maps it again,
 * checks that the same build made it, and moves those pointers to the new
 * address.  Locks, the counter stripes, loader bookkeeping, the listener
 * and the clock are the new owner's; items, cas ids, expiry times, the
 * index, the policy's queues, the hash seed and the snapshot generation
 * (items carry its claim bit) carry over.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>

#include <patinox/error.h>
#include <xxhash.h>

#include "cache_int.h"

/* Bump when the meaning of the region changes without its sizes. */
#define PXC_LAYOUT_VERSION 2u /* 2: 32-bit ghost entries */

uint64_t
px_cache_layout_id(void)
{
	const uint64_t facts[] = {
	    PXC_LAYOUT_VERSION,
	    sizeof(struct px_cache),
	    sizeof(struct pxc_item),
	    sizeof(struct pxc_index),
	    sizeof(struct pxc_stripe),
	    sizeof(pthread_mutex_t),
	    offsetof(struct px_cache, arena),
	    offsetof(struct px_cache, pol),
	    offsetof(struct px_cache, snap),
	    PXC_UNIT,
	    PXC_PIN_SLOTS,
	    PXC_GHOST_WAYS,
	    CONFIG_PX_CACHE_STAT_STRIPES,
	    CONFIG_PX_CACHE_KEY_MAX,
	};

	return XXH3_64bits(facts, sizeof(facts));
}

static bool
pins_clear(const struct px_cache *c)
{
	unsigned i;

	for (i = 0; i < PXC_PIN_SLOTS; i++)
		if (atomic_load_explicit(&c->pins[i], memory_order_acquire))
			return false;
	return true;
}

static bool
loads_pending(struct px_cache *c)
{
	bool busy;

	pthread_mutex_lock(&c->load_lock);
	busy = c->loads != NULL;
	pthread_mutex_unlock(&c->load_lock);
	return busy;
}

int
px_cache_handover(struct px_cache *c, int *fd)
{
	struct px_region *r = c->region;
	int rfd = px_region_fd(r), dfd;

	if (rfd < 0)
		return -EINVAL;
	pxc_lock(c);
	if (c->snap.active || loads_pending(c)) /* lock, then load_lock */
		goto out_busy;
	while (c->limbo && pxc_reclaim(c))
		;
	if (c->limbo || c->pinned || !pins_clear(c))
		goto out_busy;
	dfd = fcntl(rfd, F_DUPFD_CLOEXEC, 0);
	if (dfd < 0) {
		pxc_unlock(c);
		return -errno;
	}
	/* The control block is the adopter's from here on, in the shared
	 * memory itself: read nothing more of it.  The writer lock stays
	 * held in the mapping this process drops. */
	atomic_store_explicit(&c->handover, PXC_HANDED, memory_order_release);
	px_region_destroy(r);
	*fd = dfd;
	return 0;

out_busy:
	pxc_unlock(c);
	return -EBUSY;
}

/*
 * Point every pointer into the region at @c's mapping.  Each is rebuilt
 * from offsets that no adoption changes (the layout's constants and
 * index_off), never from the pointer itself, so this can be done again
 * over a control block whose adopter died half way through it
 * (px_cache_reclaim()).
 */
static void
rebase_all(struct px_cache *c)
{
	char *to = (char *)c;
	struct pxc_index *ix;

	c->base = to;
	c->arena.base = to;
	c->stripes = (struct pxc_stripe *)(to + pxc_stripes_off());
	c->pins = (_Atomic uint32_t *)(to + pxc_pins_off());
	ix = (struct pxc_index *)((char *)pxc_item(c, c->index_off) +
				  PXC_IX_OFF);
	c->buckets = ix->b;
	c->pol.ghost = (uint32_t *)(ix->b + ix->mask + 1);
	atomic_store_explicit(&c->index, ix, memory_order_relaxed);
}

/* Whether the offsets adoption relies on stay inside @size bytes. */
static bool
plausible(const struct px_cache *c, size_t size)
{
	size_t ix = (size_t)c->index_off * PXC_UNIT;

	return c->region_bytes == size && c->limit >= size &&
	       (size_t)c->arena.end * PXC_UNIT + PXC_UNIT <= size &&
	       c->arena.start < c->arena.end && ix >= pxc_pins_off() &&
	       ix + PXC_IX_OFF + sizeof(struct pxc_index) < size &&
	       !c->snap.active && !c->limbo && !c->pinned;
}

static void
take_ownership(struct px_cache *c, struct px_region *r,
	       const struct px_cache_opts *o)
{
	extern const struct px_cache_hooks pxc_real_clock;
	unsigned gen;

	c->region = r;
	c->listener = o ? o->listener : NULL;
	c->listener_arg = o ? o->listener_arg : NULL;
	c->hooks = o && o->hooks && o->hooks->now ? *o->hooks : pxc_real_clock;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->load_lock, NULL);
	pthread_cond_init(&c->load_cond, NULL);
	c->loads = NULL;
	/* No snapshot runs, but the items carry the claim bit of the last
	 * one's parity: the count goes on, or the next snapshot could reuse
	 * that parity and skip every item as claimed already. */
	gen = c->snap.gen;
	memset(&c->snap, 0, sizeof(c->snap));
	c->snap.gen = gen;
	memset(c->stripes, 0, (size_t)c->nstripes * sizeof(*c->stripes));
}

/* Adopt, taking the claim from HANDED, or from any state if @force. */
static int
adopt(struct px_cache **out, int fd, const struct px_cache_opts *opts,
      bool force)
{
	uint32_t handed = PXC_HANDED;
	struct px_region *r;
	struct px_cache *c;
	size_t size;
	int err;

	err = px_region_map_fd(&r, fd, opts ? &opts->region : NULL);
	if (err)
		return err;
	size = px_region_size(r);
	err = -PX_ECORRUPT;
	if (size < sizeof(*c))
		goto out_region;
	c = px_region_base(r);
	if (c->magic != PXC_MAGIC || c->layout != px_cache_layout_id())
		goto out_region;
	err = -EBUSY; /* still in use, or another process adopts it */
	if (force)
		atomic_store_explicit(&c->handover, PXC_ADOPTING,
				      memory_order_relaxed);
	else if (!atomic_compare_exchange_strong_explicit(
		     &c->handover, &handed, PXC_ADOPTING, memory_order_acquire,
		     memory_order_relaxed))
		goto out_region;
	if (!plausible(c, size)) {
		err = -PX_ECORRUPT;
		atomic_store_explicit(&c->handover, PXC_HANDED,
				      memory_order_release);
		goto out_region;
	}
	rebase_all(c);
	take_ownership(c, r, opts);
	atomic_store_explicit(&c->handover, PXC_LIVE, memory_order_release);
	*out = c;
	return 0;

out_region:
	px_region_destroy(r);
	return err;
}

int
px_cache_adopt(struct px_cache **out, int fd, const struct px_cache_opts *opts)
{
	return adopt(out, fd, opts, false);
}

int
px_cache_reclaim(struct px_cache **out, int fd,
		 const struct px_cache_opts *opts)
{
	return adopt(out, fd, opts, true);
}
