// SPDX-License-Identifier: MIT
/*
 * The item arena: a coalescing allocator over the part of the region that
 * is not index or metadata.  Blocks are multiples of 8 bytes; free blocks
 * sit on segregated lists (16 per power of two, found with two bitmaps in
 * constant time, as TLSF does) and merge with free neighbours at once, so
 * memory freed by items of one size serves items of any other size: there
 * are no size classes to calcify.  A used block costs two bits of the
 * item's meta word plus its size: 7 more bits of meta below 128 units,
 * else 4 bytes of data (pxc_units()).  A free block keeps its size in its
 * hnext word and again in its last 4 bytes, so the next block can find
 * its start.
 *
 * All functions run under the cache's writer lock.  Blocks being freed are
 * past their RCU grace period; the only bits of live items touched are
 * PXC_M_PREV_FREE, with atomic operations, because readers load meta.
 */
#include <string.h>

#include "cache_int.h"

static struct pxc_item *
blk(const struct pxc_arena *a, uint32_t off)
{
	return (struct pxc_item *)(a->base + (size_t)off * PXC_UNIT);
}

/* The size of a free block. */
static uint32_t
fsize(const struct pxc_item *b)
{
	return atomic_load_explicit(&b->hnext, memory_order_relaxed);
}

static void
set_footer(struct pxc_arena *a, uint32_t off, uint32_t size)
{
	char *end = a->base + ((size_t)off + size) * PXC_UNIT;

	memcpy(end - sizeof(size), &size, sizeof(size));
}

static uint32_t
prev_size(const struct pxc_arena *a, uint32_t off)
{
	uint32_t size;

	memcpy(&size, a->base + (size_t)off * PXC_UNIT - sizeof(size),
	       sizeof(size));
	return size;
}

static unsigned
log2_floor(size_t v)
{
	return 63u - (unsigned)__builtin_clzll(v);
}

static void
mapping(size_t units, unsigned *fl, unsigned *sl)
{
	unsigned f;

	if (units < PXC_SL_COUNT) {
		*fl = 0;
		*sl = (unsigned)units;
		return;
	}
	f = log2_floor(units);
	*sl = (unsigned)(units >> (f - PXC_SL_LOG2)) - PXC_SL_COUNT;
	*fl = f - PXC_SL_LOG2 + 1;
}

/* The first list whose every block has at least @units units. */
static void
mapping_search(size_t units, unsigned *fl, unsigned *sl)
{
	if (units >= PXC_SL_COUNT)
		units += ((size_t)1 << (log2_floor(units) - PXC_SL_LOG2)) - 1;
	mapping(units, fl, sl);
}

static void
list_insert(struct pxc_arena *a, uint32_t off, uint32_t size)
{
	struct pxc_item *b = blk(a, off);
	unsigned fl, sl;

	mapping(size, &fl, &sl);
	atomic_store_explicit(&b->meta, PXC_M_FREE, memory_order_relaxed);
	atomic_store_explicit(&b->hnext, size, memory_order_relaxed);
	b->prev = 0;
	b->next = a->heads[fl][sl];
	if (b->next)
		blk(a, b->next)->prev = off;
	a->heads[fl][sl] = off;
	a->fl_bitmap |= 1u << fl;
	a->sl_bitmap[fl] |= 1u << sl;
	set_footer(a, off, size);
	atomic_fetch_or_explicit(&blk(a, off + size)->meta, PXC_M_PREV_FREE,
				 memory_order_relaxed);
	a->free_units += size;
}

static void
list_remove(struct pxc_arena *a, uint32_t off)
{
	struct pxc_item *b = blk(a, off);
	unsigned fl, sl;

	mapping(fsize(b), &fl, &sl);
	if (b->prev)
		blk(a, b->prev)->next = b->next;
	else
		a->heads[fl][sl] = b->next;
	if (b->next)
		blk(a, b->next)->prev = b->prev;
	if (!a->heads[fl][sl]) {
		a->sl_bitmap[fl] &= ~(1u << sl);
		if (!a->sl_bitmap[fl])
			a->fl_bitmap &= ~(1u << fl);
	}
	a->free_units -= fsize(b);
}

static uint32_t
find_block(const struct pxc_arena *a, unsigned fl, unsigned sl)
{
	uint32_t bits = sl < 32 ? a->sl_bitmap[fl] & (~0u << sl) : 0;

	if (!bits) {
		bits = fl + 1 < 32 ? a->fl_bitmap & (~0u << (fl + 1)) : 0;
		if (!bits)
			return 0;
		fl = (unsigned)__builtin_ctz(bits);
		bits = a->sl_bitmap[fl];
	}
	return a->heads[fl][__builtin_ctz(bits)];
}

/*
 * A block of the list @units maps to that holds @units, among the first
 * PXC_FIT_SCAN of it.  TLSF's search skips that list (its blocks may be
 * a little too small), so without this look, holes left by items of one
 * size are never reused by the same size: a cache of equal-sized values
 * keeps evicting to reach larger blocks and runs well below its budget.
 */
static uint32_t
fit_in_class(const struct pxc_arena *a, size_t units)
{
	unsigned fl, sl, n;
	uint32_t off;

	mapping(units, &fl, &sl);
	if (fl >= PXC_FL_COUNT)
		return 0;
	off = a->heads[fl][sl];
	for (n = 0; off && n < PXC_FIT_SCAN; n++) {
		if (fsize(blk(a, off)) >= units)
			return off;
		off = blk(a, off)->next;
	}
	return 0;
}

void
pxc_arena_init(struct pxc_arena *a, char *base, uint32_t start, uint32_t end)
{
	memset(a, 0, sizeof(*a));
	a->base = base;
	a->start = start;
	a->end = end;
	a->total_units = end - start;

	/* The sentinel: a used 1-unit block that is never freed. */
	pxc_set_units(blk(a, end), 1);
	list_insert(a, start, end - start);
}

/*
 * pxc_arena_alloc - a block of at least @units units (its size field may
 * be a little larger when the rest was too small to split off).  Returns
 * its offset, or 0 when no free block is big enough.
 */
uint32_t
pxc_arena_alloc(struct pxc_arena *a, size_t units)
{
	unsigned fl, sl;
	uint32_t off, size;

	if (units < PXC_MIN_UNITS)
		units = PXC_MIN_UNITS;
	if (units > a->total_units)
		return 0;
	off = fit_in_class(a, units);
	if (!off) {
		mapping_search(units, &fl, &sl);
		if (fl >= PXC_FL_COUNT)
			return 0;
		off = find_block(a, fl, sl);
	}
	if (!off)
		return 0;

	list_remove(a, off);
	size = fsize(blk(a, off));
	if (size - units >= PXC_MIN_UNITS) {
		list_insert(a, off + (uint32_t)units, size - (uint32_t)units);
		size = (uint32_t)units;
	} else {
		atomic_fetch_and_explicit(&blk(a, off + size)->meta,
					  ~PXC_M_PREV_FREE,
					  memory_order_relaxed);
	}
	pxc_set_units(blk(a, off), size);
	return off;
}

/* pxc_arena_free - give back a block from pxc_arena_alloc(). */
void
pxc_arena_free(struct pxc_arena *a, uint32_t off)
{
	struct pxc_item *b = blk(a, off);
	uint32_t size = pxc_units(b), next = off + size;

	if (atomic_load_explicit(&b->meta, memory_order_relaxed) &
	    PXC_M_PREV_FREE) {
		uint32_t psize = prev_size(a, off);

		off -= psize;
		list_remove(a, off);
		size += psize;
	}
	if (atomic_load_explicit(&blk(a, next)->meta, memory_order_relaxed) &
	    PXC_M_FREE) {
		size += fsize(blk(a, next));
		list_remove(a, next);
	}
	list_insert(a, off, size);
}

/*
 * pxc_arena_fit_units - the size of a free block that pxc_arena_alloc()
 * is sure to find for @units (lists hold ranges of sizes; the search
 * skips the range a request falls in, as TLSF does, to stay O(1)).
 */
size_t
pxc_arena_fit_units(size_t units)
{
	if (units < PXC_MIN_UNITS)
		units = PXC_MIN_UNITS;
	if (units >= PXC_SL_COUNT)
		units += ((size_t)1 << (log2_floor(units) - PXC_SL_LOG2)) - 1;
	return units;
}

/* The largest block that could ever be allocated: the whole arena. */
size_t
pxc_arena_largest(const struct pxc_arena *a)
{
	return a->total_units;
}
