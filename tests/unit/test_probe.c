// SPDX-License-Identifier: MIT
/* Unit tests of the capability probe's formatting and caching. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include <patinox/probe.h>

static void
test_probe_rejects_null(void **state)
{
	assert_int_equal(px_probe_features(NULL), -EINVAL);
	assert_int_equal(px_probe_format(NULL, NULL, 0), -EINVAL);
}

static void
test_probe_format_reports_length_when_truncated(void **state)
{
	struct px_features f;
	char small[16], big[4096];
	int need;

	memset(&f, 0, sizeof(f));
	f.uring_error = -EPERM;
	f.numa_nodes = 1;
	need = px_probe_format(&f, small, sizeof(small));
	assert_true(need > (int)sizeof(small));
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(px_probe_format(&f, big, sizeof(big)), need);
	assert_non_null(strstr(big, "io_uring: unavailable"));
	assert_non_null(strstr(big, "Operation not permitted"));
}

static void
test_probe_format_lists_hugepage_sizes(void **state)
{
	struct px_features f;
	char buf[4096];

	memset(&f, 0, sizeof(f));
	f.nr_huge_sizes = 1;
	f.huge[0].page_size = 2 << 20;
	f.huge[0].total = 64;
	f.huge[0].free = 60;
	f.thp = PX_THP_MADVISE;
	px_probe_format(&f, buf, sizeof(buf));
	assert_non_null(strstr(buf, "hugepages_2048kB: 64 reserved, 60 free"));
	assert_non_null(strstr(buf, "thp: madvise"));
}

static void
test_probe_cached_is_stable(void **state)
{
	const struct px_features *a = px_probe_cached();
	const struct px_features *b = px_probe_cached();

	assert_ptr_equal(a, b);
	assert_true(a->page_size >= 4096);
	assert_true(a->numa_nodes >= 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_probe_rejects_null),
	    cmocka_unit_test(test_probe_format_reports_length_when_truncated),
	    cmocka_unit_test(test_probe_format_lists_hugepage_sizes),
	    cmocka_unit_test(test_probe_cached_is_stable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
