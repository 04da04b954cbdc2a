/* SPDX-License-Identifier: MIT */
/*
 * Regions: large anonymous memory areas backed by hugepages when the
 * machine has them.  The cache, copy-on-write data and snapshots take
 * their memory here and nowhere else.  A region reports the backing it
 * really got, read back from the kernel (/proc/self/smaps), never assumed
 * from the request.
 *
 * Every call into the kernel (mmap, madvise, mlock, memfd_create,
 * ftruncate, fallocate, fcntl seals, mbind and the libnuma queries, the
 * smaps read) goes through struct px_region_hooks, so that tests can make
 * any step fail without root.
 *
 * Thread safety: creation and destruction are not concurrent with other
 * calls on the same region; px_region_carve(), px_region_release() and
 * px_region_stats() may be called from several threads at once.
 */
#ifndef PATINOX_REGION_H
#define PATINOX_REGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <patinox/common.h>

struct px_region;
struct stat;

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
	/* Added with the hooks and smaps verification: */
	enum px_region_backing requested; /* what the caller asked for */
	bool verified;  /* backing confirmed by smaps just now */
	bool shareable; /* memfd-backed (px_region_fd() >= 0) */
	int numa_node;  /* node bound to, -1 for none (or interleave) */
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
 *        (2 MiB for THP)
 * @opts: NULL for the defaults
 *
 * "Best available" walks 1G (when CONFIG_PX_REGION_HUGE_1G), 2M hugetlb,
 * THP, 4K, stepping down when a step fails (no reserved pages, ENOMEM,
 * EINVAL, EPERM); px_region_step_error() tells why each step failed.  A
 * specific hugetlb backing does not fall back; THP falls back to 4K.
 *
 * NUMA binding or interleave is applied (mbind) before anything touches
 * the memory, then the region is populated, collapsed (MADV_COLLAPSE,
 * best effort: px_region_collapse_error()), locked, and its backing read
 * back from smaps.  A shareable region lives on a memfd (MFD_HUGETLB for
 * hugetlb steps) sealed with F_SEAL_SHRINK, so it can be mapped again with
 * px_region_map_fd().
 *
 * Returns 0, -EINVAL (size 0, bad options, NUMA node out of range),
 * -ENOMEM, -EOPNOTSUPP (NUMA asked without libnuma support, or libnuma
 * says NUMA is unavailable), or another -errno from the kernel.
 */
PX_API int px_region_create(struct px_region **out, size_t size,
			    const struct px_region_opts *opts);

/*
 * px_region_map_fd - map an existing region memfd a second time (the fd
 * of px_region_fd() from this or another process, or one kept for a warm
 * restart).
 * @out:  receives the new region, which owns a duplicate of @fd
 * @fd:   a memfd; it must carry F_SEAL_SHRINK or accept it now
 * @opts: NULL for the defaults; numa_*, populate and lock apply, backing
 *        and shareable are ignored (the file decides)
 *
 * The whole file is mapped shared; the backing is read back from smaps.
 * Returns 0, -EINVAL (empty file, not sealable), -EBADF, or -errno.
 */
PX_API int px_region_map_fd(struct px_region **out, int fd,
			    const struct px_region_opts *opts);

/* px_region_destroy - unmap and free; NULL is a no-op. */
PX_API void px_region_destroy(struct px_region *r);

/* Start address and mapped size (a multiple of the page size). */
PX_API void *px_region_base(const struct px_region *r);
PX_API size_t px_region_size(const struct px_region *r);

/*
 * Page size and backing obtained, as read back from the kernel at the
 * last verification (creation, px_region_verify()).  A THP region with
 * nothing resident cannot be judged yet: it says PX_REGION_THP and
 * px_region_verified() is false until px_region_verify() sees memory.
 */
PX_API size_t px_region_page_size(const struct px_region *r);
PX_API enum px_region_backing px_region_backing(const struct px_region *r);
PX_API bool px_region_verified(const struct px_region *r);

/*
 * px_region_verify - read smaps again and update the backing and page
 * size (a THP region whose pages were not made huge becomes PX_REGION_4K).
 * Not concurrent with px_region_backing() readers on other threads.
 * Returns 0, or -errno when smaps cannot be read or lacks the region.
 */
PX_API int px_region_verify(struct px_region *r);

/* A short name for a backing: "hugetlb-2M", "thp", "4K", ... */
PX_API const char *px_region_backing_name(enum px_region_backing b);

/*
 * px_region_step_error - why the fallback step @b failed during
 * creation: 0 when it was not tried or succeeded, else its -errno.
 */
PX_API int
px_region_step_error(const struct px_region *r, enum px_region_backing b);

/* The -errno of MADV_COLLAPSE, 0 when it worked or was not asked. */
PX_API int px_region_collapse_error(const struct px_region *r);

/*
 * px_region_describe - one line for logs: the backing obtained, whether
 * it is verified, and each fallback step that failed with its reason,
 * e.g. "thp (verified; fell back: hugetlb-2M: Cannot allocate memory)".
 * Returns the length snprintf() would write.
 */
PX_API int px_region_describe(const struct px_region *r, char *buf, size_t len);

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

/*
 * px_region_stats - fill @st; reads /proc/self/smaps for the region's
 * range (resident bytes, hugepage bytes, kernel page size), so it costs a
 * read of smaps: not for a hot path.  0 or -errno (then only size,
 * carved and requested are filled and verified is false).
 */
PX_API int
px_region_stats(const struct px_region *r, struct px_region_stats *st);

/*
 * Hooks: every OS call of the region code.  Each returns 0 (or a value
 * such as an fd) or a negative errno; none touches errno.  A NULL member
 * means the real call.  For tests and diagnostics.
 */
struct px_region_hooks {
	int (*mmap)(void **out, void *addr, size_t len, int prot, int flags,
		    int fd, off_t off);
	int (*munmap)(void *addr, size_t len);
	int (*madvise)(void *addr, size_t len, int advice);
	int (*mlock)(const void *addr, size_t len);
	int (*memfd_create)(const char *name, unsigned int flags);
	int (*ftruncate)(int fd, off_t len);
	int (*fallocate)(int fd, int mode, off_t off, off_t len);
	int (*fcntl)(int fd, int cmd, int arg); /* seals, F_DUPFD_CLOEXEC */
	int (*fstat)(int fd, struct stat *st);
	int (*close)(int fd);
	int (*open_smaps)(FILE **out); /* a stream in smaps format */
	int (*numa_available)(void);   /* libnuma's: -1 when unavailable */
	int (*numa_max_node)(void);
	bool (*numa_node_allowed)(int node); /* may be used for interleave */
	int (*mbind)(void *addr, size_t len, int mode,
		     const unsigned long *nodemask, unsigned long maxnode,
		     unsigned int flags);
};

/*
 * px_region_set_hooks - use @h (copied) for every later OS call; NULL
 * restores the real calls.  Not thread safe: call it while no region call
 * runs (tests do it between tests).
 */
PX_API void px_region_set_hooks(const struct px_region_hooks *h);

/* px_region_default_hooks - the real calls, for fakes that delegate. */
PX_API void px_region_default_hooks(struct px_region_hooks *h);

#endif
