// SPDX-License-Identifier: MIT
/*
 * The safe close of a connection: with a recv pending (which closing the
 * fd alone would not end), with sends queued behind a full socket, and
 * from inside the connection's own recv callback.  The closed callback
 * comes last, exactly once, after every other callback; the fd is closed
 * only then and the peer sees the end of the stream.
 */
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <sys/socket.h>

#include <patinox/error.h>
#include <patinox/ring.h>

#include "harness.h"

struct watch {
	int recv_calls;
	int recv_after_close;
	int closed;
	int closed_res;
	int sends_done;
	int sends_cancelled;
	int sends_after_closed;
	bool closing;
};

static void
watch_recv(struct px_ring_conn *conn, struct px_ring_buf *buf, int res,
	   void *ctx)
{
	struct watch *w = ctx;

	w->recv_calls++;
	if (w->closing)
		w->recv_after_close++;
	if (buf)
		px_ring_buf_put(px_ring_conn_ring(conn), buf);
}

static void
watch_closed(struct px_ring_conn *conn, int res, void *ctx)
{
	struct watch *w = ctx;

	w->closed++;
	w->closed_res = res;
}

static void
watch_sent(struct px_ring_conn *conn, int res, void *ctx)
{
	struct watch *w = ctx;

	if (w->closed)
		w->sends_after_closed++;
	if (res == -ECANCELED)
		w->sends_cancelled++;
	w->sends_done++;
}

static bool
fd_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

TEST(ring_close_while_recv_pending)
{
	struct watch w = {0};
	struct px_ring_stats st;
	struct px_ring_conn *conn;
	struct px_ring *ring;
	char c;
	int sv[2], ret;

	ret = px_ring_create(NULL, &ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ASSERT_EQ(px_ring_conn_create(ring, sv[0], 0, watch_recv, &w, &conn),
		  0);
	ASSERT_EQ(px_ring_conn_recv_start(conn), 0);
	ASSERT_EQ(px_ring_run_once(ring, 20 * 1000000LL), 0);

	w.closing = true;
	ASSERT_EQ(px_ring_conn_close(conn, watch_closed, &w), 0);
	EXPECT_EQ(px_ring_conn_close(conn, watch_closed, &w), -EALREADY);
	EXPECT_EQ(w.closed, 0);
	EXPECT_TRUE(fd_open(sv[0]));
	while (!w.closed)
		ASSERT_GE(px_ring_run_once(ring, 1000 * 1000000LL), 0);
	EXPECT_EQ(w.closed_res, 0);
	EXPECT_EQ(w.recv_after_close, 0);
	EXPECT_FALSE(fd_open(sv[0]));
	/* The peer sees the end of the stream. */
	EXPECT_EQ(read(sv[1], &c, 1), 0);
	px_ring_stats_get(ring, &st);
	EXPECT_EQ(st.in_flight, 0);
	EXPECT_EQ(st.conns, 0);
	px_ring_destroy(ring);
	close(sv[1]);
}

TEST(ring_close_with_sends_queued_behind_a_full_socket)
{
	static char big[256 * 1024];
	struct iovec iov = {big, sizeof(big)};
	struct watch w = {0};
	struct px_ring_stats st;
	struct px_ring_conn *conn;
	struct px_ring *ring;
	int sv[2], ret;

	ret = px_ring_create(NULL, &ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ASSERT_EQ(px_ring_conn_create(ring, sv[0], 0, watch_recv, &w, &conn),
		  0);
	ASSERT_EQ(px_ring_conn_recv_start(conn), 0);
	for (int i = 0; i < 8; i++)
		ASSERT_EQ(px_ring_conn_send(conn, &iov, 1, watch_sent, &w), 0);
	/* Nobody reads sv[1]: the first send blocks in the kernel. */
	ASSERT_GE(px_ring_run_once(ring, 20 * 1000000LL), 0);
	w.closing = true;
	ASSERT_EQ(px_ring_conn_close(conn, watch_closed, &w), 0);
	EXPECT_EQ(px_ring_conn_send(conn, &iov, 1, watch_sent, &w),
		  -PX_ECLOSED);
	while (!w.closed)
		ASSERT_GE(px_ring_run_once(ring, 1000 * 1000000LL), 0);
	EXPECT_EQ(w.sends_done, 8);
	EXPECT_GE(w.sends_cancelled, 7);
	EXPECT_EQ(w.sends_after_closed, 0);
	EXPECT_EQ(w.recv_after_close, 0);
	EXPECT_FALSE(fd_open(sv[0]));
	px_ring_stats_get(ring, &st);
	EXPECT_EQ(st.in_flight, 0);
	px_ring_destroy(ring);
	close(sv[1]);
}

static void
close_on_eof(struct px_ring_conn *conn, struct px_ring_buf *buf, int res,
	     void *ctx)
{
	struct watch *w = ctx;

	w->recv_calls++;
	if (buf)
		px_ring_buf_put(px_ring_conn_ring(conn), buf);
	if (res <= 0) {
		if (w->closing)
			w->recv_after_close++;
		w->closing = true;
		px_ring_conn_close(conn, watch_closed, w);
	}
}

TEST(ring_close_from_recv_callback_on_eof)
{
	struct watch w = {0};
	struct px_ring_conn *conn;
	struct px_ring *ring;
	int sv[2], ret;

	ret = px_ring_create(NULL, &ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ASSERT_EQ(px_ring_conn_create(ring, sv[0], 0, close_on_eof, &w, &conn),
		  0);
	ASSERT_EQ(px_ring_conn_recv_start(conn), 0);
	ASSERT_EQ(write(sv[1], "bye", 3), 3);
	close(sv[1]);
	while (!w.closed)
		ASSERT_GE(px_ring_run_once(ring, 1000 * 1000000LL), 0);
	EXPECT_EQ(w.recv_calls, 2);
	EXPECT_EQ(w.recv_after_close, 0);
	EXPECT_EQ(w.closed, 1);
	EXPECT_FALSE(fd_open(sv[0]));
	px_ring_destroy(ring);
}

struct flood {
	struct watch w;
	int defers;
};

static void
flood_count(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct flood *f = ctx;

	f->defers++;
}

/* A full batch of deferred work is queued ahead of the close's own. */
static void
flood_then_close_on_eof(struct px_ring_conn *conn, struct px_ring_buf *buf,
			int res, void *ctx)
{
	struct flood *f = ctx;
	struct px_ring *ring = px_ring_conn_ring(conn);

	if (buf)
		px_ring_buf_put(ring, buf);
	if (res > 0)
		return;
	for (int i = 0; i < CONFIG_PX_RING_DEFER_BATCH; i++)
		px_ring_defer(ring, flood_count, f);
	f->w.closing = true;
	px_ring_conn_close(conn, watch_closed, &f->w);
}

/*
 * The close is submitted at once (nothing left in the kernel) while its
 * deferred step waits behind a full batch, so the close completes first
 * and frees the connection.  Freed memory is filled with a pattern
 * (M_PERTURB; AddressSanitizer reports the read itself), so a deferred
 * step left queued in it would crash the loop.
 */
TEST(ring_close_frees_the_connection_with_its_deferred_step_queued)
{
	struct flood f = {0};
	struct px_ring_stats st;
	struct px_ring_conn *conn;
	struct px_ring *ring;
	int sv[2], ret;

	ret = px_ring_create(NULL, &ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	mallopt(M_PERTURB, 0x5a);
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ASSERT_EQ(px_ring_conn_create(ring, sv[0], 0, flood_then_close_on_eof,
				      &f, &conn),
		  0);
	ASSERT_EQ(px_ring_conn_recv_start(conn), 0);
	close(sv[1]);
	for (int i = 0; i < 100; i++) {
		if (f.w.closed && f.defers == CONFIG_PX_RING_DEFER_BATCH)
			break;
		ASSERT_GE(px_ring_run_once(ring, 100 * 1000000LL), 0);
	}
	EXPECT_EQ(f.w.closed, 1);
	EXPECT_EQ(f.w.closed_res, 0);
	EXPECT_EQ(f.defers, CONFIG_PX_RING_DEFER_BATCH);
	EXPECT_FALSE(fd_open(sv[0]));
	/* Nothing is left queued: the loop does not spin. */
	EXPECT_EQ(px_ring_run_once(ring, 0), 0);
	px_ring_stats_get(ring, &st);
	EXPECT_EQ(st.in_flight, 0);
	EXPECT_EQ(st.conns, 0);
	px_ring_destroy(ring);
}

#define SQ_FLUSH_CONNS (2 * CONFIG_PX_RING_CQE_BATCH)

struct sq_filler {
	struct watch w;
	int timers;
	int timers_done;
};

static void
filler_timer(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct sq_filler *f = ctx;

	f->timers_done++;
}

/*
 * The first connection to see EOF fills the SQ but for one slot, which
 * its close takes; the next close finds the SQ full and flushes, so the
 * first close completes while the CQ is still being reaped.
 */
static void
fill_sq_then_close_on_eof(struct px_ring_conn *conn, struct px_ring_buf *buf,
			  int res, void *ctx)
{
	struct sq_filler *f = ctx;
	struct px_ring *ring = px_ring_conn_ring(conn);

	if (buf)
		px_ring_buf_put(ring, buf);
	if (res > 0)
		return;
	for (; f->timers < CONFIG_PX_RING_SQ_ENTRIES - 1; f->timers++)
		if (px_ring_timer(ring, 10 * 1000000000ull, 0, filler_timer, f,
				  NULL) < 0)
			break;
	px_ring_conn_close(conn, watch_closed, &f->w);
}

TEST(ring_close_completed_by_an_sq_flush_in_the_same_reap)
{
	struct px_ring_opts o;
	struct sq_filler f = {0};
	struct px_ring_conn *conn;
	struct px_ring *ring;
	int sv[2], peers[SQ_FLUSH_CONNS], ret;

	/*
	 * Without DEFER_TASKRUN every EOF is posted in one turn (with it
	 * the kernel runs a few task works per wait), so the reap loop
	 * goes on past the first batch and sees the flushed close.
	 */
	px_ring_opts_init(&o);
	o.sq_entries = CONFIG_PX_RING_SQ_ENTRIES;
	o.flags |= PX_RING_NO_DEFER;
	ret = px_ring_create(&o, &ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	mallopt(M_PERTURB, 0x5a);
	for (int i = 0; i < SQ_FLUSH_CONNS; i++) {
		ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		ASSERT_EQ(px_ring_conn_create(ring, sv[0], 0,
					      fill_sq_then_close_on_eof, &f,
					      &conn),
			  0);
		ASSERT_EQ(px_ring_conn_recv_start(conn), 0);
		peers[i] = sv[1];
	}
	ASSERT_EQ(px_ring_run_once(ring, 0), 0);
	for (int i = 0; i < SQ_FLUSH_CONNS; i++)
		close(peers[i]);
	for (int i = 0; i < 100 && f.w.closed < SQ_FLUSH_CONNS; i++)
		ASSERT_GE(px_ring_run_once(ring, 100 * 1000000LL), 0);
	EXPECT_EQ(f.w.closed, SQ_FLUSH_CONNS);
	EXPECT_EQ(f.timers, CONFIG_PX_RING_SQ_ENTRIES - 1);
	px_ring_destroy(ring);
	/* Each timer reports its cancellation; none fired. */
	EXPECT_EQ(f.timers_done, f.timers);
}

/* The socket is the connection's even when the call is refused. */
TEST(ring_conn_create_closes_the_fd_on_einval)
{
	struct px_ring_conn *conn;
	struct px_ring *ring;
	int sv[2], ret;

	ret = px_ring_create(NULL, &ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	EXPECT_EQ(px_ring_conn_create(ring, sv[0], 0, NULL, NULL, NULL),
		  -EINVAL);
	EXPECT_FALSE(fd_open(sv[0]));
	close(sv[1]);
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	EXPECT_EQ(px_ring_conn_create(NULL, sv[0], 0, NULL, NULL, &conn),
		  -EINVAL);
	EXPECT_FALSE(fd_open(sv[0]));
	close(sv[1]);
	EXPECT_EQ(px_ring_conn_create(ring, -1, 0, NULL, NULL, &conn), -EINVAL);
	px_ring_destroy(ring);
}

TEST(ring_destroy_closes_open_connections)
{
	struct watch w = {0};
	struct px_ring_conn *conn;
	struct px_ring *ring;
	int sv[2], ret;

	ret = px_ring_create(NULL, &ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ASSERT_EQ(px_ring_conn_create(ring, sv[0], 0, watch_recv, &w, &conn),
		  0);
	ASSERT_EQ(px_ring_conn_recv_start(conn), 0);
	ASSERT_EQ(px_ring_run_once(ring, 0), 0);
	px_ring_destroy(ring);
	EXPECT_FALSE(fd_open(sv[0]));
	EXPECT_EQ(w.recv_calls, 0);
	close(sv[1]);
}

/* A clock that leaps a day at every read after the first. */
static uint64_t
leaping_now_ns(void)
{
	static uint64_t t = 1;

	t += 86400ull * 1000000000ull;
	return t;
}

/*
 * The wait of px_ring_destroy() runs out (the clock leaps) before the
 * connection's cancel and close complete: the fd is closed all the same.
 */
TEST(ring_destroy_past_its_wait_still_closes_the_fd)
{
	struct px_ring_hooks hooks = {.destroy_now_ns = leaping_now_ns};
	struct pollfd pfd = {.events = POLLIN};
	struct watch w = {0};
	struct px_ring_conn *conn;
	struct px_ring *ring;
	int sv[2], ret;
	char c;

	ret = px_ring_create(NULL, &ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pfd.fd = sv[1];
	ASSERT_EQ(px_ring_conn_create(ring, sv[0], 0, watch_recv, &w, &conn),
		  0);
	ASSERT_EQ(px_ring_conn_recv_start(conn), 0);
	ASSERT_EQ(px_ring_run_once(ring, 0), 0);
	px_ring_hooks_set(&hooks);
	px_ring_destroy(ring);
	px_ring_hooks_set(NULL);
	EXPECT_FALSE(fd_open(sv[0]));
	/*
	 * The peer sees the end of the stream once the kernel's teardown of
	 * the ring (asynchronous) has dropped the recv's file reference.
	 */
	EXPECT_EQ(poll(&pfd, 1, 5000), 1);
	EXPECT_EQ(recv(sv[1], &c, 1, MSG_DONTWAIT), 0);
	close(sv[1]);
}

struct stopper {
	int cancelled;
	int bytes;
	int other;
};

static void
stopper_recv(struct px_ring_conn *conn, struct px_ring_buf *buf, int res,
	     void *ctx)
{
	struct stopper *s = ctx;

	if (res > 0)
		s->bytes += res;
	else if (res == -ECANCELED)
		s->cancelled++;
	else
		s->other++;
	if (buf)
		px_ring_buf_put(px_ring_conn_ring(conn), buf);
}

TEST(ring_recv_stop_then_restart_keeps_the_stream)
{
	struct stopper s = {0};
	struct px_ring_conn *conn;
	struct px_ring *ring;
	int sv[2], ret;

	ret = px_ring_create(NULL, &ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ASSERT_EQ(px_ring_conn_create(ring, sv[0], 0, stopper_recv, &s, &conn),
		  0);
	EXPECT_EQ(px_ring_conn_recv_stop(conn), -ENOENT);
	ASSERT_EQ(px_ring_conn_recv_start(conn), 0);
	EXPECT_EQ(px_ring_conn_recv_start(conn), -EALREADY);
	ASSERT_EQ(px_ring_run_once(ring, 0), 0);
	ASSERT_EQ(px_ring_conn_recv_stop(conn), 0);
	while (!s.cancelled)
		ASSERT_GE(px_ring_run_once(ring, 1000 * 1000000LL), 0);
	/* Written while stopped: stays in the socket until restarted. */
	ASSERT_EQ(write(sv[1], "0123456789", 10), 10);
	ASSERT_EQ(px_ring_run_once(ring, 20 * 1000000LL), 0);
	EXPECT_EQ(s.bytes, 0);
	ASSERT_EQ(px_ring_conn_recv_start(conn), 0);
	while (s.bytes < 10)
		ASSERT_GE(px_ring_run_once(ring, 1000 * 1000000LL), 0);
	EXPECT_EQ(s.cancelled, 1);
	EXPECT_EQ(s.bytes, 10);
	EXPECT_EQ(s.other, 0);
	px_ring_destroy(ring);
	close(sv[1]);
}

TEST_HARNESS_MAIN
