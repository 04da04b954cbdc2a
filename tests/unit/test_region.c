// SPDX-License-Identifier: MIT
/* Unit tests of px_region: creation, carving, release, arguments. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <patinox/region.h>

static void
test_region_4k_rounds_up_and_is_usable(void **state)
{
	struct px_region_opts o;
	struct px_region *r;

	px_region_opts_init(&o);
	o.backing = PX_REGION_4K;
	assert_int_equal(px_region_create(&r, 10000, &o), 0);
	assert_int_equal(px_region_size(r), 12288);
	assert_int_equal(px_region_backing(r), PX_REGION_4K);
	memset(px_region_base(r), 0xab, px_region_size(r));
	px_region_destroy(r);
}

static void
test_region_best_always_gets_memory(void **state)
{
	struct px_region *r;

	assert_int_equal(px_region_create(&r, 3 << 20, NULL), 0);
	assert_true(px_region_size(r) >= (3u << 20));
	assert_int_equal(px_region_size(r) % px_region_page_size(r), 0);
	assert_int_not_equal(px_region_backing(r), PX_REGION_BEST);
	px_region_destroy(r);
}

static void
test_region_carve_is_aligned_and_bounded(void **state)
{
	struct px_region_opts o;
	struct px_region *r;
	void *a, *b, *c;

	px_region_opts_init(&o);
	o.backing = PX_REGION_4K;
	assert_int_equal(px_region_create(&r, 16384, &o), 0);
	assert_int_equal(px_region_carve(r, 100, 64, &a), 0);
	assert_int_equal(px_region_carve(r, 100, 4096, &b), 0);
	assert_int_equal((uintptr_t)b % 4096, 0);
	assert_true((char *)b >= (char *)a + 100);
	assert_int_equal(px_region_carve(r, 16384, 0, &c), -ENOMEM);
	assert_int_equal(px_region_carve(r, 8, 3, &c), -EINVAL);
	px_region_destroy(r);
}

static void
test_region_release_zeroes_pages(void **state)
{
	struct px_region_opts o;
	struct px_region *r;
	unsigned char *p;

	px_region_opts_init(&o);
	o.backing = PX_REGION_4K;
	assert_int_equal(px_region_create(&r, 8192, &o), 0);
	p = px_region_base(r);
	memset(p, 1, 8192);
	assert_int_equal(px_region_release(r, p, 4096), 0);
	assert_int_equal(p[0], 0);
	assert_int_equal(p[4096], 1);
	assert_int_equal(px_region_release(r, p + 1, 4096), -EINVAL);
	px_region_destroy(r);
}

static void
test_region_rejects_bad_arguments(void **state)
{
	struct px_region *r;

	assert_int_equal(px_region_create(&r, 0, NULL), -EINVAL);
	assert_int_equal(px_region_create(NULL, 4096, NULL), -EINVAL);
	px_region_destroy(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_region_4k_rounds_up_and_is_usable),
	    cmocka_unit_test(test_region_best_always_gets_memory),
	    cmocka_unit_test(test_region_carve_is_aligned_and_bounded),
	    cmocka_unit_test(test_region_release_zeroes_pages),
	    cmocka_unit_test(test_region_rejects_bad_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
