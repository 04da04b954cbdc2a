/* SPDX-License-Identifier: MIT */
/*
 * patinox selftest harness, in the manner of the kernel's kselftest one.
 *
 *   TEST(name) { ... }                    a test
 *   TEST_T(name, seconds) { ... }         a test with its own timeout
 *   FIXTURE(f) { members };               per-test state, reached as self->
 *   FIXTURE_SETUP(f) { ... }              runs before each TEST_F(f, ...)
 *   FIXTURE_TEARDOWN(f) { ... }           runs after, even when ASSERT fails
 *   TEST_F(f, name) { ... }, TEST_F_T(f, name, seconds)
 *   ASSERT_*(...)  fails and stops the test;  EXPECT_*(...) fails, goes on
 *   SKIP(statement, fmt, ...)             skip with a reason (exit code 4)
 *   TH_LOG(fmt, ...)                      a "# " diagnostic line
 *
 * Every test runs in its own forked child, in its own process group, with
 * a timeout (TEST_TIMEOUT_DEFAULT seconds unless the test says otherwise,
 * multiplied by $PX_TEST_TIMEOUT_SCALE).  A crash, a hang or a failed
 * assertion in one test cannot disturb the next.  Output is TAP 13.  The
 * program exits 1 when a test failed, else 0.
 *
 * Options: -l lists the tests, -t NAME runs only NAME (repeatable).
 */
#ifndef PX_SELFTEST_HARNESS_H
#define PX_SELFTEST_HARNESS_H

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 30
#endif

#define KSFT_PASS 0
#define KSFT_FAIL 1
#define KSFT_SKIP 4

struct __test_meta {
	const char *name;
	void (*fn)(struct __test_meta *);
	int timeout;
	/* child-side state */
	bool failed;
	bool setup_done;
	sigjmp_buf bail;
	struct __test_meta *next;
};

struct __test_shared {
	char skip_reason[256];
};

static struct __test_meta *__tests_head, **__tests_tail = &__tests_head;
static struct __test_shared *__test_shared;

static inline void
__register_test(struct __test_meta *t)
{
	*__tests_tail = t;
	__tests_tail = &t->next;
}

#define __TEST_IMPL(test_name, display, secs)                                \
	static void test_name(struct __test_meta *_metadata);                \
	static struct __test_meta _##test_name##_object = {                  \
	    .name = display,                                                 \
	    .fn = test_name,                                                 \
	    .timeout = (secs),                                               \
	};                                                                   \
	__attribute__((constructor)) static void _register_##test_name(void) \
	{                                                                    \
		__register_test(&_##test_name##_object);                     \
	}                                                                    \
	static void test_name(struct __test_meta __attribute__((unused)) *   \
			      _metadata)

#define TEST(name)         __TEST_IMPL(name, #name, TEST_TIMEOUT_DEFAULT)
#define TEST_T(name, secs) __TEST_IMPL(name, #name, secs)

#define FIXTURE_DATA(f)    struct _fixture_##f##_data
#define FIXTURE(f)         FIXTURE_DATA(f)
#define FIXTURE_SETUP(f)                                                   \
	static void f##_setup(struct __test_meta __attribute__((unused)) * \
				  _metadata,                               \
			      FIXTURE_DATA(f) __attribute__((unused)) * self)
#define FIXTURE_TEARDOWN(f)                                         \
	static void f##_teardown(                                   \
	    struct __test_meta __attribute__((unused)) * _metadata, \
	    FIXTURE_DATA(f) __attribute__((unused)) * self)

#define __TEST_F_IMPL(f, test_name, secs)                                  \
	static void f##_##test_name(struct __test_meta *_metadata,         \
				    FIXTURE_DATA(f) * self);               \
	static void _wrap_##f##_##test_name(struct __test_meta *_metadata) \
	{                                                                  \
		static FIXTURE_DATA(f) self;                               \
		memset(&self, 0, sizeof(self));                            \
		if (sigsetjmp(_metadata->bail, 0) == 0) {                  \
			f##_setup(_metadata, &self);                       \
			_metadata->setup_done = true;                      \
			f##_##test_name(_metadata, &self);                 \
		}                                                          \
		if (_metadata->setup_done) {                               \
			_metadata->setup_done = false;                     \
			if (sigsetjmp(_metadata->bail, 0) == 0)            \
				f##_teardown(_metadata, &self);            \
		}                                                          \
	}                                                                  \
	__TEST_IMPL(_test_##f##_##test_name, #f "." #test_name, secs)      \
	{                                                                  \
		_wrap_##f##_##test_name(_metadata);                        \
	}                                                                  \
	static void f##_##test_name(                                       \
	    struct __test_meta __attribute__((unused)) * _metadata,        \
	    FIXTURE_DATA(f) __attribute__((unused)) * self)

#define TEST_F(f, name)         __TEST_F_IMPL(f, name, TEST_TIMEOUT_DEFAULT)
#define TEST_F_T(f, name, secs) __TEST_F_IMPL(f, name, secs)

#define TH_LOG(fmt, ...)                                                  \
	do {                                                              \
		fprintf(stdout, "# %s:%d: " fmt "\n", __FILE__, __LINE__, \
			##__VA_ARGS__);                                   \
		fflush(stdout);                                           \
	} while (0)

/* Stop the test now: teardown (if any) still runs, then the child exits. */
static inline void __attribute__((noreturn)) __test_bail(struct __test_meta *m)
{
	siglongjmp(m->bail, 1);
}

#define SKIP(statement, fmt, ...)                                 \
	do {                                                      \
		snprintf(__test_shared->skip_reason,              \
			 sizeof(__test_shared->skip_reason), fmt, \
			 ##__VA_ARGS__);                          \
		fflush(stdout);                                   \
		_exit(KSFT_SKIP);                                 \
		statement;                                        \
	} while (0)

#define __EXPECT(a, b, op, is_assert)                                       \
	do {                                                                \
		__typeof__(a) __a = (a);                                    \
		__typeof__(b) __b = (b);                                    \
		_Pragma("GCC diagnostic push");                             \
		_Pragma("GCC diagnostic ignored \"-Wsign-compare\"");       \
		bool __ok = __a op __b;                                     \
		_Pragma("GCC diagnostic pop");                              \
		if (!__ok) {                                                \
			TH_LOG("expected %s %s %s (%lld vs %lld)", #a, #op, \
			       #b, (long long)(intptr_t)__a,                \
			       (long long)(intptr_t)__b);                   \
			_metadata->failed = true;                           \
			if (is_assert)                                      \
				__test_bail(_metadata);                     \
		}                                                           \
	} while (0)

#define ASSERT_EQ(a, b)    __EXPECT(a, b, ==, 1)
#define ASSERT_NE(a, b)    __EXPECT(a, b, !=, 1)
#define ASSERT_LT(a, b)    __EXPECT(a, b, <, 1)
#define ASSERT_LE(a, b)    __EXPECT(a, b, <=, 1)
#define ASSERT_GT(a, b)    __EXPECT(a, b, >, 1)
#define ASSERT_GE(a, b)    __EXPECT(a, b, >=, 1)
#define EXPECT_EQ(a, b)    __EXPECT(a, b, ==, 0)
#define EXPECT_NE(a, b)    __EXPECT(a, b, !=, 0)
#define EXPECT_LT(a, b)    __EXPECT(a, b, <, 0)
#define EXPECT_LE(a, b)    __EXPECT(a, b, <=, 0)
#define EXPECT_GT(a, b)    __EXPECT(a, b, >, 0)
#define EXPECT_GE(a, b)    __EXPECT(a, b, >=, 0)
#define ASSERT_TRUE(a)     __EXPECT(!!(a), 1, ==, 1)
#define ASSERT_FALSE(a)    __EXPECT(!!(a), 0, ==, 1)
#define EXPECT_TRUE(a)     __EXPECT(!!(a), 1, ==, 0)
#define EXPECT_FALSE(a)    __EXPECT(!!(a), 0, ==, 0)
#define ASSERT_NULL(a)     __EXPECT((const void *)(a), NULL, ==, 1)
#define ASSERT_NOT_NULL(a) __EXPECT((const void *)(a), NULL, !=, 1)

#define __EXPECT_STR(a, b, is_assert)                                       \
	do {                                                                \
		const char *__a = (a), *__b = (b);                          \
		if (!__a || !__b || strcmp(__a, __b) != 0) {                \
			TH_LOG("expected \"%s\" == \"%s\"",                 \
			       __a ? __a : "(null)", __b ? __b : "(null)"); \
			_metadata->failed = true;                           \
			if (is_assert)                                      \
				__test_bail(_metadata);                     \
		}                                                           \
	} while (0)
#define ASSERT_STREQ(a, b) __EXPECT_STR(a, b, 1)
#define EXPECT_STREQ(a, b) __EXPECT_STR(a, b, 0)

static inline double
__test_timeout_scale(void)
{
	const char *s = getenv("PX_TEST_TIMEOUT_SCALE");
	double v = s ? atof(s) : 1.0;

	return v > 0 ? v : 1.0;
}

static inline void __attribute__((noreturn)) __test_child(struct __test_meta *t)
{
	setpgid(0, 0);
	if (sigsetjmp(t->bail, 0) == 0)
		t->fn(t);
	fflush(stdout);
	fflush(stderr);
	_exit(t->failed ? KSFT_FAIL : KSFT_PASS);
}

/* Waits for the child, killing its process group at the deadline. */
static inline int
__test_wait(pid_t pid, int timeout_ms, bool *timed_out)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
	int status = 0, ret;

	*timed_out = false;
	if (pidfd >= 0) {
		do {
			ret = poll(&pfd, 1, timeout_ms);
		} while (ret < 0 && errno == EINTR);
		close(pidfd);
		if (ret == 0) {
			*timed_out = true;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
		}
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	/* Whatever the test left running in its group goes with it. */
	kill(-pid, SIGKILL);
	return status;
}

static inline int
__test_report(int num, struct __test_meta *t, int status, bool timed_out)
{
	if (timed_out) {
		printf("# %s: timed out after %d s\n", t->name, t->timeout);
		printf("not ok %d %s # TIMEOUT\n", num, t->name);
		return KSFT_FAIL;
	}
	if (WIFSIGNALED(status)) {
		printf("# %s: crashed: signal %d (%s)\n", t->name,
		       WTERMSIG(status), strsignal(WTERMSIG(status)));
		printf("not ok %d %s\n", num, t->name);
		return KSFT_FAIL;
	}
	if (WEXITSTATUS(status) == KSFT_SKIP) {
		printf("ok %d %s # SKIP %s\n", num, t->name,
		       __test_shared->skip_reason);
		return KSFT_SKIP;
	}
	if (WEXITSTATUS(status) == KSFT_PASS) {
		printf("ok %d %s\n", num, t->name);
		return KSFT_PASS;
	}
	printf("not ok %d %s\n", num, t->name);
	return KSFT_FAIL;
}

static inline int
__test_run_one(int num, struct __test_meta *t)
{
	double scale = __test_timeout_scale();
	bool timed_out;
	pid_t pid;
	int status;

	__test_shared->skip_reason[0] = '\0';
	printf("# RUN %s\n", t->name);
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		printf("not ok %d %s # fork: %s\n", num, t->name,
		       strerror(errno));
		return KSFT_FAIL;
	}
	if (pid == 0)
		__test_child(t);
	setpgid(pid, pid);
	status = __test_wait(pid, (int)(t->timeout * 1000 * scale), &timed_out);
	return __test_report(num, t, status, timed_out);
}

static inline bool
__test_selected(const char *name, int argc, char **argv)
{
	bool any = false;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
			any = true;
			if (strcmp(argv[++i], name) == 0)
				return true;
		}
	}
	return !any;
}

static inline int
__test_main(int argc, char **argv)
{
	int n = 0, num = 0, pass = 0, fail = 0, skip = 0;
	struct __test_meta *t;

	setvbuf(stdout, NULL, _IOLBF, 0);
	__test_shared =
	    mmap(NULL, sizeof(*__test_shared), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (__test_shared == MAP_FAILED)
		return KSFT_FAIL;
	for (t = __tests_head; t; t = t->next) {
		if (argc > 1 && strcmp(argv[1], "-l") == 0)
			printf("%s\n", t->name);
		else if (__test_selected(t->name, argc, argv))
			n++;
	}
	if (argc > 1 && strcmp(argv[1], "-l") == 0)
		return 0;
	printf("TAP version 13\n1..%d\n", n);
	for (t = __tests_head; t; t = t->next) {
		if (!__test_selected(t->name, argc, argv))
			continue;
		switch (__test_run_one(++num, t)) {
		case KSFT_PASS:
			pass++;
			break;
		case KSFT_SKIP:
			skip++;
			break;
		default:
			fail++;
		}
	}
	printf("# totals: pass:%d fail:%d skip:%d\n", pass, fail, skip);
	return fail ? KSFT_FAIL : KSFT_PASS;
}

#define TEST_HARNESS_MAIN                       \
	int main(int argc, char **argv)         \
	{                                       \
		return __test_main(argc, argv); \
	}

#endif
