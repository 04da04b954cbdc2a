// SPDX-License-Identifier: MIT
/*
 * The px_ring echo server: multishot accept, one px_ring_conn per client
 * with a multishot recv into provided buffers, and each received buffer
 * sent straight back (no copy); the buffer returns to the ring when its
 * send completes.  Stopped by a message from another thread's ring.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <patinox/error.h>
#include <patinox/ring.h>

#include "../../apps/common/log.h"
#include "echo.h"

struct ring_priv {
	struct px_ring *ring;
	int ready;
};

static void
echo_sent(struct px_ring_conn *conn, int res, void *ctx)
{
	px_ring_buf_put(px_ring_conn_ring(conn), ctx);
}

static void
echo_recv(struct px_ring_conn *conn, struct px_ring_buf *buf, int res,
	  void *ctx)
{
	struct iovec iov;

	if (res <= 0) {
		px_ring_conn_close(conn, NULL, NULL);
		return;
	}
	iov.iov_base = buf->data;
	iov.iov_len = buf->len;
	if (px_ring_conn_send(conn, &iov, 1, echo_sent, buf) < 0) {
		px_ring_buf_put(px_ring_conn_ring(conn), buf);
		px_ring_conn_close(conn, NULL, NULL);
	}
}

static void
echo_accept(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct px_ring_conn *conn;
	int one = 1;

	if (res < 0) {
		if (res != -ECANCELED)
			LOG_WARN("ring accept: %s", px_strerror(res));
		return;
	}
	setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (px_ring_conn_create(ring, res, 0, echo_recv, NULL, &conn) == 0)
		px_ring_conn_recv_start(conn);
}

static void *
ring_main(void *arg)
{
	struct echo_server *s = arg;
	struct ring_priv *p = s->priv;
	int ret;

	echo_pin(s->cpu);
	pthread_setname_np(pthread_self(), "ring-srv");
	ret = px_ring_create(NULL, &p->ring);
	if (ret == 0)
		ret = px_ring_accept(p->ring, s->listen_fd, 0, echo_accept, s,
				     NULL);
	s->error = ret;
	__atomic_store_n(&p->ready, 1, __ATOMIC_RELEASE);
	if (ret < 0) {
		LOG_ERROR("ring server: %s", px_strerror_in(PX_PART_RING, ret));
		return NULL;
	}
	ret = px_ring_run(p->ring);
	if (ret < 0)
		LOG_ERROR("ring server: %s", px_strerror(ret));
	px_ring_destroy(p->ring);
	return NULL;
}

static int
ring_start(struct echo_server *s)
{
	struct ring_priv *p = calloc(1, sizeof(*p));
	int ret;

	if (!p)
		return -ENOMEM;
	s->priv = p;
	ret = echo_listen(s);
	if (ret < 0)
		return ret;
	ret = -pthread_create(&s->thread, NULL, ring_main, s);
	if (ret < 0)
		return ret;
	while (!__atomic_load_n(&p->ready, __ATOMIC_ACQUIRE))
		usleep(1000);
	return s->error;
}

static void
stop_fn(struct px_ring *ring, int res, bool more, void *ctx)
{
	int *failed = ctx;

	if (res < 0)
		*failed = res;
	else
		px_ring_stop(ring);
}

/* The stop travels as a message from a ring of the calling thread. */
static void
ring_stop(struct echo_server *s)
{
	struct ring_priv *p = s->priv;
	struct px_ring_opts o;
	struct px_ring *me;
	int failed = 0;

	px_ring_opts_init(&o);
	o.flags |= PX_RING_NO_BUF_RING;
	o.sq_entries = 8;
	if (px_ring_create(&o, &me) == 0 &&
	    px_ring_post(me, p->ring, stop_fn, &failed) == 0) {
		px_ring_run_once(me, 100 * 1000000LL);
		pthread_join(s->thread, NULL);
	}
	px_ring_destroy(me);
	close(s->listen_fd);
	free(p);
}

void
echo_server_ring_init(struct echo_server *s)
{
	s->name = "ring";
	s->start = ring_start;
	s->stop = ring_stop;
}
