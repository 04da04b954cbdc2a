/* SPDX-License-Identifier: MIT */
/*
 * px_guard: tracked resources with deferred cleanup.  Resources (an fd,
 * a region, a pool object, anything with a user callback) register with
 * a type, a cleanup and the place they were registered.  Releasing one
 * only queues its cleanup (no system call); the owner's ring runs it
 * later, and only after every operation on the resource has completed:
 * for an fd, the guard cancels its operations, waits for their
 * completions, then closes it with IORING_OP_CLOSE.
 *
 * Operations on a resource are counted with px_guard_hold() when one
 * starts and px_guard_unhold() from its completion.
 *
 * px_guard_shutdown() is a gate: nothing new is accepted, resources never
 * released are reported and cleaned up, every pending cleanup is driven
 * to completion, and whatever has not finished by the deadline is
 * reported (type, age, registration site).  Nothing is dropped silently.
 *
 * Threading: a guard belongs to the thread of its ring; every function
 * must be called there.  docs/guard.md describes the design.
 */
#ifndef PATINOX_GUARD_H
#define PATINOX_GUARD_H

#include <stdbool.h>
#include <stdint.h>
#include <patinox/common.h>

struct px_guard;
struct px_guard_res;
struct px_ring;
struct px_region;

enum px_guard_type {
	PX_GUARD_FD = 1,   /* a file descriptor: cancel, wait, close */
	PX_GUARD_REGION,   /* a px_region: px_region_destroy() */
	PX_GUARD_POOL_OBJ, /* a pool object: its cleanup callback */
	PX_GUARD_USER,     /* anything: its cleanup callback */
};

/* Value returned by a cleanup callback that finishes later. */
#define PX_GUARD_PENDING 1

/*
 * Cleanup callback for POOL_OBJ and USER resources.  Runs on the ring's
 * thread after every operation on the resource completed.  Returns 0 or
 * -errno when the cleanup is done, or PX_GUARD_PENDING when it goes on
 * asynchronously; then it must call px_guard_cleanup_done() once.
 */
typedef int (*px_guard_cleanup_fn)(struct px_guard_res *res, void *ctx);

/* ------------------------------------------------------------------ */
/* Environment (tests replace it)                                       */
/* ------------------------------------------------------------------ */

/*
 * What the guard needs from its loop; px_guard_create() fills it from a
 * px_ring.  Close completions come back through px_guard_cleanup_done().
 * @now_ns:    monotonic time
 * @kick:      call px_guard_poll() soon, not from inside this call;
 *             returns 0 or -errno.  Any px_guard_poll() (shutdown's
 *             own included) answers it: drop kicks still outstanding
 *             when px_guard_destroy() returns, the guard may be gone
 * @cancel_fd: cancel every operation on @fd; the operations' own
 *             completions (which unhold) follow.  0 or -errno
 * @close_fd:  close @fd; px_guard_cleanup_done(res, result) follows.
 *             0 or -errno (then no completion)
 * @run_once:  drive the loop for at most @timeout_ns (shutdown only)
 */
struct px_guard_env {
	uint64_t (*now_ns)(void *arg);
	int (*kick)(void *arg);
	int (*cancel_fd)(void *arg, int fd);
	int (*close_fd)(void *arg, int fd, struct px_guard_res *res);
	int (*run_once)(void *arg, int64_t timeout_ns);
	void *arg;
};

/* ------------------------------------------------------------------ */
/* Creation                                                             */
/* ------------------------------------------------------------------ */

/*
 * px_guard_create - a guard whose cleanups run on @ring.
 * Returns 0, -EINVAL, -ENOMEM.
 */
PX_API int px_guard_create(struct px_ring *ring, struct px_guard **out);

/* px_guard_create_env - a guard on a caller's environment (tests). */
PX_API int
px_guard_create_env(const struct px_guard_env *env, struct px_guard **out);

/*
 * px_guard_destroy - shut down (px_guard_shutdown() with
 * CONFIG_PX_GUARD_SHUTDOWN_TIMEOUT_MS and no report callback, unless it
 * already ran) and free.  Cleanups still unfinished keep the memory
 * until they complete.  NULL is a no-op.  Not from a ring callback.
 */
PX_API void px_guard_destroy(struct px_guard *g);

/* ------------------------------------------------------------------ */
/* Registration                                                         */
/* ------------------------------------------------------------------ */

/*
 * Register a resource.  The *_at functions take the registration site;
 * use the macros, which pass __FILE__ and __LINE__.  @file must be a
 * string that outlives the guard (a literal).  On success *@out is the
 * handle, valid until the cleanup finished.  Returns 0, -ENOMEM, -EBADF
 * (fd < 0), -EINVAL, or -PX_ECLOSED after shutdown began (nothing is
 * registered then: the caller still owns the resource).
 */
PX_API int px_guard_add_fd_at(struct px_guard *g, int fd, const char *file,
			      int line, struct px_guard_res **out);
PX_API int
px_guard_add_region_at(struct px_guard *g, struct px_region *r,
		       const char *file, int line, struct px_guard_res **out);
PX_API int px_guard_add_at(struct px_guard *g, enum px_guard_type type,
			   px_guard_cleanup_fn fn, void *ctx, const char *file,
			   int line, struct px_guard_res **out);

#define px_guard_add_fd(g, fd, out) \
	px_guard_add_fd_at((g), (fd), __FILE__, __LINE__, (out))
#define px_guard_add_region(g, r, out) \
	px_guard_add_region_at((g), (r), __FILE__, __LINE__, (out))
#define px_guard_add(g, type, fn, ctx, out) \
	px_guard_add_at((g), (type), (fn), (ctx), __FILE__, __LINE__, (out))

/*
 * px_guard_hold - an operation on @res starts.  Returns 0, or -PX_ECLOSED
 * when @res was released (start nothing new on it).
 */
PX_API int px_guard_hold(struct px_guard_res *res);

/* px_guard_unhold - that operation completed (call from its callback). */
PX_API void px_guard_unhold(struct px_guard_res *res);

/*
 * px_guard_release - schedule the cleanup and return at once: no system
 * call, no callback from inside.  The cleanup runs from the ring after
 * every held operation completed.  Releasing twice is ignored.
 */
PX_API void px_guard_release(struct px_guard_res *res);

/* For a PX_GUARD_PENDING cleanup: it finished with @result. */
PX_API void px_guard_cleanup_done(struct px_guard_res *res, int result);

/* The resource's fd (-1 for other types). */
PX_API int px_guard_res_fd(const struct px_guard_res *res);

/*
 * px_guard_poll - start the cleanups released so far.  The ring calls it
 * from deferred work; a caller's environment calls it when kicked.
 * Returns how many cleanups it started.
 */
PX_API int px_guard_poll(struct px_guard *g);

/* ------------------------------------------------------------------ */
/* Shutdown and reports                                                 */
/* ------------------------------------------------------------------ */

enum px_guard_problem {
	PX_GUARD_NEVER_RELEASED, /* still registered at shutdown (cleaned) */
	PX_GUARD_UNFINISHED,     /* cleanup not finished by the deadline */
	PX_GUARD_CLEANUP_FAILED, /* the cleanup returned an error */
};

/* One reported resource. */
struct px_guard_report {
	enum px_guard_problem problem;
	enum px_guard_type type;
	const char *file; /* registration site */
	int line;
	uint64_t age_ns; /* since registration */
	int fd;          /* for PX_GUARD_FD, else -1 */
	uint32_t holds;  /* operations still in flight */
	int err;         /* for CLEANUP_FAILED */
};

typedef void (*px_guard_report_fn)(const struct px_guard_report *rep,
				   void *arg);

/*
 * px_guard_set_report - where failed cleanups are reported as they
 * happen (CLEANUP_FAILED) and, by default, shutdown reports too.
 */
PX_API void
px_guard_set_report(struct px_guard *g, px_guard_report_fn fn, void *arg);

/*
 * px_guard_shutdown - the gate.
 * @timeout_ns: how long to drive pending cleanups
 * @fn, @arg:   receives every report (NULL: the px_guard_set_report sink)
 *
 * Closes the gate (registrations and holds fail with -PX_ECLOSED),
 * reports every resource never released (NEVER_RELEASED) and releases
 * it, then drives the ring until every cleanup finished or the timeout
 * passed, and reports each one left (UNFINISHED).  Returns 0 when all
 * finished, or -ETIMEDOUT.  Callable again (it then drives and reports
 * what is still pending).  Not from a ring callback nor a cleanup
 * callback: the poll running that cleanup holds resources the shutdown
 * could neither drive nor report.
 */
PX_API int px_guard_shutdown(struct px_guard *g, int64_t timeout_ns,
			     px_guard_report_fn fn, void *arg);

/* Counters. */
struct px_guard_stats {
	uint64_t registered; /* resources ever registered */
	uint64_t released;   /* releases */
	uint64_t cleaned;    /* cleanups finished */
	uint64_t cancels;    /* fd cancels submitted */
	uint64_t failed;     /* cleanups that returned an error */
	uint64_t live;       /* registered and not yet cleaned */
	uint64_t pending;    /* released, cleanup not finished */
};

PX_API void
px_guard_stats_get(const struct px_guard *g, struct px_guard_stats *out);

/* A name for @type ("fd", "region", "pool object", "user"). */
PX_API const char *px_guard_type_name(enum px_guard_type type);

#endif
