// SPDX-License-Identifier: MIT
/*
 * bench/cow: what px_cow's read side costs and how long a publish takes.
 *
 *   reads  - threads (1, 2) read one field of the current settings in a
 *            loop, through px_cow_read_lock/unlock, against the same
 *            loop over a plain shared pointer (the peer, measured in the
 *            same run), and through px_cow_get/put (a shared reference
 *            count, for contrast).  Reported: Mreads/s and cow/plain.
 *   publish - one writer drafts, changes and publishes versions, alone
 *            and with a reader thread busy; p50/p99/max in ns.
 *
 * Each read figure is the best of -r runs (the machine may be shared).
 *
 * Usage: cow [-d MS per read run] [-r runs] [-n publishes] [-f]
 * -f makes readers use full fences instead of membarrier (the fallback
 * where the kernel lacks it), to show what membarrier saves.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <patinox/cow.h>

#include "../apps/common/log.h"

#define BATCH 1024 /* reads between looks at the stop flag */

struct settings {
	int verbosity;
	uint64_t mem_limit;
};

enum mode { MODE_PLAIN, MODE_COW, MODE_GETPUT };

static const char *const mode_names[] = {"plain pointer", "px_cow read",
					 "px_cow get/put"};

struct run {
	enum mode mode;
	struct px_cow *c;
	const struct settings *_Atomic plain;
	_Atomic int stop;
	_Atomic uint64_t reads;
	_Atomic uint64_t sink;
};

static int
refuse_membarrier(int cmd, unsigned int flags)
{
	return -1;
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t
batch_plain(struct run *r)
{
	uint64_t sum = 0;

	for (int i = 0; i < BATCH; i++)
		sum += atomic_load_explicit(&r->plain, memory_order_acquire)
			   ->verbosity;
	return sum;
}

static uint64_t
batch_cow(struct run *r)
{
	const struct settings *s;
	uint64_t sum = 0;

	for (int i = 0; i < BATCH; i++) {
		s = px_cow_read_lock(r->c);
		sum += s->verbosity;
		px_cow_read_unlock(r->c);
	}
	return sum;
}

static uint64_t
batch_getput(struct run *r)
{
	const struct settings *s;
	uint64_t sum = 0;

	for (int i = 0; i < BATCH; i++) {
		s = px_cow_get(r->c);
		sum += s->verbosity;
		px_cow_put(r->c, s);
	}
	return sum;
}

static void *
reader(void *arg)
{
	struct run *r = arg;
	uint64_t n = 0, sum = 0;

	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		if (r->mode == MODE_PLAIN)
			sum += batch_plain(r);
		else if (r->mode == MODE_COW)
			sum += batch_cow(r);
		else
			sum += batch_getput(r);
		n += BATCH;
	}
	atomic_fetch_add(&r->reads, n);
	atomic_fetch_add(&r->sink, sum);
	return NULL;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Returns reads per second over @ms milliseconds with @threads readers. */
static double
read_rate(struct run *r, enum mode mode, int threads, long ms)
{
	pthread_t t[2];
	uint64_t start, ns;

	r->mode = mode;
	atomic_store(&r->stop, 0);
	atomic_store(&r->reads, 0);
	start = now_ns();
	for (int i = 0; i < threads; i++)
		if (pthread_create(&t[i], NULL, reader, r) != 0)
			return 0;
	sleep_ms(ms);
	atomic_store(&r->stop, 1);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	ns = now_ns() - start;
	return (double)atomic_load(&r->reads) * 1e9 / (double)ns;
}

/* Runs the three modes in turn @runs times; keeps each one's best. */
static void
best_rates(struct run *r, int threads, long ms, int runs, double *rate)
{
	double x;

	for (int m = MODE_PLAIN; m <= MODE_GETPUT; m++)
		rate[m] = 0;
	for (int i = 0; i < runs; i++)
		for (int m = MODE_PLAIN; m <= MODE_GETPUT; m++) {
			x = read_rate(r, m, threads, ms);
			rate[m] = x > rate[m] ? x : rate[m];
		}
}

static void
bench_reads(struct px_cow *c, long ms, int runs)
{
	static struct settings plain_settings = {.verbosity = 1};
	struct run r = {.c = c};
	double rate[3];

	atomic_init(&r.plain, &plain_settings);
	printf("# reads: one int field of the current settings, best of %d "
	       "runs of %ld ms\n",
	       runs, ms);
	for (int threads = 1; threads <= 2; threads++) {
		best_rates(&r, threads, ms, runs, rate);
		for (int m = MODE_PLAIN; m <= MODE_GETPUT; m++) {
			printf("reads threads=%d %-15s %9.1f Mreads/s %7.2f "
			       "ns/read\n",
			       threads, mode_names[m], rate[m] / 1e6,
			       threads * 1e9 / rate[m]);
		}
		printf("reads threads=%d cow/plain %.3f  getput/plain %.3f\n",
		       threads, rate[MODE_COW] / rate[MODE_PLAIN],
		       rate[MODE_GETPUT] / rate[MODE_PLAIN]);
	}
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int
publish_series(struct px_cow *c, uint64_t *lat, int n)
{
	struct settings *d;
	uint64_t t0;
	int ret;

	for (int i = 0; i < n; i++) {
		t0 = now_ns();
		ret = px_cow_draft(c, (void **)&d);
		if (ret < 0)
			return ret;
		d->verbosity = i & 3;
		d->mem_limit = (uint64_t)i << 20;
		ret = px_cow_publish(c, d);
		if (ret < 0)
			return ret;
		lat[i] = now_ns() - t0;
	}
	return 0;
}

static void
bench_publish(struct px_cow *c, int n, int readers)
{
	struct run r = {.c = c, .mode = MODE_COW};
	struct px_cow_stats st;
	pthread_t t;
	uint64_t *lat = calloc((size_t)n, sizeof(*lat));
	int ret;

	if (!lat || (readers && pthread_create(&t, NULL, reader, &r) != 0)) {
		LOG_ERROR("bench-cow: cannot start the publish run");
		free(lat);
		return;
	}
	ret = publish_series(c, lat, n);
	if (readers) {
		atomic_store(&r.stop, 1);
		pthread_join(t, NULL);
	}
	if (ret < 0)
		LOG_ERROR("bench-cow: publish failed: %d", ret);
	qsort(lat, (size_t)n, sizeof(*lat), cmp_u64);
	px_cow_stats(c, &st);
	printf("publish readers=%d n=%d p50 %llu ns p99 %llu ns max %llu ns "
	       "(bound waits so far %llu)\n",
	       readers, n, (unsigned long long)lat[n / 2],
	       (unsigned long long)lat[(size_t)n * 99 / 100],
	       (unsigned long long)lat[n - 1],
	       (unsigned long long)st.bound_waits);
	free(lat);
}

int
main(int argc, char **argv)
{
	struct settings init = {.verbosity = 1, .mem_limit = 64 << 20};
	struct px_cow_stats st;
	long ms = 300;
	int runs = 3;
	int n = 20000, opt, ret;
	bool fences = false;
	struct px_cow *c;

	while ((opt = getopt(argc, argv, "d:n:r:f")) != -1) {
		if (opt == 'f' && (fences = true))
			px_cow_set_hooks(&(struct px_cow_hooks){
			    .membarrier = refuse_membarrier});
		else if (opt == 'd')
			ms = atol(optarg);
		else if (opt == 'r')
			runs = atoi(optarg);
		else if (opt == 'n')
			n = atoi(optarg);
		else
			return 2;
	}
	if (ms <= 0 || n <= 0 || runs <= 0)
		return 2;
	ret = px_cow_create(&c, sizeof(init), &init, NULL);
	if (ret < 0) {
		LOG_ERROR("bench-cow: px_cow_create: %d", ret);
		return 1;
	}
	px_cow_stats(c, &st);
	printf("# px_cow arena: %s, %zu bytes per version, readers: %s\n",
	       px_region_backing_name(st.backing), st.block_size,
	       fences ? "full fences (-f)" : "membarrier if the kernel has it");
	bench_reads(c, ms, runs);
	bench_publish(c, n, 0);
	bench_publish(c, n, 1);
	px_cow_destroy(c);
	return 0;
}
