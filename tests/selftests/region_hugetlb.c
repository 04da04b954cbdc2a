// SPDX-License-Identifier: MIT
/*
 * Regions on the real kernel's hugetlb pools: a 2 MiB region shows
 * KernelPageSize 2048 kB in smaps (read here independently of the
 * library), a request the pool cannot cover falls back and says so, and
 * 1 GiB pages work when reserved.  When no 2 MiB pages are free and we
 * are root, the test reserves a few and restores the old count after.
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <patinox/region.h>

#include "harness.h"
#include "procfs.h"

#define MB        (1UL << 20)
#define HP_2M_DIR "/sys/kernel/mm/hugepages/hugepages-2048kB/"
#define HP_1G_DIR "/sys/kernel/mm/hugepages/hugepages-1048576kB/"

/* Makes @want 2 MiB pages free, reserving if root; old count in *old. */
FIXTURE(hugetlb2m)
{
	long old;    /* nr_hugepages to restore, -1: untouched */
	long set_to; /* what we wrote: restore only if it is still so */
};

FIXTURE_SETUP(hugetlb2m)
{
	long want = 4, free_pages = procfs_hugepages_free(HP_2M_DIR);

	self->old = -1;
	if (free_pages < 0)
		SKIP(return, "the kernel has no 2 MiB hugetlb pool");
	if (free_pages >= want)
		return;
	if (geteuid() != 0)
		SKIP(return, "%ld free 2 MiB hugepages and not root",
			   free_pages);
	self->old = procfs_read_long(HP_2M_DIR "nr_hugepages");
	self->set_to = self->old + want - free_pages;
	if (!procfs_write_long(HP_2M_DIR "nr_hugepages", self->set_to) ||
	    procfs_hugepages_free(HP_2M_DIR) < want) {
		procfs_write_long(HP_2M_DIR "nr_hugepages", self->old);
		SKIP(return, "could not reserve %ld 2 MiB hugepages", want);
	}
	TH_LOG("reserved %ld 2 MiB hugepages (was %ld)", want - free_pages,
	       self->old);
}

FIXTURE_TEARDOWN(hugetlb2m)
{
	/* Someone else changed the pool meanwhile: do not undo that. */
	if (self->old >= 0 &&
	    procfs_read_long(HP_2M_DIR "nr_hugepages") == self->set_to)
		procfs_write_long(HP_2M_DIR "nr_hugepages", self->old);
}

TEST_F(hugetlb2m, region_2m_shows_kernel_page_size_2048kb)
{
	struct px_region_opts o;
	struct px_region_stats st;
	struct px_region *r;
	char desc[256];

	px_region_opts_init(&o);
	o.backing = PX_REGION_HUGETLB_2M;
	o.populate = true;
	ASSERT_EQ(px_region_create(&r, 3 * MB, &o), 0);
	px_region_describe(r, desc, sizeof(desc));
	TH_LOG("%s", desc);
	EXPECT_EQ(procfs_smaps_kb(px_region_base(r), "KernelPageSize"), 2048);
	EXPECT_EQ(px_region_backing(r), PX_REGION_HUGETLB_2M);
	EXPECT_TRUE(px_region_verified(r));
	EXPECT_EQ(px_region_page_size(r), 2 * MB);
	EXPECT_EQ(px_region_size(r), 4 * MB);
	ASSERT_EQ(px_region_stats(r, &st), 0);
	EXPECT_EQ(st.resident, 4 * MB);
	EXPECT_EQ(st.huge_resident, 4 * MB);
	memset(px_region_base(r), 0x5a, px_region_size(r));
	ASSERT_EQ(px_region_release(r, px_region_base(r), 2 * MB), 0);
	EXPECT_EQ(((char *)px_region_base(r))[0], 0);
	px_region_destroy(r);
}

TEST_F(hugetlb2m, region_2m_shareable_maps_a_second_time)
{
	struct px_region_opts o;
	struct px_region *a, *b;
	char *p, *q;

	px_region_opts_init(&o);
	o.backing = PX_REGION_HUGETLB_2M;
	o.shareable = true;
	o.name = "px-selftest";
	ASSERT_EQ(px_region_create(&a, 2 * MB, &o), 0);
	ASSERT_EQ(px_region_backing(a), PX_REGION_HUGETLB_2M);
	p = px_region_base(a);
	strcpy(p + 12345, "shared hugepage");
	ASSERT_EQ(px_region_map_fd(&b, px_region_fd(a), NULL), 0);
	q = px_region_base(b);
	EXPECT_EQ(procfs_smaps_kb(q, "KernelPageSize"), 2048);
	EXPECT_EQ(px_region_backing(b), PX_REGION_HUGETLB_2M);
	EXPECT_STREQ(q + 12345, "shared hugepage");
	EXPECT_NE(ftruncate(px_region_fd(a), 0), 0);
	ASSERT_EQ(px_region_release(a, p, 2 * MB), 0);
	EXPECT_EQ(q[12345], 0);
	px_region_destroy(b);
	px_region_destroy(a);
}

/*
 * More than the pool holds: the 2 MiB step fails and "best" falls back
 * to THP (or 4K), saying why.  Nothing is touched, so no memory is used.
 */
TEST(region_2m_without_enough_pages_falls_back_and_says_so)
{
	long free_pages = procfs_hugepages_free(HP_2M_DIR);
	struct px_region_opts o;
	struct px_region *r;
	char desc[256];

	px_region_opts_init(&o);
	o.backing = PX_REGION_BEST;
	if (free_pages < 0)
		free_pages = 0;
	ASSERT_EQ(px_region_create(&r, (size_t)(free_pages + 1) * 2 * MB, &o),
		  0);
	px_region_describe(r, desc, sizeof(desc));
	TH_LOG("%ld free 2 MiB pages: %s", free_pages, desc);
	EXPECT_NE(px_region_step_error(r, PX_REGION_HUGETLB_2M), 0);
	EXPECT_TRUE(px_region_backing(r) == PX_REGION_THP ||
		    px_region_backing(r) == PX_REGION_4K);
	EXPECT_NE(strstr(desc, "fell back: "), NULL);
	EXPECT_NE(strstr(desc, "hugetlb-2M: "), NULL);
	EXPECT_EQ(procfs_smaps_kb(px_region_base(r), "KernelPageSize"), 4);
	px_region_destroy(r);
}

TEST(region_1g_when_reserved)
{
	long free_pages = procfs_hugepages_free(HP_1G_DIR);
	struct px_region_opts o;
	struct px_region *r;

	if (free_pages < 1)
		SKIP(return, "no free 1 GiB hugepages reserved");
	px_region_opts_init(&o);
	o.backing = PX_REGION_HUGETLB_1G;
	o.populate = true;
	ASSERT_EQ(px_region_create(&r, 1, &o), 0);
	EXPECT_EQ(procfs_smaps_kb(px_region_base(r), "KernelPageSize"),
		  1048576);
	EXPECT_EQ(px_region_backing(r), PX_REGION_HUGETLB_1G);
	EXPECT_EQ(px_region_size(r), 1024 * MB);
	px_region_destroy(r);
}

TEST_HARNESS_MAIN
