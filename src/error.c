// SPDX-License-Identifier: MIT
/*
 * px_strerror(): one table for patinox's own error codes, the plain
 * strerror() text for kernel ones, and a few errnos explained in the
 * context of the part that returned them.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <patinox/error.h>

static const char *const px_own_errors[] = {
    [PX_ECLOSED - PX_EBASE] = "object closed or shut down",
    [PX_ECORRUPT - PX_EBASE] = "stored data is corrupt (checksum or format)",
    [PX_EVERSION - PX_EBASE] = "stored data has a foreign format version",
    [PX_ENOFEATURE - PX_EBASE] = "the kernel lacks a required feature",
    [PX_EPROTO - PX_EBASE] = "the peer broke the protocol",
    [PX_ERETAIN - PX_EBASE] = "a snapshot reached its retention limit",
};

struct px_context_error {
	enum px_part part;
	int err;
	const char *text;
};

static const struct px_context_error px_context_errors[] = {
    {PX_PART_RING, EPERM,
     "io_uring is blocked (EPERM): a seccomp profile (containers block "
     "io_uring_setup by default) or sysctl kernel.io_uring_disabled; "
     "run with a profile that allows io_uring_setup, io_uring_enter and "
     "io_uring_register, or set kernel.io_uring_disabled=0"},
    {PX_PART_RING, ENOSYS,
     "io_uring is not available (ENOSYS): a seccomp profile that "
     "answers unknown calls with ENOSYS (podman's default does; run "
     "with a profile that allows io_uring_setup, io_uring_enter and "
     "io_uring_register), or a kernel built without CONFIG_IO_URING or "
     "older than 5.1; patinox needs Linux >= 6.1"},
    {PX_PART_RING, ENOMEM,
     "cannot allocate the io_uring (ENOMEM): lower the ring size or "
     "raise RLIMIT_MEMLOCK (ulimit -l) for kernels before 5.12"},
    {PX_PART_RING, EINVAL,
     "io_uring rejected the setup parameters (EINVAL): a flag or size "
     "the kernel does not support"},
    {PX_PART_RING, EEXIST,
     "the ring was used from a thread other than the one that created it "
     "(EEXIST): rings are SINGLE_ISSUER; create each ring on the thread "
     "that runs it and reach it from others with px_ring_post()"},
    {PX_PART_RING, EXDEV,
     "the ring was called from a thread other than the one that created "
     "it (EXDEV): nothing was done; a ring belongs to its thread, reach "
     "it from others with px_ring_post() from the caller's own ring"},
    {PX_PART_RING, EBUSY,
     "the ring's completion queue is full (EBUSY): run the loop to reap "
     "completions, or give the ring a larger CQ (CONFIG_PX_RING_CQ_FACTOR)"},
    {PX_PART_RING, PX_ECLOSED,
     "the connection is closing or the ring is being destroyed"},
    {PX_PART_REGION, ENOMEM,
     "no memory for the region (ENOMEM): no hugepages reserved or the "
     "memory limit was reached; reserve pages with "
     "sysctl vm.nr_hugepages=N or let the region fall back"},
    {PX_PART_REGION, EPERM,
     "the region needs a privilege (EPERM): mlock needs RLIMIT_MEMLOCK "
     "or CAP_IPC_LOCK"},
    {PX_PART_REGION, EOPNOTSUPP,
     "NUMA placement is not available (EOPNOTSUPP): the library was built "
     "without CONFIG_PX_REGION_NUMA, or libnuma reports no NUMA support"},
    {PX_PART_REGION, EINVAL,
     "the region request is invalid (EINVAL): size 0, an unknown backing, "
     "a NUMA node the machine lacks, or a memfd that cannot be sealed "
     "against shrinking"},
    {PX_PART_MMAP, EIO,
     "the file shrank under the mapping (EIO): the accessor caught the "
     "SIGBUS; the data past the file's new end is gone"},
    {PX_PART_MMAP, EACCES,
     "the mapping or its file is read-only (EACCES): open the file "
     "read-write for a shared writable map, or use px_mmap_make_writable"},
    {PX_PART_MMAP, ENODEV,
     "the file cannot be mapped (ENODEV): pipes, sockets and some "
     "/proc files do not support mmap; the pread fallback serves reads"},
    {PX_PART_MMAP, ERANGE, "access outside the mapping (ERANGE)"},
    {PX_PART_CACHE, E2BIG,
     "the item is larger than the cache's item limit or budget (E2BIG)"},
    {PX_PART_CACHE, ENOMEM,
     "the cache's memory budget is full and nothing can be evicted "
     "(ENOMEM)"},
    {PX_PART_SNAPSHOT, PX_ECORRUPT,
     "the snapshot file is not usable: not a snapshot, truncated, or a "
     "checksum failed; nothing was loaded from it"},
    {PX_PART_SNAPSHOT, PX_EVERSION,
     "the snapshot file was written by another format version of "
     "patinox; nothing was loaded from it"},
    {PX_PART_SNAPSHOT, ENOSPC,
     "no space left on the snapshot's file system (ENOSPC): the disk or "
     "its quota is full; free space there or save elsewhere"},
    {PX_PART_SNAPSHOT, PX_ERETAIN,
     "the snapshot reached its retention limit: writers replaced more of "
     "the cache during the save than the cache may hold back for it "
     "(CONFIG_PX_CACHE_SNAPSHOT_RETAIN_PCT, or opts.retain_limit, and "
     "the spill buffer, CONFIG_PX_SNAPSHOT_SPILL_KB); not a disk "
     "problem: save when writes are fewer, or raise the limits"},
    {PX_PART_SNAPSHOT, EBUSY,
     "another snapshot of this cache is still being written (EBUSY)"},
    {PX_PART_POOL, ETIMEDOUT,
     "timed out waiting for, creating or recycling a pooled object"},
    {PX_PART_POOL, EAGAIN,
     "the pool's waiter queue is full (EAGAIN): back off and retry"},
    {PX_PART_POOL, PX_ECLOSED,
     "the pool is closed: pending and new gets fail, objects are "
     "destroyed when they come back"},
    {PX_PART_POOL, ECANCELED, "the get was cancelled by its caller"},
    {PX_PART_POOL, ECONNREFUSED,
     "the pool's backend refused the connection (ECONNREFUSED); new "
     "creates back off and gets fail fast until it is back"},
    {PX_PART_GUARD, PX_ECLOSED,
     "the guard is shutting down: no new resources or operations are "
     "accepted"},
    {PX_PART_GUARD, ETIMEDOUT,
     "guard shutdown reached its deadline with cleanups unfinished; "
     "they were reported and still complete later"},
};

/*
 * The magnitude of @err: negative and positive codes read the same.
 * INT_MIN has no positive int; it maps to INT_MAX, which is no code.
 */
static int
err_abs(int err)
{
	if (err == INT_MIN)
		return INT_MAX;
	return err < 0 ? -err : err;
}

const char *
px_strerror(int err)
{
	err = err_abs(err);
	if (err == 0)
		return "success";
	if (err >= PX_EBASE && err < PX_EMAX)
		return px_own_errors[err - PX_EBASE];
	if (err >= PX_EBASE)
		return "unknown patinox error";
	return strerrordesc_np(err) ? strerrordesc_np(err) : "unknown error";
}

const char *
px_strerror_in(enum px_part part, int err)
{
	size_t i;

	err = err_abs(err);
	for (i = 0; i < sizeof(px_context_errors) / sizeof(*px_context_errors);
	     i++) {
		if (px_context_errors[i].part == part &&
		    px_context_errors[i].err == err)
			return px_context_errors[i].text;
	}
	return px_strerror(err);
}

const char *
px_version(void)
{
	return PX_VERSION_STRING;
}
