/* SPDX-License-Identifier: MIT */
/*
 * Snapshots: a point-in-time image of a px_cache written to a file while
 * the cache keeps serving, and warm restart from such a file.
 *
 * px_snapshot_save() fixes the instant in constant time (no fork, no
 * pause that grows with the cache), copies every item live at that
 * instant into checksummed blocks and writes them with io_uring (a
 * private ring of the calling thread, batched submissions), then fsyncs
 * a temporary file and renames it over @path.  A crash at any point
 * leaves the previous file at @path intact.  px_snapshot_load() verifies
 * the whole file before it stores anything, then restores keys, values,
 * flags, cas ids and absolute expiry times, dropping expired items.
 *
 * File format (version 2, little endian; docs/snapshot.md has it all):
 *   header (80 bytes): magic "PXSNAP\r\n", version, item, block and byte
 *     counts, the instant's cas id and time, the delayed flush_all then
 *     pending, XXH3-64 of the header (version 1 files, without the
 *     pending flush, are still read)
 *   blocks: 32-byte block header (magic, payload length, item count,
 *     sequence number, XXH3-64 of header and payload), then records:
 *     klen u16, 0 u16, vlen u32, flags u32, exptime i64, cas u64, key,
 *     value
 *
 * Errors: 0 or a negative errno.  A file that is not a snapshot, is
 * truncated, extended or fails a checksum gives -PX_ECORRUPT; a snapshot
 * of another format version gives -PX_EVERSION, a save that hit the
 * retention limit -PX_ERETAIN (include/patinox/error.h);
 * px_strerror_in(PX_PART_SNAPSHOT, err) explains them for a log line.
 *
 * Thread safety: one save per cache at a time (another gets -EBUSY).  A
 * save blocks its calling thread until the file is durable: run it on a
 * thread of your own while other threads serve.  The library starts no
 * thread and never prints.
 */
#ifndef PATINOX_SNAPSHOT_H
#define PATINOX_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <patinox/cache.h>
#include <patinox/common.h>

/* The format version this library writes and reads. */
#define PX_SNAPSHOT_VERSION 2u

/* What a save or a load did. */
struct px_snapshot_info {
	uint64_t items;      /* saved, or found in the file */
	uint64_t loaded;     /* load: items stored in the cache */
	uint64_t expired;    /* load: dropped, their expiry time had passed */
	uint64_t skipped;    /* load: larger than the cache's item_max */
	uint64_t bytes;      /* file bytes */
	uint64_t blocks;     /* checksummed blocks */
	uint64_t cas;        /* the instant: items with cas ids up to this */
	int64_t taken_at;    /* the instant, Unix seconds */
	uint64_t retained;   /* save: image items the cache kept for it */
	uint64_t spilled;    /* save: image items removed by writers during
				the walk and copied out to the saver */
	uint64_t begin_ns;   /* save: time the cache's writer lock was held */
	uint64_t elapsed_ns; /* whole call */
	int64_t flush_at;    /* a delayed flush_all pending at the instant
				(Unix seconds), 0 for none; a load sets it
				on the cache again */
	uint64_t flushed;    /* load: dropped, that flush was due by the
				cache's clock (every item of the image was
				stored before it) */
	bool direct;         /* save: O_DIRECT (false: the file system
				refused it, or opts.no_direct) */
	bool uring;          /* save: written through io_uring (false: the
				pwrite fallback, when io_uring is blocked) */
};

/*
 * Called by a save after each block is handed to the kernel, with the
 * progress so far.  A non-zero return abandons the save (the temporary
 * file is removed, @path is untouched) and is returned by it.  Runs on
 * the saving thread outside any cache section; it may block.  Also
 * called by px_snapshot_load_with() after each block of each of its two
 * passes (@so_far: the blocks, items and file bytes read so far in the
 * pass); a non-zero return abandons the load and is returned by it.
 */
typedef int (*px_snapshot_progress_fn)(void *arg,
				       const struct px_snapshot_info *so_far);

struct px_snapshot_opts {
	size_t block_bytes;   /* 0: CONFIG_PX_SNAPSHOT_BLOCK_KB */
	unsigned queue_depth; /* blocks in flight; 0: Kconfig */
	size_t walk_buckets;  /* per read section; 0: Kconfig */
	size_t retain_limit;  /* see px_cache_snap_begin(); 0: Kconfig */
	size_t spill_bytes;   /* most bytes of removed image items held
				 outside the cache; 0: Kconfig */
	bool no_uring;        /* write with pwrite (tests, comparison) */
	bool no_direct;       /* buffered writes instead of O_DIRECT */
	uint64_t max_rate;    /* bytes per second, 0: as fast as it goes;
				 a paced save takes longer and leaves more
				 CPU and memory bandwidth to requests */
	bool idle_priority;   /* run the save as SCHED_IDLE: it gets only
				 CPU time no other thread wants; the
				 policy is put back after.  Only where a
				 core is to spare: on a saturated machine
				 the save starves, and writers waiting for
				 a grace period behind its read-side
				 section stall (docs/snapshot.md) */
	int nice;             /* 1..19: the saving thread's nice value for
				 the save (a smaller CPU share, but it
				 still runs every scheduler period); put
				 back after where the thread may raise its
				 priority again (CAP_SYS_NICE or
				 RLIMIT_NICE), else it keeps it: save on
				 a thread of its own.  0: unchanged */
	px_snapshot_progress_fn progress; /* NULL for none */
	void *progress_arg;
};

/* px_snapshot_opts_init - the Kconfig defaults, no progress callback. */
PX_API void px_snapshot_opts_init(struct px_snapshot_opts *opts);

/*
 * px_snapshot_save - write a point-in-time image of @c to @path.
 * @path: the snapshot file; written as "@path.tmp" in the same directory,
 *        fsynced, renamed over @path, and the directory fsynced
 * @opts: NULL for the defaults
 * @info: NULL, or receives counts and timings
 *
 * Readers and writers of @c go on during the save; stores do not wait
 * for it except for the constant-time begin.  Items of the image that
 * writers remove before the walk reaches them are copied out by the
 * removing writer (into at most spill_bytes of the saver's memory, then
 * written as blocks) and freed as usual; past spill_bytes they stay
 * allocated in the cache until the save ends (at most retain_limit).
 * Returns 0, -EBUSY (a snapshot of @c is running), -PX_ERETAIN (both
 * limits hit: writers replaced more of the image than spill_bytes and
 * retain_limit hold; a later save may succeed), -ENOSPC (only the file
 * system: the disk or a quota is full), -ENOMEM, the progress
 * callback's error, or -errno of open, write, fsync or rename; on any
 * error @path is untouched.
 */
PX_API int px_snapshot_save(struct px_cache *c, const char *path,
			    const struct px_snapshot_opts *opts,
			    struct px_snapshot_info *info);

/* Receives one item of a snapshot file; non-zero stops the read. */
typedef int (*px_snapshot_item_fn)(void *arg, const struct px_cache_ref *item);

/*
 * px_snapshot_read - verify a snapshot file and hand its items to @fn
 * (NULL: only verify), block by block: each block's checksum is checked
 * before any of its items is handed over.  @item->exptime is the saved
 * absolute time (0 for never), expired or not.  Returns 0, -PX_ECORRUPT,
 * -PX_EVERSION, -ENOMEM, -errno of open/read, or @fn's return.  Thread
 * safe (reads only the file).
 */
PX_API int px_snapshot_read(const char *path, px_snapshot_item_fn fn, void *arg,
			    struct px_snapshot_info *info);

/*
 * px_snapshot_load - warm restart: fill @c from @path.
 * Verifies the whole file first (nothing is stored from a corrupt,
 * truncated or foreign file), then restores every item whose expiry time
 * has not passed by @c's clock, with its flags, cas id and absolute
 * expiry time; later cas ids of @c are above every id of the file.  A
 * delayed flush_all pending in the file is set on @c again (through
 * px_cache_flush_at); if it is due already, no item is stored (all are
 * counted in @info->flushed).  Items are stored in batches of
 * CONFIG_PX_SNAPSHOT_RESTORE_BATCH per writer lock hold.  Items
 * larger than @c's item_max are skipped and counted.  Meant for a fresh
 * cache.  Returns 0, the errors of px_snapshot_read(), or -ENOMEM when
 * @c cannot hold an item (items restored before stay).
 */
PX_API int px_snapshot_load(struct px_cache *c, const char *path,
			    struct px_snapshot_info *info);

/*
 * px_snapshot_load_with - px_snapshot_load() with options.  Only
 * @opts->progress and @opts->progress_arg are used (NULL @opts: none):
 * the callback runs on the loading thread after every block of the
 * verifying pass and of the storing pass, outside any cache section, so
 * a program can give up a long load (a stop signal at start, for
 * example) within one block.  Its non-zero return ends the load and is
 * returned; items stored before it stay in @c (a partial image: do not
 * serve or save it as if it were whole).  Otherwise as
 * px_snapshot_load().
 */
PX_API int px_snapshot_load_with(struct px_cache *c, const char *path,
				 const struct px_snapshot_opts *opts,
				 struct px_snapshot_info *info);

#endif
