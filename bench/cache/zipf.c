// SPDX-License-Identifier: MIT
/*
 * Random numbers and Zipf-distributed ranks for the throughput runs.
 *
 * The ranks use the closed-form approximation of Gray et al. ("Quickly
 * generating billion-record synthetic databases", SIGMOD'94), the one
 * YCSB uses: one pass over the n ranks computes the zeta constant, after
 * which each draw costs one pow().  Rank 0 is the most popular key.
 */
#include <math.h>

#include "bench_cache.h"

uint64_t
rng_next(uint64_t *rng)
{
	/* splitmix64: a full-period 64-bit generator, one state word. */
	uint64_t z = (*rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

double
rng_unit(uint64_t *rng)
{
	return (double)(rng_next(rng) >> 11) * 0x1.0p-53;
}

static double
zeta(uint64_t n, double theta)
{
	double sum = 0;

	for (uint64_t i = 1; i <= n; i++)
		sum += pow((double)i, -theta);
	return sum;
}

void
zipf_init(struct zipf *z, uint64_t n, double theta)
{
	double zeta2 = 1.0 + pow(0.5, theta);

	z->n = n;
	z->theta = theta;
	z->zetan = zeta(n, theta);
	z->alpha = 1.0 / (1.0 - theta);
	z->eta = (1.0 - pow(2.0 / (double)n, 1.0 - theta)) /
		 (1.0 - zeta2 / z->zetan);
	z->half_pow = pow(0.5, theta);
}

uint64_t
zipf_next(const struct zipf *z, uint64_t *rng)
{
	double u = rng_unit(rng);
	double uz = u * z->zetan;
	uint64_t r;

	if (uz < 1.0)
		return 0;
	if (uz < 1.0 + z->half_pow)
		return 1;
	r = (uint64_t)((double)z->n * pow(z->eta * u - z->eta + 1.0, z->alpha));
	return r < z->n ? r : z->n - 1;
}
