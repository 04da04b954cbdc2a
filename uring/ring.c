// SPDX-License-Identifier: MIT
/*
 * Ring creation and teardown: the setup-flag fallback chain (SINGLE_ISSUER
 * |DEFER_TASKRUN, then COOP_TASKRUN, then plain), the io_uring_setup hook
 * that unit tests use to inject EPERM/ENOSYS/ENOMEM, registration of the
 * ring fd, the buffer ring and the fixed-file table, and the counter
 * table.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ring_internal.h"

static struct px_ring_hooks ring_hooks;

__thread char ring_thread_mark __attribute__((tls_model("initial-exec")));

void
px_ring_hooks_set(const struct px_ring_hooks *hooks)
{
	if (hooks)
		ring_hooks = *hooks;
	else
		memset(&ring_hooks, 0, sizeof(ring_hooks));
}

const struct px_features *
px_ring_features(void)
{
	return px_probe_cached();
}

void
px_ring_opts_init(struct px_ring_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->sq_entries = CONFIG_PX_RING_SQ_ENTRIES;
	opts->cq_entries = CONFIG_PX_RING_SQ_ENTRIES * CONFIG_PX_RING_CQ_FACTOR;
	opts->sqpoll_idle_ms = CONFIG_PX_RING_SQPOLL_IDLE_MS;
	opts->buf_count = CONFIG_PX_RING_BUF_COUNT;
	opts->buf_size = CONFIG_PX_RING_BUF_SIZE;
	opts->fixed_files = CONFIG_PX_RING_FIXED_FILES;
#ifdef CONFIG_PX_RING_SQPOLL
	opts->flags |= PX_RING_SQPOLL;
#endif
#ifndef CONFIG_PX_RING_DEFER_TASKRUN
	opts->flags |= PX_RING_NO_DEFER;
#endif
#ifndef CONFIG_PX_RING_REGISTER_FD
	opts->flags |= PX_RING_NO_REG_FD;
#endif
}

/* Fill zero fields with defaults and check the rest. */
static int
opts_resolve(const struct px_ring_opts *in, struct px_ring_opts *o)
{
	struct px_ring_opts def;

	px_ring_opts_init(&def);
	*o = in ? *in : def;
	if (!o->sq_entries)
		o->sq_entries = def.sq_entries;
	if (!o->cq_entries)
		o->cq_entries = o->sq_entries * CONFIG_PX_RING_CQ_FACTOR;
	if (!o->sqpoll_idle_ms)
		o->sqpoll_idle_ms = def.sqpoll_idle_ms;
	if (!o->buf_count)
		o->buf_count = def.buf_count;
	if (!o->buf_size)
		o->buf_size = def.buf_size;
	if (o->cq_entries < o->sq_entries)
		return -EINVAL;
	if (o->flags & ~(uint32_t)(PX_RING_SQPOLL | PX_RING_NO_DEFER |
				   PX_RING_NO_REG_FD | PX_RING_NO_BUF_RING))
		return -EINVAL; /* a flag this library does not know */
	if (o->buf_count & (o->buf_count - 1) || o->buf_count > 32768)
		return -EINVAL;
	return 0;
}

static int
setup_call(uint32_t entries, struct io_uring_params *p)
{
	if (ring_hooks.setup)
		return ring_hooks.setup(entries, p);
	return io_uring_setup(entries, p);
}

static int
try_setup(struct px_ring *r, const struct px_ring_opts *o, uint32_t flags)
{
	struct io_uring_params p;
	int fd, ret;

	memset(&p, 0, sizeof(p));
	p.flags = flags | IORING_SETUP_CQSIZE;
	p.cq_entries = o->cq_entries;
	if (flags & IORING_SETUP_SQPOLL)
		p.sq_thread_idle = o->sqpoll_idle_ms;
	fd = setup_call(o->sq_entries, &p);
	if (fd < 0)
		return fd;
	ret = io_uring_queue_mmap(fd, &p, &r->uring);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	/*
	 * io_uring_queue_mmap() leaves two things to its caller that
	 * io_uring_queue_init_params() does: map each SQ slot to its own
	 * SQE, and record the features (waits with a timeout need EXT_ARG).
	 */
	for (uint32_t i = 0; i < p.sq_entries; i++)
		r->uring.sq.array[i] = i;
	r->uring.features = p.features;
	r->setup_flags = p.flags;
	return 0;
}

/*
 * Walk the flag chain.  Only -EINVAL (a flag this kernel does not know)
 * moves on to the next set; every other error is the answer, so EPERM
 * from a seccomp filter reaches the caller unchanged.
 */
static int
setup_with_fallback(struct px_ring *r, const struct px_ring_opts *o)
{
	static const uint32_t chain[] = {
	    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
	    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
	    0,
	};
	uint32_t extra = o->flags & PX_RING_SQPOLL ? IORING_SETUP_SQPOLL : 0;
	size_t i = o->flags & PX_RING_NO_DEFER ? 1 : 0;
	int ret = -EINVAL;

	for (; i < sizeof(chain) / sizeof(chain[0]); i++) {
		ret = try_setup(r, o, chain[i] | extra);
		if (ret != -EINVAL)
			return ret;
	}
	return ret;
}

static int
register_extras(struct px_ring *r, const struct px_ring_opts *o)
{
	int ret;

	if (!(o->flags & PX_RING_NO_REG_FD))
		io_uring_register_ring_fd(&r->uring);
	if (o->fixed_files) {
		ret = io_uring_register_files_sparse(&r->uring, o->fixed_files);
		if (ret < 0)
			return ret;
	}
	if (o->flags & PX_RING_NO_BUF_RING)
		return 0;
	return ring_bufring_setup(r, o->buf_count, o->buf_size,
				  CONFIG_PX_RING_BUF_GROUP);
}

int
px_ring_create(const struct px_ring_opts *opts, struct px_ring **out)
{
	struct px_ring_opts o;
	struct px_ring *r;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	ret = opts_resolve(opts, &o);
	if (ret < 0)
		return ret;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->owner = &ring_thread_mark;
	r->defer_tail = &r->defer_head;
	r->wait_tail = &r->wait_head;

	ret = setup_with_fallback(r, &o);
	if (ret < 0)
		goto out_free;
	ret = register_extras(r, &o);
	if (ret < 0)
		goto out_exit;
	*out = r;
	return 0;

out_exit:
	io_uring_queue_exit(&r->uring);
out_free:
	free(r);
	return ret;
}

int
ring_submit_flush(struct io_uring *uring)
{
	return ring_hooks.flush ? ring_hooks.flush(uring)
				: io_uring_submit(uring);
}

static uint64_t
destroy_now_ns(void)
{
	return ring_hooks.destroy_now_ns ? ring_hooks.destroy_now_ns()
					 : ring_now_ns();
}

/* Cancel everything and run the loop until nothing is left in flight. */
static void
drain_for_destroy(struct px_ring *r)
{
	uint64_t deadline =
	    destroy_now_ns() +
	    (uint64_t)CONFIG_PX_RING_DESTROY_TIMEOUT_MS * 1000000;
	struct io_uring_sqe *sqe;

	r->destroying = true;
	ring_conns_close_all(r);
	sqe = ring_sqe(r);
	if (sqe) {
		io_uring_prep_cancel64(
		    sqe, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
		io_uring_sqe_set_data64(sqe, 0);
	}
	while (r->stats.in_flight || r->conns || r->defer_head) {
		if (destroy_now_ns() > deadline)
			break;
		if (ring_run_once(r, 10 * 1000000) < 0)
			break;
	}
}

void
px_ring_destroy(struct px_ring *ring)
{
	if (!ring)
		return;
	drain_for_destroy(ring);
	/* A close prepared but not yet submitted still runs. */
	io_uring_submit(&ring->uring);
	io_uring_queue_exit(&ring->uring);
	ring_conns_free_all(ring);
	ring_bufring_teardown(ring);
	ring_ops_free_all(ring);
	free(ring);
}

uint32_t
px_ring_setup_flags(const struct px_ring *ring)
{
	return ring->setup_flags;
}

int
px_ring_fd(const struct px_ring *ring)
{
	return ring->uring.ring_fd;
}

void
px_ring_stats_get(const struct px_ring *ring, struct px_ring_stats *out)
{
	const uint64_t *src = (const uint64_t *)&ring->stats;
	uint64_t *dst = (uint64_t *)out;

	for (size_t i = 0; i < PX_RING_NR_COUNTERS; i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

#define STAT_NAME(name, desc) #name,
#define STAT_DESC(name, desc) desc,
static const char *const stat_names[] = {PX_RING_COUNTERS(STAT_NAME)};
static const char *const stat_descs[] = {PX_RING_COUNTERS(STAT_DESC)};

const char *
px_ring_stat_name(unsigned int i)
{
	return i < PX_RING_NR_COUNTERS ? stat_names[i] : NULL;
}

const char *
px_ring_stat_desc(unsigned int i)
{
	return i < PX_RING_NR_COUNTERS ? stat_descs[i] : NULL;
}
