// SPDX-License-Identifier: MIT
/*
 * File mappings in the manner of memmap2: read-only, shared and private
 * maps of any part of a file, anonymous maps, and the operations on them.
 * The accessors check bounds and survive a file truncated under the
 * mapping by catching SIGBUS around the copy (see "The SIGBUS guard"
 * below and docs/region.md).  Files that cannot be mapped are served by
 * pread(), or by read() into a buffer when they cannot seek.
 *
 * Lock order: only the stream fallback takes a lock (m->stream_lock), and
 * it calls nothing that takes another.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <patinox/mmap.h>

#include "os.h"
#include "region_internal.h"

struct px_mmap {
	char *map;      /* page-aligned start of the mapping, or NULL */
	size_t map_len; /* bytes mapped, a multiple of the page size */
	size_t delta;   /* where the view starts inside the mapping */
	size_t len;     /* view length */
	bool len_known;
	uint64_t offset; /* file offset of the view */
	int fd;          /* our duplicate, -1 for anonymous maps */
	size_t page;     /* page size of the mapping */
	int prot;
	int flags;
	enum px_mmap_mode mode;
	enum px_mmap_backend backend;
	/* The stream fallback: everything read so far, from the start. */
	pthread_mutex_t stream_lock;
	char *buf;
	size_t buf_len, buf_cap;
	bool eof;
};

/* ---- hooks ---- */

static int
os_mremap(void **out, void *old, size_t old_len, size_t new_len, int flags)
{
	void *p = mremap(old, old_len, new_len, flags);

	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

static int
os_mprotect(void *addr, size_t len, int prot)
{
	return mprotect(addr, len, prot) ? -errno : 0;
}

static int
os_msync(void *addr, size_t len, int flags)
{
	return msync(addr, len, flags) ? -errno : 0;
}

static int
os_munlock(const void *addr, size_t len)
{
	return munlock(addr, len) ? -errno : 0;
}

static ssize_t
os_pread(int fd, void *buf, size_t len, off_t off)
{
	ssize_t n = pread(fd, buf, len, off);

	return n < 0 ? -errno : n;
}

static ssize_t
os_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	ssize_t n = pwrite(fd, buf, len, off);

	return n < 0 ? -errno : n;
}

static ssize_t
os_read(int fd, void *buf, size_t len)
{
	ssize_t n = read(fd, buf, len);

	return n < 0 ? -errno : n;
}

static int
os_fdatasync(int fd)
{
	return fdatasync(fd) ? -errno : 0;
}

static int
os_dup(int fd)
{
	int ret = fcntl(fd, F_DUPFD_CLOEXEC, 0);

	return ret < 0 ? -errno : ret;
}

/* One initializer for the constant and the mutable copy (C needs a
 * constant expression for a static; a const object is not one). */
#define OS_HOOKS_INIT                                                         \
	{                                                                     \
		.mmap = px_os_mmap, .munmap = px_os_munmap,                   \
		.mremap = os_mremap, .mprotect = os_mprotect,                 \
		.msync = os_msync, .madvise = px_os_madvise,                  \
		.mlock = px_os_mlock, .munlock = os_munlock,                  \
		.fstat = px_os_fstat, .pread = os_pread, .pwrite = os_pwrite, \
		.read = os_read, .fdatasync = os_fdatasync, .dup = os_dup,    \
		.close = px_os_close,                                         \
	}

static const struct px_mmap_hooks os_hooks = OS_HOOKS_INIT;

static struct px_mmap_hooks os = OS_HOOKS_INIT;

void
px_mmap_default_hooks(struct px_mmap_hooks *h)
{
	*h = os_hooks;
}

#define PICK(h, m) ((h)->m ? (h)->m : os_hooks.m)

void
px_mmap_set_hooks(const struct px_mmap_hooks *h)
{
	if (!h)
		h = &os_hooks;
	os = (struct px_mmap_hooks){
	    .mmap = PICK(h, mmap),
	    .munmap = PICK(h, munmap),
	    .mremap = PICK(h, mremap),
	    .mprotect = PICK(h, mprotect),
	    .msync = PICK(h, msync),
	    .madvise = PICK(h, madvise),
	    .mlock = PICK(h, mlock),
	    .munlock = PICK(h, munlock),
	    .fstat = PICK(h, fstat),
	    .pread = PICK(h, pread),
	    .pwrite = PICK(h, pwrite),
	    .read = PICK(h, read),
	    .fdatasync = PICK(h, fdatasync),
	    .dup = PICK(h, dup),
	    .close = PICK(h, close),
	};
}

/*
 * ---- The SIGBUS guard ----
 *
 * A copy from or to a file mapping raises SIGBUS when the page lies past
 * the current end of the file.  The kernel sends that signal to the
 * faulting thread, so each thread keeps its own guard in thread-local
 * storage: the range being accessed and a jump buffer.  The process-wide
 * handler (installed once) jumps back to the guarded copy when the fault
 * address lies in the guarded range of the faulting thread, and
 * otherwise hands the signal to the handler that was there before, or
 * restores the default action and re-raises it.
 *
 * The handler is installed with SA_NODEFER so that SIGBUS is not blocked
 * after the jump; sigsetjmp() then need not save the signal mask, which
 * keeps a guarded copy free of system calls.  The guard variables use the
 * initial-exec TLS model so the handler touches no lazily allocated TLS.
 */
struct sigbus_guard {
	sigjmp_buf *jump;
	uintptr_t lo, hi;
};

static __thread struct sigbus_guard guard
    __attribute__((tls_model("initial-exec")));
/*
 * Where faults not ours go: the disposition found when ours went in.
 * Written under sigbus_lock into the slot the handler does not read,
 * then published; the handler reads the published slot without a lock.
 */
static struct sigaction sigbus_prev_slot[2];
static const struct sigaction *_Atomic sigbus_prev;
static pthread_mutex_t sigbus_lock = PTHREAD_MUTEX_INITIALIZER;

static void
sigbus_chain(int sig, siginfo_t *si, void *uc)
{
	const struct sigaction *prev =
	    atomic_load_explicit(&sigbus_prev, memory_order_acquire);

	if (prev && (prev->sa_flags & SA_SIGINFO)) {
		prev->sa_sigaction(sig, si, uc);
		return;
	}
	if (prev && prev->sa_handler != SIG_DFL &&
	    prev->sa_handler != SIG_IGN) {
		prev->sa_handler(sig);
		return;
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * Records @cur as the disposition to chain to, the first time and when a
 * program reset SIGBUS to SIG_DFL or SIG_IGN.  Never a handler found over
 * ours later: it usually chains back to ours, and would make a loop.
 * Lock held.
 */
static void
sigbus_record(const struct sigaction *cur)
{
	const struct sigaction *prev = atomic_load(&sigbus_prev);
	struct sigaction *slot;

	if (prev &&
	    (cur->sa_flags & SA_SIGINFO ||
	     (cur->sa_handler != SIG_DFL && cur->sa_handler != SIG_IGN)))
		return;
	slot = prev == &sigbus_prev_slot[0] ? &sigbus_prev_slot[1]
					    : &sigbus_prev_slot[0];
	*slot = *cur;
	atomic_store_explicit(&sigbus_prev, slot, memory_order_release);
}

static void
sigbus_handler(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;

	if (guard.jump && a >= guard.lo && a < guard.hi)
		siglongjmp(*guard.jump, 1);
	sigbus_chain(sig, si, uc);
}

/*
 * Installs the handler unless it is in place.  Called at every creation
 * of a file map, so guarded copies keep working when a program (or a test
 * framework) installed a handler over ours since.  Faults not ours chain
 * as sigbus_record() says.
 */
static int
sigbus_install(void)
{
	struct sigaction sa =
			     {
				 .sa_sigaction = sigbus_handler,
				 .sa_flags =
				     SA_SIGINFO | SA_NODEFER | SA_ONSTACK,
			     },
			 cur;
	int ret = 0;

	sigemptyset(&sa.sa_mask);
	pthread_mutex_lock(&sigbus_lock);
	if (sigaction(SIGBUS, NULL, &cur) != 0)
		ret = -errno;
	else if (!(cur.sa_flags & SA_SIGINFO) ||
		 cur.sa_sigaction != sigbus_handler) {
		sigbus_record(&cur);
		if (sigaction(SIGBUS, &sa, NULL) != 0)
			ret = -errno;
	}
	pthread_mutex_unlock(&sigbus_lock);
	return ret;
}

/*
 * After a jump out of the handler: SA_NODEFER kept SIGBUS unblocked, but
 * a wrapper between the kernel and our handler (ThreadSanitizer's) may
 * install its own without it.  A blocked SIGBUS on the next fault would
 * kill the process, so unblock it; this costs a system call on the
 * fault path only.
 */
static void
sigbus_unblock(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGBUS);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/*
 * Copies @n bytes; a SIGBUS on an address in [@lo, @lo + @span) ends the
 * copy with -EIO.  Guards nest: a signal handler may use the accessors.
 */
static int
guarded_copy(void *dst, const void *src, size_t n, const void *lo, size_t span)
{
	struct sigbus_guard saved = guard;
	sigjmp_buf jump;

	if (sigsetjmp(jump, 0)) {
		guard = saved;
		sigbus_unblock();
		return -EIO;
	}
	guard.lo = (uintptr_t)lo;
	guard.hi = (uintptr_t)lo + span;
	atomic_signal_fence(memory_order_seq_cst);
	guard.jump = &jump;
	atomic_signal_fence(memory_order_seq_cst);
	memcpy(dst, src, n);
	atomic_signal_fence(memory_order_seq_cst);
	guard = saved;
	return 0;
}

/* ---- creation ---- */

void
px_mmap_opts_init(struct px_mmap_opts *o)
{
	*o = (struct px_mmap_opts){.mode = PX_MMAP_RO};
}

static struct px_mmap *
map_alloc(const struct px_mmap_opts *o)
{
	struct px_mmap *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->fd = -1;
	m->mode = o->mode;
	m->offset = o->offset;
	m->len_known = true;
	m->page = px_base_page_size();
	m->flags = o->mode == PX_MMAP_COW ? MAP_PRIVATE : MAP_SHARED;
	if (o->populate)
		m->flags |= MAP_POPULATE;
	m->prot = o->mode == PX_MMAP_RO ? PROT_READ : PROT_READ | PROT_WRITE;
	pthread_mutex_init(&m->stream_lock, NULL);
	return m;
}

static void
map_free(struct px_mmap *m)
{
	if (m->map)
		os.munmap(m->map, m->map_len);
	if (m->fd >= 0)
		os.close(m->fd);
	pthread_mutex_destroy(&m->stream_lock);
	free(m->buf);
	free(m);
}

static bool
mmap_refused(int err)
{
	return err == -ENODEV || err == -EOPNOTSUPP || err == -ENOSYS;
}

/* Maps the view [offset, offset + len) of the file. */
static int
map_file(struct px_mmap *m, size_t len, const struct px_mmap_opts *o)
{
	size_t page = px_base_page_size();
	uint64_t start = m->offset & ~(uint64_t)(page - 1);
	void *p;
	int ret;

	m->delta = (size_t)(m->offset - start);
	if (len > SIZE_MAX - m->delta - page ||
	    m->offset > (uint64_t)INT64_MAX - len)
		return -EINVAL;
	m->map_len = px_round_up(len + m->delta, page);
	ret = os.mmap(&p, NULL, m->map_len, m->prot, m->flags, m->fd,
		      (off_t)start);
	if (ret < 0) {
		m->map_len = 0;
		return ret;
	}
	m->map = p;
	m->len = len;
	if (o->huge)
		os.madvise(p, m->map_len, MADV_HUGEPAGE);
	return 0;
}

/* An empty view: is the file mappable at all?  Tried with one page. */
static int
probe_empty(struct px_mmap *m)
{
	size_t page = px_base_page_size();
	void *p;
	int ret;

	ret = os.mmap(&p, NULL, page, PROT_READ, MAP_SHARED, m->fd, 0);
	if (ret < 0)
		return ret;
	os.munmap(p, page);
	m->len = 0;
	/* Where the view will start in a mapping px_mmap_remap() makes. */
	m->delta = (size_t)(m->offset & (page - 1));
	return 0;
}

/* -EACCES when the fd's access mode does not allow @mode, as mmap says
 * it for a mapping; the fallbacks make no mapping to say it. */
static int
fd_allows(int fd, enum px_mmap_mode mode)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	if ((fl & O_ACCMODE) == O_WRONLY)
		return -EACCES;
	if (mode == PX_MMAP_RW && (fl & O_ACCMODE) != O_RDWR)
		return -EACCES;
	return 0;
}

static int
use_fallback(struct px_mmap *m, const struct px_mmap_opts *o,
	     const struct stat *st)
{
	char probe;
	ssize_t n;
	int ret;

	if (o->no_fallback)
		return -ENODEV;
	ret = fd_allows(m->fd, o->mode);
	if (ret < 0)
		return ret;
	n = os.pread(m->fd, &probe, 0, (off_t)m->offset);
	if (n < 0 && n != -ESPIPE)
		return (int)n;
	m->backend = n == -ESPIPE ? PX_MMAP_STREAM : PX_MMAP_PREAD;
	m->len = o->len;
	if (!o->len && S_ISREG(st->st_mode) && st->st_size > 0)
		m->len = (size_t)st->st_size - (size_t)m->offset;
	m->len_known = m->len > 0;
	return 0;
}

/* The view's length from the file size; -EINVAL past the end. */
static int
view_len(const struct px_mmap_opts *o, const struct stat *st, size_t *len)
{
	uint64_t size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0;

	*len = o->len;
	if (!S_ISREG(st->st_mode) || size == 0)
		return 0;
	if (o->offset > size)
		return -EINVAL; /* with or without a length */
	if (!o->len)
		*len = (size_t)(size - o->offset);
	return 0;
}

static int
open_view(struct px_mmap *m, const struct px_mmap_opts *o)
{
	struct stat st;
	size_t len;
	int ret;

	ret = os.fstat(m->fd, &st);
	if (ret < 0)
		return ret;
	ret = view_len(o, &st, &len);
	if (ret < 0)
		return ret;
	ret = len ? map_file(m, len, o) : probe_empty(m);
	if (mmap_refused(ret))
		return use_fallback(m, o, &st);
	/* A view of a mappable file, empty or of a regular file that says
	 * it is empty: not past its end. */
	if (ret == 0 && (len == 0 || S_ISREG(st.st_mode)) &&
	    o->offset > (uint64_t)st.st_size)
		return -EINVAL;
	return ret;
}

int
px_mmap_create(struct px_mmap **out, int fd, const struct px_mmap_opts *o)
{
	struct px_mmap_opts def;
	struct px_mmap *m;
	int ret;

	if (!o) {
		px_mmap_opts_init(&def);
		o = &def;
	}
	if (!out || fd < 0 || o->mode > PX_MMAP_COW)
		return fd < 0 ? -EBADF : -EINVAL;
	ret = sigbus_install();
	if (ret < 0)
		return ret;
	m = map_alloc(o);
	if (!m)
		return -ENOMEM;
	ret = os.dup(fd);
	if (ret < 0)
		goto out_free;
	m->fd = ret;
	ret = open_view(m, o);
	if (ret < 0)
		goto out_free;
	*out = m;
	return 0;

out_free:
	map_free(m);
	return ret;
}

static unsigned int
huge_shift(const struct px_mmap_opts *o)
{
	return o->huge_shift ? o->huge_shift : CONFIG_PX_MMAP_HUGE_SHIFT;
}

int
px_mmap_create_anon(struct px_mmap **out, size_t len,
		    const struct px_mmap_opts *o)
{
	struct px_mmap_opts def;
	struct px_mmap *m;
	size_t page = px_base_page_size();
	void *p;
	int ret;

	if (!o) {
		px_mmap_opts_init(&def);
		def.mode = PX_MMAP_RW;
		o = &def;
	}
	if (!out || len == 0 || o->offset || o->mode > PX_MMAP_COW ||
	    (o->huge && (huge_shift(o) < 21 || huge_shift(o) > 30)))
		return -EINVAL;
	if (o->huge)
		page = (size_t)1 << huge_shift(o);
	if (len > SIZE_MAX - page)
		return -ENOMEM;
	m = map_alloc(o);
	if (!m)
		return -ENOMEM;
	m->page = page;
	m->flags = MAP_PRIVATE | MAP_ANONYMOUS | (m->flags & MAP_POPULATE);
	if (o->huge)
		m->flags |=
		    MAP_HUGETLB | (int)(huge_shift(o) << MAP_HUGE_SHIFT);
	m->map_len = px_round_up(len, page);
	ret = os.mmap(&p, NULL, m->map_len, m->prot, m->flags, -1, 0);
	if (ret < 0) {
		m->map_len = 0;
		map_free(m);
		return ret;
	}
	m->map = p;
	m->len = len;
	*out = m;
	return 0;
}

void
px_mmap_destroy(struct px_mmap *m)
{
	if (m)
		map_free(m);
}

void *
px_mmap_data(const struct px_mmap *m)
{
	return m->map ? m->map + m->delta : NULL;
}

size_t
px_mmap_len(const struct px_mmap *m)
{
	return m->len;
}

bool
px_mmap_len_known(const struct px_mmap *m)
{
	return m->len_known;
}

enum px_mmap_backend
px_mmap_backend(const struct px_mmap *m)
{
	return m->backend;
}

const char *
px_mmap_backend_name(enum px_mmap_backend b)
{
	switch (b) {
	case PX_MMAP_MAPPED:
		return "mmap";
	case PX_MMAP_PREAD:
		return "pread";
	case PX_MMAP_STREAM:
		return "stream";
	}
	return "unknown";
}

/* ---- accessors ---- */

/* [off, off + len) inside a view of @size bytes, without overflow. */
static bool
in_bounds(uint64_t off, size_t len, size_t size)
{
	return off <= size && len <= size - off;
}

/*
 * The file position of view offset @off, for the pread and stream
 * fallbacks: -ERANGE when m->offset + off wraps or passes what off_t
 * holds.  @len is cut so that the end stays within off_t too.
 */
static int
file_pos(const struct px_mmap *m, uint64_t off, size_t *len, uint64_t *pos)
{
	if (off > UINT64_MAX - m->offset || m->offset + off > INT64_MAX)
		return -ERANGE;
	*pos = m->offset + off;
	if (*len > INT64_MAX - *pos)
		*len = (size_t)(INT64_MAX - *pos);
	return 0;
}

static ssize_t
pread_upto(struct px_mmap *m, uint64_t off, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	if (file_pos(m, off, &len, &(uint64_t){0}) < 0)
		return -ERANGE;
	while (got < len) {
		n = os.pread(m->fd, buf + got, len - got,
			     (off_t)(m->offset + off + got));
		if (n == -EINTR)
			continue;
		if (n < 0)
			return n;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Reads the stream until it holds @need bytes or ends.  Lock held. */
static int
stream_fill_locked(struct px_mmap *m, size_t need)
{
	size_t cap;
	ssize_t n;
	char *p;

	while (m->buf_len < need && !m->eof) {
		if (m->buf_cap - m->buf_len < CONFIG_PX_MMAP_STREAM_CHUNK) {
			cap = m->buf_cap * 2 + CONFIG_PX_MMAP_STREAM_CHUNK;
			p = realloc(m->buf, cap);
			if (!p)
				return -ENOMEM;
			m->buf = p;
			m->buf_cap = cap;
		}
		n = os.read(m->fd, m->buf + m->buf_len,
			    m->buf_cap - m->buf_len);
		if (n == -EINTR)
			continue;
		if (n < 0)
			return (int)n;
		m->eof = n == 0;
		m->buf_len += (size_t)n;
	}
	return 0;
}

static ssize_t
stream_upto(struct px_mmap *m, uint64_t off, char *buf, size_t len)
{
	uint64_t at;
	ssize_t ret = 0;
	size_t n;

	if (file_pos(m, off, &len, &at) < 0 || at > SIZE_MAX - len)
		return -ERANGE;
	pthread_mutex_lock(&m->stream_lock);
	ret = stream_fill_locked(m, (size_t)at + len);
	if (ret == 0 && at <= m->buf_len) {
		n = m->buf_len - (size_t)at < len ? m->buf_len - (size_t)at
						  : len;
		memcpy(buf, m->buf + at, n);
		ret = (ssize_t)n;
	}
	pthread_mutex_unlock(&m->stream_lock);
	return ret;
}

/* Copies out of the mapping: bounded by the caller, guarded here. */
static int
mapped_copy_out(struct px_mmap *m, uint64_t off, void *buf, size_t len)
{
	const char *src = m->map + m->delta + off;

	if (len == 0)
		return 0;
	if (m->fd < 0)
		return memcpy(buf, src, len), 0;
	return guarded_copy(buf, src, len, m->map, m->map_len);
}

ssize_t
px_mmap_read_upto(struct px_mmap *m, uint64_t off, void *buf, size_t len)
{
	int ret;

	if (m->len_known && off > m->len)
		return -ERANGE;
	if (m->len_known && len > m->len - off)
		len = (size_t)(m->len - off);
	if (m->backend == PX_MMAP_PREAD)
		return pread_upto(m, off, buf, len);
	if (m->backend == PX_MMAP_STREAM)
		return stream_upto(m, off, buf, len);
	ret = mapped_copy_out(m, off, buf, len);
	return ret < 0 ? ret : (ssize_t)len;
}

int
px_mmap_read(struct px_mmap *m, uint64_t off, void *buf, size_t len)
{
	ssize_t n;

	if (m->len_known && !in_bounds(off, len, m->len))
		return -ERANGE;
	n = px_mmap_read_upto(m, off, buf, len);
	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : -ERANGE;
}

static int
pwrite_all(struct px_mmap *m, uint64_t off, const char *buf, size_t len)
{
	size_t done = 0, room = len;
	ssize_t n;

	if (file_pos(m, off, &room, &(uint64_t){0}) < 0 || room < len)
		return -ERANGE;
	while (done < len) {
		n = os.pwrite(m->fd, buf + done, len - done,
			      (off_t)(m->offset + off + done));
		if (n == -EINTR)
			continue;
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

int
px_mmap_write(struct px_mmap *m, uint64_t off, const void *buf, size_t len)
{
	char *dst;

	if (m->len_known && !in_bounds(off, len, m->len))
		return -ERANGE;
	if (!(m->prot & PROT_WRITE))
		return -EACCES;
	if (m->backend == PX_MMAP_STREAM ||
	    (m->backend == PX_MMAP_PREAD && m->mode == PX_MMAP_COW))
		return -EOPNOTSUPP;
	if (m->backend == PX_MMAP_PREAD)
		return pwrite_all(m, off, buf, len);
	if (len == 0)
		return 0;
	dst = m->map + m->delta + off;
	if (m->fd < 0)
		return memcpy(dst, buf, len), 0;
	return guarded_copy(dst, buf, len, m->map, m->map_len);
}

/* ---- operations on the mapping ---- */

/* The page-aligned span of view range [off, off + len). */
static int
span(const struct px_mmap *m, uint64_t off, size_t len, char **addr, size_t *n)
{
	size_t page = m->page;
	uintptr_t a, end;

	if (!in_bounds(off, len, m->len))
		return -ERANGE;
	a = (uintptr_t)(m->map + m->delta + off);
	end = a + len;
	*addr = (char *)(a & ~(uintptr_t)(page - 1));
	*n = end - (uintptr_t)*addr;
	return 0;
}

static int
sync_range(struct px_mmap *m, uint64_t off, size_t len, int flags)
{
	size_t n;
	char *a;
	int ret;

	if (m->backend == PX_MMAP_PREAD)
		return flags == MS_SYNC ? os.fdatasync(m->fd) : 0;
	if (m->backend == PX_MMAP_STREAM)
		return 0;
	ret = span(m, off, len, &a, &n);
	if (ret < 0 || n == 0 || !m->map)
		return ret;
	return os.msync(a, n, flags);
}

int
px_mmap_flush(struct px_mmap *m)
{
	return sync_range(m, 0, m->len, MS_SYNC);
}

int
px_mmap_flush_async(struct px_mmap *m)
{
	return sync_range(m, 0, m->len, MS_ASYNC);
}

int
px_mmap_flush_range(struct px_mmap *m, uint64_t off, size_t len)
{
	return sync_range(m, off, len, MS_SYNC);
}

int
px_mmap_flush_async_range(struct px_mmap *m, uint64_t off, size_t len)
{
	return sync_range(m, off, len, MS_ASYNC);
}

int
px_mmap_advise_range(struct px_mmap *m, int advice, uint64_t off, size_t len)
{
	size_t n;
	char *a;
	int ret;

	if (m->backend != PX_MMAP_MAPPED)
		return -ENODEV;
	ret = span(m, off, len, &a, &n);
	if (ret < 0 || n == 0 || !m->map)
		return ret;
	return os.madvise(a, n, advice);
}

int
px_mmap_advise(struct px_mmap *m, int advice)
{
	return px_mmap_advise_range(m, advice, 0, m->len);
}

int
px_mmap_lock(struct px_mmap *m)
{
	if (m->backend != PX_MMAP_MAPPED)
		return -ENODEV;
	return m->map ? os.mlock(m->map, m->map_len) : 0;
}

int
px_mmap_unlock(struct px_mmap *m)
{
	if (m->backend != PX_MMAP_MAPPED)
		return -ENODEV;
	return m->map ? os.munlock(m->map, m->map_len) : 0;
}

static int
protect(struct px_mmap *m, int prot)
{
	int ret = 0;

	if (m->backend != PX_MMAP_MAPPED)
		return -ENODEV;
	if (m->map)
		ret = os.mprotect(m->map, m->map_len, prot);
	if (ret == 0)
		m->prot = prot;
	return ret;
}

int
px_mmap_make_read_only(struct px_mmap *m)
{
	return protect(m, PROT_READ);
}

int
px_mmap_make_writable(struct px_mmap *m)
{
	return protect(m, PROT_READ | PROT_WRITE);
}

/* Remapping an empty view: a fresh mapping of the file. */
static int
remap_empty(struct px_mmap *m, size_t new_len, size_t map_len)
{
	void *p;
	int ret;

	ret = os.mmap(&p, NULL, map_len, m->prot, m->flags & ~MAP_POPULATE,
		      m->fd, (off_t)(m->offset - m->delta));
	if (ret < 0)
		return ret;
	m->map = p;
	m->map_len = map_len;
	m->len = new_len;
	return 0;
}

int
px_mmap_remap(struct px_mmap *m, size_t new_len, bool may_move)
{
	size_t page, map_len;
	void *p;
	int ret;

	if (m->backend != PX_MMAP_MAPPED)
		return -ENODEV;
	page = m->page;
	if (new_len == 0 || new_len > SIZE_MAX - m->delta - page)
		return -EINVAL;
	map_len = px_round_up(new_len + m->delta, page);
	if (!m->map)
		return remap_empty(m, new_len, map_len);
	ret = os.mremap(&p, m->map, m->map_len, map_len,
			may_move ? MREMAP_MAYMOVE : 0);
	if (ret < 0)
		return ret;
	m->map = p;
	m->map_len = map_len;
	m->len = new_len;
	return 0;
}
