// SPDX-License-Identifier: MIT
/*
 * The cache proper: creation inside one exactly-sized region, the hash
 * index, and the memcached operations.  Writers hold c->lock (the writer
 * lock) for the whole operation; readers use pxc_read_lock() sections and
 * acquire loads along the index chains.  A store builds a complete new item
 * and publishes it with one release store into the chain, so a reader sees
 * either the old item or the new one, never a half-written one.  Items are
 * immutable while reachable except for their meta bits, expiry time and
 * index link.
 *
 * Lock order: see cache_int.h.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "cache_int.h"

/* ---- Small helpers ---------------------------------------------------- */

/*
 * The index hash is XXH3-64 seeded with a secret of the cache's own
 * (pxc_seed(), drawn at creation).  Unseeded, it is public: a client
 * could compute keys that all land in one bucket at every index size
 * (hash flooding) and make each lookup, and each store under the writer
 * lock, walk one chain of all of them.  Nothing outside the cache depends
 * on it: snapshots store keys, not hashes; a cache adopted by another
 * process (px_cache_adopt()) brings its seed along in its control block.
 */
uint64_t
pxc_seed(void)
{
	uint64_t s = 0;
	struct timespec ts;

	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
		/* No entropy yet (early boot): still unpredictable enough. */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		s = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 32 ^
		    (uint64_t)(uintptr_t)&s ^ (uint64_t)getpid() << 16;
	}
	return s;
}

uint64_t
pxc_hash(const struct px_cache *c, const void *key, size_t klen)
{
	return XXH3_64bits_withSeed(key, klen, c->seed);
}

static int64_t
real_now(void *unused)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return ts.tv_sec;
}

int64_t
pxc_now(const struct px_cache *c)
{
	return c->hooks.now(c->hooks.arg);
}

void
pxc_lock(struct px_cache *c)
{
	pthread_mutex_lock(&c->lock);
}

void
pxc_unlock(struct px_cache *c)
{
	pthread_mutex_unlock(&c->lock);
}

static bool
bad_key(size_t klen)
{
	return klen == 0 || klen > CONFIG_PX_CACHE_KEY_MAX;
}

static void
gauge_add(_Atomic size_t *g, size_t add, size_t sub)
{
	size_t v = atomic_load_explicit(g, memory_order_relaxed);

	atomic_store_explicit(g, v + add - sub, memory_order_relaxed);
}

/*
 * Convert a memcached TTL to an absolute expiry time.  Returns false when
 * the item would be dead at once (negative, or an absolute time passed).
 */
static bool
exptime_of(int64_t ttl, int64_t now, uint32_t *out)
{
	int64_t t = ttl;

	if (ttl < 0)
		return false;
	*out = 0;
	if (ttl == 0)
		return true;
	if (ttl <= PX_CACHE_TTL_RELATIVE_MAX)
		t = now + ttl;
	else if (ttl <= now)
		return false;
	*out = t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
	return true;
}

/* ---- Index ------------------------------------------------------------ */

/* Writers: the current table through the mirrors. */
static _Atomic uint32_t *
bucket_of(const struct px_cache *c, uint64_t h)
{
	return &c->buckets[h & c->bucket_mask];
}

static struct pxc_item *
chain_find(const struct px_cache *c, const struct pxc_index *ix, uint64_t h,
	   const void *key, size_t klen)
{
	uint32_t off =
	    atomic_load_explicit(&ix->b[h & ix->mask], memory_order_acquire);

	while (off) {
		struct pxc_item *it = pxc_item(c, off);

		if (pxc_klen(it) == klen && !memcmp(pxc_key(it), key, klen))
			return it;
		off = atomic_load_explicit(&it->hnext, memory_order_acquire);
	}
	return NULL;
}

/*
 * pxc_find - the item of a key in the index, or NULL.  Readers (inside a
 * read-side section) and writers.  A hit is always right: every item
 * reachable from a chain is a linked item, compared by key.  A miss is
 * only believed when no resize relinked chains meanwhile (resize_seq was
 * even and unchanged); a resize's release stores into hnext come after
 * its odd resize_seq, so a reader that followed a relinked pointer sees
 * the odd or a later value and looks again.
 */
struct pxc_item *
pxc_find(const struct px_cache *c, uint64_t h, const void *key, size_t klen)
{
	for (;;) {
		uint32_t seq =
		    atomic_load_explicit(&c->resize_seq, memory_order_acquire);
		const struct pxc_index *ix =
		    atomic_load_explicit(&c->index, memory_order_acquire);
		struct pxc_item *it = chain_find(c, ix, h, key, klen);

		if (it)
			return it;
		if (!(seq & 1) &&
		    atomic_load_explicit(&c->resize_seq,
					 memory_order_relaxed) == seq)
			return NULL;
		if (seq & 1)
			sched_yield(); /* the resizer holds the writer lock */
	}
}

static size_t
index_block_units(size_t buckets, size_t ghost_buckets)
{
	size_t bytes = PXC_IX_OFF + sizeof(struct pxc_index) +
		       buckets * sizeof(uint32_t) +
		       ghost_buckets * PXC_GHOST_WAYS * sizeof(uint32_t);

	return (bytes + PXC_UNIT - 1) / PXC_UNIT;
}

static uint32_t
alloc_units(struct px_cache *c, size_t units, int64_t now, size_t max_evict);
static size_t batch_units(const struct px_cache *c);

/*
 * pxc_index_new - an empty index of @buckets buckets and @ghost_buckets
 * ghost buckets (powers of two, buckets >= 64) in a block of the arena;
 * @evict: make room by eviction as a store does, but give up after one
 * batch and PXC_GROW_EVICT times the block (pinned items may leave no
 * window that large: a store's unbounded eviction would empty the cache).
 * NULL if there is no room.  Writer lock held.
 */
struct pxc_index *
pxc_index_new(struct px_cache *c, size_t buckets, size_t ghost_buckets,
	      int64_t now, bool evict)
{
	size_t units = index_block_units(buckets, ghost_buckets);
	struct pxc_index *ix;
	struct pxc_item *blk;
	uint32_t off;

	if (pxc_arena_fit_units(units) > pxc_arena_largest(&c->arena))
		return NULL;
	off = alloc_units(c, units, now,
			  evict ? batch_units(c) + PXC_GROW_EVICT * units : 0);
	if (!off)
		return NULL;
	blk = pxc_item(c, off);
	atomic_fetch_or_explicit(&blk->meta, PXC_M_TABLE, memory_order_relaxed);
	atomic_store_explicit(&blk->hnext, 0, memory_order_relaxed);
	pxc_set_cas(blk, 0);
	ix = (struct pxc_index *)((char *)blk + PXC_IX_OFF);
	ix->mask = (uint32_t)(buckets - 1);
	ix->ghost_buckets = (uint32_t)ghost_buckets;
	memset((void *)ix->b, 0,
	       (size_t)units * PXC_UNIT - PXC_IX_OFF - sizeof(*ix));
	return ix;
}

static struct pxc_item *
index_block(const struct px_cache *c, const struct pxc_index *ix)
{
	return (struct pxc_item *)((char *)ix - PXC_IX_OFF);
}

/*
 * pxc_index_use - make @ix the index (its chains already built): the
 * ghost moves into it, the mirrors follow, and readers see it.  Writer
 * lock held.
 */
void
pxc_index_use(struct px_cache *c, struct pxc_index *ix)
{
	pxc_ghost_move(c, (uint32_t *)(ix->b + ix->mask + 1),
		       ix->ghost_buckets);
	c->buckets = ix->b;
	c->bucket_mask = ix->mask;
	c->index_bytes = ((size_t)ix->mask + 1) * sizeof(uint32_t);
	c->ghost_bytes =
	    (size_t)ix->ghost_buckets * PXC_GHOST_WAYS * sizeof(uint32_t);
	atomic_store_explicit(&c->table_units, pxc_units(index_block(c, ix)),
			      memory_order_relaxed);
	c->index_off = pxc_off(c, index_block(c, ix));
	atomic_store_explicit(&c->index, ix, memory_order_release);
}

/* Move every item of @old's chains onto the chains of @ix. */
static void
index_relink(struct px_cache *c, const struct pxc_index *old,
	     struct pxc_index *ix)
{
	size_t b;

	for (b = 0; b <= old->mask; b++) {
		uint32_t off =
		    atomic_load_explicit(&old->b[b], memory_order_relaxed);

		while (off) {
			struct pxc_item *it = pxc_item(c, off);
			uint32_t next = atomic_load_explicit(
			    &it->hnext, memory_order_relaxed);
			_Atomic uint32_t *head =
			    &ix->b[pxc_hash(c, pxc_key(it), pxc_klen(it)) &
				   ix->mask];

			atomic_store_explicit(
			    &it->hnext,
			    atomic_load_explicit(head, memory_order_relaxed),
			    memory_order_release);
			atomic_store_explicit(head, off, memory_order_relaxed);
			off = next;
		}
	}
}

/*
 * Double the index (and the ghost) once the cache holds as many items as
 * buckets.  The new table is a block of the arena, allocated (evicting if
 * need be) before any chain changes; readers keep going through the old
 * table, which is retired to limbo like an item.  Not in item-count mode
 * (sized for max_items at creation), not while a snapshot walks the
 * buckets, and not beyond an eighth of the arena.
 */
static void
index_grow(struct px_cache *c, int64_t now)
{
	struct pxc_index *old =
	    atomic_load_explicit(&c->index, memory_order_relaxed);
	size_t n = (size_t)old->mask + 1, gb = c->pol.ghost_buckets * 2;
	uint32_t seq;
	struct pxc_index *ix;

	if (c->pol.count_mode || c->snap.active ||
	    atomic_load_explicit(&c->items, memory_order_relaxed) < n ||
	    index_block_units(2 * n, gb) > c->arena.total_units / 8)
		return;
	if (c->grow_skip) {
		c->grow_skip--;
		return;
	}
	ix = pxc_index_new(c, 2 * n, gb, now, true);
	if (!ix) {
		/* No room without evicting much more: try again after as
		 * many new keys as buckets, so failures cost little. */
		c->grow_skip = n;
		return;
	}
	seq = atomic_load_explicit(&c->resize_seq, memory_order_relaxed);
	atomic_store_explicit(&c->resize_seq, seq + 1, memory_order_relaxed);
	index_relink(c, old, ix);
	pxc_index_use(c, ix);
	atomic_store_explicit(&c->resize_seq, seq + 2, memory_order_release);
	pxc_limbo_push(c, index_block(c, old));
	PXC_COUNT(c, index_resizes, 1);
}

/* The link that points to @it; writer lock held, @it in the index. */
static _Atomic uint32_t *
link_of(struct px_cache *c, struct pxc_item *it, uint64_t h)
{
	_Atomic uint32_t *link = bucket_of(c, h);
	uint32_t off = pxc_off(c, it), cur;

	while ((cur = atomic_load_explicit(link, memory_order_relaxed)) != off)
		link = &pxc_item(c, cur)->hnext;
	return link;
}

static void
index_unlink(struct px_cache *c, struct pxc_item *it, uint64_t h)
{
	uint32_t next = atomic_load_explicit(&it->hnext, memory_order_relaxed);

	atomic_store_explicit(link_of(c, it, h), next, memory_order_release);
}

static void
count_in(struct px_cache *c, struct pxc_item *it)
{
	gauge_add(&c->items, 1, 0);
	gauge_add(&c->used_units, pxc_units(it), 0);
	gauge_add(&c->kv_bytes, pxc_klen(it) + pxc_vlen(it), 0);
}

static void
count_out(struct px_cache *c, struct pxc_item *it)
{
	gauge_add(&c->items, 0, 1);
	gauge_add(&c->used_units, 0, pxc_units(it));
	gauge_add(&c->kv_bytes, 0, pxc_klen(it) + pxc_vlen(it));
}

static void
notify(struct px_cache *c, struct pxc_item *it, enum px_cache_cause cause)
{
	if (c->listener)
		c->listener(c->listener_arg, pxc_key(it), pxc_klen(it), cause);
}

/* Count a removal; @it is still in place (not yet retired). */
static void
count_removal(struct px_cache *c, const struct pxc_item *it,
	      enum px_cache_cause cause)
{
	bool unread = !pxc_fetched(it);

	if (cause == PX_CACHE_CAUSE_EVICTED) {
		PXC_COUNT(c, evictions, 1);
		if (unread)
			PXC_COUNT(c, evicted_unfetched, 1);
	} else if (cause == PX_CACHE_CAUSE_EXPIRED) {
		PXC_COUNT(c, expired_reclaimed, 1);
		if (unread)
			PXC_COUNT(c, expired_unfetched, 1);
	} else if (cause == PX_CACHE_CAUSE_FLUSHED) {
		PXC_COUNT(c, flushed_reclaimed, 1);
	}
}

/*
 * pxc_remove_locked - take a linked item out of the index and its policy
 * list, tell the listener, and leave it in limbo until readers are done.
 */
void
pxc_remove_locked(struct px_cache *c, struct pxc_item *it,
		  enum px_cache_cause cause)
{
	index_unlink(c, it, pxc_hash(c, pxc_key(it), pxc_klen(it)));
	pxc_policy_remove(c, it);
	count_out(c, it);
	notify(c, it, cause);
	count_removal(c, it, cause);
	pxc_retire(c, it);
}

/* ---- Liveness, flush -------------------------------------------------- */

/*
 * pxc_dead - 0 if @it is live at @now, else the cause (EXPIRED or
 * FLUSHED).  A pending delayed flush that is due kills every item a reader
 * can find: a writer applies it (pxc_apply_flush) before handing out any cas
 * id after that instant, and the item's publication happens before this
 * load of flush_at.
 */
int
pxc_dead(const struct px_cache *c, const struct pxc_item *it, int64_t now)
{
	uint32_t e = pxc_exptime(it);
	int64_t at = atomic_load_explicit(&c->flush_at, memory_order_acquire);

	if (at && now >= at)
		return PX_CACHE_CAUSE_FLUSHED;
	if (pxc_cas(it) <=
	    atomic_load_explicit(&c->flush_cas, memory_order_acquire))
		return PX_CACHE_CAUSE_FLUSHED;
	if (e && (int64_t)e <= now)
		return PX_CACHE_CAUSE_EXPIRED;
	return 0;
}

void
pxc_apply_flush(struct px_cache *c, int64_t now)
{
	int64_t at = atomic_load_explicit(&c->flush_at, memory_order_relaxed);

	if (!at || now < at)
		return;
	atomic_store_explicit(
	    &c->flush_cas,
	    atomic_load_explicit(&c->cas_next, memory_order_relaxed),
	    memory_order_release);
	atomic_store_explicit(&c->flush_at, 0, memory_order_release);
}

/* The live item of a key; a dead one found on the way is reclaimed. */
static struct pxc_item *
find_live_locked(struct px_cache *c, uint64_t h, const void *key, size_t klen,
		 int64_t now)
{
	struct pxc_item *it = pxc_find(c, h, key, klen);
	int cause;

	if (!it)
		return NULL;
	cause = pxc_dead(c, it, now);
	if (!cause)
		return it;
	pxc_remove_locked(c, it, (enum px_cache_cause)cause);
	return NULL;
}

/* Reclaim dead items in @n buckets from the sweep cursor. */
static size_t
sweep(struct px_cache *c, size_t n, int64_t now)
{
	size_t reclaimed = 0;

	while (n--) {
		size_t b = c->sweep_cursor++ & c->bucket_mask;
		uint32_t off =
		    atomic_load_explicit(&c->buckets[b], memory_order_relaxed);

		while (off) {
			struct pxc_item *it = pxc_item(c, off);
			int cause = pxc_dead(c, it, now);

			off = atomic_load_explicit(&it->hnext,
						   memory_order_relaxed);
			if (!cause)
				continue;
			pxc_remove_locked(c, it, (enum px_cache_cause)cause);
			reclaimed++;
		}
	}
	return reclaimed;
}

/* ---- Memory for a new item ------------------------------------------- */

static size_t
batch_units(const struct px_cache *c)
{
	size_t b = (size_t)CONFIG_PX_CACHE_RECLAIM_BATCH_KB * 1024 / PXC_UNIT;
	size_t cap = c->arena.total_units / 16;

	return b < cap ? b : cap;
}

static void
evict_one(struct px_cache *c, struct pxc_item *v, int64_t now)
{
	int cause = pxc_dead(c, v, now);

	pxc_remove_locked(
	    c, v, cause ? (enum px_cache_cause)cause : PX_CACHE_CAUSE_EVICTED);
}

/* Evict about @target units into limbo; returns the units evicted. */
static size_t
evict_units(struct px_cache *c, size_t target, int64_t now)
{
	size_t done = 0;
	struct pxc_item *v;

	while (done < target && (v = pxc_policy_victim(c))) {
		done += pxc_units(v);
		evict_one(c, v, now);
	}
	return done;
}

/*
 * Whether the blocks from @start on can become one free block of @units
 * units once the live ones among them are evicted: none of them is pinned
 * and the arena does not end first.  *@end is the end of that window.
 */
static bool
window_fits(const struct px_cache *c, uint32_t start, size_t units,
	    uint32_t *end)
{
	uint32_t off = start;
	size_t got = 0;

	while (got < units) {
		const struct pxc_item *b = pxc_item(c, off);

		if (off >= c->arena.end)
			return false;
		if (pxc_meta(b) & PXC_M_TABLE)
			return false; /* the index is not evictable */
		if (!(pxc_meta(b) & PXC_M_FREE) && pxc_pinned(c, b))
			return false;
		got += pxc_units(b);
		off += pxc_units(b);
	}
	*end = off;
	return true;
}

/*
 * Evict the policy's victim and, if a window of @units units starting
 * there can be freed, every live item in that window: a large store then
 * costs about its own size in evictions instead of scattered small items
 * until some hole happens to be big enough.  Returns the units evicted.
 */
static size_t
evict_window(struct px_cache *c, size_t units, int64_t now)
{
	struct pxc_item *v = pxc_policy_victim(c), *b;
	uint32_t off, end;
	size_t done = 0;

	if (!v)
		return 0;
	off = pxc_off(c, v);
	if (window_fits(c, off, pxc_arena_fit_units(units), &end))
		PXC_COUNT(c, evict_windows, 1);
	else
		end = off + pxc_units(v);
	while (off < end) {
		b = pxc_item(c, off);
		off += pxc_units(b);
		if (!pxc_linked(b))
			continue;
		done += pxc_units(b);
		evict_one(c, b, now);
	}
	return done;
}

/*
 * Allocate @units, evicting by policy as needed.  Eviction goes in
 * batches of at least batch_units() so that one grace period pays for
 * many stores.  Large requests (a quarter batch and more), and any
 * request once policy eviction has freed as much as it without producing
 * a fitting block (fragmentation), evict contiguous windows instead.
 * Returns 0 when nothing is left to evict, or once @max_evict units were
 * evicted without a fitting block.
 */
static uint32_t
alloc_units(struct px_cache *c, size_t units, int64_t now, size_t max_evict)
{
	size_t target = units > batch_units(c) ? units : batch_units(c);
	size_t evicted = 0, n;
	uint32_t off;

	for (;;) {
		off = pxc_arena_alloc(&c->arena, units);
		if (off)
			return off;
		if (c->limbo && pxc_reclaim(c))
			continue;
		if (evicted >= max_evict)
			return 0;
		if (evicted >= units || units >= batch_units(c) / 4)
			n = evict_window(c, units, now);
		else
			n = evict_units(c, target, now);
		evicted += n;
		if (!n && !c->pinned)
			return 0;
		/* Victims a snapshot retains free nothing: evict more. */
		if (!c->limbo && !pxc_reclaim(c) && !n)
			return 0;
	}
}

/* In item-count mode, make room for one more item. */
static void
make_room_for_one(struct px_cache *c, int64_t now)
{
	struct pxc_item *v;

	while (c->max_items &&
	       atomic_load_explicit(&c->items, memory_order_relaxed) >=
		   c->max_items) {
		v = pxc_policy_victim(c);
		if (!v)
			return;
		evict_one(c, v, now);
	}
}

/* ---- Stores ------------------------------------------------------------ */

struct pxc_req {
	enum px_cache_mode mode;
	const void *key;
	size_t klen;
	const void *val;
	size_t vlen;
	uint32_t flags;
	uint32_t exptime;
	bool alive;
	uint64_t cas;
	uint64_t set_cas; /* restore: the item's cas id, 0 for a new one */
	uint64_t h;
	int64_t now;
	bool moving;   /* the same item moves to a new block: no listener */
	uint32_t keep; /* meta bits the new item has before it is published */
};

static int
check_mode(const struct pxc_req *r, const struct pxc_item *old)
{
	switch (r->mode) {
	case PX_CACHE_SET:
		return 0;
	case PX_CACHE_ADD:
		return old ? -EEXIST : 0;
	case PX_CACHE_CAS:
		if (!old)
			return -ENOENT;
		return pxc_cas(old) == r->cas ? 0 : -EEXIST;
	default: /* REPLACE, APPEND, PREPEND: a nonzero cas must match too */
		if (!old)
			return -ENOENT;
		return r->cas && pxc_cas(old) != r->cas ? -EEXIST : 0;
	}
}

static void
item_init(struct px_cache *c, struct pxc_item *it, const struct pxc_req *r,
	  size_t vlen)
{
	uint32_t bits = (pxc_meta(it) & PXC_M_UNITS_MASK) |
			(r->flags ? PXC_M_FLAGS : 0) |
			(r->exptime ? PXC_M_EXPT : 0) | r->keep;
	size_t extra = pxc_extra(bits);
	size_t pad =
	    (size_t)pxc_units(it) * PXC_UNIT - PXC_HDR - extra - r->klen - vlen;
	uint64_t last =
	    atomic_load_explicit(&c->cas_next, memory_order_relaxed);
	uint64_t cas = r->set_cas ? r->set_cas : last + 1;
	char *d = it->data + pxc_big(bits);

	atomic_store_explicit(&it->meta,
			      (uint32_t)r->klen |
				  (uint32_t)pad << PXC_M_PAD_SHIFT | bits,
			      memory_order_relaxed);
	atomic_store_explicit(&it->hnext, 0, memory_order_relaxed);
	pxc_set_cas(it, cas);
	if (cas > last)
		atomic_store_explicit(&c->cas_next, cas, memory_order_relaxed);
	if (r->exptime) {
		pxc_set_exptime(it, r->exptime);
		d += sizeof(r->exptime);
	}
	if (r->flags) {
		memcpy(d, &r->flags, sizeof(r->flags));
		d += sizeof(r->flags);
	}
	memcpy(d, r->key, r->klen);
}

/* The old value an APPEND or PREPEND keeps, maybe a private copy. */
struct old_value {
	const char *p;
	size_t len;
	char *copy; /* malloc()ed when the old item had to go first */
};

static void
fill_value(struct pxc_item *it, const struct pxc_req *r,
	   const struct old_value *ov)
{
	char *v = pxc_value(it);

	if (r->mode == PX_CACHE_APPEND) {
		memcpy(v, ov->p, ov->len);
		v += ov->len;
	}
	if (r->vlen)
		memcpy(v, r->val, r->vlen);
	if (r->mode == PX_CACHE_PREPEND)
		memcpy(v + r->vlen, ov->p, ov->len);
}

/* Put @it in the index in place of @old (if still linked) or new. */
static void
publish(struct px_cache *c, uint64_t h, struct pxc_item *old,
	struct pxc_item *it, bool quiet)
{
	uint32_t off = pxc_off(c, it);

	count_in(c, it);
	if (old && pxc_linked(old)) {
		atomic_store_explicit(
		    &it->hnext,
		    atomic_load_explicit(&old->hnext, memory_order_relaxed),
		    memory_order_relaxed);
		atomic_store_explicit(link_of(c, old, h), off,
				      memory_order_release);
		pxc_policy_replace(c, old, it);
		count_out(c, old);
		if (!quiet)
			notify(c, old, PX_CACHE_CAUSE_REPLACED);
		pxc_retire(c, old);
		return;
	}
	atomic_store_explicit(
	    &it->hnext,
	    atomic_load_explicit(bucket_of(c, h), memory_order_relaxed),
	    memory_order_relaxed);
	pxc_policy_insert(c, it, h);
	atomic_store_explicit(bucket_of(c, h), off, memory_order_release);
}

/*
 * The first allocation failed while @old was pinned: an item over about
 * half the budget cannot sit next to its own old version.  Remove @old
 * (cause REPLACED, as the store would; APPEND and PREPEND first copy its
 * value aside), unpin it and try again; *@oldp becomes NULL.  Returns
 * the block, or 0.
 */
static uint32_t
alloc_without_old(struct px_cache *c, const struct pxc_req *r,
		  struct pxc_item **oldp, size_t units, struct old_value *ov)
{
	struct pxc_item *old = *oldp;

	if (r->mode == PX_CACHE_APPEND || r->mode == PX_CACHE_PREPEND) {
		ov->copy = malloc(ov->len ? ov->len : 1);
		if (!ov->copy)
			return 0;
		memcpy(ov->copy, ov->p, ov->len);
		ov->p = ov->copy;
	}
	if (pxc_linked(old))
		pxc_remove_locked(c, old, PX_CACHE_CAUSE_REPLACED);
	pxc_unpin(c, old);
	*oldp = NULL;
	return alloc_units(c, units, r->now, SIZE_MAX);
}

/* Build and publish the new item; @old (maybe NULL) was live. */
static int
store_new(struct px_cache *c, const struct pxc_req *r, struct pxc_item *old,
	  size_t vlen, struct pxc_item **out)
{
	size_t units = pxc_units_for(r->klen, vlen, r->flags, r->exptime);
	struct old_value ov = {old ? pxc_value(old) : NULL,
			       old ? pxc_vlen(old) : 0, NULL};
	struct pxc_item *it;
	uint32_t off;

	/* The arena serves a free block one TLSF list above @units. */
	if (pxc_arena_fit_units(units) > pxc_arena_largest(&c->arena))
		return -E2BIG;
	if (old)
		pxc_pin(c, old); /* eviction below must not free it */
	else
		make_room_for_one(c, r->now);
	off = alloc_units(c, units, r->now, SIZE_MAX);
	if (!off && old && !r->moving)
		off = alloc_without_old(c, r, &old, units, &ov);
	if (r->moving && !pxc_linked(old)) {
		/* Evicted to make room for its own move (whether or not
		 * the room was then found): let it go. */
		if (off)
			pxc_arena_free(&c->arena, off); /* never published */
		pxc_unpin(c, old);
		return -ENOENT;
	}
	if (off) {
		it = pxc_item(c, off);
		item_init(c, it, r, vlen);
		fill_value(it, r, &ov);
	}
	free(ov.copy);
	if (old)
		pxc_unpin(c, old);
	if (!off)
		return -ENOMEM;
	publish(c, r->h, old, it, r->moving);
	*out = it;
	return 0;
}

static int
store_req_locked(struct px_cache *c, struct pxc_req *r, struct pxc_item **out)
{
	struct pxc_item *old;
	size_t vlen = r->vlen;
	int err;

	*out = NULL;
	pxc_apply_flush(c, r->now);
	old = find_live_locked(c, r->h, r->key, r->klen, r->now);
	err = check_mode(r, old);
	if (err)
		return err;
	if (r->mode == PX_CACHE_APPEND || r->mode == PX_CACHE_PREPEND) {
		vlen += pxc_vlen(old);
		r->flags = pxc_flags(old);
		r->exptime = pxc_exptime(old);
		r->alive = true;
	}
	if (vlen > c->item_max)
		return -E2BIG;
	if (!r->alive) {
		if (old)
			pxc_remove_locked(c, old, PX_CACHE_CAUSE_REPLACED);
		return 0;
	}
	if (!old)
		index_grow(c, r->now);
	err = store_new(c, r, old, vlen, out);
	if (err)
		return err;
	sweep(c, CONFIG_PX_CACHE_EXPIRE_SCAN, r->now);
	/* Keep memory of removed items bounded even while memory is free. */
	if (atomic_load_explicit(&c->limbo_units, memory_order_relaxed) >
	    batch_units(c))
		pxc_reclaim(c);
	return 0;
}

/* A new cas id for no item (a store that was dead on arrival). */
static uint64_t
cas_take(struct px_cache *c)
{
	uint64_t cas =
	    atomic_load_explicit(&c->cas_next, memory_order_relaxed) + 1;

	atomic_store_explicit(&c->cas_next, cas, memory_order_relaxed);
	return cas;
}

/*
 * pxc_store_locked - px_cache_store() with the writer lock held; *@out is
 * the stored item (NULL when a dead ttl stored nothing).
 */
int
pxc_store_locked(struct px_cache *c, enum px_cache_mode mode, const void *key,
		 size_t klen, const void *val, size_t vlen, uint32_t flags,
		 int64_t ttl, uint64_t cas, struct pxc_item **out)
{
	struct pxc_req r = {
	    .mode = mode,
	    .key = key,
	    .klen = klen,
	    .val = val,
	    .vlen = vlen,
	    .flags = flags,
	    .cas = cas,
	    .h = pxc_hash(c, key, klen),
	    .now = pxc_now(c),
	};

	r.alive = exptime_of(ttl, r.now, &r.exptime);
	return store_req_locked(c, &r, out);
}

int
px_cache_store(struct px_cache *c, enum px_cache_mode mode, const void *key,
	       size_t klen, const void *val, size_t vlen, uint32_t flags,
	       int64_t ttl, uint64_t cas, uint64_t *cas_out)
{
	struct pxc_item *it;
	int err;

	if (bad_key(klen) || (unsigned)mode > PX_CACHE_CAS)
		return -EINVAL;
	if (vlen > c->item_max)
		return -E2BIG;

	pxc_lock(c);
	err = pxc_store_locked(c, mode, key, klen, val, vlen, flags, ttl, cas,
			       &it);
	if (!err && cas_out)
		*cas_out = it ? pxc_cas(it) : cas_take(c);
	pxc_unlock(c);

	if (!err)
		PXC_COUNT(c, sets, 1);
	else if (err == -EEXIST || err == -ENOENT)
		PXC_COUNT(c, store_rejects, 1);
	return err;
}

int
px_cache_set(struct px_cache *c, const void *key, size_t klen, const void *val,
	     size_t vlen, uint32_t flags, int64_t ttl)
{
	return px_cache_store(c, PX_CACHE_SET, key, klen, val, vlen, flags, ttl,
			      0, NULL);
}

/*
 * pxc_restore_locked - store a saved item as it was: its cas id (the
 * counter moves up to it), flags and absolute expiry time.  Returns 0,
 * -ETIME (already expired: nothing stored, an older item of the key is
 * removed), or a store error.
 */
int
pxc_restore_locked(struct px_cache *c, const struct px_cache_ref *item)
{
	struct pxc_item *it;
	struct pxc_req r = {
	    .mode = PX_CACHE_SET,
	    .key = item->key,
	    .klen = item->klen,
	    .val = item->value,
	    .vlen = item->vlen,
	    .flags = item->flags,
	    .set_cas = item->cas,
	    .h = pxc_hash(c, item->key, item->klen),
	    .now = pxc_now(c),
	};

	r.exptime =
	    item->exptime > UINT32_MAX ? UINT32_MAX : (uint32_t)item->exptime;
	r.alive = item->exptime == 0 || item->exptime > r.now;
	if (item->exptime < 0 || !r.alive)
		return -ETIME;
	return store_req_locked(c, &r, &it);
}

/* ---- Other writes --------------------------------------------------- */

/* Lock and find the live item of a key; NULL (and unlocked) if none. */
static struct pxc_item *
lock_live(struct px_cache *c, const void *key, size_t klen, int64_t *now)
{
	struct pxc_item *it;

	pxc_lock(c);
	*now = pxc_now(c);
	pxc_apply_flush(c, *now);
	it = find_live_locked(c, pxc_hash(c, key, klen), key, klen, *now);
	if (!it)
		pxc_unlock(c);
	return it;
}

int
px_cache_delete(struct px_cache *c, const void *key, size_t klen)
{
	struct pxc_item *it;
	int64_t now;

	if (bad_key(klen))
		return -EINVAL;
	it = lock_live(c, key, klen, &now);
	if (!it)
		return -ENOENT;
	pxc_remove_locked(c, it, PX_CACHE_CAUSE_DELETED);
	pxc_unlock(c);
	PXC_COUNT(c, deletes, 1);
	return 0;
}

/*
 * @old has no expiry field: a copy with one (same cas id, flags, key,
 * value, policy place and hot bits) takes its place, without telling the
 * listener.  A running snapshot gets @old (retained or already saved), so
 * the copy is marked as claimed, before it is published: the walker holds
 * no lock and may reach the copy while @old is being retained.  The
 * replacement counts as a hit; the hot bits are set back so that the
 * caller's touch is the only one.  Returns 0 and the copy in *@out,
 * -ENOMEM, or -ENOENT when making room evicted @old itself.
 */
static int
move_with_exptime(struct px_cache *c, struct pxc_item *old, uint32_t e,
		  int64_t now, struct pxc_item **out)
{
	unsigned hot = pxc_hot(old);
	struct pxc_item *it;
	struct pxc_req r = {
	    .mode = PX_CACHE_SET,
	    .key = pxc_key(old),
	    .klen = pxc_klen(old),
	    .val = pxc_value(old),
	    .vlen = pxc_vlen(old),
	    .flags = pxc_flags(old),
	    .exptime = e,
	    .alive = true,
	    .set_cas = pxc_cas(old),
	    .h = pxc_hash(c, pxc_key(old), pxc_klen(old)),
	    .now = now,
	    .moving = true,
	    .keep = (pxc_meta(old) & PXC_M_FETCHED) |
		    (c->snap.active ? c->snap.claim : 0),
	};
	int err = store_new(c, &r, old, r.vlen, &it);

	if (err)
		return err;
	pxc_set_hot(it, hot);
	PXC_COUNT(c, exptime_moves, 1);
	*out = it;
	return 0;
}

/*
 * Set the TTL of the live item *@itp, writer lock held; it may die of it.
 * An item stored without a TTL has no room for one and moves to a new
 * block (*@itp changes).  Returns 0, or an error of move_with_exptime().
 */
static int
touch_locked(struct px_cache *c, struct pxc_item **itp, int64_t ttl,
	     int64_t now)
{
	uint32_t e;
	int err = 0;

	if (!exptime_of(ttl, now, &e))
		e = now > 0 ? (uint32_t)now : 1;
	if (pxc_has_exptime(*itp))
		pxc_set_exptime(*itp, e);
	else if (e)
		err = move_with_exptime(c, *itp, e, now, itp);
	if (!err)
		PXC_COUNT(c, touches, 1);
	return err;
}

int
px_cache_touch(struct px_cache *c, const void *key, size_t klen, int64_t ttl)
{
	struct pxc_item *it;
	int64_t now;
	int err;

	if (bad_key(klen))
		return -EINVAL;
	it = lock_live(c, key, klen, &now);
	if (!it)
		return -ENOENT;
	err = touch_locked(c, &it, ttl, now);
	if (!err)
		pxc_policy_hit_locked(c, it);
	pxc_unlock(c);
	return err;
}

/* Parse a decimal u64: digits, then only spaces.  -EINVAL otherwise. */
static int
parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;

	if (!len || s[0] < '0' || s[0] > '9')
		return -EINVAL;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	for (; i < len; i++)
		if (s[i] != ' ')
			return -EINVAL;
	*out = v;
	return 0;
}

static int
delta_locked(struct px_cache *c, struct pxc_item *old, bool incr,
	     uint64_t delta, uint64_t *out, uint64_t *cas_out, int64_t now)
{
	char digits[24];
	uint64_t v;
	struct pxc_item *it;
	struct pxc_req r = {
	    .mode = PX_CACHE_CAS,
	    .key = pxc_key(old),
	    .klen = pxc_klen(old),
	    .val = digits,
	    .flags = pxc_flags(old),
	    .exptime = pxc_exptime(old),
	    .alive = true,
	    .cas = pxc_cas(old),
	    .now = now,
	};
	int err = parse_u64(pxc_value(old), pxc_vlen(old), &v);

	if (err)
		return err;
	v = incr ? v + delta : (v > delta ? v - delta : 0);
	r.vlen = (size_t)snprintf(digits, sizeof(digits), "%llu",
				  (unsigned long long)v);
	r.h = pxc_hash(c, r.key, r.klen);
	err = store_req_locked(c, &r, &it);
	if (err)
		return err;
	if (out)
		*out = v;
	if (cas_out)
		*cas_out = pxc_cas(it);
	return 0;
}

static int
delta(struct px_cache *c, const void *key, size_t klen, bool incr, uint64_t d,
      uint64_t *out, uint64_t *cas_out)
{
	struct pxc_item *it;
	int64_t now;
	int err;

	if (bad_key(klen))
		return -EINVAL;
	it = lock_live(c, key, klen, &now);
	if (!it)
		return -ENOENT;
	err = delta_locked(c, it, incr, d, out, cas_out, now);
	pxc_unlock(c);
	if (!err)
		PXC_COUNT(c, incr_decr, 1);
	return err;
}

int
px_cache_incr(struct px_cache *c, const void *key, size_t klen, uint64_t delta_,
	      uint64_t *out, uint64_t *cas_out)
{
	return delta(c, key, klen, true, delta_, out, cas_out);
}

int
px_cache_decr(struct px_cache *c, const void *key, size_t klen, uint64_t delta_,
	      uint64_t *out, uint64_t *cas_out)
{
	return delta(c, key, klen, false, delta_, out, cas_out);
}

int
px_cache_flush_all(struct px_cache *c, int64_t delay)
{
	int64_t now, at;

	pxc_lock(c);
	now = pxc_now(c);
	/* A delay past the end of time saturates: never, not at once. */
	if (delay <= 0)
		at = now;
	else if (__builtin_add_overflow(now, delay, &at))
		at = INT64_MAX;
	pxc_apply_flush(c, now); /* a pending flush already due still counts */
	atomic_store_explicit(&c->flush_at, at, memory_order_release);
	pxc_apply_flush(c, now);
	pxc_unlock(c);
	return 0;
}

/* ---- Reads ------------------------------------------------------------- */

void
pxc_fill_ref(const struct pxc_item *it, struct px_cache_ref *ref)
{
	ref->key = pxc_key(it);
	ref->klen = pxc_klen(it);
	ref->value = pxc_key(it) + ref->klen;
	ref->vlen = pxc_vlen(it);
	ref->flags = pxc_flags(it);
	ref->cas = pxc_cas(it);
	ref->exptime = pxc_exptime(it);
	ref->priv = (void *)it;
}

/* Find a live item inside a read-side section, counting the outcome. */
static struct pxc_item *
read_live(struct px_cache *c, const void *key, size_t klen)
{
	struct pxc_item *it = pxc_find(c, pxc_hash(c, key, klen), key, klen);
	int cause;

	if (!it) {
		PXC_COUNT(c, get_misses, 1);
		return NULL;
	}
	cause = pxc_dead(c, it, pxc_now(c));
	if (cause) {
		PXC_COUNT(c, get_misses, 1);
		if (cause == PX_CACHE_CAUSE_EXPIRED)
			PXC_COUNT(c, get_expired, 1);
		else
			PXC_COUNT(c, get_flushed, 1);
		return NULL;
	}
	PXC_COUNT(c, get_hits, 1);
	return it;
}

static int
copy_out(const struct pxc_item *it, void *buf, size_t cap,
	 struct px_cache_info *info)
{
	struct px_cache_ref ref;

	pxc_fill_ref(it, &ref);
	if (info) {
		info->vlen = ref.vlen;
		info->flags = ref.flags;
		info->cas = ref.cas;
		info->exptime = ref.exptime;
	}
	if (ref.vlen > cap)
		return -ENOSPC;
	if (ref.vlen)
		memcpy(buf, ref.value, ref.vlen);
	return 0;
}

int
px_cache_get(struct px_cache *c, const void *key, size_t klen, void *buf,
	     size_t cap, struct px_cache_info *info)
{
	struct pxc_item *it;
	int err = -ENOENT;

	if (bad_key(klen))
		return -EINVAL;
	pxc_read_lock();
	it = read_live(c, key, klen);
	if (it) {
		err = copy_out(it, buf, cap, info);
		pxc_mark_fetched(it);
		pxc_policy_hit(c, it);
	}
	pxc_read_unlock();
	return err;
}

int
px_cache_get_ref(struct px_cache *c, const void *key, size_t klen,
		 struct px_cache_ref *ref)
{
	struct pxc_item *it;

	if (bad_key(klen))
		return -EINVAL;
	pxc_read_lock();
	it = read_live(c, key, klen);
	if (it) {
		pxc_pin(c, it);
		pxc_fill_ref(it, ref);
		pxc_mark_fetched(it);
		pxc_policy_hit(c, it);
	}
	pxc_read_unlock();
	return it ? 0 : -ENOENT;
}

void
px_cache_ref_put(struct px_cache *c, struct px_cache_ref *ref)
{
	if (!ref->priv)
		return;
	pxc_unpin(c, ref->priv);
	memset(ref, 0, sizeof(*ref));
}

/* Get and touch under the writer lock; @pin: take a reference. */
static int
gat_locked(struct px_cache *c, const void *key, size_t klen, int64_t ttl,
	   struct pxc_item **out)
{
	struct pxc_item *it;
	int64_t now;
	int err;

	if (bad_key(klen))
		return -EINVAL;
	it = lock_live(c, key, klen, &now);
	if (!it) {
		PXC_COUNT(c, get_misses, 1);
		return -ENOENT;
	}
	err = touch_locked(c, &it, ttl, now);
	if (err) {
		pxc_unlock(c);
		if (err == -ENOENT)
			PXC_COUNT(c, get_misses, 1);
		return err;
	}
	pxc_mark_fetched(it);
	pxc_policy_hit_locked(c, it);
	PXC_COUNT(c, get_hits, 1);
	*out = it;
	return 0;
}

int
px_cache_gat(struct px_cache *c, const void *key, size_t klen, int64_t ttl,
	     void *buf, size_t cap, struct px_cache_info *info)
{
	struct pxc_item *it;
	int err = gat_locked(c, key, klen, ttl, &it);

	if (err)
		return err;
	err = copy_out(it, buf, cap, info);
	pxc_unlock(c);
	return err;
}

int
px_cache_gat_ref(struct px_cache *c, const void *key, size_t klen, int64_t ttl,
		 struct px_cache_ref *ref)
{
	struct pxc_item *it;
	int err = gat_locked(c, key, klen, ttl, &it);

	if (err)
		return err;
	pxc_pin(c, it);
	pxc_fill_ref(it, ref);
	pxc_unlock(c);
	return 0;
}

/* ---- Upkeep ----------------------------------------------------------- */

size_t
px_cache_maintain(struct px_cache *c, size_t work)
{
	size_t total, done = 0, n, reclaimed = 0;

	pxc_lock(c);
	total = c->bucket_mask + 1;
	pxc_unlock(c);
	if (!work || work > total)
		work = total;
	while (done < work) {
		n = work - done < PXC_SWEEP_SLICE ? work - done
						  : PXC_SWEEP_SLICE;
		pxc_lock(c);
		pxc_apply_flush(c, pxc_now(c));
		reclaimed += sweep(c, n, pxc_now(c));
		pxc_unlock(c);
		done += n;
	}
	pxc_lock(c);
	pxc_reclaim(c);
	pxc_unlock(c);
	return reclaimed;
}

size_t
px_cache_items(const struct px_cache *c)
{
	return atomic_load_explicit(&c->items, memory_order_relaxed);
}

size_t
px_cache_item_size(size_t klen, size_t vlen)
{
	size_t units = pxc_units_for(klen, vlen, 0, 0);

	return (units < PXC_MIN_UNITS ? PXC_MIN_UNITS : units) * PXC_UNIT;
}

void
px_cache_memory(struct px_cache *c, struct px_cache_memory *m)
{
	pxc_lock(c);
	*m = (struct px_cache_memory){
	    .limit = c->limit,
	    .region_bytes = c->region_bytes,
	    .index_bytes = c->index_bytes,
	    .ghost_bytes = c->ghost_bytes,
	    .other_bytes = c->region_bytes - c->index_bytes - c->ghost_bytes -
			   (c->arena.total_units - c->table_units) * PXC_UNIT,
	    .arena_bytes = (c->arena.total_units - c->table_units) * PXC_UNIT,
	    .used_bytes = c->used_units * PXC_UNIT,
	    .limbo_bytes = c->limbo_units * PXC_UNIT,
	    .free_bytes = c->arena.free_units * PXC_UNIT,
	    .item_header = PXC_HDR,
	    .key_value_bytes = c->kv_bytes,
	    .items = c->items,
	};
	pxc_unlock(c);
}

/* The real clock, for px_cache_create(). */
const struct px_cache_hooks pxc_real_clock = {.now = real_now};
