// SPDX-License-Identifier: MIT
/*
 * A file truncated underneath a mapping, on the real kernel: another
 * process shrinks the file while this one reads through the accessors,
 * which must report -EIO instead of dying of SIGBUS, on every thread.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include <patinox/mmap.h>

#include "harness.h"

#define PAGE  4096
#define PAGES 64

static int
make_file(char *path, size_t len)
{
	static char page[PAGE];
	int fd;

	strcpy(path, "/tmp/px-trunc-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	memset(page, 'p', sizeof(page));
	for (size_t off = 0; off < len; off += PAGE)
		if (write(fd, page, PAGE) != PAGE)
			return -1;
	return fd;
}

struct reader {
	struct px_mmap *m;
	long ok, eio, other;
};

static atomic_bool truncated;

/* Reads every page in rounds until one full round after the truncation. */
static void *
read_all(void *arg)
{
	struct reader *r = arg;
	char buf[PAGE];
	bool last = false;

	while (!last) {
		last = atomic_load(&truncated);
		for (int pg = 0; pg < PAGES; pg++) {
			int ret = px_mmap_read(r->m, (uint64_t)pg * PAGE, buf,
					       sizeof(buf));

			r->ok += ret == 0;
			r->eio += ret == -EIO;
			r->other += ret != 0 && ret != -EIO;
		}
	}
	return NULL;
}

TEST(mmap_truncated_by_another_process_gives_eio)
{
	struct reader rd[2] = {0};
	struct px_mmap *m;
	pthread_t th[2];
	char path[32], buf[16];
	int fd, status;
	pid_t pid;

	fd = make_file(path, (size_t)PAGES * PAGE);
	ASSERT_GE(fd, 0);
	unlink(path);
	ASSERT_EQ(px_mmap_create(&m, fd, NULL), 0);
	ASSERT_EQ(px_mmap_backend(m), PX_MMAP_MAPPED);
	for (int i = 0; i < 2; i++) {
		rd[i].m = m;
		ASSERT_EQ(pthread_create(&th[i], NULL, read_all, &rd[i]), 0);
	}
	/* Another process shrinks the file while the threads read. */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(ftruncate(fd, PAGE) == 0 ? 0 : 1);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	atomic_store(&truncated, true);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		TH_LOG("thread %d: %ld ok, %ld -EIO", i, rd[i].ok, rd[i].eio);
		EXPECT_EQ(rd[i].other, 0);
		EXPECT_GT(rd[i].ok, 0);
		EXPECT_GE(rd[i].eio, PAGES - 1);
	}
	/* After the truncation: page 0 reads, the rest are gone. */
	EXPECT_EQ(px_mmap_read(m, 0, buf, sizeof(buf)), 0);
	EXPECT_EQ(px_mmap_read(m, 5 * PAGE, buf, sizeof(buf)), -EIO);
	EXPECT_EQ(px_mmap_read(m, (uint64_t)PAGES * PAGE, buf, 1), -ERANGE);
	px_mmap_destroy(m);
	close(fd);
}

TEST(mmap_rw_write_past_new_end_gives_eio)
{
	struct px_mmap_opts o;
	struct px_mmap *m;
	char path[32];
	int fd;

	fd = make_file(path, 4 * PAGE);
	ASSERT_GE(fd, 0);
	unlink(path);
	px_mmap_opts_init(&o);
	o.mode = PX_MMAP_RW;
	ASSERT_EQ(px_mmap_create(&m, fd, &o), 0);
	ASSERT_EQ(ftruncate(fd, 0), 0);
	EXPECT_EQ(px_mmap_write(m, 3 * PAGE, "x", 1), -EIO);
	EXPECT_EQ(px_mmap_write(m, 0, "x", 1), -EIO);
	/* Growing the file back makes the pages reachable again (zeros). */
	ASSERT_EQ(ftruncate(fd, 4 * PAGE), 0);
	EXPECT_EQ(px_mmap_write(m, 3 * PAGE, "x", 1), 0);
	px_mmap_destroy(m);
	close(fd);
}

static sigjmp_buf chain_jump;
static struct sigaction chain_h_prev;
static volatile int chain_depth, chain_original;

/* The disposition before the first file map. */
static void
chain_original_handler(int sig, siginfo_t *si, void *uc)
{
	chain_original = 1;
	siglongjmp(chain_jump, 1);
}

/* A program handler installed later that chains to the one it replaced
 * (ours); entered twice for one signal means a loop. */
static void
chain_program_handler(int sig, siginfo_t *si, void *uc)
{
	if (++chain_depth > 1)
		siglongjmp(chain_jump, 1);
	if (chain_h_prev.sa_flags & SA_SIGINFO)
		chain_h_prev.sa_sigaction(sig, si, uc);
}

static void
chain_set(void (*fn)(int, siginfo_t *, void *), struct sigaction *old)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fn;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, old);
}

/* A handler chaining back to ours and our reinstall over it must not
 * loop: a SIGBUS not ours reaches the original disposition once. */
TEST(mmap_foreign_sigbus_reaches_original_without_loop)
{
	char path[64];
	int fd = make_file(path, PAGE);
	struct px_mmap *m1, *m2;

	ASSERT_GE(fd, 0);
	unlink(path);
	chain_set(chain_original_handler, NULL);
	ASSERT_EQ(px_mmap_create(&m1, fd, NULL), 0); /* installs ours */
	chain_set(chain_program_handler, &chain_h_prev);
	ASSERT_EQ(px_mmap_create(&m2, fd, NULL), 0); /* puts ours back */
	if (!sigsetjmp(chain_jump, 1))
		raise(SIGBUS);
	EXPECT_EQ(chain_depth, 0);
	EXPECT_EQ(chain_original, 1);
	px_mmap_destroy(m2);
	px_mmap_destroy(m1);
	close(fd);
}

TEST_HARNESS_MAIN
