// SPDX-License-Identifier: MIT
/*
 * Unit tests of px_cache_handover() / px_cache_adopt(): a cache on a
 * shareable region goes to another process over a Unix socket
 * (SCM_RIGHTS) and comes back, with every item, cas id, flag and expiry
 * time intact and the index, policy and budget still working; and every
 * refusal: not shareable, references held, a snapshot running, adopted
 * twice, a region that is not a cache, a cache of another layout.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <patinox/cache.h>
#include <patinox/error.h>

#include "../../src/cache/cache_int.h"

#define MIB        (1u << 20)
#define NKEYS      20000
#define START_TIME 1700000000

static int64_t fake_now = START_TIME;

static int64_t
clock_now(void *arg)
{
	(void)arg;
	return fake_now;
}

static const struct px_cache_hooks hooks = {.now = clock_now};

static void
opts(struct px_cache_opts *o, enum px_cache_policy pol, bool shareable)
{
	px_cache_opts_init(o);
	o->policy = pol;
	o->hooks = &hooks;
	o->region.backing = PX_REGION_4K;
	o->region.shareable = shareable;
}

static struct px_cache *
make(enum px_cache_policy pol)
{
	struct px_cache_opts o;
	struct px_cache *c;

	opts(&o, pol, true);
	fake_now = START_TIME;
	assert_int_equal(px_cache_create(&c, 8 * MIB, &o), 0);
	return c;
}

static int
adopt(struct px_cache **c, int fd)
{
	struct px_cache_opts o;

	opts(&o, PX_CACHE_POLICY_DEFAULT, false);
	return px_cache_adopt(c, fd, &o);
}

/* Item i: key "key:i", value of 1 to 300 bytes, flags i, TTL on odd i. */
static size_t
value_of(unsigned i, char *buf)
{
	size_t n = 1 + i * 7 % 300, j;

	for (j = 0; j < n; j++)
		buf[j] = (char)(i + j);
	return n;
}

static void
fill(struct px_cache *c, uint64_t *cas)
{
	struct px_cache_info info;
	char key[32], val[300];
	unsigned i;

	for (i = 0; i < NKEYS; i++) {
		int kl = snprintf(key, sizeof(key), "key:%u", i);
		size_t vl = value_of(i, val);

		assert_int_equal(px_cache_set(c, key, (size_t)kl, val, vl, i,
					      i % 2 ? 1000 + i : 0),
				 0);
		assert_int_equal(
		    px_cache_get(c, key, (size_t)kl, val, sizeof(val), &info),
		    0);
		cas[i] = info.cas;
	}
}

/* Every item reads back as fill() wrote it; returns the count found. */
static unsigned
check(struct px_cache *c, const uint64_t *cas)
{
	struct px_cache_info info;
	char key[32], want[300], got[300];
	unsigned i, found = 0;

	for (i = 0; i < NKEYS; i++) {
		int kl = snprintf(key, sizeof(key), "key:%u", i);
		size_t vl = value_of(i, want);

		if (px_cache_get(c, key, (size_t)kl, got, sizeof(got), &info))
			continue;
		found++;
		assert_int_equal(info.vlen, vl);
		assert_memory_equal(got, want, vl);
		assert_int_equal(info.flags, i);
		assert_int_equal(info.cas, cas[i]);
		assert_int_equal(info.exptime,
				 i % 2 ? START_TIME + 1000 + i : 0);
	}
	return found;
}

static void
test_cache_handover_roundtrip_in_process(void **state)
{
	static uint64_t cas[NKEYS];
	struct px_cache *c = make(PX_CACHE_POLICY_S3FIFO), *d;
	struct px_cache_info info;
	char buf[8];
	int fd;

	(void)state;
	fill(c, cas);
	assert_int_equal(px_cache_delete(c, "key:7", 5), 0);
	assert_int_equal(px_cache_handover(c, &fd), 0);
	assert_int_equal(adopt(&d, fd), 0);
	assert_int_equal(close(fd), 0);
	assert_int_equal(check(d, cas), NKEYS - 1);
	assert_int_equal(px_cache_items(d), NKEYS - 1);
	assert_int_equal(px_cache_policy(d), PX_CACHE_POLICY_S3FIFO);
	/* Counters start again; the cas ids go on from where they were. */
	assert_int_equal(px_cache_set(d, "new", 3, "v", 1, 0, 0), 0);
	assert_int_equal(px_cache_get(d, "new", 3, buf, sizeof(buf), &info), 0);
	assert_true(info.cas > cas[NKEYS - 1]);
	/* The expiry times are absolute: odd items die at their time. */
	fake_now = START_TIME + 1000 + NKEYS;
	assert_int_equal(px_cache_get(d, "key:1", 5, buf, sizeof(buf), &info),
			 -ENOENT);
	px_cache_destroy(d);
}

static int
send_fd(int sock, int fd)
{
	char byte = 'c', ctl[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl,
			     .msg_controllen = sizeof(ctl)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static int
recv_fd(int sock)
{
	char byte, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl,
			     .msg_controllen = sizeof(ctl)};
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &msg, 0) != 1)
		return -1;
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/* The child: adopt, check, add a key, hand back.  Exit status 0 if all
 * went well (cmocka's asserts would not reach the parent). */
static int
child(int sock, const uint64_t *cas)
{
	struct px_cache *d;
	int fd = recv_fd(sock), back;

	if (fd < 0 || adopt(&d, fd) || close(fd))
		return 1;
	if (check(d, cas) != NKEYS)
		return 2;
	if (px_cache_set(d, "from-child", 10, "hello", 5, 42, 0))
		return 3;
	if (px_cache_handover(d, &back) || send_fd(sock, back) || close(back))
		return 4;
	return 0;
}

static void
test_cache_handover_to_another_process_and_back(void **state)
{
	static uint64_t cas[NKEYS];
	struct px_cache *c = make(PX_CACHE_POLICY_LRU);
	struct px_cache_info info;
	int sv[2], fd, status;
	char buf[8];
	pid_t pid;

	(void)state;
	fill(c, cas);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(px_cache_handover(c, &fd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		close(fd);
		_exit(child(sv[1], cas));
	}
	close(sv[1]);
	assert_int_equal(send_fd(sv[0], fd), 0);
	assert_int_equal(close(fd), 0);
	fd = recv_fd(sv[0]);
	assert_true(fd >= 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(adopt(&c, fd), 0);
	close(fd);
	close(sv[0]);
	assert_int_equal(check(c, cas), NKEYS);
	assert_int_equal(
	    px_cache_get(c, "from-child", 10, buf, sizeof(buf), &info), 0);
	assert_int_equal(info.flags, 42);
	assert_memory_equal(buf, "hello", 5);
	px_cache_destroy(c);
}

/* After adoption the budget still holds: the arena's free lists, the
 * policy's queues and the index all came along. */
static void
test_cache_handover_adopted_cache_evicts_within_budget(void **state)
{
	static uint64_t cas[NKEYS];
	struct px_cache *c = make(PX_CACHE_POLICY_SIEVE);
	struct px_cache_memory m;
	char key[32], val[1000];
	unsigned i;
	int fd;

	(void)state;
	fill(c, cas);
	assert_int_equal(px_cache_handover(c, &fd), 0);
	assert_int_equal(adopt(&c, fd), 0);
	close(fd);
	memset(val, 'x', sizeof(val));
	for (i = 0; i < 30000; i++) {
		int kl = snprintf(key, sizeof(key), "more:%u", i);

		assert_int_equal(
		    px_cache_set(c, key, (size_t)kl, val, sizeof(val), 0, 0),
		    0);
	}
	px_cache_memory(c, &m);
	assert_true(m.region_bytes <= m.limit);
	assert_true(m.used_bytes + m.free_bytes + m.limbo_bytes <=
		    m.arena_bytes);
	assert_true(px_cache_items(c) < NKEYS + 30000);
	px_cache_destroy(c);
}

/* A loader that tries to hand its cache over while its load runs. */
static int
handover_in_loader(void *arg, const void *key, size_t klen,
		   struct px_cache_value *out)
{
	struct px_cache *c = arg;
	int fd = -1;

	(void)key;
	(void)klen;
	memset(out, 0, sizeof(*out));
	out->data = "loaded";
	out->len = 6;
	return px_cache_handover(c, &fd) == -EBUSY && fd == -1 ? 0 : -EIO;
}

static void
test_cache_handover_refusals_keep_the_cache(void **state)
{
	struct px_cache *c = make(PX_CACHE_POLICY_DEFAULT), *plain;
	struct px_cache_snap_info si;
	struct px_cache_ref ref;
	struct px_cache_opts o;
	char buf[8];
	int fd = -1;

	(void)state;
	assert_int_equal(px_cache_set(c, "k", 1, "v", 1, 0, 0), 0);
	/* A reference is held: nothing is given away. */
	assert_int_equal(px_cache_get_ref(c, "k", 1, &ref), 0);
	assert_int_equal(px_cache_handover(c, &fd), -EBUSY);
	assert_int_equal(fd, -1);
	px_cache_ref_put(c, &ref);
	/* A snapshot runs. */
	assert_int_equal(px_cache_snap_begin(c, 0, &si), 0);
	assert_int_equal(px_cache_handover(c, &fd), -EBUSY);
	px_cache_snap_end(c, &si);
	/* A get-or-load runs (its loader asks). */
	assert_int_equal(
	    px_cache_get_or_load(c, "l", 1, handover_in_loader, c, &ref), 0);
	px_cache_ref_put(c, &ref);
	/* The cache is still whole and writable after the refusals. */
	assert_int_equal(px_cache_set(c, "k2", 2, "w", 1, 0, 0), 0);
	assert_int_equal(px_cache_get(c, "k", 1, buf, sizeof(buf), NULL), 0);
	/* Not shareable. */
	opts(&o, PX_CACHE_POLICY_DEFAULT, false);
	assert_int_equal(px_cache_create(&plain, 4 * MIB, &o), 0);
	assert_int_equal(px_cache_handover(plain, &fd), -EINVAL);
	px_cache_destroy(plain);

	assert_int_equal(px_cache_handover(c, &fd), 0);
	assert_int_equal(adopt(&c, fd), 0);
	/* Adopted already: a second adopter is refused. */
	assert_int_equal(adopt(&plain, fd), -EBUSY);
	close(fd);
	assert_int_equal(px_cache_get(c, "k2", 2, buf, sizeof(buf), NULL), 0);
	px_cache_destroy(c);
}

static int
count_item(void *arg, const struct px_cache_ref *item)
{
	(void)item;
	++*(size_t *)arg;
	return 0;
}

/* Items handed to a full snapshot walk of @c. */
static size_t
snapshot_items(struct px_cache *c)
{
	struct px_cache_snap_info si;
	size_t n = 0;
	int more;

	assert_int_equal(px_cache_snap_begin(c, 0, &si), 0);
	do
		more = px_cache_snap_walk(c, 256, count_item, &n);
	while (more == 1);
	assert_int_equal(more, 0);
	px_cache_snap_end(c, &si);
	return n;
}

/*
 * Snapshots taken before and after a handover each see every item.  The
 * items carry the claim bit of the last snapshot's parity; an adopter
 * that started counting snapshots from 0 again could reuse that parity
 * and skip every item as already claimed.
 */
static void
test_cache_handover_snapshots_before_and_after(void **state)
{
	static uint64_t cas[NKEYS];
	struct px_cache *c = make(PX_CACHE_POLICY_DEFAULT);
	int fd, i;

	(void)state;
	fill(c, cas);
	for (i = 0; i < 3; i++) {
		assert_int_equal(snapshot_items(c), NKEYS);
		assert_int_equal(px_cache_handover(c, &fd), 0);
		assert_int_equal(adopt(&c, fd), 0);
		close(fd);
		assert_int_equal(snapshot_items(c), NKEYS);
	}
	px_cache_destroy(c);
}

/*
 * The adopter dies after its adopt (kill -9 before it answers): the cache
 * is marked as in use, so px_cache_adopt() refuses it, and
 * px_cache_reclaim() takes it back whole.  Also when the adopter died in
 * the middle of the adoption, its pointers half rebased: the reclaim
 * rebuilds them all from offsets.
 */
static void
test_cache_handover_reclaim_after_the_adopter_died(void **state)
{
	static uint64_t cas[NKEYS];
	struct px_cache *c = make(PX_CACHE_POLICY_S3FIFO), *d;
	struct px_cache_opts o;
	struct px_cache *cb;
	int fd, status;
	pid_t pid;

	(void)state;
	fill(c, cas);
	assert_int_equal(px_cache_handover(c, &fd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(adopt(&d, fd) == 0 ? 0 : 1); /* adopts, then dies */
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(adopt(&d, fd), -EBUSY);

	/* Cut short half way: some pointers moved, the claim held. */
	cb = mmap(NULL, sizeof(*cb), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(cb != MAP_FAILED);
	cb->stripes = (void *)0x1000;
	cb->buckets = (void *)0x2000;
	atomic_store(&cb->index, (struct pxc_index *)0x3000);
	atomic_store(&cb->handover, PXC_ADOPTING);
	munmap(cb, sizeof(*cb));

	opts(&o, PX_CACHE_POLICY_DEFAULT, false); /* the test's clock */
	assert_int_equal(px_cache_reclaim(&d, fd, &o), 0);
	close(fd);
	assert_int_equal(check(d, cas), NKEYS);
	assert_int_equal(px_cache_set(d, "after", 5, "x", 1, 0, 0), 0);
	px_cache_destroy(d);
}

/* A memfd that is no cache, and a cache from a build of another layout. */
static void
test_cache_handover_foreign_regions_are_corrupt(void **state)
{
	struct px_cache *c, *d;
	int fd, junk = memfd_create("junk", MFD_ALLOW_SEALING);
	uint64_t *layout;
	char *p;

	(void)state;
	assert_true(junk >= 0);
	assert_int_equal(ftruncate(junk, 4 * MIB), 0);
	assert_int_equal(adopt(&d, junk), -PX_ECORRUPT);
	close(junk);

	c = make(PX_CACHE_POLICY_DEFAULT);
	assert_int_equal(px_cache_handover(c, &fd), 0);
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	layout = (uint64_t *)(p + offsetof(struct px_cache, layout));
	*layout ^= 1;
	assert_int_equal(adopt(&d, fd), -PX_ECORRUPT);
	*layout ^= 1;
	munmap(p, 4096);
	assert_int_equal(adopt(&d, fd), 0);
	close(fd);
	px_cache_destroy(d);
}

/*
 * Snapshots taken before a roll leave their claim bit on every item;
 * the adopter's first snapshot must still hand every item over (a
 * server's periodic saves before the roll, its final save after it).
 * Rolled after one, two and three snapshots: either parity of claim.
 */
static void
test_cache_handover_snapshot_after_snapshots_saves_every_item(void **state)
{
	struct px_cache *c = make(PX_CACHE_POLICY_DEFAULT);
	char key[16];
	unsigned i, before, roll;
	int fd;

	(void)state;
	for (i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "s%u", i);
		assert_int_equal(
		    px_cache_set(c, key, strlen(key), "v", 1, 0, 0), 0);
	}
	for (roll = 0; roll < 3; roll++) {
		for (before = 0; before <= roll; before++)
			assert_int_equal(snapshot_items(c), 500);
		assert_int_equal(px_cache_handover(c, &fd), 0);
		assert_int_equal(adopt(&c, fd), 0);
		close(fd);
		assert_int_equal(snapshot_items(c), 500);
		assert_int_equal(snapshot_items(c), 500);
	}
	px_cache_destroy(c);
}

/*
 * A memfd whose size changed after the handover (an operator's or a
 * tool's ftruncate): it cannot shrink (the region seals it against
 * that), and grown it is refused rather than mapped with a wrong size.
 */
static void
test_cache_handover_resized_memfd_is_corrupt(void **state)
{
	struct px_cache *c = make(PX_CACHE_POLICY_DEFAULT), *d;
	struct stat st;
	int fd;

	(void)state;
	assert_int_equal(px_cache_set(c, "k", 1, "v", 1, 0, 0), 0);
	assert_int_equal(px_cache_handover(c, &fd), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(ftruncate(fd, st.st_size - 4096), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(ftruncate(fd, st.st_size + 2 * MIB), 0);
	assert_int_equal(adopt(&d, fd), -PX_ECORRUPT);
	assert_int_equal(adopt(&d, fd), -PX_ECORRUPT); /* refused twice */
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cache_handover_roundtrip_in_process),
	    cmocka_unit_test(test_cache_handover_to_another_process_and_back),
	    cmocka_unit_test(
		test_cache_handover_adopted_cache_evicts_within_budget),
	    cmocka_unit_test(test_cache_handover_refusals_keep_the_cache),
	    cmocka_unit_test(test_cache_handover_foreign_regions_are_corrupt),
	    cmocka_unit_test(
		test_cache_handover_reclaim_after_the_adopter_died),
	    cmocka_unit_test(
		test_cache_handover_snapshot_after_snapshots_saves_every_item),
	    cmocka_unit_test(test_cache_handover_snapshots_before_and_after),
	    cmocka_unit_test(test_cache_handover_resized_memfd_is_corrupt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
