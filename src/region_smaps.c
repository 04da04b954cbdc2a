// SPDX-License-Identifier: MIT
/*
 * Reading /proc/self/smaps for one address range: the kernel's word on
 * what backs a region (KernelPageSize, AnonHugePages, the hugetlb and
 * PMD-mapped counters, Rss).  The stream comes from a hook, so tests feed
 * it any text they like.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "region_internal.h"

struct smaps_field {
	const char *name;
	size_t offset;
};

/* Fields summed over every mapping that overlaps the range. */
static const struct smaps_field smaps_fields[] = {
    {"Rss:", offsetof(struct px_smaps_range, rss)},
    {"AnonHugePages:", offsetof(struct px_smaps_range, anon_huge)},
    {"ShmemPmdMapped:", offsetof(struct px_smaps_range, pmd_mapped)},
    {"FilePmdMapped:", offsetof(struct px_smaps_range, pmd_mapped)},
    {"Private_Hugetlb:", offsetof(struct px_smaps_range, hugetlb)},
    {"Shared_Hugetlb:", offsetof(struct px_smaps_range, hugetlb)},
};

/* A mapping header: "start-end perms offset dev inode [path]". */
static bool
parse_header(const char *line, uintptr_t *lo, uintptr_t *hi)
{
	uintmax_t a, b;
	int n = 0;

	if (sscanf(line, "%jx-%jx %n", &a, &b, &n) != 2 || n == 0)
		return false;
	*lo = (uintptr_t)a;
	*hi = (uintptr_t)b;
	return true;
}

static void
add_field(const char *line, struct px_smaps_range *out)
{
	unsigned long long kb;
	size_t i, n;

	for (i = 0; i < sizeof(smaps_fields) / sizeof(*smaps_fields); i++) {
		n = strlen(smaps_fields[i].name);
		if (strncmp(line, smaps_fields[i].name, n) != 0)
			continue;
		if (sscanf(line + n, "%llu", &kb) == 1)
			*(size_t *)((char *)out + smaps_fields[i].offset) +=
			    (size_t)kb << 10;
		return;
	}
}

static void
add_page_size(const char *line, struct px_smaps_range *out)
{
	unsigned long long kb;

	if (out->kernel_page_size == 0 &&
	    sscanf(line, "KernelPageSize: %llu", &kb) == 1)
		out->kernel_page_size = (size_t)kb << 10;
}

int
px_smaps_scan(FILE *f, uintptr_t start, size_t len, struct px_smaps_range *out)
{
	uintptr_t lo, hi, end = start + len;
	bool inside = false;
	char line[512];

	*out = (struct px_smaps_range){0};
	while (fgets(line, sizeof(line), f)) {
		if (parse_header(line, &lo, &hi)) {
			inside = lo < end && hi > start;
			out->mappings += inside;
			continue;
		}
		if (!inside)
			continue;
		add_page_size(line, out);
		add_field(line, out);
	}
	if (ferror(f))
		return -EIO;
	return out->mappings ? 0 : -ENOENT;
}
