// SPDX-License-Identifier: MIT
/*
 * Buffer-ring exhaustion and recovery.  A ring with a handful of small
 * provided buffers receives far more data than they hold while the
 * consumer keeps every buffer until all are out: the multishot recv hits
 * -ENOBUFS, the data waits in the socket, and when the consumer gives the
 * buffers back the recv resumes.  Every byte must arrive once, in order.
 */
#include <sys/socket.h>

#include <patinox/error.h>
#include <patinox/ring.h>

#include "harness.h"

#define NR_BUFS  4
#define BUF_SIZE 64
#define TOTAL    (48 * 1024)

static uint8_t
pattern(size_t off)
{
	return (uint8_t)(off * 7 + (off >> 9));
}

struct consumer {
	struct px_ring *ring;
	struct px_ring_buf *held[NR_BUFS];
	int nheld;
	size_t got;
	bool bad;
	int eof;
	int releases;
};

static void
release_all(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct consumer *c = ctx;

	for (int i = 0; i < c->nheld; i++) {
		for (uint32_t j = 0; j < c->held[i]->len; j++)
			if (((uint8_t *)c->held[i]->data)[j] !=
			    pattern(c->got + j))
				c->bad = true;
		c->got += c->held[i]->len;
		px_ring_buf_put(ring, c->held[i]);
	}
	c->nheld = 0;
	c->releases++;
}

/* Hold every buffer; give them all back only when none is left. */
static void
hoard_recv(struct px_ring_conn *conn, struct px_ring_buf *buf, int res,
	   void *ctx)
{
	struct consumer *c = ctx;

	if (res <= 0) {
		c->eof = res == 0 ? 1 : res;
		return;
	}
	if (c->nheld == NR_BUFS) {
		c->bad = true;
		return;
	}
	c->held[c->nheld++] = buf;
	if (c->nheld == NR_BUFS)
		px_ring_timer(c->ring, 1000000, 0, release_all, c, NULL);
}

static int
create_small_ring(struct px_ring **ring)
{
	struct px_ring_opts o;

	px_ring_opts_init(&o);
	o.buf_count = NR_BUFS;
	o.buf_size = BUF_SIZE;
	return px_ring_create(&o, ring);
}

TEST_T(ring_bufring_exhaustion_recovers_every_byte_in_order, 60)
{
	static uint8_t data[TOTAL];
	struct consumer c = {0};
	struct px_ring_stats st;
	struct px_ring_conn *conn;
	struct px_ring *ring;
	size_t off = 0;
	int sv[2], ret;

	ret = create_small_ring(&ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	c.ring = ring;
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	for (size_t i = 0; i < TOTAL; i++)
		data[i] = pattern(i);
	while (off < TOTAL) {
		ssize_t n = write(sv[1], data + off, TOTAL - off);

		ASSERT_GT(n, 0);
		off += (size_t)n;
	}
	close(sv[1]);
	ASSERT_EQ(px_ring_conn_create(ring, sv[0], 0, hoard_recv, &c, &conn),
		  0);
	ASSERT_EQ(px_ring_conn_recv_start(conn), 0);
	while (!c.eof)
		ASSERT_GE(px_ring_run_once(ring, 1000 * 1000000LL), 0);
	release_all(ring, 0, false, &c);

	EXPECT_EQ(c.eof, 1);
	EXPECT_EQ(c.got, TOTAL);
	EXPECT_FALSE(c.bad);
	px_ring_stats_get(ring, &st);
	TH_LOG("recv re-armed after -ENOBUFS %llu times, %d releases",
	       (unsigned long long)st.enobufs, c.releases);
	EXPECT_GT(st.enobufs, 0);
	px_ring_destroy(ring);
}

/* Two connections starve each other; both must still get everything. */
TEST_T(ring_bufring_shared_by_two_connections, 60)
{
	static uint8_t data[TOTAL];
	struct consumer c[2] = {0};
	struct px_ring_conn *conn[2];
	struct px_ring *ring;
	int sv[2][2], ret;

	ret = create_small_ring(&ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	for (size_t i = 0; i < TOTAL; i++)
		data[i] = pattern(i);
	for (int k = 0; k < 2; k++) {
		size_t off = 0;

		c[k].ring = ring;
		ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[k]), 0);
		while (off < TOTAL / 2) {
			ssize_t n =
			    write(sv[k][1], data + off, TOTAL / 2 - off);

			ASSERT_GT(n, 0);
			off += (size_t)n;
		}
		close(sv[k][1]);
		ASSERT_EQ(px_ring_conn_create(ring, sv[k][0], 0, hoard_recv,
					      &c[k], &conn[k]),
			  0);
		ASSERT_EQ(px_ring_conn_recv_start(conn[k]), 0);
	}
	/* One hoarder may hold fewer than NR_BUFS forever: release on idle. */
	while (!c[0].eof || !c[1].eof) {
		ASSERT_GE(px_ring_run_once(ring, 20 * 1000000LL), 0);
		for (int k = 0; k < 2; k++)
			if (c[k].nheld)
				release_all(ring, 0, false, &c[k]);
	}
	for (int k = 0; k < 2; k++) {
		release_all(ring, 0, false, &c[k]);
		EXPECT_EQ(c[k].got, TOTAL / 2);
		EXPECT_FALSE(c[k].bad);
	}
	px_ring_destroy(ring);
}

TEST_HARNESS_MAIN
