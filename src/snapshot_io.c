// SPDX-License-Identifier: MIT
/*
 * The snapshot's block writer.  Sealed blocks are written at their file
 * offsets through a private io_uring owned by the saving thread: writes
 * are queued and submitted in batches, short writes are resubmitted for
 * the rest, and the file is made durable with IORING_OP_FSYNC after every
 * write completed.  The ring is our own (liburing directly) because a
 * snapshot runs on its own thread and px_ring belongs to its creator's
 * thread and has no file operations.  Where io_uring is blocked (seccomp
 * in containers, kernel.io_uring_disabled) the same calls fall back to
 * pwrite and fsync, and the caller is told.
 */
#include <errno.h>
#include <unistd.h>

#include "snapshot_int.h"

int
pxs_io_init(struct pxs_io *io, int fd, unsigned depth, bool no_uring)
{
	*io =
	    (struct pxs_io){.fd = fd, .batch = CONFIG_PX_SNAPSHOT_SUBMIT_BATCH};
	if (!no_uring && io_uring_queue_init(depth + 1, &io->ring, 0) == 0)
		io->uring = true;
	return 0;
}

void
pxs_io_exit(struct pxs_io *io)
{
	if (io->uring) {
		while (io->inflight && pxs_io_reap(io, true) >= 0)
			;
		io_uring_queue_exit(&io->ring);
	}
	io->uring = false;
}

static int
sync_write(struct pxs_io *io, struct pxs_buf *b)
{
	while (b->done < b->len) {
		ssize_t n = pwrite(io->fd, b->data + b->done, b->len - b->done,
				   (off_t)(b->off + b->done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		b->done += (size_t)n;
	}
	return 0;
}

/* Queue the rest of @b; its user data is the buffer. */
static int
queue_write(struct pxs_io *io, struct pxs_buf *b)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);

	if (!sqe) {
		int err = pxs_io_submit(io);

		if (err < 0)
			return err;
		sqe = io_uring_get_sqe(&io->ring);
		if (!sqe)
			return -EBUSY;
	}
	io_uring_prep_write(sqe, io->fd, b->data + b->done,
			    (unsigned)(b->len - b->done), b->off + b->done);
	io_uring_sqe_set_data(sqe, b);
	io->queued++;
	io->inflight++;
	return 0;
}

/*
 * pxs_io_write - start writing all of @b at @b->off.  With io_uring the
 * buffer stays busy until pxs_io_reap() sees it complete.
 */
int
pxs_io_write(struct pxs_io *io, struct pxs_buf *b)
{
	b->done = 0;
	if (!io->uring)
		return sync_write(io, b);
	b->busy = true;
	if (queue_write(io, b))
		return -EBUSY;
	if (io->queued >= io->batch)
		return pxs_io_submit(io);
	return 0;
}

int
pxs_io_submit(struct pxs_io *io)
{
	int n;

	if (!io->uring || !io->queued)
		return 0;
	n = io_uring_submit(&io->ring);
	if (n < 0)
		return n;
	io->queued -= (unsigned)n < io->queued ? (unsigned)n : io->queued;
	return 0;
}

static void
complete(struct pxs_io *io, struct pxs_buf *b, int res)
{
	io->inflight--;
	if (res < 0 || (res == 0 && b->done < b->len)) {
		if (!io->err)
			io->err = res < 0 ? res : -EIO;
		b->busy = false;
		return;
	}
	b->done += (size_t)res;
	if (b->done < b->len && !io->err) { /* short write: the rest */
		if (queue_write(io, b) == 0)
			return;
		io->err = -EIO;
	}
	b->busy = false;
}

/*
 * pxs_io_reap - collect completed writes (waiting for one if @wait and
 * some are in flight).  Returns 0 or the first write error.
 */
int
pxs_io_reap(struct pxs_io *io, bool wait)
{
	struct io_uring_cqe *cqe;
	int err;

	if (!io->uring)
		return io->err;
	err = pxs_io_submit(io);
	if (err)
		return err;
	if (wait && io->inflight) {
		err = io_uring_wait_cqe(&io->ring, &cqe);
		if (err < 0 && err != -EINTR)
			return err;
	}
	while (io_uring_peek_cqe(&io->ring, &cqe) == 0) {
		complete(io, io_uring_cqe_get_data(cqe), cqe->res);
		io_uring_cqe_seen(&io->ring, cqe);
	}
	if (io->queued)
		err = pxs_io_submit(io);
	return io->err ? io->err : err;
}

/* pxs_io_fsync - wait for every write, then make the file durable. */
int
pxs_io_fsync(struct pxs_io *io)
{
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int err;

	while (io->inflight)
		if ((err = pxs_io_reap(io, true)))
			return err;
	if (!io->uring)
		return fsync(io->fd) ? -errno : 0;
	sqe = io_uring_get_sqe(&io->ring);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_fsync(sqe, io->fd, 0);
	io_uring_sqe_set_data(sqe, NULL);
	err = io_uring_submit_and_wait(&io->ring, 1);
	if (err < 0)
		return err;
	err = io_uring_wait_cqe(&io->ring, &cqe);
	if (err)
		return err;
	err = cqe->res;
	io_uring_cqe_seen(&io->ring, cqe);
	return err < 0 ? err : 0;
}
