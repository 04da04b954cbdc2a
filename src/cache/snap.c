// SPDX-License-Identifier: MIT
/*
 * Point-in-time snapshot hooks: fix an instant in O(1), then hand every
 * item live at that instant to a walker exactly once while writers go on.
 *
 * The instant is a cas id: cas ids only grow, so the image is the items
 * with cas <= snap.cas that were neither flushed nor expired then.  The
 * walker visits the index bucket by bucket inside read-side sections.  A
 * writer that unlinks an image item while the walk runs (replace, delete,
 * evict, expire, flush) keeps it on a retained list instead of limbo,
 * unless the walker already saved it.  "Saved" and "retained" are decided
 * by one claim bit in the item's meta word, set with an atomic fetch_or by
 * whichever comes first, so each image item is handed over once: either
 * the walker reached it in its chain (an item that stays in a chain is
 * always reached, since unlinking leaves the unlinked item's hnext intact
 * and a replacement inherits it), or a writer unlinked it first and
 * retained it.  Retained items are handed over after the index walk; none
 * are added then, because every image item left in the index is claimed.
 * With a spill function (px_cache_snap_spill) a writer that wins the claim
 * copies the item out through it at once and frees it as usual; only when
 * the spill function has no room is the item retained.
 *
 * Claim bits alternate between two bits by snapshot parity.  Each walk
 * clears the other parity's bit on every item it passes, so when a
 * snapshot begins no item in the index carries its bit: items from before
 * the previous walk were cleared by it, items stored since were born
 * without.  An unfinished walk is completed by px_cache_snap_end() in
 * "clear only" mode to keep that true.
 *
 * Lock order: the writer lock only; the walker holds no lock while it
 * reads (read-side sections only).
 */
#include <errno.h>

#include "cache_int.h"

#define SNAP_BITS     (PXC_M_SNAP0 | PXC_M_SNAP1)
#define SNAP_PREFETCH 16 /* buckets ahead whose first item is prefetched */
#define RESTORE_AHEAD 8u /* restored items ahead whose slots are fetched */

/* Whether @it belongs to the image; any thread, @it reachable. */
static bool
belongs(const struct px_cache *c, const struct pxc_item *it)
{
	uint32_t e = pxc_exptime(it);

	if (pxc_cas(it) > c->snap.cas || pxc_cas(it) <= c->snap.flush_cas)
		return false;
	return e == 0 || (int64_t)e > c->snap.now;
}

static bool
claim(const struct px_cache *c, struct pxc_item *it)
{
	uint32_t old = atomic_fetch_or_explicit(&it->meta, c->snap.claim,
						memory_order_relaxed);

	return !(old & c->snap.claim);
}

/* Give the retained items to limbo; writer lock held. */
static void
release_retained_locked(struct px_cache *c)
{
	uint32_t off = c->snap.retained;

	while (off) {
		struct pxc_item *it = pxc_item(c, off);

		off = it->next;
		pxc_limbo_push(c, it);
	}
	c->snap.retained = 0;
	c->snap.walk = 0;
}

static void
fail_locked(struct px_cache *c)
{
	atomic_store_explicit(&c->snap.failed, true, memory_order_relaxed);
	c->snap.scanning = false;
	release_retained_locked(c);
}

/*
 * pxc_snap_retain - keep a just-unlinked item for the running walk if it
 * belongs to the image and the walker has not claimed it.  Returns true
 * when kept (the caller must not put it in limbo).
 */
bool
pxc_snap_retain(struct px_cache *c, struct pxc_item *it)
{
	struct pxc_snap *s = &c->snap;

	struct px_cache_ref ref;

	if (!s->scanning || !belongs(c, it) || !claim(c, it))
		return false;
	if (s->spill) {
		pxc_fill_ref(it, &ref);
		ref.priv = NULL;
		if (!s->spill(s->spill_arg, &ref)) {
			s->spilled_items++;
			return false;
		}
	}
	if ((s->retained_units + pxc_units(it)) * PXC_UNIT > s->retain_limit) {
		fail_locked(c);
		return false;
	}
	it->next = s->retained;
	s->retained = pxc_off(c, it);
	s->retained_units += pxc_units(it);
	s->retained_items++;
	return true;
}

static size_t
default_limit(const struct px_cache *c)
{
	return c->arena.total_units * PXC_UNIT / 100 *
	       CONFIG_PX_CACHE_SNAPSHOT_RETAIN_PCT;
}

/* The flush state at @now: a due delayed flush kills everything. */
static uint64_t
flush_cas_at(const struct px_cache *c, int64_t now)
{
	int64_t at = atomic_load_explicit(&c->flush_at, memory_order_relaxed);

	if (at && now >= at)
		return atomic_load_explicit(&c->cas_next, memory_order_relaxed);
	return atomic_load_explicit(&c->flush_cas, memory_order_relaxed);
}

/* A delayed flush still to come at @now, or 0. */
static int64_t
pending_flush(const struct px_cache *c, int64_t now)
{
	int64_t at = atomic_load_explicit(&c->flush_at, memory_order_relaxed);

	return at > now ? at : 0;
}

int
px_cache_snap_begin(struct px_cache *c, size_t retain_limit,
		    struct px_cache_snap_info *info)
{
	struct pxc_snap *s = &c->snap;
	unsigned gen;

	pxc_lock(c);
	if (s->active) {
		pxc_unlock(c);
		return -EBUSY;
	}
	gen = s->gen + 1;
	*s = (struct pxc_snap){
	    .active = true,
	    .scanning = true,
	    .gen = gen,
	    .claim = gen & 1 ? PXC_M_SNAP1 : PXC_M_SNAP0,
	    .cas = atomic_load_explicit(&c->cas_next, memory_order_relaxed),
	    .now = pxc_now(c),
	    .retain_limit = retain_limit ? retain_limit : default_limit(c),
	};
	s->flush_cas = flush_cas_at(c, s->now);
	*info = (struct px_cache_snap_info){
	    .cas = s->cas,
	    .now = s->now,
	    .buckets = c->bucket_mask + 1,
	    .items = atomic_load_explicit(&c->items, memory_order_relaxed),
	    .flush_at = pending_flush(c, s->now),
	};
	pxc_unlock(c);
	return 0;
}

int
px_cache_snap_spill(struct px_cache *c, px_cache_snap_fn fn, void *arg)
{
	int err = 0;

	pxc_lock(c);
	if (c->snap.active) {
		c->snap.spill = fn;
		c->snap.spill_arg = arg;
	} else {
		err = -EINVAL;
	}
	pxc_unlock(c);
	return err;
}

/*
 * Visit one item found in the index: clear the other parity's claim, and
 * hand it over if it belongs to the image and nobody claimed it yet.
 */
static int
visit(struct px_cache *c, struct pxc_item *it, px_cache_snap_fn fn, void *arg)
{
	uint32_t other = SNAP_BITS & ~c->snap.claim;
	struct px_cache_ref ref;

	if (pxc_meta(it) & other)
		atomic_fetch_and_explicit(&it->meta, ~other,
					  memory_order_relaxed);
	if (!fn || !belongs(c, it) || !claim(c, it))
		return 0;
	pxc_fill_ref(it, &ref);
	ref.priv = NULL;
	return fn(arg, &ref);
}

/*
 * Start loading the first item of bucket @b: the walk is bound by cache
 * misses on items scattered over the arena, and the bucket array tells
 * where the next ones are.  Only a hint: the item may be gone by then.
 */
static void
prefetch_ahead(const struct px_cache *c, size_t b)
{
	uint32_t off;

	if (b > c->bucket_mask)
		return;
	off = atomic_load_explicit(&c->buckets[b], memory_order_relaxed);
	if (off)
		__builtin_prefetch(pxc_item(c, off), 1);
}

/* Visit @max buckets from the cursor in one read-side section. */
static int
walk_buckets(struct px_cache *c, size_t max, px_cache_snap_fn fn, void *arg)
{
	size_t nb = c->bucket_mask + 1;
	bool enough = false;
	int err = 0;

	pxc_read_lock();
	while (max-- && c->snap.bucket < nb && !err && !enough) {
		uint32_t off = atomic_load_explicit(
		    &c->buckets[c->snap.bucket++], memory_order_acquire);

		prefetch_ahead(c, c->snap.bucket + SNAP_PREFETCH - 1);

		/* A bucket is finished even after "enough": the walk can
		 * only resume at a bucket boundary. */
		while (off && !err) {
			struct pxc_item *it = pxc_item(c, off);

			err = visit(c, it, fn, arg);
			if (err > 0) {
				enough = true;
				err = 0;
			}
			off = atomic_load_explicit(&it->hnext,
						   memory_order_acquire);
		}
	}
	pxc_read_unlock();
	return err;
}

/* The index walk is done: stop retaining, start on the retained list. */
static int
end_scan(struct px_cache *c)
{
	int err = 0;

	pxc_lock(c);
	c->snap.scanning = false;
	if (atomic_load_explicit(&c->snap.failed, memory_order_relaxed))
		err = -ENOSPC;
	c->snap.walk = c->snap.retained;
	pxc_unlock(c);
	return err;
}

/* Retained items are not freed before px_cache_snap_end(). */
static int
walk_retained(struct px_cache *c, size_t max, px_cache_snap_fn fn, void *arg)
{
	struct px_cache_ref ref;
	int err = 0;

	while (max-- && c->snap.walk && !err) {
		struct pxc_item *it = pxc_item(c, c->snap.walk);

		c->snap.walk = it->next;
		pxc_fill_ref(it, &ref);
		ref.priv = NULL;
		err = fn(arg, &ref);
	}
	return err > 0 ? 0 : err;
}

int
px_cache_snap_walk(struct px_cache *c, size_t max, px_cache_snap_fn fn,
		   void *arg)
{
	size_t nb;
	int err;

	if (!c->snap.active || !fn)
		return -EINVAL;
	nb = c->bucket_mask + 1; /* the index cannot grow while active */
	if (atomic_load_explicit(&c->snap.failed, memory_order_relaxed))
		return -ENOSPC;
	if (!max)
		max = 1;
	if (c->snap.bucket < nb) {
		err = walk_buckets(c, max, fn, arg);
		if (err)
			return err;
		if (c->snap.bucket < nb)
			return 1;
		err = end_scan(c);
		return err ? err : c->snap.walk != 0;
	}
	err = walk_retained(c, max, fn, arg);
	if (err)
		return err;
	return c->snap.walk != 0;
}

void
px_cache_snap_end(struct px_cache *c, struct px_cache_snap_info *info)
{
	size_t nb;

	pxc_lock(c);
	if (!c->snap.active) {
		pxc_unlock(c);
		return;
	}
	nb = c->bucket_mask + 1; /* fixed until the snapshot ends */
	c->snap.scanning = false;
	pxc_unlock(c);

	while (c->snap.bucket < nb)
		walk_buckets(c, PXC_SWEEP_SLICE, NULL, NULL);

	pxc_lock(c);
	if (info) {
		info->retained_items = c->snap.retained_items;
		info->retained_bytes = c->snap.retained_units * PXC_UNIT;
		info->spilled_items = c->snap.spilled_items;
		info->failed =
		    atomic_load_explicit(&c->snap.failed, memory_order_relaxed);
	}
	release_retained_locked(c);
	c->snap.active = false;
	pxc_unlock(c);
}

int
px_cache_restore(struct px_cache *c, const struct px_cache_ref *item)
{
	int err;

	if (!item->klen || item->klen > CONFIG_PX_CACHE_KEY_MAX || !item->cas)
		return -EINVAL;
	if (item->vlen > c->item_max)
		return -E2BIG;
	pxc_lock(c);
	err = pxc_restore_locked(c, item);
	pxc_unlock(c);
	if (!err)
		PXC_COUNT(c, sets, 1);
	return err;
}

static void
prefetch_slot(const struct px_cache *c, uint64_t h)
{
	__builtin_prefetch(&c->buckets[h & c->bucket_mask], 0);
	pxc_policy_prefetch(c, h);
}

static void
prefetch_chain(const struct px_cache *c, uint64_t h)
{
	uint32_t off = atomic_load_explicit(&c->buckets[h & c->bucket_mask],
					    memory_order_relaxed);

	if (off)
		__builtin_prefetch(pxc_item(c, off), 0);
}

static uint64_t
ref_hash(const struct px_cache *c, const struct px_cache_ref *item)
{
	return pxc_hash(c, item->key, item->klen);
}

/* Store one item of a batch; writer lock held. */
static int
restore_one(struct px_cache *c, const struct px_cache_ref *item,
	    struct px_cache_restore_info *ri)
{
	int err;

	if (!item->klen || item->klen > CONFIG_PX_CACHE_KEY_MAX || !item->cas)
		return -EINVAL;
	if (item->vlen > c->item_max) {
		ri->too_big++;
		return 0;
	}
	err = pxc_restore_locked(c, item);
	if (err == -ETIME)
		ri->expired++;
	else if (!err)
		ri->stored++;
	return err == -ETIME ? 0 : err;
}

/*
 * The store of a loaded item is bound by two cache misses, its index slot
 * (and chain) and its ghost slot: they are fetched RESTORE_AHEAD items
 * ahead, the chain's first item half as far ahead (once its slot is in).
 */
int
px_cache_restore_many(struct px_cache *c, const struct px_cache_ref *items,
		      size_t n, struct px_cache_restore_info *ri)
{
	uint64_t h[RESTORE_AHEAD];
	size_t before = ri->stored, i;
	int err = 0;

	for (i = 0; i < n && i < RESTORE_AHEAD; i++)
		h[i] = ref_hash(c, &items[i]);
	pxc_lock(c); /* the index may grow: its address only under the lock */
	for (i = 0; i < n && i < RESTORE_AHEAD; i++)
		prefetch_slot(c, h[i]);
	for (i = 0; i < n && !err; i++) {
		size_t mid = i + RESTORE_AHEAD / 2, far = i + RESTORE_AHEAD;

		if (mid < n)
			prefetch_chain(c, h[mid % RESTORE_AHEAD]);
		err = restore_one(c, &items[i], ri);
		if (far < n) {
			h[far % RESTORE_AHEAD] = ref_hash(c, &items[far]);
			prefetch_slot(c, h[far % RESTORE_AHEAD]);
		}
	}
	pxc_unlock(c);
	if (ri->stored > before)
		PXC_COUNT(c, sets, ri->stored - before);
	return err;
}

int
px_cache_flush_at(struct px_cache *c, int64_t at)
{
	int due;

	if (at <= 0)
		return -EINVAL;
	pxc_lock(c);
	pxc_apply_flush(c, pxc_now(c)); /* a pending one already due counts */
	/* Writers apply a due flush before handing out a newer cas id, and
	 * readers treat every item as flushed from @at on. */
	atomic_store_explicit(&c->flush_at, at, memory_order_release);
	due = at <= pxc_now(c);
	pxc_unlock(c);
	return due;
}

void
px_cache_cas_floor(struct px_cache *c, uint64_t cas)
{
	pxc_lock(c);
	if (cas > atomic_load_explicit(&c->cas_next, memory_order_relaxed))
		atomic_store_explicit(&c->cas_next, cas, memory_order_relaxed);
	pxc_unlock(c);
}
