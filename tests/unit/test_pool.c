// SPDX-License-Identifier: MIT
/*
 * Unit tests of the pool's state machine with a fake clock and a fake
 * manager: no kernel, no ring.  The manager's create, recycle and the
 * three hooks can each succeed, fail, be slow or never finish; the
 * cancellation matrix runs all 4^5 combinations against several clients
 * with random timeouts and checks the accounting after every event.
 */
#include <dlfcn.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <patinox/error.h>
#include <patinox/pool.h>

#define MS 1000000ull

/* ------------------------------------------------------------------ */
/* realloc that fails on demand (the pool grows its timer heap with it) */
/* ------------------------------------------------------------------ */

static bool realloc_fails;

void *
realloc(void *ptr, size_t size)
{
	static void *(*next)(void *, size_t);

	if (realloc_fails)
		return NULL;
	if (!next)
		next = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	return next(ptr, size);
}

/* ------------------------------------------------------------------ */
/* Fake clock and loop                                                  */
/* ------------------------------------------------------------------ */

static uint64_t fk_now;
static uint64_t fk_wake = UINT64_MAX;
static int fk_kicks;
static int fk_released;

static uint64_t
fk_now_ns(void *arg)
{
	return fk_now;
}

static void
fk_wake_at(void *arg, uint64_t at)
{
	if (at < fk_wake || fk_wake <= fk_now)
		fk_wake = at;
}

static void
fk_kick(void *arg)
{
	fk_kicks++;
}

static void
fk_release(void *arg)
{
	fk_released++;
}

static const struct px_pool_env fk_env = {
    .now_ns = fk_now_ns,
    .wake_at = fk_wake_at,
    .kick = fk_kick,
    .release = fk_release,
};

/* ------------------------------------------------------------------ */
/* Fake manager                                                         */
/* ------------------------------------------------------------------ */

enum mode { M_OK, M_FAIL, M_SLOW, M_NEVER };
enum step { S_CREATE, S_RECYCLE, S_POST_CREATE, S_PRE_RECYCLE, S_POST_RECYCLE };

#define MAX_EV 256

/* A pending step completion or a client's next move. */
struct ev {
	uint64_t at;
	struct px_pool_obj *obj; /* step completion when set */
	int res;
	int client; /* client move when obj is NULL */
	bool used;
	bool on_cancel; /* a NEVER step: fires only when cancelled */
};

static struct {
	enum mode mode[5];
	uint64_t slow_ns;
	int live;    /* values alive */
	int created; /* create calls */
	int destroyed;
	int next_id;
	struct ev ev[MAX_EV];
	int nev;
} fm;

static void
fm_reset(void)
{
	memset(&fm, 0, sizeof(fm));
	fm.slow_ns = 30 * MS;
	fk_now = 1000 * MS;
	fk_wake = UINT64_MAX;
	fk_kicks = 0;
	fk_released = 0;
}

static struct ev *
ev_add(uint64_t at)
{
	for (int i = 0; i < MAX_EV; i++) {
		if (!fm.ev[i].used) {
			memset(&fm.ev[i], 0, sizeof(fm.ev[i]));
			fm.ev[i].used = true;
			fm.ev[i].at = at;
			if (i >= fm.nev)
				fm.nev = i + 1;
			return &fm.ev[i];
		}
	}
	fail_msg("fake event table full");
	return NULL;
}

static void
ev_clear(struct ev *e)
{
	memset(e, 0, sizeof(*e));
}

static void
fm_run_step(struct px_pool *pool, struct px_pool_obj *obj, enum step s)
{
	struct ev *e;

	if (s == S_CREATE) {
		int *v = malloc(sizeof(*v));

		*v = ++fm.next_id;
		fm.live++;
		fm.created++;
		px_pool_obj_set_value(obj, v);
	}
	switch (fm.mode[s]) {
	case M_OK:
		px_pool_done(pool, obj, 0);
		return;
	case M_FAIL:
		px_pool_done(pool, obj, -ECONNREFUSED);
		return;
	case M_SLOW:
		e = ev_add(fk_now + fm.slow_ns);
		e->obj = obj;
		e->res = 0;
		return;
	case M_NEVER:
		e = ev_add(UINT64_MAX);
		e->obj = obj;
		e->on_cancel = true;
		return;
	}
}

static void
fm_create(struct px_pool *pool, struct px_pool_obj *obj, void *arg)
{
	fm_run_step(pool, obj, S_CREATE);
}

static void
fm_recycle(struct px_pool *pool, struct px_pool_obj *obj, void *arg)
{
	fm_run_step(pool, obj, S_RECYCLE);
}

static void
fm_post_create(struct px_pool *pool, struct px_pool_obj *obj, void *arg)
{
	fm_run_step(pool, obj, S_POST_CREATE);
}

static void
fm_pre_recycle(struct px_pool *pool, struct px_pool_obj *obj, void *arg)
{
	fm_run_step(pool, obj, S_PRE_RECYCLE);
}

static void
fm_post_recycle(struct px_pool *pool, struct px_pool_obj *obj, void *arg)
{
	fm_run_step(pool, obj, S_POST_RECYCLE);
}

static void
fm_destroy(struct px_pool *pool, void *value, void *arg)
{
	free(value);
	fm.live--;
	fm.destroyed++;
}

/* Cancel: the pending step ends at the next event turn. */
static void
fm_cancel(struct px_pool *pool, struct px_pool_obj *obj, void *arg)
{
	for (int i = 0; i < fm.nev; i++) {
		if (fm.ev[i].used && fm.ev[i].obj == obj) {
			fm.ev[i].at = fk_now;
			fm.ev[i].res = -ECANCELED;
			fm.ev[i].on_cancel = false;
		}
	}
}

static const struct px_pool_manager fm_mgr = {
    .create = fm_create,
    .recycle = fm_recycle,
    .destroy = fm_destroy,
    .cancel = fm_cancel,
};

static void
fm_opts(struct px_pool_opts *o, uint32_t max)
{
	px_pool_opts_init(o);
	o->max_size = max;
	o->wait_timeout_ms = 1000;
	o->create_timeout_ms = 100;
	o->recycle_timeout_ms = 100;
	o->backoff_min_ms = 0;
	o->backoff_max_ms = 0;
	o->max_lifetime_ms = 0;
	o->idle_timeout_ms = 0;
	o->keepalive_ms = 0;
	o->leak_threshold_ms = 0;
	o->min_idle = 0;
	o->seed = 42;
	o->hooks.post_create = fm_post_create;
	o->hooks.pre_recycle = fm_pre_recycle;
	o->hooks.post_recycle = fm_post_recycle;
	o->hooks.cancel = fm_cancel;
}

/* ------------------------------------------------------------------ */
/* Driving the loop                                                     */
/* ------------------------------------------------------------------ */

static void (*client_move)(struct px_pool *pool, int client);
static void (*check_step)(struct px_pool *pool);

/* Fire fake events due now; returns how many. */
static int
fire_due(struct px_pool *pool)
{
	int n = 0;

	for (int i = 0; i < fm.nev; i++) {
		struct ev e = fm.ev[i];

		if (!e.used || e.on_cancel || e.at > fk_now)
			continue;
		ev_clear(&fm.ev[i]);
		if (e.obj)
			px_pool_done(pool, e.obj, e.res);
		else if (client_move)
			client_move(pool, e.client);
		if (check_step)
			check_step(pool);
		n++;
	}
	return n;
}

static uint64_t
next_event(void)
{
	uint64_t t = fk_wake;

	for (int i = 0; i < fm.nev; i++) {
		struct ev *e = &fm.ev[i];

		if (!e->used || e->on_cancel)
			continue;
		if (e->at < t)
			t = e->at;
	}
	return t;
}

/* Run until nothing is due before @until (or nothing at all). */
static void
drive_until(struct px_pool *pool, uint64_t until)
{
	for (int guard = 0; guard < 100000; guard++) {
		uint64_t t;

		if (fire_due(pool) || fk_kicks) {
			fk_kicks = 0;
			px_pool_poll(pool);
			if (check_step)
				check_step(pool);
			continue;
		}
		if (fk_wake <= fk_now) {
			fk_wake = UINT64_MAX;
			px_pool_poll(pool);
			if (check_step)
				check_step(pool);
			continue;
		}
		t = next_event();
		if (t == UINT64_MAX || t > until) {
			if (until != UINT64_MAX && until > fk_now)
				fk_now = until;
			return;
		}
		fk_now = t;
	}
	fail_msg("the loop did not settle");
}

/* Run what is due now, without letting time pass. */
static void
settle(struct px_pool *pool)
{
	drive_until(pool, fk_now);
}

static void
drive(struct px_pool *pool)
{
	drive_until(pool, UINT64_MAX);
}

static void
advance(struct px_pool *pool, uint64_t ns)
{
	drive_until(pool, fk_now + ns);
}

/* ------------------------------------------------------------------ */
/* A recording get callback                                             */
/* ------------------------------------------------------------------ */

struct got {
	int calls;
	int res;
	struct px_pool_obj *obj;
	int order; /* global completion order */
};

static int got_seq;

static void
on_got(struct px_pool *pool, struct px_pool_obj *obj, int res, void *ctx)
{
	struct got *g = ctx;

	g->calls++;
	g->res = res;
	g->obj = obj;
	g->order = ++got_seq;
}

static int
value_of(struct px_pool_obj *obj)
{
	return *(int *)px_pool_obj_value(obj);
}

static struct px_pool *
make_pool(uint32_t max, struct px_pool_opts *o)
{
	struct px_pool_opts def;
	struct px_pool *pool;

	if (!o) {
		fm_opts(&def, max);
		o = &def;
	}
	assert_int_equal(px_pool_create_env(&fk_env, &fm_mgr, o, &pool), 0);
	return pool;
}

/* Destroy, then end the steps it cancelled (no polls: it may be gone). */
static void
check_empty_destroy(struct px_pool *pool)
{
	client_move = NULL;
	px_pool_destroy(pool);
	while (fire_due(pool))
		;
	assert_int_equal(fm.live, 0);
	assert_int_equal(fk_released, 1);
}

/* ------------------------------------------------------------------ */
/* Basic semantics                                                      */
/* ------------------------------------------------------------------ */

static void
test_pool_get_creates_then_reuses(void **state)
{
	struct px_pool *pool;
	struct px_pool_status s;
	struct got a = {0}, b = {0};

	fm_reset();
	pool = make_pool(2, NULL);
	assert_int_equal(px_pool_get(pool, -1, on_got, &a, NULL), 0);
	assert_int_equal(a.calls, 0); /* never from inside the get */
	drive(pool);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.res, 0);
	assert_int_equal(value_of(a.obj), 1);
	assert_int_equal(px_pool_obj_metrics(a.obj)->created_ns, 1000 * MS);
	px_pool_put(pool, a.obj);
	assert_int_equal(px_pool_get(pool, -1, on_got, &b, NULL), 0);
	drive(pool);
	assert_int_equal(b.res, 0);
	assert_ptr_equal(b.obj, a.obj);
	assert_int_equal(px_pool_obj_metrics(b.obj)->recycle_count, 1);
	assert_int_equal(fm.created, 1);
	px_pool_status(pool, &s);
	assert_int_equal(s.max_size, 2);
	assert_int_equal(s.size, 1);
	assert_int_equal(s.available, 0);
	assert_int_equal(s.in_use, 1);
	px_pool_put(pool, b.obj);
	check_empty_destroy(pool);
}

static void
test_pool_fifo_waiters_no_barging(void **state)
{
	struct px_pool *pool;
	struct got a = {0}, b = {0}, c = {0}, d = {0};

	fm_reset();
	pool = make_pool(1, NULL);
	px_pool_get(pool, -1, on_got, &a, NULL);
	settle(pool);
	px_pool_get(pool, -1, on_got, &b, NULL);
	px_pool_get(pool, -1, on_got, &c, NULL);
	settle(pool);
	assert_int_equal(b.calls + c.calls, 0);
	/* Returned while b and c wait: b gets it, and a new get d queues
	 * behind c instead of taking the object first. */
	px_pool_put(pool, a.obj);
	px_pool_get(pool, -1, on_got, &d, NULL);
	settle(pool);
	assert_int_equal(b.calls, 1);
	assert_int_equal(c.calls + d.calls, 0);
	px_pool_put(pool, b.obj);
	settle(pool);
	assert_int_equal(c.calls, 1);
	assert_int_equal(d.calls, 0);
	px_pool_put(pool, c.obj);
	settle(pool);
	assert_int_equal(d.calls, 1);
	assert_true(b.order < c.order && c.order < d.order);
	px_pool_put(pool, d.obj);
	check_empty_destroy(pool);
}

static void
test_pool_no_lost_wakeup_when_returned_before_wait(void **state)
{
	struct px_pool *pool;
	struct got a = {0}, b = {0};
	uint64_t t0;

	fm_reset();
	pool = make_pool(1, NULL);
	px_pool_get(pool, -1, on_got, &a, NULL);
	drive(pool);
	t0 = fk_now;
	/* The waiter queues while nothing is free; the object comes back
	 * in the same turn, before any poll: no time may pass. */
	px_pool_get(pool, -1, on_got, &b, NULL);
	px_pool_put(pool, a.obj);
	drive_until(pool, fk_now);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.res, 0);
	assert_int_equal(fk_now, t0);
	px_pool_put(pool, b.obj);
	check_empty_destroy(pool);
}

static void
test_pool_wait_timeout_and_try_get(void **state)
{
	struct px_pool *pool;
	struct got a = {0}, b = {0};
	struct px_pool_stats st;

	fm_reset();
	pool = make_pool(1, NULL);
	px_pool_get(pool, -1, on_got, &a, NULL);
	drive(pool);
	assert_int_equal(px_pool_get(pool, 0, on_got, &b, NULL), -ETIMEDOUT);
	assert_int_equal(px_pool_get(pool, 50, on_got, &b, NULL), 0);
	advance(pool, 49 * MS);
	assert_int_equal(b.calls, 0);
	advance(pool, 2 * MS);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.res, -ETIMEDOUT);
	px_pool_stats_get(pool, &st);
	assert_int_equal(st.gets_timed_out, 2);
	px_pool_put(pool, a.obj);
	/* A try-get with a free object succeeds. */
	memset(&b, 0, sizeof(b));
	assert_int_equal(px_pool_get(pool, 0, on_got, &b, NULL), 0);
	drive(pool);
	assert_int_equal(b.res, 0);
	px_pool_put(pool, b.obj);
	check_empty_destroy(pool);
}

/* Each get's create takes a heap slot inside pump(); the get's own
 * deadline must still find room (ASan shows the overflow, the deadlines
 * below show a lost or corrupt heap entry). */
static void
test_pool_get_deadline_fits_heap_filled_by_its_create(void **state)
{
	struct px_pool_opts o;
	struct px_pool *pool;
	struct got g[80];

	fm_reset();
	memset(g, 0, sizeof(g));
	fm.mode[S_CREATE] = M_NEVER;
	fm_opts(&o, 1000);
	o.leak_threshold_ms = 100000; /* housekeeping holds a heap slot */
	o.create_timeout_ms = 10000;
	pool = make_pool(1000, &o);
	for (int i = 0; i < 80; i++)
		assert_int_equal(px_pool_get(pool, 50 + i, on_got, &g[i], NULL),
				 0);
	advance(pool, 200 * MS);
	for (int i = 0; i < 80; i++) {
		assert_int_equal(g[i].calls, 1);
		assert_int_equal(g[i].res, -ETIMEDOUT);
	}
	check_empty_destroy(pool);
}

/* create + recycle timeouts are summed in 64 bits: two valid uint32_t
 * timeouts must not wrap into an immediate try-get timeout. */
static void
test_pool_try_get_deadline_does_not_wrap(void **state)
{
	struct px_pool_opts o;
	struct px_pool *pool;
	struct got a = {0};

	fm_reset();
	fm.mode[S_CREATE] = M_NEVER;
	fm_opts(&o, 1);
	o.create_timeout_ms = UINT32_MAX;
	o.recycle_timeout_ms = 1;
	pool = make_pool(1, &o);
	assert_int_equal(px_pool_get(pool, 0, on_got, &a, NULL), 0);
	advance(pool, 10 * MS);
	assert_int_equal(a.calls, 0);
	check_empty_destroy(pool);
}

/* With no memory for a keepalive's deadline the sweep skips the rest of
 * this round's keepalives instead of picking the same object forever.
 * 70 idle objects: the 64th check finds the timer heap full. */
static void
test_pool_keepalive_without_memory_does_not_spin(void **state)
{
	struct px_pool_opts o;
	struct px_pool *pool;
	struct px_pool_stats st;
	struct px_pool_status s;

	fm_reset();
	fm_opts(&o, 70);
	o.min_idle = 70;
	o.keepalive_ms = 100;
	o.recycle_timeout_ms = 10000;
	pool = make_pool(70, &o);
	settle(pool);
	px_pool_status(pool, &s);
	assert_int_equal(s.available, 70);
	fm.mode[S_PRE_RECYCLE] = M_NEVER; /* checks hold their deadline */
	realloc_fails = true;
	alarm(20); /* a spinning sweep ends the program */
	advance(pool, 2000 * MS);
	alarm(0);
	realloc_fails = false;
	px_pool_stats_get(pool, &st);
	assert_true(st.keepalives > 0 && st.keepalives < 70);
	px_pool_status(pool, &s);
	assert_int_equal(s.available + st.keepalives, 70);
	check_empty_destroy(pool);
}

/*
 * Housekeeping must come back even when the round that filled the timer
 * heap leaves no room to grow it: 64 background creates that never end
 * fill the heap's first 64 slots, and growing it fails.  Once the
 * creates time out and memory is back, later rounds refill min_idle.
 */
static void
test_pool_housekeeping_rearmed_without_memory(void **state)
{
	struct px_pool_opts o;
	struct px_pool *pool;
	struct px_pool_status s;

	fm_reset();
	fm_opts(&o, 64);
	o.min_idle = 64;
	o.maint_interval_ms = 50;
	o.create_timeout_ms = 100;
	fm.mode[S_CREATE] = M_NEVER;
	pool = make_pool(64, &o);
	realloc_fails = true;
	alarm(20);    /* a create loop that spins ends the program */
	settle(pool); /* the first round: creates, then no memory */
	alarm(0);
	realloc_fails = false;
	fm.mode[S_CREATE] = M_OK;
	advance(pool, 1000 * MS); /* the creates time out; rounds go on */
	px_pool_status(pool, &s);
	assert_int_equal(s.available, 64);
	assert_int_equal(s.size, 64);
	check_empty_destroy(pool);
}

/*
 * Waiters with the same timeout share one deadline node; one with an
 * earlier deadline than the queue's last goes to the heap.  Either way
 * each times out at its own deadline, in deadline order.
 */
static void
test_pool_waiter_deadlines_mixed_timeouts(void **state)
{
	struct px_pool *pool;
	struct got held = {0}, g[5] = {{0}};
	static const int32_t ms[5] = {100, 300, 50, 300, 200};
	static const int order[5] = {2, 4, 1, 5, 3};

	fm_reset();
	pool = make_pool(1, NULL);
	px_pool_get(pool, -1, on_got, &held, NULL);
	settle(pool);
	assert_int_equal(held.res, 0);
	got_seq = 0;
	for (int i = 0; i < 5; i++)
		assert_int_equal(px_pool_get(pool, ms[i], on_got, &g[i], NULL),
				 0);
	advance(pool, 250 * MS);
	for (int i = 0; i < 5; i++)
		assert_int_equal(g[i].calls, ms[i] <= 250);
	advance(pool, 100 * MS);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(g[i].res, -ETIMEDOUT);
		assert_int_equal(g[i].order, order[i]);
	}
	px_pool_put(pool, held.obj);
	check_empty_destroy(pool);
}

/*
 * Without a recycle check, an object put back goes straight to the oldest
 * waiter (the fast path) and a get with an idle object is served in the
 * call: still strictly FIFO, callbacks still from the next poll.
 */
static void
test_pool_no_check_fast_paths_keep_fifo(void **state)
{
	struct px_pool_manager m = {.create = fm_create, .destroy = fm_destroy};
	struct px_pool_opts o;
	struct px_pool *pool;
	struct got held = {0}, w[3] = {{0}}, again = {0};
	struct px_pool_stats st;
	int value;

	fm_reset();
	fm_opts(&o, 1);
	memset(&o.hooks, 0, sizeof(o.hooks));
	assert_int_equal(px_pool_create_env(&fk_env, &m, &o, &pool), 0);
	px_pool_get(pool, -1, on_got, &held, NULL);
	settle(pool);
	value = value_of(held.obj);
	got_seq = 0;
	for (int i = 0; i < 3; i++)
		px_pool_get(pool, -1, on_got, &w[i], NULL);
	px_pool_put(pool, held.obj);
	assert_int_equal(w[0].calls, 0); /* not inside put */
	settle(pool);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(w[i].calls, 1);
		assert_int_equal(w[i].order, 1);
		assert_int_equal(value_of(w[i].obj), value);
		got_seq = 0;
		px_pool_put(pool, w[i].obj);
		settle(pool);
	}
	assert_int_equal(px_pool_get(pool, 0, on_got, &again, NULL), 0);
	assert_int_equal(again.calls, 0); /* not inside get */
	settle(pool);
	assert_int_equal(again.res, 0);
	px_pool_put(pool, again.obj);
	px_pool_stats_get(pool, &st);
	assert_int_equal(st.gets_waited, 4); /* with the first, created */
	assert_int_equal(st.gets_direct, 1);
	assert_int_equal(st.created, 1);
	check_empty_destroy(pool);
}

static void
test_pool_bounded_waiter_queue_fails_fast(void **state)
{
	struct px_pool_opts o;
	struct px_pool *pool;
	struct got a = {0}, w[3] = {{0}};
	struct px_pool_stats st;

	fm_reset();
	fm_opts(&o, 1);
	o.max_waiters = 2;
	pool = make_pool(1, &o);
	px_pool_get(pool, -1, on_got, &a, NULL);
	settle(pool);
	assert_int_equal(px_pool_get(pool, -1, on_got, &w[0], NULL), 0);
	assert_int_equal(px_pool_get(pool, -1, on_got, &w[1], NULL), 0);
	assert_int_equal(px_pool_get(pool, -1, on_got, &w[2], NULL), -EAGAIN);
	px_pool_stats_get(pool, &st);
	assert_int_equal(st.gets_rejected, 1);
	px_pool_put(pool, a.obj);
	settle(pool);
	px_pool_put(pool, w[0].obj);
	settle(pool);
	px_pool_put(pool, w[1].obj);
	check_empty_destroy(pool);
}

static void
test_pool_close_fails_every_waiter_at_once(void **state)
{
	struct px_pool *pool;
	struct got a = {0}, w[5] = {{0}}, late = {0};

	fm_reset();
	pool = make_pool(1, NULL);
	px_pool_get(pool, -1, on_got, &a, NULL);
	drive(pool);
	for (int i = 0; i < 5; i++)
		px_pool_get(pool, -1, on_got, &w[i], NULL);
	drive_until(pool, fk_now);
	px_pool_close(pool);
	assert_int_equal(px_pool_poll(pool), 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(w[i].res, -PX_ECLOSED);
	assert_int_equal(px_pool_get(pool, -1, on_got, &late, NULL),
			 -PX_ECLOSED);
	assert_int_equal(fm.live, 1);
	px_pool_put(pool, a.obj); /* destroyed on return */
	assert_int_equal(fm.live, 0);
	check_empty_destroy(pool);
}

static void
test_pool_destroy_runs_pending_callbacks(void **state)
{
	struct px_pool *pool;
	struct got a = {0}, b = {0};

	fm_reset();
	pool = make_pool(1, NULL);
	px_pool_get(pool, -1, on_got, &a, NULL);
	drive(pool);
	px_pool_get(pool, -1, on_got, &b, NULL);
	px_pool_destroy(pool);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.res, -PX_ECLOSED);
	assert_int_equal(fk_released, 0); /* a still holds an object */
	px_pool_put(pool, a.obj);
	assert_int_equal(fk_released, 1);
	assert_int_equal(fm.live, 0);
}

/*
 * A get already matched with an object whose callback has not run yet
 * is still pending for its caller: destroy documents every callback it
 * runs as -PX_ECLOSED, and a caller that trusts that must not be handed
 * an object it will never put back (the pool could never be freed).
 */
static void
test_pool_destroy_fails_gets_not_yet_delivered(void **state)
{
	struct px_pool *pool;
	struct got a = {0};

	fm_reset();
	pool = make_pool(1, NULL);
	/* Every step ends at once: the get is matched inside this call. */
	assert_int_equal(px_pool_get(pool, -1, on_got, &a, NULL), 0);
	assert_int_equal(a.calls, 0);
	px_pool_destroy(pool);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.res, -PX_ECLOSED);
	assert_null(a.obj);
	assert_int_equal(fm.live, 0);
	assert_int_equal(fk_released, 1);
}

static struct got close_first[2];

static void
close_on_got(struct px_pool *pool, struct px_pool_obj *obj, int res, void *ctx)
{
	on_got(pool, obj, res, ctx);
	if (ctx == &close_first[0]) {
		if (obj)
			px_pool_put(pool, obj);
		px_pool_close(pool);
	}
}

/* The same after a close from the first of two callbacks of one poll. */
static void
test_pool_close_fails_gets_not_yet_delivered(void **state)
{
	struct px_pool *pool;
	struct px_pool_stats st;

	fm_reset();
	memset(close_first, 0, sizeof(close_first));
	pool = make_pool(2, NULL);
	for (int i = 0; i < 2; i++)
		assert_int_equal(
		    px_pool_get(pool, -1, close_on_got, &close_first[i], NULL),
		    0);
	assert_int_equal(px_pool_poll(pool), 2);
	assert_int_equal(close_first[0].res, 0);
	assert_int_equal(close_first[1].calls, 1);
	assert_int_equal(close_first[1].res, -PX_ECLOSED);
	assert_null(close_first[1].obj);
	assert_int_equal(fm.live, 0);
	px_pool_stats_get(pool, &st);
	assert_int_equal(st.gets_direct + st.gets_waited, 1);
	assert_int_equal(st.gets_failed, 1);
	check_empty_destroy(pool);
}

static void
test_pool_cancel_get(void **state)
{
	struct px_pool *pool;
	struct px_pool_wait *w;
	struct got a = {0}, b = {0};

	fm_reset();
	pool = make_pool(1, NULL);
	px_pool_get(pool, -1, on_got, &a, NULL);
	drive(pool);
	px_pool_get(pool, -1, on_got, &b, &w);
	assert_int_equal(px_pool_get_cancel(pool, w), 0);
	drive(pool);
	assert_int_equal(b.res, -ECANCELED);
	/* Cancelled after being served but before its callback: the object
	 * goes back. */
	px_pool_put(pool, a.obj);
	memset(&b, 0, sizeof(b));
	px_pool_get(pool, -1, on_got, &b, &w); /* served, callback pending */
	assert_int_equal(px_pool_get_cancel(pool, w), 0);
	px_pool_poll(pool);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.res, -ECANCELED);
	check_empty_destroy(pool);
}

/*
 * Every get ends in exactly one outcome counter: one cancelled after it
 * was served, or after it timed out, but before its callback, counts as
 * cancelled only (the counters must add up to the gets issued).
 */
static struct px_pool_wait *cancel_target;

static void
cancel_other(struct px_pool *pool, struct px_pool_obj *obj, int res, void *ctx)
{
	on_got(pool, obj, res, ctx);
	assert_int_equal(px_pool_get_cancel(pool, cancel_target), 0);
}

static void
test_pool_cancel_after_outcome_counts_once(void **state)
{
	struct px_pool_stats st;
	struct px_pool_wait *w;
	struct px_pool *pool;
	struct got a = {0}, b = {0}, x = {0}, y = {0};

	fm_reset();
	pool = make_pool(1, NULL);
	px_pool_get(pool, -1, on_got, &a, &w); /* served, callback pending */
	assert_int_equal(px_pool_get_cancel(pool, w), 0);
	settle(pool);
	assert_int_equal(a.res, -ECANCELED);
	px_pool_get(pool, -1, on_got, &b, NULL);
	settle(pool);
	/* Both time out in one poll; x's callback cancels y, whose own
	 * callback has not run yet. */
	px_pool_get(pool, 10, cancel_other, &x, NULL);
	px_pool_get(pool, 10, on_got, &y, &cancel_target);
	advance(pool, 20 * MS);
	assert_int_equal(x.res, -ETIMEDOUT);
	assert_int_equal(y.res, -ECANCELED);
	px_pool_stats_get(pool, &st);
	assert_int_equal(st.gets_direct + st.gets_waited, 1);
	assert_int_equal(st.gets_timed_out, 1);
	assert_int_equal(st.gets_cancelled, 2);
	assert_int_equal(st.gets_failed + st.gets_rejected, 0);
	px_pool_put(pool, b.obj);
	check_empty_destroy(pool);
}

static void
test_pool_lifo_and_fifo_idle_order(void **state)
{
	struct px_pool_opts o;
	struct px_pool *pool;
	struct got g[3] = {{0}}, x = {0};

	for (int lifo = 0; lifo < 2; lifo++) {
		fm_reset();
		fm_opts(&o, 3);
		o.order = lifo ? PX_POOL_LIFO : PX_POOL_FIFO;
		pool = make_pool(3, &o);
		for (int i = 0; i < 3; i++) {
			memset(&g[i], 0, sizeof(g[i]));
			px_pool_get(pool, -1, on_got, &g[i], NULL);
		}
		drive(pool);
		for (int i = 0; i < 3; i++)
			px_pool_put(pool, g[i].obj);
		memset(&x, 0, sizeof(x));
		px_pool_get(pool, -1, on_got, &x, NULL);
		drive(pool);
		assert_ptr_equal(x.obj, lifo ? g[2].obj : g[0].obj);
		px_pool_put(pool, x.obj);
		check_empty_destroy(pool);
	}
}

/* ------------------------------------------------------------------ */
/* Failure classes                                                      */
/* ------------------------------------------------------------------ */

static void
test_pool_timeout_mid_create_leaks_nothing(void **state)
{
	struct px_pool *pool;
	struct px_pool_status s;
	struct got a = {0}, b = {0};

	fm_reset();
	fm.mode[S_CREATE] = M_SLOW;
	fm.slow_ns = 80 * MS; /* under the create timeout, over the wait */
	pool = make_pool(1, NULL);
	px_pool_get(pool, 20, on_got, &a, NULL);
	advance(pool, 30 * MS);
	assert_int_equal(a.res, -ETIMEDOUT);
	px_pool_status(pool, &s);
	assert_int_equal(s.size, 1); /* the create goes on */
	assert_int_equal(s.creating, 1);
	drive(pool);
	px_pool_status(pool, &s);
	assert_int_equal(s.size, 1);
	assert_int_equal(s.available, 1); /* finished into the idle list */
	px_pool_get(pool, -1, on_got, &b, NULL);
	drive(pool);
	assert_int_equal(b.res, 0);
	assert_int_equal(fm.created, 1);
	px_pool_put(pool, b.obj);
	check_empty_destroy(pool);
}

static void
test_pool_timeout_mid_recycle_leaks_nothing(void **state)
{
	struct px_pool *pool;
	struct px_pool_status s;
	struct got a = {0}, b = {0};

	fm_reset();
	pool = make_pool(1, NULL);
	px_pool_get(pool, -1, on_got, &a, NULL);
	drive(pool);
	px_pool_put(pool, a.obj);
	fm.mode[S_RECYCLE] = M_NEVER;
	px_pool_get(pool, 20, on_got, &b, NULL);
	advance(pool, 30 * MS);
	assert_int_equal(b.res, -ETIMEDOUT);
	advance(pool, 200 * MS); /* the recycle timeout abandons it */
	px_pool_status(pool, &s);
	assert_true(s.size <= 1);
	assert_int_equal(s.aborting, 0);
	assert_int_equal(fm.live, (int)s.size);
	check_empty_destroy(pool);
}

static void
test_pool_broken_objects_do_not_starve_the_pool(void **state)
{
	struct px_pool *pool;
	struct got g = {0};

	fm_reset();
	pool = make_pool(2, NULL);
	for (int i = 0; i < 2; i++) {
		struct got h = {0};

		px_pool_get(pool, -1, on_got, &h, NULL);
		drive(pool);
		px_pool_drop(pool, h.obj); /* broken by the caller */
	}
	/* And every idle one fails its check from now on. */
	px_pool_get(pool, -1, on_got, &g, NULL);
	drive(pool);
	px_pool_put(pool, g.obj);
	fm.mode[S_RECYCLE] = M_FAIL;
	for (int i = 0; i < 10; i++) {
		struct got h = {0};

		px_pool_get(pool, -1, on_got, &h, NULL);
		drive(pool);
		assert_int_equal(h.res, 0);
		px_pool_put(pool, h.obj);
	}
	assert_true(fm.created >= 12);
	check_empty_destroy(pool);
}

static void
test_pool_create_races_returned_object(void **state)
{
	struct px_pool *pool;
	struct px_pool_status s;
	struct got a = {0}, b = {0};

	fm_reset();
	pool = make_pool(2, NULL);
	px_pool_get(pool, -1, on_got, &a, NULL);
	drive(pool);
	fm.mode[S_CREATE] = M_SLOW;
	fm.slow_ns = 50 * MS;
	px_pool_get(pool, -1, on_got, &b, NULL); /* starts a slow create */
	advance(pool, 5 * MS);
	px_pool_put(pool, a.obj); /* comes back first: b takes it */
	advance(pool, 1 * MS);
	assert_int_equal(b.res, 0);
	assert_ptr_equal(b.obj, a.obj);
	drive(pool); /* the create still lands, as an idle object */
	px_pool_status(pool, &s);
	assert_int_equal(s.size, 2);
	assert_int_equal(s.available, 1);
	px_pool_put(pool, b.obj);
	check_empty_destroy(pool);
}

static void
test_pool_never_answering_backend_is_bounded(void **state)
{
	struct px_pool *pool;
	struct px_pool_status s;
	struct got a = {0};
	uint64_t t0;

	fm_reset();
	fm.mode[S_CREATE] = M_NEVER;
	pool = make_pool(2, NULL);
	t0 = fk_now;
	px_pool_get(pool, 10000, on_got, &a, NULL);
	drive(pool);
	assert_int_equal(a.res, -ETIMEDOUT);
	assert_true(fk_now - t0 <= 101 * MS); /* the create timeout */
	px_pool_status(pool, &s);
	assert_int_equal(s.size, 0);
	assert_int_equal(s.aborting, 0); /* cancelled and ended */
	assert_int_equal(fm.live, 0);
	check_empty_destroy(pool);
}

static void
test_pool_backend_down_backs_off_without_spinning(void **state)
{
	struct px_pool_opts o;
	struct px_pool *pool;
	struct px_pool_stats st;
	int ok = 0, refused = 0;

	fm_reset();
	fm_opts(&o, 4);
	o.backoff_min_ms = 10;
	o.backoff_max_ms = 200;
	fm.mode[S_CREATE] = M_FAIL;
	pool = make_pool(4, &o);
	/* A client retries every millisecond for two seconds. */
	for (int i = 0; i < 2000; i++) {
		struct got g = {0};

		if (i == 1500)
			fm.mode[S_CREATE] = M_OK; /* the backend is back */
		px_pool_get(pool, -1, on_got, &g, NULL);
		drive_until(pool, fk_now);
		assert_int_equal(g.calls, 1);
		if (g.res == 0) {
			ok++;
			px_pool_put(pool, g.obj);
		} else {
			assert_int_equal(g.res, -ECONNREFUSED);
			refused++;
		}
		advance(pool, MS);
	}
	/* With the pause doubling to 200 ms, 1500 ms of outage costs a
	 * handful of connection attempts, not 1500. */
	assert_true(fm.created < 30);
	assert_true(ok > 250);
	px_pool_stats_get(pool, &st);
	assert_true(st.backoffs >= 5);
	check_empty_destroy(pool);
}

static void
test_pool_lifetime_jitter_spreads_expiry(void **state)
{
	struct px_pool_opts o;
	struct px_pool *pool;
	struct got g[32];
	struct px_pool_status s;
	int gone_early;

	fm_reset();
	fm_opts(&o, 32);
	o.max_lifetime_ms = 1000;
	o.lifetime_jitter_pct = 20;
	o.maint_interval_ms = 10;
	pool = make_pool(32, &o);
	for (int i = 0; i < 32; i++) {
		memset(&g[i], 0, sizeof(g[i]));
		px_pool_get(pool, -1, on_got, &g[i], NULL);
	}
	drive_until(pool, fk_now);
	for (int i = 0; i < 32; i++)
		px_pool_put(pool, g[i].obj);
	/* All created at one instant; at 900 ms some but not all expired. */
	advance(pool, 899 * MS);
	px_pool_status(pool, &s);
	gone_early = 32 - (int)s.available;
	assert_true(gone_early > 0 && gone_early < 32);
	advance(pool, 50 * MS);
	advance(pool, 60 * MS);
	px_pool_status(pool, &s);
	assert_int_equal(s.size, 0); /* none outlives max_lifetime */
	check_empty_destroy(pool);
}

/* ------------------------------------------------------------------ */
/* Hooks, administration, housekeeping                                  */
/* ------------------------------------------------------------------ */

static void
test_pool_hook_failures(void **state)
{
	struct px_pool *pool;
	struct got a = {0}, b = {0};

	fm_reset();
	fm.mode[S_POST_CREATE] = M_FAIL;
	pool = make_pool(1, NULL);
	px_pool_get(pool, -1, on_got, &a, NULL);
	drive(pool);
	assert_int_equal(a.res, -ECONNREFUSED); /* post_create fails a get */
	assert_int_equal(fm.live, 0);
	fm.mode[S_POST_CREATE] = M_OK;
	memset(&a, 0, sizeof(a));
	px_pool_get(pool, -1, on_got, &a, NULL);
	drive(pool);
	px_pool_put(pool, a.obj);
	fm.mode[S_POST_RECYCLE] = M_FAIL; /* drops the object, then creates */
	px_pool_get(pool, -1, on_got, &b, NULL);
	drive(pool);
	assert_int_equal(b.res, 0);
	assert_int_equal(fm.created, 3);
	fm.mode[S_POST_RECYCLE] = M_OK;
	px_pool_put(pool, b.obj);
	check_empty_destroy(pool);
}

static void
test_pool_resize_take_retain(void **state)
{
	struct px_pool *pool;
	struct px_pool_status s;
	struct got g[4] = {{0}};
	void *v;

	fm_reset();
	pool = make_pool(2, NULL);
	for (int i = 0; i < 3; i++)
		px_pool_get(pool, -1, on_got, &g[i], NULL);
	drive_until(pool, fk_now);
	assert_int_equal(g[2].calls, 0);
	assert_int_equal(px_pool_resize(pool, 3), 0); /* serves g[2] */
	drive_until(pool, fk_now);
	assert_int_equal(g[2].res, 0);
	v = px_pool_take(pool, g[2].obj);
	free(v);
	fm.live--;
	px_pool_status(pool, &s);
	assert_int_equal(s.size, 2);
	px_pool_put(pool, g[0].obj);
	px_pool_put(pool, g[1].obj);
	assert_int_equal(px_pool_resize(pool, 1), 0);
	px_pool_status(pool, &s);
	assert_int_equal(s.size, 1);
	assert_int_equal(px_pool_resize(pool, 0), -EINVAL);
	assert_int_equal(px_pool_resize(pool, 4), 0);
	for (int i = 0; i < 4; i++) {
		memset(&g[i], 0, sizeof(g[i]));
		px_pool_get(pool, -1, on_got, &g[i], NULL);
	}
	drive(pool);
	for (int i = 0; i < 4; i++)
		px_pool_put(pool, g[i].obj);
	check_empty_destroy(pool);
}

/*
 * Resize while six gets wait and four slow creates are in flight: down
 * to 2, then up to 3 before they land.  No more than 3 objects may ever
 * exist once they did, waiters are served in arrival order, and the
 * rest are served as objects come back.
 */
static void
test_pool_resize_while_creates_in_flight(void **state)
{
	struct px_pool_status s;
	struct px_pool *pool;
	struct got g[6] = {{0}};
	int served = 0;

	fm_reset();
	fm.mode[S_CREATE] = M_SLOW;
	pool = make_pool(4, NULL);
	for (int i = 0; i < 6; i++)
		assert_int_equal(px_pool_get(pool, -1, on_got, &g[i], NULL), 0);
	settle(pool);
	px_pool_status(pool, &s);
	assert_int_equal(s.creating, 4);
	assert_int_equal(px_pool_resize(pool, 2), 0);
	assert_int_equal(px_pool_resize(pool, 3), 0);
	advance(pool, fm.slow_ns);
	px_pool_status(pool, &s);
	assert_true(s.size <= 3);
	assert_int_equal(fm.live, (int)s.size);
	for (int i = 0; i < 6; i++)
		served += g[i].calls && g[i].res == 0;
	assert_int_equal(served, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(g[i].res, 0); /* the oldest three */
	for (int i = 0; i < 3; i++)
		px_pool_put(pool, g[i].obj);
	advance(pool, fm.slow_ns);
	for (int i = 3; i < 6; i++) {
		assert_int_equal(g[i].calls, 1);
		assert_int_equal(g[i].res, 0);
		assert_true(g[i - 1].order < g[i].order);
	}
	px_pool_status(pool, &s);
	assert_int_equal(s.size, 3);
	assert_int_equal(fm.live, 3);
	for (int i = 3; i < 6; i++)
		px_pool_put(pool, g[i].obj);
	check_empty_destroy(pool);
}

static bool
keep_odd(struct px_pool *pool, struct px_pool_obj *obj, void *arg)
{
	return value_of(obj) % 2 == 1;
}

static void
test_pool_retain_predicate(void **state)
{
	struct px_pool *pool;
	struct px_pool_status s;
	struct got g[4] = {{0}};

	fm_reset();
	pool = make_pool(4, NULL);
	for (int i = 0; i < 4; i++)
		px_pool_get(pool, -1, on_got, &g[i], NULL);
	drive(pool);
	for (int i = 0; i < 4; i++)
		px_pool_put(pool, g[i].obj);
	assert_int_equal(px_pool_retain(pool, keep_odd, NULL), 2);
	px_pool_status(pool, &s);
	assert_int_equal(s.size, 2);
	assert_int_equal(fm.live, 2);
	check_empty_destroy(pool);
}

/*
 * A keep-predicate that calls back into the pool: what a user does when
 * a health sweep decides the backend is gone (close), or wants an object
 * right away (get), or shrinks the pool (resize).  retain() must not walk
 * a list the predicate changed under it.
 */
struct reenter {
	int calls;
	int action; /* 0 close, 1 get, 2 resize to 1 */
	struct got g;
	struct px_pool_status seen;
};

static bool
keep_reenter(struct px_pool *pool, struct px_pool_obj *obj, void *arg)
{
	struct reenter *r = arg;

	if (r->calls++ == 0) {
		if (r->action == 0)
			px_pool_close(pool);
		else if (r->action == 1)
			assert_int_equal(
			    px_pool_get(pool, -1, on_got, &r->g, NULL), 0);
		else
			assert_int_equal(px_pool_resize(pool, 1), 0);
		px_pool_status(pool, &r->seen);
		return false;
	}
	return true;
}

/* Four idle objects; retain() with @action from inside the predicate. */
static struct px_pool *
retain_reenter(struct reenter *r, int action, int *removed)
{
	struct px_pool *pool;
	struct got g[4] = {{0}};

	fm_reset();
	pool = make_pool(4, NULL);
	for (int i = 0; i < 4; i++)
		px_pool_get(pool, -1, on_got, &g[i], NULL);
	drive(pool);
	for (int i = 0; i < 4; i++)
		px_pool_put(pool, g[i].obj);
	memset(r, 0, sizeof(*r));
	r->action = action;
	*removed = px_pool_retain(pool, keep_reenter, r);
	return pool;
}

static void
test_pool_retain_predicate_closes_pool(void **state)
{
	struct px_pool_status s;
	struct px_pool *pool;
	struct reenter r;
	int removed;

	pool = retain_reenter(&r, 0, &removed);
	/* Closing destroys every idle object: none is left to look at. */
	assert_int_equal(removed, 4);
	assert_int_equal(fm.live, 0);
	px_pool_status(pool, &s);
	assert_int_equal(s.size, 0);
	assert_int_equal(s.available, 0);
	check_empty_destroy(pool);
}

static void
test_pool_retain_predicate_gets_an_object(void **state)
{
	struct px_pool_status s;
	struct px_pool *pool;
	struct reenter r;
	int removed;

	pool = retain_reenter(&r, 1, &removed);
	/* The object the predicate rejected is not the one handed out. */
	assert_int_equal(removed, 1);
	drive(pool);
	assert_int_equal(r.g.calls, 1);
	assert_int_equal(r.g.res, 0);
	assert_int_equal(fm.live, 3);
	px_pool_status(pool, &s);
	assert_int_equal(s.size, 3);
	assert_int_equal(s.in_use, 1);
	assert_int_equal(s.available, 2);
	assert_true(value_of(r.g.obj) > 0);
	px_pool_put(pool, r.g.obj);
	check_empty_destroy(pool);
}

static void
test_pool_retain_predicate_resizes_pool(void **state)
{
	struct px_pool_status s;
	struct px_pool *pool;
	struct reenter r;
	int removed;

	pool = retain_reenter(&r, 2, &removed);
	/* Status inside the predicate counts the objects under review. */
	assert_int_equal(r.seen.size, 4);
	assert_int_equal(r.seen.available, 4);
	assert_int_equal(r.seen.max_size, 1);
	/* Every object was looked at; all but one went to the new size. */
	assert_int_equal(r.calls, 4);
	assert_int_equal(removed, 3);
	px_pool_status(pool, &s);
	assert_int_equal(s.size, 1);
	assert_int_equal(s.available, 1);
	assert_int_equal(fm.live, 1);
	check_empty_destroy(pool);
}

/*
 * Close from every place a user's code runs: each manager step and hook,
 * the cancel callbacks, a get callback and each error-sink event.  The
 * status must add up at every one of those calls, every started get
 * must get exactly one callback, and nothing may leak.
 */
enum cx_site {
	X_NONE,
	X_CREATE,
	X_POST_CREATE,
	X_PRE_RECYCLE,
	X_RECYCLE,
	X_POST_RECYCLE,
	X_CANCEL,
	X_HOOK_CANCEL,
	X_GET_CB,
	X_CREATE_FAILED,
	X_RECYCLE_FAILED,
	X_STEP_TIMEOUT,
	X_LEAK,
	X_BACKOFF,
	X_SITES
};

#define CX_HELD 16

static struct {
	enum cx_site close_at;
	bool after; /* close after the step's own work, else before */
	bool closed;
	int bad_status;
	int started, callbacks;
	unsigned int reached; /* bit per site */
	struct px_pool_obj *held[CX_HELD];
	int nheld;
} cx;

static void
cx_site(struct px_pool *pool, enum cx_site site)
{
	struct px_pool_status st;

	px_pool_status(pool, &st);
	if (st.size != st.available + st.in_use + st.creating + st.recycling)
		cx.bad_status++;
	cx.reached |= 1u << site;
	if (site == cx.close_at && !cx.closed) {
		cx.closed = true;
		px_pool_close(pool);
	}
}

#define CX_STEP(name, site, inner)                                      \
	static void name(struct px_pool *pool, struct px_pool_obj *obj, \
			 void *arg)                                     \
	{                                                               \
		if (!cx.after)                                          \
			cx_site(pool, site);                            \
		inner(pool, obj, arg);                                  \
		if (cx.after)                                           \
			cx_site(pool, site);                            \
	}

CX_STEP(cx_create, X_CREATE, fm_create)
CX_STEP(cx_post_create, X_POST_CREATE, fm_post_create)
CX_STEP(cx_pre_recycle, X_PRE_RECYCLE, fm_pre_recycle)
CX_STEP(cx_recycle, X_RECYCLE, fm_recycle)
CX_STEP(cx_post_recycle, X_POST_RECYCLE, fm_post_recycle)
CX_STEP(cx_cancel, X_CANCEL, fm_cancel)
CX_STEP(cx_hook_cancel, X_HOOK_CANCEL, fm_cancel)

static void
cx_got(struct px_pool *pool, struct px_pool_obj *obj, int res, void *ctx)
{
	cx.callbacks++;
	if (obj) {
		assert_int_equal(res, 0);
		assert_true(cx.nheld < CX_HELD);
		cx.held[cx.nheld++] = obj;
	}
	cx_site(pool, X_GET_CB);
}

static void
cx_sink(struct px_pool *pool, enum px_pool_event ev, int err,
	struct px_pool_obj *obj, void *arg)
{
	static const enum cx_site map[] = {
	    [PX_POOL_EV_CREATE_FAILED] = X_CREATE_FAILED,
	    [PX_POOL_EV_RECYCLE_FAILED] = X_RECYCLE_FAILED,
	    [PX_POOL_EV_STEP_TIMEOUT] = X_STEP_TIMEOUT,
	    [PX_POOL_EV_LEAK] = X_LEAK,
	    [PX_POOL_EV_BACKOFF] = X_BACKOFF,
	};

	cx_site(pool, map[ev]);
}

static const struct px_pool_manager cx_mgr = {
    .create = cx_create,
    .recycle = cx_recycle,
    .destroy = fm_destroy,
    .cancel = cx_cancel,
};

static void
cx_get(struct px_pool *pool)
{
	if (px_pool_get(pool, -1, cx_got, NULL, NULL) == 0)
		cx.started++;
}

static void
cx_give_back(struct px_pool *pool, bool broken)
{
	if (cx.nheld == 0)
		return;
	if (broken)
		px_pool_drop(pool, cx.held[--cx.nheld]);
	else
		px_pool_put(pool, cx.held[--cx.nheld]);
}

/* One run that passes every site, closing at @at. */
static void
cx_run(enum cx_site at, bool after)
{
	struct px_pool_opts o;
	struct px_pool *pool;

	fm_reset();
	memset(&cx, 0, sizeof(cx));
	cx.close_at = at;
	cx.after = after;
	fm_opts(&o, 2);
	o.leak_threshold_ms = 50;
	o.maint_interval_ms = 10;
	o.hooks.post_create = cx_post_create;
	o.hooks.pre_recycle = cx_pre_recycle;
	o.hooks.post_recycle = cx_post_recycle;
	o.hooks.cancel = cx_hook_cancel;
	o.error_sink = cx_sink;
	assert_int_equal(px_pool_create_env(&fk_env, &cx_mgr, &o, &pool), 0);
	cx_get(pool);
	cx_get(pool);
	settle(pool);
	cx_give_back(pool, false); /* a checkout recycle */
	cx_get(pool);
	settle(pool);
	fm.mode[S_RECYCLE] = M_FAIL; /* a failed recycle, then a create */
	cx_give_back(pool, false);
	cx_get(pool);
	settle(pool);
	fm.mode[S_RECYCLE] = M_OK;
	advance(pool, 60 * MS);      /* held past leak_threshold_ms */
	fm.mode[S_CREATE] = M_NEVER; /* a create that times out */
	cx_give_back(pool, true);
	cx_get(pool);
	advance(pool, 200 * MS);
	fm.mode[S_CREATE] = M_OK;
	fm.mode[S_POST_CREATE] = M_NEVER; /* a hook that times out */
	cx_get(pool);
	advance(pool, 200 * MS);
	fm.mode[S_POST_CREATE] = M_OK;
	fm.mode[S_CREATE] = M_FAIL; /* a create that fails */
	cx_get(pool);
	settle(pool);
	while (cx.nheld)
		cx_give_back(pool, false);
	settle(pool);
	if (at != X_NONE && !cx.closed)
		fail_msg("site %d was never reached", at);
	if (at == X_NONE && cx.reached != ((1u << X_SITES) - 2))
		fail_msg("sites reached: %#x", cx.reached);
	assert_int_equal(cx.bad_status, 0);
	assert_int_equal(cx.callbacks, cx.started);
	check_empty_destroy(pool);
}

static void
test_pool_close_from_every_callback(void **state)
{
	for (int at = X_NONE; at < 2 * X_SITES; at++) {
		print_message("close at site %d, %s\n", at % X_SITES,
			      at < X_SITES ? "before" : "after");
		cx_run((enum cx_site)(at % X_SITES), at >= X_SITES);
	}
}

static void
test_pool_min_idle_replenishes(void **state)
{
	struct px_pool_opts o;
	struct px_pool *pool;
	struct px_pool_status s;
	struct got g = {0};

	fm_reset();
	fm_opts(&o, 4);
	o.min_idle = 2;
	o.maint_interval_ms = 10;
	pool = make_pool(4, &o);
	advance(pool, 1 * MS);
	px_pool_status(pool, &s);
	assert_int_equal(s.available, 2);
	px_pool_get(pool, -1, on_got, &g, NULL);
	drive_until(pool, fk_now);
	px_pool_drop(pool, g.obj);
	advance(pool, 20 * MS);
	px_pool_status(pool, &s);
	assert_int_equal(s.available, 2);
	check_empty_destroy(pool);
}

static void
test_pool_idle_timeout_and_keepalive(void **state)
{
	struct px_pool_opts o;
	struct px_pool *pool;
	struct px_pool_status s;
	struct px_pool_stats st;
	struct got g[3] = {{0}};

	fm_reset();
	fm_opts(&o, 3);
	o.min_idle = 1;
	o.idle_timeout_ms = 100;
	o.keepalive_ms = 40;
	o.maint_interval_ms = 10;
	pool = make_pool(3, &o);
	for (int i = 0; i < 3; i++)
		px_pool_get(pool, -1, on_got, &g[i], NULL);
	drive_until(pool, fk_now);
	for (int i = 0; i < 3; i++)
		px_pool_put(pool, g[i].obj);
	advance(pool, 60 * MS);
	px_pool_stats_get(pool, &st);
	assert_true(st.keepalives >= 3);
	/* A dead connection is found by keepalive, not by a get. */
	fm.mode[S_RECYCLE] = M_FAIL;
	advance(pool, 60 * MS);
	fm.mode[S_RECYCLE] = M_OK;
	advance(pool, 300 * MS);
	px_pool_status(pool, &s);
	assert_int_equal(s.available, 1); /* min_idle is kept */
	px_pool_stats_get(pool, &st);
	assert_true(st.closed_broken >= 1);
	assert_true(st.closed_idle + st.closed_broken >= 2);
	check_empty_destroy(pool);
}

/*
 * A keepalive check is not a use: idle objects that pass their
 * keepalives must still reach idle_timeout, counted from their return.
 */
static void
test_pool_keepalive_does_not_defeat_idle_timeout(void **state)
{
	struct px_pool_opts o;
	struct px_pool *pool;
	struct px_pool_status s;
	struct px_pool_stats st;
	struct got g[2] = {{0}};

	fm_reset();
	fm_opts(&o, 2);
	o.idle_timeout_ms = 100;
	o.keepalive_ms = 30;
	o.maint_interval_ms = 10;
	pool = make_pool(2, &o);
	for (int i = 0; i < 2; i++)
		px_pool_get(pool, -1, on_got, &g[i], NULL);
	settle(pool);
	for (int i = 0; i < 2; i++)
		px_pool_put(pool, g[i].obj);
	advance(pool, 90 * MS);
	px_pool_stats_get(pool, &st);
	assert_true(st.keepalives >= 4); /* checked, and kept */
	px_pool_status(pool, &s);
	assert_int_equal(s.size, 2);
	advance(pool, 60 * MS);
	px_pool_status(pool, &s);
	assert_int_equal(s.size, 0);
	px_pool_stats_get(pool, &st);
	assert_int_equal(st.closed_idle, 2);
	check_empty_destroy(pool);
}

/*
 * max_lifetime holds at hand-out: an object that expires while its
 * checkout recycle runs is destroyed, not handed out, and the waiter
 * gets a fresh one.
 */
static void
test_pool_object_expiring_during_checkout_is_not_handed_out(void **state)
{
	struct px_pool_opts o;
	struct px_pool *pool;
	struct px_pool_stats st;
	struct got a = {0}, b = {0};

	fm_reset();
	fm_opts(&o, 1);
	o.max_lifetime_ms = 100;
	o.lifetime_jitter_pct = 0;
	pool = make_pool(1, &o);
	px_pool_get(pool, -1, on_got, &a, NULL);
	settle(pool);
	assert_int_equal(value_of(a.obj), 1);
	px_pool_put(pool, a.obj);
	advance(pool, 80 * MS);
	fm.mode[S_RECYCLE] = M_SLOW; /* 30 ms: ends past the lifetime */
	px_pool_get(pool, -1, on_got, &b, NULL);
	advance(pool, 40 * MS);
	fm.mode[S_RECYCLE] = M_OK;
	settle(pool);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.res, 0);
	assert_int_equal(value_of(b.obj), 2);
	px_pool_stats_get(pool, &st);
	assert_int_equal(st.closed_expired, 1);
	px_pool_put(pool, b.obj);
	check_empty_destroy(pool);
}

static int leak_reports;

static void
count_leaks(struct px_pool *pool, enum px_pool_event ev, int err,
	    struct px_pool_obj *obj, void *arg)
{
	if (ev == PX_POOL_EV_LEAK)
		leak_reports++;
}

static void
test_pool_leak_detection_reports_once(void **state)
{
	struct px_pool_opts o;
	struct px_pool *pool;
	struct got g = {0};

	fm_reset();
	leak_reports = 0;
	fm_opts(&o, 1);
	o.leak_threshold_ms = 50;
	o.maint_interval_ms = 10;
	o.error_sink = count_leaks;
	pool = make_pool(1, &o);
	px_pool_get(pool, -1, on_got, &g, NULL);
	advance(pool, 40 * MS);
	assert_int_equal(leak_reports, 0);
	advance(pool, 200 * MS);
	assert_int_equal(leak_reports, 1);
	px_pool_put(pool, g.obj);
	check_empty_destroy(pool);
}

static void
test_pool_stats_and_histogram(void **state)
{
	struct px_pool *pool;
	struct px_pool_stats st;
	struct got a = {0}, b = {0};

	fm_reset();
	pool = make_pool(1, NULL);
	px_pool_get(pool, -1, on_got, &a, NULL);
	drive(pool);
	px_pool_get(pool, -1, on_got, &b, NULL);
	advance(pool, 3 * MS);
	px_pool_put(pool, a.obj);
	drive(pool);
	px_pool_stats_get(pool, &st);
	assert_int_equal(st.gets_waited, 2);
	assert_int_equal(st.created, 1);
	assert_int_equal(st.recycled, 1);
	/* b waited 3 ms: bucket [2048, 4096) us. */
	assert_int_equal(st.wait_hist[12], 1);
	assert_int_equal(px_pool_wait_percentile(&st, 99.0), 4096000);
	assert_string_equal(px_pool_stat_name(0), "gets_direct");
	assert_null(px_pool_stat_name(1000));
	px_pool_put(pool, b.obj);
	check_empty_destroy(pool);
}

static void
test_pool_rejects_bad_options(void **state)
{
	struct px_pool_opts o;
	struct px_pool *pool;
	struct px_pool_manager m = fm_mgr;

	fm_reset();
	fm_opts(&o, 0);
	assert_int_equal(px_pool_create_env(&fk_env, &fm_mgr, &o, &pool),
			 -EINVAL);
	fm_opts(&o, 2);
	o.create_timeout_ms = 0;
	assert_int_equal(px_pool_create_env(&fk_env, &fm_mgr, &o, &pool),
			 -EINVAL);
	m.destroy = NULL;
	assert_int_equal(px_pool_create_env(&fk_env, &m, NULL, &pool), -EINVAL);
}

/* A get without a callback, or a retain without a predicate, is
 * refused at the call instead of crashing a later poll. */
static void
test_pool_rejects_calls_without_callbacks(void **state)
{
	struct px_pool_status s;
	struct px_pool *pool;

	fm_reset();
	pool = make_pool(2, NULL);
	assert_int_equal(px_pool_get(pool, -1, NULL, NULL, NULL), -EINVAL);
	assert_int_equal(px_pool_get(pool, 0, NULL, NULL, NULL), -EINVAL);
	assert_int_equal(px_pool_retain(pool, NULL, NULL), -EINVAL);
	px_pool_status(pool, &s);
	assert_int_equal(s.size, 0);
	assert_int_equal(s.waiting, 0);
	assert_int_equal(px_pool_poll(pool), 0);
	check_empty_destroy(pool);
}

static void
test_pool_error_texts_explain_pool_errors(void **state)
{
	assert_non_null(strstr(px_strerror_in(PX_PART_POOL, -PX_ECLOSED),
			       "pool is closed"));
	assert_non_null(
	    strstr(px_strerror_in(PX_PART_POOL, -EAGAIN), "waiter queue"));
	assert_non_null(
	    strstr(px_strerror_in(PX_PART_POOL, -ECONNREFUSED), "back off"));
}

/* ------------------------------------------------------------------ */
/* The cancellation matrix                                              */
/* ------------------------------------------------------------------ */

#define CLIENTS 8
#define ROUNDS  5

static struct {
	struct got g[CLIENTS];
	struct px_pool_wait *w[CLIENTS];
	int rounds[CLIENTS];
	int gets, callbacks, served;
	uint32_t rng;
	uint32_t max;
} mx;

static uint32_t
mx_rand(void)
{
	mx.rng = mx.rng * 1103515245u + 12345u;
	return mx.rng >> 8;
}

static void
mx_schedule(int client, uint64_t delay)
{
	struct ev *e = ev_add(fk_now + delay + 1);

	e->client = client;
}

static void
mx_on_got(struct px_pool *pool, struct px_pool_obj *obj, int res, void *ctx)
{
	int c = (int)(intptr_t)ctx;

	mx.callbacks++;
	mx.served += res == 0;
	mx.w[c] = NULL;
	mx.g[c].obj = obj;
	mx.g[c].res = res;
	mx_schedule(c, (mx_rand() % 20) * MS);
}

/* A client either returns what it holds, or starts its next get. */
static void
mx_move(struct px_pool *pool, int c)
{
	struct px_pool_obj *obj = mx.g[c].obj;
	int32_t tmo;
	int ret;

	if (obj) {
		mx.g[c].obj = NULL;
		switch (mx_rand() % 8) {
		case 0:
			px_pool_drop(pool, obj);
			break;
		case 1:
			fm_destroy(pool, px_pool_take(pool, obj), NULL);
			break;
		default:
			px_pool_put(pool, obj);
		}
	}
	if (mx.rounds[c]++ >= ROUNDS)
		return;
	tmo = (int32_t)(mx_rand() % 5) * 30; /* 0 (try-get) to 120 ms */
	ret = px_pool_get(pool, tmo, mx_on_got, (void *)(intptr_t)c, &mx.w[c]);
	if (ret == 0) {
		mx.gets++;
		if (mx_rand() % 7 == 0) /* some callers give up early */
			px_pool_get_cancel(pool, mx.w[c]);
	} else {
		mx_schedule(c, (mx_rand() % 20) * MS);
	}
}

static void
mx_check(struct px_pool *pool)
{
	struct px_pool_status s;

	px_pool_status(pool, &s);
	assert_true(s.size <= s.max_size);
	assert_true(s.available <= s.max_size);
	assert_int_equal(s.size,
			 s.available + s.in_use + s.creating + s.recycling);
	/* Values alive: those counted, plus abandoned steps not ended. */
	assert_true(fm.live <= (int)(s.size + s.aborting));
}

static void
matrix_one(unsigned int combo)
{
	struct px_pool_opts o;
	struct px_pool *pool;

	fm_reset();
	memset(&mx, 0, sizeof(mx));
	mx.rng = combo * 2654435761u + 1;
	for (int s = 0; s < 5; s++)
		fm.mode[s] = (enum mode)((combo >> (2 * s)) & 3);
	fm.slow_ns = (20 + combo % 70) * MS; /* under and over timeouts */
	fm_opts(&o, 3);
	o.max_waiters = 6; /* some gets meet a full queue */
	o.create_timeout_ms = 50;
	o.recycle_timeout_ms = 40;
	o.backoff_min_ms = combo % 2 ? 5 : 0;
	o.backoff_max_ms = 20;
	o.order = combo % 3 ? PX_POOL_FIFO : PX_POOL_LIFO;
	o.seed = combo + 1;
	pool = make_pool(3, &o);
	client_move = mx_move;
	check_step = mx_check;
	for (int c = 0; c < CLIENTS; c++)
		mx_schedule(c, c * MS);
	drive(pool);

	/* Close with everything settled, then check nothing leaked. */
	px_pool_close(pool);
	drive(pool);
	for (int c = 0; c < CLIENTS; c++) {
		if (mx.g[c].obj)
			px_pool_put(pool, mx.g[c].obj);
	}
	assert_int_equal(mx.callbacks, mx.gets);
	check_step = NULL;
	client_move = NULL;
	px_pool_destroy(pool);
	while (fire_due(pool))
		;
	if (fm.live != 0 || fk_released != 1)
		fail_msg("combo %u: %d values leaked, released %d", combo,
			 fm.live, fk_released);
}

static void
test_pool_cancellation_matrix(void **state)
{
	long gets = 0, served = 0;

	for (unsigned int combo = 0; combo < 1024; combo++) {
		matrix_one(combo);
		gets += mx.gets;
		served += mx.served;
		/* With every step succeeding at once, most gets succeed (the
		 * rest are cancelled or try-gets that found the pool busy). */
		if (combo == 0)
			assert_true(mx.served >= CLIENTS * ROUNDS / 2);
	}
	/* The matrix really ran: gets across all combinations, and the
	 * quarter of them where creates can succeed served objects. */
	assert_true(gets > 1024 * CLIENTS * 3);
	assert_true(served > 1024);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pool_get_creates_then_reuses),
	    cmocka_unit_test(test_pool_fifo_waiters_no_barging),
	    cmocka_unit_test(
		test_pool_no_lost_wakeup_when_returned_before_wait),
	    cmocka_unit_test(test_pool_wait_timeout_and_try_get),
	    cmocka_unit_test(
		test_pool_get_deadline_fits_heap_filled_by_its_create),
	    cmocka_unit_test(test_pool_try_get_deadline_does_not_wrap),
	    cmocka_unit_test(test_pool_keepalive_without_memory_does_not_spin),
	    cmocka_unit_test(test_pool_bounded_waiter_queue_fails_fast),
	    cmocka_unit_test(test_pool_close_fails_every_waiter_at_once),
	    cmocka_unit_test(test_pool_destroy_runs_pending_callbacks),
	    cmocka_unit_test(test_pool_destroy_fails_gets_not_yet_delivered),
	    cmocka_unit_test(test_pool_close_fails_gets_not_yet_delivered),
	    cmocka_unit_test(test_pool_cancel_get),
	    cmocka_unit_test(test_pool_cancel_after_outcome_counts_once),
	    cmocka_unit_test(test_pool_lifo_and_fifo_idle_order),
	    cmocka_unit_test(test_pool_timeout_mid_create_leaks_nothing),
	    cmocka_unit_test(test_pool_timeout_mid_recycle_leaks_nothing),
	    cmocka_unit_test(test_pool_broken_objects_do_not_starve_the_pool),
	    cmocka_unit_test(test_pool_create_races_returned_object),
	    cmocka_unit_test(test_pool_never_answering_backend_is_bounded),
	    cmocka_unit_test(test_pool_backend_down_backs_off_without_spinning),
	    cmocka_unit_test(test_pool_lifetime_jitter_spreads_expiry),
	    cmocka_unit_test(test_pool_hook_failures),
	    cmocka_unit_test(test_pool_resize_take_retain),
	    cmocka_unit_test(test_pool_resize_while_creates_in_flight),
	    cmocka_unit_test(test_pool_retain_predicate),
	    cmocka_unit_test(test_pool_retain_predicate_closes_pool),
	    cmocka_unit_test(test_pool_retain_predicate_gets_an_object),
	    cmocka_unit_test(test_pool_retain_predicate_resizes_pool),
	    cmocka_unit_test(test_pool_close_from_every_callback),
	    cmocka_unit_test(test_pool_min_idle_replenishes),
	    cmocka_unit_test(test_pool_housekeeping_rearmed_without_memory),
	    cmocka_unit_test(test_pool_waiter_deadlines_mixed_timeouts),
	    cmocka_unit_test(test_pool_no_check_fast_paths_keep_fifo),
	    cmocka_unit_test(test_pool_idle_timeout_and_keepalive),
	    cmocka_unit_test(test_pool_keepalive_does_not_defeat_idle_timeout),
	    cmocka_unit_test(
		test_pool_object_expiring_during_checkout_is_not_handed_out),
	    cmocka_unit_test(test_pool_leak_detection_reports_once),
	    cmocka_unit_test(test_pool_stats_and_histogram),
	    cmocka_unit_test(test_pool_rejects_bad_options),
	    cmocka_unit_test(test_pool_rejects_calls_without_callbacks),
	    cmocka_unit_test(test_pool_error_texts_explain_pool_errors),
	    cmocka_unit_test(test_pool_cancellation_matrix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
