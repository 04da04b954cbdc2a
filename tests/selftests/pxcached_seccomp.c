// SPDX-License-Identifier: MIT
/*
 * pxcached and pxprobe where io_uring is blocked, as a container's
 * seccomp profile blocks it: a child installs a seccomp filter that makes
 * io_uring_setup fail with EPERM (other architectures' system calls kill
 * the process, since their numbers differ), then execs the program.
 * pxcached must exit non-zero by itself, not by a signal, with
 * px_strerror_in(PX_PART_RING, -EPERM) on stderr and no listener left;
 * pxprobe --features must report io_uring unavailable.
 *
 * The programs are found through $OUT (set by tests/run.sh), else next to
 * this test: <out>/tests/selftests/.. -> <out>/apps/<name>/<name>.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <patinox/error.h>

#include "harness.h"

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#else
#define NATIVE_ARCH 0 /* the test skips */
#endif

/* io_uring_setup -> EPERM; everything else of this arch allowed. */
static int
block_uring(void)
{
	struct sock_filter f[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		     offsetof(struct seccomp_data, arch)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		     offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & 0xffff)),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return -errno;
	return 0;
}

/* <out>/apps/@name/@name, or "" when it is not there. */
static void
program_path(const char *name, char *buf, size_t len)
{
	char self[PATH_MAX / 2];
	const char *out = getenv("OUT");
	ssize_t n;

	if (out && *out) {
		snprintf(buf, len, "%s/apps/%s/%s", out, name, name);
	} else {
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		self[n > 0 ? n : 0] = '\0';
		*strrchr(self, '/') = '\0'; /* .../tests/selftests */
		snprintf(buf, len, "%s/../../apps/%s/%s", self, name, name);
	}
	if (access(buf, X_OK) != 0)
		buf[0] = '\0';
}

/*
 * Runs @argv under the filter with stdout and stderr in @log; returns
 * the wait status, or -1 when the filter could not be installed.
 */
static int
run_blocked(char *const argv[], const char *log)
{
	int status, fd;
	pid_t pid = fork();

	if (pid == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(120);
		if (block_uring() < 0)
			_exit(121);
		execv(argv[0], argv);
		_exit(122);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

static void
read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? 0 : read(fd, buf, len - 1);

	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

/* A port free now on 127.0.0.1 (bound to 0 and released). */
static int
free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* Whether something accepts connections on 127.0.0.1:@port. */
static bool
listening(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool up = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

	close(fd);
	return up;
}

TEST(pxcached_uring_blocked_exits_with_reason)
{
	char bin[PATH_MAX], log[] = "/tmp/pxcached_seccomp_XXXXXX", pstr[16];
	char text[8192];
	const char *want = px_strerror_in(PX_PART_RING, -EPERM);
	int status, port, fd;

	if (!NATIVE_ARCH)
		SKIP(return, "no seccomp arch constant for this machine");
	program_path("pxcached", bin, sizeof(bin));
	if (!bin[0])
		SKIP(return, "build/apps/pxcached/pxcached not built");
	port = free_port();
	ASSERT_GT(port, 0);
	snprintf(pstr, sizeof(pstr), "%d", port);
	fd = mkstemp(log);
	ASSERT_GE(fd, 0);
	close(fd);
	char *argv[] = {bin, "-p", pstr, "-t", "2", "-m", "16", NULL};

	status = run_blocked(argv, log);
	read_file(log, text, sizeof(text));
	unlink(log);
	TH_LOG("pxcached said: %s", text);
	ASSERT_NE(status, -1);
	ASSERT_TRUE(WIFEXITED(status));      /* no crash, no signal */
	ASSERT_LT(WEXITSTATUS(status), 120); /* the filter was installed */
	EXPECT_NE(WEXITSTATUS(status), 0);
	EXPECT_TRUE(strstr(text, want));
	EXPECT_TRUE(strstr(text, "io_uring is blocked"));
	EXPECT_FALSE(strstr(text, "listening on"));
	EXPECT_FALSE(listening(port));
}

TEST(pxprobe_reports_uring_unavailable_when_blocked)
{
	char bin[PATH_MAX], log[] = "/tmp/pxprobe_seccomp_XXXXXX";
	char text[8192];
	int status, fd;

	if (!NATIVE_ARCH)
		SKIP(return, "no seccomp arch constant for this machine");
	program_path("pxprobe", bin, sizeof(bin));
	if (!bin[0])
		SKIP(return, "build/apps/pxprobe/pxprobe not built");
	fd = mkstemp(log);
	ASSERT_GE(fd, 0);
	close(fd);
	char *argv[] = {bin, "--features", NULL};

	status = run_blocked(argv, log);
	read_file(log, text, sizeof(text));
	unlink(log);
	ASSERT_NE(status, -1);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_LT(WEXITSTATUS(status), 120);
	EXPECT_TRUE(strstr(text, "io_uring: unavailable"));
	EXPECT_FALSE(strstr(text, "io_uring: available"));
	if (!strstr(text, "io_uring: unavailable"))
		TH_LOG("pxprobe said: %s", text);
}

TEST_HARNESS_MAIN
