/* SPDX-License-Identifier: MIT */
/*
 * Plain reference implementations of FIFO, LRU, SIEVE and S3-FIFO (header
 * only), for checking the cache's policies and for the benchmark's tables.
 *
 * Everything counts objects, not bytes: the capacity is a number of
 * objects, every request is a unit-size GET, and a miss inserts the key
 * (cold misses count as misses).  Keys are the dense ids 0 .. nkeys - 1
 * of trace.h, so each key's state lives in plain arrays and every queue
 * is a doubly linked list through them.  A key sits in at most one queue
 * at a time (S3-FIFO's small, main or ghost queue; the one queue of the
 * others), so one pair of links per key is enough.  Queues run from
 * head (newest) to tail (oldest); next points toward the tail.
 *
 * The policies as their papers describe them:
 * - LRU: a hit moves the key to the head; eviction takes the tail.
 * - SIEVE (Zhang et al., NSDI'24): one FIFO, a visited bit per key, set
 *   by a hit.  A hand walks from the tail toward the head, clearing set
 *   bits, and evicts the first key whose bit is clear; it stays there
 *   (at the evicted key's newer neighbour) for the next eviction and
 *   wraps from the head back to the tail.  New keys go in at the head.
 * - S3-FIFO (Yang et al., SOSP'23): a small FIFO S of 10% of the
 *   capacity, a main FIFO M of the rest, a ghost FIFO G of keys only,
 *   as long as M's share.  A hit adds one to a 2-bit counter (at most
 *   3).  A miss first frees a slot if the cache is full, then goes into
 *   M when its key is in G (and leaves G), into S otherwise.  To free one slot
 * when S holds at least its share (or M is empty): take S's tail; if it was hit
 * since insertion it moves to M with its counter reset to 0 and the next tail
 * is looked at, else it leaves the cache and its key enters G (dropping G's
 * oldest when G is full); if S runs empty that way, evict from M instead.  When
 *   S holds less than its share: M's tail is evicted if its counter is
 *   0, or goes back to M's head with the counter less one, until one
 *   is evicted.
 *
 * Not thread-safe.  The S3-FIFO details the paper's pseudo-code leaves
 * open are chosen as the authors' own description and simulator have
 * them: promotion needs one hit and clears the counter; one miss evicts
 * exactly one object, so M may briefly hold more than its share.
 *
 * The ghost comes in the two forms the paper gives (ref_set_ghost()):
 * - REF_GHOST_QUEUE (default): the algorithm's FIFO queue of keys.  A
 *   key found there leaves it, which frees its slot, so older keys stay
 *   remembered a little longer.
 * - REF_GHOST_WINDOW: the implementation the paper suggests, a table of
 *   key fingerprints stamped with an insertion number; a key counts as
 *   in the ghost while fewer than the ghost's length keys were added
 *   after it.  A hit consumes the entry but frees nothing.  Here stamps
 *   are per key, so there are no fingerprint collisions.
 * The two differ by up to about half a point of miss ratio on small
 * caches (sprite at 71 objects), by less on larger ones.
 */
#ifndef PX_TESTS_TRACE_POLICY_H
#define PX_TESTS_TRACE_POLICY_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"

#define REF_NIL UINT32_MAX

enum ref_policy {
	REF_FIFO,
	REF_LRU,
	REF_SIEVE,
	REF_S3FIFO,
	REF_NR_POLICIES,
};

/* Which queue a key is in. */
enum ref_where {
	REF_OUT = 0,
	REF_IN_SMALL, /* the only queue of FIFO, LRU and SIEVE */
	REF_IN_MAIN,
	REF_IN_GHOST,
};

struct ref_queue {
	uint32_t head, tail, size;
};

enum ref_ghost {
	REF_GHOST_QUEUE,
	REF_GHOST_WINDOW,
};

struct ref_cache {
	enum ref_policy policy;
	uint32_t cap, small_cap, ghost_cap;
	uint32_t *next, *prev;
	uint8_t *where, *freq;
	struct ref_queue small, main, ghost;
	uint32_t hand; /* SIEVE: next key to look at, REF_NIL: the tail */
	enum ref_ghost ghost_kind;
	uint64_t *stamp; /* REF_GHOST_WINDOW: insertion number, 0: none */
	uint64_t ghost_seq;
	uint32_t nkeys;
	uint64_t hits, misses;
};

static inline const char *
ref_policy_name(enum ref_policy p)
{
	static const char *const names[] = {"fifo", "lru", "sieve", "s3fifo"};

	return (unsigned)p < REF_NR_POLICIES ? names[p] : "?";
}

static inline void
ref_queue_init(struct ref_queue *q)
{
	q->head = q->tail = REF_NIL;
	q->size = 0;
}

static inline void
ref_push_head(struct ref_cache *c, struct ref_queue *q, uint32_t k)
{
	c->prev[k] = REF_NIL;
	c->next[k] = q->head;
	if (q->head != REF_NIL)
		c->prev[q->head] = k;
	else
		q->tail = k;
	q->head = k;
	q->size++;
}

static inline void
ref_unlink(struct ref_cache *c, struct ref_queue *q, uint32_t k)
{
	if (c->prev[k] != REF_NIL)
		c->next[c->prev[k]] = c->next[k];
	else
		q->head = c->next[k];
	if (c->next[k] != REF_NIL)
		c->prev[c->next[k]] = c->prev[k];
	else
		q->tail = c->prev[k];
	q->size--;
}

/*
 * ref_set_ghost - use ghost form @kind (see the top of this file); call
 * before the first access.  Returns 0 or -ENOMEM.
 */
static inline int
ref_set_ghost(struct ref_cache *c, enum ref_ghost kind)
{
	c->ghost_kind = kind;
	if (kind != REF_GHOST_WINDOW || c->stamp)
		return 0;
	c->stamp = calloc(c->nkeys, sizeof(*c->stamp));
	return c->stamp ? 0 : -ENOMEM;
}

static inline void
ref_destroy(struct ref_cache *c)
{
	free(c->stamp);
	free(c->next);
	free(c->prev);
	free(c->where);
	free(c->freq);
	memset(c, 0, sizeof(*c));
}

/*
 * ref_create - an empty cache of @cap objects (>= 1) for keys below
 * @nkeys.  Returns 0, -EINVAL or -ENOMEM.
 */
static inline int
ref_create(struct ref_cache *c, enum ref_policy policy, uint32_t nkeys,
	   uint32_t cap)
{
	memset(c, 0, sizeof(*c));
	if (cap == 0 || nkeys == 0 || (unsigned)policy >= REF_NR_POLICIES)
		return -EINVAL;
	c->policy = policy;
	c->nkeys = nkeys;
	c->cap = cap;
	c->small_cap = cap / 10 ? cap / 10 : 1;
	c->ghost_cap = cap - c->small_cap;
	c->next = malloc(nkeys * sizeof(*c->next));
	c->prev = malloc(nkeys * sizeof(*c->prev));
	c->where = calloc(nkeys, 1);
	c->freq = calloc(nkeys, 1);
	ref_queue_init(&c->small);
	ref_queue_init(&c->main);
	ref_queue_init(&c->ghost);
	c->hand = REF_NIL;
	if (!c->next || !c->prev || !c->where || !c->freq) {
		ref_destroy(c);
		return -ENOMEM;
	}
	return 0;
}

static inline void
ref_drop(struct ref_cache *c, struct ref_queue *q, uint32_t k)
{
	ref_unlink(c, q, k);
	c->where[k] = REF_OUT;
}

static inline void
ref_sieve_evict(struct ref_cache *c)
{
	uint32_t k = c->hand == REF_NIL ? c->small.tail : c->hand;

	while (c->freq[k]) {
		c->freq[k] = 0;
		k = c->prev[k] != REF_NIL ? c->prev[k] : c->small.tail;
	}
	c->hand = c->prev[k];
	ref_drop(c, &c->small, k);
}

static inline void
ref_ghost_add(struct ref_cache *c, uint32_t k)
{
	c->where[k] = REF_OUT;
	if (c->ghost_cap == 0)
		return;
	if (c->ghost_kind == REF_GHOST_WINDOW) {
		c->stamp[k] = ++c->ghost_seq;
		return;
	}
	if (c->ghost.size == c->ghost_cap)
		ref_drop(c, &c->ghost, c->ghost.tail);
	ref_push_head(c, &c->ghost, k);
	c->where[k] = REF_IN_GHOST;
}

/* True if @k's key is in the ghost; it leaves the ghost. */
static inline bool
ref_ghost_take(struct ref_cache *c, uint32_t k)
{
	bool in;

	if (c->ghost_kind == REF_GHOST_WINDOW) {
		in = c->stamp[k] && c->ghost_seq - c->stamp[k] < c->ghost_cap;
		c->stamp[k] = 0;
		return in;
	}
	if (c->where[k] != REF_IN_GHOST)
		return false;
	ref_drop(c, &c->ghost, k);
	return true;
}

static inline void
ref_s3_evict_main(struct ref_cache *c)
{
	uint32_t k;

	for (;;) {
		k = c->main.tail;
		if (c->freq[k] == 0)
			break;
		c->freq[k]--;
		ref_unlink(c, &c->main, k);
		ref_push_head(c, &c->main, k);
	}
	ref_drop(c, &c->main, k);
}

static inline void
ref_s3_evict(struct ref_cache *c)
{
	uint32_t k;

	if (c->small.size < c->small_cap && c->main.size > 0) {
		ref_s3_evict_main(c);
		return;
	}
	while (c->small.size > 0) {
		k = c->small.tail;
		ref_unlink(c, &c->small, k);
		if (c->freq[k] == 0) {
			ref_ghost_add(c, k);
			return;
		}
		c->freq[k] = 0;
		ref_push_head(c, &c->main, k);
		c->where[k] = REF_IN_MAIN;
	}
	ref_s3_evict_main(c);
}

static inline void
ref_evict(struct ref_cache *c)
{
	switch (c->policy) {
	case REF_FIFO:
	case REF_LRU:
		ref_drop(c, &c->small, c->small.tail);
		break;
	case REF_SIEVE:
		ref_sieve_evict(c);
		break;
	default:
		ref_s3_evict(c);
		break;
	}
}

static inline void
ref_hit(struct ref_cache *c, uint32_t k)
{
	c->hits++;
	if (c->policy == REF_LRU) {
		ref_unlink(c, &c->small, k);
		ref_push_head(c, &c->small, k);
	} else if (c->policy == REF_SIEVE) {
		c->freq[k] = 1;
	} else if (c->policy == REF_S3FIFO && c->freq[k] < 3) {
		c->freq[k]++;
	}
}

static inline void
ref_miss(struct ref_cache *c, uint32_t k)
{
	bool ghost;

	c->misses++;
	if (c->small.size + c->main.size == c->cap)
		ref_evict(c);
	ghost = c->policy == REF_S3FIFO && ref_ghost_take(c, k);
	c->freq[k] = 0;
	if (ghost) {
		ref_push_head(c, &c->main, k);
		c->where[k] = REF_IN_MAIN;
	} else {
		ref_push_head(c, &c->small, k);
		c->where[k] = REF_IN_SMALL;
	}
}

/* ref_access - one GET of key @k; true on a hit.  Inserts on a miss. */
static inline bool
ref_access(struct ref_cache *c, uint32_t k)
{
	uint8_t w = c->where[k];

	if (w == REF_IN_SMALL || w == REF_IN_MAIN) {
		ref_hit(c, k);
		return true;
	}
	ref_miss(c, k);
	return false;
}

/* ref_cached - how many objects the cache holds now. */
static inline uint32_t
ref_cached(const struct ref_cache *c)
{
	return c->small.size + c->main.size;
}

/*
 * ref_miss_ratio_ghost - run the first @n requests of @t (0: all) through
 * a fresh @policy cache of @cap objects whose ghost (S3-FIFO only) has
 * form @ghost.  Returns the miss ratio in [0, 1], or a negative errno.
 */
static inline double
ref_miss_ratio_ghost(enum ref_policy policy, enum ref_ghost ghost,
		     const struct trace *t, uint32_t cap, size_t n)
{
	struct ref_cache c;
	uint64_t misses;
	int ret;

	ret = ref_create(&c, policy, t->nunique, cap);
	if (ret == 0)
		ret = ref_set_ghost(&c, ghost);
	if (ret) {
		ref_destroy(&c);
		return ret;
	}
	if (n == 0 || n > t->n)
		n = t->n;
	for (size_t i = 0; i < n; i++)
		ref_access(&c, t->ids[i]);
	misses = c.misses;
	ref_destroy(&c);
	return (double)misses / (double)n;
}

/* ref_miss_ratio - ref_miss_ratio_ghost() with the ghost queue. */
static inline double
ref_miss_ratio(enum ref_policy policy, const struct trace *t, uint32_t cap,
	       size_t n)
{
	return ref_miss_ratio_ghost(policy, REF_GHOST_QUEUE, t, cap, n);
}

#endif
