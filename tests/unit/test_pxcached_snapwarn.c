// SPDX-License-Identifier: MIT
/*
 * Unit tests of the rate limit on failing periodic snapshot warnings
 * (apps/pxcached/snapwarn.h), with a fake clock: the first failure and
 * each change of error are logged, identical failures only as a summary
 * once per interval, and the first good save after them once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../apps/pxcached/snapwarn.h"

#define EVERY 60

static void
test_pxcached_snapwarn_first_failure_then_quiet(void **state)
{
	struct pxc_snapwarn w = {0};
	uint64_t t;

	(void)state;
	assert_int_equal(pxc_snapwarn_note(&w, -28, 100, EVERY),
			 PXC_SNAPWARN_FAILED);
	for (t = 101; t < 100 + EVERY; t++)
		assert_int_equal(pxc_snapwarn_note(&w, -28, t, EVERY),
				 PXC_SNAPWARN_QUIET);
	assert_int_equal(w.failed, EVERY);
	assert_int_equal(w.since, 100);
}

static void
test_pxcached_snapwarn_summary_once_per_interval(void **state)
{
	struct pxc_snapwarn w = {0};
	unsigned lines = 0;
	uint64_t t;

	(void)state;
	pxc_snapwarn_note(&w, -28, 0, EVERY);
	/* One save a second for ten intervals: ten summaries. */
	for (t = 1; t <= 10 * EVERY; t++)
		lines +=
		    pxc_snapwarn_note(&w, -28, t, EVERY) == PXC_SNAPWARN_STILL;
	assert_int_equal(lines, 10);
	assert_int_equal(w.failed, 10 * EVERY + 1);
	assert_int_equal(w.since, 0);
}

static void
test_pxcached_snapwarn_changed_error_is_logged(void **state)
{
	struct pxc_snapwarn w = {0};

	(void)state;
	pxc_snapwarn_note(&w, -21, 0, EVERY);
	pxc_snapwarn_note(&w, -21, 1, EVERY);
	assert_int_equal(pxc_snapwarn_note(&w, -2, 2, EVERY),
			 PXC_SNAPWARN_FAILED);
	assert_int_equal(pxc_snapwarn_note(&w, -2, 3, EVERY),
			 PXC_SNAPWARN_QUIET);
	/* The run goes on: counted from its first failure. */
	assert_int_equal(w.failed, 4);
	assert_int_equal(w.since, 0);
}

static void
test_pxcached_snapwarn_recovery_once(void **state)
{
	struct pxc_snapwarn w = {0};

	(void)state;
	assert_int_equal(pxc_snapwarn_note(&w, 0, 0, EVERY),
			 PXC_SNAPWARN_QUIET);
	pxc_snapwarn_note(&w, -28, 1, EVERY);
	pxc_snapwarn_note(&w, -28, 2, EVERY);
	assert_int_equal(pxc_snapwarn_note(&w, 0, 3, EVERY),
			 PXC_SNAPWARN_RECOVERED);
	assert_int_equal(w.failed, 2);
	pxc_snapwarn_reset(&w);
	assert_int_equal(pxc_snapwarn_note(&w, 0, 4, EVERY),
			 PXC_SNAPWARN_QUIET);
	/* The same error after a recovery starts a new run, logged. */
	assert_int_equal(pxc_snapwarn_note(&w, -28, 5, EVERY),
			 PXC_SNAPWARN_FAILED);
	assert_int_equal(w.failed, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pxcached_snapwarn_first_failure_then_quiet),
	    cmocka_unit_test(test_pxcached_snapwarn_summary_once_per_interval),
	    cmocka_unit_test(test_pxcached_snapwarn_changed_error_is_logged),
	    cmocka_unit_test(test_pxcached_snapwarn_recovery_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
