// SPDX-License-Identifier: MIT
/*
 * Unit tests of pxcached's memcached text protocol parser.  The parser is
 * part of the program, not of the library, so its source is compiled into
 * this test directly; it depends on nothing but libc.  Each test feeds
 * input the way a connection would (whole, or split into chunks down to
 * one byte) and checks the requests that come out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../apps/pxcached/proto.c"

#define T_ITEM_MAX     1024
#define T_LINE_MAX     2048
#define T_KEY_LINE_MAX 8192

/* Appends a one-line description of @req to @out. */
static void
describe(const struct mc_req *req, char *out, size_t cap)
{
	size_t n = strlen(out);

	if (req->cmd == MC_CMD_ERROR) {
		snprintf(out + n, cap - n, "[%s%s%s]", req->error,
			 req->close ? " close" : "",
			 req->noreply ? " noreply" : "");
		return;
	}
	n += (size_t)snprintf(out + n, cap - n, "[%s", mc_cmd_name(req->cmd));
	if (req->key)
		n += (size_t)snprintf(out + n, cap - n, " k=%.*s",
				      (int)req->nkey, req->key);
	if (req->keys)
		n += (size_t)snprintf(out + n, cap - n, " keys=%.*s",
				      (int)req->keys_len, req->keys);
	if (req->value)
		n += (size_t)snprintf(out + n, cap - n, " v=%.*s",
				      (int)req->vlen, req->value);
	if (req->too_large)
		n += (size_t)snprintf(out + n, cap - n, " too_large=%zu",
				      req->vlen);
	if (req->noreply)
		n += (size_t)snprintf(out + n, cap - n, " noreply");
	snprintf(out + n, cap - n, "]");
}

/*
 * Feeds @in in chunks of @chunk bytes (0: all at once) through a buffer
 * managed as a connection does, describing each request into @out.
 * Returns the bytes left unconsumed at the end.
 */
static size_t
feed(const char *in, size_t len, size_t chunk, char *out, size_t cap)
{
	struct mc_parser p;
	struct mc_req req;
	char *buf = malloc(len + 1);
	size_t have = 0, pos = 0;

	assert_non_null(buf);
	out[0] = '\0';
	mc_parser_init(&p, T_ITEM_MAX, T_LINE_MAX, T_KEY_LINE_MAX);
	while (pos < len || have) {
		size_t add = chunk ? chunk : len;
		enum mc_parse_rc rc;

		if (add > len - pos)
			add = len - pos;
		memcpy(buf + have, in + pos, add);
		have += add;
		pos += add;
		do {
			rc = mc_parse(&p, buf, have, &req);
			assert_true(req.consumed <= have);
			if (rc == MC_PARSE_REQ)
				describe(&req, out, cap);
			memmove(buf, buf + req.consumed, have - req.consumed);
			have -= req.consumed;
		} while (have && (rc == MC_PARSE_REQ || req.consumed));
		if (pos == len)
			break;
	}
	free(buf);
	return have;
}

static void
expect(const char *in, const char *want)
{
	char out[8192];

	feed(in, strlen(in), 0, out, sizeof(out));
	assert_string_equal(out, want);
}

/* expect() for input holding NUL bytes: @len of them. */
static void
expect_n(const char *in, size_t len, const char *want)
{
	char out[8192];

	feed(in, len, 0, out, sizeof(out));
	assert_string_equal(out, want);
}

static void
test_pxcached_proto_get_set_pipeline(void **state)
{
	expect("set a 0 0 1\r\nx\r\nget a b\r\ngets  c \r\n",
	       "[set k=a v=x][get keys=a b][gets keys=c ]");
	expect("get a\n", "[get keys=a]");
	expect("add k 1 2 3\r\nabc\r\nreplace k 0 0 0\r\n\r\n",
	       "[add k=k v=abc][replace k=k v=]");
}

static void
test_pxcached_proto_fields(void **state)
{
	struct mc_parser p;
	struct mc_req req;
	const char *in = "cas key 4294967295 -5 3 18446744073709551615 "
			 "noreply\r\nabc\r\n";

	mc_parser_init(&p, T_ITEM_MAX, T_LINE_MAX, T_KEY_LINE_MAX);
	assert_int_equal(mc_parse(&p, in, strlen(in), &req), MC_PARSE_REQ);
	assert_int_equal(req.cmd, MC_CMD_CAS);
	assert_int_equal(req.flags, UINT32_MAX);
	assert_int_equal(req.exptime, -5);
	assert_int_equal(req.vlen, 3);
	assert_true(req.cas == UINT64_MAX);
	assert_true(req.noreply);
	assert_int_equal(req.consumed, strlen(in));
}

/* The same script split at every possible chunk size gives the same. */
static void
test_pxcached_proto_split_at_any_byte(void **state)
{
	static const char script[] =
	    "set a 0 0 5\r\nhello\r\nget a b c\r\nbogus\r\n"
	    "set big 0 0 1500\r\n"
	    "%1500%\r\n"
	    "incr n 5 noreply\r\nms k 3 T10 F1 q\r\nabc\r\nmg k v k\r\n"
	    "set x 0 0 2\r\nxyz\r\nmn\r\n";
	char in[4096], whole[8192], split[8192];
	size_t len;

	/* Expand the %1500% marker into an oversized value. */
	len = (size_t)(strstr(script, "%1500%") - script);
	memcpy(in, script, len);
	memset(in + len, 'v', 1500);
	strcpy(in + len + 1500, strstr(script, "%1500%") + 6);
	len = strlen(in);

	assert_int_equal(feed(in, len, 0, whole, sizeof(whole)), 0);
	assert_string_equal(
	    whole, "[set k=a v=hello][get keys=a b c][ERROR]"
		   "[set k=big too_large=1500][incr k=n noreply]"
		   "[ms k=k v=abc][mg k=k][CLIENT_ERROR bad data chunk]"
		   "[ERROR][mn]");
	for (size_t chunk = 1; chunk < 64; chunk++) {
		feed(in, len, chunk, split, sizeof(split));
		assert_string_equal(split, whole);
	}
}

static void
test_pxcached_proto_value_spans_reads(void **state)
{
	struct mc_parser p;
	struct mc_req req;
	char in[600];
	size_t hdr;

	hdr = (size_t)snprintf(in, sizeof(in), "set k 0 0 500\r\n");
	memset(in + hdr, 'z', 500);
	memcpy(in + hdr + 500, "\r\n", 2);

	mc_parser_init(&p, T_ITEM_MAX, T_LINE_MAX, T_KEY_LINE_MAX);
	assert_int_equal(mc_parse(&p, in, hdr + 100, &req), MC_PARSE_AGAIN);
	assert_int_equal(req.consumed, 0);
	assert_int_equal(p.need, hdr + 502);
	/* Everything but the final LF: still waiting. */
	assert_int_equal(mc_parse(&p, in, hdr + 501, &req), MC_PARSE_AGAIN);
	assert_int_equal(mc_parse(&p, in, hdr + 502, &req), MC_PARSE_REQ);
	assert_int_equal(req.vlen, 500);
	assert_ptr_equal(req.value, in + hdr);
	assert_int_equal(req.consumed, hdr + 502);
}

/* A value over the limit is dropped as it arrives, never buffered. */
static void
test_pxcached_proto_too_large_is_swallowed(void **state)
{
	struct mc_parser p;
	struct mc_req req;
	const char *hdr = "set k 0 0 5000 noreply\r\n";
	char chunk[1000];

	memset(chunk, 'q', sizeof(chunk));
	mc_parser_init(&p, T_ITEM_MAX, T_LINE_MAX, T_KEY_LINE_MAX);
	assert_int_equal(mc_parse(&p, hdr, strlen(hdr), &req), MC_PARSE_REQ);
	assert_true(req.too_large);
	assert_true(req.noreply);
	assert_int_equal(req.consumed, strlen(hdr));
	for (int i = 0; i < 5; i++) {
		assert_int_equal(mc_parse(&p, chunk, sizeof(chunk), &req),
				 MC_PARSE_AGAIN);
		assert_int_equal(req.consumed, sizeof(chunk));
	}
	/* The CRLF of the value, then the next command in the same read. */
	assert_int_equal(mc_parse(&p, "\r\nget k\r\n", 9, &req), MC_PARSE_REQ);
	assert_int_equal(req.cmd, MC_CMD_GET);
	assert_int_equal(req.consumed, 9);
	assert_int_equal(p.swallow, 0);
}

static void
test_pxcached_proto_long_keys_refused(void **state)
{
	char in[1024], want[64];
	char key[252];

	memset(key, 'k', 251);
	key[251] = '\0';
	snprintf(want, sizeof(want), "[%s]", ERR_FORMAT);
	snprintf(in, sizeof(in), "get a %s\r\n", key);
	expect(in, want);
	snprintf(in, sizeof(in), "delete %s\r\n", key);
	expect(in, want);
	snprintf(in, sizeof(in), "mg %s v\r\n", key);
	expect(in, want);
	/* A refused storage line leaves its data to be read as a command. */
	snprintf(in, sizeof(in), "set %s 0 0 1\r\nx\r\n", key);
	snprintf(want, sizeof(want), "[%s][ERROR]", ERR_FORMAT);
	expect(in, want);
	/* 250 bytes is fine. */
	key[250] = '\0';
	snprintf(in, sizeof(in), "touch %s 1\r\n", key);
	feed(in, strlen(in), 0, want, sizeof(want));
	assert_non_null(strstr(want, "[touch k=kkk"));
}

/* Lengths near 2^31, 2^32 and 2^64 are refused, never truncated. */
static void
test_pxcached_proto_malformed_lengths(void **state)
{
	static const char *const bad[] = {
	    "-1",
	    "2147483646",
	    "4294967297",
	    "4294967296",
	    "18446744073709551615",
	    "18446744073709551617",
	    "99999999999999999999999999",
	    "1x",
	    "",
	    "++1", /* memcached takes "+1" (strtol) */
	    " "};
	char in[128], want[128];

	snprintf(want, sizeof(want), "[%s][ERROR]", ERR_FORMAT);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (!bad[i][0] || bad[i][0] == ' ')
			continue;
		snprintf(in, sizeof(in), "set k 0 0 %s\r\nx\r\n", bad[i]);
		expect(in, want);
	}
	expect("set k 0 0\r\n", "[ERROR]");
	expect("ms k 4294967298\r\nhi\r\n",
	       "[CLIENT_ERROR bad command line format][ERROR]");
	expect("set k 4294967296 0 1\r\nx\r\n",
	       "[CLIENT_ERROR bad command line format][ERROR]");
	expect("set k 0 2147483648 1\r\nx\r\n",
	       "[CLIENT_ERROR bad command line format][ERROR]");
	/* The largest length accepted is over the item limit: dropped. */
	expect("set k 0 0 2147483645\r\n", "[set k=k too_large=2147483645]");
}

static void
test_pxcached_proto_overlong_line_closes(void **state)
{
	char in[T_KEY_LINE_MAX + 100], out[256];

	memset(in, 'x', T_LINE_MAX + 1);
	feed(in, T_LINE_MAX + 1, 0, out, sizeof(out));
	assert_string_equal(out, "[CLIENT_ERROR line too long close]");
	/* Just under the bound: waits for the newline. */
	feed(in, T_LINE_MAX, 0, out, sizeof(out));
	assert_string_equal(out, "");
	/* A long multiget is allowed up to its own bound... */
	memcpy(in, "get ", 4);
	for (size_t i = 4; i < T_KEY_LINE_MAX - 2; i++)
		in[i] = i % 10 ? 'k' : ' ';
	memcpy(in + T_KEY_LINE_MAX - 2, "\r\n", 2);
	feed(in, T_KEY_LINE_MAX, 0, out, sizeof(out));
	assert_true(strncmp(out, "[get keys=", 10) == 0);
	/* ...but not past it. */
	memset(in + T_KEY_LINE_MAX - 2, 'k', 50);
	feed(in, T_KEY_LINE_MAX + 48, 0, out, sizeof(out));
	assert_string_equal(out, "[CLIENT_ERROR line too long close]");
}

static void
test_pxcached_proto_bad_data_chunk(void **state)
{
	expect("set a 0 0 1\r\nxyz\r\nget a\r\n",
	       "[CLIENT_ERROR bad data chunk][ERROR][get keys=a]");
	expect("set a 0 0 1 noreply\r\nxyz\r\n",
	       "[CLIENT_ERROR bad data chunk noreply][ERROR]");
}

static void
test_pxcached_proto_noreply(void **state)
{
	expect("set a 0 0 1 noreply\r\nx\r\n", "[set k=a v=x noreply]");
	/* Any other sixth word is ignored, as memcached does. */
	expect("set a 0 0 1 bogus\r\nx\r\n", "[set k=a v=x]");
	expect("set a 0 0 1 noreply extra\r\nx\r\n", "[ERROR][ERROR]");
	expect("delete a noreply\r\ndelete a 0\r\ndelete a 0 noreply\r\n",
	       "[delete k=a noreply][delete k=a][delete k=a noreply]");
	expect("flush_all noreply\r\nflush_all 10 noreply\r\n",
	       "[flush_all noreply][flush_all noreply]");
}

static void
test_pxcached_proto_simple_errors(void **state)
{
	expect("bogus\r\n\r\nGET a\r\nget\r\ngets\r\n",
	       "[ERROR][ERROR][ERROR][ERROR][ERROR]");
	expect("incr a x\r\nincr a -1\r\nincr a\r\n",
	       "[CLIENT_ERROR invalid numeric delta argument]"
	       "[CLIENT_ERROR invalid numeric delta argument][ERROR]");
	expect("touch a x\r\ngat x a\r\nflush_all x\r\n",
	       "[CLIENT_ERROR invalid exptime argument]"
	       "[CLIENT_ERROR invalid exptime argument]"
	       "[CLIENT_ERROR invalid exptime argument]");
	expect("delete a 5\r\n", "[CLIENT_ERROR bad command line format.  "
				 "Usage: delete <key> [noreply]]");
	expect("verbosity\r\nverbosity x\r\nverbosity 1 2 3\r\n",
	       "[ERROR][CLIENT_ERROR bad command line format][ERROR]");
	expect("cas a 0 0 1\r\nx\r\n", "[ERROR][ERROR]");
	expect("cas a 0 0 1 abc\r\nx\r\n",
	       "[CLIENT_ERROR bad command line format][ERROR]");
}

static void
test_pxcached_proto_admin_commands(void **state)
{
	struct mc_parser p;
	struct mc_req req;

	expect("version\r\nversion x\r\nstats\r\nstats settings\r\nquit\r\n",
	       "[version][version][stats][stats][quit]");
	mc_parser_init(&p, T_ITEM_MAX, T_LINE_MAX, T_KEY_LINE_MAX);
	mc_parse(&p, "stats  settings \r\n", 18, &req);
	assert_int_equal(req.args_len, 9);
	assert_memory_equal(req.args, "settings ", 9);
	mc_parse(&p, "quit\r\n", 6, &req);
	assert_true(req.close);
	mc_parse(&p, "flush_all -1\r\n", 14, &req);
	assert_int_equal(req.cmd, MC_CMD_FLUSH_ALL);
	assert_int_equal(req.delay, -1);
	mc_parse(&p, "verbosity 3 noreply\r\n", 21, &req);
	assert_int_equal(req.level,
			 MC_VERBOSITY_MAX); /* lowered, as memcached */
	assert_true(req.noreply);
	/* memcached reads the first argument only, and takes a '+'. */
	mc_parse(&p, "verbosity +1 2\r\n", 16, &req);
	assert_int_equal(req.cmd, MC_CMD_VERBOSITY);
	assert_int_equal(req.level, 1);
	assert_false(req.noreply);
	mc_parse(&p, "cache_memlimit 64 noreply\r\n", 27, &req);
	assert_int_equal(req.cmd, MC_CMD_MEMLIMIT);
	assert_int_equal(req.level, 64);
	assert_true(req.noreply);
	mc_parse(&p, "cache_memlimit 99999999999\r\n", 28, &req);
	assert_int_equal(req.level, UINT32_MAX);
	mc_parse(&p, "cache_memlimit x\r\n", 18, &req);
	assert_int_equal(req.cmd, MC_CMD_ERROR);
	assert_string_equal(req.error, "ERROR");
	/* gat with an exptime and no key answers END, as memcached. */
	mc_parse(&p, "gat 10\r\n", 8, &req);
	assert_int_equal(req.cmd, MC_CMD_GAT);
	assert_int_equal(req.keys_len, 0);
	mc_parse(&p, "gats x\r\n", 8, &req);
	assert_string_equal(req.error, "CLIENT_ERROR invalid exptime argument");
	/* memccapable sends this one and expects silence. */
	mc_parse(&p, "verbosity noreply\r\n", 19, &req);
	assert_int_equal(req.cmd, MC_CMD_VERBOSITY);
	assert_true(req.noreply);
	assert_true(req.keep_level);
	mc_parse(&p, "maxconns 42\r\n", 13, &req);
	assert_int_equal(req.cmd, MC_CMD_MAXCONNS);
	assert_int_equal(req.level, 42);
	assert_false(req.noreply);
	assert_false(req.keep_level);
	mc_parse(&p, "maxconns x\r\n", 12, &req);
	assert_int_equal(req.cmd, MC_CMD_ERROR);
}

static void
test_pxcached_proto_key_iteration(void **state)
{
	struct mc_parser p;
	struct mc_req req;
	const char *in = "gat 30  k1 k22   k333 \r\n", *cur, *k, *end;
	size_t nk, count = 0;

	mc_parser_init(&p, T_ITEM_MAX, T_LINE_MAX, T_KEY_LINE_MAX);
	assert_int_equal(mc_parse(&p, in, strlen(in), &req), MC_PARSE_REQ);
	assert_int_equal(req.cmd, MC_CMD_GAT);
	assert_int_equal(req.exptime, 30);
	cur = req.keys;
	end = req.keys + req.keys_len;
	while (mc_key_next(&cur, end, &k, &nk)) {
		count++;
		assert_int_equal(nk, count + 1);
		assert_int_equal(k[0], 'k');
	}
	assert_int_equal(count, 3);
}

static void
test_pxcached_proto_meta_flags(void **state)
{
	struct mc_parser p;
	struct mc_req req;
	const char *in = "mg foo s v t f c k Oab T30 q\r\n";

	mc_parser_init(&p, T_ITEM_MAX, T_LINE_MAX, T_KEY_LINE_MAX);
	assert_int_equal(mc_parse(&p, in, strlen(in), &req), MC_PARSE_REQ);
	assert_int_equal(req.cmd, MC_CMD_MG);
	assert_int_equal(req.meta.norder, 9);
	assert_memory_equal(req.meta.order, "svtfckOTq", 9);
	assert_true(mc_meta_has(&req.meta, 'O'));
	assert_false(mc_meta_has(&req.meta, 'E'));
	assert_int_equal(req.meta.nopaque, 2);
	assert_memory_equal(req.meta.opaque, "ab", 2);
	assert_int_equal(req.meta.ttl, 30);

	in = "ma cnt N0 J10 MD D3 v\r\n";
	assert_int_equal(mc_parse(&p, in, strlen(in), &req), MC_PARSE_REQ);
	assert_int_equal(req.meta.mode, MC_MODE_DECR);
	assert_int_equal(req.meta.delta, 3);
	assert_int_equal(req.meta.initial, 10);
	assert_int_equal(req.meta.vivify_ttl, 0);
	assert_true(mc_meta_has(&req.meta, 'N'));

	in = "ms k 2 MA C99 F7\r\nhi\r\n";
	assert_int_equal(mc_parse(&p, in, strlen(in), &req), MC_PARSE_REQ);
	assert_int_equal(req.meta.mode, MC_MODE_APPEND);
	assert_int_equal(req.meta.cas_cmp, 99);
	assert_int_equal(req.meta.client_flags, 7);
	assert_int_equal(req.vlen, 2);
}

static void
test_pxcached_proto_meta_errors(void **state)
{
	expect("mg\r\nmg k v v\r\nmg k zz\r\nmg k -\r\n",
	       "[ERROR][CLIENT_ERROR duplicate flag][CLIENT_ERROR invalid "
	       "flag][CLIENT_ERROR invalid flag]");
	expect("mg k O123456789012345678901234567890123\r\n",
	       "[CLIENT_ERROR opaque token too long]");
	expect("mg k Tx\r\nma k Dx\r\nma k Mx\r\n",
	       "[CLIENT_ERROR bad token in command line format]"
	       "[CLIENT_ERROR invalid or duplicate flag]"
	       "[CLIENT_ERROR invalid mode for ma M token]");
	/* memcached's ma and md name every flag fault the same way. */
	expect("ma k v v\r\nma k 1\r\nma k MII\r\nmd k q q\r\nmd k -\r\n",
	       "[CLIENT_ERROR invalid or duplicate flag]"
	       "[CLIENT_ERROR invalid or duplicate flag]"
	       "[CLIENT_ERROR invalid or duplicate flag]"
	       "[CLIENT_ERROR invalid or duplicate flag]"
	       "[CLIENT_ERROR invalid or duplicate flag]");
	/* ... letters memcached does not know too (z, E, x) ... */
	expect("ma k z\r\nmd k E\r\nmd k x\r\nmg k z\r\n",
	       "[CLIENT_ERROR invalid or duplicate flag]"
	       "[CLIENT_ERROR invalid or duplicate flag]"
	       "[CLIENT_ERROR invalid or duplicate flag]"
	       "[CLIENT_ERROR invalid flag]");
	/* ... but the letters only pxcached refuses keep their own words. */
	expect("md k C1\r\nma k b\r\n",
	       "[CLIENT_ERROR invalid flag][CLIENT_ERROR invalid flag]");
	/*
	 * memcached reads every flag word before it says a bad number: a
	 * duplicate further on wins, the last bad number is said, then a
	 * bad mode, and a too long opaque last.
	 */
	expect("mg k T T\r\nmg k Tx v v\r\nmg k \x80\r\n"
	       "ms k 1 MXX Tx\r\na\r\nms k 1 Tx MXX\r\na\r\n"
	       "ms k 1 Tx Fx\r\na\r\nms k 1 Fx\r\na\r\n"
	       "ms k 1 MX Tx\r\na\r\nma k O123456789012345678901234567890123 "
	       "MX\r\nms k 1 O123456789012345678901234567890123 MX\r\na\r\n",
	       "[CLIENT_ERROR duplicate flag][CLIENT_ERROR duplicate flag]"
	       "[CLIENT_ERROR duplicate flag]"
	       "[CLIENT_ERROR bad token in command line format]"
	       "[CLIENT_ERROR incorrect length for M token]"
	       "[CLIENT_ERROR bad token in command line format]"
	       "[CLIENT_ERROR bad command line format]"
	       "[CLIENT_ERROR bad token in command line format]"
	       "[CLIENT_ERROR invalid mode for ma M token]"
	       "[CLIENT_ERROR invalid mode for ms M token]");
	/* The opaque word is 32 bytes at most, its O included. */
	expect("mg k O1234567890123456789012345678901\r\n"
	       "mg k O12345678901234567890123456789012\r\n",
	       "[mg k=k][CLIENT_ERROR opaque token too long]");
	/* Mode words: one upper-case letter. */
	expect("ms k 1 MSS\r\nz\r\nms k 1 Ms\r\nz\r\nma k Mi\r\n",
	       "[CLIENT_ERROR incorrect length for M token]"
	       "[CLIENT_ERROR invalid mode for ms M token]"
	       "[CLIENT_ERROR invalid mode for ma M token]");
	/* noreply in a required argument's place: its error is silent. */
	expect("incr k noreply\r\ntouch k noreply\r\nset k 0 0 noreply\r\n"
	       "delete noreply\r\n",
	       "[CLIENT_ERROR invalid numeric delta argument noreply]"
	       "[CLIENT_ERROR invalid exptime argument noreply]"
	       "[CLIENT_ERROR bad command line format noreply][delete "
	       "k=noreply]");
	/* A NUL ends the line, as memcached reads it; the value is data. */
	expect_n("get a\0 b\r\nset k\0 x\r\nset k 0 0 3\0\r\na\0b\r\n", 39,
		 "[get keys=a][ERROR][set k=k v=a]");
	expect("ms\r\nshutdown\r\nshutdown graceful noreply\r\n",
	       "[ERROR][ERROR: shutdown not enabled]"
	       "[ERROR: shutdown not enabled]");
	/* A bad flag on ms still consumes the value. */
	expect("ms k 2 MX\r\nzz\r\nms k 2 Z\r\nzz\r\nmn\r\n",
	       "[CLIENT_ERROR invalid mode for ms M token]"
	       "[CLIENT_ERROR invalid flag][mn]");
	/* Without a usable length it cannot. */
	expect("ms k\r\nms k abc\r\nhi\r\n",
	       "[CLIENT_ERROR bad command line format]"
	       "[CLIENT_ERROR bad command line format][ERROR]");
	expect("ms k 2 Fx\r\nhi\r\n", "[CLIENT_ERROR bad command line format]");
}

static void
test_pxcached_proto_numbers(void **state)
{
	uint64_t u;
	int64_t i;

	assert_int_equal(mc_parse_u64("18446744073709551615", 20, &u), 0);
	assert_true(u == UINT64_MAX);
	assert_int_equal(mc_parse_u64("18446744073709551616", 20, &u), -1);
	assert_int_equal(mc_parse_u64("", 0, &u), -1);
	assert_int_equal(mc_parse_u64("1 ", 2, &u), -1);
	assert_int_equal(mc_parse_i64("-9223372036854775807", 20, &i), 0);
	assert_true(i == -INT64_MAX);
	assert_int_equal(mc_parse_i64("9223372036854775808", 19, &i), -1);
	assert_int_equal(mc_parse_i64("-", 1, &i), -1);
	/* strtol takes one '+'; a second sign or a bare '+' is no number. */
	assert_int_equal(mc_parse_i64("+12", 3, &i), 0);
	assert_true(i == 12);
	assert_int_equal(mc_parse_i64("+", 1, &i), -1);
	assert_int_equal(mc_parse_i64("+-1", 3, &i), -1);
	assert_int_equal(mc_parse_i64("-+1", 3, &i), -1);
}

/* Every number word memcached reads with strtoul/strtol may carry a '+'. */
static void
test_pxcached_proto_plus_numbers(void **state)
{
	struct mc_parser p;
	struct mc_req req;
	const char *in = "cas k +3 +10 +2 +77 noreply\r\nhi\r\n";

	mc_parser_init(&p, T_ITEM_MAX, T_LINE_MAX, T_KEY_LINE_MAX);
	assert_int_equal(mc_parse(&p, in, strlen(in), &req), MC_PARSE_REQ);
	assert_int_equal(req.cmd, MC_CMD_CAS);
	assert_int_equal(req.flags, 3);
	assert_int_equal(req.exptime, 10);
	assert_int_equal(req.vlen, 2);
	assert_true(req.cas == 77);
	in = "incr k +5\r\n";
	assert_int_equal(mc_parse(&p, in, strlen(in), &req), MC_PARSE_REQ);
	assert_true(req.delta == 5);
	in = "ma k D+4 J+6 N+7\r\n";
	assert_int_equal(mc_parse(&p, in, strlen(in), &req), MC_PARSE_REQ);
	assert_true(req.meta.delta == 4 && req.meta.initial == 6);
	assert_int_equal(req.meta.vivify_ttl, 7);
	expect("incr k ++5\r\nverbosity ++1\r\nset k + 0 1\r\n",
	       "[CLIENT_ERROR invalid numeric delta argument]"
	       "[CLIENT_ERROR bad command line format]"
	       "[CLIENT_ERROR bad command line format]");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pxcached_proto_get_set_pipeline),
	    cmocka_unit_test(test_pxcached_proto_fields),
	    cmocka_unit_test(test_pxcached_proto_split_at_any_byte),
	    cmocka_unit_test(test_pxcached_proto_value_spans_reads),
	    cmocka_unit_test(test_pxcached_proto_too_large_is_swallowed),
	    cmocka_unit_test(test_pxcached_proto_long_keys_refused),
	    cmocka_unit_test(test_pxcached_proto_malformed_lengths),
	    cmocka_unit_test(test_pxcached_proto_overlong_line_closes),
	    cmocka_unit_test(test_pxcached_proto_bad_data_chunk),
	    cmocka_unit_test(test_pxcached_proto_noreply),
	    cmocka_unit_test(test_pxcached_proto_simple_errors),
	    cmocka_unit_test(test_pxcached_proto_admin_commands),
	    cmocka_unit_test(test_pxcached_proto_key_iteration),
	    cmocka_unit_test(test_pxcached_proto_meta_flags),
	    cmocka_unit_test(test_pxcached_proto_meta_errors),
	    cmocka_unit_test(test_pxcached_proto_numbers),
	    cmocka_unit_test(test_pxcached_proto_plus_numbers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
