// SPDX-License-Identifier: MIT
/*
 * bench/guard: what releasing a guarded fd costs on the hot path against
 * a direct close(), and how long closing 100,000 fds takes through the
 * ring (release all, then drive the ring until every IORING_OP_CLOSE
 * completed) against a close() loop.  The fds are unconnected TCP
 * sockets.  Target: release <= 0.2x the cost of close().
 *
 * Usage: guard [-n fds] [-r rounds]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <patinox/error.h>
#include <patinox/guard.h>
#include <patinox/ring.h>

#include "../apps/common/log.h"

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int
open_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fds[i] < 0) {
			LOG_ERROR("socket %d: %s", i, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* close() loop: returns total ns. */
static uint64_t
direct_close(int *fds, int n)
{
	uint64_t t0 = now_ns();

	for (int i = 0; i < n; i++)
		close(fds[i]);
	return now_ns() - t0;
}

struct guarded {
	uint64_t release_ns; /* the release loop alone */
	uint64_t total_ns;   /* release + ring until all closed */
};

static int
guard_close(struct px_ring *ring, int *fds, int n, struct guarded *out)
{
	struct px_guard_res **res = calloc((size_t)n, sizeof(*res));
	struct px_guard *g;
	struct px_guard_stats st;
	uint64_t t0, t1;
	int ret;

	ret = px_guard_create(ring, &g);
	if (ret < 0)
		return ret;
	for (int i = 0; i < n; i++) {
		ret = px_guard_add_fd(g, fds[i], &res[i]);
		if (ret < 0)
			return ret;
	}
	t0 = now_ns();
	for (int i = 0; i < n; i++)
		px_guard_release(res[i]);
	t1 = now_ns();
	do {
		ret = px_ring_run_once(ring, 1000000);
		px_guard_stats_get(g, &st);
	} while (ret >= 0 && st.pending > 0);
	out->release_ns = t1 - t0;
	out->total_ns = now_ns() - t0;
	if (st.cleaned != (uint64_t)n || st.failed)
		LOG_WARN("cleaned %llu of %d, %llu failed",
			 (unsigned long long)st.cleaned, n,
			 (unsigned long long)st.failed);
	px_guard_destroy(g);
	free(res);
	return 0;
}

/* One round over @total fds, @chunk open at a time. */
static int
round_run(struct px_ring *ring, int *fds, int total, int chunk,
	  uint64_t *close_ns, struct guarded *gd)
{
	*close_ns = 0;
	memset(gd, 0, sizeof(*gd));
	for (int done = 0; done < total; done += chunk) {
		int n = total - done < chunk ? total - done : chunk;
		struct guarded part;

		if (open_fds(fds, n) < 0)
			return -1;
		*close_ns += direct_close(fds, n);
		if (open_fds(fds, n) < 0 ||
		    guard_close(ring, fds, n, &part) < 0)
			return -1;
		gd->release_ns += part.release_ns;
		gd->total_ns += part.total_ns;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct px_ring *ring;
	struct rlimit rl;
	int n = 100000, rounds = 3, chunk, opt, ret, *fds;
	double best_rel = 1e18, best_close = 1e18, best_total = 1e18;

	while ((opt = getopt(argc, argv, "n:r:")) != -1) {
		if (opt == 'n')
			n = atoi(optarg);
		else if (opt == 'r')
			rounds = atoi(optarg);
		else
			return 2;
	}
	/* As many fds open at once as the limit allows, in chunks. */
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	chunk = rl.rlim_cur > (rlim_t)n + 64 ? n : (int)rl.rlim_cur - 64;
	ret = px_ring_create(NULL, &ring);
	if (ret < 0) {
		LOG_ERROR("ring: %s", px_strerror_in(PX_PART_RING, ret));
		return 1;
	}
	fds = calloc((size_t)chunk, sizeof(*fds));
	for (int r = 0; r < rounds; r++) {
		struct guarded gd;
		uint64_t c;

		if (round_run(ring, fds, n, chunk, &c, &gd) < 0)
			return 1;
		if ((double)c < best_close)
			best_close = (double)c;
		if ((double)gd.release_ns < best_rel)
			best_rel = (double)gd.release_ns;
		if ((double)gd.total_ns < best_total)
			best_total = (double)gd.total_ns;
	}
	printf("# %d unconnected TCP sockets (%d open at a time), best of %d "
	       "rounds\n",
	       n, chunk, rounds);
	printf("hot path: px_guard_release %.1f ns/fd, close() %.1f ns/fd, "
	       "ratio %.3fx (target <= 0.2x)\n",
	       best_rel / n, best_close / n, best_rel / best_close);
	printf("close %d fds: through the ring %.2f ms (release + "
	       "IORING_OP_CLOSE), close() loop %.2f ms, ratio %.2fx\n",
	       n, best_total / 1e6, best_close / 1e6, best_total / best_close);
	free(fds);
	px_ring_destroy(ring);
	return 0;
}
