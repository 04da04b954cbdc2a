/* SPDX-License-Identifier: MIT */
/*
 * pxcached's live settings: the values commands change while the server
 * runs (verbosity, maxconns), kept in a px_cow cell.  Workers read them
 * on the hot path inside a read-side section (no lock, no shared
 * counter written); a command publishes a changed copy, and every thread
 * sees it from its next read on.
 *
 * Including this header after ../common/log.h makes pxcached's LOG_*
 * macros consult the live verbosity instead of the process-wide level,
 * so `verbosity N` changes what every thread logs.
 */
#ifndef PXCACHED_LIVE_H
#define PXCACHED_LIVE_H

#include <stdint.h>

#include "../common/log.h"

struct pxc_live {
	uint32_t verbosity; /* memcached's: 0 notices, 1 info, 2 debug */
	uint32_t max_conns; /* -c: open connections allowed */
};

/*
 * pxc_live_init - create the cell with @init; call before any thread but
 * the main one runs.  Returns 0 or the error of px_cow_create().
 * pxc_live_destroy - after every other thread has ended.
 */
int pxc_live_init(const struct pxc_live *init);
void pxc_live_destroy(void);

/* pxc_live_get - copy the current settings (any thread, never blocks). */
void pxc_live_get(struct pxc_live *out);

/* pxc_live_log_level - the level LOG_AT allows now. */
int pxc_live_log_level(void);

/*
 * pxc_live_set_verbosity, pxc_live_set_max_conns - publish a copy with
 * one value changed; concurrent changes are serialized, none is lost.
 * Must not be called inside a read-side section.  Returns 0, -ENOMEM
 * (the arena is full: nothing changed), or -ENODEV without a cell.
 */
int pxc_live_set_verbosity(uint32_t v);
int pxc_live_set_max_conns(uint32_t n);

/* The live level, not the process-wide one, gates pxcached's logs. */
#undef LOG_AT
#define LOG_AT(lvl, ...)                               \
	do {                                           \
		if ((lvl) <= CONFIG_PX_LOG_LEVEL &&    \
		    (lvl) <= pxc_live_log_level())     \
			log_write((lvl), __VA_ARGS__); \
	} while (0)

#endif
