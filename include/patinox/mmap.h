/* SPDX-License-Identifier: MIT */
/*
 * File mappings: read-only, shared read-write and private copy-on-write
 * maps of a file (any offset, any length, empty files included), and
 * anonymous maps, with flush, advise, lock, protection changes and remap.
 *
 * Access through px_mmap_read() / px_mmap_write() is bounds-checked
 * (-ERANGE instead of an overrun) and survives the file being truncated
 * underneath: the SIGBUS such an access raises is caught on the faulting
 * thread and turned into -EIO (docs/region.md explains the scheme).
 * Other SIGBUS go to the disposition found when the first file map put
 * the handler in place (or SIG_DFL / SIG_IGN when a program reset it
 * since); each file map creation puts the handler back if a program
 * replaced it.
 * Access through px_mmap_data() is plain memory and has no such guard.
 *
 * Where the file cannot be mapped (a pipe, a /proc file, a filesystem
 * without mmap) the same read API works through pread(), or for a stream
 * through read() into memory, and px_mmap_backend() says so.
 *
 * Every OS call goes through struct px_mmap_hooks, for tests.
 *
 * Thread safety: px_mmap_read(), px_mmap_read_upto(), px_mmap_write(),
 * flush, advise and lock may run on several threads at once.  Remap,
 * make_read_only / make_writable and destroy must not run concurrently
 * with anything else on the same map.
 */
#ifndef PATINOX_MMAP_H
#define PATINOX_MMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <patinox/common.h>

struct px_mmap;
struct stat;

enum px_mmap_mode {
	PX_MMAP_RO = 0, /* read-only, shared */
	PX_MMAP_RW,     /* read-write, shared: writes reach the file */
	PX_MMAP_COW,    /* private copy-on-write: writes stay in memory */
};

enum px_mmap_backend {
	PX_MMAP_MAPPED = 0, /* a real mapping */
	PX_MMAP_PREAD,      /* the file refused mmap: pread / pwrite */
	PX_MMAP_STREAM,     /* unseekable (pipe, socket): read() buffered */
};

struct px_mmap_opts {
	enum px_mmap_mode mode;
	uint64_t offset; /* where the view starts; need not be aligned */
	size_t len;      /* view length; 0: to the end of the file */
	bool populate;   /* MAP_POPULATE: read ahead / prefault */
	bool huge;       /* hugepage hint, see px_mmap_create[_anon]() */
	unsigned int huge_shift; /* anon: 21 or 30; 0: Kconfig default */
	bool no_fallback;        /* -ENODEV rather than the pread fallback */
};

/* px_mmap_opts_init - read-only, whole file, no hints, fallback on. */
PX_API void px_mmap_opts_init(struct px_mmap_opts *o);

/*
 * px_mmap_create - map [offset, offset + len) of the file @fd.
 * @out:  receives the map; it keeps a duplicate of @fd
 * @fd:   opened for reading (and writing for PX_MMAP_RW)
 * @o:    NULL for the defaults
 *
 * An offset past the end of the file is -EINVAL; an offset at the end,
 * or an empty file, gives an empty map (px_mmap_data() NULL, length 0).
 * A length beyond the end of the file is allowed, as with mmap: the part
 * past the end reads as -EIO through the accessors.  The hugepage hint is
 * MADV_HUGEPAGE, and its failure is ignored.  Where mmap says ENODEV (or
 * EOPNOTSUPP), the map falls back to pread (or to buffered read() for an
 * unseekable fd) unless @o->no_fallback.
 * Returns 0, -EINVAL, -EACCES (mode and fd disagree), -ENODEV, -ENOMEM
 * or another -errno.
 */
PX_API int
px_mmap_create(struct px_mmap **out, int fd, const struct px_mmap_opts *o);

/*
 * px_mmap_create_anon - an anonymous private map of @len bytes, zeroed.
 * With @o->huge it uses MAP_HUGETLB pages of 1 << huge_shift bytes and
 * fails (-ENOMEM, -EINVAL) rather than fall back; @len is rounded up to
 * that page size.  @o->offset must be 0; the mode is RO or anything else
 * for read-write.  Returns 0 or -errno.
 */
PX_API int px_mmap_create_anon(struct px_mmap **out, size_t len,
			       const struct px_mmap_opts *o);

/* px_mmap_destroy - unmap, close the duplicate fd, free; NULL: no-op. */
PX_API void px_mmap_destroy(struct px_mmap *m);

/*
 * px_mmap_data - the first byte of the view, or NULL for an empty map and
 * for the fallback backends.  Plain memory: a truncated file raises
 * SIGBUS on access through this pointer.
 */
PX_API void *px_mmap_data(const struct px_mmap *m);

/* px_mmap_len - bytes in the view (0 when unknown: see len_known). */
PX_API size_t px_mmap_len(const struct px_mmap *m);

/* False for a fallback whose file reports no size (/proc, pipes). */
PX_API bool px_mmap_len_known(const struct px_mmap *m);

/* px_mmap_backend - whether the map is real or a fallback. */
PX_API enum px_mmap_backend px_mmap_backend(const struct px_mmap *m);
PX_API const char *px_mmap_backend_name(enum px_mmap_backend b);

/*
 * px_mmap_read - copy @len bytes at view offset @off into @buf.
 * Returns 0, -ERANGE when [off, off + len) is not inside the view (or
 * past the end of a fallback's data), -EIO when the file shrank under
 * the mapping (SIGBUS caught), or -errno from pread / read.
 */
PX_API int px_mmap_read(struct px_mmap *m, uint64_t off, void *buf, size_t len);

/*
 * px_mmap_read_upto - like px_mmap_read() but stops at the end of the
 * view or of the data: returns the bytes copied (0 at the end), -ERANGE
 * when @off is past the end of a view of known length, or -errno.
 */
PX_API ssize_t px_mmap_read_upto(struct px_mmap *m, uint64_t off, void *buf,
				 size_t len);

/*
 * px_mmap_write - copy @len bytes from @buf to view offset @off.
 * Returns 0, -ERANGE (outside the view), -EACCES (read-only map),
 * -EIO (file shrank, SIGBUS caught), -EOPNOTSUPP (copy-on-write or
 * stream fallback), or -errno from pwrite.
 */
PX_API int
px_mmap_write(struct px_mmap *m, uint64_t off, const void *buf, size_t len);

/*
 * Flush written pages to the file: msync(MS_SYNC) waits, the _async
 * variants (MS_ASYNC) start writeback and return.  Ranges are in view
 * offsets and are widened to whole pages.  The pread fallback flushes
 * with fdatasync() (its async variants return 0: pwrite already handed
 * the data to the kernel); the stream fallback has nothing to flush.
 * Returns 0, -ERANGE (range outside the view) or -errno.
 */
PX_API int px_mmap_flush(struct px_mmap *m);
PX_API int px_mmap_flush_async(struct px_mmap *m);
PX_API int px_mmap_flush_range(struct px_mmap *m, uint64_t off, size_t len);
PX_API int
px_mmap_flush_async_range(struct px_mmap *m, uint64_t off, size_t len);

/*
 * madvise(@advice) (MADV_SEQUENTIAL, MADV_WILLNEED, MADV_DONTNEED...) on
 * the whole view or a range of it.  Destructive advice is the caller's
 * choice.  Returns 0, -ERANGE, -ENODEV (fallback backends) or -errno.
 */
PX_API int px_mmap_advise(struct px_mmap *m, int advice);
PX_API int
px_mmap_advise_range(struct px_mmap *m, int advice, uint64_t off, size_t len);

/* mlock / munlock the view.  0, -ENODEV (fallback) or -errno. */
PX_API int px_mmap_lock(struct px_mmap *m);
PX_API int px_mmap_unlock(struct px_mmap *m);

/*
 * Change the protection of the view: read-only, or read-write (-EACCES
 * for a shared map of a file opened read-only).  The accessors follow:
 * px_mmap_write() on a read-only map returns -EACCES.
 * Returns 0, -ENODEV (fallback) or -errno.
 */
PX_API int px_mmap_make_read_only(struct px_mmap *m);
PX_API int px_mmap_make_writable(struct px_mmap *m);

/*
 * px_mmap_remap - change the view's length to @new_len (mremap), moving
 * it when @may_move and it cannot grow in place (px_mmap_data() changes
 * then).  Growing past the end of the file is allowed, as for create.
 * Returns 0, -EINVAL (@new_len 0), -ENOMEM (cannot grow in place),
 * -ENODEV (fallback) or -errno.
 */
PX_API int px_mmap_remap(struct px_mmap *m, size_t new_len, bool may_move);

/*
 * Hooks: every OS call of the mapping code, each returning 0 (or a
 * count, an fd) or a negative errno.  NULL members mean the real call.
 */
struct px_mmap_hooks {
	int (*mmap)(void **out, void *addr, size_t len, int prot, int flags,
		    int fd, off_t off);
	int (*munmap)(void *addr, size_t len);
	int (*mremap)(void **out, void *old, size_t old_len, size_t new_len,
		      int flags);
	int (*mprotect)(void *addr, size_t len, int prot);
	int (*msync)(void *addr, size_t len, int flags);
	int (*madvise)(void *addr, size_t len, int advice);
	int (*mlock)(const void *addr, size_t len);
	int (*munlock)(const void *addr, size_t len);
	int (*fstat)(int fd, struct stat *st);
	ssize_t (*pread)(int fd, void *buf, size_t len, off_t off);
	ssize_t (*pwrite)(int fd, const void *buf, size_t len, off_t off);
	ssize_t (*read)(int fd, void *buf, size_t len);
	int (*fdatasync)(int fd);
	int (*dup)(int fd); /* close-on-exec */
	int (*close)(int fd);
};

/* Use @h for later calls (NULL: the real ones).  Not thread safe. */
PX_API void px_mmap_set_hooks(const struct px_mmap_hooks *h);
PX_API void px_mmap_default_hooks(struct px_mmap_hooks *h);

#endif
