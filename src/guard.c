// SPDX-License-Identifier: MIT
/*
 * The guard: registered resources and their deferred cleanup.  A
 * resource moves live -> queued (released; no syscall) -> draining (its
 * operations are being cancelled and awaited) -> cleaning (the cleanup
 * runs) -> freed.  Every state is a list, so shutdown can report exactly
 * what is left and where it was registered.  The loop is reached through
 * struct px_guard_env; px_guard_create() binds it to a px_ring.
 *
 * No locks: a guard belongs to the thread of its ring.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <patinox/error.h>
#include <patinox/guard.h>
#include <patinox/region.h>
#include <patinox/ring.h>

#define container_of(p, type, m) ((type *)((char *)(p)-offsetof(type, m)))

struct glist {
	struct glist *next, *prev;
};

static void
glist_init(struct glist *h)
{
	h->next = h;
	h->prev = h;
}

static bool
glist_empty(const struct glist *h)
{
	return h->next == h;
}

static void
glist_del(struct glist *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
}

static void
glist_add_tail(struct glist *h, struct glist *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

static void
glist_move_tail(struct glist *h, struct glist *n)
{
	glist_del(n);
	glist_add_tail(h, n);
}

enum rstate { R_LIVE, R_QUEUED, R_DRAINING, R_CLEANING };

struct px_guard_res {
	struct glist link;
	struct px_guard *g;
	px_guard_cleanup_fn fn;
	void *ctx;
	struct px_region *region;
	const char *file;
	int line;
	int fd;
	uint64_t reg_ns;
	uint32_t holds;
	uint8_t type;
	uint8_t state;
};

struct px_guard {
	struct px_guard_env env;
	struct px_ring *ring; /* the ring environment's */
	struct glist live, queued, draining, cleaning;
	px_guard_report_fn report;
	void *report_arg;
	bool closed, kicked, destroyed, polling;
	struct px_guard_stats st;
};

static uint64_t
now(struct px_guard *g)
{
	return g->env.now_ns(g->env.arg);
}

static void
maybe_free(struct px_guard *g)
{
	if (g->destroyed && !g->kicked && !g->polling && g->st.live == 0)
		free(g);
}

static void
report_one(struct px_guard *g, struct px_guard_res *r,
	   enum px_guard_problem problem, int err, px_guard_report_fn fn,
	   void *arg)
{
	struct px_guard_report rep = {
	    .problem = problem,
	    .type = r->type,
	    .file = r->file,
	    .line = r->line,
	    .age_ns = now(g) - r->reg_ns,
	    .fd = r->type == PX_GUARD_FD ? r->fd : -1,
	    .holds = r->holds,
	    .err = err,
	};

	if (fn)
		fn(&rep, arg);
}

/* ------------------------------------------------------------------ */
/* Registration                                                         */
/* ------------------------------------------------------------------ */

static int
add(struct px_guard *g, enum px_guard_type type, const char *file, int line,
    struct px_guard_res **out)
{
	struct px_guard_res *r;

	if (g->closed)
		return -PX_ECLOSED;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->g = g;
	r->type = type;
	r->file = file;
	r->line = line;
	r->fd = -1;
	r->reg_ns = now(g);
	r->state = R_LIVE;
	glist_add_tail(&g->live, &r->link);
	g->st.registered++;
	g->st.live++;
	*out = r;
	return 0;
}

int
px_guard_add_fd_at(struct px_guard *g, int fd, const char *file, int line,
		   struct px_guard_res **out)
{
	int ret;

	if (fd < 0)
		return -EBADF;
	ret = add(g, PX_GUARD_FD, file, line, out);
	if (ret == 0)
		(*out)->fd = fd;
	return ret;
}

int
px_guard_add_region_at(struct px_guard *g, struct px_region *region,
		       const char *file, int line, struct px_guard_res **out)
{
	int ret;

	if (!region)
		return -EINVAL;
	ret = add(g, PX_GUARD_REGION, file, line, out);
	if (ret == 0)
		(*out)->region = region;
	return ret;
}

int
px_guard_add_at(struct px_guard *g, enum px_guard_type type,
		px_guard_cleanup_fn fn, void *ctx, const char *file, int line,
		struct px_guard_res **out)
{
	int ret;

	if (!fn || (type != PX_GUARD_POOL_OBJ && type != PX_GUARD_USER))
		return -EINVAL;
	ret = add(g, type, file, line, out);
	if (ret == 0) {
		(*out)->fn = fn;
		(*out)->ctx = ctx;
	}
	return ret;
}

int
px_guard_res_fd(const struct px_guard_res *r)
{
	return r->type == PX_GUARD_FD ? r->fd : -1;
}

/* ------------------------------------------------------------------ */
/* Cleanup                                                              */
/* ------------------------------------------------------------------ */

static void
finish(struct px_guard_res *r, int err)
{
	struct px_guard *g = r->g;

	if (err < 0) {
		g->st.failed++;
		report_one(g, r, PX_GUARD_CLEANUP_FAILED, err, g->report,
			   g->report_arg);
	}
	glist_del(&r->link);
	free(r);
	g->st.cleaned++;
	g->st.live--;
	g->st.pending--;
	maybe_free(g);
}

void
px_guard_cleanup_done(struct px_guard_res *r, int result)
{
	finish(r, result);
}

static void kick(struct px_guard *g);

/* Every operation on @r completed: run its cleanup. */
static void
start_cleanup(struct px_guard_res *r)
{
	struct px_guard *g = r->g;
	int ret;

	r->state = R_CLEANING;
	glist_move_tail(&g->cleaning, &r->link);
	switch (r->type) {
	case PX_GUARD_FD:
		ret = g->env.close_fd(g->env.arg, r->fd, r);
		if (ret == -EBUSY || ret == -ENOMEM) {
			/* No room in the ring now: retry on the next poll. */
			r->state = R_QUEUED;
			glist_move_tail(&g->queued, &r->link);
			kick(g);
		} else if (ret < 0) {
			finish(r, ret);
		}
		return;
	case PX_GUARD_REGION:
		px_region_destroy(r->region);
		finish(r, 0);
		return;
	default:
		ret = r->fn(r, r->ctx);
		if (ret != PX_GUARD_PENDING)
			finish(r, ret);
		return;
	}
}

/* A released resource: cancel what runs on it, or clean it up now. */
static void
drain_or_clean(struct px_guard *g, struct px_guard_res *r)
{
	if (r->holds == 0) {
		start_cleanup(r);
		return;
	}
	if (r->type == PX_GUARD_FD && g->env.cancel_fd) {
		int ret = g->env.cancel_fd(g->env.arg, r->fd);

		if (ret == -EBUSY || ret == -ENOMEM) {
			/* No room for the cancel now: retry on the next poll.
			 */
			glist_move_tail(&g->queued, &r->link);
			kick(g);
			return;
		}
		g->st.cancels++;
	}
	r->state = R_DRAINING;
	glist_move_tail(&g->draining, &r->link);
}

/* The poll itself.  On a ring it leaves g->kicked alone: only the
 * deferred poll that a kick queued clears it (ring_deferred()), since the
 * guard must not be freed while that poll is still on the ring, and
 * shutdown polls directly meanwhile.  A caller's environment is told
 * that any poll satisfies its kick (see px_guard_env). */
static int
poll_queued(struct px_guard *g)
{
	struct glist batch;
	int n = 0;

	if (!g->ring)
		g->kicked = false;
	if (g->polling)
		return 0;
	if (glist_empty(&g->queued)) {
		maybe_free(g);
		return 0;
	}
	g->polling = true;
	/* In release order, those queued before this call; a cleanup that
	 * must retry goes back to the queue for the next poll. */
	batch = g->queued;
	batch.next->prev = &batch;
	batch.prev->next = &batch;
	glist_init(&g->queued);
	while (!glist_empty(&batch)) {
		struct px_guard_res *r =
		    container_of(batch.next, struct px_guard_res, link);

		drain_or_clean(g, r);
		n++;
	}
	g->polling = false;
	maybe_free(g);
	return n;
}

int
px_guard_poll(struct px_guard *g)
{
	return poll_queued(g);
}

static void
kick(struct px_guard *g)
{
	if (g->kicked)
		return;
	if (g->env.kick(g->env.arg) == 0)
		g->kicked = true;
}

void
px_guard_release(struct px_guard_res *r)
{
	struct px_guard *g = r->g;

	if (r->state != R_LIVE)
		return;
	r->state = R_QUEUED;
	glist_move_tail(&g->queued, &r->link);
	g->st.released++;
	g->st.pending++;
	kick(g);
}

int
px_guard_hold(struct px_guard_res *r)
{
	if (r->state != R_LIVE || r->g->closed)
		return -PX_ECLOSED;
	r->holds++;
	return 0;
}

void
px_guard_unhold(struct px_guard_res *r)
{
	if (r->holds == 0)
		return;
	if (--r->holds == 0 && r->state == R_DRAINING)
		start_cleanup(r);
}

/* ------------------------------------------------------------------ */
/* Shutdown                                                             */
/* ------------------------------------------------------------------ */

static void
report_list(struct px_guard *g, struct glist *h, px_guard_report_fn fn,
	    void *arg)
{
	struct glist *n;

	for (n = h->next; n != h; n = n->next)
		report_one(g, container_of(n, struct px_guard_res, link),
			   PX_GUARD_UNFINISHED, 0, fn, arg);
}

int
px_guard_shutdown(struct px_guard *g, int64_t timeout_ns, px_guard_report_fn fn,
		  void *arg)
{
	uint64_t deadline =
	    now(g) + (uint64_t)(timeout_ns > 0 ? timeout_ns : 0);

	if (!fn) {
		fn = g->report;
		arg = g->report_arg;
	}
	g->closed = true;
	while (!glist_empty(&g->live)) {
		struct px_guard_res *r =
		    container_of(g->live.next, struct px_guard_res, link);

		report_one(g, r, PX_GUARD_NEVER_RELEASED, 0, fn, arg);
		px_guard_release(r);
	}
	poll_queued(g);
	while (g->st.pending > 0) {
		uint64_t t = now(g);

		if (t >= deadline || !g->env.run_once)
			break;
		if (g->env.run_once(g->env.arg, (int64_t)(deadline - t)) < 0)
			break;
		poll_queued(g);
	}
	if (g->st.pending == 0)
		return 0;
	report_list(g, &g->queued, fn, arg);
	report_list(g, &g->draining, fn, arg);
	report_list(g, &g->cleaning, fn, arg);
	return -ETIMEDOUT;
}

void
px_guard_set_report(struct px_guard *g, px_guard_report_fn fn, void *arg)
{
	g->report = fn;
	g->report_arg = arg;
}

void
px_guard_stats_get(const struct px_guard *g, struct px_guard_stats *out)
{
	*out = g->st;
}

const char *
px_guard_type_name(enum px_guard_type type)
{
	switch (type) {
	case PX_GUARD_FD:
		return "fd";
	case PX_GUARD_REGION:
		return "region";
	case PX_GUARD_POOL_OBJ:
		return "pool object";
	case PX_GUARD_USER:
		return "user";
	}
	return "unknown";
}

/* ------------------------------------------------------------------ */
/* Creation and the ring environment                                    */
/* ------------------------------------------------------------------ */

int
px_guard_create_env(const struct px_guard_env *env, struct px_guard **out)
{
	struct px_guard *g;

	if (!env || !env->now_ns || !env->kick || !env->close_fd)
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->env = *env;
	glist_init(&g->live);
	glist_init(&g->queued);
	glist_init(&g->draining);
	glist_init(&g->cleaning);
	*out = g;
	return 0;
}

static uint64_t
ring_now(void *arg)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void
ring_deferred(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct px_guard *g = ctx;

	g->kicked = false;
	poll_queued(g);
}

static int
ring_kick(void *arg)
{
	struct px_guard *g = arg;

	return px_ring_defer(g->ring, ring_deferred, g);
}

static int
ring_cancel_fd(void *arg, int fd)
{
	struct px_guard *g = arg;

	return px_ring_cancel_fd(g->ring, fd, NULL, NULL);
}

static void
ring_closed(struct px_ring *ring, int res, bool more, void *ctx)
{
	px_guard_cleanup_done(ctx, res);
}

static int
ring_close_fd(void *arg, int fd, struct px_guard_res *r)
{
	struct px_guard *g = arg;

	return px_ring_close_fd(g->ring, fd, false, ring_closed, r);
}

static int
ring_run_once(void *arg, int64_t timeout_ns)
{
	struct px_guard *g = arg;

	return px_ring_run_once(g->ring, timeout_ns);
}

int
px_guard_create(struct px_ring *ring, struct px_guard **out)
{
	struct px_guard_env env = {
	    .now_ns = ring_now,
	    .kick = ring_kick,
	    .cancel_fd = ring_cancel_fd,
	    .close_fd = ring_close_fd,
	    .run_once = ring_run_once,
	};
	int ret;

	if (!ring)
		return -EINVAL;
	ret = px_guard_create_env(&env, out);
	if (ret == 0) {
		(*out)->ring = ring;
		(*out)->env.arg = *out;
	}
	return ret;
}

void
px_guard_destroy(struct px_guard *g)
{
	if (!g)
		return;
	if (!g->closed || g->st.pending)
		px_guard_shutdown(
		    g, (int64_t)CONFIG_PX_GUARD_SHUTDOWN_TIMEOUT_MS * 1000000,
		    NULL, NULL);
	g->destroyed = true;
	maybe_free(g);
}
