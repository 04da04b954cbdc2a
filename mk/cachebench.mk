# SPDX-License-Identifier: MIT
#
# bench/cache: the cache benchmark (docs/bench-cache.md).  It links
# ConcurrencyKit for its ck_ht bare-lookup baseline.  `make bench-cache`
# runs it in full (a few minutes); pass options through BENCH_CACHE_ARGS,
# e.g. `make bench-cache BENCH_CACHE_ARGS=--quick` (under a minute).  The
# traces folder is $PX_TRACE_DIR, else ../shared/traces.

EXTRA_LDLIBS_cache += -lck
BENCH_CACHE_ARGS ?=
BENCH_RUNS += bench-cache

.PHONY: bench-cache
bench-cache: $(OUT)/bench/cache/cache
	$(Q)$(OUT)/bench/cache/cache $(BENCH_CACHE_ARGS)
