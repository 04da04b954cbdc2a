// SPDX-License-Identifier: MIT
/*
 * pxload's connections: opening them on the ring, queueing requests up to
 * the pipeline depth, sending them (one send in flight, the next batch
 * filling behind it), and parsing and classifying the replies in order.
 * Everything here runs on the worker's ring thread.
 */
#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../apps/common/log.h"
#include "proto.h"
#include "pxload.h"

static int
buf_reserve(struct pxload_buf *b, size_t extra)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *p;

	if (b->len + extra <= b->cap)
		return 0;
	while (cap < b->len + extra)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

static uint32_t
phase_depth(const struct pxload_worker *w)
{
	if (w->phase == PHASE_PRELOAD && w->o->depth < PXLOAD_PRELOAD_DEPTH)
		return PXLOAD_PRELOAD_DEPTH;
	return w->o->depth;
}

/*
 * Decides the next request of the phase into @r and its key into @id.
 * Returns false when the phase issues nothing more.
 */
static bool
next_request(struct pxload_worker *w, struct pxload_req *r, uint64_t *id)
{
	memset(r, 0, sizeof(*r));
	if (w->phase == PHASE_PRELOAD) {
		if (w->preload_next >= w->preload_end)
			return false;
		*id = w->preload_next++;
		r->is_set = 1;
		r->preload = 1;
		return true;
	}
	if (w->phase != PHASE_LOAD || w->stopping)
		return false;
	if (w->measuring && w->o->requests) {
		if (w->budget == 0)
			return false;
		w->budget--;
	}
	r->measured = w->measuring;
	r->is_set = rng_double(&w->rng) >= w->o->get_ratio;
	*id = keygen_next(&w->kg, &w->rng);
	return true;
}

static int
queue_request(struct pxload_conn *c, uint64_t now)
{
	struct pxload_worker *w = c->w;
	struct pxload_buf *b = &c->tx[c->fill];
	struct pxload_req r;
	uint64_t id;

	if (buf_reserve(b, mc_set_size(w->o->prefix, w->o->value_size)) < 0)
		return -ENOMEM;
	if (!next_request(w, &r, &id))
		return 0;
	if (r.is_set)
		b->len += mc_format_set(b->data + b->len, w->o->prefix, id,
					w->value, w->o->value_size, 0);
	else
		b->len += mc_format_get(b->data + b->len, w->o->prefix, id);
	r.t_ns = now;
	c->q[(c->qhead + c->qlen) % c->qcap] = r;
	c->qlen++;
	w->inflight++;
	return 1;
}

static void
on_sent(struct px_ring_conn *rc, int res, void *ctx)
{
	struct pxload_conn *c = ctx;

	if (c->dead)
		return;
	c->send_busy = false;
	c->tx[c->fill ^ 1].len = 0;
	if (res < 0) {
		pxload_conn_abort(c, res);
		return;
	}
	pxload_conn_pump(c, pxload_now_ns());
}

static void
flush(struct pxload_conn *c)
{
	struct pxload_buf *b = &c->tx[c->fill];
	struct iovec iov;
	int err;

	if (c->dead || c->send_busy || b->len == 0)
		return;
	iov.iov_base = b->data;
	iov.iov_len = b->len;
	err = px_ring_conn_send(c->rc, &iov, 1, on_sent, c);
	if (err < 0) {
		pxload_conn_abort(c, err);
		return;
	}
	c->send_busy = true;
	c->fill ^= 1;
}

void
pxload_conn_pump(struct pxload_conn *c, uint64_t now)
{
	uint32_t depth = phase_depth(c->w);
	int r = 1;

	if (c->dead || !c->rc)
		return;
	/* In batch mode a connection refills only once it has all replies. */
	if (c->w->o->batch && c->w->phase == PHASE_LOAD && c->qlen)
		depth = 0;
	while (c->qlen < depth && (r = queue_request(c, now)) > 0)
		;
	if (r < 0) {
		pxload_conn_abort(c, r);
		return;
	}
	flush(c);
}

/* The outcome of a reply to a request, before it is counted. */
enum outcome {
	OUT_STORED,
	OUT_HIT,
	OUT_MISS,
	OUT_PROTOCOL, /* ERROR, CLIENT_ERROR, SERVER_ERROR */
	OUT_UNEXPECTED,
};

static enum outcome
classify(const struct pxload_worker *w, const struct pxload_req *r,
	 const struct mc_reply *m)
{
	if (m->kind == MC_ERROR || m->kind == MC_CLIENT_ERROR ||
	    m->kind == MC_SERVER_ERROR)
		return OUT_PROTOCOL;
	if (r->is_set)
		return m->kind == MC_STORED ? OUT_STORED : OUT_UNEXPECTED;
	if (m->kind == MC_MISS)
		return OUT_MISS;
	if (m->kind == MC_HIT && m->nvalues == 1 &&
	    m->value_len == w->o->value_size)
		return OUT_HIT;
	return OUT_UNEXPECTED;
}

/*
 * Errors count whenever they come; a good reply counts (ops, gets, sets,
 * hits, misses, latency) only when its request was sent inside the
 * measured window and the reply came before the window closed.
 */
static void
count_reply(struct pxload_worker *w, const struct pxload_req *r,
	    const struct mc_reply *m, uint64_t now)
{
	struct pxload_stats *st = &w->st;
	enum outcome out = classify(w, r, m);

	if (out == OUT_PROTOCOL || out == OUT_UNEXPECTED) {
		if (out == OUT_PROTOCOL)
			st->err_protocol++;
		else
			st->err_unexpected++;
		return;
	}
	if (r->preload) {
		st->preloaded++;
	} else if (r->measured && w->measuring) {
		st->ops++;
		st->sets += out == OUT_STORED;
		st->gets += out != OUT_STORED;
		st->hits += out == OUT_HIT;
		st->misses += out == OUT_MISS;
		hist_record(&st->lat, now - r->t_ns);
	} else {
		return;
	}
	__atomic_store_n(&w->done_ops, w->done_ops + 1, __ATOMIC_RELAXED);
}

/* Parses whole replies from @p; returns bytes consumed or -EPROTO. */
static long
parse_replies(struct pxload_conn *c, const char *p, size_t len, uint64_t now)
{
	struct mc_reply m;
	struct pxload_req r;
	size_t off = 0;
	int n;

	while (off < len) {
		n = mc_parse_reply(p + off, len - off, &m);
		if (n < 0)
			return n;
		if (n == 0)
			break;
		if (c->qlen == 0)
			return -EPROTO;
		r = c->q[c->qhead];
		c->qhead = (c->qhead + 1) % c->qcap;
		c->qlen--;
		c->w->inflight--;
		c->w->replies++;
		count_reply(c->w, &r, &m, now);
		off += (size_t)n;
	}
	return (long)off;
}

/* Feeds received bytes: parsed in place when nothing is pending. */
static int
feed(struct pxload_conn *c, const char *data, size_t len, uint64_t now)
{
	struct pxload_buf *rx = &c->rx;
	const char *p = data;
	size_t plen = len;
	long used;

	if (rx->len) {
		if (buf_reserve(rx, len) < 0)
			return -ENOMEM;
		memcpy(rx->data + rx->len, data, len);
		rx->len += len;
		p = rx->data;
		plen = rx->len;
	}
	used = parse_replies(c, p, plen, now);
	if (used < 0)
		return (int)used;
	if ((size_t)used == plen) {
		rx->len = 0;
		return 0;
	}
	if (p == rx->data) {
		memmove(rx->data, rx->data + used, plen - (size_t)used);
		rx->len = plen - (size_t)used;
		return 0;
	}
	if (buf_reserve(rx, plen - (size_t)used) < 0)
		return -ENOMEM;
	memcpy(rx->data, p + used, plen - (size_t)used);
	rx->len = plen - (size_t)used;
	return 0;
}

static void
on_recv(struct px_ring_conn *rc, struct px_ring_buf *buf, int res, void *ctx)
{
	struct pxload_conn *c = ctx;
	uint64_t now;
	int err;

	if (res <= 0) {
		pxload_conn_abort(c, res == 0 ? -ECONNRESET : res);
		return;
	}
	now = pxload_now_ns();
	err = c->dead ? 0 : feed(c, buf->data, (size_t)res, now);
	px_ring_buf_put(px_ring_conn_ring(rc), buf);
	if (err == -EPROTO) {
		c->w->st.err_unexpected++;
		LOG_WARN("pxload: connection %d: unparseable reply, closing",
			 c->fd);
	}
	if (err < 0) {
		pxload_conn_abort(c, err);
		return;
	}
	pxload_conn_pump(c, now);
	pxload_worker_check(c->w);
}

/*
 * Ends a connection: what it had in flight is lost.  A failure while the
 * worker is finishing (the ring is being torn down) is no error.
 */
void
pxload_conn_abort(struct pxload_conn *c, int err)
{
	struct pxload_worker *w = c->w;

	if (c->dead || !c->rc)
		return;
	c->dead = true;
	if (w->phase != PHASE_DONE) {
		if (err != -EPROTO)
			w->st.err_conn++;
		w->st.unanswered += c->qlen;
		LOG_DEBUG("pxload: connection %d failed: %s", c->fd,
			  strerror(-err));
	}
	w->inflight -= c->qlen;
	c->qlen = 0;
	w->live--;
	px_ring_conn_close(c->rc, NULL, NULL);
	c->rc = NULL;
	pxload_worker_check(w);
}

static void
on_connected(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct pxload_conn *c = ctx;
	struct pxload_worker *w = c->w;
	int err;

	w->connecting--;
	if (res < 0 || w->phase == PHASE_DONE) {
		close(c->fd);
		c->dead = true;
		if (w->phase != PHASE_DONE) {
			w->st.err_conn++;
			LOG_WARN("pxload: connect: %s", strerror(-res));
		}
		pxload_worker_check(w);
		return;
	}
	err = px_ring_conn_create(ring, c->fd, 0, on_recv, c, &c->rc);
	if (err < 0) {
		c->rc = NULL;
		c->dead = true;
		w->st.err_conn++;
		pxload_worker_check(w);
		return;
	}
	w->live++;
	err = px_ring_conn_recv_start(c->rc);
	if (err < 0)
		pxload_conn_abort(c, err);
	else
		pxload_worker_check(w);
}

int
pxload_conn_open(struct pxload_worker *w, struct pxload_conn *c)
{
	int one = 1;
	int err;

	c->w = w;
	c->qcap = w->o->depth > PXLOAD_PRELOAD_DEPTH ? w->o->depth
						     : PXLOAD_PRELOAD_DEPTH;
	c->q = calloc(c->qcap, sizeof(*c->q));
	if (!c->q)
		return -ENOMEM;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	err = px_ring_connect(
	    w->ring, c->fd, (const struct sockaddr *)&w->o->addr,
	    sizeof(w->o->addr), w->o->connect_ms, on_connected, c, NULL);
	if (err < 0) {
		close(c->fd);
		return err;
	}
	w->connecting++;
	return 0;
}

void
pxload_conn_release(struct pxload_conn *c)
{
	free(c->q);
	free(c->tx[0].data);
	free(c->tx[1].data);
	free(c->rx.data);
	memset(c, 0, sizeof(*c));
}
