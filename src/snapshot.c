// SPDX-License-Identifier: MIT
/*
 * px_snapshot_save(): a point-in-time image of a cache, written while the
 * cache keeps serving.  The cache fixes the instant in constant time
 * (px_cache_snap_begin) and hands over each item of the image once
 * (px_cache_snap_walk, inside short read-side sections); this file copies
 * the items into checksummed blocks and gives sealed blocks to the block
 * writer (snapshot_io.c), keeping several in flight while the walk goes
 * on.  The file is "<path>.tmp" until every block, the header (written
 * last, at offset 0) and an fsync are done; then it is renamed over
 * <path> and the directory is fsynced, so <path> is always either the
 * previous complete snapshot or the new one.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include <patinox/error.h>

#include "snapshot_int.h"

/*
 * Image items that writers remove during the walk, copied out under the
 * cache's writer lock (px_cache_snap_spill) and moved into the block
 * stream by the saver.  Lock order: the cache's writer lock, then @lock.
 */
struct spill {
	pthread_mutex_t lock;
	char *data;
	size_t len, cap, limit;
	uint32_t items;
	char *spare; /* the saver's: swapped in by drain_spill() */
	size_t spare_cap;
};

struct saver {
	struct px_cache *c;
	struct spill spill;
	struct px_snapshot_opts o;
	struct pxs_io io;
	struct pxs_buf *bufs;
	unsigned nbufs;
	struct pxs_buf *cur;
	uint64_t off; /* where the next block goes */
	struct px_snapshot_info info;
};

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
pxs_header_check(const struct pxs_header *h)
{
	return XXH3_64bits(h, offsetof(struct pxs_header, check));
}

uint64_t
pxs_header_v1_check(const struct pxs_header_v1 *h)
{
	return XXH3_64bits(h, offsetof(struct pxs_header_v1, check));
}

uint64_t
pxs_block_check(const struct pxs_block *b, const void *payload)
{
	return XXH3_64bits_withSeed(
	    payload, b->payload,
	    XXH3_64bits(b, offsetof(struct pxs_block, check)));
}

void
px_snapshot_opts_init(struct px_snapshot_opts *opts)
{
	*opts = (struct px_snapshot_opts){
	    .block_bytes = (size_t)CONFIG_PX_SNAPSHOT_BLOCK_KB * 1024,
	    .queue_depth = CONFIG_PX_SNAPSHOT_QUEUE_DEPTH,
	    .walk_buckets = CONFIG_PX_SNAPSHOT_WALK_BUCKETS,
	    .spill_bytes = (size_t)CONFIG_PX_SNAPSHOT_SPILL_KB * 1024,
	};
}

static void
fill_defaults(struct px_snapshot_opts *o)
{
	struct px_snapshot_opts d;

	px_snapshot_opts_init(&d);
	if (!o->block_bytes)
		o->block_bytes = d.block_bytes;
	if (o->queue_depth < 2)
		o->queue_depth = d.queue_depth;
	if (!o->walk_buckets)
		o->walk_buckets = d.walk_buckets;
	if (!o->spill_bytes)
		o->spill_bytes = d.spill_bytes;
}

/* ---- Buffers ---------------------------------------------------------- */

static int
bufs_create(struct saver *s)
{
	unsigned i;

	s->nbufs = s->o.queue_depth;
	s->bufs = calloc(s->nbufs, sizeof(*s->bufs));
	if (!s->bufs)
		return -ENOMEM;
	for (i = 0; i < s->nbufs; i++) {
		s->bufs[i].cap =
		    pxs_align_up(s->o.block_bytes + s->o.block_bytes / 4);
		if (posix_memalign((void **)&s->bufs[i].data, PXS_ALIGN,
				   s->bufs[i].cap))
			return -ENOMEM;
	}
	return 0;
}

static void
bufs_destroy(struct saver *s)
{
	unsigned i;

	for (i = 0; s->bufs && i < s->nbufs; i++)
		free(s->bufs[i].data);
	free(s->bufs);
}

static void
buf_reset(struct pxs_buf *b)
{
	b->len = PXS_BLK_BYTES;
	b->items = 0;
}

/* A buffer with no write in flight, waiting for one if need be. */
static int
next_buf(struct saver *s)
{
	unsigned i;
	int err;

	for (;;) {
		for (i = 0; i < s->nbufs; i++) {
			if (!s->bufs[i].busy) {
				s->cur = &s->bufs[i];
				buf_reset(s->cur);
				return 0;
			}
		}
		err = pxs_io_reap(&s->io, true);
		if (err)
			return err;
	}
}

/* ---- Records ------------------------------------------------------------ */

/* Room for @need more bytes, keeping the alignment O_DIRECT needs. */
static int
grow(struct pxs_buf *b, size_t need)
{
	size_t cap = b->cap * 2 > b->len + need ? b->cap * 2 : b->len + need;
	char *p;

	cap = pxs_align_up(cap);
	if (posix_memalign((void **)&p, PXS_ALIGN, cap))
		return -ENOMEM;
	memcpy(p, b->data, b->len);
	free(b->data);
	b->data = p;
	b->cap = cap;
	return 0;
}

/* Zero the tail of @b up to the next PXS_ALIGN boundary. */
static int
pad(struct pxs_buf *b)
{
	size_t end = pxs_align_up(b->len);

	if (end > b->cap && grow(b, end - b->len))
		return -ENOMEM;
	memset(b->data + b->len, 0, end - b->len);
	b->len = end;
	return 0;
}

static size_t
record_bytes(const struct px_cache_ref *it)
{
	return PXS_REC_BYTES + it->klen + it->vlen;
}

static void
put_record(char *p, const struct px_cache_ref *it)
{
	uint16_t klen = (uint16_t)it->klen, zero = 0;
	uint32_t vlen = (uint32_t)it->vlen;

	memcpy(p, &klen, 2);
	memcpy(p + 2, &zero, 2);
	memcpy(p + 4, &vlen, 4);
	memcpy(p + 8, &it->flags, 4);
	memcpy(p + 12, &it->exptime, 8);
	memcpy(p + 20, &it->cas, 8);
	memcpy(p + PXS_REC_BYTES, it->key, it->klen);
	memcpy(p + PXS_REC_BYTES + it->klen, it->value, it->vlen);
}

/*
 * px_cache_snap_fn: copy one item into the current block; 1 (end this
 * walk step) once the block is full.
 */
static int
append(void *arg, const struct px_cache_ref *it)
{
	struct saver *s = arg;
	struct pxs_buf *b = s->cur;
	size_t need = record_bytes(it);

	if (b->len + need > b->cap && grow(b, need))
		return -ENOMEM;
	put_record(b->data + b->len, it);
	b->len += need;
	b->items++;
	return b->len >= s->o.block_bytes;
}

/* px_cache_snap_fn for removed items: under the cache's writer lock. */
static int
spill_item(void *arg, const struct px_cache_ref *it)
{
	struct spill *sp = &((struct saver *)arg)->spill;
	size_t need = record_bytes(it), cap;
	char *p;
	int err = 0;

	pthread_mutex_lock(&sp->lock);
	if (sp->len + need > sp->limit) {
		err = -ENOSPC; /* the cache keeps it instead */
		goto out_unlock;
	}
	if (sp->len + need > sp->cap) {
		cap =
		    sp->cap * 2 > sp->len + need ? sp->cap * 2 : sp->len + need;
		p = realloc(sp->data, cap);
		if (!p) {
			err = -ENOMEM;
			goto out_unlock;
		}
		sp->data = p;
		sp->cap = cap;
	}
	put_record(sp->data + sp->len, it);
	sp->len += need;
	sp->items++;
out_unlock:
	pthread_mutex_unlock(&sp->lock);
	return err;
}

/*
 * Move spilled records into the current block.  The buffer is swapped
 * for the spare under the lock and copied outside it, so writers that
 * spill (holding the cache's writer lock) never wait for the copy.
 */
static int
drain_spill(struct saver *s)
{
	struct spill *sp = &s->spill;
	struct pxs_buf *b = s->cur;
	char *data;
	size_t len, cap;
	uint32_t items;

	pthread_mutex_lock(&sp->lock);
	data = sp->data;
	len = sp->len;
	cap = sp->cap;
	items = sp->items;
	if (len) {
		sp->data = sp->spare;
		sp->cap = sp->spare_cap;
		sp->len = 0;
		sp->items = 0;
	}
	pthread_mutex_unlock(&sp->lock);
	if (!len)
		return 0;

	sp->spare = data;
	sp->spare_cap = cap;
	if (b->len + len > b->cap && grow(b, len))
		return -ENOMEM;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->items += items;
	return 0;
}

/* ---- Blocks ------------------------------------------------------------- */

/* Seal the current block, start its write, take a fresh buffer. */
static int
seal(struct saver *s)
{
	struct pxs_buf *b = s->cur;
	struct pxs_block h = {
	    .magic = PXS_BLK_MAGIC,
	    .payload = (uint32_t)(b->len - PXS_BLK_BYTES),
	    .items = b->items,
	    .seq = s->info.blocks,
	};
	int err;

	if (!b->items)
		return 0;
	if (b->len - PXS_BLK_BYTES > PXS_BLOCK_MAX)
		return -E2BIG; /* a reader would refuse it */
	h.check = pxs_block_check(&h, b->data + PXS_BLK_BYTES);
	memcpy(b->data, &h, sizeof(h));
	if (pad(b))
		return -ENOMEM;
	b->off = s->off;
	s->off += b->len;
	s->info.blocks++;
	s->info.items += b->items;
	s->info.bytes = s->off;
	err = pxs_io_write(&s->io, b);
	if (!err)
		err = pxs_io_reap(&s->io, false);
	if (!err && s->o.progress)
		err = s->o.progress(s->o.progress_arg, &s->info);
	return err ? err : next_buf(s);
}

/* Sleep while the save runs ahead of opts.max_rate. */
static void
pace(struct saver *s, uint64_t start)
{
	uint64_t due, now;
	struct timespec ts;

	if (!s->o.max_rate)
		return;
	due = start + (uint64_t)((double)s->off * 1e9 / s->o.max_rate);
	now = mono_ns();
	if (due <= now)
		return;
	ts.tv_sec = (time_t)((due - now) / 1000000000u);
	ts.tv_nsec = (long)((due - now) % 1000000000u);
	nanosleep(&ts, NULL);
}

/* Walk the whole image into blocks. */
static int
copy_image(struct saver *s)
{
	uint64_t start = mono_ns();
	int more;

	do {
		pace(s, start);
		more = px_cache_snap_walk(s->c, s->o.walk_buckets, append, s);
		/* The walk's -ENOSPC is the retention limit (append() gives
		 * no -ENOSPC): its own code, so that it does not read as a
		 * full disk. */
		if (more == -ENOSPC)
			return -PX_ERETAIN;
		if (more < 0)
			return more;
		if (drain_spill(s))
			return -ENOMEM;
		if (s->cur->len >= s->o.block_bytes) {
			int err = seal(s);

			if (err)
				return err;
		}
	} while (more);
	return seal(s);
}

static int
write_header(struct saver *s)
{
	struct pxs_header h = {
	    .version = PX_SNAPSHOT_VERSION,
	    .header_bytes = PXS_DATA_OFF,
	    .items = s->info.items,
	    .blocks = s->info.blocks,
	    .file_bytes = s->off,
	    .cas = s->info.cas,
	    .taken_at = s->info.taken_at,
	    .flush_at = s->info.flush_at,
	};
	struct pxs_buf b = {.len = PXS_DATA_OFF, .off = 0};
	int err;

	memcpy(h.magic, PXS_MAGIC, sizeof(h.magic));
	h.check = pxs_header_check(&h);
	if (posix_memalign((void **)&b.data, PXS_ALIGN, PXS_DATA_OFF))
		return -ENOMEM;
	memset(b.data, 0, PXS_DATA_OFF);
	memcpy(b.data, &h, sizeof(h));
	err = pxs_io_write(&s->io, &b);
	/* Wait for @b's write before freeing it. */
	if (!err)
		err = pxs_io_fsync(&s->io);
	else
		pxs_io_exit(&s->io);
	free(b.data);
	return err;
}

/* ---- Files -------------------------------------------------------------- */

static int
sync_dir(const char *path)
{
	char *copy = strdup(path);
	int fd, err = 0;

	if (!copy)
		return -ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return -errno;
	if (fsync(fd))
		err = -errno;
	close(fd);
	return err;
}

static char *
tmp_name(const char *path)
{
	size_t n = strlen(path) + sizeof(".tmp");
	char *t = malloc(n);

	if (t)
		snprintf(t, n, "%s.tmp", path);
	return t;
}

/*
 * Open the temporary file, with O_DIRECT when asked and the file system
 * takes it: blocks then go from our buffers to the device without a copy
 * into the page cache (and without pushing the cache's memory out of it).
 */
static int
open_tmp(const char *tmp, bool direct, bool *got_direct)
{
	int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, fd = -1;

	if (direct)
		fd = open(tmp, flags | O_DIRECT, 0644);
	*got_direct = fd >= 0;
	if (fd < 0)
		fd = open(tmp, flags, 0644);
	return fd < 0 ? -errno : fd;
}

/* Everything between opening the temporary file and renaming it. */
static int
save_to(struct saver *s, int fd)
{
	struct px_cache_snap_info ci;
	uint64_t t0;
	int err;

	err = pxs_io_init(&s->io, fd, s->o.queue_depth, s->o.no_uring);
	if (err)
		return err;
	s->info.uring = s->io.uring;
	err = bufs_create(s);
	if (err)
		goto out_io;
	t0 = mono_ns();
	err = px_cache_snap_begin(s->c, s->o.retain_limit, &ci);
	s->info.begin_ns = mono_ns() - t0;
	if (err)
		goto out_io;
	s->info.cas = ci.cas;
	s->info.taken_at = ci.now;
	s->info.flush_at = ci.flush_at;
	px_cache_snap_spill(s->c, spill_item, s);
	s->off = PXS_DATA_OFF;
	err = next_buf(s);
	if (!err)
		err = copy_image(s);
	px_cache_snap_end(s->c, &ci);
	s->info.retained = ci.retained_items;
	s->info.spilled = ci.spilled_items;
	/* The header block counts even when no item block was sealed. */
	s->info.bytes = s->off;
	if (!err)
		err = write_header(s);
out_io:
	pxs_io_exit(&s->io);
	if (!err && s->io.err)
		err = s->io.err;
	return err;
}

/*
 * opts.idle_priority: make the calling thread SCHED_IDLE for the save.
 * Returns whether @old holds the policy to put back.
 */
static bool
sched_idle_enter(struct sched_param *old, int *old_policy)
{
	struct sched_param idle = {0};

	if (pthread_getschedparam(pthread_self(), old_policy, old))
		return false;
	return !pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle);
}

/* opts.nice: lower the calling thread's priority; its old nice value. */
static int
nice_enter(int nice)
{
	int old;

	errno = 0;
	old = getpriority(PRIO_PROCESS, (id_t)gettid());
	if (old == -1 && errno)
		return INT_MIN;
	if (nice <= old ||
	    setpriority(PRIO_PROCESS, (id_t)gettid(), nice > 19 ? 19 : nice))
		return INT_MIN;
	return old;
}

int
px_snapshot_save(struct px_cache *c, const char *path,
		 const struct px_snapshot_opts *opts,
		 struct px_snapshot_info *info)
{
	struct saver s = {.c = c, .spill.lock = PTHREAD_MUTEX_INITIALIZER};
	uint64_t t0 = mono_ns();
	char *tmp = tmp_name(path);
	struct sched_param old_param;
	bool idle = false;
	int fd, err, old_policy, old_nice = INT_MIN;

	if (!tmp)
		return -ENOMEM;
	if (opts)
		s.o = *opts;
	fill_defaults(&s.o);
	if (s.o.idle_priority)
		idle = sched_idle_enter(&old_param, &old_policy);
	if (s.o.nice > 0)
		old_nice = nice_enter(s.o.nice);
	s.spill.limit = s.o.spill_bytes;
	fd = open_tmp(tmp, !s.o.no_direct, &s.info.direct);
	if (fd < 0) {
		err = fd;
		goto out_free;
	}
	err = save_to(&s, fd);
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (!err)
		err = sync_dir(path);
	else
		unlink(tmp);
	s.info.elapsed_ns = mono_ns() - t0;
	if (info)
		*info = s.info;
out_free:
	if (idle)
		pthread_setschedparam(pthread_self(), old_policy, &old_param);
	if (old_nice != INT_MIN)
		setpriority(PRIO_PROCESS, (id_t)gettid(), old_nice);
	bufs_destroy(&s);
	free(s.spill.data);
	free(s.spill.spare);
	free(tmp);
	return err;
}
