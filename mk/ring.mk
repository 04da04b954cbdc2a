# SPDX-License-Identifier: MIT
# io_uring engine (uring/): the ring_echo benchmark run target.
# `make bench-ring RING_BENCH_ARGS='-d 5 -r 3'` passes options through.

RING_BENCH_ARGS ?=
BENCH_RUNS += bench-ring

.PHONY: bench-ring
bench-ring: $(OUT)/bench/ring_echo/ring_echo
	$(Q)$(OUT)/bench/ring_echo/ring_echo $(RING_BENCH_ARGS)
