# SPDX-License-Identifier: MIT
#
# The load generator (bench/pxload), the trace replayer (bench/replay) and
# `make bench-server`, the comparison of pxcached with memcached.
#
# replay shares pxload's protocol code: its object is added to replay's
# link (the generic program rule links every object prerequisite).
$(call dir_prog,bench/replay): $(OUT)/bench/pxload/proto.o

BENCH_RUNS += bench-server

# pxload's defaults and limits are Kconfig symbols (bench/Kconfig, sourced
# from apps/Kconfig): regenerate autoconf.h when that file changes.
KCONFIG_FILES += bench/Kconfig

# Knobs (environment): PX_BENCH_DURATION seconds per run, PX_BENCH_ROUNDS
# A/B rounds, PX_BENCH_THREADS server threads, PX_BENCH_MEM MiB; see
# docs/bench-server.md.
.PHONY: bench-server
bench-server: $(call dir_prog,bench/pxload) $(call dir_prog,bench/replay) \
		$(if $(wildcard apps/pxcached/*.c),$(OUT)/apps/pxcached/pxcached)
	$(Q)OUT=$(OUT) bench/bench-server.sh
