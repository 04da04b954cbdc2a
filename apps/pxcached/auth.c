// SPDX-License-Identifier: MIT
/*
 * The -Y auth file and the check of an authenticating set (see auth.h).
 * Entries are kept as "user password" strings, the form the client
 * sends, so a check is a comparison per entry.  Comparisons do not stop
 * at the first differing byte, so timing does not reveal how much of a
 * password matched.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

struct pxc_auth {
	size_t n;
	char *entry[CONFIG_PX_PXCACHED_AUTH_MAX]; /* "user password" */
	size_t len[CONFIG_PX_PXCACHED_AUTH_MAX];
};

void
pxc_auth_free(struct pxc_auth *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		free(a->entry[i]);
	free(a);
}

/* "user:password" -> "user password"; -EINVAL for anything else. */
static int
add_line(struct pxc_auth *a, char *line)
{
	size_t n = strcspn(line, "\r\n");
	char *colon;

	line[n] = '\0';
	if (n == 0)
		return 0;
	colon = strchr(line, ':');
	if (!colon || colon == line || colon[1] == '\0' || strpbrk(line, " \t"))
		return -EINVAL;
	if (a->n == CONFIG_PX_PXCACHED_AUTH_MAX)
		return -E2BIG;
	*colon = ' ';
	a->entry[a->n] = strdup(line);
	if (!a->entry[a->n])
		return -ENOMEM;
	a->len[a->n++] = n;
	return 0;
}

int
pxc_auth_load(const char *path, struct pxc_auth **out)
{
	struct pxc_auth *a = calloc(1, sizeof(*a));
	char line[1024];
	FILE *f;
	int rc = 0;

	if (!a)
		return -ENOMEM;
	f = fopen(path, "r");
	if (!f) {
		rc = -errno;
		goto out_free;
	}
	while (rc == 0 && fgets(line, sizeof(line), f))
		rc = add_line(a, line);
	if (rc == 0 && ferror(f))
		rc = -EIO;
	fclose(f);
	if (rc == 0 && a->n == 0)
		rc = -EINVAL;
	if (rc < 0)
		goto out_free;
	*out = a;
	return 0;

out_free:
	pxc_auth_free(a);
	return rc;
}

static bool
same(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char diff = alen != blen;
	size_t n = alen < blen ? alen : blen;

	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

int
pxc_auth_check(const struct pxc_auth *a, const char *value, size_t len)
{
	const char *sp = memchr(value, ' ', len);
	bool ok = false;

	if (!sp || sp == value || sp == value + len - 1 ||
	    memchr(sp + 1, ' ', len - (size_t)(sp + 1 - value)))
		return -EINVAL;
	for (size_t i = 0; i < a->n; i++)
		ok |= same(a->entry[i], a->len[i], value, len);
	return ok ? 0 : -EACCES;
}
