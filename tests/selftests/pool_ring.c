// SPDX-License-Identifier: MIT
/*
 * The pool's ring environment on a real ring and the real monotonic
 * clock: an earlier deadline re-arms the ring timer, housekeeping runs
 * from ring timers, and a pool destroyed with steps in flight cancels
 * them and frees everything once they end.  The manager's steps are ring
 * timers, so nothing here needs a network.
 */
#include <errno.h>
#include <time.h>

#include <patinox/error.h>
#include <patinox/pool.h>
#include <patinox/ring.h>

#include "harness.h"

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A manager whose create takes @create_ms of ring time. */
struct tmgr {
	struct px_ring *ring;
	uint64_t create_ms;
	int live;
};

struct tstep {
	struct tmgr *m;
	struct px_pool *pool;
	struct px_pool_obj *obj;
	struct px_ring_op *op;
};

static void
step_fired(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct tstep *s = ctx;

	if (res == 0) {
		int *v = malloc(sizeof(*v));

		s->m->live++;
		px_pool_obj_set_value(s->obj, v);
	}
	px_pool_done(s->pool, s->obj, res);
	free(s);
}

static void
t_create(struct px_pool *pool, struct px_pool_obj *obj, void *arg)
{
	struct tmgr *m = arg;
	struct tstep *s = calloc(1, sizeof(*s));

	s->m = m;
	s->pool = pool;
	s->obj = obj;
	if (m->create_ms == 0) {
		step_fired(m->ring, 0, false, s);
		return;
	}
	/* The step rides in the value slot until the create ends. */
	px_ring_timer(m->ring, m->create_ms * 1000000, 0, step_fired, s,
		      &s->op);
	px_pool_obj_set_value(obj, s);
}

static void
t_cancel(struct px_pool *pool, struct px_pool_obj *obj, void *arg)
{
	struct tmgr *m = arg;
	struct tstep *s = px_pool_obj_value(obj);

	px_pool_obj_set_value(obj, NULL); /* no value was made */
	if (s)
		px_ring_cancel(m->ring, s->op);
}

static void
t_destroy(struct px_pool *pool, void *value, void *arg)
{
	struct tmgr *m = arg;

	m->live--;
	free(value);
}

struct got {
	int calls;
	int res;
	struct px_pool_obj *obj;
	uint64_t at_ms;
};

static void
on_got(struct px_pool *pool, struct px_pool_obj *obj, int res, void *ctx)
{
	struct got *g = ctx;

	g->calls++;
	g->res = res;
	g->obj = obj;
	g->at_ms = mono_ms();
}

static void
run_until(struct px_ring *ring, const int *flag, int ms)
{
	uint64_t end = mono_ms() + (uint64_t)ms;

	while ((!flag || !*flag) && mono_ms() < end)
		px_ring_run_once(ring, 5 * 1000000);
}

FIXTURE(pr)
{
	struct px_ring *ring;
	struct tmgr m;
	struct px_pool_manager mgr;
	struct px_pool_opts o;
};

FIXTURE_SETUP(pr)
{
	int ret = px_ring_create(NULL, &self->ring);

	if (ret < 0)
		SKIP(return, "no ring: %s", px_strerror_in(PX_PART_RING, ret));
	self->m.ring = self->ring;
	self->mgr.create = t_create;
	self->mgr.destroy = t_destroy;
	self->mgr.cancel = t_cancel;
	self->mgr.arg = &self->m;
	px_pool_opts_init(&self->o);
	self->o.max_size = 1;
}

FIXTURE_TEARDOWN(pr)
{
	px_ring_destroy(self->ring);
	EXPECT_EQ(self->m.live, 0);
}

TEST_F(pr, earlier_deadline_rearms_the_timer)
{
	struct px_pool *pool;
	struct got held = {0}, slow = {0}, quick = {0};
	uint64_t t0;

	ASSERT_EQ(px_pool_create(self->ring, &self->mgr, &self->o, &pool), 0);
	ASSERT_EQ(px_pool_get(pool, -1, on_got, &held, NULL), 0);
	run_until(self->ring, &held.calls, 2000);
	ASSERT_EQ(held.res, 0);
	/* The ring timer is armed for the 5 s waiter first; the 50 ms one
	 * must still time out on time. */
	t0 = mono_ms();
	ASSERT_EQ(px_pool_get(pool, 5000, on_got, &slow, NULL), 0);
	run_until(self->ring, NULL, 5);
	ASSERT_EQ(px_pool_get(pool, 50, on_got, &quick, NULL), 0);
	run_until(self->ring, &quick.calls, 3000);
	EXPECT_EQ(quick.res, -ETIMEDOUT);
	EXPECT_GE(quick.at_ms - t0, 45);
	EXPECT_LT(quick.at_ms - t0, 1500);
	EXPECT_EQ(slow.calls, 0);
	px_pool_put(pool, held.obj);
	run_until(self->ring, &slow.calls, 2000);
	EXPECT_EQ(slow.res, 0);
	px_pool_put(pool, slow.obj);
	px_pool_destroy(pool);
}

TEST_F(pr, create_timeout_cancels_the_step)
{
	struct px_pool *pool;
	struct px_pool_status s;
	struct got g = {0};

	self->m.create_ms = 10000; /* far beyond the create timeout */
	self->o.create_timeout_ms = 40;
	ASSERT_EQ(px_pool_create(self->ring, &self->mgr, &self->o, &pool), 0);
	ASSERT_EQ(px_pool_get(pool, 5000, on_got, &g, NULL), 0);
	run_until(self->ring, &g.calls, 3000);
	EXPECT_EQ(g.res, -ETIMEDOUT);
	run_until(self->ring, NULL, 20);
	px_pool_status(pool, &s);
	EXPECT_EQ(s.size, 0);
	EXPECT_EQ(s.aborting, 0); /* the cancelled timer ended the step */
	px_pool_destroy(pool);
}

TEST_F(pr, destroy_with_a_create_in_flight)
{
	struct px_pool *pool;
	struct got g = {0};

	self->m.create_ms = 10000;
	ASSERT_EQ(px_pool_create(self->ring, &self->mgr, &self->o, &pool), 0);
	ASSERT_EQ(px_pool_get(pool, -1, on_got, &g, NULL), 0);
	run_until(self->ring, NULL, 10);
	px_pool_destroy(pool); /* the get fails inside, the step is cancelled */
	EXPECT_EQ(g.calls, 1);
	EXPECT_EQ(g.res, -PX_ECLOSED);
	run_until(self->ring, NULL, 20); /* the cancel lands; memory freed */
}

TEST_F(pr, min_idle_fills_from_ring_timers)
{
	struct px_pool *pool;
	struct px_pool_status s;

	self->o.max_size = 4;
	self->o.min_idle = 3;
	self->o.maint_interval_ms = 10;
	ASSERT_EQ(px_pool_create(self->ring, &self->mgr, &self->o, &pool), 0);
	for (int i = 0; i < 200; i++) {
		px_pool_status(pool, &s);
		if (s.available == 3)
			break;
		px_ring_run_once(self->ring, 5 * 1000000);
	}
	EXPECT_EQ(s.available, 3);
	EXPECT_EQ(self->m.live, 3);
	px_pool_destroy(pool);
}

/* A ring timer hook that refuses the first @timer_refusals arms. */
static int timer_refusals;
static int timer_calls;

static int
refusing_timer(struct px_ring *ring, uint64_t ns, uint32_t flags, px_ring_fn fn,
	       void *ctx, struct px_ring_op **opp)
{
	timer_calls++;
	if (timer_refusals != 0) {
		if (timer_refusals > 0)
			timer_refusals--;
		return -EBUSY; /* as with a full submission queue */
	}
	return px_ring_timer(ring, ns, flags, fn, ctx, opp);
}

/* Hold the only object, then queue a get with a 50 ms timeout. */
static void
hold_and_wait_50ms(struct __test_meta *_metadata, FIXTURE_DATA(pr) * self,
		   struct px_pool **pool, struct got *held, struct got *quick)
{
	const struct px_pool_ring_hooks h = {.timer = refusing_timer};

	timer_calls = 0;
	px_pool_ring_hooks_set(&h);
	ASSERT_EQ(px_pool_create(self->ring, &self->mgr, &self->o, pool), 0);
	ASSERT_EQ(px_pool_get(*pool, -1, on_got, held, NULL), 0);
	run_until(self->ring, &held->calls, 2000);
	ASSERT_EQ(held->res, 0);
	ASSERT_EQ(px_pool_get(*pool, 50, on_got, quick, NULL), 0);
	run_until(self->ring, &quick->calls, 3000);
	px_pool_ring_hooks_set(NULL);
}

TEST_F(pr, waiters_time_out_when_no_timer_can_be_armed)
{
	struct px_pool *pool;
	struct got held = {0}, quick = {0};

	timer_refusals = -1; /* every arm fails */
	hold_and_wait_50ms(_metadata, self, &pool, &held, &quick);
	EXPECT_EQ(quick.calls, 1);
	EXPECT_EQ(quick.res, -ETIMEDOUT);
	px_pool_put(pool, held.obj);
	px_pool_destroy(pool);
}

TEST_F(pr, a_refused_timer_is_armed_again)
{
	struct px_pool *pool;
	struct got held = {0}, quick = {0};

	timer_refusals = 1;
	hold_and_wait_50ms(_metadata, self, &pool, &held, &quick);
	EXPECT_EQ(quick.calls, 1);
	EXPECT_EQ(quick.res, -ETIMEDOUT);
	/* A real timer took over: no arm per ring iteration. */
	EXPECT_GE(timer_calls, 2);
	EXPECT_LT(timer_calls, 10);
	px_pool_put(pool, held.obj);
	px_pool_destroy(pool);
}

/* A ring cancel hook that refuses the first @cancel_refusals cancels. */
static int cancel_refusals;
static int cancel_calls;

static int
refusing_cancel(struct px_ring *ring, struct px_ring_op *op)
{
	cancel_calls++;
	if (cancel_refusals > 0) {
		cancel_refusals--;
		return -EBUSY; /* no room in the SQ: nothing changed */
	}
	return px_ring_cancel(ring, op);
}

/*
 * The ring timer waits for a 5 s waiter; a 50 ms waiter comes and the
 * cancel that should re-arm the timer earlier finds the SQ full.  The
 * quick waiter must still time out near its deadline, not at 5 s.
 */
TEST_F(pr, a_refused_timer_cancel_is_retried)
{
	const struct px_pool_ring_hooks h = {.cancel = refusing_cancel};
	struct px_pool *pool;
	struct got held = {0}, slow = {0}, quick = {0};
	uint64_t t0;

	cancel_refusals = 1;
	cancel_calls = 0;
	/* No housekeeping: its timer would wake the pool early anyway. */
	self->o.min_idle = 0;
	self->o.max_lifetime_ms = 0;
	self->o.idle_timeout_ms = 0;
	self->o.keepalive_ms = 0;
	self->o.leak_threshold_ms = 0;
	px_pool_ring_hooks_set(&h);
	ASSERT_EQ(px_pool_create(self->ring, &self->mgr, &self->o, &pool), 0);
	ASSERT_EQ(px_pool_get(pool, -1, on_got, &held, NULL), 0);
	run_until(self->ring, &held.calls, 2000);
	ASSERT_EQ(held.res, 0);
	t0 = mono_ms();
	ASSERT_EQ(px_pool_get(pool, 5000, on_got, &slow, NULL), 0);
	run_until(self->ring, NULL, 5);
	ASSERT_EQ(px_pool_get(pool, 50, on_got, &quick, NULL), 0);
	run_until(self->ring, &quick.calls, 3000);
	px_pool_ring_hooks_set(NULL);
	EXPECT_EQ(quick.calls, 1);
	EXPECT_EQ(quick.res, -ETIMEDOUT);
	EXPECT_LT(quick.at_ms - t0, 1500);
	EXPECT_GE(cancel_calls, 2); /* refused, then done */
	EXPECT_EQ(slow.calls, 0);
	px_pool_put(pool, held.obj);
	run_until(self->ring, &slow.calls, 2000);
	EXPECT_EQ(slow.res, 0);
	px_pool_put(pool, slow.obj);
	px_pool_destroy(pool);
}

TEST_HARNESS_MAIN
