#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# pxcached's warm roll (--handover SOCKET) attacked as an operator would
# see it go wrong: peers on the handover socket that misbehave (garbage,
# an overlong line, silence, a valid hello and then a hang-up) must leave
# the running server serving, and a roll under continuous pipelined load
# with values around the 1016-byte small-block limit of the item header
# loses no acknowledged write and serves no wrong value; a roll after
# periodic snapshots still saves every item at the new server's stop;
# a peer that connects and says nothing does not hold up SIGTERM.  Our own servers
# on free 127.0.0.1 ports, each stopped by its pid.
. "$(dirname "$0")/pxcached_server.sh"

NT=7
echo "TAP version 13"
echo "1..$NT"
SOCK=$PXC_TMP/ho.sock

[ -n "${RA_KEEP:-}" ] && trap "cat $PXC_TMP/*.log >&2; pxc_cleanup" EXIT

# A peer on the handover socket: peer MODE [LAYOUT].
cat >"$PXC_TMP/peer.py" <<'PYEOF'
import socket, sys, time
mode, path = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect(path)
if mode == "garbage":
    s.sendall(b"\x00\xff not a hello\n")
elif mode == "long":
    s.sendall(b"P" * 65536)
elif mode == "hangup":
    s.sendall(b"PXCACHED-HANDOVER %s\n" % sys.argv[3].encode())
    s.close()
    sys.exit(0)
time.sleep(0.3)
s.close()
PYEOF
peer() { "$PYTHON" - "$@" <"$PXC_TMP/peer.py"; }

# Reads back what a client stored: "N same" or the first difference.
cat >"$PXC_TMP/kv.py" <<'PYEOF'
import sys
from pxtap import ask_strict, conn
s = conn()
n = int(sys.argv[2])
def val(i):
    return bytes((i * 7 + j) % 251 for j in range(950 + i % 120))
if sys.argv[1] == "fill":
    for i in range(n):
        v = val(i)
        ask_strict(s, b"set kv%d 3 0 %d\r\n%s\r\n" % (i, len(v), v), b"\r\n")
    print("filled")
    sys.exit(0)
for i in range(n):
    want = b"VALUE kv%d 3 %d\r\n%s\r\nEND\r\n" % (i, len(val(i)), val(i))
    got = ask_strict(s, b"get kv%d\r\n" % i, b"END\r\n")
    if got != want:
        print("kv%d differs: %r" % (i, got[:60]))
        sys.exit(0)
print("%d same" % n)
PYEOF
kv() { pxc_py "$@" <"$PXC_TMP/kv.py"; }

pxc_require_srv "$NT" a -m 64 -t 2 --handover "$SOCK"
A=$SRV
PORT=$PXC_PORT
kv fill 500 >/dev/null
layout=$("$PXC_BIN" --features | sed -n 's/^cache_layout: //p')

peer garbage "$SOCK"
peer long "$SOCK"
sleep 0.3
got=$(kv check 500)
ok=no
kill -0 "$A" 2>/dev/null && [ "$got" = "500 same" ] && ok=yes
pxc_check "garbage and an overlong line on the socket: the server serves on ($got)" \
	[ $ok = yes ]

# A peer that asks in the right words and hangs up before the answer
# (a crashed successor, a probe): nobody can take the cache, so the
# server must not stop for it.  Queued behind a silent peer, so that it
# has hung up for sure when the server reads its hello.
"$PYTHON" -c "
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(30)
" "$SOCK" &
HOLD=$!
PXC_PIDS+=("$HOLD")
sleep 0.3
peer hangup "$SOCK" "$layout"
kill "$HOLD"
wait "$HOLD" 2>/dev/null
sleep 1
got=$(kv check 500)
ok=no
kill -0 "$A" 2>/dev/null && [ "$got" = "500 same" ] && ok=yes
pxc_check "a valid hello and a hang-up: the server serves on ($got)" \
	[ $ok = yes ]

# ... and a real successor can still take the cache over afterwards,
# even behind a peer that connects and says nothing.
"$PYTHON" -c "
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(8)
" "$SOCK" &
SILENT=$!
PXC_PIDS+=("$SILENT")
sleep 0.2
pxc_srv b -p "$PORT" -m 64 -t 2 --handover "$SOCK"
B=$SRV
pxc_ended "$A"
rc=$?
got=$(kv check 500)
ok=no
[ $rc -eq 0 ] && [ "$got" = "500 same" ] && ok=yes
pxc_check "a successor behind a silent peer takes the cache over ($rc, $got)" \
	[ $ok = yes ]
kill "$SILENT" 2>/dev/null

# A roll under load: 8 connections pipeline sets of 900..1100-byte
# values (either side of the 127-unit block) over 2000 keys each, and
# gets of what they just stored; the last STORED value of every key the
# old server acknowledged must read back from the new one, and no get
# may answer a wrong value.
cat >"$PXC_TMP/load.py" <<'PYEOF'
import json, random, socket, sys, threading, time
from pxtap import PORT
acked, errs, lock = {}, [], threading.Lock()
def val(k, n):
    return (k.encode() * (n // len(k) + 1))[:n]
def until(s, buf, end):
    while end not in buf:
        d = s.recv(1 << 20)
        if not d:
            raise EOFError
        buf += d
    return buf
def client(cid):
    rnd = random.Random(cid)
    s = socket.create_connection(("127.0.0.1", PORT))
    s.settimeout(20)
    buf, i, stop = b"", 0, time.time() + float(sys.argv[1])
    try:
        while time.time() < stop:
            req, want = b"", []
            for _ in range(rnd.randint(1, 20)):
                k = "c%d_%d" % (cid, i % 2000)  # 16000 keys: no eviction
                i += 1
                n = rnd.randint(900, 1100)
                req += b"set %s 5 0 %d\r\n%s\r\n" % (k.encode(), n, val(k, n))
                want.append((k, n, False))
                if rnd.random() < 0.3:
                    req += b"get %s\r\n" % k.encode()
                    want.append((k, n, True))
            s.sendall(req)
            for k, n, get in want:
                if get:
                    buf = until(s, buf, b"END\r\n")
                    exp = b"VALUE %s 5 %d\r\n%s\r\nEND\r\n" % (
                        k.encode(), n, val(k, n))
                    if not buf.startswith(exp):
                        errs.append("get %s: %r" % (k, buf[:60]))
                        return
                    buf = buf[len(exp):]
                    continue
                buf = until(s, buf, b"\r\n")
                line, buf = buf.split(b"\r\n", 1)
                if line != b"STORED":
                    errs.append("set %s: %r" % (k, line))
                    return
                with lock:
                    acked[k] = n
    except (EOFError, OSError):
        pass  # the old server closed the connection
ts = [threading.Thread(target=client, args=(c,)) for c in range(8)]
[t.start() for t in ts]
[t.join() for t in ts]
json.dump(acked, open(sys.argv[2], "w"))
print("errors" if errs else "acked %d" % len(acked), *errs[:2])
PYEOF
cat >"$PXC_TMP/verify.py" <<'PYEOF'
import json, sys
from pxtap import ask_strict, conn
s = conn()
acked = json.load(open(sys.argv[1]))
bad = [k for k, n in acked.items()
       if ask_strict(s, b"get %s\r\n" % k.encode(), b"END\r\n") !=
       b"VALUE %s 5 %d\r\n%s\r\nEND\r\n" % (
           k.encode(), n, (k.encode() * (n // len(k) + 1))[:n])]
print("%d of %d lost or wrong" % (len(bad), len(acked)), *bad[:2])
PYEOF
pxc_py 4 "$PXC_TMP/acked.json" <"$PXC_TMP/load.py" >"$PXC_TMP/load.out" &
LOAD=$!
PXC_PIDS+=("$LOAD")
sleep 1.5
pxc_srv c -p "$PORT" -m 64 -t 2 --handover "$SOCK"
C=$SRV
pxc_ended "$B"
rc=$?
wait "$LOAD"
load=$(cat "$PXC_TMP/load.out")
got=$(pxc_py "$PXC_TMP/acked.json" <"$PXC_TMP/verify.py")
ok=no
[ $rc -eq 0 ] && [ "${load%% *}" = acked ] && [ "${got%% *}" = 0 ] &&
	[ "${load#acked }" != 0 ] && ok=yes
pxc_check "a roll under pipelined load loses no acknowledged write ($load; $got)" \
	[ $ok = yes ]
got=$(kv check 500)
kill -TERM "$C"
pxc_ended "$C"
crc=$?
pxc_check "the items of before both rolls read back; the last server exits 0 ($got, $crc)" \
	bash -c "[ '$got' = '500 same' ] && [ $crc -eq 0 ]"

# Periodic saves before a roll, the final save after it: the snapshot
# the new server writes at SIGTERM must hold every item (each save
# leaves its claim bit on the items it wrote).
SNAP=$PXC_TMP/roll.snap
SOCK3=$PXC_TMP/ho3.sock
pxc_srv d -m 32 -t 2 --handover "$SOCK3" --snapshot "$SNAP" \
	--snapshot-interval 1
D=$SRV
kv fill 500 >/dev/null
for _ in $(seq 1 100); do
	[ -s "$SNAP" ] && break # the first periodic save
	sleep 0.1
done
pxc_srv e -p "$PXC_PORT" -m 32 -t 2 --handover "$SOCK3" --snapshot "$SNAP"
E=$SRV
pxc_ended "$D"
drc=$?
kill -TERM "$E"
pxc_ended "$E"
erc=$?
pxc_srv f -m 32 -t 2 --snapshot "$SNAP"
F=$SRV
got=$(kv check 500)
kill -TERM "$F"
pxc_ended "$F"
pxc_check "a roll after periodic saves: the new server's final snapshot holds every item ($drc, $erc, $got)" \
	bash -c "[ $drc -eq 0 ] && [ $erc -eq 0 ] && [ '$got' = '500 same' ]"

# SIGTERM while a peer is connected to SOCKET and has not asked yet (a
# successor mid-handshake, or a stuck one): the server stops at once
# rather than waiting out the peer's 5 s to ask.
pxc_srv g -m 16 -t 2 --handover "$SOCK3"
G=$SRV
"$PYTHON" -c "
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(30)
" "$SOCK3" &
QUIET=$!
PXC_PIDS+=("$QUIET")
sleep 0.3
t0=$(date +%s%N)
kill -TERM "$G"
pxc_ended "$G"
grc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
kill "$QUIET" 2>/dev/null
pxc_check "SIGTERM with a silent peer on the socket stops within 3 s ($grc, $ms ms)" \
	bash -c "[ $grc -eq 0 ] && [ $ms -lt 3000 ]"
exit "$PXC_FAILED"
