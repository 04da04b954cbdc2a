// SPDX-License-Identifier: MIT
/*
 * The pool's connection managers against real backends on 127.0.0.1:
 * Debian's memcached killed and restarted during a run, a listener that
 * accepts and never answers, a port with no listener, a connect timeout
 * against a listener whose accept queue is full, and a Unix socket.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include <patinox/error.h>
#include <patinox/guard.h>
#include <patinox/pool.h>
#include <patinox/ring.h>

#include "harness.h"
#include "loopback.h"

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The peer memcached: one thread, 16 MiB (see loopback.h). */
static const char *const mc_opts[] = {"-t", "1", "-m", "16", NULL};

static void
memcached_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

struct got {
	int calls;
	int res;
	struct px_pool_obj *obj;
};

static void
on_got(struct px_pool *pool, struct px_pool_obj *obj, int res, void *ctx)
{
	struct got *g = ctx;

	g->calls++;
	g->res = res;
	g->obj = obj;
}

/* Run the ring until @g got its callback or @ms passed. */
static void
wait_got(struct px_ring *ring, struct got *g, int ms)
{
	uint64_t end = mono_ms() + ms;

	while (!g->calls && mono_ms() < end)
		px_ring_run_once(ring, 10 * 1000000);
}

static void
spin(struct px_ring *ring, int ms)
{
	uint64_t end = mono_ms() + ms;

	while (mono_ms() < end)
		px_ring_run_once(ring, 5 * 1000000);
}

static int
get_sync(struct px_ring *ring, struct px_pool *pool, struct got *g, int ms)
{
	int ret;

	memset(g, 0, sizeof(*g));
	ret = px_pool_get(pool, -1, on_got, g, NULL);
	if (ret < 0)
		return ret;
	wait_got(ring, g, ms);
	return g->calls ? g->res : -EINPROGRESS;
}

FIXTURE(net)
{
	struct px_ring *ring;
	struct px_pool *pool;
	struct px_pool_manager mgr;
	struct px_pool_opts o;
	struct px_pool_net_opts no;
	pid_t mc;
	int lfd;
};

FIXTURE_SETUP(net)
{
	int ret = px_ring_create(NULL, &self->ring);

	if (ret < 0)
		SKIP(return, "no ring: %s", px_strerror_in(PX_PART_RING, ret));
	px_pool_opts_init(&self->o);
	self->o.max_size = 4;
	self->o.create_timeout_ms = 300;
	self->o.recycle_timeout_ms = 300;
	self->o.wait_timeout_ms = 2000;
	self->o.backoff_min_ms = 20;
	self->o.backoff_max_ms = 200;
	memset(&self->no, 0, sizeof(self->no));
	self->lfd = -1;
}

FIXTURE_TEARDOWN(net)
{
	if (self->pool)
		px_pool_destroy(self->pool);
	if (self->ring) {
		spin(self->ring, 20);
		px_ring_destroy(self->ring);
	}
	px_pool_net_manager_free(&self->mgr);
	memcached_stop(self->mc);
	if (self->lfd >= 0)
		close(self->lfd);
}

static void
make_pool(struct __test_meta *_metadata, FIXTURE_DATA(net) * self,
	  uint16_t port, enum px_pool_proto proto)
{
	px_pool_net_loopback(&self->no, port);
	self->no.proto = proto;
	self->no.connect_timeout_ms = self->o.create_timeout_ms;
	ASSERT_EQ(px_pool_net_manager(self->ring, &self->no, &self->mgr), 0);
	ASSERT_EQ(px_pool_create(self->ring, &self->mgr, &self->o, &self->pool),
		  0);
}

TEST_F_T(net, memcached_killed_and_restarted, 60)
{
	uint16_t port = loopback_free_port();
	struct got g[4], one;
	struct px_pool_stats st;
	uint64_t t0;
	int ok = 0, ret = -1;

	self->mc = loopback_memcached_start(port, mc_opts);
	if (self->mc < 0)
		SKIP(return, "memcached cannot be started");
	make_pool(_metadata, self, port, PX_POOL_PROTO_MEMCACHED);

	/* Four connections at once, then each passes its version check. */
	for (int i = 0; i < 4; i++) {
		memset(&g[i], 0, sizeof(g[i]));
		ASSERT_EQ(px_pool_get(self->pool, -1, on_got, &g[i], NULL), 0);
	}
	for (int i = 0; i < 4; i++) {
		wait_got(self->ring, &g[i], 3000);
		ASSERT_EQ(g[i].res, 0);
	}
	for (int i = 0; i < 4; i++)
		px_pool_put(self->pool, g[i].obj);
	ASSERT_EQ(get_sync(self->ring, self->pool, &one, 3000), 0);
	px_pool_put(self->pool, one.obj);
	px_pool_stats_get(self->pool, &st);
	ASSERT_GE(st.recycled, 1);

	/* Kill it: idle connections fail their check, creates are refused,
	 * and the pool backs off instead of reconnecting in a loop. */
	memcached_stop(self->mc);
	self->mc = 0;
	t0 = mono_ms();
	while (mono_ms() - t0 < 500) {
		ret = get_sync(self->ring, self->pool, &one, 2000);
		ASSERT_NE(ret, 0);
		spin(self->ring, 2);
	}
	px_pool_stats_get(self->pool, &st);
	TH_LOG("backend down 500 ms: %llu creates failed, %llu backoffs, "
	       "%llu gets failed",
	       (unsigned long long)st.create_failed,
	       (unsigned long long)st.backoffs,
	       (unsigned long long)st.gets_failed);
	ASSERT_GE(st.closed_broken, 4);
	ASSERT_GE(st.backoffs, 1);
	/* Some 100-250 gets in 500 ms, but only a few connect attempts. */
	ASSERT_LE(st.create_failed, 15);

	/* Restart on the same port: the pool recovers by itself. */
	self->mc = loopback_memcached_start(port, mc_opts);
	ASSERT_GT(self->mc, 0);
	t0 = mono_ms();
	while (mono_ms() - t0 < 5000 && !ok) {
		ret = get_sync(self->ring, self->pool, &one, 2000);
		if (ret == 0) {
			ok = 1;
			px_pool_put(self->pool, one.obj);
		} else {
			spin(self->ring, 10);
		}
	}
	ASSERT_EQ(ok, 1);
	ASSERT_EQ(get_sync(self->ring, self->pool, &one, 2000), 0);
	px_pool_put(self->pool, one.obj);
}

TEST_F(net, silent_listener_is_bounded_by_recycle_timeout)
{
	uint16_t port;
	struct got one;
	struct px_pool_stats st;
	uint64_t t0, dt;

	self->lfd =
	    loopback_listen(16, &port); /* accepts (backlog), never answers */
	ASSERT_GE(self->lfd, 0);
	make_pool(_metadata, self, port, PX_POOL_PROTO_MEMCACHED);
	ASSERT_EQ(get_sync(self->ring, self->pool, &one, 2000), 0);
	px_pool_put(self->pool, one.obj);
	t0 = mono_ms();
	/* The version check hangs: dropped after 300 ms, and a fresh
	 * connection serves the get. */
	ASSERT_EQ(get_sync(self->ring, self->pool, &one, 3000), 0);
	dt = mono_ms() - t0;
	EXPECT_GE(dt, 250);
	EXPECT_LT(dt, 2000);
	px_pool_put(self->pool, one.obj);
	px_pool_stats_get(self->pool, &st);
	EXPECT_EQ(st.recycle_failed, 1);
	EXPECT_EQ(st.created, 2);
}

TEST_F(net, port_without_listener_is_refused)
{
	uint16_t port = loopback_free_port();
	struct got one;

	make_pool(_metadata, self, port, PX_POOL_PROTO_NONE);
	ASSERT_EQ(get_sync(self->ring, self->pool, &one, 2000), -ECONNREFUSED);
}

/* Fill a backlog-0 listener's accept queue, so new SYNs are dropped. */
static int
fill_accept_queue(uint16_t port, int *fds, int max)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	int n = 0;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (; n < max; n++) {
		struct pollfd p;

		fds[n] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		connect(fds[n], (struct sockaddr *)&a, sizeof(a));
		p.fd = fds[n];
		p.events = POLLOUT;
		if (poll(&p, 1, 200) == 0)
			return n + 1; /* this one hangs: the queue is full */
	}
	return n;
}

TEST_F(net, connect_timeout_on_full_accept_queue)
{
	uint16_t port;
	struct got one;
	int fds[16], n;
	uint64_t t0, dt;

	self->lfd = loopback_listen(0, &port);
	ASSERT_GE(self->lfd, 0);
	n = fill_accept_queue(port, fds, 16);
	if (n == 16)
		SKIP(goto out, "the accept queue never filled up");
	make_pool(_metadata, self, port, PX_POOL_PROTO_NONE);
	t0 = mono_ms();
	EXPECT_EQ(get_sync(self->ring, self->pool, &one, 3000), -ETIMEDOUT);
	dt = mono_ms() - t0;
	EXPECT_GE(dt, 250);
	EXPECT_LT(dt, 2000);
out:
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

TEST_F(net, unix_socket_connects)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&self->no.addr;
	struct got one;
	char path[64];

	snprintf(path, sizeof(path), "/tmp/px-pool-%d.sock", getpid());
	unlink(path);
	self->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(un, 0, sizeof(*un));
	un->sun_family = AF_UNIX;
	strcpy(un->sun_path, path);
	self->no.addr_len = sizeof(*un);
	ASSERT_EQ(bind(self->lfd, (struct sockaddr *)un, sizeof(*un)), 0);
	ASSERT_EQ(listen(self->lfd, 8), 0);
	ASSERT_EQ(px_pool_net_manager(self->ring, &self->no, &self->mgr), 0);
	ASSERT_EQ(px_pool_create(self->ring, &self->mgr, &self->o, &self->pool),
		  0);
	ASSERT_EQ(get_sync(self->ring, self->pool, &one, 2000), 0);
	EXPECT_NE(px_pool_conn_ring_conn(px_pool_obj_value(one.obj)), NULL);
	px_pool_put(self->pool, one.obj);
	unlink(path);
}

/* The pool hands its connections' close to the guard. */
TEST_F(net, connections_are_closed_through_the_guard)
{
	uint16_t port;
	struct px_guard *g;
	struct px_guard_stats st;
	struct got one[3];

	ASSERT_EQ(px_guard_create(self->ring, &g), 0);
	self->lfd = loopback_listen(16, &port);
	self->no.guard = g;
	make_pool(_metadata, self, port, PX_POOL_PROTO_NONE);
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(get_sync(self->ring, self->pool, &one[i], 2000), 0);
	px_guard_stats_get(g, &st);
	ASSERT_EQ(st.registered, 3);
	px_pool_drop(self->pool, one[0].obj);
	px_pool_put(self->pool, one[1].obj);
	px_pool_put(self->pool, one[2].obj);
	px_pool_destroy(self->pool);
	self->pool = NULL;
	ASSERT_EQ(px_guard_shutdown(g, 2000000000, NULL, NULL), 0);
	px_guard_stats_get(g, &st);
	EXPECT_EQ(st.cleaned, 3);
	EXPECT_EQ(st.live, 0);
	px_guard_destroy(g);
}

/*
 * The guard's gate closed before the pool went away: the guard closes
 * the pool's connections as never released.  The pool still holds them
 * (one idle, one out), so they must stay valid objects, seen as broken
 * and without a ring connection, until the pool destroys them; the pool
 * then makes a fresh connection.
 */
TEST_F(net, guard_shutdown_before_the_pool_is_destroyed)
{
	uint16_t port;
	struct px_guard *g;
	struct px_guard_stats st;
	struct px_pool_conn *held, *fresh;
	struct got one[2], again;

	ASSERT_EQ(px_guard_create(self->ring, &g), 0);
	self->lfd = loopback_listen(16, &port);
	ASSERT_GE(self->lfd, 0);
	self->no.guard = g;
	make_pool(_metadata, self, port, PX_POOL_PROTO_NONE);
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(get_sync(self->ring, self->pool, &one[i], 2000), 0);
	px_pool_put(self->pool, one[1].obj);
	held = px_pool_obj_value(one[0].obj);
	ASSERT_EQ(px_guard_shutdown(g, 2000000000, NULL, NULL), 0);
	px_guard_stats_get(g, &st);
	EXPECT_EQ(st.cleaned, 2);
	spin(self->ring, 20);
	EXPECT_TRUE(px_pool_conn_broken(held));
	EXPECT_EQ(px_pool_conn_ring_conn(held), NULL);
	px_pool_put(self->pool, one[0].obj);
	/* Both closed ones are dropped at checkout; a new one is made
	 * (registered nowhere: the gate is closed). */
	ASSERT_EQ(get_sync(self->ring, self->pool, &again, 2000), 0);
	fresh = px_pool_obj_value(again.obj);
	EXPECT_FALSE(px_pool_conn_broken(fresh));
	EXPECT_NE(px_pool_conn_ring_conn(fresh), NULL);
	px_pool_put(self->pool, again.obj);
	px_pool_destroy(self->pool);
	self->pool = NULL;
	spin(self->ring, 20);
	px_guard_destroy(g);
}

static int late_recv_calls;

static void
late_recv(struct px_pool_conn *pc, void *data, int res, void *ctx)
{
	late_recv_calls++;
}

/* After px_pool_put() the caller's recv callback no longer runs, and
 * bytes that arrive while the connection is idle mark it broken. */
TEST_F(net, bytes_after_put_skip_the_callback_and_break_the_conn)
{
	uint16_t port;
	struct got one;
	struct px_pool_conn *pc;
	int cfd;

	self->lfd = loopback_listen(4, &port);
	ASSERT_GE(self->lfd, 0);
	self->o.min_idle = 0;
	self->o.max_size = 1;
	make_pool(_metadata, self, port, PX_POOL_PROTO_NONE);
	ASSERT_EQ(get_sync(self->ring, self->pool, &one, 2000), 0);
	cfd = accept(self->lfd, NULL, NULL);
	ASSERT_GE(cfd, 0);
	pc = px_pool_obj_value(one.obj);
	late_recv_calls = 0;
	px_pool_conn_set_recv(pc, late_recv, NULL);
	px_pool_put(self->pool, one.obj);
	ASSERT_EQ(write(cfd, "late\r\n", 6), 6); /* a late reply */
	for (int i = 0; i < 200 && !px_pool_conn_broken(pc); i++)
		px_ring_run_once(self->ring, 10 * 1000000);
	EXPECT_EQ(late_recv_calls, 0);
	EXPECT_TRUE(px_pool_conn_broken(pc));
	close(cfd);
}

TEST_HARNESS_MAIN
