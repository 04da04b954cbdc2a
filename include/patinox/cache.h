/* SPDX-License-Identifier: MIT */
/*
 * Cache: a concurrent key/value cache with memcached's semantics, held in
 * one px_region whose size is the configured byte budget.  Items, the hash
 * index, the policy's ghost table and the counters all live in that
 * region; the budget is exact (the region never exceeds it).  Eviction is
 * per item (LRU, SIEVE or S3-FIFO, chosen at creation); expired items are
 * reclaimed incrementally by writers and by px_cache_maintain().  The
 * cache does no I/O and starts no threads.
 *
 * Thread safety: every call except px_cache_create()/px_cache_destroy()
 * may be made from any number of threads at once.  Reads (get, get_ref,
 * metrics) take no global lock: they run under a liburcu (memb) read-side
 * critical section; threads are registered with liburcu automatically on
 * their first call and unregistered when they exit.  Writes serialise on
 * one writer lock.  See docs/cache.md for the memory ordering.
 *
 * Return codes, and the memcached reply a server sends for each:
 *
 *   code      px_cache_store() mode         reply
 *   0         any                           STORED
 *   -EEXIST   ADD (live key exists)         NOT_STORED
 *   -ENOENT   REPLACE/APPEND/PREPEND        NOT_STORED
 *   -EEXIST   CAS (cas id differs)          EXISTS
 *   -EEXIST   REPLACE/APPEND/PREPEND with   EX (meta set with C)
 *             a nonzero cas that differs
 *   -ENOENT   CAS (no live key)             NOT_FOUND
 *   -E2BIG    any (value over item_max, or  SERVER_ERROR object too large
 *             can never fit the budget)       for cache
 *   -ENOMEM   any (all memory pinned by      SERVER_ERROR out of memory
 *             references, nothing evictable)  storing object
 *   -EINVAL   any (key length 0 or over     CLIENT_ERROR bad command line
 *             CONFIG_PX_CACHE_KEY_MAX)        format
 *
 *   get/get_ref/gat/touch/delete: 0 found, -ENOENT missing (END /
 *   NOT_FOUND).  incr/decr: 0, -ENOENT (NOT_FOUND), -EINVAL for a value
 *   that is not a decimal number (digits, then optional spaces) that fits
 *   in 64 bits (CLIENT_ERROR cannot increment or decrement non-numeric
 *   value).
 *
 * TTLs (the "ttl" arguments) follow memcached: 0 never expires; 1 to
 * 2592000 (30 days) is seconds from now; more than 30 days is an absolute
 * Unix time (already expired if in the past); negative is already
 * expired.  An item whose expiry time is <= now is dead.
 */
#ifndef PATINOX_CACHE_H
#define PATINOX_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <patinox/common.h>
#include <patinox/region.h>

struct px_cache;

/* Seconds in memcached's relative-TTL window (REALTIME_MAXDELTA). */
#define PX_CACHE_TTL_RELATIVE_MAX 2592000

enum px_cache_policy {
	PX_CACHE_POLICY_DEFAULT = 0, /* the Kconfig choice */
	PX_CACHE_POLICY_LRU,         /* exact LRU; see px_cache_get() */
	PX_CACHE_POLICY_SIEVE,       /* SIEVE (NSDI'24) */
	PX_CACHE_POLICY_S3FIFO,      /* S3-FIFO (SOSP'23) */
};

/* Why an item left the cache, as told to the listener. */
enum px_cache_cause {
	PX_CACHE_CAUSE_EVICTED = 0, /* removed by the policy for space */
	PX_CACHE_CAUSE_EXPIRED,     /* its TTL passed */
	PX_CACHE_CAUSE_REPLACED,    /* a store replaced it (set, append, ...) */
	PX_CACHE_CAUSE_DELETED,     /* px_cache_delete() */
	PX_CACHE_CAUSE_FLUSHED,     /* invalidated by px_cache_flush_all() */
};

/*
 * An eviction listener.  Called synchronously, with the cache's writer
 * lock held, in the thread whose call removed the item, before the item's
 * memory can be reused.  @key is valid only during the call.  It must be
 * quick and must not call any px_cache function on the same cache (that
 * would deadlock).  Removals found by a reader (an expired item seen by
 * px_cache_get()) are reported by the next writer that reclaims them.
 */
typedef void (*px_cache_listener_fn)(void *arg, const void *key, size_t klen,
				     enum px_cache_cause cause);

/*
 * OS calls behind hooks, for tests.  @now returns the current Unix time in
 * seconds; NULL means CLOCK_REALTIME.  It may be called from any thread
 * at any time and must be thread safe.
 */
struct px_cache_hooks {
	int64_t (*now)(void *arg);
	void *arg;
};

struct px_cache_opts {
	enum px_cache_policy policy; /* DEFAULT: CONFIG_PX_CACHE_POLICY_* */
	/*
	 * Largest number of items, 0 for none.  With a limit the policy
	 * evicts when a store would exceed it, exactly one item per insert
	 * once full (as a textbook simulator does), so hit ratios on
	 * unit-size traces can be compared with a reference at a capacity
	 * counted in items; S3-FIFO then sizes its queues in items too.
	 * The byte budget still holds: give a budget large enough for
	 * max_items items (px_cache_item_size() tells an item's charge)
	 * plus the index, or bytes will evict first.
	 */
	size_t max_items;
	size_t item_max; /* largest value in bytes; 0: Kconfig */
	/*
	 * Expected mean bytes per item (header + key + value), which sizes
	 * the initial hash index (one 4-byte bucket per item expected) and
	 * S3-FIFO ghost; 0: CONFIG_PX_CACHE_INDEX_MIN_BUCKETS buckets.  The
	 * index doubles, inside the budget, whenever items outnumber its
	 * buckets, so this only saves the first doublings.
	 */
	size_t expected_item_bytes;
	px_cache_listener_fn listener; /* NULL for none */
	void *listener_arg;
	const struct px_cache_hooks *hooks; /* NULL: the real clock */
	struct px_region_opts region;       /* backing of the region */
};

/*
 * px_cache_opts_init - defaults: Kconfig policy, no item limit, Kconfig
 * item_max, no listener, real clock, px_region_opts_init() for the region.
 */
PX_API void px_cache_opts_init(struct px_cache_opts *opts);

/* The range of px_cache_create()'s @limit: 1 MiB to 32 GiB. */
#define PX_CACHE_LIMIT_MIN (1ull << 20)
#define PX_CACHE_LIMIT_MAX (32ull << 30)

/*
 * px_cache_create - create a cache that uses at most @limit bytes.
 * @out:   receives the cache
 * @limit: byte budget: the one region the cache maps (index, items,
 *         metadata) is at most this big: PX_CACHE_LIMIT_MIN to
 *         PX_CACHE_LIMIT_MAX (1 MiB to 32 GiB).
 * @opts:  NULL for the defaults; copied, may be freed after the call
 *
 * Returns 0, -EINVAL (limit out of range, unknown policy, item_max over
 * 64 MiB), -ENOMEM, or an error from px_region_create().
 */
PX_API int px_cache_create(struct px_cache **out, size_t limit,
			   const struct px_cache_opts *opts);

/*
 * px_cache_destroy - free the cache and its region; NULL is a no-op.
 * No other call may be running, and no reference may be outstanding.
 */
PX_API void px_cache_destroy(struct px_cache *c);

/*
 * px_cache_handover - give the cache to another process (or to a later
 * px_cache_adopt() in this one) without copying it.  The cache must live
 * on a shareable region (@opts->region.shareable at creation).  It waits
 * for readers, frees removed items, then unmaps its region and returns a
 * new file descriptor (close-on-exec) of the region's memfd in @fd, for
 * the caller to pass on (SCM_RIGHTS) and close.  From then on @c is gone:
 * no call may use it, px_cache_destroy() included; a reader of another
 * thread still using it would fault.  So the caller first stops every
 * other thread's use of @c, lock-free gets included (join or park them):
 * the call waits for no caller, only for the grace period of removed
 * items.  The snapshot generation carries over (items keep the claim bit
 * of the last snapshot), so the adopter's snapshots hand over every item.
 *
 * Returns 0, -EINVAL (not shareable), -EBUSY (a reference is held, a
 * snapshot or a get-or-load runs: the cache stays usable), -errno.
 */
PX_API int px_cache_handover(struct px_cache *c, int *fd);

/*
 * px_cache_adopt - take over a cache that px_cache_handover() gave away,
 * from its memfd @fd (the caller keeps @fd; the cache maps it with its
 * own duplicate).  Items, cas ids, expiry times, flush state, the index,
 * the policy and its queues carry over; the limit, policy and item_max
 * are the cache's own.  From @opts (NULL for the defaults) only the
 * listener, the clock hooks and the region's mapping options (populate,
 * lock, NUMA) apply.  Counters start at zero.
 *
 * Returns 0, -PX_ECORRUPT (not a cache's region, or one made by another
 * build: sizes, layout and limits must match), -EBUSY (not handed over,
 * or adopted already), or an error of px_region_map_fd().
 */
PX_API int
px_cache_adopt(struct px_cache **out, int fd, const struct px_cache_opts *opts);

/*
 * px_cache_reclaim - px_cache_adopt() that takes the cache whatever its
 * state: for the process that handed a cache over, once the process that
 * adopted it has died before it could say so (killed between its adopt
 * and its answer).  Adoption rebuilds every pointer from offsets, so it
 * is safe over an adoption cut short.  Only when no live process uses
 * the region: two owners would corrupt it.  Returns as px_cache_adopt(),
 * without -EBUSY.
 */
PX_API int px_cache_reclaim(struct px_cache **out, int fd,
			    const struct px_cache_opts *opts);

/*
 * px_cache_layout_id - a fingerprint of this build's cache layout: two
 * processes can hand a cache from one to the other only when theirs are
 * equal.  Compare it before px_cache_handover() to refuse early.
 */
PX_API uint64_t px_cache_layout_id(void);

/* A short name of a policy: "lru", "sieve", "s3fifo". */
PX_API const char *px_cache_policy_name(enum px_cache_policy p);

/* The policy the cache really uses (DEFAULT resolved). */
PX_API enum px_cache_policy px_cache_policy(const struct px_cache *c);

/*
 * px_cache_item_size - bytes of the budget an item with a @klen-byte key
 * and a @vlen-byte value occupies (header, key, value, alignment), with
 * client flags 0; non-zero flags take 4 bytes more.  The index and other
 * shared structures are not included.
 */
PX_API size_t px_cache_item_size(size_t klen, size_t vlen);

/* ---- Writes --------------------------------------------------------- */

enum px_cache_mode {
	PX_CACHE_SET = 0, /* store unconditionally */
	PX_CACHE_ADD,     /* only if no live item has the key */
	PX_CACHE_REPLACE, /* only if a live item has the key */
	PX_CACHE_APPEND,  /* add bytes after a live item's value */
	PX_CACHE_PREPEND, /* add bytes before a live item's value */
	PX_CACHE_CAS,     /* only if the live item's cas id is @cas */
};

/*
 * px_cache_store - store a value under a key, as memcached's storage
 * commands do.
 * @mode:    see enum px_cache_mode
 * @key:     @klen bytes, 1..CONFIG_PX_CACHE_KEY_MAX
 * @val:     @vlen bytes, copied; may be NULL when @vlen is 0
 * @flags:   32-bit client flags, returned by reads (APPEND and PREPEND
 *           keep the old item's flags and ignore @flags and @ttl, as
 *           memcached does)
 * @ttl:     see the top of this file
 * @cas:     the expected cas id for PX_CACHE_CAS; for REPLACE, APPEND
 *           and PREPEND a nonzero @cas must match the live item's too
 *           (-EEXIST otherwise: memcached's meta set with C); SET and ADD
 *           ignore it
 * @cas_out: NULL, or receives the new item's cas id on success
 *
 * Every successful store gives the item a new cas id from one counter
 * that only grows.  A store with a negative (or past absolute) ttl
 * succeeds and removes the old item (cause REPLACED) without storing the
 * new one, as a later get would miss anyway; it still takes a cas id (in
 * @cas_out), as memcached's does.  Memory: evicts by policy
 * until the item fits; never fails for lack of memory while items remain
 * that are not pinned by references.  Returns the codes in the table at
 * the top of this file.  Thread safe (takes the writer lock).
 */
PX_API int
px_cache_store(struct px_cache *c, enum px_cache_mode mode, const void *key,
	       size_t klen, const void *val, size_t vlen, uint32_t flags,
	       int64_t ttl, uint64_t cas, uint64_t *cas_out);

/* px_cache_set - px_cache_store(c, PX_CACHE_SET, ..., 0, NULL). */
PX_API int
px_cache_set(struct px_cache *c, const void *key, size_t klen, const void *val,
	     size_t vlen, uint32_t flags, int64_t ttl);

/*
 * px_cache_delete - remove a live item (listener cause DELETED).
 * Returns 0 (DELETED), -ENOENT (NOT_FOUND), -EINVAL (bad key length).
 */
PX_API int px_cache_delete(struct px_cache *c, const void *key, size_t klen);

/*
 * px_cache_touch - set a live item's TTL without changing its value or
 * cas id.  Returns 0 (TOUCHED), -ENOENT (NOT_FOUND), -EINVAL, or -ENOMEM
 * when an item stored without a TTL must move to a 4-byte larger block to
 * hold one and nothing is left to evict (it then keeps no TTL).
 */
PX_API int
px_cache_touch(struct px_cache *c, const void *key, size_t klen, int64_t ttl);

/*
 * px_cache_incr / px_cache_decr - add @delta to (subtract it from) a
 * value that is a decimal number.  incr wraps modulo 2^64; decr stops at
 * 0.  The value is read as ASCII digits (trailing spaces allowed) and the
 * result stored as digits without padding, with a new cas id, keeping the
 * flags and TTL.
 * @out: NULL, or receives the new number
 * @cas_out: NULL, or receives the new cas id
 * Returns 0, -ENOENT (NOT_FOUND), -EINVAL (non-numeric value or bad key),
 * -ENOMEM.
 */
PX_API int px_cache_incr(struct px_cache *c, const void *key, size_t klen,
			 uint64_t delta, uint64_t *out, uint64_t *cas_out);
PX_API int px_cache_decr(struct px_cache *c, const void *key, size_t klen,
			 uint64_t delta, uint64_t *out, uint64_t *cas_out);

/*
 * px_cache_flush_all - invalidate every item stored before now + @delay
 * seconds (memcached's flush_all [delay]; @delay <= 0 means now).  Items
 * stored after that instant are kept.  Memory of flushed items is
 * reclaimed incrementally (listener cause FLUSHED).  A later call
 * replaces a pending delayed flush.  Returns 0.
 */
PX_API int px_cache_flush_all(struct px_cache *c, int64_t delay);

/* ---- Reads ---------------------------------------------------------- */

/* What a read reports besides the value. */
struct px_cache_info {
	size_t vlen;     /* value length */
	uint32_t flags;  /* client flags */
	uint64_t cas;    /* cas id */
	int64_t exptime; /* absolute Unix expiry time, 0 for never */
};

/*
 * px_cache_get - copy a live item's value out.
 * @buf:  receives up to @cap bytes of the value; may be NULL if @cap is 0
 * @info: NULL, or receives length, flags, cas and expiry
 *
 * Returns 0 when the whole value was copied, -ENOSPC when @cap is smaller
 * than the value (nothing copied; @info->vlen tells the size), -ENOENT
 * (miss, expired or flushed), -EINVAL (bad key length).  Counts a hit or
 * a miss and marks the item accessed for the policy: SIEVE and S3-FIFO
 * set a bit with one relaxed store; LRU moves the item to the head when
 * it can take the writer lock without waiting, and otherwise skips the
 * move (counted as lru_bumps_skipped), so readers never wait on a lock.
 * Lock-free with respect to other readers and writers.
 */
PX_API int px_cache_get(struct px_cache *c, const void *key, size_t klen,
			void *buf, size_t cap, struct px_cache_info *info);

/*
 * A reference to an item: pointers into the cache's memory that stay valid
 * (and unchanged) until px_cache_ref_put(), even if the item is replaced,
 * deleted, evicted or flushed meanwhile.  A pinned item that left the
 * cache still holds its memory until put: hold references briefly (the
 * time of a send).  Fields are read-only; @priv belongs to the cache.
 */
struct px_cache_ref {
	const void *key;
	size_t klen;
	const void *value;
	size_t vlen;
	uint32_t flags;
	uint64_t cas;
	int64_t exptime; /* absolute Unix time, 0 for never */
	void *priv;
};

/*
 * px_cache_get_ref - find a live item and pin it; as px_cache_get()
 * without the copy.  Returns 0 and fills @ref, -ENOENT, -EINVAL.  Every 0
 * return must be matched by one px_cache_ref_put(), from any thread.
 */
PX_API int px_cache_get_ref(struct px_cache *c, const void *key, size_t klen,
			    struct px_cache_ref *ref);

/* px_cache_ref_put - release a reference; @ref is cleared. */
PX_API void px_cache_ref_put(struct px_cache *c, struct px_cache_ref *ref);

/*
 * px_cache_gat / px_cache_gat_ref - get and touch: as px_cache_get() /
 * px_cache_get_ref() and set the TTL to @ttl (memcached's gat/gats).
 * These take the writer lock.  A negative @ttl expires the item after
 * it is returned.  -ENOMEM as for px_cache_touch().
 */
PX_API int
px_cache_gat(struct px_cache *c, const void *key, size_t klen, int64_t ttl,
	     void *buf, size_t cap, struct px_cache_info *info);
PX_API int px_cache_gat_ref(struct px_cache *c, const void *key, size_t klen,
			    int64_t ttl, struct px_cache_ref *ref);

/*
 * What a loader hands back.  The loader fills @data/@len (the cache copies
 * them), @flags and @ttl; if @release is set it is called with @data once
 * the cache no longer needs it (also when the store fails).
 */
struct px_cache_value {
	const void *data;
	size_t len;
	uint32_t flags;
	int64_t ttl;
	void (*release)(void *data);
};

/*
 * A loader: produce the value of a missing key.  Returns 0 after filling
 * @out, or a negative errno that px_cache_get_or_load() returns to the
 * caller and to every caller waiting on the same load.  It runs with no
 * cache lock held and may use the cache, but not load the same key.
 */
typedef int (*px_cache_loader_fn)(void *arg, const void *key, size_t klen,
				  struct px_cache_value *out);

/*
 * px_cache_get_or_load - get a reference to a live item, loading it on a
 * miss (single flight).  On a miss one caller runs @loader and stores its
 * value with PX_CACHE_SET; concurrent callers of the same key wait for
 * that load (they do not call their loader) and then read the stored
 * item.  The loading caller gets a reference to the item it stored even
 * if another thread replaces it at once.  If the stored item is already
 * gone when a waiter reads it (evicted or replaced and deleted), the
 * waiter loads again.  A loader value with a negative ttl stores nothing:
 * the loading caller and its waiters get -ENOENT.
 * Returns 0 with @ref pinned (put it with px_cache_ref_put()), the
 * loader's error (to the loading caller and every waiter), a store error
 * (-E2BIG, -ENOMEM), -ENOENT as above, or -EINVAL (bad key length, or
 * no @loader, even for a key that is present).  Blocks while another
 * thread loads the key.
 */
PX_API int px_cache_get_or_load(struct px_cache *c, const void *key,
				size_t klen, px_cache_loader_fn loader,
				void *arg, struct px_cache_ref *ref);

/* ---- Snapshot hooks (used by px_snapshot, see snapshot.h) ----------- */

/*
 * A point-in-time image without stopping the cache.  px_cache_snap_begin()
 * fixes the instant in O(1) under the writer lock: the image is every item
 * live then (cas id <= info.cas, not expired at info.now, not flushed).
 * px_cache_snap_walk() then hands each item of the image exactly once to
 * a callback, while other threads keep reading and writing: an image item
 * that a writer replaces, deletes, evicts or expires before the walk has
 * reached it is retained (not freed) and handed over at the end of the
 * walk; items stored after the instant are never handed over.  Retained
 * items are freed by px_cache_snap_end().  One snapshot at a time; the
 * begin/walk/end calls of one snapshot come from one thread at a time.
 * An item's expiry time is read when it is handed over (a touch after the
 * instant is seen); nothing else of an item changes after it is stored.
 */
struct px_cache_snap_info {
	uint64_t cas;     /* the image: items with cas ids up to this ... */
	int64_t now;      /* ... live at this Unix time */
	size_t buckets;   /* index buckets the walk covers */
	size_t items;     /* items in the index at the instant (upper bound) */
	int64_t flush_at; /* a delayed flush_all pending at the instant (Unix
			     time, after @now), 0 for none */
	size_t retained_items; /* px_cache_snap_end(): items kept for it */
	size_t retained_bytes; /* and the arena bytes they held */
	size_t spilled_items;  /* px_cache_snap_end(): handed to the spill fn */
	bool failed;           /* the retention limit was hit */
};

/*
 * px_cache_snap_begin - fix the instant of a snapshot.
 * @retain_limit: most arena bytes retained items may hold before the
 *                snapshot fails; 0: CONFIG_PX_CACHE_SNAPSHOT_RETAIN_PCT
 *                percent of the arena
 * @info:         receives the instant and the size of the walk
 *
 * Holds the writer lock for constant time (no work per item).  Returns 0
 * or -EBUSY while another snapshot is active.  Thread safe.
 */
PX_API int px_cache_snap_begin(struct px_cache *c, size_t retain_limit,
			       struct px_cache_snap_info *info);

/*
 * Receives one item of the image.  Called inside a read-side section: it
 * must copy what it needs, return quickly, not block, and not call the
 * cache (a write could wait for a grace period that waits for this
 * call).  The pointers in @item are valid only during the call; @priv is
 * NULL.  A negative return stops the walk and is returned by it; a
 * positive one ends the current px_cache_snap_walk() call early (after
 * the rest of the current bucket: the walk resumes at bucket boundaries),
 * for a caller whose buffer is full.
 */
typedef int (*px_cache_snap_fn)(void *arg, const struct px_cache_ref *item);

/*
 * px_cache_snap_walk - hand the next items of the image to @fn.
 * @max: index buckets (then retained items) to visit in this call; each
 *       call is one read-side section, so keep it small (hundreds)
 *
 * Returns 1 when more remains, 0 when every item of the image was handed
 * over, @fn's negative return, -ENOSPC when the retention limit was hit
 * (the image cannot be completed), -EINVAL with no snapshot active.
 */
PX_API int px_cache_snap_walk(struct px_cache *c, size_t max,
			      px_cache_snap_fn fn, void *arg);

/*
 * px_cache_snap_spill - hand image items that writers remove during the
 * walk to @fn at once (a copy is made by @fn), instead of keeping them in
 * the cache: their memory is then freed as usual, so a full cache evicts
 * no more during a snapshot than without one.  @fn runs under the writer
 * lock in the removing thread; it must copy quickly and not call the
 * cache.  A non-zero return (no room) makes the cache retain that item
 * as without a spill function.  Call it after px_cache_snap_begin() (a
 * begin clears it), from the walking thread.  Returns 0 or -EINVAL.
 */
PX_API int
px_cache_snap_spill(struct px_cache *c, px_cache_snap_fn fn, void *arg);

/*
 * px_cache_snap_end - finish (or abandon) the active snapshot: release
 * retained items and fill @info's retention fields (@info may be NULL).
 * After an unfinished walk it sweeps the rest of the index without
 * copying (claim marks must be cleared for the next snapshot).  No-op
 * without an active snapshot.
 */
PX_API void
px_cache_snap_end(struct px_cache *c, struct px_cache_snap_info *info);

/*
 * px_cache_restore - store a saved item exactly: key, value, flags, cas
 * id and absolute expiry time (@item->exptime, 0 for never).  The cas
 * counter moves up to the item's cas id, so later stores get higher ids.
 * Meant for a fresh cache (an item whose cas id is at or below a past
 * flush_all of this cache would be dead).  Returns 0, -ETIME (expired at
 * the cache's now: nothing stored), -EINVAL (bad key length or cas 0),
 * -E2BIG, -ENOMEM.  Thread safe.
 */
PX_API int
px_cache_restore(struct px_cache *c, const struct px_cache_ref *item);

/*
 * px_cache_cas_floor - make every later cas id larger than @cas (no-op if
 * they already are).  Thread safe.
 */
PX_API void px_cache_cas_floor(struct px_cache *c, uint64_t cas);

/* What px_cache_restore_many() did with its items. */
struct px_cache_restore_info {
	size_t stored;  /* restored */
	size_t expired; /* -ETIME: expired at the cache's now, not stored */
	size_t too_big; /* -E2BIG: over this cache's item_max, not stored */
};

/*
 * px_cache_restore_many - px_cache_restore() for @n items under one
 * acquisition of the writer lock (held for the whole call: pass batches of
 * tens of items, not a whole file), with the index slots of the next items
 * prefetched while one is stored.  Expired and too large items are counted
 * in @ri and skipped.  Returns 0, or the first other error (-EINVAL for a
 * bad key length or cas 0, -ENOMEM); items before it stay stored and
 * counted.  Thread safe.
 */
PX_API int
px_cache_restore_many(struct px_cache *c, const struct px_cache_ref *items,
		      size_t n, struct px_cache_restore_info *ri);

/*
 * px_cache_flush_at - set a pending delayed flush_all at absolute time @at
 * (Unix seconds by the cache's clock), as px_cache_flush_all(c, @at - now)
 * would, replacing a pending one: every item stored before @at dies then.
 * Restores the flush pending in a snapshot.  Returns 1 when @at is not
 * after the cache's now (the flush is due at once: everything stored so
 * far is dead), 0 when it is pending, -EINVAL for @at <= 0.  Thread safe.
 */
PX_API int px_cache_flush_at(struct px_cache *c, int64_t at);

/* ---- Upkeep, counters, memory ------------------------------------- */

/*
 * px_cache_maintain - reclaim expired and flushed items in up to @work
 * index buckets (0: the whole index), and free memory whose readers have
 * finished.  Writers already do a little of this on every store (see
 * CONFIG_PX_CACHE_EXPIRE_SCAN); a program that stores rarely may call it
 * periodically (say once a second) to bound memory held by dead items.
 * Returns the number of items reclaimed.  Thread safe; takes the writer
 * lock (in slices, so writers are not stalled for a whole sweep).
 */
PX_API size_t px_cache_maintain(struct px_cache *c, size_t work);

/* Number of live items (expired items not yet reclaimed included). */
PX_API size_t px_cache_items(const struct px_cache *c);

/*
 * The counters, each defined once: X(name, kind, description) where kind
 * is COUNTER (only grows) or GAUGE (current value).  Policy counters are
 * zero for the policies they do not belong to.
 */
#define PX_CACHE_METRICS(X)                                                   \
	X(get_hits, COUNTER, "reads that found a live item")                  \
	X(get_misses, COUNTER, "reads that found nothing (expired included)") \
	X(get_expired, COUNTER, "reads that found an expired item")           \
	X(get_flushed, COUNTER, "reads that found a flushed item")            \
	X(sets, COUNTER, "successful stores of any mode")                     \
	X(store_rejects, COUNTER, "stores refused (not stored/exists/...)")   \
	X(deletes, COUNTER, "successful deletes")                             \
	X(touches, COUNTER, "successful touches and gats")                    \
	X(incr_decr, COUNTER, "successful incr and decr")                     \
	X(evictions, COUNTER, "items removed by the policy for space")        \
	X(evict_windows, COUNTER,                                             \
	  "large stores that evicted a contiguous run")                       \
	X(expired_reclaimed, COUNTER, "expired items reclaimed")              \
	X(expired_unfetched, COUNTER, "expired items reclaimed, never read")  \
	X(evicted_unfetched, COUNTER, "evicted items that were never read")   \
	X(flushed_reclaimed, COUNTER, "flushed items reclaimed")              \
	X(loads, COUNTER, "loader calls by get_or_load")                      \
	X(load_waits, COUNTER, "get_or_load callers that waited for a load")  \
	X(grace_periods, COUNTER, "RCU grace periods waited by writers")      \
	X(index_resizes, COUNTER, "hash index doublings")                     \
	X(exptime_moves, COUNTER, "touches that moved an item to add a TTL")  \
	X(items, GAUGE, "items in the index")                                 \
	X(bytes, GAUGE, "bytes held by items in the index")                   \
	X(limbo_bytes, GAUGE, "bytes of removed items not yet reusable")      \
	X(free_bytes, GAUGE, "bytes free in the item arena")                  \
	X(arena_bytes, GAUGE, "bytes of the item arena")                      \
	X(limit_bytes, GAUGE, "the byte budget")                              \
	X(lru_bumps, COUNTER, "lru: moves to the head on a hit")              \
	X(lru_bumps_skipped, COUNTER, "lru: moves skipped, lock busy")        \
	X(sieve_hand_steps, COUNTER, "sieve: items the hand passed over")     \
	X(s3fifo_small_evictions, COUNTER, "s3fifo: evicted from small")      \
	X(s3fifo_main_evictions, COUNTER, "s3fifo: evicted from main")        \
	X(s3fifo_promotions, COUNTER, "s3fifo: moved small to main")          \
	X(s3fifo_reinserts, COUNTER, "s3fifo: main reinsertions")             \
	X(s3fifo_ghost_hits, COUNTER, "s3fifo: inserts found in ghost")

enum px_cache_metric {
#define PX_CACHE_METRIC_ENUM(name, kind, desc) PX_CACHE_M_##name,
	PX_CACHE_METRICS(PX_CACHE_METRIC_ENUM)
#undef PX_CACHE_METRIC_ENUM
	    PX_CACHE_METRIC_COUNT
};

/* Name ("get_hits") and description of metric @m, or NULL if unknown. */
PX_API const char *px_cache_metric_name(enum px_cache_metric m);
PX_API const char *px_cache_metric_desc(enum px_cache_metric m);

/*
 * px_cache_metrics - read every counter into @vals (PX_CACHE_METRIC_COUNT
 * entries, indexed by enum px_cache_metric).  Counters are summed over
 * per-thread stripes without a lock: each is exact at some instant, not
 * all at the same one.  Thread safe.
 */
PX_API void px_cache_metrics(const struct px_cache *c, uint64_t *vals);

/*
 * px_cache_metrics_foreach - call @fn once per counter, in table order,
 * with its name and value (what a "stats" command prints).
 */
PX_API void px_cache_metrics_foreach(const struct px_cache *c,
				     void (*fn)(void *arg, const char *name,
						uint64_t value),
				     void *arg);

/* Where the budget goes, for benchmarks and stats. */
struct px_cache_memory {
	size_t limit;           /* the budget */
	size_t region_bytes;    /* mapped by the region: <= limit */
	size_t index_bytes;     /* hash buckets */
	size_t ghost_bytes;     /* S3-FIFO ghost table (0 for others) */
	size_t other_bytes;     /* control block, counters */
	size_t arena_bytes;     /* item arena */
	size_t used_bytes;      /* arena bytes held by live items */
	size_t limbo_bytes;     /* removed, awaiting readers */
	size_t free_bytes;      /* arena bytes free */
	size_t item_header;     /* bytes of header per item (fixed) */
	size_t key_value_bytes; /* sum of key and value lengths, live items */
	size_t items;
};

/* px_cache_memory - fill @m (a consistent view; takes the writer lock). */
PX_API void px_cache_memory(struct px_cache *c, struct px_cache_memory *m);

#endif
