// SPDX-License-Identifier: MIT
/*
 * The loop: SQE allocation with flush-on-full, one submit-and-wait per
 * turn, completion dispatch through each operation's own handler, CQ
 * overflow detection and draining, and deferred work at the end of the
 * turn.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "ring_internal.h"

uint64_t
ring_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int
ring_flush(struct px_ring *r)
{
	int ret;

	ring_buf_publish(r);
	if (!io_uring_sq_ready(&r->uring))
		return 0;
	ret = ring_submit_flush(&r->uring);
	if (ret > 0)
		RING_STAT_ADD(r, submissions, ret);
	RING_STAT_ADD(r, enters, 1);
	return ret;
}

/*
 * An SQE, flushing the queue when it is full.  NULL only when the kernel
 * refuses the flush (it then returned -EBUSY or -EAGAIN: the CQ is full
 * and the caller's op fails with -EBUSY).
 */
struct io_uring_sqe *
ring_sqe(struct px_ring *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->uring);

	if (sqe)
		return sqe;
	ring_flush(r);
	return io_uring_get_sqe(&r->uring);
}

/* An SQE for @op: sets user_data and counts the op in flight. */
struct io_uring_sqe *
ring_sqe_op(struct px_ring *r, struct px_ring_op *op)
{
	struct io_uring_sqe *sqe = ring_sqe(r);

	if (!sqe)
		return NULL;
	io_uring_sqe_set_data64(sqe, op_user_data(op));
	op->flags |= OP_IN_KERNEL;
	RING_STAT_ADD(r, in_flight, 1);
	return sqe;
}

void
ring_op_ended(struct px_ring *r)
{
	RING_STAT_SUB(r, in_flight, 1);
}

int
px_ring_submit(struct px_ring *ring)
{
	if (ring_foreign(ring))
		return -EXDEV;
	return ring_flush(ring);
}

void
ring_defer_add(struct px_ring *r, struct ring_defer *d)
{
	d->next = NULL;
	*r->defer_tail = d;
	r->defer_tail = &d->next;
}

/* Unlink @d, which is queued: its owner is about to be freed. */
void
ring_defer_remove(struct px_ring *r, struct ring_defer *d)
{
	struct ring_defer **pp = &r->defer_head;

	while (*pp && *pp != d)
		pp = &(*pp)->next;
	if (!*pp)
		return;
	*pp = d->next;
	if (r->defer_tail == &d->next)
		r->defer_tail = pp;
}

static void
defer_run_user(struct px_ring *r, struct ring_defer *d)
{
	struct px_ring_op *op =
	    (struct px_ring_op *)((char *)d -
				  offsetof(struct px_ring_op, defer));
	px_ring_fn fn = op->fn;
	void *ctx = op->ctx;

	ring_op_free(r, op);
	fn(r, 0, false, ctx);
}

int
px_ring_defer(struct px_ring *ring, px_ring_fn fn, void *ctx)
{
	struct px_ring_op *op;

	if (ring_foreign(ring))
		return -EXDEV;
	if (!fn)
		return -EINVAL;
	op = ring_op_alloc(ring, fn, ctx);
	if (!op)
		return -ENOMEM;
	op->defer.run = defer_run_user;
	ring_defer_add(ring, &op->defer);
	return 0;
}

/* Run the deferred work queued before this call, at most a batch. */
static int
run_deferred(struct px_ring *r)
{
	int n = 0;

	while (r->defer_head && n < CONFIG_PX_RING_DEFER_BATCH) {
		struct ring_defer *d = r->defer_head;

		r->defer_head = d->next;
		if (!r->defer_head)
			r->defer_tail = &r->defer_head;
		d->run(r, d);
		n++;
	}
	return n;
}

static void
dispatch(struct px_ring *r, const struct io_uring_cqe *cqe)
{
	void *target = (void *)(uintptr_t)cqe->user_data;
	ring_handler_fn handler;

	RING_STAT_ADD(r, completions, 1);
	if (!target)
		return;
	/*
	 * Every user_data points at a record that starts with its handler.
	 * The acquire pairs with the release of px_ring_post() for records
	 * made by another thread (a plain load on x86).
	 */
	handler = __atomic_load_n((ring_handler_fn *)target, __ATOMIC_ACQUIRE);
	handler(r, target, cqe);
}

/*
 * Dispatch every CQE in the ring, a batch at a time.  The batch is copied
 * and its slots released before any handler runs, so a handler that
 * submits (and so may make the kernel post more) finds room in the CQ.
 */
static int
reap(struct px_ring *r)
{
	struct io_uring_cqe *cqes[CONFIG_PX_RING_CQE_BATCH];
	struct io_uring_cqe copy[CONFIG_PX_RING_CQE_BATCH];
	unsigned int got;
	int n = 0;

	do {
		got = io_uring_peek_batch_cqe(&r->uring, cqes,
					      CONFIG_PX_RING_CQE_BATCH);
		for (unsigned int i = 0; i < got; i++)
			copy[i] = *cqes[i];
		io_uring_cq_advance(&r->uring, got);
		for (unsigned int i = 0; i < got; i++)
			dispatch(r, &copy[i]);
		n += (int)got;
	} while (got == CONFIG_PX_RING_CQE_BATCH);
	return n;
}

static bool
cq_overflowed(struct px_ring *r)
{
	return IO_URING_READ_ONCE(*r->uring.sq.kflags) & IORING_SQ_CQ_OVERFLOW;
}

/*
 * With IORING_FEAT_NODROP the kernel keeps completions that did not fit
 * on an overflow list and flags the SQ ring; entering with GETEVENTS
 * moves them into the CQ as room appears.  Loop until the flag clears.
 */
static int
reap_all(struct px_ring *r)
{
	int n = reap(r);

	while (cq_overflowed(r)) {
		RING_STAT_ADD(r, overflows, 1);
		RING_STAT_ADD(r, enters, 1);
		io_uring_get_events(&r->uring);
		n += reap(r);
	}
	return n;
}

/*
 * Submit what is queued and wait for a completion.  -EBUSY from submit
 * means the CQ (and its overflow list) is full: reap, then retry.
 */
static int
submit_and_wait(struct px_ring *r, int64_t timeout_ns)
{
	struct __kernel_timespec ts;
	struct io_uring_cqe *cqe;
	int ret;

	ring_buf_publish(r);
	RING_STAT_ADD(r, enters, 1);
	if (timeout_ns == 0) {
		ret = io_uring_submit_and_get_events(&r->uring);
	} else if (timeout_ns < 0) {
		ret = io_uring_submit_and_wait(&r->uring, 1);
	} else {
		ts.tv_sec = timeout_ns / 1000000000;
		ts.tv_nsec = timeout_ns % 1000000000;
		ret = io_uring_submit_and_wait_timeout(&r->uring, &cqe, 1, &ts,
						       NULL);
	}
	if (ret > 0 && timeout_ns <= 0)
		RING_STAT_ADD(r, submissions, ret);
	if (ret == -ETIME || ret == -EINTR || ret == -EBUSY || ret == -EAGAIN)
		return 0;
	return ret < 0 ? ret : 0;
}

int
ring_run_once(struct px_ring *ring, int64_t timeout_ns)
{
	unsigned int queued;
	int n, ret;

	ring_conns_rearm_waiting(ring);
	if (ring->defer_head || io_uring_cq_ready(&ring->uring))
		timeout_ns = 0;
	queued = io_uring_sq_ready(&ring->uring);
	ret = submit_and_wait(ring, timeout_ns);
	if (ret < 0)
		return ret;
	if (timeout_ns > 0)
		RING_STAT_ADD(ring, submissions,
			      queued - io_uring_sq_ready(&ring->uring));
	n = reap_all(ring);
	run_deferred(ring);
	return n;
}

int
px_ring_run_once(struct px_ring *ring, int64_t timeout_ns)
{
	if (ring_foreign(ring))
		return -EXDEV;
	return ring_run_once(ring, timeout_ns);
}

int
px_ring_run(struct px_ring *ring)
{
	int ret = 0;

	if (ring_foreign(ring))
		return -EXDEV;
	ring->stop = false;
	while (!ring->stop) {
		ret = ring_run_once(ring, -1);
		if (ret < 0)
			return ret;
	}
	return 0;
}

void
px_ring_stop(struct px_ring *ring)
{
	ring->stop = true;
}

bool
px_ring_stopped(const struct px_ring *ring)
{
	return ring->stop;
}
