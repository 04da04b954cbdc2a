// SPDX-License-Identifier: MIT
/*
 * The command handlers: one function per memcached command, each taking a
 * parsed request, calling the cache and appending the reply.  The table
 * at the bottom maps commands to handlers.  Replies and their order follow
 * memcached 1.6; docs/pxcached.md lists the meta flags handled.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "../common/fmt.h"
#include "pxcached.h"

typedef void (*pxc_cmd_fn)(struct pxc_conn *c, const struct mc_req *req);

static struct px_cache *
cache_of(struct pxc_conn *c)
{
	return c->w->srv->cache;
}

static void
count(struct pxc_conn *c, enum pxc_stat s)
{
	pxc_stat_add(&c->w->stats, s, 1);
}

/* A reply line unless the client asked for none. */
static void
reply(struct pxc_conn *c, const struct mc_req *req, const char *line)
{
	if (req->noreply)
		return;
	pxc_out_text(c, line, strlen(line));
	pxc_out_lit(c, "\r\n");
}

static void
cmd_error(struct pxc_conn *c, const struct mc_req *req)
{
	reply(c, req, req->error);
	if (req->close)
		pxc_conn_drain(c);
}

/* The reply to a storage error that is not a plain "not stored". */
static const char *
store_error(struct pxc_conn *c, int rc)
{
	switch (rc) {
	case -E2BIG:
		count(c, PXC_ST_store_too_large);
		return "SERVER_ERROR object too large for cache";
	case -EINVAL:
		return "CLIENT_ERROR bad command line format";
	default:
		count(c, PXC_ST_store_no_memory);
		return "SERVER_ERROR out of memory storing object";
	}
}

/*
 * An append or prepend whose result would be over -I: memcached cannot
 * allocate the grown item and answers NOT_STORED (NS), keeping the old.
 */
static bool
grown_too_large(enum px_cache_mode mode, int rc)
{
	return rc == -E2BIG &&
	       (mode == PX_CACHE_APPEND || mode == PX_CACHE_PREPEND);
}

static enum px_cache_mode
store_mode(enum mc_cmd cmd)
{
	switch (cmd) {
	case MC_CMD_ADD:
		return PX_CACHE_ADD;
	case MC_CMD_REPLACE:
		return PX_CACHE_REPLACE;
	case MC_CMD_APPEND:
		return PX_CACHE_APPEND;
	case MC_CMD_PREPEND:
		return PX_CACHE_PREPEND;
	case MC_CMD_CAS:
		return PX_CACHE_CAS;
	default:
		return PX_CACHE_SET;
	}
}

static void
count_cas(struct pxc_conn *c, int rc)
{
	if (rc == 0)
		count(c, PXC_ST_cas_hits);
	else if (rc == -EEXIST)
		count(c, PXC_ST_cas_badval);
	else if (rc == -ENOENT)
		count(c, PXC_ST_cas_misses);
}

/*
 * A value over the limit was dropped.  memcached also removes the old
 * value of a failed set, so that a reader cannot see stale data.
 */
static void
store_too_large(struct pxc_conn *c, const struct mc_req *req)
{
	if (req->cmd == MC_CMD_SET || req->cmd == MC_CMD_MS)
		px_cache_delete(cache_of(c), req->key, req->nkey);
	count(c, PXC_ST_store_too_large);
}

/* set, add, replace, append, prepend, cas */
static void
cmd_store(struct pxc_conn *c, const struct mc_req *req)
{
	enum px_cache_mode mode = store_mode(req->cmd);
	int rc;

	count(c, PXC_ST_cmd_set);
	if (req->too_large) {
		store_too_large(c, req);
		reply(c, req, "SERVER_ERROR object too large for cache");
		return;
	}
	rc =
	    px_cache_store(cache_of(c), mode, req->key, req->nkey, req->value,
			   req->vlen, req->flags, req->exptime, req->cas, NULL);
	if (mode == PX_CACHE_CAS)
		count_cas(c, rc);
	if (rc == 0)
		reply(c, req, "STORED");
	else if (rc == -EEXIST)
		reply(c, req, mode == PX_CACHE_CAS ? "EXISTS" : "NOT_STORED");
	else if (rc == -ENOENT)
		reply(c, req,
		      mode == PX_CACHE_CAS ? "NOT_FOUND" : "NOT_STORED");
	else if (grown_too_large(mode, rc))
		reply(c, req, "NOT_STORED");
	else
		reply(c, req, store_error(c, rc));
}

/*
 * "VALUE <key> <flags> <bytes> [<cas>]\r\n", without printf: it is
 * written once per get hit.
 */
static void
value_line(struct pxc_conn *c, const char *key, size_t nkey,
	   const struct px_cache_ref *ref, bool cas)
{
	char nums[3 * (FMT_U64_MAX + 1) + 2];
	char *p = nums;

	pxc_out_lit(c, "VALUE ");
	pxc_out_text(c, key, nkey);
	*p++ = ' ';
	p += fmt_u64(p, ref->flags);
	*p++ = ' ';
	p += fmt_u64(p, ref->vlen);
	if (cas) {
		*p++ = ' ';
		p += fmt_u64(p, ref->cas);
	}
	*p++ = '\r';
	*p++ = '\n';
	pxc_out_text(c, nums, (size_t)(p - nums));
}

/* One key of get/gets/gat/gats: VALUE line and data, or nothing. */
static void
get_one(struct pxc_conn *c, const struct mc_req *req, const char *key,
	size_t nkey)
{
	bool touch = req->cmd == MC_CMD_GAT || req->cmd == MC_CMD_GATS;
	bool cas = req->cmd == MC_CMD_GETS || req->cmd == MC_CMD_GATS;
	struct px_cache_ref ref;
	int rc;

	count(c, PXC_ST_cmd_get);
	if (touch)
		count(c, PXC_ST_cmd_touch);
	rc = touch
		 ? px_cache_gat_ref(cache_of(c), key, nkey, req->exptime, &ref)
		 : px_cache_get_ref(cache_of(c), key, nkey, &ref);
	if (rc < 0) {
		count(c, PXC_ST_get_misses);
		if (touch)
			count(c, PXC_ST_touch_misses);
		return;
	}
	count(c, PXC_ST_get_hits);
	if (touch)
		count(c, PXC_ST_touch_hits);
	value_line(c, key, nkey, &ref, cas);
	pxc_out_value(c, &ref);
	pxc_out_lit(c, "\r\n");
}

/* get, gets, gat, gats */
static void
cmd_get(struct pxc_conn *c, const struct mc_req *req)
{
	const char *cur = req->keys, *end = req->keys + req->keys_len, *k;
	size_t nk;

	while (mc_key_next(&cur, end, &k, &nk))
		get_one(c, req, k, nk);
	pxc_out_lit(c, "END\r\n");
}

static void
cmd_delete(struct pxc_conn *c, const struct mc_req *req)
{
	int rc = px_cache_delete(cache_of(c), req->key, req->nkey);

	count(c, rc == 0 ? PXC_ST_delete_hits : PXC_ST_delete_misses);
	reply(c, req, rc == 0 ? "DELETED" : "NOT_FOUND");
}

static bool
mc_space(char ch)
{
	return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

/*
 * A stored number read as memcached's incr reads it (strtoull): spaces,
 * an optional sign, digits, then a space, a NUL or the end.  A '-' is
 * taken only when the negated number does not look negative as a signed
 * one, memcached's own rule.  Returns 0 and *@out, or -1.
 */
static int
arith_value(const char *s, size_t n, uint64_t *out)
{
	size_t i = 0, d;
	bool neg = false;
	uint64_t v;

	while (i < n && mc_space(s[i]))
		i++;
	if (i < n && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	for (d = i; d < n && s[d] >= '0' && s[d] <= '9'; d++)
		;
	if (d < n && !mc_space(s[d]) && s[d] != '\0')
		return -1;
	if (mc_parse_u64(s + i, d - i, &v) < 0)
		return -1;
	if (neg)
		v = -v;
	if (neg && (int64_t)v < 0)
		return -1;
	*out = v;
	return 0;
}

/*
 * incr/decr of a value the cache's own parser refuses (" 12", "+5"):
 * read it as memcached does and write the result with a cas store, so a
 * concurrent change makes us read again instead of being lost.  Every
 * failed store means another client's write succeeded, so this ends.
 */
static int
arith_slow(struct pxc_conn *c, const struct mc_req *req, bool incr,
	   uint64_t delta, uint64_t *val, uint64_t *cas)
{
	struct px_cache_ref ref, old;
	char num[24];
	uint64_t v;
	int rc, n;

	do {
		rc = px_cache_get_ref(cache_of(c), req->key, req->nkey, &ref);
		if (rc < 0)
			return rc;
		rc = arith_value(ref.value, ref.vlen, &v);
		old = ref; /* put clears ref; flags, cas, expiry are kept */
		px_cache_ref_put(cache_of(c), &ref);
		if (rc < 0)
			return -EINVAL;
		if (incr)
			v += delta;
		else
			v = v > delta ? v - delta : 0;
		n = snprintf(num, sizeof(num), "%" PRIu64, v);
		rc = px_cache_store(cache_of(c), PX_CACHE_CAS, req->key,
				    req->nkey, num, (size_t)n, old.flags,
				    old.exptime, old.cas, cas);
	} while (rc == -EEXIST);
	if (rc == 0)
		*val = v;
	return rc;
}

/* The cache's incr/decr, then memcached's reading of odd numbers. */
static int
arith(struct pxc_conn *c, const struct mc_req *req, bool incr, uint64_t delta,
      uint64_t *val, uint64_t *cas)
{
	int rc;

	rc = incr ? px_cache_incr(cache_of(c), req->key, req->nkey, delta, val,
				  cas)
		  : px_cache_decr(cache_of(c), req->key, req->nkey, delta, val,
				  cas);
	if (rc == -EINVAL)
		rc = arith_slow(c, req, incr, delta, val, cas);
	return rc;
}

/* incr, decr */
static void
cmd_arith(struct pxc_conn *c, const struct mc_req *req)
{
	bool incr = req->cmd == MC_CMD_INCR;
	uint64_t val;
	char num[24];
	int rc;

	rc = arith(c, req, incr, req->delta, &val, NULL);
	if (rc == -ENOENT) {
		count(c, incr ? PXC_ST_incr_misses : PXC_ST_decr_misses);
		reply(c, req, "NOT_FOUND");
		return;
	}
	if (rc == -EINVAL) {
		reply(c, req,
		      "CLIENT_ERROR cannot increment or decrement non-numeric "
		      "value");
		return;
	}
	if (rc < 0) {
		reply(c, req, "SERVER_ERROR out of memory");
		return;
	}
	count(c, incr ? PXC_ST_incr_hits : PXC_ST_decr_hits);
	snprintf(num, sizeof(num), "%" PRIu64, val);
	reply(c, req, num);
}

static void
cmd_touch(struct pxc_conn *c, const struct mc_req *req)
{
	int rc = px_cache_touch(cache_of(c), req->key, req->nkey, req->exptime);

	count(c, PXC_ST_cmd_touch);
	count(c, rc == 0 ? PXC_ST_touch_hits : PXC_ST_touch_misses);
	reply(c, req, rc == 0 ? "TOUCHED" : "NOT_FOUND");
}

static void
cmd_flush_all(struct pxc_conn *c, const struct mc_req *req)
{
	count(c, PXC_ST_cmd_flush);
	px_cache_flush_all(cache_of(c), req->delay);
	reply(c, req, "OK");
}

static void
cmd_version(struct pxc_conn *c, const struct mc_req *req)
{
	reply(c, req, "VERSION " CONFIG_PX_PXCACHED_VERSION);
}

/*
 * cache_memlimit: the cache is one region sized at start (-m) that can
 * neither grow nor shrink, so only the current size can be "set"; any
 * other size gets the answer memcached gives when it cannot adjust.
 */
static void
cmd_memlimit(struct pxc_conn *c, const struct mc_req *req)
{
	uint64_t mb = req->level;

	if (mb < MC_MEMLIMIT_MIN_MB)
		reply(c, req,
		      "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m");
	else if (mb > MC_MEMLIMIT_MAX_MB)
		reply(c, req,
		      "MEMLIMIT_ADJUST_FAILED input value is megabytes "
		      "not bytes");
	else if (mb == c->w->srv->opts.memory_mb)
		reply(c, req, "OK");
	else
		reply(c, req,
		      "MEMLIMIT_ADJUST_FAILED out of bounds or unable "
		      "to adjust");
}

static void
cmd_quit(struct pxc_conn *c, const struct mc_req *req)
{
	pxc_conn_drain(c);
}

/* ---- Meta commands -------------------------------------------------- */

/* Seconds an item has left, memcached's "t" flag: -1 for never. */
static int64_t
ttl_left(int64_t exptime)
{
	int64_t left;

	if (exptime == 0)
		return -1;
	left = exptime - (int64_t)time(NULL);
	return left < 0 ? 0 : left;
}

/* The k and O return flags, which every meta reply echoes. */
static void
meta_echo(struct pxc_conn *c, const struct mc_req *req, char f)
{
	if (f == 'k') {
		pxc_out_lit(c, " k");
		pxc_out_text(c, req->key, req->nkey);
	} else if (f == 'O') {
		pxc_out_lit(c, " O");
		pxc_out_text(c, req->meta.opaque, req->meta.nopaque);
	}
}

/*
 * Whether t comes before T in the flags: memcached applies T where it
 * stands in the list, so such a t reports the TTL from before the touch.
 */
static bool
t_before_touch(const struct mc_meta *m)
{
	const char *t = memchr(m->order, 't', m->norder);
	const char *touch = memchr(m->order, 'T', m->norder);

	return t && touch && t < touch;
}

/* The expiry time of a key now (0: none or missing), for such a t. */
static int64_t
exptime_now(struct pxc_conn *c, const struct mc_req *req)
{
	struct px_cache_info info = {0};

	px_cache_get(cache_of(c), req->key, req->nkey, NULL, 0, &info);
	return info.exptime;
}

/*
 * Return flags of a hit, in the order the client gave them; @t_exptime is
 * the expiry time the t flag reports.
 */
static void
meta_item_flags(struct pxc_conn *c, const struct mc_req *req,
		const struct px_cache_ref *ref, int64_t t_exptime)
{
	for (uint8_t i = 0; i < req->meta.norder; i++) {
		char f = req->meta.order[i];

		if (f == 'c')
			pxc_out_printf(c, " c%" PRIu64, ref->cas);
		else if (f == 'f')
			pxc_out_printf(c, " f%" PRIu32, ref->flags);
		else if (f == 's')
			pxc_out_printf(c, " s%zu", ref->vlen);
		else if (f == 't')
			pxc_out_printf(c, " t%" PRId64, ttl_left(t_exptime));
		else
			meta_echo(c, req, f);
	}
}

/* A status line carrying only the k and O flags: EN, NF, NS, EX. */
static void
meta_status(struct pxc_conn *c, const struct mc_req *req, const char *code)
{
	pxc_out_text(c, code, 2);
	for (uint8_t i = 0; i < req->meta.norder; i++)
		meta_echo(c, req, req->meta.order[i]);
	pxc_out_lit(c, "\r\n");
}

static void
cmd_mg(struct pxc_conn *c, const struct mc_req *req)
{
	const struct mc_meta *m = &req->meta;
	bool touch = mc_meta_has(m, 'T');
	bool t_old = touch && t_before_touch(m);
	int64_t old_exptime = t_old ? exptime_now(c, req) : 0;
	struct px_cache_ref ref;
	int rc;

	count(c, PXC_ST_cmd_meta);
	count(c, PXC_ST_cmd_get);
	rc = touch ? px_cache_gat_ref(cache_of(c), req->key, req->nkey, m->ttl,
				      &ref)
		   : px_cache_get_ref(cache_of(c), req->key, req->nkey, &ref);
	if (touch)
		count(c, rc == 0 ? PXC_ST_touch_hits : PXC_ST_touch_misses);
	if (rc < 0) {
		count(c, PXC_ST_get_misses);
		if (!mc_meta_has(m, 'q'))
			meta_status(c, req, "EN");
		return;
	}
	count(c, PXC_ST_get_hits);
	if (mc_meta_has(m, 'v'))
		pxc_out_printf(c, "VA %zu", ref.vlen);
	else
		pxc_out_lit(c, "HD");
	meta_item_flags(c, req, &ref, t_old ? old_exptime : ref.exptime);
	pxc_out_lit(c, "\r\n");
	if (!mc_meta_has(m, 'v')) {
		px_cache_ref_put(cache_of(c), &ref);
		return;
	}
	pxc_out_value(c, &ref);
	pxc_out_lit(c, "\r\n");
}

static enum px_cache_mode
ms_mode(const struct mc_meta *m)
{
	switch (m->mode) {
	case MC_MODE_ADD:
		return PX_CACHE_ADD;
	case MC_MODE_APPEND:
		return PX_CACHE_APPEND;
	case MC_MODE_PREPEND:
		return PX_CACHE_PREPEND;
	case MC_MODE_REPLACE:
		/* memcached takes a replace with C as a compare-and-swap. */
		return mc_meta_has(m, 'C') ? PX_CACHE_CAS : PX_CACHE_REPLACE;
	default:
		/* C turns a set into a compare-and-swap. */
		return mc_meta_has(m, 'C') ? PX_CACHE_CAS : PX_CACHE_SET;
	}
}

/*
 * A failed ms: its code, then k and O echoed, and c as "c0", as
 * memcached prints the cas of a store that did not happen.
 */
static void
ms_status(struct pxc_conn *c, const struct mc_req *req, const char *code)
{
	pxc_out_text(c, code, 2);
	for (uint8_t i = 0; i < req->meta.norder; i++) {
		if (req->meta.order[i] == 'c')
			pxc_out_lit(c, " c0");
		else
			meta_echo(c, req, req->meta.order[i]);
	}
	pxc_out_lit(c, "\r\n");
}

static void
ms_reply(struct pxc_conn *c, const struct mc_req *req, int rc, uint64_t cas)
{
	enum px_cache_mode mode = ms_mode(&req->meta);

	/* EEXIST: an add found the key, or a compared cas differed. */
	if (rc == -EEXIST) {
		ms_status(c, req, mode == PX_CACHE_ADD ? "NS" : "EX");
	} else if (rc == -ENOENT) {
		ms_status(c, req, mode == PX_CACHE_CAS ? "NF" : "NS");
	} else if (grown_too_large(mode, rc)) {
		ms_status(c, req, "NS");
	} else if (rc < 0) {
		const char *err = store_error(c, rc);

		pxc_out_text(c, err, strlen(err));
		pxc_out_lit(c, "\r\n");
	} else if (!mc_meta_has(&req->meta, 'q')) {
		pxc_out_lit(c, "HD");
		for (uint8_t i = 0; i < req->meta.norder; i++) {
			if (req->meta.order[i] == 'c')
				pxc_out_printf(c, " c%" PRIu64, cas);
			else
				meta_echo(c, req, req->meta.order[i]);
		}
		pxc_out_lit(c, "\r\n");
	}
}

static void
cmd_ms(struct pxc_conn *c, const struct mc_req *req)
{
	const struct mc_meta *m = &req->meta;
	enum px_cache_mode mode = ms_mode(m);
	uint64_t cas = 0;
	int rc;

	count(c, PXC_ST_cmd_meta);
	count(c, PXC_ST_cmd_set);
	if (req->too_large) {
		store_too_large(c, req);
		pxc_out_lit(c, "SERVER_ERROR object too large for cache\r\n");
		return;
	}
	rc = px_cache_store(cache_of(c), mode, req->key, req->nkey, req->value,
			    req->vlen, m->client_flags,
			    mc_meta_has(m, 'T') ? m->ttl : 0, m->cas_cmp, &cas);
	if (mode == PX_CACHE_CAS)
		count_cas(c, rc);
	ms_reply(c, req, rc, cas);
}

static void
cmd_md(struct pxc_conn *c, const struct mc_req *req)
{
	int rc = px_cache_delete(cache_of(c), req->key, req->nkey);

	count(c, PXC_ST_cmd_meta);
	count(c, rc == 0 ? PXC_ST_delete_hits : PXC_ST_delete_misses);
	if (rc < 0)
		meta_status(c, req, "NF");
	else if (!mc_meta_has(&req->meta, 'q'))
		meta_status(c, req, "HD");
}

/*
 * The TTL a key created by ma's N gets: memcached applies T and N in the
 * order they stand, N only to a created key, so the later of the two wins.
 */
static int64_t
ma_created_ttl(const struct mc_meta *m)
{
	int64_t ttl = m->vivify_ttl;

	for (uint8_t i = 0; i < m->norder; i++) {
		if (m->order[i] == 'T')
			ttl = m->ttl;
		else if (m->order[i] == 'N')
			ttl = m->vivify_ttl;
	}
	return ttl;
}

/* ma's arithmetic, creating the key first when N asks for it. */
static int
ma_apply(struct pxc_conn *c, const struct mc_req *req, uint64_t *val,
	 uint64_t *cas, bool *created)
{
	const struct mc_meta *m = &req->meta;
	bool incr = m->mode == MC_MODE_INCR;
	char num[24];
	int rc, n;

	for (int tries = 0; tries < 2; tries++) {
		rc = arith(c, req, incr, m->delta, val, cas);
		if (rc != -ENOENT || !mc_meta_has(m, 'N'))
			return rc;
		n = snprintf(num, sizeof(num), "%" PRIu64, m->initial);
		rc = px_cache_store(cache_of(c), PX_CACHE_ADD, req->key,
				    req->nkey, num, (size_t)n, 0,
				    ma_created_ttl(m), 0, cas);
		if (rc != -EEXIST) {
			*val = m->initial;
			*created = rc == 0;
			return rc;
		}
		/* Someone created it meanwhile: apply to theirs. */
	}
	return rc;
}

/*
 * A memcached TTL as a Unix time (0: none), for t.  A TTL in the past
 * gives a time in the past, whose t is 0.
 */
static int64_t
mc_expiry(int64_t ttl)
{
	int64_t now = (int64_t)time(NULL);

	if (ttl == 0)
		return 0;
	if (ttl < 0)
		return now - 1;
	return ttl <= PX_CACHE_TTL_RELATIVE_MAX ? now + ttl : ttl;
}

/*
 * The expiry time ma's t reports: memcached walks the flags in order, T
 * setting the TTL and N setting it on a created key, and t says the TTL
 * as it stands at its place (0 on a key N has just created, before N).
 */
static int64_t
ma_t_expiry(struct pxc_conn *c, const struct mc_req *req, bool created)
{
	const struct mc_meta *m = &req->meta;
	int64_t cur = created ? 0 : exptime_now(c, req);

	for (uint8_t i = 0; i < m->norder; i++) {
		char f = m->order[i];

		if (f == 't')
			return cur;
		if (f == 'T')
			cur = mc_expiry(m->ttl);
		else if (f == 'N' && created)
			cur = mc_expiry(m->vivify_ttl);
	}
	return cur;
}

/* ma's return flags: c, t (at @t_exptime), k, O. */
static void
ma_flags(struct pxc_conn *c, const struct mc_req *req, uint64_t cas,
	 int64_t t_exptime)
{
	for (uint8_t i = 0; i < req->meta.norder; i++) {
		char f = req->meta.order[i];

		if (f == 'c') {
			pxc_out_printf(c, " c%" PRIu64, cas);
		} else if (f == 't') {
			pxc_out_printf(c, " t%" PRId64, ttl_left(t_exptime));
		} else {
			meta_echo(c, req, f);
		}
	}
}

static void
cmd_ma(struct pxc_conn *c, const struct mc_req *req)
{
	const struct mc_meta *m = &req->meta;
	bool incr = m->mode == MC_MODE_INCR;
	uint64_t val = 0, cas = 0;
	bool created = false;
	int64_t t_exptime = 0;
	int rc;

	count(c, PXC_ST_cmd_meta);
	rc = ma_apply(c, req, &val, &cas, &created);
	if (rc == -ENOENT) {
		count(c, incr ? PXC_ST_incr_misses : PXC_ST_decr_misses);
		meta_status(c, req, "NF");
		return;
	}
	if (rc < 0) {
		if (rc == -EINVAL)
			pxc_out_lit(c, "CLIENT_ERROR cannot increment or "
				       "decrement non-numeric value\r\n");
		else
			pxc_out_lit(c, "SERVER_ERROR out of memory\r\n");
		return;
	}
	count(c, incr ? PXC_ST_incr_hits : PXC_ST_decr_hits);
	if (mc_meta_has(m, 't'))
		t_exptime = ma_t_expiry(c, req, created);
	/* A created key already has its TTL (ma_created_ttl). */
	if (mc_meta_has(m, 'T') && !created)
		px_cache_touch(cache_of(c), req->key, req->nkey, m->ttl);
	/*
	 * As in memcached, q silences a change to an existing number, its
	 * value included, but not a number that N has just created.
	 */
	if (mc_meta_has(m, 'q') && !created)
		return;
	if (mc_meta_has(m, 'v')) {
		char num[24];
		int n = snprintf(num, sizeof(num), "%" PRIu64, val);

		pxc_out_printf(c, "VA %d", n);
		ma_flags(c, req, cas, t_exptime);
		pxc_out_printf(c, "\r\n%s\r\n", num);
		return;
	}
	pxc_out_lit(c, "HD");
	ma_flags(c, req, cas, t_exptime);
	pxc_out_lit(c, "\r\n");
}

static void
cmd_mn(struct pxc_conn *c, const struct mc_req *req)
{
	pxc_out_lit(c, "MN\r\n");
}

static const pxc_cmd_fn handlers[MC_CMD_COUNT] = {
    [MC_CMD_GET] = cmd_get,
    [MC_CMD_GETS] = cmd_get,
    [MC_CMD_GAT] = cmd_get,
    [MC_CMD_GATS] = cmd_get,
    [MC_CMD_SET] = cmd_store,
    [MC_CMD_ADD] = cmd_store,
    [MC_CMD_REPLACE] = cmd_store,
    [MC_CMD_APPEND] = cmd_store,
    [MC_CMD_PREPEND] = cmd_store,
    [MC_CMD_CAS] = cmd_store,
    [MC_CMD_DELETE] = cmd_delete,
    [MC_CMD_INCR] = cmd_arith,
    [MC_CMD_DECR] = cmd_arith,
    [MC_CMD_TOUCH] = cmd_touch,
    [MC_CMD_FLUSH_ALL] = cmd_flush_all,
    [MC_CMD_VERSION] = cmd_version,
    [MC_CMD_VERBOSITY] = pxc_cmd_live,
    [MC_CMD_MAXCONNS] = pxc_cmd_live,
    [MC_CMD_MEMLIMIT] = cmd_memlimit,
    [MC_CMD_QUIT] = cmd_quit,
    [MC_CMD_STATS] = pxc_cmd_stats,
    [MC_CMD_MG] = cmd_mg,
    [MC_CMD_MS] = cmd_ms,
    [MC_CMD_MD] = cmd_md,
    [MC_CMD_MA] = cmd_ma,
    [MC_CMD_MN] = cmd_mn,
    [MC_CMD_ERROR] = cmd_error,
};

/* An auth error is always said, whatever noreply, then the connection
 * closes, as memcached does. */
static void
auth_refuse(struct pxc_conn *c, const char *line)
{
	pxc_out_text(c, line, strlen(line));
	pxc_out_lit(c, "\r\n");
	pxc_conn_drain(c);
}

/* With -Y: the first command must be a set carrying "user password". */
static void
cmd_auth(struct pxc_conn *c, const struct mc_req *req)
{
	int rc;

	if (req->cmd != MC_CMD_SET) {
		auth_refuse(c, "CLIENT_ERROR unauthenticated");
		return;
	}
	count(c, PXC_ST_auth_cmds);
	rc = req->too_large
		 ? -EINVAL
		 : pxc_auth_check(c->w->srv->auth, req->value, req->vlen);
	if (rc < 0)
		count(c, PXC_ST_auth_errors);
	if (rc == -EINVAL) {
		auth_refuse(c, "CLIENT_ERROR bad authentication token format");
		return;
	}
	if (rc < 0) {
		LOG_INFO("a client failed to authenticate");
		auth_refuse(c, "CLIENT_ERROR authentication failure");
		return;
	}
	c->authed = true;
	reply(c, req, "STORED");
}

void
pxc_cmd_exec(struct pxc_conn *c, const struct mc_req *req)
{
	LOG_DEBUG("request %s", mc_cmd_name(req->cmd));
	if (!c->authed)
		cmd_auth(c, req);
	else
		handlers[req->cmd](c, req);
}
