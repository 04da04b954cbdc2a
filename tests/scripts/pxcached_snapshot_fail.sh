#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# pxcached's --snapshot under trouble.  Periodic saves that keep failing
# log one warning, not one per attempt: a second one only when the error
# changes (EISDIR, FILE.tmp made a directory, then ENOENT, FILE.tmp a
# link into a missing directory), and the first good save after them
# once, with the number of failed attempts.  Our own servers on free
# 127.0.0.1 ports, stopped by pid.
. "$(dirname "$0")/pxcached_server.sh"

NT=3
echo "TAP version 13"
echo "1..$NT"
SNAP=$PXC_TMP/cache.snap

# client fill N SIZE | saves: the requests the cases need.
cat >"$PXC_TMP/client.py" <<'PYEOF'
import sys
from pxtap import ask_strict, conn, stat

if sys.argv[1] == "fill":  # N items of SIZE bytes, pipelined
    s = conn()
    n, size = int(sys.argv[2]), int(sys.argv[3])
    v = b"v" * size
    for i in range(0, n, 100):
        batch = b"".join(b"set k%d 0 0 %d noreply\r\n%s\r\n" % (j, size, v)
                         for j in range(i, min(n, i + 100)))
        s.sendall(batch)
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
exit "$PXC_FAILED"
