#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# pxcached against memcached 1.6.18, request by request: gat/gats without
# a key, verbosity's arguments, incr/decr of numbers written as memcached
# reads them (" 12", "+5"), cache_memlimit, the stats groups (items,
# slabs, sizes, reset) and the names of stats and stats settings, and the
# auth counters of -Y.  The cases live in pxcached_compat.py; each is one
# TAP line against pxcached.  When Debian's memcached 1.6.18 is installed
# the cases marked as shared are also sent to a memcached of our own on a
# free 127.0.0.1 port, which must agree (one more TAP line, SKIP without
# it).  Every server is stopped by its pid.
. "$(dirname "$0")/pxcached_server.sh"

MEM=16
CASES=$(dirname "$0")/pxcached_compat.py
NCASES=$("$PYTHON" "$CASES" count)
NT=$((NCASES + 4))
echo "TAP version 13"
echo "1..$NT"
pxc_require_server "$NT" -t 2 -m "$MEM"

while read -r verdict rest; do
	if [ "$verdict" = PASS ]; then
		pxc_ok "$rest"
	else
		pxc_not_ok "$rest"
	fi
done < <("$PYTHON" "$CASES" run "$PXC_PORT" "$MEM")
while [ "$PXC_N" -lt "$NCASES" ]; do
	pxc_not_ok "a case gave no verdict"
done
pxc_stop TERM
pxc_check "pxcached exits 0 after the cases (sanitizers clean)" [ $? -eq 0 ]

# -Y: auth_cmds counts authentication attempts, auth_errors the refused.
printf 'ann:secret\n' >"$PXC_TMP/auth"
pxc_start -t 1 -m "$MEM" -Y "$PXC_TMP/auth"
out=$(pxc_py <<'EOF'
import os, re, socket
port = int(os.environ["PORT"])
def talk(data):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(5)
    s.sendall(data)
    got = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        got += d
        if got.endswith(b"END\r\n") or b"CLIENT_ERROR" in got:
            break
    return got
talk(b"set a 0 0 10\r\nann wrong!\r\n")
talk(b"set a 0 0 3\r\nann\r\n")
r = talk(b"set a 0 0 10\r\nann secret\r\nstats\r\n")
st = dict(re.findall(rb"STAT (\S+) (\S+)\r\n", r))
print(st.get(b"auth_cmds", b"-").decode(), st.get(b"auth_errors", b"-").decode())
EOF
)
pxc_check "-Y: auth_cmds 3 and auth_errors 2 ($out)" [ "$out" = "3 2" ]
pxc_stop TERM

# memcached_start: one of our own on a free port in 20000-60000, or 1.
MC_PID=
mc_cleanup() {
	if [ -n "$MC_PID" ]; then
		kill "$MC_PID" 2>/dev/null
		wait "$MC_PID" 2>/dev/null
	fi
	pxc_cleanup
}
trap mc_cleanup EXIT
# mc_answers PORT PID: PORT accepts and its stats say pid PID, so the
# server there is the memcached we started.  Without the pid check, a port
# that another server already held passed for ours (our memcached failed
# to bind and exited, the port still accepted): the cases, flush_all and
# stats reset included, went to someone else's server.
mc_answers() {
	PXC_PORT=$1 pxc_py "$2" 2>/dev/null <<'PYEOF'
import sys
from pxtap import PORT, owns
sys.exit(0 if owns(PORT, sys.argv[1]) else 1)
PYEOF
}
# mc_port_open PORT: something listens on PORT (no byte is sent to it).
mc_port_open() {
	PORT=$1 "$PYTHON" -c '
import os, socket
socket.create_connection(("127.0.0.1", int(os.environ["PORT"])), 1)' \
		2>/dev/null
}
# memcached_start [PORT]: one of our own on PORT, or on a free port in
# 20000-60000; false if none could be started.  A port that already
# accepts is someone else's: it is never tried.
memcached_start() {
	local user=()
	[ "$(id -u)" -eq 0 ] && user=(-u root)
	for _ in 1 2 3 4 5 6 7 8; do
		MC_PORT=${1:-$((20000 + RANDOM % 40000))}
		mc_port_open "$MC_PORT" && continue
		memcached -l 127.0.0.1 -p "$MC_PORT" -U 0 -t 2 -m "$MEM" \
			"${user[@]}" >"$PXC_TMP/mc.log" 2>&1 &
		MC_PID=$!
		for _ in $(seq 1 50); do
			kill -0 "$MC_PID" 2>/dev/null || break
			mc_answers "$MC_PORT" "$MC_PID" && return 0
			sleep 0.1
		done
		kill "$MC_PID" 2>/dev/null
		wait "$MC_PID" 2>/dev/null
		MC_PID=
	done
	return 1
}

# taken_port_refused: a port held by another listener (a python one of
# ours that answers nothing) is not taken for our memcached.
taken_port_refused() {
	local port held rc
	"$PYTHON" -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
time.sleep(60)' >"$PXC_TMP/held" 2>/dev/null &
	held=$!
	for _ in $(seq 1 50); do
		[ -s "$PXC_TMP/held" ] && break
		sleep 0.1
	done
	port=$(cat "$PXC_TMP/held")
	memcached_start "$port"
	rc=$?
	kill "$held" 2>/dev/null
	wait "$held" 2>/dev/null
	[ -n "$port" ] && [ "$rc" -ne 0 ] && [ -z "$MC_PID" ]
}

version=$(memcached -V 2>/dev/null)
if [ "$version" != "memcached 1.6.18" ]; then
	pxc_ok "memcached on a taken port # SKIP memcached 1.6.18 not installed (${version:-none})"
else
	pxc_check "memcached is never assumed on a port another server holds" \
		taken_port_refused
fi
if [ "$version" != "memcached 1.6.18" ]; then
	pxc_ok "memcached agrees on the shared cases # SKIP memcached 1.6.18 not installed (${version:-none})"
elif ! memcached_start; then
	pxc_not_ok "memcached 1.6.18 starts on a free port"
else
	"$PYTHON" "$CASES" same "$MC_PORT" "$MEM" >"$PXC_TMP/mc.out"
	n=$(grep -c '^PASS' "$PXC_TMP/mc.out")
	if ! grep -q '^FAIL' "$PXC_TMP/mc.out" && [ "$n" -gt 0 ]; then
		pxc_ok "memcached 1.6.18 agrees on the $n shared cases"
	else
		grep '^FAIL' "$PXC_TMP/mc.out" | sed 's/^/# memcached: /'
		pxc_not_ok "memcached 1.6.18 agrees on the shared cases"
	fi
fi
exit "$PXC_FAILED"
