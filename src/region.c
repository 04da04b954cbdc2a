// SPDX-License-Identifier: MIT
/*
 * Regions: anonymous or memfd-backed memory on hugetlb pages, transparent
 * hugepages or base pages.  Creation walks a fallback chain, places the
 * mapping inside a PROT_NONE reservation (aligned for hugepages, and kept
 * apart from neighbouring mappings so smaps describes the region alone),
 * binds it to NUMA nodes before the first touch, populates, collapses and
 * locks it on request, and finally asks smaps what the kernel really gave.
 * See docs/region.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/falloc.h>

#include <patinox/error.h>
#include <patinox/region.h>

#include "region_internal.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MFD_HUGE_SHIFT
#define MFD_HUGE_SHIFT 26
#endif
#define HUGE_SHIFT_2M 21
#define HUGE_SHIFT_1G 30
#ifndef MPOL_BIND
#define MPOL_BIND 2
#endif
#ifndef MPOL_INTERLEAVE
#define MPOL_INTERLEAVE 3
#endif

#define NR_BACKINGS (PX_REGION_4K + 1)
#define NUMA_MAX    1024 /* nodes a mask can name; the kernel's maximum */
#define BITS_PER_UL (8 * sizeof(unsigned long))
#define MAX_STEPS   4

struct px_region {
	void *base; /* the region proper */
	size_t size;
	void *resv; /* the whole reservation, guards included */
	size_t resv_len;
	size_t page_size;
	enum px_region_backing backing;   /* as verified */
	enum px_region_backing requested; /* as asked */
	enum px_region_backing mapped;    /* the step that succeeded */
	bool verified;
	int fd; /* memfd of a shareable region, else -1 */
	int numa_node;
	int step_err[NR_BACKINGS];
	int collapse_err;
	_Atomic size_t carved;
};

void
px_region_opts_init(struct px_region_opts *opts)
{
	*opts = (struct px_region_opts){
	    .backing = PX_REGION_DEFAULT,
	    .numa_node = -1,
	};
}

static enum px_region_backing
default_backing(void)
{
#if defined(CONFIG_PX_REGION_BACKING_4K)
	return PX_REGION_4K;
#elif defined(CONFIG_PX_REGION_BACKING_THP)
	return PX_REGION_THP;
#else
	return PX_REGION_BEST;
#endif
}

static bool
is_hugetlb(enum px_region_backing b)
{
	return b == PX_REGION_HUGETLB_1G || b == PX_REGION_HUGETLB_2M;
}

static size_t
step_page(enum px_region_backing b)
{
	if (b == PX_REGION_HUGETLB_1G)
		return PX_SZ_1G;
	if (b == PX_REGION_HUGETLB_2M)
		return PX_SZ_2M;
	return px_base_page_size();
}

/* Alignment of the placement: THP needs 2 MiB-aligned ranges too. */
static size_t
step_align(enum px_region_backing b)
{
	return b == PX_REGION_THP ? PX_SZ_2M : step_page(b);
}

/* The chain of steps for a request; returns how many. */
static int
build_chain(enum px_region_backing b, enum px_region_backing *steps)
{
	int n = 0;

	if (b == PX_REGION_BEST) {
#ifdef CONFIG_PX_REGION_HUGE_1G
		steps[n++] = PX_REGION_HUGETLB_1G;
#endif
		steps[n++] = PX_REGION_HUGETLB_2M;
		b = PX_REGION_THP;
	}
	steps[n++] = b;
	if (b == PX_REGION_THP)
		steps[n++] = PX_REGION_4K;
	return n;
}

/*
 * Reserves @len bytes of address space plus guards, PROT_NONE and
 * unbacked, and returns in *@at an @align-aligned start with at least one
 * guard page on each side.
 */
static int
reserve(struct px_region *r, size_t len, size_t align, char **at)
{
	size_t page = px_base_page_size();
	void *p;
	int ret;

	r->resv_len = len + 2 * align;
	ret = px_region_os.mmap(&p, NULL, r->resv_len, PROT_NONE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
				0);
	if (ret < 0)
		return ret;
	r->resv = p;
	*at = (char *)px_round_up((uintptr_t)p + page, align);
	return 0;
}

static void
unreserve(struct px_region *r)
{
	if (r->resv)
		px_region_os.munmap(r->resv, r->resv_len);
	r->resv = NULL;
}

static unsigned int
memfd_flags(enum px_region_backing b)
{
	unsigned int f = MFD_CLOEXEC | MFD_ALLOW_SEALING;

	if (b == PX_REGION_HUGETLB_1G)
		f |= MFD_HUGETLB |
		     ((unsigned int)HUGE_SHIFT_1G << MFD_HUGE_SHIFT);
	else if (b == PX_REGION_HUGETLB_2M)
		f |= MFD_HUGETLB |
		     ((unsigned int)HUGE_SHIFT_2M << MFD_HUGE_SHIFT);
	return f;
}

/* A sized memfd sealed against shrinking; other seals stay possible. */
static int
make_memfd(struct px_region *r, size_t len, enum px_region_backing b,
	   const char *name)
{
	int fd, ret;

	fd = px_region_os.memfd_create(name ? name : "px-region",
				       memfd_flags(b));
	if (fd < 0)
		return fd;
	ret = px_region_os.ftruncate(fd, (off_t)len);
	if (ret == 0)
		ret = px_region_os.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK);
	if (ret < 0) {
		px_region_os.close(fd);
		return ret;
	}
	r->fd = fd;
	return 0;
}

static int
map_flags(enum px_region_backing b, bool shared)
{
	int f = MAP_FIXED;

	f |= shared ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS;
	if (is_hugetlb(b) && !shared)
		f |= MAP_HUGETLB |
		     (b == PX_REGION_HUGETLB_1G ? HUGE_SHIFT_1G : HUGE_SHIFT_2M)
			 << MAP_HUGE_SHIFT;
	return f;
}

/* Maps @len bytes at @at for step @b: anonymous, or the region's memfd. */
static int
place(struct px_region *r, char *at, size_t len, enum px_region_backing b)
{
	void *p;
	int ret;

	ret = px_region_os.mmap(&p, at, len, PROT_READ | PROT_WRITE,
				map_flags(b, r->fd >= 0), r->fd, 0);
	if (ret < 0)
		return ret;
	if (b == PX_REGION_THP) {
		ret = px_region_os.madvise(p, len, MADV_HUGEPAGE);
		if (ret < 0)
			return ret;
	}
	/* Base pages only, even where THP is "always"; best effort. */
	if (b == PX_REGION_4K)
		px_region_os.madvise(p, len, MADV_NOHUGEPAGE);
	r->base = p;
	r->size = len;
	r->page_size = b == PX_REGION_THP ? PX_SZ_2M : step_page(b);
	r->mapped = b;
	r->backing = b;
	return 0;
}

static void
drop_fd(struct px_region *r)
{
	if (r->fd >= 0)
		px_region_os.close(r->fd);
	r->fd = -1;
}

static int
try_step(struct px_region *r, size_t size, enum px_region_backing b,
	 const struct px_region_opts *o)
{
	size_t len = px_round_up(size, step_align(b));
	char *at;
	int ret;

	if (len < size)
		return -ENOMEM;
	if (o->shareable) {
		ret = make_memfd(r, len, b, o->name);
		if (ret < 0)
			return ret;
	}
	ret = reserve(r, len, step_align(b), &at);
	if (ret == 0)
		ret = place(r, at, len, b);
	if (ret < 0) {
		unreserve(r);
		drop_fd(r);
	}
	return ret;
}

static int
map_chain(struct px_region *r, size_t size, const struct px_region_opts *o)
{
	enum px_region_backing steps[MAX_STEPS];
	int i, n, ret = -EINVAL;

	n = build_chain(r->requested, steps);
	for (i = 0; i < n; i++) {
		ret = try_step(r, size, steps[i], o);
		r->step_err[steps[i]] = ret;
		if (ret == 0)
			return 0;
	}
	return ret;
}

static int
check_numa(const struct px_region_opts *o)
{
	if (o->numa_node < 0 && !o->numa_interleave)
		return 0;
	if (o->numa_node >= 0 && o->numa_interleave)
		return -EINVAL;
#ifndef CONFIG_PX_REGION_NUMA
	return -EOPNOTSUPP;
#else
	if (px_region_os.numa_available() < 0)
		return -EOPNOTSUPP;
	if (o->numa_node > px_region_os.numa_max_node() ||
	    o->numa_node >= NUMA_MAX)
		return -EINVAL;
	return 0;
#endif
}

/* Sets the memory policy of the untouched region: bind or interleave. */
static int
bind_numa(struct px_region *r, const struct px_region_opts *o)
{
	unsigned long mask[NUMA_MAX / BITS_PER_UL] = {0};
	int node, max, mode = MPOL_BIND;

	if (o->numa_node < 0 && !o->numa_interleave)
		return 0;
	max = px_region_os.numa_max_node();
	if (max >= NUMA_MAX)
		max = NUMA_MAX - 1;
	if (o->numa_interleave) {
		mode = MPOL_INTERLEAVE;
		for (node = 0; node <= max; node++)
			if (px_region_os.numa_node_allowed(node))
				mask[node / BITS_PER_UL] |=
				    1UL << (node % BITS_PER_UL);
	} else {
		node = o->numa_node;
		mask[node / BITS_PER_UL] |= 1UL << (node % BITS_PER_UL);
		r->numa_node = node;
	}
	/* The kernel reads maxnode - 1 bits. */
	return px_region_os.mbind(r->base, r->size, mode, mask,
				  (unsigned long)max + 2, 0);
}

/* Prefaults writable; touches every page where MADV_POPULATE_* is new. */
static int
populate(struct px_region *r)
{
	volatile char *p = r->base;
	size_t off, step = step_page(r->mapped);
	int ret;

	ret = px_region_os.madvise(r->base, r->size, MADV_POPULATE_WRITE);
	if (ret != -EINVAL)
		return ret;
	/* A read maps a shared file's page; an anonymous one needs a write
	 * (a read maps the zero page).  Never write a shared mapping: it
	 * may hold data (px_region_map_fd() of a cache being adopted). */
	for (off = 0; off < r->size; off += step) {
		if (r->fd >= 0)
			(void)p[off];
		else
			p[off] = 0;
	}
	return 0;
}

static int
setup(struct px_region *r, const struct px_region_opts *o)
{
	int ret;

	ret = bind_numa(r, o);
	if (ret == 0 && o->populate)
		ret = populate(r);
	if (ret == 0 && o->collapse && r->mapped == PX_REGION_THP)
		r->collapse_err =
		    px_region_os.madvise(r->base, r->size, MADV_COLLAPSE);
	if (ret == 0 && o->lock)
		ret = px_region_os.mlock(r->base, r->size);
	if (ret == 0)
		px_region_verify(r);
	return ret;
}

static struct px_region *
region_alloc(const struct px_region_opts *o)
{
	struct px_region *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->fd = -1;
	r->numa_node = -1;
	r->requested =
	    o->backing == PX_REGION_DEFAULT ? default_backing() : o->backing;
	return r;
}

static void
region_free(struct px_region *r)
{
	unreserve(r);
	drop_fd(r);
	free(r);
}

int
px_region_create(struct px_region **out, size_t size,
		 const struct px_region_opts *opts)
{
	struct px_region_opts def;
	struct px_region *r;
	int ret;

	if (!out || size == 0)
		return -EINVAL;
	if (!opts) {
		px_region_opts_init(&def);
		opts = &def;
	}
	if (opts->backing > PX_REGION_4K || opts->numa_node < -1)
		return -EINVAL;
	ret = check_numa(opts);
	if (ret < 0)
		return ret;
	r = region_alloc(opts);
	if (!r)
		return -ENOMEM;

	ret = map_chain(r, size, opts);
	if (ret == 0)
		ret = setup(r, opts);
	if (ret < 0) {
		region_free(r);
		return ret;
	}
	*out = r;
	return 0;
}

/* Seals @fd against shrinking unless it already is. */
static int
seal_shrink(int fd)
{
	int seals = px_region_os.fcntl(fd, F_GET_SEALS, 0);

	if (seals < 0)
		return seals; /* EINVAL: not a sealable file */
	if (seals & F_SEAL_SHRINK)
		return 0;
	seals = px_region_os.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK);
	return seals == -EPERM ? -EINVAL : seals;
}

static enum px_region_backing
fd_backing(const struct stat *st)
{
	if ((size_t)st->st_blksize == PX_SZ_1G)
		return PX_REGION_HUGETLB_1G;
	if ((size_t)st->st_blksize == PX_SZ_2M)
		return PX_REGION_HUGETLB_2M;
	return PX_REGION_4K;
}

static int
adopt_fd(struct px_region *r, int fd, size_t *len)
{
	struct stat st;
	int ret;

	ret = px_region_os.fstat(fd, &st);
	if (ret < 0)
		return ret;
	if (st.st_size <= 0)
		return -EINVAL;
	ret = seal_shrink(fd);
	if (ret < 0)
		return ret;
	ret = px_region_os.fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (ret < 0)
		return ret;
	r->fd = ret;
	r->requested = fd_backing(&st);
	*len = (size_t)st.st_size;
	return 0;
}

int
px_region_map_fd(struct px_region **out, int fd,
		 const struct px_region_opts *opts)
{
	struct px_region_opts def;
	struct px_region *r;
	size_t len;
	char *at;
	int ret;

	if (!out || fd < 0)
		return fd < 0 ? -EBADF : -EINVAL;
	if (!opts) {
		px_region_opts_init(&def);
		opts = &def;
	}
	ret = check_numa(opts);
	if (ret < 0)
		return ret;
	r = region_alloc(opts);
	if (!r)
		return -ENOMEM;

	ret = adopt_fd(r, fd, &len);
	if (ret == 0)
		ret = reserve(r, len, step_align(r->requested), &at);
	if (ret == 0)
		ret = place(r, at, len, r->requested);
	if (ret == 0)
		ret = setup(r, opts);
	if (ret < 0) {
		region_free(r);
		return ret;
	}
	*out = r;
	return 0;
}

void
px_region_destroy(struct px_region *r)
{
	if (!r)
		return;
	region_free(r);
}

void *
px_region_base(const struct px_region *r)
{
	return r->base;
}

size_t
px_region_size(const struct px_region *r)
{
	return r->size;
}

size_t
px_region_page_size(const struct px_region *r)
{
	return r->page_size;
}

enum px_region_backing
px_region_backing(const struct px_region *r)
{
	return r->backing;
}

bool
px_region_verified(const struct px_region *r)
{
	return r->verified;
}

const char *
px_region_backing_name(enum px_region_backing b)
{
	switch (b) {
	case PX_REGION_HUGETLB_1G:
		return "hugetlb-1G";
	case PX_REGION_HUGETLB_2M:
		return "hugetlb-2M";
	case PX_REGION_THP:
		return "thp";
	case PX_REGION_4K:
		return "4K";
	case PX_REGION_BEST:
		return "best";
	default:
		return "default";
	}
}

int
px_region_step_error(const struct px_region *r, enum px_region_backing b)
{
	if ((unsigned int)b >= NR_BACKINGS)
		return 0;
	return r->step_err[b];
}

int
px_region_collapse_error(const struct px_region *r)
{
	return r->collapse_err;
}

int
px_region_carve(struct px_region *r, size_t len, size_t align, void **out)
{
	uintptr_t base = (uintptr_t)r->base;
	size_t old, start;

	if (align == 0)
		align = px_base_page_size();
	if (align & (align - 1))
		return -EINVAL;
	old = atomic_load_explicit(&r->carved, memory_order_relaxed);
	do {
		/* The address is what must be aligned: the base may be
		 * aligned to less than @align. */
		start = px_round_up(base + old, align) - base;
		if (start < old || start > r->size || len > r->size - start)
			return -ENOMEM;
	} while (!atomic_compare_exchange_weak(&r->carved, &old, start + len));
	*out = (char *)r->base + start;
	return 0;
}

int
px_region_release(struct px_region *r, void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr, base = (uintptr_t)r->base;

	if ((a | len) & (r->page_size - 1) || a < base || a - base > r->size ||
	    len > r->size - (a - base))
		return -EINVAL;
	if (len == 0)
		return 0;
	if (r->fd >= 0)
		return px_region_os.fallocate(
		    r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		    (off_t)(a - base), (off_t)len);
	return px_region_os.madvise(addr, len, MADV_DONTNEED);
}

int
px_region_fd(const struct px_region *r)
{
	return r->fd;
}

static int
read_smaps(const struct px_region *r, struct px_smaps_range *sr)
{
	FILE *f;
	int ret;

	ret = px_region_os.open_smaps(&f);
	if (ret < 0)
		return ret;
	ret = px_smaps_scan(f, (uintptr_t)r->base, r->size, sr);
	fclose(f);
	return ret;
}

/*
 * The kernel's verdict: hugetlb shows in KernelPageSize even before any
 * touch; THP only in AnonHugePages (or the PMD-mapped counters of shmem)
 * once memory is resident, so a THP region with nothing resident stays
 * unjudged.  Returns false when it cannot be judged yet.
 */
static bool
judge(const struct px_region *r, const struct px_smaps_range *sr,
      enum px_region_backing *b, size_t *page)
{
	size_t huge = sr->anon_huge + sr->pmd_mapped;

	*page =
	    sr->kernel_page_size ? sr->kernel_page_size : px_base_page_size();
	if (sr->kernel_page_size == PX_SZ_1G)
		*b = PX_REGION_HUGETLB_1G;
	else if (sr->kernel_page_size == PX_SZ_2M)
		*b = PX_REGION_HUGETLB_2M;
	else if (huge > 0)
		*b = PX_REGION_THP;
	else if (r->mapped == PX_REGION_THP && sr->rss == 0)
		return false;
	else
		*b = PX_REGION_4K;
	if (*b == PX_REGION_THP)
		*page = PX_SZ_2M;
	return true;
}

int
px_region_verify(struct px_region *r)
{
	struct px_smaps_range sr;
	enum px_region_backing b;
	size_t page;
	int ret;

	ret = read_smaps(r, &sr);
	if (ret < 0)
		return ret;
	r->verified = judge(r, &sr, &b, &page);
	if (r->verified) {
		r->backing = b;
		r->page_size = page;
	}
	return 0;
}

int
px_region_stats(const struct px_region *r, struct px_region_stats *st)
{
	struct px_smaps_range sr;
	enum px_region_backing b = r->backing;
	size_t page = r->page_size;
	int ret;

	*st = (struct px_region_stats){
	    .size = r->size,
	    .page_size = r->page_size,
	    .carved = atomic_load(&r->carved),
	    .backing = r->backing,
	    .requested = r->requested,
	    .shareable = r->fd >= 0,
	    .numa_node = r->numa_node,
	};
	ret = read_smaps(r, &sr);
	if (ret < 0)
		return ret;
	st->verified = judge(r, &sr, &b, &page);
	st->backing = b;
	st->page_size = page;
	st->resident = sr.rss + sr.hugetlb;
	st->huge_resident = sr.anon_huge + sr.pmd_mapped + sr.hugetlb;
	return 0;
}

/* snprintf() at the end of what @buf holds, counting as snprintf does. */
__attribute__((format(printf, 4, 5))) static void
append(char *buf, size_t len, int *w, const char *fmt, ...)
{
	size_t at = (size_t)*w < len ? (size_t)*w : len;
	va_list ap;

	va_start(ap, fmt);
	*w += vsnprintf(buf + at, len - at, fmt, ap);
	va_end(ap);
}

int
px_region_describe(const struct px_region *r, char *buf, size_t len)
{
	static const enum px_region_backing order[] = {
	    PX_REGION_HUGETLB_1G, PX_REGION_HUGETLB_2M, PX_REGION_THP};
	int w = 0, e, n = 0;
	size_t i;

	append(buf, len, &w, "%s (%s", px_region_backing_name(r->backing),
	       r->verified ? "verified" : "not verified yet");
	for (i = 0; i < sizeof(order) / sizeof(*order); i++) {
		e = r->step_err[order[i]];
		if (e != 0)
			append(buf, len, &w, "%s%s: %s",
			       n++ ? ", " : "; fell back: ",
			       px_region_backing_name(order[i]),
			       px_strerror(e));
	}
	if (r->mapped == PX_REGION_THP && r->verified &&
	    r->backing == PX_REGION_4K)
		append(buf, len, &w, "; THP advised but no hugepage resident");
	if (r->collapse_err)
		append(buf, len, &w, "; MADV_COLLAPSE: %s",
		       px_strerror(r->collapse_err));
	append(buf, len, &w, ")");
	return w;
}
