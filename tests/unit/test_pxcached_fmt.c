// SPDX-License-Identifier: MIT
/*
 * Unit tests of the hot-path number formatter (apps/common/fmt.h) that
 * writes the numbers of pxcached's VALUE lines and pxload's requests:
 * each value is checked against snprintf's "%" PRIu64, including the
 * edges of every digit count, and the bytes after the digits must stay
 * untouched.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "../../apps/common/fmt.h"

/* Formats @v both ways and compares; the guard bytes must survive. */
static void
check(uint64_t v)
{
	char want[32], got[FMT_U64_MAX + 4];
	size_t n;

	snprintf(want, sizeof(want), "%" PRIu64, v);
	memset(got, '#', sizeof(got));
	n = fmt_u64(got, v);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(got, want, n);
	assert_true(n <= FMT_U64_MAX);
	for (size_t i = n; i < sizeof(got); i++)
		assert_int_equal(got[i], '#');
}

static void
test_pxcached_fmt_small_numbers(void **state)
{
	(void)state;
	for (uint64_t v = 0; v < 100000; v++)
		check(v);
}

static void
test_pxcached_fmt_digit_count_edges(void **state)
{
	uint64_t p = 1;

	(void)state;
	for (int d = 1; d < 20; d++) {
		p *= 10;
		check(p - 1);
		check(p);
		check(p + 1);
	}
	check(UINT32_MAX);
	check((uint64_t)UINT32_MAX + 1);
	check(UINT64_MAX - 1);
	check(UINT64_MAX);
}

static void
test_pxcached_fmt_pseudo_random(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;

	(void)state;
	for (int i = 0; i < 100000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		check(x >> (i % 64));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pxcached_fmt_small_numbers),
	    cmocka_unit_test(test_pxcached_fmt_digit_count_edges),
	    cmocka_unit_test(test_pxcached_fmt_pseudo_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
