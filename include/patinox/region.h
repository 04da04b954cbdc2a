/* SPDX-License-Identifier: MIT */
/*
 * Regions: large anonymous memory areas backed by hugepages when the
 * machine has them.  The cache, copy-on-write data and snapshots take
 * their memory here and nowhere else.  A region reports the backing it
 * really got, read back from the kernel, never assumed from the request.
 *
 * Thread safety: creation and destruction are not concurrent with other
 * calls on the same region; px_region_carve() and px_region_release() may
 * be called from several threads at once.
 */
#ifndef PATINOX_REGION_H
#define PATINOX_REGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <patinox/common.h>

struct px_region;

enum px_region_backing {
	PX_REGION_DEFAULT = 0, /* the Kconfig default policy */
	PX_REGION_BEST,        /* 1G (if enabled), 2M hugetlb, THP, 4K */
	PX_REGION_HUGETLB_1G,  /* 1 GiB hugetlb pages only */
	PX_REGION_HUGETLB_2M,  /* 2 MiB hugetlb pages only */
	PX_REGION_THP,         /* transparent hugepages (madvise), then 4K */
	PX_REGION_4K,          /* base pages only */
};

struct px_region_opts {
	enum px_region_backing backing;
	int numa_node;        /* bind to this node; -1 for none */
	bool numa_interleave; /* interleave over all nodes */
	bool populate;        /* prefault the whole region at creation */
	bool lock;            /* mlock the region */
	bool shareable;       /* memfd-backed, sealed against shrinking */
	bool collapse;        /* MADV_COLLAPSE after populate (THP) */
	const char *name;     /* memfd name, for /proc/PID/maps */
};

struct px_region_stats {
	size_t size;          /* bytes mapped */
	size_t page_size;     /* kernel page size of the backing */
	size_t resident;      /* bytes resident now */
	size_t huge_resident; /* bytes resident in hugepages */
	size_t carved;        /* bytes handed out by px_region_carve() */
	enum px_region_backing backing;
};

/*
 * px_region_opts_init - fill @opts with the defaults: Kconfig backing,
 * no NUMA binding, no populate, no lock, private mapping.
 */
PX_API void px_region_opts_init(struct px_region_opts *opts);

/*
 * px_region_create - map a region of at least @size bytes.
 * @out:  receives the region
 * @size: bytes wanted; rounded up to the page size of the backing obtained
 * @opts: NULL for the defaults
 *
 * "Best available" walks 1G (when CONFIG_PX_REGION_HUGE_1G), 2M hugetlb,
 * THP, 4K, stepping down when a step fails (no reserved pages, ENOMEM,
 * EINVAL).  A specific hugetlb backing does not fall back.
 * Returns 0, -EINVAL (size 0, bad options), -ENOMEM, -EOPNOTSUPP (NUMA
 * asked without libnuma support), or another -errno from the kernel.
 */
PX_API int px_region_create(struct px_region **out, size_t size,
			    const struct px_region_opts *opts);

/* px_region_destroy - unmap and free; NULL is a no-op. */
PX_API void px_region_destroy(struct px_region *r);

/* Start address and mapped size (a multiple of the page size). */
PX_API void *px_region_base(const struct px_region *r);
PX_API size_t px_region_size(const struct px_region *r);

/* Page size and backing obtained, as read back from the kernel. */
PX_API size_t px_region_page_size(const struct px_region *r);
PX_API enum px_region_backing px_region_backing(const struct px_region *r);

/* A short name for a backing: "hugetlb-2M", "thp", "4K", ... */
PX_API const char *px_region_backing_name(enum px_region_backing b);

/*
 * px_region_carve - hand out @len bytes from the region, aligned to
 * @align (a power of two, 0 for the base page size).
 * Returns 0 and sets *@out, or -ENOMEM when the region is exhausted,
 * -EINVAL for a bad alignment.  Carved memory is never taken back
 * individually; px_region_release() gives its pages back to the kernel.
 */
PX_API int
px_region_carve(struct px_region *r, size_t len, size_t align, void **out);

/*
 * px_region_release - give the pages of [@addr, @addr + @len) back to the
 * kernel (MADV_DONTNEED, or hole punching for a shareable region).  The
 * range stays mapped and reads back as zeros.  Both ends must be aligned
 * to the region's page size.  Returns 0, -EINVAL or -errno.
 */
PX_API int px_region_release(struct px_region *r, void *addr, size_t len);

/*
 * px_region_fd - the memfd behind a shareable region, or -1.  The fd
 * stays owned by the region; dup() it to keep it.
 */
PX_API int px_region_fd(const struct px_region *r);

/* px_region_stats - fill @st; reads /proc/self/smaps.  0 or -errno. */
PX_API int
px_region_stats(const struct px_region *r, struct px_region_stats *st);

#endif
