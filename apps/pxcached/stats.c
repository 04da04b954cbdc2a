// SPDX-License-Identifier: MIT
/*
 * The stats command.  "stats" prints memcached's general section with its
 * names and meanings, then our own counters under their own prefixes:
 * cache_* (the cache's metric table), ring_* (summed over the workers'
 * rings) and region_* (where the memory budget goes).  "stats settings"
 * prints the settings memcached prints that apply here.  "stats reset"
 * zeroes memcached's counters by remembering their values (the workers'
 * own counters are written by their threads only).  "stats items" and
 * "stats slabs" print one pseudo class 1 holding every item, since there
 * are no slab classes; "sizes" says it is disabled and "conns" is empty,
 * so that exporters that ask for them keep working.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <patinox/common.h>

#include "pxcached.h"

/*
 * "stats reset": the values of the counters at the last reset, subtracted
 * when they are printed.  One server per process, so file scope.
 */
static _Atomic uint64_t base_server[PXC_ST_COUNT];
static _Atomic uint64_t base_cache[PX_CACHE_METRIC_COUNT];

static uint64_t
sum_stat_raw(const struct pxc_server *s, enum pxc_stat i)
{
	uint64_t v = 0;

	for (unsigned w = 0; w < s->nworkers; w++)
		v += atomic_load_explicit(&s->workers[w].stats.v[i],
					  memory_order_relaxed);
	return v;
}

static uint64_t
since_reset(uint64_t v, _Atomic uint64_t *base)
{
	uint64_t b = atomic_load_explicit(base, memory_order_relaxed);

	return v > b ? v - b : 0;
}

/* A server counter since the last reset; gauges are never reset. */
static uint64_t
sum_stat(const struct pxc_server *s, enum pxc_stat i)
{
	uint64_t v = sum_stat_raw(s, i);

	if (i == PXC_ST_curr_connections)
		return v;
	return since_reset(v, &base_server[i]);
}

/* A counter of the cache's metric table since the last reset. */
static uint64_t
cache_since(const uint64_t *m, enum px_cache_metric i)
{
	return since_reset(m[i], &base_cache[i]);
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
	stat_u64(c, "get_expired", cache_since(m, PX_CACHE_M_get_expired));
	stat_u64(c, "get_flushed", cache_since(m, PX_CACHE_M_get_flushed));
	stat_u64(c, "limit_maxbytes", s->opts.memory_mb << 20);
	stat_u64(c, "bytes", m[PX_CACHE_M_bytes]);
	stat_u64(c, "curr_items", m[PX_CACHE_M_items]);
	stat_u64(c, "total_items", cache_since(m, PX_CACHE_M_sets));
	stat_u64(c, "evictions", cache_since(m, PX_CACHE_M_evictions));
	stat_u64(c, "reclaimed", cache_since(m, PX_CACHE_M_expired_reclaimed));
	stat_u64(c, "expired_unfetched",
		 cache_since(m, PX_CACHE_M_expired_unfetched));
	stat_u64(c, "evicted_unfetched",
		 cache_since(m, PX_CACHE_M_evicted_unfetched));
}

/* Descriptors open now, from /proc/self/fd; 0 when it cannot be read. */
static uint64_t
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	uint64_t n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - (n > 0); /* the directory's own descriptor */
}

/*
 * memcached's connection fields.  Over -c pxcached accepts and closes
 * (memcached's maxconns_fast way), so the listener is never disabled and
 * its counters stay 0; a batch is one receive buffer, so a connection
 * never yields.  Connection structures are freed on close: the count is
 * of the open connections plus one listener per worker.
 */
static void
stats_conns_general(struct pxc_conn *c, const struct pxc_server *s)
{
	uint64_t conns = sum_stat(s, PXC_ST_curr_connections);
	uint64_t fds = open_fds();
	bool stopping =
	    atomic_load_explicit(&s->stop_requested, memory_order_relaxed);

	stat_u64(c, "connection_structures", conns + s->nworkers);
	stat_u64(c, "reserved_fds", fds > conns ? fds - conns : 0);
	stat_u64(c, "accepting_conns", !stopping);
	stat_u64(c, "listen_disabled_num", 0);
	stat_u64(c, "time_in_listen_disabled_us", 0);
	stat_u64(c, "conn_yields", 0);
}

/*
 * The index is one array of 4-byte buckets, a power of two (cache.h).  It
 * doubles as items arrive, in one step under the cache's writer lock
 * (docs/cache.md), never as memcached's background expansion: so
 * hash_is_expanding is 0, and cache_index_resizes counts the doublings.
 */
static void
stats_hash(struct pxc_conn *c, const struct pxc_server *s)
{
	struct px_cache_memory mem;
	size_t buckets;
	unsigned power = 0;

	px_cache_memory(s->cache, &mem);
	buckets = mem.index_bytes / sizeof(uint32_t);
	while (buckets > 1) {
		buckets >>= 1;
		power++;
	}
	stat_u64(c, "hash_power_level", power);
	stat_u64(c, "hash_bytes", mem.index_bytes);
	stat_u64(c, "hash_is_expanding", 0);
}

/*
 * memcached features pxcached does not have, so their counters are 0 by
 * construction: no slab classes to rebalance, no LRU crawler (expired
 * items are swept on the worker tick, counted in "reclaimed"), no `watch`
 * log stream.  malloc_fails is 0 because allocation failures are not
 * counted: a failed allocation drops the connection and is logged.
 */
static void
stats_absent(struct pxc_conn *c)
{
	static const char *const zero[] = {
	    "slab_reassign_running", "slabs_moved",
	    "lru_crawler_running",   "lru_crawler_starts",
	    "malloc_fails",          "log_worker_dropped",
	    "log_worker_written",    "log_watcher_skipped",
	    "log_watcher_sent",      "log_watchers",
	};

	for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++)
		stat_u64(c, zero[i], 0);
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
	stats_conns_general(c, s);
	stats_hash(c, s);
	stats_absent(c);
	stats_items(c, s, m);
	stats_cache(c, s, m);
	stats_rings(c, s);
	stats_region(c, s);
	stats_snapshot(c, s);
}

/*
 * Settings of memcached features pxcached lacks, with the value memcached
 * prints when the feature is off.  maxconns_fast is "yes": over -c a
 * client is told and closed at once, as memcached's maxconns_fast does.
 */
static void
stats_settings_absent(struct pxc_conn *c)
{
	static const char *const kv[][2] = {
	    {"domain_socket", "NULL"},       {"shutdown_command", "no"},
	    {"detail_enabled", "no"},        {"maxconns_fast", "yes"},
	    {"slab_reassign", "no"},         {"slab_automove", "0"},
	    {"lru_crawler", "no"},           {"dump_enabled", "no"},
	    {"lru_maintainer_thread", "no"}, {"temp_lru", "no"},
	    {"track_sizes", "no"},           {"ssl_enabled", "no"},
	};

	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		stat_str(c, kv[i][0], kv[i][1]);
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
	stats_settings_absent(c);
	stat_str(c, "policy", px_cache_policy_name(px_cache_policy(s->cache)));
	stat_str(c, "hugepages",
		 o->hugepages == PXC_HUGE_ON    ? "on"
		 : o->hugepages == PXC_HUGE_OFF ? "off"
						: "auto");
	stat_str(c, "page_backing", s->backing);
}

/*
 * "stats items": one pseudo slab class 1 that holds every item, with the
 * fields that keep their meaning without slab classes.
 */
static void
stats_items_class(struct pxc_conn *c, const struct pxc_server *s)
{
	uint64_t m[PX_CACHE_METRIC_COUNT];

	px_cache_metrics(s->cache, m);
	stat_u64(c, "items:1:number", m[PX_CACHE_M_items]);
	stat_u64(c, "items:1:mem_requested", m[PX_CACHE_M_bytes]);
	stat_u64(c, "items:1:evicted", cache_since(m, PX_CACHE_M_evictions));
	stat_u64(c, "items:1:outofmemory", sum_stat(s, PXC_ST_store_no_memory));
	stat_u64(c, "items:1:reclaimed",
		 cache_since(m, PX_CACHE_M_expired_reclaimed));
	stat_u64(c, "items:1:expired_unfetched",
		 cache_since(m, PX_CACHE_M_expired_unfetched));
	stat_u64(c, "items:1:evicted_unfetched",
		 cache_since(m, PX_CACHE_M_evicted_unfetched));
}

/* "stats slabs": the same pseudo class; items have no fixed chunk size. */
static void
stats_slabs(struct pxc_conn *c, const struct pxc_server *s)
{
	static const struct {
		const char *name;
		enum pxc_stat st;
	} hits[] = {
	    {"1:get_hits", PXC_ST_get_hits},
	    {"1:cmd_set", PXC_ST_cmd_set},
	    {"1:delete_hits", PXC_ST_delete_hits},
	    {"1:incr_hits", PXC_ST_incr_hits},
	    {"1:decr_hits", PXC_ST_decr_hits},
	    {"1:cas_hits", PXC_ST_cas_hits},
	    {"1:cas_badval", PXC_ST_cas_badval},
	    {"1:touch_hits", PXC_ST_touch_hits},
	};
	struct px_cache_memory mem;

	px_cache_memory(s->cache, &mem);
	stat_u64(c, "1:used_chunks", px_cache_items(s->cache));
	for (size_t i = 0; i < sizeof(hits) / sizeof(hits[0]); i++)
		stat_u64(c, hits[i].name, sum_stat(s, hits[i].st));
	stat_u64(c, "active_slabs", 1);
	stat_u64(c, "total_malloced", mem.arena_bytes);
}

static void
stats_sizes(struct pxc_conn *c, const struct pxc_server *s)
{
	stat_str(c, "sizes_status", "disabled");
}

/*
 * "stats conns" is empty: each connection belongs to its worker thread,
 * and another thread may not walk it.
 */
static void
stats_conns(struct pxc_conn *c, const struct pxc_server *s)
{
}

/* Remember the counters now; printing subtracts them.  Answers RESET. */
static void
stats_reset(struct pxc_conn *c, const struct pxc_server *s)
{
	uint64_t m[PX_CACHE_METRIC_COUNT];

	for (int i = 0; i < PXC_ST_COUNT; i++)
		atomic_store_explicit(&base_server[i],
				      sum_stat_raw(s, (enum pxc_stat)i),
				      memory_order_relaxed);
	px_cache_metrics(s->cache, m);
	for (int i = 0; i < PX_CACHE_METRIC_COUNT; i++)
		atomic_store_explicit(&base_cache[i], m[i],
				      memory_order_relaxed);
}

typedef void (*stats_group_fn)(struct pxc_conn *c, const struct pxc_server *s);

static const struct {
	const char *name;
	stats_group_fn fn;
	bool reset; /* answers RESET instead of END */
} groups[] = {
    {"", stats_general, false},          {"settings", stats_settings, false},
    {"items", stats_items_class, false}, {"slabs", stats_slabs, false},
    {"sizes", stats_sizes, false},       {"conns", stats_conns, false},
    {"reset", stats_reset, true},
};

/* The first word of the arguments: memcached ignores any that follow. */
static void
first_word(const struct mc_req *req, const char **w, size_t *n)
{
	const char *p = req->args, *end = req->args + req->args_len;

	while (p < end && *p == ' ')
		p++;
	*w = p;
	while (p < end && *p != ' ')
		p++;
	*n = (size_t)(p - *w);
}

void
pxc_cmd_stats(struct pxc_conn *c, const struct mc_req *req)
{
	const struct pxc_server *s = c->w->srv;
	const char *w;
	size_t n;

	first_word(req, &w, &n);
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		if (strlen(groups[i].name) != n ||
		    memcmp(groups[i].name, w, n) != 0)
			continue;
		groups[i].fn(c, s);
		if (groups[i].reset)
			pxc_out_lit(c, "RESET\r\n");
		else
			pxc_out_lit(c, "END\r\n");
		return;
	}
	pxc_out_lit(c, "ERROR\r\n");
}
