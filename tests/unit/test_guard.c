// SPDX-License-Identifier: MIT
/*
 * Unit tests of the guard with a fake loop: release defers cleanup,
 * cleanups wait for every held operation, run in release order, and
 * shutdown reports what was never released or did not finish.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <patinox/error.h>
#include <patinox/guard.h>
#include <patinox/region.h>

#define MAXLOG 256

static struct {
	uint64_t now;
	int kicks;
	int cancels[MAXLOG], ncancel;
	int closed[MAXLOG], nclosed;
	struct px_guard_res *pending[2048];
	int npending;
	bool async_close;
	int close_err;
	int busy; /* cancels and closes refused with -EBUSY first */
} fk;

static uint64_t
fk_now(void *arg)
{
	return fk.now;
}

static int
fk_kick(void *arg)
{
	fk.kicks++;
	return 0;
}

static int
fk_cancel_fd(void *arg, int fd)
{
	if (fk.busy > 0) {
		fk.busy--;
		return -EBUSY;
	}
	fk.cancels[fk.ncancel++ % MAXLOG] = fd;
	return 0;
}

static int
fk_close_fd(void *arg, int fd, struct px_guard_res *res)
{
	if (fk.busy > 0) {
		fk.busy--;
		return -EBUSY;
	}
	fk.closed[fk.nclosed++ % MAXLOG] = fd;
	if (fk.async_close) {
		fk.pending[fk.npending++] = res;
		return 0;
	}
	px_guard_cleanup_done(res, fk.close_err);
	return 0;
}

/* The fake loop: time passes, and async closes never complete. */
static int
fk_run_once(void *arg, int64_t timeout_ns)
{
	fk.now += timeout_ns > 0 ? (uint64_t)timeout_ns : 1;
	return 0;
}

static const struct px_guard_env fk_env = {
    .now_ns = fk_now,
    .kick = fk_kick,
    .cancel_fd = fk_cancel_fd,
    .close_fd = fk_close_fd,
    .run_once = fk_run_once,
};

static struct px_guard *
make_guard(void)
{
	struct px_guard *g;

	memset(&fk, 0, sizeof(fk));
	fk.now = 1000000000ull;
	assert_int_equal(px_guard_create_env(&fk_env, &g), 0);
	return g;
}

static void
test_guard_release_only_queues(void **state)
{
	struct px_guard *g = make_guard();
	struct px_guard_res *r;
	struct px_guard_stats st;

	assert_int_equal(px_guard_add_fd(g, 7, &r), 0);
	px_guard_release(r);
	px_guard_release(r); /* twice is ignored */
	assert_int_equal(fk.nclosed, 0);
	assert_int_equal(fk.kicks, 1);
	assert_int_equal(px_guard_poll(g), 1);
	assert_int_equal(fk.nclosed, 1);
	assert_int_equal(fk.closed[0], 7);
	px_guard_stats_get(g, &st);
	assert_int_equal(st.registered, 1);
	assert_int_equal(st.cleaned, 1);
	assert_int_equal(st.live, 0);
	assert_int_equal(px_guard_shutdown(g, 0, NULL, NULL), 0);
	px_guard_destroy(g);
}

static void
test_guard_fd_waits_for_every_operation(void **state)
{
	struct px_guard *g = make_guard();
	struct px_guard_res *r;

	assert_int_equal(px_guard_add_fd(g, 9, &r), 0);
	assert_int_equal(px_guard_hold(r), 0);
	assert_int_equal(px_guard_hold(r), 0);
	px_guard_release(r);
	assert_int_equal(px_guard_hold(r), -PX_ECLOSED);
	px_guard_poll(g);
	assert_int_equal(fk.ncancel, 1); /* cancel first */
	assert_int_equal(fk.cancels[0], 9);
	assert_int_equal(fk.nclosed, 0);
	px_guard_unhold(r);
	assert_int_equal(fk.nclosed, 0); /* one operation still runs */
	px_guard_unhold(r);
	assert_int_equal(fk.nclosed, 1); /* close after the last */
	px_guard_destroy(g);
}

static void
test_guard_cleanups_run_in_release_order(void **state)
{
	struct px_guard *g = make_guard();
	struct px_guard_res *r[5];

	for (int i = 0; i < 5; i++)
		assert_int_equal(px_guard_add_fd(g, 10 + i, &r[i]), 0);
	px_guard_release(r[3]);
	px_guard_release(r[0]);
	px_guard_release(r[4]);
	px_guard_release(r[1]);
	px_guard_release(r[2]);
	px_guard_poll(g);
	assert_int_equal(fk.nclosed, 5);
	assert_int_equal(fk.closed[0], 13);
	assert_int_equal(fk.closed[1], 10);
	assert_int_equal(fk.closed[2], 14);
	assert_int_equal(fk.closed[3], 11);
	assert_int_equal(fk.closed[4], 12);
	px_guard_destroy(g);
}

static int user_calls;

static int
user_cleanup(struct px_guard_res *res, void *ctx)
{
	user_calls++;
	*(int *)ctx = 1;
	return 0;
}

static struct px_guard_res *later_res;

static int
user_cleanup_later(struct px_guard_res *res, void *ctx)
{
	later_res = res;
	return PX_GUARD_PENDING;
}

static void
test_guard_region_and_user_cleanups(void **state)
{
	struct px_guard *g = make_guard();
	struct px_region_opts o;
	struct px_region *region;
	struct px_guard_res *a, *b, *c;
	struct px_guard_stats st;
	int flag = 0;

	px_region_opts_init(&o);
	o.backing = PX_REGION_4K;
	assert_int_equal(px_region_create(&region, 4096, &o), 0);
	assert_int_equal(px_guard_add_region(g, region, &a), 0);
	assert_int_equal(
	    px_guard_add(g, PX_GUARD_USER, user_cleanup, &flag, &b), 0);
	assert_int_equal(
	    px_guard_add(g, PX_GUARD_POOL_OBJ, user_cleanup_later, NULL, &c),
	    0);
	assert_int_equal(px_guard_add(g, PX_GUARD_FD, user_cleanup, NULL, &c),
			 -EINVAL);
	assert_int_equal(
	    px_guard_add(g, PX_GUARD_POOL_OBJ, user_cleanup_later, NULL, &c),
	    0);
	/* A user cleanup runs from the loop, never inside release. */
	px_guard_release(b);
	assert_int_equal(flag, 0);
	px_guard_release(a);
	px_guard_release(c);
	px_guard_poll(g);
	assert_int_equal(flag, 1);
	assert_non_null(later_res);
	px_guard_stats_get(g, &st);
	assert_int_equal(st.pending, 1); /* the asynchronous one */
	px_guard_cleanup_done(later_res, 0);
	px_guard_stats_get(g, &st);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.live, 1); /* the first POOL_OBJ, never released */
	later_res = NULL;
	px_guard_destroy(g); /* shutdown releases it; it stays pending */
	assert_non_null(later_res);
	px_guard_cleanup_done(later_res, 0); /* frees the guard */
}

struct reports {
	int n;
	struct px_guard_report r[8];
};

static void
collect(const struct px_guard_report *rep, void *arg)
{
	struct reports *rs = arg;

	if (rs->n < 8)
		rs->r[rs->n] = *rep;
	rs->n++;
}

static void
test_guard_shutdown_reports_leaks_and_unfinished(void **state)
{
	struct px_guard *g = make_guard();
	struct px_guard_res *leaked, *busy, *done, *late;
	struct reports rs = {0};
	int line;

	line = __LINE__ + 1;
	assert_int_equal(px_guard_add_fd(g, 21, &leaked), 0);
	assert_int_equal(px_guard_add_fd(g, 22, &busy), 0);
	assert_int_equal(px_guard_add_fd(g, 23, &done), 0);
	assert_int_equal(px_guard_hold(busy), 0); /* never completes */
	px_guard_release(busy);
	px_guard_release(done);
	fk.now += 5000000000ull;
	assert_int_equal(px_guard_shutdown(g, 1000000, collect, &rs),
			 -ETIMEDOUT);
	/* The gate is closed. */
	assert_int_equal(px_guard_add_fd(g, 24, &late), -PX_ECLOSED);
	assert_int_equal(rs.n, 2);
	assert_int_equal(rs.r[0].problem, PX_GUARD_NEVER_RELEASED);
	assert_int_equal(rs.r[0].type, PX_GUARD_FD);
	assert_int_equal(rs.r[0].fd, 21);
	assert_int_equal(rs.r[0].line, line);
	assert_string_equal(rs.r[0].file, __FILE__);
	assert_true(rs.r[0].age_ns >= 5000000000ull);
	assert_int_equal(rs.r[1].problem, PX_GUARD_UNFINISHED);
	assert_int_equal(rs.r[1].fd, 22);
	assert_int_equal(rs.r[1].holds, 1);
	assert_int_equal(fk.nclosed, 2); /* 23 and the leaked 21 */
	px_guard_unhold(busy);           /* completes late: still cleaned */
	assert_int_equal(fk.nclosed, 3);
	assert_int_equal(px_guard_shutdown(g, 0, collect, &rs), 0);
	px_guard_destroy(g);
}

static void
test_guard_failed_cleanup_is_reported(void **state)
{
	struct px_guard *g = make_guard();
	struct px_guard_res *r;
	struct reports rs = {0};
	struct px_guard_stats st;

	px_guard_set_report(g, collect, &rs);
	fk.close_err = -EIO;
	assert_int_equal(px_guard_add_fd(g, 5, &r), 0);
	px_guard_release(r);
	px_guard_poll(g);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].problem, PX_GUARD_CLEANUP_FAILED);
	assert_int_equal(rs.r[0].err, -EIO);
	px_guard_stats_get(g, &st);
	assert_int_equal(st.failed, 1);
	px_guard_destroy(g);
}

static void
test_guard_100k_resources_in_bursts(void **state)
{
	struct px_guard *g = make_guard();
	struct px_guard_res **r = calloc(1000, sizeof(*r));
	struct px_guard_stats st;

	fk.async_close = true;
	for (int burst = 0; burst < 100; burst++) {
		for (int i = 0; i < 1000; i++)
			assert_int_equal(px_guard_add_fd(g, i, &r[i]), 0);
		for (int i = 0; i < 1000; i++) {
			if (i % 3 == 0)
				px_guard_hold(r[i]);
			px_guard_release(r[i]);
		}
		px_guard_poll(g);
		for (int i = 0; i < 1000; i += 3)
			px_guard_unhold(r[i]);
		for (int i = 0; i < fk.npending; i++)
			px_guard_cleanup_done(fk.pending[i], 0);
		fk.npending = 0;
		fk.nclosed = 0;
	}
	px_guard_stats_get(g, &st);
	assert_int_equal(st.registered, 100000);
	assert_int_equal(st.cleaned, 100000);
	assert_int_equal(st.cancels, 100 * 334);
	assert_int_equal(st.live, 0);
	free(r);
	px_guard_destroy(g);
}

/* A full ring refuses a cancel or a close: retried, never dropped. */
static void
test_guard_full_ring_retries(void **state)
{
	struct px_guard *g = make_guard();
	struct px_guard_res *a, *b;
	struct px_guard_stats st;

	assert_int_equal(px_guard_add_fd(g, 3, &a), 0);
	assert_int_equal(px_guard_add_fd(g, 4, &b), 0);
	assert_int_equal(px_guard_hold(a), 0);
	px_guard_release(a);
	px_guard_release(b);
	fk.busy = 2; /* a's cancel and b's close */
	fk.kicks = 0;
	px_guard_poll(g);
	assert_int_equal(fk.ncancel, 0);
	assert_int_equal(fk.nclosed, 0);
	assert_true(fk.kicks > 0); /* another poll was asked for */
	px_guard_poll(g);
	assert_int_equal(fk.ncancel, 1);
	assert_int_equal(fk.nclosed, 1);
	assert_int_equal(fk.closed[0], 4);
	px_guard_unhold(a);
	assert_int_equal(fk.nclosed, 2);
	px_guard_stats_get(g, &st);
	assert_int_equal(st.failed, 0);
	assert_int_equal(st.live, 0);
	px_guard_destroy(g);
}

/*
 * Cleanups that call back into the guard: release themselves again,
 * release another live resource, register a new one, end a held
 * operation of a resource queued in the same poll.  Each must take
 * effect exactly once, in a later poll where it queues work.
 */
static struct {
	struct px_guard *g;
	struct px_guard_res *other, *held, *fresh;
	int runs, fresh_runs, add_ret;
} re;

static int
fresh_cleanup(struct px_guard_res *res, void *ctx)
{
	re.fresh_runs++;
	return 0;
}

static int
reentrant_cleanup(struct px_guard_res *res, void *ctx)
{
	re.runs++;
	px_guard_release(res); /* itself, while cleaning: ignored */
	px_guard_release(re.other);
	px_guard_unhold(re.held);
	re.add_ret =
	    px_guard_add(re.g, PX_GUARD_USER, fresh_cleanup, NULL, &re.fresh);
	if (re.add_ret == 0)
		px_guard_release(re.fresh);
	return 0;
}

static void
test_guard_cleanup_reenters_the_guard(void **state)
{
	struct px_guard_res *first;
	struct px_guard_stats st;

	memset(&re, 0, sizeof(re));
	re.g = make_guard();
	assert_int_equal(
	    px_guard_add(re.g, PX_GUARD_USER, reentrant_cleanup, NULL, &first),
	    0);
	assert_int_equal(px_guard_add_fd(re.g, 40, &re.held), 0);
	assert_int_equal(px_guard_add_fd(re.g, 41, &re.other), 0);
	assert_int_equal(px_guard_hold(re.held), 0);
	px_guard_release(first);
	px_guard_release(re.held); /* same poll; waits for its operation */
	px_guard_release(first);   /* twice: ignored */
	assert_int_equal(px_guard_poll(re.g), 2);
	assert_int_equal(re.runs, 1);
	assert_int_equal(re.add_ret, 0);
	/* The unhold inside the cleanup let 40 close in this poll, with no
	 * cancel: its operation had ended by the time its turn came. */
	assert_int_equal(fk.nclosed, 1);
	assert_int_equal(fk.closed[0], 40);
	assert_int_equal(fk.ncancel, 0);
	/* What the cleanup released runs at the next poll, once. */
	assert_int_equal(px_guard_poll(re.g), 2);
	assert_int_equal(px_guard_poll(re.g), 0);
	assert_int_equal(re.runs, 1);
	assert_int_equal(re.fresh_runs, 1);
	assert_int_equal(fk.nclosed, 2);
	assert_int_equal(fk.closed[1], 41);
	px_guard_stats_get(re.g, &st);
	assert_int_equal(st.registered, 4);
	assert_int_equal(st.released, 4);
	assert_int_equal(st.cleaned, 4);
	assert_int_equal(st.live, 0);
	assert_int_equal(st.pending, 0);
	px_guard_destroy(re.g);
}

/*
 * Shutdown with a zero deadline and one cleanup that finishes later:
 * reported once as unfinished; a second shutdown after it finished
 * reports nothing and returns 0; registration stays refused.
 */
static void
test_guard_shutdown_twice_with_zero_deadline(void **state)
{
	struct px_guard *g = make_guard();
	struct px_guard_res *r, *late;
	struct reports rs = {0};
	struct px_guard_stats st;

	fk.async_close = true;
	assert_int_equal(px_guard_add_fd(g, 50, &r), 0);
	assert_int_equal(px_guard_shutdown(g, 0, collect, &rs), -ETIMEDOUT);
	assert_int_equal(rs.n, 2);
	assert_int_equal(rs.r[0].problem, PX_GUARD_NEVER_RELEASED);
	assert_int_equal(rs.r[1].problem, PX_GUARD_UNFINISHED);
	assert_int_equal(rs.r[1].fd, 50);
	assert_int_equal(fk.npending, 1);
	assert_int_equal(px_guard_add_fd(g, 51, &late), -PX_ECLOSED);
	px_guard_cleanup_done(fk.pending[0], 0);
	assert_int_equal(px_guard_shutdown(g, 0, collect, &rs), 0);
	assert_int_equal(rs.n, 2);
	px_guard_stats_get(g, &st);
	assert_int_equal(st.cleaned, 1);
	assert_int_equal(st.live, 0);
	px_guard_destroy(g);
}

static void
test_guard_rejects_bad_arguments(void **state)
{
	struct px_guard *g = make_guard();
	struct px_guard_res *r;

	assert_int_equal(px_guard_add_fd(g, -1, &r), -EBADF);
	assert_int_equal(px_guard_add_region(g, NULL, &r), -EINVAL);
	assert_int_equal(px_guard_create(NULL, &g), -EINVAL);
	assert_string_equal(px_guard_type_name(PX_GUARD_REGION), "region");
	assert_non_null(strstr(px_strerror_in(PX_PART_GUARD, -PX_ECLOSED),
			       "shutting down"));
	px_guard_destroy(g);
	px_guard_destroy(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_guard_release_only_queues),
	    cmocka_unit_test(test_guard_fd_waits_for_every_operation),
	    cmocka_unit_test(test_guard_cleanups_run_in_release_order),
	    cmocka_unit_test(test_guard_region_and_user_cleanups),
	    cmocka_unit_test(test_guard_shutdown_reports_leaks_and_unfinished),
	    cmocka_unit_test(test_guard_failed_cleanup_is_reported),
	    cmocka_unit_test(test_guard_100k_resources_in_bursts),
	    cmocka_unit_test(test_guard_full_ring_retries),
	    cmocka_unit_test(test_guard_cleanup_reenters_the_guard),
	    cmocka_unit_test(test_guard_shutdown_twice_with_zero_deadline),
	    cmocka_unit_test(test_guard_rejects_bad_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
