# SPDX-License-Identifier: MIT
# bench/soak.sh: a long mixed load on pxcached with injected faults
# (docs/hardening.md).  `make bench-soak SOAK_SECONDS=120` shortens it
# (default 600 s); results in build/soak/ (CSV, PNG, server log).
SOAK_SECONDS ?= 600
# PX_NO_SOAK=1 leaves the soak out of `make bench` (the container's quick
# suite does: it is a long fault-injection run, not a benchmark table).
ifneq ($(PX_NO_SOAK),1)
BENCH_RUNS += bench-soak
endif

.PHONY: bench-soak
bench-soak: $(OUT)/apps/pxcached/pxcached
	$(Q)OUT=$(OUT) SOAK_SECONDS=$(SOAK_SECONDS) bench/soak.sh
