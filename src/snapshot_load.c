// SPDX-License-Identifier: MIT
/*
 * Reading snapshot files: verification, iteration and warm restart.
 * Nothing in a file is trusted before it is checked: the header's magic,
 * version and checksum, the file size against the header, every block's
 * magic, sequence number, bounds and checksum before any of its records is
 * parsed, and every record's lengths against its block.  A failure is
 * -PX_ECORRUPT (or -PX_EVERSION for another format version) and never a
 * crash: the file is read into buffers (the header with pread, the
 * blocks through a read-ahead stream, snapshot_stream.c), not mapped, so
 * a file truncated under us cannot fault.  Loading verifies the whole
 * file before it stores the first item, then stores each verified
 * block's items a batch per writer lock hold.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <patinox/error.h>

#include "snapshot_int.h"

struct reader {
	int fd;
	uint64_t size;
	struct pxs_stream st; /* the blocks, read ahead */
	struct pxs_header h;
	char *buf;
	size_t cap;
	px_snapshot_item_fn fn;
	int (*block_done)(void *arg); /* after a block's items, or NULL */
	void *arg;
	px_snapshot_progress_fn progress; /* after each block, or NULL */
	void *progress_arg;
	struct px_snapshot_info so_far; /* for @progress */
};

/* Whether @len bytes at @p are all zero. */
static bool
zeros(const char *p, size_t len)
{
	return !len || (!p[0] && !memcmp(p, p + 1, len - 1));
}

/* Version 1 headers lack the pending flush; checked, then widened. */
static int
check_v1(struct pxs_header *h, const char *region)
{
	struct pxs_header_v1 v1;

	memcpy(&v1, region, sizeof(v1));
	if (v1.check != pxs_header_v1_check(&v1) ||
	    !zeros(region + sizeof(v1), PXS_DATA_OFF - sizeof(v1)))
		return -PX_ECORRUPT;
	*h = (struct pxs_header){
	    .version = v1.version,
	    .header_bytes = v1.header_bytes,
	    .items = v1.items,
	    .blocks = v1.blocks,
	    .file_bytes = v1.file_bytes,
	    .cas = v1.cas,
	    .taken_at = v1.taken_at,
	};
	return 0;
}

static int
check_v2(struct pxs_header *h, const char *region)
{
	memcpy(h, region, sizeof(*h));
	if (h->check != pxs_header_check(h) || h->zero || h->flush_at < 0 ||
	    !zeros(region + sizeof(*h), PXS_DATA_OFF - sizeof(*h)))
		return -PX_ECORRUPT;
	return 0;
}

static int
check_header(struct reader *r)
{
	struct pxs_header *h = &r->h;
	uint32_t version;
	char *region;
	int err;

	if (r->size < PXS_DATA_OFF)
		return -PX_ECORRUPT;
	if (posix_memalign((void **)&region, PXS_ALIGN, PXS_DATA_OFF))
		return -ENOMEM; /* aligned: the file may be open O_DIRECT */
	err = pxs_pread_all(r->fd, region, PXS_DATA_OFF, 0);
	if (err)
		goto out_free;
	memcpy(&version, region + offsetof(struct pxs_header, version),
	       sizeof(version));
	if (memcmp(region, PXS_MAGIC, sizeof(h->magic)))
		err = -PX_ECORRUPT;
	else if (version == 1)
		err = check_v1(h, region);
	else if (version == PX_SNAPSHOT_VERSION)
		err = check_v2(h, region);
	else
		err = -PX_EVERSION;
	if (!err &&
	    (h->header_bytes != PXS_DATA_OFF || h->file_bytes != r->size))
		err = -PX_ECORRUPT;
out_free:
	free(region);
	return err;
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

/* The progress callback, after block @seq ended at @off. */
static int
report(struct reader *r, uint64_t seq, uint64_t off, uint64_t items)
{
	if (!r->progress)
		return 0;
	r->so_far.blocks = seq + 1;
	r->so_far.bytes = off;
	r->so_far.items = items;
	return r->progress(r->progress_arg, &r->so_far);
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
	err = pxs_stream_read(&r->st, &b, sizeof(b));
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
		err = pxs_stream_read(&r->st, r->buf, body);
	if (err)
		return err;
	if (b.check != pxs_block_check(&b, r->buf) ||
	    !zeros(r->buf + b.payload, body - b.payload))
		return -PX_ECORRUPT;
	*off += PXS_BLK_BYTES + body;
	*items += b.items;
	err = parse(r, r->buf, b.payload, b.items);
	if (!err && r->block_done)
		err = r->block_done(r->arg);
	return err ? err : report(r, seq, *off, *items);
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

/*
 * Large files are read with O_DIRECT where the file system takes it: a
 * cold file then streams at the device's rate, and a load does not fill
 * the page cache with a file it reads once per pass.  Small ones (a few
 * read-ahead chunks) are read through the page cache, where a file just
 * written usually still is.
 */
static void
maybe_direct(int fd, uint64_t size)
{
	uint64_t big = (uint64_t)CONFIG_PX_SNAPSHOT_READ_KB * 1024 *
		       CONFIG_PX_SNAPSHOT_READ_DEPTH;
	int fl = fcntl(fd, F_GETFL);

	if (size > big && fl >= 0)
		fcntl(fd, F_SETFL, fl | O_DIRECT); /* else stay buffered */
}

static int
read_file(struct reader *r, const char *path, struct px_snapshot_info *info)
{
	struct stat st;
	int err;

	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0)
		return -errno;
	if (fstat(r->fd, &st)) {
		err = -errno;
		goto out_close;
	}
	r->size = (uint64_t)st.st_size;
	maybe_direct(r->fd, r->size);
	err = check_header(r);
	if (err)
		goto out_close;
	err = pxs_stream_init(&r->st, r->fd, r->size, PXS_DATA_OFF);
	if (err)
		goto out_close;
	err = read_blocks(r);
	pxs_stream_exit(&r->st);
	if (!err && info) {
		info->items = r->h.items;
		info->blocks = r->h.blocks;
		info->bytes = r->h.file_bytes;
		info->cas = r->h.cas;
		info->taken_at = r->h.taken_at;
		info->flush_at = r->h.flush_at;
	}
out_close:
	free(r->buf);
	close(r->fd);
	return err;
}

int
px_snapshot_read(const char *path, px_snapshot_item_fn fn, void *arg,
		 struct px_snapshot_info *info)
{
	struct reader r = {.fn = fn, .arg = arg};

	return read_file(&r, path, info);
}

/*
 * Loading: the items of each verified block are collected here (they
 * point into the block buffer) and stored a batch per writer lock hold.
 */
struct loader {
	struct px_cache *c;
	size_t n;
	struct px_cache_restore_info ri;
	struct px_cache_ref batch[CONFIG_PX_SNAPSHOT_RESTORE_BATCH];
};

static int
store_batch(void *arg)
{
	struct loader *l = arg;
	int err;

	if (!l->n)
		return 0;
	err = px_cache_restore_many(l->c, l->batch, l->n, &l->ri);
	l->n = 0;
	return err == -EINVAL ? -PX_ECORRUPT : err; /* cas 0: not ours */
}

/* px_snapshot_item_fn for loading. */
static int
collect(void *arg, const struct px_cache_ref *item)
{
	struct loader *l = arg;

	l->batch[l->n++] = *item;
	return l->n == CONFIG_PX_SNAPSHOT_RESTORE_BATCH ? store_batch(l) : 0;
}

/* Set the saved pending flush again; 1 when it is due (load nothing). */
static int
restore_flush(struct px_cache *c, struct px_snapshot_info *in)
{
	if (!in->flush_at || px_cache_flush_at(c, in->flush_at) != 1)
		return 0;
	in->flushed = in->items;
	return 1;
}

/* The verifying pass of a load: the whole file, nothing stored. */
static int
verify(const char *path, const struct px_snapshot_opts *o,
       struct px_snapshot_info *in)
{
	struct reader r = {0};

	if (o) {
		r.progress = o->progress;
		r.progress_arg = o->progress_arg;
	}
	return read_file(&r, path, in);
}

int
px_snapshot_load_with(struct px_cache *c, const char *path,
		      const struct px_snapshot_opts *opts,
		      struct px_snapshot_info *info)
{
	struct px_snapshot_info tmp = {0}, *in = info ? info : &tmp;
	struct reader r = {.fn = collect, .block_done = store_batch};
	struct loader *l;
	int err;

	memset(in, 0, sizeof(*in));
	err = verify(path, opts, in);
	if (err)
		return err;
	if (restore_flush(c, in))
		goto out_floor;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->c = c;
	r.arg = l;
	if (opts) {
		r.progress = opts->progress;
		r.progress_arg = opts->progress_arg;
	}
	err = read_file(&r, path, NULL);
	in->loaded = l->ri.stored;
	in->expired = l->ri.expired;
	in->skipped = l->ri.too_big;
	free(l);
out_floor:
	px_cache_cas_floor(c, in->cas);
	return err;
}

int
px_snapshot_load(struct px_cache *c, const char *path,
		 struct px_snapshot_info *info)
{
	return px_snapshot_load_with(c, path, NULL, info);
}
