// SPDX-License-Identifier: MIT
/*
 * A selftest program whose tests pass, fail, crash, hang and skip on
 * purpose.  It is not run by `make check` directly: selftests/harness.c
 * runs it and checks that each outcome is reported as such.
 */
#include <signal.h>

#define TEST_TIMEOUT_DEFAULT 5
#include "../selftests/harness.h"

TEST(passes)
{
	ASSERT_EQ(1 + 1, 2);
}

TEST(fails)
{
	ASSERT_EQ(1 + 1, 3);
}

TEST(expect_then_continues)
{
	EXPECT_EQ(1, 2);
	TH_LOG("still running after EXPECT");
}

TEST(crashes)
{
	raise(SIGSEGV);
}

TEST_T(hangs, 1)
{
	for (;;)
		pause();
}

TEST(skips)
{
	SKIP(return, "no such feature here");
}

FIXTURE(fx)
{
	int value;
};

FIXTURE_SETUP(fx)
{
	self->value = 7;
}

FIXTURE_TEARDOWN(fx)
{
	TH_LOG("teardown ran with value %d", self->value);
}

TEST_F(fx, assert_runs_teardown)
{
	ASSERT_EQ(self->value, 8);
	TH_LOG("not reached");
}

TEST_HARNESS_MAIN
