// SPDX-License-Identifier: MIT
/*
 * The server: creates the cache (walking the page backings down from
 * hugetlb when asked to), binds one SO_REUSEPORT listener per worker,
 * starts the workers, logs one start-up line, then waits for SIGTERM or
 * SIGINT and stops the workers through their rings.
 *
 * Connections are spread by the kernel: every worker owns a listening
 * socket on the same address with SO_REUSEPORT and runs a multishot accept
 * on it, so an accepted connection is born on the thread that serves it
 * and nothing crosses threads per connection.  docs/pxcached.md compares
 * this with accepting on one ring and handing over with msg_ring.
 *
 * Signals are blocked in every thread; the main thread takes them with
 * sigwait() and raises an atomic stop flag that each worker's periodic
 * tick reads.  (A msg_ring post would wake the workers sooner, but the
 * kernel's ordering of it is invisible to ThreadSanitizer, which then
 * reports the posted message as a race; a tick of CONFIG_PX_PXCACHED_
 * TICK_MS is fast enough for a shutdown.)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <patinox/error.h>
#include <patinox/probe.h>

#include "../common/log.h"
#include "idle.h"
#include "pxcached.h"
#include "server.h"

#define TICK_NS ((uint64_t)CONFIG_PX_PXCACHED_TICK_MS * 1000000ull)
#define ACCEPT_WARN_NS \
	((uint64_t)CONFIG_PX_PXCACHED_ACCEPT_WARN_S * 1000000000ull)
#define DRAIN_NS ((uint64_t)CONFIG_PX_PXCACHED_DRAIN_MS * 1000000ull)

/* ---- Listeners ------------------------------------------------------ */

static int
resolve(const struct pxc_opts *o, int port, struct sockaddr_storage *ss,
	socklen_t *len)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res;
	char svc[8];
	int rc;

	snprintf(svc, sizeof(svc), "%d", port);
	rc = getaddrinfo(o->listen, svc, &hints, &res);
	if (rc != 0) {
		LOG_ERROR("cannot resolve -l %s: %s", o->listen,
			  gai_strerror(rc));
		return -EINVAL;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int
bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/*
 * A TCP socket bound to @port on the listen address (0: the kernel
 * chooses), with SO_REUSEADDR and, if @reuseport, SO_REUSEPORT.  Returns
 * the fd or -errno.
 */
static int
bound_socket(const struct pxc_opts *o, int port, bool reuseport)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, rc;

	rc = resolve(o, port, &ss, &len);
	if (rc < 0)
		return rc;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (reuseport &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

/* One listening socket; @port 0 lets the kernel choose (first one). */
static int
listen_on(const struct pxc_opts *o, int port)
{
	int fd = bound_socket(o, port, true), rc;

	if (fd < 0 || listen(fd, CONFIG_PX_PXCACHED_BACKLOG) == 0)
		return fd;
	rc = -errno;
	close(fd);
	return rc;
}

/*
 * SO_REUSEPORT lets a second pxcached of the same user share a fixed port
 * with a running one, each getting part of the connections.  A socket
 * bound without SO_REUSEPORT fails with EADDRINUSE while anyone listens
 * there, so bind one first, and close it before the real listeners.
 */
static int
port_probe(const struct pxc_opts *o, int port)
{
	int fd = bound_socket(o, port, false);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

static int
open_listeners(struct pxc_server *s)
{
	int port = s->opts.port;
	int rc = port ? port_probe(&s->opts, port) : 0;

	if (rc < 0) {
		LOG_ERROR("cannot listen on %s port %d: %s", s->opts.listen,
			  port, strerror(-rc));
		return rc;
	}
	for (unsigned i = 0; i < s->nworkers; i++) {
		int fd = listen_on(&s->opts, port);

		if (fd < 0) {
			LOG_ERROR("cannot listen on %s port %d: %s",
				  s->opts.listen, port, strerror(-fd));
			return fd;
		}
		s->workers[i].listen_fd = fd;
		if (port == 0)
			port = bound_port(fd);
	}
	s->port = port;
	return 0;
}

static int
write_port_file(const char *path, int port)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "%d\n", port);
	if (fclose(f) != 0 || rename(tmp, path) < 0)
		return -errno;
	return 0;
}

/* ---- Workers -------------------------------------------------------- */

static void on_accept(struct px_ring *ring, int res, bool more, void *ctx);

static void
listener_close(struct pxc_worker *w)
{
	w->accepting = false;
	close(w->listen_fd);
	w->listen_fd = -1;
	if (w->conns.next == &w->conns && w->stopping)
		px_ring_stop(w->ring);
}

static void
accept_start(struct pxc_worker *w)
{
	if (!w->stopping && px_ring_accept(w->ring, w->listen_fd, 0, on_accept,
					   w, &w->accept_op) == 0)
		return;
	w->accept_op = NULL;
	listener_close(w);
}

/* The pause after an accept error (EMFILE...) is over. */
static void
on_accept_retry(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct pxc_worker *w = ctx;

	w->accept_op = NULL;
	if (res == 0)
		accept_start(w);
	else
		listener_close(w);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One line per CONFIG_PX_PXCACHED_ACCEPT_WARN_S, counting the others. */
static void
accept_warn(struct pxc_worker *w, int res)
{
	uint64_t now = now_ns();

	if (now < w->accept_warn_ns) {
		w->accept_quiet++;
		return;
	}
	LOG_WARN("accept: %s; retrying every %d ms (worker %u; %llu more "
		 "failures not logged in the last %d s)",
		 strerror(-res), CONFIG_PX_PXCACHED_TICK_MS, w->id,
		 (unsigned long long)w->accept_quiet,
		 CONFIG_PX_PXCACHED_ACCEPT_WARN_S);
	w->accept_quiet = 0;
	w->accept_warn_ns = now + ACCEPT_WARN_NS;
}

/*
 * A failed accept ends the multishot; it is started again one tick later
 * rather than at once, so that running out of descriptors does not spin.
 */
static void
on_accept(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct pxc_worker *w = ctx;

	if (res >= 0)
		pxc_conn_accept(w, res);
	else if (res != -ECANCELED)
		accept_warn(w, res);
	if (more)
		return;
	w->accept_op = NULL;
	if (res >= 0) {
		accept_start(w);
		return;
	}
	if (res == -ECANCELED || w->stopping ||
	    px_ring_timer(ring, TICK_NS, 0, on_accept_retry, w, &w->accept_op) <
		0)
		listener_close(w);
}

static void worker_stop(struct pxc_worker *w);

static void
on_tick(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct pxc_worker *w = ctx;

	if (!more)
		w->tick_op = NULL;
	if (res != 0 || w->stopping)
		return;
	if (atomic_load_explicit(&w->srv->stop_requested,
				 memory_order_acquire)) {
		worker_stop(w);
		return;
	}
	px_cache_maintain(w->srv->cache, CONFIG_PX_PXCACHED_MAINTAIN_BUCKETS);
}

/*
 * The drain time is over: close the connections whose replies did not
 * go out (clients that stopped reading), so the shutdown ends.
 */
static void
on_drain(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct pxc_worker *w = ctx;
	struct pxc_conn *c, *next;
	unsigned cut = 0;

	if (!more)
		w->drain_op = NULL;
	if (res != 0)
		return;
	for (c = w->conns.next; c != &w->conns; c = next) {
		next = c->next;
		if (c->state == PXC_CONN_CLOSING)
			continue;
		cut++;
		pxc_conn_close(c);
	}
	if (cut)
		LOG_WARN("worker %u: replies still unsent after %d ms: "
			 "closing %u connections",
			 w->id, CONFIG_PX_PXCACHED_DRAIN_MS, cut);
}

/*
 * Stop accepting and reading; close every connection once its replies
 * are out, or when CONFIG_PX_PXCACHED_DRAIN_MS has passed.
 */
static void
worker_stop(struct pxc_worker *w)
{
	w->stopping = true;
	if (w->accept_op)
		px_ring_cancel(w->ring, w->accept_op);
	if (w->tick_op)
		px_ring_cancel(w->ring, w->tick_op);
	pxc_idle_stop(w);
	for (struct pxc_conn *c = w->conns.next; c != &w->conns; c = c->next) {
		if (c->recv_on)
			px_ring_conn_recv_stop(c->rc);
		else if (!c->sends && c->state != PXC_CONN_CLOSING)
			pxc_conn_close(c);
	}
	if (!w->accepting && w->conns.next == &w->conns) {
		px_ring_stop(w->ring);
		return;
	}
	if (px_ring_timer(w->ring, DRAIN_NS, 0, on_drain, w, &w->drain_op) < 0)
		LOG_WARN("worker %u: no drain timer: waiting for every reply",
			 w->id);
}

/* -o ring_entries / ring_cq_entries: 0 keeps the ring's defaults. */
static void
ring_sizes(const struct pxc_opts *o, struct px_ring_opts *ro)
{
	if (o->ring_entries) {
		ro->sq_entries = o->ring_entries;
		ro->cq_entries = 0; /* the ring's factor times the SQ */
	}
	if (o->ring_cq_entries)
		ro->cq_entries = o->ring_cq_entries;
}

static int
worker_setup(struct pxc_worker *w)
{
	struct px_ring_opts ro;
	int rc;

	px_ring_opts_init(&ro);
	ro.buf_count = CONFIG_PX_PXCACHED_RECV_BUFS;
	ro.buf_size = CONFIG_PX_PXCACHED_RECV_BUF_SIZE;
	ring_sizes(&w->srv->opts, &ro);
	rc = px_ring_create(&ro, &w->ring);
	if (rc < 0)
		return rc;
	rc = px_ring_accept(w->ring, w->listen_fd, 0, on_accept, w,
			    &w->accept_op);
	if (rc < 0)
		return rc;
	w->accepting = true;
	rc = px_ring_timer(w->ring, TICK_NS, PX_RING_TIMER_PERIODIC, on_tick, w,
			   &w->tick_op);
	return rc < 0 ? rc : pxc_idle_start(w);
}

/*
 * Other workers read this ring's counters for stats while they run, so a
 * ring is destroyed only once every worker has left its loop.
 */
static void
worker_wait_all_finished(struct pxc_server *s)
{
	atomic_fetch_add(&s->finished, 1);
	while (atomic_load(&s->finished) < s->nworkers)
		usleep(1000);
}

static void *
worker_main(void *arg)
{
	struct pxc_worker *w = arg;
	int rc;

	w->start_err = worker_setup(w);
	atomic_fetch_add(&w->srv->started, 1);
	/* Serve only once the server is announced (start-up line, port). */
	while (!atomic_load(&w->srv->go))
		usleep(1000);
	if (w->start_err == 0) {
		rc = px_ring_run(w->ring);
		if (rc < 0)
			LOG_ERROR("worker %u: ring loop failed: %s", w->id,
				  px_strerror_in(PX_PART_RING, rc));
	}
	worker_wait_all_finished(w->srv);
	px_ring_destroy(w->ring);
	pxc_out_free_list(w);
	if (w->listen_fd >= 0)
		close(w->listen_fd);
	w->listen_fd = -1;
	atomic_fetch_add(&w->srv->stopped, 1);
	return NULL;
}

/* ---- The cache ------------------------------------------------------ */

static int
parse_policy(const char *name, enum px_cache_policy *out)
{
	static const enum px_cache_policy all[] = {
	    PX_CACHE_POLICY_LRU, PX_CACHE_POLICY_SIEVE, PX_CACHE_POLICY_S3FIFO};

	*out = PX_CACHE_POLICY_DEFAULT;
	if (!name)
		return 0;
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (!strcmp(name, px_cache_policy_name(all[i]))) {
			*out = all[i];
			return 0;
		}
	}
	return -EINVAL;
}

static int
cache_try(struct pxc_server *s, enum px_region_backing b,
	  enum px_cache_policy policy)
{
	struct px_cache_opts co;

	px_cache_opts_init(&co);
	co.policy = policy;
	co.item_max = s->opts.item_max;
	co.region.backing = b;
	co.region.name = "pxcached";
	/* A memfd that --handover can give to the next pxcached. */
	co.region.shareable = s->opts.handover != NULL;
	return px_cache_create(&s->cache, s->opts.memory_mb << 20, &co);
}

/*
 * Steps down from 2 MiB hugetlb pages to THP to 4 KiB pages as the
 * --hugepages mode allows, remembering why for the start-up line.
 */
static int
cache_create(struct pxc_server *s)
{
	enum px_cache_policy policy;
	enum pxc_hugepages mode = s->opts.hugepages;
	int rc = -EINVAL;

	if (parse_policy(s->opts.policy, &policy) < 0) {
		LOG_ERROR("--policy %s: unknown (lru, sieve, s3fifo)",
			  s->opts.policy);
		return -EINVAL;
	}
	s->backing_note = "";
	if (mode != PXC_HUGE_OFF) {
		rc = cache_try(s, PX_REGION_HUGETLB_2M, policy);
		s->backing = "hugetlb-2M";
		if (rc == 0 || mode == PXC_HUGE_ON)
			return rc;
		s->backing_note = " (fallback: no free 2 MiB hugepages for "
				  "the whole cache; reserve them with sysctl "
				  "vm.nr_hugepages)";
		rc = cache_try(s, PX_REGION_THP, policy);
		s->backing = "thp";
		if (rc == 0)
			return 0;
	}
	s->backing = "4K";
	return cache_try(s, PX_REGION_4K, policy);
}

/* ---- Start and stop ------------------------------------------------- */

static void
stop_workers(struct pxc_server *s)
{
	atomic_store_explicit(&s->stop_requested, true, memory_order_release);
	for (unsigned i = 0; i < s->nworkers; i++)
		pthread_join(s->workers[i].thread, NULL);
}

static int
start_workers(struct pxc_server *s)
{
	int err = 0;
	unsigned i;

	for (i = 0; i < s->nworkers; i++) {
		struct pxc_worker *w = &s->workers[i];

		w->srv = s;
		w->id = i;
		w->conns.next = w->conns.prev = &w->conns;
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			LOG_ERROR("cannot start worker thread %u", i);
			s->nworkers = i;
			return -EAGAIN;
		}
	}
	while (atomic_load(&s->started) < s->nworkers)
		usleep(1000);
	for (i = 0; i < s->nworkers && !err; i++)
		err = s->workers[i].start_err;
	if (err)
		LOG_ERROR("cannot start a worker ring: %s",
			  px_strerror_in(PX_PART_RING, err));
	return err;
}

static void
log_start(const struct pxc_server *s)
{
	const struct pxc_opts *o = &s->opts;

	LOG_NOTICE("pxcached %s listening on %s port %d, %u threads, "
		   "%llu MiB cache on %s pages%s, policy %s, max %u "
		   "connections, items up to %llu KiB%s",
		   PX_VERSION_STRING, o->listen, s->port, s->nworkers,
		   (unsigned long long)o->memory_mb, s->backing,
		   s->backing_note,
		   px_cache_policy_name(px_cache_policy(s->cache)),
		   o->max_conns, (unsigned long long)(o->item_max >> 10),
		   s->auth ? ", authentication on" : "");
}

/* Warn once when ulimit -n cannot hold -c connections. */
static void
check_nofile(const struct pxc_opts *o)
{
	uint64_t want = (uint64_t)o->max_conns + CONFIG_PX_PXCACHED_FD_MARGIN;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    (uint64_t)rl.rlim_cur >= want)
		return;
	LOG_WARN("-c %u needs about %llu descriptors but ulimit -n is %llu: "
		 "accept will fail and pause before the connection limit; "
		 "raise ulimit -n or lower -c",
		 o->max_conns, (unsigned long long)want,
		 (unsigned long long)rl.rlim_cur);
}

/*
 * The signals the main thread waits for: SIGTERM, SIGINT and SIGUSR1
 * (memcached's graceful shutdown) stop the server, with the final
 * snapshot; SIGHUP is logged and ignored.  Left to their default action,
 * a terminal's hangup or a memcached operator's SIGUSR1 killed the
 * process without the final snapshot.
 */
static void
stop_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGHUP);
}

static int
wait_signal(void)
{
	sigset_t set;
	int sig = 0;

	stop_set(&set);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			return -EINTR;
		if (sig != SIGHUP)
			return sig;
		LOG_NOTICE("signal %d (SIGHUP) ignored: there is nothing to "
			   "reload; stop with SIGTERM, SIGINT or SIGUSR1",
			   sig);
	}
}

static void
block_signals(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	stop_set(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* Fails early, with the reason, when io_uring is blocked. */
static int
check_uring(void)
{
	struct px_ring_opts ro;
	struct px_ring *ring;
	int rc;

	px_ring_opts_init(&ro);
	ro.flags |= PX_RING_NO_BUF_RING;
	rc = px_ring_create(&ro, &ring);
	if (rc < 0) {
		LOG_ERROR("cannot create an io_uring: %s",
			  px_strerror_in(PX_PART_RING, rc));
		return rc;
	}
	px_ring_destroy(ring);
	return 0;
}

/* A successor asked for the cache: give it, or save it when that fails. */
static int
give_or_save(struct pxc_server *s)
{
	int rc = pxc_ho_give(s);

	if (rc == 0)
		return 0;
	atomic_store(&s->ho.requested, false);
	if (s->cache)
		pxc_snap_stop(s);
	return rc;
}

static int
serve(struct pxc_server *s)
{
	int rc, sig;

	rc = start_workers(s);
	if (rc == 0 && s->opts.port_file) {
		rc = write_port_file(s->opts.port_file, s->port);
		if (rc < 0)
			LOG_ERROR("cannot write --port-file %s: %s",
				  s->opts.port_file, strerror(-rc));
	}
	if (rc == 0) {
		log_start(s);
		check_nofile(&s->opts);
	}
	atomic_store(&s->go, true);
	if (rc == 0)
		rc = pxc_snap_start(s);
	if (rc == 0)
		rc = pxc_ho_listen(s);
	if (rc == 0) {
		s->ho.served = true;
		do
			sig = wait_signal();
		while (sig == SIGUSR1 && atomic_load(&s->ho.requested) &&
		       !pxc_ho_still_asking(s));
		if (atomic_load(&s->ho.requested))
			LOG_NOTICE("handover: pid %ld takes the cache over; "
				   "stopping, finishing requests in flight",
				   s->ho.peer_pid);
		else
			LOG_NOTICE("signal %d: stopping; finishing requests "
				   "in flight",
				   sig);
	}
	stop_workers(s);
	/* No request in flight now: the final snapshot holds every reply
	 * (none when the cache goes to a successor, unless that fails). */
	if (rc == 0)
		rc = pxc_snap_stop(s);
	if (rc == 0 && atomic_load(&s->ho.requested))
		rc = give_or_save(s);
	pxc_ho_close(s);
	return rc;
}

static int
load_auth(struct pxc_server *s)
{
	int rc;

	if (!s->opts.auth_file)
		return 0;
	rc = pxc_auth_load(s->opts.auth_file, &s->auth);
	if (rc < 0)
		LOG_ERROR("-Y %s: %s (lines of user:password)",
			  s->opts.auth_file, strerror(-rc));
	return rc;
}

/* The cache, or a log line saying why not and what to do. */
static int
setup_cache(struct pxc_server *s)
{
	const struct pxc_opts *o = &s->opts;
	int rc = cache_create(s);

	if (rc < 0 && o->hugepages == PXC_HUGE_ON)
		LOG_ERROR("--hugepages on: a %llu MiB cache needs about %llu "
			  "free 2 MiB hugetlb pages, %llu are free (%s); "
			  "reserve more with sysctl vm.nr_hugepages or use "
			  "--hugepages auto",
			  (unsigned long long)o->memory_mb,
			  (unsigned long long)(o->memory_mb + 1) / 2,
			  (unsigned long long)px_probe_huge_free(2ull << 20),
			  px_strerror(rc));
	else if (rc < 0)
		LOG_ERROR("cannot create a %llu MiB cache on %s pages: %s",
			  (unsigned long long)o->memory_mb, s->backing,
			  px_strerror(rc));
	return rc;
}

/* The live settings cell, from the options (verbosity: -v count). */
static int
start_live(struct pxc_server *s)
{
	struct pxc_live init = {.verbosity = (uint32_t)s->opts.verbose,
				.max_conns = s->opts.max_conns};
	int rc = pxc_live_init(&init);

	if (rc < 0)
		LOG_ERROR("cannot create the live settings: %s",
			  px_strerror(rc));
	return rc;
}

/* Workers and their listeners, then serving until a signal. */
static int
run_workers(struct pxc_server *s)
{
	int rc;

	s->workers = calloc(s->nworkers, sizeof(*s->workers));
	if (!s->workers)
		return -ENOMEM;
	for (unsigned i = 0; i < s->nworkers; i++)
		s->workers[i].listen_fd = -1;
	rc = open_listeners(s);
	if (rc == 0) {
		rc = serve(s);
	} else {
		for (unsigned i = 0; i < s->nworkers; i++)
			if (s->workers[i].listen_fd >= 0)
				close(s->workers[i].listen_fd);
	}
	free(s->workers);
	return rc;
}

int
pxc_server_run(const struct pxc_opts *o)
{
	struct pxc_server *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	s->opts = *o;
	s->nworkers = o->threads;
	s->start_time = (int64_t)time(NULL);
	block_signals();

	rc = check_uring();
	if (rc == 0)
		rc = load_auth(s);
	if (rc == 0)
		rc = pxc_ho_takeover(s);
	if (rc == 0 && !s->cache)
		rc = setup_cache(s);
	if (rc < 0)
		goto out_free;
	rc = pxc_snap_load(s);
	if (rc > 0) { /* stopped during the load: nothing to serve or save */
		rc = 0;
		goto out_unlock;
	}
	if (rc == 0)
		rc = start_live(s);
	if (rc == 0) {
		rc = run_workers(s);
		pxc_live_destroy();
	}
	if (rc == 0 && !s->cache)
		LOG_NOTICE("stopped cleanly: the cache went to pid %ld",
			   s->ho.peer_pid);
	else if (rc == 0)
		LOG_NOTICE("stopped cleanly");
	else if (s->ho.adopted && s->cache && !s->ho.served)
		pxc_snap_rescue(s); /* its old server is gone */
out_unlock:
	pxc_snap_unlock(s);
	px_cache_destroy(s->cache);
out_free:
	pxc_auth_free(s->auth);
	free(s);
	return rc;
}
