// SPDX-License-Identifier: MIT
/*
 * Other threads use a pool through its ring: each worker thread has its
 * own ring and hands every get and put to the pool's thread with
 * px_ring_post(); the answer comes back the same way.  The pool itself
 * is only ever touched on its own thread.  This is the pattern
 * docs/pool.md describes.
 */
#include <pthread.h>
#include <stdatomic.h>

#include <patinox/error.h>
#include <patinox/pool.h>
#include <patinox/ring.h>

#include "harness.h"

enum { WORKERS = 2, ROUNDS = 200, POOL_SIZE = 2 };

#if defined(__SANITIZE_THREAD__)
const char *__tsan_default_options(void);

/*
 * Under ThreadSanitizer a race must fail the test, not only print: the
 * harness ends each test with _exit(), which keeps TSan's exit code.
 * The hand-off is clean because px_ring_post() publishes its message
 * with a release store that the target ring's dispatch loads with
 * acquire (the kernel's own ordering through MSG_RING is invisible to
 * TSan).
 */
const char *
__tsan_default_options(void)
{
	return "halt_on_error=1:abort_on_error=1";
}
#endif

struct shared {
	struct px_ring *pool_ring;
	struct px_pool *pool;
	atomic_int workers_done;
	atomic_int live_values;
};

/* One request from a worker, answered on the worker's ring. */
struct req {
	struct shared *sh;
	struct px_ring *home; /* the worker's ring */
	struct px_pool_obj *obj;
	int res;
	bool answered;
};

static void
mgr_create(struct px_pool *pool, struct px_pool_obj *obj, void *arg)
{
	struct shared *sh = arg;
	int *v = calloc(1, sizeof(*v));

	atomic_fetch_add(&sh->live_values, 1);
	px_pool_obj_set_value(obj, v);
	px_pool_done(pool, obj, 0);
}

static void
mgr_destroy(struct px_pool *pool, void *value, void *arg)
{
	struct shared *sh = arg;

	atomic_fetch_sub(&sh->live_values, 1);
	free(value);
}

static void
answered(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct req *r = ctx;

	r->answered = true;
}

/* On the pool's thread. */
static void
on_got(struct px_pool *pool, struct px_pool_obj *obj, int res, void *ctx)
{
	struct req *r = ctx;

	r->obj = obj;
	r->res = res;
	px_ring_post(r->sh->pool_ring, r->home, answered, r);
}

static void
do_get(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct req *r = ctx;
	int ret = px_pool_get(r->sh->pool, -1, on_got, r, NULL);

	if (ret < 0)
		on_got(r->sh->pool, NULL, ret, r);
}

static void
do_put(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct req *r = ctx;

	px_pool_put(r->sh->pool, r->obj);
	px_ring_post(r->sh->pool_ring, r->home, answered, r);
}

static void
wait_answer(struct px_ring *ring, struct req *r)
{
	while (!r->answered)
		px_ring_run_once(ring, 10 * 1000000);
	r->answered = false;
}

static void *
worker(void *arg)
{
	struct shared *sh = arg;
	struct req r = {.sh = sh};
	long bad = 0;

	if (px_ring_create(NULL, &r.home) < 0)
		return (void *)1;
	for (int i = 0; i < ROUNDS; i++) {
		px_ring_post(r.home, sh->pool_ring, do_get, &r);
		wait_answer(r.home, &r);
		if (r.res != 0) {
			bad++;
			continue;
		}
		/* The value is this thread's alone until it goes back. */
		(*(int *)px_pool_obj_value(r.obj))++;
		px_ring_post(r.home, sh->pool_ring, do_put, &r);
		wait_answer(r.home, &r);
	}
	px_ring_destroy(r.home);
	atomic_fetch_add(&sh->workers_done, 1);
	return (void *)bad;
}

static int total;

static bool
sum_values(struct px_pool *pool, struct px_pool_obj *obj, void *arg)
{
	total += *(int *)px_pool_obj_value(obj);
	return true;
}

TEST(pool_threads_hand_off_through_the_ring)
{
	struct shared sh = {0};
	struct px_pool_manager m = {
	    .create = mgr_create, .destroy = mgr_destroy, .arg = &sh};
	struct px_pool_opts o;
	pthread_t t[WORKERS];
	void *bad;
	int ret;

	ret = px_ring_create(NULL, &sh.pool_ring);
	if (ret < 0)
		SKIP(return, "no ring: %s", px_strerror_in(PX_PART_RING, ret));
	px_pool_opts_init(&o);
	o.max_size = POOL_SIZE;
	ASSERT_EQ(px_pool_create(sh.pool_ring, &m, &o, &sh.pool), 0);
	for (int i = 0; i < WORKERS; i++)
		ASSERT_EQ(pthread_create(&t[i], NULL, worker, &sh), 0);
	while (atomic_load(&sh.workers_done) < WORKERS)
		px_ring_run_once(sh.pool_ring, 10 * 1000000);
	for (int i = 0; i < WORKERS; i++) {
		pthread_join(t[i], &bad);
		EXPECT_EQ((long)bad, 0);
	}
	/* Every increment landed: no two threads held one value at once. */
	total = 0;
	px_pool_retain(sh.pool, sum_values, NULL);
	EXPECT_EQ(total, WORKERS * ROUNDS);
	px_pool_destroy(sh.pool);
	for (int i = 0; i < 10; i++)
		px_ring_run_once(sh.pool_ring, 0);
	EXPECT_EQ(atomic_load(&sh.live_values), 0);
	px_ring_destroy(sh.pool_ring);
}

TEST_HARNESS_MAIN
