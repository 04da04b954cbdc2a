// SPDX-License-Identifier: MIT
/*
 * Cancellation: operations submitted and cancelled at once, 10,000 times,
 * each ending exactly once; cancel by fd and cancel of everything; a
 * periodic timer cancelled from inside its own callback.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <patinox/error.h>
#include <patinox/ring.h>

#include "harness.h"

#define ROUNDS 10000
#define BATCH  100

struct tally {
	int calls;
	int last_res;
	int more_calls;
};

static void
count_end(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct tally *t = ctx;

	if (more) {
		t->more_calls++;
		return;
	}
	t->calls++;
	t->last_res = res;
}

static int
listen_loopback(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 16)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
run_until_idle(struct __test_meta *_metadata, struct px_ring *ring)
{
	struct px_ring_stats st;

	for (;;) {
		px_ring_stats_get(ring, &st);
		if (st.in_flight == 0)
			return;
		ASSERT_GE(px_ring_run_once(ring, 1000 * 1000000LL), 0);
	}
}

TEST_T(ring_submit_then_cancel_10000_each_ends_once, 120)
{
	static struct tally t[ROUNDS];
	struct px_ring *ring;
	struct px_ring_op *op;
	int lfd, ret;

	ret = px_ring_create(NULL, &ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	lfd = listen_loopback();
	ASSERT_GE(lfd, 0);

	/* Alternate long timers and multishot accepts, cancelled at once. */
	for (int i = 0; i < ROUNDS; i++) {
		if (i % 2)
			ret = px_ring_timer(ring, 10ull * 1000000000, 0,
					    count_end, &t[i], &op);
		else
			ret =
			    px_ring_accept(ring, lfd, 0, count_end, &t[i], &op);
		ASSERT_EQ(ret, 0);
		ASSERT_EQ(px_ring_cancel(ring, op), 0);
		if (i % BATCH == BATCH - 1)
			ASSERT_GE(px_ring_run_once(ring, 0), 0);
	}
	run_until_idle(_metadata, ring);
	for (int i = 0; i < ROUNDS; i++) {
		ASSERT_EQ(t[i].calls, 1);
		ASSERT_EQ(t[i].last_res, -ECANCELED);
		ASSERT_EQ(t[i].more_calls, 0);
	}
	/* A handle that ended cannot be cancelled. */
	EXPECT_EQ(px_ring_cancel(ring, op), -ENOENT);
	px_ring_destroy(ring);
	close(lfd);
}

TEST(ring_cancel_fd_and_all)
{
	struct tally acc[4] = {0}, tm[3] = {0}, by_fd = {0}, all = {0};
	struct px_ring *ring;
	int lfd[2], ret;

	ret = px_ring_create(NULL, &ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	lfd[0] = listen_loopback();
	lfd[1] = listen_loopback();
	ASSERT_GE(lfd[0], 0);
	ASSERT_GE(lfd[1], 0);
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(px_ring_accept(ring, lfd[i / 2], 0, count_end,
					 &acc[i], NULL),
			  0);
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(px_ring_timer(ring, 10ull * 1000000000, 0, count_end,
					&tm[i], NULL),
			  0);
	ASSERT_GE(px_ring_run_once(ring, 0), 0);

	/* By fd: only the two accepts on the first listener. */
	ASSERT_EQ(px_ring_cancel_fd(ring, lfd[0], count_end, &by_fd), 0);
	while (by_fd.calls == 0)
		ASSERT_GE(px_ring_run_once(ring, 1000 * 1000000LL), 0);
	EXPECT_EQ(by_fd.last_res, 2);
	while (acc[0].calls + acc[1].calls < 2)
		ASSERT_GE(px_ring_run_once(ring, 1000 * 1000000LL), 0);
	EXPECT_EQ(acc[0].last_res, -ECANCELED);
	EXPECT_EQ(acc[2].calls + acc[3].calls, 0);

	/* Everything else. */
	ASSERT_EQ(px_ring_cancel_all(ring, count_end, &all), 0);
	run_until_idle(_metadata, ring);
	EXPECT_EQ(all.last_res, 5);
	for (int i = 0; i < 4; i++)
		EXPECT_EQ(acc[i].calls, 1);
	for (int i = 0; i < 3; i++) {
		EXPECT_EQ(tm[i].calls, 1);
		EXPECT_EQ(tm[i].last_res, -ECANCELED);
	}
	px_ring_destroy(ring);
	close(lfd[0]);
	close(lfd[1]);
}

struct self_cancel {
	struct px_ring_op *op;
	int ticks;
	int ends;
	int end_res;
};

static void
tick_then_cancel(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct self_cancel *s = ctx;

	if (!more) {
		s->ends++;
		s->end_res = res;
		return;
	}
	if (++s->ticks == 3)
		px_ring_cancel(ring, s->op);
}

TEST(ring_periodic_timer_cancelled_from_its_callback)
{
	struct self_cancel s = {0};
	struct px_ring *ring;
	int ret;

	ret = px_ring_create(NULL, &ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	ASSERT_EQ(px_ring_timer(ring, 2000000, PX_RING_TIMER_PERIODIC,
				tick_then_cancel, &s, &s.op),
		  0);
	while (!s.ends)
		ASSERT_GE(px_ring_run_once(ring, 1000 * 1000000LL), 0);
	EXPECT_EQ(s.ticks, 3);
	EXPECT_EQ(s.ends, 1);
	EXPECT_EQ(s.end_res, -ECANCELED);
	px_ring_destroy(ring);
}

TEST(ring_destroy_ends_pending_operations)
{
	struct tally t[3] = {0};
	struct px_ring *ring;
	int lfd, ret;

	ret = px_ring_create(NULL, &ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	lfd = listen_loopback();
	ASSERT_GE(lfd, 0);
	ASSERT_EQ(px_ring_accept(ring, lfd, 0, count_end, &t[0], NULL), 0);
	ASSERT_EQ(
	    px_ring_timer(ring, 10ull * 1000000000, 0, count_end, &t[1], NULL),
	    0);
	ASSERT_EQ(px_ring_timer(ring, 1000000, PX_RING_TIMER_PERIODIC,
				count_end, &t[2], NULL),
		  0);
	ASSERT_GE(px_ring_run_once(ring, 0), 0);
	px_ring_destroy(ring);
	for (int i = 0; i < 3; i++) {
		EXPECT_EQ(t[i].calls, 1);
		EXPECT_EQ(t[i].last_res, -ECANCELED);
	}
	close(lfd);
}

static void
ignore_end(struct px_ring *ring, int res, bool more, void *ctx)
{
}

/*
 * With an SQ polling thread the SQ can stay full after a flush, so a
 * cancel may find no SQE.  Queue long timers until one is refused;
 * returns false when the thread kept up (the test then skips).
 */
static bool
fill_sq(struct px_ring *ring)
{
	for (int i = 0; i < 4096; i++)
		if (px_ring_timer(ring, 60 * 1000000000ull, 0, ignore_end, NULL,
				  NULL) == -EBUSY)
			return true;
	return false;
}

static struct px_ring *
sqpoll_ring(void)
{
	struct px_ring_opts o;
	struct px_ring *ring;

	px_ring_opts_init(&o);
	o.flags |= PX_RING_SQPOLL;
	o.sq_entries = 8;
	o.sqpoll_idle_ms = 1; /* do not keep a core busy after the test */
	return px_ring_create(&o, &ring) < 0 ? NULL : ring;
}

/*
 * A cancel refused with -EBUSY changes nothing: the next call submits
 * it, and the multishot accept (which no completion would otherwise
 * end) reports its end.
 */
TEST(ring_cancel_after_ebusy_is_submitted_on_retry)
{
	struct tally t = {0};
	struct px_ring_op *op;
	struct px_ring *ring;
	int lfd, ret;

	ring = sqpoll_ring();
	if (!ring)
		SKIP(return, "no SQPOLL ring");
	lfd = listen_loopback();
	ASSERT_GE(lfd, 0);
	ASSERT_EQ(px_ring_accept(ring, lfd, 0, count_end, &t, &op), 0);
	ASSERT_GE(px_ring_run_once(ring, 10 * 1000000LL), 0);
	if (!fill_sq(ring) || (ret = px_ring_cancel(ring, op)) != -EBUSY) {
		px_ring_destroy(ring);
		close(lfd);
		SKIP(return, "the SQ thread kept the SQ from filling");
	}
	/* Until the SQ thread has made room again. */
	do
		ASSERT_GE(px_ring_run_once(ring, 10 * 1000000LL), 0);
	while ((ret = px_ring_cancel(ring, op)) == -EBUSY);
	ASSERT_EQ(ret, 0);
	EXPECT_EQ(t.calls, 0);
	for (int i = 0; i < 100 && !t.calls; i++)
		ASSERT_GE(px_ring_run_once(ring, 10 * 1000000LL), 0);
	EXPECT_EQ(t.calls, 1);
	EXPECT_EQ(t.last_res, -ECANCELED);
	px_ring_destroy(ring);
	close(lfd);
}

static void
stop_recv(struct px_ring_conn *conn, struct px_ring_buf *buf, int res,
	  void *ctx)
{
	struct tally *t = ctx;

	if (buf) {
		px_ring_buf_put(px_ring_conn_ring(conn), buf);
		return;
	}
	t->calls++;
	t->last_res = res;
}

/* The same for px_ring_conn_recv_stop(). */
TEST(ring_recv_stop_after_ebusy_is_submitted_on_retry)
{
	struct tally t = {0};
	struct px_ring_conn *conn;
	struct px_ring *ring;
	int sv[2], ret;

	ring = sqpoll_ring();
	if (!ring)
		SKIP(return, "no SQPOLL ring");
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ASSERT_EQ(px_ring_conn_create(ring, sv[0], 0, stop_recv, &t, &conn), 0);
	ASSERT_EQ(px_ring_conn_recv_start(conn), 0);
	ASSERT_GE(px_ring_run_once(ring, 10 * 1000000LL), 0);
	if (!fill_sq(ring) || (ret = px_ring_conn_recv_stop(conn)) != -EBUSY) {
		px_ring_destroy(ring);
		close(sv[1]);
		SKIP(return, "the SQ thread kept the SQ from filling");
	}
	do
		ASSERT_GE(px_ring_run_once(ring, 10 * 1000000LL), 0);
	while ((ret = px_ring_conn_recv_stop(conn)) == -EBUSY);
	ASSERT_EQ(ret, 0);
	EXPECT_EQ(t.calls, 0);
	for (int i = 0; i < 100 && !t.calls; i++)
		ASSERT_GE(px_ring_run_once(ring, 10 * 1000000LL), 0);
	EXPECT_EQ(t.calls, 1);
	EXPECT_EQ(t.last_res, -ECANCELED);
	px_ring_destroy(ring);
	close(sv[1]);
}

TEST_HARNESS_MAIN
