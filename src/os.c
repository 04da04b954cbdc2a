// SPDX-License-Identifier: MIT
/*
 * Real OS calls shared by the region and mmap hook tables (src/os.h):
 * one definition each, so that both parts fail the same way.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "os.h"

int
px_os_mmap(void **out, void *addr, size_t len, int prot, int flags, int fd,
	   off_t off)
{
	void *p = mmap(addr, len, prot, flags, fd, off);

	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

int
px_os_munmap(void *addr, size_t len)
{
	return munmap(addr, len) ? -errno : 0;
}

int
px_os_madvise(void *addr, size_t len, int advice)
{
	return madvise(addr, len, advice) ? -errno : 0;
}

int
px_os_mlock(const void *addr, size_t len)
{
	return mlock(addr, len) ? -errno : 0;
}

int
px_os_fstat(int fd, struct stat *st)
{
	return fstat(fd, st) ? -errno : 0;
}

int
px_os_close(int fd)
{
	return close(fd) ? -errno : 0;
}
