/* SPDX-License-Identifier: MIT */
/*
 * Capability probe: what this kernel and machine offer to patinox.
 * Components choose their fallbacks from it (ring setup flags, hugepage
 * backing, NUMA placement); programs print it with --features.
 */
#ifndef PATINOX_PROBE_H
#define PATINOX_PROBE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <patinox/common.h>

#define PX_PROBE_MAX_HUGE_SIZES 4

enum px_thp_mode {
	PX_THP_UNKNOWN = 0,
	PX_THP_NEVER,
	PX_THP_MADVISE,
	PX_THP_ALWAYS,
};

struct px_huge_size {
	uint64_t page_size; /* bytes */
	uint64_t total;     /* pages reserved */
	uint64_t free;      /* pages free now */
};

struct px_features {
	/* io_uring */
	int uring_error;         /* 0, or -errno from io_uring_setup */
	bool uring_disabled;     /* kernel.io_uring_disabled != 0 */
	uint32_t uring_features; /* IORING_FEAT_* of a plain ring */
	bool setup_coop_taskrun;
	bool setup_single_issuer;
	bool setup_defer_taskrun;
	bool setup_sqpoll;
	bool op_multishot_accept; /* IORING_OP_ACCEPT, kernel >= 5.19 */
	bool op_recv_multishot;   /* buffer rings and multishot recv */
	bool op_send_zc;
	bool op_msg_ring;
	bool op_link_timeout;
	bool op_close;
	bool op_async_cancel;
	uint32_t ops_supported; /* number of opcodes the probe reports */
	uint32_t last_op;       /* highest opcode number known */

	/* memory */
	int nr_huge_sizes;
	struct px_huge_size huge[PX_PROBE_MAX_HUGE_SIZES];
	enum px_thp_mode thp;
	uint64_t page_size;

	/* NUMA */
	bool numa_available;
	int numa_nodes;

	/* kernel release, from uname */
	char kernel[65];
	int kernel_major;
	int kernel_minor;
};

/*
 * px_probe_features - probe the kernel once and describe it.
 * @out: filled in on success
 *
 * Creates and destroys small throwaway rings to learn the setup flags the
 * kernel accepts; reads /sys and /proc for hugepages, THP and NUMA.  A
 * blocked io_uring is not a failure: it is reported in uring_error.
 * Returns 0, or -errno when @out is NULL.  Thread safe.
 */
PX_API int px_probe_features(struct px_features *out);

/*
 * px_probe_cached - the features probed once for this process.
 *
 * The first call probes; later calls return the same object.  Never NULL.
 * Thread safe.
 */
PX_API const struct px_features *px_probe_cached(void);

/*
 * px_probe_format - describe features as text, one "key: value" per line.
 * @f:   features to describe
 * @buf: output buffer, always NUL-terminated when @len > 0
 * @len: its size
 *
 * Returns the length the full text needs (as snprintf), or -EINVAL.
 */
PX_API int px_probe_format(const struct px_features *f, char *buf, size_t len);

/*
 * px_probe_huge_free - free hugepages of one size.
 * @page_size: in bytes (2 MiB, 1 GiB)
 *
 * Returns the number of free pages, 0 when none or the size is unknown.
 */
PX_API uint64_t px_probe_huge_free(uint64_t page_size);

#endif
