// SPDX-License-Identifier: MIT
/*
 * Model check of point-in-time snapshots under concurrent writers: two
 * threads overwrite their own keys with increasing sequence numbers and
 * log the cas id of every store.  A snapshot taken meanwhile must hold,
 * for every key, exactly the last value stored with a cas id at or below
 * the snapshot's instant, and nothing stored after it.  The writers are
 * made to run during the walk (the progress callback waits for them), so
 * image items are replaced before the walk reaches them and must come
 * from the retained set.  Several rounds check that claim marks reset.
 * Meant to run under SANITIZE=thread as well.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <patinox/cache.h>
#include <patinox/snapshot.h>

#include "harness.h"

#define WRITERS 2
#define KEYS    2000 /* per writer */
#define LOG_MAX (1u << 21)
#define ROUNDS  3
#define VAL_LEN 48

struct op {
	uint64_t cas;
	uint32_t seq;
};

struct writer {
	struct px_cache *c;
	unsigned id;
	struct op *log; /* log[seq - 1] */
	_Atomic uint32_t done;
	_Atomic bool *stop;
};

static void
key_of(char *k, unsigned w, uint32_t seq)
{
	snprintf(k, 24, "w%u:%u", w, seq % KEYS);
}

static size_t
value_of(char *v, uint32_t seq)
{
	return (size_t)snprintf(v, VAL_LEN, "seq=%010u-%030u", seq, seq);
}

static void *
write_loop(void *arg)
{
	struct writer *w = arg;
	char k[24], v[VAL_LEN];
	uint32_t seq;

	for (seq = 1; seq <= LOG_MAX && !atomic_load(w->stop); seq++) {
		size_t len = value_of(v, seq);

		key_of(k, w->id, seq);
		if (px_cache_store(w->c, PX_CACHE_SET, k, strlen(k), v, len,
				   seq, 0, 0, &w->log[seq - 1].cas))
			break;
		w->log[seq - 1].seq = seq;
		atomic_store_explicit(&w->done, seq, memory_order_release);
	}
	return NULL;
}

struct world {
	struct writer w[WRITERS];
	uint32_t expect[WRITERS][KEYS]; /* seq, 0 for absent */
	uint64_t expect_cas[WRITERS][KEYS];
	unsigned seen[WRITERS][KEYS];
	unsigned bad;
	bool waited;
};

static uint32_t
done_of(struct world *wd, unsigned i)
{
	return atomic_load_explicit(&wd->w[i].done, memory_order_acquire);
}

/* Wait until every writer has stored @n more values (all its keys). */
static void
wait_each(struct world *wd, uint32_t n)
{
	uint32_t start[WRITERS];
	unsigned i;

	for (i = 0; i < WRITERS; i++)
		start[i] = done_of(wd, i);
	for (i = 0; i < WRITERS; i++)
		while (done_of(wd, i) < start[i] + n)
			usleep(1000);
}

/* After the first block: every writer overwrites all its keys. */
static int
wait_for_writers(void *arg, const struct px_snapshot_info *so_far)
{
	struct world *wd = arg;

	if (wd->waited)
		return 0;
	wd->waited = true;
	wait_each(wd, KEYS);
	return 0;
}

/*
 * Wait until each writer has logged a store after the instant: a store
 * committed before it may still be on its way out of px_cache_store()
 * (preempted after the unlock) and missing from the log.
 */
static void
wait_past(struct world *wd, uint64_t cas)
{
	unsigned i;
	uint32_t n;

	for (i = 0; i < WRITERS; i++) {
		for (;;) {
			n = atomic_load_explicit(&wd->w[i].done,
						 memory_order_acquire);
			if ((n && wd->w[i].log[n - 1].cas > cas) ||
			    n == LOG_MAX)
				break;
			usleep(1000);
		}
	}
}

/* The model: the last store of each key with cas <= the instant. */
static void
model(struct world *wd, uint64_t cas)
{
	unsigned i;
	uint32_t s, n;

	wait_past(wd, cas);
	memset(wd->expect, 0, sizeof(wd->expect));
	for (i = 0; i < WRITERS; i++) {
		n = atomic_load(&wd->w[i].done);
		for (s = 1; s <= n; s++) {
			if (wd->w[i].log[s - 1].cas > cas)
				break; /* a writer's cas ids grow */
			wd->expect[i][s % KEYS] = s;
			wd->expect_cas[i][s % KEYS] = wd->w[i].log[s - 1].cas;
		}
	}
}

static int
check_item(void *arg, const struct px_cache_ref *it)
{
	struct world *wd = arg;
	char k[24], v[VAL_LEN];
	unsigned w, slot;
	uint32_t seq;

	if (sscanf(it->key, "w%u:%u", &w, &slot) != 2 || w >= WRITERS ||
	    slot >= KEYS) {
		wd->bad++;
		return 0;
	}
	seq = wd->expect[w][slot];
	key_of(k, w, seq);
	if (!seq || it->cas != wd->expect_cas[w][slot] || it->flags != seq ||
	    it->vlen != value_of(v, seq) || memcmp(it->value, v, it->vlen) ||
	    it->klen != strlen(k) || memcmp(it->key, k, it->klen)) {
		if (!wd->bad) /* the first is enough to debug */
			TH_LOG("bad: %.*s cas %lu flags %u, expected seq %u "
			       "cas %lu",
			       (int)it->klen, (const char *)it->key,
			       (unsigned long)it->cas, it->flags, seq,
			       (unsigned long)wd->expect_cas[w][slot]);
		wd->bad++;
	}
	wd->seen[w][slot]++;
	return 0;
}

static unsigned
missing(struct world *wd)
{
	unsigned i, s, n = 0;

	for (i = 0; i < WRITERS; i++)
		for (s = 0; s < KEYS; s++)
			n += wd->seen[i][s] != (wd->expect[i][s] ? 1u : 0u);
	return n;
}

TEST_T(snapshot_model_image_is_exactly_the_committed_prefix, 120)
{
	static struct world wd;
	static _Atomic bool stop;
	pthread_t th[WRITERS];
	struct px_cache *c;
	struct px_snapshot_opts o;
	struct px_snapshot_info si;
	char path[] = "/tmp/pxsnap-model-XXXXXX";
	int fd = mkstemp(path), round;
	unsigned i;

	ASSERT_GE(fd, 0);
	close(fd);
	ASSERT_EQ(px_cache_create(&c, 64u << 20, NULL), 0);
	for (i = 0; i < WRITERS; i++) {
		wd.w[i] = (struct writer){.c = c, .id = i, .stop = &stop};
		wd.w[i].log = calloc(LOG_MAX, sizeof(struct op));
		ASSERT_NE(wd.w[i].log, NULL);
		ASSERT_EQ(pthread_create(&th[i], NULL, write_loop, &wd.w[i]),
			  0);
	}
	px_snapshot_opts_init(&o);
	o.block_bytes = 16 * 1024;
	o.walk_buckets = 16;
	o.progress = wait_for_writers;
	o.progress_arg = &wd;
	for (round = 0; round < ROUNDS; round++) {
		wait_each(&wd, KEYS);
		wd.waited = false;
		o.spill_bytes = round == 1 ? 1 : 0; /* round 1: cache keeps */
		ASSERT_EQ(px_snapshot_save(c, path, &o, &si), 0);
		model(&wd, si.cas);
		memset(wd.seen, 0, sizeof(wd.seen));
		wd.bad = 0;
		ASSERT_EQ(px_snapshot_read(path, check_item, &wd, NULL), 0);
		EXPECT_EQ(wd.bad, 0);
		EXPECT_EQ(missing(&wd), 0);
		EXPECT_GT(round == 1 ? si.retained : si.spilled, 0);
		TH_LOG(
		    "round %d: %lu items, %lu retained, %lu spilled, cas %lu",
		    round, (unsigned long)si.items, (unsigned long)si.retained,
		    (unsigned long)si.spilled, (unsigned long)si.cas);
	}
	atomic_store(&stop, true);
	for (i = 0; i < WRITERS; i++) {
		pthread_join(th[i], NULL);
		free(wd.w[i].log);
	}
	px_cache_destroy(c);
	unlink(path);
}

TEST_HARNESS_MAIN
