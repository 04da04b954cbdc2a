#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# pxcached's start-up, options and shutdown, and the helpers the other
# pxcached_*.sh scripts source: pxc_start starts a server of our own on a
# free 127.0.0.1 port (-p 0 with --port-file), pxc_stop stops it by pid
# with SIGTERM and returns its exit status.  A server left running when a
# script ends, even after a failure, is killed by its pid.
#
# Run directly, this file tests: the start-up line, --help, --features,
# bad options, SIGTERM and SIGINT exiting 0 with idle and busy clients,
# --hugepages off, an IPv6 listener, and --hugepages on refusing to start
# without enough free hugepages.

PXC_BIN=${PXC_BIN:-${OUT:-build}/apps/pxcached/pxcached}
PYTHON=${PYTHON:-/usr/bin/python3}
PXC_TMP=$(mktemp -d)
PXC_PID=
PXC_PORT=
PXC_N=0
PXC_FAILED=0

PXC_PIDS=() # servers started with pxc_srv

pxc_cleanup() {
	if [ -n "$PXC_PID" ] && kill -0 "$PXC_PID" 2>/dev/null; then
		kill -KILL "$PXC_PID" 2>/dev/null
		wait "$PXC_PID" 2>/dev/null
	fi
	for p in "${PXC_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	rm -rf "$PXC_TMP"
}
trap pxc_cleanup EXIT

# pxc_start [pxcached options...]: sets PXC_PID and PXC_PORT; returns 1
# when the server did not come up within $PXC_START_TIMEOUT seconds (its
# log is in $PXC_TMP/log).  $PXC_WRAP runs it under a tool, for example
# PXC_WRAP="valgrind --error-exitcode=9" PXC_START_TIMEOUT=120, and
# $PXC_EXTRA_ARGS adds options last (PXC_EXTRA_ARGS="-t 1" under
# valgrind, which hangs with several threads blocked in io_uring_enter).
pxc_start() {
	rm -f "$PXC_TMP/port"
	# shellcheck disable=SC2086 # words on purpose
	${PXC_WRAP:-} "$PXC_BIN" -p 0 --port-file "$PXC_TMP/port" "$@" \
		${PXC_EXTRA_ARGS:-} >"$PXC_TMP/log" 2>&1 &
	PXC_PID=$!
	for _ in $(seq 1 $((${PXC_START_TIMEOUT:-30} * 10))); do
		if [ -s "$PXC_TMP/port" ]; then
			PXC_PORT=$(cat "$PXC_TMP/port")
			return 0
		fi
		kill -0 "$PXC_PID" 2>/dev/null || break
		sleep 0.1
	done
	return 1
}

# pxc_srv NAME [options...]: one of several servers at once, logging to
# $PXC_TMP/NAME.log; SRV is its pid (killed at exit if still running),
# PXC_PORT its port; 1 if it did not listen within 30 s.
pxc_srv() {
	local name=$1
	shift
	rm -f "$PXC_TMP/port"
	"$PXC_BIN" -p 0 --port-file "$PXC_TMP/port" "$@" \
		>"$PXC_TMP/$name.log" 2>&1 &
	SRV=$!
	PXC_PIDS+=("$SRV")
	for _ in $(seq 1 300); do
		if [ -s "$PXC_TMP/port" ]; then
			PXC_PORT=$(cat "$PXC_TMP/port")
			return 0
		fi
		kill -0 "$SRV" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# pxc_require_srv N NAME [options...]: pxc_srv for a script's first
# server; when it does not come up, the script's N tests are skipped
# (io_uring blocked) or it fails once and skips the rest.
pxc_require_srv() {
	local n=$1 name=$2 why
	shift
	pxc_srv "$@" && return 0
	why=$(grep -i io_uring "$PXC_TMP/$name.log" | head -1)
	[ -n "$why" ] && pxc_skip_all "$n" "io_uring unavailable: $why"
	pxc_not_ok "pxcached starts ($*)"
	pxc_skip_all "$n" "pxcached did not start"
}

# pxc_ended PID: waits up to 30 s for our server PID to exit; its status.
pxc_ended() {
	for _ in $(seq 1 300); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	wait "$1"
}

# pxc_stop [SIGNAL]: stops the server by pid and returns its exit status.
pxc_stop() {
	local rc
	kill -"${1:-TERM}" "$PXC_PID" 2>/dev/null
	for _ in $(seq 1 $((${PXC_START_TIMEOUT:-30} * 10))); do
		kill -0 "$PXC_PID" 2>/dev/null || break
		sleep 0.1
	done
	wait "$PXC_PID"
	rc=$?
	PXC_PID=
	return "$rc"
}

# pxc_skip_reason: why the server cannot run here (io_uring blocked), or
# nothing.  Call after a failed pxc_start.
pxc_skip_reason() {
	if grep -qi "io_uring" "$PXC_TMP/log" 2>/dev/null; then
		head -1 "$PXC_TMP/log"
	fi
}

pxc_ok() {
	PXC_N=$((PXC_N + 1))
	echo "ok $PXC_N $1"
}

pxc_not_ok() {
	PXC_N=$((PXC_N + 1))
	PXC_FAILED=1
	echo "not ok $PXC_N $1"
	[ -f "$PXC_TMP/log" ] && sed 's/^/# server: /' "$PXC_TMP/log" | tail -20
}

# pxc_check NAME COMMAND...: one TAP line from a command's status.
pxc_check() {
	local name=$1
	shift
	if "$@"; then pxc_ok "$name"; else pxc_not_ok "$name"; fi
}

# pxc_skip_all N REASON: the rest of a script's N tests are skipped.
pxc_skip_all() {
	local n=$1
	shift
	while [ "$PXC_N" -lt "$n" ]; do
		PXC_N=$((PXC_N + 1))
		echo "ok $PXC_N # SKIP $*"
	done
	exit 0
}

# pxc_require_server N: start a default server or skip all N tests.
pxc_require_server() {
	local n=$1
	shift
	if ! pxc_start "$@"; then
		local why
		why=$(pxc_skip_reason)
		[ -n "$why" ] && pxc_skip_all "$n" "io_uring unavailable: $why"
		pxc_not_ok "pxcached starts"
		pxc_skip_all "$n" "pxcached did not start"
	fi
}

# pxc_py SCRIPT: runs Python with PORT in the environment and
# tests/scripts on PYTHONPATH (for pxtap.py, the shared TAP helpers).
PXC_PYDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pxc_py() {
	PORT=$PXC_PORT PYTHONPATH="$PXC_PYDIR${PYTHONPATH:+:$PYTHONPATH}" \
		"$PYTHON" - "$@"
}

# pxc_tap_out FILE: prints the TAP lines a Python part (pxtap.py, its
# counter started at N0=$PXC_N) wrote to FILE and counts them, and its
# failures, into PXC_N and PXC_FAILED.
pxc_tap_out() {
	cat "$1"
	PXC_N=$((PXC_N + $(grep -c '^\(not \)\?ok' "$1")))
	grep -q '^not ok' "$1" && PXC_FAILED=1
}

[ "${BASH_SOURCE[0]}" = "$0" ] || return 0

# ---- The tests of this file -------------------------------------------

echo "TAP version 13"
echo "1..13"

busy_client() {
	pxc_py <<'EOF'
import socket
from pxtap import PORT, recv_n
s = socket.create_connection(("127.0.0.1", PORT))
# A pipelined batch; the reply must arrive whole even though SIGTERM
# follows at once.
s.sendall(b"set k 0 0 5\r\nhello\r\n" + b"get k\r\n" * 200)
want = b"STORED\r\n" + b"VALUE k 0 5\r\nhello\r\nEND\r\n" * 200
got = recv_n(s, len(want))
print("busy", "ok" if got == want else "short %d" % len(got))
EOF
}

pxc_require_server 13 -t 2 -m 16
grep -Eq "listening on 127\.0\.0\.1 port $PXC_PORT, 2 threads, 16 MiB cache on [^ ]+ pages.*policy [a-z0-9]+" \
	"$PXC_TMP/log"
pxc_check "one start-up line: address, threads, memory, backing, policy" \
	[ $? -eq 0 ]
out=$(pxc_py <<'EOF'
import os, socket
s = socket.create_connection(("127.0.0.1", int(os.environ["PORT"])))
s.sendall(b"version\r\n")
print(s.recv(100).decode().strip())
EOF
)
pxc_check "answers version ($out)" [ "${out#VERSION }" != "$out" ]
pxc_stop TERM
pxc_check "SIGTERM with no client exits 0" [ $? -eq 0 ]

idle_client() {
	pxc_py <<'EOF'
import os, socket
s = socket.create_connection(("127.0.0.1", int(os.environ["PORT"])))
s.settimeout(20)
s.sendall(b"version\r\n")
s.recv(100)
# An idle client: the server must close it at shutdown.
print("idle", "closed" if s.recv(100) == b"" else "data")
EOF
}

pxc_start -t 2 -m 16
idle_client >"$PXC_TMP/idle" &
idle=$!
busy_client >"$PXC_TMP/busy" &
busy=$!
sleep 0.5
pxc_stop INT
rc=$?
wait "$busy" "$idle"
pxc_check "SIGINT with idle and busy clients exits 0" [ "$rc" -eq 0 ]
pxc_check "requests in flight at shutdown are answered" \
	grep -q "busy ok" "$PXC_TMP/busy"
pxc_check "idle clients are closed at shutdown" \
	grep -q "idle closed" "$PXC_TMP/idle"

pxc_check "--help documents every option" bash -c '
	h=$("$0" --help) || exit 1
	for o in -p -l -m -c -t -I -v -Y --policy --hugepages --features \
		--port-file --snapshot --snapshot-interval --snapshot-strict \
		--help; do
		grep -q -- "$o" <<<"$h" || { echo "# missing $o"; exit 1; }
	done' "$PXC_BIN"
pxc_check "--features prints capabilities and exits 0" bash -c \
	'"$0" --features | grep -qi uring' "$PXC_BIN"
pxc_check "a bad option exits 2 with a reason" bash -c \
	'"$0" --hugepages maybe 2>&1 >/dev/null | grep -q hugepages;
	 "$0" -I 5 2>/dev/null; [ $? -eq 2 ]' "$PXC_BIN"

lo6=::1
[ -r /proc/net/if_inet6 ] && grep -q "^0*1 " /proc/net/if_inet6 || lo6=127.0.0.1
pxc_start -t 1 -m 16 --hugepages off -l "$lo6"
pxc_check "--hugepages off: 4K pages, said in the start-up line" \
	grep -q "port $PXC_PORT, 1 threads, 16 MiB cache on 4K pages" \
	"$PXC_TMP/log"
pxc_stop TERM
pxc_check "-l $lo6 (IPv6 loopback when there is one) starts and stops" \
	[ $? -eq 0 ]

# Out of descriptors: accept fails with EMFILE, pauses, and recovers once
# clients leave; connections already open keep working.
PXC_WRAP="prlimit --nofile=40:40" pxc_start -t 1 -m 16 -c 1000
out=$(pxc_py <<'EOF'
import os, socket, time
p = int(os.environ["PORT"])
held = [socket.create_connection(("127.0.0.1", p)) for _ in range(60)]
time.sleep(0.5)
ok = 0
for s in held:
    s.settimeout(0.3)
    try:
        s.sendall(b"mn\r\n")
        ok += s.recv(10) == b"MN\r\n"
    except OSError:
        pass
for s in held:
    s.close()
time.sleep(0.5)
s = socket.create_connection(("127.0.0.1", p))
s.settimeout(5)
s.sendall(b"mn\r\n")
print(ok, s.recv(10) == b"MN\r\n")
EOF
)
pxc_stop TERM
rc=$?
pxc_check "out of descriptors: accept pauses and recovers ($out)" \
	bash -c "[ $rc -eq 0 ] && [ '${out#* }' = True ] && [ ${out% *} -gt 20 ] &&
		grep -q 'accept: Too many open files' '$PXC_TMP/log'"

# --hugepages on must refuse when the free 2 MiB pages cannot hold the
# cache: ask for more than are free (a hugetlb mapping fails at once,
# nothing is allocated).
free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
want=$(( ${free:-0} * 2 + 64 ))
if [ "$want" -gt 16384 ]; then
	echo "ok 13 # SKIP $free hugepages free: too many to exceed in a test"
	PXC_N=13
else
	"$PXC_BIN" -p 0 -t 1 -m "$want" --hugepages on >"$PXC_TMP/log" 2>&1
	rc=$?
	pxc_check "--hugepages on without enough free hugepages exits non-zero" \
		bash -c "[ $rc -ne 0 ] && grep -q hugetlb '$PXC_TMP/log'"
fi
exit "$PXC_FAILED"
