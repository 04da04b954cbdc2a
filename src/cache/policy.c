// SPDX-License-Identifier: MIT
/*
 * Eviction policies at item granularity: LRU, SIEVE and S3-FIFO.  Each
 * keeps its queues as doubly linked lists threaded through the items'
 * prev/next offsets (head = newest, tail = oldest), changed only under the
 * writer lock.  A hit is recorded in two "hot" bits of the item's meta
 * word: SIEVE's visited bit, S3-FIFO's 0..3 frequency.  Those need no lock;
 * only LRU moves an item on a hit, under the writer lock if it is free.
 *
 * S3-FIFO follows the SOSP'23 paper: new items enter the small queue,
 * or the main queue when their key is in the ghost; the small queue
 * evicts when it holds at least its share of the capacity (or main is
 * empty), moving items hit at least move_threshold times to main and
 * remembering the others' keys in the ghost; main reinserts items with a
 * non-zero frequency, decrementing it.  The ghost remembers as many keys
 * as main holds items: a bucketed table of 32-bit entries (a fingerprint
 * and a coarse insertion number), where an entry counts only while fewer
 * than that many keys were inserted after it.
 */
#include <string.h>

#include "cache_int.h"

static struct pxc_list *
queue_of(struct px_cache *c, const struct pxc_item *it)
{
	bool main = c->pol.kind == PX_CACHE_POLICY_S3FIFO &&
		    (pxc_meta(it) & PXC_M_MAIN);

	return &c->pol.q[main];
}

static size_t
charge_of(const struct px_cache *c, const struct pxc_item *it)
{
	return c->pol.count_mode ? 1 : pxc_units(it);
}

static void
list_push(struct px_cache *c, struct pxc_list *l, struct pxc_item *it)
{
	uint32_t off = pxc_off(c, it);

	it->next = 0;
	it->prev = l->head;
	if (l->head)
		pxc_item(c, l->head)->next = off;
	else
		l->tail = off;
	l->head = off;
	l->count++;
	l->charge += charge_of(c, it);
}

static void
list_unlink(struct px_cache *c, struct pxc_list *l, struct pxc_item *it)
{
	if (it->prev)
		pxc_item(c, it->prev)->next = it->next;
	else
		l->tail = it->next;
	if (it->next)
		pxc_item(c, it->next)->prev = it->prev;
	else
		l->head = it->prev;
	l->count--;
	l->charge -= charge_of(c, it);
}

void
pxc_set_hot(struct pxc_item *it, unsigned v)
{
	uint32_t m = pxc_meta(it), n;

	do {
		n = (m & ~PXC_M_HOT_MASK) | (v << PXC_M_HOT_SHIFT);
		if (n == m)
			return;
	} while (!atomic_compare_exchange_weak_explicit(
	    &it->meta, &m, n, memory_order_relaxed, memory_order_relaxed));
}

/*
 * pxc_hot_add - add @d (+1 or -1) to the 0..3 hot counter in one atomic
 * step relative to its current value; nothing happens where the result
 * would leave 0..3.  A reader's hit and the writer's reinsertion may
 * race: each keeps the other's change, so the counter is what some
 * order of the two would give (the paper's serial semantics).
 */
void
pxc_hot_add(struct pxc_item *it, int d)
{
	uint32_t m = pxc_meta(it), n;
	int v;

	do {
		v = (int)((m & PXC_M_HOT_MASK) >> PXC_M_HOT_SHIFT) + d;
		if (v < 0 || v > 3)
			return;
		n = (m & ~PXC_M_HOT_MASK) | ((uint32_t)v << PXC_M_HOT_SHIFT);
	} while (!atomic_compare_exchange_weak_explicit(
	    &it->meta, &m, n, memory_order_relaxed, memory_order_relaxed));
}

static void
set_main(struct pxc_item *it, bool main)
{
	if (main)
		atomic_fetch_or_explicit(&it->meta, PXC_M_MAIN,
					 memory_order_relaxed);
	else
		atomic_fetch_and_explicit(&it->meta, ~PXC_M_MAIN,
					  memory_order_relaxed);
}

/* ---- Ghost --------------------------------------------------------- */

static size_t
ghost_limit(const struct px_cache *c)
{
	if (c->pol.count_mode)
		return c->pol.ghost_fixed;
	return c->pol.q[1].count;
}

/*
 * A ghost entry is 32 bits: a 20-bit fingerprint of the key and the low
 * 12 bits of its insertion number divided by 2^shift (0: empty).  The
 * bucket comes from the high half of the hash, the fingerprint from the
 * low half, so all 20 bits tell keys of one bucket apart (a false match
 * is one in 2^17 per lookup of 8 ways).  shift keeps the ghost's whole
 * capacity under a quarter of the 4096 steps the number wraps at, so an
 * entry's age is exact to a 1024th of the window that matters.
 */
#define GHOST_SEQ_BITS 12u
#define GHOST_SEQ_MASK ((1u << GHOST_SEQ_BITS) - 1)

static uint32_t
ghost_fp(uint64_t h)
{
	uint32_t fp = (uint32_t)h >> GHOST_SEQ_BITS;

	return fp ? fp : 1;
}

static uint32_t *
ghost_bucket(const struct px_cache *c, uint64_t h)
{
	size_t b = (size_t)(h >> 32) & (c->pol.ghost_buckets - 1);

	return c->pol.ghost + b * PXC_GHOST_WAYS;
}

/* The shift for a ghost of @buckets buckets (see above). */
static unsigned
ghost_shift(size_t buckets)
{
	size_t cap = buckets * PXC_GHOST_WAYS;
	unsigned s = 0;

	while (cap >> s > (GHOST_SEQ_MASK + 1) / 4)
		s++;
	return s;
}

static uint32_t
ghost_now(const struct px_cache *c)
{
	return (c->pol.ghost_seq >> c->pol.ghost_shift) & GHOST_SEQ_MASK;
}

/* Insertions since @e was inserted, to 2^shift. */
static size_t
ghost_age(const struct px_cache *c, uint32_t e)
{
	return (size_t)((ghost_now(c) - e) & GHOST_SEQ_MASK)
	       << c->pol.ghost_shift;
}

static void
ghost_insert(struct px_cache *c, uint64_t h)
{
	uint32_t *b = ghost_bucket(c, h);
	uint32_t fp = ghost_fp(h);
	size_t oldest = 0;
	unsigned i, victim = 0;

	for (i = 0; i < PXC_GHOST_WAYS; i++) {
		if (!b[i] || b[i] >> GHOST_SEQ_BITS == fp) {
			victim = i;
			break;
		}
		if (ghost_age(c, b[i]) >= oldest) {
			oldest = ghost_age(c, b[i]);
			victim = i;
		}
	}
	c->pol.ghost_seq++;
	b[victim] = fp << GHOST_SEQ_BITS | ghost_now(c);
}

/* Start loading the ghost slot an insert of @h will read (a hint). */
void
pxc_policy_prefetch(const struct px_cache *c, uint64_t h)
{
	if (c->pol.kind == PX_CACHE_POLICY_S3FIFO && c->pol.ghost)
		__builtin_prefetch(ghost_bucket(c, h), 1);
}

/* True if @h's key is in the ghost; the entry is consumed. */
static bool
ghost_take(struct px_cache *c, uint64_t h)
{
	uint32_t *b = ghost_bucket(c, h);
	uint32_t fp = ghost_fp(h);
	unsigned i;

	for (i = 0; i < PXC_GHOST_WAYS; i++) {
		uint32_t e = b[i];

		if (e >> GHOST_SEQ_BITS != fp)
			continue;
		b[i] = 0;
		return ghost_age(c, e) < ghost_limit(c);
	}
	return false;
}

/* ---- Common --------------------------------------------------------- */

/*
 * pxc_ghost_move - switch to a ghost of @buckets buckets (zeroed, a power
 * of two no smaller than the current one), moving every entry.  Entries
 * keep no bucket bits, so an entry of old bucket b goes to every new
 * bucket whose low bits are b: the one its key maps to, and copies that
 * only a key of the same 20-bit fingerprint could ever match, which age
 * out like any entry.  Each new bucket takes one old bucket's entries.
 * The ages are converted to the new shift.
 */
void
pxc_ghost_move(struct px_cache *c, uint32_t *ghost, size_t buckets)
{
	struct pxc_policy *p = &c->pol;
	unsigned shift = ghost_shift(buckets);
	uint32_t now = (p->ghost_seq >> shift) & GHOST_SEQ_MASK;
	size_t i, j, w;

	for (i = 0; i < p->ghost_buckets; i++) {
		for (w = 0; w < PXC_GHOST_WAYS; w++) {
			uint32_t e = p->ghost[i * PXC_GHOST_WAYS + w];
			size_t age;

			if (!e)
				continue;
			age = ghost_age(c, e) >> shift;
			e = (e & ~GHOST_SEQ_MASK) |
			    ((now - (uint32_t)age) & GHOST_SEQ_MASK);
			for (j = i; j < buckets; j += p->ghost_buckets)
				ghost[j * PXC_GHOST_WAYS + w] = e;
		}
	}
	p->ghost = ghost;
	p->ghost_buckets = buckets;
	p->ghost_shift = shift;
}

void
pxc_policy_init(struct px_cache *c, enum px_cache_policy kind)
{
	struct pxc_policy *p = &c->pol;

	p->kind = kind;
	p->count_mode = c->max_items != 0;
	p->capacity = p->count_mode ? c->max_items : c->arena.total_units;
	/* In two parts: a huge max_items must not overflow. */
	p->small_cap =
	    p->capacity / 100 * CONFIG_PX_CACHE_S3FIFO_SMALL_PCT +
	    p->capacity % 100 * CONFIG_PX_CACHE_S3FIFO_SMALL_PCT / 100;
	if (!p->small_cap)
		p->small_cap = 1;
	p->move_threshold = CONFIG_PX_CACHE_S3FIFO_MOVE_THRESHOLD;
	p->ghost_fixed = p->count_mode ? p->capacity - p->small_cap : 0;
}

void
pxc_policy_insert(struct px_cache *c, struct pxc_item *it, uint64_t h)
{
	bool main = false;

	if (c->pol.kind == PX_CACHE_POLICY_S3FIFO) {
		main = ghost_take(c, h);
		if (main)
			PXC_COUNT(c, s3fifo_ghost_hits, 1);
	}
	set_main(it, main);
	pxc_set_hot(it, 0);
	atomic_fetch_or_explicit(&it->meta, PXC_M_LINKED, memory_order_relaxed);
	list_push(c, &c->pol.q[main], it);
}

void
pxc_policy_remove(struct px_cache *c, struct pxc_item *it)
{
	if (c->pol.hand == pxc_off(c, it))
		c->pol.hand = it->next;
	list_unlink(c, queue_of(c, it), it);
	atomic_fetch_and_explicit(&it->meta, ~PXC_M_LINKED,
				  memory_order_relaxed);
}

/* @it takes @old's place in its queue, with its hot bits, as a hit. */
void
pxc_policy_replace(struct px_cache *c, struct pxc_item *old,
		   struct pxc_item *it)
{
	struct pxc_list *l = queue_of(c, old);
	uint32_t off = pxc_off(c, it);

	set_main(it, pxc_meta(old) & PXC_M_MAIN);
	pxc_set_hot(it, pxc_hot(old));
	atomic_fetch_or_explicit(&it->meta, PXC_M_LINKED, memory_order_relaxed);
	it->prev = old->prev;
	it->next = old->next;
	if (it->prev)
		pxc_item(c, it->prev)->next = off;
	else
		l->tail = off;
	if (it->next)
		pxc_item(c, it->next)->prev = off;
	else
		l->head = off;
	l->charge += charge_of(c, it) - charge_of(c, old);
	if (c->pol.hand == pxc_off(c, old))
		c->pol.hand = off;
	atomic_fetch_and_explicit(&old->meta, ~PXC_M_LINKED,
				  memory_order_relaxed);
	pxc_policy_hit_locked(c, it);
}

/* ---- Victims -------------------------------------------------------- */

static struct pxc_item *
lru_victim(struct px_cache *c)
{
	return pxc_item(c, c->pol.q[0].tail);
}

static struct pxc_item *
sieve_victim(struct px_cache *c)
{
	struct pxc_list *l = &c->pol.q[0];
	struct pxc_item *it = pxc_item(c, c->pol.hand ? c->pol.hand : l->tail);

	while (it && pxc_hot(it)) {
		pxc_set_hot(it, 0);
		PXC_COUNT(c, sieve_hand_steps, 1);
		it = pxc_item(c, it->next ? it->next : l->tail);
	}
	c->pol.hand = pxc_off(c, it); /* removal moves it to the next */
	return it;
}

static struct pxc_item *
s3fifo_main_victim(struct px_cache *c)
{
	struct pxc_list *m = &c->pol.q[1];
	struct pxc_item *it;

	while ((it = pxc_item(c, m->tail)) && pxc_hot(it) > 0) {
		list_unlink(c, m, it);
		pxc_hot_add(it, -1); /* keeps a hit landing meanwhile */
		list_push(c, m, it);
		PXC_COUNT(c, s3fifo_reinserts, 1);
	}
	if (it)
		PXC_COUNT(c, s3fifo_main_evictions, 1);
	return it;
}

static struct pxc_item *
s3fifo_victim(struct px_cache *c)
{
	struct pxc_list *s = &c->pol.q[0], *m = &c->pol.q[1];
	struct pxc_item *it;

	if (s->charge < c->pol.small_cap && m->count)
		return s3fifo_main_victim(c);
	while ((it = pxc_item(c, s->tail))) {
		if (pxc_hot(it) < c->pol.move_threshold) {
			ghost_insert(c, pxc_hash(c, pxc_key(it), pxc_klen(it)));
			PXC_COUNT(c, s3fifo_small_evictions, 1);
			return it;
		}
		list_unlink(c, s, it);
		set_main(it, true);
		/* As in the S3-FIFO paper: a promoted item starts cold. */
		pxc_set_hot(it, 0);
		list_push(c, m, it);
		PXC_COUNT(c, s3fifo_promotions, 1);
	}
	return s3fifo_main_victim(c);
}

/*
 * pxc_policy_victim - the item the policy evicts next, still linked (the
 * caller removes it), or NULL when the cache is empty.
 */
struct pxc_item *
pxc_policy_victim(struct px_cache *c)
{
	switch (c->pol.kind) {
	case PX_CACHE_POLICY_SIEVE:
		return sieve_victim(c);
	case PX_CACHE_POLICY_S3FIFO:
		return s3fifo_victim(c);
	default:
		return lru_victim(c);
	}
}

/* ---- Hits ------------------------------------------------------------ */

void
pxc_policy_hit_locked(struct px_cache *c, struct pxc_item *it)
{
	struct pxc_list *l = &c->pol.q[0];

	if (c->pol.kind != PX_CACHE_POLICY_LRU) {
		pxc_policy_hit(c, it);
		return;
	}
	if (!pxc_linked(it) || l->head == pxc_off(c, it))
		return;
	list_unlink(c, l, it);
	list_push(c, l, it);
	PXC_COUNT(c, lru_bumps, 1);
}

void
pxc_policy_hit(struct px_cache *c, struct pxc_item *it)
{
	unsigned hot = pxc_hot(it);

	switch (c->pol.kind) {
	case PX_CACHE_POLICY_SIEVE:
		if (!hot)
			pxc_set_hot(it, 1);
		break;
	case PX_CACHE_POLICY_S3FIFO:
		if (hot < 3)
			pxc_hot_add(it, 1);
		break;
	default:
		if (pthread_mutex_trylock(&c->lock)) {
			PXC_COUNT(c, lru_bumps_skipped, 1);
			break;
		}
		pxc_policy_hit_locked(c, it);
		pthread_mutex_unlock(&c->lock);
	}
}
