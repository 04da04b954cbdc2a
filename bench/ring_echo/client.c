// SPDX-License-Identifier: MIT
/*
 * The ping-pong client, the same for both servers: N connections, each
 * sends one message, waits for all of its bytes to come back, records
 * the round trip, and sends the next.  One thread, level-triggered epoll,
 * nonblocking sockets with TCP_NODELAY.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../tests/selftests/loopback.h"
#include "echo.h"

#define MAX_SAMPLES (4u << 20)

struct cconn {
	int fd;
	bool out; /* EPOLLOUT is armed */
	size_t sent;
	size_t got;
	uint64_t t0;
};

struct client {
	const struct echo_case *c;
	const struct echo_server *s;
	uint64_t cpu0;
	int ep;
	char *msg;
	char *scratch;
	uint32_t *lat;
	uint64_t nlat;
	uint64_t ops;
	bool measuring;
};

/* Changes the interest set only when it differs: no syscall per op. */
static int
watch(struct client *cl, struct cconn *k, int op, bool out)
{
	struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0),
				 .data.ptr = k};

	if (op == EPOLL_CTL_MOD && k->out == out)
		return 0;
	k->out = out;
	return epoll_ctl(cl->ep, op, k->fd, &ev);
}

static int
send_more(struct client *cl, struct cconn *k)
{
	size_t len = cl->c->msg_size;
	ssize_t n = send(k->fd, cl->msg + k->sent, len - k->sent,
			 MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n < 0)
		return errno == EAGAIN ? 0 : -1;
	k->sent += (size_t)n;
	if (k->sent == len)
		return watch(cl, k, EPOLL_CTL_MOD, false);
	return watch(cl, k, EPOLL_CTL_MOD, true);
}

static int
start_round(struct client *cl, struct cconn *k)
{
	k->sent = 0;
	k->got = 0;
	k->t0 = echo_now_ns();
	return send_more(cl, k);
}

static int
recv_more(struct client *cl, struct cconn *k)
{
	size_t len = cl->c->msg_size;
	ssize_t n = recv(k->fd, cl->scratch, len - k->got, MSG_DONTWAIT);
	uint64_t rtt;

	if (n == 0 || (n < 0 && errno != EAGAIN))
		return -1;
	if (n < 0)
		return 0;
	k->got += (size_t)n;
	if (k->got < len)
		return 0;
	if (cl->measuring) {
		rtt = echo_now_ns() - k->t0;
		cl->ops++;
		if (cl->nlat < MAX_SAMPLES)
			cl->lat[cl->nlat++] =
			    rtt > UINT32_MAX ? UINT32_MAX : (uint32_t)rtt;
	}
	return start_round(cl, k);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double
pct_us(const uint32_t *v, uint64_t n, double q)
{
	if (n == 0)
		return 0;
	return v[(uint64_t)(q * (double)(n - 1))] / 1000.0;
}

static int
drive(struct client *cl, struct cconn *k, int n)
{
	struct epoll_event ev[256];
	uint64_t start = echo_now_ns();
	uint64_t warm = start + (uint64_t)(cl->c->warmup * 1e9);
	uint64_t end = warm + (uint64_t)(cl->c->seconds * 1e9);
	uint64_t now = start, t_measure = warm;

	for (int i = 0; i < n; i++)
		if (start_round(cl, &k[i]))
			return -EIO;
	while (now < end) {
		int got = epoll_wait(cl->ep, ev, 256, 100);

		for (int i = 0; i < got; i++) {
			struct cconn *c = ev[i].data.ptr;
			int bad = 0;

			if (ev[i].events & EPOLLOUT)
				bad = send_more(cl, c);
			if (!bad &&
			    ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				bad = recv_more(cl, c);
			if (bad)
				return -EIO;
		}
		now = echo_now_ns();
		if (!cl->measuring && now >= warm) {
			cl->measuring = true;
			t_measure = now;
			cl->cpu0 = echo_cpu_ns(cl->s->cpu_clock);
		}
	}
	return (int)((now - t_measure) / 1000);
}

int
echo_client_run(const struct echo_server *s, const struct echo_case *c,
		struct echo_result *out)
{
	struct client cl = {.c = c, .s = s};
	uint64_t cpu;
	struct cconn *k = calloc((size_t)c->conns, sizeof(*k));
	int us, ret = 0;

	memset(out, 0, sizeof(*out));
	cl.ep = epoll_create1(EPOLL_CLOEXEC);
	cl.msg = malloc(c->msg_size);
	cl.scratch = malloc(c->msg_size);
	cl.lat = malloc(MAX_SAMPLES * sizeof(uint32_t));
	if (!k || cl.ep < 0 || !cl.msg || !cl.scratch || !cl.lat) {
		ret = -ENOMEM;
		goto out_free;
	}
	memset(cl.msg, 'x', c->msg_size);
	for (int i = 0; i < c->conns; i++) {
		k[i].fd = loopback_connect(s->port);
		if (k[i].fd < 0 || watch(&cl, &k[i], EPOLL_CTL_ADD, false)) {
			ret = -ECONNREFUSED;
			goto out_close;
		}
	}
	us = drive(&cl, k, c->conns);
	cpu = echo_cpu_ns(s->cpu_clock) - cl.cpu0;
	if (us < 0) {
		ret = us;
		goto out_close;
	}
	out->server_cpu_us = cl.ops ? cpu / 1e3 / (double)cl.ops : 0;
	qsort(cl.lat, cl.nlat, sizeof(*cl.lat), cmp_u32);
	out->ops = cl.ops;
	out->seconds = us / 1e6;
	out->ops_per_s = out->seconds > 0 ? cl.ops / out->seconds : 0;
	out->p50_us = pct_us(cl.lat, cl.nlat, 0.50);
	out->p99_us = pct_us(cl.lat, cl.nlat, 0.99);

out_close:
	for (int i = 0; i < c->conns; i++)
		if (k[i].fd > 0)
			close(k[i].fd);
out_free:
	free(cl.lat);
	free(cl.scratch);
	free(cl.msg);
	free(k);
	if (cl.ep >= 0)
		close(cl.ep);
	out->error = ret;
	return ret;
}
