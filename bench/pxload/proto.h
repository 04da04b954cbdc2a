/* SPDX-License-Identifier: MIT */
/*
 * The few pieces of the memcached text protocol a load generator needs:
 * formatting get and set requests, and parsing replies incrementally
 * from a byte buffer that may end anywhere (in the middle of a line or
 * of a value).  Shared by pxload and replay.  No I/O, no allocation.
 */
#ifndef PXLOAD_PROTO_H
#define PXLOAD_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* The longest reply line accepted (memcached keys are <= 250 bytes). */
#define MC_LINE_MAX CONFIG_PX_PXLOAD_LINE_MAX
/* The longest key pxload builds: prefix + 20 digits. */
#define MC_KEY_MAX 250

enum mc_kind {
	MC_HIT,          /* VALUE ... END: one value */
	MC_MISS,         /* END alone */
	MC_STORED,       /* STORED */
	MC_NOT_STORED,   /* NOT_STORED, EXISTS, NOT_FOUND */
	MC_ERROR,        /* ERROR */
	MC_CLIENT_ERROR, /* CLIENT_ERROR reason */
	MC_SERVER_ERROR, /* SERVER_ERROR reason */
	MC_OTHER,        /* a well-formed line we did not expect */
};

struct mc_reply {
	enum mc_kind kind;
	uint32_t value_len; /* MC_HIT: bytes of the value */
	uint32_t nvalues;   /* MC_HIT: VALUE blocks before END */
};

/*
 * mc_parse_reply - parse the reply at the start of @buf.
 * @buf, @len: received bytes, not NUL terminated
 * @out:       the reply, on success
 *
 * Returns the bytes the reply takes (> 0), 0 when @buf holds only part of
 * a reply (call again with more bytes), or -EPROTO when the bytes cannot
 * be a reply (no newline within MC_LINE_MAX, a bad VALUE line, a value not
 * followed by CRLF): the stream cannot be resynchronised.
 */
int mc_parse_reply(const char *buf, size_t len, struct mc_reply *out);

/*
 * Formats "get <prefix><id>\r\n" into @dst (room for at least
 * MC_KEY_MAX + 8 bytes).  Returns the length written.
 */
size_t mc_format_get(char *dst, const char *prefix, uint64_t id);

/*
 * Formats "set <prefix><id> 0 0 <vlen>[ noreply]\r\n<value>\r\n" into
 * @dst, which needs mc_set_size(prefix, vlen) bytes.  Returns the length.
 */
size_t mc_format_set(char *dst, const char *prefix, uint64_t id,
		     const char *value, uint32_t vlen, int noreply);

/* Upper bound of the bytes mc_format_set() writes. */
size_t mc_set_size(const char *prefix, uint32_t vlen);

/* Fills @dst with @len printable bytes that depend on @seed. */
void mc_fill_value(char *dst, uint32_t len, uint64_t seed);

#endif
