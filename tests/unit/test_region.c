// SPDX-License-Identifier: MIT
/*
 * Unit tests of px_region: creation, carving, release, arguments, and,
 * through fake hooks, every step of the fallback chain and every OS call
 * failing.  The fakes delegate to the real calls but emulate hugetlb with
 * base pages and describe the region in a generated smaps text, so no
 * test needs root or reserved hugepages.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <patinox/region.h>

#include "../../src/region_internal.h"

#define KB        1024UL
#define MB        (1024UL * KB)
#define HUGE_MASK (0x3fUL << MAP_HUGE_SHIFT)

/* Which call fails, and with what. 0: the call goes through. */
enum fake_op {
	F_RESERVE,  /* the PROT_NONE reservation */
	F_PLACE,    /* the mapping proper, any step */
	F_HUGE_2M,  /* mmap or memfd asking for 2 MiB hugetlb */
	F_HUGE_1G,  /* mmap or memfd asking for 1 GiB hugetlb */
	F_THP,      /* madvise(MADV_HUGEPAGE) */
	F_POPULATE, /* madvise(MADV_POPULATE_WRITE) */
	F_COLLAPSE, /* madvise(MADV_COLLAPSE) */
	F_DONTNEED,
	F_MLOCK,
	F_MEMFD,
	F_FTRUNCATE,
	F_SEAL, /* fcntl F_ADD_SEALS */
	F_DUP,  /* fcntl F_DUPFD_CLOEXEC */
	F_FSTAT,
	F_FALLOCATE,
	F_SMAPS,
	F_MBIND,
	F_NR
};

static struct fake {
	int fail[F_NR];
	int calls[F_NR];
	int seq[F_NR]; /* order of the last call of each kind */
	int clock;
	int live_maps; /* mmaps not yet unmapped (by reservation) */
	int open_fds;  /* memfds and dups not yet closed */
	/* the last placed mapping, described by the fake smaps */
	uintptr_t lo, hi;
	size_t kps;   /* KernelPageSize to report; 0: base page */
	long rss_kb;  /* -1: the whole range */
	long huge_kb; /* AnonHugePages; -1: the whole range if advised */
	bool advised; /* MADV_HUGEPAGE on the last placed mapping */
	bool real_smaps;
	/* NUMA */
	int numa_avail, numa_max;
	unsigned long allowed;
	int mbind_mode;
	unsigned long mbind_mask, mbind_maxnode;
	int fallocate_mode;
} fk;

static struct px_region_hooks real;

static int
hit(enum fake_op op)
{
	fk.calls[op]++;
	fk.seq[op] = ++fk.clock;
	return fk.fail[op];
}

static size_t
huge_size_of(int flags)
{
	int shift = (flags >> MAP_HUGE_SHIFT) & 0x3f;

	return shift ? 1UL << shift : 2 * MB;
}

static int
fake_mmap(void **out, void *addr, size_t len, int prot, int flags, int fd,
	  off_t off)
{
	int ret;

	if (prot == PROT_NONE)
		ret = hit(F_RESERVE);
	else
		ret = hit(F_PLACE);
	if (ret == 0 && (flags & MAP_HUGETLB))
		ret = hit(huge_size_of(flags) == 1 * 1024 * MB ? F_HUGE_1G
							       : F_HUGE_2M);
	if (ret)
		return ret;
	if (flags & MAP_HUGETLB) {
		fk.kps = huge_size_of(flags);
		flags &= ~(MAP_HUGETLB | (int)HUGE_MASK);
	}
	ret = real.mmap(out, addr, len, prot, flags, fd, off);
	if (ret == 0 && prot == PROT_NONE)
		fk.live_maps++;
	if (ret == 0 && prot != PROT_NONE) {
		fk.advised = false;
		fk.lo = (uintptr_t)*out;
		fk.hi = fk.lo + len;
	}
	return ret;
}

static int
fake_munmap(void *addr, size_t len)
{
	fk.live_maps--;
	return real.munmap(addr, len);
}

static int
fake_madvise(void *addr, size_t len, int advice)
{
	int ret = 0;

	if (advice == MADV_HUGEPAGE) {
		ret = hit(F_THP);
		fk.advised = ret == 0;
	} else if (advice == MADV_POPULATE_WRITE)
		ret = hit(F_POPULATE);
	else if (advice == 25 /* MADV_COLLAPSE */)
		return hit(F_COLLAPSE);
	else if (advice == MADV_DONTNEED)
		ret = hit(F_DONTNEED);
	return ret ? ret : real.madvise(addr, len, advice);
}

static int
fake_mlock(const void *addr, size_t len)
{
	return hit(F_MLOCK);
}

static int
fake_memfd_create(const char *name, unsigned int flags)
{
	int ret = hit(F_MEMFD);

	if (ret == 0 && (flags & MFD_HUGETLB))
		ret = hit(((flags >> 26) & 0x3f) == 30 ? F_HUGE_1G : F_HUGE_2M);
	if (ret)
		return ret;
	if (flags & MFD_HUGETLB)
		fk.kps = 1UL << ((flags >> 26) & 0x3f);
	ret = real.memfd_create(name, flags & ~(MFD_HUGETLB | (0x3fu << 26)));
	fk.open_fds += ret >= 0;
	return ret;
}

static int
fake_ftruncate(int fd, off_t len)
{
	return hit(F_FTRUNCATE) ?: real.ftruncate(fd, len);
}

static int
fake_fcntl(int fd, int cmd, int arg)
{
	int ret = 0;

	if (cmd == F_ADD_SEALS)
		ret = hit(F_SEAL);
	if (cmd == F_DUPFD_CLOEXEC)
		ret = hit(F_DUP);
	if (ret)
		return ret;
	ret = real.fcntl(fd, cmd, arg);
	fk.open_fds += cmd == F_DUPFD_CLOEXEC && ret >= 0;
	return ret;
}

static int
fake_fstat(int fd, struct stat *st)
{
	return hit(F_FSTAT) ?: real.fstat(fd, st);
}

static int
fake_close(int fd)
{
	fk.open_fds--;
	return real.close(fd);
}

static int
fake_fallocate(int fd, int mode, off_t off, off_t len)
{
	fk.fallocate_mode = mode;
	return hit(F_FALLOCATE) ?: real.fallocate(fd, mode, off, len);
}

static char smaps_text[1024];

static int
fake_open_smaps(FILE **out)
{
	size_t kb = (fk.hi - fk.lo) / KB;
	int ret = hit(F_SMAPS);

	if (ret)
		return ret;
	if (fk.real_smaps)
		return real.open_smaps(out);
	snprintf(smaps_text, sizeof(smaps_text),
		 "1000-2000 rw-p 00000000 00:00 0\n"
		 "Rss:                 64 kB\n"
		 "KernelPageSize:       4 kB\n"
		 "%lx-%lx rw-p 00000000 00:00 0\n"
		 "Size:           %zu kB\n"
		 "KernelPageSize: %zu kB\n"
		 "Rss:            %ld kB\n"
		 "AnonHugePages:  %ld kB\n"
		 "VmFlags: rd wr mr mw me ac\n",
		 (unsigned long)fk.lo, (unsigned long)fk.hi, kb,
		 (fk.kps ? fk.kps : 4 * KB) / KB,
		 fk.rss_kb < 0 ? (long)kb : fk.rss_kb,
		 fk.huge_kb >= 0 ? fk.huge_kb
		 : fk.advised    ? (long)kb
				 : 0);
	*out = fmemopen(smaps_text, strlen(smaps_text), "r");
	return *out ? 0 : -errno;
}

static int
fake_numa_available(void)
{
	return fk.numa_avail;
}

static int
fake_numa_max_node(void)
{
	return fk.numa_max;
}

static bool
fake_numa_node_allowed(int node)
{
	return fk.allowed & (1UL << node);
}

static int
fake_mbind(void *addr, size_t len, int mode, const unsigned long *mask,
	   unsigned long maxnode, unsigned int flags)
{
	fk.mbind_mode = mode;
	fk.mbind_mask = mask[0];
	fk.mbind_maxnode = maxnode;
	return hit(F_MBIND);
}

static const struct px_region_hooks fake_hooks = {
    .mmap = fake_mmap,
    .munmap = fake_munmap,
    .madvise = fake_madvise,
    .mlock = fake_mlock,
    .memfd_create = fake_memfd_create,
    .ftruncate = fake_ftruncate,
    .fallocate = fake_fallocate,
    .fcntl = fake_fcntl,
    .fstat = fake_fstat,
    .close = fake_close,
    .open_smaps = fake_open_smaps,
    .numa_available = fake_numa_available,
    .numa_max_node = fake_numa_max_node,
    .numa_node_allowed = fake_numa_node_allowed,
    .mbind = fake_mbind,
};

static int
use_fakes(void **state)
{
	px_region_default_hooks(&real);
	memset(&fk, 0, sizeof(fk));
	fk.rss_kb = -1;
	fk.huge_kb = -1;
	fk.numa_max = 0;
	fk.allowed = 1;
	px_region_set_hooks(&fake_hooks);
	return 0;
}

static int
use_real(void **state)
{
	px_region_set_hooks(NULL);
	/* Nothing a test created may be left behind, even on failure. */
	assert_int_equal(fk.live_maps, 0);
	assert_int_equal(fk.open_fds, 0);
	return 0;
}

static struct px_region_opts
opts_for(enum px_region_backing b)
{
	struct px_region_opts o;

	px_region_opts_init(&o);
	o.backing = b;
	return o;
}

static void
describe(struct px_region *r, char *buf, size_t len)
{
	px_region_describe(r, buf, len);
	print_message("# %s\n", buf);
}

/* ---- real kernel, no fakes ---- */

static void
test_region_4k_rounds_up_and_is_usable(void **state)
{
	struct px_region_opts o;
	struct px_region *r;

	px_region_opts_init(&o);
	o.backing = PX_REGION_4K;
	assert_int_equal(px_region_create(&r, 10000, &o), 0);
	assert_int_equal(px_region_size(r), 12288);
	assert_int_equal(px_region_backing(r), PX_REGION_4K);
	memset(px_region_base(r), 0xab, px_region_size(r));
	px_region_destroy(r);
}

static void
test_region_best_always_gets_memory(void **state)
{
	struct px_region *r;

	assert_int_equal(px_region_create(&r, 3 << 20, NULL), 0);
	assert_true(px_region_size(r) >= (3u << 20));
	assert_int_equal(px_region_size(r) % px_region_page_size(r), 0);
	assert_int_not_equal(px_region_backing(r), PX_REGION_BEST);
	px_region_destroy(r);
}

static void
test_region_carve_is_aligned_and_bounded(void **state)
{
	struct px_region_opts o;
	struct px_region *r;
	void *a, *b, *c;

	px_region_opts_init(&o);
	o.backing = PX_REGION_4K;
	assert_int_equal(px_region_create(&r, 16384, &o), 0);
	assert_int_equal(px_region_carve(r, 100, 64, &a), 0);
	assert_int_equal(px_region_carve(r, 100, 4096, &b), 0);
	assert_int_equal((uintptr_t)b % 4096, 0);
	assert_true((char *)b >= (char *)a + 100);
	assert_int_equal(px_region_carve(r, 16384, 0, &c), -ENOMEM);
	assert_int_equal(px_region_carve(r, 8, 3, &c), -EINVAL);
	px_region_destroy(r);
}

/* The address is aligned, not only the offset: a 4K region's base is
 * just page aligned.  Several regions, so some base is not 1 MiB aligned. */
static void
test_region_carve_aligns_the_address_not_the_offset(void **state)
{
	enum { N = 8, MIB = 1 << 20 };
	struct px_region_opts o;
	struct px_region *r[N];
	void *p, *q;

	px_region_opts_init(&o);
	o.backing = PX_REGION_4K;
	for (int i = 0; i < N; i++) {
		char *base;

		assert_int_equal(px_region_create(&r[i], 8 * MIB, &o), 0);
		base = px_region_base(r[i]);
		assert_int_equal(px_region_carve(r[i], 100, 0, &q), 0);
		assert_int_equal(px_region_carve(r[i], 4096, MIB, &p), 0);
		assert_int_equal((uintptr_t)p % MIB, 0);
		assert_true((char *)p >= (char *)q + 100);
		assert_true((char *)p + 4096 <= base + 8 * MIB);
	}
	for (int i = 0; i < N; i++)
		px_region_destroy(r[i]);
}

static void
test_region_release_zeroes_pages(void **state)
{
	struct px_region_opts o;
	struct px_region *r;
	unsigned char *p;

	px_region_opts_init(&o);
	o.backing = PX_REGION_4K;
	assert_int_equal(px_region_create(&r, 8192, &o), 0);
	p = px_region_base(r);
	memset(p, 1, 8192);
	assert_int_equal(px_region_release(r, p, 4096), 0);
	assert_int_equal(p[0], 0);
	assert_int_equal(p[4096], 1);
	assert_int_equal(px_region_release(r, p + 1, 4096), -EINVAL);
	assert_int_equal(px_region_release(r, p + 4096, 8192), -EINVAL);
	assert_int_equal(px_region_release(r, p - 4096, 4096), -EINVAL);
	px_region_destroy(r);
}

static void
test_region_rejects_bad_arguments(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_4K + 1);
	struct px_region *r;

	assert_int_equal(px_region_create(&r, 0, NULL), -EINVAL);
	assert_int_equal(px_region_create(NULL, 4096, NULL), -EINVAL);
	assert_int_equal(px_region_create(&r, 4096, &o), -EINVAL);
	o = opts_for(PX_REGION_4K);
	o.numa_node = -2;
	assert_int_equal(px_region_create(&r, 4096, &o), -EINVAL);
	assert_int_equal(px_region_map_fd(&r, -1, NULL), -EBADF);
	px_region_destroy(NULL);
}

static void
test_region_stats_count_resident_bytes(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_4K);
	struct px_region_stats st;
	struct px_region *r;

	assert_int_equal(px_region_create(&r, 64 * KB, &o), 0);
	assert_int_equal(px_region_stats(r, &st), 0);
	assert_int_equal(st.resident, 0);
	memset(px_region_base(r), 1, 16 * KB);
	assert_int_equal(px_region_stats(r, &st), 0);
	/* smaps sees the region alone: the guards keep neighbours apart. */
	assert_int_equal(st.resident, 16 * KB);
	assert_int_equal(st.size, 64 * KB);
	assert_int_equal(st.page_size, 4 * KB);
	assert_true(st.verified);
	assert_int_equal(st.requested, PX_REGION_4K);
	px_region_destroy(r);
}

static void
test_region_shareable_maps_twice_and_punches_holes(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_4K);
	struct px_region *a, *b;
	char *p, *q;

	o.shareable = true;
	o.name = "px-unit";
	assert_int_equal(px_region_create(&a, 64 * KB, &o), 0);
	assert_true(px_region_fd(a) >= 0);
	assert_true(fcntl(px_region_fd(a), F_GET_SEALS) & F_SEAL_SHRINK);
	assert_int_equal(ftruncate(px_region_fd(a), 4096), -1);
	assert_int_equal(errno, EPERM);
	p = px_region_base(a);
	memset(p, 7, 64 * KB);

	assert_int_equal(px_region_map_fd(&b, px_region_fd(a), NULL), 0);
	q = px_region_base(b);
	assert_ptr_not_equal(p, q);
	assert_int_equal(px_region_size(b), 64 * KB);
	assert_int_equal(q[100], 7);
	q[5000] = 9;
	assert_int_equal(p[5000], 9);

	assert_int_equal(px_region_release(a, p, 8 * KB), 0);
	assert_int_equal(q[5000], 0);
	assert_int_equal(q[8 * KB], 7);
	px_region_destroy(a);
	assert_int_equal(q[9000], 7); /* b keeps its own reference */
	px_region_destroy(b);
}

static void
test_region_map_fd_refuses_unsealable_and_empty(void **state)
{
	struct px_region *r;
	int fd;

	fd = memfd_create("plain", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(px_region_map_fd(&r, fd, NULL), -EINVAL);
	assert_int_equal(ftruncate(fd, 8192), 0);
	assert_int_equal(px_region_map_fd(&r, fd, NULL), -EINVAL);
	close(fd);
}

#define CARVERS 4
#define CHUNK   64

struct carver {
	struct px_region *r;
	uintptr_t got[16384 / CHUNK];
	int n;
};

static void *
carve_all(void *arg)
{
	struct carver *c = arg;
	void *p;

	while (px_region_carve(c->r, CHUNK, CHUNK, &p) == 0)
		c->got[c->n++] = (uintptr_t)p;
	return NULL;
}

static int
cmp_addr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

static void
test_region_carve_from_threads_never_overlaps(void **state)
{
	static struct carver c[CARVERS];
	static uintptr_t all[16384 / CHUNK];
	struct px_region_opts o = opts_for(PX_REGION_4K);
	pthread_t th[CARVERS];
	struct px_region *r;
	int i, j, n = 0;

	assert_int_equal(px_region_create(&r, 16384, &o), 0);
	for (i = 0; i < CARVERS; i++) {
		c[i] = (struct carver){.r = r};
		assert_int_equal(pthread_create(&th[i], NULL, carve_all, &c[i]),
				 0);
	}
	for (i = 0; i < CARVERS; i++) {
		pthread_join(th[i], NULL);
		for (j = 0; j < c[i].n; j++)
			all[n++] = c[i].got[j];
	}
	/* Every chunk handed out once: the region is exactly used up. */
	assert_int_equal(n, 16384 / CHUNK);
	qsort(all, (size_t)n, sizeof(*all), cmp_addr);
	for (i = 0; i < n; i++)
		assert_int_equal(all[i], (uintptr_t)px_region_base(r) +
					     (uintptr_t)i * CHUNK);
	px_region_destroy(r);
}

/* ---- fakes: the fallback chain ---- */

static void
test_region_best_falls_back_from_2m_to_thp(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_BEST);
	struct px_region *r;
	char buf[256];

	fk.fail[F_HUGE_1G] = -ENOMEM;
	fk.fail[F_HUGE_2M] = -ENOMEM;
	o.populate = true;
	assert_int_equal(px_region_create(&r, 3 * MB, &o), 0);
	assert_int_equal(px_region_backing(r), PX_REGION_THP);
	assert_true(px_region_verified(r));
	assert_int_equal(px_region_size(r), 4 * MB);
	assert_int_equal(px_region_page_size(r), 2 * MB);
	assert_int_equal((uintptr_t)px_region_base(r) % (2 * MB), 0);
	assert_int_equal(px_region_step_error(r, PX_REGION_HUGETLB_2M),
			 -ENOMEM);
	assert_int_equal(px_region_step_error(r, PX_REGION_THP), 0);
	describe(r, buf, sizeof(buf));
	assert_non_null(strstr(buf, "thp (verified; fell back: "));
	assert_non_null(strstr(buf, "hugetlb-2M: Cannot allocate memory"));
	px_region_destroy(r);
}

static void
test_region_best_takes_2m_hugetlb_when_the_kernel_confirms(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_BEST);
	struct px_region_stats st;
	struct px_region *r;

	fk.fail[F_HUGE_1G] = -ENOMEM;
	assert_int_equal(px_region_create(&r, 3 * MB, &o), 0);
	assert_int_equal(px_region_backing(r), PX_REGION_HUGETLB_2M);
	assert_true(px_region_verified(r));
	assert_int_equal(px_region_page_size(r), 2 * MB);
	assert_int_equal(px_region_size(r), 4 * MB);
	assert_int_equal(px_region_stats(r, &st), 0);
	assert_int_equal(st.backing, PX_REGION_HUGETLB_2M);
	px_region_destroy(r);
}

static void
test_region_best_walks_down_to_4k(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_BEST);
	struct px_region *r;
	char buf[256];

	fk.fail[F_HUGE_1G] = -ENOMEM;
	fk.fail[F_HUGE_2M] = -EINVAL;
	fk.fail[F_THP] = -EINVAL;
	assert_int_equal(px_region_create(&r, 5000, &o), 0);
	assert_int_equal(px_region_backing(r), PX_REGION_4K);
	assert_int_equal(px_region_size(r), 8192);
	assert_int_equal(px_region_step_error(r, PX_REGION_THP), -EINVAL);
	describe(r, buf, sizeof(buf));
	assert_non_null(strstr(buf, "hugetlb-2M: Invalid argument"));
	assert_non_null(strstr(buf, "thp: Invalid argument"));
	px_region_destroy(r);
}

static void
test_region_best_tries_1g_only_when_configured(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_BEST);
	struct px_region *r;

	fk.fail[F_HUGE_1G] = -ENOMEM;
	assert_int_equal(px_region_create(&r, 2 * MB, &o), 0);
	assert_int_equal(px_region_backing(r), PX_REGION_HUGETLB_2M);
#ifdef CONFIG_PX_REGION_HUGE_1G
	assert_int_equal(fk.calls[F_HUGE_1G], 1);
	assert_int_equal(px_region_step_error(r, PX_REGION_HUGETLB_1G),
			 -ENOMEM);
#else
	assert_int_equal(fk.calls[F_HUGE_1G], 0);
	assert_int_equal(px_region_step_error(r, PX_REGION_HUGETLB_1G), 0);
#endif
	px_region_destroy(r);
}

static void
test_region_hugetlb_1g_is_reported_from_smaps(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_HUGETLB_1G);
	struct px_region *r;

	/* Only address space: the emulated 1 GiB mapping is never touched. */
	assert_int_equal(px_region_create(&r, 1, &o), 0);
	assert_int_equal(px_region_backing(r), PX_REGION_HUGETLB_1G);
	assert_int_equal(px_region_page_size(r), 1024 * MB);
	assert_int_equal((uintptr_t)px_region_base(r) % (1024 * MB), 0);
	px_region_destroy(r);
}

static void
test_region_specific_hugetlb_does_not_fall_back(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_HUGETLB_1G);
	struct px_region *r;

	fk.fail[F_HUGE_1G] = -ENOMEM;
	assert_int_equal(px_region_create(&r, 4096, &o), -ENOMEM);
	o = opts_for(PX_REGION_HUGETLB_2M);
	fk.fail[F_HUGE_2M] = -EPERM;
	assert_int_equal(px_region_create(&r, 4096, &o), -EPERM);
	assert_int_equal(fk.calls[F_THP], 0);
}

static void
test_region_hugetlb_that_kernel_denies_is_reported_4k(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_HUGETLB_2M);
	struct px_region *r;

	/* The mapping "succeeded" but smaps says base pages. */
	fk.fail[F_HUGE_2M] = 0;
	assert_int_equal(px_region_create(&r, 2 * MB, &o), 0);
	fk.kps = 4 * KB;
	assert_int_equal(px_region_verify(r), 0);
	assert_int_equal(px_region_backing(r), PX_REGION_4K);
	assert_int_equal(px_region_page_size(r), 4 * KB);
	px_region_destroy(r);
}

static void
test_region_thp_without_hugepages_is_noticed(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_THP);
	struct px_region_stats st;
	struct px_region *r;
	char buf[256];

	fk.huge_kb = 0;
	o.populate = true;
	assert_int_equal(px_region_create(&r, 4 * MB, &o), 0);
	assert_int_equal(px_region_backing(r), PX_REGION_4K);
	assert_true(px_region_verified(r));
	assert_int_equal(px_region_page_size(r), 4 * KB);
	describe(r, buf, sizeof(buf));
	assert_non_null(strstr(buf, "no hugepage resident"));
	assert_int_equal(px_region_stats(r, &st), 0);
	assert_int_equal(st.huge_resident, 0);
	assert_int_equal(st.resident, 4 * MB);
	px_region_destroy(r);
}

static void
test_region_thp_untouched_is_verified_later(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_THP);
	struct px_region *r;

	fk.rss_kb = 0;
	fk.huge_kb = 0;
	assert_int_equal(px_region_create(&r, 4 * MB, &o), 0);
	assert_int_equal(px_region_backing(r), PX_REGION_THP);
	assert_false(px_region_verified(r));
	fk.rss_kb = 4096;
	fk.huge_kb = 2048;
	assert_int_equal(px_region_verify(r), 0);
	assert_true(px_region_verified(r));
	assert_int_equal(px_region_backing(r), PX_REGION_THP);
	px_region_destroy(r);
}

static void
test_region_thp_falls_back_to_4k(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_THP);
	struct px_region *r;

	fk.fail[F_THP] = -EINVAL;
	assert_int_equal(px_region_create(&r, 4 * MB, &o), 0);
	assert_int_equal(px_region_backing(r), PX_REGION_4K);
	assert_int_equal(fk.calls[F_HUGE_2M], 0);
	px_region_destroy(r);
}

/* ---- fakes: each OS call failing ---- */

static void
test_region_reservation_failure_is_returned(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_BEST);
	struct px_region *r;

	fk.fail[F_RESERVE] = -ENOMEM;
	assert_int_equal(px_region_create(&r, 4096, &o), -ENOMEM);
	assert_int_equal(fk.calls[F_PLACE], 0);
}

static void
test_region_place_failure_unmaps_the_reservation(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_4K);
	struct px_region *r;

	fk.fail[F_PLACE] = -EAGAIN;
	assert_int_equal(px_region_create(&r, 4096, &o), -EAGAIN);
	assert_int_equal(fk.calls[F_RESERVE], 1);
}

static void
test_region_populate_falls_back_to_touching(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_4K);
	struct px_region_stats st;
	struct px_region *r;

	fk.real_smaps = true;
	fk.fail[F_POPULATE] = -EINVAL; /* a kernel before 5.14 */
	o.populate = true;
	assert_int_equal(px_region_create(&r, 64 * KB, &o), 0);
	assert_int_equal(px_region_stats(r, &st), 0);
	assert_int_equal(st.resident, 64 * KB);
	px_region_destroy(r);
}

/*
 * Mapping a memfd again with populate on a kernel without
 * MADV_POPULATE_WRITE must fault the pages in without writing them: the
 * touching fallback of a new region wrote a zero into every page, which
 * wiped the first bytes of each page of a cache being adopted.
 */
static void
test_region_map_fd_populate_fallback_keeps_the_data(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_4K);
	struct px_region_stats st;
	struct px_region *a, *b;
	char *q;
	size_t off;

	o.shareable = true;
	assert_int_equal(px_region_create(&a, 64 * KB, &o), 0);
	memset(px_region_base(a), 7, 64 * KB);
	fk.real_smaps = true;
	fk.fail[F_POPULATE] = -EINVAL; /* a kernel before 5.14 */
	o.populate = true;
	assert_int_equal(px_region_map_fd(&b, px_region_fd(a), &o), 0);
	q = px_region_base(b);
	for (off = 0; off < 64 * KB; off += 4096)
		assert_int_equal(q[off], 7);
	assert_int_equal(px_region_stats(b, &st), 0);
	assert_int_equal(st.resident, 64 * KB);
	px_region_destroy(b);
	px_region_destroy(a);
}

static void
test_region_populate_failure_cleans_up(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_4K);
	struct px_region *r;

	fk.fail[F_POPULATE] = -ENOMEM;
	o.populate = true;
	assert_int_equal(px_region_create(&r, 64 * KB, &o), -ENOMEM);
}

static void
test_region_mlock_failure_cleans_up(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_4K);
	struct px_region *r;

	fk.fail[F_MLOCK] = -EPERM;
	o.lock = true;
	assert_int_equal(px_region_create(&r, 64 * KB, &o), -EPERM);
	fk.fail[F_MLOCK] = 0;
	assert_int_equal(px_region_create(&r, 64 * KB, &o), 0);
	assert_int_equal(fk.calls[F_MLOCK], 2);
	px_region_destroy(r);
}

static void
test_region_collapse_is_best_effort(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_THP);
	struct px_region *r;
	char buf[256];

	fk.fail[F_COLLAPSE] = -EINVAL;
	o.populate = true;
	o.collapse = true;
	assert_int_equal(px_region_create(&r, 2 * MB, &o), 0);
	assert_int_equal(px_region_collapse_error(r), -EINVAL);
	assert_true(fk.seq[F_COLLAPSE] > fk.seq[F_POPULATE]);
	describe(r, buf, sizeof(buf));
	assert_non_null(strstr(buf, "MADV_COLLAPSE: Invalid argument"));
	px_region_destroy(r);

	/* Not asked for a 4K region. */
	o = opts_for(PX_REGION_4K);
	o.collapse = true;
	fk.calls[F_COLLAPSE] = 0;
	assert_int_equal(px_region_create(&r, 2 * MB, &o), 0);
	assert_int_equal(fk.calls[F_COLLAPSE], 0);
	px_region_destroy(r);
}

static void
test_region_unreadable_smaps_leaves_backing_unverified(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_4K);
	struct px_region_stats st;
	struct px_region *r;

	fk.fail[F_SMAPS] = -EACCES;
	assert_int_equal(px_region_create(&r, 8192, &o), 0);
	assert_false(px_region_verified(r));
	assert_int_equal(px_region_verify(r), -EACCES);
	assert_int_equal(px_region_stats(r, &st), -EACCES);
	assert_false(st.verified);
	assert_int_equal(st.size, 8192);
	px_region_destroy(r);
}

static void
test_region_shareable_memfd_failures_close_the_fd(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_4K);
	struct px_region *r;

	o.shareable = true;
	fk.fail[F_MEMFD] = -EMFILE;
	assert_int_equal(px_region_create(&r, 8192, &o), -EMFILE);
	fk.fail[F_MEMFD] = 0;
	fk.fail[F_FTRUNCATE] = -EFBIG;
	assert_int_equal(px_region_create(&r, 8192, &o), -EFBIG);
	fk.fail[F_FTRUNCATE] = 0;
	fk.fail[F_SEAL] = -EPERM;
	assert_int_equal(px_region_create(&r, 8192, &o), -EPERM);
	fk.fail[F_SEAL] = 0;
	fk.fail[F_PLACE] = -ENOMEM;
	assert_int_equal(px_region_create(&r, 8192, &o), -ENOMEM);
}

static void
test_region_shareable_hugetlb_falls_back_to_shmem(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_BEST);
	struct px_region *r;

	o.shareable = true;
	fk.fail[F_HUGE_1G] = -EINVAL;
	fk.fail[F_HUGE_2M] = -ENOMEM;
	fk.huge_kb = 0;
	assert_int_equal(px_region_create(&r, 2 * MB, &o), 0);
	assert_true(px_region_fd(r) >= 0);
	assert_int_equal(px_region_step_error(r, PX_REGION_HUGETLB_2M),
			 -ENOMEM);
	assert_int_equal(px_region_backing(r), PX_REGION_4K);
	px_region_destroy(r);

	fk.fail[F_HUGE_2M] = 0;
	assert_int_equal(px_region_create(&r, 2 * MB, &o), 0);
	assert_int_equal(px_region_backing(r), PX_REGION_HUGETLB_2M);
	px_region_destroy(r);
}

static void
test_region_shareable_release_punches_a_hole(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_4K);
	struct px_region *r;
	char *p;

	o.shareable = true;
	assert_int_equal(px_region_create(&r, 16 * KB, &o), 0);
	p = px_region_base(r);
	memset(p, 3, 16 * KB);
	assert_int_equal(px_region_release(r, p + 4096, 4096), 0);
	assert_int_equal(fk.calls[F_DONTNEED], 0);
	assert_int_equal(fk.fallocate_mode, 0x03); /* PUNCH_HOLE|KEEP_SIZE */
	assert_int_equal(p[4096], 0);
	fk.fail[F_FALLOCATE] = -EOPNOTSUPP;
	assert_int_equal(px_region_release(r, p, 4096), -EOPNOTSUPP);
	px_region_destroy(r);
}

static void
test_region_private_release_failure_is_returned(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_4K);
	struct px_region *r;

	assert_int_equal(px_region_create(&r, 16 * KB, &o), 0);
	fk.fail[F_DONTNEED] = -EAGAIN;
	assert_int_equal(px_region_release(r, px_region_base(r), 4096),
			 -EAGAIN);
	px_region_destroy(r);
}

static void
test_region_map_fd_failures_clean_up(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_4K);
	struct px_region *a, *b;

	o.shareable = true;
	assert_int_equal(px_region_create(&a, 16 * KB, &o), 0);
	fk.fail[F_FSTAT] = -EIO;
	assert_int_equal(px_region_map_fd(&b, px_region_fd(a), NULL), -EIO);
	fk.fail[F_FSTAT] = 0;
	fk.fail[F_DUP] = -EMFILE;
	assert_int_equal(px_region_map_fd(&b, px_region_fd(a), NULL), -EMFILE);
	fk.fail[F_DUP] = 0;
	fk.fail[F_PLACE] = -ENOMEM;
	assert_int_equal(px_region_map_fd(&b, px_region_fd(a), NULL), -ENOMEM);
	fk.fail[F_PLACE] = 0;
	fk.fail[F_RESERVE] = -ENOMEM;
	assert_int_equal(px_region_map_fd(&b, px_region_fd(a), NULL), -ENOMEM);
	px_region_destroy(a);
}

static void
test_region_map_fd_of_hugetlb_memfd_reports_2m(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_HUGETLB_2M);
	struct px_region *a, *b;

	o.shareable = true;
	assert_int_equal(px_region_create(&a, 2 * MB, &o), 0);
	assert_int_equal(px_region_backing(a), PX_REGION_HUGETLB_2M);
	assert_int_equal(px_region_map_fd(&b, px_region_fd(a), NULL), 0);
	assert_int_equal(px_region_backing(b), PX_REGION_HUGETLB_2M);
	px_region_destroy(b);
	px_region_destroy(a);
}

/* ---- fakes: NUMA ---- */

#ifdef CONFIG_PX_REGION_NUMA
static void
test_region_numa_unavailable_is_eopnotsupp(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_4K);
	struct px_region *r;

	fk.numa_avail = -1;
	o.numa_node = 0;
	assert_int_equal(px_region_create(&r, 4096, &o), -EOPNOTSUPP);
	assert_int_equal(fk.calls[F_RESERVE], 0);
}

static void
test_region_numa_checks_the_node(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_4K);
	struct px_region *r;

	fk.numa_max = 1;
	o.numa_node = 2;
	assert_int_equal(px_region_create(&r, 4096, &o), -EINVAL);
	o.numa_node = 1;
	o.numa_interleave = true;
	assert_int_equal(px_region_create(&r, 4096, &o), -EINVAL);
}

static void
test_region_numa_binds_before_first_touch(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_4K);
	struct px_region_stats st;
	struct px_region *r;

	fk.numa_max = 3;
	o.numa_node = 2;
	o.populate = true;
	assert_int_equal(px_region_create(&r, 16 * KB, &o), 0);
	assert_int_equal(fk.mbind_mode, 2 /* MPOL_BIND */);
	assert_int_equal(fk.mbind_mask, 1UL << 2);
	assert_true(fk.mbind_maxnode > 3);
	assert_true(fk.seq[F_MBIND] < fk.seq[F_POPULATE]);
	assert_int_equal(px_region_stats(r, &st), 0);
	assert_int_equal(st.numa_node, 2);
	px_region_destroy(r);
}

static void
test_region_numa_interleaves_over_allowed_nodes(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_4K);
	struct px_region *r;

	fk.numa_max = 3;
	fk.allowed = 0x5;
	o.numa_interleave = true;
	assert_int_equal(px_region_create(&r, 16 * KB, &o), 0);
	assert_int_equal(fk.mbind_mode, 3 /* MPOL_INTERLEAVE */);
	assert_int_equal(fk.mbind_mask, 0x5);
	px_region_destroy(r);
}

static void
test_region_numa_mbind_failure_cleans_up(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_4K);
	struct px_region *r;

	fk.fail[F_MBIND] = -EPERM;
	o.numa_node = 0;
	assert_int_equal(px_region_create(&r, 16 * KB, &o), -EPERM);
}
#else
static void
test_region_numa_compiled_out_is_eopnotsupp(void **state)
{
	struct px_region_opts o = opts_for(PX_REGION_4K);
	struct px_region *r;

	o.numa_node = 0;
	assert_int_equal(px_region_create(&r, 4096, &o), -EOPNOTSUPP);
	o.numa_node = -1;
	o.numa_interleave = true;
	assert_int_equal(px_region_create(&r, 4096, &o), -EOPNOTSUPP);
	assert_int_equal(fk.calls[F_RESERVE], 0);
	assert_int_equal(fk.calls[F_MBIND], 0);
}
#endif

/* ---- the smaps reader ---- */

static void
test_region_smaps_sums_overlapping_mappings_only(void **state)
{
	static const char text[] =
	    "10000-20000 rw-p 00000000 00:00 0\n"
	    "Rss:                  8 kB\n"
	    "KernelPageSize:       4 kB\n"
	    "20000-40000 rw-s 00000000 00:01 5    /memfd:x (deleted)\n"
	    "Rss:                 16 kB\n"
	    "KernelPageSize:    2048 kB\n"
	    "AnonHugePages:        4 kB\n"
	    "Shared_Hugetlb:    2048 kB\n"
	    "FilePmdMapped:        2 kB\n"
	    "40000-50000 rw-p 00000000 00:00 0\n"
	    "Rss:                 32 kB\n"
	    "Private_Hugetlb:   4096 kB\n"
	    "60000-70000 rw-p 00000000 00:00 0\n"
	    "Rss:                 64 kB\n";
	struct px_smaps_range sr;
	FILE *f = fmemopen((void *)text, sizeof(text) - 1, "r");

	assert_non_null(f);
	assert_int_equal(px_smaps_scan(f, 0x20000, 0x30000, &sr), 0);
	assert_int_equal(sr.mappings, 2);
	assert_int_equal(sr.kernel_page_size, 2 * MB);
	assert_int_equal(sr.rss, 48 * KB);
	assert_int_equal(sr.anon_huge, 4 * KB);
	assert_int_equal(sr.pmd_mapped, 2 * KB);
	assert_int_equal(sr.hugetlb, 6 * MB);
	rewind(f);
	assert_int_equal(px_smaps_scan(f, 0x50000, 0x10000, &sr), -ENOENT);
	fclose(f);
}

#define FAKE_TEST(t) cmocka_unit_test_setup_teardown(t, use_fakes, use_real)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_region_4k_rounds_up_and_is_usable),
	    cmocka_unit_test(test_region_best_always_gets_memory),
	    cmocka_unit_test(test_region_carve_is_aligned_and_bounded),
	    cmocka_unit_test(
		test_region_carve_aligns_the_address_not_the_offset),
	    cmocka_unit_test(test_region_release_zeroes_pages),
	    cmocka_unit_test(test_region_rejects_bad_arguments),
	    cmocka_unit_test(test_region_stats_count_resident_bytes),
	    cmocka_unit_test(
		test_region_shareable_maps_twice_and_punches_holes),
	    cmocka_unit_test(test_region_map_fd_refuses_unsealable_and_empty),
	    cmocka_unit_test(test_region_carve_from_threads_never_overlaps),
	    FAKE_TEST(test_region_best_falls_back_from_2m_to_thp),
	    FAKE_TEST(
		test_region_best_takes_2m_hugetlb_when_the_kernel_confirms),
	    FAKE_TEST(test_region_best_walks_down_to_4k),
	    FAKE_TEST(test_region_best_tries_1g_only_when_configured),
	    FAKE_TEST(test_region_hugetlb_1g_is_reported_from_smaps),
	    FAKE_TEST(test_region_specific_hugetlb_does_not_fall_back),
	    FAKE_TEST(test_region_hugetlb_that_kernel_denies_is_reported_4k),
	    FAKE_TEST(test_region_thp_without_hugepages_is_noticed),
	    FAKE_TEST(test_region_thp_untouched_is_verified_later),
	    FAKE_TEST(test_region_thp_falls_back_to_4k),
	    FAKE_TEST(test_region_reservation_failure_is_returned),
	    FAKE_TEST(test_region_place_failure_unmaps_the_reservation),
	    FAKE_TEST(test_region_populate_falls_back_to_touching),
	    FAKE_TEST(test_region_map_fd_populate_fallback_keeps_the_data),
	    FAKE_TEST(test_region_populate_failure_cleans_up),
	    FAKE_TEST(test_region_mlock_failure_cleans_up),
	    FAKE_TEST(test_region_collapse_is_best_effort),
	    FAKE_TEST(test_region_unreadable_smaps_leaves_backing_unverified),
	    FAKE_TEST(test_region_shareable_memfd_failures_close_the_fd),
	    FAKE_TEST(test_region_shareable_hugetlb_falls_back_to_shmem),
	    FAKE_TEST(test_region_shareable_release_punches_a_hole),
	    FAKE_TEST(test_region_private_release_failure_is_returned),
	    FAKE_TEST(test_region_map_fd_failures_clean_up),
	    FAKE_TEST(test_region_map_fd_of_hugetlb_memfd_reports_2m),
#ifdef CONFIG_PX_REGION_NUMA
	    FAKE_TEST(test_region_numa_unavailable_is_eopnotsupp),
	    FAKE_TEST(test_region_numa_checks_the_node),
	    FAKE_TEST(test_region_numa_binds_before_first_touch),
	    FAKE_TEST(test_region_numa_interleaves_over_allowed_nodes),
	    FAKE_TEST(test_region_numa_mbind_failure_cleans_up),
#else
	    FAKE_TEST(test_region_numa_compiled_out_is_eopnotsupp),
#endif
	    cmocka_unit_test(test_region_smaps_sums_overlapping_mappings_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
