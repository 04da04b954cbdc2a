// SPDX-License-Identifier: MIT
/*
 * px_ring_conn_recv_check(): the restart of a multishot recv whose socket
 * has ended (peer reset or shut down) while the recv is still in the
 * kernel.  Some kernels leave such a recv parked for good after it
 * delivered data (pxcached kept reset connections open); the check must
 * then make the owner see the end, once, never the -ECANCELED of the
 * restart.  The tests check the socket before the ring reaps the end,
 * so the recv is still armed from the ring's point of view, which is
 * the state a parked recv leaves behind.  recv_restarts counts only the
 * recvs the check really cancelled and armed again; a check that raced
 * the recv's own end (a late completion, harmless) is counted in
 * recv_check_late instead.  TCP on 127.0.0.1.
 */
#include <liburing.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <patinox/error.h>
#include <patinox/ring.h>

#include "harness.h"
#include "loopback.h"

#define WAIT_NS (1000 * 1000000LL)

struct seen {
	char data[64];
	size_t len;
	int ends;
	int end_res;
};

static void
seen_recv(struct px_ring_conn *conn, struct px_ring_buf *buf, int res,
	  void *ctx)
{
	struct seen *s = ctx;

	if (!buf) {
		s->ends++;
		s->end_res = res;
		return;
	}
	if (s->len + (size_t)res <= sizeof(s->data)) {
		memcpy(s->data + s->len, buf->data, (size_t)res);
		s->len += (size_t)res;
	}
	px_ring_buf_put(px_ring_conn_ring(conn), buf);
}

/* A connected pair on 127.0.0.1: *srv for the ring, *cli for the test. */
static int
tcp_pair(int *srv, int *cli)
{
	uint16_t port;
	int lfd = loopback_listen(1, &port);

	if (lfd < 0)
		return -1;
	*cli = loopback_connect(port);
	*srv = *cli < 0 ? -1 : accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	close(lfd);
	if (*srv >= 0)
		return 0;
	if (*cli >= 0)
		close(*cli);
	return -1;
}

/* Waits (without the ring) until the kernel shows the socket's end. */
static bool
ended(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};

	return poll(&p, 1, 1000) == 1 &&
	       (p.revents & (POLLERR | POLLHUP | POLLRDHUP));
}

static void
reset(int fd)
{
	struct linger l = {.l_onoff = 1, .l_linger = 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

FIXTURE(rc)
{
	struct px_ring *ring;
	struct px_ring_conn *conn;
	struct seen seen;
	int srv, cli;
};

FIXTURE_SETUP(rc)
{
	int ret = px_ring_create(NULL, &self->ring);

	self->cli = -1;
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	ASSERT_EQ(tcp_pair(&self->srv, &self->cli), 0);
	ASSERT_EQ(px_ring_conn_create(self->ring, self->srv, 0, seen_recv,
				      &self->seen, &self->conn),
		  0);
	ASSERT_EQ(px_ring_conn_recv_start(self->conn), 0);
	/* Data first, delivered: the state in which the kernel parked. */
	ASSERT_EQ(write(self->cli, "mg k v", 6), 6);
	while (self->seen.len < 6)
		ASSERT_GE(px_ring_run_once(self->ring, WAIT_NS), 0);
}

FIXTURE_TEARDOWN(rc)
{
	if (self->ring)
		px_ring_destroy(self->ring);
	if (self->cli >= 0)
		close(self->cli);
}

static uint64_t
restarts(struct px_ring *ring)
{
	struct px_ring_stats st;

	px_ring_stats_get(ring, &st);
	return st.recv_restarts;
}

static uint64_t
late(struct px_ring *ring)
{
	struct px_ring_stats st;

	px_ring_stats_get(ring, &st);
	return st.recv_check_late;
}

/* Runs the ring until the owner saw the end of the recv. */
static void
run_to_end(struct px_ring *ring, struct seen *s)
{
	for (int i = 0; i < 50 && !s->ends; i++)
		if (px_ring_run_once(ring, 100 * 1000000LL) < 0)
			return;
}

TEST_F(rc, a_live_socket_is_left_alone)
{
	EXPECT_EQ(px_ring_conn_recv_check(self->conn), 0);
	ASSERT_EQ(write(self->cli, "\r\n", 2), 2);
	while (self->seen.len < 8)
		ASSERT_GE(px_ring_run_once(self->ring, WAIT_NS), 0);
	EXPECT_EQ(memcmp(self->seen.data, "mg k v\r\n", 8), 0);
	EXPECT_EQ(self->seen.ends, 0);
	EXPECT_EQ(restarts(self->ring), 0);
}

TEST_F(rc, a_reset_socket_restarts_the_recv_and_ends_it_once)
{
	reset(self->cli);
	self->cli = -1;
	ASSERT_TRUE(ended(self->srv));
	/* Not reaped yet: to the ring the recv is still in the kernel. */
	EXPECT_EQ(px_ring_conn_recv_check(self->conn), 1);
	EXPECT_EQ(px_ring_conn_recv_check(self->conn), 0); /* once */
	run_to_end(self->ring, &self->seen);
	EXPECT_EQ(self->seen.ends, 1);
	EXPECT_NE(self->seen.end_res, -ECANCELED);
	EXPECT_LE(self->seen.end_res, 0);
	/* With DEFER_TASKRUN the recv's end waits for the ring's next wait,
	 * after the cancel is submitted: the cancel ends the parked recv and
	 * it is restarted.  Otherwise either may come first. */
	if (px_ring_setup_flags(self->ring) & IORING_SETUP_DEFER_TASKRUN) {
		EXPECT_EQ(restarts(self->ring), 1);
		EXPECT_EQ(late(self->ring), 0);
	} else {
		EXPECT_EQ(restarts(self->ring) + late(self->ring), 1);
	}
	/* Nothing more comes, and the close completes. */
	ASSERT_GE(px_ring_run_once(self->ring, 20 * 1000000LL), 0);
	EXPECT_EQ(self->seen.ends, 1);
}

TEST_F(rc, a_peer_shutdown_ends_the_recv_with_eof_after_the_data)
{
	ASSERT_EQ(write(self->cli, "\r\nget", 5), 5);
	ASSERT_EQ(shutdown(self->cli, SHUT_WR), 0);
	ASSERT_TRUE(ended(self->srv));
	EXPECT_EQ(px_ring_conn_recv_check(self->conn), 1);
	run_to_end(self->ring, &self->seen);
	EXPECT_EQ(self->seen.ends, 1);
	EXPECT_EQ(self->seen.end_res, 0);
	ASSERT_EQ(self->seen.len, 11);
	EXPECT_EQ(memcmp(self->seen.data, "mg k v\r\nget", 11), 0);
}

/*
 * A recv that was not parked: its end (the reset) was delivered before
 * the check, only not reaped yet.  Without DEFER_TASKRUN the kernel posts
 * that completion as the poll() in ended() returns to user space, so the
 * check's cancel finds nothing to cancel: the owner sees the reset, and
 * it is counted as a late completion, not as a restart (it was counted
 * as one before).
 */
TEST(a_late_completion_is_not_counted_as_a_restart)
{
	struct px_ring_opts o;
	struct px_ring *ring;
	struct px_ring_conn *conn;
	struct seen seen = {0};
	int srv, cli, ret;

	px_ring_opts_init(&o);
	o.flags |= PX_RING_NO_DEFER;
	ret = px_ring_create(&o, &ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	ASSERT_EQ(tcp_pair(&srv, &cli), 0);
	ASSERT_EQ(px_ring_conn_create(ring, srv, 0, seen_recv, &seen, &conn),
		  0);
	ASSERT_EQ(px_ring_conn_recv_start(conn), 0);
	ASSERT_EQ(write(cli, "mg k v", 6), 6);
	while (seen.len < 6)
		ASSERT_GE(px_ring_run_once(ring, WAIT_NS), 0);
	reset(cli);
	ASSERT_TRUE(ended(srv));
	usleep(10000); /* more returns to user space, to run task work */
	EXPECT_EQ(px_ring_conn_recv_check(conn), 1);
	run_to_end(ring, &seen);
	EXPECT_EQ(seen.ends, 1);
	EXPECT_EQ(seen.end_res, -ECONNRESET);
	EXPECT_EQ(restarts(ring), 0);
	EXPECT_EQ(late(ring), 1);
	px_ring_destroy(ring);
}

TEST_F(rc, a_stopped_recv_is_not_restarted)
{
	ASSERT_EQ(px_ring_conn_recv_stop(self->conn), 0);
	reset(self->cli);
	self->cli = -1;
	ASSERT_TRUE(ended(self->srv));
	EXPECT_EQ(px_ring_conn_recv_check(self->conn), 0);
	run_to_end(self->ring, &self->seen);
	EXPECT_EQ(self->seen.ends, 1);
	EXPECT_EQ(restarts(self->ring), 0);
}

TEST_HARNESS_MAIN
