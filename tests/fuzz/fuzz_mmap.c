// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the bounds-checked accessors of <patinox/mmap.h>.
 *
 * A shared read-write map of a memfd (at an offset that need not be page
 * aligned, with a view that may reach past the end of the file) is read,
 * written, truncated under the mapping, remapped and made read-only, by
 * operations decoded from the input, with offsets and lengths that include
 * values near 2^32 and 2^64.  A shadow copy of the file says what each
 * access must return:
 *  - outside the view (overflowing sums included): -ERANGE, never a touch;
 *  - inside the view but on a page past the end of the file: -EIO (the
 *    SIGBUS is caught), never a crash;
 *  - a write to a read-only view: -EACCES;
 *  - otherwise 0, and the bytes of the file.
 * Bytes written into the tail of the last page, past the end of the file,
 * are not the file's: the shadow stops comparing them until a truncation
 * settles them.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <patinox/mmap.h>

#define FILE_MAX (64u << 10)
#define PAGE     4096u

static uint8_t shadow[2 * FILE_MAX];
static uint8_t taint[2 * FILE_MAX];
static uint8_t buf[2 * FILE_MAX];
static uint64_t fsize;    /* file size */
static uint64_t view_off; /* file offset of the view */
static uint64_t view_len;
static int read_only;

struct in {
	const uint8_t *p;
	size_t n;
};

static uint64_t
take(struct in *in, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++) {
		v = v << 8 | (in->n ? *in->p : 0);
		if (in->n) {
			in->p++;
			in->n--;
		}
	}
	return v;
}

static void
fail(const char *what, long got, long want, uint64_t off, uint64_t len)
{
	fprintf(stderr,
		"fuzz_mmap: %s: got %ld, want %ld (off %llu len %llu, file "
		"%llu, view %llu+%llu)\n",
		what, got, want, (unsigned long long)off,
		(unsigned long long)len, (unsigned long long)fsize,
		(unsigned long long)view_off, (unsigned long long)view_len);
	abort();
}

/* An offset or length: small, near the view's end, or near 2^32 / 2^64. */
static uint64_t
pick(struct in *in)
{
	uint8_t k = (uint8_t)take(in, 1);
	uint64_t v = take(in, 2);

	switch (k % 8) {
	case 0:
		return UINT64_MAX - v % 64;
	case 1:
		return ((uint64_t)1 << 32) - 32 + v % 64;
	case 2:
		return view_len - v % 32;
	case 3:
		return view_len + v % 32;
	default:
		return v % (view_len + 64);
	}
}

/* What an access of [off, off + len) of the view must return. */
static int
expected(uint64_t off, uint64_t len, int write)
{
	uint64_t end, file_end, page_end;

	if (off > view_len || len > view_len - off)
		return -ERANGE;
	if (write && read_only)
		return -EACCES;
	if (len == 0)
		return 0;
	end = view_off + off + len;
	page_end = (fsize + PAGE - 1) / PAGE * PAGE;
	file_end = page_end;
	return end > file_end ? -EIO : 0;
}

static void
compare(uint64_t off, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint64_t f = view_off + off + i;

		if (taint[f] || f >= fsize)
			continue;
		if (buf[i] != shadow[f])
			fail("read returned other bytes", buf[i], shadow[f],
			     off + i, len);
	}
}

static void
op_read(struct px_mmap *m, struct in *in)
{
	uint64_t off = pick(in), len = pick(in) % (2 * FILE_MAX);
	int want = expected(off, len, 0);
	int rc = px_mmap_read(m, off, buf, len);

	if (rc != want)
		fail("px_mmap_read", rc, want, off, len);
	if (rc == 0)
		compare(off, len);
}

static void
op_read_upto(struct px_mmap *m, struct in *in)
{
	uint64_t off = pick(in), len = pick(in) % (2 * FILE_MAX);
	ssize_t rc = px_mmap_read_upto(m, off, buf, len);

	if (off > view_len) {
		if (rc != -ERANGE)
			fail("px_mmap_read_upto past the end", rc, -ERANGE, off,
			     len);
		return;
	}
	if (rc < 0 && rc != -EIO)
		fail("px_mmap_read_upto error", rc, -EIO, off, len);
	if (rc > (ssize_t)len || (rc > 0 && (uint64_t)rc > view_len - off))
		fail("px_mmap_read_upto copied too much", rc, (long)len, off,
		     len);
	if (rc > 0)
		compare(off, (size_t)rc);
}

static void
op_write(struct px_mmap *m, struct in *in)
{
	uint64_t off = pick(in), len = pick(in) % (2 * FILE_MAX);
	uint8_t seed = (uint8_t)take(in, 1);
	int want = expected(off, len, 1);
	int rc;

	for (uint64_t i = 0; i < len && i < sizeof(buf); i++)
		buf[i] = (uint8_t)(seed + i * 7);
	rc = px_mmap_write(m, off, buf, len);
	if (rc != want)
		fail("px_mmap_write", rc, want, off, len);
	if (rc != 0 && rc != -EIO)
		return;
	/* A write cut short by SIGBUS may have stored a prefix. */
	for (uint64_t i = 0; i < len; i++) {
		uint64_t f = view_off + off + i;

		shadow[f] = buf[i];
		if (f >= fsize || rc == -EIO)
			taint[f] = 1;
	}
}

static void
op_truncate(int fd, struct in *in)
{
	uint64_t n = take(in, 2) % (FILE_MAX + 1);

	if (ftruncate(fd, (off_t)n))
		abort();
	if (n < fsize) {
		/* The kernel zeroes the tail of the new last page. */
		memset(shadow + n, 0, sizeof(shadow) - n);
		memset(taint + n, 0, sizeof(taint) - n);
	}
	fsize = n;
}

static void
op_remap(struct px_mmap *m, struct in *in)
{
	uint64_t n = 1 + take(in, 2) % FILE_MAX;
	int rc = px_mmap_remap(m, n, true);

	if (rc != 0)
		fail("px_mmap_remap", rc, 0, n, 0);
	view_len = n;
	if (px_mmap_len(m) != view_len)
		fail("px_mmap_len after remap", (long)px_mmap_len(m),
		     (long)view_len, 0, 0);
}

static void
op_protect(struct px_mmap *m, struct in *in)
{
	int ro = (int)(take(in, 1) & 1);
	int rc = ro ? px_mmap_make_read_only(m) : px_mmap_make_writable(m);

	if (rc != 0)
		fail("protection change", rc, 0, 0, 0);
	read_only = ro;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = {data, size};
	struct px_mmap_opts o;
	struct px_mmap *m;
	int fd, rc;

	memset(shadow, 0, sizeof(shadow));
	memset(taint, 0, sizeof(taint));
	read_only = 0;
	fsize = 1 + take(&in, 2) % FILE_MAX;
	view_off = take(&in, 1) & 1 ? take(&in, 2) % fsize : 0;
	view_len = 1 + take(&in, 2) % FILE_MAX;
	fd = memfd_create("fuzz_mmap", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)fsize))
		abort();
	px_mmap_opts_init(&o);
	o.mode = PX_MMAP_RW;
	o.offset = view_off;
	o.len = view_len;
	rc = px_mmap_create(&m, fd, &o);
	if (rc)
		fail("px_mmap_create", rc, 0, view_off, view_len);
	while (in.n) {
		switch (take(&in, 1) % 8) {
		case 0:
		case 1:
			op_read(m, &in);
			break;
		case 2:
			op_read_upto(m, &in);
			break;
		case 3:
		case 4:
			op_write(m, &in);
			break;
		case 5:
			op_truncate(fd, &in);
			break;
		case 6:
			op_remap(m, &in);
			break;
		default:
			op_protect(m, &in);
			break;
		}
	}
	px_mmap_destroy(m);
	close(fd);
	return 0;
}
