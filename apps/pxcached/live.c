// SPDX-License-Identifier: MIT
/*
 * The live settings cell (see live.h).  One cell per process, created by
 * the server before its threads and destroyed after them; a mutex makes
 * each change a read-modify-write of the current version, so two
 * commands changing different fields at once both take effect.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <patinox/cow.h>

#include "live.h"
#include "pxcached.h"

static struct px_cow *cell;
static pthread_mutex_t change_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Base pages: the cell holds a few dozen bytes, and the default backing
 * would take a whole 2 MiB hugepage (resident, and out of the pool the
 * cache wants) for them.
 */
int
pxc_live_init(const struct pxc_live *init)
{
	struct px_cow_opts o;

	px_cow_opts_init(&o);
	o.backing = PX_REGION_4K;
	return px_cow_create(&cell, sizeof(*init), init, &o);
}

void
pxc_live_destroy(void)
{
	px_cow_destroy(cell);
	cell = NULL;
}

void
pxc_live_get(struct pxc_live *out)
{
	const struct pxc_live *v = px_cow_read_lock(cell);

	*out = *v;
	px_cow_read_unlock(cell);
}

int
pxc_live_log_level(void)
{
	const struct pxc_live *v;
	int level;

	if (!cell) /* before start-up or after shutdown: main thread only */
		return log_level;
	v = px_cow_read_lock(cell);
	level = LOG_LVL_NOTICE + (int)v->verbosity;
	px_cow_read_unlock(cell);
	return level > LOG_LVL_DEBUG ? LOG_LVL_DEBUG : level;
}

/* Publish a copy of the current version with *@field set to @value. */
static int
change(size_t offset, uint32_t value)
{
	void *draft;
	int rc;

	if (!cell)
		return -ENODEV;
	pthread_mutex_lock(&change_lock);
	rc = px_cow_draft(cell, &draft);
	if (rc == 0) {
		*(uint32_t *)((char *)draft + offset) = value;
		rc = px_cow_publish(cell, draft);
		if (rc < 0)
			px_cow_put(cell, draft);
	}
	pthread_mutex_unlock(&change_lock);
	return rc;
}

int
pxc_live_set_verbosity(uint32_t v)
{
	return change(offsetof(struct pxc_live, verbosity), v);
}

int
pxc_live_set_max_conns(uint32_t n)
{
	return change(offsetof(struct pxc_live, max_conns), n);
}

/* ---- The commands that change them ---------------------------------- */

static void
say(struct pxc_conn *c, const struct mc_req *req, const char *line)
{
	if (!req->noreply)
		pxc_out_text(c, line, strlen(line));
}

/*
 * verbosity N (memcached's) and maxconns N (ours, the live -c, 1 to
 * CONFIG_PX_PXCACHED_MAX_CONNS_LIVE): "OK" once every thread sees it.
 * Lowering maxconns closes no open connection; new ones are refused
 * until fewer are open.
 */
void
pxc_cmd_live(struct pxc_conn *c, const struct mc_req *req)
{
	bool verbosity = req->cmd == MC_CMD_VERBOSITY;
	int rc = 0;

	if (req->keep_level) {
		say(c, req, "OK\r\n");
		return;
	}
	if (!verbosity && (req->level < 1 ||
			   req->level > CONFIG_PX_PXCACHED_MAX_CONNS_LIVE)) {
		say(c, req, "CLIENT_ERROR bad command line format\r\n");
		return;
	}
	rc = verbosity ? pxc_live_set_verbosity(req->level)
		       : pxc_live_set_max_conns(req->level);
	if (rc < 0) {
		LOG_WARN("%s %u not applied: %s", mc_cmd_name(req->cmd),
			 req->level, strerror(-rc));
		say(c, req, "SERVER_ERROR out of memory\r\n");
		return;
	}
	LOG_NOTICE("live setting changed: %s %u", mc_cmd_name(req->cmd),
		   req->level);
	say(c, req, "OK\r\n");
}
