// SPDX-License-Identifier: MIT
/*
 * Log-linear latency histogram (see hist.h).  Values below
 * 2^(HIST_SUB_BITS + 1) map to themselves; a larger value whose top bit
 * is bit k lands in group k - HIST_SUB_BITS + 1, sub-bucket given by the
 * HIST_SUB_BITS bits below the top one.
 */
#include <string.h>

#include "hist.h"

void
hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

size_t
hist_index(uint64_t v)
{
	unsigned int k, shift;

	if (v < 2 * HIST_SUB_COUNT)
		return (size_t)v;
	k = 63u - (unsigned int)__builtin_clzll(v);
	shift = k - HIST_SUB_BITS;
	return ((size_t)(shift + 1) << HIST_SUB_BITS) |
	       (size_t)((v >> shift) & (HIST_SUB_COUNT - 1));
}

uint64_t
hist_bucket_low(size_t idx)
{
	unsigned int shift;
	uint64_t sub;

	if (idx < 2 * HIST_SUB_COUNT)
		return idx;
	shift = (unsigned int)(idx >> HIST_SUB_BITS) - 1;
	sub = idx & (HIST_SUB_COUNT - 1);
	return (HIST_SUB_COUNT + sub) << shift;
}

uint64_t
hist_bucket_high(size_t idx)
{
	unsigned int shift;

	if (idx < 2 * HIST_SUB_COUNT)
		return idx;
	shift = (unsigned int)(idx >> HIST_SUB_BITS) - 1;
	return hist_bucket_low(idx) + ((UINT64_C(1) << shift) - 1);
}

void
hist_record(struct hist *h, uint64_t v)
{
	h->buckets[hist_index(v)]++;
	h->count++;
	h->sum += (double)v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void
hist_merge(struct hist *dst, const struct hist *src)
{
	size_t i;

	for (i = 0; i < HIST_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t
hist_quantile(const struct hist *h, double q)
{
	uint64_t rank, seen = 0, v;
	size_t i;

	if (h->count == 0)
		return 0;
	if (q > 1.0)
		q = 1.0;
	rank = (uint64_t)(q * (double)h->count);
	if ((double)rank < q * (double)h->count)
		rank++;
	if (rank == 0)
		rank = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank)
			break;
	}
	v = hist_bucket_high(i);
	return v > h->max ? h->max : v;
}

double
hist_mean(const struct hist *h)
{
	return h->count ? h->sum / (double)h->count : 0.0;
}
