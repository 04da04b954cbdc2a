# SPDX-License-Identifier: MIT
# Copy-on-write cells: the bench-cow run (read-side cost against a plain
# pointer read, publish latency).  BENCH_COW_ARGS passes options.
BENCH_RUNS += bench-cow

.PHONY: bench-cow
bench-cow: $(OUT)/bench/cow
	$(Q)$(OUT)/bench/cow $(BENCH_COW_ARGS)
