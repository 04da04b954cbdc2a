/* SPDX-License-Identifier: MIT */
/*
 * Private parts of snapshots: the on-disk layout shared by the writer
 * (snapshot.c) and the reader (snapshot_load.c), and the block writer
 * (snapshot_io.c) that moves sealed blocks to the file through a private
 * io_uring, or pwrite when io_uring is unavailable.
 */
#ifndef PX_SNAPSHOT_INT_H
#define PX_SNAPSHOT_INT_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <patinox/snapshot.h>

#define PXS_MAGIC        "PXSNAP\r\n" /* 8 bytes, catches text-mode mangling */
#define PXS_HDR_BYTES    80u
#define PXS_HDR_V1_BYTES 64u
#define PXS_ALIGN        4096u       /* blocks start and end on it (O_DIRECT) */
#define PXS_DATA_OFF     PXS_ALIGN   /* first block; header + zeros before */
#define PXS_BLK_MAGIC    0x4c425850u /* "PXBL" */
#define PXS_BLK_BYTES    32u
#define PXS_REC_BYTES    28u
#define PXS_BLOCK_MAX    (1u << 30) /* sanity bound for a reader */

/*
 * File header, version 2; fields little endian (x86_64 and arm64 are).
 * Version 1 had no flush_at and zero: its check covered the 56 bytes
 * before flush_at and sat where flush_at is (struct pxs_header_v1).
 */
struct pxs_header {
	char magic[8];
	uint32_t version;
	uint32_t header_bytes;
	uint64_t items;
	uint64_t blocks;
	uint64_t file_bytes;
	uint64_t cas;
	int64_t taken_at;
	int64_t flush_at; /* delayed flush_all pending then, 0: none */
	uint64_t zero;
	uint64_t check; /* XXH3-64 of the 72 bytes above */
};

_Static_assert(sizeof(struct pxs_header) == PXS_HDR_BYTES, "header size");

struct pxs_header_v1 {
	char magic[8];
	uint32_t version;
	uint32_t header_bytes;
	uint64_t items;
	uint64_t blocks;
	uint64_t file_bytes;
	uint64_t cas;
	int64_t taken_at;
	uint64_t check; /* XXH3-64 of the 56 bytes above */
};

_Static_assert(sizeof(struct pxs_header_v1) == PXS_HDR_V1_BYTES, "v1 size");

struct pxs_block {
	uint32_t magic;
	uint32_t payload;
	uint32_t items;
	uint32_t zero;
	uint64_t seq;
	uint64_t check; /* XXH3-64 of the payload, seeded by the 24 above */
};

_Static_assert(sizeof(struct pxs_block) == PXS_BLK_BYTES, "block size");

uint64_t pxs_header_check(const struct pxs_header *h);
uint64_t pxs_header_v1_check(const struct pxs_header_v1 *h);
uint64_t pxs_block_check(const struct pxs_block *b, const void *payload);

static inline uint64_t
pxs_align_up(uint64_t n)
{
	return (n + PXS_ALIGN - 1) & ~(uint64_t)(PXS_ALIGN - 1);
}

/* A block buffer: header, then records; PXS_ALIGN-aligned memory. */
struct pxs_buf {
	char *data;
	size_t len, cap;
	uint32_t items;
	bool busy;   /* write in flight */
	size_t done; /* bytes of it written so far */
	uint64_t off;
};

/* The block writer. */
struct pxs_io {
	int fd;
	bool uring;
	struct io_uring ring;
	unsigned queued;   /* SQEs not yet submitted */
	unsigned inflight; /* writes submitted, not completed */
	unsigned batch;
	int err; /* first write error */
};

int pxs_io_init(struct pxs_io *io, int fd, unsigned depth, bool no_uring);
void pxs_io_exit(struct pxs_io *io);
int pxs_io_write(struct pxs_io *io, struct pxs_buf *b);
int pxs_io_submit(struct pxs_io *io);
int pxs_io_reap(struct pxs_io *io, bool wait);
int pxs_io_fsync(struct pxs_io *io);

/*
 * The reader's input: bytes from @start to the end of @fd, read ahead in
 * chunks (snapshot_stream.c).  pxs_stream_read() copies the next @len
 * bytes out; -PX_ECORRUPT past the end of the file.
 */
struct pxs_stream {
	int fd;
	bool uring;
	struct io_uring ring;
	uint64_t size, start;
	size_t chunk;      /* CONFIG_PX_SNAPSHOT_READ_KB */
	unsigned depth;    /* chunks in memory, CONFIG_PX_SNAPSHOT_READ_DEPTH */
	char *mem;         /* depth chunks, PXS_ALIGN-aligned */
	int32_t *res;      /* per slot: bytes read, -errno, or in flight */
	uint64_t next;     /* chunks whose read was queued */
	uint64_t cur;      /* the chunk being read out */
	size_t pos;        /* bytes of it read out */
	unsigned inflight; /* reads not completed */
};

int
pxs_stream_init(struct pxs_stream *st, int fd, uint64_t size, uint64_t start);
void pxs_stream_exit(struct pxs_stream *st);
int pxs_stream_read(struct pxs_stream *st, void *dst, size_t len);
/* pread @len bytes into @buf at @off; -PX_ECORRUPT at an early end. */
int pxs_pread_all(int fd, void *buf, size_t len, uint64_t off);

#endif
