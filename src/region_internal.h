/* SPDX-License-Identifier: MIT */
/*
 * Internal to the region code: the hooks in force, and the smaps reader
 * shared by px_region and px_mmap.
 */
#ifndef PX_REGION_INTERNAL_H
#define PX_REGION_INTERNAL_H

#include <patinox/region.h>

#define PX_SZ_2M (2UL << 20)
#define PX_SZ_1G (1UL << 30)

/* The hooks in force: every member is set (real call or the test's). */
extern struct px_region_hooks px_region_os;

/* What smaps says about an address range, summed over its mappings. */
struct px_smaps_range {
	size_t kernel_page_size; /* of the first mapping in range */
	size_t rss;              /* Rss: base pages and THP mapped */
	size_t anon_huge;        /* AnonHugePages */
	size_t pmd_mapped;       /* ShmemPmdMapped + FilePmdMapped */
	size_t hugetlb;          /* Private_Hugetlb + Shared_Hugetlb */
	unsigned int mappings;   /* how many mappings overlap the range */
};

/* Reads smaps from @f for [@start, @start + @len).  0 or -errno. */
int
px_smaps_scan(FILE *f, uintptr_t start, size_t len, struct px_smaps_range *out);

size_t px_base_page_size(void);

static inline size_t
px_round_up(size_t v, size_t to)
{
	return (v + to - 1) & ~(to - 1);
}

#endif
