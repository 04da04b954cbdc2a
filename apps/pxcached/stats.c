// SPDX-License-Identifier: MIT
/*
 * The stats command.  "stats" prints memcached's general section with its
 * names and meanings, then our own counters under their own prefixes:
 * cache_* (the cache's metric table), ring_* (summed over the workers'
 * rings) and region_* (where the memory budget goes).  "stats settings"
 * prints the settings memcached prints that apply here.  "stats reset"
 * is refused; "stats items", "slabs", "sizes" and "conns" print an empty
 * section, since there are no slab classes, so that exporters that ask
 * for them keep working.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <patinox/common.h>

#include "pxcached.h"

static uint64_t
sum_stat(const struct pxc_server *s, enum pxc_stat i)
{
	uint64_t v = 0;

	for (unsigned w = 0; w < s->nworkers; w++)
		v += atomic_load_explicit(&s->workers[w].stats.v[i],
					  memory_order_relaxed);
	return v;
}

static void
stat_u64(struct pxc_conn *c, const char *name, uint64_t v)
{
	pxc_out_printf(c, "STAT %s %" PRIu64 "\r\n", name, v);
}

static void
stat_str(struct pxc_conn *c, const char *name, const char *v)
{
	pxc_out_printf(c, "STAT %s %s\r\n", name, v);
}

static void
stats_process(struct pxc_conn *c, const struct pxc_server *s)
{
	struct rusage ru;
	int64_t now = (int64_t)time(NULL);
	struct pxc_live live;

	getrusage(RUSAGE_SELF, &ru);
	stat_u64(c, "pid", (uint64_t)getpid());
	stat_u64(c, "uptime", (uint64_t)(now - s->start_time));
	stat_u64(c, "time", (uint64_t)now);
	stat_str(c, "version", CONFIG_PX_PXCACHED_VERSION);
	stat_str(c, "pxcached_version", PX_VERSION_STRING);
	stat_u64(c, "pointer_size", sizeof(void *) * 8);
	pxc_out_printf(c, "STAT rusage_user %ld.%06ld\r\n",
		       (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec);
	pxc_out_printf(c, "STAT rusage_system %ld.%06ld\r\n",
		       (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec);
	pxc_live_get(&live);
	stat_u64(c, "max_connections", live.max_conns);
	stat_u64(c, "threads", s->nworkers);
}

/* The server's own table, in memcached's names. */
static void
stats_server(struct pxc_conn *c, const struct pxc_server *s)
{
#define PXC_STAT_PRINT(name, desc) \
	stat_u64(c, #name, sum_stat(s, PXC_ST_##name));
	PXC_STATS(PXC_STAT_PRINT)
#undef PXC_STAT_PRINT
}

/* memcached's item counters, from the cache's metric table. */
static void
stats_items(struct pxc_conn *c, const struct pxc_server *s, const uint64_t *m)
{
	stat_u64(c, "get_expired", m[PX_CACHE_M_get_expired]);
	stat_u64(c, "get_flushed", m[PX_CACHE_M_get_flushed]);
	stat_u64(c, "limit_maxbytes", s->opts.memory_mb << 20);
	stat_u64(c, "bytes", m[PX_CACHE_M_bytes]);
	stat_u64(c, "curr_items", m[PX_CACHE_M_items]);
	stat_u64(c, "total_items", m[PX_CACHE_M_sets]);
	stat_u64(c, "evictions", m[PX_CACHE_M_evictions]);
	stat_u64(c, "reclaimed", m[PX_CACHE_M_expired_reclaimed]);
	/*
	 * TODO: expired_unfetched and evicted_unfetched need a fetched bit
	 * per item that the cache does not keep yet; until it does they are
	 * printed as 0, which hides items that expire or are evicted unread.
	 */
	stat_u64(c, "expired_unfetched", 0);
	stat_u64(c, "evicted_unfetched", 0);
}

static void
stats_cache(struct pxc_conn *c, const struct pxc_server *s, const uint64_t *m)
{
	char name[64];

	for (int i = 0; i < PX_CACHE_METRIC_COUNT; i++) {
		snprintf(name, sizeof(name), "cache_%s",
			 px_cache_metric_name((enum px_cache_metric)i));
		stat_u64(c, name, m[i]);
	}
	stat_str(c, "cache_policy",
		 px_cache_policy_name(px_cache_policy(s->cache)));
}

static void
stats_rings(struct pxc_conn *c, const struct pxc_server *s)
{
	uint64_t sum[PX_RING_NR_COUNTERS] = {0};
	struct px_ring_stats st;
	char name[64];

	for (unsigned w = 0; w < s->nworkers; w++) {
		const uint64_t *v = (const uint64_t *)&st;

		px_ring_stats_get(s->workers[w].ring, &st);
		for (unsigned i = 0; i < PX_RING_NR_COUNTERS; i++)
			sum[i] += v[i];
	}
	for (unsigned i = 0; i < PX_RING_NR_COUNTERS; i++) {
		snprintf(name, sizeof(name), "ring_%s", px_ring_stat_name(i));
		stat_u64(c, name, sum[i]);
	}
}

static void
stats_region(struct pxc_conn *c, const struct pxc_server *s)
{
	struct px_cache_memory mem;

	px_cache_memory(s->cache, &mem);
	stat_str(c, "region_backing", s->backing);
	stat_u64(c, "region_bytes", mem.region_bytes);
	stat_u64(c, "region_index_bytes", mem.index_bytes);
	stat_u64(c, "region_arena_bytes", mem.arena_bytes);
	stat_u64(c, "region_used_bytes", mem.used_bytes);
	stat_u64(c, "region_free_bytes", mem.free_bytes);
	stat_u64(c, "region_limbo_bytes", mem.limbo_bytes);
}

/* --snapshot: the saves so far and the last one (docs/pxcached.md). */
static void
stats_snapshot(struct pxc_conn *c, const struct pxc_server *s)
{
	const struct pxc_snap *sn = &s->snap;
	int err = atomic_load_explicit(&sn->last_error, memory_order_relaxed);

	if (!s->opts.snapshot)
		return;
	stat_u64(c, "snapshot_saves",
		 atomic_load_explicit(&sn->saves, memory_order_relaxed));
	stat_u64(c, "snapshot_last_items",
		 atomic_load_explicit(&sn->last_items, memory_order_relaxed));
	stat_u64(c, "snapshot_last_time",
		 (uint64_t)atomic_load_explicit(&sn->last_time,
						memory_order_relaxed));
	/* One token, as stats values are: the errno (0), text in the log. */
	pxc_out_printf(c, "STAT snapshot_last_error %d\r\n", err);
}

static void
stats_general(struct pxc_conn *c, const struct pxc_server *s)
{
	uint64_t m[PX_CACHE_METRIC_COUNT];

	px_cache_metrics(s->cache, m);
	stats_process(c, s);
	stats_server(c, s);
	stats_items(c, s, m);
	stats_cache(c, s, m);
	stats_rings(c, s);
	stats_region(c, s);
	stats_snapshot(c, s);
}

static void
stats_settings(struct pxc_conn *c, const struct pxc_server *s)
{
	const struct pxc_opts *o = &s->opts;
	struct pxc_live live;

	pxc_live_get(&live);
	stat_u64(c, "maxbytes", o->memory_mb << 20);
	stat_u64(c, "maxconns", live.max_conns);
	stat_u64(c, "tcpport", (uint64_t)s->port);
	stat_u64(c, "udpport", 0);
	stat_str(c, "inter", o->listen);
	stat_u64(c, "verbosity", live.verbosity);
	stat_str(c, "evictions", "on");
	stat_u64(c, "num_threads", s->nworkers);
	stat_str(c, "cas_enabled", "yes");
	stat_u64(c, "tcp_backlog", CONFIG_PX_PXCACHED_BACKLOG);
	stat_u64(c, "idle_timeout", o->idle_timeout);
	stat_str(c, "binding_protocol", "ascii");
	stat_str(c, "auth_enabled_sasl", "no");
	stat_str(c, "auth_enabled_ascii", s->auth ? "yes" : "no");
	stat_u64(c, "item_size_max", o->item_max);
	stat_str(c, "flush_enabled", "yes");
	stat_str(c, "policy", px_cache_policy_name(px_cache_policy(s->cache)));
	stat_str(c, "hugepages",
		 o->hugepages == PXC_HUGE_ON    ? "on"
		 : o->hugepages == PXC_HUGE_OFF ? "off"
						: "auto");
	stat_str(c, "page_backing", s->backing);
}

static bool
args_are(const struct mc_req *req, const char *word)
{
	size_t n = strlen(word), len = req->args_len;

	while (len && req->args[len - 1] == ' ')
		len--;
	return len == n && memcmp(req->args, word, n) == 0;
}

void
pxc_cmd_stats(struct pxc_conn *c, const struct mc_req *req)
{
	static const char *const empty[] = {"items", "slabs", "sizes", "conns"};
	const struct pxc_server *s = c->w->srv;

	if (args_are(req, "")) {
		stats_general(c, s);
	} else if (args_are(req, "settings")) {
		stats_settings(c, s);
	} else {
		bool known = false;

		for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++)
			known |= args_are(req, empty[i]);
		if (!known) {
			pxc_out_lit(c, "ERROR\r\n");
			return;
		}
	}
	pxc_out_lit(c, "END\r\n");
}
