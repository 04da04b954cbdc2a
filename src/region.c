// SPDX-License-Identifier: MIT
/*
 * Regions: anonymous memory backed by hugetlb pages, transparent
 * hugepages or base pages.  This first version covers private regions
 * and the fallback chain; NUMA placement, shareable memfd regions and
 * backing verified from smaps come with the region issue.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <patinox/region.h>

#define SZ_2M (2UL << 20)
#define SZ_1G (1UL << 30)

struct px_region {
	void *base;
	size_t size;
	size_t page_size;
	enum px_region_backing backing;
	_Atomic size_t carved;
};

void
px_region_opts_init(struct px_region_opts *opts)
{
	*opts = (struct px_region_opts){
	    .backing = PX_REGION_DEFAULT,
	    .numa_node = -1,
	};
}

static size_t
round_up(size_t v, size_t to)
{
	return (v + to - 1) & ~(to - 1);
}

static int
map_hugetlb(struct px_region *r, size_t size, size_t page)
{
	int shift = page == SZ_1G ? 30 : 21;
	void *p;

	size = round_up(size, page);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
		     (shift << MAP_HUGE_SHIFT),
		 -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	r->base = p;
	r->size = size;
	r->page_size = page;
	return 0;
}

/* Over-maps so the region starts on a 2 MiB boundary, as THP needs. */
static int
map_thp(struct px_region *r, size_t size)
{
	size_t len = round_up(size, SZ_2M);
	char *p, *aligned;

	p = mmap(NULL, len + SZ_2M, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	aligned = (char *)round_up((uintptr_t)p, SZ_2M);
	if (aligned > p)
		munmap(p, (size_t)(aligned - p));
	munmap(aligned + len, (size_t)(p + SZ_2M - aligned));
	if (madvise(aligned, len, MADV_HUGEPAGE) != 0) {
		munmap(aligned, len);
		return -errno;
	}
	r->base = aligned;
	r->size = len;
	r->page_size = SZ_2M;
	return 0;
}

static int
map_4k(struct px_region *r, size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *p;

	size = round_up(size, page);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	r->base = p;
	r->size = size;
	r->page_size = page;
	return 0;
}

static enum px_region_backing
default_backing(void)
{
#if defined(CONFIG_PX_REGION_BACKING_4K)
	return PX_REGION_4K;
#elif defined(CONFIG_PX_REGION_BACKING_THP)
	return PX_REGION_THP;
#else
	return PX_REGION_BEST;
#endif
}

static int
map_backing(struct px_region *r, size_t size, enum px_region_backing b)
{
	int ret;

	switch (b) {
	case PX_REGION_HUGETLB_1G:
		ret = map_hugetlb(r, size, SZ_1G);
		break;
	case PX_REGION_HUGETLB_2M:
		ret = map_hugetlb(r, size, SZ_2M);
		break;
	case PX_REGION_THP:
		ret = map_thp(r, size);
		break;
	case PX_REGION_4K:
		ret = map_4k(r, size);
		break;
	default:
		return -EINVAL;
	}
	if (ret == 0)
		r->backing = b;
	return ret;
}

static int
map_best(struct px_region *r, size_t size)
{
#ifdef CONFIG_PX_REGION_HUGE_1G
	if (map_backing(r, size, PX_REGION_HUGETLB_1G) == 0)
		return 0;
#endif
	if (map_backing(r, size, PX_REGION_HUGETLB_2M) == 0)
		return 0;
	if (map_backing(r, size, PX_REGION_THP) == 0)
		return 0;
	return map_backing(r, size, PX_REGION_4K);
}

int
px_region_create(struct px_region **out, size_t size,
		 const struct px_region_opts *opts)
{
	struct px_region_opts def;
	enum px_region_backing b;
	struct px_region *r;
	int ret;

	if (!out || size == 0)
		return -EINVAL;
	if (!opts) {
		px_region_opts_init(&def);
		opts = &def;
	}
	if (opts->numa_node >= 0 || opts->numa_interleave || opts->shareable)
		return -EOPNOTSUPP;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	b = opts->backing == PX_REGION_DEFAULT ? default_backing()
					       : opts->backing;
	ret = b == PX_REGION_BEST ? map_best(r, size) : map_backing(r, size, b);
	if (ret < 0)
		goto out_free;
	if (opts->populate &&
	    madvise(r->base, r->size, MADV_POPULATE_WRITE) != 0) {
		ret = -errno;
		goto out_unmap;
	}
	if (opts->lock && mlock(r->base, r->size) != 0) {
		ret = -errno;
		goto out_unmap;
	}
	*out = r;
	return 0;

out_unmap:
	munmap(r->base, r->size);
out_free:
	free(r);
	return ret;
}

void
px_region_destroy(struct px_region *r)
{
	if (!r)
		return;
	munmap(r->base, r->size);
	free(r);
}

void *
px_region_base(const struct px_region *r)
{
	return r->base;
}

size_t
px_region_size(const struct px_region *r)
{
	return r->size;
}

size_t
px_region_page_size(const struct px_region *r)
{
	return r->page_size;
}

enum px_region_backing
px_region_backing(const struct px_region *r)
{
	return r->backing;
}

const char *
px_region_backing_name(enum px_region_backing b)
{
	switch (b) {
	case PX_REGION_HUGETLB_1G:
		return "hugetlb-1G";
	case PX_REGION_HUGETLB_2M:
		return "hugetlb-2M";
	case PX_REGION_THP:
		return "thp";
	case PX_REGION_4K:
		return "4K";
	case PX_REGION_BEST:
		return "best";
	default:
		return "default";
	}
}

int
px_region_carve(struct px_region *r, size_t len, size_t align, void **out)
{
	size_t old, start;

	if (align == 0)
		align = (size_t)sysconf(_SC_PAGESIZE);
	if (align & (align - 1))
		return -EINVAL;
	old = atomic_load_explicit(&r->carved, memory_order_relaxed);
	do {
		start = round_up(old, align);
		if (start > r->size || len > r->size - start)
			return -ENOMEM;
	} while (!atomic_compare_exchange_weak(&r->carved, &old, start + len));
	*out = (char *)r->base + start;
	return 0;
}

int
px_region_release(struct px_region *r, void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr, base = (uintptr_t)r->base;

	if ((a | len) & (r->page_size - 1) || a < base ||
	    a + len > base + r->size)
		return -EINVAL;
	if (madvise(addr, len, MADV_DONTNEED) != 0)
		return -errno;
	return 0;
}

int
px_region_fd(const struct px_region *r)
{
	return -1;
}

int
px_region_stats(const struct px_region *r, struct px_region_stats *st)
{
	*st = (struct px_region_stats){
	    .size = r->size,
	    .page_size = r->page_size,
	    .carved = atomic_load(&r->carved),
	    .backing = r->backing,
	};
	return 0;
}
