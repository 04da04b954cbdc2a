// SPDX-License-Identifier: MIT
/*
 * The timeout sweep (see idle.h).  Each worker with -o idle_timeout or
 * -o partial_timeout on runs one periodic ring timer, every
 * CONFIG_PX_PXCACHED_IDLE_SWEEP_MS.  Each expiry advances the worker's
 * sweep counter and walks its connections once:
 *  - a connection that finished no request for idle_timeout seconds is
 *    closed (memcached's idle_timeout; counted as idle_kicks);
 *  - one whose unfinished request began partial_timeout seconds ago is
 *    closed, however slowly its bytes keep arriving (partial_kicks).
 * A connection with replies in flight, or whose reading is paused until
 * the client reads its replies, is busy, not idle: its stamps move on.
 * The sweep runs with both timeouts off too: the recv of a connection
 * that received nothing for a whole period is checked (one poll
 * system call), since some kernels leave a multishot recv parked after
 * the peer reset the socket, and that connection would never close.
 *
 * Why a sweep and not a timeout per connection: a linked timeout per
 * recv would cost a submission and a cancellation for every received
 * buffer, and the multishot recv has no single request to link it to.
 * The sweep costs one completion per period per worker, and a walk of
 * the worker's list (10,000 connections: tens of microseconds a second).
 */
#include "../common/log.h"
#include "idle.h"

#define SWEEP_MS ((uint64_t)CONFIG_PX_PXCACHED_IDLE_SWEEP_MS)
#define SWEEP_NS (SWEEP_MS * 1000000ull)

/* Seconds into whole sweep periods, rounded up. */
static uint32_t
periods(uint32_t seconds)
{
	uint64_t n = ((uint64_t)seconds * 1000 + SWEEP_MS - 1) / SWEEP_MS;

	return n > UINT32_MAX / 2 ? UINT32_MAX / 2 : (uint32_t)n;
}

/* What one connection's stamps say: the counter to bump, or -1. */
static int
expired(const struct pxc_conn *c, uint32_t now, uint32_t idle_n,
	uint32_t part_n)
{
	/* A stamp may be up to one period old already: '>' not '>='. */
	if (idle_n && now - c->active_at > idle_n)
		return PXC_ST_idle_kicks;
	if (part_n && c->partial && now - c->partial_at > part_n)
		return PXC_ST_partial_kicks;
	return -1;
}

/* A recv that missed its socket's reset or EOF is restarted. */
static void
recv_check(struct pxc_worker *w, struct pxc_conn *c)
{
	if (px_ring_conn_recv_check(c->rc) > 0)
		LOG_DEBUG(
		    "worker %u: restarted a recv that missed its socket's "
		    "end",
		    w->id);
}

/* Walks the connections; returns how many it closed. */
static unsigned
sweep(struct pxc_worker *w, uint32_t idle_n, uint32_t part_n)
{
	struct pxc_conn *c, *next;
	uint32_t now = w->sweeps;
	unsigned kicked = 0;
	int stat;

	for (c = w->conns.next; c != &w->conns; c = next) {
		next = c->next;
		if (c->state != PXC_CONN_OPEN)
			continue;
		if (c->recv_on && now - c->heard_at >= 2)
			recv_check(w, c);
		if (c->sends || c->throttled) {
			c->active_at = c->partial_at = now;
			continue;
		}
		stat = expired(c, now, idle_n, part_n);
		if (stat < 0)
			continue;
		pxc_stat_add(&w->stats, (enum pxc_stat)stat, 1);
		pxc_conn_close(c);
		kicked++;
	}
	return kicked;
}

static void
on_sweep(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct pxc_worker *w = ctx;
	const struct pxc_opts *o = &w->srv->opts;
	unsigned kicked;

	(void)ring;
	if (!more)
		w->sweep_op = NULL;
	if (res != 0 || w->stopping)
		return;
	w->sweeps++;
	kicked =
	    sweep(w, periods(o->idle_timeout), periods(o->partial_timeout));
	if (kicked)
		LOG_DEBUG("worker %u: closed %u idle or stalled connections",
			  w->id, kicked);
}

int
pxc_idle_start(struct pxc_worker *w)
{
	return px_ring_timer(w->ring, SWEEP_NS, PX_RING_TIMER_PERIODIC,
			     on_sweep, w, &w->sweep_op);
}

void
pxc_idle_stop(struct pxc_worker *w)
{
	if (w->sweep_op)
		px_ring_cancel(w->ring, w->sweep_op);
}
