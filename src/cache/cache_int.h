/* SPDX-License-Identifier: MIT */
/*
 * Private layout of the cache: the item header, the arena allocator, the
 * policies and the control block, shared by the files of src/cache/.
 *
 * Everything lives in one px_region.  Items are addressed by 32-bit
 * offsets in 8-byte units from the region base (so a region is at most
 * 32 GiB); offset 0 is the control block and means "none".
 *
 * Lock order: load_lock (get_or_load bookkeeping) is never held while
 * taking lock (the writer lock); lock is never held while waiting on
 * load_lock's condition.  Readers take neither (LRU readers only try lock).
 */
#ifndef PX_CACHE_INT_H
#define PX_CACHE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <patinox/cache.h>
#include <patinox/region.h>

#define PXC_UNIT        8u  /* allocation unit and offset scale */
#define PXC_HDR         24u /* sizeof(struct pxc_item) */
#define PXC_IX_OFF      32u /* struct pxc_index in its block (8-aligned) */
#define PXC_MIN_UNITS   3u  /* smallest free block: header + footer */
#define PXC_LIMIT_MIN   PX_CACHE_LIMIT_MIN
#define PXC_LIMIT_MAX   PX_CACHE_LIMIT_MAX
#define PXC_VALUE_CAP   (64ull << 20)
#define PXC_PIN_SLOTS   4096u /* pin counters; sharing a slot only delays */
#define PXC_GHOST_WAYS  8u    /* entries per ghost bucket (one line) */
#define PXC_SWEEP_SLICE 256u  /* buckets px_cache_maintain() sweeps per lock */
#define PXC_FIT_SCAN    8u    /* blocks of a request's own free list tried */
#define PXC_GROW_EVICT  4u    /* growth evicts a batch + 4x its block at most */

/*
 * Item header, 24 bytes.  The block size (in units) is in the top 7 bits
 * of meta when it is below 128 (blocks up to 1016 bytes: the small items
 * memcached workloads are made of); larger blocks have those bits 0 and
 * keep their size in 4 bytes leading the data (pxc_units()).  Then the
 * expiry time (4 bytes, only when it is not 0: PXC_M_EXPT), the client
 * flags (4 bytes, only when they are not 0: PXC_M_FLAGS), the key and
 * the value.  Free blocks keep PXC_M_FREE in meta, their size in the
 * hnext word (they are in no chain), their free-list links in prev/next,
 * and their size again in their last 4 bytes (the footer).
 *
 * Fields readers see: meta (klen, pad, hot bits) and the expiry time are
 * atomic because writers change bits of them while readers look; hnext is
 * atomic because writers relink chains under readers; the size, cas, the
 * flags, the key and the value are written before the item is published
 * and never again while it can be reached.  prev/next belong to the writer
 * lock.  The cas id is two 32-bit halves so that the header needs no
 * 8-byte alignment.
 */
struct pxc_item {
	_Atomic uint32_t meta;  /* see PXC_M_* */
	_Atomic uint32_t hnext; /* index chain; free block: its size */
	uint32_t prev;          /* policy list: older; free list */
	uint32_t next;          /* policy list: newer; free list; limbo */
	uint32_t cas_lo;        /* cas id, low half */
	uint32_t cas_hi;        /* cas id, high half */
	char data[];            /* [size], [exptime], [flags], key, value */
};

_Static_assert(sizeof(struct pxc_item) == PXC_HDR, "item header size");

#define PXC_M_KLEN      0xffu
#define PXC_M_PAD_SHIFT 8 /* 5 bits: bytes after the value */
#define PXC_M_PAD_MASK  (0x1fu << PXC_M_PAD_SHIFT)
#define PXC_M_FREE      (1u << 13) /* block is free */
#define PXC_M_PREV_FREE (1u << 14) /* block before is free (footer valid) */
#define PXC_M_LINKED    (1u << 15) /* in the index and a policy list */
#define PXC_M_MAIN      (1u << 16) /* S3-FIFO: in the main queue */
#define PXC_M_HOT_SHIFT 17         /* 2 bits: visited / frequency */
#define PXC_M_HOT_MASK  (3u << PXC_M_HOT_SHIFT)
#define PXC_M_FLAGS     (1u << 19) /* 4 bytes of client flags in data */
/* Snapshot claims, one bit per snapshot parity (see snap.c). */
#define PXC_M_SNAP_SHIFT 20
#define PXC_M_SNAP0      (1u << 20)
#define PXC_M_SNAP1      (1u << 21)
/* Read at least once by get/gets/gat (memcached's ITEM_FETCHED). */
#define PXC_M_FETCHED (1u << 22)
/* The block holds the hash index and ghost (struct pxc_index), no item. */
#define PXC_M_TABLE (1u << 23)
/* 4 bytes of absolute expiry time (Unix seconds) in data. */
#define PXC_M_EXPT (1u << 24)
/* Block size in units when below 128; 0: in 4 bytes leading data. */
#define PXC_M_UNITS_SHIFT 25
#define PXC_M_UNITS_MASK  (0x7fu << PXC_M_UNITS_SHIFT)
#define PXC_SMALL_UNITS   (PXC_M_UNITS_MASK >> PXC_M_UNITS_SHIFT)

/*
 * The hash index and the S3-FIFO ghost, in one block of the item arena
 * (after its item-sized header).  Readers reach it through c->index and
 * read mask and b[] only; the ghost belongs to the writer lock.
 */
struct pxc_index {
	uint32_t mask;          /* buckets - 1 */
	uint32_t ghost_buckets; /* 0 or a power of two */
	_Atomic uint32_t b[];   /* bucket heads, then the ghost */
};

/* TLSF-style segregated free lists: 16 sub-lists per power of two. */
#define PXC_SL_LOG2  4
#define PXC_SL_COUNT (1u << PXC_SL_LOG2)
#define PXC_FL_COUNT 30

struct pxc_arena {
	char *base;         /* region base; offsets count from here */
	uint32_t start;     /* first block */
	uint32_t end;       /* sentinel block (never free) */
	uint32_t fl_bitmap; /* first levels with a non-empty sub-list */
	uint32_t sl_bitmap[PXC_FL_COUNT];
	uint32_t heads[PXC_FL_COUNT][PXC_SL_COUNT];
	size_t free_units;
	size_t total_units; /* between start and end */
};

/* A policy queue: head is the newest item, tail the oldest. */
struct pxc_list {
	uint32_t head;
	uint32_t tail;
	size_t count;
	size_t charge; /* items (count mode) or units */
};

struct pxc_policy {
	enum px_cache_policy kind;
	struct pxc_list q[2]; /* LRU, SIEVE: q[0]; S3-FIFO: small, main */
	uint32_t hand;        /* SIEVE hand, 0: start at the tail */
	bool count_mode;      /* capacity counted in items */
	size_t capacity;      /* items or units */
	size_t small_cap;     /* S3-FIFO small queue share */
	unsigned move_threshold;
	uint32_t *ghost;      /* fingerprint << 12 | coarse insertion seq */
	size_t ghost_buckets; /* power of two */
	unsigned ghost_shift; /* insertion seq >> this is stored */
	size_t ghost_fixed;   /* count mode: entries the ghost remembers */
	uint32_t ghost_seq;
};

struct pxc_stripe {
	_Atomic uint64_t v[PX_CACHE_METRIC_COUNT];
} __attribute__((aligned(64)));

struct pxc_load; /* get_or_load in flight, see cache_load.c */

/*
 * A point-in-time snapshot in progress (snap.c).  Fields are written
 * under the writer lock; the walker (one thread) reads those set at begin
 * after taking the lock once, and owns the cursors.
 */
struct pxc_snap {
	bool active;         /* between begin and end */
	bool scanning;       /* index walk running: removers retain */
	_Atomic bool failed; /* retention limit hit: retained set released */
	uint32_t claim;      /* PXC_M_SNAP0 or PXC_M_SNAP1 */
	unsigned gen;        /* snapshots begun, picks the claim bit */
	uint64_t cas;        /* image: items with cas <= this ... */
	uint64_t flush_cas;  /* ... not flushed then ... */
	int64_t now;         /* ... nor expired at this instant */
	size_t bucket;       /* walker: next bucket */
	uint32_t retained;   /* removed image items, through next */
	uint32_t walk;       /* walker: next retained item */
	size_t retained_units, retained_items, retain_limit;
	px_cache_snap_fn spill; /* copies removed image items out */
	void *spill_arg;
	size_t spilled_items;
};

/*
 * The control block, at offset 0 of the region.  magic and layout come
 * first so that px_cache_adopt() can check a region of another build
 * before it reads anything else.
 */
#define PXC_MAGIC 0x70786361636865ull /* "pxcache" */

enum pxc_handover {
	PXC_LIVE,     /* in use by the process that created or adopted it */
	PXC_HANDED,   /* px_cache_handover() done: any process may adopt */
	PXC_ADOPTING, /* px_cache_adopt() is rebuilding it */
};

struct px_cache {
	uint64_t magic;  /* PXC_MAGIC */
	uint64_t layout; /* px_cache_layout_id() of the build that made it */
	uint64_t seed;   /* index hash seed */
	_Atomic uint32_t handover; /* enum pxc_handover */
	struct px_region *region;
	char *base;
	size_t limit;
	size_t region_bytes;
	size_t item_max;
	size_t max_items;
	px_cache_listener_fn listener;
	void *listener_arg;
	struct px_cache_hooks hooks;

	pthread_mutex_t lock; /* the writer lock */
	struct pxc_arena arena;
	struct pxc_policy pol;
	/* The index: readers load index (acquire) and check resize_seq,
	 * odd while a resize relinks chains; buckets and bucket_mask mirror
	 * it for writers and the snapshot walker. */
	_Atomic(struct pxc_index *) index;
	uint32_t index_off; /* its block, in units: what adoption rebuilds
			     * every pointer into the region from */
	_Atomic uint32_t resize_seq;
	_Atomic size_t table_units; /* arena units of the index block */
	_Atomic uint32_t *buckets;
	size_t bucket_mask;
	size_t grow_skip; /* new keys to store before growth is tried again */
	size_t sweep_cursor;
	_Atomic uint64_t cas_next; /* last cas id handed out */

	/* flush_all: items with cas <= flush_cas are dead; flush_at is a
	 * pending delayed flush (Unix seconds) or 0. */
	_Atomic uint64_t flush_cas;
	_Atomic int64_t flush_at;

	/* Removed items awaiting a grace period, and those past it still
	 * pinned by references; singly linked through next. */
	uint32_t limbo;
	uint32_t pinned;
	_Atomic size_t limbo_units;

	_Atomic size_t items;
	_Atomic size_t used_units;
	_Atomic size_t kv_bytes;

	_Atomic uint32_t *pins;
	struct pxc_stripe *stripes;
	unsigned nstripes;
	size_t index_bytes, ghost_bytes; /* of the current index block */

	pthread_mutex_t load_lock;
	pthread_cond_t load_cond;
	struct pxc_load *loads;

	struct pxc_snap snap;
};

/* ---- Offsets and fields -------------------------------------------- */

/* Where the counter stripes and the pin table sit in the region. */
static inline size_t
pxc_stripes_off(void)
{
	return (sizeof(struct px_cache) + 63) / 64 * 64;
}

static inline size_t
pxc_pins_off(void)
{
	return pxc_stripes_off() +
	       (size_t)CONFIG_PX_CACHE_STAT_STRIPES * sizeof(struct pxc_stripe);
}

static inline struct pxc_item *
pxc_item(const struct px_cache *c, uint32_t off)
{
	return off ? (struct pxc_item *)(c->base + (size_t)off * PXC_UNIT)
		   : NULL;
}

static inline uint32_t
pxc_off(const struct px_cache *c, const struct pxc_item *it)
{
	return it ? (uint32_t)(((const char *)it - c->base) / PXC_UNIT) : 0;
}

static inline uint32_t
pxc_meta(const struct pxc_item *it)
{
	return atomic_load_explicit(&it->meta, memory_order_relaxed);
}

static inline size_t
pxc_klen(const struct pxc_item *it)
{
	return pxc_meta(it) & PXC_M_KLEN;
}

/* Bytes of data holding the size of a used block of 128 units or more. */
static inline size_t
pxc_big(uint32_t meta)
{
	return meta & PXC_M_UNITS_MASK ? 0 : sizeof(uint32_t);
}

/* Bytes of data before the key: [size], [exptime], [flags]. */
static inline size_t
pxc_extra(uint32_t meta)
{
	return pxc_big(meta) + (meta & PXC_M_FLAGS ? sizeof(uint32_t) : 0) +
	       (meta & PXC_M_EXPT ? sizeof(uint32_t) : 0);
}

/* The size in units of any block: free, item, index or sentinel. */
static inline uint32_t
pxc_units(const struct pxc_item *b)
{
	uint32_t m = pxc_meta(b), u;

	if (m & PXC_M_FREE)
		return atomic_load_explicit(&b->hnext, memory_order_relaxed);
	u = (m & PXC_M_UNITS_MASK) >> PXC_M_UNITS_SHIFT;
	if (!u)
		memcpy(&u, b->data, sizeof(u));
	return u;
}

/*
 * The meta word of a used block of @units units (its other bits 0), and
 * the size field when the block is too large for meta.  Writer lock.
 */
static inline void
pxc_set_units(struct pxc_item *b, uint32_t units)
{
	uint32_t m = 0;

	if (units <= PXC_SMALL_UNITS)
		m = units << PXC_M_UNITS_SHIFT;
	else
		memcpy(b->data, &units, sizeof(units));
	atomic_store_explicit(&b->meta, m, memory_order_relaxed);
}

static inline bool
pxc_has_exptime(const struct pxc_item *it)
{
	return pxc_meta(it) & PXC_M_EXPT;
}

/* Absolute expiry time (Unix seconds), 0 for never. */
static inline uint32_t
pxc_exptime(const struct pxc_item *it)
{
	if (!pxc_has_exptime(it))
		return 0;
	return atomic_load_explicit(
	    (_Atomic uint32_t *)(it->data + pxc_big(pxc_meta(it))),
	    memory_order_relaxed);
}

/* Change the expiry time of an item that has the field (writer lock). */
static inline void
pxc_set_exptime(struct pxc_item *it, uint32_t e)
{
	atomic_store_explicit(
	    (_Atomic uint32_t *)(it->data + pxc_big(pxc_meta(it))), e,
	    memory_order_relaxed);
}

static inline size_t
pxc_vlen(const struct pxc_item *it)
{
	uint32_t m = pxc_meta(it);
	size_t pad = (m & PXC_M_PAD_MASK) >> PXC_M_PAD_SHIFT;

	return (size_t)pxc_units(it) * PXC_UNIT - PXC_HDR - pxc_extra(m) -
	       (m & PXC_M_KLEN) - pad;
}

static inline const char *
pxc_key(const struct pxc_item *it)
{
	return it->data + pxc_extra(pxc_meta(it));
}

static inline char *
pxc_value(struct pxc_item *it)
{
	return (char *)pxc_key(it) + pxc_klen(it);
}

static inline uint32_t
pxc_flags(const struct pxc_item *it)
{
	uint32_t m = pxc_meta(it), f = 0;

	if (m & PXC_M_FLAGS)
		memcpy(&f,
		       it->data + pxc_big(m) + (m & PXC_M_EXPT ? sizeof(f) : 0),
		       sizeof(f));
	return f;
}

static inline uint64_t
pxc_cas(const struct pxc_item *it)
{
	return (uint64_t)it->cas_hi << 32 | it->cas_lo;
}

static inline void
pxc_set_cas(struct pxc_item *it, uint64_t cas)
{
	it->cas_lo = (uint32_t)cas;
	it->cas_hi = (uint32_t)(cas >> 32);
}

static inline bool
pxc_linked(const struct pxc_item *it)
{
	return pxc_meta(it) & PXC_M_LINKED;
}

static inline bool
pxc_fetched(const struct pxc_item *it)
{
	return pxc_meta(it) & PXC_M_FETCHED;
}

/*
 * pxc_mark_fetched - record a read hit; one relaxed fetch_or, skipped when
 * the bit is already set so a hot item's header line stays clean.
 */
static inline void
pxc_mark_fetched(struct pxc_item *it)
{
	if (!pxc_fetched(it))
		atomic_fetch_or_explicit(&it->meta, PXC_M_FETCHED,
					 memory_order_relaxed);
}

static inline unsigned
pxc_hot(const struct pxc_item *it)
{
	return (pxc_meta(it) & PXC_M_HOT_MASK) >> PXC_M_HOT_SHIFT;
}

void pxc_set_hot(struct pxc_item *it, unsigned v);
void pxc_hot_add(struct pxc_item *it, int d);

static inline size_t
pxc_units_for(size_t klen, size_t vlen, uint32_t flags, uint32_t exptime)
{
	size_t extra =
	    (flags ? sizeof(flags) : 0) + (exptime ? sizeof(exptime) : 0);
	size_t units =
	    (PXC_HDR + extra + klen + vlen + PXC_UNIT - 1) / PXC_UNIT;

	if (units <= PXC_SMALL_UNITS)
		return units;
	return (PXC_HDR + sizeof(uint32_t) + extra + klen + vlen + PXC_UNIT -
		1) /
	       PXC_UNIT;
}

/* ---- Counters ------------------------------------------------------ */

struct pxc_stripe *pxc_stripe(const struct px_cache *c);

#define PXC_COUNT(c, name, n)                                                \
	atomic_fetch_add_explicit(&pxc_stripe(c)->v[PX_CACHE_M_##name], (n), \
				  memory_order_relaxed)

/* ---- Arena (arena.c), writer lock held ------------------------------ */

void
pxc_arena_init(struct pxc_arena *a, char *base, uint32_t start, uint32_t end);
uint32_t pxc_arena_alloc(struct pxc_arena *a, size_t units);
void pxc_arena_free(struct pxc_arena *a, uint32_t off);
size_t pxc_arena_largest(const struct pxc_arena *a);
size_t pxc_arena_fit_units(size_t units);

/* ---- Policy (policy.c), writer lock held ---------------------------- */

void pxc_policy_init(struct px_cache *c, enum px_cache_policy kind);
void pxc_ghost_move(struct px_cache *c, uint32_t *ghost, size_t buckets);
void pxc_policy_insert(struct px_cache *c, struct pxc_item *it, uint64_t h);
void pxc_policy_remove(struct px_cache *c, struct pxc_item *it);
void pxc_policy_replace(struct px_cache *c, struct pxc_item *old,
			struct pxc_item *it);
struct pxc_item *pxc_policy_victim(struct px_cache *c);
void pxc_policy_prefetch(const struct px_cache *c, uint64_t h);
void pxc_policy_hit_locked(struct px_cache *c, struct pxc_item *it);
/* Lock-free: any thread inside a read-side section. */
void pxc_policy_hit(struct px_cache *c, struct pxc_item *it);

/* ---- Reclamation (reclaim.c) ---------------------------------------- */

void pxc_read_lock(void);
void pxc_read_unlock(void);
void pxc_limbo_push(struct px_cache *c, struct pxc_item *it);
void pxc_retire(struct px_cache *c, struct pxc_item *it);
size_t pxc_reclaim(struct px_cache *c);
void pxc_pin(struct px_cache *c, struct pxc_item *it);
void pxc_unpin(struct px_cache *c, struct pxc_item *it);
bool pxc_pinned(const struct px_cache *c, const struct pxc_item *it);

/* ---- Core (cache.c) -------------------------------------------------- */

/* pxc_seed - a fresh secret seed for a cache's index hash. */
uint64_t pxc_seed(void);
uint64_t pxc_hash(const struct px_cache *c, const void *key, size_t klen);
int64_t pxc_now(const struct px_cache *c);
struct pxc_item *
pxc_find(const struct px_cache *c, uint64_t h, const void *key, size_t klen);
int pxc_dead(const struct px_cache *c, const struct pxc_item *it, int64_t now);
/* Turns a due delayed flush into the cas floor; writer lock held. */
void pxc_apply_flush(struct px_cache *c, int64_t now);
void pxc_remove_locked(struct px_cache *c, struct pxc_item *it,
		       enum px_cache_cause cause);
int
pxc_store_locked(struct px_cache *c, enum px_cache_mode mode, const void *key,
		 size_t klen, const void *val, size_t vlen, uint32_t flags,
		 int64_t ttl, uint64_t cas, struct pxc_item **out);
void pxc_fill_ref(const struct pxc_item *it, struct px_cache_ref *ref);
struct pxc_index *pxc_index_new(struct px_cache *c, size_t buckets,
				size_t ghost_buckets, int64_t now, bool evict);
void pxc_index_use(struct px_cache *c, struct pxc_index *ix);
int pxc_restore_locked(struct px_cache *c, const struct px_cache_ref *item);

/* ---- Snapshots (snap.c), writer lock held --------------------------- */

bool pxc_snap_retain(struct px_cache *c, struct pxc_item *it);
void pxc_lock(struct px_cache *c);
void pxc_unlock(struct px_cache *c);

#endif
