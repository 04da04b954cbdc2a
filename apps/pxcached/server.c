// SPDX-License-Identifier: MIT
/*
 * Interim: the server lands once the ring and cache implementations are
 * merged.  Until then pxcached parses its options and answers --help and
 * --features, and refuses to run.
 */
#include <errno.h>

#include "../common/log.h"
#include "server.h"

int
pxc_server_run(const struct pxc_opts *o)
{
	LOG_ERROR("pxcached: the server is not built yet");
	return -ENOSYS;
}
