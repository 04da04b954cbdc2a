// SPDX-License-Identifier: MIT
/*
 * Messages between rings (IORING_OP_MSG_RING): a thread posts work to
 * another thread's ring; each callback runs on the target's thread, in
 * the order posted; a posted callback stops the target's loop.
 */
#include <pthread.h>

#include <patinox/error.h>
#include <patinox/ring.h>

#include "harness.h"

#define NR_MSGS 2000

struct target {
	struct px_ring *ring;
	pthread_t thread;
	pthread_t self;
	int ready;
	int failed;
	int got;
	int out_of_order;
	int wrong_thread;
	int run_ret;
	int create_ret;
};

struct job {
	struct target *t;
	int seq;
};

static void
job_run(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct job *j = ctx;

	if (res < 0) {
		j->t->failed++;
		return;
	}
	if (!pthread_equal(pthread_self(), j->t->self))
		j->t->wrong_thread++;
	if (j->seq != j->t->got)
		j->t->out_of_order++;
	j->t->got++;
}

static void
stop_ring(struct px_ring *ring, int res, bool more, void *ctx)
{
	px_ring_stop(ring);
}

static void *
target_main(void *arg)
{
	struct target *t = arg;

	t->self = pthread_self();
	t->create_ret = px_ring_create(NULL, &t->ring);
	__atomic_store_n(&t->ready, 1, __ATOMIC_RELEASE);
	if (t->create_ret < 0)
		return NULL;
	t->run_ret = px_ring_run(t->ring);
	px_ring_destroy(t->ring);
	return NULL;
}

TEST_T(ring_msg_ring_between_two_threads, 60)
{
	static struct job jobs[NR_MSGS];
	struct target t = {0};
	struct px_ring *src;
	int ret;

	ret = px_ring_create(NULL, &src);
	if (ret < 0)
		SKIP(return, "%s", px_strerror_in(PX_PART_RING, ret));
	ASSERT_EQ(pthread_create(&t.thread, NULL, target_main, &t), 0);
	while (!__atomic_load_n(&t.ready, __ATOMIC_ACQUIRE))
		usleep(100);
	ASSERT_EQ(t.create_ret, 0);

	for (int i = 0; i < NR_MSGS; i++) {
		jobs[i].t = &t;
		jobs[i].seq = i;
		ASSERT_EQ(px_ring_post(src, t.ring, job_run, &jobs[i]), 0);
		if (i % 64 == 63)
			ASSERT_GE(px_ring_run_once(src, 0), 0);
	}
	ASSERT_EQ(px_ring_post(src, t.ring, stop_ring, NULL), 0);
	ASSERT_GE(px_ring_run_once(src, 0), 0);
	pthread_join(t.thread, NULL);
	/* Delivery failures would be reported on the source ring. */
	while (px_ring_run_once(src, 0) > 0)
		;
	EXPECT_EQ(t.failed, 0);
	EXPECT_EQ(t.run_ret, 0);
	EXPECT_EQ(t.got, NR_MSGS);
	EXPECT_EQ(t.out_of_order, 0);
	EXPECT_EQ(t.wrong_thread, 0);
	px_ring_destroy(src);
}

TEST_HARNESS_MAIN
