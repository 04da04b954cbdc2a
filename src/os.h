/* SPDX-License-Identifier: MIT */
/*
 * The OS calls that both the region and the mmap hook tables wrap, each
 * turned into the 0 / -errno convention once.  Internal to the library
 * (hidden like every symbol without PX_API).
 */
#ifndef PX_SRC_OS_H
#define PX_SRC_OS_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

int px_os_mmap(void **out, void *addr, size_t len, int prot, int flags, int fd,
	       off_t off);
int px_os_munmap(void *addr, size_t len);
int px_os_madvise(void *addr, size_t len, int advice);
int px_os_mlock(const void *addr, size_t len);
int px_os_fstat(int fd, struct stat *st);
int px_os_close(int fd);

#endif
