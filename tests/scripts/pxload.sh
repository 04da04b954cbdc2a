#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Runs bench/pxload and bench/replay briefly against servers this script
# starts on 127.0.0.1 (Debian's memcached, then pxcached when it is built)
# and checks that their figures are sane: requests answered, no errors,
# exact hit counts where the cache is large enough to keep every key,
# the same counts twice for the same seed, and errors counted when the
# server is absent or answers nonsense.  Servers are stopped by pid.
set -u
OUT=${OUT:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PXLOAD=$OUT/bench/pxload/pxload
REPLAY=$OUT/bench/replay/replay
PXCACHED=$OUT/apps/pxcached/pxcached
TRACE=${PX_TRACES:-$ROOT/../shared/traces}/multi1.keys
[ -f "$TRACE" ] || TRACE=/work/shared/traces/multi1.keys
# multi1: 15,858 requests over 2,606 distinct keys.
TRACE_REQS=15858
TRACE_KEYS=2606
# shellcheck source=../../bench/pxload/servers.sh
. "$ROOT/bench/pxload/servers.sh"

tmp=$(mktemp -d)
PIDS=()    # everything this script started
SERVERS=() # the servers among them
cleanup() {
	local p
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do srv_stop "$p"; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

n=0
ok() { n=$((n + 1)); echo "ok $n $1"; }
not_ok() {
	n=$((n + 1))
	echo "not ok $n $1"
	[ -f "$tmp/out" ] && sed 's/^/# /' "$tmp/out"
}
skip() { n=$((n + 1)); echo "ok $n $1 # SKIP $2"; }
check() { # check NAME CONDITION...
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}

# field NAME: a field of the RESULT line in $tmp/out.
field() { res_field "$(grep '^RESULT ' "$tmp/out" | tail -1)" "$1"; }
pxload() { "$PXLOAD" -q "$@" >"$tmp/out" 2>&1; echo $? >"$tmp/rc"; }
replay() { "$REPLAY" -q "$@" >"$tmp/out" 2>&1; echo $? >"$tmp/rc"; }
rc() { cat "$tmp/rc"; }

# A fixed request count on one connection is fully deterministic: with
# every key preloaded and room for all of them, every get hits.
t_exact() {
	pxload -p "$1" -c 1 -d 1 -k 2000 -n 3000 -S 7 -P --prefix "$2"
	[ "$(rc)" = 0 ] && [ "$(field ops)" = 3000 ] &&
		[ "$(field preloaded)" = 2000 ] &&
		[ "$(field hits)" = "$(field gets)" ] &&
		[ "$(field misses)" = 0 ] &&
		[ "$(($(field gets) + $(field sets)))" = 3000 ] &&
		[ "$(field errors)" = 0 ] &&
		[ "$(field gets)" -gt 2400 ] && [ "$(field gets)" -lt 3000 ]
}

# The same seed gives the same request mix.
t_same_seed() {
	local a b
	pxload -p "$1" -c 1 -d 1 -k 500 -n 2000 -S 11 --prefix "$2a"
	a="$(field gets) $(field sets) $(field hits) $(field misses)"
	pxload -p "$1" -c 1 -d 1 -k 500 -n 2000 -S 11 --prefix "$2b"
	b="$(field gets) $(field sets) $(field hits) $(field misses)"
	echo "# seed 11: gets sets hits misses $a / $b"
	[ "$(rc)" = 0 ] && [ "${a%% *}" -gt 0 ] && [ "$a" = "$b" ] &&
		[ "$(field hits)" -gt 0 ] && [ "$(field misses)" -gt 0 ]
}

# Many connections, pipelined, for a short time: answers, sane latency.
t_timed() {
	local p50 p99 p999
	pxload -p "$1" -c 8 -d 4 -k 10000 -t 1 -w 0.2 -T 2 --prefix "$2"
	p50=$(field p50_us) p99=$(field p99_us) p999=$(field p999_us)
	echo "# ops/s $(field ops_per_s) p50 $p50 p99 $p99 p99.9 $p999 us"
	[ "$(rc)" = 0 ] && [ "$(field ops)" -gt 100 ] &&
		[ "$(field errors)" = 0 ] &&
		awk -v a="$p50" -v b="$p99" -v c="$p999" \
			'BEGIN { exit !(a > 0 && a <= b && b <= c) }'
}

# Batch mode: whole batches of depth requests, each answered in full.
t_batch() {
	pxload -p "$1" -c 4 -d 8 -k 1000 -n 800 --batch -P --prefix "$2"
	[ "$(rc)" = 0 ] && [ "$(field ops)" = 800 ] &&
		[ "$(field hits)" = "$(field gets)" ] && [ "$(field errors)" = 0 ]
}

# Fresh keys: the hit ratio is exactly 1 - distinct / requests.
t_replay_cold() {
	replay -p "$1" -f "$TRACE" --prefix "$2"
	echo "# hit ratio $(field hit_ratio)"
	[ "$(rc)" = 0 ] && [ "$(field requests)" = $TRACE_REQS ] &&
		[ "$(field misses)" = $TRACE_KEYS ] &&
		[ "$(field hits)" = $((TRACE_REQS - TRACE_KEYS)) ] &&
		[ "$(field errors)" = 0 ]
}

# The same keys again: all of them are now cached.
t_replay_warm() {
	replay -p "$1" -f "$TRACE" --prefix "$2" -n 5000
	[ "$(rc)" = 0 ] && [ "$(field hits)" = 5000 ] &&
		[ "$(field hit_ratio)" = 1.000000 ]
}

run_suite() { # run_suite NAME PORT
	check "pxload $1: preloaded fixed-count run, every get hits" \
		t_exact "$2" "e$RANDOM:"
	check "pxload $1: same seed, same request mix" t_same_seed "$2" "s$RANDOM:"
	check "pxload $1: 2 threads, 8 conns, depth 4, sane latency" \
		t_timed "$2" "t$RANDOM:"
	check "pxload $1: batch mode, 4 conns x 8" t_batch "$2" "b$RANDOM:"
	local pre="r$RANDOM:"
	check "replay $1: cold hit ratio is 1 - distinct/requests" \
		t_replay_cold "$2" "$pre"
	check "replay $1: replaying again hits every key" \
		t_replay_warm "$2" "$pre"
}

echo "TAP version 13"
echo "1..17"
if [ ! -x "$PXLOAD" ] || [ ! -x "$REPLAY" ]; then
	for i in $(seq 1 16); do skip "pxload test $i" "$PXLOAD not built"; done
	exit 0
fi

# No server on the port: every connection fails and is counted.
# hold_port MODE: a socket of ours on a free port, listening (MODE listen)
# or only bound, so that connecting there is refused and no other
# program can take the port meanwhile.  Sets HOLD_PORT, and HOLD_PID to
# the holder's pid (also in PIDS).
hold_port() {
	python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0))
if sys.argv[1] == "listen":
    s.listen(1)
print(s.getsockname()[1], flush=True)
time.sleep(60)
' "$1" >"$tmp/held" &
	HOLD_PID=$!
	PIDS+=("$HOLD_PID")
	for _ in $(seq 1 50); do [ -s "$tmp/held" ] && break; sleep 0.1; done
	HOLD_PORT=$(cat "$tmp/held")
	: >"$tmp/held"
}

t_refused() {
	local ok
	hold_port bound
	[ -n "$HOLD_PORT" ] || return 1
	pxload -p "$HOLD_PORT" -c 3 -t 0.2 --connect-timeout 500
	[ "$(rc)" = 2 ] && [ "$(field err_conn)" = 3 ] &&
		[ "$(field ops)" = 0 ]
	ok=$?
	srv_stop "$HOLD_PID"
	return "$ok"
}
check "pxload: refused connections are counted as errors" t_refused

# srv_start accepts a port only when its own server listens there: a
# port that answers for another program is not ours.
t_owns_port() {
	local ok
	hold_port listen
	[ -n "$HOLD_PORT" ] && srv_port_open "$HOLD_PORT" &&
		srv_owns_port "$HOLD_PID" "$HOLD_PORT" &&
		! srv_owns_port $$ "$HOLD_PORT"
	ok=$?
	srv_stop "$HOLD_PID"
	return "$ok"
}
check "srv_owns_port tells our listener from another program's" t_owns_port

# fake_server MODE: a one-connection server in python that answers every
# request line with BOGUS (MODE bogus) or never answers (MODE mute).
# Prints its port; its pid goes to PIDS.
fake_server() {
	python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
while True:
    d = c.recv(65536)
    if not d:
        break
    if sys.argv[1] == "bogus":
        c.sendall(b"BOGUS\r\n" * d.count(b"\n"))
' "$1" >"$tmp/port" 2>/dev/null &
	PIDS+=($!)
	local i
	for i in $(seq 1 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
	cat "$tmp/port"
	: >"$tmp/port"
}

# A server that answers nonsense: counted as unexpected replies.
t_nonsense() {
	local port
	port=$(fake_server bogus)
	pxload -p "$port" -c 1 -d 2 -n 50 -r 1:0
	[ "$(rc)" = 2 ] && [ "$(field err_unexpected)" = 50 ] &&
		[ "$(field ops)" = 0 ]
}
check "pxload: nonsense replies are counted as unexpected" t_nonsense

# A server that never answers: the reply timeout ends the run.
t_mute() {
	local port
	port=$(fake_server mute)
	pxload -p "$port" -c 1 -d 4 -n 50 --reply-timeout 200
	[ "$(rc)" = 2 ] && [ "$(field err_conn)" = 1 ] &&
		[ "$(field unanswered)" = 4 ] && [ "$(field ops)" = 0 ]
}
check "pxload: a server that never answers is timed out" t_mute

# memcached on a free port, 64 MiB: room for every key of the tests.
read -ra MEMCACHED <<<"$(srv_memcached_cmd 64 2)"
if ! command -v memcached >/dev/null; then
	for i in $(seq 4 9); do skip "memcached test $i" "memcached not installed"; done
elif ! srv_start "$tmp/memcached.log" "${MEMCACHED[@]}"; then
	for i in $(seq 4 9); do skip "memcached test $i" "memcached did not start"; done
else
	PIDS+=("$SRV_PID") SERVERS+=("$SRV_PID")
	run_suite memcached "$SRV_PORT"
fi

if [ ! -x "$PXCACHED" ]; then
	for i in $(seq 10 15); do skip "pxcached test $i" "$PXCACHED not built"; done
elif ! srv_start "$tmp/pxcached.log" "$PXCACHED" -l 127.0.0.1 -m 64 -t 2; then
	sed 's/^/# /' "$tmp/pxcached.log"
	for i in $(seq 10 15); do not_ok "pxcached test $i: server did not start"; done
else
	PIDS+=("$SRV_PID") SERVERS+=("$SRV_PID")
	run_suite pxcached "$SRV_PORT"
fi

# The servers must have survived all of it.
alive=${#SERVERS[@]}
for p in "${SERVERS[@]+"${SERVERS[@]}"}"; do
	kill -0 "$p" 2>/dev/null || alive=0
done
if [ ${#SERVERS[@]} -eq 0 ]; then
	skip "servers still running after the runs" "no server started"
else
	check "servers still running after the runs" [ "$alive" -gt 0 ]
fi
