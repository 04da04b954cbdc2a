# SPDX-License-Identifier: MIT
#
# Snapshot fragment: the bench-snapshot run (pause against fork(),
# throughput during a snapshot, write and load rates).  The cache size
# defaults to 1 GiB so the run takes about a minute here; pass
# BENCH_SNAPSHOT_ARGS="-s 4096" for the issue's 4 GiB.  `make
# check-snapshot-san` runs the snapshot tests under ASan+UBSan and TSan.
BENCH_RUNS += bench-snapshot

.PHONY: bench-snapshot
bench-snapshot: $(OUT)/bench/snapshot
	$(Q)$(OUT)/bench/snapshot $(BENCH_SNAPSHOT_ARGS)

SNAPSHOT_TESTS := tests/unit/test_snapshot tests/selftests/snapshot_model \
	tests/selftests/snapshot_kill tests/selftests/snapshot_roundtrip \
	tests/selftests/snapshot_restart
SNAPSHOT_SANS := address,undefined thread

.PHONY: check-snapshot-san
check-snapshot-san:
	$(Q)set -e; for san in $(SNAPSHOT_SANS); do \
		out=build/san-$$(echo $$san | tr , -); \
		$(MAKE) --no-print-directory SANITIZE=$$san \
			$(addprefix $$out/,$(SNAPSHOT_TESTS)); \
		for t in $(SNAPSHOT_TESTS); do \
			echo "== $$san $$t"; $$out/$$t >/dev/null; \
		done; \
	done; echo "check-snapshot-san: all passed"
