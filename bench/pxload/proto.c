// SPDX-License-Identifier: MIT
/*
 * memcached text protocol: request formatting and an incremental reply
 * parser (see proto.h).  A get reply is complete only with its END line,
 * so the caller always sees whole replies and never keeps parser state.
 */
#include <errno.h>
#include <string.h>

#include "../../apps/common/fmt.h"
#include "proto.h"

struct word {
	const char *s;
	enum mc_kind kind;
};

/* Status lines, matched as the whole line or as the line's first word. */
static const struct word mc_status[] = {
    {"STORED", MC_STORED},
    {"NOT_STORED", MC_NOT_STORED},
    {"EXISTS", MC_NOT_STORED},
    {"NOT_FOUND", MC_NOT_STORED},
    {"END", MC_MISS},
    {"ERROR", MC_ERROR},
    {"CLIENT_ERROR", MC_CLIENT_ERROR},
    {"SERVER_ERROR", MC_SERVER_ERROR},
};

/* Length of the line at @buf without its CRLF, or -1 when incomplete. */
static long
line_len(const char *buf, size_t len)
{
	const char *nl = memchr(buf, '\n', len);

	if (!nl)
		return -1;
	if (nl > buf && nl[-1] == '\r')
		nl--;
	return nl - buf;
}

static size_t
line_end(const char *buf, long n)
{
	return (size_t)n + (buf[n] == '\r' ? 2 : 1);
}

static enum mc_kind
status_kind(const char *line, long n)
{
	size_t i, w;

	for (i = 0; i < sizeof(mc_status) / sizeof(mc_status[0]); i++) {
		w = strlen(mc_status[i].s);
		if ((size_t)n < w || memcmp(line, mc_status[i].s, w) != 0)
			continue;
		if ((size_t)n == w || line[w] == ' ')
			return mc_status[i].kind;
	}
	return MC_OTHER;
}

/* Skips one word and the spaces after it; returns the new index. */
static long
skip_word(const char *line, long i, long n)
{
	while (i < n && line[i] != ' ')
		i++;
	while (i < n && line[i] == ' ')
		i++;
	return i;
}

/* Parses the byte count of "VALUE <key> <flags> <bytes>[ <cas>]". */
static int
value_bytes(const char *line, long n, uint32_t *bytes)
{
	long i = 0;
	uint64_t v = 0;
	int field, digits = 0;

	for (field = 0; field < 3; field++)
		i = skip_word(line, i, n);
	for (; i < n && line[i] >= '0' && line[i] <= '9'; i++, digits++) {
		v = v * 10 + (uint64_t)(line[i] - '0');
		if (v > UINT32_MAX)
			return -EPROTO;
	}
	if (digits == 0 || (i < n && line[i] != ' '))
		return -EPROTO;
	*bytes = (uint32_t)v;
	return 0;
}

/* Parses VALUE blocks up to END; @buf starts at the first VALUE line. */
static int
parse_values(const char *buf, size_t len, struct mc_reply *out)
{
	size_t off = 0;
	uint32_t bytes;
	long n;

	out->kind = MC_HIT;
	out->nvalues = 0;
	for (;;) {
		n = line_len(buf + off, len - off);
		if (n < 0)
			return len - off > MC_LINE_MAX ? -EPROTO : 0;
		if (n == 3 && memcmp(buf + off, "END", 3) == 0)
			return (int)(off + line_end(buf + off, n));
		if (n < 6 || memcmp(buf + off, "VALUE ", 6) != 0 ||
		    value_bytes(buf + off, n, &bytes) < 0)
			return -EPROTO;
		off += line_end(buf + off, n);
		if (len - off < (size_t)bytes + 2)
			return 0;
		if (memcmp(buf + off + bytes, "\r\n", 2) != 0)
			return -EPROTO;
		off += (size_t)bytes + 2;
		out->value_len = bytes;
		out->nvalues++;
	}
}

int
mc_parse_reply(const char *buf, size_t len, struct mc_reply *out)
{
	long n = line_len(buf, len);

	if (n < 0)
		return len > MC_LINE_MAX ? -EPROTO : 0;
	if (n > MC_LINE_MAX)
		return -EPROTO;
	out->value_len = 0;
	out->nvalues = 0;
	if (n >= 6 && memcmp(buf, "VALUE ", 6) == 0)
		return parse_values(buf, len, out);
	out->kind = status_kind(buf, n);
	return (int)line_end(buf, n);
}

static size_t
put_str(char *dst, const char *s)
{
	size_t n = strlen(s);

	memcpy(dst, s, n);
	return n;
}

size_t
mc_format_get(char *dst, const char *prefix, uint64_t id)
{
	size_t n = 0;

	n += put_str(dst + n, "get ");
	n += put_str(dst + n, prefix);
	n += fmt_u64(dst + n, id);
	n += put_str(dst + n, "\r\n");
	return n;
}

size_t
mc_format_set(char *dst, const char *prefix, uint64_t id, const char *value,
	      uint32_t vlen, int noreply)
{
	size_t n = 0;

	n += put_str(dst + n, "set ");
	n += put_str(dst + n, prefix);
	n += fmt_u64(dst + n, id);
	n += put_str(dst + n, " 0 0 ");
	n += fmt_u64(dst + n, vlen);
	if (noreply)
		n += put_str(dst + n, " noreply");
	n += put_str(dst + n, "\r\n");
	memcpy(dst + n, value, vlen);
	n += vlen;
	n += put_str(dst + n, "\r\n");
	return n;
}

size_t
mc_set_size(const char *prefix, uint32_t vlen)
{
	return strlen(prefix) + (size_t)vlen + 64;
}

void
mc_fill_value(char *dst, uint32_t len, uint64_t seed)
{
	static const char alphabet[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	uint32_t i;

	for (i = 0; i < len; i++) {
		seed = seed * UINT64_C(6364136223846793005) +
		       UINT64_C(1442695040888963407);
		dst[i] = alphabet[(seed >> 33) % (sizeof(alphabet) - 1)];
	}
}
