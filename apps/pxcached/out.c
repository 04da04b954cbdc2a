// SPDX-License-Identifier: MIT
/*
 * Replies.  The handlers of one batch of requests append text and item
 * values to the connection's current reply; at the end of the batch the
 * reply goes out as iovecs in as few sends as the ring allows.  Text is
 * copied into chunks (adjacent text shares one iovec); values of at least
 * CONFIG_PX_PXCACHED_COPY_MIN bytes are not copied: their iovec points
 * into the cache item, pinned by a reference until the send completes.
 * Reply objects are recycled through a per-worker free list.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "pxcached.h"

static struct pxc_chunk *
chunk_new(size_t size)
{
	struct pxc_chunk *ch = malloc(sizeof(*ch) + size);

	if (!ch)
		return NULL;
	ch->next = NULL;
	ch->size = size;
	return ch;
}

static void
out_reset(struct pxc_out *o)
{
	struct pxc_chunk *keep = o->chunks;

	/* Chunks are pushed at the head: keep the oldest (the last). */
	while (keep && keep->next) {
		struct pxc_chunk *n = keep->next;

		free(keep);
		keep = n;
	}
	o->chunks = keep;
	o->tpos = keep ? keep->data : NULL;
	o->tleft = keep ? keep->size : 0;
	o->niov = 0;
	o->nrefs = 0;
	o->bytes = 0;
	o->parts = 0;
	o->err = 0;
}

static struct pxc_out *
out_get(struct pxc_conn *c)
{
	struct pxc_worker *w = c->w;
	struct pxc_out *o = w->free_outs;

	if (o) {
		w->free_outs = o->next;
	} else {
		o = calloc(1, sizeof(*o));
		if (!o)
			return NULL;
	}
	o->next = NULL;
	o->conn = c;
	return o;
}

static void
out_release(struct pxc_worker *w, struct pxc_out *o)
{
	for (uint32_t i = 0; i < o->nrefs; i++)
		px_cache_ref_put(w->srv->cache, &o->refs[i]);
	out_reset(o);
	o->conn = NULL;
	o->next = w->free_outs;
	w->free_outs = o;
}

void
pxc_out_free_list(struct pxc_worker *w)
{
	while (w->free_outs) {
		struct pxc_out *o = w->free_outs;

		w->free_outs = o->next;
		free(o->chunks);
		free(o->iov);
		free(o->refs);
		free(o);
	}
}

static int
grow(void **arr, uint32_t *cap, size_t elem)
{
	uint32_t ncap = *cap ? *cap * 2 : 16;
	void *n = realloc(*arr, ncap * elem);

	if (!n)
		return -1;
	*arr = n;
	*cap = ncap;
	return 0;
}

/* The reply being built; on allocation failure the connection closes. */
static struct pxc_out *
cur_out(struct pxc_conn *c)
{
	if (c->state == PXC_CONN_CLOSING)
		return NULL;
	if (!c->out)
		c->out = out_get(c);
	if (!c->out)
		LOG_ERROR("out of memory for a reply: closing a connection");
	return c->out;
}

static int
push_iov(struct pxc_out *o, const void *p, size_t n)
{
	if (o->niov == o->iov_cap &&
	    grow((void **)&o->iov, &o->iov_cap, sizeof(*o->iov)) < 0)
		return -1;
	o->iov[o->niov].iov_base = (void *)p;
	o->iov[o->niov].iov_len = n;
	o->niov++;
	o->bytes += n;
	return 0;
}

static int
text_room(struct pxc_out *o, size_t n)
{
	struct pxc_chunk *ch;
	size_t size = CONFIG_PX_PXCACHED_REPLY_CHUNK;

	if (o->tleft >= n)
		return 0;
	ch = chunk_new(n > size ? n : size);
	if (!ch)
		return -1;
	ch->next = o->chunks;
	o->chunks = ch;
	o->tpos = ch->data;
	o->tleft = ch->size;
	return 0;
}

void
pxc_out_text(struct pxc_conn *c, const char *s, size_t n)
{
	struct pxc_out *o = cur_out(c);
	struct iovec *last;

	if (!o)
		return;
	if (text_room(o, n) < 0)
		goto fail;
	memcpy(o->tpos, s, n);
	last = o->niov ? &o->iov[o->niov - 1] : NULL;
	if (last && (char *)last->iov_base + last->iov_len == o->tpos) {
		last->iov_len += n;
		o->bytes += n;
	} else if (push_iov(o, o->tpos, n) < 0) {
		goto fail;
	}
	o->tpos += n;
	o->tleft -= n;
	return;

fail:
	pxc_conn_close(c);
}

void
pxc_out_printf(struct pxc_conn *c, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	pxc_out_text(c, line, (size_t)n);
}

/* Takes over @ref: it is put when the reply has been sent. */
void
pxc_out_value(struct pxc_conn *c, struct px_cache_ref *ref)
{
	struct px_cache *cache = c->w->srv->cache;
	struct pxc_out *o;

	if (ref->vlen < CONFIG_PX_PXCACHED_COPY_MIN) {
		pxc_out_text(c, ref->value, ref->vlen);
		px_cache_ref_put(cache, ref);
		return;
	}
	o = cur_out(c);
	if (!o || (o->nrefs == o->refs_cap &&
		   grow((void **)&o->refs, &o->refs_cap, sizeof(*ref)) < 0)) {
		px_cache_ref_put(cache, ref);
		goto fail;
	}
	o->refs[o->nrefs++] = *ref; /* put by out_release() from now on */
	if (push_iov(o, ref->value, ref->vlen) < 0)
		goto fail;
	return;

fail:
	pxc_conn_close(c);
}

static void
send_done(struct px_ring_conn *rc, int res, void *ctx)
{
	struct pxc_out *o = ctx;
	struct pxc_conn *c = o->conn;
	size_t bytes = o->bytes;
	int err;

	if (res < 0 && o->err == 0)
		o->err = res;
	if (--o->parts > 0)
		return;
	err = o->err;
	out_release(c->w, o);
	pxc_conn_send_done(c, bytes, err);
}

/* Sends the reply built so far, in parts of at most the ring's limit. */
void
pxc_out_flush(struct pxc_conn *c)
{
	struct pxc_out *o = c->out;
	uint32_t i, n;
	int rc = 0;

	if (!o)
		return;
	c->out = NULL;
	if (o->niov == 0 || c->state == PXC_CONN_CLOSING) {
		out_release(c->w, o);
		return;
	}
	o->parts = 1; /* held until every part is queued */
	c->sends++;
	c->send_bytes += o->bytes;
	for (i = 0; i < o->niov && rc == 0; i += n) {
		n = o->niov - i;
		if (n > CONFIG_PX_RING_SEND_IOV_MAX)
			n = CONFIG_PX_RING_SEND_IOV_MAX;
		o->parts++;
		rc = px_ring_conn_send(c->rc, &o->iov[i], (int)n, send_done, o);
		if (rc < 0)
			o->parts--;
	}
	if (rc < 0) {
		LOG_DEBUG("send refused: %d", rc);
		pxc_conn_close(c);
	}
	send_done(c->rc, rc, o);
}
