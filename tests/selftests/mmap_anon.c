// SPDX-License-Identifier: MIT
/*
 * Anonymous maps on the real kernel: the hugepage hint gives MAP_HUGETLB
 * pages (KernelPageSize 2048 kB in smaps) when the pool has free pages,
 * and fails instead of silently falling back when it has none.
 */
#include <stdio.h>

#include <patinox/mmap.h>

#include "harness.h"
#include "procfs.h"

#define MB        (1UL << 20)
#define HP_2M_DIR "/sys/kernel/mm/hugepages/hugepages-2048kB/"

TEST(mmap_anon_huge_hint_uses_2m_pages)
{
	struct px_mmap_opts o;
	struct px_mmap *m;
	char b[6];

	if (procfs_hugepages_free(HP_2M_DIR) < 1)
		SKIP(return, "no free 2 MiB hugepages");
	px_mmap_opts_init(&o);
	o.mode = PX_MMAP_RW;
	o.huge = true;
	o.huge_shift = 21;
	o.populate = true;
	ASSERT_EQ(px_mmap_create_anon(&m, 1000, &o), 0);
	EXPECT_EQ(procfs_smaps_kb(px_mmap_data(m), "KernelPageSize"), 2048);
	EXPECT_EQ(px_mmap_len(m), 1000);
	ASSERT_EQ(px_mmap_write(m, 994, "hello", 6), 0);
	ASSERT_EQ(px_mmap_read(m, 994, b, 6), 0);
	EXPECT_STREQ(b, "hello");
	EXPECT_EQ(px_mmap_write(m, 995, "hello", 6), -ERANGE);
	px_mmap_destroy(m);
}

TEST(mmap_anon_huge_hint_fails_when_the_pool_is_short)
{
	long free_pages = procfs_hugepages_free(HP_2M_DIR);
	struct px_mmap_opts o;
	struct px_mmap *m;

	if (free_pages < 0)
		SKIP(return, "the kernel has no 2 MiB hugetlb pool");
	px_mmap_opts_init(&o);
	o.mode = PX_MMAP_RW;
	o.huge = true;
	o.huge_shift = 21;
	EXPECT_EQ(
	    px_mmap_create_anon(&m, (size_t)(free_pages + 1) * 2 * MB, &o),
	    -ENOMEM);
}

TEST(mmap_anon_plain_is_zeroed_and_grows)
{
	struct px_mmap *m;
	char b[4] = {1, 1, 1, 1};

	ASSERT_EQ(px_mmap_create_anon(&m, 3 * MB, NULL), 0);
	EXPECT_EQ(procfs_smaps_kb(px_mmap_data(m), "KernelPageSize"), 4);
	ASSERT_EQ(px_mmap_read(m, 3 * MB - 4, b, 4), 0);
	EXPECT_EQ(b[0] | b[1] | b[2] | b[3], 0);
	ASSERT_EQ(px_mmap_remap(m, 8 * MB, true), 0);
	EXPECT_EQ(px_mmap_write(m, 8 * MB - 1, "z", 1), 0);
	EXPECT_EQ(px_mmap_lock(m), 0);
	EXPECT_EQ(px_mmap_unlock(m), 0);
	px_mmap_destroy(m);
}

TEST_HARNESS_MAIN
