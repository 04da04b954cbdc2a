/* SPDX-License-Identifier: MIT */
/*
 * The memcached text protocol, request side: an incremental parser that
 * turns the bytes a connection has received into one request at a time.
 *
 * The parser keeps no copy of the input.  The caller hands it everything
 * received and not yet consumed; it answers with a request whose strings
 * point into that input (valid until the caller drops the consumed bytes),
 * or says how many more bytes it needs.  Input may be split at any byte:
 * an incomplete line or value is simply parsed again when more arrives.
 * The only state kept between calls is the count of bytes still to drop
 * after an oversized value, so a value larger than the item limit never
 * has to be held in memory.
 *
 * Malformed requests become MC_CMD_ERROR requests carrying memcached's
 * reply ("ERROR", "CLIENT_ERROR <reason>"), in order with the others, so a
 * pipelined batch is answered in order.  Only an overlong line without a
 * newline closes the connection.
 */
#ifndef PXCACHED_PROTO_H
#define PXCACHED_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* memcached's key limit; keys are also bounded by the cache's. */
#define MC_KEY_MAX 250
/* Longest opaque word of a meta command, its O included, as memcached. */
#define MC_OPAQUE_MAX 32
/* Most flags one meta command may carry (each letter at most once). */
#define MC_META_MAX_FLAGS 24
/* Most words in a command that is not a key list (memcached's limit). */
#define MC_MAX_TOKENS 24
/* memcached's highest verbosity: larger levels are lowered to it. */
#define MC_VERBOSITY_MAX 2
/* memcached's bounds of cache_memlimit, in MiB (protocol constants). */
#define MC_MEMLIMIT_MIN_MB 8
#define MC_MEMLIMIT_MAX_MB 1000000000

enum mc_cmd {
	MC_CMD_GET = 0,
	MC_CMD_GETS,
	MC_CMD_GAT,
	MC_CMD_GATS,
	MC_CMD_SET,
	MC_CMD_ADD,
	MC_CMD_REPLACE,
	MC_CMD_APPEND,
	MC_CMD_PREPEND,
	MC_CMD_CAS,
	MC_CMD_DELETE,
	MC_CMD_INCR,
	MC_CMD_DECR,
	MC_CMD_TOUCH,
	MC_CMD_FLUSH_ALL,
	MC_CMD_VERSION,
	MC_CMD_VERBOSITY,
	MC_CMD_MAXCONNS, /* pxcached's own: maxconns N, the live -c */
	MC_CMD_MEMLIMIT, /* cache_memlimit <MiB> [noreply] */
	MC_CMD_QUIT,
	MC_CMD_STATS,
	MC_CMD_MG,
	MC_CMD_MS,
	MC_CMD_MD,
	MC_CMD_MA,
	MC_CMD_MN,
	MC_CMD_ERROR, /* a malformed request: reply with req->error */
	MC_CMD_COUNT
};

enum mc_parse_rc {
	MC_PARSE_AGAIN = 0, /* incomplete: call again with more input */
	MC_PARSE_REQ,       /* a request is ready in *req */
};

/* Modes of ms (M token) and ma (M token). */
enum mc_meta_mode {
	MC_MODE_SET = 0,
	MC_MODE_ADD,
	MC_MODE_APPEND,
	MC_MODE_PREPEND,
	MC_MODE_REPLACE,
	MC_MODE_INCR,
	MC_MODE_DECR,
};

/* Index of a meta flag letter in mc_meta.present: A-Z then a-z. */
#define MC_META_BIT(c)                                \
	((c) >= 'a' ? (uint64_t)1 << ((c) - 'a' + 26) \
		    : (uint64_t)1 << ((c) - 'A'))

/*
 * The flags of a meta command.  @order keeps the letters in the order the
 * client sent them: return flags are echoed in that order, as memcached
 * does.  Numeric tokens are parsed and range checked here.
 */
struct mc_meta {
	uint64_t present;
	char order[MC_META_MAX_FLAGS];
	uint8_t norder;
	uint8_t nopaque;
	const char *opaque; /* O: echoed back verbatim */
	int64_t ttl;        /* T: new TTL (memcached exptime) */
	int64_t vivify_ttl; /* N: ma creates a missing key with this TTL */
	uint64_t cas_cmp;   /* C: compare and swap against this CAS */
	uint64_t delta;     /* D: ma delta, default 1 */
	uint64_t initial;   /* J: ma initial value when vivifying, default 0 */
	uint32_t client_flags;  /* F: ms client flags */
	enum mc_meta_mode mode; /* M: ms/ma mode */
};

/*
 * One parsed request.  Pointers refer to the input passed to mc_parse()
 * and stay valid until the caller drops req->consumed bytes of it.
 */
struct mc_req {
	enum mc_cmd cmd;
	bool noreply;   /* the client asked for no reply */
	bool close;     /* close the connection after this reply */
	bool too_large; /* storage: value over the limit; it is being dropped */
	const char *error; /* MC_CMD_ERROR: the reply line, without CRLF */
	const char *key;   /* single-key commands */
	size_t nkey;
	const char *keys; /* get/gets/gat/gats: the key list, see mc_key_next */
	size_t keys_len;
	uint32_t flags;    /* storage: client flags */
	int64_t exptime;   /* storage, touch, gat: memcached exptime */
	uint64_t cas;      /* cas: the unique to compare */
	uint64_t delta;    /* incr/decr */
	int64_t delay;     /* flush_all */
	uint32_t level;    /* verbosity, maxconns, cache_memlimit (MiB) */
	bool keep_level;   /* verbosity without a level: change nothing */
	const char *value; /* storage: vlen bytes of data */
	size_t vlen;
	const char *args; /* stats: the words after "stats" */
	size_t args_len;
	struct mc_meta meta;
	size_t consumed; /* bytes of input this request used */
};

/* Limits and the little state the parser keeps between calls. */
struct mc_parser {
	size_t item_max;     /* largest value accepted (-I) */
	size_t line_max;     /* longest command line */
	size_t key_line_max; /* longest get/gets/gat/gats line */
	uint64_t swallow;    /* bytes of an oversized value still to drop */
	size_t need;         /* after AGAIN: bytes needed in all, 0 unknown */
};

/*
 * mc_parser_init - set the limits of a parser.
 * @item_max: the largest value, in bytes, a storage command may carry
 * @line_max: the longest command line without its newline
 * @key_line_max: the same for key lists (get and friends), >= @line_max
 */
void mc_parser_init(struct mc_parser *p, size_t item_max, size_t line_max,
		    size_t key_line_max);

/*
 * mc_parse - parse the next request from the input.
 * @p:   the parser of this connection
 * @buf: the received bytes not yet consumed
 * @len: their count
 * @req: filled when MC_PARSE_REQ is returned
 *
 * Returns MC_PARSE_REQ with req->consumed bytes used; or MC_PARSE_AGAIN
 * when the input ends inside a line or value.  AGAIN may still consume
 * bytes (of an oversized value being dropped): req->consumed says how
 * many, and p->need how many bytes the next request needs in all when
 * known (so the caller can size its buffer), else 0.  Never fails.
 */
enum mc_parse_rc
mc_parse(struct mc_parser *p, const char *buf, size_t len, struct mc_req *req);

/*
 * mc_key_next - walk the key list of a get-like request.
 * @cur: in/out cursor, starts at req->keys
 * @end: req->keys + req->keys_len
 *
 * Returns true with the next key in *key / *nkey, false at the end.  The
 * parser has already checked every key's length.
 */
bool
mc_key_next(const char **cur, const char *end, const char **key, size_t *nkey);

/* mc_cmd_name - the command word of @cmd ("get", "ms"...), for logs. */
const char *mc_cmd_name(enum mc_cmd cmd);

/* mc_meta_has - whether meta flag letter @c was given. */
static inline bool
mc_meta_has(const struct mc_meta *m, char c)
{
	return (m->present & MC_META_BIT(c)) != 0;
}

/*
 * mc_parse_u64 - strict decimal parse: digits only, no sign, no overflow.
 * Returns 0 and *out, or -1.  Exposed for the handlers (incr values).
 */
int mc_parse_u64(const char *s, size_t n, uint64_t *out);

/*
 * mc_parse_i64 - the same, with an optional leading '-' or '+' (as
 * strtol reads it).
 */
int mc_parse_i64(const char *s, size_t n, int64_t *out);

#endif
