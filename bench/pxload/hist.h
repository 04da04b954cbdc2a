/* SPDX-License-Identifier: MIT */
/*
 * A latency histogram with log-linear buckets, in the manner of HDR
 * histograms: every power of two is split into 2^HIST_SUB_BITS equal
 * buckets, so any recorded value is known to within 1 / 2^HIST_SUB_BITS
 * of itself (0.8 % with 7 bits) over the whole uint64_t range, and
 * percentiles come from every sample, not from a subset.  One histogram
 * per thread; merge them at the end.  Not thread safe.
 */
#ifndef PXLOAD_HIST_H
#define PXLOAD_HIST_H

#include <stddef.h>
#include <stdint.h>

/* Buckets per power of two, as a power of two (7 bits: error < 0.79 %). */
#define HIST_SUB_BITS  CONFIG_PX_PXLOAD_HIST_SUB_BITS
#define HIST_SUB_COUNT (1u << HIST_SUB_BITS)
/* Values below 2^(HIST_SUB_BITS + 1) get one bucket each. */
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB_COUNT)

struct hist {
	uint64_t count;
	uint64_t min;
	uint64_t max;
	double sum;
	uint64_t buckets[HIST_BUCKETS];
};

/* Empties @h. */
void hist_init(struct hist *h);

/* Bucket index of @v; monotonic in @v and below HIST_BUCKETS. */
size_t hist_index(uint64_t v);

/* Smallest and largest value that fall in bucket @idx. */
uint64_t hist_bucket_low(size_t idx);
uint64_t hist_bucket_high(size_t idx);

/* Counts one sample of value @v. */
void hist_record(struct hist *h, uint64_t v);

/* Adds every sample of @src to @dst. */
void hist_merge(struct hist *dst, const struct hist *src);

/*
 * The value at quantile @q (0 < q <= 1): the highest value of the bucket
 * that holds the ceil(q * count)-th smallest sample, clamped to the
 * recorded max.  Never below the true quantile, above it by less than the
 * bucket width.  0 when the histogram is empty.
 */
uint64_t hist_quantile(const struct hist *h, double q);

/* Exact mean of the samples, 0 when empty. */
double hist_mean(const struct hist *h);

#endif
