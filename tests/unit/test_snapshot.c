// SPDX-License-Identifier: MIT
/*
 * Unit tests of snapshots: save and load round trips (values, flags, cas
 * ids, absolute TTLs; expired items dropped; the cas counter continues
 * above the file), the point-in-time image when the cache changes during
 * the walk (retained items, new items left out), the retention limit,
 * repeated and abandoned snapshots, and refusal of damaged files: every
 * bit flip and truncation tried is caught and nothing is stored.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <xxhash.h>

#include <patinox/cache.h>
#include <patinox/error.h>
#include <patinox/snapshot.h>

#define MIB        (1u << 20)
#define START_TIME 1700000000
#define NKEYS      2000
#define HDR_BYTES  80 /* file header, version 2 */

static int64_t fake_now = START_TIME;
static char dir[64];
static char path[128];
static struct px_cache *scratch; /* see load_bytes() */

static int64_t
clock_now(void *arg)
{
	return fake_now;
}

static const struct px_cache_hooks hooks = {.now = clock_now};

static struct px_cache *
make_with(size_t limit, enum px_cache_policy policy)
{
	struct px_cache_opts o;
	struct px_cache *c;

	px_cache_opts_init(&o);
	o.policy = policy;
	o.hooks = &hooks;
	o.region.backing = PX_REGION_4K;
	assert_int_equal(px_cache_create(&c, limit, &o), 0);
	return c;
}

static struct px_cache *
make_small_items(size_t limit, size_t item_max)
{
	struct px_cache_opts o;
	struct px_cache *c;

	px_cache_opts_init(&o);
	o.hooks = &hooks;
	o.item_max = item_max;
	o.region.backing = PX_REGION_4K;
	assert_int_equal(px_cache_create(&c, limit, &o), 0);
	return c;
}

static struct px_cache *
make(size_t limit)
{
	return make_with(limit, PX_CACHE_POLICY_DEFAULT);
}

static int
setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/pxsnap-unit-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/cache.snap", dir);
	fake_now = START_TIME;
	return 0;
}

static int
teardown(void **state)
{
	char tmp[160];

	unlink(path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	rmdir(dir);
	if (scratch)
		px_cache_destroy(scratch);
	scratch = NULL;
	return 0;
}

static void
key_of(char *k, unsigned i)
{
	snprintf(k, 16, "k%05u", i);
}

/* Generation @gen's value of key @i; lengths vary from 0 to ~3 KiB. */
static size_t
value_of(char *v, unsigned i, unsigned gen)
{
	size_t len = (i * 37u + gen * 11u) % 3000, j;

	for (j = 0; j < len; j++)
		v[j] = (char)('a' + (i + gen + j) % 26);
	return len;
}

static void
put(struct px_cache *c, unsigned i, unsigned gen)
{
	char k[16], v[4096];
	size_t len = value_of(v, i, gen);
	int64_t ttl = i % 3 == 0 ? 0 : 100 + i;

	key_of(k, i);
	assert_int_equal(
	    px_cache_set(c, k, strlen(k), v, len, i % 4 ? i : 0, ttl), 0);
}

/* What the cache holds for every key, to compare an image with. */
struct model {
	bool present[NKEYS];
	struct px_cache_info info[NKEYS];
	char *val[NKEYS];
	unsigned seen[NKEYS];
	unsigned extra;
};

static void
model_take(struct model *m, struct px_cache *c)
{
	char k[16], v[4096];
	unsigned i;

	memset(m, 0, sizeof(*m));
	for (i = 0; i < NKEYS; i++) {
		key_of(k, i);
		if (px_cache_get(c, k, strlen(k), v, sizeof(v), &m->info[i]))
			continue;
		m->present[i] = true;
		m->val[i] = malloc(m->info[i].vlen + 1);
		memcpy(m->val[i], v, m->info[i].vlen);
	}
}

static void
model_free(struct model *m)
{
	unsigned i;

	for (i = 0; i < NKEYS; i++)
		free(m->val[i]);
}

/* px_snapshot_item_fn: check one item of a file against the model. */
static int
model_check_item(void *arg, const struct px_cache_ref *it)
{
	struct model *m = arg;
	unsigned i;

	if (it->klen != 6 || sscanf(it->key, "k%05u", &i) != 1 || i >= NKEYS ||
	    !m->present[i]) {
		m->extra++;
		return 0;
	}
	m->seen[i]++;
	assert_int_equal(it->vlen, m->info[i].vlen);
	assert_memory_equal(it->value, m->val[i], it->vlen);
	assert_int_equal(it->flags, m->info[i].flags);
	assert_int_equal(it->cas, m->info[i].cas);
	assert_int_equal(it->exptime, m->info[i].exptime);
	return 0;
}

/* The file at @path holds exactly the model's items. */
static void
assert_image_is(const struct model *m0)
{
	struct model *m = (struct model *)m0;
	unsigned i;

	memset(m->seen, 0, sizeof(m->seen));
	m->extra = 0;
	assert_int_equal(px_snapshot_read(path, model_check_item, m, NULL), 0);
	assert_int_equal(m->extra, 0);
	for (i = 0; i < NKEYS; i++)
		assert_int_equal(m->seen[i], m->present[i] ? 1 : 0);
}

static void
fill(struct px_cache *c, unsigned gen)
{
	unsigned i;

	for (i = 0; i < NKEYS; i++)
		put(c, i, gen);
}

static void
small_blocks(struct px_snapshot_opts *o)
{
	px_snapshot_opts_init(o);
	o->block_bytes = 16 * 1024;
	o->walk_buckets = 8;
}

static void
test_snapshot_round_trip_keeps_everything(void **state)
{
	struct px_cache *c = make(32 * MIB), *d;
	struct px_snapshot_info si, li;
	struct model m;

	fill(c, 1);
	model_take(&m, c);
	assert_int_equal(px_snapshot_save(c, path, NULL, &si), 0);
	assert_int_equal(si.items, NKEYS);
	assert_true(si.uring);
	assert_image_is(&m);

	d = make(32 * MIB);
	assert_int_equal(px_snapshot_load(d, path, &li), 0);
	assert_int_equal(li.loaded, NKEYS);
	assert_int_equal(li.expired, 0);
	assert_int_equal(li.cas, si.cas);
	px_cache_destroy(c);
	/* The loaded cache's own image is the same set, byte for byte. */
	assert_int_equal(px_snapshot_save(d, path, NULL, NULL), 0);
	assert_image_is(&m);
	model_free(&m);
	px_cache_destroy(d);
}

static void
test_snapshot_load_drops_expired_and_keeps_absolute_ttls(void **state)
{
	struct px_cache *c = make(8 * MIB), *d;
	struct px_snapshot_info li;
	struct px_cache_info info;
	char v[8];

	assert_int_equal(px_cache_set(c, "short", 5, "s", 1, 0, 10), 0);
	assert_int_equal(px_cache_set(c, "long", 4, "l", 1, 0, 1000), 0);
	assert_int_equal(px_cache_set(c, "never", 5, "n", 1, 0, 0), 0);
	assert_int_equal(px_snapshot_save(c, path, NULL, NULL), 0);

	fake_now += 20; /* the restart takes 20 s: "short" has expired */
	d = make(8 * MIB);
	assert_int_equal(px_snapshot_load(d, path, &li), 0);
	assert_int_equal(li.items, 3);
	assert_int_equal(li.loaded, 2);
	assert_int_equal(li.expired, 1);
	assert_int_equal(px_cache_get(d, "short", 5, v, 8, NULL), -ENOENT);
	assert_int_equal(px_cache_get(d, "long", 4, v, 8, &info), 0);
	assert_int_equal(info.exptime, START_TIME + 1000);
	assert_int_equal(px_cache_get(d, "never", 5, v, 8, &info), 0);
	assert_int_equal(info.exptime, 0);
	px_cache_destroy(c);
	px_cache_destroy(d);
}

static void
test_snapshot_cas_continues_above_the_file(void **state)
{
	struct px_cache *c = make(8 * MIB), *d;
	uint64_t before, after;
	unsigned i;

	for (i = 0; i < 50; i++)
		put(c, i, 0);
	assert_int_equal(
	    px_cache_store(c, PX_CACHE_SET, "x", 1, "1", 1, 0, 0, 0, &before),
	    0);
	/* Deleted: its cas id is in no item, but the file remembers it. */
	assert_int_equal(px_cache_delete(c, "x", 1), 0);
	assert_int_equal(px_snapshot_save(c, path, NULL, NULL), 0);
	d = make(8 * MIB);
	assert_int_equal(px_snapshot_load(d, path, NULL), 0);
	assert_int_equal(
	    px_cache_store(d, PX_CACHE_SET, "y", 1, "1", 1, 0, 0, 0, &after),
	    0);
	assert_true(after > before);
	px_cache_destroy(c);
	px_cache_destroy(d);
}

static void
get_is(struct px_cache *c, const char *key, int want)
{
	char v[8];

	assert_int_equal(px_cache_get(c, key, strlen(key), v, sizeof(v), NULL),
			 want);
}

static void
test_snapshot_pending_flush_survives_a_restart(void **state)
{
	struct px_cache *c = make(8 * MIB), *d, *e;
	struct px_snapshot_info si, li;
	uint64_t cas;

	assert_int_equal(px_cache_set(c, "a", 1, "1", 1, 0, 0), 0);
	assert_int_equal(px_cache_flush_all(c, 100), 0);
	/* Stored after the flush_all but before its time: dies with it. */
	assert_int_equal(px_cache_set(c, "b", 1, "2", 1, 0, 0), 0);
	assert_int_equal(px_snapshot_save(c, path, NULL, &si), 0);
	assert_int_equal(si.flush_at, START_TIME + 100);

	fake_now += 10; /* restart before the flush is due */
	d = make(8 * MIB);
	assert_int_equal(px_snapshot_load(d, path, &li), 0);
	assert_int_equal(li.loaded, 2);
	assert_int_equal(li.flushed, 0);
	assert_int_equal(li.flush_at, START_TIME + 100);
	get_is(d, "a", 0);
	fake_now = START_TIME + 99;
	assert_int_equal(px_cache_set(d, "c", 1, "3", 1, 0, 0), 0);
	fake_now = START_TIME + 100; /* due: all three stored before it */
	get_is(d, "a", -ENOENT);
	get_is(d, "b", -ENOENT);
	get_is(d, "c", -ENOENT);
	assert_int_equal(px_cache_set(d, "d", 1, "4", 1, 0, 0), 0);
	get_is(d, "d", 0);

	/* A restart after it was due stores nothing; cas ids go on. */
	e = make(8 * MIB);
	assert_int_equal(px_snapshot_load(e, path, &li), 0);
	assert_int_equal(li.loaded, 0);
	assert_int_equal(li.flushed, 2);
	assert_int_equal(px_cache_items(e), 0);
	assert_int_equal(
	    px_cache_store(e, PX_CACHE_SET, "e", 1, "5", 1, 0, 0, 0, &cas), 0);
	assert_true(cas > si.cas);
	get_is(e, "e", 0);

	/* Once the flush has happened, a snapshot has none pending. */
	assert_int_equal(px_snapshot_save(c, path, NULL, &si), 0);
	assert_int_equal(si.flush_at, 0);
	assert_int_equal(si.items, 0);
	px_cache_destroy(c);
	px_cache_destroy(d);
	px_cache_destroy(e);
}

/* Progress callback: change the whole cache after the first block. */
struct churn {
	struct px_cache *c;
	unsigned calls;
	int nested;
};

static int
churn_once(void *arg, const struct px_snapshot_info *so_far)
{
	struct churn *ch = arg;
	char k[16], other[160];
	unsigned i;

	if (ch->calls++)
		return 0;
	snprintf(other, sizeof(other), "%s/nested.snap", dir);
	ch->nested = px_snapshot_save(ch->c, other, NULL, NULL);
	for (i = 0; i < NKEYS; i++) {
		key_of(k, i);
		if (i % 5 == 0)
			px_cache_delete(ch->c, k, strlen(k));
		else
			put(ch->c, i, 7); /* replace */
	}
	for (i = 0; i < 100; i++) {
		snprintf(k, sizeof(k), "new%u", i);
		px_cache_set(ch->c, k, strlen(k), "n", 1, 0, 0);
	}
	return 0;
}

/*
 * Once with the spill buffer (removed image items are copied out at
 * once) and once without it (the cache keeps them until the end).
 */
static void
instant_under_changes(bool spill)
{
	struct px_cache *c = make(64 * MIB);
	struct churn ch = {.c = c};
	struct px_snapshot_opts o;
	struct px_snapshot_info si;
	struct model m;
	char k[16];
	unsigned i;

	fill(c, 1);
	model_take(&m, c);
	small_blocks(&o);
	o.progress = churn_once;
	o.progress_arg = &ch;
	o.spill_bytes = spill ? 0 : 1;
	assert_int_equal(px_snapshot_save(c, path, &o, &si), 0);
	assert_int_equal(ch.nested, -EBUSY); /* one snapshot at a time */
	/* Most keys changed after block 0, before the walk reached them. */
	assert_true((spill ? si.spilled : si.retained) > NKEYS / 2);
	assert_int_equal(spill ? si.retained : si.spilled, 0);
	assert_int_equal(si.items, NKEYS);
	assert_image_is(&m);
	model_free(&m);

	/* The next snapshot sees the new state (claims were reset). */
	for (i = 0; i < 100; i++) {
		snprintf(k, sizeof(k), "new%u", i);
		assert_int_equal(px_cache_delete(c, k, strlen(k)), 0);
	}
	model_take(&m, c);
	assert_int_equal(px_snapshot_save(c, path, NULL, &si), 0);
	assert_int_equal(si.items, NKEYS - NKEYS / 5);
	assert_image_is(&m);
	model_free(&m);
	px_cache_destroy(c);
}

static void
test_snapshot_image_is_the_instant_while_writers_change_it(void **state)
{
	instant_under_changes(true);
	teardown(state);
	setup(state);
	instant_under_changes(false);
}

static int
churn_all(void *arg, const struct px_snapshot_info *so_far)
{
	struct churn *ch = arg;
	unsigned i;

	for (i = 0; i < NKEYS; i++)
		put(ch->c, i, 9 + ch->calls);
	ch->calls++;
	return 0;
}

static void
test_snapshot_retention_limit_fails_and_keeps_the_old_file(void **state)
{
	struct px_cache *c = make(64 * MIB);
	struct churn ch = {.c = c};
	struct px_snapshot_opts o;
	struct model m;

	fill(c, 1);
	model_take(&m, c);
	assert_int_equal(px_snapshot_save(c, path, NULL, NULL), 0);
	small_blocks(&o);
	o.spill_bytes = 1; /* no spill: the cache keeps removed items */
	o.retain_limit = 64 * 1024;
	o.progress = churn_all;
	o.progress_arg = &ch;
	assert_int_equal(px_snapshot_save(c, path, &o, NULL), -PX_ERETAIN);
	assert_image_is(&m); /* the previous snapshot, untouched */
	model_free(&m);

	model_take(&m, c);
	assert_int_equal(px_snapshot_save(c, path, NULL, NULL), 0);
	assert_image_is(&m);
	model_free(&m);
	px_cache_destroy(c);
}

/* Progress callback: store @bytes of new items, which must evict. */
struct flood {
	struct px_cache *c;
	size_t bytes;
	unsigned calls, failed;
};

static int
flood_once(void *arg, const struct px_snapshot_info *so_far)
{
	struct flood *f = arg;
	char k[24], v[1000];
	size_t done;
	unsigned i = 0;

	if (f->calls++)
		return 0;
	memset(v, 'f', sizeof(v));
	for (done = 0; done < f->bytes; done += sizeof(v)) {
		snprintf(k, sizeof(k), "flood%u", i++);
		if (px_cache_set(f->c, k, strlen(k), v, sizeof(v), 0, 0))
			f->failed++;
	}
	return 0;
}

static void
test_snapshot_full_cache_keeps_storing_during_a_snapshot(void **state)
{
	/* LRU evicts the oldest items: those of the image. */
	struct px_cache *c = make_with(4 * MIB, PX_CACHE_POLICY_LRU);
	struct flood f = {.c = c};
	struct px_snapshot_opts o;
	struct px_snapshot_info si;
	struct px_cache_memory mem;
	struct model m;

	fill(c, 4); /* about 3 MiB: the cache is nearly full */
	px_cache_memory(c, &mem);
	model_take(&m, c);
	small_blocks(&o);
	o.progress = flood_once;
	o.progress_arg = &f;
	/* Twice the cache: every image item evicted before the walk reached
	 * it is copied out and freed, so nothing is retained or refused. */
	f.bytes = 8 * MIB;
	assert_int_equal(px_snapshot_save(c, path, &o, &si), 0);
	assert_int_equal(f.failed, 0);
	assert_true(si.spilled > 0);
	assert_int_equal(si.retained, 0);
	assert_image_is(&m);

	/* Without spill: victims are retained in the cache, which must evict
	 * more; past the retention limit the snapshot gives up and the
	 * stores still succeed. */
	f.calls = 0;
	o.spill_bytes = 1;
	assert_int_equal(px_snapshot_save(c, path, &o, NULL), -PX_ERETAIN);
	assert_int_equal(f.failed, 0);
	assert_image_is(&m); /* the previous file */
	model_free(&m);
	px_cache_destroy(c);
}

static int
abandon(void *arg, const struct px_snapshot_info *so_far)
{
	return -ECANCELED;
}

static void
test_snapshot_repeated_and_abandoned_snapshots_stay_complete(void **state)
{
	struct px_cache *c = make(32 * MIB);
	struct px_snapshot_opts o;
	struct model m;
	int round;

	fill(c, 1);
	small_blocks(&o);
	for (round = 0; round < 5; round++) {
		o.progress = round % 2 ? abandon : NULL;
		if (round % 2) {
			assert_int_equal(px_snapshot_save(c, path, &o, NULL),
					 -ECANCELED);
			continue;
		}
		put(c, (unsigned)round, 20 + (unsigned)round);
		model_take(&m, c);
		assert_int_equal(px_snapshot_save(c, path, &o, NULL), 0);
		assert_image_is(&m);
		model_free(&m);
	}
	px_cache_destroy(c);
}

static void
test_snapshot_pwrite_fallback_writes_the_same_format(void **state)
{
	struct px_cache *c = make(32 * MIB);
	struct px_snapshot_opts o;
	struct px_snapshot_info si;
	struct model m;

	fill(c, 3);
	model_take(&m, c);
	small_blocks(&o);
	o.no_uring = true;
	assert_int_equal(px_snapshot_save(c, path, &o, &si), 0);
	assert_false(si.uring);
	assert_image_is(&m);
	model_free(&m);
	px_cache_destroy(c);
}

/* Priority options: the image is the same, the thread's policy is back. */
static void
test_snapshot_low_priority_save_restores_the_thread(void **state)
{
	struct px_cache *c = make(32 * MIB);
	struct px_snapshot_opts o;
	struct sched_param p0, p1;
	struct model m;
	int pol0, pol1, nice0, nice1;

	fill(c, 3);
	model_take(&m, c);
	assert_int_equal(pthread_getschedparam(pthread_self(), &pol0, &p0), 0);
	errno = 0;
	nice0 = getpriority(PRIO_PROCESS, (id_t)gettid());
	small_blocks(&o);
	o.idle_priority = true;
	o.nice = 19;
	assert_int_equal(px_snapshot_save(c, path, &o, NULL), 0);
	assert_image_is(&m);
	assert_int_equal(pthread_getschedparam(pthread_self(), &pol1, &p1), 0);
	assert_int_equal(pol1, pol0);
	nice1 = getpriority(PRIO_PROCESS, (id_t)gettid());
	/* Raising the priority back needs CAP_SYS_NICE or RLIMIT_NICE. */
	if (nice1 != nice0)
		assert_int_not_equal(geteuid(), 0);
	setpriority(PRIO_PROCESS, (id_t)gettid(), nice0);
	model_free(&m);
	px_cache_destroy(c);
}

static int
same_big_value(void *arg, const struct px_cache_ref *it)
{
	unsigned *seen = arg;
	size_t j;

	assert_int_equal(it->vlen, it->flags);
	for (j = 0; j < it->vlen; j++)
		if (((const unsigned char *)it->value)[j] !=
		    (j * 7 + it->flags) % 251)
			fail();
	(*seen)++;
	return 0;
}

static void
test_snapshot_values_larger_than_a_block(void **state)
{
	struct px_cache *c = make(32 * MIB), *d;
	struct px_snapshot_opts o;
	struct px_snapshot_info si, li;
	size_t len = 1000 * 1000, j;
	unsigned char *v = malloc(len + 8);
	unsigned i, seen = 0;
	char k[16];

	for (i = 0; i < 6; i++) {
		size_t n = len + i; /* flags tell the length */

		for (j = 0; j < n; j++)
			v[j] = (unsigned char)((j * 7 + n) % 251);
		key_of(k, i);
		assert_int_equal(
		    px_cache_set(c, k, strlen(k), v, n, (uint32_t)n, 0), 0);
	}
	small_blocks(&o); /* 16 KiB blocks: every item is larger */
	assert_int_equal(px_snapshot_save(c, path, &o, &si), 0);
	assert_int_equal(si.items, 6);
	assert_int_equal(px_snapshot_read(path, same_big_value, &seen, NULL),
			 0);
	assert_int_equal(seen, 6);
	d = make(32 * MIB);
	assert_int_equal(px_snapshot_load(d, path, &li), 0);
	assert_int_equal(li.loaded, 6);
	px_cache_destroy(d);

	/* A cache with a smaller item_max skips the large ones, counted. */
	assert_int_equal(px_cache_set(c, "small", 5, "s", 1, 0, 0), 0);
	assert_int_equal(px_snapshot_save(c, path, &o, &si), 0);
	d = make_small_items(32 * MIB, len + 2);
	assert_int_equal(px_snapshot_load(d, path, &li), 0);
	assert_int_equal(li.loaded, 4); /* lengths len .. len + 2, "small" */
	assert_int_equal(li.skipped, 3);
	assert_int_equal(px_cache_items(d), 4);
	px_cache_destroy(c);
	px_cache_destroy(d);
	free(v);
}

/* ---- Damaged files ------------------------------------------------------ */

static size_t
file_read(const char *p, char **out)
{
	struct stat st;
	int fd = open(p, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	*out = malloc((size_t)st.st_size);
	assert_int_equal(read(fd, *out, (size_t)st.st_size), st.st_size);
	close(fd);
	return (size_t)st.st_size;
}

static void
file_write(const char *p, const char *data, size_t len)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* Load @data as a file: it must be refused and store nothing. */
/*
 * Load @data into an empty cache; a refused file must leave it empty.
 * The cache is reused while loads are refused (creating one per try made
 * the thousands of tries below slow).
 */

static int
load_bytes(const char *data, size_t len)
{
	char bad[160];
	int err;

	if (!scratch)
		scratch = make(8 * MIB);
	snprintf(bad, sizeof(bad), "%s/bad.snap", dir);
	file_write(bad, data, len);
	err = px_snapshot_load(scratch, bad, NULL);
	if (err) {
		assert_int_equal(px_cache_items(scratch), 0);
	} else {
		px_cache_destroy(scratch);
		scratch = NULL;
	}
	unlink(bad);
	return err;
}

static char *
small_file(size_t *len)
{
	struct px_cache *c = make(8 * MIB);
	struct px_snapshot_opts o;
	char *data;
	unsigned i;

	for (i = 0; i < 60; i++)
		put(c, i, 5);
	small_blocks(&o);
	o.block_bytes = 4096;
	assert_int_equal(px_snapshot_save(c, path, &o, NULL), 0);
	px_cache_destroy(c);
	*len = file_read(path, &data);
	return data;
}

static void
test_snapshot_bit_flips_are_detected(void **state)
{
	size_t len, pos;
	char *data = small_file(&len);
	int err, bit;

	assert_int_equal(load_bytes(data, len), 0);
	for (pos = 0; pos < len; pos += pos < HDR_BYTES ? 1 : 41) {
		for (bit = 0; bit < 8; bit += pos < HDR_BYTES ? 1 : 3) {
			data[pos] ^= (char)(1 << bit);
			err = load_bytes(data, len);
			data[pos] ^= (char)(1 << bit);
			if (pos >= 8 && pos < 12) /* the version field */
				assert_int_equal(err, -PX_EVERSION);
			else
				assert_int_equal(err, -PX_ECORRUPT);
		}
	}
	free(data);
}

static void
test_snapshot_truncation_and_extension_are_detected(void **state)
{
	size_t len, cut;
	char *data = small_file(&len);

	for (cut = 0; cut < len; cut += cut < 200 ? 1 : 97)
		assert_int_equal(load_bytes(data, cut), -PX_ECORRUPT);
	data = realloc(data, len + 1);
	data[len] = 0;
	assert_int_equal(load_bytes(data, len + 1), -PX_ECORRUPT);
	free(data);
}

static void
test_snapshot_foreign_files_are_refused(void **state)
{
	size_t len;
	char *data = small_file(&len);
	uint32_t v = PX_SNAPSHOT_VERSION + 1;
	const char *text = "VALUE foo 0 3\r\nbar\r\nEND\r\n";
	struct px_cache *d = make(8 * MIB);

	memcpy(data + 8, &v, sizeof(v)); /* a future version */
	assert_int_equal(load_bytes(data, len), -PX_EVERSION);
	assert_int_equal(load_bytes(text, strlen(text)), -PX_ECORRUPT);
	assert_int_equal(load_bytes("", 0), -PX_ECORRUPT);
	assert_int_equal(px_snapshot_load(d, "/nonexistent/snap", NULL),
			 -ENOENT);
	assert_non_null(
	    strstr(px_strerror_in(PX_PART_SNAPSHOT, -PX_ECORRUPT), "snapshot"));
	assert_non_null(
	    strstr(px_strerror_in(PX_PART_SNAPSHOT, -PX_EVERSION), "version"));
	px_cache_destroy(d);
	free(data);
}

/* Rewrite the header of a version 2 file as version 1 wrote it. */
static void
make_v1(char *data)
{
	uint32_t v = 1;
	uint64_t check;

	memcpy(data + 8, &v, sizeof(v));
	check = XXH3_64bits(data, 56);
	memcpy(data + 56, &check, sizeof(check));
	memset(data + 64, 0, HDR_BYTES - 64);
}

static void
test_snapshot_version1_files_still_load(void **state)
{
	struct px_cache *d = make(8 * MIB);
	struct px_snapshot_info li;
	size_t len;
	char *data = small_file(&len), bad[160];

	make_v1(data);
	snprintf(bad, sizeof(bad), "%s/v1.snap", dir);
	file_write(bad, data, len);
	assert_int_equal(px_snapshot_load(d, bad, &li), 0);
	assert_int_equal(li.loaded, 60);
	assert_int_equal(li.flush_at, 0);
	assert_int_equal(px_cache_items(d), 60);
	data[60] ^= 1; /* its checksum is checked too */
	assert_int_equal(load_bytes(data, len), -PX_ECORRUPT);
	data[60] ^= 1;
	data[70] = 1; /* and the zeros after its 64 bytes */
	assert_int_equal(load_bytes(data, len), -PX_ECORRUPT);
	unlink(bad);
	px_cache_destroy(d);
	free(data);
}

static void
test_snapshot_failed_save_keeps_the_previous_file(void **state)
{
	struct px_cache *c = make(8 * MIB);
	struct px_snapshot_opts o;
	struct model m;
	char tmp[160];

	fill(c, 2);
	model_take(&m, c);
	assert_int_equal(px_snapshot_save(c, path, NULL, NULL), 0);
	put(c, 1, 99);
	small_blocks(&o);
	o.progress = abandon;
	assert_int_equal(px_snapshot_save(c, path, &o, NULL), -ECANCELED);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_equal(access(tmp, F_OK), -1); /* removed */
	assert_image_is(&m);
	model_free(&m);
	px_cache_destroy(c);
}

/* info.bytes is the file's size, also for an empty cache (a header). */
static void
test_snapshot_info_bytes_is_the_file_size(void **state)
{
	struct px_cache *c = make(8 * MIB);
	struct px_snapshot_info si;
	struct stat st;

	assert_int_equal(px_snapshot_save(c, path, NULL, &si), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(si.items, 0);
	assert_true(st.st_size > 0);
	assert_int_equal(si.bytes, (uint64_t)st.st_size);
	fill(c, 3);
	assert_int_equal(px_snapshot_save(c, path, NULL, &si), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(si.bytes, (uint64_t)st.st_size);
	px_cache_destroy(c);
}

/* Load progress: count the calls, give up at call @stop_at (0: never). */
struct load_watch {
	unsigned calls, stop_at;
	uint64_t last_blocks;
};

static int
watch_load(void *arg, const struct px_snapshot_info *so_far)
{
	struct load_watch *w = arg;

	w->calls++;
	w->last_blocks = so_far->blocks;
	return w->calls == w->stop_at ? -ECANCELED : 0;
}

static void
test_snapshot_load_progress_can_abandon_the_load(void **state)
{
	struct px_cache *c = make(32 * MIB), *d;
	uint64_t m[PX_CACHE_METRIC_COUNT];
	struct load_watch w = {0};
	struct px_snapshot_opts o;
	struct px_snapshot_info si, li;

	fill(c, 1);
	small_blocks(&o);
	assert_int_equal(px_snapshot_save(c, path, &o, &si), 0);
	assert_true(si.blocks > 4);
	px_cache_destroy(c);

	/* Called after every block of both passes. */
	px_snapshot_opts_init(&o);
	o.progress = watch_load;
	o.progress_arg = &w;
	d = make(32 * MIB);
	assert_int_equal(px_snapshot_load_with(d, path, &o, &li), 0);
	assert_int_equal(li.loaded, NKEYS);
	assert_int_equal(w.calls, 2 * si.blocks);
	assert_int_equal(w.last_blocks, si.blocks);
	px_cache_destroy(d);

	/* Given up in the verifying pass: nothing stored. */
	w = (struct load_watch){.stop_at = 2};
	d = make(32 * MIB);
	assert_int_equal(px_snapshot_load_with(d, path, &o, &li), -ECANCELED);
	assert_int_equal(w.calls, 2);
	px_cache_metrics(d, m);
	assert_int_equal(m[PX_CACHE_M_items], 0);
	px_cache_destroy(d);

	/* Given up in the storing pass after one block: part stored. */
	w = (struct load_watch){.stop_at = (unsigned)si.blocks + 1};
	d = make(32 * MIB);
	assert_int_equal(px_snapshot_load_with(d, path, &o, &li), -ECANCELED);
	assert_int_equal(w.calls, si.blocks + 1);
	assert_true(li.loaded > 0 && li.loaded < NKEYS);
	px_cache_metrics(d, m);
	assert_int_equal(m[PX_CACHE_M_items], li.loaded);
	px_cache_destroy(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	    T(test_snapshot_round_trip_keeps_everything),
	    T(test_snapshot_load_drops_expired_and_keeps_absolute_ttls),
	    T(test_snapshot_cas_continues_above_the_file),
	    T(test_snapshot_pending_flush_survives_a_restart),
	    T(test_snapshot_image_is_the_instant_while_writers_change_it),
	    T(test_snapshot_retention_limit_fails_and_keeps_the_old_file),
	    T(test_snapshot_repeated_and_abandoned_snapshots_stay_complete),
	    T(test_snapshot_full_cache_keeps_storing_during_a_snapshot),
	    T(test_snapshot_pwrite_fallback_writes_the_same_format),
	    T(test_snapshot_low_priority_save_restores_the_thread),
	    T(test_snapshot_values_larger_than_a_block),
	    T(test_snapshot_bit_flips_are_detected),
	    T(test_snapshot_truncation_and_extension_are_detected),
	    T(test_snapshot_foreign_files_are_refused),
	    T(test_snapshot_version1_files_still_load),
	    T(test_snapshot_failed_save_keeps_the_previous_file),
	    T(test_snapshot_info_bytes_is_the_file_size),
	    T(test_snapshot_load_progress_can_abandon_the_load),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
