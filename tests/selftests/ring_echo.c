// SPDX-License-Identifier: MIT
/*
 * An echo server on 127.0.0.1 built from px_ring: multishot accept, one
 * px_ring_conn per accepted socket with a multishot recv, echoes sent
 * back through the connection's send queue.  1,000 client connections on
 * the same ring each send a distinct message for several rounds and must
 * get exactly their own bytes back.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <liburing.h>

#include <patinox/error.h>
#include <patinox/ring.h>

#include "harness.h"
#include "loopback.h"

#define NR_CONNS  1000
#define ROUNDS    3
#define MSG_BYTES 48

struct server {
	struct px_ring *ring;
	uint32_t conn_flags;
	int accepted;
	int accept_errors;
	int closed;
};

struct echo_send {
	struct px_ring_buf *buf;
};

struct client {
	struct px_ring_conn *conn;
	char msg[MSG_BYTES];
	char got[MSG_BYTES];
	size_t have;
	int round;
	int *done;
	bool bad;
};

/* The echo sends the received buffer itself and returns it when sent. */
static void
echo_sent(struct px_ring_conn *conn, int res, void *ctx)
{
	px_ring_buf_put(px_ring_conn_ring(conn), ctx);
}

static void
server_closed(struct px_ring_conn *conn, int res, void *ctx)
{
	struct server *s = ctx;

	s->closed++;
}

static void
server_recv(struct px_ring_conn *conn, struct px_ring_buf *buf, int res,
	    void *ctx)
{
	struct iovec iov;

	if (res <= 0) {
		px_ring_conn_close(conn, server_closed, ctx);
		return;
	}
	iov.iov_base = buf->data;
	iov.iov_len = buf->len;
	if (px_ring_conn_send(conn, &iov, 1, echo_sent, buf) < 0) {
		px_ring_buf_put(px_ring_conn_ring(conn), buf);
		px_ring_conn_close(conn, server_closed, ctx);
	}
}

static void
server_accept(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct server *s = ctx;
	struct px_ring_conn *conn;

	if (res < 0) {
		s->accept_errors++;
		return;
	}
	if (px_ring_conn_create(ring, res, s->conn_flags, server_recv, s,
				&conn) == 0 &&
	    px_ring_conn_recv_start(conn) == 0)
		s->accepted++;
}

static void
client_send(struct client *c)
{
	struct iovec iov = {.iov_base = c->msg, .iov_len = sizeof(c->msg)};

	c->have = 0;
	snprintf(c->msg, sizeof(c->msg), "client %p round %d ........",
		 (void *)c, c->round);
	if (px_ring_conn_send(c->conn, &iov, 1, NULL, NULL) < 0)
		c->bad = true;
}

static void
client_recv(struct px_ring_conn *conn, struct px_ring_buf *buf, int res,
	    void *ctx)
{
	struct client *c = ctx;

	if (res <= 0) {
		c->bad = true;
		return;
	}
	if (c->have + buf->len > sizeof(c->got)) {
		c->bad = true;
	} else {
		memcpy(c->got + c->have, buf->data, buf->len);
		c->have += buf->len;
	}
	px_ring_buf_put(px_ring_conn_ring(conn), buf);
	if (c->have < sizeof(c->got))
		return;
	if (memcmp(c->got, c->msg, sizeof(c->msg)))
		c->bad = true;
	if (++c->round < ROUNDS)
		client_send(c);
	else
		(*c->done)++;
}

TEST_T(ring_echo_1000_connections, 60)
{
	static struct client clients[NR_CONNS];
	struct server srv = {0};
	struct px_ring_stats st;
	struct px_ring *ring;
	uint16_t port;
	int lfd, done = 0, bad = 0, ret;

	loopback_raise_nofile();
	ret = px_ring_create(NULL, &ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	srv.ring = ring;
	lfd = loopback_listen(4096, &port);
	ASSERT_GE(lfd, 0);
	ASSERT_EQ(px_ring_accept(ring, lfd, 0, server_accept, &srv, NULL), 0);

	for (int i = 0; i < NR_CONNS; i++) {
		int fd = loopback_connect(port);

		ASSERT_GE(fd, 0);
		clients[i].done = &done;
		ASSERT_EQ(px_ring_conn_create(ring, fd, 0, client_recv,
					      &clients[i], &clients[i].conn),
			  0);
		ASSERT_EQ(px_ring_conn_recv_start(clients[i].conn), 0);
		client_send(&clients[i]);
	}
	while (done < NR_CONNS) {
		ret = px_ring_run_once(ring, 1000 * 1000000LL);
		ASSERT_GE(ret, 0);
		for (int i = 0; i < NR_CONNS; i++)
			ASSERT_FALSE(clients[i].bad);
	}
	EXPECT_EQ(srv.accepted, NR_CONNS);
	EXPECT_EQ(srv.accept_errors, 0);

	/* Client closes make the server see EOF and close its side. */
	for (int i = 0; i < NR_CONNS; i++)
		ASSERT_EQ(px_ring_conn_close(clients[i].conn, NULL, NULL), 0);
	while (srv.closed < NR_CONNS)
		ASSERT_GE(px_ring_run_once(ring, 1000 * 1000000LL), 0);
	px_ring_stats_get(ring, &st);
	TH_LOG("submissions %llu completions %llu enters %llu enobufs %llu",
	       (unsigned long long)st.submissions,
	       (unsigned long long)st.completions,
	       (unsigned long long)st.enters, (unsigned long long)st.enobufs);
	EXPECT_EQ(st.conns, 0);
	EXPECT_EQ(bad, 0);
	px_ring_destroy(ring);
	close(lfd);
}

#define SMALL_CONNS 16

/* A small echo on a ring made with @o; returns through ASSERTs. */
static void
small_echo(struct __test_meta *_metadata, const struct px_ring_opts *o,
	   uint32_t accept_flags, uint32_t conn_flags, uint32_t want_setup)
{
	static struct client clients[SMALL_CONNS];
	struct server srv = {.conn_flags = conn_flags};
	struct px_ring *ring;
	uint16_t port;
	int lfd, done = 0, ret;

	memset(clients, 0, sizeof(clients));
	ret = px_ring_create(o, &ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	EXPECT_EQ(px_ring_setup_flags(ring) & want_setup, want_setup);
	lfd = loopback_listen(4096, &port);
	ASSERT_GE(lfd, 0);
	ASSERT_EQ(
	    px_ring_accept(ring, lfd, accept_flags, server_accept, &srv, NULL),
	    0);
	for (int i = 0; i < SMALL_CONNS; i++) {
		int fd = loopback_connect(port);

		ASSERT_GE(fd, 0);
		clients[i].done = &done;
		ASSERT_EQ(px_ring_conn_create(ring, fd, 0, client_recv,
					      &clients[i], &clients[i].conn),
			  0);
		ASSERT_EQ(px_ring_conn_recv_start(clients[i].conn), 0);
		client_send(&clients[i]);
	}
	while (done < SMALL_CONNS) {
		ASSERT_GE(px_ring_run_once(ring, 1000 * 1000000LL), 0);
		ASSERT_EQ(srv.accept_errors, 0);
		for (int i = 0; i < SMALL_CONNS; i++)
			ASSERT_FALSE(clients[i].bad);
	}
	EXPECT_EQ(srv.accepted, SMALL_CONNS);
	for (int i = 0; i < SMALL_CONNS; i++)
		ASSERT_EQ(px_ring_conn_close(clients[i].conn, NULL, NULL), 0);
	while (srv.closed < SMALL_CONNS)
		ASSERT_GE(px_ring_run_once(ring, 1000 * 1000000LL), 0);
	px_ring_destroy(ring);
	close(lfd);
}

/* The server side in the fixed-file table: accept direct, fixed slots. */
TEST_T(ring_echo_fixed_files, 60)
{
	struct px_ring_opts o;

	px_ring_opts_init(&o);
	o.fixed_files = 64;
	small_echo(_metadata, &o, PX_RING_ACCEPT_DIRECT, PX_RING_CONN_FIXED,
		   IORING_SETUP_DEFER_TASKRUN);
}

/* SQPOLL refuses the task-run flags: the chain ends at a plain SQPOLL. */
TEST_T(ring_echo_sqpoll, 60)
{
	struct px_ring_opts o;

	px_ring_opts_init(&o);
	o.flags |= PX_RING_SQPOLL;
	small_echo(_metadata, &o, 0, 0, IORING_SETUP_SQPOLL);
}

/* Kernels without DEFER_TASKRUN get COOP_TASKRUN: same behaviour. */
TEST_T(ring_echo_coop_taskrun, 60)
{
	struct px_ring_opts o;

	px_ring_opts_init(&o);
	o.flags |= PX_RING_NO_DEFER;
	small_echo(_metadata, &o, 0, 0, IORING_SETUP_COOP_TASKRUN);
}

TEST_HARNESS_MAIN
