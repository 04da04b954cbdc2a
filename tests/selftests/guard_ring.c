// SPDX-License-Identifier: MIT
/*
 * The guard on a real ring: 100,000 fds released in bursts, shutdown
 * while operations are in flight on the fds (each close only after the
 * operation's completion), cleanup order, and the leak report.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <patinox/error.h>
#include <patinox/guard.h>
#include <patinox/ring.h>

#include "harness.h"

static bool
fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static int
loopback_listener(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(fd, 4) < 0)
		return -1;
	return fd;
}

FIXTURE(gr)
{
	struct px_ring *ring;
	struct px_guard *g;
};

FIXTURE_SETUP(gr)
{
	int ret = px_ring_create(NULL, &self->ring);

	if (ret < 0)
		SKIP(return, "no ring: %s", px_strerror_in(PX_PART_RING, ret));
	ASSERT_EQ(px_guard_create(self->ring, &self->g), 0);
}

FIXTURE_TEARDOWN(gr)
{
	px_guard_destroy(self->g);
	px_ring_destroy(self->ring);
}

static void
drain(struct px_ring *ring, struct px_guard *g)
{
	struct px_guard_stats st;

	for (int i = 0; i < 100000; i++) {
		px_guard_stats_get(g, &st);
		if (st.pending == 0)
			return;
		px_ring_run_once(ring, 10 * 1000000);
	}
}

TEST_F_T(gr, release_100k_fds_in_bursts, 120)
{
	enum { BURST = 1000, BURSTS = 100 };
	struct px_guard_res *res[BURST];
	struct px_guard_stats st;
	int fds[BURST];
	int base = open("/dev/null", O_RDONLY | O_CLOEXEC);

	ASSERT_GE(base, 0);
	for (int b = 0; b < BURSTS; b++) {
		for (int i = 0; i < BURST; i++) {
			fds[i] = fcntl(base, F_DUPFD_CLOEXEC, 0);
			ASSERT_GE(fds[i], 0);
			ASSERT_EQ(px_guard_add_fd(self->g, fds[i], &res[i]), 0);
		}
		for (int i = 0; i < BURST; i++)
			px_guard_release(res[i]);
		/* Released, but nothing is closed before the loop runs. */
		ASSERT_TRUE(fd_open(fds[BURST - 1]));
		drain(self->ring, self->g);
		for (int i = 0; i < BURST; i++)
			ASSERT_FALSE(fd_open(fds[i]));
	}
	close(base);
	px_guard_stats_get(self->g, &st);
	EXPECT_EQ(st.registered, BURST * BURSTS);
	EXPECT_EQ(st.cleaned, BURST * BURSTS);
	EXPECT_EQ(st.failed, 0);
	EXPECT_EQ(st.live, 0);
}

/* An accept in flight on each listener: its end must come first. */
struct acc {
	struct px_guard_res *res;
	int fd;
	int calls;
	bool fd_open_at_end;
	int res_at_end;
};

static void
on_accept(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct acc *a = ctx;

	if (res >= 0) {
		close(res);
		if (more)
			return;
	}
	if (more)
		return;
	a->calls++;
	a->res_at_end = res;
	a->fd_open_at_end = fd_open(a->fd);
	px_guard_unhold(a->res);
}

TEST_F(gr, shutdown_waits_for_operations_in_flight)
{
	enum { N = 16 };
	struct acc a[N];

	for (int i = 0; i < N; i++) {
		memset(&a[i], 0, sizeof(a[i]));
		a[i].fd = loopback_listener();
		ASSERT_GE(a[i].fd, 0);
		ASSERT_EQ(px_guard_add_fd(self->g, a[i].fd, &a[i].res), 0);
		ASSERT_EQ(px_guard_hold(a[i].res), 0);
		ASSERT_EQ(px_ring_accept(self->ring, a[i].fd, 0, on_accept,
					 &a[i], NULL),
			  0);
	}
	px_ring_run_once(self->ring, 0); /* the accepts are in the kernel */
	for (int i = 0; i < N / 2; i++)
		px_guard_release(a[i].res);
	/* The other half was never released: shutdown reports and cleans
	 * those too; every accept ends before its fd closes. */
	ASSERT_EQ(px_guard_shutdown(self->g, 2000000000, NULL, NULL), 0);
	for (int i = 0; i < N; i++) {
		EXPECT_EQ(a[i].calls, 1);
		EXPECT_EQ(a[i].res_at_end, -ECANCELED);
		EXPECT_TRUE(a[i].fd_open_at_end);
		EXPECT_FALSE(fd_open(a[i].fd));
	}
	/* The gate stays closed (the handles above are gone now). */
	EXPECT_EQ(px_guard_add_fd(self->g, 0, &a[0].res), -PX_ECLOSED);
}

static int order[8], norder;

static int
record(struct px_guard_res *res, void *ctx)
{
	order[norder++] = (int)(intptr_t)ctx;
	return 0;
}

TEST_F(gr, cleanups_follow_release_order)
{
	struct px_guard_res *r[6];
	const int rel[6] = {4, 1, 5, 0, 3, 2};

	norder = 0;
	for (int i = 0; i < 6; i++)
		ASSERT_EQ(px_guard_add(self->g, PX_GUARD_USER, record,
				       (void *)(intptr_t)i, &r[i]),
			  0);
	for (int i = 0; i < 6; i++)
		px_guard_release(r[rel[i]]);
	EXPECT_EQ(norder, 0); /* nothing ran inside release */
	drain(self->ring, self->g);
	ASSERT_EQ(norder, 6);
	for (int i = 0; i < 6; i++)
		EXPECT_EQ(order[i], rel[i]);
}

struct reports {
	int n;
	struct px_guard_report r[4];
};

static void
collect(const struct px_guard_report *rep, void *arg)
{
	struct reports *rs = arg;

	if (rs->n < 4)
		rs->r[rs->n] = *rep;
	rs->n++;
}

TEST_F(gr, leak_report_names_the_registration_site)
{
	struct px_guard_res *r;
	struct reports rs = {0};
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC), line;

	line = __LINE__ + 1;
	ASSERT_EQ(px_guard_add_fd(self->g, fd, &r), 0);
	usleep(2000);
	ASSERT_EQ(px_guard_shutdown(self->g, 1000000000, collect, &rs), 0);
	ASSERT_EQ(rs.n, 1);
	EXPECT_EQ(rs.r[0].problem, PX_GUARD_NEVER_RELEASED);
	EXPECT_EQ(rs.r[0].type, PX_GUARD_FD);
	EXPECT_EQ(rs.r[0].fd, fd);
	EXPECT_EQ(rs.r[0].line, line);
	EXPECT_EQ(strcmp(rs.r[0].file, __FILE__), 0);
	EXPECT_GE(rs.r[0].age_ns, 2000000);
	EXPECT_FALSE(fd_open(fd)); /* reported, and still cleaned up */
}

TEST_F(gr, unfinished_cleanup_is_reported_at_the_deadline)
{
	struct px_guard_res *r;
	struct reports rs = {0};
	int fd = loopback_listener();

	ASSERT_GE(fd, 0);
	ASSERT_EQ(px_guard_add_fd(self->g, fd, &r), 0);
	ASSERT_EQ(px_guard_hold(r), 0); /* an operation the guard cannot end */
	px_guard_release(r);
	ASSERT_EQ(px_guard_shutdown(self->g, 50000000, collect, &rs),
		  -ETIMEDOUT);
	ASSERT_EQ(rs.n, 1);
	EXPECT_EQ(rs.r[0].problem, PX_GUARD_UNFINISHED);
	EXPECT_EQ(rs.r[0].holds, 1);
	EXPECT_TRUE(fd_open(fd)); /* never closed under an operation */
	px_guard_unhold(r);       /* it ends: the close follows */
	drain(self->ring, self->g);
	EXPECT_FALSE(fd_open(fd));
}

static int
count_cleanup(struct px_guard_res *r, void *ctx)
{
	++*(int *)ctx;
	return 0;
}

/* A release queues a deferred poll on the ring; destroy cleans up
 * directly, and must not free the guard under that queued poll (ASan
 * sees the use after free on the next ring turn). */
TEST(destroy_waits_for_the_queued_deferred_poll)
{
	struct px_ring *ring;
	struct px_guard *g;
	struct px_guard_res *r;
	int n = 0, ret = px_ring_create(NULL, &ring);

	if (ret < 0)
		SKIP(return, "no ring: %s", px_strerror_in(PX_PART_RING, ret));
	ASSERT_EQ(px_guard_create(ring, &g), 0);
	ASSERT_EQ(px_guard_add(g, PX_GUARD_USER, count_cleanup, &n, &r), 0);
	px_guard_release(r);
	px_guard_destroy(g);
	EXPECT_EQ(n, 1);
	ASSERT_GE(px_ring_run_once(ring, 0), 0); /* runs the deferred poll */
	px_ring_destroy(ring);
}

TEST_HARNESS_MAIN
