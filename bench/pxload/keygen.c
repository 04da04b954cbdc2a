// SPDX-License-Identifier: MIT
/*
 * PRNG and key chooser (see keygen.h).
 *
 * Zipf by rejection-inversion (Hormann and Derflinger, 1996): draw x from
 * the continuous density h(x) = x^-s over [0.5, n + 0.5] by inverting its
 * integral H, round it to the integer k, and accept k when the area under
 * h around k is at least the discrete weight k^-s; most draws are
 * accepted by the cheap squeeze test.  H and its inverse are written with
 * log1p / expm1 so that s close to 1 loses no precision.
 */
#include <errno.h>
#include <math.h>

#include "keygen.h"

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

void
rng_seed(struct rng *r, uint64_t seed)
{
	int i;

	for (i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t
rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

double
rng_double(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t
rng_below(struct rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* log1p(x) / x, continuous at 0. */
static double
log1p_over(double x)
{
	return fabs(x) > 1e-8 ? log1p(x) / x : 1.0 - x / 2.0;
}

/* expm1(x) / x, continuous at 0. */
static double
expm1_over(double x)
{
	return fabs(x) > 1e-8 ? expm1(x) / x : 1.0 + x / 2.0;
}

/* H(x) = (x^(1-s) - 1) / (1 - s), or log(x) when s = 1. */
static double
zipf_h_integral(double s, double x)
{
	double lx = log(x);

	return expm1_over((1.0 - s) * lx) * lx;
}

/* h(x) = x^-s */
static double
zipf_h(double s, double x)
{
	return exp(-s * log(x));
}

/* The inverse of H. */
static double
zipf_h_integral_inv(double s, double y)
{
	double t = y * (1.0 - s);

	if (t < -1.0)
		t = -1.0;
	return exp(log1p_over(t) * y);
}

int
keygen_init(struct keygen *kg, uint64_t n, double s)
{
	if (n == 0 || !isfinite(s) || s < 0.0)
		return -EINVAL;
	kg->n = n;
	kg->s = s;
	if (s == 0.0)
		return 0;
	kg->h_x1 = zipf_h_integral(s, 1.5) - 1.0;
	kg->h_n = zipf_h_integral(s, (double)n + 0.5);
	kg->squeeze = 2.0 - zipf_h_integral_inv(s, zipf_h_integral(s, 2.5) -
						       zipf_h(s, 2.0));
	return 0;
}

static uint64_t
zipf_draw(const struct keygen *kg, struct rng *r)
{
	double u, x, k;

	for (;;) {
		u = kg->h_n + rng_double(r) * (kg->h_x1 - kg->h_n);
		x = zipf_h_integral_inv(kg->s, u);
		k = floor(x + 0.5);
		if (k < 1.0)
			k = 1.0;
		else if (k > (double)kg->n)
			k = (double)kg->n;
		if (k - x <= kg->squeeze ||
		    u >= zipf_h_integral(kg->s, k + 0.5) - zipf_h(kg->s, k))
			return (uint64_t)k - 1;
	}
}

uint64_t
keygen_next(const struct keygen *kg, struct rng *r)
{
	if (kg->s == 0.0)
		return rng_below(r, kg->n);
	return zipf_draw(kg, r);
}

double
keygen_probability(const struct keygen *kg, uint64_t k)
{
	double norm = 0.0;
	uint64_t i;

	if (k >= kg->n)
		return 0.0;
	if (kg->s == 0.0)
		return 1.0 / (double)kg->n;
	for (i = 1; i <= kg->n; i++)
		norm += zipf_h(kg->s, (double)i);
	return zipf_h(kg->s, (double)(k + 1)) / norm;
}
