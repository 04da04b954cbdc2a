/* SPDX-License-Identifier: MIT */
/*
 * Optional authentication, compatible with memcached's text-protocol
 * authentication (-Y FILE).  The file holds "user:password" lines.  A
 * client's first command must be a set whose value is "user password";
 * until then every other command is refused and the connection closed.
 * Without -Y nothing changes.
 */
#ifndef PXCACHED_AUTH_H
#define PXCACHED_AUTH_H

#include <stddef.h>

struct pxc_auth;

/*
 * pxc_auth_load - read an auth file.
 * @path: the file; at most CONFIG_PX_PXCACHED_AUTH_MAX entries
 * @out:  the credentials
 *
 * Returns 0, -errno from opening or reading the file, -EINVAL when a line
 * is not "user:password" or there are no entries, -E2BIG when there are
 * too many.  Free with pxc_auth_free().
 */
int pxc_auth_load(const char *path, struct pxc_auth **out);

/* pxc_auth_free - free credentials; NULL is a no-op. */
void pxc_auth_free(struct pxc_auth *a);

/*
 * pxc_auth_check - check the value of an authenticating set.
 * Returns 0 when "user password" matches an entry, -EINVAL when the
 * value is not two words separated by one space, -EACCES otherwise.
 * Thread safe (read only).
 */
int pxc_auth_check(const struct pxc_auth *a, const char *value, size_t len);

#endif
