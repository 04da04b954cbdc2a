// SPDX-License-Identifier: MIT
/*
 * The snapshot reader's input: the file from a start offset to its end,
 * read ahead in large aligned chunks through a private io_uring (several
 * reads in flight while the reader checksums and parses the previous
 * chunk), from a descriptor opened with O_DIRECT where the file system
 * takes it, so a cold file streams at the device's rate instead of the
 * page cache's readahead.  The reader copies bytes out in order with
 * pxs_stream_read().  Where io_uring is blocked the chunks are read with
 * pread when needed.  A chunk that comes back shorter than the file size
 * promised is completed with pread; a file that shrank underneath gives
 * -PX_ECORRUPT, never a fault (nothing is mapped).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <patinox/error.h>

#include "snapshot_int.h"

#define PENDING INT32_MIN /* res[] of a chunk whose read is in flight */

static uint64_t
chunk_off(const struct pxs_stream *st, uint64_t k)
{
	return st->start + k * st->chunk;
}

/* Bytes chunk @k should hold: a full chunk, or the rest of the file. */
static size_t
chunk_want(const struct pxs_stream *st, uint64_t k)
{
	uint64_t left = st->size - chunk_off(st, k);

	return left < st->chunk ? (size_t)left : st->chunk;
}

static char *
slot_mem(const struct pxs_stream *st, uint64_t k)
{
	return st->mem + (size_t)(k % st->depth) * st->chunk;
}

/* Queue reads for the chunks the reader will need next. */
static void
refill(struct pxs_stream *st)
{
	struct io_uring_sqe *sqe;
	unsigned queued = 0;

	while (st->uring && st->next < st->cur + st->depth &&
	       chunk_off(st, st->next) < st->size) {
		sqe = io_uring_get_sqe(&st->ring);
		if (!sqe)
			break;
		io_uring_prep_read(sqe, st->fd, slot_mem(st, st->next),
				   (unsigned)st->chunk,
				   chunk_off(st, st->next));
		io_uring_sqe_set_data64(sqe, st->next);
		st->res[st->next % st->depth] = PENDING;
		st->next++;
		st->inflight++;
		queued++;
	}
	if (queued)
		io_uring_submit(&st->ring);
}

int
pxs_stream_init(struct pxs_stream *st, int fd, uint64_t size, uint64_t start)
{
	size_t chunk = pxs_align_up((size_t)CONFIG_PX_SNAPSHOT_READ_KB * 1024);
	uint64_t bytes = size > start ? pxs_align_up(size - start) : PXS_ALIGN;
	uint64_t chunks = (bytes + chunk - 1) / chunk;
	unsigned depth = CONFIG_PX_SNAPSHOT_READ_DEPTH;

	/* A small file is one chunk of its own size, read without a ring
	 * (setting one up costs more than the read). */
	if (chunks < depth)
		depth = (unsigned)chunks;
	if (bytes < chunk)
		chunk = (size_t)bytes;
	*st = (struct pxs_stream){
	    .fd = fd,
	    .size = size,
	    .start = start,
	    .chunk = chunk,
	    .depth = depth,
	};
	st->res = calloc(depth, sizeof(*st->res));
	if (!st->res ||
	    posix_memalign((void **)&st->mem, PXS_ALIGN, depth * st->chunk)) {
		free(st->res);
		return -ENOMEM;
	}
	if (chunks > 1 && io_uring_queue_init(depth, &st->ring, 0) == 0)
		st->uring = true;
	refill(st);
	return 0;
}

void
pxs_stream_exit(struct pxs_stream *st)
{
	struct io_uring_cqe *cqe;

	/* The kernel may still write into our chunks: wait for them. */
	while (st->uring && st->inflight) {
		if (io_uring_wait_cqe(&st->ring, &cqe) == 0) {
			io_uring_cqe_seen(&st->ring, cqe);
			st->inflight--;
		}
	}
	if (st->uring)
		io_uring_queue_exit(&st->ring);
	free(st->mem);
	free(st->res);
}

int
pxs_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	char *dst = buf;

	while (len) {
		ssize_t n = pread(fd, dst, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -PX_ECORRUPT; /* shrank under us */
		dst += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* Wait until chunk @k is read, completing a short read. */
static int
wait_chunk(struct pxs_stream *st, uint64_t k)
{
	int32_t *res = &st->res[k % st->depth];
	struct io_uring_cqe *cqe;
	size_t want = chunk_want(st, k);
	int err;

	if (!st->uring)
		return pxs_pread_all(st->fd, slot_mem(st, k), want,
				     chunk_off(st, k));
	while (*res == PENDING) {
		err = io_uring_wait_cqe(&st->ring, &cqe);
		if (err == -EINTR)
			continue;
		if (err)
			return err;
		st->res[io_uring_cqe_get_data64(cqe) % st->depth] = cqe->res;
		io_uring_cqe_seen(&st->ring, cqe);
		st->inflight--;
	}
	if (*res < 0)
		return *res;
	if ((size_t)*res < want) /* short: the rest the slow way */
		return pxs_pread_all(st->fd, slot_mem(st, k) + *res,
				     want - (size_t)*res,
				     chunk_off(st, k) + (uint64_t)*res);
	return 0;
}

int
pxs_stream_read(struct pxs_stream *st, void *dst, size_t len)
{
	char *d = dst;
	int err;

	while (len) {
		size_t n, want;

		if (chunk_off(st, st->cur) >= st->size)
			return -PX_ECORRUPT; /* past the end */
		if (!st->pos) {
			err = wait_chunk(st, st->cur);
			if (err)
				return err;
		}
		want = chunk_want(st, st->cur);
		n = want - st->pos < len ? want - st->pos : len;
		memcpy(d, slot_mem(st, st->cur) + st->pos, n);
		d += n;
		len -= n;
		st->pos += n;
		if (st->pos == want) {
			st->cur++;
			st->pos = 0;
			refill(st);
		}
	}
	return 0;
}
