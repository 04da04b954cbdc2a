// SPDX-License-Identifier: MIT
/*
 * The capability probe against the real kernel: what it says about
 * io_uring and hugepages must match what the kernel does.
 */
#include <liburing.h>
#include <sys/mman.h>

#include <patinox/probe.h>

#include "harness.h"

TEST(probe_uring_matches_kernel)
{
	struct px_features f;
	struct io_uring ring;
	int ret;

	ASSERT_EQ(px_probe_features(&f), 0);
	ret = io_uring_queue_init(8, &ring, 0);
	if (ret == 0)
		io_uring_queue_exit(&ring);
	EXPECT_EQ(f.uring_error, ret);
	if (ret < 0)
		SKIP(return, "io_uring unavailable here: %s", strerror(-ret));
	EXPECT_TRUE(f.op_close);
	EXPECT_TRUE(f.op_async_cancel);
	EXPECT_GT(f.ops_supported, 20);
	if (f.kernel_major > 6 || (f.kernel_major == 6 && f.kernel_minor >= 1))
		EXPECT_TRUE(f.setup_defer_taskrun);
}

TEST(probe_hugepages_match_sysfs)
{
	struct px_features f;
	void *p;

	ASSERT_EQ(px_probe_features(&f), 0);
	for (int i = 0; i < f.nr_huge_sizes; i++) {
		if (f.huge[i].page_size != (2u << 20))
			continue;
		if (f.huge[i].free == 0)
			SKIP(return, "no free 2 MiB hugepages reserved");
		/* A free page reported must be mappable. */
		p = mmap(NULL, 2u << 20, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		ASSERT_NE(p, MAP_FAILED);
		munmap(p, 2u << 20);
		return;
	}
	SKIP(return, "the kernel offers no 2 MiB hugepage size");
}

TEST_HARNESS_MAIN
