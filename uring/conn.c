// SPDX-License-Identifier: MIT
/*
 * Connections: one socket, its multishot recv into the ring's provided
 * buffers, its ordered send queue with one sendmsg in flight, and the
 * safe close.
 *
 * Invariants
 * - ops_in_kernel counts the connection's operations the kernel still
 *   holds (recv, send, cancel, retry timer).  IORING_OP_CLOSE is
 *   submitted only when it is 0, so the fd number cannot be reused while
 *   anything may still touch it.
 * - send_armed is true from the submission of a sendmsg until its
 *   completion has been fully consumed; no second send starts meanwhile,
 *   even when a done callback queues a new send.
 * - A recv that ended with -ENOBUFS waits on ring->wait_head; the data
 *   stays in the socket and the next recv reads it in order.
 * - Callbacks never run inside the public call that caused them; the
 *   close path runs from deferred work and from completions.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ring_internal.h"

#define conn_of(op, member)                                                 \
	((struct px_ring_conn *)((char *)(op)-offsetof(struct px_ring_conn, \
						       member)))

static void close_progress(struct px_ring_conn *c);
static void conn_schedule_progress(struct px_ring_conn *c);

static void
conn_op_ended(struct px_ring_conn *c)
{
	c->ops_in_kernel--;
	ring_op_ended(c->ring);
}

static struct io_uring_sqe *
conn_sqe(struct px_ring_conn *c, struct px_ring_op *op)
{
	struct io_uring_sqe *sqe = ring_sqe_op(c->ring, op);

	if (!sqe)
		return NULL;
	c->ops_in_kernel++;
	return sqe;
}

/* After the prep helper, which clears sqe->flags. */
static void
conn_sqe_fd_flags(struct px_ring_conn *c, struct io_uring_sqe *sqe)
{
	if (c->fixed)
		sqe->flags |= IOSQE_FIXED_FILE;
}

/* ---- the wait list: buffers ran dry, or the SQ was full ---- */

static void
wait_add(struct px_ring_conn *c)
{
	struct px_ring *r = c->ring;

	if (c->on_wait)
		return;
	c->on_wait = true;
	c->wait_next = NULL;
	*r->wait_tail = c;
	r->wait_tail = &c->wait_next;
	r->wait_len++;
}

static void
wait_remove(struct px_ring_conn *c)
{
	struct px_ring *r = c->ring;
	struct px_ring_conn **pp = &r->wait_head;

	if (!c->on_wait)
		return;
	while (*pp && *pp != c)
		pp = &(*pp)->wait_next;
	if (!*pp)
		return;
	*pp = c->wait_next;
	if (r->wait_tail == &c->wait_next)
		r->wait_tail = pp;
	c->on_wait = false;
	r->wait_len--;
}

/* ---- recv ---- */

static int
recv_arm(struct px_ring_conn *c)
{
	struct io_uring_sqe *sqe = conn_sqe(c, &c->recv_op);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	conn_sqe_fd_flags(c, sqe);
	sqe->buf_group = c->ring->bgid;
	c->recv_armed = true;
	return 0;
}

/* Without SQ room now, the wait-list pass arms it next turn. */
static void
recv_arm_or_wait(struct px_ring_conn *c)
{
	if (recv_arm(c) == 0)
		return;
	c->recv_waiting = true;
	wait_add(c);
}

/* The recv ended for good: tell the owner once. */
static void
recv_end(struct px_ring_conn *c, int res)
{
	c->recv_wanted = false;
	c->recv_stopping = false;
	if (c->state == CONN_OPEN && c->on_recv)
		c->on_recv(c, NULL, res, c->ctx);
}

static void
recv_data(struct px_ring_conn *c, const struct io_uring_cqe *cqe)
{
	struct px_ring_buf *buf;

	if (!(cqe->flags & IORING_CQE_F_BUFFER))
		return;
	buf = ring_buf_take(c->ring,
			    (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT),
			    (uint32_t)cqe->res);
	if (c->state != CONN_OPEN || !c->on_recv)
		px_ring_buf_put(c->ring, buf);
	else
		c->on_recv(c, buf, cqe->res, c->ctx);
}

/* The multishot ended without an error of its own: go on or stop. */
static void
recv_continue(struct px_ring_conn *c)
{
	if (c->state != CONN_OPEN || !c->recv_wanted)
		return;
	if (c->recv_stopping) {
		recv_end(c, -ECANCELED);
		return;
	}
	recv_arm_or_wait(c);
}

/*
 * Whether the last completion @res of a recv that px_ring_conn_recv_check()
 * cancelled is that cancel's: the recv was parked and is armed again.
 * Anything else is the recv's own end (data, EOF, an error) that was
 * only not reaped yet when the check ran: nothing is restarted.
 */
static bool
recv_restarting(const struct px_ring_conn *c, int res)
{
	return res == -ECANCELED && c->state == CONN_OPEN && c->recv_wanted &&
	       !c->recv_stopping;
}

/* The cancel of px_ring_conn_recv_check() ends the recv: arm a new one. */
static void
recv_ended_or_restart(struct px_ring_conn *c, int res, bool restart)
{
	if (restart && recv_restarting(c, res)) {
		RING_STAT_ADD(c->ring, recv_restarts, 1);
		recv_arm_or_wait(c);
		return;
	}
	recv_end(c, res);
}

static void
recv_handler(struct px_ring *r, struct px_ring_op *op,
	     const struct io_uring_cqe *cqe)
{
	struct px_ring_conn *c = conn_of(op, recv_op);
	bool more = cqe->flags & IORING_CQE_F_MORE;
	bool restart = false;

	if (!more) {
		c->recv_armed = false;
		restart = c->recv_restart;
		c->recv_restart = false;
		conn_op_ended(c);
		if (restart && !recv_restarting(c, cqe->res))
			RING_STAT_ADD(r, recv_check_late, 1);
	}
	if (cqe->res > 0) {
		recv_data(c, cqe);
		if (!more)
			recv_continue(c);
	} else if (cqe->res == -ENOBUFS && !more) {
		RING_STAT_ADD(r, enobufs, 1);
		if (c->state == CONN_OPEN && c->recv_wanted) {
			c->recv_waiting = true;
			wait_add(c);
		}
	} else if (!more) {
		recv_ended_or_restart(c, cqe->res, restart);
	}
	if (c->state == CONN_CLOSING)
		close_progress(c);
}

int
px_ring_conn_recv_start(struct px_ring_conn *conn)
{
	if (ring_foreign(conn->ring))
		return -EXDEV;
	if (conn->state != CONN_OPEN)
		return -PX_ECLOSED;
	if (!conn->ring->has_buf_ring)
		return -ENOTSUP;
	if (conn->recv_wanted)
		return -EALREADY;
	conn->recv_wanted = true;
	recv_arm_or_wait(conn);
	return 0;
}

int
px_ring_conn_recv_stop(struct px_ring_conn *conn)
{
	if (ring_foreign(conn->ring))
		return -EXDEV;
	if (!conn->recv_wanted || conn->recv_stopping)
		return -ENOENT;
	if (conn->recv_armed) {
		int ret =
		    ring_cancel_submit(conn->ring, op_user_data(&conn->recv_op),
				       -1, 0, NULL, NULL);

		/* Stopping only once asked for: a later call tries again. */
		if (ret == 0)
			conn->recv_stopping = true;
		return ret;
	}
	conn->recv_stopping = true;
	/* Not in the kernel: the wait-list pass reports the end. */
	wait_add(conn);
	return 0;
}

/* The socket ended (error, hangup, peer shutdown): its recv must end. */
static bool
sock_ended(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};

	if (poll(&p, 1, 0) <= 0)
		return false;
	return p.revents & (POLLERR | POLLHUP | POLLRDHUP);
}

int
px_ring_conn_recv_check(struct px_ring_conn *conn)
{
	int ret;

	if (ring_foreign(conn->ring))
		return -EXDEV;
	if (conn->state != CONN_OPEN || !conn->recv_armed || conn->fixed ||
	    conn->recv_stopping || conn->recv_restart)
		return 0;
	if (!sock_ended(conn->fd))
		return 0;
	ret = ring_cancel_submit(conn->ring, op_user_data(&conn->recv_op), -1,
				 0, NULL, NULL);
	if (ret < 0)
		return ret;
	conn->recv_restart = true;
	return 1;
}

/* ---- send records ---- */

static struct ring_send *
send_alloc(struct px_ring *r, int iovcnt)
{
	struct ring_send *s;
	int cap = iovcnt;

	if (iovcnt <= CONFIG_PX_RING_SEND_INLINE_IOV) {
		cap = CONFIG_PX_RING_SEND_INLINE_IOV;
		s = r->send_free;
		if (s) {
			r->send_free = s->next;
			return s;
		}
	}
	s = malloc(sizeof(*s) + (size_t)cap * sizeof(struct iovec));
	if (s)
		s->cap = cap;
	return s;
}

static void
send_release(struct px_ring *r, struct ring_send *s)
{
	if (s->cap > CONFIG_PX_RING_SEND_INLINE_IOV) {
		free(s);
		return;
	}
	s->next = r->send_free;
	r->send_free = s;
}

/* Pop the head and report @res for it. */
static void
send_complete_head(struct px_ring_conn *c, int res)
{
	struct ring_send *s = c->send_head;
	px_ring_send_fn done = s->done;
	void *ctx = s->ctx;

	c->send_head = s->next;
	if (!c->send_head)
		c->send_tail = &c->send_head;
	c->sends_pending--;
	send_release(c->ring, s);
	if (done)
		done(c, res, ctx);
}

static void
sends_fail_all(struct px_ring_conn *c, int res)
{
	while (c->send_head)
		send_complete_head(c, res);
}

/* ---- send ---- */

/* Gather queued sends into c->batch, skipping what was already sent. */
static int
send_gather(struct px_ring_conn *c)
{
	size_t skip = c->send_head->sent;
	int n = 0;

	for (struct ring_send *s = c->send_head; s; s = s->next) {
		for (int i = 0; i < s->iovcnt; i++) {
			struct iovec v = s->iov[i];

			if (skip >= v.iov_len) {
				skip -= v.iov_len;
				continue;
			}
			v.iov_base = (char *)v.iov_base + skip;
			v.iov_len -= skip;
			skip = 0;
			c->batch[n++] = v;
			if (n == CONFIG_PX_RING_SEND_BATCH_IOV)
				return n;
		}
	}
	return n;
}

static int
send_arm(struct px_ring_conn *c)
{
	struct io_uring_sqe *sqe = conn_sqe(c, &c->send_op);
	int n;

	if (!sqe)
		return -EBUSY;
	n = send_gather(c);
	if (n == 1) {
		io_uring_prep_send(sqe, c->fd, c->batch[0].iov_base,
				   c->batch[0].iov_len, MSG_NOSIGNAL);
	} else {
		memset(&c->msg, 0, sizeof(c->msg));
		c->msg.msg_iov = c->batch;
		c->msg.msg_iovlen = (size_t)n;
		io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
	}
	conn_sqe_fd_flags(c, sqe);
	c->send_armed = true;
	return 0;
}

static void
send_kick(struct px_ring_conn *c)
{
	if (c->state != CONN_OPEN || c->send_armed || !c->send_head)
		return;
	if (send_arm(c) < 0) {
		c->send_retry = true;
		wait_add(c);
	}
}

/* Credit @n written bytes to the queue, in order. */
static void
send_consume(struct px_ring_conn *c, size_t n)
{
	while (c->send_head && n > 0) {
		struct ring_send *s = c->send_head;
		size_t rem = s->total - s->sent;

		if (n < rem) {
			s->sent += n;
			RING_STAT_ADD(c->ring, short_sends, 1);
			return;
		}
		n -= rem;
		send_complete_head(c, (int)s->total);
	}
}

static void
send_handler(struct px_ring *r, struct px_ring_op *op,
	     const struct io_uring_cqe *cqe)
{
	struct px_ring_conn *c = conn_of(op, send_op);

	conn_op_ended(c);
	if (cqe->res >= 0) {
		send_consume(c, (size_t)cqe->res);
	} else {
		if (!c->send_error)
			c->send_error = cqe->res;
		sends_fail_all(c, cqe->res);
	}
	c->send_armed = false;
	if (c->state == CONN_OPEN)
		send_kick(c);
	else
		close_progress(c);
}

int
px_ring_conn_send(struct px_ring_conn *conn, const struct iovec *iov,
		  int iovcnt, px_ring_send_fn done, void *ctx)
{
	struct ring_send *s;
	size_t total = 0;

	if (ring_foreign(conn->ring))
		return -EXDEV;
	if (conn->state != CONN_OPEN)
		return -PX_ECLOSED;
	if (conn->send_error)
		return conn->send_error;
	if (!iov || iovcnt < 1 || iovcnt > CONFIG_PX_RING_SEND_IOV_MAX)
		return -EINVAL;
	/* Checked at each step: the sum of size_t lengths could wrap. */
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > INT32_MAX - total)
			return -EINVAL;
		total += iov[i].iov_len;
	}
	if (total == 0)
		return -EINVAL;
	s = send_alloc(conn->ring, iovcnt);
	if (!s)
		return -ENOMEM;

	memcpy(s->iov, iov, (size_t)iovcnt * sizeof(*iov));
	s->iovcnt = iovcnt;
	s->total = total;
	s->sent = 0;
	s->done = done;
	s->ctx = ctx;
	s->next = NULL;
	*conn->send_tail = s;
	conn->send_tail = &s->next;
	conn->sends_pending++;
	send_kick(conn);
	return 0;
}

/* ---- the wait-list pass, once per loop turn ---- */

static void
wait_service(struct px_ring_conn *c, uint32_t *budget)
{
	if (c->send_retry) {
		c->send_retry = false;
		send_kick(c);
	}
	if (!c->recv_waiting && !c->recv_stopping)
		return;
	if (c->recv_stopping && !c->recv_armed) {
		c->recv_waiting = false;
		recv_end(c, -ECANCELED);
		return;
	}
	if (!c->recv_waiting)
		return;
	if (*budget == 0) {
		wait_add(c);
		return;
	}
	c->recv_waiting = false;
	(*budget)--;
	if (recv_arm(c) < 0) {
		c->recv_waiting = true;
		wait_add(c);
	}
}

/*
 * Re-arm at most as many recvs as there are free buffers, oldest first,
 * so a consumer that holds most buffers does not make every connection
 * spin through -ENOBUFS.
 */
void
ring_conns_rearm_waiting(struct px_ring *r)
{
	uint32_t budget = r->buf_count - r->buf_out;
	uint32_t n = r->wait_len;

	/*
	 * Pop from the live list, so a callback that closes a connection
	 * still waiting in it finds it there; those re-queued during the
	 * pass go to the tail and wait for the next turn.
	 */
	while (n-- && r->wait_head) {
		struct px_ring_conn *c = r->wait_head;

		wait_remove(c);
		if (c->state == CONN_OPEN)
			wait_service(c, &budget);
	}
}

/* ---- close ---- */

/*
 * The close CQE can arrive while close_defer is still queued: the close
 * is submitted from a completion handler once nothing is left in the
 * kernel, and the deferred pass runs a batch at a time (or the SQ flush
 * of close_submit() lets the CQE land in the same reap).  Unlink it, or
 * run_deferred() would read the freed connection.
 */
static void
conn_free(struct px_ring_conn *c)
{
	struct px_ring *r = c->ring;

	if (c->close_defer_queued)
		ring_defer_remove(r, &c->close_defer);
	if (c->prev)
		c->prev->next = c->next;
	else
		r->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	RING_STAT_SUB(r, conns, 1);
	free(c);
}

static void
conn_close_handler(struct px_ring *r, struct px_ring_op *op,
		   const struct io_uring_cqe *cqe)
{
	struct px_ring_conn *c = conn_of(op, close_op);

	ring_op_ended(r);
	if (c->on_closed)
		c->on_closed(c, cqe->res, c->closed_ctx);
	conn_free(c);
}

static void
conn_cancel_handler(struct px_ring *r, struct px_ring_op *op,
		    const struct io_uring_cqe *cqe)
{
	struct px_ring_conn *c = conn_of(op, cancel_op);

	c->cancel_armed = false;
	conn_op_ended(c);
	close_progress(c);
}

static void
conn_retry_handler(struct px_ring *r, struct px_ring_op *op,
		   const struct io_uring_cqe *cqe)
{
	struct px_ring_conn *c = conn_of(op, retry_op);

	c->retry_armed = false;
	c->need_cancel = true;
	conn_op_ended(c);
	close_progress(c);
}

/*
 * Cancel every request on the fd.  Whatever the kernel answers (the
 * number cancelled, 0, -ENOENT when the requests completed meanwhile,
 * -EALREADY when one is running), the answer itself is not trusted: the
 * close waits for each of the connection's own completions instead.
 */
static int
cancel_arm(struct px_ring_conn *c)
{
	struct io_uring_sqe *sqe = ring_sqe_op(c->ring, &c->cancel_op);
	unsigned int flags = IORING_ASYNC_CANCEL_ALL;

	if (!sqe)
		return -EBUSY;
	c->ops_in_kernel++;
	if (c->fixed)
		flags |= IORING_ASYNC_CANCEL_FD_FIXED;
	io_uring_prep_cancel_fd(sqe, c->fd, flags);
	c->cancel_armed = true;
	c->need_cancel = false;
	RING_STAT_ADD(c->ring, cancels, 1);
	return 0;
}

static int
retry_arm(struct px_ring_conn *c)
{
	struct io_uring_sqe *sqe = conn_sqe(c, &c->retry_op);

	if (!sqe)
		return -EBUSY;
	c->retry_op.timer.ts.tv_sec = 0;
	c->retry_op.timer.ts.tv_nsec =
	    CONFIG_PX_RING_CLOSE_RETRY_MS * 1000000LL;
	io_uring_prep_timeout(sqe, &c->retry_op.timer.ts, 0, 0);
	c->retry_armed = true;
	return 0;
}

static int
close_submit(struct px_ring_conn *c)
{
	struct io_uring_sqe *sqe = ring_sqe_op(c->ring, &c->close_op);

	if (!sqe)
		return -EBUSY;
	if (c->fixed)
		io_uring_prep_close_direct(sqe, (unsigned int)c->fd);
	else
		io_uring_prep_close(sqe, c->fd);
	c->state = CONN_CLOSE_SUBMITTED;
	return 0;
}

static void
close_progress(struct px_ring_conn *c)
{
	int ret = 0;

	if (c->state != CONN_CLOSING)
		return;
	if (!c->send_armed)
		sends_fail_all(c, -ECANCELED);
	if (c->ops_in_kernel == 0)
		ret = close_submit(c);
	else if (c->cancel_armed || c->retry_armed)
		return;
	else if (c->need_cancel)
		ret = cancel_arm(c);
	else
		ret = retry_arm(c);
	if (ret < 0)
		conn_schedule_progress(c);
}

static void
close_defer_run(struct px_ring *r, struct ring_defer *d)
{
	struct px_ring_conn *c = conn_of(d, close_defer);

	c->close_defer_queued = false;
	close_progress(c);
}

static void
conn_schedule_progress(struct px_ring_conn *c)
{
	if (c->close_defer_queued)
		return;
	c->close_defer_queued = true;
	ring_defer_add(c->ring, &c->close_defer);
}

static int
conn_close_start(struct px_ring_conn *conn, px_ring_closed_fn done, void *ctx)
{
	if (conn->state != CONN_OPEN)
		return -EALREADY;
	conn->state = CONN_CLOSING;
	conn->on_closed = done;
	conn->closed_ctx = ctx;
	conn->recv_wanted = false;
	conn->recv_waiting = false;
	conn->send_retry = false;
	wait_remove(conn);
	conn->need_cancel = true;
	if (conn->ops_in_kernel)
		cancel_arm(conn);
	conn_schedule_progress(conn);
	return 0;
}

int
px_ring_conn_close(struct px_ring_conn *conn, px_ring_closed_fn done, void *ctx)
{
	if (ring_foreign(conn->ring))
		return -EXDEV;
	return conn_close_start(conn, done, ctx);
}

/* ---- life cycle ---- */

static void
conn_init_ops(struct px_ring_conn *c)
{
	c->recv_op.handler = recv_handler;
	c->send_op.handler = send_handler;
	c->cancel_op.handler = conn_cancel_handler;
	c->retry_op.handler = conn_retry_handler;
	c->close_op.handler = conn_close_handler;
	c->close_defer.run = close_defer_run;
}

static void
fd_discard(struct px_ring *r, int fd, bool fixed)
{
	if (fixed)
		px_ring_close_fd(r, fd, true, NULL, NULL);
	else
		close(fd);
}

int
px_ring_conn_create(struct px_ring *ring, int fd, uint32_t flags,
		    px_ring_recv_fn on_recv, void *ctx,
		    struct px_ring_conn **out)
{
	bool fixed = flags & PX_RING_CONN_FIXED;
	struct px_ring_conn *c;

	if (fd < 0)
		return -EINVAL;
	/* The fd is the callee's even then; a fixed slot can only be closed
	 * through its ring, on the ring's thread. */
	if (ring && ring_foreign(ring)) {
		if (!fixed)
			close(fd);
		return -EXDEV;
	}
	/* The fd is ours even on failure; a fixed slot needs its ring. */
	if (!ring || !out) {
		if (ring)
			fd_discard(ring, fd, fixed);
		else if (!fixed)
			close(fd);
		return -EINVAL;
	}
	if (ring->destroying) {
		fd_discard(ring, fd, fixed);
		return -PX_ECLOSED;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		fd_discard(ring, fd, fixed);
		return -ENOMEM;
	}
	c->ring = ring;
	c->fd = fd;
	c->fixed = fixed;
	c->on_recv = on_recv;
	c->ctx = ctx;
	c->send_tail = &c->send_head;
	conn_init_ops(c);

	c->next = ring->conns;
	if (ring->conns)
		ring->conns->prev = c;
	ring->conns = c;
	RING_STAT_ADD(ring, conns, 1);
	*out = c;
	return 0;
}

void
ring_conns_close_all(struct px_ring *r)
{
	for (struct px_ring_conn *c = r->conns; c; c = c->next)
		if (c->state == CONN_OPEN)
			conn_close_start(c, NULL, NULL);
}

/* After the ring is gone: whatever did not finish in time. */
void
ring_conns_free_all(struct px_ring *r)
{
	while (r->conns) {
		struct px_ring_conn *c = r->conns;

		/*
		 * The wait ran out before its close was submitted.  The ring
		 * is gone, and with it every operation on the fd (and the
		 * fixed-file table), so a plain close() is safe now.
		 */
		if (c->state != CONN_CLOSE_SUBMITTED && !c->fixed)
			close(c->fd);
		while (c->send_head) {
			struct ring_send *s = c->send_head;

			c->send_head = s->next;
			free(s);
		}
		conn_free(c);
	}
	while (r->send_free) {
		struct ring_send *s = r->send_free;

		r->send_free = s->next;
		free(s);
	}
}

int
px_ring_conn_fd(const struct px_ring_conn *conn)
{
	return conn->fd;
}

struct px_ring *
px_ring_conn_ring(const struct px_ring_conn *conn)
{
	return conn->ring;
}

void *
px_ring_conn_ctx(const struct px_ring_conn *conn)
{
	return conn->ctx;
}

void
px_ring_conn_set_ctx(struct px_ring_conn *conn, void *ctx)
{
	conn->ctx = ctx;
}

uint32_t
px_ring_conn_sends_pending(const struct px_ring_conn *conn)
{
	return conn->sends_pending;
}
