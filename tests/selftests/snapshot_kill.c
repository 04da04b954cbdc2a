// SPDX-License-Identifier: MIT
/*
 * Crash safety of snapshot files: a process killed with SIGKILL while it
 * writes a snapshot leaves the previous snapshot at the path intact and
 * loadable.  One test kills the writer at a known point (inside its
 * progress callback, after blocks were written to the temporary file);
 * the other kills a writer that saves in a loop at arbitrary moments,
 * several times, and requires a complete snapshot at the path each time.
 * A full disk (a small tmpfs in a private mount namespace) makes the save
 * fail with -ENOSPC, through io_uring and through pwrite, and leaves the
 * previous snapshot in place.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <patinox/cache.h>
#include <patinox/error.h>
#include <patinox/snapshot.h>

#include "harness.h"

#define OLD_ITEMS 1000
#define NEW_ITEMS 60000

static struct px_cache *
filled(unsigned n, unsigned gen)
{
	struct px_cache *c;
	char k[32], v[200];
	unsigned i;

	if (px_cache_create(&c, 64u << 20, NULL))
		return NULL;
	memset(v, 'a' + (int)gen, sizeof(v));
	for (i = 0; i < n; i++) {
		snprintf(k, sizeof(k), "g%u:%u", gen, i);
		if (px_cache_set(c, k, strlen(k), v, 100 + i % 100, gen, 0))
			break;
	}
	return c;
}

/* Every item of a loaded file comes from one generation, all of it. */
static int
count_gen(void *arg, const struct px_cache_ref *it)
{
	unsigned *gens = arg;
	unsigned gen, i;

	if (sscanf(it->key, "g%u:%u", &gen, &i) != 2 || gen != it->flags)
		return -PX_ECORRUPT;
	gens[gen > 7 ? 7 : gen]++;
	return 0;
}

static int
stop_here(void *arg, const struct px_snapshot_info *so_far)
{
	int *pipefd = arg;

	if (so_far->blocks < 3)
		return 0;
	if (write(pipefd[1], "x", 1) != 1)
		_exit(2);
	for (;;)
		pause(); /* killed here */
	return 0;
}

static void
child_save_and_stop(const char *path, int *pipefd)
{
	struct px_cache *c = filled(NEW_ITEMS, 2);
	struct px_snapshot_opts o;

	px_snapshot_opts_init(&o);
	o.block_bytes = 64 * 1024;
	o.progress = stop_here;
	o.progress_arg = pipefd;
	px_snapshot_save(c, path, &o, NULL);
	_exit(3); /* not reached unless the save failed early */
}

TEST(snapshot_kill_during_write_keeps_previous)
{
	char path[] = "/tmp/pxsnap-kill-XXXXXX", tmp[64];
	struct px_cache *c = filled(OLD_ITEMS, 1), *d;
	struct px_snapshot_info li;
	unsigned gens[8] = {0};
	int fd = mkstemp(path), pipefd[2], status;
	char b;
	pid_t pid;

	ASSERT_GE(fd, 0);
	close(fd);
	ASSERT_NE(c, NULL);
	ASSERT_EQ(px_snapshot_save(c, path, NULL, NULL), 0);
	px_cache_destroy(c);
	ASSERT_EQ(pipe(pipefd), 0);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		child_save_and_stop(path, pipefd);
	ASSERT_EQ(read(pipefd[0], &b, 1), 1);
	kill(pid, SIGKILL);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFSIGNALED(status));

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	EXPECT_EQ(access(tmp, F_OK), 0); /* the partial file is there ... */
	EXPECT_EQ(px_snapshot_read(tmp, NULL, NULL, NULL), -PX_ECORRUPT);
	ASSERT_EQ(px_snapshot_read(path, count_gen, gens, NULL), 0);
	EXPECT_EQ(gens[1], OLD_ITEMS); /* ... and the old one is whole */
	EXPECT_EQ(gens[2], 0);
	ASSERT_EQ(px_cache_create(&d, 16u << 20, NULL), 0);
	ASSERT_EQ(px_snapshot_load(d, path, &li), 0);
	EXPECT_EQ(li.loaded, OLD_ITEMS);
	px_cache_destroy(d);
	unlink(tmp);
	unlink(path);
}

static void
child_save_forever(const char *path)
{
	struct px_cache *c = filled(NEW_ITEMS, 3);
	struct px_snapshot_opts o;

	px_snapshot_opts_init(&o);
	o.block_bytes = 32 * 1024;
	for (;;)
		if (px_snapshot_save(c, path, &o, NULL))
			_exit(3);
}

TEST_T(snapshot_kill_at_random_moments_leaves_a_whole_file, 60)
{
	char path[] = "/tmp/pxsnap-kill2-XXXXXX", tmp[64];
	struct px_cache *c = filled(OLD_ITEMS, 1);
	int fd = mkstemp(path), i, status;
	pid_t pid;

	ASSERT_GE(fd, 0);
	close(fd);
	ASSERT_NE(c, NULL);
	ASSERT_EQ(px_snapshot_save(c, path, NULL, NULL), 0);
	px_cache_destroy(c);
	srand((unsigned)time(NULL));
	for (i = 0; i < 6; i++) {
		unsigned gens[8] = {0};

		pid = fork();
		ASSERT_GE(pid, 0);
		if (pid == 0)
			child_save_forever(path);
		usleep(20000 + (useconds_t)(rand() % 200000));
		kill(pid, SIGKILL);
		ASSERT_EQ(waitpid(pid, &status, 0), pid);
		ASSERT_TRUE(WIFSIGNALED(status));
		ASSERT_EQ(px_snapshot_read(path, count_gen, gens, NULL), 0);
		EXPECT_TRUE(gens[1] == OLD_ITEMS || gens[3] == NEW_ITEMS);
		EXPECT_EQ(gens[1] + gens[3], gens[1] ? OLD_ITEMS : NEW_ITEMS);
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	unlink(path);
}

/* A 256 KiB tmpfs at a fresh directory, in a mount namespace of ours. */
static int
small_fs(char *dir)
{
	if (unshare(CLONE_NEWNS) ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) || !mkdtemp(dir))
		return -1;
	return mount("pxsnap", dir, "tmpfs", 0, "size=256k") ? -1 : 0;
}

TEST(snapshot_disk_full_fails_and_keeps_previous)
{
	char dir[] = "/tmp/pxsnap-full-XXXXXX", path[64], tmp[72];
	struct px_cache *old, *big;
	struct px_snapshot_opts o;
	unsigned gens[8] = {0};
	int pass;

	if (small_fs(dir))
		SKIP(return, "cannot mount a tmpfs (needs root): %s",
			   strerror(errno));
	snprintf(path, sizeof(path), "%s/cache.snap", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	old = filled(OLD_ITEMS / 10, 1);
	big = filled(NEW_ITEMS, 2);
	ASSERT_NE(old, NULL);
	ASSERT_NE(big, NULL);
	ASSERT_EQ(px_snapshot_save(old, path, NULL, NULL), 0);
	px_snapshot_opts_init(&o);
	for (pass = 0; pass < 2; pass++) {
		o.no_uring = pass == 1;
		EXPECT_EQ(px_snapshot_save(big, path, &o, NULL), -ENOSPC);
		EXPECT_EQ(access(tmp, F_OK), -1);
		memset(gens, 0, sizeof(gens));
		ASSERT_EQ(px_snapshot_read(path, count_gen, gens, NULL), 0);
		EXPECT_EQ(gens[1], OLD_ITEMS / 10);
	}
	px_cache_destroy(old);
	px_cache_destroy(big);
	umount(dir);
	rmdir(dir);
}

TEST_HARNESS_MAIN
