#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# pxcached against memcached 1.6.18 by random command sequences
# (pxcached_difftest.py): a memcached and a pxcached of our own, each on
# a free 127.0.0.1 port, get the same sequences from a fixed set of
# seeds, one command at a time and pipelined, and must answer alike.
# Before any command, each port's `stats pid` must be the pid we started
# (a port another server took is never used).  The tester's self-check
# alters one reply and must find and shrink it; one case sleeps 2.2 s to
# see 1 s TTLs end.  PX_DIFFTEST_SEEDS=N runs seeds 1 to N (default 100,
# a few seconds).  Skips without memcached 1.6.18.  Both servers are
# stopped by their pid, also when the script fails.
. "$(dirname "$0")/pxcached_server.sh"
# shellcheck source=../../bench/pxload/servers.sh
. "$(dirname "$0")/../../bench/pxload/servers.sh"

MEM=16
NT=5
SEEDS=${PX_DIFFTEST_SEEDS:-100}
DT="$PXC_PYDIR/pxcached_difftest.py"
MC_PID=
dt_cleanup() {
	srv_stop "$MC_PID"
	pxc_cleanup
}
trap dt_cleanup EXIT
trap 'exit 1' INT TERM

echo "TAP version 13"
echo "1..$NT"
version=$(memcached -V 2>/dev/null)
if [ "$version" != "memcached 1.6.18" ]; then
	pxc_skip_all "$NT" "memcached 1.6.18 not installed (${version:-none})"
fi
case $SEEDS in
'' | *[!0-9]*) pxc_skip_all "$NT" "PX_DIFFTEST_SEEDS=$SEEDS is not a number" ;;
esac
pxc_require_server "$NT" -t 2 -m "$MEM"

# shellcheck disable=SC2046 # the command's words on purpose
if srv_start "$PXC_TMP/mc.log" $(srv_memcached_cmd "$MEM" 2); then
	MC_PID=$SRV_PID
	MC_PORT=$SRV_PORT
	pxc_ok "memcached 1.6.18 listens on port $MC_PORT as pid $MC_PID"
else
	pxc_not_ok "memcached 1.6.18 starts on a free port"
	pxc_skip_all "$NT" "no memcached to compare with"
fi

# dt WORD...: the tester on both servers; its output in $PXC_TMP/dt.
dt() {
	"$PYTHON" "$DT" "$MC_PORT" "$MC_PID" "$PXC_PORT" "$PXC_PID" "$@" \
		>"$PXC_TMP/dt" 2>&1
}
show() {
	grep -v '^PASS' "$PXC_TMP/dt" | head -40 | cut -c1-400 | sed 's/^/# /'
}

dt inject:3:150
rc=$?
n_min=$(grep -c '^#   ' "$PXC_TMP/dt")
if [ "$rc" -eq 1 ] && grep -q '^FAIL seed 3 .*command 150 ' "$PXC_TMP/dt" &&
	[ "$n_min" -ge 1 ] && [ "$n_min" -le 3 ]; then
	pxc_ok "an altered reply is found and shrunk to $n_min command(s)"
else
	show
	pxc_not_ok "an altered reply is found and shrunk (rc $rc, $n_min)"
fi

start=$(date +%s)
if dt "1-$SEEDS"; then
	secs=$(($(date +%s) - start))
	pxc_ok "seeds 1-$SEEDS: same replies, one by one and pipelined ($secs s)"
else
	show
	pxc_not_ok "seeds 1-$SEEDS: same replies, one at a time and pipelined"
fi

if dt expiry; then
	pxc_ok "keys given a 1 s TTL in every way end alike"
else
	show
	pxc_not_ok "keys given a 1 s TTL in every way end alike"
fi

pxc_stop TERM
pxc_check "pxcached exits 0 after the sequences (sanitizers clean)" \
	[ $? -eq 0 ]
exit "$PXC_FAILED"
