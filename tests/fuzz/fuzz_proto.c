// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: pxcached's text and meta protocol, from received bytes
 * to the reply stream.
 *
 * The first two input bytes seed the cut of the rest into chunks (1 byte
 * to a few KiB), which are fed the way apps/pxcached/conn.c feeds a
 * connection: parse every complete request in place, keep the unconsumed
 * tail in a buffer that grows to what the parser says it needs.  Each
 * request is executed by the real handlers (cmd.c, stats.c) on a real
 * px_cache; only the output layer (out.c, which needs a ring) is replaced
 * by a capture of the reply text.  Checked:
 *  - the requests are the same whether the stream arrives whole or cut
 *    (compared by a digest of every field);
 *  - each request consumes bytes it was given, and every pointer in it
 *    lies inside them; a request that returns REQ consumed something;
 *  - the buffered tail never exceeds the per-connection input bound
 *    (key-list line + item limit + CRLFs);
 *  - each request's reply is well formed: complete lines, VALUE/VA data
 *    blocks of their announced length followed by CRLF, a retrieval ends
 *    with END, a noreply request answers nothing, and every request that
 *    is not noreply or quiet (meta q) answers something;
 *  - with -Y (when the first input byte has its top bit): nothing but the
 *    credentials is served before them, and a refusal closes.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../apps/pxcached/pxcached.h"

#define ITEM_MAX     4096
#define LINE_MAX_    2048
#define KEY_LINE_MAX 8192
#define IN_BOUND     (KEY_LINE_MAX + 1 + ITEM_MAX + 2 + LINE_MAX_ + 1)
#define MAX_REQS     4096

/* ---- The captured output layer (replaces out.c) ---------------------- */

static char *rbuf;
static size_t rlen, rcap;
static int drained;

static void
rput(const char *s, size_t n)
{
	if (rlen + n > rcap) {
		rcap = (rlen + n) * 2;
		rbuf = realloc(rbuf, rcap);
		if (!rbuf)
			abort();
	}
	memcpy(rbuf + rlen, s, n);
	rlen += n;
}

void
pxc_out_text(struct pxc_conn *c, const char *s, size_t n)
{
	(void)c;
	rput(s, n);
}

void
pxc_out_printf(struct pxc_conn *c, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	(void)c;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		abort();
	rput(line, (size_t)n);
}

void
pxc_out_value(struct pxc_conn *c, struct px_cache_ref *ref)
{
	rput(ref->value, ref->vlen);
	px_cache_ref_put(c->w->srv->cache, ref);
}

void
pxc_out_flush(struct pxc_conn *c)
{
	(void)c;
}

void
pxc_out_free_list(struct pxc_worker *w)
{
	(void)w;
}

void
pxc_conn_drain(struct pxc_conn *c)
{
	(void)c;
	drained = 1;
}

void
pxc_conn_close(struct pxc_conn *c)
{
	(void)c;
	drained = 1;
}

/* ---- Request digests --------------------------------------------------- */

static uint64_t
mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 0x100000001b3ull;
	return h;
}

#define MIXV(h, v) ((h) = mix((h), &(v), sizeof(v)))

static uint64_t
digest(const struct mc_req *r)
{
	uint64_t h = 0xcbf29ce484222325ull;
	const struct mc_meta *m = &r->meta;

	MIXV(h, r->cmd);
	MIXV(h, r->noreply);
	MIXV(h, r->close);
	MIXV(h, r->too_large);
	if (r->error)
		h = mix(h, r->error, strlen(r->error));
	h = mix(h, r->key ? r->key : "", r->nkey);
	h = mix(h, r->keys ? r->keys : "", r->keys_len);
	MIXV(h, r->flags);
	MIXV(h, r->exptime);
	MIXV(h, r->cas);
	MIXV(h, r->delta);
	MIXV(h, r->delay);
	MIXV(h, r->level);
	MIXV(h, r->keep_level);
	MIXV(h, r->vlen);
	h = mix(h, r->value ? r->value : "", r->value ? r->vlen : 0);
	h = mix(h, r->args ? r->args : "", r->args_len);
	MIXV(h, m->present);
	h = mix(h, m->order, m->norder);
	h = mix(h, m->opaque ? m->opaque : "", m->nopaque);
	MIXV(h, m->ttl);
	MIXV(h, m->vivify_ttl);
	MIXV(h, m->cas_cmp);
	MIXV(h, m->delta);
	MIXV(h, m->initial);
	MIXV(h, m->client_flags);
	MIXV(h, m->mode);
	return h;
}

/* ---- Checks ------------------------------------------------------------ */

static void
bad(const char *what, const struct mc_req *r)
{
	fprintf(stderr, "fuzz_proto: %s (command %s)\n", what,
		mc_cmd_name(r->cmd));
	abort();
}

static void
inside(const char *p, size_t n, const char *buf, size_t len,
       const struct mc_req *r)
{
	if (!p || n == 0) /* an empty field may point at a constant "" */
		return;
	if (p < buf || p + n > buf + len)
		bad("a request points outside its input", r);
}

static void
check_req(const struct mc_req *r, const char *buf, size_t len)
{
	if (r->cmd >= MC_CMD_COUNT)
		bad("command out of range", r);
	if ((r->cmd == MC_CMD_ERROR) != (r->error != NULL))
		bad("error string without ERROR, or the reverse", r);
	if (r->consumed == 0 || r->consumed > len)
		bad("REQ consumed nothing or more than given", r);
	inside(r->key, r->nkey, buf, r->consumed, r);
	inside(r->keys, r->keys_len, buf, r->consumed, r);
	inside(r->value, r->vlen, buf, r->consumed, r);
	inside(r->args, r->args_len, buf, r->consumed, r);
	inside(r->meta.opaque, r->meta.nopaque, buf, r->consumed, r);
	if (r->key && (r->nkey == 0 || r->nkey > MC_KEY_MAX))
		bad("key length out of bounds", r);
	if (r->value &&
	    (r->vlen > ITEM_MAX || memcmp(r->value + r->vlen, "\r\n", 2) != 0))
		bad("value over the limit or not followed by CRLF", r);
}

/* Length of one complete line at @p (CRLF included), 0 if none. */
static size_t
line_at(const char *p, size_t n)
{
	const char *nl = memchr(p, '\n', n);

	if (!nl || nl == p || nl[-1] != '\r')
		return 0;
	return (size_t)(nl - p) + 1;
}

/* Data length announced by a VALUE or VA line, or -1 for other lines. */
static long
data_len(const char *l, size_t n)
{
	const char *s = NULL;
	int words = 0;

	if (n > 6 && !memcmp(l, "VALUE ", 6)) {
		/* VALUE <key> <flags> <bytes> [<cas>] */
		for (size_t i = 0; i < n && words < 3; i++)
			if (l[i] == ' ' && ++words == 3)
				s = l + i + 1;
	} else if (n > 3 && !memcmp(l, "VA ", 3)) {
		s = l + 3;
	}
	return s ? strtol(s, NULL, 10) : -1;
}

/* The reply of one request: a sequence of whole lines and data blocks. */
static void
check_reply(const struct mc_req *r, const char *p, size_t n)
{
	bool get = r->cmd <= MC_CMD_GATS;
	bool quiet = r->cmd >= MC_CMD_MG && r->cmd <= MC_CMD_MA &&
		     mc_meta_has(&r->meta, 'q');
	size_t off = 0, last = 0;

	if (r->noreply && n)
		bad("a noreply request answered", r);
	if (!r->noreply && !quiet && !n && r->cmd != MC_CMD_QUIT)
		bad("a request got no reply", r);
	while (off < n) {
		size_t l = line_at(p + off, n - off);
		long d;

		if (!l) {
			fprintf(stderr, "reply: \"%.*s\"\n", (int)n, p);
			bad("reply is not a sequence of CRLF lines", r);
		}
		d = data_len(p + off, l);
		last = off;
		off += l;
		if (d < 0)
			continue;
		if ((size_t)d + 2 > n - off ||
		    memcmp(p + off + d, "\r\n", 2) != 0)
			bad("data block of the wrong length", r);
		off += (size_t)d + 2;
	}
	if (get && (n < 5 || memcmp(p + last, "END\r\n", 5) != 0))
		bad("a retrieval does not end with END", r);
}

/* ---- The connection, as conn.c runs it ------------------------------- */

struct fconn {
	struct pxc_server srv;
	struct pxc_worker w;
	struct pxc_conn c;
	char *ibuf;
	size_t ilen, icap;
	uint64_t digests[MAX_REQS];
	size_t nreq;
	bool stopped;
	bool exec;
};

static struct pxc_auth *auth;

/* The -Y table, loaded once from a file as the server does. */
static struct pxc_auth *
auth_table(void)
{
	char path[] = "/tmp/fuzz_proto_authXXXXXX";
	static const char lines[] = "alice:s3cret\nbob:x\n";
	int fd;

	if (auth)
		return auth;
	fd = mkstemp(path);
	if (fd < 0 || write(fd, lines, sizeof(lines) - 1) < 0 ||
	    pxc_auth_load(path, &auth) < 0)
		abort();
	close(fd);
	unlink(path);
	return auth;
}

/* The reply to the first request under -Y: STORED, or a refusal. */
static void
check_auth_reply(struct fconn *f, const struct mc_req *r)
{
	static const char stored[] = "STORED\r\n";

	if (f->c.authed) {
		if (r->cmd != MC_CMD_SET)
			bad("authenticated by something else than a set", r);
		if (r->noreply ? rlen != 0
			       : rlen != sizeof(stored) - 1 ||
				     memcmp(rbuf, stored, rlen))
			bad("authentication not answered STORED", r);
		return;
	}
	if (!drained)
		bad("an unauthenticated request was served", r);
	if (rlen < 14 || memcmp(rbuf, "CLIENT_ERROR ", 13) ||
	    line_at(rbuf, rlen) != rlen)
		bad("a refusal is not one CLIENT_ERROR line", r);
	f->stopped = true; /* the refusal closes */
}

static void
one_req(struct fconn *f, const struct mc_req *r, const char *buf, size_t len)
{
	bool was_authed = f->c.authed;

	check_req(r, buf, len);
	if (f->nreq < MAX_REQS)
		f->digests[f->nreq] = digest(r);
	f->nreq++;
	if (r->close || r->cmd == MC_CMD_QUIT)
		f->stopped = true;
	if (!f->exec)
		return;
	rlen = 0;
	drained = 0;
	pxc_cmd_exec(&f->c, r);
	if (was_authed)
		check_reply(r, rbuf, rlen);
	else
		check_auth_reply(f, r);
	if (drained && !f->stopped)
		bad("a request closed the connection unexpectedly", r);
}

static size_t
run_batch(struct fconn *f, const char *buf, size_t len)
{
	struct mc_req req;
	size_t off = 0;

	while (!f->stopped) {
		enum mc_parse_rc rc =
		    mc_parse(&f->c.parser, buf + off, len - off, &req);

		if (req.consumed > len - off)
			bad("consumed more than given", &req);
		if (rc == MC_PARSE_REQ)
			one_req(f, &req, buf + off, len - off);
		off += req.consumed;
		if (rc != MC_PARSE_REQ && (req.consumed == 0 || off == len))
			break;
	}
	return f->stopped ? len : off;
}

static void
feed(struct fconn *f, const char *data, size_t len)
{
	size_t used, want;

	if (len == 0)
		return;
	if (f->ilen + len > f->icap) {
		f->icap = (f->ilen + len) * 2;
		f->ibuf = realloc(f->ibuf, f->icap);
		if (!f->ibuf)
			abort();
	}
	memcpy(f->ibuf + f->ilen, data, len);
	f->ilen += len;
	used = run_batch(f, f->ibuf, f->ilen);
	memmove(f->ibuf, f->ibuf + used, f->ilen - used);
	f->ilen -= used;
	want = f->c.parser.need;
	if (f->ilen > IN_BOUND || want > IN_BOUND) {
		fprintf(stderr, "fuzz_proto: %zu bytes buffered, %zu needed\n",
			f->ilen, want);
		abort();
	}
}

static void
fconn_init(struct fconn *f, struct px_cache *cache, bool exec, bool with_auth)
{
	memset(f, 0, sizeof(*f));
	f->srv.cache = cache;
	f->srv.opts.item_max = ITEM_MAX;
	f->srv.opts.max_conns = 16;
	f->srv.opts.memory_mb = 1;
	f->srv.backing = "4k";
	f->srv.backing_note = "";
	f->w.srv = &f->srv;
	f->c.w = &f->w;
	f->c.authed = !with_auth; /* as conn_new() sets it */
	f->srv.auth = with_auth ? auth_table() : NULL;
	f->exec = exec;
	mc_parser_init(&f->c.parser, ITEM_MAX, LINE_MAX_, KEY_LINE_MAX);
}

static struct px_cache *cache;
static struct fconn whole, cut;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct pxc_live live = {.verbosity = 0, .max_conns = 16};
	static bool live_made;
	struct px_cache_opts o;
	uint32_t seed;
	size_t off = 0;
	bool with_auth;

	if (size < 2)
		return 0;
	seed = (uint32_t)(data[0] | data[1] << 8) * 2654435761u + 1;
	with_auth = data[0] & 0x80;
	data += 2;
	size -= 2;
	/* The live settings cell is the process's; reset what commands change.
	 */
	if (!live_made && pxc_live_init(&live))
		abort();
	live_made = true;
	pxc_live_set_verbosity(live.verbosity);
	pxc_live_set_max_conns(live.max_conns);
	/*
	 * A fresh cache per input: no state leaks between inputs, and none
	 * is left at exit (the region's bookkeeping is referenced only from
	 * the mapping, which LeakSanitizer does not scan).
	 */
	px_cache_opts_init(&o);
	o.region.backing = PX_REGION_4K; /* leave the shared hugepages be */
	if (px_cache_create(&cache, 1u << 20, &o))
		abort();

	fconn_init(&whole, cache, false, false);
	feed(&whole, (const char *)data, size);
	fconn_init(&cut, cache, true, with_auth);
	while (off < size && !cut.stopped) {
		size_t n;

		seed = seed * 1103515245u + 12345u;
		n = (seed >> 16) % 7 == 0 ? 1 + (seed >> 8) % 4096
					  : 1 + (seed >> 16) % 24;
		n = n < size - off ? n : size - off;
		feed(&cut, (const char *)data + off, n);
		off += n;
	}
	/* An auth refusal stops the cut run early: compare what it saw. */
	if (cut.c.authed ? whole.nreq != cut.nreq : whole.nreq < cut.nreq)
		bad("whole and cut input give different request counts",
		    &(struct mc_req){.cmd = MC_CMD_ERROR});
	for (size_t i = 0; i < cut.nreq && i < MAX_REQS; i++)
		if (whole.digests[i] != cut.digests[i])
			bad("whole and cut input give different requests",
			    &(struct mc_req){.cmd = MC_CMD_ERROR});
	free(whole.ibuf);
	free(cut.ibuf);
	px_cache_destroy(cache);
	return 0;
}
