/* SPDX-License-Identifier: MIT */
/*
 * Errors.  Every fallible patinox call returns 0 (or a count) on success
 * and a negative errno on failure; there is no errno side channel.  A few
 * failures have no kernel errno that fits: they use the PX_E* codes below,
 * which start above every kernel errno.  px_strerror() explains both.
 */
#ifndef PATINOX_ERROR_H
#define PATINOX_ERROR_H

#include <patinox/common.h>

enum px_errno {
	PX_EBASE = 4096,
	PX_ECLOSED = PX_EBASE, /* the object was closed or shut down */
	PX_ECORRUPT,           /* stored data failed its checksum or format */
	PX_EVERSION,           /* stored data has a foreign format version */
	PX_ENOFEATURE,         /* the kernel lacks a required feature */
	PX_EPROTO,             /* the peer broke the protocol */
	PX_ERETAIN,            /* a snapshot hit its retention limit */
	PX_EMAX
};

/* Parts of the library, for errors explained in context. */
enum px_part {
	PX_PART_ANY = 0,
	PX_PART_RING,
	PX_PART_REGION,
	PX_PART_MMAP,
	PX_PART_CACHE,
	PX_PART_POOL,
	PX_PART_GUARD,
	PX_PART_SNAPSHOT,
};

/*
 * px_strerror - describe an error code.
 * @err: an error as returned by patinox (negative) or a plain errno
 *       (positive); both give the same text.
 *
 * Returns a static, constant string; never NULL.  Thread safe.
 */
PX_API const char *px_strerror(int err);

/*
 * px_strerror_in - describe an error returned by one part of the library.
 * @part: the part whose call failed
 * @err:  the error it returned
 *
 * Where an errno means something specific in that part (EPERM from ring
 * creation means io_uring is blocked), the text says what and how to fix
 * it; otherwise it is px_strerror(err).  Static string, thread safe.
 */
PX_API const char *px_strerror_in(enum px_part part, int err);

#endif
