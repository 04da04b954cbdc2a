#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Runs every test program and prints one summary line at the end:
#   N passed, N failed, N skipped
# Programs: cmocka unit tests ($OUT/tests/unit/test_*), selftests
# ($OUT/tests/selftests/*) and scripts (tests/scripts/*.sh).  Each prints
# TAP; every "ok"/"not ok" line counts once, "# SKIP" ones as skipped.  A
# program that exits non-zero without a "not ok" line counts as one
# failure.  Usage: tests/run.sh [unit|selftests|scripts] [NAME...]; a unit
# test's NAME may leave out its test_ prefix.
set -u
OUT=${OUT:-build}
export OUT
export CMOCKA_MESSAGE_OUTPUT=TAP
PROG_TIMEOUT=${PX_TEST_PROG_TIMEOUT:-1200}
kind=${1:-all}
shift || true

progs=()
want() { [ "$kind" = all ] || [ "$kind" = "$1" ]; }
picked() {
	[ $# -eq 1 ] && return 0
	local n=$1 want; shift
	for want in "$@"; do
		case $(basename "$n" .sh) in
		"$want" | "test_$want") return 0 ;;
		esac
	done
	return 1
}
if want unit; then
	for p in "$OUT"/tests/unit/test_*; do
		case $p in *.o|*.d) continue ;; esac
		[ -x "$p" ] && picked "$p" "$@" && progs+=("$p")
	done
fi
if want selftests; then
	for p in "$OUT"/tests/selftests/*; do
		case $p in *.o|*.d) continue ;; esac
		[ -x "$p" ] && [ -f "$p" ] && picked "$p" "$@" && progs+=("$p")
	done
fi
if want scripts; then
	for p in tests/scripts/*.sh; do
		[ -f "$p" ] && picked "$p" "$@" && progs+=("$p")
	done
fi

if [ ${#progs[@]} -eq 0 ]; then
	echo "tests/run.sh: no $kind test program named: $*" \
		"(build first with make)" >&2
	echo "0 passed, 0 failed, 0 skipped"
	exit 1
fi

pass=0 fail=0 skip=0
failed_progs=()
for p in "${progs[@]}"; do
	echo "# ==== $p"
	start=$(date +%s)
	log=$(mktemp)
	timeout -k 10 "$PROG_TIMEOUT" "$p" >"$log" 2>&1
	rc=$?
	cat "$log"
	read -r np nf ns < <(awk '
		/^ok [0-9]+/ { if ($0 ~ /# [Ss][Kk][Ii][Pp]/) s++; else p++ }
		/^not ok [0-9]+/ { if ($0 ~ /# [Ss][Kk][Ii][Pp]/) s++; else f++ }
		END { print p+0, f+0, s+0 }' "$log")
	rm -f "$log"
	if [ "$rc" -ne 0 ] && [ "$nf" -eq 0 ]; then
		echo "not ok - $p exited with status $rc"
		nf=1
	fi
	pass=$((pass + np)) fail=$((fail + nf)) skip=$((skip + ns))
	[ "$nf" -gt 0 ] && failed_progs+=("$p")
	echo "# ==== $p: $np passed, $nf failed, $ns skipped" \
		"($(( $(date +%s) - start )) s)"
done

for p in "${failed_progs[@]+"${failed_progs[@]}"}"; do
	echo "# FAILED: $p"
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && [ "${#progs[@]}" -gt 0 ]
