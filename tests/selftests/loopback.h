/* SPDX-License-Identifier: MIT */
/*
 * 127.0.0.1 sockets for the network selftests and benchmarks: a listener
 * on a free port, a free port, a client connection with TCP_NODELAY,
 * whether a port accepts connections, the descriptor limit raised for
 * many connections, and a memcached of our own on a loopback port.  Nothing
 * here reaches any address but the loopback one. Header-only (static inline):
 * each test program is one file.
 */
#ifndef PX_TESTS_LOOPBACK_H
#define PX_TESTS_LOOPBACK_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define LOOPBACK_MEMCACHED "/usr/bin/memcached"

/*
 * A listener on 127.0.0.1, a free port; *@port receives it.  -1 on error.
 * Not inlined: in a selftest body (after the harness's sigsetjmp) gcc's
 * -Wclobbered would flag the caller's port variable.
 */
static __attribute__((noinline, unused)) int
loopback_listen(int backlog, uint16_t *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, backlog) ||
	    getsockname(fd, (struct sockaddr *)&a, &len)) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

/* A 127.0.0.1 port free a moment ago (for a server started next), or 0. */
static inline uint16_t
loopback_free_port(void)
{
	uint16_t port = 0;
	int fd = loopback_listen(1, &port);

	if (fd >= 0)
		close(fd);
	return port;
}

/* A blocking client socket connected to 127.0.0.1:@port, TCP_NODELAY set;
 * -1 when the connection fails. */
static inline int
loopback_connect(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Whether 127.0.0.1:@port accepts a connection now. */
static inline bool
loopback_accepts(uint16_t port)
{
	int fd = loopback_connect(port);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* Raises the soft descriptor limit to the hard one (many connections). */
static inline void
loopback_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/*
 * Starts memcached on 127.0.0.1:@port, TCP only, output discarded, with
 * the options in @more (NULL-terminated, at most 8) last; returns its pid
 * once it accepts connections, or -1 (not installed, or not up within 3 s:
 * then killed).  The caller stops it by that pid.
 */
static inline pid_t
loopback_memcached_start(uint16_t port, const char *const *more)
{
	const char *argv[20] = {"memcached", "-l", "127.0.0.1", "-p",  NULL,
				"-U",        "0",  "-u",        "root"};
	int argc = 9;
	char p[16];
	pid_t pid;

	if (access(LOOPBACK_MEMCACHED, X_OK) != 0)
		return -1;
	snprintf(p, sizeof(p), "%u", port);
	argv[4] = p;
	for (int i = 0; more && more[i] && i < 8; i++)
		argv[argc++] = more[i];
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 1);
		dup2(null, 2);
		execv(LOOPBACK_MEMCACHED, (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; pid > 0 && i < 300; i++) {
		if (loopback_accepts(port))
			return pid;
		usleep(10000);
	}
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return -1;
}

#endif /* PX_TESTS_LOOPBACK_H */
