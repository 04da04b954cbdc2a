// SPDX-License-Identifier: MIT
/*
 * The memcached text protocol parser (see proto.h for the contract).
 *
 * A request is parsed in three steps: find a complete line within the line
 * bound, split it into words, then hand the words to the parse function of
 * the command (one per command family).  Storage commands also wait for
 * their value and its CRLF.  Error replies and their order follow
 * memcached 1.6, checked against it request by request; where memcached
 * truncates a number silently (a length of 2^32 + 1 stored as 1 byte) we
 * refuse it instead.
 */
#include <limits.h>
#include <string.h>

#include "proto.h"

struct mc_tok {
	const char *p;
	size_t n;
};

struct mc_line {
	const char *p; /* the line, without CR LF */
	size_t n;
	size_t total; /* bytes up to and including the newline */
	struct mc_tok tok[MC_MAX_TOKENS];
	size_t ntok;
	const char *rest; /* words past the tokenized ones, or NULL */
	size_t rest_n;
};

typedef enum mc_parse_rc (*mc_parse_fn)(struct mc_parser *p, struct mc_line *l,
					struct mc_req *req, const char *data,
					size_t avail);

struct mc_cmd_def {
	const char *name;
	size_t len;
	enum mc_cmd cmd;
	size_t words; /* words to split before calling parse (0: all) */
	mc_parse_fn parse;
};

static const char ERR_FORMAT[] = "CLIENT_ERROR bad command line format";
static const char ERR_EXPTIME[] = "CLIENT_ERROR invalid exptime argument";
static const char ERR_DELTA[] = "CLIENT_ERROR invalid numeric delta argument";
static const char ERR_CHUNK[] = "CLIENT_ERROR bad data chunk";
static const char ERR_TOKEN[] = "CLIENT_ERROR bad token in command line format";
static const char ERR_FLAG[] = "CLIENT_ERROR invalid flag";
/* The same words, for a flag memcached itself does not know. */
static const char ERR_NOT_LETTER[] = "CLIENT_ERROR invalid flag";
/*
 * Every flag letter memcached 1.6.18 knows, with a number (CDFJMNRT) or
 * without.  The ones a command here refuses keep pxcached's own "invalid
 * flag"; the others get memcached's own answer.
 */
#define MC_META_KNOWN "bcfhklqstuvILOPCDFJMNRT"
static const char ERR_DUP[] = "CLIENT_ERROR duplicate flag";
/* ma and md say this for any malformed flag word, as memcached does. */
static const char ERR_FLAG_OR_DUP[] = "CLIENT_ERROR invalid or duplicate flag";
static const char ERR_OPAQUE[] = "CLIENT_ERROR opaque token too long";
static const char ERR_M_LEN[] = "CLIENT_ERROR incorrect length for M token";
static const char ERR_MODE_MA[] = "CLIENT_ERROR invalid mode for ma M token";
static const char ERR_MODE_MS[] = "CLIENT_ERROR invalid mode for ms M token";
static const char ERR_DELETE[] =
    "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";

void
mc_parser_init(struct mc_parser *p, size_t item_max, size_t line_max,
	       size_t key_line_max)
{
	memset(p, 0, sizeof(*p));
	p->item_max = item_max;
	p->line_max = line_max;
	p->key_line_max = key_line_max < line_max ? line_max : key_line_max;
}

int
mc_parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int
mc_parse_i64(const char *s, size_t n, int64_t *out)
{
	bool neg = n > 0 && s[0] == '-';
	bool sign = n > 0 && (neg || s[0] == '+');
	uint64_t v;

	if (mc_parse_u64(s + sign, n - sign, &v) < 0 || v > INT64_MAX)
		return -1;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

static bool
c_space(char ch)
{
	return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

/*
 * The number in a word as strtoul sees it: words are split at spaces
 * only, so a word may hold a tab, CR, LF, VT or FF.  strtoul skips them
 * in front, and memcached takes a number that one of them ends
 * ("100<TAB>noreply" is 100).
 */
static void
num_span(const char **s, size_t *n)
{
	const char *p = *s, *end = *s + *n, *e;

	while (p < end && c_space(*p))
		p++;
	for (e = p; e < end && !c_space(*e); e++)
		;
	*s = p;
	*n = (size_t)(e - p);
}

/*
 * A number word as memcached reads it with strtoul/strtoull: an optional
 * leading '+' or '-', then digits; a '-' is refused unless the value is 0
 * (memcached takes "-0" and refuses "-1", which strtoull would wrap).
 */
static int
parse_word_u64(const char *s, size_t n, uint64_t *out)
{
	bool sign;

	num_span(&s, &n);
	sign = n > 0 && (s[0] == '+' || s[0] == '-');

	if (mc_parse_u64(s + sign, n - sign, out) < 0)
		return -1;
	return sign && s[0] == '-' && *out != 0 ? -1 : 0;
}

static int
parse_u32(const struct mc_tok *t, uint32_t *out)
{
	uint64_t v;

	if (parse_word_u64(t->p, t->n, &v) < 0 || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* memcached's times and lengths are 32-bit: refuse what would not fit. */
static int
parse_i32(const struct mc_tok *t, int64_t *out)
{
	const char *s = t->p;
	size_t n = t->n;
	int64_t v;

	num_span(&s, &n);
	if (mc_parse_i64(s, n, &v) < 0 || v > INT32_MAX || v < INT32_MIN)
		return -1;
	*out = v;
	return 0;
}

static bool
tok_is(const struct mc_tok *t, const char *s)
{
	size_t n = strlen(s);

	return t->n == n && memcmp(t->p, s, n) == 0;
}

static enum mc_parse_rc
set_error(struct mc_req *req, const char *msg)
{
	req->cmd = MC_CMD_ERROR;
	req->error = msg;
	return MC_PARSE_REQ;
}

/*
 * Noreply is the last word, when it is "noreply" (memcached's rule), even
 * where that word stands for a required argument: "incr k noreply" is a
 * bad delta, answered with silence, as memcached does.
 */
static void
take_noreply(struct mc_line *l, struct mc_req *req)
{
	if (l->ntok > 1 && tok_is(&l->tok[l->ntok - 1], "noreply")) {
		req->noreply = true;
		l->ntok--;
	}
}

static const char *
skip_spaces(const char *s, const char *end)
{
	while (s < end && *s == ' ')
		s++;
	return s;
}

/* Splits up to @max words (0: MC_MAX_TOKENS); the rest stays in l->rest. */
static void
tokenize(struct mc_line *l, size_t max)
{
	const char *s = l->p, *end = l->p + l->n;

	if (max == 0 || max > MC_MAX_TOKENS)
		max = MC_MAX_TOKENS;
	l->ntok = 0;
	l->rest = NULL;
	l->rest_n = 0;
	for (s = skip_spaces(s, end); s < end; s = skip_spaces(s, end)) {
		const char *e;

		if (l->ntok == max) {
			l->rest = s;
			l->rest_n = (size_t)(end - s);
			return;
		}
		e = memchr(s, ' ', (size_t)(end - s));
		if (!e)
			e = end;
		l->tok[l->ntok].p = s;
		l->tok[l->ntok].n = (size_t)(e - s);
		l->ntok++;
		s = e;
	}
}

bool
mc_key_next(const char **cur, const char *end, const char **key, size_t *nkey)
{
	const char *s = skip_spaces(*cur, end), *e;

	if (s == end)
		return false;
	e = memchr(s, ' ', (size_t)(end - s));
	if (!e)
		e = end;
	*key = s;
	*nkey = (size_t)(e - s);
	*cur = e;
	return true;
}

static bool
key_ok(const struct mc_tok *t)
{
	return t->n > 0 && t->n <= MC_KEY_MAX;
}

static void
take_key(struct mc_req *req, const struct mc_tok *t)
{
	req->key = t->p;
	req->nkey = t->n;
}

/*
 * The value of a storage command: wait for it and its CRLF, or drop it
 * without buffering when it is over the item limit.
 */
static enum mc_parse_rc
take_value(struct mc_parser *p, struct mc_line *l, struct mc_req *req,
	   const char *data, size_t avail)
{
	size_t need = req->vlen + 2;

	if (req->vlen > p->item_max) {
		req->too_large = true;
		p->swallow = need;
		return MC_PARSE_REQ;
	}
	if (avail < need) {
		p->need = l->total + need;
		return MC_PARSE_AGAIN;
	}
	req->consumed = l->total + need;
	if (data[req->vlen] != '\r' || data[req->vlen + 1] != '\n')
		return set_error(req, ERR_CHUNK);
	req->value = data;
	return MC_PARSE_REQ;
}

static int
parse_length(const struct mc_tok *t, size_t *out)
{
	uint64_t v;

	/* memcached adds 2 for the CRLF to a signed 32-bit length. */
	if (parse_word_u64(t->p, t->n, &v) < 0 || v > INT32_MAX - 2)
		return -1;
	*out = (size_t)v;
	return 0;
}

/* set/add/replace/append/prepend <key> <flags> <exptime> <bytes>, cas +1 */
static enum mc_parse_rc
parse_storage(struct mc_parser *p, struct mc_line *l, struct mc_req *req,
	      const char *data, size_t avail)
{
	size_t words = req->cmd == MC_CMD_CAS ? 6 : 5;

	if (l->rest || (l->ntok != words && l->ntok != words + 1))
		return set_error(req, "ERROR");
	take_noreply(l, req);
	if (l->ntok < words) /* noreply took a required argument's place */
		return set_error(req, ERR_FORMAT);
	if (!key_ok(&l->tok[1]) || parse_u32(&l->tok[2], &req->flags) < 0 ||
	    parse_i32(&l->tok[3], &req->exptime) < 0 ||
	    parse_length(&l->tok[4], &req->vlen) < 0)
		return set_error(req, ERR_FORMAT);
	if (req->cmd == MC_CMD_CAS &&
	    parse_word_u64(l->tok[5].p, l->tok[5].n, &req->cas) < 0)
		return set_error(req, ERR_FORMAT);
	take_key(req, &l->tok[1]);
	return take_value(p, l, req, data, avail);
}

/* Checks every key of a key list; get and gets need at least one. */
static enum mc_parse_rc
take_keys(struct mc_line *l, struct mc_req *req)
{
	const char *cur = l->rest, *end, *k;
	size_t nk;

	if (!l->rest) {
		if (req->cmd == MC_CMD_GET || req->cmd == MC_CMD_GETS)
			return set_error(req, "ERROR");
		req->keys = ""; /* gat <exptime> alone: no key, just END */
		return MC_PARSE_REQ;
	}
	end = l->rest + l->rest_n; /* not before: NULL + 0 is undefined */
	while (mc_key_next(&cur, end, &k, &nk)) {
		if (nk > MC_KEY_MAX)
			return set_error(req, ERR_FORMAT);
	}
	req->keys = l->rest;
	req->keys_len = l->rest_n;
	return MC_PARSE_REQ;
}

/* get|gets <key>* */
static enum mc_parse_rc
parse_get(struct mc_parser *p, struct mc_line *l, struct mc_req *req,
	  const char *data, size_t avail)
{
	return take_keys(l, req);
}

/* gat|gats <exptime> <key>* */
static enum mc_parse_rc
parse_gat(struct mc_parser *p, struct mc_line *l, struct mc_req *req,
	  const char *data, size_t avail)
{
	if (l->ntok < 2)
		return set_error(req, "ERROR");
	if (parse_i32(&l->tok[1], &req->exptime) < 0)
		return set_error(req, ERR_EXPTIME);
	return take_keys(l, req);
}

/* delete <key> [0] [noreply]: the 0 is a relic memcached still accepts. */
static enum mc_parse_rc
parse_delete(struct mc_parser *p, struct mc_line *l, struct mc_req *req,
	     const char *data, size_t avail)
{
	if (l->rest || l->ntok < 2 || l->ntok > 4)
		return set_error(req, "ERROR");
	if (l->ntok > 2) /* "delete noreply" deletes the key "noreply" */
		take_noreply(l, req);
	if (l->ntok == 3 && !tok_is(&l->tok[2], "0"))
		return set_error(req, ERR_DELETE);
	if (l->ntok > 3)
		return set_error(req, ERR_DELETE);
	if (!key_ok(&l->tok[1]))
		return set_error(req, ERR_FORMAT);
	take_key(req, &l->tok[1]);
	return MC_PARSE_REQ;
}

/* incr|decr <key> <delta> [noreply] */
static enum mc_parse_rc
parse_arith(struct mc_parser *p, struct mc_line *l, struct mc_req *req,
	    const char *data, size_t avail)
{
	if (l->rest || (l->ntok != 3 && l->ntok != 4))
		return set_error(req, "ERROR");
	take_noreply(l, req);
	if (!key_ok(&l->tok[1]))
		return set_error(req, ERR_FORMAT);
	if (l->ntok < 3 ||
	    parse_word_u64(l->tok[2].p, l->tok[2].n, &req->delta) < 0)
		return set_error(req, ERR_DELTA);
	take_key(req, &l->tok[1]);
	return MC_PARSE_REQ;
}

/* touch <key> <exptime> [noreply] */
static enum mc_parse_rc
parse_touch(struct mc_parser *p, struct mc_line *l, struct mc_req *req,
	    const char *data, size_t avail)
{
	if (l->rest || (l->ntok != 3 && l->ntok != 4))
		return set_error(req, "ERROR");
	take_noreply(l, req);
	if (!key_ok(&l->tok[1]))
		return set_error(req, ERR_FORMAT);
	if (l->ntok < 3 || parse_i32(&l->tok[2], &req->exptime) < 0)
		return set_error(req, ERR_EXPTIME);
	take_key(req, &l->tok[1]);
	return MC_PARSE_REQ;
}

/* flush_all [delay] [noreply] */
static enum mc_parse_rc
parse_flush(struct mc_parser *p, struct mc_line *l, struct mc_req *req,
	    const char *data, size_t avail)
{
	if (l->rest || l->ntok > 3)
		return set_error(req, "ERROR");
	take_noreply(l, req);
	if (l->ntok >= 2 && parse_i32(&l->tok[1], &req->delay) < 0)
		return set_error(req, ERR_EXPTIME);
	return MC_PARSE_REQ;
}

/*
 * verbosity <level> [noreply]: memcached reads the first argument only,
 * so "verbosity 1 2" is level 1, and lowers levels above its highest.  A
 * bare "verbosity noreply" is accepted and changes nothing, as memcached
 * does.  maxconns <n> [noreply] (ours) takes exactly one argument.
 */
static enum mc_parse_rc
parse_verbosity(struct mc_parser *p, struct mc_line *l, struct mc_req *req,
		const char *data, size_t avail)
{
	bool verbosity = req->cmd == MC_CMD_VERBOSITY;

	if (l->rest || l->ntok < 2 || l->ntok > 3)
		return set_error(req, "ERROR");
	take_noreply(l, req);
	if (l->ntok == 1) {
		req->keep_level = true;
		return MC_PARSE_REQ;
	}
	if (!verbosity && (l->ntok != 2 || parse_u32(&l->tok[1], &req->level)))
		return set_error(req, ERR_FORMAT);
	/* Unlike memcached, refuse levels past 32 bits, not truncate them. */
	if (verbosity && parse_u32(&l->tok[1], &req->level) < 0)
		return set_error(req, ERR_FORMAT);
	if (verbosity && req->level > MC_VERBOSITY_MAX)
		req->level = MC_VERBOSITY_MAX;
	return MC_PARSE_REQ;
}

/*
 * cache_memlimit <MiB> [noreply]: like memcached, a second argument that
 * is not noreply is ignored and an unreadable number is "ERROR".  MiB
 * counts past 32 bits are kept at UINT32_MAX, which the handler refuses
 * as too large, where memcached would truncate them.
 */
static enum mc_parse_rc
parse_memlimit(struct mc_parser *p, struct mc_line *l, struct mc_req *req,
	       const char *data, size_t avail)
{
	uint64_t mb;

	if (l->rest || l->ntok < 2 || l->ntok > 3)
		return set_error(req, "ERROR");
	take_noreply(l, req);
	if (parse_word_u64(l->tok[1].p, l->tok[1].n, &mb) < 0)
		return set_error(req, "ERROR");
	req->level = mb > UINT32_MAX ? UINT32_MAX : (uint32_t)mb;
	return MC_PARSE_REQ;
}

/* version, quit, mn: the words after the command are ignored. */
static enum mc_parse_rc
parse_plain(struct mc_parser *p, struct mc_line *l, struct mc_req *req,
	    const char *data, size_t avail)
{
	req->close = req->cmd == MC_CMD_QUIT;
	return MC_PARSE_REQ;
}

/*
 * shutdown [anything]: memcached refuses it with its own words unless it
 * runs with -A; pxcached has no such switch (stats settings says
 * shutdown_command no), so it always refuses, even with noreply.
 */
static enum mc_parse_rc
parse_shutdown(struct mc_parser *p, struct mc_line *l, struct mc_req *req,
	       const char *data, size_t avail)
{
	return set_error(req, "ERROR: shutdown not enabled");
}

/* stats [group]: the handler decides which groups exist. */
static enum mc_parse_rc
parse_stats(struct mc_parser *p, struct mc_line *l, struct mc_req *req,
	    const char *data, size_t avail)
{
	req->args = l->rest ? l->rest : "";
	req->args_len = l->rest ? l->rest_n : 0;
	return MC_PARSE_REQ;
}

/* Meta flags each meta command accepts (see docs/pxcached.md). */
static const char *const meta_allowed[] = {
    [MC_CMD_MG] = "cfkOqstvT",
    [MC_CMD_MS] = "cCFkOqTM",
    [MC_CMD_MD] = "kOq",
    [MC_CMD_MA] = "cDJkMNOqtTv",
};

static int
meta_mode(enum mc_cmd cmd, char c, enum mc_meta_mode *out)
{
	static const char ms_modes[] = "SEAPR";
	static const enum mc_meta_mode ms_map[] = {
	    MC_MODE_SET, MC_MODE_ADD, MC_MODE_APPEND, MC_MODE_PREPEND,
	    MC_MODE_REPLACE};
	const char *hit;

	if (cmd == MC_CMD_MA) {
		if (c == 'I' || c == '+')
			*out = MC_MODE_INCR;
		else if (c == 'D' || c == '-')
			*out = MC_MODE_DECR;
		else
			return -1;
		return 0;
	}
	hit = c ? strchr(ms_modes, c) : NULL;
	if (!hit)
		return -1;
	*out = ms_map[hit - ms_modes];
	return 0;
}

/* The token of one meta flag, range checked; returns an error or NULL. */
static const char *
meta_token(enum mc_cmd cmd, struct mc_meta *m, char f, const struct mc_tok *t)
{
	const char *s = t->p + 1;
	size_t n = t->n - 1;

	switch (f) {
	case 'O':
		/* memcached bounds the whole word, the letter included. */
		if (t->n > MC_OPAQUE_MAX)
			return ERR_OPAQUE;
		m->opaque = s;
		m->nopaque = (uint8_t)n;
		return NULL;
	case 'T':
	case 'N': {
		struct mc_tok v = {s, n};

		return parse_i32(&v, f == 'T' ? &m->ttl : &m->vivify_ttl) < 0
			   ? ERR_TOKEN
			   : NULL;
	}
	case 'C':
		return parse_word_u64(s, n, &m->cas_cmp) < 0 ? ERR_TOKEN : NULL;
	case 'D':
		return parse_word_u64(s, n, &m->delta) < 0 ? ERR_TOKEN : NULL;
	case 'J':
		return parse_word_u64(s, n, &m->initial) < 0 ? ERR_TOKEN : NULL;
	case 'F': {
		struct mc_tok v = {s, n};

		return parse_u32(&v, &m->client_flags) < 0 ? ERR_FORMAT : NULL;
	}
	case 'M':
		if (n != 1)
			return ERR_M_LEN;
		if (meta_mode(cmd, *s, &m->mode) < 0)
			return cmd == MC_CMD_MA ? ERR_MODE_MA : ERR_MODE_MS;
		return NULL;
	default:
		return NULL;
	}
}

static bool
is_flag_letter(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/*
 * memcached's ma and md check every flag word before they run and answer
 * any fault found there (a letter it does not know, a duplicate, a bad
 * number, an M word of the wrong length) with one message.  The opaque's
 * length and the mode letter are checked later, with their own messages;
 * a letter only pxcached refuses keeps "invalid flag" (docs/pxcached.md).
 */
static const char *
meta_flag_error(enum mc_cmd cmd, const char *err)
{
	if (cmd != MC_CMD_MA && cmd != MC_CMD_MD)
		return err;
	if (err == ERR_NOT_LETTER || err == ERR_DUP || err == ERR_TOKEN ||
	    err == ERR_M_LEN || err == ERR_FORMAT)
		return ERR_FLAG_OR_DUP;
	return err;
}

/*
 * One flag word's letter, checked in memcached's order: a repeated letter
 * (or a byte of 127 and above) and an unknown letter stop the parse at
 * once; then pxcached's own refusals.  Returns an error or NULL.
 */
static const char *
meta_letter(enum mc_cmd cmd, const struct mc_meta *m, char f)
{
	if ((unsigned char)f >= 127 ||
	    (is_flag_letter(f) && (m->present & MC_META_BIT(f))))
		return ERR_DUP;
	if (!is_flag_letter(f) || !strchr(MC_META_KNOWN, f))
		return ERR_NOT_LETTER;
	if (!strchr(meta_allowed[cmd], f))
		return ERR_FLAG;
	return NULL;
}

/*
 * Parses the flag words of a meta command from word @first on, as
 * memcached's flag pass does: a bad number does not stop it (a duplicate
 * further on is the error said), and when several numbers are bad the
 * last one's error is said; a bad F leaves the error as it was, "bad
 * command line format" when none came before.  Then the mode letter, and
 * last the opaque's length.
 */
static const char *
parse_meta_flags(enum mc_cmd cmd, struct mc_line *l, size_t first,
		 struct mc_meta *m)
{
	const char *errstr = ERR_FORMAT, *mode = NULL, *opaque = NULL;
	bool bad = false;

	m->delta = 1;
	m->mode = cmd == MC_CMD_MA ? MC_MODE_INCR : MC_MODE_SET;
	for (size_t i = first; i < l->ntok; i++) {
		char f = l->tok[i].p[0];
		const char *err = meta_letter(cmd, m, f);

		if (err)
			return err;
		m->present |= MC_META_BIT(f);
		m->order[m->norder++] = f;
		err = meta_token(cmd, m, f, &l->tok[i]);
		if (err == ERR_MODE_MA || err == ERR_MODE_MS) {
			mode = err;
		} else if (err == ERR_OPAQUE) {
			opaque = err;
		} else if (err) {
			bad = true;
			errstr = err == ERR_FORMAT ? errstr : err;
		}
	}
	if (bad)
		return errstr;
	return mode ? mode : opaque;
}

/* mg|md|ma <key> <flag>* */
static enum mc_parse_rc
parse_meta(struct mc_parser *p, struct mc_line *l, struct mc_req *req,
	   const char *data, size_t avail)
{
	const char *err;

	if (l->ntok < 2)
		return set_error(req, "ERROR");
	if (l->rest || !key_ok(&l->tok[1]))
		return set_error(req, ERR_FORMAT);
	take_key(req, &l->tok[1]);
	err = parse_meta_flags(req->cmd, l, 2, &req->meta);
	return err ? set_error(req, meta_flag_error(req->cmd, err))
		   : MC_PARSE_REQ;
}

/*
 * ms <key> <datalen> <flag>*: once the length is known the value is
 * consumed even when a flag is wrong, as memcached does.
 */
static enum mc_parse_rc
parse_ms(struct mc_parser *p, struct mc_line *l, struct mc_req *req,
	 const char *data, size_t avail)
{
	const char *err;
	enum mc_parse_rc rc;

	if (l->ntok < 2)
		return set_error(req, "ERROR");
	if (l->ntok < 3 || l->rest || !key_ok(&l->tok[1]) ||
	    parse_length(&l->tok[2], &req->vlen) < 0)
		return set_error(req, ERR_FORMAT);
	take_key(req, &l->tok[1]);
	err = parse_meta_flags(req->cmd, l, 3, &req->meta);
	rc = take_value(p, l, req, data, avail);
	if (rc == MC_PARSE_REQ && err)
		return set_error(req, err);
	return rc;
}

#define CMD(n, c, w, fn)                   \
	{                                  \
		n, sizeof(n) - 1, c, w, fn \
	}

/* The most frequent commands first: lookup is a short linear scan. */
static const struct mc_cmd_def mc_cmds[] = {
    CMD("get", MC_CMD_GET, 1, parse_get),
    CMD("set", MC_CMD_SET, 0, parse_storage),
    CMD("mg", MC_CMD_MG, 0, parse_meta),
    CMD("ms", MC_CMD_MS, 0, parse_ms),
    CMD("gets", MC_CMD_GETS, 1, parse_get),
    CMD("delete", MC_CMD_DELETE, 0, parse_delete),
    CMD("add", MC_CMD_ADD, 0, parse_storage),
    CMD("replace", MC_CMD_REPLACE, 0, parse_storage),
    CMD("append", MC_CMD_APPEND, 0, parse_storage),
    CMD("prepend", MC_CMD_PREPEND, 0, parse_storage),
    CMD("cas", MC_CMD_CAS, 0, parse_storage),
    CMD("incr", MC_CMD_INCR, 0, parse_arith),
    CMD("decr", MC_CMD_DECR, 0, parse_arith),
    CMD("touch", MC_CMD_TOUCH, 0, parse_touch),
    CMD("gat", MC_CMD_GAT, 2, parse_gat),
    CMD("gats", MC_CMD_GATS, 2, parse_gat),
    CMD("md", MC_CMD_MD, 0, parse_meta),
    CMD("ma", MC_CMD_MA, 0, parse_meta),
    CMD("mn", MC_CMD_MN, 0, parse_plain),
    CMD("flush_all", MC_CMD_FLUSH_ALL, 0, parse_flush),
    CMD("version", MC_CMD_VERSION, 0, parse_plain),
    CMD("verbosity", MC_CMD_VERBOSITY, 0, parse_verbosity),
    CMD("maxconns", MC_CMD_MAXCONNS, 0, parse_verbosity),
    CMD("cache_memlimit", MC_CMD_MEMLIMIT, 0, parse_memlimit),
    CMD("quit", MC_CMD_QUIT, 0, parse_plain),
    CMD("stats", MC_CMD_STATS, 1, parse_stats),
    CMD("shutdown", MC_CMD_ERROR, 1, parse_shutdown),
};

static const struct mc_cmd_def *
find_cmd(const char *s, size_t n)
{
	for (size_t i = 0; i < sizeof(mc_cmds) / sizeof(mc_cmds[0]); i++) {
		if (mc_cmds[i].len == n && memcmp(mc_cmds[i].name, s, n) == 0)
			return &mc_cmds[i];
	}
	return NULL;
}

const char *
mc_cmd_name(enum mc_cmd cmd)
{
	if (cmd == MC_CMD_ERROR)
		return "error";
	for (size_t i = 0; i < sizeof(mc_cmds) / sizeof(mc_cmds[0]); i++) {
		if (mc_cmds[i].cmd == cmd)
			return mc_cmds[i].name;
	}
	return "error";
}

/* Key-list commands may have lines up to key_line_max (long multigets). */
static bool
is_key_list_line(const char *s, size_t n)
{
	const char *end = s + n;
	const char *w = skip_spaces(s, end);
	size_t left = (size_t)(end - w);

	return (left >= 4 &&
		(!memcmp(w, "get ", 4) || !memcmp(w, "gat ", 4))) ||
	       (left >= 5 &&
		(!memcmp(w, "gets ", 5) || !memcmp(w, "gats ", 5)));
}

/*
 * Finds the next line.  Without a newline within the bound, the client
 * is either broken or hostile: memcached closes such a connection, and so
 * do we, after saying why.
 */
static enum mc_parse_rc
find_line(struct mc_parser *p, const char *buf, size_t len, struct mc_line *l,
	  struct mc_req *req)
{
	size_t scan = len < p->key_line_max + 1 ? len : p->key_line_max + 1;
	const char *nl = memchr(buf, '\n', scan), *nul;
	size_t n = nl ? (size_t)(nl - buf) : len;

	if (n > p->line_max &&
	    (n > p->key_line_max || !is_key_list_line(buf, n)))
		goto overlong;
	if (!nl)
		return MC_PARSE_AGAIN;
	l->p = buf;
	l->total = n + 1;
	l->n = n > 0 && buf[n - 1] == '\r' ? n - 1 : n;
	/*
	 * memcached reads a command line as a C string: it ends at a NUL,
	 * and what follows up to the newline is ignored.  So a key never
	 * holds a NUL, and "get a<NUL> b" asks for a only.
	 */
	nul = memchr(buf, '\0', l->n);
	if (nul)
		l->n = (size_t)(nul - buf);
	return MC_PARSE_REQ;

overlong:
	req->close = true;
	req->consumed = len;
	return set_error(req, "CLIENT_ERROR line too long");
}

static enum mc_parse_rc
parse_one(struct mc_parser *p, const char *buf, size_t len, struct mc_req *req)
{
	const struct mc_cmd_def *def;
	struct mc_line l;

	if (find_line(p, buf, len, &l, req) == MC_PARSE_AGAIN)
		return MC_PARSE_AGAIN;
	if (req->cmd == MC_CMD_ERROR)
		return MC_PARSE_REQ;
	req->consumed = l.total;

	tokenize(&l, 1);
	def = l.ntok ? find_cmd(l.tok[0].p, l.tok[0].n) : NULL;
	if (!def)
		return set_error(req, "ERROR");
	req->cmd = def->cmd;
	if (def->words != 1)
		tokenize(&l, def->words);
	return def->parse(p, &l, req, buf + l.total, len - l.total);
}

enum mc_parse_rc
mc_parse(struct mc_parser *p, const char *buf, size_t len, struct mc_req *req)
{
	size_t skip = 0;
	enum mc_parse_rc rc;

	memset(req, 0, sizeof(*req));
	p->need = 0;
	if (p->swallow) {
		skip = p->swallow < len ? (size_t)p->swallow : len;
		p->swallow -= skip;
		if (p->swallow) {
			req->consumed = skip;
			return MC_PARSE_AGAIN;
		}
	}
	rc = parse_one(p, buf + skip, len - skip, req);
	if (rc == MC_PARSE_AGAIN)
		req->consumed = 0;
	req->consumed += skip;
	return rc;
}
