// SPDX-License-Identifier: MIT
/*
 * A ring belongs to the thread that created it.  Every call that submits
 * or runs work, on the ring or on one of its connections, returns -EXDEV
 * from any other thread and changes nothing: the owner goes on using the
 * ring and the connection as if the foreign calls had not happened.
 * Before, a foreign thread raced the owner on the SQ and the operation
 * records (or the kernel refused the submission later, with an EEXIST
 * that blamed the owner's next call).  px_ring_post() stays the way in
 * from other threads (from the caller's own ring), and the counters stay
 * readable from anywhere.  Socketpairs and 127.0.0.1 only.
 */
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <patinox/error.h>
#include <patinox/ring.h>

#include "harness.h"

#define WAIT_NS (1000 * 1000000LL)

struct shared {
	struct px_ring *ring;      /* the main thread's */
	struct px_ring_conn *conn; /* on it */
	int spare_fd; /* for foreign calls; px_ring_conn_create closes it */
	int rets[20]; /* what each foreign call returned */
	int nrets;
	int spare_closed;  /* the failed conn_create closed its fd */
	int stats_ok;      /* counters read from the foreign thread */
	int post_ret;      /* px_ring_post from the thread's own ring */
	int posts_arrived; /* run on the main thread */
	pthread_t main;
	int wrong_thread;
};

static void
noop(struct px_ring *ring, int res, bool more, void *ctx)
{
}

static void
on_recv(struct px_ring_conn *conn, struct px_ring_buf *buf, int res, void *ctx)
{
	if (buf)
		px_ring_buf_put(px_ring_conn_ring(conn), buf);
}

static void
arrived(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct shared *sh = ctx;

	if (res < 0)
		return;
	if (!pthread_equal(pthread_self(), sh->main))
		sh->wrong_thread++;
	sh->posts_arrived++;
}

/* Every checked entry point, called with the main thread's ring. */
static void
foreign_calls(struct shared *sh)
{
	struct px_ring *r = sh->ring;
	struct px_ring_conn *c = sh->conn, *nc = NULL;
	struct px_ring_op *op = NULL;
	struct iovec iov = {.iov_base = "x", .iov_len = 1};
	int *out = sh->rets;

	*out++ = px_ring_submit(r);
	*out++ = px_ring_run_once(r, 0);
	*out++ = px_ring_run(r);
	*out++ = px_ring_defer(r, noop, NULL);
	*out++ = px_ring_timer(r, 1000000, 0, noop, NULL, &op);
	*out++ = px_ring_accept(r, sh->spare_fd, 0, noop, NULL, &op);
	*out++ = px_ring_cancel_fd(r, sh->spare_fd, noop, NULL);
	*out++ = px_ring_cancel_all(r, noop, NULL);
	*out++ = px_ring_close_fd(r, sh->spare_fd, false, noop, NULL);
	*out++ = px_ring_post(r, r, noop, NULL);
	*out++ = px_ring_conn_create(r, sh->spare_fd, 0, on_recv, NULL, &nc);
	*out++ = px_ring_conn_recv_start(c);
	*out++ = px_ring_conn_recv_stop(c);
	*out++ = px_ring_conn_recv_check(c);
	*out++ = px_ring_conn_send(c, &iov, 1, NULL, NULL);
	*out++ = px_ring_conn_close(c, NULL, NULL);
	sh->nrets = (int)(out - sh->rets);
	sh->spare_closed = fcntl(sh->spare_fd, F_GETFD) < 0 && !nc;
	sh->spare_fd = -1;
}

static void *
foreign_main(void *arg)
{
	struct shared *sh = arg;
	struct px_ring_stats st;
	struct px_ring_opts o;
	struct px_ring *mine;

	foreign_calls(sh);
	px_ring_stats_get(sh->ring, &st);
	sh->stats_ok = st.conns == 1;

	/* The documented way in: a message from this thread's own ring. */
	px_ring_opts_init(&o);
	o.flags |= PX_RING_NO_BUF_RING;
	o.sq_entries = 8;
	sh->post_ret = px_ring_create(&o, &mine);
	if (sh->post_ret == 0) {
		sh->post_ret = px_ring_post(mine, sh->ring, arrived, sh);
		px_ring_run_once(mine, WAIT_NS);
		px_ring_destroy(mine);
	}
	return NULL;
}

FIXTURE(owner)
{
	struct shared sh;
	int peer; /* the other end of the connection's socketpair */
};

FIXTURE_SETUP(owner)
{
	int sv[2], ret = px_ring_create(NULL, &self->sh.ring);

	self->peer = -1;
	self->sh.spare_fd = -1;
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	self->sh.main = pthread_self();
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	self->peer = sv[1];
	ASSERT_EQ(px_ring_conn_create(self->sh.ring, sv[0], 0, on_recv, NULL,
				      &self->sh.conn),
		  0);
	ASSERT_EQ(px_ring_conn_recv_start(self->sh.conn), 0);
	self->sh.spare_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_GE(self->sh.spare_fd, 0);
}

FIXTURE_TEARDOWN(owner)
{
	if (self->sh.ring)
		px_ring_destroy(self->sh.ring);
	if (self->peer >= 0)
		close(self->peer);
	if (self->sh.spare_fd >= 0)
		close(self->sh.spare_fd);
}

TEST_F(owner, foreign_calls_get_exdev_and_change_nothing)
{
	pthread_t t;
	char buf[8];
	int i;

	ASSERT_EQ(pthread_create(&t, NULL, foreign_main, &self->sh), 0);
	ASSERT_EQ(pthread_join(t, NULL), 0);
	ASSERT_EQ(self->sh.nrets, 16);
	for (i = 0; i < self->sh.nrets; i++) {
		if (self->sh.rets[i] != -EXDEV)
			TH_LOG("foreign call %d returned %d", i,
			       self->sh.rets[i]);
		EXPECT_EQ(self->sh.rets[i], -EXDEV);
	}
	EXPECT_TRUE(self->sh.spare_closed);
	EXPECT_TRUE(self->sh.stats_ok);

	/* The owner's connection still receives, sends and closes. */
	ASSERT_EQ(write(self->peer, "ping", 4), 4);
	ASSERT_EQ(px_ring_conn_send(self->sh.conn, &(struct iovec){"pong", 4},
				    1, NULL, NULL),
		  0);
	ASSERT_GE(px_ring_run_once(self->sh.ring, WAIT_NS), 0);
	ASSERT_EQ(read(self->peer, buf, sizeof(buf)), 4);
	EXPECT_EQ(memcmp(buf, "pong", 4), 0);
	EXPECT_EQ(px_ring_conn_close(self->sh.conn, NULL, NULL), 0);
}

TEST_F(owner, a_post_from_another_threads_ring_runs_on_the_owner)
{
	pthread_t t;

	ASSERT_EQ(pthread_create(&t, NULL, foreign_main, &self->sh), 0);
	ASSERT_EQ(pthread_join(t, NULL), 0);
	ASSERT_EQ(self->sh.post_ret, 0);
	for (int i = 0; i < 50 && !self->sh.posts_arrived; i++)
		ASSERT_GE(px_ring_run_once(self->sh.ring, 20 * 1000000LL), 0);
	EXPECT_EQ(self->sh.posts_arrived, 1);
	EXPECT_EQ(self->sh.wrong_thread, 0);
}

TEST(the_error_is_explained)
{
	const char *s = px_strerror_in(PX_PART_RING, -EXDEV);

	EXPECT_NE(strstr(s, "EXDEV"), NULL);
	EXPECT_NE(strstr(s, "px_ring_post"), NULL);
}

TEST_HARNESS_MAIN
