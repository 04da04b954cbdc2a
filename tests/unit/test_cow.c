// SPDX-License-Identifier: MIT
/*
 * Unit tests of px_cow on one thread: publish and read, make-mut in
 * place against a copy, reference counts, retirement and its bound,
 * destroy with retired versions pending, and the failure paths
 * (arena full, region and allocation failures through the hooks).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <patinox/cow.h>

struct settings {
	int verbosity;
	uint64_t mem_limit;
	char name[16];
};

struct frees {
	int count;
	int last_verbosity;
};

static void
count_free(void *arg, void *data)
{
	struct frees *f = arg;

	f->count++;
	f->last_verbosity = ((struct settings *)data)->verbosity;
}

static struct px_cow *
make_cell(struct frees *f, size_t max_retired)
{
	struct settings init = {.verbosity = 1, .mem_limit = 64 << 20};
	struct px_cow_opts o;
	struct px_cow *c;

	px_cow_opts_init(&o);
	o.backing = PX_REGION_4K;
	o.arena_size = 64 << 10;
	o.max_retired = max_retired;
	o.on_free = count_free;
	o.free_arg = f;
	assert_int_equal(px_cow_create(&c, sizeof(init), &init, &o), 0);
	return c;
}

static void
set_verbosity(struct px_cow *c, int v)
{
	struct settings *d;

	assert_int_equal(px_cow_draft(c, (void **)&d), 0);
	d->verbosity = v;
	assert_int_equal(px_cow_publish(c, d), 0);
}

static int
read_verbosity(struct px_cow *c)
{
	const struct settings *s = px_cow_read_lock(c);
	int v = s->verbosity;

	px_cow_read_unlock(c);
	return v;
}

static void
test_cow_create_copies_initial_version(void **state)
{
	struct frees f = {0};
	struct px_cow *c = make_cell(&f, 4);
	const struct settings *s;
	struct px_cow_stats st;

	s = px_cow_read_lock(c);
	assert_int_equal(s->verbosity, 1);
	assert_int_equal(s->mem_limit, 64 << 20);
	assert_int_equal((uintptr_t)s % 64, 0);
	px_cow_read_unlock(c);
	assert_int_equal(px_cow_size(c), sizeof(struct settings));
	px_cow_stats(c, &st);
	assert_int_equal(st.live, 1);
	assert_true(st.capacity >= 6);
	px_cow_destroy(c);
	assert_int_equal(f.count, 1);
}

static void
test_cow_create_null_init_is_zeroed(void **state)
{
	const struct settings *s;
	struct px_cow *c;

	assert_int_equal(px_cow_create(&c, sizeof(*s), NULL, NULL), 0);
	s = px_cow_read_lock(c);
	assert_int_equal(s->verbosity, 0);
	assert_int_equal(s->mem_limit, 0);
	px_cow_read_unlock(c);
	px_cow_destroy(c);
}

static void
test_cow_rejects_bad_arguments(void **state)
{
	struct px_cow_opts o;
	struct px_cow *c;

	assert_int_equal(px_cow_create(NULL, 8, NULL, NULL), -EINVAL);
	assert_int_equal(px_cow_create(&c, 0, NULL, NULL), -EINVAL);
	px_cow_opts_init(&o);
	o.arena_size = 4096;
	o.max_retired = 100; /* 100 + 2 blocks of 128 bytes do not fit */
	assert_int_equal(px_cow_create(&c, 8, NULL, &o), -EINVAL);
	px_cow_destroy(NULL);
}

static void
test_cow_draft_is_private_until_published(void **state)
{
	struct frees f = {0};
	struct px_cow *c = make_cell(&f, 4);
	struct settings *d;

	assert_int_equal(px_cow_draft(c, (void **)&d), 0);
	d->verbosity = 3;
	assert_int_equal(read_verbosity(c), 1);
	assert_int_equal(px_cow_publish(c, d), 0);
	assert_int_equal(read_verbosity(c), 3);
	assert_int_equal(px_cow_synchronize(c), 0);
	assert_int_equal(f.count, 1);
	assert_int_equal(f.last_verbosity, 1);
	px_cow_destroy(c);
	assert_int_equal(f.count, 2);
}

static void
test_cow_make_mut_in_place_when_unique(void **state)
{
	struct frees f = {0};
	struct px_cow *c = make_cell(&f, 4);
	struct px_cow_stats st;
	void *d, *before;

	assert_int_equal(px_cow_draft(c, &d), 0);
	before = d;
	assert_int_equal(px_cow_make_mut(c, &d), 0);
	assert_ptr_equal(d, before);
	px_cow_stats(c, &st);
	assert_int_equal(st.in_place, 1);
	assert_int_equal(st.clones, 1); /* the draft itself */
	px_cow_put(c, d);
	assert_int_equal(f.count, 1);
	px_cow_destroy(c);
}

static void
test_cow_make_mut_clones_when_shared(void **state)
{
	struct frees f = {0};
	struct px_cow *c = make_cell(&f, 4);
	const struct settings *cur;
	struct px_cow_stats st;
	void *ref;

	cur = px_cow_get(c);
	ref = (void *)cur;
	assert_int_equal(px_cow_make_mut(c, &ref), 0);
	assert_ptr_not_equal(ref, cur);
	((struct settings *)ref)->verbosity = 7;
	assert_int_equal(cur->verbosity, 1); /* the shared one is untouched */
	assert_int_equal(read_verbosity(c), 1);
	px_cow_stats(c, &st);
	assert_int_equal(st.clones, 1);
	assert_int_equal(st.in_place, 0);
	assert_int_equal(st.live, 2);
	assert_int_equal(px_cow_publish(c, ref), 0);
	assert_int_equal(read_verbosity(c), 7);
	px_cow_destroy(c);
	assert_int_equal(f.count, 2);
}

static void
test_cow_make_mut_in_place_after_retirement(void **state)
{
	struct frees f = {0};
	struct px_cow *c = make_cell(&f, 4);
	struct px_cow_stats st;
	const void *old;
	void *ref;

	old = px_cow_get(c);
	set_verbosity(c, 2);
	assert_int_equal(px_cow_synchronize(c), 0);
	/* Retired and past its grace period: only our reference is left. */
	assert_int_equal(f.count, 0);
	ref = (void *)old;
	assert_int_equal(px_cow_make_mut(c, &ref), 0);
	assert_ptr_equal(ref, old);
	px_cow_stats(c, &st);
	assert_int_equal(st.in_place, 1);
	px_cow_put(c, ref);
	assert_int_equal(f.count, 1);
	px_cow_destroy(c);
}

static void
test_cow_get_outlives_retirement(void **state)
{
	struct frees f = {0};
	struct px_cow *c = make_cell(&f, 4);
	const struct settings *held;

	held = px_cow_get(c);
	set_verbosity(c, 2);
	set_verbosity(c, 3);
	assert_int_equal(px_cow_synchronize(c), 0);
	assert_int_equal(f.count, 1); /* version 2 only */
	assert_int_equal(f.last_verbosity, 2);
	assert_int_equal(held->verbosity, 1);
	px_cow_put(c, held);
	assert_int_equal(f.count, 2);
	assert_int_equal(f.last_verbosity, 1);
	px_cow_destroy(c);
	assert_int_equal(f.count, 3);
}

static void
test_cow_publish_current_again_keeps_it(void **state)
{
	struct frees f = {0};
	struct px_cow *c = make_cell(&f, 4);
	struct px_cow_stats st;

	assert_int_equal(px_cow_publish(c, (void *)px_cow_get(c)), 0);
	assert_int_equal(read_verbosity(c), 1);
	px_cow_stats(c, &st);
	assert_int_equal(st.live, 1);
	assert_int_equal(st.retired, 0);
	px_cow_destroy(c);
	assert_int_equal(f.count, 1);
}

/*
 * A rollback: a version kept with px_cow_get() is published again while
 * it still waits for its grace period, then replaced again.  Every
 * version is freed exactly once and the retired gauge stays right.
 */
static void
test_cow_republish_of_a_retired_version_rolls_back(void **state)
{
	struct frees f = {0};
	struct px_cow *c = make_cell(&f, 4);
	const struct settings *prev;
	struct px_cow_stats st;

	px_cow_read_lock(c); /* no grace period ends in here */
	prev = px_cow_get(c);
	set_verbosity(c, 2); /* prev retired */
	assert_int_equal(px_cow_publish(c, (void *)prev), 0);
	assert_int_equal(read_verbosity(c), 1);
	px_cow_stats(c, &st);
	assert_int_equal(st.retired, 1); /* version 2 only */
	set_verbosity(c, 3);             /* prev retired again */
	px_cow_read_unlock(c);
	px_cow_stats(c, &st);
	assert_int_equal(st.retired, 2);
	assert_int_equal(px_cow_synchronize(c), 0);
	px_cow_stats(c, &st);
	assert_int_equal(st.retired, 0);
	assert_int_equal(st.live, 1);
	assert_int_equal(f.count, 2);
	assert_int_equal(read_verbosity(c), 3);
	for (int i = 4; i < 10; i++)
		set_verbosity(c, i);
	px_cow_destroy(c);
	assert_int_equal(f.count, 9);
}

static void
test_cow_destroy_frees_pending_retirements(void **state)
{
	struct frees f = {0};
	struct px_cow *c = make_cell(&f, 8);
	const void *r;

	/* A section open over the publishes keeps every version retired. */
	r = px_cow_read_lock(c);
	for (int i = 2; i < 7; i++)
		set_verbosity(c, i);
	assert_int_equal(((const struct settings *)r)->verbosity, 1);
	px_cow_read_unlock(c);
	assert_int_equal(f.count, 0);
	px_cow_destroy(c);
	assert_int_equal(f.count, 6);
}

static void
test_cow_publish_inside_section_at_bound_fails(void **state)
{
	struct frees f = {0};
	struct px_cow *c = make_cell(&f, 2);
	struct px_cow_stats st;
	struct settings *d;

	px_cow_read_lock(c);
	set_verbosity(c, 2);
	set_verbosity(c, 3);
	assert_int_equal(px_cow_draft(c, (void **)&d), 0);
	d->verbosity = 4;
	/* Waiting for its own section would never end. */
	assert_int_equal(px_cow_publish(c, d), -EDEADLK);
	assert_int_equal(px_cow_synchronize(c), -EDEADLK);
	px_cow_stats(c, &st);
	assert_int_equal(st.retired, 2);
	px_cow_read_unlock(c);
	assert_int_equal(read_verbosity(c), 3);
	assert_int_equal(px_cow_publish(c, d), 0);
	px_cow_stats(c, &st);
	assert_true(st.retired <= 2);
	assert_int_equal(read_verbosity(c), 4);
	px_cow_destroy(c);
	assert_int_equal(f.count, 4);
}

static void
test_cow_nowait_publish_returns_eagain_at_bound(void **state)
{
	struct frees f = {0};
	struct px_cow_opts o;
	struct px_cow *c;
	struct settings *d;

	px_cow_opts_init(&o);
	o.max_retired = 1;
	o.nowait = true;
	o.on_free = count_free;
	o.free_arg = &f;
	assert_int_equal(px_cow_create(&c, sizeof(*d), NULL, &o), 0);
	px_cow_read_lock(c);
	set_verbosity(c, 2);
	assert_int_equal(px_cow_draft(c, (void **)&d), 0);
	assert_int_equal(px_cow_publish(c, d), -EAGAIN);
	px_cow_read_unlock(c);
	assert_int_equal(px_cow_publish(c, d), 0);
	px_cow_destroy(c);
	assert_int_equal(f.count, 3);
}

static void
test_cow_reclaim_frees_without_waiting(void **state)
{
	struct frees f = {0};
	struct px_cow *c = make_cell(&f, 8);

	px_cow_read_lock(c);
	set_verbosity(c, 2);
	set_verbosity(c, 3);
	assert_int_equal(px_cow_reclaim(c), 2); /* our section blocks */
	px_cow_read_unlock(c);
	assert_int_equal(px_cow_reclaim(c), 0);
	assert_int_equal(f.count, 2);
	px_cow_destroy(c);
}

static void
count_defer(void *arg, struct px_cow *c)
{
	(*(int *)arg)++;
}

static void
test_cow_defer_hook_called_when_versions_wait(void **state)
{
	struct px_cow_opts o;
	struct px_cow *c;
	int deferred = 0;

	px_cow_opts_init(&o);
	o.defer = count_defer;
	o.defer_arg = &deferred;
	assert_int_equal(px_cow_create(&c, sizeof(struct settings), NULL, &o),
			 0);
	set_verbosity(c, 1); /* nobody reads: reclaimed at once */
	assert_int_equal(deferred, 0);
	px_cow_read_lock(c);
	set_verbosity(c, 2);
	px_cow_read_unlock(c);
	assert_int_equal(deferred, 1);
	assert_int_equal(px_cow_reclaim(c), 0);
	px_cow_destroy(c);
}

static void
test_cow_nested_sections_hold_until_outermost(void **state)
{
	struct frees f = {0};
	struct px_cow *c = make_cell(&f, 8);
	struct px_cow *c2 = make_cell(&f, 8);

	px_cow_read_lock(c);
	px_cow_read_lock(c2);
	set_verbosity(c, 2);
	px_cow_read_unlock(c2);
	assert_int_equal(px_cow_reclaim(c), 1);
	px_cow_read_unlock(c);
	assert_int_equal(px_cow_reclaim(c), 0);
	assert_int_equal(f.count, 1);
	px_cow_destroy(c2);
	px_cow_destroy(c);
}

static void
test_cow_arena_full_returns_enomem(void **state)
{
	struct frees f = {0};
	struct px_cow *c = make_cell(&f, 4);
	struct px_cow_stats st;
	void *d[1024], *more;
	size_t n = 0;

	px_cow_stats(c, &st);
	while (n < 1024 && px_cow_draft(c, &d[n]) == 0)
		n++;
	assert_int_equal(n, st.capacity - 1);
	assert_int_equal(px_cow_draft(c, &more), -ENOMEM);
	more = (void *)px_cow_get(c);
	assert_int_equal(px_cow_make_mut(c, &more), -ENOMEM);
	px_cow_put(c, more);
	px_cow_stats(c, &st);
	assert_int_equal(st.alloc_failures, 3); /* the loop's last try too */
	px_cow_put(c, d[--n]);
	assert_int_equal(px_cow_draft(c, &d[n]), 0);
	n++;
	while (n)
		px_cow_put(c, d[--n]);
	px_cow_destroy(c);
	assert_int_equal(f.count, (int)st.capacity + 1);
}

static int
fail_region(struct px_region **out, size_t size,
	    const struct px_region_opts *opts)
{
	return -ENOMEM;
}

static void *
fail_alloc(size_t align, size_t size)
{
	return NULL;
}

static void
test_cow_create_reports_region_failure(void **state)
{
	struct px_cow_hooks h = {.region_create = fail_region};
	struct px_cow *c = NULL;

	px_cow_set_hooks(&h);
	assert_int_equal(px_cow_create(&c, 16, NULL, NULL), -ENOMEM);
	assert_null(c);
	px_cow_set_hooks(NULL);
}

static void
test_cow_create_reports_alloc_failure(void **state)
{
	struct px_cow_hooks h = {.alloc = fail_alloc};
	struct px_cow *c = NULL;

	px_cow_set_hooks(&h);
	assert_int_equal(px_cow_create(&c, 16, NULL, NULL), -ENOMEM);
	assert_null(c);
	px_cow_set_hooks(NULL);
}

static void
test_cow_stats_count_every_step(void **state)
{
	struct frees f = {0};
	struct px_cow *c = make_cell(&f, 4);
	struct px_cow_stats st;

	for (int i = 0; i < 10; i++)
		set_verbosity(c, i);
	assert_int_equal(px_cow_synchronize(c), 0);
	px_cow_stats(c, &st);
	assert_int_equal(st.published, 10);
	assert_int_equal(st.clones, 10);
	assert_int_equal(st.reclaimed, 10);
	assert_int_equal(st.live, 1);
	assert_int_equal(st.retired, 0);
	assert_int_equal(st.block_size % 64, 0);
	assert_int_equal(st.backing, PX_REGION_4K);
	px_cow_destroy(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cow_create_copies_initial_version),
	    cmocka_unit_test(test_cow_create_null_init_is_zeroed),
	    cmocka_unit_test(test_cow_rejects_bad_arguments),
	    cmocka_unit_test(test_cow_draft_is_private_until_published),
	    cmocka_unit_test(test_cow_make_mut_in_place_when_unique),
	    cmocka_unit_test(test_cow_make_mut_clones_when_shared),
	    cmocka_unit_test(test_cow_make_mut_in_place_after_retirement),
	    cmocka_unit_test(test_cow_get_outlives_retirement),
	    cmocka_unit_test(test_cow_publish_current_again_keeps_it),
	    cmocka_unit_test(
		test_cow_republish_of_a_retired_version_rolls_back),
	    cmocka_unit_test(test_cow_destroy_frees_pending_retirements),
	    cmocka_unit_test(test_cow_publish_inside_section_at_bound_fails),
	    cmocka_unit_test(test_cow_nowait_publish_returns_eagain_at_bound),
	    cmocka_unit_test(test_cow_reclaim_frees_without_waiting),
	    cmocka_unit_test(test_cow_defer_hook_called_when_versions_wait),
	    cmocka_unit_test(test_cow_nested_sections_hold_until_outermost),
	    cmocka_unit_test(test_cow_arena_full_returns_enomem),
	    cmocka_unit_test(test_cow_create_reports_region_failure),
	    cmocka_unit_test(test_cow_create_reports_alloc_failure),
	    cmocka_unit_test(test_cow_stats_count_every_step),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
