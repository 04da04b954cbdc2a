// SPDX-License-Identifier: MIT
/*
 * Tests of the selftest harness itself: runs tests/harness/sample, whose
 * tests pass, fail, crash, hang and skip on purpose, and checks that its
 * TAP output reports each outcome as such.
 */
#include <limits.h>
#include <libgen.h>

#include "harness.h"

static char sample_out[16384];
static int sample_status;

static void
run_sample(struct __test_meta *_metadata)
{
	char self[PATH_MAX], cmd[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	FILE *p;
	size_t got;

	ASSERT_GT(n, 0);
	self[n] = '\0';
	/* build/.../tests/selftests/harness -> build/.../tests/harness/ */
	snprintf(cmd, sizeof(cmd),
		 "ASAN_OPTIONS=handle_segv=0 TSAN_OPTIONS=handle_segv=0 "
		 "%s/../harness/sample 2>&1",
		 dirname(self));
	p = popen(cmd, "r");
	ASSERT_NOT_NULL(p);
	got = fread(sample_out, 1, sizeof(sample_out) - 1, p);
	sample_out[got] = '\0';
	sample_status = pclose(p);
}

static bool
has_line(const char *line)
{
	const char *s = sample_out;
	size_t len = strlen(line);

	while ((s = strstr(s, line))) {
		if ((s == sample_out || s[-1] == '\n') &&
		    (s[len] == '\n' || s[len] == '\0'))
			return true;
		s += len;
	}
	return false;
}

TEST(pass_is_ok)
{
	run_sample(_metadata);
	EXPECT_TRUE(has_line("TAP version 13"));
	EXPECT_TRUE(has_line("1..7"));
	EXPECT_TRUE(has_line("ok 1 passes"));
}

TEST(fail_is_not_ok)
{
	run_sample(_metadata);
	EXPECT_TRUE(has_line("not ok 2 fails"));
	EXPECT_TRUE(has_line("not ok 3 expect_then_continues"));
	EXPECT_TRUE(strstr(sample_out, "still running after EXPECT") != NULL);
	/* The program as a whole reports failure. */
	EXPECT_TRUE(WIFEXITED(sample_status));
	EXPECT_EQ(WEXITSTATUS(sample_status), KSFT_FAIL);
}

TEST(crash_is_reported)
{
	run_sample(_metadata);
	EXPECT_TRUE(has_line("not ok 4 crashes"));
	EXPECT_TRUE(strstr(sample_out, "crashes: crashed: signal 11") != NULL);
}

TEST(hang_times_out)
{
	run_sample(_metadata);
	EXPECT_TRUE(has_line("not ok 5 hangs # TIMEOUT"));
}

TEST(skip_has_reason)
{
	run_sample(_metadata);
	EXPECT_TRUE(has_line("ok 6 skips # SKIP no such feature here"));
}

TEST(assert_stops_and_teardown_runs)
{
	run_sample(_metadata);
	EXPECT_TRUE(has_line("not ok 7 fx.assert_runs_teardown"));
	EXPECT_TRUE(strstr(sample_out, "teardown ran with value 7") != NULL);
	EXPECT_TRUE(strstr(sample_out, "not reached") == NULL);
	EXPECT_TRUE(has_line("# totals: pass:1 fail:5 skip:1"));
}

TEST_HARNESS_MAIN
