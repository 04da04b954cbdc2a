/* SPDX-License-Identifier: MIT */
/*
 * pxcached's internal types: the server, its workers (one thread and one
 * px_ring each), their connections, the reply being built for a batch of
 * requests, and the server's own counters.
 *
 * Threads: a worker and everything hanging from it (connections, replies,
 * counters) belong to that worker's thread.  Other threads only read the
 * counters (relaxed atomics, for stats) and post messages to its ring.
 * The cache is shared and thread safe.  No locks are taken here.
 */
#ifndef PXCACHED_H
#define PXCACHED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <patinox/cache.h>
#include <patinox/ring.h>

#include "auth.h"
#include "live.h"
#include "options.h"
#include "proto.h"
#include "snapwarn.h"

/*
 * The server's counters, each defined once: memcached's names and
 * meanings, so dashboards and exporters read them unchanged.
 */
#define PXC_STATS(X)                                                     \
	X(cmd_get, "keys requested by get/gets/gat/gats/mg")             \
	X(cmd_set, "storage commands, stored or not")                    \
	X(cmd_flush, "flush_all commands")                               \
	X(cmd_touch, "touch commands and keys touched by gat/gats")      \
	X(cmd_meta, "meta commands")                                     \
	X(get_hits, "keys found by a read")                              \
	X(get_misses, "keys not found by a read")                        \
	X(delete_misses, "deletes of missing keys")                      \
	X(delete_hits, "deletes that removed an item")                   \
	X(incr_misses, "incr of missing keys")                           \
	X(incr_hits, "incr that changed a value")                        \
	X(decr_misses, "decr of missing keys")                           \
	X(decr_hits, "decr that changed a value")                        \
	X(cas_misses, "cas of missing keys")                             \
	X(cas_hits, "cas that stored")                                   \
	X(cas_badval, "cas refused: the item changed")                   \
	X(touch_hits, "touches of live items")                           \
	X(touch_misses, "touches of missing items")                      \
	X(store_too_large, "values refused as larger than -I or memory") \
	X(store_no_memory, "values refused for lack of memory")          \
	X(auth_cmds, "-Y: authentication attempts (set before auth)")    \
	X(auth_errors, "-Y: authentication attempts refused")            \
	X(bytes_read, "bytes received from clients")                     \
	X(bytes_written, "bytes sent to clients")                        \
	X(total_connections, "connections accepted since start")         \
	X(rejected_connections, "connections refused over -c")           \
	X(curr_connections, "connections open now (a gauge)")            \
	X(idle_kicks, "connections closed by -o idle_timeout")           \
	X(partial_kicks, "connections closed by -o partial_timeout")

enum pxc_stat {
#define PXC_STAT_ENUM(name, desc) PXC_ST_##name,
	PXC_STATS(PXC_STAT_ENUM)
#undef PXC_STAT_ENUM
	    PXC_ST_COUNT
};

/* Written by one worker thread only; read by any. */
struct pxc_stats {
	_Atomic uint64_t v[PXC_ST_COUNT];
};

static inline void
pxc_stat_add(struct pxc_stats *s, enum pxc_stat i, uint64_t n)
{
	uint64_t old = atomic_load_explicit(&s->v[i], memory_order_relaxed);

	atomic_store_explicit(&s->v[i], old + n, memory_order_relaxed);
}

struct pxc_server;
struct pxc_worker;

/* A chunk of reply text; iovecs point into it until the send is done. */
struct pxc_chunk {
	struct pxc_chunk *next;
	size_t size;
	char data[];
};

/*
 * The reply to one batch of requests: iovecs over text chunks and over
 * pinned cache items, sent with one or more px_ring_conn_send() calls and
 * released when the last of them completes.
 */
struct pxc_out {
	struct pxc_out *next; /* free list of the worker */
	struct pxc_conn *conn;
	struct iovec *iov;
	uint32_t niov, iov_cap;
	struct px_cache_ref *refs;
	uint32_t nrefs, refs_cap;
	struct pxc_chunk *chunks; /* the first one is kept for reuse */
	char *tpos;               /* free text in the newest chunk */
	size_t tleft;
	size_t bytes;
	uint32_t parts; /* sends in flight for this reply */
	int err;        /* first send error */
};

enum pxc_conn_state {
	PXC_CONN_OPEN = 0,
	PXC_CONN_DRAINING, /* stop reading; close once replies are sent */
	PXC_CONN_CLOSING,  /* px_ring_conn_close() called */
};

struct pxc_conn {
	struct pxc_conn *prev, *next; /* the worker's list */
	struct pxc_worker *w;
	struct px_ring_conn *rc;
	struct mc_parser parser;
	char *ibuf; /* received bytes of an unfinished request */
	size_t ilen, icap;
	struct pxc_out *out; /* the reply being built, or NULL */
	uint32_t sends;      /* replies in flight */
	size_t send_bytes;   /* their bytes, for backpressure */
	enum pxc_conn_state state;
	bool recv_on;   /* the multishot recv runs */
	bool throttled; /* recv stopped for backpressure */
	bool authed;    /* -Y: authenticated (always true without -Y) */
	bool spoke;     /* some input arrived (its first byte was checked) */
	bool partial;   /* part of a request is held (idle.h) */
	uint32_t active_at;  /* idle.h: sweep count of the last request */
	uint32_t partial_at; /* idle.h: when the unfinished one began */
	uint32_t heard_at;   /* idle.h: sweep count of the last input */
};

struct pxc_worker {
	struct pxc_server *srv;
	unsigned id;
	pthread_t thread;
	struct px_ring *ring;
	int listen_fd;
	struct px_ring_op *accept_op;
	bool accepting;
	bool stopping;
	struct px_ring_op *tick_op;
	struct px_ring_op *drain_op; /* shutdown: the drain time limit */
	struct px_ring_op *sweep_op; /* idle.c: the timeout sweep, or NULL */
	uint32_t sweeps;         /* idle.c: its count, the clock of idle.h */
	uint64_t accept_warn_ns; /* when accept errors may be logged */
	uint64_t accept_quiet;   /* accept errors not logged since */
	struct pxc_conn conns;   /* list head */
	struct pxc_out *free_outs;
	struct pxc_stats stats;
	int start_err; /* 0, or why the worker could not start */
};

/* --snapshot: the saver thread and what the last save did (snapshot.c). */
struct pxc_snap {
	pthread_t thread;
	bool running; /* the --snapshot-interval thread was started */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop; /* under lock: the thread should end */
	/* The last save, for stats (relaxed: written by one thread). */
	_Atomic uint64_t saves;      /* saves attempted */
	_Atomic uint64_t last_items; /* items of the last good save */
	_Atomic int64_t last_time;   /* its Unix time, 0 for none yet */
	_Atomic int last_error;      /* -errno of the last save, or 0 */
	struct pxc_snapwarn warn;    /* failed saves since the last good one */
	char *target;                /* FILE's link target, malloc'd */
	int lock_fd;                 /* FILE.lock, held while running */
	bool locked;                 /* lock_fd is open */
};

/* --handover: the warm roll's socket and its state (handover.c). */
struct pxc_ho {
	int listen_fd;          /* the SOCKET this server serves, or -1 */
	pthread_t thread;       /* waits for a successor on listen_fd */
	bool running;           /* thread was started */
	int peer_fd;            /* the successor's connection, or -1 */
	pthread_mutex_t lock;   /* checking and closing */
	int checking;           /* a peer the thread reads its hello from */
	bool closing;           /* pxc_ho_close() runs: accept no more */
	long peer_pid;          /* its pid, from SO_PEERCRED */
	_Atomic bool requested; /* a successor asked: stop and hand over */
	bool adopted;           /* this server took its cache over */
	bool served;            /* and then served it */
};

struct pxc_server {
	struct pxc_opts opts;
	struct pxc_snap snap;
	struct pxc_ho ho;
	struct px_cache *cache;
	struct pxc_auth *auth; /* -Y credentials, or NULL */
	const char *backing;   /* page backing obtained, for logs and stats */
	const char *backing_note; /* why it fell back, or "" */
	struct pxc_worker *workers;
	unsigned nworkers;
	int port;               /* bound port */
	_Atomic uint32_t conns; /* open connections, all workers */
	_Atomic unsigned started;
	_Atomic bool go;           /* workers may serve */
	_Atomic unsigned finished; /* workers out of their loop */
	_Atomic unsigned stopped;
	_Atomic bool stop_requested; /* SIGTERM/SIGINT arrived */
	int64_t start_time;
	char listen_desc[80];
};

/* Reply building (out.c).  All on the connection's worker thread. */
void pxc_out_text(struct pxc_conn *c, const char *s, size_t n);
__attribute__((format(printf, 2, 3))) void
pxc_out_printf(struct pxc_conn *c, const char *fmt, ...);
void pxc_out_value(struct pxc_conn *c, struct px_cache_ref *ref);
void pxc_out_flush(struct pxc_conn *c);
void pxc_out_free_list(struct pxc_worker *w);

/*
 * pxc_out_lit: a string literal only.  The "" on each side makes anything
 * else (a pointer, a ?: expression) a compile error instead of a reply cut
 * to sizeof(char *) - 1 bytes.
 */
#define pxc_out_lit(c, s) pxc_out_text((c), "" s "", sizeof("" s "") - 1)

/* Commands (cmd.c, stats.c). */
void pxc_cmd_exec(struct pxc_conn *c, const struct mc_req *req);
void pxc_cmd_stats(struct pxc_conn *c, const struct mc_req *req);
void pxc_cmd_live(struct pxc_conn *c, const struct mc_req *req);

/*
 * Warm restart (snapshot.c), all on the main thread.  pxc_snap_load:
 * before the listeners; 0, 1 when a stop signal came during the load
 * (exit 0 at once, no save: the cache holds part of the file), or the
 * error when --snapshot-strict refuses the file.  pxc_snap_start: the
 * --snapshot-interval thread, once the workers serve.  pxc_snap_stop: after the
 * workers stopped, joins it and saves once more; 0 or the final save's error.
 */
int pxc_snap_load(struct pxc_server *s);
/* pxc_snap_check: --snapshot FILE can be saved (links followed), or
 * the logged error.  pxc_snap_rescue: saves a cache taken over by
 * --handover when the server cannot start with it. */
int pxc_snap_check(struct pxc_server *s);
int pxc_snap_rescue(struct pxc_server *s);
int pxc_snap_start(struct pxc_server *s);
int pxc_snap_stop(struct pxc_server *s);
/* Closes FILE.lock (held from pxc_snap_load() on) and frees what
 * pxc_snap_load() allocated; no-op without --snapshot. */
void pxc_snap_unlock(struct pxc_server *s);

/*
 * Warm roll (handover.c), on the main thread.  pxc_ho_takeover: before
 * the cache is created; with --handover, asks the server on SOCKET for
 * its cache and adopts it (s->cache set, s->ho.adopted), or finds none
 * and leaves s->cache NULL; <0 when one answered and it failed.
 * pxc_ho_listen: once serving, serves SOCKET for a successor.
 * pxc_ho_give: after the workers stopped, when s->ho.requested; hands
 * the cache over (s->cache NULL after), or keeps it and returns <0.
 * pxc_ho_still_asking: when s->ho.requested, before stopping: true while
 * the successor is still connected; false after it hung up, and then
 * SOCKET is served again for the next one (s->ho.requested false).
 * pxc_ho_close: stops serving SOCKET.
 */
int pxc_ho_takeover(struct pxc_server *s);
int pxc_ho_listen(struct pxc_server *s);
bool pxc_ho_still_asking(struct pxc_server *s);
int pxc_ho_give(struct pxc_server *s);
void pxc_ho_close(struct pxc_server *s);

/* Connections (conn.c). */
void pxc_conn_accept(struct pxc_worker *w, int fd);
void pxc_conn_drain(struct pxc_conn *c);
void pxc_conn_close(struct pxc_conn *c);
void pxc_conn_send_done(struct pxc_conn *c, size_t bytes, int res);

#endif
