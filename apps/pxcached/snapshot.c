// SPDX-License-Identifier: MIT
/*
 * pxcached's warm restart (--snapshot FILE): the cache is filled from
 * FILE after it is created and before any listener opens, saved every
 * --snapshot-interval seconds by a thread of its own while the workers
 * serve, and saved once more after SIGTERM/SIGINT/SIGUSR1 when the
 * workers have stopped, so the last image holds every request that was
 * answered.  A periodic save still running at the stop is abandoned
 * (its temporary file removed): the final save replaces it.
 *
 * px_snapshot_save() writes a temporary file and renames it, so a crash
 * or kill -9 at any moment leaves the previous snapshot whole; and
 * px_snapshot_load() verifies the whole file before it stores anything,
 * so a refused file leaves the cache empty.  A stop signal during the
 * load ends it within a block, and the server exits without serving and
 * without saving the partial cache.  The saver thread inherits
 * the main thread's blocked signals (server.c, stop_set()).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <patinox/error.h>
#include <patinox/snapshot.h>

#include "../common/log.h"
#include "pxcached.h"

/* Whether FILE.tmp can be created (a leftover one written over). */
static int
tmp_creatable(const char *tmp)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (fd >= 0) {
		close(fd);
		unlink(tmp);
		return 0;
	}
	if (errno != EEXIST)
		return -errno;
	/* Left by a save that was cut short: the next save truncates it. */
	return access(tmp, W_OK) < 0 ? -errno : 0;
}

/*
 * Whether a save can work at all: FILE is missing or a regular file, and
 * FILE.tmp can be created beside it.  Without this check a path in a
 * missing or read-only directory was found out only by the final save,
 * after the whole session the snapshot was meant to keep.
 */
static int
check_savable(const char *path)
{
	size_t n = strlen(path) + sizeof(".tmp");
	struct stat st;
	char *tmp;
	int rc;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return -EISDIR;
	/* A FIFO blocked the load's open() forever, with SIGTERM blocked;
	 * a device node would be replaced by the first save's rename(). */
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return -EINVAL;
	tmp = malloc(n);
	if (!tmp)
		return -ENOMEM;
	snprintf(tmp, n, "%s.tmp", path);
	rc = tmp_creatable(tmp);
	free(tmp);
	return rc;
}

/*
 * A smaller -m than the saving server's evicts while loading: "loaded N
 * items" alone then hid that most of them are gone already.
 */
static void
log_evicted(const struct pxc_server *s, const struct px_snapshot_info *li)
{
	uint64_t m[PX_CACHE_METRIC_COUNT];

	px_cache_metrics(s->cache, m);
	if (m[PX_CACHE_M_items] >= li->loaded)
		return;
	LOG_WARN("snapshot %s: only %llu of the %llu loaded items fit in "
		 "-m %llu MiB; the cache's policy evicted %llu while loading",
		 s->opts.snapshot, (unsigned long long)m[PX_CACHE_M_items],
		 (unsigned long long)li->loaded,
		 (unsigned long long)s->opts.memory_mb,
		 (unsigned long long)(li->loaded - m[PX_CACHE_M_items]));
}

/* @link's target, joined to @link's directory when relative. */
static char *
link_target(const char *link)
{
	char buf[PATH_MAX], *dir, *out;
	ssize_t n = readlink(link, buf, sizeof(buf) - 1);
	size_t len;

	if (n < 0)
		return NULL;
	buf[n] = 0;
	if (buf[0] == '/')
		return strdup(buf);
	dir = strdup(link);
	if (!dir)
		return NULL;
	len = strlen(dir) + (size_t)n + 2;
	out = malloc(len);
	if (out)
		snprintf(out, len, "%s/%s", dirname(dir), buf);
	free(dir);
	return out;
}

/*
 * A FILE that is a symbolic link is saved to its target: rename() over
 * the link replaced the link itself with a regular file, so the saves
 * went beside the link and the target (on the disk meant for it) kept
 * the first image.  A dangling link is followed too (the first save
 * creates the target).
 */
static int
follow_links(struct pxc_server *s)
{
	const char *link = s->opts.snapshot;
	struct stat st;
	char *t;
	int hops;

	for (hops = 0; lstat(link, &st) == 0 && S_ISLNK(st.st_mode); hops++) {
		if (hops == 40)
			return -ELOOP;
		t = link_target(link);
		if (!t)
			return errno ? -errno : -ENOMEM;
		free(s->snap.target);
		s->snap.target = t;
		link = t;
	}
	if (hops) {
		LOG_NOTICE("snapshot %s is a link: saving to %s",
			   s->opts.snapshot, link);
		s->opts.snapshot = link;
	}
	return 0;
}

/*
 * Take FILE.lock for the server's lifetime.  Two servers given the same
 * FILE wrote the same FILE.tmp at once and renamed each other's half
 * written file over FILE: the "kept" snapshot was then refused at the
 * next start.  The second server now refuses to start instead.
 */
static int
lock_snapshot(struct pxc_server *s)
{
	const char *path = s->opts.snapshot;
	size_t n = strlen(path) + sizeof(".lock");
	char *name = malloc(n);
	int fd, rc = 0;

	if (!name)
		return -ENOMEM;
	snprintf(name, n, "%s.lock", path);
	fd = open(name, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		LOG_ERROR("snapshot %s: cannot open %s: %s", path, name,
			  strerror(-rc));
		goto out_free;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		LOG_ERROR("snapshot %s is in use by another process (%s is "
			  "locked): give each server its own FILE",
			  path, name);
		close(fd);
		goto out_free;
	}
	s->snap.lock_fd = fd;
	s->snap.locked = true;
out_free:
	free(name);
	return rc;
}

void
pxc_snap_unlock(struct pxc_server *s)
{
	free(s->snap.target);
	s->snap.target = NULL;
	if (!s->snap.locked)
		return;
	close(s->snap.lock_fd);
	s->snap.locked = false;
}

/*
 * A refused FILE is renamed to FILE.refused before the server starts
 * empty.  It used to stay as FILE and the first save replaced it: a file
 * of another format version (a rollback) or one a tool could still
 * salvage was lost a few seconds after the start.
 */
static int
set_aside(const char *path)
{
	size_t n = strlen(path) + sizeof(".refused");
	char *aside = malloc(n);

	if (!aside)
		return -ENOMEM;
	snprintf(aside, n, "%s.refused", path);
	if (rename(path, aside) == 0)
		LOG_WARN("snapshot %s: starting empty; the refused file is "
			 "kept as %s",
			 path, aside);
	else
		LOG_WARN("snapshot %s: starting empty; cannot keep the "
			 "refused file as %s (%s): the next save replaces it",
			 path, aside, strerror(errno));
	free(aside);
	return 0;
}

/*
 * px_snapshot_progress_fn of the load: -ECANCELED once SIGTERM, SIGINT
 * or SIGUSR1 is pending (blocked since the start, server.c).  A stop
 * sent during a long load used to wait for the whole load, then started
 * the server only to stop it.
 */
static int
stop_pending(void *arg, const struct px_snapshot_info *so_far)
{
	sigset_t set;

	if (sigpending(&set) < 0)
		return 0;
	if (sigismember(&set, SIGTERM) || sigismember(&set, SIGINT) ||
	    sigismember(&set, SIGUSR1))
		return -ECANCELED;
	return 0;
}

/* A large file takes seconds to load: say so before it starts. */
static void
log_loading(const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0)
		LOG_NOTICE("snapshot %s: loading %llu bytes", path,
			   (unsigned long long)st.st_size);
}

int
pxc_snap_check(struct pxc_server *s)
{
	const struct pxc_opts *o = &s->opts;
	int rc;

	if (!o->snapshot)
		return 0;
	rc = follow_links(s);
	if (rc == 0)
		rc = check_savable(o->snapshot);
	if (rc == -EINVAL)
		LOG_ERROR("snapshot %s cannot be saved: it is not a regular "
			  "file (a FIFO, socket or device)",
			  o->snapshot);
	else if (rc < 0)
		LOG_ERROR("snapshot %s cannot be saved: %s (its directory must "
			  "exist and be writable)",
			  o->snapshot, strerror(-rc));
	return rc;
}

int
pxc_snap_load(struct pxc_server *s)
{
	const struct pxc_opts *o = &s->opts;
	struct px_snapshot_info li = {0};
	struct px_snapshot_opts so;
	int rc;

	if (!o->snapshot)
		return 0;
	rc = pxc_snap_check(s);
	if (rc == 0)
		rc = lock_snapshot(s);
	if (rc < 0)
		return rc;
	if (s->ho.adopted) {
		LOG_NOTICE("snapshot %s: not loaded: the cache was taken over "
			   "whole (--handover)",
			   o->snapshot);
		return 0;
	}
	log_loading(o->snapshot);
	px_snapshot_opts_init(&so);
	so.progress = stop_pending;
	rc = px_snapshot_load_with(s->cache, o->snapshot, &so, &li);
	if (rc == -ECANCELED) {
		/* The cache holds part of the image: saving it would
		 * replace the whole snapshot with that part. */
		LOG_NOTICE("snapshot %s: stop requested during load; not "
			   "saving",
			   o->snapshot);
		return 1;
	}
	if (rc == 0) {
		LOG_NOTICE("snapshot %s: loaded %llu items (%llu expired, "
			   "%llu too large, %llu flushed) taken at %lld",
			   o->snapshot, (unsigned long long)li.loaded,
			   (unsigned long long)li.expired,
			   (unsigned long long)li.skipped,
			   (unsigned long long)li.flushed,
			   (long long)li.taken_at);
		log_evicted(s, &li);
		if (li.flush_at && !li.flushed)
			LOG_NOTICE("snapshot %s: flush_all pending at %lld "
				   "restored",
				   o->snapshot, (long long)li.flush_at);
		return 0;
	}
	if (rc == -ENOENT) {
		LOG_NOTICE("snapshot %s: no snapshot yet, starting empty",
			   o->snapshot);
		return 0;
	}
	LOG_ERROR("snapshot %s refused: %s", o->snapshot,
		  px_strerror_in(PX_PART_SNAPSHOT, rc));
	if (o->snapshot_strict)
		return rc;
	return set_aside(o->snapshot);
}

static void
record(struct pxc_snap *sn, int rc, const struct px_snapshot_info *si)
{
	atomic_fetch_add_explicit(&sn->saves, 1, memory_order_relaxed);
	atomic_store_explicit(&sn->last_error, rc, memory_order_relaxed);
	if (rc < 0)
		return;
	atomic_store_explicit(&sn->last_items, si->items, memory_order_relaxed);
	atomic_store_explicit(&sn->last_time, si->taken_at,
			      memory_order_relaxed);
}

static uint64_t
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

/*
 * A failed save's warning, rate-limited (snapwarn.h): a save failing
 * every --snapshot-interval for hours logged one line per attempt.  The
 * final save's failure is always logged (it decides the exit status).
 */
static void
log_failure(struct pxc_server *s, int rc, bool final, const char *why)
{
	struct pxc_snapwarn *w = &s->snap.warn;
	enum pxc_snapwarn_say say;

	say = pxc_snapwarn_note(w, rc, mono_s(),
				CONFIG_PX_PXCACHED_SNAPSHOT_WARN_S);
	if (say == PXC_SNAPWARN_FAILED || final)
		LOG_WARN("%s snapshot %s failed: %s; the previous file is kept",
			 why, s->opts.snapshot,
			 px_strerror_in(PX_PART_SNAPSHOT, rc));
	else if (say == PXC_SNAPWARN_STILL)
		LOG_WARN("%s snapshot %s still failing: %llu attempts since "
			 "%llu s ago: %s; the previous file is kept",
			 why, s->opts.snapshot, (unsigned long long)w->failed,
			 (unsigned long long)(mono_s() - w->since),
			 px_strerror_in(PX_PART_SNAPSHOT, rc));
}

/*
 * The first good save after failed ones is logged at notice level:
 * periodic saves log at info, so at the default verbosity the log showed
 * the failures (warn) and never that saving works again.
 */
static void
log_recovery(struct pxc_server *s, const char *why)
{
	struct pxc_snapwarn *w = &s->snap.warn;

	if (pxc_snapwarn_note(w, 0, mono_s(), 0) == PXC_SNAPWARN_RECOVERED)
		LOG_NOTICE("%s snapshot %s saved again after %llu failed "
			   "saves",
			   why, s->opts.snapshot,
			   (unsigned long long)w->failed);
	pxc_snapwarn_reset(w);
}

/*
 * px_snapshot_progress_fn of periodic saves: -ECANCELED once a stop was
 * requested.  A periodic save still running at SIGTERM used to be
 * finished and then followed by the final save: two full saves at
 * shutdown, the first one of no use, since the final one must be taken
 * after the workers stopped to hold every answered write.
 */
static int
stop_requested(void *arg, const struct px_snapshot_info *so_far)
{
	struct pxc_server *s = arg;

	if (atomic_load_explicit(&s->stop_requested, memory_order_acquire))
		return -ECANCELED;
	return 0;
}

/* One save with its log line; the final one is logged at notice level. */
static int
save(struct pxc_server *s, bool final)
{
	struct px_snapshot_info si = {0};
	const char *why = final ? "final" : "periodic";
	struct px_snapshot_opts so;
	int rc;

	/* Periodic saves run on their own thread while requests are
	 * served: they may yield CPU to them.  The final one runs after the
	 * workers stopped, at full speed. */
	px_snapshot_opts_init(&so);
	if (!final) {
		so.nice = CONFIG_PX_SNAPSHOT_PERIODIC_NICE;
		so.progress = stop_requested;
		so.progress_arg = s;
	}
	rc = px_snapshot_save(s->cache, s->opts.snapshot, &so, &si);
	if (rc == -ECANCELED && !final) {
		LOG_NOTICE("periodic snapshot %s abandoned: stopping, the "
			   "final save follows",
			   s->opts.snapshot);
		return rc;
	}

	record(&s->snap, rc, &si);
	if (rc < 0) {
		log_failure(s, rc, final, why);
		return rc;
	}
	log_recovery(s, why);
	LOG_AT(final ? LOG_LVL_NOTICE : LOG_LVL_INFO,
	       "%s snapshot %s: %llu items, %llu bytes in %llu ms", why,
	       s->opts.snapshot, (unsigned long long)si.items,
	       (unsigned long long)si.bytes,
	       (unsigned long long)(si.elapsed_ns / 1000000));
	return rc;
}

static void *
interval_main(void *arg)
{
	struct pxc_server *s = arg;
	struct pxc_snap *sn = &s->snap;
	struct timespec ts;

	pthread_mutex_lock(&sn->lock);
	while (!sn->stop) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += s->opts.snapshot_interval;
		while (!sn->stop &&
		       pthread_cond_timedwait(&sn->cond, &sn->lock, &ts) == 0)
			;
		if (sn->stop)
			break;
		pthread_mutex_unlock(&sn->lock);
		if (!stop_requested(s, NULL))
			save(s, false);
		pthread_mutex_lock(&sn->lock);
	}
	pthread_mutex_unlock(&sn->lock);
	return NULL;
}

int
pxc_snap_start(struct pxc_server *s)
{
	struct pxc_snap *sn = &s->snap;
	pthread_condattr_t ca;
	int rc;

	if (!s->opts.snapshot || !s->opts.snapshot_interval)
		return 0;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sn->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&sn->lock, NULL);
	rc = pthread_create(&sn->thread, NULL, interval_main, s);
	if (rc != 0) {
		LOG_ERROR("cannot start the snapshot thread");
		pthread_cond_destroy(&sn->cond);
		pthread_mutex_destroy(&sn->lock);
		return -rc;
	}
	sn->running = true;
	return 0;
}

int
pxc_snap_rescue(struct pxc_server *s)
{
	struct px_snapshot_info si = {0};
	size_t items = px_cache_items(s->cache);
	int rc;

	if (!s->opts.snapshot) {
		LOG_ERROR("the %zu items taken over are lost: the server could "
			  "not start, and there is no --snapshot to save them",
			  items);
		return -ENOENT;
	}
	rc = px_snapshot_save(s->cache, s->opts.snapshot, NULL, &si);
	if (rc == 0)
		LOG_NOTICE("snapshot %s: the %llu items taken over are saved, "
			   "since the server could not start",
			   s->opts.snapshot, (unsigned long long)si.items);
	else
		LOG_ERROR("snapshot %s: cannot save the %zu items taken over: "
			  "%s",
			  s->opts.snapshot, items,
			  px_strerror_in(PX_PART_SNAPSHOT, rc));
	return rc;
}

int
pxc_snap_stop(struct pxc_server *s)
{
	struct pxc_snap *sn = &s->snap;

	if (!s->opts.snapshot)
		return 0;
	if (sn->running) {
		pthread_mutex_lock(&sn->lock);
		sn->stop = true;
		pthread_cond_signal(&sn->cond);
		pthread_mutex_unlock(&sn->lock);
		pthread_join(sn->thread, NULL);
		pthread_cond_destroy(&sn->cond);
		pthread_mutex_destroy(&sn->lock);
		sn->running = false;
	}
	if (atomic_load(&s->ho.requested))
		return 0; /* the cache goes to a successor instead */
	return save(s, true);
}
