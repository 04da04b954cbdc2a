#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Entry point of the patinox container (docker/Dockerfile).
#   bench [TARGET...]   (default) print the capability probe, then run
#                       `make bench` (or the given bench-* targets) with
#                       quick settings: a few minutes in all.
#                       PX_BENCH_FULL=1 keeps each benchmark's defaults.
#   pxcached [ARGS...]  run the server in the foreground (see pxcached(1));
#                       it binds 127.0.0.1 unless given -l ADDR.
#   pxprobe | probe     print what the kernel offers (io_uring, hugepages)
#   anything else       run it as a command (sh, bash, ...)
# Benchmarks that replay traces find them under /traces when the host
# mounts its trace folder there (-v /path/to/traces:/traces:ro).
set -u
cd /opt/patinox || exit 1
OUT=build
export OUT

# Quick settings for each benchmark's own knobs; anything already set in
# the environment (docker run -e NAME=VALUE) wins.
quick_settings() {
	: "${BENCH_COW_ARGS=-d 100 -r 1 -n 5000}"
	: "${BENCH_CACHE_ARGS=--quick}"
	: "${REGION_TLB_ARGS=-s 512M -n 2000000 -d 500000 -R 1}"
	: "${RING_BENCH_ARGS=-d 1 -w 0 -r 1}"
	: "${BENCH_SNAPSHOT_ARGS=-s 256}" "${BENCH_POOL_ARGS=-s 0.2}"
	: "${BENCH_GUARD_ARGS=-n 20000 -r 1}"
	: "${PX_BENCH_DURATION=1}" "${PX_BENCH_WARMUP=1}"
	: "${PX_BENCH_ROUNDS=1}" "${PX_BENCH_ITEMS=100000}"
	: "${PX_BENCH_MEM=256}"
	: "${PX_NO_SOAK=1}"
	export PX_NO_SOAK BENCH_COW_ARGS BENCH_CACHE_ARGS REGION_TLB_ARGS RING_BENCH_ARGS \
		BENCH_SNAPSHOT_ARGS BENCH_POOL_ARGS BENCH_GUARD_ARGS \
		PX_BENCH_DURATION PX_BENCH_WARMUP PX_BENCH_ROUNDS \
		PX_BENCH_ITEMS PX_BENCH_MEM
}

trace_settings() {
	[ -d /traces ] || return 0
	: "${PX_TRACE_DIR=/traces}"
	export PX_TRACE_DIR
	: "${PX_BENCH_TRACE_DIR=/traces}"
	export PX_BENCH_TRACE_DIR
}

# make must run the programs that are here and never try to rebuild one
# (there is no compiler): -o marks each as up to date whatever its rule.
run_bench() {
	local keep=() p
	for p in "$OUT"/auto.conf $(find "$OUT" -type f -perm -u+x); do
		keep+=(-o "$p")
	done
	[ "${PX_BENCH_FULL:-0}" = 1 ] || quick_settings
	trace_settings
	echo "# patinox container: $(uname -r), $(nproc) CPUs," \
		"$(awk '/MemTotal/ { print int($2 / 1024) " MiB" }' /proc/meminfo)"
	"$OUT"/apps/pxprobe/pxprobe --features | sed 's/^/# /'
	exec make --no-print-directory -k "${keep[@]}" "${@:-bench}"
}

cmd=${1:-bench}
[ $# -gt 0 ] && shift
case $cmd in
bench) run_bench "$@" ;;
pxcached) exec "$OUT"/apps/pxcached/pxcached "$@" ;;
pxprobe | probe) exec "$OUT"/apps/pxprobe/pxprobe --features ;;
*) exec "$cmd" "$@" ;;
esac
