// SPDX-License-Identifier: MIT
/*
 * Reading snapshot files: verification, iteration and warm restart.
 * Nothing in a file is trusted before it is checked: the header's magic,
 * version and checksum, the file size against the header, every block's
 * magic, sequence number, bounds and checksum before any of its records is
 * parsed, and every record's lengths against its block.  A failure is
 * -PX_ECORRUPT (or -PX_EVERSION for another format version) and never a
 * crash: the file is read with pread into buffers, not mapped, so a file
 * truncated under us cannot fault.  Loading verifies the whole file
 * before it stores the first item.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <patinox/error.h>

#include "snapshot_int.h"

struct reader {
	int fd;
	uint64_t size;
	struct pxs_header h;
	char *buf;
	size_t cap;
	px_snapshot_item_fn fn;
	void *arg;
	struct px_snapshot_info *info;
};

static int
read_at(int fd, void *dst, size_t len, uint64_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n =
		    pread(fd, (char *)dst + got, len - got, (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -PX_ECORRUPT; /* shrank under us */
		got += (size_t)n;
	}
	return 0;
}

/* Whether @len bytes at @p are all zero. */
static bool
zeros(const char *p, size_t len)
{
	return !len || (!p[0] && !memcmp(p, p + 1, len - 1));
}

static int
check_header(struct reader *r)
{
	struct pxs_header *h = &r->h;
	char rest[PXS_DATA_OFF - PXS_HDR_BYTES];
	int err;

	if (r->size < PXS_DATA_OFF)
		return -PX_ECORRUPT;
	err = read_at(r->fd, h, sizeof(*h), 0);
	if (!err)
		err = read_at(r->fd, rest, sizeof(rest), PXS_HDR_BYTES);
	if (err)
		return err;
	if (memcmp(h->magic, PXS_MAGIC, sizeof(h->magic)))
		return -PX_ECORRUPT;
	if (h->version != PX_SNAPSHOT_VERSION)
		return -PX_EVERSION;
	if (h->check != pxs_header_check(h) ||
	    h->header_bytes != PXS_DATA_OFF || h->file_bytes != r->size ||
	    !zeros(rest, sizeof(rest)))
		return -PX_ECORRUPT;
	return 0;
}

/* Parse the records of a verified block. */
static int
parse(struct reader *r, const char *p, size_t len, uint32_t items)
{
	struct px_cache_ref it = {0};
	uint16_t klen, zero;
	uint32_t vlen, n = 0;
	int err;

	while (len) {
		if (len < PXS_REC_BYTES)
			return -PX_ECORRUPT;
		memcpy(&klen, p, 2);
		memcpy(&zero, p + 2, 2);
		memcpy(&vlen, p + 4, 4);
		memcpy(&it.flags, p + 8, 4);
		memcpy(&it.exptime, p + 12, 8);
		memcpy(&it.cas, p + 20, 8);
		if (zero || !klen || klen > CONFIG_PX_CACHE_KEY_MAX ||
		    (uint64_t)klen + vlen > len - PXS_REC_BYTES)
			return -PX_ECORRUPT;
		it.key = p + PXS_REC_BYTES;
		it.klen = klen;
		it.value = p + PXS_REC_BYTES + klen;
		it.vlen = vlen;
		p += PXS_REC_BYTES + klen + vlen;
		len -= PXS_REC_BYTES + klen + vlen;
		n++;
		if (r->fn && (err = r->fn(r->arg, &it)))
			return err;
	}
	return n == items ? 0 : -PX_ECORRUPT;
}

static int
ensure(struct reader *r, size_t len)
{
	char *p;

	if (len <= r->cap)
		return 0;
	p = realloc(r->buf, len);
	if (!p)
		return -ENOMEM;
	r->buf = p;
	r->cap = len;
	return 0;
}

/* Read, check and parse block @seq at *@off. */
static int
read_block(struct reader *r, uint64_t seq, uint64_t *off, uint64_t *items)
{
	struct pxs_block b;
	uint64_t body;
	int err;

	if (r->size - *off < PXS_BLK_BYTES)
		return -PX_ECORRUPT;
	err = read_at(r->fd, &b, sizeof(b), *off);
	if (err)
		return err;
	if (b.magic != PXS_BLK_MAGIC || b.seq != seq || b.zero ||
	    b.payload > PXS_BLOCK_MAX)
		return -PX_ECORRUPT;
	/* payload, then zeros up to the alignment */
	body = pxs_align_up(PXS_BLK_BYTES + b.payload) - PXS_BLK_BYTES;
	if (body > r->size - *off - PXS_BLK_BYTES)
		return -PX_ECORRUPT;
	err = ensure(r, body);
	if (!err)
		err = read_at(r->fd, r->buf, body, *off + PXS_BLK_BYTES);
	if (err)
		return err;
	if (b.check != pxs_block_check(&b, r->buf) ||
	    !zeros(r->buf + b.payload, body - b.payload))
		return -PX_ECORRUPT;
	*off += PXS_BLK_BYTES + body;
	*items += b.items;
	return parse(r, r->buf, b.payload, b.items);
}

static int
read_blocks(struct reader *r)
{
	uint64_t off = PXS_DATA_OFF, items = 0, seq;
	int err;

	for (seq = 0; seq < r->h.blocks; seq++) {
		err = read_block(r, seq, &off, &items);
		if (err)
			return err;
	}
	if (off != r->size || items != r->h.items)
		return -PX_ECORRUPT;
	return 0;
}

int
px_snapshot_read(const char *path, px_snapshot_item_fn fn, void *arg,
		 struct px_snapshot_info *info)
{
	struct reader r = {.fn = fn, .arg = arg};
	struct stat st;
	int err;

	r.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r.fd < 0)
		return -errno;
	if (fstat(r.fd, &st)) {
		err = -errno;
		goto out_close;
	}
	r.size = (uint64_t)st.st_size;
	posix_fadvise(r.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	err = check_header(&r);
	if (!err)
		err = read_blocks(&r);
	if (!err && info) {
		info->items = r.h.items;
		info->blocks = r.h.blocks;
		info->bytes = r.h.file_bytes;
		info->cas = r.h.cas;
		info->taken_at = r.h.taken_at;
	}
	free(r.buf);
out_close:
	close(r.fd);
	return err;
}

/* px_snapshot_item_fn for loading. */
static int
restore(void *arg, const struct px_cache_ref *item)
{
	struct reader *r = arg; /* only ->arg and ->info are used */
	int err = px_cache_restore(r->arg, item);

	if (!err)
		r->info->loaded++;
	else if (err == -ETIME)
		r->info->expired++;
	else if (err == -E2BIG)
		r->info->skipped++;
	else if (err == -EINVAL)
		return -PX_ECORRUPT; /* cas 0: not written by us */
	else
		return err;
	return 0;
}

int
px_snapshot_load(struct px_cache *c, const char *path,
		 struct px_snapshot_info *info)
{
	struct px_snapshot_info tmp = {0}, *in = info ? info : &tmp;
	struct reader ctx = {.arg = c, .info = in};
	int err;

	memset(in, 0, sizeof(*in));
	err = px_snapshot_read(path, NULL, NULL, in);
	if (err)
		return err;
	in->loaded = in->expired = in->skipped = 0;
	err = px_snapshot_read(path, restore, &ctx, NULL);
	px_cache_cas_floor(c, in->cas);
	return err;
}
