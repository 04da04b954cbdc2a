// SPDX-License-Identifier: MIT
/*
 * Unit tests of ring creation: a fake io_uring_setup (the hook) fails
 * with EPERM, ENOSYS and ENOMEM, and the error must reach the caller
 * unchanged with a message that explains cause and fix; EINVAL walks the
 * setup-flag fallback chain.  Also options, counters and the NULL cases.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>
#include <liburing.h>

#include <patinox/error.h>
#include <patinox/ring.h>

static int fake_error;
static int fake_calls;
static uint32_t fake_flags[8];

static int
fake_setup_fails(uint32_t entries, struct io_uring_params *p)
{
	if (fake_calls < 8)
		fake_flags[fake_calls] = p->flags;
	fake_calls++;
	return fake_error;
}

/* Refuses DEFER_TASKRUN as a 5.19 kernel would, then sets up for real. */
static int
fake_setup_no_defer(uint32_t entries, struct io_uring_params *p)
{
	if (fake_calls < 8)
		fake_flags[fake_calls] = p->flags;
	fake_calls++;
	if (p->flags & IORING_SETUP_DEFER_TASKRUN)
		return -EINVAL;
	return io_uring_setup(entries, p);
}

static int
reset_fake(void **state)
{
	fake_error = 0;
	fake_calls = 0;
	memset(fake_flags, 0, sizeof(fake_flags));
	px_ring_hooks_set(NULL);
	return 0;
}

static void
expect_create_error(int err, const char *const *words)
{
	struct px_ring_hooks hooks = {.setup = fake_setup_fails};
	struct px_ring *ring = (struct px_ring *)&hooks;
	const char *msg;

	fake_error = err;
	px_ring_hooks_set(&hooks);
	assert_int_equal(px_ring_create(NULL, &ring), err);
	assert_null(ring);
	/* Not -EINVAL: no fallback may hide the real cause. */
	assert_int_equal(fake_calls, 1);
	msg = px_strerror_in(PX_PART_RING, err);
	for (; *words; words++)
		assert_non_null(strstr(msg, *words));
}

static void
test_ring_setup_eperm_is_returned_and_explained(void **state)
{
	static const char *const words[] = {"EPERM", "seccomp",
					    "io_uring_disabled", NULL};

	expect_create_error(-EPERM, words);
}

static void
test_ring_setup_enosys_is_returned_and_explained(void **state)
{
	static const char *const words[] = {"ENOSYS", "CONFIG_IO_URING",
					    "seccomp", NULL};

	expect_create_error(-ENOSYS, words);
}

static void
test_ring_setup_enomem_is_returned_and_explained(void **state)
{
	static const char *const words[] = {"ENOMEM", "RLIMIT_MEMLOCK", NULL};

	expect_create_error(-ENOMEM, words);
}

static void
test_ring_setup_einval_tries_every_flag_set(void **state)
{
	struct px_ring_hooks hooks = {.setup = fake_setup_fails};
	struct px_ring *ring;

	fake_error = -EINVAL;
	px_ring_hooks_set(&hooks);
	assert_int_equal(px_ring_create(NULL, &ring), -EINVAL);
	assert_int_equal(fake_calls, 3);
	assert_true(fake_flags[0] & IORING_SETUP_DEFER_TASKRUN);
	assert_true(fake_flags[0] & IORING_SETUP_SINGLE_ISSUER);
	assert_true(fake_flags[1] & IORING_SETUP_COOP_TASKRUN);
	assert_false(fake_flags[2] &
		     (IORING_SETUP_COOP_TASKRUN | IORING_SETUP_DEFER_TASKRUN));
	for (int i = 0; i < 3; i++)
		assert_true(fake_flags[i] & IORING_SETUP_CQSIZE);
}

static void
test_ring_setup_falls_back_to_coop_taskrun(void **state)
{
	struct px_ring_hooks hooks = {.setup = fake_setup_no_defer};
	struct px_ring *ring;
	int ret;

	px_ring_hooks_set(&hooks);
	ret = px_ring_create(NULL, &ring);
	if (ret == -EPERM || ret == -ENOSYS)
		skip();
	assert_int_equal(ret, 0);
	assert_int_equal(fake_calls, 2);
	assert_true(px_ring_setup_flags(ring) & IORING_SETUP_COOP_TASKRUN);
	assert_false(px_ring_setup_flags(ring) & IORING_SETUP_DEFER_TASKRUN);
	assert_true(px_ring_run_once(ring, 0) >= 0);
	px_ring_destroy(ring);
}

static void
test_ring_no_defer_flag_skips_defer_taskrun(void **state)
{
	struct px_ring_hooks hooks = {.setup = fake_setup_fails};
	struct px_ring_opts o;
	struct px_ring *ring;

	fake_error = -EINVAL;
	px_ring_hooks_set(&hooks);
	px_ring_opts_init(&o);
	o.flags |= PX_RING_NO_DEFER | PX_RING_SQPOLL;
	assert_int_equal(px_ring_create(&o, &ring), -EINVAL);
	assert_int_equal(fake_calls, 2);
	assert_false(fake_flags[0] & IORING_SETUP_DEFER_TASKRUN);
	assert_true(fake_flags[0] & IORING_SETUP_SQPOLL);
	assert_true(fake_flags[1] & IORING_SETUP_SQPOLL);
}

static void
test_ring_opts_defaults_come_from_kconfig(void **state)
{
	struct px_ring_opts o;

	px_ring_opts_init(&o);
	assert_int_equal(o.sq_entries, CONFIG_PX_RING_SQ_ENTRIES);
	assert_int_equal(o.cq_entries,
			 CONFIG_PX_RING_SQ_ENTRIES * CONFIG_PX_RING_CQ_FACTOR);
	assert_int_equal(o.buf_count, CONFIG_PX_RING_BUF_COUNT);
	assert_int_equal(o.buf_size, CONFIG_PX_RING_BUF_SIZE);
	assert_int_equal(o.sqpoll_idle_ms, CONFIG_PX_RING_SQPOLL_IDLE_MS);
}

static void
test_ring_rejects_bad_options(void **state)
{
	struct px_ring_hooks hooks = {.setup = fake_setup_fails};
	struct px_ring_opts o;
	struct px_ring *ring;

	fake_error = -EPERM;
	px_ring_hooks_set(&hooks);
	px_ring_opts_init(&o);
	o.buf_count = 1000;
	assert_int_equal(px_ring_create(&o, &ring), -EINVAL);
	px_ring_opts_init(&o);
	o.cq_entries = o.sq_entries / 2;
	assert_int_equal(px_ring_create(&o, &ring), -EINVAL);
	px_ring_opts_init(&o);
	o.flags = 1u << 31; /* no such flag */
	assert_int_equal(px_ring_create(&o, &ring), -EINVAL);
	assert_int_equal(px_ring_create(NULL, NULL), -EINVAL);
	assert_int_equal(fake_calls, 0);
}

static void
test_ring_counter_table_names_every_field(void **state)
{
	unsigned int i;

	assert_int_equal(PX_RING_NR_COUNTERS,
			 sizeof(struct px_ring_stats) / sizeof(uint64_t));
	for (i = 0; i < PX_RING_NR_COUNTERS; i++) {
		assert_non_null(px_ring_stat_name(i));
		assert_non_null(px_ring_stat_desc(i));
	}
	assert_null(px_ring_stat_name(i));
	assert_string_equal(px_ring_stat_name(0), "submissions");
	assert_int_equal(
	    offsetof(struct px_ring_stats, in_flight) / sizeof(uint64_t), 4);
	assert_string_equal(px_ring_stat_name(4), "in_flight");
}

static void
test_ring_other_errors_are_explained(void **state)
{
	assert_non_null(
	    strstr(px_strerror_in(PX_PART_RING, -EEXIST), "SINGLE_ISSUER"));
	assert_non_null(
	    strstr(px_strerror_in(PX_PART_RING, -EBUSY), "completion queue"));
	assert_non_null(
	    strstr(px_strerror_in(PX_PART_RING, -PX_ECLOSED), "closing"));
	/* Errors without a ring meaning fall back to the plain text. */
	assert_string_equal(px_strerror_in(PX_PART_RING, -EPIPE),
			    px_strerror(-EPIPE));
}

static void
test_ring_destroy_null_is_noop(void **state)
{
	px_ring_destroy(NULL);
}

static void
test_ring_features_are_probed_once(void **state)
{
	assert_ptr_equal(px_ring_features(), px_ring_features());
	assert_ptr_equal(px_ring_features(), px_probe_cached());
}

#define T(f) cmocka_unit_test_setup_teardown(f, reset_fake, reset_fake)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_ring_setup_eperm_is_returned_and_explained),
	    T(test_ring_setup_enosys_is_returned_and_explained),
	    T(test_ring_setup_enomem_is_returned_and_explained),
	    T(test_ring_setup_einval_tries_every_flag_set),
	    T(test_ring_setup_falls_back_to_coop_taskrun),
	    T(test_ring_no_defer_flag_skips_defer_taskrun),
	    T(test_ring_opts_defaults_come_from_kconfig),
	    T(test_ring_rejects_bad_options),
	    T(test_ring_counter_table_names_every_field),
	    T(test_ring_other_errors_are_explained),
	    T(test_ring_destroy_null_is_noop),
	    T(test_ring_features_are_probed_once),
	};

	return cmocka_run_group_tests_name("ring", tests, NULL, NULL);
}
