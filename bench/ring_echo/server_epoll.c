// SPDX-License-Identifier: MIT
/*
 * The epoll echo server, the peer the ring is measured against: level-
 * triggered epoll, one read of up to ECHO_BUF_SIZE bytes per readiness
 * event (the ring's provided-buffer size), written straight back; what a
 * short write leaves is kept per connection until EPOLLOUT.  An eventfd
 * stops it.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../apps/common/log.h"
#include "echo.h"

#define MAX_EVENTS 256

struct epoll_conn {
	int fd;
	char *pend;
	size_t plen;
	size_t pcap;
};

struct epoll_priv {
	int ep;
	int stop_fd;
	int ready;
};

static void
conn_free(struct epoll_priv *p, struct epoll_conn *c)
{
	epoll_ctl(p->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->pend);
	free(c);
}

static int
conn_watch(struct epoll_priv *p, struct epoll_conn *c, int op, bool out)
{
	struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0),
				 .data.ptr = c};

	return epoll_ctl(p->ep, op, c->fd, &ev);
}

static int
pend_add(struct epoll_conn *c, const char *data, size_t len)
{
	if (c->plen + len > c->pcap) {
		size_t cap = (c->plen + len) * 2;
		char *n = realloc(c->pend, cap);

		if (!n)
			return -1;
		c->pend = n;
		c->pcap = cap;
	}
	memcpy(c->pend + c->plen, data, len);
	c->plen += len;
	return 0;
}

static int
conn_flush(struct epoll_priv *p, struct epoll_conn *c)
{
	ssize_t n = send(c->fd, c->pend, c->plen, MSG_NOSIGNAL);

	if (n < 0)
		return errno == EAGAIN ? 0 : -1;
	memmove(c->pend, c->pend + n, c->plen - (size_t)n);
	c->plen -= (size_t)n;
	if (c->plen == 0)
		return conn_watch(p, c, EPOLL_CTL_MOD, false);
	return 0;
}

static int
conn_read(struct epoll_priv *p, struct epoll_conn *c)
{
	char buf[ECHO_BUF_SIZE];
	ssize_t n = read(c->fd, buf, sizeof(buf));
	ssize_t w = 0;

	if (n == 0 || (n < 0 && errno != EAGAIN))
		return -1;
	if (n < 0)
		return 0;
	if (c->plen == 0) {
		w = send(c->fd, buf, (size_t)n, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN)
			return -1;
		if (w < 0)
			w = 0;
		if (w == n)
			return 0;
		if (conn_watch(p, c, EPOLL_CTL_MOD, true))
			return -1;
	}
	return pend_add(c, buf + w, (size_t)(n - w));
}

static void
accept_all(struct epoll_priv *p, int lfd)
{
	int one = 1;

	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_conn *c;

		if (fd < 0)
			return;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		if (conn_watch(p, c, EPOLL_CTL_ADD, false)) {
			close(fd);
			free(c);
		}
	}
}

static void *
epoll_main(void *arg)
{
	struct echo_server *s = arg;
	struct epoll_priv *p = s->priv;
	struct epoll_event ev[MAX_EVENTS];
	int lfd = s->listen_fd;

	echo_pin(s->cpu);
	pthread_setname_np(pthread_self(), "epoll-srv");
	__atomic_store_n(&p->ready, 1, __ATOMIC_RELEASE);
	for (;;) {
		int n = epoll_wait(p->ep, ev, MAX_EVENTS, -1);

		for (int i = 0; i < n; i++) {
			struct epoll_conn *c = ev[i].data.ptr;
			int bad = 0;

			if (c == NULL) {
				accept_all(p, lfd);
				continue;
			}
			if (c == (void *)p)
				return NULL;
			if (ev[i].events & EPOLLOUT)
				bad = conn_flush(p, c);
			if (!bad &&
			    ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				bad = conn_read(p, c);
			if (bad)
				conn_free(p, c);
		}
	}
}

static int
epoll_start(struct echo_server *s)
{
	struct epoll_priv *p = calloc(1, sizeof(*p));
	struct epoll_event ev = {.events = EPOLLIN};
	int ret;

	if (!p)
		return -ENOMEM;
	s->priv = p;
	ret = echo_listen(s);
	if (ret < 0)
		return ret;
	fcntl(s->listen_fd, F_SETFL, O_NONBLOCK);
	p->ep = epoll_create1(EPOLL_CLOEXEC);
	p->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->ep < 0 || p->stop_fd < 0)
		return -errno;
	ev.data.ptr = NULL;
	epoll_ctl(p->ep, EPOLL_CTL_ADD, s->listen_fd, &ev);
	ev.data.ptr = p;
	epoll_ctl(p->ep, EPOLL_CTL_ADD, p->stop_fd, &ev);
	ret = -pthread_create(&s->thread, NULL, epoll_main, s);
	if (ret < 0)
		return ret;
	while (!__atomic_load_n(&p->ready, __ATOMIC_ACQUIRE))
		usleep(1000);
	return 0;
}

static void
epoll_stop(struct echo_server *s)
{
	struct epoll_priv *p = s->priv;
	uint64_t one = 1;

	if (write(p->stop_fd, &one, sizeof(one)) == sizeof(one))
		pthread_join(s->thread, NULL);
	close(p->stop_fd);
	close(p->ep);
	close(s->listen_fd);
	free(p);
}

void
echo_server_epoll_init(struct echo_server *s)
{
	s->name = "epoll";
	s->start = epoll_start;
	s->stop = epoll_stop;
}
