// SPDX-License-Identifier: MIT
/*
 * pxcached: a memcached-compatible cache server on patinox.  main() parses
 * the options, answers --help and --features, and hands over to the
 * server (server.c), which owns the cache, the workers and the signals.
 */
#include <stdio.h>
#include <string.h>

#include <patinox/cache.h>
#include <patinox/probe.h>

#include "../common/log.h"
#include "options.h"
#include "server.h"

static int
print_features(void)
{
	struct px_features f;
	char buf[4096];

	px_probe_features(&f);
	px_probe_format(&f, buf, sizeof(buf));
	fputs(buf, stdout);
	/* --handover works between two builds whose layouts are equal. */
	printf("cache_layout: %016llx\n",
	       (unsigned long long)px_cache_layout_id());
	return 0;
}

int
main(int argc, char **argv)
{
	struct pxc_opts o;
	char err[256];

	if (pxc_opts_parse(&o, argc, argv, err, sizeof(err)) < 0) {
		fprintf(stderr, "pxcached: %s\n", err);
		return 2;
	}
	switch (o.action) {
	case PXC_HELP:
		fputs(pxc_usage(), stdout);
		return 0;
	case PXC_FEATURES:
		return print_features();
	case PXC_RUN:
		break;
	}
	log_set_level(LOG_LVL_NOTICE + o.verbose);
	return pxc_server_run(&o) < 0 ? 1 : 0;
}
