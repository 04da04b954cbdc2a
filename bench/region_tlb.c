// SPDX-License-Identifier: MIT
/*
 * region_tlb: what hugepages buy for random access.  Random 8-byte reads
 * over one large region (4 GiB by default), independent (throughput) and
 * dependent (each address computed from the previous load: latency), on
 * 4 KiB pages, transparent hugepages and 2 MiB hugetlb pages in one run.
 * Prints ns per access (best of several rounds), the speed-up over 4 KiB
 * pages, the time to create and prefault each region, and the backing
 * the kernel really gave.
 *
 * The hugetlb row needs size / 2 MiB free pages.  With --reserve the
 * benchmark reserves that many pages of its own (root) and gives them
 * back after; without it, it uses free pages if there are enough and
 * otherwise skips the row and says why.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <patinox/error.h>
#include <patinox/region.h>

#include "../apps/common/log.h"
#include "../tests/selftests/procfs.h"

#define MB        (1UL << 20)
#define HP_2M_DIR "/sys/kernel/mm/hugepages/hugepages-2048kB/"

struct bench_opts {
	size_t size;
	uint64_t reads;     /* independent reads timed */
	uint64_t dep_reads; /* dependent reads timed */
	int rounds;         /* each row is measured this often; best kept */
	bool reserve;
};

struct row {
	enum px_region_backing backing;
	bool skipped;
	char why[256];
	char got[256];
	double create_s, indep_ns, dep_ns;
	/*
	 * The hugetlb region is created once and kept for every round:
	 * other users of the shared pool could take its pages between
	 * rounds.  Its create time is that of the one creation.
	 */
	bool keep;
	struct px_region *kept;
};

/*
 * CPU time of this thread (user and system, so prefaulting counts): the
 * machine is shared, and time spent descheduled while others run is not
 * what we measure.
 */
static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline uint64_t
next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A uniformly spread slot in [0, n) without a division. */
static inline size_t
slot(uint64_t r, size_t n)
{
	return (size_t)(((unsigned __int128)r * n) >> 64);
}

static double
time_independent(const uint64_t *p, size_t n, uint64_t reads)
{
	uint64_t s = 0x9e3779b97f4a7c15ULL, sum = 0;
	double t0 = now();

	for (uint64_t i = 0; i < reads; i++)
		sum += p[slot(next_rand(&s), n)];
	__asm__ volatile("" : : "r"(sum));
	return (now() - t0) * 1e9 / (double)reads;
}

/* Each address depends on the value just loaded: one miss at a time. */
static double
time_dependent(const uint64_t *p, size_t n, uint64_t reads)
{
	uint64_t s = 0x2545f4914f6cdd1dULL, v = 0;
	double t0 = now();

	for (uint64_t i = 0; i < reads; i++) {
		s = (s ^ v) * 0xff51afd7ed558ccdULL;
		s ^= s >> 33;
		v = p[slot(s, n)];
	}
	__asm__ volatile("" : : "r"(v));
	return (now() - t0) * 1e9 / (double)reads;
}

/*
 * Makes @need 2 MiB pages free: returns the pages added (0 when enough
 * were free) or -1 with @why filled when the row must be skipped.
 */
static long
hugetlb_prepare(long need, bool reserve, long *set_to, char *why, size_t len)
{
	long free_pages = procfs_read_long(HP_2M_DIR "free_hugepages");
	long nr = procfs_read_long(HP_2M_DIR "nr_hugepages");

	if (free_pages < 0 || nr < 0) {
		snprintf(why, len, "no 2 MiB hugetlb pool in this kernel");
		return -1;
	}
	if (!reserve && free_pages >= need)
		return 0;
	if (!reserve) {
		snprintf(why, len,
			 "needs %ld free 2 MiB pages, %ld free; run with "
			 "--reserve (root) to reserve them for the run",
			 need, free_pages);
		return -1;
	}
	/* Pages of our own: the free ones may be someone else's. */
	if (!procfs_write_long(HP_2M_DIR "nr_hugepages", nr + need) ||
	    procfs_read_long(HP_2M_DIR "nr_hugepages") < nr + need) {
		procfs_write_long(HP_2M_DIR "nr_hugepages", nr);
		snprintf(why, len, "could not reserve %ld 2 MiB pages", need);
		return -1;
	}
	LOG_NOTICE("reserved %ld 2 MiB hugepages for the run", need);
	*set_to = nr + need;
	return need;
}

/*
 * Gives back what was added, if the pool is still as we left it.  When
 * someone else changed it meanwhile (another test reserving or restoring
 * its own count), any write could undo their change: leave it and say so.
 */
static void
hugetlb_restore(long added, long set_to)
{
	long nr = procfs_read_long(HP_2M_DIR "nr_hugepages");

	if (added <= 0)
		return;
	if (nr != set_to) {
		LOG_WARN("nr_hugepages changed to %ld by someone else; "
			 "not giving back the %ld pages reserved",
			 nr, added);
		return;
	}
	procfs_write_long(HP_2M_DIR "nr_hugepages", nr - added);
	LOG_NOTICE("gave back %ld 2 MiB hugepages", added);
}

/* The kernel's account: backing, fallbacks and the share in hugepages. */
static void
describe(struct px_region *r, char *buf, size_t len)
{
	struct px_region_stats st;
	int n = px_region_describe(r, buf, len);

	if (n < 0 || (size_t)n >= len || px_region_stats(r, &st) < 0 ||
	    st.resident == 0)
		return;
	snprintf(buf + n, len - (size_t)n, ", %.0f%% of %zu MiB resident huge",
		 100.0 * (double)st.huge_resident / (double)st.resident,
		 st.resident / MB);
}

static void
keep_best(struct row *row, double create_s, double indep, double dep)
{
	bool first = row->indep_ns == 0;

	if (first || create_s < row->create_s)
		row->create_s = create_s;
	if (first || indep < row->indep_ns)
		row->indep_ns = indep;
	if (first || dep < row->dep_ns)
		row->dep_ns = dep;
}

static void
skip_row(struct row *row, int err)
{
	/* A pool shared with others may run dry between rounds. */
	LOG_WARN("%s: %s", px_region_backing_name(row->backing),
		 px_strerror(err));
	if (row->indep_ns == 0) {
		row->skipped = true;
		snprintf(row->why, sizeof(row->why), "create: %s",
			 px_strerror_in(PX_PART_REGION, err));
	}
}

static void
run_row(struct row *row, const struct bench_opts *bo)
{
	struct px_region_opts o;
	struct px_region *r = row->kept;
	double t0 = row->create_s, indep, dep;
	size_t n;
	int ret;

	if (!r) {
		px_region_opts_init(&o);
		o.backing = row->backing;
		o.populate = true;
		t0 = now();
		ret = px_region_create(&r, bo->size, &o);
		t0 = now() - t0;
		if (ret < 0) {
			skip_row(row, ret);
			return;
		}
		describe(r, row->got, sizeof(row->got));
	}
	n = bo->size / sizeof(uint64_t);
	time_independent(px_region_base(r), n, bo->reads / 10 + 1);
	indep = time_independent(px_region_base(r), n, bo->reads);
	dep = time_dependent(px_region_base(r), n, bo->dep_reads);
	if (row->keep)
		row->kept = r;
	else
		px_region_destroy(r);
	LOG_INFO("%s: %s; create+prefault %.2f s, %.1f / %.1f ns",
		 px_region_backing_name(row->backing), row->got, t0, indep,
		 dep);
	keep_best(row, t0, indep, dep);
}

static void
print_rows(const struct row *rows, int nr, const struct bench_opts *bo)
{
	const struct row *base = &rows[0];

	printf("region_tlb: %zu MiB, %llu independent + %llu dependent random "
	       "8-byte reads, best of %d rounds\n",
	       bo->size / MB, (unsigned long long)bo->reads,
	       (unsigned long long)bo->dep_reads, bo->rounds);
	printf("%-11s %9s %10s %8s %10s %8s  %s\n", "backing", "create_s",
	       "indep_ns", "x_4K", "dep_ns", "x_4K", "kernel says");
	for (int i = 0; i < nr; i++) {
		const struct row *r = &rows[i];

		if (r->skipped) {
			printf("%-11s skipped: %s\n",
			       px_region_backing_name(r->backing), r->why);
			continue;
		}
		printf("%-11s %9.2f %10.1f %8.2f %10.1f %8.2f  %s\n",
		       px_region_backing_name(r->backing), r->create_s,
		       r->indep_ns,
		       base->skipped ? 0 : base->indep_ns / r->indep_ns,
		       r->dep_ns, base->skipped ? 0 : base->dep_ns / r->dep_ns,
		       r->got);
	}
}

/* "4G", "512M", "1073741824": bytes, or 0 when unreadable. */
static size_t
parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	switch (*end) {
	case 'G':
	case 'g':
		v <<= 30;
		break;
	case 'M':
	case 'm':
		v <<= 20;
		break;
	case 'K':
	case 'k':
		v <<= 10;
		break;
	case '\0':
		break;
	default:
		return 0;
	}
	return (size_t)v;
}

static void
usage(const char *prog)
{
	fprintf(
	    stderr,
	    "usage: %s [-s SIZE] [-n READS] [-d DEP_READS] [-R ROUNDS] "
	    "[--reserve] "
	    "[-v]\n"
	    "  -s, --size SIZE       region size (default 4G; K/M/G)\n"
	    "  -n, --reads N         independent reads timed (default "
	    "20000000)\n"
	    "  -d, --dep-reads N     dependent reads timed (default "
	    "5000000)\n"
	    "  -R, --rounds N        measure every row N times, keep the "
	    "best (default 2)\n"
	    "  -r, --reserve         reserve SIZE / 2 MiB hugepages of its own "
	    "(root), give them back after\n"
	    "  -v, --verbose         log each region's backing\n",
	    prog);
}

static int
parse_args(int argc, char **argv, struct bench_opts *bo)
{
	static const struct option longs[] = {
	    {"size", required_argument, NULL, 's'},
	    {"reads", required_argument, NULL, 'n'},
	    {"dep-reads", required_argument, NULL, 'd'},
	    {"reserve", no_argument, NULL, 'r'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	*bo = (struct bench_opts){.size = 4UL << 30,
				  .reads = 20000000,
				  .dep_reads = 5000000,
				  .rounds = 2};
	while ((c = getopt_long(argc, argv, "s:n:d:R:rvh", longs, NULL)) !=
	       -1) {
		if (c == 's')
			bo->size = parse_size(optarg);
		else if (c == 'n')
			bo->reads = strtoull(optarg, NULL, 10);
		else if (c == 'd')
			bo->dep_reads = strtoull(optarg, NULL, 10);
		else if (c == 'R')
			bo->rounds = atoi(optarg);
		else if (c == 'r')
			bo->reserve = true;
		else if (c == 'v')
			log_set_level(LOG_LVL_INFO);
		else
			return -1;
	}
	bo->size &= ~(2 * MB - 1);
	return bo->size && bo->reads && bo->dep_reads && bo->rounds > 0 ? 0
									: -1;
}

int
main(int argc, char **argv)
{
	struct row rows[] = {
	    {.backing = PX_REGION_4K},
	    {.backing = PX_REGION_THP},
	    {.backing = PX_REGION_HUGETLB_2M},
	};
	struct bench_opts bo;
	long added, set_to = 0;

	if (parse_args(argc, argv, &bo) < 0) {
		usage(argv[0]);
		return 2;
	}
	added = hugetlb_prepare((long)(bo.size / (2 * MB)), bo.reserve, &set_to,
				rows[2].why, sizeof(rows[2].why));
	rows[2].skipped = added < 0;
	/*
	 * Rounds interleave the backings, so drift hits them alike; the
	 * hugetlb row goes first, taking its pages right after they are
	 * reserved, before anyone else sharing the pool can.
	 */
	for (int round = 0; round < bo.rounds; round++)
		for (int k = 0; k < 3; k++)
			if (!rows[(k + 2) % 3].skipped)
				run_row(&rows[(k + 2) % 3], &bo);
	px_region_destroy(rows[2].kept);
	hugetlb_restore(added, set_to);
	print_rows(rows, 3, &bo);
	return rows[0].skipped ? 1 : 0;
}
