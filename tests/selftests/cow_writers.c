// SPDX-License-Identifier: MIT
/*
 * px_cow with two writers where one of them is inside a read-side
 * section: a writer that waits for a grace period (at the retirement
 * bound, or in px_cow_synchronize()) waits for that section to end, so
 * it must not hold the cell while it waits, or the writer in the section
 * blocks on the cell and neither ever returns.  The writer in the
 * section must get its documented answer instead: 0 when its publish
 * needs no wait, -EDEADLK when it would.  A deadlock shows as a missed
 * deadline (the harness also times the test out).  Also: reader threads
 * that exit inside a section without unregistering.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include <patinox/cow.h>

#include "harness.h"

#define WAIT_ROUNDS 20000 /* x 1 ms: generous under sanitizers and load */
#define SETTLE_MS   200   /* time for the other writer to start waiting */
#define NOT_YET     1     /* a result not yet in: no errno is positive */

struct two {
	struct px_cow *c;
	bool sync;                /* the other writer synchronizes */
	_Atomic int inside;       /* the section writer is in its section */
	_Atomic int go;           /* the section writer may publish */
	_Atomic int leave;        /* the section writer may leave */
	_Atomic int section_ret;  /* its publish result */
	_Atomic int other_ret;    /* the other writer's result */
	_Atomic int other_passed; /* the other writer's call returned */
};

static void
msleep(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static bool
wait_flag(_Atomic int *flag)
{
	for (int i = 0; i < WAIT_ROUNDS; i++) {
		if (atomic_load(flag))
			return true;
		msleep(1);
	}
	return false;
}

static bool
wait_result(_Atomic int *res)
{
	for (int i = 0; i < WAIT_ROUNDS; i++) {
		if (atomic_load(res) != NOT_YET)
			return true;
		msleep(1);
	}
	return false;
}

static int
publish_value(struct px_cow *c, int value)
{
	int *d, ret;

	ret = px_cow_draft(c, (void **)&d);
	if (ret < 0)
		return ret;
	*d = value;
	ret = px_cow_publish(c, d);
	if (ret < 0)
		px_cow_put(c, d);
	return ret;
}

/* Enters a section, publishes from inside it when told, then leaves. */
static void *
section_writer(void *arg)
{
	struct two *t = arg;

	px_cow_read_lock(t->c);
	atomic_store(&t->inside, 1);
	while (!atomic_load(&t->go))
		msleep(1);
	atomic_store(&t->section_ret, publish_value(t->c, 2));
	while (!atomic_load(&t->leave))
		msleep(1);
	px_cow_read_unlock(t->c);
	return NULL;
}

/* Waits for a grace period that the section writer holds up. */
static void *
other_writer(void *arg)
{
	struct two *t = arg;
	int ret;

	if (t->sync)
		ret = px_cow_synchronize(t->c);
	else
		ret = publish_value(t->c, 3);
	atomic_store(&t->other_ret, ret);
	atomic_store(&t->other_passed, 1);
	return NULL;
}

static bool
bound_waited(struct px_cow *c)
{
	struct px_cow_stats st;

	for (int i = 0; i < WAIT_ROUNDS; i++) {
		px_cow_stats(c, &st);
		if (st.bound_waits >= 1)
			return true;
		msleep(1);
	}
	return false;
}

static void
run_two(struct __test_meta *_metadata, bool sync, size_t max_retired,
	int want_section)
{
	struct two t = {.sync = sync};
	struct px_cow_opts o;
	struct px_cow_stats st;
	pthread_t st_thread, ot_thread;
	int init = 1;

	atomic_init(&t.section_ret, NOT_YET);
	atomic_init(&t.other_ret, NOT_YET);
	px_cow_opts_init(&o);
	o.max_retired = max_retired;
	ASSERT_EQ(px_cow_create(&t.c, sizeof(int), &init, &o), 0);
	ASSERT_EQ(pthread_create(&st_thread, NULL, section_writer, &t), 0);
	ASSERT_TRUE(wait_flag(&t.inside));
	/* One retired version the section holds up. */
	ASSERT_EQ(publish_value(t.c, 10), 0);
	px_cow_stats(t.c, &st);
	ASSERT_EQ(st.retired, 1);
	ASSERT_EQ(pthread_create(&ot_thread, NULL, other_writer, &t), 0);
	if (sync)
		msleep(SETTLE_MS);
	else
		ASSERT_TRUE(bound_waited(t.c));
	/* The other writer waits for the section: it cannot be done. */
	ASSERT_EQ(atomic_load(&t.other_passed), 0);
	atomic_store(&t.go, 1);
	ASSERT_TRUE(wait_result(&t.section_ret));
	EXPECT_EQ(atomic_load(&t.section_ret), want_section);
	atomic_store(&t.leave, 1);
	pthread_join(st_thread, NULL);
	pthread_join(ot_thread, NULL);
	EXPECT_EQ(atomic_load(&t.other_ret), 0);
	EXPECT_EQ(px_cow_synchronize(t.c), 0);
	px_cow_stats(t.c, &st);
	EXPECT_EQ(st.retired, 0);
	EXPECT_EQ(st.live, 1);
	px_cow_destroy(t.c);
}

/* At the bound the section writer would have to wait too: -EDEADLK. */
TEST_T(cow_publish_in_section_while_writer_waits_at_bound, 60)
{
	run_two(_metadata, false, 1, -EDEADLK);
}

/* Below the bound the section writer needs no wait: it publishes. */
TEST_T(cow_publish_in_section_while_writer_synchronizes, 60)
{
	run_two(_metadata, true, 8, 0);
}

/* Reads, and exits without leaving its section or unregistering. */
static void *
exit_inside_section(void *arg)
{
	struct px_cow *c = arg;
	const int *v = px_cow_read_lock(c);

	return (void *)(intptr_t)*v;
}

/*
 * Threads that exit inside a section, never unregistered, must not hold
 * up grace periods: their slots go back at thread exit.  More threads
 * than the registry's first chunk, one after another.
 */
TEST_T(cow_threads_exiting_inside_a_section_release_their_slots, 60)
{
	struct px_cow_opts o;
	struct px_cow_stats st;
	struct px_cow *c;
	int init = 7;

	px_cow_opts_init(&o);
	o.max_retired = 1;
	o.nowait = true; /* a held-up grace period shows as -EAGAIN */
	ASSERT_EQ(px_cow_create(&c, sizeof(int), &init, &o), 0);
	for (int i = 0; i < 3 * CONFIG_PX_COW_READER_SLOTS; i++) {
		pthread_t t;
		void *ret;

		ASSERT_EQ(pthread_create(&t, NULL, exit_inside_section, c), 0);
		ASSERT_EQ(pthread_join(t, &ret), 0);
		ASSERT_EQ((intptr_t)ret, i == 0 ? 7 : i + 99);
		ASSERT_EQ(publish_value(c, i + 100), 0);
		ASSERT_EQ(px_cow_synchronize(c), 0);
	}
	px_cow_stats(c, &st);
	EXPECT_EQ(st.retired, 0);
	EXPECT_EQ(st.live, 1);
	px_cow_destroy(c);
}

TEST_HARNESS_MAIN
