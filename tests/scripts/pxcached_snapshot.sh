#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# pxcached's warm restart (--snapshot, --snapshot-interval,
# --snapshot-strict): items stored through the protocol (flags, TTLs,
# binary values) come back byte-identical after SIGTERM and a restart,
# with the same flags and cas ids, expired ones gone; a corrupt, truncated
# or foreign file starts the server empty with a clear log line, or stops
# it with --snapshot-strict; --snapshot-interval writes the file while
# serving; kill -9 in the middle of writes and saves leaves the previous
# snapshot loadable; a delayed flush_all pending at SIGTERM still
# happens after the restart.  Our own servers on free 127.0.0.1 ports, by pid.
. "$(dirname "$0")/pxcached_server.sh"

NT=15
echo "TAP version 13"
echo "1..$NT"
SNAP=$PXC_TMP/cache.snap

# Client helpers: fill, dump (every key's flags, cas, ttl and value).
cat >"$PXC_TMP/client.py" <<'PYEOF'
import os, socket, sys

def conn():
    s = socket.create_connection(("127.0.0.1", int(os.environ["PORT"])))
    s.settimeout(20)
    return s

def ask(s, data, end):
    s.sendall(data)
    got = b""
    while not got.endswith(end):
        d = s.recv(1 << 20)
        if not d:
            raise SystemExit("connection closed: %r" % got[-200:])
        got += d
    return got

def keys():
    ks = [b"plain", b"flags", b"bin", b"empty", b"ttl_long", b"big"]
    return ks + [b"n%d" % i for i in range(200)]

def fill(s):
    vals = {
        b"plain": (0, 0, b"hello"),
        b"flags": (4294967295, 0, b"max flags"),
        b"bin": (7, 0, bytes(range(256)) + b"\r\n\0\r\n"),
        b"empty": (1, 0, b""),
        b"ttl_long": (2, 1000, b"lives a while"),
        b"big": (3, 0, os.urandom(300000)),
    }
    for i in range(200):
        vals[b"n%d" % i] = (i, 0, os.urandom(i * 7))
    vals[b"short"] = (9, 1, b"expires in a second")
    for k, (f, t, v) in vals.items():
        r = ask(s, b"set %s %d %d %d\r\n%s\r\n" % (k, f, t, len(v), v), b"\r\n")
        assert r == b"STORED\r\n", r

def dump(s):
    out = []
    for k in keys() + [b"short"]:
        r = ask(s, b"mg " + k + b" f c t v\r\n", b"\r\n")
        if r.startswith(b"EN"):
            out.append(k.decode() + " miss")
            continue
        while True:
            head, _, rest = r.partition(b"\r\n")
            n = int(head.split()[1])
            if len(rest) >= n + 2:
                break
            r += s.recv(1 << 20)
        val = rest[:n]
        fl = dict((t[:1], t[1:]) for t in head.split()[2:])
        ttl = int(fl[b"t"])
        ttl = "never" if ttl == -1 else ("long" if 900 < ttl <= 1000 else ttl)
        out.append("%s f=%s c=%s t=%s v=%s" % (k.decode(), fl[b"f"].decode(),
                   fl[b"c"].decode(), ttl, val.hex()))
    return out

s = conn()
cmd = sys.argv[1]
if cmd == "fill":
    fill(s)
elif cmd == "dump":
    print("\n".join(dump(s)))
elif cmd == "count":
    r = ask(s, b"stats\r\n", b"END\r\n")
    print([l.split()[2] for l in r.decode().split("\r\n")
           if l.startswith("STAT curr_items ")][0])
elif cmd == "stats":
    r = ask(s, b"stats\r\n", b"END\r\n").decode()
    print(" ".join(l[5:] for l in r.split("\r\n") if "snapshot_" in l))
elif cmd == "set":
    r = ask(s, b"set %s 0 0 %d\r\n%s\r\n" % (sys.argv[2].encode(),
            len(sys.argv[3]), sys.argv[3].encode()), b"\r\n")
    print(r.decode().strip())
elif cmd == "get":
    r = ask(s, b"get %s\r\n" % sys.argv[2].encode(), b"END\r\n")
    print(r.decode().split("\r\n")[1] if r.startswith(b"VALUE") else "miss")
elif cmd == "flush_all":
    print(ask(s, b"flush_all %s\r\n" % sys.argv[2].encode(), b"\r\n")
          .decode().strip())
elif cmd == "hammer":
    # Writes until the server goes away (kill -9).
    i = 0
    try:
        while True:
            v = b"%d" % i * 50
            ask(s, b"set h%d 0 0 %d\r\n%s\r\n" % (i % 5000, len(v), v), b"\r\n")
            i += 1
    except (OSError, SystemExit):
        pass
PYEOF
client() { PORT=$PXC_PORT "$PYTHON" "$PXC_TMP/client.py" "$@"; }

pxc_require_server "$NT" -t 2 -m 32 --snapshot "$SNAP"
pxc_check "a missing snapshot file starts empty, said in the log" \
	grep -q "no snapshot yet, starting empty" "$PXC_TMP/log"
client fill && sleep 2.2 # "short" expires
client dump >"$PXC_TMP/before"
pxc_stop TERM
rc=$?
pxc_check "SIGTERM saves a final snapshot and exits 0" \
	bash -c "[ $rc -eq 0 ] && [ -s '$SNAP' ] &&
		grep -q 'final snapshot' '$PXC_TMP/log'"

pxc_start -t 2 -m 32 --snapshot "$SNAP"
client dump >"$PXC_TMP/after"
pxc_check "restart loads the snapshot, said in the log" \
	grep -q "snapshot .*: loaded 206 items" "$PXC_TMP/log"
pxc_check "items back byte-identical with flags, cas and TTL" \
	cmp -s "$PXC_TMP/before" "$PXC_TMP/after"
pxc_check "expired items are gone, the others are there" bash -c "
	grep -qx 'short miss' '$PXC_TMP/after' &&
	[ \$(grep -c miss '$PXC_TMP/after') -eq 1 ] &&
	grep -q '^ttl_long .* t=long ' '$PXC_TMP/after' &&
	grep -q '^flags f=4294967295 ' '$PXC_TMP/after'"
[ -s "$PXC_TMP/after" ] || diff "$PXC_TMP/before" "$PXC_TMP/after" | head -5
pxc_stop TERM || { echo "# server exit status $?"; PXC_FAILED=1; }
cp "$SNAP" "$PXC_TMP/good.snap"

# flip_byte FILE OFFSET: inverts one byte, so that the file always
# changes.  Writing a fixed 'X' left the file whole when that byte was an
# 'X' already (one run in 256, depending on the cas ids and times in the
# image): the server loaded it, and the --snapshot-strict case below,
# run in the foreground, then waited for a signal until the timeout.
flip_byte() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "\\$(printf %03o $((b ^ 255)))" |
		dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# Damaged files: the server starts empty and says why, or exits with
# --snapshot-strict; the file itself is left for inspection.
damaged() { # NAME: writes a damaged copy of the good snapshot to $SNAP
	case $1 in
	corrupt)
		cp "$PXC_TMP/good.snap" "$SNAP"
		flip_byte "$SNAP" $(($(stat -c %s "$SNAP") / 2))
		cmp -s "$SNAP" "$PXC_TMP/good.snap" && echo "# corrupt: unchanged" ;;
	truncated)
		head -c $(($(stat -c %s "$PXC_TMP/good.snap") * 2 / 3)) \
			"$PXC_TMP/good.snap" >"$SNAP" ;;
	foreign)
		head -c 100000 /dev/urandom >"$SNAP" ;;
	esac
}
for kind in corrupt truncated foreign; do
	damaged "$kind"
	pxc_start -t 1 -m 32 --snapshot "$SNAP"
	n=$(client count)
	pxc_stop KILL # no final save: the damaged file stays for the next run
	pxc_check "a $kind file: starts empty ($n items) with a clear log line" \
		bash -c "[ '$n' = 0 ] &&
			grep -q 'snapshot .* refused: ' '$PXC_TMP/log' &&
			grep -q 'starting empty' '$PXC_TMP/log'"
done
damaged corrupt
# In the foreground: bounded, so that a file taken as good cannot hang.
timeout -k 5 60 "$PXC_BIN" -p 0 -t 1 -m 32 --snapshot "$SNAP" \
	--snapshot-strict >"$PXC_TMP/log" 2>&1
rc=$?
pxc_check "--snapshot-strict with a corrupt file exits non-zero ($rc)" \
	bash -c "[ $rc -ne 0 ] && grep -q 'refused: ' '$PXC_TMP/log' &&
		! grep -q listening '$PXC_TMP/log'"

# --snapshot-interval: the file is written while serving; wait for two
# saves after the store, so that one of them began after it.
rm -f "$SNAP"
pxc_start -t 2 -m 32 --snapshot "$SNAP" --snapshot-interval 1 -v
client set early "kept across kill -9" >/dev/null
saves_after() { # N: wait until N more periodic saves are logged
	local want=$(($(grep -c 'periodic snapshot' "$PXC_TMP/log") + $1))
	for _ in $(seq 1 100); do
		[ "$(grep -c 'periodic snapshot' "$PXC_TMP/log")" -ge "$want" ] &&
			return 0
		sleep 0.1
	done
	return 1
}
saves_after 2
st=$(client stats)
pxc_check "--snapshot-interval 1 writes the file while serving ($st)" \
	bash -c "[ -s '$SNAP' ] && grep -q 'periodic snapshot .*: [1-9]' \
		'$PXC_TMP/log' && grep -q 'snapshot_last_items 1 ' <<<'$st' &&
		grep -q 'snapshot_last_error 0' <<<'$st'"

# kill -9 while clients write and periodic saves run.
client hammer &
hammer=$!
client hammer &
hammer2=$!
sleep 1.5
pxc_stop KILL
wait "$hammer" "$hammer2"
pxc_start -t 2 -m 32 --snapshot "$SNAP" --snapshot-strict
got=$(client get early)
pxc_check "kill -9 during writes and saves: the previous snapshot loads ($got)" \
	bash -c "[ '$got' = 'kept across kill -9' ] &&
		grep -q 'loaded [1-9][0-9]* items' '$PXC_TMP/log'"
pxc_stop TERM || { echo "# server exit status $?"; PXC_FAILED=1; }
pxc_check "--snapshot-interval without --snapshot is refused" bash -c \
	'"$0" --snapshot-interval 5 2>&1 | grep -q "need --snapshot"' "$PXC_BIN"

# A FILE that no save could write (missing directory, a directory) is
# refused at start, not found out by the final save after the session.
for bad in "$PXC_TMP/no/such/dir/snap" "$PXC_TMP"; do
	timeout 20 "$PXC_BIN" -p 0 -t 1 -m 32 --snapshot "$bad" \
		>"$PXC_TMP/badlog" 2>&1
	rc=$?
	pxc_check "--snapshot $bad that cannot be saved: exit 1 at start ($rc)" \
		bash -c "[ $rc -eq 1 ] &&
			grep -q 'cannot be saved' '$PXC_TMP/badlog' &&
			! grep -q listening '$PXC_TMP/badlog'"
done

# A delayed flush_all pending when the server stops is in the snapshot:
# after the restart the item is there until the flush's time, then gone.
rm -f "$SNAP"
pxc_start -t 1 -m 32 --snapshot "$SNAP"
client set doomed "until the flush" >/dev/null
client flush_all 6 >/dev/null
pxc_stop TERM
pxc_start -t 1 -m 32 --snapshot "$SNAP"
early=$(client get doomed)
for _ in $(seq 1 100); do
	[ "$(client get doomed)" = miss ] && break
	sleep 0.1
done
late=$(client get doomed)
pxc_stop TERM || { echo "# server exit status $?"; PXC_FAILED=1; }
pxc_check "a pending flush_all survives a restart ($early, then $late)" \
	bash -c "[ '$early' = 'until the flush' ] && [ '$late' = miss ] &&
		grep -q 'flush_all pending at .* restored' '$PXC_TMP/log'"
exit "$PXC_FAILED"
