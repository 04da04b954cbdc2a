/* SPDX-License-Identifier: MIT */
/*
 * px_ring: the io_uring engine.  One ring belongs to one thread; it moves
 * bytes on sockets, runs timers and deferred work, and tells its caller
 * what completed through callbacks.  It knows nothing of caches, pools or
 * protocols.
 *
 * Model
 * - Every operation carries a callback and a context pointer.  Callbacks
 *   run on the ring's thread, from px_ring_run() / px_ring_run_once(),
 *   never from the call that submitted the operation.
 * - Submissions are batched: a call that starts an operation only fills a
 *   submission queue entry; the loop flushes them once per turn.
 * - struct px_ring_conn owns one socket: its multishot recv (into the
 *   ring's provided-buffer ring), an ordered queue of iovec sends with at
 *   most one send in flight, and the safe close protocol.  An fd owned by
 *   a connection is never closed while an operation on it is in flight.
 *
 * Threading: unless a function says otherwise, it must be called on the
 * thread that created the ring (the ring is created with SINGLE_ISSUER
 * where the kernel has it, and the kernel then refuses other submitters).
 * Functions that may be called from any thread say so.  The fast path
 * takes no locks.  The rule is checked: every function that returns an
 * int and submits or runs work (on the ring or on one of its
 * connections) returns -EXDEV, having done nothing, when called from a
 * thread other than the ring's creator; px_ring_post() checks its @src
 * only.  The check is one compare against a thread-local address.  The
 * void functions (px_ring_stop, px_ring_buf_put, px_ring_destroy) are
 * not checked.
 *
 * Errors: 0 (or a count) on success, a negative errno on failure; for
 * ring creation print px_strerror_in(PX_PART_RING, err), which explains
 * EPERM (seccomp, kernel.io_uring_disabled), ENOSYS and ENOMEM.
 *
 * docs/ring.md describes the design, the ownership rules and the close
 * protocol in full.
 */
#ifndef PATINOX_RING_H
#define PATINOX_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <patinox/common.h>
#include <patinox/probe.h>

struct px_ring;
struct px_ring_op;
struct px_ring_conn;
struct io_uring;
struct io_uring_params;

/* ------------------------------------------------------------------ */
/* Creation                                                             */
/* ------------------------------------------------------------------ */

/* px_ring_opts.flags */
enum px_ring_flags {
	PX_RING_SQPOLL = 1u << 0,      /* kernel SQ polling thread */
	PX_RING_NO_DEFER = 1u << 1,    /* skip SINGLE_ISSUER|DEFER_TASKRUN */
	PX_RING_NO_REG_FD = 1u << 2,   /* do not register the ring fd */
	PX_RING_NO_BUF_RING = 1u << 3, /* no provided-buffer ring (no recv) */
};

/*
 * Ring options.  Fill with px_ring_opts_init() (Kconfig defaults), then
 * change what you need.  A zero field means "the default".
 */
struct px_ring_opts {
	uint32_t sq_entries;     /* CONFIG_PX_RING_SQ_ENTRIES */
	uint32_t cq_entries;     /* CONFIG_PX_RING_CQ_FACTOR x sq_entries */
	uint32_t flags;          /* enum px_ring_flags */
	uint32_t sqpoll_idle_ms; /* CONFIG_PX_RING_SQPOLL_IDLE_MS */
	uint32_t buf_count;      /* provided buffers, a power of two */
	uint32_t buf_size;       /* bytes per provided buffer */
	uint32_t fixed_files;    /* sparse fixed-file table size, 0 = none */
};

/*
 * px_ring_opts_init - fill @opts with the Kconfig defaults.
 * Never fails; thread safe.
 */
PX_API void px_ring_opts_init(struct px_ring_opts *opts);

/*
 * px_ring_create - create a ring owned by the calling thread.
 * @opts: options, or NULL for the defaults
 * @out:  the new ring on success
 *
 * Tries SINGLE_ISSUER|DEFER_TASKRUN (unless PX_RING_NO_DEFER), then
 * COOP_TASKRUN|TASKRUN_FLAG, then a plain ring; adds SQPOLL when asked;
 * registers the ring fd, the buffer ring and the fixed-file table.
 * Features are probed once per process (px_probe_cached()).
 * Returns 0, -EINVAL for bad options (unknown flags included), or the
 * io_uring_setup error as is:
 * -EPERM (blocked by seccomp or kernel.io_uring_disabled), -ENOSYS (no
 * io_uring), -ENOMEM; px_strerror_in(PX_PART_RING, err) explains them.
 * The ring must be used only by the thread that created it.
 */
PX_API int
px_ring_create(const struct px_ring_opts *opts, struct px_ring **out);

/*
 * px_ring_destroy - tear a ring down.
 *
 * Closes every connection still open (the close protocol, so their send
 * callbacks and closed callbacks still run), cancels every other
 * operation and runs the loop until nothing is in flight: each pending
 * callback is called once more, usually with -ECANCELED, so callers can
 * release what they hold.  Then frees the ring.  NULL is a no-op.  Must
 * not be called from a callback of the same ring.  The wait is bounded
 * by CONFIG_PX_RING_DESTROY_TIMEOUT_MS: past it the ring is torn down
 * anyway (the kernel ends what is left with it), callbacks still owed
 * are not called, and connections whose close had not been submitted are
 * closed with close(2), so no descriptor leaks.
 */
PX_API void px_ring_destroy(struct px_ring *ring);

/* IORING_SETUP_* flags the ring was created with. */
PX_API uint32_t px_ring_setup_flags(const struct px_ring *ring);

/* The ring's fd, for diagnostics and IORING_OP_MSG_RING. */
PX_API int px_ring_fd(const struct px_ring *ring);

/* Kernel features, probed once per process.  Never NULL; any thread. */
PX_API const struct px_features *px_ring_features(void);

/*
 * Hooks for the system calls tests need to fail.  setup() replaces
 * io_uring_setup(2): returns the ring fd or -errno.  destroy_now_ns()
 * replaces the monotonic clock (ns) px_ring_destroy() measures its wait
 * with, so a test can make that wait run out.  flush() replaces the
 * io_uring_submit() the ring makes when its SQ is full (returns the
 * number submitted or -errno, as the kernel's -EBUSY with a full CQ).
 * NULL members keep the real call.  px_ring_hooks_set(NULL) restores
 * everything.  Not thread safe: set hooks before creating rings (or, for
 * destroy_now_ns and flush, while no other thread uses a ring).
 */
struct px_ring_hooks {
	int (*setup)(uint32_t entries, struct io_uring_params *p);
	uint64_t (*destroy_now_ns)(void);
	int (*flush)(struct io_uring *uring);
};

PX_API void px_ring_hooks_set(const struct px_ring_hooks *hooks);

/* ------------------------------------------------------------------ */
/* The loop                                                             */
/* ------------------------------------------------------------------ */

/*
 * px_ring_run_once - one turn of the loop.
 * @timeout_ns: how long to wait for a first completion: 0 polls, a
 *              negative value waits without limit
 *
 * Flushes queued submissions, waits up to @timeout_ns for a completion,
 * dispatches every completion available (draining a CQ overflow too),
 * then runs deferred work (px_ring_defer()).  Returns the number of
 * completions dispatched (0 on timeout) or -errno.  Not from a callback
 * (the loop does not nest).
 */
PX_API int px_ring_run_once(struct px_ring *ring, int64_t timeout_ns);

/*
 * px_ring_run - run until px_ring_stop().
 * Returns 0 after a stop, or -errno from the kernel.
 */
PX_API int px_ring_run(struct px_ring *ring);

/*
 * px_ring_stop - make px_ring_run() return after the current turn.
 * Call it on the ring's thread (from a callback); from another thread
 * use px_ring_post() with a callback that calls px_ring_stop().
 */
PX_API void px_ring_stop(struct px_ring *ring);

/* True after px_ring_stop() until the next px_ring_run(). */
PX_API bool px_ring_stopped(const struct px_ring *ring);

/* Flush queued submissions now.  Returns SQEs submitted or -errno. */
PX_API int px_ring_submit(struct px_ring *ring);

/*
 * Completion of a plain operation (accept, connect, timer, cancel, close).
 * @ring: the ring
 * @res:  the result; the meaning is given by each starting call
 * @more: true when the operation continues (multishot accept, periodic
 *        timer) and the callback will be called again; false on the last
 *        call, after which the operation handle is invalid
 * @ctx:  the caller's context pointer
 */
typedef void (*px_ring_fn)(struct px_ring *ring, int res, bool more, void *ctx);

/*
 * px_ring_defer - run @fn(ring, 0, false, ctx) at the end of this loop
 * turn (after the completions of the turn).  Used for deferred cleanup
 * that must not run inside the current callback.  Returns 0, -EINVAL
 * (no @fn) or -ENOMEM.
 */
PX_API int px_ring_defer(struct px_ring *ring, px_ring_fn fn, void *ctx);

/* ------------------------------------------------------------------ */
/* Plain operations                                                     */
/* ------------------------------------------------------------------ */

/* px_ring_accept() flags */
enum px_ring_accept_flags {
	PX_RING_ACCEPT_DIRECT = 1u << 0, /* into the fixed-file table */
};

/*
 * px_ring_accept - multishot accept on a listening socket.
 * @fd:    the listening socket (not owned: close it only after the
 *         accept ended, i.e. after its callback saw more == false)
 * @flags: enum px_ring_accept_flags; DIRECT needs opts.fixed_files
 * @fn:    called once per event: res >= 0 is a new connected socket (an
 *         fd, or a fixed-file slot with DIRECT) that the callback owns;
 *         res < 0 is an error.  When the kernel ends the multishot after
 *         a success the ring re-arms it silently; after an error the
 *         accept ends (more == false) and the caller may start another
 * @op:    optional; receives the handle for px_ring_cancel()
 *
 * Returns 0 (the callback will be called at least once) or -errno (it
 * will not be called; -EINVAL for unknown flags).
 */
PX_API int px_ring_accept(struct px_ring *ring, int fd, uint32_t flags,
			  px_ring_fn fn, void *ctx, struct px_ring_op **op);

/*
 * px_ring_connect - connect @fd to @addr with a timeout.
 * @addr, @len:  copied; need not outlive the call
 * @timeout_ms:  0 for no timeout (then only the kernel's own)
 * @fn:          called once: res 0 when connected, -ETIMEDOUT when the
 *               timeout fired, -ECANCELED after px_ring_cancel(), else
 *               the connect error (-ECONNREFUSED...)
 *
 * @fd is not owned by the ring.  Returns 0 or -errno (no callback).
 */
PX_API int
px_ring_connect(struct px_ring *ring, int fd, const struct sockaddr *addr,
		socklen_t len, uint32_t timeout_ms, px_ring_fn fn, void *ctx,
		struct px_ring_op **op);

/* px_ring_timer() flags */
enum px_ring_timer_flags {
	PX_RING_TIMER_PERIODIC = 1u << 0,
};

/*
 * px_ring_timer - a one-shot or periodic timer on CLOCK_MONOTONIC.
 * @ns:    delay, and period for a periodic timer (> 0)
 * @fn:    res 0 on expiry, -ECANCELED when cancelled.  A periodic timer
 *         fires with more == true at start + k * @ns (absolute deadlines,
 *         so no drift accumulates; ticks missed by a stalled loop are
 *         skipped, not replayed) until px_ring_cancel(), which ends it
 *         with a last call (-ECANCELED, more == false).  A deadline past
 *         the 64-bit clock (a period of centuries) never comes.
 *
 * Returns 0 or -errno (no callback): -EINVAL for a periodic @ns of 0 or
 * unknown flags.
 */
PX_API int px_ring_timer(struct px_ring *ring, uint64_t ns, uint32_t flags,
			 px_ring_fn fn, void *ctx, struct px_ring_op **op);

/*
 * px_ring_cancel - cancel one operation.
 * @op: a handle from a starting call, valid until its callback was
 *      called with more == false
 *
 * Asynchronous: the operation's callback reports the end (usually
 * -ECANCELED; an operation that completed meanwhile reports its real
 * result).  Calling it twice, or from inside the operation's own
 * callback, is allowed.  Returns 0, -ENOENT when @op already ended, or
 * -EBUSY when the cancel found no room in the SQ (nothing changed: call
 * again later).
 */
PX_API int px_ring_cancel(struct px_ring *ring, struct px_ring_op *op);

/*
 * px_ring_cancel_fd - cancel every operation on @fd (not fixed slots).
 * @fn: optional; called once with the number of operations cancelled,
 *      -ENOENT when none matched, or -EALREADY when one was running
 *
 * For sockets owned by a px_ring_conn use px_ring_conn_close().
 * Returns 0 or -errno.
 */
PX_API int
px_ring_cancel_fd(struct px_ring *ring, int fd, px_ring_fn fn, void *ctx);

/*
 * px_ring_cancel_all - cancel every operation of the ring except
 * deferred work.  @fn as for px_ring_cancel_fd().  Returns 0 or -errno.
 */
PX_API int px_ring_cancel_all(struct px_ring *ring, px_ring_fn fn, void *ctx);

/*
 * px_ring_close_fd - IORING_OP_CLOSE of an fd (or, with @fixed, a
 * fixed-file slot) that has no operation in flight.  @fn (optional) gets
 * 0 or -errno.  Returns 0 or -errno (no callback).
 */
PX_API int px_ring_close_fd(struct px_ring *ring, int fd, bool fixed,
			    px_ring_fn fn, void *ctx);

/* ------------------------------------------------------------------ */
/* Messages between rings (threads)                                     */
/* ------------------------------------------------------------------ */

/*
 * px_ring_post - run @fn on @dst's thread.
 * @src: the calling thread's own ring (IORING_OP_MSG_RING goes through it)
 * @dst: any ring, of this or another thread, that is alive
 * @fn:  on success called on @dst's thread as fn(dst, 0, false, ctx);
 *       when the kernel could not deliver the message (the target's CQ
 *       is full, the ring is gone) called instead on @src's thread as
 *       fn(src, -errno, false, ctx).  Exactly one call either way.
 *
 * Use it to wake a ring, hand a connection to a worker, or stop it.
 * Returns 0 or -errno (-ENOMEM, -EBUSY, -EXDEV when @src is not the
 * calling thread's ring; no callback).
 */
PX_API int px_ring_post(struct px_ring *src, struct px_ring *dst, px_ring_fn fn,
			void *ctx);

/* ------------------------------------------------------------------ */
/* Provided buffers                                                     */
/* ------------------------------------------------------------------ */

/*
 * A received buffer from the ring's buffer ring.  @data and @len are read
 * only; the buffer belongs to its consumer until px_ring_buf_put().
 */
struct px_ring_buf {
	void *data;    /* received bytes */
	uint32_t len;  /* their number */
	uint16_t bid;  /* buffer id (private) */
	uint16_t pad_; /* private */
};

/*
 * px_ring_buf_put - give a received buffer back to the ring.
 * Every buffer handed to a recv callback must be put back exactly once,
 * inside the callback or later (on the ring's thread).  While buffers are
 * out the ring may run dry: receives then pause (the data stays in the
 * socket) and resume in order when buffers come back.
 */
PX_API void px_ring_buf_put(struct px_ring *ring, struct px_ring_buf *buf);

/* Size in bytes of each provided buffer of @ring. */
PX_API uint32_t px_ring_buf_size(const struct px_ring *ring);

/* ------------------------------------------------------------------ */
/* Connections                                                          */
/* ------------------------------------------------------------------ */

/*
 * Receive callback.
 * @buf: res > 0: @res bytes in @buf->data, owned by the callee until
 *       px_ring_buf_put(); otherwise NULL
 * @res: > 0 bytes; 0 the peer closed its side (EOF); < 0 an error.  After
 *       0 or an error the recv has ended; the connection stays open until
 *       px_ring_conn_close().  Never -ENOBUFS (handled inside: the recv
 *       is re-armed when buffers return, and no byte is lost or reordered).
 *       -ECANCELED after px_ring_conn_recv_stop().
 */
typedef void (*px_ring_recv_fn)(struct px_ring_conn *conn,
				struct px_ring_buf *buf, int res, void *ctx);

/*
 * Send completion.  @res: the total bytes of that send (all of them;
 * short sends are resubmitted inside) or -errno (-ECANCELED when the
 * connection was closed first, -EPIPE/-ECONNRESET...).  Called exactly
 * once per accepted send, in submission order; release the send's
 * memory here.
 */
typedef void (*px_ring_send_fn)(struct px_ring_conn *conn, int res, void *ctx);

/*
 * Close completion: the last callback of a connection.  @res is the
 * result of IORING_OP_CLOSE (0 or -errno; the fd is gone either way).
 * The connection's memory is freed when it returns.
 */
typedef void (*px_ring_closed_fn)(struct px_ring_conn *conn, int res,
				  void *ctx);

/* px_ring_conn_create() flags */
enum px_ring_conn_flags {
	PX_RING_CONN_FIXED = 1u << 0, /* @fd is a fixed-file slot */
};

/*
 * px_ring_conn_create - take ownership of a connected socket.
 * @fd:     a connected stream socket (or fixed slot with CONN_FIXED);
 *          owned by the connection from now on, even on failure: on
 *          failure it is closed (a fixed slot only when @ring is given
 *          and the call is made on @ring's thread)
 * @on_recv: receive callback (may be NULL if recv is never started)
 * @ctx:    passed to every callback of the connection
 * @out:    the connection
 *
 * Returns 0, -ENOMEM, -EINVAL, -EXDEV from a thread other than @ring's,
 * or -PX_ECLOSED when the ring is being destroyed.
 */
PX_API int px_ring_conn_create(struct px_ring *ring, int fd, uint32_t flags,
			       px_ring_recv_fn on_recv, void *ctx,
			       struct px_ring_conn **out);

/*
 * px_ring_conn_recv_start - start the multishot recv (provided buffers).
 * Returns 0, -EALREADY when it runs, -PX_ECLOSED when closing, -ENOTSUP
 * when the ring has no buffer ring.
 */
PX_API int px_ring_conn_recv_start(struct px_ring_conn *conn);

/*
 * px_ring_conn_recv_stop - stop receiving.  The recv callback is called
 * once more with -ECANCELED (or with data that raced the stop, then
 * -ECANCELED).  Returns 0, -ENOENT when no recv runs, or -EBUSY when
 * the cancel found no room in the SQ (nothing changed: call again later).
 */
PX_API int px_ring_conn_recv_stop(struct px_ring_conn *conn);

/*
 * px_ring_conn_recv_check - restart a multishot recv that slept through
 * the end of its socket.  Some kernels (seen on 6.18) can leave a
 * multishot recv parked after its data was delivered although the peer
 * then reset or shut down the socket: no completion ever comes, and the
 * connection would stay open forever.  This looks at the socket without
 * waiting (poll); when it reports an error, a hangup or the peer's
 * shutdown while the recv is in the kernel, the recv is cancelled and
 * armed again, and the fresh recv reads what is left, then the end, in
 * order.  The owner sees nothing of the restart.  Meant for a periodic
 * check of quiet connections (one poll system call each).  Returns 1
 * when it cancelled the recv to restart it, 0 when nothing was wrong (or
 * no recv runs, or the fd is a fixed file, which poll cannot see),
 * -EBUSY when the cancel found no room in the SQ (call again later).
 * What the cancel found is counted when the recv's last completion is
 * reaped: recv_restarts when the recv was parked (it ended with the
 * cancel's -ECANCELED and was armed again), recv_check_late when the
 * recv had ended on its own (its data, EOF or error was only not reaped
 * yet; the owner sees that end, nothing is restarted).
 */
PX_API int px_ring_conn_recv_check(struct px_ring_conn *conn);

/*
 * px_ring_conn_send - queue a send of @iovcnt iovecs.
 * @iov:    copied (the array, not the bytes); the bytes must stay valid
 *          and unchanged until @done is called
 * @iovcnt: 1 to CONFIG_PX_RING_SEND_IOV_MAX
 * @done:   may be NULL; otherwise called exactly once (see px_ring_send_fn)
 *
 * Sends go out in the order they were queued; at most one is in flight on
 * the socket (queued sends are coalesced into one sendmsg).  Returns 0,
 * or -errno with @done never called: -EINVAL, -ENOMEM, -PX_ECLOSED when
 * the connection is closing, or the error that broke an earlier send.
 */
PX_API int px_ring_conn_send(struct px_ring_conn *conn, const struct iovec *iov,
			     int iovcnt, px_ring_send_fn done, void *ctx);

/*
 * px_ring_conn_close - the safe close.
 * @done: called last, exactly once (see px_ring_closed_fn); may be NULL
 *
 * The recv callback is never called again.  Queued sends end with
 * -ECANCELED.  Every operation on the fd is cancelled and every one of
 * their completions awaited (whatever the kernel's cancel convention:
 * 0/-ECANCELED, -ENOENT/-ENOBUFS, -EALREADY), then IORING_OP_CLOSE runs,
 * then @done.  The fd number is not reused before that.  May be called
 * from any callback of the connection.  Returns 0, or -EALREADY when the
 * connection is already closing (@done then is not used).
 */
PX_API int px_ring_conn_close(struct px_ring_conn *conn, px_ring_closed_fn done,
			      void *ctx);

/* Accessors; the fd must not be closed or used for I/O by the caller. */
PX_API int px_ring_conn_fd(const struct px_ring_conn *conn);
PX_API struct px_ring *px_ring_conn_ring(const struct px_ring_conn *conn);
PX_API void *px_ring_conn_ctx(const struct px_ring_conn *conn);
PX_API void px_ring_conn_set_ctx(struct px_ring_conn *conn, void *ctx);
/* Sends queued or in flight on the connection (for backpressure). */
PX_API uint32_t px_ring_conn_sends_pending(const struct px_ring_conn *conn);

/* ------------------------------------------------------------------ */
/* Counters                                                             */
/* ------------------------------------------------------------------ */

/*
 * The counter table: X(name, description).  struct px_ring_stats has one
 * uint64_t per entry, in this order.
 */
#define PX_RING_COUNTERS(X)                                                  \
	X(submissions, "SQEs submitted to the kernel")                       \
	X(completions, "CQEs dispatched")                                    \
	X(enters, "io_uring_enter system calls")                             \
	X(overflows, "times the CQ overflowed and was drained")              \
	X(in_flight, "operations submitted and not yet finished")            \
	X(enobufs, "multishot recvs re-armed after the buffer ring ran dry") \
	X(short_sends, "sends resubmitted after a short write")              \
	X(cancels, "cancel requests submitted")                              \
	X(conns, "connections open")                                         \
	X(msgs_in, "messages received from other rings")                     \
	X(recv_restarts, "parked multishot recvs cancelled and re-armed")    \
	X(timer_rearm_retries, "periodic timer ticks re-armed a turn late")  \
	X(recv_check_late, "recv checks that found the recv ending anyway")

struct px_ring_stats {
#define PX_RING_STAT_FIELD(name, desc) uint64_t name;
	PX_RING_COUNTERS(PX_RING_STAT_FIELD)
#undef PX_RING_STAT_FIELD
};

#define PX_RING_NR_COUNTERS (sizeof(struct px_ring_stats) / sizeof(uint64_t))

/*
 * px_ring_stats_get - copy the ring's counters.  Any thread; each value is
 * read atomically, the set is not one snapshot.
 */
PX_API void
px_ring_stats_get(const struct px_ring *ring, struct px_ring_stats *out);

/* Name and description of counter @i (< PX_RING_NR_COUNTERS), or NULL. */
PX_API const char *px_ring_stat_name(unsigned int i);
PX_API const char *px_ring_stat_desc(unsigned int i);

#endif
