#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Regression tests for pxcached bugs found in review: the ma error reply
# cut to the size of a pointer, each over raw sockets to our own server on
# a free 127.0.0.1 port, stopped by pid.
. "$(dirname "$0")/pxcached_server.sh"

NT=1
echo "TAP version 13"
echo "1..$NT"
pxc_require_server "$NT" -t 1 -m 16

out=$(pxc_py <<'EOF'
import os, socket
s = socket.create_connection(("127.0.0.1", int(os.environ["PORT"])))
s.settimeout(20)
s.sendall(b"set k 0 0 2\r\nab\r\nma k\r\nmn\r\n")
got = b""
while not got.endswith(b"MN\r\n"):
    d = s.recv(4096)
    if not d:
        break
    got += d
want = (b"STORED\r\nCLIENT_ERROR cannot increment or decrement "
        b"non-numeric value\r\nMN\r\n")
print("ok" if got == want else "got %r" % got)
EOF
)
pxc_check "ma on a non-numeric value: the whole CLIENT_ERROR line ($out)" \
	[ "$out" = ok ]
pxc_stop TERM || pxc_not_ok "server exits 0"
exit "$PXC_FAILED"
