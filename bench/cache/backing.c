// SPDX-License-Identifier: MIT
/*
 * Which pages back the cache: read back from /proc/self/smaps for the
 * mapping that holds one of the cache's items, since the cache API does
 * not hand out its region.  A benchmark that compares hugepages with
 * 4 KiB pages must print what it really got, not what it asked for.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bench_cache.h"

struct smaps_entry {
	size_t kernel_page_kb, rss_kb, anon_huge_kb, hugetlb_kb;
};

/* Adds a "Name:   N kB" line to @e if it is one of the fields we use. */
static void
smaps_field(struct smaps_entry *e, const char *line)
{
	size_t v;

	if (sscanf(line, "KernelPageSize: %zu", &v) == 1)
		e->kernel_page_kb = v;
	else if (sscanf(line, "Rss: %zu", &v) == 1)
		e->rss_kb = v;
	else if (sscanf(line, "AnonHugePages: %zu", &v) == 1)
		e->anon_huge_kb = v;
	else if (sscanf(line, "Private_Hugetlb: %zu", &v) == 1 ||
		 sscanf(line, "Shared_Hugetlb: %zu", &v) == 1)
		e->hugetlb_kb += v;
}

/* Fills @e for the mapping holding @addr; 0 or -1 if none holds it. */
static int
smaps_find(const void *addr, struct smaps_entry *e)
{
	uintptr_t a = (uintptr_t)addr, lo, hi;
	bool inside = false, found = false;
	char line[512];
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return -1;
	memset(e, 0, sizeof(*e));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &lo, &hi) == 2 &&
		    strchr(line, ' ') > strchr(line, '-')) {
			if (found)
				break;
			inside = a >= lo && a < hi;
			found = inside;
			continue;
		}
		if (inside)
			smaps_field(e, line);
	}
	fclose(f);
	return found ? 0 : -1;
}

const char *
bench_backing_of(const void *addr, double *huge_share, size_t *resident)
{
	struct smaps_entry e;

	*huge_share = 0;
	*resident = 0;
	if (smaps_find(addr, &e))
		return "unknown";
	if (e.kernel_page_kb >= 1024 * 1024) {
		*huge_share = 1;
		*resident = e.hugetlb_kb << 10;
		return "hugetlb-1G";
	}
	if (e.kernel_page_kb >= 2048) {
		*huge_share = 1;
		*resident = e.hugetlb_kb << 10;
		return "hugetlb-2M";
	}
	*resident = e.rss_kb << 10;
	if (e.anon_huge_kb == 0)
		return "4K";
	*huge_share = e.rss_kb ? (double)e.anon_huge_kb / (double)e.rss_kb : 0;
	return "thp";
}

const char *
bench_cache_backing(struct px_cache *c, const void *key, size_t klen,
		    double *huge_share)
{
	struct px_cache_ref ref;
	const char *name;
	size_t resident;

	*huge_share = 0;
	if (px_cache_get_ref(c, key, klen, &ref))
		return "unknown";
	name = bench_backing_of(ref.value, huge_share, &resident);
	px_cache_ref_put(c, &ref);
	return name;
}
