/* SPDX-License-Identifier: MIT */
/*
 * Copy-on-write shared data: a cell (struct px_cow) holds the current
 * version of a small, fixed-size, read-mostly object such as a server's
 * live settings.  Versions are immutable while shared and live in a
 * hugepage-backed arena taken from a px_region.
 *
 *   Readers:  v = px_cow_read_lock(c); use v; px_cow_read_unlock(c);
 *             a read-side section writes only the calling thread's own
 *             slot, never a shared counter.  px_cow_get()/px_cow_put()
 *             take a reference that outlives the section.
 *   Writers:  px_cow_draft(c, &d); change d; px_cow_publish(c, d);
 *             px_cow_make_mut() turns a reference into a writable one,
 *             in place when the caller is its only owner and no reader
 *             can see it, by copying otherwise.
 *
 * A replaced version is retired and freed once every read-side section
 * that could see it has ended (an epoch-based grace period, see
 * docs/cow.md).  Reclamation never runs on the read path: publishers,
 * px_cow_reclaim() (for a program's deferral hook, such as a guard
 * timer), px_cow_synchronize() and px_cow_destroy() do it.  At most
 * max_retired versions of a cell wait for reclamation at any time: a
 * publish that would exceed the bound first waits for a grace period.
 *
 * Thread safety: every call may be made from any thread at once, except
 * px_cow_destroy() (no other call on the cell may run or follow) and
 * px_cow_set_hooks().  A thread must not publish or synchronize from
 * inside a read-side section when that has to wait (-EDEADLK); a publish
 * that needs no wait may, also while other writers wait for that section
 * (writers never hold the cell while they wait for a grace period).
 */
#ifndef PATINOX_COW_H
#define PATINOX_COW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <patinox/common.h>
#include <patinox/region.h>

struct px_cow;

/*
 * Called exactly once per version, just before its memory is reused, on
 * the thread that dropped the last reference, possibly with the cell's
 * writer lock held: it must not call px_cow functions on the same cell.
 */
typedef void px_cow_free_fn(void *arg, void *data);

/* Called after a publish that left versions waiting for a grace period. */
typedef void px_cow_defer_fn(void *arg, struct px_cow *c);

struct px_cow_opts {
	size_t arena_size;  /* arena bytes; 0: CONFIG_PX_COW_ARENA_KB */
	size_t max_retired; /* retirement bound; 0: CONFIG_PX_COW_MAX_RETIRED */
	enum px_region_backing backing; /* arena backing, default policy */
	bool nowait;             /* publish fails with -EAGAIN at the bound */
	px_cow_free_fn *on_free; /* NULL: none */
	void *free_arg;
	px_cow_defer_fn *defer; /* NULL: reclaim at later publishes */
	void *defer_arg;
};

/*
 * Counters of one cell, one table: X(name, description).  Gauges (live,
 * retired) are values now; the others count since creation.
 */
#define PX_COW_STATS(X)                                                 \
	X(published, "versions published")                              \
	X(clones, "make-mut and draft calls that copied a version")     \
	X(in_place, "make-mut calls that kept the version in place")    \
	X(reclaimed, "versions freed")                                  \
	X(live, "versions allocated now")                               \
	X(retired, "versions waiting for a grace period now")           \
	X(bound_waits, "publishes that waited at the retirement bound") \
	X(alloc_failures, "version allocations refused (arena full)")

struct px_cow_stats {
#define PX_COW_STAT_FIELD(name, desc) uint64_t name;
	PX_COW_STATS(PX_COW_STAT_FIELD)
#undef PX_COW_STAT_FIELD
	size_t block_size; /* arena bytes per version */
	size_t capacity;   /* versions the arena can hold */
	enum px_region_backing backing;
};

/*
 * OS and allocation calls, replaceable so tests can make them fail.
 * A NULL member keeps the default.
 */
struct px_cow_hooks {
	int (*region_create)(struct px_region **out, size_t size,
			     const struct px_region_opts *opts);
	void *(*alloc)(size_t align, size_t size); /* freed with free() */
	int (*membarrier)(int cmd, unsigned int flags);
};

/*
 * px_cow_set_hooks - replace the hooks; NULL restores the defaults.
 * Not thread-safe: call before any other px_cow call.  The membarrier
 * hook is consulted once, at the first read-side section or grace period
 * of the process.
 */
PX_API void px_cow_set_hooks(const struct px_cow_hooks *hooks);

/* px_cow_opts_init - defaults: Kconfig arena size, bound and backing. */
PX_API void px_cow_opts_init(struct px_cow_opts *opts);

/*
 * px_cow_create - a cell whose versions are @size bytes, its first
 * version a copy of @init (zeros when @init is NULL).
 * @out:  receives the cell
 * @opts: NULL for the defaults
 * Returns 0, -EINVAL (size 0, an arena too small for two versions plus
 * the bound), -ENOMEM, or the error of px_region_create().
 */
PX_API int px_cow_create(struct px_cow **out, size_t size, const void *init,
			 const struct px_cow_opts *opts);

/*
 * px_cow_destroy - wait for every read-side section that may still see a
 * retired version, free all versions (on_free for each) and the arena.
 * Every reference and draft must have been put before.  NULL is a no-op.
 */
PX_API void px_cow_destroy(struct px_cow *c);

/* px_cow_size - the size of a version, as given to px_cow_create(). */
PX_API size_t px_cow_size(const struct px_cow *c);

/*
 * px_cow_read_lock - enter a read-side section and return the current
 * version, valid until the matching px_cow_read_unlock().  Sections nest
 * (also across cells).  Never fails; registers the calling thread on its
 * first use (see px_cow_thread_register()).  Never blocks, except in a
 * thread that could not get a slot of its own: such threads share one
 * slot under a lock.  The returned memory must not be written.
 */
PX_API const void *px_cow_read_lock(struct px_cow *c);

/* px_cow_read_unlock - leave the section entered by px_cow_read_lock(). */
PX_API void px_cow_read_unlock(struct px_cow *c);

/*
 * px_cow_get - a reference to the current version that stays valid after
 * the section, until px_cow_put().  Costs one atomic increment on the
 * version, so it is for long-lived use, not the hot path.
 */
PX_API const void *px_cow_get(struct px_cow *c);

/*
 * px_cow_put - drop a reference (from px_cow_get, px_cow_draft or
 * px_cow_make_mut).  Frees the version, calling on_free, when it was the
 * last reference and the version is neither current nor retired.
 */
PX_API void px_cow_put(struct px_cow *c, const void *ref);

/*
 * px_cow_draft - a private, writable copy of the current version, to
 * change and then publish or put.
 * Returns 0 and sets *@out, or -ENOMEM when the arena is full.
 */
PX_API int px_cow_draft(struct px_cow *c, void **out);

/*
 * px_cow_make_mut - make the reference *@ref writable.  When the caller
 * holds the only reference and the version is neither current nor
 * retired (no reader can see it), *@ref is returned as is; otherwise it
 * is copied into a new version, the old reference is put and *@ref
 * points to the copy.  Returns 0, or -ENOMEM (*@ref is left untouched
 * and still owned by the caller).
 */
PX_API int px_cow_make_mut(struct px_cow *c, void **ref);

/*
 * px_cow_publish - make @ref the current version and retire the previous
 * one.  Consumes the caller's reference: @ref must not be written after.
 * @ref may be a draft, or a reference from px_cow_get() to an older
 * version (a rollback), also while that version still waits for its
 * grace period: it then leaves the retired ones.
 * Concurrent publishers are serialized; the last one wins.  When
 * max_retired versions already wait, it first waits for a grace period
 * (or, with opts.nowait, fails with -EAGAIN).  Returns 0, -EAGAIN, or
 * -EDEADLK when it would have to wait inside the caller's own read-side
 * section; on an error nothing is published and the caller keeps @ref.
 */
PX_API int px_cow_publish(struct px_cow *c, void *ref);

/*
 * px_cow_reclaim - free the retired versions whose grace period has
 * elapsed, without waiting; meant for a deferral hook.  Returns the
 * number of versions still waiting (>= 0), or -EBUSY when a publisher
 * holds the cell (it reclaims itself).
 */
PX_API int px_cow_reclaim(struct px_cow *c);

/*
 * px_cow_synchronize - wait until every version of @c retired before the
 * call is freed (versions other writers retire meanwhile may remain).
 * Does not hold the cell while it waits.  Returns 0, or -EDEADLK when
 * called inside a read-side section while versions wait.
 */
PX_API int px_cow_synchronize(struct px_cow *c);

/* px_cow_stats - fill @st with the counters of @c. */
PX_API void px_cow_stats(struct px_cow *c, struct px_cow_stats *st);

/*
 * px_cow_thread_register - give the calling thread its reader slot now
 * rather than at its first read-side section.  Returns 0, -ENOMEM (the
 * thread still reads, through a slot shared under a lock), or -EBUSY
 * when a thread on that shared slot calls it inside a section.  The
 * slot is given back when the thread exits or calls
 * px_cow_thread_unregister() outside any section.
 */
PX_API int px_cow_thread_register(void);
PX_API void px_cow_thread_unregister(void);

#endif
