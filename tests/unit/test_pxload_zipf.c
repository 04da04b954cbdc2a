// SPDX-License-Identifier: MIT
/*
 * Unit tests of pxload's PRNG and key chooser (bench/pxload/keygen.c,
 * compiled in here): the Zipf sampler must follow the exact normalised
 * law, uniform keys must be uniform, and a seed must fix the sequence.
 * Seeds are fixed, so the statistical bounds below are deterministic.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "../../bench/pxload/keygen.c"

#define DRAWS 1000000

/* Draws DRAWS ranks of keygen(n, s) and counts them in a new array. */
static uint64_t *
histogram(uint64_t n, double s, uint64_t seed)
{
	uint64_t *cnt = calloc(n, sizeof(*cnt));
	struct keygen kg;
	struct rng r;
	uint64_t k;
	int i;

	assert_non_null(cnt);
	assert_int_equal(keygen_init(&kg, n, s), 0);
	rng_seed(&r, seed);
	for (i = 0; i < DRAWS; i++) {
		k = keygen_next(&kg, &r);
		assert_true(k < n);
		cnt[k]++;
	}
	return cnt;
}

/*
 * Pearson's chi-square of the counts against keygen_probability(); the
 * bins with fewer than 20 expected draws are pooled into one.
 */
static double
chi_square(const uint64_t *cnt, uint64_t n, double s, int *dof)
{
	double chi = 0.0, tail_e = 0.0, tail_o = 0.0, e, p, norm = 0.0;
	struct keygen kg;
	uint64_t k;

	keygen_init(&kg, n, s);
	*dof = 0;
	for (k = 1; s > 0 && k <= n; k++)
		norm += pow((double)k, -s);
	for (k = 0; k < n; k++) {
		p = s > 0 ? pow((double)(k + 1), -s) / norm : 1.0 / (double)n;
		e = p * DRAWS;
		if (e < 20.0) {
			tail_e += e;
			tail_o += (double)cnt[k];
			continue;
		}
		chi += ((double)cnt[k] - e) * ((double)cnt[k] - e) / e;
		(*dof)++;
	}
	if (tail_e > 0.0)
		chi += (tail_o - tail_e) * (tail_o - tail_e) / tail_e;
	return chi;
}

/* The 99.9 % point of chi-square is below dof + 4.4 sqrt(2 dof) + 10. */
static void
assert_fits(uint64_t n, double s, uint64_t seed)
{
	uint64_t *cnt = histogram(n, s, seed);
	int dof;
	double chi = chi_square(cnt, n, s, &dof);

	print_message("# n %lu s %.2f chi2 %.1f dof %d\n", (unsigned long)n, s,
		      chi, dof);
	assert_true(chi < dof + 4.4 * sqrt(2.0 * dof) + 10.0);
	free(cnt);
}

static void
test_pxload_zipf_follows_the_law_at_0_99(void **state)
{
	assert_fits(1000, 0.99, 42);
}

static void
test_pxload_zipf_follows_the_law_at_1(void **state)
{
	assert_fits(1000, 1.0, 43);
}

static void
test_pxload_zipf_follows_the_law_at_0_5_and_1_5(void **state)
{
	assert_fits(200, 0.5, 44);
	assert_fits(200, 1.5, 45);
}

static void
test_pxload_zipf_uniform_is_uniform(void **state)
{
	assert_fits(500, 0.0, 46);
}

static void
test_pxload_zipf_rank_0_is_the_most_popular(void **state)
{
	uint64_t *cnt = histogram(100000, 0.99, 7);
	struct keygen kg;
	double p0;

	keygen_init(&kg, 100000, 0.99);
	p0 = keygen_probability(&kg, 0);
	assert_true(cnt[0] > cnt[1] && cnt[1] > cnt[2] && cnt[2] > cnt[10]);
	assert_true(fabs((double)cnt[0] / DRAWS - p0) < 0.01 * p0 + 0.001);
	free(cnt);
}

static void
test_pxload_zipf_seed_fixes_the_sequence(void **state)
{
	struct keygen kg;
	struct rng a, b, c;
	int i, same = 0;

	assert_int_equal(keygen_init(&kg, 1000000, 0.99), 0);
	rng_seed(&a, 5);
	rng_seed(&b, 5);
	rng_seed(&c, 6);
	for (i = 0; i < 1000; i++) {
		uint64_t x = keygen_next(&kg, &a);

		assert_int_equal(x, keygen_next(&kg, &b));
		same += x == keygen_next(&kg, &c);
	}
	assert_true(same < 500);
}

static void
test_pxload_zipf_bad_arguments_are_refused(void **state)
{
	struct keygen kg;
	struct rng r;
	int i;

	assert_int_equal(keygen_init(&kg, 0, 1.0), -EINVAL);
	assert_int_equal(keygen_init(&kg, 10, -1.0), -EINVAL);
	assert_int_equal(keygen_init(&kg, 10, NAN), -EINVAL);
	assert_int_equal(keygen_init(&kg, 1, 0.99), 0);
	rng_seed(&r, 1);
	for (i = 0; i < 100; i++)
		assert_int_equal(keygen_next(&kg, &r), 0);
}

static void
test_pxload_zipf_huge_key_counts_stay_in_range(void **state)
{
	struct keygen kg;
	struct rng r;
	uint64_t n = UINT64_C(1) << 40;
	int i;

	assert_int_equal(keygen_init(&kg, n, 0.99), 0);
	rng_seed(&r, 9);
	for (i = 0; i < 100000; i++)
		assert_true(keygen_next(&kg, &r) < n);
	for (i = 0; i < 100000; i++)
		assert_true(rng_double(&r) < 1.0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pxload_zipf_follows_the_law_at_0_99),
	    cmocka_unit_test(test_pxload_zipf_follows_the_law_at_1),
	    cmocka_unit_test(test_pxload_zipf_follows_the_law_at_0_5_and_1_5),
	    cmocka_unit_test(test_pxload_zipf_uniform_is_uniform),
	    cmocka_unit_test(test_pxload_zipf_rank_0_is_the_most_popular),
	    cmocka_unit_test(test_pxload_zipf_seed_fixes_the_sequence),
	    cmocka_unit_test(test_pxload_zipf_bad_arguments_are_refused),
	    cmocka_unit_test(test_pxload_zipf_huge_key_counts_stay_in_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
