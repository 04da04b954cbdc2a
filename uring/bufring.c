// SPDX-License-Identifier: MIT
/*
 * Provided-buffer ring.  liburing 2.3 has the registration call and the
 * inline ring helpers but not io_uring_setup_buf_ring() (2.4): this file
 * maps the ring, registers it under a buffer group id, initializes it and
 * fills it with one contiguous block of equal buffers.  Buffers handed to
 * a consumer come back through px_ring_buf_put(); returns are batched and
 * published to the kernel once per loop turn (and before any submit).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ring_internal.h"

static void *
map_anon(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static size_t
page_round(size_t bytes)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (bytes + page - 1) & ~(page - 1);
}

/* Map, register and initialize the ring itself (2.4's setup_buf_ring). */
static int
buf_ring_map(struct px_ring *r, uint32_t count, uint16_t bgid)
{
	struct io_uring_buf_reg reg = {0};
	int ret;

	r->br_bytes = page_round(count * sizeof(struct io_uring_buf));
	r->br = map_anon(r->br_bytes);
	if (!r->br)
		return -ENOMEM;
	reg.ring_addr = (uint64_t)(uintptr_t)r->br;
	reg.ring_entries = count;
	reg.bgid = bgid;
	ret = io_uring_register_buf_ring(&r->uring, &reg, 0);
	if (ret < 0) {
		munmap(r->br, r->br_bytes);
		r->br = NULL;
		return ret;
	}
	io_uring_buf_ring_init(r->br);
	return 0;
}

static void
buf_fill(struct px_ring *r)
{
	int mask = io_uring_buf_ring_mask(r->buf_count);

	for (uint32_t i = 0; i < r->buf_count; i++) {
		struct px_ring_buf *b = &r->bufs[i];

		b->data = r->buf_base + (size_t)i * r->buf_size;
		b->bid = (uint16_t)i;
		io_uring_buf_ring_add(r->br, b->data, r->buf_size, b->bid, mask,
				      (int)i);
	}
	io_uring_buf_ring_advance(r->br, (int)r->buf_count);
}

int
ring_bufring_setup(struct px_ring *r, uint32_t count, uint32_t size,
		   uint16_t bgid)
{
	int ret;

	r->buf_count = count;
	r->buf_size = size;
	r->bgid = bgid;
	r->bufs = calloc(count, sizeof(*r->bufs));
	if (!r->bufs)
		return -ENOMEM;
	r->buf_bytes = page_round((size_t)count * size);
	r->buf_base = map_anon(r->buf_bytes);
	if (!r->buf_base) {
		ret = -ENOMEM;
		goto out_free_bufs;
	}
	ret = buf_ring_map(r, count, bgid);
	if (ret < 0)
		goto out_unmap_bufs;
	buf_fill(r);
	r->has_buf_ring = true;
	return 0;

out_unmap_bufs:
	munmap(r->buf_base, r->buf_bytes);
	r->buf_base = NULL;
out_free_bufs:
	free(r->bufs);
	r->bufs = NULL;
	return ret;
}

/* After io_uring_queue_exit(): the registration went with the ring. */
void
ring_bufring_teardown(struct px_ring *r)
{
	if (!r->has_buf_ring)
		return;
	munmap(r->br, r->br_bytes);
	munmap(r->buf_base, r->buf_bytes);
	free(r->bufs);
	r->has_buf_ring = false;
}

struct px_ring_buf *
ring_buf_take(struct px_ring *r, uint16_t bid, uint32_t len)
{
	struct px_ring_buf *b = &r->bufs[bid];

	b->len = len;
	b->pad_ = 1;
	r->buf_out++;
	return b;
}

void
px_ring_buf_put(struct px_ring *ring, struct px_ring_buf *buf)
{
	int mask;

	if (!buf || !buf->pad_)
		return;
	buf->pad_ = 0;
	buf->len = 0;
	mask = io_uring_buf_ring_mask(ring->buf_count);
	io_uring_buf_ring_add(ring->br, buf->data, ring->buf_size, buf->bid,
			      mask, (int)ring->buf_pending);
	ring->buf_pending++;
	ring->buf_out--;
}

void
ring_buf_publish(struct px_ring *r)
{
	if (!r->buf_pending)
		return;
	io_uring_buf_ring_advance(r->br, (int)r->buf_pending);
	r->buf_pending = 0;
}

bool
ring_bufs_available(const struct px_ring *r)
{
	return r->buf_out < r->buf_count;
}

uint32_t
px_ring_buf_size(const struct px_ring *ring)
{
	return ring->buf_size;
}
