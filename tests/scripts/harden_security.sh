#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# pxcached's security defaults (issue 10): it binds loopback unless told
# otherwise, opens no UDP socket, refuses connections over -c with
# memcached's message, bounds each connection's input (line limit, key
# list limit, memory held by partial lines), rejects lengths, flags,
# exptimes and deltas near 2^32 and 2^64 without truncating them, and
# with -Y serves nothing before the credentials (and never runs open when
# the auth file is missing).
# Its own server on a free 127.0.0.1 port, stopped by pid.  About 5 s.
. "$(dirname "$0")/pxcached_server.sh"

NT=11
echo "TAP version 13"
echo "1..$NT"
pxc_require_server "$NT" -t 2 -m 16 -c 64

listeners=$(ss -Hltnp | grep "pid=$PXC_PID," | awk '{print $4}' | sort -u)
pxc_check "listens on loopback only by default ($(echo $listeners))" \
	bash -c "[ -n '$listeners' ] && ! grep -qv '^127\.0\.0\.1:' <<<'$listeners'"
udp=$(ss -Huanp | grep -c "pid=$PXC_PID,")
pxc_check "no UDP socket ($udp)" [ "$udp" -eq 0 ]

sanitized=
case $PXC_BIN in *san-*) sanitized=1 ;; esac
SANITIZED=$sanitized N0=$PXC_N PID=$PXC_PID pxc_py >"$PXC_TMP/out" <<'EOF'
import os, time
import pxtap
from pxtap import check, conn, memory, until

pxtap.DETAIL = "# got %r"

# -c 64: the 65th client is told why and closed; a freed slot is reused.
socks = [conn() for _ in range(64)]
for s in socks:
    until(s, b"MN\r\n") if s.sendall(b"mn\r\n") is None else None
extra = conn()
r = until(extra, b"<never>")
socks.pop().close()
time.sleep(0.3)
again = conn()
again.sendall(b"mn\r\n")
check("-c 64: client 65 gets 'ERROR Too many open connections', a freed "
      "slot is reused", r == b"ERROR Too many open connections\r\n<EOF>"
      and until(again, b"MN\r\n") == b"MN\r\n", r)
for s in socks:
    s.close()
again.close()
time.sleep(0.3)

# Input bounds: an overlong line, an overlong key list.
s = conn()
s.sendall(b"x" * 65536)
r = until(s, b"<never>")
check("a 64 KiB line without newline: 'line too long', then closed",
      r == b"CLIENT_ERROR line too long\r\n<EOF>", r[:80])
s = conn()
s.sendall(b"get " + b"k " * (300 * 1024 // 2))
r = until(s, b"<never>")
check("a 300 KiB key list (limit 256 KiB): 'line too long', then closed",
      r == b"CLIENT_ERROR line too long\r\n<EOF>", r[:80])

# 40 clients each hold a 200 KiB partial key list: memory stays bounded.
m0 = memory()
held = [conn() for _ in range(40)]
for h in held:
    h.sendall(b"get " + b"k " * (200 * 1024 // 2))
time.sleep(1)
per = (memory() - m0) / len(held)
print("# memory per connection holding a 200 KiB partial line: %.0f KiB" % per)
if os.environ.get("SANITIZED"):
    pxtap.skip("memory under a sanitizer")
else:
    check("a partial line costs at most its bound rounded up (<= 520 KiB "
          "each)", per <= 520, per)
for h in held:
    h.close()

# Numbers near 2^32 and 2^64: refused, never truncated; the connection
# survives.  The data line of a refused set is then read as a command.
FMT = b"CLIENT_ERROR bad command line format\r\n"
s = conn()
cases = [
    (b"set k 0 0 4294967295\r\nx\r\n", FMT + b"ERROR\r\n"),
    (b"set k 0 0 4294967296\r\nx\r\n", FMT + b"ERROR\r\n"),
    (b"set k 0 0 4294967297\r\nx\r\n", FMT + b"ERROR\r\n"),
    (b"set k 0 0 18446744073709551615\r\nx\r\n", FMT + b"ERROR\r\n"),
    (b"set k 0 0 18446744073709551616\r\nx\r\n", FMT + b"ERROR\r\n"),
    (b"set k 4294967296 0 1\r\nx\r\n", FMT + b"ERROR\r\n"),
    (b"set k 0 4294967296 1\r\nx\r\n", FMT + b"ERROR\r\n"),
    (b"cas k 0 0 1 18446744073709551616\r\nx\r\n", FMT + b"ERROR\r\n"),
    (b"ms k 4294967297\r\nx\r\n", FMT + b"ERROR\r\n"),
    (b"ms k 18446744073709551616\r\nx\r\n", FMT + b"ERROR\r\n"),
]
bad = []
for req, want in cases:
    got = until(s, b"MN\r\n") if s.sendall(req + b"mn\r\n") is None else b""
    if got != want + b"MN\r\n":
        bad.append((req[:40], got[:80]))
s.sendall(b"set n 0 0 1\r\n5\r\nincr n 18446744073709551616\r\n"
          b"incr n 18446744073709551615\r\nmn\r\n")
got = until(s, b"MN\r\n")
if got != (b"STORED\r\nCLIENT_ERROR invalid numeric delta argument\r\n"
           b"4\r\nMN\r\n"):
    bad.append((b"incr", got))
check("lengths, flags, exptimes, cas and deltas near 2^32 and 2^64 are "
      "refused (an incr delta of 2^64-1 wraps, as memcached)", not bad, bad)
EOF
pxc_tap_out "$PXC_TMP/out"
pxc_stop TERM
pxc_check "the server exits 0" [ $? -eq 0 ]

# -Y: a missing auth file refuses to start (never an open server); with
# a file, nothing is served before the credentials, and an oversized
# "token" is refused without being buffered.
rm -f "$PXC_TMP/port"
"$PXC_BIN" -p 0 --port-file "$PXC_TMP/port" -m 16 -Y "$PXC_TMP/none" \
	>"$PXC_TMP/log" 2>&1
rc=$?
pxc_check "-Y with a missing file: exit $rc, never listening" \
	bash -c "[ $rc -ne 0 ] && [ ! -e '$PXC_TMP/port' ]"
printf 'alice:s3cret\n' >"$PXC_TMP/auth"
pxc_start -t 1 -m 16 -Y "$PXC_TMP/auth"
N0=$PXC_N pxc_py >"$PXC_TMP/out" <<'EOF2'
import pxtap
from pxtap import check, conn

pxtap.CONN_TIMEOUT = 10

def rest(s):
    got = b""
    try:
        while True:
            d = s.recv(1 << 20)
            if not d:
                return got + b"<EOF>"
            got += d
    except OSError:
        return got + b"<RST>"
s = conn()
s.sendall(b"get k\r\nset k 0 0 3\r\nabc\r\n")
a = rest(s)
s = conn()
try:
    s.sendall(b"set t 0 0 10000000\r\n" + b"u" * 4000000)
except OSError:
    pass
b = rest(s)
s = conn()
s.sendall(b"set t 0 0 12\r\nalice s3cret\r\nset k 0 0 3\r\nabc\r\n"
          b"get k\r\nquit\r\n")
c = rest(s)
ok = (a == b"CLIENT_ERROR unauthenticated\r\n<EOF>" and
      b.startswith(b"CLIENT_ERROR") and
      c == b"STORED\r\nSTORED\r\nVALUE k 0 3\r\nabc\r\nEND\r\n<EOF>")
check("-Y: nothing served before credentials, a 10 MB token refused, "
      "good credentials pipelined", ok, repr((a[:80], b[:80], c[:120])))
EOF2
cat "$PXC_TMP/out"
PXC_N=$((PXC_N + 1))
grep -q '^not ok' "$PXC_TMP/out" && PXC_FAILED=1
pxc_stop TERM
pxc_check "the -Y server exits 0" [ $? -eq 0 ]
exit "$PXC_FAILED"
