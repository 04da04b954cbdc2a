// SPDX-License-Identifier: MIT
/*
 * The real OS calls behind struct px_region_hooks, each turned into the
 * 0 / -errno convention, and px_region_set_hooks() for tests.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef CONFIG_PX_REGION_NUMA
#include <numa.h>
#include <numaif.h>
#endif

#include "os.h"
#include "region_internal.h"

static int
os_memfd_create(const char *name, unsigned int flags)
{
	int fd = memfd_create(name, flags);

	return fd < 0 ? -errno : fd;
}

static int
os_ftruncate(int fd, off_t len)
{
	return ftruncate(fd, len) ? -errno : 0;
}

static int
os_fallocate(int fd, int mode, off_t off, off_t len)
{
	return fallocate(fd, mode, off, len) ? -errno : 0;
}

static int
os_fcntl(int fd, int cmd, int arg)
{
	int ret = fcntl(fd, cmd, arg);

	return ret < 0 ? -errno : ret;
}

static int
os_open_smaps(FILE **out)
{
	FILE *f = fopen("/proc/self/smaps", "re");

	if (!f)
		return -errno;
	*out = f;
	return 0;
}

#ifdef CONFIG_PX_REGION_NUMA
static int
os_numa_available(void)
{
	return numa_available();
}

static int
os_numa_max_node(void)
{
	return numa_max_node();
}

static bool
os_numa_node_allowed(int node)
{
	return numa_bitmask_isbitset(numa_all_nodes_ptr, (unsigned int)node);
}

static int
os_mbind(void *addr, size_t len, int mode, const unsigned long *nodemask,
	 unsigned long maxnode, unsigned int flags)
{
	if (mbind(addr, len, mode, nodemask, maxnode, flags) != 0)
		return -errno;
	return 0;
}
#else
static int
os_numa_available(void)
{
	return -1;
}

static int
os_numa_max_node(void)
{
	return 0;
}

static bool
os_numa_node_allowed(int node)
{
	return node == 0;
}

static int
os_mbind(void *addr, size_t len, int mode, const unsigned long *nodemask,
	 unsigned long maxnode, unsigned int flags)
{
	return -EOPNOTSUPP;
}
#endif

/* One initializer for the constant and the mutable copy (C needs a
 * constant expression for a static; a const object is not one). */
#define OS_HOOKS_INIT                                                         \
	{                                                                     \
		.mmap = px_os_mmap, .munmap = px_os_munmap,                   \
		.madvise = px_os_madvise, .mlock = px_os_mlock,               \
		.memfd_create = os_memfd_create, .ftruncate = os_ftruncate,   \
		.fallocate = os_fallocate, .fcntl = os_fcntl,                 \
		.fstat = px_os_fstat, .close = px_os_close,                   \
		.open_smaps = os_open_smaps,                                  \
		.numa_available = os_numa_available,                          \
		.numa_max_node = os_numa_max_node,                            \
		.numa_node_allowed = os_numa_node_allowed, .mbind = os_mbind, \
	}

static const struct px_region_hooks os_hooks = OS_HOOKS_INIT;

struct px_region_hooks px_region_os = OS_HOOKS_INIT;

void
px_region_default_hooks(struct px_region_hooks *h)
{
	*h = os_hooks;
}

#define PICK(h, m) ((h)->m ? (h)->m : os_hooks.m)

void
px_region_set_hooks(const struct px_region_hooks *h)
{
	if (!h)
		h = &os_hooks;
	px_region_os = (struct px_region_hooks){
	    .mmap = PICK(h, mmap),
	    .munmap = PICK(h, munmap),
	    .madvise = PICK(h, madvise),
	    .mlock = PICK(h, mlock),
	    .memfd_create = PICK(h, memfd_create),
	    .ftruncate = PICK(h, ftruncate),
	    .fallocate = PICK(h, fallocate),
	    .fcntl = PICK(h, fcntl),
	    .fstat = PICK(h, fstat),
	    .close = PICK(h, close),
	    .open_smaps = PICK(h, open_smaps),
	    .numa_available = PICK(h, numa_available),
	    .numa_max_node = PICK(h, numa_max_node),
	    .numa_node_allowed = PICK(h, numa_node_allowed),
	    .mbind = PICK(h, mbind),
	};
}

size_t
px_base_page_size(void)
{
	static _Atomic size_t page;
	size_t v = atomic_load_explicit(&page, memory_order_relaxed);

	if (!v) {
		v = (size_t)sysconf(_SC_PAGESIZE);
		atomic_store_explicit(&page, v, memory_order_relaxed);
	}
	return v;
}
