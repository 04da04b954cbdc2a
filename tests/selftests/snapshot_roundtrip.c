// SPDX-License-Identifier: MIT
/*
 * Warm restart at scale: a cache of 1M items (100k under sanitizers) is
 * saved and loaded into a fresh cache, and every item must come back
 * byte-identical: key, value, client flags, cas id and absolute expiry
 * time.  Prints the save and load rates as diagnostics (the benchmark,
 * bench/snapshot, measures them properly).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <patinox/cache.h>
#include <patinox/snapshot.h>

#include "harness.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ITEMS 100000u
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define ITEMS 100000u
#endif
#endif
#ifndef ITEMS
#define ITEMS 1000000u
#endif

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t
key_of(char *k, unsigned i)
{
	return (size_t)snprintf(k, 24, "key:%010u", i);
}

/* 20..219 bytes, every byte value used. */
static size_t
value_of(char *v, unsigned i)
{
	size_t len = 20 + (i * 2654435761u) % 200, j;

	for (j = 0; j < len; j++)
		v[j] = (char)(i * 31u + j * 7u);
	return len;
}

static uint32_t
flags_of(unsigned i)
{
	return i % 3 ? i * 2654435761u : 0;
}

static int64_t
ttl_of(unsigned i)
{
	return i % 4 == 0 ? 0 : 3600 + i % 100000;
}

TEST_T(snapshot_roundtrip_items_byte_identical, 120)
{
	char path[] = "/tmp/pxsnap-rt-XXXXXX", k[24], v[256], got[256];
	size_t limit = (size_t)ITEMS * 400 + (64u << 20);
	struct px_cache *c, *d;
	struct px_snapshot_info si, li;
	struct px_cache_info a, b;
	uint64_t *cas = malloc(ITEMS * sizeof(*cas));
	int fd = mkstemp(path);
	unsigned i, bad = 0;
	double t;

	ASSERT_GE(fd, 0);
	close(fd);
	ASSERT_NE(cas, NULL);
	ASSERT_EQ(px_cache_create(&c, limit, NULL), 0);
	for (i = 0; i < ITEMS; i++)
		ASSERT_EQ(px_cache_store(c, PX_CACHE_SET, k, key_of(k, i), v,
					 value_of(v, i), flags_of(i), ttl_of(i),
					 0, &cas[i]),
			  0);
	t = now_s();
	ASSERT_EQ(px_snapshot_save(c, path, NULL, &si), 0);
	TH_LOG("save: %u items, %.1f MB in %.2f s", ITEMS, si.bytes / 1e6,
	       now_s() - t);
	ASSERT_EQ(si.items, ITEMS);

	ASSERT_EQ(px_cache_create(&d, limit, NULL), 0);
	t = now_s();
	ASSERT_EQ(px_snapshot_load(d, path, &li), 0);
	TH_LOG("load: %.2f s", now_s() - t);
	ASSERT_EQ(li.loaded, ITEMS);
	ASSERT_EQ(px_cache_items(d), ITEMS);
	for (i = 0; i < ITEMS; i++) {
		size_t kl = key_of(k, i), vl = value_of(v, i);

		if (px_cache_get(d, k, kl, got, sizeof(got), &b) ||
		    px_cache_get(c, k, kl, NULL, 0, &a) != -ENOSPC ||
		    b.vlen != vl || memcmp(got, v, vl) ||
		    b.flags != flags_of(i) || b.cas != cas[i] ||
		    b.cas != a.cas || b.exptime != a.exptime)
			bad++;
	}
	EXPECT_EQ(bad, 0);
	px_cache_destroy(c);
	px_cache_destroy(d);
	free(cas);
	unlink(path);
}

TEST_HARNESS_MAIN
