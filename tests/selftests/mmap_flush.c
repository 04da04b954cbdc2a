// SPDX-License-Identifier: MIT
/*
 * Flushing shared maps on the real kernel: data written through the map
 * and flushed asynchronously reads back through another descriptor of
 * the same file; a synchronous flush reaches the disk, read back with
 * O_DIRECT where the filesystem allows it.
 */
#include <fcntl.h>
#include <stdlib.h>

#include <patinox/mmap.h>

#include "harness.h"

#define PAGE 4096
#define LEN  (64 * PAGE)

FIXTURE(file)
{
	char path[32];
	int fd;
	struct px_mmap *m;
};

FIXTURE_SETUP(file)
{
	struct px_mmap_opts o;

	strcpy(self->path, "/var/tmp/px-flush-XXXXXX");
	self->fd = mkstemp(self->path);
	ASSERT_GE(self->fd, 0);
	ASSERT_EQ(ftruncate(self->fd, LEN), 0);
	px_mmap_opts_init(&o);
	o.mode = PX_MMAP_RW;
	o.offset = 100; /* not page-aligned on purpose */
	ASSERT_EQ(px_mmap_create(&self->m, self->fd, &o), 0);
}

FIXTURE_TEARDOWN(file)
{
	px_mmap_destroy(self->m);
	close(self->fd);
	unlink(self->path);
}

TEST_F(file, flush_async_then_read_back_through_another_fd)
{
	char buf[32] = {0};
	int fd2;

	ASSERT_EQ(
	    px_mmap_write(self->m, 5 * PAGE, "flushed asynchronously", 22), 0);
	ASSERT_EQ(px_mmap_flush_async(self->m), 0);
	fd2 = open(self->path, O_RDONLY);
	ASSERT_GE(fd2, 0);
	ASSERT_EQ(pread(fd2, buf, 22, 5 * PAGE + 100), 22);
	EXPECT_STREQ(buf, "flushed asynchronously");
	close(fd2);
}

TEST_F(file, flush_range_reaches_the_disk)
{
	char *buf;
	int fd2;

	ASSERT_EQ(px_mmap_write(self->m, 7 * PAGE - 100, "on disk", 7), 0);
	ASSERT_EQ(px_mmap_flush_range(self->m, 7 * PAGE - 100, 7), 0);
	fd2 = open(self->path, O_RDONLY | O_DIRECT);
	if (fd2 < 0)
		SKIP(return, "O_DIRECT refused here: %s", strerror(errno));
	ASSERT_EQ(posix_memalign((void **)&buf, PAGE, PAGE), 0);
	ASSERT_EQ(pread(fd2, buf, PAGE, 7 * PAGE), PAGE);
	EXPECT_EQ(memcmp(buf, "on disk", 7), 0);
	free(buf);
	close(fd2);
}

TEST_F(file, flush_async_range_of_another_fd_write_is_seen_in_the_map)
{
	char buf[8] = {0};
	int fd2 = open(self->path, O_WRONLY);

	ASSERT_GE(fd2, 0);
	ASSERT_EQ(pwrite(fd2, "other", 5, 9 * PAGE + 100), 5);
	close(fd2);
	ASSERT_EQ(px_mmap_flush_async_range(self->m, 9 * PAGE, 5), 0);
	ASSERT_EQ(px_mmap_read(self->m, 9 * PAGE, buf, 5), 0);
	EXPECT_STREQ(buf, "other");
}

TEST_HARNESS_MAIN
