/* SPDX-License-Identifier: MIT */
/*
 * Private layout of the io_uring engine, shared by the files of uring/.
 *
 * Dispatch: every CQE's user_data points at a struct px_ring_op whose
 * first member is the handler for that kind of operation, so the loop
 * calls op->handler(ring, op, cqe) and knows nothing of opcodes.  A
 * user_data of 0 marks SQEs whose completion nobody needs (linked
 * timeouts, fire-and-forget cancels); the loop skips those.
 *
 * Accounting: ring->stats.in_flight counts operations that have an SQE
 * queued or in the kernel and have not seen their final CQE (the one
 * without IORING_CQE_F_MORE).  Each handler settles its own count
 * through ring_op_ended().
 */
#ifndef PX_URING_RING_INTERNAL_H
#define PX_URING_RING_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <liburing.h>

#include <patinox/error.h>
#include <patinox/ring.h>

struct px_ring_op;

typedef void (*ring_handler_fn)(struct px_ring *ring, struct px_ring_op *op,
				const struct io_uring_cqe *cqe);

/* Work run at the end of a loop turn. */
struct ring_defer {
	struct ring_defer *next;
	void (*run)(struct px_ring *ring, struct ring_defer *d);
};

/* px_ring_op.flags */
enum {
	OP_LIVE = 1u << 0,      /* allocated, not yet ended */
	OP_IN_KERNEL = 1u << 1, /* an SQE of it is queued or in flight */
	OP_CANCELLED = 1u << 2, /* px_ring_cancel() was called */
	OP_TIMED = 1u << 3,     /* connect has a linked timeout */
	OP_PERIODIC = 1u << 4,  /* periodic timer */
	OP_ACCEPT_DIRECT = 1u << 5,
};

struct px_ring_op {
	ring_handler_fn handler; /* first: user_data points here */
	px_ring_fn fn;
	void *ctx;
	uint32_t flags;
	int fd;
	union {
		struct px_ring_op *next_free;
		struct ring_defer defer;
	};
	union {
		struct {
			struct __kernel_timespec ts;
			uint64_t start_ns;
			uint64_t period_ns;
			uint64_t ticks;
		} timer;
		struct {
			struct __kernel_timespec ts;
			struct sockaddr_storage addr;
			socklen_t len;
		} connect;
		struct ring_msg *msg;
	};
};

/* A message posted to another ring: user_data of the target's CQE. */
struct ring_msg {
	/*
	 * First, as in struct px_ring_op.  Stored last, with release, by
	 * the sender and loaded with acquire by the target's dispatch: the
	 * kernel orders the two, but thread sanitizers cannot see that,
	 * and callers rely on this edge for what @ctx points to.
	 */
	ring_handler_fn handler;
	px_ring_fn fn;
	void *ctx;
};

/* One queued send of a connection. */
struct ring_send {
	struct ring_send *next;
	px_ring_send_fn done;
	void *ctx;
	size_t total; /* bytes in all iovecs */
	size_t sent;  /* bytes already written */
	int iovcnt;
	int cap; /* iovecs the record holds */
	struct iovec iov[];
};

enum conn_state {
	CONN_OPEN,
	CONN_CLOSING, /* cancelling, waiting for completions */
	CONN_CLOSE_SUBMITTED,
};

struct px_ring_conn {
	struct px_ring *ring;
	int fd;
	bool fixed;
	enum conn_state state;
	px_ring_recv_fn on_recv;
	void *ctx;

	/* recv */
	bool recv_wanted; /* started and not stopped or ended */
	bool recv_armed;  /* the multishot recv is in the kernel */
	bool recv_stopping;
	bool recv_waiting; /* waits for buffers after -ENOBUFS */
	bool recv_restart; /* cancelled by recv_check: arm it again */
	bool send_retry;   /* the SQ was full when a send was due */
	bool on_wait;      /* on ring->wait_head */
	struct px_ring_conn *wait_next;

	/* sends: queue in order, the head ones are in flight */
	struct ring_send *send_head;
	struct ring_send **send_tail;
	uint32_t sends_pending;
	bool send_armed;
	int send_error; /* first error that broke the stream */
	struct msghdr msg;
	struct iovec batch[CONFIG_PX_RING_SEND_BATCH_IOV];

	/* close */
	uint32_t ops_in_kernel; /* recv, send, cancel, retry timer */
	bool cancel_armed;
	bool retry_armed;
	bool need_cancel;
	px_ring_closed_fn on_closed;
	void *closed_ctx;
	struct px_ring_op recv_op;
	struct px_ring_op send_op;
	struct px_ring_op cancel_op;
	struct px_ring_op retry_op;
	struct px_ring_op close_op;
	struct ring_defer close_defer;
	bool close_defer_queued;

	/* ring->conns */
	struct px_ring_conn *prev, *next;
};

struct ring_op_chunk {
	struct ring_op_chunk *next;
	struct px_ring_op ops[];
};

struct px_ring {
	struct io_uring uring;
	const void *owner; /* &ring_thread_mark of the creating thread */
	uint32_t setup_flags;
	bool stop;
	bool destroying;
	bool has_buf_ring;

	/* operation records */
	struct px_ring_op *op_free;
	struct ring_op_chunk *op_chunks;

	/* recycled send records of CONFIG_PX_RING_SEND_INLINE_IOV iovecs */
	struct ring_send *send_free;

	/* deferred work, FIFO */
	struct ring_defer *defer_head;
	struct ring_defer **defer_tail;

	/* buffer ring */
	struct io_uring_buf_ring *br;
	size_t br_bytes;
	uint8_t *buf_base;
	size_t buf_bytes;
	struct px_ring_buf *bufs;
	uint32_t buf_count;
	uint32_t buf_size;
	uint32_t buf_out;     /* delivered, not yet put back */
	uint32_t buf_pending; /* put back, not yet published */
	uint16_t bgid;

	/* connections waiting for buffers or SQ room, FIFO */
	struct px_ring_conn *wait_head;
	struct px_ring_conn **wait_tail;
	uint32_t wait_len;

	/* open connections */
	struct px_ring_conn *conns;

	struct px_ring_stats stats;
};

/* Counters: single writer (the ring's thread), readers anywhere. */
#define RING_STAT_ADD(r, name, n)                                           \
	__atomic_store_n(&(r)->stats.name, (r)->stats.name + (uint64_t)(n), \
			 __ATOMIC_RELAXED)
#define RING_STAT_SUB(r, name, n)                                           \
	__atomic_store_n(&(r)->stats.name, (r)->stats.name - (uint64_t)(n), \
			 __ATOMIC_RELAXED)

/* Encode an op pointer as user_data. */
static inline uint64_t
op_user_data(struct px_ring_op *op)
{
	return (uint64_t)(uintptr_t)op;
}

/* loop.c */
struct io_uring_sqe *ring_sqe(struct px_ring *ring);
struct io_uring_sqe *ring_sqe_op(struct px_ring *ring, struct px_ring_op *op);
/*
 * Owner check.  Each thread's ring_thread_mark has its own address while
 * the thread lives, so comparing it with the one recorded at creation
 * tells the owner from any other thread: one compare with an address
 * the initial-exec TLS model computes without a call.  A thread that
 * reuses an exited owner's TLS block passes: the check catches use from
 * a live foreign thread, not use after the owner exited.
 */
extern __thread char ring_thread_mark
    __attribute__((tls_model("initial-exec")));

static inline bool
ring_foreign(const struct px_ring *r)
{
	return __builtin_expect(r->owner != &ring_thread_mark, 0);
}

void ring_op_ended(struct px_ring *ring);
void ring_defer_add(struct px_ring *ring, struct ring_defer *d);
void ring_defer_remove(struct px_ring *ring, struct ring_defer *d);
uint64_t ring_now_ns(void);

/* ring.c: io_uring_submit(), or the test hook that replaces it */
int ring_submit_flush(struct io_uring *uring);

/* ops.c */
int ring_cancel_submit(struct px_ring *ring, uint64_t key, int fd,
		       unsigned int flags, px_ring_fn fn, void *ctx);
struct px_ring_op *
ring_op_alloc(struct px_ring *ring, px_ring_fn fn, void *ctx);
void ring_op_free(struct px_ring *ring, struct px_ring_op *op);
void ring_ops_free_all(struct px_ring *ring);

/* bufring.c */
int ring_bufring_setup(struct px_ring *ring, uint32_t count, uint32_t size,
		       uint16_t bgid);
void ring_bufring_teardown(struct px_ring *ring);
struct px_ring_buf *
ring_buf_take(struct px_ring *ring, uint16_t bid, uint32_t len);
void ring_buf_publish(struct px_ring *ring);
bool ring_bufs_available(const struct px_ring *ring);

/* conn.c */
void ring_conns_rearm_waiting(struct px_ring *ring);
void ring_conns_close_all(struct px_ring *ring);
int ring_run_once(struct px_ring *ring, int64_t timeout_ns);
int ring_flush(struct px_ring *ring);
void ring_conns_free_all(struct px_ring *ring);

#endif
