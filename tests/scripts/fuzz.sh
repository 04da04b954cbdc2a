#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The short CI run of the libFuzzer targets (tests/fuzz/, mk/fuzz.mk):
# builds them with clang under ASan + UBSan, replays every saved crash
# input (tests/fuzz/regress/<target>/<what-it-broke>, one TAP line each),
# then fuzzes each target for FUZZ_CI_SECONDS (default 45) from its seed
# corpus.  Any crash, leak or sanitizer report is a failure.  It runs only
# when CI=true or PX_FUZZ=1, so that `make check` stays fast for
# developers; otherwise every test is skipped with the reason.
set -u
cd "$(dirname "$0")/../.." || exit 1
SECS=${FUZZ_CI_SECONDS:-45}
FOUT=build/fuzz
targets=()
for f in tests/fuzz/fuzz_*.c; do
	targets+=("$(basename "$f" .c)")
done
regress=()
for t in "${targets[@]}"; do
	for r in tests/fuzz/regress/"$t"/*; do
		[ -f "$r" ] && regress+=("$t:$r")
	done
done
total=$((1 + ${#regress[@]} + ${#targets[@]}))
echo "TAP version 13"
echo "1..$total"

if [ "${CI:-}" != true ] && [ "${PX_FUZZ:-}" != 1 ]; then
	for i in $(seq 1 "$total"); do
		echo "ok $i # SKIP fuzzing runs with CI=true or PX_FUZZ=1"
	done
	exit 0
fi

# The fuzzers carry their own ASan+UBSan; a sanitized `make check` pass
# would only run them a second time.
if [ -n "${SANITIZE:-}" ]; then
	for i in $(seq 1 "$total"); do
		echo "ok $i # SKIP fuzzing runs in the plain make check pass"
	done
	exit 0
fi

n=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! command -v clang >/dev/null; then
	for i in $(seq 1 "$total"); do
		echo "ok $i # SKIP clang is not installed (make deps)"
	done
	exit 0
fi
if make --no-print-directory fuzz-build >"$log" 2>&1; then
	echo "ok $n fuzz targets build with clang"
else
	echo "not ok $n fuzz targets build with clang"
	sed 's/^/# /' "$log" | tail -20
	exit 1
fi

failed=0
for tr in "${regress[@]+"${regress[@]}"}"; do
	n=$((n + 1))
	t=${tr%%:*} r=${tr#*:}
	if "$FOUT/$t" -handle_bus=0 "$r" >"$log" 2>&1; then
		echo "ok $n $t replays $(basename "$r")"
	else
		failed=1
		echo "not ok $n $t replays $(basename "$r")"
		grep -a -m5 "runtime error\|ERROR\|fuzz_" "$log" | sed 's/^/# /'
	fi
done

for t in "${targets[@]}"; do
	n=$((n + 1))
	work=$(mktemp -d)
	"$FOUT/$t" -handle_bus=0 -rss_limit_mb=2048 -timeout=20 \
		-max_total_time="$SECS" -print_final_stats=1 \
		-artifact_prefix="$FOUT/crash-$t-" "$work" \
		"tests/fuzz/corpus/$t" >"$log" 2>&1
	rc=$?
	runs=$(grep -a -o 'stat::number_of_executed_units: *[0-9]*' "$log" |
		grep -o '[0-9]*$')
	rm -rf "$work"
	if [ "$rc" -eq 0 ]; then
		echo "ok $n $t ${SECS}s, ${runs:-?} runs, no crash"
	else
		failed=1
		echo "not ok $n $t crashed (input saved as $FOUT/crash-$t-*)"
		grep -a -m8 "runtime error\|ERROR\|SUMMARY\|fuzz_" "$log" |
			sed 's/^/# /'
	fi
done
exit "$failed"
