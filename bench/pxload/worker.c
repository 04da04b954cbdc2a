// SPDX-License-Identifier: MIT
/*
 * A pxload worker: one thread, one ring, a share of the connections.  It
 * runs the phases (connect, preload, load) with a barrier between them so
 * that all workers measure over the same window, and owns the timers of
 * the load phase: end of warm-up, end of the measured window, the drain
 * deadline, and (worker 0 only) the progress line.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <patinox/error.h>

#include "../../apps/common/log.h"
#include "pxload.h"

#define NS_PER_S  1000000000ull
#define NS_PER_MS 1000000ull

uint64_t
pxload_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* Ends the current phase: px_ring_run() returns after this turn. */
static void
finish_phase(struct pxload_worker *w)
{
	if (w->phase_over)
		return;
	w->phase_over = true;
	px_ring_stop(w->ring);
}

static bool
load_done(struct pxload_worker *w)
{
	if (w->live == 0)
		return true;
	if (w->inflight)
		return false;
	if (w->stopping)
		return true;
	return w->o->requests && w->measuring && w->budget == 0;
}

void
pxload_worker_check(struct pxload_worker *w)
{
	switch (w->phase) {
	case PHASE_CONNECT:
		if (w->connecting == 0)
			finish_phase(w);
		break;
	case PHASE_PRELOAD:
		if (w->live == 0 ||
		    (w->preload_next >= w->preload_end && w->inflight == 0))
			finish_phase(w);
		break;
	case PHASE_LOAD:
		if (!load_done(w))
			break;
		if (w->measuring || !w->t_end)
			w->t_end = pxload_now_ns();
		w->measuring = false;
		w->stopping = true;
		finish_phase(w);
		break;
	case PHASE_DONE:
		break;
	}
}

static void
on_drain_deadline(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct pxload_worker *w = ctx;

	w->drain_timer = NULL;
	if (res < 0 || w->phase != PHASE_LOAD)
		return;
	LOG_WARN("pxload: %" PRIu64 " requests unanswered after %u ms",
		 w->inflight, PXLOAD_DRAIN_MS);
	w->st.unanswered += w->inflight;
	finish_phase(w);
}

static void
on_measure_end(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct pxload_worker *w = ctx;

	w->timer = NULL;
	if (res < 0 || w->phase != PHASE_LOAD)
		return;
	w->t_end = pxload_now_ns();
	w->measuring = false;
	w->stopping = true;
	px_ring_timer(ring, PXLOAD_DRAIN_MS * NS_PER_MS, 0, on_drain_deadline,
		      w, &w->drain_timer);
	pxload_worker_check(w);
}

static void
on_warm(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct pxload_worker *w = ctx;

	if (res < 0 || w->phase != PHASE_LOAD)
		return;
	w->measuring = true;
	w->t_start = pxload_now_ns();
}

static void
on_progress(struct px_ring *ring, int res, bool more, void *ctx)
{
	static const char *const names[] = {"connect", "preload", "load",
					    "done"};
	struct pxload_worker *w = ctx;
	struct pxload_shared *sh = w->sh;
	uint64_t total = 0;
	uint32_t i;

	if (!more)
		w->progress_timer = NULL;
	if (res < 0)
		return;
	for (i = 0; i < sh->o->threads; i++)
		total +=
		    __atomic_load_n(&sh->workers[i].done_ops, __ATOMIC_RELAXED);
	fprintf(stderr, "pxload: %5.1f s  %-7s %12" PRIu64 " done\n",
		(double)(pxload_now_ns() - sh->t_origin) / NS_PER_S,
		names[w->phase], total);
}

/* Periodic: aborts every connection when nothing was answered lately. */
static void
on_watchdog(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct pxload_worker *w = ctx;
	uint32_t i;

	if (!more)
		w->watchdog = NULL;
	if (res < 0 || w->phase == PHASE_DONE)
		return;
	if (w->replies != w->replies_seen || w->inflight == 0) {
		w->replies_seen = w->replies;
		return;
	}
	LOG_WARN("pxload: no reply for %u ms with %" PRIu64
		 " requests in flight; closing the connections",
		 w->o->stall_ms, w->inflight);
	for (i = 0; i < w->nconns; i++)
		pxload_conn_abort(&w->conns[i], -ETIMEDOUT);
}

static int
start_timers(struct pxload_worker *w)
{
	const struct pxload_opts *o = w->o;
	uint64_t warm = (uint64_t)(o->warmup_s * NS_PER_S);
	int err = 0;

	if (warm)
		err = px_ring_timer(w->ring, warm, 0, on_warm, w, NULL);
	else
		on_warm(w->ring, 0, false, w);
	if (err == 0 && !o->requests)
		err = px_ring_timer(w->ring,
				    warm + (uint64_t)(o->duration_s * NS_PER_S),
				    0, on_measure_end, w, &w->timer);
	return err;
}

static void
run_phase(struct pxload_worker *w, enum pxload_phase phase)
{
	uint64_t now = pxload_now_ns();
	uint32_t i;
	int err;

	w->phase = phase;
	w->phase_over = false;
	if (phase == PHASE_LOAD) {
		err = start_timers(w);
		if (err < 0) {
			w->err = err;
			return;
		}
	}
	for (i = 0; i < w->nconns; i++)
		pxload_conn_pump(&w->conns[i], now);
	pxload_worker_check(w);
	if (!w->phase_over) {
		err = px_ring_run(w->ring);
		if (err < 0)
			w->err = err;
	}
}

static void
open_conns(struct pxload_worker *w)
{
	uint32_t i;
	int err;

	w->phase = PHASE_CONNECT;
	w->phase_over = false;
	for (i = 0; i < w->nconns; i++) {
		err = pxload_conn_open(w, &w->conns[i]);
		if (err < 0) {
			w->conns[i].dead = true;
			w->st.err_conn++;
			LOG_WARN("pxload: connect: %s", px_strerror(err));
		}
	}
	pxload_worker_check(w);
	if (!w->phase_over)
		px_ring_run(w->ring);
}

static int
worker_setup(struct pxload_worker *w)
{
	int err;

	err = px_ring_create(NULL, &w->ring);
	if (err < 0) {
		LOG_ERROR("pxload: ring: %s",
			  px_strerror_in(PX_PART_RING, err));
		return err;
	}
	w->conns = calloc(w->nconns ? w->nconns : 1, sizeof(*w->conns));
	if (!w->conns)
		return -ENOMEM;
	err =
	    px_ring_timer(w->ring, (uint64_t)w->o->stall_ms * NS_PER_MS,
			  PX_RING_TIMER_PERIODIC, on_watchdog, w, &w->watchdog);
	if (err < 0)
		return err;
	if (w->id == 0 && w->o->progress)
		px_ring_timer(w->ring, NS_PER_S, PX_RING_TIMER_PERIODIC,
			      on_progress, w, &w->progress_timer);
	return 0;
}

static void
worker_teardown(struct pxload_worker *w)
{
	uint32_t i;

	w->phase = PHASE_DONE;
	if (w->t_end > w->t_start)
		w->st.measure_ns = w->t_end - w->t_start;
	px_ring_destroy(w->ring);
	w->ring = NULL;
	for (i = 0; w->conns && i < w->nconns; i++)
		pxload_conn_release(&w->conns[i]);
	free(w->conns);
	w->conns = NULL;
}

/*
 * Every worker passes the same three barriers, a failed one too, so that
 * one failure cannot leave the others waiting.
 */
void *
pxload_worker_main(void *arg)
{
	struct pxload_worker *w = arg;
	const struct pxload_opts *o = w->o;

	w->err = worker_setup(w);
	if (!w->err)
		open_conns(w);
	pthread_barrier_wait(&w->sh->barrier);
	if (!w->err && o->preload)
		run_phase(w, PHASE_PRELOAD);
	pthread_barrier_wait(&w->sh->barrier);
	if (!w->err && !o->preload_only)
		run_phase(w, PHASE_LOAD);
	if (w->ring)
		worker_teardown(w);
	return NULL;
}
