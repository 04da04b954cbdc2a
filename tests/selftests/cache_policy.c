// SPDX-License-Identifier: MIT
/*
 * The cache's eviction policies against plain reference implementations,
 * on the real traces of shared/traces ($PX_TRACE_DIR, default
 * ../shared/traces; the trace tests SKIP when it is absent).
 *
 * First the yardsticks themselves: the trace reader (plain and gzip
 * files, malformed input) and the reference policies of trace_policy.h,
 * which must reproduce the miss ratios published with the traces and
 * behave as their papers say on small hand-made sequences.  Then the
 * cache's LRU, SIEVE and S3-FIFO against them, on every trace at 1% and
 * 10% of its footprint: the miss ratios must agree within half a point.
 *
 * Same capacity: the real cache counts bytes, so the replay
 * (trace_cache.h) stores fixed-size items (8-byte keys and values) and
 * creates the cache with max_items = the reference's capacity in
 * objects and a byte budget of twice what those items need, so that the
 * item limit, not bytes, decides every eviction; it then checks that the
 * cache held exactly that many items and evicted exactly one per insert
 * once full.  Both sides count cold misses.  S3-FIFO is compared with
 * the reference's window ghost, the form the cache implements (see
 * trace_policy.h); the textbook queue ghost differs from it by up to
 * half a point on the smallest caches, which is no fault of either.
 *
 * Time: each trace is replayed up to TRACE_TEST_LIMIT requests, which
 * covers every trace whole except orm-busy (5M requests: its first 1M
 * are used), to keep the program well under a minute on 2 cores.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <patinox/cache.h>

#include "harness.h"
#include "trace.h"
#include "trace_cache.h"
#include "trace_policy.h"

#define TRACE_TEST_LIMIT 1000000
#define AGREEMENT        0.005 /* half a point of miss ratio */
#define POLICY_TIMEOUT   120   /* seconds per policy test, all traces */

/*
 * The cache's S3-FIFO ghost is the paper's fingerprint table aged by
 * insertion count (src/cache/policy.c), so it is compared with that form
 * of the reference; the queue form is logged alongside.
 */
#define CACHE_GHOST REF_GHOST_WINDOW

/* Published request and unique-key counts (shared/traces/README.md). */
static const struct {
	const char *file;
	size_t requests;
	uint32_t unique;
} known_traces[] = {
    {"cloudPhysicsIO.keys", 113872, 48974},
    {"zipf_1.0.keys", 1000000, 1000},
    {"multi1.keys", 15858, 2606},
    {"sprite.keys", 133996, 7075},
    {"loop.keys", 505500, 1011},
    {"orm-busy.keys.gz", 5000000, 76349},
};

/*
 * Miss ratios that the traces README computed with its own simulator
 * (unit size, cold misses counted); the SIEVE repository's plot gives
 * the same for zipf_1.0 at 400 objects (LRU ~0.18, SIEVE ~0.14).
 */
static const struct {
	const char *file;
	uint32_t cap;
	double fifo, lru, sieve;
} published[] = {
    {"zipf_1.0.keys", 10, 0.8177, 0.7894, 0.6567},
    {"zipf_1.0.keys", 100, 0.4802, 0.4247, 0.3288},
    {"zipf_1.0.keys", 400, 0.2164, 0.1759, 0.1387},
    {"cloudPhysicsIO.keys", 490, 0.8476, 0.8379, 0.8291},
    {"cloudPhysicsIO.keys", 4897, 0.8054, 0.8049, 0.7907},
    {"multi1.keys", 26, 0.9897, 0.9897, 0.9443},
    {"multi1.keys", 261, 0.6588, 0.5655, 0.5311},
    {"sprite.keys", 71, 0.8284, 0.8351, 0.8143},
    {"sprite.keys", 708, 0.1805, 0.1349, 0.1807},
    {"loop.keys", 101, 1.0, 1.0, 1.0},
    {"orm-busy.keys.gz", 763, 0.2406, 0.2297, 0.2947},
    {"orm-busy.keys.gz", 7635, 0.1321, 0.1199, 0.1189},
};

/* The README rounds to 4 decimals. */
#define PUBLISHED_TOLERANCE 0.00006

static int
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) ? -errno : 0;
}

TEST(trace_reader_plain_and_gzip_agree)
{
	char dir[] = "/tmp/px-trace-XXXXXX", plain[64], gz[80], cmd[200];
	struct trace a, b;

	ASSERT_NOT_NULL(mkdtemp(dir));
	snprintf(plain, sizeof(plain), "%s/t.keys", dir);
	snprintf(gz, sizeof(gz), "%s/t.keys.gz", dir);
	ASSERT_EQ(write_file(plain, "7\n18446744073709551615\n7\n0\n"), 0);
	snprintf(cmd, sizeof(cmd), "gzip -c %s > %s", plain, gz);
	ASSERT_EQ(system(cmd), 0);

	ASSERT_EQ(trace_load(&a, plain, 0), 0);
	ASSERT_EQ(trace_load(&b, gz, 0), 0);
	EXPECT_STREQ(a.name, "t");
	EXPECT_STREQ(b.name, "t");
	ASSERT_EQ(a.n, 4);
	ASSERT_EQ(b.n, 4);
	EXPECT_EQ(a.nunique, 3);
	EXPECT_EQ(memcmp(a.ids, b.ids, 4 * sizeof(*a.ids)), 0);
	/* Dense ids in order of first appearance. */
	EXPECT_EQ(a.ids[0], 0);
	EXPECT_EQ(a.ids[1], 1);
	EXPECT_EQ(a.ids[2], 0);
	EXPECT_EQ(a.ids[3], 2);
	trace_free(&a);
	trace_free(&b);

	/* A prefix stops early, also in the middle of a gzip stream. */
	ASSERT_EQ(trace_load(&b, gz, 2), 0);
	EXPECT_EQ(b.n, 2);
	EXPECT_TRUE(b.truncated);
	trace_free(&b);
	/* A limit of exactly the trace's length truncates nothing. */
	ASSERT_EQ(trace_load(&b, gz, 4), 0);
	EXPECT_EQ(b.n, 4);
	EXPECT_FALSE(b.truncated);
	trace_free(&b);
	unlink(plain);
	unlink(gz);
	rmdir(dir);
}

TEST(trace_reader_rejects_malformed_input)
{
	static const char *const bad[] = {
	    "1\n2 \n",
	    "1\n-2\n",
	    "1\n\n2\n",
	    "x\n",
	    "1\r\n2\n",
	    "",
	    "99999999999999999999\n",
	};
	char dir[] = "/tmp/px-trace-XXXXXX", path[64];
	struct trace t;

	ASSERT_NOT_NULL(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/bad.keys", dir);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ASSERT_EQ(write_file(path, bad[i]), 0);
		EXPECT_EQ(trace_load(&t, path, 0), -EINVAL);
		EXPECT_TRUE(t.ids == NULL);
	}
	EXPECT_EQ(trace_load(&t, "/nonexistent/x.keys", 0), -ENOENT);
	/* gzip that fails (not gzip data) is an error, not a short trace. */
	snprintf(path, sizeof(path), "%s/bad.keys.gz", dir);
	ASSERT_EQ(write_file(path, "1\n2\n"), 0);
	EXPECT_LT(trace_load(&t, path, 0), 0);
	unlink(path);
	snprintf(path, sizeof(path), "%s/bad.keys", dir);
	unlink(path);
	rmdir(dir);
}

TEST(trace_reader_reads_every_trace)
{
	const char *dir = trace_dir();
	char *names[TRACE_MAX_FILES];
	struct trace t;
	int n;

	if (!dir)
		SKIP(return, "no traces folder (set PX_TRACE_DIR)");
	n = trace_list(dir, names);
	ASSERT_GT(n, 0);
	for (int i = 0; i < n; i++) {
		ASSERT_EQ(trace_load_named(&t, dir, names[i], 0), 0);
		TH_LOG("%s: %zu requests, %u keys", names[i], t.n, t.nunique);
		for (size_t k = 0;
		     k < sizeof(known_traces) / sizeof(known_traces[0]); k++) {
			if (strcmp(known_traces[k].file, names[i]))
				continue;
			EXPECT_EQ(t.n, known_traces[k].requests);
			EXPECT_EQ(t.nunique, known_traces[k].unique);
		}
		trace_free(&t);
	}
	trace_list_free(names, n);
}

static void
expect_published(struct __test_meta *_metadata, const struct trace *t, int row)
{
	double fifo = ref_miss_ratio(REF_FIFO, t, published[row].cap, 0);
	double lru = ref_miss_ratio(REF_LRU, t, published[row].cap, 0);
	double sieve = ref_miss_ratio(REF_SIEVE, t, published[row].cap, 0);

	TH_LOG("%s @%u: fifo %.4f lru %.4f sieve %.4f", t->name,
	       published[row].cap, fifo, lru, sieve);
	EXPECT_LT(fabs(fifo - published[row].fifo), PUBLISHED_TOLERANCE);
	EXPECT_LT(fabs(lru - published[row].lru), PUBLISHED_TOLERANCE);
	EXPECT_LT(fabs(sieve - published[row].sieve), PUBLISHED_TOLERANCE);
}

TEST(reference_policies_match_published_miss_ratios)
{
	const char *dir = trace_dir();
	const char *loaded = "";
	struct trace t = {0};
	int rows = 0;

	if (!dir)
		SKIP(return, "no traces folder (set PX_TRACE_DIR)");
	for (size_t i = 0; i < sizeof(published) / sizeof(published[0]); i++) {
		if (strcmp(loaded, published[i].file)) {
			trace_free(&t);
			loaded = "";
			if (trace_load_named(&t, dir, published[i].file, 0))
				continue;
			loaded = published[i].file;
		}
		expect_published(_metadata, &t, (int)i);
		rows++;
	}
	trace_free(&t);
	if (rows == 0)
		SKIP(return, "none of the published traces is in %s", dir);
}

/* A trace made in memory, for the hand-made sequences below. */
static void
make_trace(struct trace *t, const uint32_t *ids, size_t n, uint32_t nunique)
{
	memset(t, 0, sizeof(*t));
	t->ids = (uint32_t *)ids;
	t->n = n;
	t->nunique = nunique;
}

TEST(reference_policies_on_hand_made_sequences)
{
	/* Capacity 2.  LRU keeps 1 (recently used); FIFO drops it. */
	static const uint32_t seq[] = {1, 2, 1, 3, 1};
	/* SIEVE keeps the visited 1 and evicts 2, then 3. */
	static const uint32_t sieve_seq[] = {1, 2, 1, 3, 2, 1};
	struct trace t;

	make_trace(&t, seq, 5, 4);
	EXPECT_EQ(ref_miss_ratio(REF_LRU, &t, 2, 0), 3.0 / 5);
	EXPECT_EQ(ref_miss_ratio(REF_FIFO, &t, 2, 0), 4.0 / 5);
	EXPECT_EQ(ref_miss_ratio(REF_SIEVE, &t, 2, 0), 3.0 / 5);
	make_trace(&t, sieve_seq, 6, 4);
	/* 1 2 miss, 1 hit, 3 evicts 2 (1 visited), 2 evicts 1 (bit cleared
	 * by the hand), 1 misses: hits = 1. */
	EXPECT_EQ(ref_miss_ratio(REF_SIEVE, &t, 2, 0), 5.0 / 6);
}

TEST(reference_s3fifo_filters_one_hit_wonders)
{
	struct ref_cache c;
	uint32_t k;

	/* Capacity 10: small 1, main 9, ghost 9. */
	ASSERT_EQ(ref_create(&c, REF_S3FIFO, 1000, 10), 0);
	/* Keys hit once while in the small queue move to main. */
	for (k = 0; k < 9; k++) {
		EXPECT_FALSE(ref_access(&c, k));
		EXPECT_TRUE(ref_access(&c, k));
	}
	/* A long scan of new keys passes through small and ghost only. */
	for (k = 100; k < 900; k++)
		EXPECT_FALSE(ref_access(&c, k));
	EXPECT_EQ(c.main.size, 9);
	EXPECT_EQ(c.ghost.size, 9);
	for (k = 0; k < 9; k++)
		EXPECT_TRUE(ref_access(&c, k));
	/* A key back from the ghost queue goes straight to main. */
	EXPECT_FALSE(ref_access(&c, 898));
	EXPECT_EQ(c.where[898], REF_IN_MAIN);
	EXPECT_EQ(ref_cached(&c), 10);
	ref_destroy(&c);
}

TEST(reference_s3fifo_ghost_forms_differ_as_documented)
{
	struct ref_cache q, w;

	/* Capacity 10: the ghost remembers 9 keys. */
	ASSERT_EQ(ref_create(&q, REF_S3FIFO, 100, 10), 0);
	ASSERT_EQ(ref_create(&w, REF_S3FIFO, 100, 10), 0);
	ASSERT_EQ(ref_set_ghost(&w, REF_GHOST_WINDOW), 0);
	for (uint32_t k = 0; k < 9; k++) {
		ref_ghost_add(&q, k);
		ref_ghost_add(&w, k);
	}
	EXPECT_TRUE(ref_ghost_take(&q, 4));
	EXPECT_TRUE(ref_ghost_take(&w, 4));
	EXPECT_FALSE(ref_ghost_take(&q, 4));
	EXPECT_FALSE(ref_ghost_take(&w, 4));
	ref_ghost_add(&q, 9);
	ref_ghost_add(&w, 9);
	/* Taking 4 freed a slot of the queue, not of the window. */
	EXPECT_TRUE(ref_ghost_take(&q, 0));
	EXPECT_FALSE(ref_ghost_take(&w, 0));
	EXPECT_TRUE(ref_ghost_take(&q, 1));
	EXPECT_TRUE(ref_ghost_take(&w, 1));
	ref_ghost_add(&q, 10);
	ref_ghost_add(&w, 10);
	/* Both forget the oldest key once more are added than it holds. */
	EXPECT_EQ(q.ghost.size, 8);
	ref_destroy(&q);
	ref_destroy(&w);
}

TEST(reference_s3fifo_resists_scans_better_than_lru)
{
	const char *dir = trace_dir();
	struct trace t;
	double lru, s3;

	if (!dir)
		SKIP(return, "no traces folder (set PX_TRACE_DIR)");
	if (trace_load_named(&t, dir, "zipf_1.0.keys", 0))
		SKIP(return, "zipf_1.0.keys is not in %s", dir);
	/* The S3-FIFO paper's claim on skewed workloads: fewer misses. */
	lru = ref_miss_ratio(REF_LRU, &t, 100, 0);
	s3 = ref_miss_ratio(REF_S3FIFO, &t, 100, 0);
	TH_LOG("zipf_1.0 @100: lru %.4f s3fifo %.4f", lru, s3);
	EXPECT_LT(s3, lru - 0.05);
	trace_free(&t);
}

/*
 * Runs @t through the cache and the reference at @cap objects and expects
 * the same miss ratio within AGREEMENT.
 */
static void
expect_agreement(struct __test_meta *_metadata, const struct trace *t,
		 enum px_cache_policy px, enum ref_policy ref, uint32_t cap)
{
	struct trace_cache_result r;
	double want, queue;
	int ret;

	ret = trace_cache_run(t, px, cap, 0, &r);
	ASSERT_EQ(ret, 0);
	want = ref_miss_ratio_ghost(ref, CACHE_GHOST, t, cap, r.requests);
	queue = ref_miss_ratio(ref, t, cap, r.requests);
	TH_LOG("%-14s %-6s @%6u: cache %.4f reference %.4f (%+.2f points; "
	       "ghost queue %.4f)",
	       t->name, px_cache_policy_name(px), cap, r.miss_ratio, want,
	       (r.miss_ratio - want) * 100, queue);
	EXPECT_LT(fabs(r.miss_ratio - want), AGREEMENT);
}

static uint32_t
percent_of(uint32_t n, uint32_t pct)
{
	uint32_t v = (uint32_t)(((uint64_t)n * pct + 50) / 100);

	return v ? v : 1;
}

/*
 * A synthetic skewed trace (keys drawn with probability ~ 1/rank over
 * 5000 keys), so the comparison runs even where no traces folder is.
 */
static void
make_skewed_trace(struct trace *t)
{
	uint64_t x = 12345;
	const uint32_t keys = 5000, n = 200000;

	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "synthetic");
	t->ids = malloc(n * sizeof(*t->ids));
	t->n = n;
	t->nunique = keys;
	for (uint32_t i = 0; i < n && t->ids; i++) {
		double u;

		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		u = (double)(x >> 11) * 0x1.0p-53;
		/* Inverse of the continuous 1/x law on [1, keys + 1). */
		t->ids[i] = (uint32_t)(exp(u * log(keys + 1.0)) - 1.0);
		if (t->ids[i] >= keys)
			t->ids[i] = keys - 1;
	}
}

static void
check_policy(struct __test_meta *_metadata, enum px_cache_policy px,
	     enum ref_policy ref)
{
	const char *dir = trace_dir();
	char *names[TRACE_MAX_FILES];
	struct trace t;
	int n;

	make_skewed_trace(&t);
	ASSERT_NOT_NULL(t.ids);
	expect_agreement(_metadata, &t, px, ref, 50);
	expect_agreement(_metadata, &t, px, ref, 500);
	trace_free(&t);
	if (!dir && !_metadata->failed)
		SKIP(return, "synthetic trace only: no traces folder (set "
			     "PX_TRACE_DIR)");
	if (!dir)
		return;
	n = trace_list(dir, names);
	for (int i = 0; i < n; i++) {
		ASSERT_EQ(trace_load_named(&t, dir, names[i], TRACE_TEST_LIMIT),
			  0);
		expect_agreement(_metadata, &t, px, ref,
				 percent_of(t.nunique, 1));
		expect_agreement(_metadata, &t, px, ref,
				 percent_of(t.nunique, 10));
		trace_free(&t);
	}
	trace_list_free(names, n);
}

TEST_T(cache_lru_matches_reference, POLICY_TIMEOUT)
{
	check_policy(_metadata, PX_CACHE_POLICY_LRU, REF_LRU);
}

TEST_T(cache_sieve_matches_reference, POLICY_TIMEOUT)
{
	check_policy(_metadata, PX_CACHE_POLICY_SIEVE, REF_SIEVE);
}

TEST_T(cache_s3fifo_matches_reference, POLICY_TIMEOUT)
{
	check_policy(_metadata, PX_CACHE_POLICY_S3FIFO, REF_S3FIFO);
}

TEST_HARNESS_MAIN
