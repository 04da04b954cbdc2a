// SPDX-License-Identifier: MIT
/*
 * Unit tests of pxcached's command line parser.  Like the protocol
 * parser, it is program code, so its source is compiled in directly.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "../../apps/pxcached/options.c"

static int
parse(struct pxc_opts *o, char *err, size_t errlen, ...)
{
	char *argv[32] = {"pxcached"};
	int argc = 1;
	va_list ap;
	char *a;

	va_start(ap, errlen);
	while ((a = va_arg(ap, char *)) != NULL && argc < 31)
		argv[argc++] = a;
	va_end(ap);
	err[0] = '\0';
	return pxc_opts_parse(o, argc, argv, err, errlen);
}

static void
test_pxcached_options_defaults(void **state)
{
	struct pxc_opts o;
	char err[128];

	assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
	assert_int_equal(o.action, PXC_RUN);
	assert_string_equal(o.listen, "127.0.0.1");
	assert_int_equal(o.port, CONFIG_PX_PXCACHED_PORT);
	assert_int_equal(o.memory_mb, CONFIG_PX_PXCACHED_MEMORY_MB);
	assert_int_equal(o.max_conns, CONFIG_PX_PXCACHED_MAX_CONNS);
	assert_int_equal(o.item_max, CONFIG_PX_CACHE_ITEM_MAX_KB << 10);
	assert_true(o.threads >= 1);
	assert_int_equal(o.hugepages, PXC_HUGE_AUTO);
	assert_null(o.policy);
	assert_null(o.port_file);
}

static void
test_pxcached_options_memcached_flags(void **state)
{
	struct pxc_opts o;
	char err[128];

	assert_int_equal(parse(&o, err, sizeof(err), "-p", "0", "-l", "::1",
			       "-m", "128", "-c", "10", "-t", "3", "-I", "2m",
			       "-vv", "--policy", "lru", "--hugepages=off",
			       "--port-file", "/tmp/x", "-Y", "/tmp/auth",
			       NULL),
			 0);
	assert_int_equal(o.port, 0);
	assert_string_equal(o.listen, "::1");
	assert_int_equal(o.memory_mb, 128);
	assert_int_equal(o.max_conns, 10);
	assert_int_equal(o.threads, 3);
	assert_int_equal(o.item_max, 2 << 20);
	assert_int_equal(o.verbose, 2);
	assert_string_equal(o.policy, "lru");
	assert_int_equal(o.hugepages, PXC_HUGE_OFF);
	assert_string_equal(o.port_file, "/tmp/x");
	assert_string_equal(o.auth_file, "/tmp/auth");
}

static void
test_pxcached_options_actions(void **state)
{
	struct pxc_opts o;
	char err[128];

	assert_int_equal(parse(&o, err, sizeof(err), "--features", NULL), 0);
	assert_int_equal(o.action, PXC_FEATURES);
	assert_int_equal(parse(&o, err, sizeof(err), "--help", NULL), 0);
	assert_int_equal(o.action, PXC_HELP);
	/* Parsing again starts from the defaults. */
	assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
	assert_int_equal(o.action, PXC_RUN);
}

static void
test_pxcached_options_refused(void **state)
{
	static const char *const bad[][2] = {
	    {"-p", "65536"},
	    {"-p", "-1"},
	    {"-m", "0"},
	    {"-m", "12x"},
	    {"-c", "0"},
	    {"-t", "0"},
	    {"-I", "512"},
	    {"-I", "65m"},
	    {"-I", "99999999999g"},
	    {"--hugepages", "yes"},
	    {"-t", "18446744073709551617"},
	};
	struct pxc_opts o;
	char err[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(
		    parse(&o, err, sizeof(err), bad[i][0], bad[i][1], NULL),
		    -EINVAL);
		assert_true(strlen(err) > 0);
	}
	assert_int_equal(parse(&o, err, sizeof(err), "-U", "0", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, sizeof(err), "extra", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, sizeof(err), "-p", NULL), -EINVAL);
	assert_non_null(strstr(err, "needs a value"));
	/* -I cannot exceed the memory. */
	assert_int_equal(
	    parse(&o, err, sizeof(err), "-m", "1", "-I", "2m", NULL), -EINVAL);
}

/* Bad values are refused while parsing, naming the option and the value. */
static void
test_pxcached_options_names_bad_values(void **state)
{
	struct pxc_opts o;
	char err[128];

	assert_int_equal(parse(&o, err, sizeof(err), "--policy", "foo", NULL),
			 -EINVAL);
	assert_string_equal(err, "unknown policy 'foo' (lru, sieve, s3fifo)");
	assert_int_equal(parse(&o, err, sizeof(err), "--policy", "sieve", NULL),
			 0);
	assert_string_equal(o.policy, "sieve");
	assert_int_equal(parse(&o, err, sizeof(err), "-l", "garbage", NULL),
			 -EINVAL);
	assert_non_null(strstr(err, "-l: 'garbage'"));
	assert_int_equal(parse(&o, err, sizeof(err), "-l", "10.0.0.300", NULL),
			 -EINVAL);
	assert_int_equal(parse(&o, err, sizeof(err), "-l", "::1", NULL), 0);
	assert_int_equal(parse(&o, err, sizeof(err), "-l", "0.0.0.0", NULL), 0);
	assert_int_equal(parse(&o, err, sizeof(err), "--bogus=1", NULL),
			 -EINVAL);
	assert_non_null(strstr(err, "'--bogus=1'"));
	assert_int_equal(parse(&o, err, sizeof(err), "-x", NULL), -EINVAL);
	assert_non_null(strstr(err, "'-x'"));
}

static void
test_pxcached_options_sizes(void **state)
{
	uint64_t v;

	assert_int_equal(pxc_parse_size("1024", &v), 0);
	assert_int_equal(v, 1024);
	assert_int_equal(pxc_parse_size("64k", &v), 0);
	assert_int_equal(v, 64 << 10);
	assert_int_equal(pxc_parse_size("1G", &v), 0);
	assert_int_equal(v, 1ull << 30);
	assert_int_equal(pxc_parse_size("k", &v), -EINVAL);
	assert_int_equal(pxc_parse_size("", &v), -EINVAL);
	assert_int_equal(pxc_parse_size("17179869184g", &v), -EINVAL);
}

static void
test_pxcached_options_help_lists_everything(void **state)
{
	static const char *const opts[] = {"-p,",
					   "-l,",
					   "-m,",
					   "-c,",
					   "-t,",
					   "-I,",
					   "-v,",
					   "--policy",
					   "--hugepages",
					   "--features",
					   "--port-file",
					   "--help",
					   "--snapshot=",
					   "--snapshot-interval",
					   "--snapshot-strict",
					   "--handover",
					   "--extended",
					   "idle_timeout",
					   "partial_timeout",
					   "ring_entries",
					   "ring_cq_entries"};
	const char *h = pxc_usage();

	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		assert_non_null(strstr(h, opts[i]));
	assert_non_null(strstr(h, "127.0.0.1"));
}

static void
test_pxcached_options_snapshot(void **state)
{
	struct pxc_opts o;
	char err[128];

	assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
	assert_null(o.snapshot);
	assert_int_equal(o.snapshot_interval, 0);
	assert_false(o.snapshot_strict);
	assert_int_equal(parse(&o, err, sizeof(err), "--snapshot", "/tmp/s",
			       "--snapshot-interval", "30", "--snapshot-strict",
			       NULL),
			 0);
	assert_string_equal(o.snapshot, "/tmp/s");
	assert_int_equal(o.snapshot_interval, 30);
	assert_true(o.snapshot_strict);
	assert_int_equal(
	    parse(&o, err, sizeof(err), "--snapshot-interval", "30", NULL),
	    -EINVAL);
	assert_non_null(strstr(err, "--snapshot"));
	assert_int_equal(parse(&o, err, sizeof(err), "--snapshot-strict", NULL),
			 -EINVAL);
	assert_int_equal(parse(&o, err, sizeof(err), "--snapshot", "/tmp/s",
			       "--snapshot-interval", "-1", NULL),
			 -EINVAL);
	/* An empty name could never be saved to. */
	assert_int_equal(parse(&o, err, sizeof(err), "--snapshot", "", NULL),
			 -EINVAL);
	assert_non_null(strstr(err, "file name"));
}

/* --handover: a Unix socket path that fits in sockaddr_un. */
static void
test_pxcached_options_handover(void **state)
{
	char err[128], longp[PXC_HANDOVER_PATH_MAX + 1];
	struct pxc_opts o;

	assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
	assert_null(o.handover);
	assert_int_equal(
	    parse(&o, err, sizeof(err), "--handover", "/run/px.sock", NULL), 0);
	assert_string_equal(o.handover, "/run/px.sock");
	assert_int_equal(parse(&o, err, sizeof(err), "--handover", "", NULL),
			 -EINVAL);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = 0;
	assert_int_equal(parse(&o, err, sizeof(err), "--handover", longp, NULL),
			 -EINVAL);
	assert_non_null(strstr(err, "shorter than"));
}

/* -o: memcached's extended options, comma separated, Kconfig defaults. */
static void
test_pxcached_options_extended(void **state)
{
	struct pxc_opts o;
	char err[160];

	assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
	assert_int_equal(o.idle_timeout, CONFIG_PX_PXCACHED_IDLE_TIMEOUT_S);
	assert_int_equal(o.partial_timeout,
			 CONFIG_PX_PXCACHED_PARTIAL_TIMEOUT_S);
	assert_int_equal(o.ring_entries, 0);
	assert_int_equal(o.ring_cq_entries, 0);
	assert_int_equal(parse(&o, err, sizeof(err), "-o",
			       "idle_timeout=600,partial_timeout=0", "-o",
			       "ring_entries=8,ring_cq_entries=16", NULL),
			 0);
	assert_int_equal(o.idle_timeout, 600);
	assert_int_equal(o.partial_timeout, 0);
	assert_int_equal(o.ring_entries, 8);
	assert_int_equal(o.ring_cq_entries, 16);
	assert_int_equal(
	    parse(&o, err, sizeof(err), "--extended=idle_timeout=5", NULL), 0);
	assert_int_equal(o.idle_timeout, 5);
}

static void
test_pxcached_options_extended_refused(void **state)
{
	static const char *const bad[] = {
	    "foo=1",
	    "idle_timeout",
	    "idle_timeout=",
	    "idle_timeout=-1",
	    "idle_timeout=2592001",
	    "idle_timeout=1x",
	    "partial_timeout=99999999999999999999999",
	    "ring_entries=32769",
	    "ring_entries=0,ring_cq_entries=4",
	    "ring_entries=64,ring_cq_entries=32",
	    "idle_timeout=1,bogus",
	};
	struct pxc_opts o;
	char err[160];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(
		    parse(&o, err, sizeof(err), "-o", bad[i], NULL), -EINVAL);
		assert_true(strlen(err) > 0);
	}
	assert_int_equal(parse(&o, err, sizeof(err), "-o", "foo=1", NULL),
			 -EINVAL);
	assert_non_null(strstr(err, "'foo=1'"));
	assert_non_null(strstr(err, "idle_timeout"));
}

/* Finding 7: -m over the cache's limit is refused naming the limit. */
static void
test_pxcached_options_memory_over_cache_limit(void **state)
{
	struct pxc_opts o;
	char err[160];

	assert_int_equal(parse(&o, err, sizeof(err), "-m", "40000", NULL),
			 -EINVAL);
	assert_non_null(strstr(err, "40000 MiB"));
	assert_non_null(strstr(err, "32768 MiB (32 GiB)"));
	assert_int_equal(parse(&o, err, sizeof(err), "-m", "32768", NULL), 0);
	assert_int_equal(o.memory_mb, PX_CACHE_LIMIT_MAX >> 20);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pxcached_options_defaults),
	    cmocka_unit_test(test_pxcached_options_memcached_flags),
	    cmocka_unit_test(test_pxcached_options_actions),
	    cmocka_unit_test(test_pxcached_options_refused),
	    cmocka_unit_test(test_pxcached_options_names_bad_values),
	    cmocka_unit_test(test_pxcached_options_sizes),
	    cmocka_unit_test(test_pxcached_options_help_lists_everything),
	    cmocka_unit_test(test_pxcached_options_snapshot),
	    cmocka_unit_test(test_pxcached_options_handover),
	    cmocka_unit_test(test_pxcached_options_extended),
	    cmocka_unit_test(test_pxcached_options_extended_refused),
	    cmocka_unit_test(test_pxcached_options_memory_over_cache_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
