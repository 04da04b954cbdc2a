// SPDX-License-Identifier: MIT
/*
 * Transparent hugepages on the real kernel: a populated THP region is
 * reported THP only when smaps shows AnonHugePages for it, and 4K
 * otherwise; MADV_COLLAPSE, where the kernel has it, makes a region of
 * base pages huge.
 */
#include <stdio.h>
#include <sys/mman.h>

#include <patinox/region.h>

#include "harness.h"
#include "procfs.h"

#define MB (1UL << 20)

/* AnonHugePages (bytes) of the mapping holding @addr; -1 on error. */
static long
smaps_anon_huge(const void *addr)
{
	long kb = procfs_smaps_kb(addr, "AnonHugePages");

	return kb < 0 ? -1 : kb * 1024;
}

TEST(region_thp_backing_matches_anon_huge_pages)
{
	struct px_region_opts o;
	struct px_region_stats st;
	struct px_region *r;
	char desc[256];
	long huge;

	px_region_opts_init(&o);
	o.backing = PX_REGION_THP;
	o.populate = true;
	ASSERT_EQ(px_region_create(&r, 8 * MB, &o), 0);
	px_region_describe(r, desc, sizeof(desc));
	huge = smaps_anon_huge(px_region_base(r));
	TH_LOG("%s; AnonHugePages %ld", desc, huge);
	ASSERT_GE(huge, 0);
	EXPECT_TRUE(px_region_verified(r));
	if (huge > 0)
		EXPECT_EQ(px_region_backing(r), PX_REGION_THP);
	else
		EXPECT_EQ(px_region_backing(r), PX_REGION_4K);
	ASSERT_EQ(px_region_stats(r, &st), 0);
	EXPECT_EQ(st.huge_resident, (size_t)huge);
	EXPECT_EQ(st.resident, 8 * MB);
	px_region_destroy(r);
}

TEST(region_collapse_makes_base_pages_huge)
{
	struct px_region_opts o;
	struct px_region *r;
	char *p;
	int ret;

	/* Fault base pages first: a 4K region, advised and collapsed. */
	px_region_opts_init(&o);
	o.backing = PX_REGION_THP;
	ASSERT_EQ(px_region_create(&r, 4 * MB, &o), 0);
	p = px_region_base(r);
	ASSERT_EQ(madvise(p, 4 * MB, MADV_NOHUGEPAGE), 0);
	memset(p, 1, 4 * MB);
	ASSERT_EQ(smaps_anon_huge(p), 0);
	ASSERT_EQ(madvise(p, 4 * MB, MADV_HUGEPAGE), 0);
	ret = madvise(p, 4 * MB, 25 /* MADV_COLLAPSE */) ? -errno : 0;
	if (ret == -EINVAL)
		SKIP(px_region_destroy(r);
		     return, "this kernel has no MADV_COLLAPSE");
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(px_region_verify(r), 0);
	EXPECT_EQ(px_region_backing(r), PX_REGION_THP);
	EXPECT_EQ(smaps_anon_huge(p), 4 * MB);
	px_region_destroy(r);

	/* The option does the same at creation. */
	o.populate = true;
	o.collapse = true;
	ASSERT_EQ(px_region_create(&r, 4 * MB, &o), 0);
	EXPECT_EQ(px_region_collapse_error(r), 0);
	EXPECT_EQ(px_region_backing(r), PX_REGION_THP);
	px_region_destroy(r);
}

TEST_HARNESS_MAIN
