/* SPDX-License-Identifier: MIT */
/*
 * Random numbers and key choice for the load generator: a small fast PRNG
 * (xoshiro256**, seeded through splitmix64, so a seed gives the same
 * sequence everywhere) and a key chooser that draws ranks 0..n-1 either
 * uniformly or from a Zipf law of exponent s (rank r has weight
 * 1 / (r + 1)^s) by rejection-inversion sampling: O(1) set-up and O(1)
 * expected work per draw, for any s > 0 including s = 1.  Not thread
 * safe: one per thread.
 */
#ifndef PXLOAD_KEYGEN_H
#define PXLOAD_KEYGEN_H

#include <stdint.h>

struct rng {
	uint64_t s[4];
};

/* Seeds @r; every seed, 0 included, gives a valid distinct stream. */
void rng_seed(struct rng *r, uint64_t seed);

/* Next 64 random bits. */
uint64_t rng_next(struct rng *r);

/* Uniform double in [0, 1). */
double rng_double(struct rng *r);

/* Uniform integer in [0, n); n > 0. */
uint64_t rng_below(struct rng *r, uint64_t n);

struct keygen {
	uint64_t n;     /* number of keys */
	double s;       /* Zipf exponent; 0 means uniform */
	double h_x1;    /* H(1.5) - 1 */
	double h_n;     /* H(n + 0.5) */
	double squeeze; /* accept at once when k - x <= squeeze */
};

/*
 * keygen_init - prepare to draw ranks in [0, @n).
 * @s: 0 for uniform keys, else the Zipf exponent (> 0)
 * Returns 0, or -EINVAL when @n is 0 or @s is negative or not finite.
 */
int keygen_init(struct keygen *kg, uint64_t n, double s);

/* Draws one rank in [0, n): rank 0 is the most popular. */
uint64_t keygen_next(const struct keygen *kg, struct rng *r);

/* Probability of rank @k under @kg (exact normalised Zipf, O(n)). */
double keygen_probability(const struct keygen *kg, uint64_t k);

#endif
