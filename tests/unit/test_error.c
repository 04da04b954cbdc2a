// SPDX-License-Identifier: MIT
/* Unit tests of px_strerror() and px_strerror_in(). */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include <patinox/error.h>

static void
test_error_kernel_codes_read_as_strerror(void **state)
{
	assert_string_equal(px_strerror(-ENOMEM), "Cannot allocate memory");
	assert_string_equal(px_strerror(ENOMEM), px_strerror(-ENOMEM));
	assert_string_equal(px_strerror(0), "success");
}

static void
test_error_own_codes_have_text(void **state)
{
	for (int e = PX_EBASE; e < PX_EMAX; e++) {
		const char *s = px_strerror(-e);

		assert_non_null(s);
		assert_true(strlen(s) > 5);
		assert_null(strstr(s, "unknown"));
	}
	assert_string_equal(px_strerror(-PX_ECLOSED),
			    "object closed or shut down");
}

static void
test_error_unknown_codes_are_safe(void **state)
{
	assert_non_null(px_strerror(-PX_EMAX));
	assert_non_null(px_strerror(-1000000));
	assert_non_null(px_strerror(-3000));
}

/* INT_MIN has no negation: it must not overflow (UBSan aborts on it). */
static void
test_error_int_min_is_unknown(void **state)
{
	assert_string_equal(px_strerror(INT_MIN), px_strerror(INT_MAX));
	assert_string_equal(px_strerror_in(PX_PART_RING, INT_MIN),
			    px_strerror(INT_MAX));
	assert_string_equal(px_strerror_in((enum px_part)99, -EPERM),
			    px_strerror(-EPERM));
}

static void
test_error_context_explains_blocked_uring(void **state)
{
	const char *s = px_strerror_in(PX_PART_RING, -EPERM);

	assert_non_null(strstr(s, "seccomp"));
	assert_non_null(strstr(s, "io_uring_disabled"));
	/* Without context, EPERM is the plain kernel text. */
	assert_string_equal(px_strerror_in(PX_PART_ANY, -EPERM),
			    px_strerror(-EPERM));
	/* A context with nothing special falls back to the plain text. */
	assert_string_equal(px_strerror_in(PX_PART_RING, -EBADF),
			    px_strerror(-EBADF));
}

static void
test_error_snapshot_full_disk_and_retention_differ(void **state)
{
	const char *disk = px_strerror_in(PX_PART_SNAPSHOT, -ENOSPC);
	const char *retain = px_strerror_in(PX_PART_SNAPSHOT, -PX_ERETAIN);

	assert_non_null(strstr(disk, "ENOSPC"));
	assert_null(strstr(disk, "retention"));
	assert_non_null(strstr(retain, "retention limit"));
	assert_null(strstr(retain, "ENOSPC"));
	assert_non_null(strstr(px_strerror(-PX_ERETAIN), "retention"));
}

static void
test_error_version_string(void **state)
{
	assert_string_equal(px_version(), PX_VERSION_STRING);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_error_kernel_codes_read_as_strerror),
	    cmocka_unit_test(test_error_own_codes_have_text),
	    cmocka_unit_test(test_error_unknown_codes_are_safe),
	    cmocka_unit_test(test_error_int_min_is_unknown),
	    cmocka_unit_test(test_error_context_explains_blocked_uring),
	    cmocka_unit_test(
		test_error_snapshot_full_disk_and_retention_differ),
	    cmocka_unit_test(test_error_version_string),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
