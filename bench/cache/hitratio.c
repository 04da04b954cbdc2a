// SPDX-License-Identifier: MIT
/*
 * Hit ratio: every policy of the cache on every trace of the traces
 * folder at 1%, 5% and 10% of the trace's footprint (distinct keys), next
 * to the plain reference implementations of the policy test.  Prints a
 * table, writes it as data under the output folder and plots the miss
 * ratios with gnuplot (cache_hitratio.png) when gnuplot is installed.
 *
 * The replay (tests/selftests/trace_cache.h) gives the cache a capacity
 * in items with fixed-size items, so the figures compare with published
 * ones in objects, cold misses included.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../apps/common/log.h"
#include "../../tests/selftests/trace.h"
#include "../../tests/selftests/trace_cache.h"
#include "../../tests/selftests/trace_policy.h"
#include "bench_cache.h"

#define HR_SIZES    3
#define HR_POLICIES 3

static const double hr_pct[HR_SIZES] = {1, 5, 10};

static const struct {
	enum px_cache_policy px;
	enum ref_policy ref;
} hr_policies[HR_POLICIES] = {
    {PX_CACHE_POLICY_LRU, REF_LRU},
    {PX_CACHE_POLICY_SIEVE, REF_SIEVE},
    {PX_CACHE_POLICY_S3FIFO, REF_S3FIFO},
};

static uint32_t
hr_capacity(uint32_t footprint, double pct)
{
	uint32_t cap = (uint32_t)((double)footprint * pct / 100.0 + 0.5);

	return cap ? cap : 1;
}

/*
 * One table row: one trace at @cap objects (@pct of its footprint),
 * every policy.
 */
static int
hr_row(const struct trace *t, uint32_t cap, double pct, FILE *dat)
{
	struct trace_cache_result r;
	double t0 = bench_now(), win;
	int ret;

	printf("%-16s %9u %4.*f%% %7u", t->name, t->nunique,
	       pct == (double)(int)pct ? 0 : 1, pct, cap);
	fprintf(dat, "%s %g %u", t->name, pct, cap);
	for (int p = 0; p < HR_POLICIES; p++) {
		double ref = ref_miss_ratio(hr_policies[p].ref, t, cap, 0);

		ret = trace_cache_run(t, hr_policies[p].px, cap, 0, &r);
		if (ret) {
			printf("\n");
			LOG_ERROR("%s, %s at %u items: %s", t->name,
				  px_cache_policy_name(hr_policies[p].px), cap,
				  strerror(-ret));
			return ret;
		}
		printf("  %7.4f %7.4f", r.miss_ratio, ref);
		fprintf(dat, " %.6f %.6f", r.miss_ratio, ref);
	}
	/* S3-FIFO's reference with the ghost form the cache implements. */
	win = ref_miss_ratio_ghost(REF_S3FIFO, REF_GHOST_WINDOW, t, cap, 0);
	printf(" %7.4f  %5.1f\n", win, bench_now() - t0);
	fprintf(dat, " %.6f\n", win);
	fflush(stdout);
	return 0;
}

static int
hr_trace(const struct bench_opts *o, const char *file, FILE *dat)
{
	struct trace t;
	int ret;

	ret = trace_load_named(&t, o->traces, file, o->trace_limit);
	if (ret) {
		LOG_ERROR("%s/%s: %s", o->traces, file, strerror(-ret));
		return ret;
	}
	if (t.truncated)
		printf("# %s: first %zu requests only (--trace-limit)\n",
		       t.name, t.n);
	for (int s = 0; s < HR_SIZES && !o->nhr_objects && ret == 0; s++)
		ret = hr_row(&t, hr_capacity(t.nunique, hr_pct[s]), hr_pct[s],
			     dat);
	for (int s = 0; s < o->nhr_objects && ret == 0; s++)
		ret = hr_row(&t, (uint32_t)o->hr_objects[s],
			     100.0 * (double)o->hr_objects[s] / t.nunique, dat);
	trace_free(&t);
	return ret;
}

/* The plot: one panel per trace, miss ratio against cache size. */
static int
hr_plot(const struct bench_opts *o, char **names, int n, const char *dat)
{
	char gp[512], png[512], cmd[1100];
	FILE *f;
	int cols = 3, rows = (n + cols - 1) / cols;

	snprintf(gp, sizeof(gp), "%s/cache_hitratio.gp", o->out_dir);
	snprintf(png, sizeof(png), "%s/cache_hitratio.png", o->out_dir);
	f = fopen(gp, "w");
	if (!f)
		return -errno;
	fprintf(f,
		"set terminal pngcairo size %d,%d noenhanced\n"
		"set output '%s'\nset multiplot layout %d,%d title "
		"'patinox cache: miss ratio (points: cache, lines: "
		"reference)'\n"
		"set xlabel 'cache size (%% of footprint)'\n"
		"set ylabel 'miss ratio'\nset key bottom left\n"
		"set xrange [%s]\n",
		420 * cols, 340 * rows, png, rows, cols,
		o->nhr_objects ? "*:*" : "0:11");
	for (int i = 0; i < n; i++) {
		char name[TRACE_NAME_MAX];
		struct trace t = {0};

		trace_set_name(&t, names[i]);
		snprintf(name, sizeof(name), "%s", t.name);
		fprintf(
		    f,
		    "set title '%s'\nplot "
		    "'%s' u (strcol(1) eq '%s' ? $2 : NaN):4 w p pt 7 lc 1 t "
		    "'lru',"
		    " '' u (strcol(1) eq '%s' ? $2 : NaN):5 w l lc 1 notitle,"
		    " '' u (strcol(1) eq '%s' ? $2 : NaN):6 w p pt 5 lc 2 t "
		    "'sieve', '' u (strcol(1) eq '%s' ? $2 : NaN):7 w l lc 2 "
		    "notitle, '' u (strcol(1) eq '%s' ? $2 : NaN):8 w p pt 9 "
		    "lc 3 "
		    "t 's3fifo', '' u (strcol(1) eq '%s' ? $2 : NaN):9 w l lc "
		    "3 "
		    "notitle\n",
		    name, dat, name, name, name, name, name, name);
	}
	fprintf(f, "unset multiplot\n");
	fclose(f);
	snprintf(cmd, sizeof(cmd), "gnuplot '%s' 2>&1", gp);
	if (system(cmd) != 0) {
		LOG_WARN("gnuplot failed or is missing (Debian gnuplot-nox); "
			 "data in %s, script in %s",
			 dat, gp);
		return 0;
	}
	printf("plot: %s\n", png);
	return 0;
}

int
bench_hitratio(const struct bench_opts *o)
{
	char *names[TRACE_MAX_FILES], dat[512];
	int n, ret = 0;
	FILE *f;

	printf("\n== hit ratio: miss ratio of the cache (px) and of the "
	       "reference (ref), objects, cold misses counted\n"
	       "   s3fifo ref: ghost as a FIFO queue; win: ghost as an "
	       "insertion-count window, as the cache has it\n");
	if (!o->traces) {
		printf("SKIP: no traces folder (--traces or PX_TRACE_DIR)\n");
		return 0;
	}
	n = trace_list(o->traces, names);
	if (n <= 0) {
		printf("SKIP: no *.keys or *.keys.gz in %s\n", o->traces);
		return 0;
	}
	snprintf(dat, sizeof(dat), "%s/cache_hitratio.dat", o->out_dir);
	f = fopen(dat, "w");
	if (!f) {
		ret = -errno;
		goto out_free_names;
	}
	fprintf(f, "# trace pct capacity lru_px lru_ref sieve_px sieve_ref "
		   "s3fifo_px s3fifo_ref s3fifo_ref_window\n");
	printf("%-16s %9s %5s %7s  %15s  %15s  %23s  %5s\n", "trace",
	       "footprint", "size", "objects", "lru px / ref", "sieve px / ref",
	       "s3fifo px / ref / win", "secs");
	for (int i = 0; i < n && ret == 0; i++)
		ret = hr_trace(o, names[i], f);
	fclose(f);
	if (ret == 0)
		ret = hr_plot(o, names, n, dat);
out_free_names:
	trace_list_free(names, n);
	return ret;
}
