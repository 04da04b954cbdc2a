# SPDX-License-Identifier: MIT
# Regions and file mappings: the TLB benchmark.  libnuma is linked by the
# top-level Makefile when CONFIG_PX_REGION_NUMA=y.
#   make bench-region                     4 GiB (the hugetlb row needs 2048
#                                         free 2 MiB pages, else skipped)
#   make bench-region REGION_TLB_ARGS='-s 1G --reserve'   reserves 512
REGION_TLB_ARGS ?=
BENCH_RUNS += bench-region

.PHONY: bench-region
bench-region: $(OUT)/bench/region_tlb
	$(Q)$(OUT)/bench/region_tlb $(REGION_TLB_ARGS)
