// SPDX-License-Identifier: MIT
/*
 * px_cow cells: the current version of a small object, versions in a
 * fixed-block arena carved from one px_region, reference counts for
 * long-lived holders, and a FIFO of retired versions freed after their
 * grace period (cow_epoch.c).  The design and its memory ordering are
 * written down in docs/cow.md.
 *
 * References: the cell holds one on its current version, the retire
 * list one on each retired version, and every get/draft/make-mut one.
 * A version is freed when the last is dropped.
 *
 * Lock order: c->lock (publishers, the retire list) before
 * c->arena_lock (the free list).  Readers take neither.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <patinox/cow.h>

#include "cow_epoch.h"

/* Version data starts on its own cache line, away from the counter. */
#define COW_DATA_OFFSET COW_CACHELINE

struct cow_version {
	_Atomic uint32_t refs;
	bool retired;             /* on the retire list; under c->lock */
	struct cow_version *next; /* retire list or free list */
	uint64_t retired_at;      /* epoch read after it was replaced */
};

#define COW_STAT_ATOMIC(name, desc) _Atomic uint64_t name;
struct cow_counters {
	PX_COW_STATS(COW_STAT_ATOMIC)
};
#undef COW_STAT_ATOMIC

struct px_cow {
	/* Read by every reader: alone on its line. */
	_Alignas(COW_CACHELINE) struct cow_version *_Atomic current;

	_Alignas(COW_CACHELINE) pthread_mutex_t lock;
	struct cow_version *retired_head;
	struct cow_version **retired_tail;
	size_t nr_retired;
	size_t max_retired;
	bool nowait;
	px_cow_free_fn *on_free;
	void *free_arg;
	px_cow_defer_fn *defer;
	void *defer_arg;
	size_t size;
	size_t block_size;

	pthread_mutex_t arena_lock;
	struct px_region *region;
	struct cow_version *free_list;
	size_t capacity;

	struct cow_counters st;
};

static void
stat_add(_Atomic uint64_t *ctr, int64_t delta)
{
	atomic_fetch_add_explicit(ctr, (uint64_t)delta, memory_order_relaxed);
}

static void *
version_data(struct cow_version *v)
{
	return (char *)v + COW_DATA_OFFSET;
}

static struct cow_version *
version_of(const void *data)
{
	return (struct cow_version *)((char *)data - COW_DATA_OFFSET);
}

static size_t
round_up(size_t v, size_t to)
{
	return (v + to - 1) / to * to;
}

void
px_cow_opts_init(struct px_cow_opts *opts)
{
	*opts = (struct px_cow_opts){
	    .arena_size = (size_t)CONFIG_PX_COW_ARENA_KB << 10,
	    .max_retired = CONFIG_PX_COW_MAX_RETIRED,
	    .backing = PX_REGION_DEFAULT,
	};
}

/* Arena: blocks come from the free list, else are carved from the region. */
static struct cow_version *
arena_alloc(struct px_cow *c)
{
	struct cow_version *v = NULL;
	void *p;

	pthread_mutex_lock(&c->arena_lock);
	if (c->free_list) {
		v = c->free_list;
		c->free_list = v->next;
	} else if (px_region_carve(c->region, c->block_size, COW_CACHELINE,
				   &p) == 0) {
		v = p;
	}
	pthread_mutex_unlock(&c->arena_lock);
	if (!v) {
		stat_add(&c->st.alloc_failures, 1);
		return NULL;
	}
	atomic_init(&v->refs, 1);
	v->retired = false;
	v->next = NULL;
	stat_add(&c->st.live, 1);
	return v;
}

static void
arena_free(struct px_cow *c, struct cow_version *v)
{
	if (c->on_free)
		c->on_free(c->free_arg, version_data(v));
	pthread_mutex_lock(&c->arena_lock);
	v->next = c->free_list;
	c->free_list = v;
	pthread_mutex_unlock(&c->arena_lock);
	stat_add(&c->st.live, -1);
	stat_add(&c->st.reclaimed, 1);
}

/* Acquire-release: the last holder sees every write made before a put. */
static void
version_put(struct px_cow *c, struct cow_version *v)
{
	if (atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) == 1)
		arena_free(c, v);
}

static int
cow_validate(size_t size, const struct px_cow_opts *o, size_t *block)
{
	if (size == 0 || size > o->arena_size || o->max_retired == 0)
		return -EINVAL;
	*block = round_up(COW_DATA_OFFSET + size, COW_CACHELINE);
	if (o->arena_size / *block < o->max_retired + 2)
		return -EINVAL;
	return 0;
}

static int
arena_init(struct px_cow *c, const struct px_cow_opts *o)
{
	struct px_region_opts ro;
	int ret;

	px_region_opts_init(&ro);
	ro.backing = o->backing;
	ro.name = "px_cow";
	ret = cow_hooks.region_create(&c->region, o->arena_size, &ro);
	if (ret < 0)
		return ret;
	c->capacity = px_region_size(c->region) / c->block_size;
	pthread_mutex_init(&c->arena_lock, NULL);
	return 0;
}

static void
cow_fill(struct px_cow *c, size_t size, const struct px_cow_opts *o)
{
	pthread_mutex_init(&c->lock, NULL);
	c->retired_tail = &c->retired_head;
	c->max_retired = o->max_retired;
	c->nowait = o->nowait;
	c->on_free = o->on_free;
	c->free_arg = o->free_arg;
	c->defer = o->defer;
	c->defer_arg = o->defer_arg;
	c->size = size;
}

int
px_cow_create(struct px_cow **out, size_t size, const void *init,
	      const struct px_cow_opts *opts)
{
	struct px_cow_opts o;
	struct cow_version *v;
	struct px_cow *c;
	size_t block;
	int ret;

	if (!out)
		return -EINVAL;
	if (opts)
		o = *opts;
	else
		px_cow_opts_init(&o);
	if (o.arena_size == 0)
		o.arena_size = (size_t)CONFIG_PX_COW_ARENA_KB << 10;
	if (o.max_retired == 0)
		o.max_retired = CONFIG_PX_COW_MAX_RETIRED;
	ret = cow_validate(size, &o, &block);
	if (ret < 0)
		return ret;

	c = cow_hooks.alloc(COW_CACHELINE, sizeof(*c));
	if (!c)
		return -ENOMEM;
	memset(c, 0, sizeof(*c));
	cow_fill(c, size, &o);
	c->block_size = block;
	ret = arena_init(c, &o);
	if (ret < 0)
		goto out_free;

	v = arena_alloc(c);
	if (!v) {
		ret = -ENOMEM;
		goto out_region;
	}
	if (init)
		memcpy(version_data(v), init, size);
	else
		memset(version_data(v), 0, size);
	atomic_store_explicit(&c->current, v, memory_order_release);
	*out = c;
	return 0;

out_region:
	pthread_mutex_destroy(&c->arena_lock);
	px_region_destroy(c->region);
out_free:
	pthread_mutex_destroy(&c->lock);
	free(c);
	return ret;
}

size_t
px_cow_size(const struct px_cow *c)
{
	return c->size;
}

const void *
px_cow_read_lock(struct px_cow *c)
{
	cow_epoch_enter();
	/* Sequentially consistent: ordered after the slot store (full mode). */
	return version_data(
	    atomic_load_explicit(&c->current, memory_order_seq_cst));
}

void
px_cow_read_unlock(struct px_cow *c)
{
	cow_epoch_exit();
}

/* Inside the section the version holds the cell's or the list's ref. */
const void *
px_cow_get(struct px_cow *c)
{
	struct cow_version *v;

	cow_epoch_enter();
	v = atomic_load_explicit(&c->current, memory_order_seq_cst);
	atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
	cow_epoch_exit();
	return version_data(v);
}

void
px_cow_put(struct px_cow *c, const void *ref)
{
	if (ref)
		version_put(c, version_of(ref));
}

int
px_cow_draft(struct px_cow *c, void **out)
{
	struct cow_version *v = arena_alloc(c);

	if (!v)
		return -ENOMEM;
	memcpy(version_data(v), px_cow_read_lock(c), c->size);
	px_cow_read_unlock(c);
	stat_add(&c->st.clones, 1);
	*out = version_data(v);
	return 0;
}

/*
 * One reference, and it is the caller's: the version is neither current
 * nor retired (each holds a reference), so no reader can reach it.
 */
int
px_cow_make_mut(struct px_cow *c, void **ref)
{
	struct cow_version *v = version_of(*ref), *copy;

	if (atomic_load_explicit(&v->refs, memory_order_acquire) == 1) {
		stat_add(&c->st.in_place, 1);
		return 0;
	}
	copy = arena_alloc(c);
	if (!copy)
		return -ENOMEM;
	memcpy(version_data(copy), *ref, c->size);
	version_put(c, v);
	stat_add(&c->st.clones, 1);
	*ref = version_data(copy);
	return 0;
}

static void
retire_locked(struct px_cow *c, struct cow_version *old)
{
	/* Read after the exchange that unlinked @old: see docs/cow.md. */
	old->retired_at = cow_epoch_now();
	old->retired = true;
	old->next = NULL;
	*c->retired_tail = old;
	c->retired_tail = &old->next;
	c->nr_retired++;
	stat_add(&c->st.retired, 1);
}

static void
free_safe_locked(struct px_cow *c)
{
	struct cow_version *v;

	while ((v = c->retired_head) && cow_epoch_safe(v->retired_at)) {
		c->retired_head = v->next;
		if (!c->retired_head)
			c->retired_tail = &c->retired_head;
		c->nr_retired--;
		stat_add(&c->st.retired, -1);
		v->retired = false;
		version_put(c, v);
	}
}

/*
 * @v, still waiting on the retire list, is current again (a reference
 * from px_cow_get() republished): take it off the list and drop the
 * list's reference; the caller's now belongs to the cell.  Re-retiring
 * it later starts a new grace period.
 */
static void
unretire_locked(struct px_cow *c, struct cow_version *v)
{
	struct cow_version **pp = &c->retired_head;

	while (*pp != v)
		pp = &(*pp)->next;
	*pp = v->next;
	if (c->retired_tail == &v->next)
		c->retired_tail = pp;
	v->retired = false;
	c->nr_retired--;
	stat_add(&c->st.retired, -1);
	version_put(c, v);
}

/* Non-blocking: two epoch steps at most, then free what is safe. */
static size_t
reclaim_locked(struct px_cow *c)
{
	for (int step = 0; step < 2 && c->retired_head; step++) {
		free_safe_locked(c);
		if (!c->retired_head || !cow_epoch_try_advance())
			break;
	}
	free_safe_locked(c);
	return c->nr_retired;
}

/*
 * Wait for the grace period of @retired_at without holding the cell: the
 * readers waited for may be writers of this cell themselves, about to
 * take its lock (a publish that needs no wait is allowed in a section).
 * The caller re-checks the cell afterwards.
 */
static int
wait_unlocked(struct px_cow *c, uint64_t retired_at)
{
	int ret;

	pthread_mutex_unlock(&c->lock);
	ret = cow_epoch_wait(retired_at);
	pthread_mutex_lock(&c->lock);
	if (ret == 0)
		free_safe_locked(c);
	return ret;
}

/* Keeps nr_retired under the bound once one more version is retired. */
static int
make_room_locked(struct px_cow *c)
{
	bool counted = false;
	int ret;

	while (c->nr_retired >= c->max_retired) {
		if (reclaim_locked(c) < c->max_retired)
			return 0;
		if (c->nowait)
			return -EAGAIN;
		if (cow_epoch_in_section())
			return -EDEADLK;
		if (!counted)
			stat_add(&c->st.bound_waits, 1);
		counted = true;
		ret = wait_unlocked(c, c->retired_head->retired_at);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int
px_cow_publish(struct px_cow *c, void *ref)
{
	struct cow_version *v = version_of(ref), *old;
	size_t pending;
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = make_room_locked(c);
	if (ret < 0)
		goto out_unlock;
	/* Release half: the new contents are visible before the pointer. */
	old = atomic_exchange_explicit(&c->current, v, memory_order_seq_cst);
	stat_add(&c->st.published, 1);
	if (old == v)
		version_put(c, v); /* already current: drop the caller's ref */
	else
		retire_locked(c, old);
	if (v->retired)
		unretire_locked(c, v);
	pending = reclaim_locked(c);
	pthread_mutex_unlock(&c->lock);
	if (pending && c->defer)
		c->defer(c->defer_arg, c);
	return 0;

out_unlock:
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int
px_cow_reclaim(struct px_cow *c)
{
	size_t pending;

	if (pthread_mutex_trylock(&c->lock) != 0)
		return -EBUSY;
	pending = reclaim_locked(c);
	pthread_mutex_unlock(&c->lock);
	return pending > INT32_MAX ? INT32_MAX : (int)pending;
}

/* The last version retired so far (the list is in epoch order). */
static uint64_t
last_retired_at(struct px_cow *c)
{
	struct cow_version *last =
	    (struct cow_version *)(void *)((char *)c->retired_tail -
					   offsetof(struct cow_version, next));

	return last->retired_at;
}

/* Frees every version retired before the call; others may retire more. */
static int
synchronize_locked(struct px_cow *c)
{
	if (!c->retired_head)
		return 0;
	return wait_unlocked(c, last_retired_at(c));
}

int
px_cow_synchronize(struct px_cow *c)
{
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = synchronize_locked(c);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/*
 * The current version is retired like any other, so readers still in a
 * section are waited for.  A caller inside a section cannot be: its own
 * versions are leaked rather than freed under it.
 */
void
px_cow_destroy(struct px_cow *c)
{
	struct cow_version *cur;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	cur = atomic_exchange(&c->current, NULL);
	retire_locked(c, cur);
	if (synchronize_locked(c) < 0) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->arena_lock);
	px_region_destroy(c->region);
	free(c);
}

void
px_cow_stats(struct px_cow *c, struct px_cow_stats *st)
{
#define COW_STAT_LOAD(name, desc) \
	st->name = atomic_load_explicit(&c->st.name, memory_order_relaxed);
	PX_COW_STATS(COW_STAT_LOAD)
#undef COW_STAT_LOAD
	st->block_size = c->block_size;
	st->capacity = c->capacity;
	st->backing = px_region_backing(c->region);
}
