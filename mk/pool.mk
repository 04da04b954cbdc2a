# SPDX-License-Identifier: MIT
# The pool and guard benchmarks (bench/pool, bench/guard).
BENCH_RUNS += bench-pool bench-guard

.PHONY: bench-pool bench-guard
bench-pool: $(OUT)/bench/pool/pool
	$(Q)$(OUT)/bench/pool/pool $(BENCH_POOL_ARGS)

bench-guard: $(OUT)/bench/guard
	$(Q)$(OUT)/bench/guard $(BENCH_GUARD_ARGS)
