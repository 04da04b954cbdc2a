/* SPDX-License-Identifier: MIT */
/*
 * Idle and partial-request timeouts (-o idle_timeout, -o partial_timeout;
 * docs/hardening.md).  The clock is a counter of the worker's sweeps, so
 * the receive path reads no clock and makes no system call: on every
 * received buffer it stamps the connection with that counter when a
 * request finished, or when an unfinished one began.  One periodic ring
 * timer per worker (idle.c) advances the counter and closes the
 * connections whose stamps are too old.  The same sweep checks the
 * sockets of connections that received nothing for a period, because a
 * kernel can leave their multishot recv parked past a reset
 * (px_ring_conn_recv_check()).  All on the worker's thread.
 */
#ifndef PXCACHED_IDLE_H
#define PXCACHED_IDLE_H

#include "pxcached.h"

/* What a connection held before a received buffer was consumed. */
struct pxc_idle_mark {
	size_t held;     /* input bytes buffered */
	bool swallowing; /* an oversized value was being dropped */
};

static inline struct pxc_idle_mark
pxc_idle_mark(const struct pxc_conn *c)
{
	return (struct pxc_idle_mark){c->ilen, c->parser.swallow != 0};
}

/*
 * After @len received bytes were consumed.  A request finished when some
 * bytes were used up, unless they only continued the dropping of an
 * oversized value; part of a request is held when bytes stay buffered or
 * a value is still being dropped.
 */
static inline void
pxc_idle_recv(struct pxc_conn *c, struct pxc_idle_mark m, size_t len)
{
	bool swallowing = c->parser.swallow != 0;
	bool done = c->ilen < m.held + len && !(m.swallowing && swallowing);
	bool partial = c->ilen != 0 || swallowing;

	c->heard_at = c->w->sweeps;
	if (done)
		c->active_at = c->w->sweeps;
	if (partial && (done || !c->partial))
		c->partial_at = c->w->sweeps;
	c->partial = partial;
}

/* A new connection counts as active now. */
static inline void
pxc_idle_accept(struct pxc_conn *c)
{
	c->active_at = c->heard_at = c->w->sweeps;
	c->partial = false;
}

/*
 * pxc_idle_start - arm the worker's sweep timer (always: besides the
 * timeouts it looks for recvs that slept through their socket's end).
 * Returns 0 or the ring's -errno.
 */
int pxc_idle_start(struct pxc_worker *w);

/* pxc_idle_stop - cancel the sweep timer (shutdown). */
void pxc_idle_stop(struct pxc_worker *w);

#endif
