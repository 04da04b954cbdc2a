// SPDX-License-Identifier: MIT
/*
 * Short sends: with a tiny SO_SNDBUF on the sender and a slow reader, the
 * kernel accepts only part of each sendmsg.  The connection must resubmit
 * the rest, keep queued sends in order, call each send's callback once
 * with its full size, and deliver every byte in order.
 */
#include <pthread.h>
#include <sys/socket.h>

#include <patinox/error.h>
#include <patinox/ring.h>

#include "harness.h"

#define NR_SENDS  64
#define CHUNK     (16 * 1024)
#define TOTAL     ((size_t)NR_SENDS * CHUNK)
#define SLOW_READ 1500

static uint8_t
pattern(size_t off)
{
	return (uint8_t)(off * 31 + (off >> 8));
}

struct reader {
	int fd;
	size_t got;
	bool bad;
};

/* A deliberately slow reader, so the sender's buffer stays full. */
static void *
reader_main(void *arg)
{
	struct reader *rd = arg;
	uint8_t buf[SLOW_READ];

	while (rd->got < TOTAL) {
		ssize_t n = read(rd->fd, buf, sizeof(buf));

		if (n <= 0) {
			rd->bad = true;
			break;
		}
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != pattern(rd->got + (size_t)i))
				rd->bad = true;
		rd->got += (size_t)n;
		if ((rd->got / SLOW_READ) % 16 == 0)
			usleep(200);
	}
	return NULL;
}

struct sender {
	int next_done;
	int calls[NR_SENDS];
	int res[NR_SENDS];
	bool order_bad;
};

struct send_ctx {
	struct sender *s;
	int index;
};

static void
send_done(struct px_ring_conn *conn, int res, void *ctx)
{
	struct send_ctx *sc = ctx;

	if (sc->index != sc->s->next_done)
		sc->s->order_bad = true;
	sc->s->next_done++;
	sc->s->calls[sc->index]++;
	sc->s->res[sc->index] = res;
}

TEST_T(ring_short_sends_resubmitted_in_order, 60)
{
	static uint8_t data[TOTAL];
	static struct send_ctx ctx[NR_SENDS];
	struct sender s = {0};
	struct reader rd = {0};
	struct px_ring_stats st;
	struct px_ring_conn *conn;
	struct px_ring *ring;
	pthread_t tid;
	int sv[2], small = 4096, ret;

	ret = px_ring_create(NULL, &ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ASSERT_EQ(
	    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	ASSERT_EQ(
	    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	for (size_t i = 0; i < TOTAL; i++)
		data[i] = pattern(i);
	ASSERT_EQ(px_ring_conn_create(ring, sv[0], 0, NULL, NULL, &conn), 0);

	/* Each send in three pieces, so partial iovecs get exercised. */
	for (int i = 0; i < NR_SENDS; i++) {
		uint8_t *p = data + (size_t)i * CHUNK;
		struct iovec iov[3] = {{p, 100},
				       {p + 100, CHUNK - 1100},
				       {p + CHUNK - 1000, 1000}};

		ctx[i].s = &s;
		ctx[i].index = i;
		ASSERT_EQ(px_ring_conn_send(conn, iov, 3, send_done, &ctx[i]),
			  0);
	}
	EXPECT_EQ(px_ring_conn_sends_pending(conn), NR_SENDS);
	rd.fd = sv[1];
	ASSERT_EQ(pthread_create(&tid, NULL, reader_main, &rd), 0);
	while (s.next_done < NR_SENDS)
		ASSERT_GE(px_ring_run_once(ring, 1000 * 1000000LL), 0);
	pthread_join(tid, NULL);

	EXPECT_FALSE(s.order_bad);
	for (int i = 0; i < NR_SENDS; i++) {
		EXPECT_EQ(s.calls[i], 1);
		EXPECT_EQ(s.res[i], CHUNK);
	}
	EXPECT_EQ(rd.got, TOTAL);
	EXPECT_FALSE(rd.bad);
	px_ring_stats_get(ring, &st);
	TH_LOG("short sends resubmitted: %llu",
	       (unsigned long long)st.short_sends);
	EXPECT_GT(st.short_sends, 0);
	EXPECT_EQ(px_ring_conn_sends_pending(conn), 0);
	px_ring_destroy(ring);
	close(sv[1]);
}

TEST(ring_send_after_peer_reset_fails_every_queued_send)
{
	static uint8_t data[CHUNK];
	static struct send_ctx ctx[8];
	struct sender s = {0};
	struct px_ring_conn *conn;
	struct px_ring *ring;
	struct iovec iov = {data, sizeof(data)};
	int sv[2], ret;

	ret = px_ring_create(NULL, &ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	ASSERT_EQ(px_ring_conn_create(ring, sv[0], 0, NULL, NULL, &conn), 0);
	for (int i = 0; i < 8; i++) {
		ctx[i].s = &s;
		ctx[i].index = i;
		ASSERT_EQ(px_ring_conn_send(conn, &iov, 1, send_done, &ctx[i]),
			  0);
	}
	while (s.next_done < 8)
		ASSERT_GE(px_ring_run_once(ring, 1000 * 1000000LL), 0);
	EXPECT_FALSE(s.order_bad);
	for (int i = 0; i < 8; i++) {
		EXPECT_EQ(s.calls[i], 1);
		EXPECT_EQ(s.res[i], -EPIPE);
	}
	/* The stream is broken: later sends are refused at once. */
	EXPECT_EQ(px_ring_conn_send(conn, &iov, 1, send_done, &ctx[0]), -EPIPE);
	px_ring_destroy(ring);
}

static void
count_send(struct px_ring_conn *conn, int res, void *ctx)
{
	(*(int *)ctx)++;
}

/*
 * Lengths whose sum wraps size_t ({SIZE_MAX, 2} adds up to 1) or passes
 * INT32_MAX are refused at once, and their callback never runs.
 */
TEST(ring_send_rejects_iovec_lengths_that_overflow)
{
	static char data[8];
	struct iovec wrap[2] = {{data, SIZE_MAX}, {data, 2}};
	struct iovec big[2] = {{data, INT32_MAX}, {data, 1}};
	struct px_ring_conn *conn;
	struct px_ring *ring;
	int sv[2], calls = 0, ret;

	ret = px_ring_create(NULL, &ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ASSERT_EQ(px_ring_conn_create(ring, sv[0], 0, NULL, NULL, &conn), 0);
	EXPECT_EQ(px_ring_conn_send(conn, wrap, 2, count_send, &calls),
		  -EINVAL);
	EXPECT_EQ(px_ring_conn_send(conn, big, 2, count_send, &calls), -EINVAL);
	EXPECT_EQ(px_ring_conn_sends_pending(conn), 0);
	ASSERT_GE(px_ring_run_once(ring, 20 * 1000000LL), 0);
	EXPECT_EQ(calls, 0);
	/* The connection is still usable. */
	ASSERT_EQ(px_ring_conn_send(conn, &wrap[1], 1, count_send, &calls), 0);
	while (calls < 1)
		ASSERT_GE(px_ring_run_once(ring, 1000 * 1000000LL), 0);
	EXPECT_EQ(read(sv[1], data, sizeof(data)), 2);
	px_ring_destroy(ring);
	close(sv[1]);
}

TEST_HARNESS_MAIN
