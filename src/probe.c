// SPDX-License-Identifier: MIT
/*
 * Capability probe.  Learns what io_uring setup flags and opcodes the
 * kernel accepts by creating tiny throwaway rings, and reads hugepage,
 * THP and NUMA facts from /sys and /proc.  Components decide their
 * fallbacks from the result; nothing here is assumed from the kernel's
 * version number alone.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <liburing.h>
#ifdef CONFIG_PX_REGION_NUMA
#include <numa.h>
#endif

#include <patinox/probe.h>

#define HUGE_SYSFS "/sys/kernel/mm/hugepages"
#define THP_SYSFS  "/sys/kernel/mm/transparent_hugepage/enabled"

static int
read_u64_file(const char *path, uint64_t *out)
{
	char buf[64];
	FILE *f = fopen(path, "re");

	if (!f)
		return -errno;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	*out = strtoull(buf, NULL, 10);
	return 0;
}

static int
try_ring(unsigned int flags)
{
	struct io_uring_params p = {.flags = flags};
	struct io_uring ring;
	int ret;

	if (flags & IORING_SETUP_SQPOLL)
		p.sq_thread_idle = 1;
	ret = io_uring_queue_init_params(4, &ring, &p);
	if (ret < 0)
		return ret;
	io_uring_queue_exit(&ring);
	return 0;
}

static void
probe_ops(struct px_features *f)
{
	struct io_uring_probe *probe = io_uring_get_probe();

	if (!probe)
		return;
	f->last_op = probe->last_op;
	for (int op = 0; op <= probe->last_op; op++)
		if (io_uring_opcode_supported(probe, op))
			f->ops_supported++;
	f->op_close = io_uring_opcode_supported(probe, IORING_OP_CLOSE);
	f->op_link_timeout =
	    io_uring_opcode_supported(probe, IORING_OP_LINK_TIMEOUT);
	f->op_async_cancel =
	    io_uring_opcode_supported(probe, IORING_OP_ASYNC_CANCEL);
	f->op_msg_ring = io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
	f->op_send_zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
	/*
	 * Multishot accept arrived in 5.19 with buffer rings; multishot recv
	 * in 6.0 together with SEND_ZC.  The probe lists opcodes, not
	 * flags, so the newest opcode of each release stands in for it.
	 */
	f->op_multishot_accept =
	    f->op_msg_ring && f->kernel_major * 100 + f->kernel_minor >= 519;
	f->op_recv_multishot = f->op_send_zc;
	io_uring_free_probe(probe);
}

static void
probe_uring(struct px_features *f)
{
	uint64_t disabled = 0;
	struct io_uring_params p = {0};
	struct io_uring ring;
	int ret;

	if (read_u64_file("/proc/sys/kernel/io_uring_disabled", &disabled) == 0)
		f->uring_disabled = disabled != 0;
	ret = io_uring_queue_init_params(4, &ring, &p);
	if (ret < 0) {
		f->uring_error = ret;
		return;
	}
	f->uring_features = p.features;
	io_uring_queue_exit(&ring);

	f->setup_coop_taskrun = try_ring(IORING_SETUP_COOP_TASKRUN) == 0;
	f->setup_single_issuer = try_ring(IORING_SETUP_SINGLE_ISSUER) == 0;
	f->setup_defer_taskrun = try_ring(IORING_SETUP_SINGLE_ISSUER |
					  IORING_SETUP_DEFER_TASKRUN) == 0;
	f->setup_sqpoll = try_ring(IORING_SETUP_SQPOLL) == 0;
	probe_ops(f);
}

static void
probe_hugepages(struct px_features *f)
{
	DIR *d = opendir(HUGE_SYSFS);
	struct dirent *de;
	char path[512];

	if (!d)
		return;
	while ((de = readdir(d)) &&
	       f->nr_huge_sizes < PX_PROBE_MAX_HUGE_SIZES) {
		struct px_huge_size *h = &f->huge[f->nr_huge_sizes];
		unsigned long kb;

		if (sscanf(de->d_name, "hugepages-%lukB", &kb) != 1)
			continue;
		h->page_size = (uint64_t)kb << 10;
		snprintf(path, sizeof(path), HUGE_SYSFS "/%s/nr_hugepages",
			 de->d_name);
		read_u64_file(path, &h->total);
		snprintf(path, sizeof(path), HUGE_SYSFS "/%s/free_hugepages",
			 de->d_name);
		read_u64_file(path, &h->free);
		f->nr_huge_sizes++;
	}
	closedir(d);
}

static void
probe_thp(struct px_features *f)
{
	char buf[128] = "";
	FILE *fp = fopen(THP_SYSFS, "re");

	if (!fp)
		return;
	if (fgets(buf, sizeof(buf), fp)) {
		if (strstr(buf, "[always]"))
			f->thp = PX_THP_ALWAYS;
		else if (strstr(buf, "[madvise]"))
			f->thp = PX_THP_MADVISE;
		else if (strstr(buf, "[never]"))
			f->thp = PX_THP_NEVER;
	}
	fclose(fp);
}

static void
probe_numa(struct px_features *f)
{
#ifdef CONFIG_PX_REGION_NUMA
	f->numa_available = numa_available() >= 0;
	f->numa_nodes = f->numa_available ? numa_max_node() + 1 : 1;
#else
	f->numa_available = false;
	f->numa_nodes = 1;
#endif
}

static void
probe_kernel(struct px_features *f)
{
	struct utsname u;

	if (uname(&u) != 0)
		return;
	snprintf(f->kernel, sizeof(f->kernel), "%s", u.release);
	sscanf(u.release, "%d.%d", &f->kernel_major, &f->kernel_minor);
}

int
px_probe_features(struct px_features *out)
{
	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->page_size = (uint64_t)sysconf(_SC_PAGESIZE);
	probe_kernel(out);
	probe_uring(out);
	probe_hugepages(out);
	probe_thp(out);
	probe_numa(out);
	return 0;
}

static struct px_features cached_features;
static pthread_once_t cached_once = PTHREAD_ONCE_INIT;

static void
probe_once(void)
{
	px_probe_features(&cached_features);
}

const struct px_features *
px_probe_cached(void)
{
	pthread_once(&cached_once, probe_once);
	return &cached_features;
}

uint64_t
px_probe_huge_free(uint64_t page_size)
{
	char path[128];
	uint64_t n = 0;

	snprintf(path, sizeof(path),
		 HUGE_SYSFS "/hugepages-%lukB/free_hugepages",
		 (unsigned long)(page_size >> 10));
	if (read_u64_file(path, &n) < 0)
		return 0;
	return n;
}

static const char *
thp_name(enum px_thp_mode m)
{
	switch (m) {
	case PX_THP_NEVER:
		return "never";
	case PX_THP_MADVISE:
		return "madvise";
	case PX_THP_ALWAYS:
		return "always";
	default:
		return "unavailable";
	}
}

static const char *
yes(bool b)
{
	return b ? "yes" : "no";
}

struct fmt {
	char *buf;
	size_t len;
	size_t used;
};

__attribute__((format(printf, 2, 3))) static void
fmt_add(struct fmt *o, const char *fmt, ...)
{
	size_t room = o->used < o->len ? o->len - o->used : 0;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(room ? o->buf + o->used : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->used += (size_t)n;
}

static void
format_uring(const struct px_features *f, struct fmt *o)
{
	if (f->uring_error) {
		fmt_add(o, "io_uring: unavailable (%s)\n",
			strerrordesc_np(-f->uring_error));
		fmt_add(o, "io_uring_disabled: %s\n", yes(f->uring_disabled));
		return;
	}
	fmt_add(o, "io_uring: available, features 0x%x\n", f->uring_features);
	fmt_add(o, "io_uring_disabled: %s\n", yes(f->uring_disabled));
	fmt_add(o, "setup_coop_taskrun: %s\n", yes(f->setup_coop_taskrun));
	fmt_add(o, "setup_single_issuer: %s\n", yes(f->setup_single_issuer));
	fmt_add(o, "setup_defer_taskrun: %s\n", yes(f->setup_defer_taskrun));
	fmt_add(o, "setup_sqpoll: %s\n", yes(f->setup_sqpoll));
	fmt_add(o, "opcodes: %u supported, last %u\n", f->ops_supported,
		f->last_op);
	fmt_add(o, "multishot_accept: %s\n", yes(f->op_multishot_accept));
	fmt_add(o, "multishot_recv_buf_ring: %s\n", yes(f->op_recv_multishot));
	fmt_add(o, "send_zc: %s\n", yes(f->op_send_zc));
	fmt_add(o, "msg_ring: %s\n", yes(f->op_msg_ring));
	fmt_add(o, "link_timeout: %s\n", yes(f->op_link_timeout));
	fmt_add(o, "close: %s\n", yes(f->op_close));
	fmt_add(o, "async_cancel: %s\n", yes(f->op_async_cancel));
}

int
px_probe_format(const struct px_features *f, char *buf, size_t len)
{
	struct fmt o = {.buf = buf, .len = len};

	if (!f || (!buf && len))
		return -EINVAL;
	if (len)
		buf[0] = '\0';
	fmt_add(&o, "kernel: %s\n", f->kernel);
	format_uring(f, &o);
	fmt_add(&o, "page_size: %llu\n", (unsigned long long)f->page_size);
	for (int i = 0; i < f->nr_huge_sizes; i++)
		fmt_add(&o, "hugepages_%llukB: %llu reserved, %llu free\n",
			(unsigned long long)(f->huge[i].page_size >> 10),
			(unsigned long long)f->huge[i].total,
			(unsigned long long)f->huge[i].free);
	fmt_add(&o, "thp: %s\n", thp_name(f->thp));
	fmt_add(&o, "numa: %s, %d node(s)\n",
		f->numa_available ? "available" : "unavailable", f->numa_nodes);
	return (int)o.used;
}
