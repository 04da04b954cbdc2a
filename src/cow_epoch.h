/* SPDX-License-Identifier: MIT */
/*
 * Private to the cow part: the process-wide reader registry and its
 * epoch-based grace periods.  Every thread that reads a px_cow cell owns
 * one cache-line slot; entering a read-side section writes the current
 * global epoch into it, leaving writes zero.  A grace period advances the
 * epoch only when every busy slot has seen the current one; a version
 * retired at epoch E may be freed once the epoch reaches E + 2.  The
 * memory-ordering argument is in docs/cow.md.
 *
 * The inline fast path below is all a reader executes: no shared
 * cache line is written.
 */
#ifndef PX_COW_EPOCH_H
#define PX_COW_EPOCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <patinox/cow.h>

#if defined(__SANITIZE_THREAD__)
#define COW_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define COW_TSAN 1
#endif
#endif

#define COW_CACHELINE 64

enum cow_fence_mode {
	COW_FENCE_UNKNOWN = 0,
	COW_FENCE_MEMBARRIER, /* readers: compiler barrier only */
	COW_FENCE_FULL,       /* readers: sequentially consistent store */
};

struct cow_slot {
	_Alignas(COW_CACHELINE) _Atomic uint64_t state; /* (epoch<<1)|1 */
	_Atomic int in_use;
};

struct cow_reader {
	struct cow_slot *slot;
	unsigned int depth;
	bool shared; /* the lock-protected fallback slot */
};

extern __thread struct cow_reader cow_reader
    __attribute__((tls_model("initial-exec")));
extern _Atomic uint64_t cow_epoch_global;
extern int cow_fence_mode;
extern struct px_cow_hooks cow_hooks;

void cow_reader_attach(struct cow_reader *r);
void cow_shared_enter(void);
void cow_shared_exit(void);
bool cow_epoch_try_advance(void);
bool cow_epoch_safe(uint64_t retired_at);
int cow_epoch_wait(uint64_t retired_at);
uint64_t cow_epoch_now(void);

/*
 * The slot store must be ordered before the loads of the section.  With
 * membarrier the writer forces that order when it needs it; otherwise
 * the store itself is sequentially consistent (see docs/cow.md).
 */
static inline void
cow_slot_enter(struct cow_reader *r)
{
	uint64_t e =
	    atomic_load_explicit(&cow_epoch_global, memory_order_acquire);

	if (cow_fence_mode == COW_FENCE_MEMBARRIER) {
		atomic_store_explicit(&r->slot->state, e << 1 | 1,
				      memory_order_relaxed);
		atomic_signal_fence(memory_order_seq_cst);
	} else {
		atomic_store_explicit(&r->slot->state, e << 1 | 1,
				      memory_order_seq_cst);
	}
}

static inline void
cow_epoch_enter(void)
{
	struct cow_reader *r = &cow_reader;

	if (r->depth++ != 0)
		return;
	if (__builtin_expect(r->slot == NULL, 0))
		cow_reader_attach(r);
	if (__builtin_expect(r->shared, 0))
		cow_shared_enter();
	cow_slot_enter(r);
}

/* Release: the section's loads happen before a grace period sees zero. */
static inline void
cow_epoch_exit(void)
{
	struct cow_reader *r = &cow_reader;

	if (--r->depth != 0)
		return;
	atomic_store_explicit(&r->slot->state, 0, memory_order_release);
	if (__builtin_expect(r->shared, 0))
		cow_shared_exit();
}

static inline bool
cow_epoch_in_section(void)
{
	return cow_reader.depth != 0;
}

#endif
