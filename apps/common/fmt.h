/* SPDX-License-Identifier: MIT */
/*
 * Number formatting for protocol lines on hot paths: pxcached's get hit
 * ("VALUE <key> <flags> <bytes> [<cas>]" was the one printf left per
 * request) and pxload's requests.  The digits go straight into the
 * caller's line buffer: no locale, no format parsing, nothing allocated.
 */
#ifndef PX_APPS_FMT_H
#define PX_APPS_FMT_H

#include <stddef.h>
#include <stdint.h>

/* The most digits fmt_u64() writes (UINT64_MAX has 20). */
#define FMT_U64_MAX 20

/*
 * fmt_u64 - the decimal digits of @v at @dst, no terminator.
 * @dst must have room for FMT_U64_MAX bytes.  Returns how many bytes
 * were written (1 to 20).
 */
static inline size_t
fmt_u64(char *dst, uint64_t v)
{
	char tmp[FMT_U64_MAX];
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
