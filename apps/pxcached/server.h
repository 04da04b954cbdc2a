/* SPDX-License-Identifier: MIT */
/*
 * The pxcached server: the cache, one worker thread with its own px_ring
 * per -t, the listeners, and the orderly shutdown on SIGTERM/SIGINT.
 */
#ifndef PXCACHED_SERVER_H
#define PXCACHED_SERVER_H

#include "options.h"

/*
 * pxc_server_run - run the server until SIGTERM or SIGINT.
 * Logs its start-up line and every fatal error itself.  Returns 0 after a
 * clean shutdown, or a negative errno when it could not start.
 */
int pxc_server_run(const struct pxc_opts *o);

#endif
