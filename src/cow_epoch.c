// SPDX-License-Identifier: MIT
/*
 * The reader registry and grace periods behind px_cow (see cow_epoch.h
 * and docs/cow.md).  Slots live in chunks that are never freed: a
 * thread that exits gives its slot back for the next thread to claim,
 * so the registry's size follows the peak number of reader threads.
 * A thread that cannot get a slot (allocation failure) reads through
 * one shared slot under a mutex: slow, but it still reads.
 *
 * Locks: registry_lock (chunk growth) and shared_lock (the fallback
 * slot) are never held together.  Grace periods take no lock.
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cow_epoch.h"

#define COW_YIELDS 16

struct cow_chunk {
	struct cow_chunk *_Atomic next;
	size_t n;
	struct cow_slot *slots;
};

__thread struct cow_reader cow_reader
    __attribute__((tls_model("initial-exec")));
_Atomic uint64_t cow_epoch_global = 1;
int cow_fence_mode;

static struct cow_slot static_slots[CONFIG_PX_COW_READER_SLOTS];
static struct cow_chunk first_chunk = {
    .n = CONFIG_PX_COW_READER_SLOTS,
    .slots = static_slots,
};
static struct cow_slot shared_slot;
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static bool exit_key_ok;

static int
default_membarrier(int cmd, unsigned int flags)
{
	return (int)syscall(__NR_membarrier, cmd, flags, 0);
}

static void *
default_alloc(size_t align, size_t size)
{
	return aligned_alloc(align, size);
}

struct px_cow_hooks cow_hooks = {
    .region_create = px_region_create,
    .alloc = default_alloc,
    .membarrier = default_membarrier,
};

void
px_cow_set_hooks(const struct px_cow_hooks *hooks)
{
	struct px_cow_hooks def = {
	    .region_create = px_region_create,
	    .alloc = default_alloc,
	    .membarrier = default_membarrier,
	};

	if (hooks && hooks->region_create)
		def.region_create = hooks->region_create;
	if (hooks && hooks->alloc)
		def.alloc = hooks->alloc;
	if (hooks && hooks->membarrier)
		def.membarrier = hooks->membarrier;
	cow_hooks = def;
}

static void
slot_release(struct cow_slot *s)
{
	atomic_store_explicit(&s->state, 0, memory_order_release);
	atomic_store_explicit(&s->in_use, 0, memory_order_release);
}

/* Thread exit: give the slot back; runs while TLS is still valid. */
static void
reader_exit(void *slot)
{
	slot_release(slot);
	cow_reader.slot = NULL;
	cow_reader.shared = false;
}

static enum cow_fence_mode
choose_fence_mode(void)
{
#if defined(COW_TSAN) || !defined(CONFIG_PX_COW_MEMBARRIER)
	/* TSan cannot see membarrier's ordering; use fences it models. */
	return COW_FENCE_FULL;
#else
	if (cow_hooks.membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
				 0) == 0)
		return COW_FENCE_MEMBARRIER;
	return COW_FENCE_FULL;
#endif
}

static void
reset_slot(struct cow_slot *s)
{
	if (s != cow_reader.slot)
		slot_release(s);
}

/*
 * In a forked child only the forking thread exists: the slots of the
 * others would block every grace period, and their locks may be held.
 * Membarrier registration belongs to the parent's mm, so renew it, and
 * fall back to full fences (safe: this thread is the only reader) if
 * the child may not have it.
 */
static void
atfork_child(void)
{
	struct cow_chunk *ch = &first_chunk;

	for (; ch; ch = atomic_load(&ch->next))
		for (size_t i = 0; i < ch->n; i++)
			reset_slot(&ch->slots[i]);
	pthread_mutex_init(&registry_lock, NULL);
	if (!cow_reader.shared) {
		slot_release(&shared_slot);
		pthread_mutex_init(&shared_lock, NULL);
	}
	if (cow_fence_mode == COW_FENCE_MEMBARRIER &&
	    cow_hooks.membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
				 0) != 0)
		cow_fence_mode = COW_FENCE_FULL;
}

static void
epoch_init(void)
{
	cow_fence_mode = choose_fence_mode();
	exit_key_ok = pthread_key_create(&exit_key, reader_exit) == 0;
	pthread_atfork(NULL, NULL, atfork_child);
}

static struct cow_slot *
claim_in(struct cow_chunk *ch)
{
	int zero;

	for (size_t i = 0; i < ch->n; i++) {
		zero = 0;
		if (atomic_compare_exchange_strong(&ch->slots[i].in_use, &zero,
						   1))
			return &ch->slots[i];
	}
	return NULL;
}

static struct cow_chunk *
chunk_create(void)
{
	size_t n = CONFIG_PX_COW_READER_SLOTS;
	struct cow_chunk *ch;

	ch = cow_hooks.alloc(COW_CACHELINE,
			     COW_CACHELINE + n * sizeof(struct cow_slot));
	if (!ch)
		return NULL;
	memset(ch, 0, COW_CACHELINE + n * sizeof(struct cow_slot));
	ch->n = n;
	ch->slots = (struct cow_slot *)((char *)ch + COW_CACHELINE);
	return ch;
}

/* Claims a free slot, growing the registry by one chunk if needed. */
static int
slot_claim(struct cow_slot **out)
{
	struct cow_chunk *ch = &first_chunk, *last = NULL, *fresh;
	int ret = 0;

	pthread_mutex_lock(&registry_lock);
	for (; ch; last = ch, ch = atomic_load(&ch->next)) {
		*out = claim_in(ch);
		if (*out)
			goto out_unlock;
	}
	fresh = chunk_create();
	if (!fresh) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	*out = claim_in(fresh);
	/* Release: a scan that finds the chunk sees its zeroed slots. */
	atomic_store_explicit(&last->next, fresh, memory_order_release);
out_unlock:
	pthread_mutex_unlock(&registry_lock);
	return ret;
}

static int
reader_register(struct cow_reader *r)
{
	struct cow_slot *s = NULL;
	int ret;

	pthread_once(&init_once, epoch_init);
	ret = slot_claim(&s);
	if (ret == 0 && !exit_key_ok)
		ret = -EAGAIN;
	if (ret == 0 && pthread_setspecific(exit_key, s) != 0)
		ret = -ENOMEM;
	if (ret < 0) {
		if (s)
			slot_release(s);
		r->slot = &shared_slot;
		r->shared = true;
		return ret;
	}
	r->slot = s;
	r->shared = false;
	return 0;
}

void
cow_reader_attach(struct cow_reader *r)
{
	(void)reader_register(r);
}

void
cow_shared_enter(void)
{
	pthread_mutex_lock(&shared_lock);
}

void
cow_shared_exit(void)
{
	pthread_mutex_unlock(&shared_lock);
}

int
px_cow_thread_register(void)
{
	struct cow_reader *r = &cow_reader;

	if (r->slot && !r->shared)
		return 0;
	if (r->depth != 0)
		return -EBUSY;
	return reader_register(r);
}

void
px_cow_thread_unregister(void)
{
	struct cow_reader *r = &cow_reader;

	if (!r->slot || r->depth != 0)
		return;
	if (!r->shared) {
		pthread_setspecific(exit_key, NULL);
		slot_release(r->slot);
	}
	r->slot = NULL;
	r->shared = false;
}

uint64_t
cow_epoch_now(void)
{
	return atomic_load_explicit(&cow_epoch_global, memory_order_seq_cst);
}

/* A slot blocks epoch @g while it is inside a section begun earlier. */
static bool
slot_blocks(struct cow_slot *s, uint64_t g)
{
	uint64_t st = atomic_load_explicit(&s->state, memory_order_seq_cst);

	return (st & 1) && (st >> 1) != g;
}

static bool
any_slot_blocks(uint64_t g)
{
	struct cow_chunk *ch = &first_chunk;

	if (slot_blocks(&shared_slot, g))
		return true;
	for (; ch; ch = atomic_load_explicit(&ch->next, memory_order_acquire))
		for (size_t i = 0; i < ch->n; i++)
			if (slot_blocks(&ch->slots[i], g))
				return true;
	return false;
}

/*
 * One step of the epoch, from g to g + 1, when no reader is still inside
 * a section that began before g.  Lock-free; a lost race is a success.
 * A failing membarrier advances nothing: never unsafe, only late.
 */
bool
cow_epoch_try_advance(void)
{
	uint64_t g;

	pthread_once(&init_once, epoch_init);
	g = cow_epoch_now();
	if (cow_fence_mode == COW_FENCE_MEMBARRIER &&
	    cow_hooks.membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0) != 0)
		return false;
	if (any_slot_blocks(g))
		return false;
	atomic_compare_exchange_strong(&cow_epoch_global, &g, g + 1);
	return true;
}

bool
cow_epoch_safe(uint64_t retired_at)
{
	return atomic_load_explicit(&cow_epoch_global, memory_order_acquire) >=
	       retired_at + 2;
}

static void
backoff(unsigned int round)
{
	struct timespec ts = {
	    .tv_nsec = CONFIG_PX_COW_BACKOFF_US * 1000L,
	};

	if (round < COW_YIELDS)
		sched_yield();
	else
		nanosleep(&ts, NULL);
}

int
cow_epoch_wait(uint64_t retired_at)
{
	for (unsigned int round = 0;; round++) {
		if (cow_epoch_safe(retired_at))
			return 0;
		if (cow_epoch_in_section())
			return -EDEADLK;
		if (cow_epoch_try_advance() && cow_epoch_safe(retired_at))
			return 0;
		backoff(round);
	}
}
