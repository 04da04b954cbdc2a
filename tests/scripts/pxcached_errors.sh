#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# pxcached under bad input, over raw sockets: long keys, malformed and
# overflowing lengths, values over -I (dropped, connection kept), an
# overlong line (error, then closed), clients that vanish in the middle
# of a value while others keep working, input split at every byte, a
# client that floods requests without reading (backpressure, order), the
# connection limit, and the meta commands.  Our own server on a free
# 127.0.0.1 port, stopped by pid; it must exit 0 after all of it.
. "$(dirname "$0")/pxcached_server.sh"

NT=13
echo "TAP version 13"
echo "1..$NT"
pxc_require_server "$NT" -t 2 -m 32 -c 64 -I 1m

pxc_py <<'EOF'
import socket, time, threading
import pxtap
from pxtap import ask, check, conn

pxtap.DETAIL = "# got %r"
pxtap.DETAIL_MAX = 300

FMT = b"CLIENT_ERROR bad command line format\r\n"
s = conn()
k = b"k" * 251
r = ask(s, b"set " + k + b" 0 0 1\r\nx\r\nget " + k + b"\r\nmn\r\n", b"MN\r\n")
check("a 251-byte key is refused, the connection kept",
      r == FMT + b"ERROR\r\n" + FMT + b"MN\r\n", r)

bad = [b"-1", b"4294967297", b"18446744073709551616", b"2147483646", b"1x"]
r = ask(s, b"".join(b"set k 0 0 " + b + b"\r\nx\r\n" for b in bad) +
        b"mn\r\n", b"MN\r\n")
check("malformed lengths (2^32+1, 2^64, -1...) refused, never truncated",
      r == (FMT + b"ERROR\r\n") * len(bad) + b"MN\r\n", r)

ask(s, b"set big 0 0 3\r\nold\r\n", b"\r\n")
s.sendall(b"set big 0 0 2097152\r\n")
for i in range(32):
    s.sendall(b"z" * 65536)
r = ask(s, b"\r\nget big\r\nset k 0 0 2\r\nok\r\nget k\r\n", b"k 0 2\r\nok\r\nEND\r\n")
check("a 2 MiB value over -I 1m: dropped, error, connection kept",
      r == b"SERVER_ERROR object too large for cache\r\nEND\r\nSTORED\r\n"
           b"VALUE k 0 2\r\nok\r\nEND\r\n", r)

r = ask(s, b"bogus\r\nincr k 1\r\nincr k x\r\ntouch k x\r\ndelete k 5\r\n"
        b"set k 0 0 1\r\nxyz\r\nmn\r\n", b"MN\r\n")
check("memcached's error strings",
      r == b"ERROR\r\nCLIENT_ERROR cannot increment or decrement "
           b"non-numeric value\r\nCLIENT_ERROR invalid numeric delta "
           b"argument\r\nCLIENT_ERROR invalid exptime argument\r\n"
           b"CLIENT_ERROR bad command line format.  Usage: delete <key> "
           b"[noreply]\r\nCLIENT_ERROR bad data chunk\r\nERROR\r\nMN\r\n", r)

r = ask(s, b"ms m 2 T0 F5\r\nhi\r\nmg m s v f t k Oq1\r\nmg nope v\r\n"
        b"mg nope v q\r\nma n N0 J7 v\r\nma n MD D2 v\r\nmd m q\r\n"
        b"md m\r\nms m 2 MX\r\nzz\r\nmn\r\n", b"MN\r\n")
check("meta commands mg/ms/md/ma/mn",
      r == b"HD\r\nVA 2 s2 f5 t-1 km Oq1\r\nhi\r\nEN\r\nVA 1\r\n7\r\n"
           b"VA 1\r\n5\r\nNF\r\nCLIENT_ERROR invalid mode for ms M "
           b"token\r\nMN\r\n", r)
s.close()

s = conn()
s.sendall(b"x" * 5000)
got = b""
while True:
    d = s.recv(4096)
    if not d:
        break
    got += d
check("an overlong line without newline: error, then closed",
      got == b"CLIENT_ERROR line too long\r\n", got)

# Input split at every byte, pipelined.
s = conn()
req = b"set a 0 0 5\r\nhello\r\nget a a\r\ngets zz\r\nmn\r\n"
for i in range(len(req)):
    s.send(req[i:i + 1])
    time.sleep(0.002)
r = ask(s, b"", b"MN\r\n")
check("input sent one byte at a time",
      r == b"STORED\r\nVALUE a 0 5\r\nhello\r\nVALUE a 0 5\r\nhello\r\n"
           b"END\r\nEND\r\nMN\r\n", r)

# Clients that vanish in the middle of a value, while others work.
stop = False
errors = []
def worker(i):
    c = conn()
    j = 0
    while not stop:
        v = b"%d-%d" % (i, j)
        r = ask(c, b"set w%d 0 0 %d\r\n%s\r\nget w%d\r\n" % (i, len(v), v, i),
                b"END\r\n")
        if r != b"STORED\r\nVALUE w%d 0 %d\r\n%s\r\nEND\r\n" % (i, len(v), v):
            errors.append(r)
            return
        j += 1
ts = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
for t in ts:
    t.start()
for i in range(40):
    a = conn()
    a.sendall(b"set gone%d 0 0 100000\r\n" % i + b"q" * (i * 1000))
    if i % 2:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
    a.close()
stop = True
for t in ts:
    t.join()
s = conn()
r = ask(s, b"get gone1 gone2\r\n", b"END\r\n")
check("40 clients gone mid-value: nothing stored, others unaffected",
      not errors and r == b"END\r\n", errors[:1] or r)

# A client that pipelines for a second without reading: the server stops
# reading from it once its replies pile up, then every reply arrives,
# whole and in order.
s = conn()
for i in range(10):
    ask(s, b"set p%d 0 0 1000\r\n" % i + (b"%d" % i) * 1000 + b"\r\n",
        b"\r\n")
reqs = b"".join(b"get p%d\r\n" % (j % 10) for j in range(1000))
s.setblocking(False)
sent = 0
t = time.time()
while time.time() - t < 1:
    try:
        sent += s.send(reqs[sent % len(reqs):])
    except BlockingIOError:
        time.sleep(0.01)
# A request cut short by the last send stays unanswered, harmlessly.
n_req = sent // 8
s.setblocking(True)
s.settimeout(20)
buf = bytearray()
try:
    while len(buf) < n_req * 1024:
        d = s.recv(1 << 22)
        if not d:
            break
        buf += d
except socket.timeout:
    pass
ok = len(buf) == n_req * 1024
for j in range(0, n_req, 997):
    k = j % 10
    ok &= buf[j * 1024:(j + 1) * 1024] == (b"VALUE p%d 0 1000\r\n" % k +
                                         (b"%d" % k) * 1000 + b"\r\nEND\r\n")
check("%d pipelined gets sent without reading: all answered, in order" % n_req,
      ok, b"%d of %d bytes" % (len(buf), n_req * 1024))
s.close()

# The connection limit (-c 64): the 65th open connection is refused the
# way memcached refuses it, and the others still work.
time.sleep(0.5)
held = [conn() for _ in range(70)]
refused = 0
for h in held:
    h.sendall(b"mn\r\n")
    try:
        d = h.recv(100)
    except OSError:
        d = b""
    if d.startswith(b"ERROR Too many open connections"):
        refused += 1
check("connections over -c are refused with memcached's message",
      refused >= 6 and refused < 70, b"%d refused" % refused)
for h in held:
    h.close()
time.sleep(0.5)
s = conn()
r = ask(s, b"stats\r\n", b"END\r\n")
st = dict(l.split(b" ")[1:3] for l in r.split(b"\r\n") if l.startswith(b"STAT "))
check("stats after all that: rejected_connections counted, connections released",
      int(st.get(b"rejected_connections", 0)) >= 6 and
      int(st.get(b"curr_connections", 99)) <= 2, r[:200])
EOF
pyrc=$?
PXC_N=11
[ "$pyrc" -eq 0 ] || pxc_not_ok "the client ran to the end (status $pyrc)"
PXC_N=11
pxc_check "the server is still alive after the abuse" kill -0 "$PXC_PID"
pxc_stop TERM
pxc_check "SIGTERM exits 0 afterwards" [ $? -eq 0 ]
exit "$PXC_FAILED"
