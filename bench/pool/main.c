// SPDX-License-Identifier: MIT
/*
 * bench/pool: acquire+release throughput and acquire-wait latency of the
 * io_uring pool against an r2d2-style mutex+condvar pool measured in the
 * same run.  Part 1 uses a no-op manager (pure pool overhead) for pool
 * sizes {2, 8, 16, 32} x waiters {1x, 2x, 16x}; part 2 uses real
 * memcached connections on 127.0.0.1 (each hold sends "version" and
 * reads the reply).  Our waiters are callbacks on one ring thread; the
 * baseline's are threads.  Prints ratios; targets: >= 3x throughput under
 * contention and p99.99 wait <= 1/10 of the baseline's at 16x.
 *
 * Each row runs each pool twice: once bare for ops/s, once with a TSC
 * stamp around every acquire for the latencies.
 *
 * Usage: pool [-s seconds per run] [-m] [-o] [-c operations]
 *   -m skips the memcached part; -o runs only our pool (for profiling);
 *   -c only measures the CPU ns per get+put of ours over a fixed count
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <patinox/error.h>
#include <patinox/pool.h>
#include <patinox/ring.h>

#include "../../apps/common/log.h"
#include "../../tests/selftests/loopback.h"
#include "bench_pool.h"

static int dummy_obj;
static uint64_t cost_ops; /* -c: operations per cost run */

/* ------------------------------------------------------------------ */
/* The io_uring pool side                                               */
/* ------------------------------------------------------------------ */

static void
noop_create(struct px_pool *pool, struct px_pool_obj *obj, void *arg)
{
	px_pool_obj_set_value(obj, &dummy_obj);
	px_pool_done(pool, obj, 0);
}

static void
noop_destroy(struct px_pool *pool, void *value, void *arg)
{
}

struct client {
	struct px_pool *pool;
	struct px_pool_obj *obj;
	struct run *run;
	uint64_t start;
	uint64_t last; /* previous acquire */
	bool done;
	uint32_t rlen;
	char rbuf[64];
};

struct run {
	struct px_ring *ring;
	struct px_pool *pool;
	struct client *c;
	int nclients;
	bool stop;
	bool memcached;
	bool timed;      /* stamp every acquire */
	uint64_t target; /* stop after this many operations (0: by time) */
	uint64_t ops;
	int errors;
	int finished;
	struct lat lat;
	struct lat cycle;
};

static void client_get(struct client *c);

static void
client_release(struct client *c)
{
	px_pool_put(c->pool, c->obj);
	c->obj = NULL;
	c->run->ops++;
	if (c->run->target && c->run->ops >= c->run->target)
		c->run->stop = true;
	if (c->run->stop) {
		c->done = true;
		c->run->finished++;
		return;
	}
	client_get(c);
}

static void
on_reply(struct px_pool_conn *pc, void *data, int res, void *ctx)
{
	struct client *c = ctx;

	if (res <= 0) {
		c->run->errors++;
		px_pool_conn_set_recv(pc, NULL, NULL);
		px_pool_drop(c->pool, c->obj);
		c->obj = NULL;
		c->done = true;
		c->run->finished++;
		return;
	}
	for (int i = 0; i < res && c->rlen < sizeof(c->rbuf); i++)
		c->rbuf[c->rlen++] = ((char *)data)[i];
	if (c->rlen < 2 || c->rbuf[c->rlen - 1] != '\n')
		return;
	px_pool_conn_set_recv(pc, NULL, NULL);
	client_release(c);
}

static void
send_version(struct client *c)
{
	static char cmd[] = "version\r\n";
	struct px_pool_conn *pc = px_pool_obj_value(c->obj);
	struct iovec iov = {cmd, sizeof(cmd) - 1};

	c->rlen = 0;
	px_pool_conn_set_recv(pc, on_reply, c);
	if (px_ring_conn_send(px_pool_conn_ring_conn(pc), &iov, 1, NULL, NULL) <
	    0) {
		c->run->errors++;
		px_pool_conn_set_recv(pc, NULL, NULL);
		px_pool_drop(c->pool, c->obj);
		c->obj = NULL;
		c->done = true;
		c->run->finished++;
	}
}

static void
on_got(struct px_pool *pool, struct px_pool_obj *obj, int res, void *ctx)
{
	struct client *c = ctx;

	if (c->run->timed) {
		uint64_t t = now_ns();

		lat_add(&c->run->lat, t - c->start);
		if (c->last)
			lat_add(&c->run->cycle, t - c->last);
		c->last = t;
	}
	if (res < 0) {
		/* Gets still pending when the run ends fail with the pool. */
		if (!(res == -PX_ECLOSED && c->run->stop))
			c->run->errors++;
		c->done = true;
		c->run->finished++;
		return;
	}
	c->obj = obj;
	if (c->run->memcached)
		send_version(c);
	else
		client_release(c);
}

static void
client_get(struct client *c)
{
	int ret;

	if (c->run->timed)
		c->start = now_ns();
	ret = px_pool_get(c->pool, -1, on_got, c, NULL);
	if (ret < 0) {
		c->run->errors++;
		c->done = true;
		c->run->finished++;
	}
}

/* One run; returns ops/s, or -errno when the pool cannot be made. */
static double
ours_run(int size, int waiters, double secs, const struct px_pool_manager *m,
	 bool memcached, bool timed, struct px_ring *ring, struct result *out)
{
	struct px_pool_opts o;
	struct run *r = calloc(1, sizeof(*r));
	uint64_t t0, t1, c0;
	double ops_per_s;
	int ret;

	if (!r)
		return -ENOMEM;
	px_pool_opts_init(&o);
	o.max_size = (uint32_t)size;
	o.max_waiters = (uint32_t)waiters + 1;
	o.wait_timeout_ms = 10000;
	o.max_lifetime_ms = 0;
	o.idle_timeout_ms = 0;
	ret = px_pool_create(ring, m, &o, &r->pool);
	if (ret < 0) {
		free(r);
		return ret;
	}
	r->ring = ring;
	r->memcached = memcached;
	r->timed = timed;
	r->target = cost_ops;
	r->nclients = waiters;
	r->c = calloc((size_t)waiters, sizeof(*r->c));
	c0 = cpu_ns();
	t0 = now_ns();
	for (int i = 0; i < waiters; i++) {
		r->c[i].pool = r->pool;
		r->c[i].run = r;
		client_get(&r->c[i]);
	}
	while (!r->stop && now_ns() - t0 < (uint64_t)(secs * 1e9))
		px_ring_run_once(ring, 1000000);
	r->stop = true;
	t1 = now_ns();
	ops_per_s = (double)r->ops / ((double)(t1 - t0) / 1e9);
	if (!timed)
		out->ops_per_cpu_s =
		    (double)r->ops / ((double)(cpu_ns() - c0) / 1e9);
	while (r->finished < waiters && now_ns() - t1 < 5000000000ull)
		px_ring_run_once(ring, 1000000);
	if (timed) {
		out->p50 = lat_pct(&r->lat, 50);
		out->p99 = lat_pct(&r->lat, 99);
		out->p9999 = lat_pct(&r->lat, 99.99);
		out->cycle9999 = lat_pct(&r->cycle, 99.99);
	}
	px_pool_destroy(r->pool);
	for (int i = 0; i < 20; i++)
		px_ring_run_once(ring, 0);
	if (r->errors)
		LOG_WARN("pool %d x %d: %d errors", size, waiters, r->errors);
	free(r->c);
	free(r);
	return ops_per_s;
}

/* Throughput from a bare run, latencies from a stamped one. */
static int
ours_measure(int size, int waiters, double secs,
	     const struct px_pool_manager *m, bool memcached,
	     struct px_ring *ring, struct result *out)
{
	out->ops_per_s =
	    ours_run(size, waiters, secs, m, memcached, false, ring, out);
	if (out->ops_per_s < 0)
		return (int)out->ops_per_s;
	out->timed_ops_per_s =
	    ours_run(size, waiters, secs, m, memcached, true, ring, out);
	return out->timed_ops_per_s < 0 ? (int)out->timed_ops_per_s : 0;
}

/* ------------------------------------------------------------------ */
/* The baseline side                                                    */
/* ------------------------------------------------------------------ */

static void *
b_noop_create(void *arg)
{
	return &dummy_obj;
}

static void
b_noop_destroy(void *obj)
{
}

static uint16_t mc_port;
static bool ours_only;

static void *
b_mc_create(void *arg)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(mc_port)};
	int *fd = malloc(sizeof(*fd)), one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(*fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(*fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		LOG_WARN("baseline connect: %s", strerror(errno));
	return fd;
}

static void
b_mc_destroy(void *obj)
{
	close(*(int *)obj);
	free(obj);
}

static int
b_mc_work(void *obj)
{
	char buf[64];
	size_t got = 0;
	int fd = *(int *)obj;

	if (write(fd, "version\r\n", 9) != 9)
		return -1;
	while (got < 2 || buf[got - 1] != '\n') {
		ssize_t n = read(fd, buf + got, sizeof(buf) - got);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Main                                                                 */
/* ------------------------------------------------------------------ */

static void
print_row(const char *what, int size, int waiters, const struct result *a,
	  const struct result *b)
{
	printf("%-9s %4d %5d | %11.0f %11.0f %6.2fx | %7llu %8llu %9llu | "
	       "%7llu %8llu %9llu | %7.1fx | %10llu %10llu %7.1fx | %6.2fx "
	       "%6.2fx | %6.1f %6.1f\n",
	       what, size, waiters, a->ops_per_s, b->ops_per_s,
	       a->ops_per_s / b->ops_per_s, (unsigned long long)a->p50,
	       (unsigned long long)a->p99, (unsigned long long)a->p9999,
	       (unsigned long long)b->p50, (unsigned long long)b->p99,
	       (unsigned long long)b->p9999,
	       a->p9999 ? (double)b->p9999 / (double)a->p9999 : 0.0,
	       (unsigned long long)a->cycle9999,
	       (unsigned long long)b->cycle9999,
	       a->cycle9999 ? (double)b->cycle9999 / (double)a->cycle9999 : 0.0,
	       a->timed_ops_per_s / b->timed_ops_per_s,
	       a->ops_per_cpu_s / b->ops_per_cpu_s, 1e9 / a->ops_per_cpu_s,
	       1e9 / b->ops_per_cpu_s);
	fflush(stdout);
}

static void
print_header(void)
{
	printf("%-9s %4s %5s | %11s %11s %7s | %7s %8s %9s | %7s %8s %9s | "
	       "%8s | %10s %10s %8s | %7s %7s | %6s %6s\n",
	       "backend", "size", "wait", "ours op/s", "base op/s", "ratio",
	       "p50 ns", "p99 ns", "p99.99 ns", "b.p50", "b.p99", "b.p99.99",
	       "p99.99 b/o", "cycle9999", "b.cycle", "b/o", "t.ratio",
	       "cpu.rat", "o.cpu", "b.cpu");
}

static int
bench_noop(struct px_ring *ring, double secs)
{
	static const int sizes[] = {2, 8, 16, 32};
	static const int factors[] = {1, 2, 16};
	struct px_pool_manager m = {
	    .create = noop_create,
	    .destroy = noop_destroy,
	};

	for (unsigned int i = 0; i < 4; i++) {
		for (unsigned int j = 0; j < 3; j++) {
			int size = sizes[i], w = size * factors[j];
			struct result a, b;

			if (ours_measure(size, w, secs, &m, false, ring, &a) <
			    0)
				return -1;
			b = a;
			if (!ours_only)
				baseline_run(size, w, secs, b_noop_create,
					     b_noop_destroy, NULL, NULL, &b);
			print_row("noop", size, w, &a, &b);
		}
	}
	return 0;
}

static void
bench_memcached(struct px_ring *ring, double secs)
{
	static const int factors[] = {1, 2, 16};
	struct px_pool_net_opts no = {0};
	struct px_pool_manager m;
	pid_t pid;

	if (access("/usr/bin/memcached", X_OK) != 0) {
		LOG_WARN("memcached not installed: skipping the real backend");
		return;
	}
	mc_port = loopback_free_port();
	pid = loopback_memcached_start(
	    mc_port, (const char *[]){"-t", "2", "-c", "4096", NULL});
	if (pid < 0) {
		LOG_WARN("memcached did not start: skipping the real backend");
		return;
	}
	px_pool_net_loopback(&no, mc_port);
	no.proto = PX_POOL_PROTO_NONE; /* like the baseline: no check */
	if (px_pool_net_manager(ring, &no, &m) == 0) {
		for (unsigned int j = 0; j < 3; j++) {
			int size = 8, w = size * factors[j];
			struct result a, b;

			if (ours_measure(size, w, secs, &m, true, ring, &a) < 0)
				break;
			baseline_run(size, w, secs, b_mc_create, b_mc_destroy,
				     b_mc_work, NULL, &b);
			print_row("memcached", size, w, &a, &b);
		}
		for (int i = 0; i < 50; i++)
			px_ring_run_once(ring, 1000000);
		px_pool_net_manager_free(&m);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/*
 * -c N: the CPU cost of our get+put, steadier than op/s on a loaded
 * machine: N operations per no-op row, the best of five runs.
 */
static void
bench_cost(struct px_ring *ring)
{
	static const int sizes[] = {2, 8, 16, 32};
	static const int factors[] = {1, 2, 16};
	struct px_pool_manager m = {.create = noop_create,
				    .destroy = noop_destroy};

	printf("# CPU ns per get+put of ours, %llu operations, best of 5\n",
	       (unsigned long long)cost_ops);
	for (unsigned int i = 0; i < 4; i++) {
		for (unsigned int j = 0; j < 3; j++) {
			int size = sizes[i], w = size * factors[j];
			double best = 0;

			for (int k = 0; k < 5; k++) {
				struct result a;

				if (ours_run(size, w, 1e6, &m, false, false,
					     ring, &a) < 0)
					return;
				if (a.ops_per_cpu_s > best)
					best = a.ops_per_cpu_s;
			}
			printf("cost %4d %5d %6.1f ns\n", size, w, 1e9 / best);
		}
	}
}

int
main(int argc, char **argv)
{
	struct px_ring *ring;
	double secs = 0.5;
	bool mc = true;
	int opt, ret;

	while ((opt = getopt(argc, argv, "s:moc:")) != -1) {
		if (opt == 's')
			secs = atof(optarg);
		else if (opt == 'c')
			cost_ops = strtoull(optarg, NULL, 10);
		else if (opt == 'm')
			mc = false;
		else if (opt == 'o')
			ours_only = true;
		else
			return 2;
	}
	tsc_calibrate();
	ret = px_ring_create(NULL, &ring);
	if (ret < 0) {
		LOG_ERROR("ring: %s", px_strerror_in(PX_PART_RING, ret));
		return 1;
	}
	if (cost_ops) {
		bench_cost(ring);
		px_ring_destroy(ring);
		return 0;
	}
	printf("# acquire+release, two runs of %.2f s per row and pool: "
	       "op/s and ratio from a run without stamps, latencies and "
	       "t.ratio from a run that stamps every acquire; cpu.rat = ratio "
	       "of ops per CPU second (all threads) in the bare runs, o.cpu "
	       "and b.cpu the CPU ns per op; "
	       "ours = px_pool "
	       "on one ring thread, base = mutex+condvar pool, one thread per "
	       "waiter; latency = acquire wait; cycle = p99.99 time between "
	       "two acquires by one client (includes time off CPU)\n",
	       secs);
	print_header();
	if (bench_noop(ring, secs) < 0)
		LOG_ERROR("the no-op runs failed");
	if (mc)
		bench_memcached(ring, secs);
	px_ring_destroy(ring);
	return 0;
}
