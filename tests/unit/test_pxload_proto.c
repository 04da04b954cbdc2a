// SPDX-License-Identifier: MIT
/*
 * Unit tests of the memcached text-protocol pieces shared by pxload and
 * replay (bench/pxload/proto.c, compiled in here): reply parsing at every
 * possible split of the input, error lines, malformed streams, and the
 * exact bytes of the requests.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "../../bench/pxload/proto.c"

/* Parses @s whole, and checks every strict prefix asks for more. */
static int
parse_all_splits(const char *s, struct mc_reply *m)
{
	size_t len = strlen(s), i;
	struct mc_reply tmp;

	for (i = 0; i < len; i++)
		assert_int_equal(mc_parse_reply(s, i, &tmp), 0);
	return mc_parse_reply(s, len, m);
}

static void
test_pxload_proto_status_lines(void **state)
{
	static const struct {
		const char *s;
		enum mc_kind kind;
	} cases[] = {
	    {"STORED\r\n", MC_STORED},
	    {"NOT_STORED\r\n", MC_NOT_STORED},
	    {"EXISTS\r\n", MC_NOT_STORED},
	    {"NOT_FOUND\r\n", MC_NOT_STORED},
	    {"END\r\n", MC_MISS},
	    {"ERROR\r\n", MC_ERROR},
	    {"CLIENT_ERROR bad data chunk\r\n", MC_CLIENT_ERROR},
	    {"SERVER_ERROR out of memory storing object\r\n", MC_SERVER_ERROR},
	    {"DELETED\r\n", MC_OTHER},
	    {"STOREDX\r\n", MC_OTHER},
	};
	struct mc_reply m;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse_all_splits(cases[i].s, &m),
				 strlen(cases[i].s));
		assert_int_equal(m.kind, cases[i].kind);
	}
}

static void
test_pxload_proto_value_reply_needs_its_end(void **state)
{
	const char *s = "VALUE k:1 0 5\r\nab\r\nc\r\nEND\r\n";
	struct mc_reply m;

	assert_int_equal(parse_all_splits(s, &m), strlen(s));
	assert_int_equal(m.kind, MC_HIT);
	assert_int_equal(m.value_len, 5);
	assert_int_equal(m.nvalues, 1);
}

static void
test_pxload_proto_value_with_cas_and_several_values(void **state)
{
	const char *s = "VALUE a 7 3 99\r\nxyz\r\nVALUE b 0 0\r\n\r\nEND\r\n";
	struct mc_reply m;

	assert_int_equal(parse_all_splits(s, &m), strlen(s));
	assert_int_equal(m.kind, MC_HIT);
	assert_int_equal(m.nvalues, 2);
	assert_int_equal(m.value_len, 0);
}

static void
test_pxload_proto_replies_are_taken_one_at_a_time(void **state)
{
	const char *s = "STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\nEND\r\n";
	struct mc_reply m;
	size_t off = 0;
	int n;

	n = mc_parse_reply(s, strlen(s), &m);
	assert_int_equal(n, 8);
	assert_int_equal(m.kind, MC_STORED);
	off += (size_t)n;
	n = mc_parse_reply(s + off, strlen(s) - off, &m);
	assert_int_equal(m.kind, MC_HIT);
	off += (size_t)n;
	n = mc_parse_reply(s + off, strlen(s) - off, &m);
	assert_int_equal(m.kind, MC_MISS);
	assert_int_equal(off + (size_t)n, strlen(s));
}

static void
test_pxload_proto_malformed_streams_are_refused(void **state)
{
	static const char *const bad[] = {
	    "VALUE k 0\r\nEND\r\n",           /* no byte count */
	    "VALUE k 0 abc\r\nEND\r\n",       /* not a number */
	    "VALUE k 0 3\r\nabcd\r\nEND\r\n", /* value longer than said */
	    "VALUE k 0 99999999999\r\n",      /* absurd length */
	    "VALUE k 0 1\r\nx\r\nSTORED\r\n", /* no END */
	};
	char longline[MC_LINE_MAX + 10];
	struct mc_reply m;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(mc_parse_reply(bad[i], strlen(bad[i]), &m),
				 -EPROTO);
	memset(longline, 'A', sizeof(longline));
	assert_int_equal(mc_parse_reply(longline, sizeof(longline), &m),
			 -EPROTO);
	assert_int_equal(mc_parse_reply(longline, MC_LINE_MAX - 1, &m), 0);
}

static void
test_pxload_proto_requests_are_exact(void **state)
{
	char buf[256], value[8];
	size_t n;

	n = mc_format_get(buf, "p:", 18446744073709551615ull);
	assert_int_equal(n, strlen("get p:18446744073709551615\r\n"));
	assert_memory_equal(buf, "get p:18446744073709551615\r\n", n);
	memcpy(value, "abc", 3);
	n = mc_format_set(buf, "p:", 0, value, 3, 0);
	assert_memory_equal(buf, "set p:0 0 0 3\r\nabc\r\n", n);
	assert_int_equal(n, 20);
	n = mc_format_set(buf, "p:", 12, value, 3, 1);
	assert_memory_equal(buf, "set p:12 0 0 3 noreply\r\nabc\r\n", n);
	assert_true(n <= mc_set_size("p:", 3));
	n = mc_format_set(buf, "p:", 0, value, 0, 0);
	assert_memory_equal(buf, "set p:0 0 0 0\r\n\r\n", n);
}

static void
test_pxload_proto_values_are_printable_and_seeded(void **state)
{
	char a[300], b[300], c[300];
	int i;

	mc_fill_value(a, sizeof(a), 1);
	mc_fill_value(b, sizeof(b), 1);
	mc_fill_value(c, sizeof(c), 2);
	assert_memory_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, c, sizeof(a));
	for (i = 0; i < (int)sizeof(a); i++)
		assert_true(a[i] > ' ' && a[i] < 127);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pxload_proto_status_lines),
	    cmocka_unit_test(test_pxload_proto_value_reply_needs_its_end),
	    cmocka_unit_test(
		test_pxload_proto_value_with_cas_and_several_values),
	    cmocka_unit_test(test_pxload_proto_replies_are_taken_one_at_a_time),
	    cmocka_unit_test(test_pxload_proto_malformed_streams_are_refused),
	    cmocka_unit_test(test_pxload_proto_requests_are_exact),
	    cmocka_unit_test(test_pxload_proto_values_are_printable_and_seeded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
