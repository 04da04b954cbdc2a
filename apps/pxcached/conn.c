// SPDX-License-Identifier: MIT
/*
 * Client connections.  Each lives on one worker's ring: a multishot recv
 * delivers provided buffers; every request complete in a buffer is parsed
 * and answered straight from it, in order, and the replies of the whole
 * buffer leave in one send.  Only the bytes of an unfinished request are
 * copied, into the connection's own buffer, which grows to the request's
 * size (bounded by the line limit and -I) and shrinks back when empty.
 *
 * Life cycle: OPEN until the peer goes, an error, quit, an overlong line
 * or shutdown; then DRAINING (input ignored, replies already built still
 * go out); then CLOSING through the ring's safe close, whose callback
 * frees the connection.  Shutdown stops the recv instead and lets every
 * request already received finish first.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/log.h"
#include "idle.h"
#include "pxcached.h"

/* The first byte of a memcached binary-protocol request. */
#define MC_BINARY_MAGIC 0x80
#define SEND_HIGH       ((size_t)CONFIG_PX_PXCACHED_SEND_HIGH_KB << 10)
/* An idle connection keeps at most this much input buffer. */
#define IBUF_KEEP ((size_t)CONFIG_PX_PXCACHED_RECV_BUF_SIZE)

static void
conn_unlink(struct pxc_conn *c)
{
	c->prev->next = c->next;
	c->next->prev = c->prev;
	c->prev = c->next = c;
}

static void
worker_maybe_done(struct pxc_worker *w)
{
	if (!w->stopping || w->accepting || w->conns.next != &w->conns)
		return;
	if (w->drain_op)
		px_ring_cancel(w->ring, w->drain_op);
	px_ring_stop(w->ring);
}

static void
on_closed(struct px_ring_conn *rc, int res, void *ctx)
{
	struct pxc_conn *c = ctx;
	struct pxc_worker *w = c->w;

	if (c->out) {
		c->state = PXC_CONN_CLOSING;
		pxc_out_flush(c); /* releases it unsent */
	}
	conn_unlink(c);
	free(c->ibuf);
	free(c);
	atomic_fetch_sub(&w->srv->conns, 1);
	pxc_stat_add(&w->stats, PXC_ST_curr_connections, (uint64_t)-1);
	worker_maybe_done(w);
}

void
pxc_conn_close(struct pxc_conn *c)
{
	if (c->state == PXC_CONN_CLOSING)
		return;
	c->state = PXC_CONN_CLOSING;
	if (px_ring_conn_close(c->rc, on_closed, c) < 0)
		LOG_WARN("connection already closing");
}

/* Close once nothing is left to send and no more input will come. */
static void
maybe_finish(struct pxc_conn *c)
{
	if (c->state == PXC_CONN_CLOSING || c->sends)
		return;
	if (c->state == PXC_CONN_DRAINING || (c->w->stopping && !c->recv_on))
		pxc_conn_close(c);
}

void
pxc_conn_drain(struct pxc_conn *c)
{
	if (c->state != PXC_CONN_OPEN)
		return;
	c->state = PXC_CONN_DRAINING;
	if (c->recv_on)
		px_ring_conn_recv_stop(c->rc);
}

static void
recv_resume(struct pxc_conn *c)
{
	if (c->state != PXC_CONN_OPEN || c->recv_on || c->w->stopping)
		return;
	c->throttled = false;
	if (px_ring_conn_recv_start(c->rc) < 0) {
		pxc_conn_close(c);
		return;
	}
	c->recv_on = true;
}

void
pxc_conn_send_done(struct pxc_conn *c, size_t bytes, int res)
{
	c->sends--;
	c->send_bytes -= bytes;
	if (res >= 0)
		pxc_stat_add(&c->w->stats, PXC_ST_bytes_written, bytes);
	else if (c->state != PXC_CONN_CLOSING)
		pxc_conn_close(c);
	if (c->throttled && c->send_bytes < SEND_HIGH / 2)
		recv_resume(c);
	maybe_finish(c);
}

/* Parses and answers every complete request; returns bytes consumed. */
static size_t
run_batch(struct pxc_conn *c, const char *buf, size_t len)
{
	struct mc_req req;
	size_t off = 0;

	while (c->state == PXC_CONN_OPEN) {
		enum mc_parse_rc rc =
		    mc_parse(&c->parser, buf + off, len - off, &req);

		off += req.consumed;
		if (rc == MC_PARSE_REQ)
			pxc_cmd_exec(c, &req);
		else if (req.consumed == 0 || off == len)
			break;
	}
	return c->state == PXC_CONN_OPEN ? off : len;
}

static int
ibuf_reserve(struct pxc_conn *c, size_t want)
{
	size_t cap = c->icap ? c->icap : IBUF_KEEP;
	char *n;

	if (want <= c->icap)
		return 0;
	while (cap < want)
		cap *= 2;
	n = realloc(c->ibuf, cap);
	if (!n)
		return -ENOMEM;
	c->ibuf = n;
	c->icap = cap;
	return 0;
}

/* Keeps the unconsumed tail, with room for the request it starts. */
static int
ibuf_keep(struct pxc_conn *c, const char *tail, size_t n)
{
	size_t want = c->parser.need > n ? c->parser.need : n;

	if (ibuf_reserve(c, want) < 0)
		return -ENOMEM;
	memmove(c->ibuf, tail, n);
	c->ilen = n;
	return 0;
}

static void
ibuf_trim(struct pxc_conn *c)
{
	if (c->ilen == 0 && c->icap > IBUF_KEEP) {
		free(c->ibuf);
		c->ibuf = NULL;
		c->icap = 0;
	}
}

static int
consume(struct pxc_conn *c, const char *data, size_t len)
{
	size_t used;

	if (c->ilen == 0) {
		used = run_batch(c, data, len);
		if (used < len)
			return ibuf_keep(c, data + used, len - used);
		return 0;
	}
	if (ibuf_reserve(c, c->ilen + len) < 0)
		return -ENOMEM;
	memcpy(c->ibuf + c->ilen, data, len);
	c->ilen += len;
	used = run_batch(c, c->ibuf, c->ilen);
	memmove(c->ibuf, c->ibuf + used, c->ilen - used);
	c->ilen -= used;
	if (c->ilen < c->parser.need)
		return ibuf_reserve(c, c->parser.need);
	ibuf_trim(c);
	return 0;
}

/* The recv ended: peer gone, error, or stopped by us. */
static void
recv_ended(struct pxc_conn *c, int res)
{
	c->recv_on = false;
	if (res == -ECANCELED && c->state == PXC_CONN_OPEN) {
		if (c->throttled && c->send_bytes < SEND_HIGH / 2)
			recv_resume(c);
		maybe_finish(c);
		return;
	}
	if (res < 0 && res != -ECANCELED && res != -ECONNRESET)
		LOG_DEBUG("recv error: %s", strerror(-res));
	if (c->state == PXC_CONN_OPEN && res < 0 && res != -ECANCELED) {
		/* The peer is gone: replies have nowhere to go. */
		pxc_conn_close(c);
		return;
	}
	/*
	 * EOF: the client may only have shut down its sending side (nc -N),
	 * so its replies still go out before the close.
	 */
	if (res == 0 && c->state == PXC_CONN_OPEN)
		c->state = PXC_CONN_DRAINING;
	maybe_finish(c);
}

static void
throttle(struct pxc_conn *c)
{
	if (c->send_bytes <= SEND_HIGH || c->throttled || !c->recv_on)
		return;
	c->throttled = true;
	px_ring_conn_recv_stop(c->rc);
}

/*
 * A binary-protocol client (first byte 0x80, the request magic) would
 * wait forever for a text reply to a line that never ends: answer it in
 * text, as memcached without binary support does, and close.
 */
static void
refuse_binary(struct pxc_conn *c, const char *data)
{
	c->spoke = true;
	if ((unsigned char)data[0] != MC_BINARY_MAGIC)
		return;
	LOG_INFO("refusing a binary-protocol client");
	pxc_out_lit(c, "SERVER_ERROR binary protocol not supported\r\n");
	pxc_conn_drain(c);
}

static void
on_recv(struct px_ring_conn *rc, struct px_ring_buf *buf, int res, void *ctx)
{
	struct pxc_conn *c = ctx;
	struct px_ring *ring = c->w->ring;
	struct pxc_idle_mark mark = pxc_idle_mark(c);

	if (res <= 0) {
		recv_ended(c, res);
		return;
	}
	pxc_stat_add(&c->w->stats, PXC_ST_bytes_read, (uint64_t)res);
	if (!c->spoke)
		refuse_binary(c, buf->data);
	if (c->state == PXC_CONN_OPEN &&
	    consume(c, buf->data, (size_t)res) < 0) {
		LOG_ERROR("out of memory for input: closing a connection");
		pxc_conn_drain(c);
	}
	pxc_idle_recv(c, mark, (size_t)res);
	px_ring_buf_put(ring, buf);
	pxc_out_flush(c);
	throttle(c);
	maybe_finish(c);
}

/* memcached's answer to a connection over -c, sent without waiting. */
static void
reject(struct pxc_worker *w, int fd)
{
	static const char msg[] = "ERROR Too many open connections\r\n";

	pxc_stat_add(&w->stats, PXC_ST_rejected_connections, 1);
	LOG_INFO("refusing a connection: the maxconns limit is reached");
	if (send(fd, msg, sizeof(msg) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		LOG_DEBUG("rejecting a connection: %s", strerror(errno));
	close(fd);
}

static struct pxc_conn *
conn_new(struct pxc_worker *w)
{
	const struct pxc_opts *o = &w->srv->opts;
	struct pxc_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->w = w;
	c->authed = w->srv->auth == NULL;
	mc_parser_init(&c->parser, o->item_max, CONFIG_PX_PXCACHED_LINE_MAX,
		       (size_t)CONFIG_PX_PXCACHED_KEY_LINE_MAX_KB << 10);
	return c;
}

void
pxc_conn_accept(struct pxc_worker *w, int fd)
{
	struct pxc_conn *c;
	struct pxc_live live;
	int one = 1;

	if (w->stopping) {
		close(fd);
		return;
	}
	pxc_live_get(&live);
	if (atomic_fetch_add(&w->srv->conns, 1) >= live.max_conns) {
		atomic_fetch_sub(&w->srv->conns, 1);
		reject(w, fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = conn_new(w);
	if (!c) {
		close(fd);
		goto out_uncount;
	}
	if (px_ring_conn_create(w->ring, fd, 0, on_recv, c, &c->rc) < 0) {
		free(c); /* the ring closed the fd */
		goto out_uncount;
	}
	c->next = w->conns.next;
	c->prev = &w->conns;
	c->next->prev = c;
	w->conns.next = c;
	pxc_stat_add(&w->stats, PXC_ST_total_connections, 1);
	pxc_stat_add(&w->stats, PXC_ST_curr_connections, 1);
	pxc_idle_accept(c);
	recv_resume(c);
	return;

out_uncount:
	LOG_WARN("could not set up a connection: out of memory");
	atomic_fetch_sub(&w->srv->conns, 1);
}
