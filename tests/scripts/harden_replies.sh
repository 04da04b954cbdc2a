#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Reply-stream regressions found by fuzzing pxcached's protocol
# (tests/fuzz/fuzz_proto.c), replayed against a real server: each reply
# is a whole CRLF line and the stream stays in step with the requests.
# Its own server on a free 127.0.0.1 port, stopped by pid.
. "$(dirname "$0")/pxcached_server.sh"

NT=4
echo "TAP version 13"
echo "1..$NT"
pxc_require_server "$NT" -t 1 -m 16

N0=$PXC_N pxc_py >"$PXC_TMP/out" <<'EOF'
import socket
import pxtap
from pxtap import check, conn

pxtap.DETAIL = "# got %r"

def ask(req):
    s = conn(5)
    s.sendall(req + b"mn\r\n")
    got = b""
    try:
        while not got.endswith(b"MN\r\n"):
            d = s.recv(65536)
            if not d:
                break
            got += d
    except socket.timeout:
        pass
    s.close()
    return got

# cmd.c used sizeof() on a ?: of two literals: 7 bytes went out, no CRLF.
r = ask(b"set k 0 0 3\r\nabc\r\nma k\r\n")
check("ma_non_numeric_reply_is_a_whole_line",
      r == b"STORED\r\nCLIENT_ERROR cannot increment or decrement "
      b"non-numeric value\r\nMN\r\n", r)
# proto.c computed NULL + 0 for a key list that is absent (UB).
r = ask(b"get\r\nget \r\ngets\r\n")
check("get without keys is ERROR, in step", r == b"ERROR\r\n" * 3 + b"MN\r\n",
      r)
EOF
pxc_tap_out "$PXC_TMP/out"
pxc_stop TERM
pxc_check "the server exits 0" [ $? -eq 0 ]
pxc_check "nothing was logged above notice level" \
	bash -c "! grep -q 'error:\|warn:' '$PXC_TMP/log'"
exit "$PXC_FAILED"
