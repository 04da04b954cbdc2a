// SPDX-License-Identifier: MIT
/*
 * Unit tests of pxload's latency histogram (bench/pxload/hist.c, compiled
 * in here): bucket bounds, precision, quantiles, merge.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "../../bench/pxload/hist.c"

static struct hist *
hist_new(void)
{
	struct hist *h = malloc(sizeof(*h));

	assert_non_null(h);
	hist_init(h);
	return h;
}

static void
check_value(uint64_t v)
{
	size_t i = hist_index(v);

	assert_true(i < HIST_BUCKETS);
	assert_true(hist_bucket_low(i) <= v);
	assert_true(hist_bucket_high(i) >= v);
	/* Relative precision: the bucket is narrower than 1/128 of it. */
	if (v >= 2 * HIST_SUB_COUNT)
		assert_true(hist_bucket_high(i) - hist_bucket_low(i) <
			    hist_bucket_low(i) / HIST_SUB_COUNT);
	else
		assert_int_equal(hist_bucket_low(i), hist_bucket_high(i));
}

static void
test_pxload_hist_buckets_hold_their_values(void **state)
{
	uint64_t v;
	int k;

	for (v = 0; v < 100000; v++)
		check_value(v);
	for (k = 1; k < 64; k++) {
		check_value((UINT64_C(1) << k) - 1);
		check_value(UINT64_C(1) << k);
		check_value((UINT64_C(1) << k) + 1);
	}
	check_value(UINT64_MAX);
	assert_int_equal(hist_index(UINT64_MAX), HIST_BUCKETS - 1);
}

static void
test_pxload_hist_index_is_monotonic_and_contiguous(void **state)
{
	size_t i;

	for (i = 1; i < HIST_BUCKETS; i++) {
		assert_int_equal(hist_bucket_low(i),
				 hist_bucket_high(i - 1) + 1);
		assert_int_equal(hist_index(hist_bucket_low(i)), i);
		assert_int_equal(hist_index(hist_bucket_high(i)), i);
	}
}

static void
test_pxload_hist_quantiles_of_uniform_values(void **state)
{
	struct hist *h = hist_new();
	uint64_t v, p50, p99, p999;

	for (v = 1; v <= 100000; v++)
		hist_record(h, v * 1000);
	p50 = hist_quantile(h, 0.5);
	p99 = hist_quantile(h, 0.99);
	p999 = hist_quantile(h, 0.999);
	/* Never below the true quantile, above it by less than 1/128. */
	assert_true(p50 >= 50000000 && p50 < 50000000 + 50000000 / 128);
	assert_true(p99 >= 99000000 && p99 < 99000000 + 99000000 / 128);
	assert_true(p999 >= 99900000 && p999 < 99900000 + 99900000 / 128);
	assert_int_equal(hist_quantile(h, 1.0), 100000000);
	assert_int_equal(h->min, 1000);
	assert_int_equal(h->max, 100000000);
	assert_true(hist_mean(h) > 50000499.0 && hist_mean(h) < 50000501.0);
	free(h);
}

static void
test_pxload_hist_quantile_rank_is_exact(void **state)
{
	struct hist *h = hist_new();
	int i;

	for (i = 0; i < 990; i++)
		hist_record(h, 100);
	for (i = 0; i < 10; i++)
		hist_record(h, 1000000);
	assert_int_equal(hist_quantile(h, 0.5), 100);
	assert_int_equal(hist_quantile(h, 0.99), 100);
	assert_true(hist_quantile(h, 0.991) >= 1000000);
	assert_int_equal(hist_quantile(h, 0.999), 1000000);
	free(h);
}

static void
test_pxload_hist_merge_equals_one_histogram(void **state)
{
	struct hist *a = hist_new(), *b = hist_new(), *all = hist_new();
	uint64_t v;

	for (v = 0; v < 50000; v++) {
		hist_record((v & 1) ? a : b, v * 37 + 5);
		hist_record(all, v * 37 + 5);
	}
	hist_merge(a, b);
	assert_int_equal(a->count, all->count);
	assert_int_equal(a->min, all->min);
	assert_int_equal(a->max, all->max);
	assert_memory_equal(a->buckets, all->buckets, sizeof(a->buckets));
	assert_int_equal(hist_quantile(a, 0.99), hist_quantile(all, 0.99));
	free(a);
	free(b);
	free(all);
}

static void
test_pxload_hist_empty_reports_zero(void **state)
{
	struct hist *h = hist_new();

	assert_int_equal(hist_quantile(h, 0.5), 0);
	assert_true(hist_mean(h) == 0.0);
	hist_record(h, 7);
	assert_int_equal(hist_quantile(h, 0.0), 7);
	free(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pxload_hist_buckets_hold_their_values),
	    cmocka_unit_test(
		test_pxload_hist_index_is_monotonic_and_contiguous),
	    cmocka_unit_test(test_pxload_hist_quantiles_of_uniform_values),
	    cmocka_unit_test(test_pxload_hist_quantile_rank_is_exact),
	    cmocka_unit_test(test_pxload_hist_merge_equals_one_histogram),
	    cmocka_unit_test(test_pxload_hist_empty_reports_zero),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
