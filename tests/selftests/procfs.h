/* SPDX-License-Identifier: MIT */
/*
 * Small /proc and /sys readers shared by the region and mmap selftests:
 * one number from a file, and one field of the smaps entry that holds an
 * address.  Header-only (static inline): each test program is one file.
 */
#ifndef PX_TESTS_PROCFS_H
#define PX_TESTS_PROCFS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The first number in @path, or -1. */
static inline long
procfs_read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* Writes @v to @path (a sysctl file); false on any failure. */
static inline bool
procfs_write_long(const char *path, long v)
{
	FILE *f = fopen(path, "w");
	bool ok;

	if (!f)
		return false;
	ok = fprintf(f, "%ld\n", v) > 0;
	return fclose(f) == 0 && ok;
}

/*
 * Hugepages of the pool in @dir (a /sys/kernel/mm/hugepages/ directory,
 * with its slash) that a new mapping can still get: free minus those
 * reserved by other processes' mappings.  -1 when there is no such pool.
 */
static inline long
procfs_hugepages_free(const char *dir)
{
	char path[256];
	long free_pages, resv;

	snprintf(path, sizeof(path), "%sfree_hugepages", dir);
	free_pages = procfs_read_long(path);
	snprintf(path, sizeof(path), "%sresv_hugepages", dir);
	resv = procfs_read_long(path);
	if (free_pages < 0)
		return -1;
	if (resv <= 0)
		return free_pages;
	return resv < free_pages ? free_pages - resv : 0;
}

/*
 * The value (kB) of @field ("KernelPageSize", "AnonHugePages", ...) in
 * the /proc/self/smaps entry of the mapping holding @addr; -1 if absent.
 */
static inline long
procfs_smaps_kb(const void *addr, const char *field)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	size_t flen = strlen(field);
	unsigned long lo, hi;
	bool inside = false;
	char line[512];
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, ' ') > strchr(line, '-')) {
			inside = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
			continue;
		}
		if (inside && !strncmp(line, field, flen) &&
		    line[flen] == ':' &&
		    sscanf(line + flen + 1, "%ld", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

#endif
