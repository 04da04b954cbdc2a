// SPDX-License-Identifier: MIT
/*
 * Reclamation: when an item may be reused.  Readers find items under a
 * liburcu (memb flavour) read-side section and never take a lock.  A
 * writer that removes an item unlinks it from the index and its policy
 * list and pushes it on the limbo list; limbo is freed in batches after
 * one grace period (urcu_memb_synchronize_rcu()), when no reader that
 * could have seen the item is still inside its section.  An item pinned
 * by a reference (px_cache_get_ref()) is not freed while its pin counter
 * is non-zero: it waits on the pinned list and is re-checked at every
 * reclaim.  Pin counters are a small table indexed by a hash of the item's
 * offset; two items sharing a counter only delay each other's freeing.
 *
 * Threads are registered with liburcu on their first read and unregistered
 * by a thread-specific destructor when they exit.  ThreadSanitizer does
 * not see liburcu's barriers, so sanitized builds tell it that the end of
 * every read-side section happens before the return of the next grace
 * period (which is what the grace period guarantees).
 */
#include <pthread.h>
#include <urcu/urcu-memb.h>

#include "cache_int.h"

#if defined(__SANITIZE_THREAD__)
#define PXC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PXC_TSAN 1
#endif
#endif

#ifdef PXC_TSAN
#include <sanitizer/tsan_interface.h>
static char tsan_grace;
#define TSAN_RELEASE() __tsan_release(&tsan_grace)
#define TSAN_ACQUIRE() __tsan_acquire(&tsan_grace)
#else
#define TSAN_RELEASE() ((void)0)
#define TSAN_ACQUIRE() ((void)0)
#endif

static pthread_once_t reader_once = PTHREAD_ONCE_INIT;
static pthread_key_t reader_key;
static _Thread_local bool reader_registered;

/*
 * Another thread-specific destructor may still read the cache after this
 * one: clear the flag so that it registers the thread again (and this
 * destructor runs once more) instead of reading unregistered, unseen by
 * grace periods.
 */
static void
reader_exit(void *unused)
{
	urcu_memb_unregister_thread();
	reader_registered = false;
}

static void
reader_key_create(void)
{
	pthread_key_create(&reader_key, reader_exit);
}

static void
reader_register(void)
{
	pthread_once(&reader_once, reader_key_create);
	urcu_memb_register_thread();
	pthread_setspecific(reader_key, &reader_registered);
	reader_registered = true;
}

void
pxc_read_lock(void)
{
	if (!reader_registered)
		reader_register();
	urcu_memb_read_lock();
}

void
pxc_read_unlock(void)
{
	TSAN_RELEASE();
	urcu_memb_read_unlock();
}

/* ---- Pins ------------------------------------------------------------ */

static _Atomic uint32_t *
pin_slot(const struct px_cache *c, const struct pxc_item *it)
{
	uint32_t h = pxc_off(c, it) * 0x9e3779b1u;

	return &c->pins[h >> (32 - __builtin_ctz(PXC_PIN_SLOTS))];
}

void
pxc_pin(struct px_cache *c, struct pxc_item *it)
{
	atomic_fetch_add_explicit(pin_slot(c, it), 1, memory_order_seq_cst);
}

void
pxc_unpin(struct px_cache *c, struct pxc_item *it)
{
	atomic_fetch_sub_explicit(pin_slot(c, it), 1, memory_order_release);
}

bool
pxc_pinned(const struct px_cache *c, const struct pxc_item *it)
{
	return atomic_load_explicit(pin_slot(c, it), memory_order_acquire);
}

/* ---- Limbo ------------------------------------------------------------ */

/* Writer lock held; @it is unlinked from the index and the policy. */
void
pxc_limbo_push(struct px_cache *c, struct pxc_item *it)
{
	it->next = c->limbo;
	c->limbo = pxc_off(c, it);
	atomic_store_explicit(
	    &c->limbo_units,
	    atomic_load_explicit(&c->limbo_units, memory_order_relaxed) +
		pxc_units(it),
	    memory_order_relaxed);
}

/*
 * pxc_retire - an item was just unlinked from the index and its policy:
 * a running snapshot keeps it if it belongs to the image and was not
 * saved yet, otherwise it waits in limbo.  Writer lock held.
 */
void
pxc_retire(struct px_cache *c, struct pxc_item *it)
{
	if (!pxc_snap_retain(c, it))
		pxc_limbo_push(c, it);
}

static size_t
free_or_keep(struct px_cache *c, uint32_t list)
{
	size_t freed = 0;

	while (list) {
		struct pxc_item *it = pxc_item(c, list);

		list = it->next;
		if (pxc_pinned(c, it)) {
			it->next = c->pinned;
			c->pinned = pxc_off(c, it);
			continue;
		}
		freed += pxc_units(it);
		pxc_arena_free(&c->arena, pxc_off(c, it));
	}
	return freed;
}

/*
 * pxc_reclaim - free what no reader can see any more: wait for a grace
 * period if limbo is not empty, then free limbo and the pinned items whose
 * pins are gone.  Writer lock held, outside any read-side section.
 * Returns the units freed.
 */
size_t
pxc_reclaim(struct px_cache *c)
{
	uint32_t limbo = c->limbo, pinned = c->pinned;
	size_t freed;

	if (!limbo && !pinned)
		return 0;
	if (limbo) {
		urcu_memb_synchronize_rcu();
		TSAN_ACQUIRE();
		PXC_COUNT(c, grace_periods, 1);
	}
	c->limbo = 0;
	c->pinned = 0;
	freed = free_or_keep(c, pinned);
	freed += free_or_keep(c, limbo);
	atomic_store_explicit(
	    &c->limbo_units,
	    atomic_load_explicit(&c->limbo_units, memory_order_relaxed) - freed,
	    memory_order_relaxed);
	return freed;
}
