/* SPDX-License-Identifier: MIT */
/*
 * pxcached's command line: memcached's options where they apply (-p, -l,
 * -m, -c, -t, -I, -v) plus our own (--policy, --hugepages, --features,
 * --port-file, --snapshot*).  Parsing never prints or exits, so tests can drive
 * it; main() reports what it returns.
 */
#ifndef PXCACHED_OPTIONS_H
#define PXCACHED_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* sizeof(sockaddr_un.sun_path): the longest --handover path, NUL included */
#define PXC_HANDOVER_PATH_MAX 108

enum pxc_hugepages {
	PXC_HUGE_AUTO = 0, /* hugepages when free, else fall back, and say so */
	PXC_HUGE_ON,       /* hugepages or refuse to start */
	PXC_HUGE_OFF,      /* never hugetlb pages */
};

enum pxc_action {
	PXC_RUN = 0,
	PXC_HELP,
	PXC_FEATURES,
};

struct pxc_opts {
	enum pxc_action action;
	const char *listen; /* -l: address to bind, default 127.0.0.1 */
	int port;           /* -p: TCP port, 0 for an ephemeral one */
	uint64_t memory_mb; /* -m: cache memory in MiB */
	uint32_t max_conns; /* -c: simultaneous connections */
	uint32_t threads;   /* -t: worker threads */
	uint64_t item_max;  /* -I: largest value in bytes */
	int verbose;        /* -v count */
	const char *policy; /* --policy: eviction policy name */
	enum pxc_hugepages hugepages;
	const char *port_file;      /* --port-file: write the bound port here */
	const char *auth_file;      /* -Y: "user:password" lines, or NULL */
	const char *snapshot;       /* --snapshot: warm restart file, or NULL */
	uint32_t snapshot_interval; /* --snapshot-interval: seconds, 0 off */
	bool snapshot_strict;  /* --snapshot-strict: exit on a refused file */
	const char *handover;  /* --handover: Unix socket path, or NULL */
	uint32_t idle_timeout; /* -o idle_timeout: seconds, 0 off */
	uint32_t partial_timeout; /* -o partial_timeout: seconds, 0 off */
	uint32_t ring_entries;    /* -o ring_entries: SQ size, 0 default */
	uint32_t ring_cq_entries; /* -o ring_cq_entries: CQ size, 0 default */
};

/*
 * pxc_opts_parse - parse argv into @o (defaults first).
 * @err: on failure, a one-line reason; @errlen its size
 *
 * Returns 0 or -EINVAL.  Uses getopt_long, so it resets optind itself and
 * may be called more than once.  The strings in @o point into argv.
 */
int pxc_opts_parse(struct pxc_opts *o, int argc, char **argv, char *err,
		   size_t errlen);

/* pxc_usage - the --help text, every option documented. */
const char *pxc_usage(void);

/*
 * pxc_parse_size - "64", "64k", "2m", "1g" into bytes (memcached's -I
 * syntax).  Returns 0 or -EINVAL (also on overflow).
 */
int pxc_parse_size(const char *s, uint64_t *out);

#endif
