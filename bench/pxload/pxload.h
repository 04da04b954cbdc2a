/* SPDX-License-Identifier: MIT */
/*
 * pxload: a load generator for memcached-protocol servers, on patinox's
 * io_uring engine (px_ring).  Each worker thread owns one ring and a share
 * of the connections; each connection keeps up to `depth` requests in
 * flight, measures each one from the moment it was queued to the moment
 * its whole reply was parsed, and records it in the worker's histogram.
 *
 * A run has three phases, separated by barriers so that every worker
 * enters the next one together: connect, preload (optional: one set per
 * key, unmeasured), and load (optional warm-up, then the measured part,
 * then a drain of the requests still in flight).
 */
#ifndef PXLOAD_H
#define PXLOAD_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <patinox/ring.h>

#include "hist.h"
#include "keygen.h"

/*
 * Defaults of the command-line options (pxload --help shows them) and
 * pxload's limits: Kconfig symbols, bench/Kconfig.
 */
#define PXLOAD_DEF_PORT       CONFIG_PX_PXLOAD_PORT
#define PXLOAD_DEF_CONNS      CONFIG_PX_PXLOAD_CONNS
#define PXLOAD_DEF_DEPTH      CONFIG_PX_PXLOAD_DEPTH
#define PXLOAD_DEF_KEYS       CONFIG_PX_PXLOAD_KEYS
#define PXLOAD_DEF_ZIPF       (CONFIG_PX_PXLOAD_ZIPF_MILLI / 1000.0)
#define PXLOAD_DEF_VALUE      CONFIG_PX_PXLOAD_VALUE
#define PXLOAD_DEF_GET_RATIO  (CONFIG_PX_PXLOAD_GET_PERCENT / 100.0)
#define PXLOAD_DEF_DURATION_S (CONFIG_PX_PXLOAD_DURATION_MS / 1000.0)
#define PXLOAD_DEF_THREADS    CONFIG_PX_PXLOAD_THREADS
#define PXLOAD_DEF_SEED       CONFIG_PX_PXLOAD_SEED
#define PXLOAD_DEF_PREFIX     CONFIG_PX_PXLOAD_PREFIX
#define PXLOAD_DEF_CONNECT_MS CONFIG_PX_PXLOAD_CONNECT_MS
/* How long the load phase waits for replies after it stops sending. */
#define PXLOAD_DRAIN_MS CONFIG_PX_PXLOAD_DRAIN_MS
/*
 * --reply-timeout: a worker that has requests in flight and gets no reply
 * for this long gives up on its connections (counted as connection
 * errors, their requests as unanswered), whatever the phase.
 */
#define PXLOAD_DEF_STALL_MS CONFIG_PX_PXLOAD_STALL_MS
/* Preload pipeline depth per connection (sets are small and unmeasured). */
#define PXLOAD_PRELOAD_DEPTH CONFIG_PX_PXLOAD_PRELOAD_DEPTH
/* Requests per connection at most, whatever --depth says. */
#define PXLOAD_MAX_DEPTH CONFIG_PX_PXLOAD_MAX_DEPTH
#define PXLOAD_MAX_VALUE ((uint32_t)CONFIG_PX_PXLOAD_MAX_VALUE_KB << 10)

_Static_assert(CONFIG_PX_PXLOAD_VALUE <= PXLOAD_MAX_VALUE,
	       "CONFIG_PX_PXLOAD_VALUE exceeds CONFIG_PX_PXLOAD_MAX_VALUE_KB");

struct pxload_opts {
	struct sockaddr_in addr;
	uint32_t conns;
	uint32_t depth;
	uint64_t keys;
	double zipf; /* 0 = uniform */
	uint32_t value_size;
	double get_ratio;  /* fraction of requests that are gets */
	double duration_s; /* used when requests == 0 */
	uint64_t requests; /* measured requests in all; 0 = use duration */
	double warmup_s;
	bool preload;
	bool preload_only;
	uint32_t threads;
	uint64_t seed;
	const char *prefix;
	uint32_t connect_ms;
	uint32_t stall_ms; /* reply timeout, see PXLOAD_DEF_STALL_MS */
	bool progress;
	bool batch; /* send depth requests, await all, repeat */
};

/* What a worker counts; merged over workers for the report. */
struct pxload_stats {
	uint64_t ops; /* measured replies without error */
	uint64_t gets, hits, misses, sets;
	uint64_t preloaded;      /* preload sets answered STORED */
	uint64_t err_protocol;   /* ERROR, CLIENT_ERROR, SERVER_ERROR */
	uint64_t err_unexpected; /* a valid reply of the wrong kind or size,
				  * or bytes that are no reply at all */
	uint64_t err_conn;       /* failed connects, resets, early EOF */
	uint64_t unanswered;     /* requests lost with a connection or drain */
	uint64_t measure_ns;     /* length of the measured window */
	struct hist lat;         /* nanoseconds */
};

enum pxload_phase {
	PHASE_CONNECT,
	PHASE_PRELOAD,
	PHASE_LOAD,
	PHASE_DONE,
};

/* One request in flight, oldest first in its connection's queue. */
struct pxload_req {
	uint64_t t_ns;
	uint8_t is_set;
	uint8_t measured;
	uint8_t preload;
};

struct pxload_buf {
	char *data;
	size_t len;
	size_t cap;
};

struct pxload_worker;

struct pxload_conn {
	struct pxload_worker *w;
	struct px_ring_conn *rc; /* NULL until connected, and once dead */
	int fd;
	bool dead;
	bool send_busy;          /* tx[busy_idx] is being sent */
	uint32_t fill;           /* index of the tx buffer filling */
	struct pxload_buf tx[2]; /* the one in flight, the one filling */
	struct pxload_buf rx;    /* bytes of an incomplete reply */
	struct pxload_req *q;    /* ring of `qcap` requests */
	uint32_t qcap, qhead, qlen;
};

struct pxload_shared;

struct pxload_worker {
	uint32_t id;
	struct pxload_shared *sh;
	const struct pxload_opts *o;
	struct px_ring *ring;
	struct pxload_conn *conns;
	uint32_t nconns;
	enum pxload_phase phase;
	bool phase_over;     /* the phase's loop was told to stop */
	uint32_t connecting; /* connects in flight */
	uint32_t live;       /* connections usable */
	uint64_t inflight;   /* requests in flight, all connections */
	uint64_t preload_next, preload_end; /* keys this worker preloads */
	uint64_t budget; /* measured requests left (request mode) */
	bool measuring, stopping;
	uint64_t t_start, t_end; /* measured window, CLOCK_MONOTONIC ns */
	struct px_ring_op *timer, *drain_timer, *progress_timer;
	struct rng rng;
	struct keygen kg;
	const char *value;
	uint64_t done_ops;     /* read by the progress printer */
	uint64_t replies;      /* every reply parsed, for the watchdog */
	uint64_t replies_seen; /* `replies` at the watchdog's last tick */
	struct px_ring_op *watchdog;
	int err; /* setup error, reported by main */
	struct pxload_stats st;
};

struct pxload_shared {
	const struct pxload_opts *o;
	pthread_barrier_t barrier;
	struct pxload_worker *workers;
	uint64_t t_origin; /* for progress lines */
	const char *value;
};

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t pxload_now_ns(void);

/* Runs one worker's three phases on the calling thread. */
void *pxload_worker_main(void *arg);

/* Called when a connection or a reply may have ended the phase. */
void pxload_worker_check(struct pxload_worker *w);

/*
 * Connection side (conn.c).  Connections are opened here and only here:
 * when patinox's connection pool exists, pxload_conn_open() is the one
 * function that changes to borrow a connected socket from it.
 */
int pxload_conn_open(struct pxload_worker *w, struct pxload_conn *c);
/* Queues requests up to the depth the phase allows, then sends. */
void pxload_conn_pump(struct pxload_conn *c, uint64_t now);
/* Ends a connection as failed with @err (counted unless finishing). */
void pxload_conn_abort(struct pxload_conn *c, int err);
/* Frees what a connection allocated (after the ring is destroyed). */
void pxload_conn_release(struct pxload_conn *c);

/* Adds @src into @dst. */
void
pxload_stats_merge(struct pxload_stats *dst, const struct pxload_stats *src);

#endif
