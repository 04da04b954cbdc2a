#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# pxcached -Y: memcached-compatible text-protocol authentication.  Before
# a client authenticates (a set whose value is "user password"), every
# other command is refused and the connection closed; after it, the
# connection works as usual.  Our own server, free port, stopped by pid.
. "$(dirname "$0")/pxcached_server.sh"

NT=6
echo "TAP version 13"
echo "1..$NT"
printf 'alice:secret\nbob:pw2\n' >"$PXC_TMP/auth"
pxc_require_server "$NT" -t 2 -m 16 -Y "$PXC_TMP/auth"

pxc_py <<'EOF'
import pxtap
from pxtap import check, conn

pxtap.DETAIL = "# got %r"

def run(data):
    s = conn(10)
    s.sendall(data)
    out = b""
    while True:
        try:
            d = s.recv(4096)
        except ConnectionResetError:
            d = b""
        if not d:
            return out + b"<EOF>"
        out += d
        if out.endswith(b"MN\r\n"):
            return out

r = run(b"get a\r\nmn\r\n")
check("before authenticating: refused, then closed",
      r == b"CLIENT_ERROR unauthenticated\r\n<EOF>", r)
r = run(b"set x 0 0 9\r\nalice bad\r\nmn\r\n")
check("a wrong password: authentication failure, closed",
      r == b"CLIENT_ERROR authentication failure\r\n<EOF>", r)
r = run(b"set x 0 0 12\r\nalicesecret \r\nmn\r\n")
check("a malformed token: refused, closed",
      r == b"CLIENT_ERROR bad authentication token format\r\n<EOF>", r)
r = run(b"set x 0 0 12\r\nalice secret\r\nset k 0 0 2\r\nhi\r\n"
        b"get k\r\nmn\r\n")
check("authenticated: STORED, then the cache works",
      r == b"STORED\r\nSTORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\nMN\r\n", r)
r = run(b"set x 0 0 7 noreply\r\nbob pw2\r\nmn\r\n")
check("the other user, with noreply: silent, then the cache works",
      r == b"MN\r\n", r)
EOF
pyrc=$?
PXC_N=5
[ "$pyrc" -eq 0 ] || pxc_not_ok "the client ran to the end (status $pyrc)"
PXC_N=5
pxc_stop TERM
pxc_check "SIGTERM exits 0" [ $? -eq 0 ]
exit "$PXC_FAILED"
