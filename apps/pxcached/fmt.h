/* SPDX-License-Identifier: MIT */
/*
 * Number formatting for reply lines on the hot path.  A get hit's
 * "VALUE <key> <flags> <bytes> [<cas>]" line was the one printf left per
 * request; these write the digits straight into the caller's line
 * buffer instead.  No locale, no format parsing, nothing allocated.
 */
#ifndef PXC_FMT_H
#define PXC_FMT_H

#include <stddef.h>
#include <stdint.h>

/* The most digits pxc_fmt_u64() writes (UINT64_MAX has 20). */
#define PXC_FMT_U64_MAX 20

/*
 * pxc_fmt_u64 - the decimal digits of @v at @dst, no terminator.
 * @dst must have room for PXC_FMT_U64_MAX bytes.  Returns how many bytes
 * were written (1 to 20).
 */
static inline size_t
pxc_fmt_u64(char *dst, uint64_t v)
{
	char tmp[PXC_FMT_U64_MAX];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		dst[i] = tmp[n - 1 - i];
	return n;
}

#endif
