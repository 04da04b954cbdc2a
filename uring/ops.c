// SPDX-License-Identifier: MIT
/*
 * Plain operations on a ring: multishot accept, connect with a linked
 * timeout, one-shot and periodic timers, cancellation by operation, fd or
 * all, IORING_OP_CLOSE, and messages to other rings (IORING_OP_MSG_RING).
 * Each kind has its own completion handler; the records come from a
 * per-ring free list.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ring_internal.h"

struct px_ring_op *
ring_op_alloc(struct px_ring *r, px_ring_fn fn, void *ctx)
{
	struct px_ring_op *op = r->op_free;

	if (!op) {
		struct ring_op_chunk *c = calloc(
		    1, sizeof(*c) + CONFIG_PX_RING_OP_CHUNK * sizeof(*op));

		if (!c)
			return NULL;
		c->next = r->op_chunks;
		r->op_chunks = c;
		for (int i = CONFIG_PX_RING_OP_CHUNK - 1; i >= 0; i--) {
			c->ops[i].next_free = r->op_free;
			r->op_free = &c->ops[i];
		}
		op = r->op_free;
	}
	r->op_free = op->next_free;
	memset(op, 0, sizeof(*op));
	op->fn = fn;
	op->ctx = ctx;
	op->flags = OP_LIVE;
	return op;
}

void
ring_op_free(struct px_ring *r, struct px_ring_op *op)
{
	op->flags = 0;
	op->handler = NULL;
	op->next_free = r->op_free;
	r->op_free = op;
}

void
ring_ops_free_all(struct px_ring *r)
{
	while (r->op_chunks) {
		struct ring_op_chunk *c = r->op_chunks;

		r->op_chunks = c->next;
		free(c);
	}
	r->op_free = NULL;
}

/* The op's last callback: free the record first, so @fn may start more. */
static void
op_finish(struct px_ring *r, struct px_ring_op *op, int res)
{
	px_ring_fn fn = op->fn;
	void *ctx = op->ctx;

	ring_op_free(r, op);
	if (fn)
		fn(r, res, false, ctx);
}

static int
op_start_check(struct px_ring *r, px_ring_fn fn)
{
	if (ring_foreign(r))
		return -EXDEV;
	if (r->destroying)
		return -PX_ECLOSED;
	return fn ? 0 : -EINVAL;
}

/* ---- accept ---- */

static void accept_handler(struct px_ring *r, struct px_ring_op *op,
			   const struct io_uring_cqe *cqe);

static int
accept_arm(struct px_ring *r, struct px_ring_op *op)
{
	struct io_uring_sqe *sqe = ring_sqe_op(r, op);

	if (!sqe)
		return -EBUSY;
	/* A fixed slot has no close-on-exec flag; the kernel refuses it. */
	if (op->flags & OP_ACCEPT_DIRECT)
		io_uring_prep_multishot_accept_direct(sqe, op->fd, NULL, NULL,
						      0);
	else
		io_uring_prep_multishot_accept(sqe, op->fd, NULL, NULL,
					       SOCK_CLOEXEC);
	return 0;
}

/*
 * A terminal CQE after a success means the kernel stopped the multishot
 * (it may, for example under CQ pressure): re-arm unless cancelled.
 */
static void
accept_handler(struct px_ring *r, struct px_ring_op *op,
	       const struct io_uring_cqe *cqe)
{
	bool more = cqe->flags & IORING_CQE_F_MORE;

	if (!more) {
		op->flags &= ~OP_IN_KERNEL;
		ring_op_ended(r);
	}
	if (cqe->res < 0) {
		if (!more)
			op_finish(r, op, cqe->res);
		else
			op->fn(r, cqe->res, true, op->ctx);
		return;
	}
	op->fn(r, cqe->res, true, op->ctx);
	if (more)
		return;
	if (op->flags & OP_CANCELLED || r->destroying || accept_arm(r, op) < 0)
		op_finish(r, op, -ECANCELED);
}

int
px_ring_accept(struct px_ring *ring, int fd, uint32_t flags, px_ring_fn fn,
	       void *ctx, struct px_ring_op **opp)
{
	struct px_ring_op *op;
	int ret = op_start_check(ring, fn);

	if (ret < 0)
		return ret;
	if (flags & ~(uint32_t)PX_RING_ACCEPT_DIRECT)
		return -EINVAL;
	op = ring_op_alloc(ring, fn, ctx);
	if (!op)
		return -ENOMEM;
	op->handler = accept_handler;
	op->fd = fd;
	if (flags & PX_RING_ACCEPT_DIRECT)
		op->flags |= OP_ACCEPT_DIRECT;
	ret = accept_arm(ring, op);
	if (ret < 0) {
		ring_op_free(ring, op);
		return ret;
	}
	if (opp)
		*opp = op;
	return 0;
}

/* ---- connect ---- */

static void
connect_handler(struct px_ring *r, struct px_ring_op *op,
		const struct io_uring_cqe *cqe)
{
	int res = cqe->res;

	ring_op_ended(r);
	if (res == -ECANCELED && op->flags & OP_TIMED &&
	    !(op->flags & OP_CANCELLED))
		res = -ETIMEDOUT;
	op_finish(r, op, res);
}

static void
ms_to_ts(uint64_t ms, struct __kernel_timespec *ts)
{
	ts->tv_sec = (int64_t)(ms / 1000);
	ts->tv_nsec = (long long)(ms % 1000) * 1000000;
}

/* Get two adjacent SQEs, so a link never spans a flush. */
static int
reserve_sqes(struct px_ring *r, unsigned int n)
{
	if (io_uring_sq_space_left(&r->uring) >= n)
		return 0;
	ring_flush(r);
	return io_uring_sq_space_left(&r->uring) >= n ? 0 : -EBUSY;
}

int
px_ring_connect(struct px_ring *ring, int fd, const struct sockaddr *addr,
		socklen_t len, uint32_t timeout_ms, px_ring_fn fn, void *ctx,
		struct px_ring_op **opp)
{
	struct io_uring_sqe *sqe;
	struct px_ring_op *op;
	int ret = op_start_check(ring, fn);

	if (ret < 0)
		return ret;
	if (!addr || len == 0 || len > sizeof(op->connect.addr))
		return -EINVAL;
	ret = reserve_sqes(ring, timeout_ms ? 2 : 1);
	if (ret < 0)
		return ret;
	op = ring_op_alloc(ring, fn, ctx);
	if (!op)
		return -ENOMEM;
	op->handler = connect_handler;
	op->fd = fd;
	memcpy(&op->connect.addr, addr, len);
	op->connect.len = len;

	sqe = ring_sqe_op(ring, op);
	io_uring_prep_connect(sqe, fd, (struct sockaddr *)&op->connect.addr,
			      len);
	if (timeout_ms) {
		op->flags |= OP_TIMED;
		sqe->flags |= IOSQE_IO_LINK;
		ms_to_ts(timeout_ms, &op->connect.ts);
		sqe = ring_sqe(ring);
		io_uring_prep_link_timeout(sqe, &op->connect.ts, 0);
		io_uring_sqe_set_data64(sqe, 0);
	}
	if (opp)
		*opp = op;
	return 0;
}

/* ---- timers ---- */

static void timer_handler(struct px_ring *r, struct px_ring_op *op,
			  const struct io_uring_cqe *cqe);

static void
ns_to_ts(uint64_t ns, struct __kernel_timespec *ts)
{
	ts->tv_sec = (int64_t)(ns / 1000000000u);
	ts->tv_nsec = (long long)(ns % 1000000000u);
}

/*
 * Periodic timers use absolute deadlines start + k * period on
 * CLOCK_MONOTONIC, so the time spent in callbacks and in the loop does
 * not add up into drift.  Deadlines already past are skipped.
 */
static int
timer_arm(struct px_ring *r, struct px_ring_op *op, uint64_t delay_ns)
{
	struct io_uring_sqe *sqe = ring_sqe_op(r, op);
	unsigned int flags = 0;

	if (!sqe)
		return -EBUSY;
	if (op->flags & OP_PERIODIC) {
		uint64_t now = ring_now_ns();
		uint64_t k = (now - op->timer.start_ns) / op->timer.period_ns;
		uint64_t at;

		if (k < op->timer.ticks + 1)
			k = op->timer.ticks + 1;
		op->timer.ticks = k;
		/* A deadline past the clock's range is never, not a wrap. */
		if (__builtin_mul_overflow(k, op->timer.period_ns, &at) ||
		    __builtin_add_overflow(at, op->timer.start_ns, &at) ||
		    at > INT64_MAX)
			at = INT64_MAX;
		ns_to_ts(at, &op->timer.ts);
		flags = IORING_TIMEOUT_ABS;
	} else {
		ns_to_ts(delay_ns, &op->timer.ts);
	}
	io_uring_prep_timeout(sqe, &op->timer.ts, 0, flags);
	return 0;
}

static void timer_rearm(struct px_ring *r, struct px_ring_op *op);

static void
timer_rearm_deferred(struct px_ring *r, struct ring_defer *d)
{
	timer_rearm(r,
		    (struct px_ring_op *)((char *)d -
					  offsetof(struct px_ring_op, defer)));
}

/*
 * Arm a periodic timer's next tick.  A full SQ the kernel refuses to
 * take (-EBUSY while the CQ overflows) does not end the timer: the arm
 * is retried at the end of the loop's turn, once completions are reaped.
 */
static void
timer_rearm(struct px_ring *r, struct px_ring_op *op)
{
	if (op->flags & OP_CANCELLED || r->destroying) {
		op_finish(r, op, -ECANCELED);
		return;
	}
	if (timer_arm(r, op, 0) == 0)
		return;
	RING_STAT_ADD(r, timer_rearm_retries, 1);
	op->defer.run = timer_rearm_deferred;
	ring_defer_add(r, &op->defer);
}

static void
timer_handler(struct px_ring *r, struct px_ring_op *op,
	      const struct io_uring_cqe *cqe)
{
	int res = cqe->res == -ETIME ? 0 : cqe->res;

	op->flags &= ~OP_IN_KERNEL;
	ring_op_ended(r);
	if (!(op->flags & OP_PERIODIC) || res < 0) {
		op_finish(r, op, res);
		return;
	}
	op->fn(r, 0, true, op->ctx);
	timer_rearm(r, op);
}

int
px_ring_timer(struct px_ring *ring, uint64_t ns, uint32_t flags, px_ring_fn fn,
	      void *ctx, struct px_ring_op **opp)
{
	struct px_ring_op *op;
	int ret = op_start_check(ring, fn);

	if (ret < 0)
		return ret;
	if (ns == 0 && flags & PX_RING_TIMER_PERIODIC)
		return -EINVAL;
	if (flags & ~(uint32_t)PX_RING_TIMER_PERIODIC)
		return -EINVAL;
	op = ring_op_alloc(ring, fn, ctx);
	if (!op)
		return -ENOMEM;
	op->handler = timer_handler;
	if (flags & PX_RING_TIMER_PERIODIC) {
		op->flags |= OP_PERIODIC;
		op->timer.start_ns = ring_now_ns();
		op->timer.period_ns = ns;
	}
	ret = timer_arm(ring, op, ns);
	if (ret < 0) {
		ring_op_free(ring, op);
		return ret;
	}
	if (opp)
		*opp = op;
	return 0;
}

/* ---- cancel ---- */

static void
cancel_handler(struct px_ring *r, struct px_ring_op *op,
	       const struct io_uring_cqe *cqe)
{
	ring_op_ended(r);
	op_finish(r, op, cqe->res);
}

/* A cancel SQE whose result goes to @fn (or nowhere when @fn is NULL). */
int
ring_cancel_submit(struct px_ring *r, uint64_t key, int fd, unsigned int flags,
		   px_ring_fn fn, void *ctx)
{
	struct io_uring_sqe *sqe;
	struct px_ring_op *op = NULL;

	if (fn) {
		op = ring_op_alloc(r, fn, ctx);
		if (!op)
			return -ENOMEM;
		op->handler = cancel_handler;
		sqe = ring_sqe_op(r, op);
	} else {
		sqe = ring_sqe(r);
	}
	if (!sqe) {
		if (op)
			ring_op_free(r, op);
		return -EBUSY;
	}
	if (flags & IORING_ASYNC_CANCEL_FD)
		io_uring_prep_cancel_fd(sqe, fd, flags);
	else
		io_uring_prep_cancel64(sqe, key, (int)flags);
	if (!fn)
		io_uring_sqe_set_data64(sqe, 0);
	RING_STAT_ADD(r, cancels, 1);
	return 0;
}

int
px_ring_cancel(struct px_ring *ring, struct px_ring_op *op)
{
	if (ring_foreign(ring))
		return -EXDEV;
	if (!op || !(op->flags & OP_LIVE))
		return -ENOENT;
	if (op->flags & OP_CANCELLED)
		return 0;
	/* Marked only once asked for, so a call after -EBUSY tries again. */
	if (op->flags & OP_IN_KERNEL) {
		int ret = ring_cancel_submit(ring, op_user_data(op), -1, 0,
					     NULL, NULL);

		if (ret < 0)
			return ret;
	}
	op->flags |= OP_CANCELLED;
	return 0;
}

int
px_ring_cancel_fd(struct px_ring *ring, int fd, px_ring_fn fn, void *ctx)
{
	if (ring_foreign(ring))
		return -EXDEV;
	if (fd < 0)
		return -EBADF;
	return ring_cancel_submit(
	    ring, 0, fd, IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL, fn,
	    ctx);
}

int
px_ring_cancel_all(struct px_ring *ring, px_ring_fn fn, void *ctx)
{
	if (ring_foreign(ring))
		return -EXDEV;
	return ring_cancel_submit(
	    ring, 0, -1, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL, fn,
	    ctx);
}

/* ---- close ---- */

static void
close_handler(struct px_ring *r, struct px_ring_op *op,
	      const struct io_uring_cqe *cqe)
{
	ring_op_ended(r);
	op_finish(r, op, cqe->res);
}

int
px_ring_close_fd(struct px_ring *ring, int fd, bool fixed, px_ring_fn fn,
		 void *ctx)
{
	struct io_uring_sqe *sqe;
	struct px_ring_op *op;

	if (ring_foreign(ring))
		return -EXDEV;
	if (fd < 0)
		return -EBADF;
	op = ring_op_alloc(ring, fn, ctx);
	if (!op)
		return -ENOMEM;
	op->handler = close_handler;
	sqe = ring_sqe_op(ring, op);
	if (!sqe) {
		ring_op_free(ring, op);
		return -EBUSY;
	}
	if (fixed)
		io_uring_prep_close_direct(sqe, (unsigned int)fd);
	else
		io_uring_prep_close(sqe, fd);
	return 0;
}

/* ---- messages ---- */

/* On the target ring: the message arrived. */
static void
msg_target_handler(struct px_ring *r, struct px_ring_op *op,
		   const struct io_uring_cqe *cqe)
{
	struct ring_msg *m = (struct ring_msg *)op;
	px_ring_fn fn;
	void *ctx;

	fn = m->fn;
	ctx = m->ctx;
	free(m);
	RING_STAT_ADD(r, msgs_in, 1);
	fn(r, 0, false, ctx);
}

/* On the source ring: the kernel's verdict on the delivery. */
static void
msg_source_handler(struct px_ring *r, struct px_ring_op *op,
		   const struct io_uring_cqe *cqe)
{
	struct ring_msg *m = op->msg;

	ring_op_ended(r);
	ring_op_free(r, op);
	if (cqe->res >= 0)
		return;
	m->fn(r, cqe->res, false, m->ctx);
	free(m);
}

int
px_ring_post(struct px_ring *src, struct px_ring *dst, px_ring_fn fn, void *ctx)
{
	struct io_uring_sqe *sqe;
	struct px_ring_op *op;
	struct ring_msg *m;
	int dst_fd, ret = op_start_check(src, fn);

	if (ret < 0)
		return ret;
	if (!dst)
		return -EINVAL;
	/* Read before the release below: @dst may be gone right after. */
	dst_fd = dst->uring.ring_fd;
	m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->fn = fn;
	m->ctx = ctx;
	__atomic_store_n(&m->handler, msg_target_handler, __ATOMIC_RELEASE);
	op = ring_op_alloc(src, NULL, NULL);
	if (!op)
		goto out_free_msg;
	op->handler = msg_source_handler;
	op->msg = m;
	sqe = ring_sqe_op(src, op);
	if (!sqe)
		goto out_free_op;
	io_uring_prep_msg_ring(sqe, dst_fd, 0, (uint64_t)(uintptr_t)m, 0);
	return 0;

out_free_op:
	ring_op_free(src, op);
out_free_msg:
	free(m);
	return op ? -EBUSY : -ENOMEM;
}
