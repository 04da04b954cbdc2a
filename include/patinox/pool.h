/* SPDX-License-Identifier: MIT */
/*
 * px_pool: an asynchronous object pool in the deadpool pattern, driven by
 * one px_ring.  A manager (a table of callbacks) creates, health-checks
 * and destroys the objects; every step is asynchronous and ends with one
 * px_pool_done() call.  Gets are callbacks: a get either finds an object
 * (after its recycle check) or a free slot (after a create), or waits in
 * a strictly FIFO queue.  Every wait, create and recycle is bounded by a
 * timeout, and every timeout or cancellation leaves the accounting exact:
 * size never exceeds max_size and nothing leaks.
 *
 * Threading: a pool belongs to one thread, the thread of its ring (or of
 * its px_pool_env).  Every function must be called on that thread; other
 * threads hand their requests over with px_ring_post() (docs/pool.md shows
 * the pattern).  Callbacks run from px_pool_poll(), which the ring calls
 * from its loop; never from the call that started the get.
 *
 * docs/pool.md describes the state machine and the failure classes it is
 * immune to.
 */
#ifndef PATINOX_POOL_H
#define PATINOX_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <patinox/common.h>

struct px_pool;
struct px_pool_obj;
struct px_pool_wait;
struct px_ring;
struct px_ring_op;
struct px_ring_conn;
struct px_guard;

/* ------------------------------------------------------------------ */
/* Manager and hooks                                                    */
/* ------------------------------------------------------------------ */

/*
 * One asynchronous step on an object (create, recycle, a hook).  The step
 * ends with exactly one px_pool_done(pool, obj, res) call, from inside
 * the step function or later on the pool's thread.
 */
typedef void (*px_pool_step_fn)(struct px_pool *pool, struct px_pool_obj *obj,
				void *arg);

/*
 * Destroy an object's value (never NULL).  Must not fail and must not
 * block: hand slow cleanup to the guard (px_guard_release()).
 */
typedef void (*px_pool_destroy_fn)(struct px_pool *pool, void *value,
				   void *arg);

/*
 * The manager.
 * @create:  make a new value: px_pool_obj_set_value(), then
 *           px_pool_done(.., 0); or px_pool_done(.., -errno) with no value
 *           left behind (or with one: the pool destroys it).
 * @recycle: health-check an idle value before it is handed out (and for
 *           keepalive); NULL when values need no check.  res < 0 drops it.
 * @destroy: see px_pool_destroy_fn.  Required.
 * @cancel:  optional; the step in flight on @obj timed out or the pool
 *           closed: end it soon.  px_pool_done() must still be called
 *           once (inside @cancel or later); its result no longer matters.
 *           Without @cancel the step runs to its own end.
 * @put:     optional; the caller handed @value back with px_pool_put():
 *           forget what the caller attached to it (callbacks, contexts).
 *           Synchronous, must not fail, must not call into the pool.
 */
struct px_pool_manager {
	px_pool_step_fn create;
	px_pool_step_fn recycle;
	px_pool_destroy_fn destroy;
	px_pool_step_fn cancel;
	void *arg;
	px_pool_destroy_fn put;
};

/*
 * Hooks, all optional and asynchronous like manager steps.  post_create
 * runs after a successful create (a failure fails the create); pre_ and
 * post_recycle run around the manager's recycle at every checkout (a
 * failure drops the object, and the get goes on with another).  @cancel
 * ends a hook step that timed out (see px_pool_manager.cancel).
 */
struct px_pool_hooks {
	px_pool_step_fn post_create;
	px_pool_step_fn pre_recycle;
	px_pool_step_fn post_recycle;
	px_pool_step_fn cancel;
	void *arg;
};

/* What the error sink is told about. */
enum px_pool_event {
	PX_POOL_EV_CREATE_FAILED,  /* a create or post_create failed */
	PX_POOL_EV_RECYCLE_FAILED, /* a recycle or its hooks failed */
	PX_POOL_EV_STEP_TIMEOUT,   /* a create/recycle step timed out */
	PX_POOL_EV_LEAK,           /* an object held past leak_threshold_ms */
	PX_POOL_EV_BACKOFF,        /* creates paused after repeated failures */
};

/*
 * Error sink: called on the pool's thread for every event above, with
 * the error (-errno, 0 for LEAK) and the object when there is one.  The
 * object may be read (metrics) but not put, taken or dropped here.
 */
typedef void (*px_pool_error_fn)(struct px_pool *pool, enum px_pool_event ev,
				 int err, struct px_pool_obj *obj, void *arg);

/* ------------------------------------------------------------------ */
/* Environment: the clock and the loop (tests replace it)               */
/* ------------------------------------------------------------------ */

/*
 * What the pool needs from its loop.  px_pool_create() fills it from a
 * px_ring (CLOCK_MONOTONIC, ring timers and deferred work); unit tests
 * pass their own with a fake clock to px_pool_create_env().
 * @now_ns:  monotonic time in ns
 * @wake_at: call px_pool_poll() at or after @deadline_ns; a later call
 *           with an earlier deadline supersedes it (spurious polls are
 *           harmless)
 * @kick:    call px_pool_poll() soon, but not from inside this call
 * @release: the pool is gone: stop calling px_pool_poll() and free
 *           whatever the environment holds; may be NULL
 */
struct px_pool_env {
	uint64_t (*now_ns)(void *arg);
	void (*wake_at)(void *arg, uint64_t deadline_ns);
	void (*kick)(void *arg);
	void (*release)(void *arg);
	void *arg;
};

/*
 * Hooks for the ring calls of px_pool_create()'s environment, so tests
 * can make them fail.  timer() replaces px_ring_timer() and cancel()
 * px_ring_cancel() (same contracts).  NULL members keep the real call;
 * px_pool_ring_hooks_set(NULL) restores everything.  Not thread safe:
 * set hooks while no pool runs.
 */
struct px_pool_ring_hooks {
	int (*timer)(struct px_ring *ring, uint64_t ns, uint32_t flags,
		     void (*fn)(struct px_ring *ring, int res, bool more,
				void *ctx),
		     void *ctx, struct px_ring_op **opp);
	int (*cancel)(struct px_ring *ring, struct px_ring_op *op);
};

PX_API void px_pool_ring_hooks_set(const struct px_pool_ring_hooks *hooks);

/* ------------------------------------------------------------------ */
/* Creation                                                             */
/* ------------------------------------------------------------------ */

enum px_pool_order {
	PX_POOL_FIFO = 0, /* hand out the idle object returned first */
	PX_POOL_LIFO = 1, /* hand out the idle object returned last */
};

/*
 * Pool options.  px_pool_opts_init() fills the Kconfig defaults
 * (CONFIG_PX_POOL_*); every field is then taken as is.  Durations are in
 * milliseconds; for the last five, 0 turns the feature off.  idle_timeout
 * counts from an object's last return (or its creation); keepalive
 * checks repeat every keepalive_ms and are not uses.
 */
struct px_pool_opts {
	uint32_t max_size;            /* > 0 */
	uint32_t min_idle;            /* kept idle in the background */
	uint32_t max_waiters;         /* queued gets beyond fail -EAGAIN */
	uint32_t wait_timeout_ms;     /* default for px_pool_get(), 0 = try */
	uint32_t create_timeout_ms;   /* create + post_create, > 0 */
	uint32_t recycle_timeout_ms;  /* pre_recycle + recycle + post, > 0 */
	uint32_t backoff_min_ms;      /* first pause after a failed create */
	uint32_t backoff_max_ms;      /* longest pause */
	uint32_t maint_interval_ms;   /* housekeeping period, > 0 */
	uint32_t lifetime_jitter_pct; /* lifetime cut by up to this % */
	uint32_t max_lifetime_ms;     /* destroy objects older than this */
	uint32_t idle_timeout_ms;     /* destroy objects unused this long */
	uint32_t keepalive_ms;        /* recycle objects idle this long */
	uint32_t leak_threshold_ms;   /* report objects held this long */
	uint32_t seed;                /* jitter seed, 0 = from the clock */
	enum px_pool_order order;
	struct px_pool_hooks hooks;
	px_pool_error_fn error_sink;
	void *error_arg;
};

/* Fill @opts with the Kconfig defaults.  Never fails; thread safe. */
PX_API void px_pool_opts_init(struct px_pool_opts *opts);

/*
 * px_pool_create - a pool on @ring.
 * @mgr:  copied; create and destroy are required
 * @opts: copied; NULL for the defaults
 *
 * Starts nothing until the first get (or min_idle > 0, which fills the
 * pool in the background).  Returns 0, -EINVAL for bad options, -ENOMEM.
 * The ring's thread owns the pool.
 */
PX_API int
px_pool_create(struct px_ring *ring, const struct px_pool_manager *mgr,
	       const struct px_pool_opts *opts, struct px_pool **out);

/*
 * px_pool_create_env - a pool driven by a caller's environment (a fake
 * clock in tests, another event loop).  @env is copied.  Otherwise as
 * px_pool_create().
 */
PX_API int
px_pool_create_env(const struct px_pool_env *env,
		   const struct px_pool_manager *mgr,
		   const struct px_pool_opts *opts, struct px_pool **out);

/*
 * px_pool_close - close the pool: every queued get fails at once with
 * -PX_ECLOSED (callbacks from the next poll), and so does a get already
 * matched with an object whose callback has not run yet (the object is
 * destroyed); idle objects are destroyed, steps in flight are cancelled,
 * later gets fail with -PX_ECLOSED and objects still out are destroyed
 * when they come back.  Idempotent; callable from the pool's callbacks.
 */
PX_API void px_pool_close(struct px_pool *pool);

/*
 * px_pool_destroy - close, run the callbacks of failed gets (inside this
 * call, with -PX_ECLOSED), and free the pool.  Objects still out may be
 * put back later (they are destroyed) and steps in flight may still call
 * px_pool_done(): the memory is freed after the last of them.  NULL is a
 * no-op.  Not from one of the pool's own callbacks.
 */
PX_API void px_pool_destroy(struct px_pool *pool);

/* ------------------------------------------------------------------ */
/* Getting and returning objects                                        */
/* ------------------------------------------------------------------ */

/*
 * Get completion.  res 0: @obj is yours until px_pool_put(), _drop() or
 * _take().  Otherwise @obj is NULL and res is -ETIMEDOUT (waited too
 * long, or a create timed out), -PX_ECLOSED, -ECANCELED
 * (px_pool_get_cancel()), or the error of a failed create.
 */
typedef void (*px_pool_get_fn)(struct px_pool *pool, struct px_pool_obj *obj,
			       int res, void *ctx);

/* px_pool_get() timeout: use the pool's wait_timeout_ms */
#define PX_POOL_WAIT_DEFAULT (-1)

/*
 * px_pool_get - get an object.
 * @timeout_ms: how long to wait for a free object or slot;
 *              PX_POOL_WAIT_DEFAULT for the pool's; 0 is a try-get: it
 *              fails at once when every slot is busy or others wait
 *              (create and recycle still run under their own timeouts)
 * @fn, @ctx:   called exactly once, from px_pool_poll()
 * @wait:       optional; the handle for px_pool_get_cancel(), valid until
 *              @fn is called
 *
 * Waiters are served strictly in arrival order: an object that comes back
 * goes to the oldest waiter, and a new get never overtakes the queue.
 * Returns 0 (the callback will come) or, with no callback: -EINVAL (@fn
 * NULL), -PX_ECLOSED, -EAGAIN (the waiter queue is full), -ETIMEDOUT (a
 * try-get found nothing free), -ENOMEM.
 */
PX_API int
px_pool_get(struct px_pool *pool, int32_t timeout_ms, px_pool_get_fn fn,
	    void *ctx, struct px_pool_wait **wait);

/*
 * px_pool_get_cancel - give up a pending get: its callback comes with
 * -ECANCELED (an object already assigned goes back to the pool).
 * Returns 0, or -ENOENT when the callback already ran.
 */
PX_API int px_pool_get_cancel(struct px_pool *pool, struct px_pool_wait *wait);

/*
 * px_pool_put - return a healthy object.  It goes to the oldest waiter.
 * Each object handed out goes back exactly once, by px_pool_put(),
 * _drop() or _take(); a second return of the same object is undefined
 * (its record may be freed, or handed to another caller meanwhile).
 */
PX_API void px_pool_put(struct px_pool *pool, struct px_pool_obj *obj);

/*
 * px_pool_drop - return a broken object: it is destroyed, and a waiter
 * that needed it gets a new one created.
 */
PX_API void px_pool_drop(struct px_pool *pool, struct px_pool_obj *obj);

/*
 * px_pool_take - detach an object from the pool: the pool forgets it
 * (its slot is free again) and the caller owns the value, which is
 * returned.  @obj is invalid afterwards.
 */
PX_API void *px_pool_take(struct px_pool *pool, struct px_pool_obj *obj);

/* ------------------------------------------------------------------ */
/* Objects                                                              */
/* ------------------------------------------------------------------ */

/* Per-object metrics, CLOCK_MONOTONIC ns. */
struct px_pool_metrics {
	uint64_t created_ns;   /* when the create finished */
	uint64_t last_used_ns; /* last checkout or return */
	uint64_t recycled_ns;  /* last successful recycle, 0 if none */
	uint32_t recycle_count;
};

/* The object's value (NULL while it is being created). */
PX_API void *px_pool_obj_value(const struct px_pool_obj *obj);

/* Set the value; for the manager's create step. */
PX_API void px_pool_obj_set_value(struct px_pool_obj *obj, void *value);

/* The object's metrics; valid while the caller holds @obj. */
PX_API const struct px_pool_metrics *
px_pool_obj_metrics(const struct px_pool_obj *obj);

/*
 * px_pool_done - end the step in flight on @obj (manager and hooks only).
 * @res: 0 or -errno.  Callable from inside the step function.
 */
PX_API void
px_pool_done(struct px_pool *pool, struct px_pool_obj *obj, int res);

/* ------------------------------------------------------------------ */
/* Administration                                                       */
/* ------------------------------------------------------------------ */

/*
 * px_pool_resize - change max_size.  Growing serves waiters at once;
 * shrinking destroys idle objects beyond the new size, and objects in use
 * when they come back, so size may exceed max_size until they do.
 * Returns 0, -EINVAL (@max_size 0) or -PX_ECLOSED.
 */
PX_API int px_pool_resize(struct px_pool *pool, uint32_t max_size);

/* Keep-predicate for px_pool_retain(): true keeps the idle object. */
typedef bool (*px_pool_keep_fn)(struct px_pool *pool, struct px_pool_obj *obj,
				void *arg);

/*
 * px_pool_retain - destroy every idle object for which @keep returns
 * false.  @keep is asked once for each object idle at the call and may
 * call into the pool (get, put, drop, resize, close, retain; not
 * destroy): the objects under review count as available but are not
 * handed out until retain returns, and the kept ones stay the oldest
 * idle.  A close or shrink from @keep destroys the rest as well.
 * Returns how many objects this call destroyed, or -EINVAL (@keep NULL).
 */
PX_API int
px_pool_retain(struct px_pool *pool, px_pool_keep_fn keep, void *arg);

/*
 * px_pool_poll - run what is due: expired timeouts, housekeeping, and
 * the callbacks of finished gets.  The ring environment calls it; a
 * caller's environment calls it when asked (wake_at, kick).  Returns the
 * number of get callbacks run.
 */
PX_API int px_pool_poll(struct px_pool *pool);

/* deadpool's status, plus what this pool adds. */
struct px_pool_status {
	uint32_t max_size;  /* the current limit */
	uint32_t size;      /* objects that count against it */
	uint32_t available; /* idle objects */
	uint32_t waiting;   /* queued gets */
	uint32_t in_use;    /* held by callers */
	uint32_t creating;  /* creates in flight */
	uint32_t recycling; /* checkout and keepalive checks in flight */
	uint32_t aborting;  /* timed-out steps not yet ended by the manager */
};

PX_API void
px_pool_status(const struct px_pool *pool, struct px_pool_status *out);

/* Wait-time histogram: bucket 0 < 1 us, bucket i in [2^(i-1), 2^i) us. */
#define PX_POOL_HIST_BUCKETS 28

/*
 * The counter table: X(name, description).  struct px_pool_stats has one
 * uint64_t per entry in this order, then the wait histogram.  Every get
 * px_pool_get() accepted counts once, in exactly one of the first six,
 * by the outcome its callback saw; refused ones count in gets_rejected
 * (-EAGAIN) or gets_timed_out (a try-get), the other refusals nowhere.
 */
#define PX_POOL_COUNTERS(X)                                                 \
	X(gets_direct, "gets served without queueing behind others")        \
	X(gets_waited, "gets that waited for an object or a slot")          \
	X(gets_timed_out, "gets that failed with -ETIMEDOUT")               \
	X(gets_failed, "gets failed by a create error or the pool closing") \
	X(gets_rejected, "gets refused because the waiter queue was full")  \
	X(gets_cancelled, "gets cancelled by the caller")                   \
	X(created, "objects created")                                       \
	X(create_failed, "creates that failed or timed out")                \
	X(recycled, "successful recycle checks")                            \
	X(recycle_failed, "recycle checks that failed or timed out")        \
	X(closed_broken, "objects destroyed as broken")                     \
	X(closed_idle, "objects destroyed after idle_timeout")              \
	X(closed_expired, "objects destroyed after max_lifetime")           \
	X(closed_other, "objects destroyed by close, resize or retain")     \
	X(taken, "objects detached by px_pool_take()")                      \
	X(keepalives, "keepalive checks run")                               \
	X(leaks, "objects reported as held past leak_threshold_ms")         \
	X(backoffs, "times creates were paused after a failure")

struct px_pool_stats {
#define PX_POOL_STAT_FIELD(name, desc) uint64_t name;
	PX_POOL_COUNTERS(PX_POOL_STAT_FIELD)
#undef PX_POOL_STAT_FIELD
	uint64_t wait_hist[PX_POOL_HIST_BUCKETS];
};

PX_API void
px_pool_stats_get(const struct px_pool *pool, struct px_pool_stats *out);

/* Name and description of counter @i, or NULL past the last. */
PX_API const char *px_pool_stat_name(unsigned int i);
PX_API const char *px_pool_stat_desc(unsigned int i);

/*
 * px_pool_wait_percentile - the wait time (ns, bucket upper bound) under
 * which @pct percent of the waited gets in @st fell; 0 when none.
 */
PX_API uint64_t px_pool_wait_percentile(const struct px_pool_stats *st,
					double pct);

/* ------------------------------------------------------------------ */
/* Built-in managers: stream connections on the pool's ring            */
/* ------------------------------------------------------------------ */

enum px_pool_proto {
	PX_POOL_PROTO_NONE = 0,     /* plain connection, no health check */
	PX_POOL_PROTO_MEMCACHED = 1 /* health check: "version" */
};

/*
 * Options of a connection manager.  @addr is copied (AF_INET, AF_INET6
 * or AF_UNIX).  The connect timeout is the pool's create_timeout_ms
 * (io_uring connect with a linked timeout).  With @guard the
 * connections are registered there and their close is handed to it.  A
 * guard shut down while the pool still lives closes the pool's
 * connections (as never released): they then read as broken, with no
 * ring connection, and the pool drops them at their next checkout;
 * connections made after that are not registered.
 */
struct px_pool_net_opts {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	enum px_pool_proto proto;
	uint32_t connect_timeout_ms; /* 0: CONFIG_PX_POOL_CREATE_TIMEOUT_MS */
	struct px_guard *guard;
};

/*
 * px_pool_net_manager - fill @mgr with the connection manager for @ring.
 * Each object's value is a struct px_pool_conn.  The manager state is
 * allocated here and freed by px_pool_net_manager_free() after the pool
 * is destroyed.  Returns 0, -EINVAL (unsupported address), -ENOMEM.
 */
PX_API int
px_pool_net_manager(struct px_ring *ring, const struct px_pool_net_opts *opts,
		    struct px_pool_manager *mgr);

/* Free a manager's state; after px_pool_destroy() and its last close. */
PX_API void px_pool_net_manager_free(struct px_pool_manager *mgr);

/* Fill a sockaddr for 127.0.0.1:@port (tests and benchmarks). */
PX_API void px_pool_net_loopback(struct px_pool_net_opts *opts, uint16_t port);

/*
 * A pooled connection.  While a caller holds it, received bytes go to the
 * caller's recv callback (px_pool_conn_set_recv); while it is idle or
 * being checked, the manager reads them (unexpected bytes mark it broken).
 */
struct px_pool_conn;

/*
 * Receive callback of a pooled connection.  @data holds @res bytes, valid
 * only during the call; res 0 means the peer closed, res < 0 an error
 * (@data NULL then, and the connection is broken).
 */
typedef void (*px_pool_conn_recv_fn)(struct px_pool_conn *pc, void *data,
				     int res, void *ctx);

PX_API struct px_ring_conn *px_pool_conn_ring_conn(struct px_pool_conn *pc);

/*
 * Route received bytes to @fn (data valid only during the call) until the
 * connection goes back to the pool.  NULL stops routing (bytes received
 * while no one listens mark the connection broken).
 */
PX_API void px_pool_conn_set_recv(struct px_pool_conn *pc,
				  px_pool_conn_recv_fn fn, void *ctx);

/* True once the peer closed or an error broke the connection. */
PX_API bool px_pool_conn_broken(const struct px_pool_conn *pc);

#endif
