// SPDX-License-Identifier: MIT
/*
 * Unit tests of pxcached's -Y auth file and credential check, with the
 * program source compiled in.  Files are written to a temporary folder.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../apps/pxcached/auth.c"

static char path[64];

static const char *
write_file(const char *text)
{
	int fd;

	strcpy(path, "/tmp/pxcached-auth-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void
test_pxcached_auth_accepts_listed_users(void **state)
{
	struct pxc_auth *a = NULL;

	assert_int_equal(
	    pxc_auth_load(write_file("alice:secret\n\nbob:pw2\r\n"), &a), 0);
	unlink(path);
	assert_int_equal(pxc_auth_check(a, "alice secret", 12), 0);
	assert_int_equal(pxc_auth_check(a, "bob pw2", 7), 0);
	assert_int_equal(pxc_auth_check(a, "alice secreT", 12), -EACCES);
	assert_int_equal(pxc_auth_check(a, "alice secret2", 13), -EACCES);
	assert_int_equal(pxc_auth_check(a, "bob pw", 6), -EACCES);
	assert_int_equal(pxc_auth_check(a, "carol secret", 12), -EACCES);
	pxc_auth_free(a);
}

static void
test_pxcached_auth_token_format(void **state)
{
	struct pxc_auth *a = NULL;

	assert_int_equal(pxc_auth_load(write_file("u:p\n"), &a), 0);
	unlink(path);
	assert_int_equal(pxc_auth_check(a, "up", 2), -EINVAL);
	assert_int_equal(pxc_auth_check(a, "u p ", 4), -EINVAL);
	assert_int_equal(pxc_auth_check(a, " p", 2), -EINVAL);
	assert_int_equal(pxc_auth_check(a, "u  p", 4), -EINVAL);
	assert_int_equal(pxc_auth_check(a, "", 0), -EINVAL);
	assert_int_equal(pxc_auth_check(a, "u p", 3), 0);
	pxc_auth_free(a);
}

static void
test_pxcached_auth_bad_files_refused(void **state)
{
	static const char *const bad[] = {"",      "\n\n",    "nocolon\n",
					  ":pw\n", "user:\n", "us er:pw\n"};
	struct pxc_auth *a = NULL;
	char many[16 * (CONFIG_PX_PXCACHED_AUTH_MAX + 1) + 1] = "";

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(pxc_auth_load(write_file(bad[i]), &a),
				 -EINVAL);
		unlink(path);
	}
	for (int i = 0; i <= CONFIG_PX_PXCACHED_AUTH_MAX; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many),
			 "u%d:p\n", i);
	assert_int_equal(pxc_auth_load(write_file(many), &a), -E2BIG);
	unlink(path);
	assert_int_equal(pxc_auth_load("/nonexistent/pxcached-auth", &a),
			 -ENOENT);
	pxc_auth_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pxcached_auth_accepts_listed_users),
	    cmocka_unit_test(test_pxcached_auth_token_format),
	    cmocka_unit_test(test_pxcached_auth_bad_files_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
