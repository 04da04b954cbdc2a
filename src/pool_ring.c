// SPDX-License-Identifier: MIT
/*
 * The pool's environment on a px_ring: CLOCK_MONOTONIC for time, one ring
 * timer for the earliest deadline, and ring deferred work for kicks.  When
 * no timer can be armed (no memory, no room in the submission queue), the
 * environment polls the pool from every ring iteration until one can, so
 * deadlines are never lost.  The environment outlives the pool until its
 * timer and deferred work have called back for the last time.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include <string.h>

#include <patinox/pool.h>
#include <patinox/ring.h>

static struct px_pool_ring_hooks env_hooks;

void
px_pool_ring_hooks_set(const struct px_pool_ring_hooks *hooks)
{
	if (hooks)
		env_hooks = *hooks;
	else
		memset(&env_hooks, 0, sizeof(env_hooks));
}

static int
env_timer(struct px_ring *ring, uint64_t ns, px_ring_fn fn, void *ctx,
	  struct px_ring_op **opp)
{
	if (env_hooks.timer)
		return env_hooks.timer(ring, ns, 0, fn, ctx, opp);
	return px_ring_timer(ring, ns, 0, fn, ctx, opp);
}

static int
env_cancel(struct px_ring *ring, struct px_ring_op *op)
{
	if (env_hooks.cancel)
		return env_hooks.cancel(ring, op);
	return px_ring_cancel(ring, op);
}

struct pool_ring_env {
	struct px_ring *ring;
	struct px_pool *pool;
	struct px_ring_op *timer; /* the one armed timer, or NULL */
	uint64_t timer_at;        /* its deadline */
	uint64_t want_at;         /* earliest deadline asked for */
	bool cancelling;          /* the timer is being cancelled to re-arm */
	bool recancel;            /* that cancel found no room: retry */
	bool deferred;            /* a deferred poll is queued */
	bool unarmed;             /* want_at has no timer: poll every turn */
	bool released;            /* the pool is gone */
};

static uint64_t
env_now(void *arg)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void
env_maybe_free(struct pool_ring_env *e)
{
	if (e->released && !e->timer && !e->deferred)
		free(e);
}

static void
env_timer_fired(struct px_ring *ring, int res, bool more, void *ctx);
static void env_kick(void *arg);

/*
 * Arm the timer for want_at.  Without one, a deferred poll runs from the
 * next ring iteration, and retries; waiters still time out (late by at
 * most one iteration) instead of waiting forever.
 */
static void
env_arm(struct pool_ring_env *e)
{
	uint64_t t = env_now(e);
	uint64_t ns = e->want_at > t ? e->want_at - t : 1;

	if (env_timer(e->ring, ns, env_timer_fired, e, &e->timer) < 0) {
		e->timer = NULL;
		e->unarmed = true;
		env_kick(e);
		return;
	}
	e->unarmed = false;
	e->timer_at = e->want_at;
}

/* One timer at most: an earlier deadline cancels it and re-arms. */
static void
env_timer_fired(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct pool_ring_env *e = ctx;

	e->timer = NULL;
	e->cancelling = false;
	if (e->released) {
		env_maybe_free(e);
		return;
	}
	if (res == -ECANCELED && e->want_at != UINT64_MAX) {
		env_arm(e);
		return;
	}
	e->want_at = UINT64_MAX;
	px_pool_poll(e->pool); /* asks for the next deadline */
}

/*
 * Cancel the armed timer to re-arm it earlier.  A cancel refused for want
 * of room in the SQ is retried from the next deferred poll; otherwise
 * the earlier deadline would wait for the later timer.
 */
static void
env_rearm_earlier(struct pool_ring_env *e)
{
	int ret;

	e->recancel = false;
	if (!e->timer || e->cancelling || e->timer_at <= e->want_at)
		return;
	ret = env_cancel(e->ring, e->timer);
	e->cancelling = ret == 0;
	if (ret == -EBUSY) {
		e->recancel = true;
		env_kick(e);
	}
}

static void
env_wake_at(void *arg, uint64_t deadline)
{
	struct pool_ring_env *e = arg;

	if (deadline < e->want_at)
		e->want_at = deadline;
	if (!e->timer)
		env_arm(e);
	else
		env_rearm_earlier(e);
}

static void
env_deferred(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct pool_ring_env *e = ctx;

	e->deferred = false;
	if (!e->released && e->recancel)
		env_rearm_earlier(e);
	if (!e->released && e->unarmed && !e->timer) {
		/* Due: the poll below asks for the next deadline.  Not due:
		 * arm again (or come back next iteration). */
		e->unarmed = false;
		if (e->want_at <= env_now(e))
			e->want_at = UINT64_MAX;
		else
			env_arm(e);
	}
	if (!e->released)
		px_pool_poll(e->pool);
	env_maybe_free(e);
}

static void
env_kick(void *arg)
{
	struct pool_ring_env *e = arg;

	if (e->deferred)
		return;
	if (px_ring_defer(e->ring, env_deferred, e) == 0)
		e->deferred = true;
}

static void
env_release(void *arg)
{
	struct pool_ring_env *e = arg;

	e->released = true;
	if (e->timer)
		env_cancel(e->ring, e->timer);
	env_maybe_free(e);
}

int
px_pool_create(struct px_ring *ring, const struct px_pool_manager *mgr,
	       const struct px_pool_opts *opts, struct px_pool **out)
{
	struct pool_ring_env *e;
	struct px_pool_env env = {
	    .now_ns = env_now,
	    .wake_at = env_wake_at,
	    .kick = env_kick,
	    .release = env_release,
	};
	int ret;

	if (!ring)
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->ring = ring;
	e->want_at = UINT64_MAX;
	env.arg = e;
	ret = px_pool_create_env(&env, mgr, opts, &e->pool);
	if (ret < 0) {
		free(e);
		return ret;
	}
	*out = e->pool;
	return 0;
}
