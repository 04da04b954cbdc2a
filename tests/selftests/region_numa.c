// SPDX-License-Identifier: MIT
/*
 * NUMA placement on the real kernel: a region bound to node 0 has its
 * policy and its pages there, as /proc/self/numa_maps shows.  This
 * machine has one node, so only the single-node path runs here.
 */
#include <stdio.h>

#include <patinox/region.h>

#include "harness.h"

#define MB (1UL << 20)

/* The numa_maps line of the mapping starting at @addr, or false. */
static bool
numa_maps_line(const void *addr, char *line, size_t len)
{
	FILE *f = fopen("/proc/self/numa_maps", "r");
	unsigned long start;
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, (int)len, f))
		found = sscanf(line, "%lx ", &start) == 1 &&
			start == (uintptr_t)addr;
	fclose(f);
	line[strcspn(line, "\n")] = '\0';
	return found;
}

TEST(region_numa_binds_to_node_0)
{
	struct px_region_opts o;
	struct px_region_stats st;
	struct px_region *r;
	char line[1024];
	int ret;

	px_region_opts_init(&o);
	o.backing = PX_REGION_4K;
	o.numa_node = 0;
	o.populate = true;
	ret = px_region_create(&r, 4 * MB, &o);
#ifndef CONFIG_PX_REGION_NUMA
	ASSERT_EQ(ret, -EOPNOTSUPP);
	SKIP(return, "CONFIG_PX_REGION_NUMA is off: -EOPNOTSUPP as promised");
#endif
	if (ret == -EOPNOTSUPP)
		SKIP(return, "libnuma says NUMA is unavailable here");
	ASSERT_EQ(ret, 0);
	ASSERT_TRUE(numa_maps_line(px_region_base(r), line, sizeof(line)));
	TH_LOG("%s", line);
	EXPECT_NE(strstr(line, "bind:0"), NULL);
	EXPECT_NE(strstr(line, "N0=1024"), NULL);
	ASSERT_EQ(px_region_stats(r, &st), 0);
	EXPECT_EQ(st.numa_node, 0);
	px_region_destroy(r);
}

TEST(region_numa_interleave_sets_the_policy)
{
	struct px_region_opts o;
	struct px_region *r;
	char line[1024];
	int ret;

	px_region_opts_init(&o);
	o.backing = PX_REGION_4K;
	o.numa_interleave = true;
	ret = px_region_create(&r, 1 * MB, &o);
	if (ret == -EOPNOTSUPP)
		SKIP(return, "no NUMA support (libnuma or Kconfig)");
	ASSERT_EQ(ret, 0);
	ASSERT_TRUE(numa_maps_line(px_region_base(r), line, sizeof(line)));
	TH_LOG("%s", line);
	EXPECT_NE(strstr(line, "interleave"), NULL);
	px_region_destroy(r);
}

TEST_HARNESS_MAIN
