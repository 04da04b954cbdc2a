/* SPDX-License-Identifier: MIT */
/*
 * ring_echo benchmark: shared declarations.  Two echo servers (px_ring
 * and a plain epoll loop) are driven in turn by the same ping-pong client
 * on 127.0.0.1, with the same message sizes, buffers and CPU pinning.
 */
#ifndef BENCH_RING_ECHO_H
#define BENCH_RING_ECHO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Receive buffer of both servers: one provided buffer of the ring. */
#define ECHO_BUF_SIZE 4096

struct echo_server {
	const char *name;
	int (*start)(struct echo_server *s);
	void (*stop)(struct echo_server *s);
	int listen_fd;
	uint16_t port;
	int cpu;
	pthread_t thread;
	clockid_t cpu_clock; /* the server thread's CPU time */
	void *priv;
	int error;
};

struct echo_case {
	size_t msg_size;
	int conns;
	double seconds;
	double warmup;
	int cpu;
};

struct echo_result {
	uint64_t ops;
	double seconds;
	double ops_per_s;
	double p50_us;
	double p99_us;
	double server_cpu_us; /* server CPU time per round trip */
	int error;
};

void echo_server_ring_init(struct echo_server *s);
void echo_server_epoll_init(struct echo_server *s);
int echo_listen(struct echo_server *s);
void echo_pin(int cpu);
uint64_t echo_now_ns(void);

int echo_client_run(const struct echo_server *s, const struct echo_case *c,
		    struct echo_result *out);
uint64_t echo_cpu_ns(clockid_t clock);

#endif
