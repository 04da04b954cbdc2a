// SPDX-License-Identifier: MIT
/*
 * Warm restart as a server does it, the pattern pxcached is to follow: a
 * child process plays the server.  At start it loads its snapshot file
 * (a missing file starts empty; a refused one starts empty, or exits
 * with status 78 when strict), serves (here: stores items), saves every
 * interval from a thread of its own, and on SIGTERM stops that thread and
 * saves once more before exiting.  The tests check the round trip
 * through SIGTERM, that an interval snapshot survives a SIGKILL, and the
 * two answers to a damaged file.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <patinox/cache.h>
#include <patinox/error.h>
#include <patinox/snapshot.h>

#include "harness.h"

#define EXIT_BAD_SNAPSHOT 78 /* EX_CONFIG */

struct server {
	const char *file;
	unsigned interval_s; /* 0: no periodic snapshots */
	bool strict;         /* exit on a refused file */
	unsigned items;      /* to store after the start */
	struct px_cache *c;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;
};

/* What the server tells the test once it serves. */
struct hello {
	int load_err;
	uint64_t loaded;
};

/* The --snapshot-interval thread. */
static void *
interval_loop(void *arg)
{
	struct server *s = arg;
	struct timespec ts;

	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += s->interval_s;
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
		if (s->stopping)
			break;
		pthread_mutex_unlock(&s->lock);
		px_snapshot_save(s->c, s->file, NULL, NULL); /* -EBUSY: skip */
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static void
serve(struct server *s)
{
	char k[32];
	unsigned i;

	for (i = 0; i < s->items; i++) {
		snprintf(k, sizeof(k), "item:%u", i);
		px_cache_set(s->c, k, strlen(k), k, strlen(k), i, 0);
	}
}

static int
server_main(struct server *s, int hello_fd)
{
	struct hello h = {0};
	struct px_snapshot_info li;
	pthread_t th;
	sigset_t term;
	int sig;

	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, NULL); /* before any thread */
	if (px_cache_create(&s->c, 32u << 20, NULL))
		return 1;
	h.load_err = px_snapshot_load(s->c, s->file, &li);
	h.loaded = h.load_err ? 0 : li.loaded;
	if (h.load_err && h.load_err != -ENOENT && s->strict)
		return EXIT_BAD_SNAPSHOT; /* after logging px_strerror_in() */
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	if (s->interval_s)
		pthread_create(&th, NULL, interval_loop, s);
	serve(s);
	if (write(hello_fd, &h, sizeof(h)) != sizeof(h))
		return 1;
	sigwait(&term, &sig);

	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (s->interval_s)
		pthread_join(th, NULL);
	return px_snapshot_save(s->c, s->file, NULL, NULL) ? 1 : 0;
}

/* Start a server; returns its pid, fills @h once it serves (or exits). */
static pid_t
start(struct server *s, struct hello *h, int *status)
{
	int fds[2];
	pid_t pid;

	if (pipe(fds))
		return -1;
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		_exit(server_main(s, fds[1]));
	}
	close(fds[1]);
	if (read(fds[0], h, sizeof(*h)) != sizeof(*h)) {
		waitpid(pid, status, 0);
		pid = 0; /* exited before serving */
	}
	close(fds[0]);
	return pid;
}

static int
stop(pid_t pid, int sig)
{
	int status = -1;

	kill(pid, sig);
	waitpid(pid, &status, 0);
	return status;
}

static void
temp_path(char *p, size_t n, const char *tag)
{
	snprintf(p, n, "/tmp/pxsnap-%s-%d.snap", tag, (int)getpid());
	unlink(p);
}

TEST(snapshot_restart_sigterm_saves_and_next_start_loads)
{
	char file[64];
	struct server s = {.file = file, .items = 5000};
	struct hello h;
	int status;
	pid_t pid;

	temp_path(file, sizeof(file), "term");
	pid = start(&s, &h, &status);
	ASSERT_GT(pid, 0);
	EXPECT_EQ(h.load_err, -ENOENT); /* first start: no file, empty */
	status = stop(pid, SIGTERM);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);

	s.items = 0; /* the second server stores nothing itself */
	pid = start(&s, &h, &status);
	ASSERT_GT(pid, 0);
	EXPECT_EQ(h.load_err, 0);
	EXPECT_EQ(h.loaded, 5000);
	status = stop(pid, SIGTERM);
	EXPECT_EQ(WEXITSTATUS(status), 0);
	unlink(file);
}

TEST_T(snapshot_restart_interval_snapshot_survives_sigkill, 30)
{
	char file[64];
	struct server s = {.file = file, .interval_s = 1, .items = 3000};
	struct hello h;
	int status, waited;
	pid_t pid;

	temp_path(file, sizeof(file), "interval");
	pid = start(&s, &h, &status);
	ASSERT_GT(pid, 0);
	/* Wait for an interval snapshot that holds everything served. */
	for (waited = 0; waited < 200; waited++) {
		struct px_snapshot_info si = {0};

		if (!px_snapshot_read(file, NULL, NULL, &si) &&
		    si.items == 3000)
			break;
		usleep(100000);
	}
	stop(pid, SIGKILL); /* no final save */
	s.items = 0;
	pid = start(&s, &h, &status);
	ASSERT_GT(pid, 0);
	EXPECT_EQ(h.load_err, 0);
	EXPECT_EQ(h.loaded, 3000);
	stop(pid, SIGKILL);
	unlink(file);
}

TEST(snapshot_restart_bad_file_starts_empty_or_exits_when_strict)
{
	char file[64];
	struct server s = {.file = file, .items = 10};
	struct hello h;
	int status, fd;
	pid_t pid;

	temp_path(file, sizeof(file), "bad");
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(write(fd, "not a snapshot at all", 21), 21);
	close(fd);

	pid = start(&s, &h, &status);
	ASSERT_GT(pid, 0);
	EXPECT_EQ(h.load_err, -PX_ECORRUPT);
	EXPECT_EQ(h.loaded, 0);
	stop(pid, SIGKILL);

	s.strict = true;
	pid = start(&s, &h, &status);
	ASSERT_EQ(pid, 0);
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(WEXITSTATUS(status), EXIT_BAD_SNAPSHOT);
	unlink(file);
}

TEST_HARNESS_MAIN
