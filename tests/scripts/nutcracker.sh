#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# pxcached behind twemproxy (Debian's nutcracker), the way memcached
# scales out: three pxcached and one nutcracker, all on free 127.0.0.1
# ports, ketama hashing with auto_eject_hosts.  Traffic through the proxy
# must land on all three instances (their stats curr_items); when one
# instance is stopped, nutcracker must eject it and keep serving with the
# other two; when it is started again on its port, nutcracker must send it
# keys again.  Every process is started here and stopped by its pid, also
# on failure.  Prints TAP; skips while pxcached is not built.
# PX_NUTCRACKER_SERVER=memcached runs the same test against memcached.
set -u
cd "$(dirname "$0")/../.." || exit 1
OUT=${OUT:-build}
SERVER=${PX_NUTCRACKER_SERVER:-pxcached}
NUTCRACKER=$(command -v nutcracker || echo /usr/sbin/nutcracker)
KEYS=600
RETRY_MS=500
tmp=$(mktemp -d)
declare -a SPID SPORT
NPID=
NPORT=
STATS_PORT=

# srv_stop PID (SIGTERM, SIGKILL after 5 s, then reap) and
# srv_port_open PORT, shared with pxload.sh and bench-server.sh.
# shellcheck source=../../bench/pxload/servers.sh
. bench/pxload/servers.sh
cleanup() {
	local i
	srv_stop "$NPID"
	for i in 0 1 2; do srv_stop "${SPID[$i]:-}"; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

N=0
FAILED=0
PLAN=7
ok() { N=$((N + 1)); echo "ok $N $*"; }
notok() {
	N=$((N + 1))
	[ -s "$tmp/why" ] && sed 's/^/# /' "$tmp/why" | tail -n 30
	echo "not ok $N $*"
	FAILED=$((FAILED + 1))
}
check() { # check NAME FUNCTION: ok when FUNCTION succeeds
	local name=$1
	shift
	: >"$tmp/why"
	if "$@" >>"$tmp/why" 2>&1; then
		ok "$name"
		tail -n 2 "$tmp/why" | sed 's/^/# /'
	else
		notok "$name"
	fi
}
skip_all() {
	local i
	echo "1..$PLAN"
	for i in $(seq 1 $PLAN); do echo "ok $i nutcracker # SKIP $1"; done
	exit 0
}

echo "TAP version 13"
case $SERVER in
pxcached)
	SERVER_BIN=$OUT/apps/pxcached/pxcached
	[ -x "$SERVER_BIN" ] || skip_all "pxcached is not built yet"
	server_cmd() { echo "$SERVER_BIN -l 127.0.0.1 -p $1 -t 1 -m 32"; } ;;
memcached)
	SERVER_BIN=$(command -v memcached) || skip_all "memcached missing"
	server_cmd() { echo "$SERVER_BIN -l 127.0.0.1 -p $1 -U 0 -t 1 -m 32 -u root"; } ;;
*) skip_all "unknown PX_NUTCRACKER_SERVER=$SERVER" ;;
esac
[ -x "$NUTCRACKER" ] || skip_all "nutcracker missing (Debian package nutcracker)"
echo "1..$PLAN"

# Ports below the kernel's ephemeral range: a port some client connection
# holds as its local port is not open (srv_port_open says free) yet
# cannot be bound, and a busy machine (10,000 idle connections of another
# test) holds thousands of them: five tries in a row failed that way.
EPH_LOW=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
[ "${EPH_LOW:-0}" -gt 21000 ] 2>/dev/null || EPH_LOW=60000
random_port() {
	local p
	while :; do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % (EPH_LOW - 20000)))
		srv_port_open "$p" || { echo "$p"; return; }
	done
}
# wait_port PORT PID: true once PID listens on PORT (10 s at most,
# generous for sanitized builds on a loaded machine), false if PID died
# first.
wait_port() {
	local i
	for i in $(seq 1 200); do
		srv_port_open "$1" && srv_owns_port "$2" "$1" && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# start_server I [PORT]: instance I on PORT, or on a free port.
start_server() {
	local i=$1 port=${2:-} try cmd
	for try in 1 2 3 4 5; do
		[ -n "${2:-}" ] || port=$(random_port)
		read -r -a cmd < <(server_cmd "$port")
		"${cmd[@]}" >>"$tmp/server$i.log" 2>&1 &
		SPID[i]=$!
		if wait_port "$port" "${SPID[i]}"; then
			SPORT[i]=$port
			return 0
		fi
		srv_stop "${SPID[i]}"
		SPID[i]=
		[ -n "${2:-}" ] && sleep 0.5 # the same port: wait and retry
	done
	cat "$tmp/server$i.log"
	return 1
}

write_conf() {
	cat >"$tmp/nutcracker.yml" <<-YML
	patinox:
	  listen: 127.0.0.1:$NPORT
	  hash: md5
	  distribution: ketama
	  timeout: 1000
	  backlog: 128
	  preconnect: false
	  auto_eject_hosts: true
	  server_retry_timeout: $RETRY_MS
	  server_failure_limit: 1
	  servers:
	   - 127.0.0.1:${SPORT[0]}:1 s0
	   - 127.0.0.1:${SPORT[1]}:1 s1
	   - 127.0.0.1:${SPORT[2]}:1 s2
	YML
}

start_all() {
	local i try
	for i in 0 1 2; do start_server "$i" || return 1; done
	for try in 1 2 3 4 5; do
		NPORT=$(random_port)
		STATS_PORT=$(random_port)
		[ "$NPORT" != "$STATS_PORT" ] || continue
		write_conf
		"$NUTCRACKER" -t -c "$tmp/nutcracker.yml" >"$tmp/conf.log" 2>&1 ||
			{ cat "$tmp/conf.log" "$tmp/nutcracker.yml"; return 1; }
		"$NUTCRACKER" -c "$tmp/nutcracker.yml" -s "$STATS_PORT" \
			-a 127.0.0.1 -i 200 -p "$tmp/nutcracker.pid" \
			-o "$tmp/nutcracker.log" -v 4 &
		NPID=$!
		wait_port "$NPORT" "$NPID" && wait_port "$STATS_PORT" "$NPID" &&
			return 0
		srv_stop "$NPID"
		NPID=
	done
	cat "$tmp/nutcracker.log"
	return 1
}

# A small memcached-protocol client: sets, gets and stats.  Like most
# clients behind a proxy it retries a request once when the proxy answers
# with an error: nutcracker fails the one request that it sends to an
# ejected server each server_retry_timeout to see whether it is back.
cat >"$tmp/mc.py" <<'PY'
import json, socket, sys, time

def conn(port):
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
    return s, s.makefile("rb")

def request(s, f, req):
    """Sends req, returns the first reply line; one retry on an error."""
    for attempt in (0, 1):
        s.sendall(req)
        line = f.readline()
        if not line.startswith((b"SERVER_ERROR", b"ERROR", b"CLIENT_ERROR")):
            break
        time.sleep(0.01)
    return line

def cmd_set(port, prefix, n):
    """Sets prefix0..prefixN-1, one connection; prints stored errors."""
    s, f = conn(port)
    stored = errors = 0
    for i in range(int(n)):
        v = b"v-%s-%d" % (prefix.encode(), i)
        req = b"set %s%d 0 0 %d\r\n%s\r\n" % (prefix.encode(), i, len(v), v)
        line = request(s, f, req)
        if line == b"STORED\r\n":
            stored += 1
        else:
            errors += 1
    print(stored, errors)

def cmd_get(port, prefix, n):
    """Gets them back; prints hits with the right value, misses, errors."""
    s, f = conn(port)
    hits = misses = errors = 0
    for i in range(int(n)):
        line = request(s, f, b"get %s%d\r\n" % (prefix.encode(), i))
        if line.startswith(b"VALUE "):
            data = f.readline()
            f.readline()  # END
            want = b"v-%s-%d\r\n" % (prefix.encode(), i)
            hits += data == want
            errors += data != want
        elif line == b"END\r\n":
            misses += 1
        else:
            errors += 1
    print(hits, misses, errors)

def cmd_items(port):
    s, f = conn(port)
    s.sendall(b"stats\r\n")
    items = None
    for line in f:
        if line.startswith(b"STAT curr_items "):
            items = int(line.split()[2])
        if line == b"END\r\n":
            break
    print(items)

def cmd_ejected(port, server):
    """1 when nutcracker's stats show SERVER ejected now, else 0."""
    s, f = conn(port)
    data = b"".join(iter(lambda: s.recv(65536), b""))
    st = json.loads(data)["patinox"][server]
    print(1 if st.get("server_ejected_at", 0) else 0,
          st.get("server_err", 0), st.get("server_eof", 0))

cmds = {"set": cmd_set, "get": cmd_get, "items": cmd_items,
        "ejected": cmd_ejected}
cmds[sys.argv[1]](*sys.argv[2:])
PY
mc() { python3 "$tmp/mc.py" "$@"; }

items_all() { # prints curr_items of the three instances
	local i out=()
	for i in 0 1 2; do
		out+=("$(mc items "${SPORT[$i]}" 2>/dev/null || echo -)")
	done
	echo "${out[*]}"
}

check "nutcracker config (ketama, auto_eject_hosts) accepted; three $SERVER and nutcracker listen on 127.0.0.1" \
	start_all
if [ -z "$NPID" ]; then
	for i in $(seq 2 $PLAN); do
		echo "ok $i nutcracker # SKIP nothing started"
	done
	exit 1
fi

through_proxy() {
	local r g
	r=$(mc set "$NPORT" a "$KEYS") || return 1
	g=$(mc get "$NPORT" a "$KEYS") || return 1
	echo "set: stored errors = $r; get: hits misses errors = $g"
	[ "$r" = "$KEYS 0" ] && [ "$g" = "$KEYS 0 0" ]
}
check "$KEYS sets and gets through nutcracker all succeed" through_proxy

spread() {
	local n0 n1 n2
	read -r n0 n1 n2 < <(items_all)
	echo "curr_items: $n0 $n1 $n2"
	[ $((n0 + n1 + n2)) -eq "$KEYS" ] &&
		[ "$n0" -ge $((KEYS / 10)) ] && [ "$n1" -ge $((KEYS / 10)) ] &&
		[ "$n2" -ge $((KEYS / 10)) ]
}
check "keys spread over all three instances (curr_items each >= 10%)" spread

# Stop s1; a request for one of its keys fails once, which ejects it
# (server_failure_limit 1), after which its keys go to s0 and s2.
BEFORE=
eject() {
	local try r e
	read -r -a BEFORE < <(items_all)
	srv_stop "${SPID[1]}"
	SPID[1]=
	for try in $(seq 1 20); do
		r=$(mc set "$NPORT" b "$KEYS" 2>/dev/null)
		e=$(mc ejected "$STATS_PORT" s1 2>/dev/null)
		echo "round $try: set stored errors = $r; s1 ejected err eof = $e"
		[ "$r" = "$KEYS 0" ] && [ "${e%% *}" = 1 ] && return 0
		sleep 0.2
	done
	return 1
}
check "s1 stopped by pid: nutcracker's stats show it ejected; every set succeeds" \
	eject

survivors() {
	local n0 n1 n2 g
	read -r n0 n1 n2 < <(items_all)
	echo "curr_items after: $n0 $n1 $n2 (before ${BEFORE[*]})"
	g=$(mc get "$NPORT" b "$KEYS")
	echo "get b*: hits misses errors = $g"
	[ "$g" = "$KEYS 0 0" ] &&
		[ $((n0 + n2)) -eq $((BEFORE[0] + BEFORE[2] + KEYS)) ]
}
check "traffic continues on s0 and s2: all $KEYS new keys there and readable" \
	survivors

# Start s1 again on its port; after server_retry_timeout nutcracker
# tries it, and its share of new keys goes to it again.
comes_back() {
	local try n0 n1 n2 r
	start_server 1 "${SPORT[1]}" || return 1
	for try in $(seq 1 40); do
		sleep 0.25
		r=$(mc set "$NPORT" "c$try-" 60 2>/dev/null)
		read -r n0 n1 n2 < <(items_all)
		echo "round $try: set stored errors = $r; curr_items $n0 $n1 $n2"
		[[ $n1 =~ ^[0-9]+$ ]] && [ "$n1" -gt 0 ] && return 0
	done
	return 1
}
check "s1 restarted on its port: nutcracker sends it keys again" comes_back

all_stopped() {
	local i pids=("$NPID" "${SPID[@]}")
	srv_stop "$NPID"
	for i in 0 1 2; do srv_stop "${SPID[$i]:-}"; done
	for i in "${pids[@]}"; do
		[ -n "$i" ] && kill -0 "$i" 2>/dev/null && { echo "$i alive"; return 1; }
	done
	NPID=
	SPID=()
	return 0
}
check "nutcracker and the three instances stopped by pid" all_stopped
[ "$FAILED" -eq 0 ]
