// SPDX-License-Identifier: MIT
/*
 * Connect with a linked timeout, on 127.0.0.1 only: success against a
 * listener, -ECONNREFUSED from a port with no listener, and -ETIMEDOUT
 * against a listener whose accept queue is full (the kernel drops the
 * SYNs, so the connect would otherwise wait for the kernel's retries).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <patinox/error.h>
#include <patinox/ring.h>

#include "harness.h"

struct result {
	int calls;
	int res;
};

static void
connected(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct result *r = ctx;

	r->calls++;
	r->res = res;
}

static int
loopback_listener(int backlog, struct sockaddr_in *a)
{
	socklen_t len = sizeof(*a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)a, sizeof(*a)) ||
	    getsockname(fd, (struct sockaddr *)a, &len) ||
	    (backlog >= 0 && listen(fd, backlog))) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
ring_connect_sync(struct __test_meta *_metadata, struct px_ring *ring,
		  const struct sockaddr_in *a, uint32_t timeout_ms, int *fdp)
{
	struct result r = {0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	*fdp = fd;
	if (fd < 0)
		return -errno;
	if (px_ring_connect(ring, fd, (const struct sockaddr *)a, sizeof(*a),
			    timeout_ms, connected, &r, NULL))
		return -EINVAL;
	while (!r.calls)
		if (px_ring_run_once(ring, 1000 * 1000000LL) < 0)
			return -EIO;
	EXPECT_EQ(r.calls, 1);
	return r.res;
}

TEST(ring_connect_succeeds_against_listener)
{
	struct sockaddr_in a;
	struct px_ring *ring;
	int lfd, fd, ret;

	ret = px_ring_create(NULL, &ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	lfd = loopback_listener(16, &a);
	ASSERT_GE(lfd, 0);
	EXPECT_EQ(ring_connect_sync(_metadata, ring, &a, 1000, &fd), 0);
	close(fd);
	close(lfd);
	px_ring_destroy(ring);
}

TEST(ring_connect_refused_without_listener)
{
	struct sockaddr_in a;
	struct px_ring *ring;
	int hold, fd, ret;

	ret = px_ring_create(NULL, &ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	/* A bound socket that never listens keeps the port ours, unserved. */
	hold = loopback_listener(-1, &a);
	ASSERT_GE(hold, 0);
	EXPECT_EQ(ring_connect_sync(_metadata, ring, &a, 1000, &fd),
		  -ECONNREFUSED);
	close(fd);
	close(hold);
	px_ring_destroy(ring);
}

TEST_T(ring_connect_times_out_on_full_accept_queue, 30)
{
	struct sockaddr_in a;
	struct px_ring *ring;
	int lfd, fd, fill[4], ret;

	ret = px_ring_create(NULL, &ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	lfd = loopback_listener(0, &a);
	ASSERT_GE(lfd, 0);
	/* Fill the accept queue (backlog 0 holds one) and then some. */
	for (int i = 0; i < 4; i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		ASSERT_GE(fill[i], 0);
		connect(fill[i], (struct sockaddr *)&a, sizeof(a));
	}
	usleep(50 * 1000);
	EXPECT_EQ(ring_connect_sync(_metadata, ring, &a, 200, &fd), -ETIMEDOUT);
	close(fd);
	for (int i = 0; i < 4; i++)
		close(fill[i]);
	close(lfd);
	px_ring_destroy(ring);
}

TEST(ring_connect_cancelled)
{
	struct sockaddr_in a;
	struct result r = {0};
	struct px_ring_op *op;
	struct px_ring *ring;
	int lfd, fd, fill[4], ret;

	ret = px_ring_create(NULL, &ring);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	lfd = loopback_listener(0, &a);
	ASSERT_GE(lfd, 0);
	for (int i = 0; i < 4; i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		connect(fill[i], (struct sockaddr *)&a, sizeof(a));
	}
	usleep(50 * 1000);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_EQ(px_ring_connect(ring, fd, (struct sockaddr *)&a, sizeof(a),
				  10000, connected, &r, &op),
		  0);
	ASSERT_GE(px_ring_run_once(ring, 10 * 1000000LL), 0);
	ASSERT_EQ(px_ring_cancel(ring, op), 0);
	while (!r.calls)
		ASSERT_GE(px_ring_run_once(ring, 1000 * 1000000LL), 0);
	EXPECT_EQ(r.res, -ECANCELED);
	close(fd);
	for (int i = 0; i < 4; i++)
		close(fill[i]);
	close(lfd);
	px_ring_destroy(ring);
}

TEST_HARNESS_MAIN
