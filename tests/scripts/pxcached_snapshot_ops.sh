#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# pxcached's warm restart as an operator runs it: a snapshot taken with a
# large -m loaded with a smaller one says how many items the cache could
# keep (not only "loaded N items"); an empty cache's final save logs the
# file's real size; a second server given the same FILE refuses to start
# (FILE.lock), since two savers of one FILE corrupted it; a FILE that is
# a symbolic link is saved to its target, the link stays a link; a
# refused file (here of a future format version) is kept as FILE.refused
# instead of being replaced by the first save; periodic saves that fail
# (FILE.tmp made a directory: EISDIR, even for root) are in the log and
# stats, and the first good save after them is logged at the default
# verbosity; a FILE that is a FIFO is refused at start (it hung the load
# with SIGTERM blocked); on a small tmpfs of our own that fills up (root
# only, else skipped) the server keeps serving, reports ENOSPC as the
# file system's (not the retention limit's) and keeps the previous
# snapshot loadable.  Our own servers on free 127.0.0.1
# ports, stopped by pid.
. "$(dirname "$0")/pxcached_server.sh"

NT=14
echo "TAP version 13"
echo "1..$NT"
SNAP=$PXC_TMP/cache.snap

# client fill N SIZE | snapstats | count: the requests the cases need.
cat >"$PXC_TMP/client.py" <<'PYEOF'
import sys
from pxtap import ask_strict, conn, fill, stat

if sys.argv[1] == "fill":  # N items of SIZE bytes, pipelined
    fill(conn(), int(sys.argv[2]), int(sys.argv[3]))
elif sys.argv[1] == "snapstats":
    r = ask_strict(conn(), b"stats\r\n", b"END\r\n").decode()
    print(" ".join(l[5:] for l in r.split("\r\n") if "snapshot_" in l))
else:
    print(stat("curr_items"))
PYEOF
client() { pxc_py "$@" <"$PXC_TMP/client.py"; }

# An empty cache's final save: the file is a header, not 0 bytes.
pxc_require_server "$NT" -t 1 -m 16 --snapshot "$SNAP"
pxc_stop TERM
size=$(stat -c %s "$SNAP" 2>/dev/null)
pxc_check "an empty cache's final save logs the file's size ($size)" \
	grep -q "final snapshot .*: 0 items, $size bytes" "$PXC_TMP/log"

# 4000 items of 8000 bytes (about 32 MB) saved from -m 64, loaded into
# -m 8: the load line is followed by how many fit.
pxc_start -t 1 -m 64 --snapshot "$SNAP" || pxc_not_ok "pxcached -m 64"
client fill 4000 8000
pxc_stop TERM || PXC_FAILED=1
pxc_start -t 1 -m 8 --snapshot "$SNAP"
held=$(client count)
pxc_stop TERM || PXC_FAILED=1
pxc_check "a smaller -m keeps part of the snapshot ($held of 4000)" \
	bash -c "[ '$held' -gt 0 ] && [ '$held' -lt 4000 ] &&
		grep -q 'loaded 4000 items' '$PXC_TMP/log'"
pxc_check "the log says how many of the loaded items fit" \
	grep -q "only $held of the 4000 loaded items fit in -m 8 MiB" \
	"$PXC_TMP/log"

# A second server on the same FILE: refused at start, the first one and
# its saves go on.
pxc_start -t 1 -m 16 --snapshot "$SNAP" --snapshot-interval 1 -v
timeout 20 "$PXC_BIN" -p 0 -t 1 -m 16 --snapshot "$SNAP" \
	--snapshot-interval 1 >"$PXC_TMP/log2" 2>&1
rc=$?
pxc_check "a second server on the same FILE exits 1 at start ($rc)" \
	bash -c "[ $rc -eq 1 ] && grep -q 'in use by another process' \
		'$PXC_TMP/log2' && ! grep -q listening '$PXC_TMP/log2'"
for _ in $(seq 1 50); do
	grep -q "periodic snapshot" "$PXC_TMP/log" && break
	sleep 0.1
done
pxc_stop TERM
rc=$?
pxc_start -t 1 -m 16 --snapshot "$SNAP" --snapshot-strict
pxc_stop TERM
rc2=$?
pxc_check "the first server saves and its file loads ($rc, $rc2)" \
	bash -c "[ $rc -eq 0 ] && [ $rc2 -eq 0 ] &&
		grep -q 'snapshot .*: loaded' '$PXC_TMP/log'"

# FILE a symbolic link (relative, into another directory): the saves go
# to the target, also when the target does not exist yet.
mkdir -p "$PXC_TMP/disk" "$PXC_TMP/etc"
ln -s ../disk/real.snap "$PXC_TMP/etc/link.snap"
pxc_start -t 1 -m 16 --snapshot "$PXC_TMP/etc/link.snap"
client fill 10 100
pxc_stop TERM
pxc_check "a linked FILE is saved to its target, the link is kept" \
	bash -c "[ -L '$PXC_TMP/etc/link.snap' ] &&
		[ -s '$PXC_TMP/disk/real.snap' ]"
pxc_start -t 1 -m 16 --snapshot "$PXC_TMP/etc/link.snap" --snapshot-strict
held=$(client count)
pxc_stop TERM
pxc_check "the restart loads the target through the link ($held items)" \
	bash -c "[ '$held' = 10 ] && [ -L '$PXC_TMP/etc/link.snap' ]"

# A file of another format version (byte 8: the version) is refused and
# kept aside, byte for byte, while the server saves a fresh FILE.
cp "$PXC_TMP/disk/real.snap" "$SNAP"
printf '\143' | dd of="$SNAP" bs=1 seek=8 conv=notrunc status=none
cp "$SNAP" "$PXC_TMP/foreign.snap"
pxc_start -t 1 -m 16 --snapshot "$SNAP" --snapshot-interval 1 -v
for _ in $(seq 1 50); do
	grep -q "periodic snapshot" "$PXC_TMP/log" && break
	sleep 0.1
done
pxc_stop TERM
pxc_check "a refused file is kept as FILE.refused, not replaced" \
	bash -c "cmp -s '$PXC_TMP/foreign.snap' '$SNAP.refused' &&
		grep -q 'refused: .*another format version' '$PXC_TMP/log' &&
		grep -q 'refused file is kept as' '$PXC_TMP/log' &&
		! cmp -s '$PXC_TMP/foreign.snap' '$SNAP'"

# Failing periodic saves, then saving again, at the default verbosity.
rm -f "$SNAP"
pxc_start -t 1 -m 16 --snapshot "$SNAP" --snapshot-interval 1
client fill 10 100
mkdir "$SNAP.tmp"
for _ in $(seq 1 50); do
	grep -q "periodic snapshot .* failed" "$PXC_TMP/log" && break
	sleep 0.1
done
st=$(client snapstats)
rmdir "$SNAP.tmp"
for _ in $(seq 1 50); do
	grep -q "saved again" "$PXC_TMP/log" && break
	sleep 0.1
done
st2=$(client snapstats)
pxc_stop TERM || PXC_FAILED=1
pxc_check "a failing periodic save is in the log and stats ($st)" \
	bash -c "grep -q 'periodic snapshot .* failed: .*previous file is kept' \
		'$PXC_TMP/log' && grep -q 'snapshot_last_error -21' <<<'$st'"
pxc_check "saving again is logged without -v ($st2)" \
	bash -c "grep -q 'periodic snapshot .* saved again after [1-9][0-9]* \
failed saves' '$PXC_TMP/log' &&
		grep -q 'snapshot_last_items 10 .*snapshot_last_error 0' <<<'$st2'"

# A FIFO as FILE: exit 1 at start (timeout -s KILL: the hang ignored
# SIGTERM, blocked during the load).
mkfifo "$PXC_TMP/fifo.snap"
timeout -s KILL 20 "$PXC_BIN" -p 0 -t 1 -m 16 --snapshot "$PXC_TMP/fifo.snap" \
	>"$PXC_TMP/log2" 2>&1
rc=$?
pxc_check "a FIFO as FILE is refused at start ($rc)" \
	bash -c "[ $rc -eq 1 ] && [ -p '$PXC_TMP/fifo.snap' ] &&
		grep -q 'not a regular file' '$PXC_TMP/log2'"

# A snapshot directory that fills up: an 8 MiB tmpfs, mounted by us and
# unmounted on exit (after the server that holds FILE.lock is gone).
SMALL=$PXC_TMP/small
small_cleanup() {
	if [ -n "$PXC_PID" ] && kill -0 "$PXC_PID" 2>/dev/null; then
		kill -KILL "$PXC_PID" 2>/dev/null
		wait "$PXC_PID" 2>/dev/null
	fi
	PXC_PID=
	mountpoint -q "$SMALL" && umount "$SMALL"
	pxc_cleanup
}
mkdir -p "$SMALL"
if [ "$(id -u)" -ne 0 ] || ! mount -t tmpfs -o size=8m tmpfs "$SMALL" \
	2>/dev/null; then
	pxc_skip_all "$NT" "cannot mount a tmpfs (needs root)"
fi
trap small_cleanup EXIT
FULL=$SMALL/cache.snap
pxc_start -t 1 -m 32 --snapshot "$FULL" --snapshot-interval 1
client fill 500 10000 # about 5 MB: one image fits, two do not
for _ in $(seq 1 100); do # a save of all 500
	client snapstats | grep -q "snapshot_last_items 500 " && break
	sleep 0.1
done
good=$(stat -c %s "$FULL" 2>/dev/null)
PORT=$PXC_PORT "$PYTHON" - <<'PYEOF'
import os, socket
s = socket.create_connection(("127.0.0.1", int(os.environ["PORT"])))
v = b"w" * 10000
for i in range(500, 1000):
    s.sendall(b"set k%d 0 0 %d noreply\r\n%s\r\n" % (i, len(v), v))
s.sendall(b"mn\r\n")
got = b""
while not got.endswith(b"MN\r\n"):
    got += s.recv(4096)
PYEOF
for _ in $(seq 1 50); do
	grep -q "periodic snapshot .* failed: .*ENOSPC" "$PXC_TMP/log" && break
	sleep 0.1
done
st=$(client snapstats)
held=$(client count)
pxc_check "a full disk: serves on ($held items), log and stats: ENOSPC" \
	bash -c "[ '$held' = 1000 ] &&
		grep -q 'periodic snapshot .* failed: no space left on the snapshot.s file system (ENOSPC).*previous file is kept' \
			'$PXC_TMP/log' && ! grep -q 'retention' '$PXC_TMP/log' &&
		grep -q 'snapshot_last_error -28' <<<'$st' &&
		grep -q 'snapshot_last_items 500 ' <<<'$st'"
pxc_stop TERM
rc=$?
pxc_check "a failed final save exits 1 and keeps the previous file ($rc)" \
	bash -c "[ $rc -eq 1 ] && [ ! -e '$FULL.tmp' ] &&
		[ \$(stat -c %s '$FULL') = '$good' ] &&
		grep -q 'final snapshot .* failed' '$PXC_TMP/log'"
pxc_start -t 1 -m 32 --snapshot "$FULL" --snapshot-strict
held=$(client count)
pxc_stop KILL
pxc_check "the old snapshot loads after the full disk ($held, $good B)" \
	[ "$held" = 500 ]
exit "$PXC_FAILED"
