#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# pxcached's warm roll (--handover SOCKET): a new server takes the cache
# of the running one over through a memfd passed on a Unix socket.  Every
# item comes through with its value, flags, cas id and TTL; the old
# server exits 0 and the new one serves the same port, and rolls again;
# --snapshot still saves at the last stop.  Refusals: a successor of
# another build (the old server serves on), a successor that vanishes
# after the memfd was sent (the old server takes its cache back, saves
# its final snapshot and exits 1), a stale socket file (a new server
# starts anew).  Our own servers on free 127.0.0.1 ports, each stopped by
# its pid.
. "$(dirname "$0")/pxcached_server.sh"

NT=13
echo "TAP version 13"
echo "1..$NT"
SOCK=$PXC_TMP/ho.sock
SNAP=$PXC_TMP/cache.snap


# The items: fill writes them and records what gets and mg say;
# compare reads them back and prints "N same" or the first difference.
cat >"$PXC_TMP/items.py" <<'PYEOF'
import json, random, sys, time
from pxtap import ask_strict, conn

rec = sys.argv[2]
s = conn()

def val(i):
    n = 100000 if i % 997 == 0 else random.Random(i).randint(0, 2000)
    return bytes((i + j) % 256 for j in range(n))

def read(i):
    r = ask_strict(s, b"gets k%d\r\n" % i, b"END\r\n")
    if not r.startswith(b"VALUE"):
        return None
    head, rest = r.split(b"\r\n", 1)
    _, _, flags, n, cas = head.split()
    body = rest[:int(n)]
    t = ask_strict(s, b"mg k%d t\r\n" % i, b"\r\n").split()
    ttl = int(t[1][1:])
    # The absolute expiry time, to compare across seconds.
    return [int(flags), int(cas), body.hex(),
            ttl if ttl < 0 else int(time.time()) + ttl]

N = 3000
if sys.argv[1] == "fill":
    for i in range(N):
        v = val(i)
        ttl = 0 if i % 3 else 5000 + i
        ask_strict(s, b"set k%d %d %d %d\r\n%s\r\n" % (i, i, ttl, len(v), v),
                   b"\r\n")
    json.dump([read(i) for i in range(N)], open(rec, "w"))
    print("filled")
else:
    want = json.load(open(rec))
    for i in range(N):
        got = read(i)
        same = got is not None and want[i] is not None and \
            got[:3] == want[i][:3] and \
            abs(got[3] - want[i][3]) <= 2
        if not same:
            print("k%d differs: %r / %r" % (i, got and got[:2] + got[3:],
                                           want[i][:2] + want[i][3:]))
            sys.exit(0)
    print("%d same" % N)
PYEOF
items() { pxc_py "$@" <"$PXC_TMP/items.py"; }

pxc_require_srv "$NT" a -m 64 -t 2 --handover "$SOCK"
A=$SRV
PORT=$PXC_PORT
got=$(items fill "$PXC_TMP/rec.json")
mode=$(stat -c %a "$SOCK" 2>/dev/null)
ok=no
[ "$got" = filled ] && [ "$mode" = 600 ] && ok=yes
pxc_check "the first server serves its handover socket, mode 0600 ($got, $mode)" \
	[ $ok = yes ]

pxc_srv b -p "$PORT" -m 16 -t 2 --handover "$SOCK"
B=$SRV
pxc_ended "$A"
rc=$?
pxc_check "a second server takes the cache over; the first exits 0 ($rc)" \
	bash -c "[ $rc -eq 0 ] && [ $PXC_PORT = $PORT ] &&
	grep -q 'took the cache over' '$PXC_TMP/a.log' &&
	grep -q 'took over a cache of 3000 items' '$PXC_TMP/b.log'"
got=$(items compare "$PXC_TMP/rec.json")
pxc_check "every item comes through: value, flags, cas, TTL ($got)" \
	[ "$got" = "3000 same" ]
got=$(pxc_py <<'PYEOF'
from pxtap import ask_strict, conn
s = conn()
r = ask_strict(s, b"set new 1 0 2\r\nhi\r\nget new\r\n", b"END\r\n")
print(" ".join(r.decode().split()[:6]))
PYEOF
)
pxc_check "the new server stores and reads ($got)" \
	[ "$got" = "STORED VALUE new 1 2 hi" ]

# A third server, with --snapshot: the roll leaves FILE to it, and its
# own SIGTERM saves the whole cache.
pxc_srv c -p "$PORT" -t 2 --handover "$SOCK" --snapshot "$SNAP"
C=$SRV
pxc_ended "$B"
rc=$?
got=$(items compare "$PXC_TMP/rec.json")
kill -TERM "$C"
pxc_ended "$C"
crc=$?
ok=no
[ $rc -eq 0 ] && [ "$got" = "3000 same" ] && [ $crc -eq 0 ] && ok=yes
pxc_check "rolls again, to a server with --snapshot ($rc, $got, $crc)" \
	[ $ok = yes ]
pxc_srv d -t 2 --snapshot "$SNAP" --handover "$SOCK"
D=$SRV
got=$(items compare "$PXC_TMP/rec.json")
pxc_check "its final snapshot holds every item ($got)" \
	[ "$got" = "3000 same" ]

# A successor of another build is refused, and the server serves on.
cat >"$PXC_TMP/fake.py" <<'PYEOF'
import array, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect(sys.argv[2])
s.sendall(b"PXCACHED-HANDOVER %s\n" % sys.argv[3].encode())
msg, anc, _, _ = s.recvmsg(128, socket.CMSG_SPACE(4))
print(msg.decode().split()[0], len(anc))
if sys.argv[1] == "vanish":
    # Took the memfd and adopted it (the control block's handover word,
    # after magic, layout and seed, says in use), then died before
    # saying ADOPTED: as a successor killed at the worst moment.
    import mmap, struct
    fd = struct.unpack("i", anc[0][2][:4])[0]
    m = mmap.mmap(fd, 4096)
    struct.pack_into("<I", m, 24, 0)
    m.close()
    s.close()
PYEOF
fake() { pxc_py "$@" <"$PXC_TMP/fake.py"; }
got=$(fake other "$SOCK" 0123456789abcdef)
sleep 0.3
kill -0 "$D" 2>/dev/null
alive=$?
got2=$(items compare "$PXC_TMP/rec.json")
ok=no
[ "$got" = "REFUSED 0" ] && [ $alive -eq 0 ] && [ "$got2" = "3000 same" ] &&
	ok=yes
pxc_check "a successor of another cache layout is refused; the server serves on ($got, $got2)" \
	[ $ok = yes ]

# A peer of another user: refused even when the socket's mode lets it in.
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
	chmod 666 "$SOCK"
	chmod o+x "$PXC_TMP"
	got=$(setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$PYTHON" - other "$SOCK" 0 <"$PXC_TMP/fake.py" 2>&1 | tail -1)
	chmod 600 "$SOCK"
	chmod o-x "$PXC_TMP"
	ok=no
	kill -0 "$D" 2>/dev/null && grep -q "of uid" "$PXC_TMP/d.log" &&
		ok=yes
	pxc_check "a peer of another user is refused (${got##*: })" [ $ok = yes ]
else
	pxc_ok "# SKIP needs root and a user nobody to connect as another user"
fi

# A successor that adopts the memfd and dies before it answers: once it
# is gone, the server takes the cache back (px_cache_reclaim), saves it
# and exits 1.
layout=$("$PXC_BIN" --features | sed -n 's/^cache_layout: //p')
rm -f "$SNAP"
got=$(fake vanish "$SOCK" "$layout")
pxc_ended "$D"
rc=$?
pxc_check "a successor that adopts and dies: the server takes the cache back, saves it, exits 1 ($got, $rc)" \
	bash -c "[ '$got' = 'CACHE 1' ] && [ $rc -eq 1 ] && [ -s '$SNAP' ] &&
	grep -q 'keeping it' '$PXC_TMP/d.log' &&
	grep -q 'final snapshot' '$PXC_TMP/d.log'"
pxc_srv e -t 2 --snapshot "$SNAP" --handover "$SOCK"
E=$SRV
got=$(items compare "$PXC_TMP/rec.json")
pxc_check "the saved cache loads back ($got)" [ "$got" = "3000 same" ]
kill -KILL "$E"
wait "$E" 2>/dev/null

# kill -9 leaves the socket file; the next server starts anew.
pxc_srv f -t 2 --handover "$SOCK"
F=$SRV
got=$(items compare "$PXC_TMP/rec.json")
kill -TERM "$F"
pxc_ended "$F"
rc=$?
pxc_check "a stale socket file: the next server starts anew ($got, $rc)" \
	bash -c "[ $rc -eq 0 ] && [ '${got%% *}' = k0 ] &&
	grep -q 'no pxcached to take over' '$PXC_TMP/f.log'"
# A successor that cannot save to its --snapshot asks for nothing; one
# that cannot open its port after taking the cache over saves it there.
SOCK2=$PXC_TMP/ho2.sock
pxc_srv g -t 2 -m 32 --handover "$SOCK2"
G=$SRV
items fill "$PXC_TMP/rec2.json" >/dev/null
timeout -k 5 60 "$PXC_BIN" -p 0 --handover "$SOCK2" --snapshot "$PXC_TMP/no/such/dir/s" \
	>"$PXC_TMP/j.log" 2>&1
jrc=$?
got=$(items compare "$PXC_TMP/rec2.json")
ok=no
[ $jrc -eq 1 ] && kill -0 "$G" 2>/dev/null && [ "$got" = "3000 same" ] &&
	ok=yes
pxc_check "a successor whose --snapshot cannot be saved leaves the server be ($jrc, $got)" \
	[ $ok = yes ]
# A port that is taken: a listener of our own, its port in a file.
"$PYTHON" - "$PXC_TMP/busy" <<'PYEOF' &
import os, socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d" % s.getsockname()[1])
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(60)
PYEOF
BUSY=$!
PXC_PIDS+=("$BUSY")
for _ in $(seq 1 100); do
	[ -s "$PXC_TMP/busy" ] && break
	sleep 0.1
done
busy_port=$(cat "$PXC_TMP/busy")
timeout -k 5 150 "$PXC_BIN" -p "$busy_port" --handover "$SOCK2" --snapshot "$PXC_TMP/s2" \
	>"$PXC_TMP/h.log" 2>&1
hrc=$?
pxc_ended "$G"
grc=$?
kill "$BUSY" 2>/dev/null
pxc_srv i -t 2 --snapshot "$PXC_TMP/s2"
got=$(items compare "$PXC_TMP/rec2.json")
ok=no
[ $hrc -eq 1 ] && [ $grc -eq 0 ] && [ "$got" = "3000 same" ] &&
	grep -q "items taken over are saved" "$PXC_TMP/h.log" && ok=yes
pxc_check "a successor that cannot listen saves the cache it took ($hrc, $grc, $got)" \
	[ $ok = yes ]
exit "$PXC_FAILED"
