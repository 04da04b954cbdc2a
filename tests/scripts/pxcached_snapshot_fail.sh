#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# pxcached's --snapshot under trouble.  Periodic saves that keep failing
# log one warning, not one per attempt: a second one only when the error
# changes (EISDIR, FILE.tmp made a directory, then ENOENT, FILE.tmp a
# link into a missing directory), and the first good save after them
# once, with the number of failed attempts.  A stop signal during the
# load of a large FILE (300 MB) ends the start within a block: exit 0,
# "stop requested during load; not saving", no listener, and FILE byte
# for byte as it was (saving the partly loaded cache replaced the whole
# image with a part of it; before, the load ran to its end, the server
# started and saved).  One case sends SIGTERM before the load (blocked
# and pending across exec, so the load always sees it), one while it
# runs (skipped when the load finished first).  A SIGTERM while a
# periodic save of that cache runs (FILE.tmp exists) abandons it: one
# save after the signal, the final one, where there were two.  Our own
# servers on free 127.0.0.1 ports, stopped by pid.
. "$(dirname "$0")/pxcached_server.sh"

NT=6
echo "TAP version 13"
echo "1..$NT"
SNAP=$PXC_TMP/cache.snap

# client fill N SIZE | saves: the requests the cases need.
cat >"$PXC_TMP/client.py" <<'PYEOF'
import sys
from pxtap import ask_strict, conn, fill, stat

if sys.argv[1] == "fill":  # N items of SIZE bytes, pipelined
    fill(conn(), int(sys.argv[2]), int(sys.argv[3]))
elif sys.argv[1] == "big":  # N values of 1 MB
    s = conn()
    v = b"b" * 1000000
    for i in range(int(sys.argv[2])):
        s.sendall(b"set big%d 0 0 %d noreply\r\n%s\r\n" % (i, len(v), v))
    assert ask_strict(s, b"mn\r\n", b"\r\n") == b"MN\r\n"
else:
    print(stat("snapshot_saves"))
PYEOF
client() { pxc_py "$@" <"$PXC_TMP/client.py"; }

# wait_saves N: until the server has attempted N more saves (30 s at most).
wait_saves() {
	local want=$(($(client saves) + $1))
	for _ in $(seq 1 300); do
		[ "$(client saves)" -ge "$want" ] && return 0
		sleep 0.1
	done
	return 1
}

failed_lines() { grep -c "periodic snapshot .* failed" "$PXC_TMP/log"; }

pxc_require_server "$NT" -t 1 -m 16 --snapshot "$SNAP" --snapshot-interval 1
client fill 10 100
mkdir "$SNAP.tmp"
wait_saves 5
n1=$(failed_lines)
pxc_check "five failed saves with one error: one warning ($n1)" \
	bash -c "[ '$n1' = 1 ] &&
		grep -q 'periodic snapshot .* failed: .*directory' '$PXC_TMP/log'"

rmdir "$SNAP.tmp"
ln -s "$PXC_TMP/missing/dir" "$SNAP.tmp"
wait_saves 3
n2=$(failed_lines)
pxc_check "another error: one more warning ($n2)" \
	bash -c "[ '$n2' = 2 ] &&
		grep -q 'periodic snapshot .* failed: No such file' '$PXC_TMP/log'"

rm "$SNAP.tmp"
for _ in $(seq 1 100); do
	grep -q "saved again" "$PXC_TMP/log" && break
	sleep 0.1
done
pxc_stop TERM || PXC_FAILED=1
pxc_check "saving again is logged once, with the failed attempts" \
	bash -c "[ \$(grep -c 'saved again' '$PXC_TMP/log') = 1 ] &&
		grep -Eq 'periodic snapshot .* saved again after ([89]|[1-9][0-9]+) failed saves' \
			'$PXC_TMP/log'"

# A 300 MB FILE for the load cases, and its checksum.
BIG=$PXC_TMP/big.snap
pxc_start -t 1 -m 400 --snapshot "$BIG" || pxc_not_ok "pxcached -m 400"
client big 300
pxc_stop TERM || PXC_FAILED=1
sum=$(sha256sum <"$BIG")

# stopped_during_load LOG RC: the load gave up, nothing served or saved.
stopped_during_load() {
	[ "$2" -eq 0 ] &&
		grep -q "snapshot .*: stop requested during load; not saving" "$1" &&
		! grep -q "loaded .* items\|listening\|snapshot .*: .* items," "$1" &&
		[ "$(sha256sum <"$BIG")" = "$sum" ] && [ ! -e "$BIG.tmp" ]
}

# SIGTERM blocked and sent to itself by the Python process that then
# becomes pxcached: pending from its first instruction, so deterministic.
timeout -s KILL 60 "$PYTHON" -c '
import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
os.kill(os.getpid(), signal.SIGTERM)
os.execv(sys.argv[1], sys.argv[1:])' "$PXC_BIN" -p 0 -t 1 -m 400 \
	--snapshot "$BIG" >"$PXC_TMP/log3" 2>&1
rc=$?
pxc_check "SIGTERM pending at the load: exit 0, not saving, FILE kept ($rc)" \
	stopped_during_load "$PXC_TMP/log3" "$rc"

# SIGTERM once the load has begun.
"$PXC_BIN" -p 0 -t 1 -m 400 --snapshot "$BIG" >"$PXC_TMP/log4" 2>&1 &
PXC_PID=$!
for _ in $(seq 1 3000); do
	grep -q "loading" "$PXC_TMP/log4" && break
	sleep 0.01
done
kill -TERM "$PXC_PID"
wait "$PXC_PID"
rc=$?
PXC_PID=
if grep -q "loaded .* items" "$PXC_TMP/log4" &&
	! grep -q "stop requested" "$PXC_TMP/log4"; then
	pxc_ok "# SKIP the load finished before SIGTERM arrived"
else
	pxc_check "SIGTERM during the load: exit 0, not saving, FILE kept ($rc)" \
		stopped_during_load "$PXC_TMP/log4" "$rc"
fi

# saves_after_stop: the saves logged after the stop signal.
saves_after_stop() {
	sed -n '/signal 15: stopping/,$p' "$PXC_TMP/log" |
		grep -c "snapshot .*: [0-9]* items, [0-9]* bytes in"
}

# SIGTERM once a periodic save has created FILE.tmp.  Tried three times:
# a save that ends between the check and the signal decides nothing.
verdict=
for _ in 1 2 3; do
	pxc_start -t 1 -m 400 --snapshot "$BIG" --snapshot-interval 1 -v ||
		break
	for _ in $(seq 1 1000); do
		[ -e "$BIG.tmp" ] && break
		sleep 0.01
	done
	pxc_stop TERM
	rc=$?
	n=$(saves_after_stop)
	if grep -q "periodic snapshot .* abandoned" "$PXC_TMP/log" ||
		[ "$n" -ge 2 ]; then
		verdict=$n
		break
	fi
done
if [ -z "$verdict" ]; then
	pxc_ok "# SKIP no periodic save was running at SIGTERM in 3 tries"
else
	pxc_check "SIGTERM during a periodic save: one save after it ($n)" \
		bash -c "[ '$rc' = 0 ] && [ '$n' = 1 ] &&
			grep -q 'periodic snapshot .* abandoned: stopping' \
				'$PXC_TMP/log' &&
			grep -q 'final snapshot .*: 300 items' '$PXC_TMP/log' &&
			[ ! -e '$BIG.tmp' ]"
fi
exit "$PXC_FAILED"
