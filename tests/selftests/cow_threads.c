// SPDX-License-Identifier: MIT
/*
 * px_cow under threads: readers and writers at once must never show a
 * half-written version, every version must be freed exactly once, and
 * the retirement bound must hold while a reader stalls inside its
 * section.  Both reader fence modes run (membarrier, where the kernel
 * has it, and full fences), as does the shared fallback slot of a
 * thread that could not register.  Worker threads only count problems;
 * the test thread asserts.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <patinox/cow.h>

#include "harness.h"

#define WORDS        14
#define WRITERS      2
#define READERS      2
#define PUBLISHES    1500 /* per writer */
#define TOTAL        (WRITERS * PUBLISHES)
#define MAX_RETIRED  8
#define STALL_BOUND  4
#define STALL_WRITES 40
#define WAIT_ROUNDS  20000 /* x 1 ms: generous under sanitizers */
#define CHECK_MIX    0x9e3779b97f4a7c15ull
#define READ_PAUSE   200 /* loop turns between a reader's two looks */

/* A version: its sequence number repeated, and a checksum over it. */
struct vers {
	uint64_t seq;
	uint64_t words[WORDS];
	uint64_t check;
};

struct world {
	struct px_cow *c;
	_Atomic uint64_t next_seq;
	_Atomic int writers_left;
	_Atomic int torn;
	_Atomic int over_bound;
	_Atomic int errors;
	_Atomic uint64_t reads;
	_Atomic int frees[TOTAL + 1];
};

static void
fill(struct vers *v, uint64_t seq)
{
	v->seq = seq;
	for (int i = 0; i < WORDS; i++)
		v->words[i] = seq;
	v->check = seq * CHECK_MIX;
}

static bool
whole(const struct vers *v)
{
	for (int i = 0; i < WORDS; i++)
		if (v->words[i] != v->seq)
			return false;
	return v->check == v->seq * CHECK_MIX;
}

static void
count_free(void *arg, void *data)
{
	struct world *w = arg;
	const struct vers *v = data;

	if (!whole(v) || v->seq > TOTAL)
		atomic_fetch_add(&w->torn, 1);
	else
		atomic_fetch_add(&w->frees[v->seq], 1);
}

static void
msleep(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static void *
writer(void *arg)
{
	struct world *w = arg;
	struct vers *d;

	for (int i = 0; i < PUBLISHES; i++) {
		if (px_cow_draft(w->c, (void **)&d) != 0) {
			atomic_fetch_add(&w->errors, 1);
			break;
		}
		fill(d, atomic_fetch_add(&w->next_seq, 1));
		if (px_cow_publish(w->c, d) != 0) {
			atomic_fetch_add(&w->errors, 1);
			px_cow_put(w->c, d);
		}
	}
	atomic_fetch_sub(&w->writers_left, 1);
	return NULL;
}

/*
 * A version must stay whole and unchanged for the whole section: the
 * reader looks twice, with a pause between, to widen the window in
 * which an early free and reuse of its block would show.  Every 64th
 * read keeps a reference across later sections.
 */
static void
read_once(struct world *w, uint64_t n, const struct vers **held)
{
	const struct vers *v = px_cow_read_lock(w->c);
	uint64_t seq = v->seq;
	struct px_cow_stats st;

	for (volatile int i = 0; i < READ_PAUSE; i++)
		;
	if (!whole(v) || v->seq != seq)
		atomic_fetch_add(&w->torn, 1);
	px_cow_read_unlock(w->c);
	if (n % 64 == 0) {
		if (*held && !whole(*held))
			atomic_fetch_add(&w->torn, 1);
		px_cow_put(w->c, *held);
		*held = px_cow_get(w->c);
		px_cow_stats(w->c, &st);
		if (st.retired > MAX_RETIRED)
			atomic_fetch_add(&w->over_bound, 1);
	}
}

static void *
reader(void *arg)
{
	struct world *w = arg;
	const struct vers *held = NULL;
	uint64_t n = 0;

	while (atomic_load(&w->writers_left) > 0)
		read_once(w, ++n, &held);
	px_cow_put(w->c, held);
	atomic_fetch_add(&w->reads, n);
	return NULL;
}

static struct world *
world_create(size_t max_retired)
{
	struct world *w = calloc(1, sizeof(*w));
	struct px_cow_opts o;
	struct vers init;

	if (!w)
		return NULL;
	fill(&init, 0);
	atomic_init(&w->next_seq, 1);
	px_cow_opts_init(&o);
	o.max_retired = max_retired;
	o.on_free = count_free;
	o.free_arg = w;
	if (px_cow_create(&w->c, sizeof(init), &init, &o) != 0) {
		free(w);
		return NULL;
	}
	return w;
}

static void
run_mixed(struct __test_meta *_metadata)
{
	pthread_t t[WRITERS + READERS];
	struct world *w = world_create(MAX_RETIRED);
	uint64_t last;

	ASSERT_NOT_NULL(w);
	atomic_init(&w->writers_left, WRITERS);
	for (int i = 0; i < WRITERS + READERS; i++)
		ASSERT_EQ(pthread_create(&t[i], NULL,
					 i < WRITERS ? writer : reader, w),
			  0);
	for (int i = 0; i < WRITERS + READERS; i++)
		pthread_join(t[i], NULL);
	last = atomic_load(&w->next_seq) - 1;
	px_cow_destroy(w->c);

	EXPECT_EQ(atomic_load(&w->errors), 0);
	EXPECT_EQ(atomic_load(&w->torn), 0);
	EXPECT_EQ(atomic_load(&w->over_bound), 0);
	ASSERT_EQ(last, TOTAL);
	for (uint64_t s = 0; s <= last; s++)
		if (atomic_load(&w->frees[s]) != 1) {
			TH_LOG("version %llu freed %d times",
			       (unsigned long long)s,
			       atomic_load(&w->frees[s]));
			ASSERT_EQ(atomic_load(&w->frees[s]), 1);
		}
	TH_LOG("%llu reads over %d publishes",
	       (unsigned long long)atomic_load(&w->reads), TOTAL);
	free(w);
}

TEST_T(cow_readers_never_see_torn_versions, 120)
{
	run_mixed(_metadata);
}

static int
refuse_membarrier(int cmd, unsigned int flags)
{
	errno = ENOSYS;
	return -1;
}

/* Each test is a fresh process: the fence mode is still undecided. */
TEST_T(cow_full_fence_readers_never_see_torn_versions, 120)
{
	struct px_cow_hooks h = {.membarrier = refuse_membarrier};

	px_cow_set_hooks(&h);
	run_mixed(_metadata);
}

struct stall {
	struct world *w;
	_Atomic int inside;
	_Atomic int release;
	_Atomic int published;
	_Atomic int eagain;
	_Atomic int writer_ready;
	_Atomic int go;
	bool nowait;
	bool gated; /* the writer registers, then waits for go */
};

static void *
stalled_reader(void *arg)
{
	struct stall *s = arg;
	const struct vers *v = px_cow_read_lock(s->w->c);

	atomic_store(&s->inside, 1);
	while (!atomic_load(&s->release))
		msleep(1);
	if (!whole(v) || v->seq != 0)
		atomic_fetch_add(&s->w->torn, 1);
	px_cow_read_unlock(s->w->c);
	return NULL;
}

static void *
stall_writer(void *arg)
{
	struct stall *s = arg;
	struct vers *d;
	int ret;

	if (s->gated) {
		if (px_cow_thread_register() != 0)
			atomic_fetch_add(&s->w->errors, 1);
		atomic_store(&s->writer_ready, 1);
		while (!atomic_load(&s->go))
			msleep(1);
	}
	for (int i = 1; i <= STALL_WRITES; i++) {
		if (px_cow_draft(s->w->c, (void **)&d) != 0) {
			atomic_fetch_add(&s->w->errors, 1);
			return NULL;
		}
		fill(d, (uint64_t)i);
		while ((ret = px_cow_publish(s->w->c, d)) == -EAGAIN) {
			atomic_fetch_add(&s->eagain, 1);
			msleep(1);
		}
		if (ret != 0)
			atomic_fetch_add(&s->w->errors, 1);
		atomic_fetch_add(&s->published, 1);
	}
	return NULL;
}

static bool
wait_for(_Atomic int *flag, int value)
{
	for (int i = 0; i < WAIT_ROUNDS; i++) {
		if (atomic_load(flag) >= value)
			return true;
		msleep(1);
	}
	return false;
}

static bool
wait_for_stat(struct px_cow *c, uint64_t bound_waits, uint64_t retired)
{
	struct px_cow_stats st;

	for (int i = 0; i < WAIT_ROUNDS; i++) {
		px_cow_stats(c, &st);
		if (st.bound_waits >= bound_waits && st.retired >= retired)
			return true;
		msleep(1);
	}
	return false;
}

/* While the reader sits in its section, the writer stops at the bound. */
static void
check_stalled(struct __test_meta *_metadata, struct stall *s)
{
	struct px_cow_stats st;

	if (s->nowait)
		ASSERT_TRUE(wait_for(&s->eagain, 3));
	else
		ASSERT_TRUE(wait_for_stat(s->w->c, 1, STALL_BOUND));
	for (int i = 0; i < 20; i++) {
		px_cow_stats(s->w->c, &st);
		ASSERT_EQ(st.retired, STALL_BOUND);
		ASSERT_LE(st.live, STALL_BOUND + 2);
		ASSERT_EQ(atomic_load(&s->published), STALL_BOUND);
		msleep(2);
	}
}

static void
run_stalled(struct __test_meta *_metadata, bool nowait)
{
	struct stall s = {.nowait = nowait};
	struct px_cow_opts o;
	struct vers init;
	pthread_t rt, wt;

	s.w = calloc(1, sizeof(*s.w));
	ASSERT_NOT_NULL(s.w);
	fill(&init, 0);
	px_cow_opts_init(&o);
	o.max_retired = STALL_BOUND;
	o.nowait = nowait;
	o.on_free = count_free;
	o.free_arg = s.w;
	ASSERT_EQ(px_cow_create(&s.w->c, sizeof(init), &init, &o), 0);
	ASSERT_EQ(pthread_create(&rt, NULL, stalled_reader, &s), 0);
	ASSERT_TRUE(wait_for(&s.inside, 1));
	ASSERT_EQ(pthread_create(&wt, NULL, stall_writer, &s), 0);

	check_stalled(_metadata, &s);
	atomic_store(&s.release, 1);
	pthread_join(rt, NULL);
	pthread_join(wt, NULL);
	EXPECT_EQ(atomic_load(&s.published), STALL_WRITES);
	EXPECT_EQ(px_cow_synchronize(s.w->c), 0);
	px_cow_destroy(s.w->c);
	EXPECT_EQ(atomic_load(&s.w->errors), 0);
	EXPECT_EQ(atomic_load(&s.w->torn), 0);
	for (int i = 0; i <= STALL_WRITES; i++)
		EXPECT_EQ(atomic_load(&s.w->frees[i]), 1);
	free(s.w);
}

TEST_T(cow_bound_holds_under_stalled_reader, 120)
{
	run_stalled(_metadata, false);
}

TEST_T(cow_nowait_bound_holds_under_stalled_reader, 120)
{
	run_stalled(_metadata, true);
}

static int
child_publishes(struct world *w)
{
	struct px_cow_stats st;
	struct vers *d;

	alarm(20); /* a grace period that never ends fails the test */
	for (int i = 1; i <= 3 * STALL_BOUND; i++) {
		if (px_cow_draft(w->c, (void **)&d) != 0)
			return 1;
		fill(d, (uint64_t)i);
		if (px_cow_publish(w->c, d) != 0)
			return 2;
	}
	if (px_cow_synchronize(w->c) != 0)
		return 3;
	px_cow_stats(w->c, &st);
	return st.retired == 0 && st.live == 1 ? 0 : 4;
}

/*
 * A thread of the parent sits inside a section when another forks: in
 * the child that thread does not exist, and must not block its grace
 * periods.
 */
TEST_T(cow_forked_child_is_not_blocked_by_parent_readers, 60)
{
	struct stall s = {0};
	int status = -1;
	pthread_t rt;
	pid_t pid;

	s.w = world_create(STALL_BOUND);
	ASSERT_NOT_NULL(s.w);
	ASSERT_EQ(pthread_create(&rt, NULL, stalled_reader, &s), 0);
	ASSERT_TRUE(wait_for(&s.inside, 1));
	pid = fork();
	if (pid == 0)
		_exit(child_publishes(s.w));
	atomic_store(&s.release, 1);
	pthread_join(rt, NULL);
	ASSERT_GT(pid, 0);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(WEXITSTATUS(status), 0);
	px_cow_destroy(s.w->c);
	EXPECT_EQ(atomic_load(&s.w->torn), 0);
	EXPECT_EQ(atomic_load(&s.w->frees[0]), 1);
	free(s.w);
}

static void *
fail_alloc(size_t align, size_t size)
{
	return NULL;
}

struct holders {
	pthread_barrier_t registered;
	pthread_barrier_t done;
	_Atomic int failures;
};

static void *
holder(void *arg)
{
	struct holders *h = arg;

	if (px_cow_thread_register() != 0)
		atomic_fetch_add(&h->failures, 1);
	pthread_barrier_wait(&h->registered);
	pthread_barrier_wait(&h->done);
	return NULL;
}

static void *
unregistered_reader(void *arg)
{
	struct stall *s = arg;

	if (px_cow_thread_register() != -ENOMEM)
		atomic_fetch_add(&s->w->errors, 1);
	return stalled_reader(s);
}

/*
 * Every static slot taken and no memory for more: the next thread reads
 * through the shared slot, and a grace period must still wait for it.
 * The main thread and the writer hold two of the static slots.
 */
TEST_T(cow_shared_slot_blocks_grace_period, 120)
{
	const int n = CONFIG_PX_COW_READER_SLOTS - 2;
	struct px_cow_hooks hooks = {.alloc = fail_alloc};
	struct stall s = {.gated = true};
	pthread_t *t, rt, wt;
	struct holders h;

	s.w = world_create(STALL_BOUND);
	t = calloc((size_t)n + 1, sizeof(*t));
	ASSERT_NOT_NULL(s.w);
	ASSERT_NOT_NULL(t);
	ASSERT_EQ(px_cow_thread_register(), 0);
	px_cow_set_hooks(&hooks);
	ASSERT_EQ(pthread_create(&wt, NULL, stall_writer, &s), 0);
	ASSERT_TRUE(wait_for(&s.writer_ready, 1));
	atomic_init(&h.failures, 0);
	pthread_barrier_init(&h.registered, NULL, (unsigned int)n + 1);
	pthread_barrier_init(&h.done, NULL, (unsigned int)n + 1);
	for (int i = 0; i < n; i++)
		ASSERT_EQ(pthread_create(&t[i], NULL, holder, &h), 0);
	pthread_barrier_wait(&h.registered);
	ASSERT_EQ(atomic_load(&h.failures), 0);

	ASSERT_EQ(pthread_create(&rt, NULL, unregistered_reader, &s), 0);
	ASSERT_TRUE(wait_for(&s.inside, 1));
	atomic_store(&s.go, 1);
	check_stalled(_metadata, &s);
	atomic_store(&s.release, 1);
	pthread_join(rt, NULL);
	pthread_join(wt, NULL);
	pthread_barrier_wait(&h.done);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	px_cow_destroy(s.w->c);
	EXPECT_EQ(atomic_load(&s.w->errors), 0);
	EXPECT_EQ(atomic_load(&s.w->torn), 0);
	for (int i = 0; i <= STALL_WRITES; i++)
		EXPECT_EQ(atomic_load(&s.w->frees[i]), 1);
	free(t);
	free(s.w);
}

TEST_HARNESS_MAIN
