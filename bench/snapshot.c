// SPDX-License-Identifier: MIT
/*
 * bench/snapshot: what a point-in-time snapshot costs a cache under load.
 * A cache of -s MiB (default 1024: the issue asks for 4 GiB, pass -s 4096
 * on a machine with room) is filled with 100-byte values, then -t threads
 * run a 90/10 get/set load on it while the measurements run:
 *
 *  1. the pause: how long px_cache_snap_begin() holds the writer lock, and
 *     the longest request seen while the snapshot runs (and, for the noise
 *     floor, in an equally long window without one), against fork() of a
 *     process holding the same amount of touched 4 KiB-page memory,
 *     measured in the same run (target: pause <= 0.1x fork);
 *  2. load throughput during the snapshot against the same load in the
 *     1.5 s before and after it (target >= 0.8x); -r paces the save;
 *  3. snapshot write and restart load rates in GB/s (file bytes per
 *     second; the file goes to -f, default /var/tmp, a real disk here).
 * -i runs the save as SCHED_IDLE, -n N at nice N, -b N walks N index
 * buckets per read-side section.
 * -H measures instead a warm roll through px_cache_handover() and
 * px_cache_adopt() (a shareable cache, no load running), against a save
 * to -f and a load of it into a fresh cache, in the same run.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <patinox/cache.h>
#include <patinox/error.h>
#include <patinox/snapshot.h>

#include "../apps/common/log.h"

#define PHASES    5 /* warm-up, baseline, snapshot, after, start window */
#define WINDOW_NS 20000000ull /* the start window: first 20 ms */
#define VAL_LEN   100
#define ITEM_EST  176 /* bytes of budget per item, header and index included */

struct loader {
	struct px_cache *c;
	size_t keys;
	unsigned write_pct;
	uint64_t ops[PHASES];
	uint64_t max_ns[PHASES];
	uint64_t sets[PHASES];
	uint64_t set_ns[PHASES]; /* time in sets; the rest of ops is gets */
	uint64_t get_ns[PHASES];
	pthread_t th;
};

static _Atomic int phase;
static _Atomic uint64_t snap_start; /* when the save was called */
static _Atomic bool stop;

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t
key_of(char *k, uint64_t i)
{
	return (size_t)snprintf(k, 24, "key:%012llu", (unsigned long long)i);
}

static void *
load_loop(void *arg)
{
	struct loader *l = arg;
	uint64_t x = (uint64_t)(uintptr_t)l * 0x9e3779b97f4a7c15ull | 1;
	char k[24], v[VAL_LEN], buf[VAL_LEN];

	memset(v, 'v', sizeof(v));
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		int p = atomic_load_explicit(&phase, memory_order_relaxed);
		uint64_t t0, dt;
		size_t kl;

		bool set;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		kl = key_of(k, x % l->keys);
		set = (x >> 40) % 100 < l->write_pct;
		t0 = now_ns();
		if (set)
			px_cache_set(l->c, k, kl, v, VAL_LEN, 0, 0);
		else
			px_cache_get(l->c, k, kl, buf, sizeof(buf), NULL);
		dt = now_ns() - t0;
		if (set) {
			l->sets[p]++;
			l->set_ns[p] += dt;
		} else {
			l->get_ns[p] += dt;
		}
		if (p == 2 && t0 - atomic_load(&snap_start) < WINDOW_NS &&
		    dt > l->max_ns[4])
			l->max_ns[4] = dt;
		l->ops[p]++;
		if (dt > l->max_ns[p])
			l->max_ns[p] = dt;
	}
	return NULL;
}

/* fork() of a process holding @bytes of touched 4 KiB pages: best of 3. */
static uint64_t
fork_ns(size_t bytes)
{
	char *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t best = UINT64_MAX, t0, dt;
	int i;

	if (m == MAP_FAILED)
		return 0;
	madvise(m, bytes, MADV_NOHUGEPAGE);
	memset(m, 1, bytes);
	for (i = 0; i < 3; i++) {
		pid_t pid;

		t0 = now_ns();
		pid = fork();
		if (pid == 0)
			_exit(0);
		dt = now_ns() - t0;
		waitpid(pid, NULL, 0);
		if (dt < best)
			best = dt;
	}
	munmap(m, bytes);
	return best;
}

static size_t
fill(struct px_cache *c, size_t mib)
{
	size_t n = mib * (1u << 20) / ITEM_EST * 9 / 10, i;
	char k[24], v[VAL_LEN];

	memset(v, 'v', sizeof(v));
	for (i = 0; i < n; i++)
		px_cache_set(c, k, key_of(k, i), v, VAL_LEN, (uint32_t)i, 0);
	return n;
}

static void
set_phase(int p, uint64_t *t)
{
	atomic_store(&phase, p);
	*t = now_ns();
}

static uint64_t
sum_ops(struct loader *l, int nl, int p, uint64_t *max)
{
	uint64_t n = 0;
	int i;

	*max = 0;
	for (i = 0; i < nl; i++) {
		n += l[i].ops[p];
		if (l[i].max_ns[p] > *max)
			*max = l[i].max_ns[p];
	}
	return n;
}

/* Where the load's time went: mean get and set, grace periods waited. */
static void
report_split(struct loader *l, int nl, const uint64_t *gp, uint64_t base_ns,
	     uint64_t snap_ns)
{
	uint64_t gets[2] = {0}, sets[2] = {0}, gns[2] = {0}, sns[2] = {0};
	int i, k;

	for (i = 0; i < nl; i++) {
		for (k = 0; k < 2; k++) {
			sets[k] += l[i].sets[k + 1];
			gets[k] += l[i].ops[k + 1] - l[i].sets[k + 1];
			sns[k] += l[i].set_ns[k + 1];
			gns[k] += l[i].get_ns[k + 1];
		}
	}
	printf("   mean get %.0f ns before, %.0f ns during; mean set %.0f ns "
	       "before, %.0f ns during; writers waited %.0f grace periods/s "
	       "before, %.0f/s during\n",
	       gets[0] ? (double)gns[0] / gets[0] : 0,
	       gets[1] ? (double)gns[1] / gets[1] : 0,
	       sets[0] ? (double)sns[0] / sets[0] : 0,
	       sets[1] ? (double)sns[1] / sets[1] : 0,
	       (gp[1] - gp[0]) * 1e9 / base_ns,
	       (gp[2] - gp[1]) * 1e9 / snap_ns);
}

static uint64_t
grace_periods(const struct px_cache *c)
{
	uint64_t v[PX_CACHE_METRIC_COUNT];

	px_cache_metrics(c, v);
	return v[PX_CACHE_M_grace_periods];
}

struct run {
	size_t mib;
	int threads;
	unsigned write_pct;
	uint64_t rate_mb; /* -r: pace the save to this many MB/s, 0: no */
	bool idle;        /* -i: the save runs as SCHED_IDLE */
	size_t walk;      /* -b: index buckets per walk step, 0: Kconfig */
	int nice;         /* -n: the save's nice value, 0: unchanged */
	const char *file;
};

static int
measure(const struct run *r, struct px_cache *c, size_t keys, uint64_t fork_t)
{
	struct loader *l = calloc((size_t)r->threads, sizeof(*l));
	struct px_snapshot_opts so;
	struct px_snapshot_info si;
	uint64_t t_base, t_snap, t_end, t_after, base_max, snap_max, win_max;
	uint64_t nb, ns, na, after_max, gp[3];
	double without, during;
	int i, err;

	for (i = 0; i < r->threads; i++) {
		l[i] = (struct loader){
		    .c = c, .keys = keys, .write_pct = r->write_pct};
		pthread_create(&l[i].th, NULL, load_loop, &l[i]);
	}
	usleep(300000);
	set_phase(1, &t_base);
	gp[0] = grace_periods(c);
	usleep(1500000);
	atomic_store(&snap_start, now_ns());
	set_phase(2, &t_snap);
	gp[1] = grace_periods(c);
	px_snapshot_opts_init(&so);
	so.max_rate = r->rate_mb * 1000000;
	so.idle_priority = r->idle;
	so.walk_buckets = r->walk;
	so.nice = r->nice;
	err = px_snapshot_save(c, r->file, &so, &si);
	set_phase(3, &t_end);
	gp[2] = grace_periods(c);
	usleep(1500000); /* a second baseline, after */
	t_after = now_ns();
	atomic_store(&stop, true);
	for (i = 0; i < r->threads; i++)
		pthread_join(l[i].th, NULL);
	if (err) {
		LOG_ERROR("bench-snapshot: save: %s",
			  px_strerror_in(PX_PART_SNAPSHOT, err));
		free(l);
		return 1;
	}
	nb = sum_ops(l, r->threads, 1, &base_max);
	na = sum_ops(l, r->threads, 3, &after_max);
	if (after_max > base_max)
		base_max = after_max;
	without = (nb + na) * 1e9 / (t_snap - t_base + t_after - t_end);
	ns = sum_ops(l, r->threads, 2, &snap_max);
	during = ns * 1e9 / (t_end - t_snap);
	sum_ops(l, r->threads, 4, &win_max);
	printf("1. pause: begin holds the writer lock %.1f us; longest request "
	       "in the first 20 ms of the snapshot %.1f us, during all of it "
	       "%.1f us (without a snapshot: %.1f us); fork() of %zu MiB of "
	       "4K pages %.1f us\n",
	       si.begin_ns / 1e3, win_max / 1e3, snap_max / 1e3, base_max / 1e3,
	       r->mib, fork_t / 1e3);
	printf("   ratio begin/fork %.5fx, start-window request/fork %.3fx "
	       "(target <= 0.1x)\n",
	       (double)si.begin_ns / fork_t, (double)win_max / fork_t);
	printf("2. throughput: %.0f ops/s without (1.5 s before and after), "
	       "%.0f ops/s during the snapshot: %.2fx (target >= 0.8x)\n",
	       without, during, during / without);
	report_split(l, r->threads, gp, t_snap - t_base, t_end - t_snap);
	printf("3. write: %llu items, %.1f MB in %.2f s = %.2f GB/s "
	       "(%s, %llu retained)\n",
	       (unsigned long long)si.items, si.bytes / 1e6,
	       si.elapsed_ns / 1e9, (double)si.bytes / si.elapsed_ns,
	       si.uring ? (si.direct ? "io_uring, O_DIRECT" : "io_uring")
			: "pwrite",
	       (unsigned long long)si.retained);
	free(l);
	return 0;
}

/* The load path before px_cache_restore_many: one lock hold per item. */
static int
restore_one(void *arg, const struct px_cache_ref *item)
{
	int err = px_cache_restore(arg, item);

	return err == -ETIME || err == -E2BIG ? 0 : err;
}

/* Load @r->file into a fresh cache, batched or item by item; seconds. */
static double
load_into_fresh(const struct run *r, bool batched, uint64_t *items)
{
	struct px_snapshot_info li;
	struct px_cache *d;
	uint64_t t0;
	int err = px_cache_create(&d, r->mib << 20, NULL);

	if (err)
		return -1;
	t0 = now_ns();
	if (batched) {
		err = px_snapshot_load(d, r->file, &li);
	} else {
		err = px_snapshot_read(r->file, NULL, NULL, &li);
		if (!err)
			err = px_snapshot_read(r->file, restore_one, d, NULL);
		px_cache_cas_floor(d, li.cas);
	}
	t0 = now_ns() - t0;
	*items = px_cache_items(d);
	px_cache_destroy(d);
	if (err) {
		LOG_ERROR("bench-snapshot: load: %s",
			  px_strerror_in(PX_PART_SNAPSHOT, err));
		return -1;
	}
	return t0 / 1e9;
}

/*
 * Restart load rates.  The file was written with O_DIRECT and a file this
 * large is read with O_DIRECT (snapshot_stream.c), so every pass of every
 * load reads the disk: the two loads differ only in how items are stored
 * (both use the read-ahead stream).
 */
static int
measure_load(const struct run *r)
{
	struct px_snapshot_info vi;
	uint64_t t0 = now_ns(), n1, n2;
	double one, many;
	int err = px_snapshot_read(r->file, NULL, NULL, &vi);

	if (err)
		return 1;
	t0 = now_ns() - t0;
	printf("   verify only (file from disk): %.1f MB in %.2f s = %.2f "
	       "GB/s\n",
	       vi.bytes / 1e6, t0 / 1e9, (double)vi.bytes / t0);
	one = load_into_fresh(r, false, &n1);
	many = load_into_fresh(r, true, &n2);
	if (one < 0 || many < 0)
		return 1;
	printf("   load item by item (one lock per item, the old store path): "
	       "%llu "
	       "items in %.2f s = %.2f GB/s\n",
	       (unsigned long long)n1, one, vi.bytes / one / 1e9);
	printf("   load batched (px_snapshot_load): %llu items in %.2f s = "
	       "%.2f GB/s: %.2fx item by item (verify pass and restore pass, "
	       "both from the disk)\n",
	       (unsigned long long)n2, many, vi.bytes / many / 1e9, one / many);
	return 0;
}

static double
secs_since(uint64_t t0)
{
	return (double)(now_ns() - t0) / 1e9;
}

/* Save, then load into a fresh cache: the restart a roll replaces. */
static int
save_and_load(const struct run *r, struct px_cache *c, double *save_s,
	      double *load_s)
{
	struct px_snapshot_info si, li;
	struct px_cache *fresh;
	uint64_t t0 = now_ns();
	int err = px_snapshot_save(c, r->file, NULL, &si);

	*save_s = secs_since(t0);
	if (err || px_cache_create(&fresh, r->mib << 20, NULL))
		return 1;
	t0 = now_ns();
	err = px_snapshot_load(fresh, r->file, &li);
	*load_s = secs_since(t0);
	printf("   snapshot: save %.3f s, load %.3f s (%llu items, %.1f MB)\n",
	       *save_s, *load_s, (unsigned long long)li.loaded, si.bytes / 1e6);
	px_cache_destroy(fresh);
	return err ? 1 : 0;
}

static int
measure_handover(const struct run *r)
{
	struct px_cache_opts o;
	struct px_cache *c;
	double save_s, load_s, give_s, take_s;
	size_t items, kept;
	uint64_t t0;
	int fd;

	px_cache_opts_init(&o);
	o.region.shareable = true;
	if (px_cache_create(&c, r->mib << 20, &o))
		return 1;
	fill(c, r->mib);
	items = px_cache_items(c);
	printf("# warm roll: cache %zu MiB, %zu items of %d B, file %s\n",
	       r->mib, items, VAL_LEN, r->file);
	if (save_and_load(r, c, &save_s, &load_s))
		return 1;
	t0 = now_ns();
	if (px_cache_handover(c, &fd))
		return 1;
	give_s = secs_since(t0);
	t0 = now_ns();
	if (px_cache_adopt(&c, fd, NULL))
		return 1;
	take_s = secs_since(t0);
	close(fd);
	kept = px_cache_items(c);
	printf("   handover %.3f ms + adopt %.3f ms (%zu items kept): "
	       "%.4fx the time of save + load\n",
	       give_s * 1e3, take_s * 1e3, kept,
	       (give_s + take_s) / (save_s + load_s));
	px_cache_destroy(c);
	unlink(r->file);
	return kept == items ? 0 : 1;
}

int
main(int argc, char **argv)
{
	struct run r = {.mib = 1024,
			.threads = 1,
			.write_pct = 10,
			.file = "/var/tmp/pxsnap-bench.snap"};
	struct px_cache *c;
	uint64_t fork_t;
	size_t keys;
	bool handover = false;
	int opt, ret;

	while ((opt = getopt(argc, argv, "s:t:w:f:r:ib:n:H")) != -1) {
		if (opt == 'H')
			handover = true;
		else if (opt == 'i')
			r.idle = true;
		else if (opt == 'n')
			r.nice = atoi(optarg);
		else if (opt == 'b')
			r.walk = (size_t)atol(optarg);
		else if (opt == 'r')
			r.rate_mb = (uint64_t)atoll(optarg);
		else if (opt == 's')
			r.mib = (size_t)atol(optarg);
		else if (opt == 't')
			r.threads = atoi(optarg);
		else if (opt == 'w')
			r.write_pct = (unsigned)atoi(optarg);
		else if (opt == 'f')
			r.file = optarg;
		else
			return 2;
	}
	if (r.mib < 16 || r.threads < 1 || r.write_pct > 100)
		return 2;
	if (handover)
		return measure_handover(&r);
	fork_t = fork_ns(r.mib << 20);
	ret = px_cache_create(&c, r.mib << 20, NULL);
	if (ret) {
		LOG_ERROR("bench-snapshot: px_cache_create: %d", ret);
		return 1;
	}
	keys = fill(c, r.mib);
	printf(
	    "# cache %zu MiB, %zu items of %d B, %d load thread(s), "
	    "%u%% sets, file %s, save paced at %llu MB/s (0: not)%s, nice %d\n",
	    r.mib, px_cache_items(c), VAL_LEN, r.threads, r.write_pct, r.file,
	    (unsigned long long)r.rate_mb, r.idle ? ", save as SCHED_IDLE" : "",
	    r.nice);
	ret = measure(&r, c, keys, fork_t);
	px_cache_destroy(c);
	if (!ret)
		ret = measure_load(&r);
	unlink(r.file);
	return ret;
}
