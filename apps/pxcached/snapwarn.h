/* SPDX-License-Identifier: MIT */
/*
 * When a failing periodic snapshot save is worth a log line.  A save that
 * keeps failing (a full or read-only disk) used to log a warning on every
 * attempt, one per --snapshot-interval, for as long as the trouble
 * lasted.  Now the first failure and every change of error are logged in
 * full, identical failures in between only as a summary at most every
 * CONFIG_PX_PXCACHED_SNAPSHOT_WARN_S seconds, and the first good save
 * after failures once.  Pure and header-only so that
 * tests/unit/test_pxcached_snapwarn.c drives it with a fake clock; used
 * by snapshot.c on the saving thread only.
 */
#ifndef PXCACHED_SNAPWARN_H
#define PXCACHED_SNAPWARN_H

#include <stdint.h>

/* The run of failed saves so far. */
struct pxc_snapwarn {
	uint64_t failed;  /* failed saves in a row */
	uint64_t since;   /* first of them, monotonic seconds */
	uint64_t next_at; /* a summary is due from then on */
	int err;          /* the error of the last failure */
};

enum pxc_snapwarn_say {
	PXC_SNAPWARN_QUIET,     /* nothing to log */
	PXC_SNAPWARN_FAILED,    /* first failure, or another error */
	PXC_SNAPWARN_STILL,     /* summary: still failing */
	PXC_SNAPWARN_RECOVERED, /* good again after @failed failures */
};

/*
 * pxc_snapwarn_note - account one save that returned @err (0 or -errno)
 * at monotonic second @now, with summaries every @every seconds.  Returns
 * what to log, with the counts for the line in @w; after RECOVERED,
 * log w->failed and call pxc_snapwarn_reset().
 */
static inline enum pxc_snapwarn_say
pxc_snapwarn_note(struct pxc_snapwarn *w, int err, uint64_t now, uint64_t every)
{
	if (err == 0) {
		if (!w->failed)
			return PXC_SNAPWARN_QUIET;
		return PXC_SNAPWARN_RECOVERED;
	}
	if (!w->failed)
		w->since = now;
	w->failed++;
	if (err != w->err) {
		w->err = err;
		w->next_at = now + every;
		return PXC_SNAPWARN_FAILED;
	}
	if (now < w->next_at)
		return PXC_SNAPWARN_QUIET;
	w->next_at = now + every;
	return PXC_SNAPWARN_STILL;
}

/* After a RECOVERED line was logged: the run is over. */
static inline void
pxc_snapwarn_reset(struct pxc_snapwarn *w)
{
	*w = (struct pxc_snapwarn){0};
}

#endif
