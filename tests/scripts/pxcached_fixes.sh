#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Regression tests for pxcached bugs found in review: the ma error reply
# cut to the size of a pointer; a second pxcached sharing a port through
# SO_REUSEPORT; a SIGTERM that never ended while a client did not read its
# replies (now bounded by CONFIG_PX_PXCACHED_DRAIN_MS); --policy and -l
# values refused only once the cache was made, with a confusing reason; a
# binary-protocol client left hanging without a reply; an accept warning
# every tick while out of descriptors.
# Each runs over raw sockets against servers of our own on
# free 127.0.0.1 ports, stopped by pid.
. "$(dirname "$0")/pxcached_server.sh"

NT=10
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

# A second server on the port the first one listens on must refuse to
# start, as memcached does, and leave the first one alone.
"$PXC_BIN" -p "$PXC_PORT" -t 2 -m 16 >"$PXC_TMP/second" 2>&1 &
second=$!
for _ in $(seq 1 100); do
	kill -0 "$second" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$second" 2>/dev/null; then
	kill -KILL "$second"
	wait "$second"
	rc=running
else
	wait "$second"
	rc=$?
fi
pxc_check "a second pxcached on a used port exits non-zero ($rc)" bash -c \
	"[ '$rc' != running ] && [ '$rc' -ne 0 ] &&
	 grep -q 'Address already in use' '$PXC_TMP/second'"
out=$(pxc_py <<'EOF'
import os, socket
ok = 0
for _ in range(8):
    s = socket.create_connection(("127.0.0.1", int(os.environ["PORT"])))
    s.settimeout(20)
    s.sendall(b"get k\r\n")
    got = b""
    while not got.endswith(b"END\r\n") and len(got) < 100:
        d = s.recv(4096)
        if not d:
            break
        got += d
    ok += got == b"VALUE k 0 2\r\nab\r\nEND\r\n"
    s.close()
print(ok)
EOF
)
pxc_check "the first server still answers every connection ($out of 8)" \
	[ "$out" = 8 ]

out=$(pxc_py <<'EOF'
import os, socket, struct
s = socket.create_connection(("127.0.0.1", int(os.environ["PORT"])))
s.settimeout(10)
# A binary-protocol GET of "k": 24-byte header, magic 0x80, opcode 0.
s.sendall(struct.pack(">BBHBBHIIQ", 0x80, 0, 1, 0, 0, 0, 1, 0, 0) + b"k")
got = b""
try:
    while True:
        d = s.recv(4096)
        if not d:
            break
        got += d
    got += b"<EOF>"
except socket.timeout:
    got += b"<timeout>"
print("ok" if got == b"SERVER_ERROR binary protocol not supported\r\n<EOF>"
      else "got %r" % got)
EOF
)
pxc_check "a binary-protocol request: an error line, then closed ($out)" \
	[ "$out" = ok ]
pxc_stop TERM || pxc_not_ok "server exits 0"

# A client that stops reading with replies pending: SIGTERM must still end
# the server, after the drain time, with exit status 0.
pxc_start -t 2 -m 64 -I 1m || pxc_not_ok "pxcached starts"
pxc_py >"$PXC_TMP/stuck" <<'EOF' &
import os, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(os.environ["PORT"])))
s.settimeout(20)
s.sendall(b"set k 0 0 500000\r\n" + b"v" * 500000 + b"\r\n")
got = b""
while not got.endswith(b"\r\n"):
    got += s.recv(100)
s.sendall(b"get k\r\n" * 40)
print("sent", got.strip().decode())
sys.stdout.flush()
time.sleep(40)  # open, never reading; killed by the test
EOF
stuck=$!
for _ in $(seq 1 100); do
	grep -q sent "$PXC_TMP/stuck" && break
	sleep 0.1
done
sleep 0.5
start=$SECONDS
kill -TERM "$PXC_PID"
for _ in $(seq 1 200); do
	kill -0 "$PXC_PID" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$PXC_PID" 2>/dev/null; then
	rc=running
else
	wait "$PXC_PID"
	rc=$?
	PXC_PID=
fi
took=$((SECONDS - start))
kill -KILL "$stuck" 2>/dev/null
wait "$stuck" 2>/dev/null
pxc_check "SIGTERM with a client not reading its replies: exit 0 ($rc, ${took}s)" \
	[ "$rc" = 0 ]
pxc_check "the connections cut at the end of the drain time are logged" \
	grep -q "closing 1 connections" "$PXC_TMP/log"

# Out of descriptors for ~2 s (20 ticks): one accept warning per worker,
# not one per tick, and a warning at start that -c exceeds ulimit -n.
PXC_WRAP="prlimit --nofile=40:40" pxc_start -t 1 -m 16 -c 1000 ||
	pxc_not_ok "pxcached starts under prlimit"
pxc_py <<'EOF'
import os, socket, time
held = [socket.create_connection(("127.0.0.1", int(os.environ["PORT"])))
        for _ in range(60)]
time.sleep(2)
for s in held:
    s.close()
EOF
pxc_stop TERM
rc=$?
n=$(grep -c "accept: Too many open files" "$PXC_TMP/log")
pxc_check "out of descriptors: one accept warning in 2 s ($n), exit $rc" \
	[ "$rc-$n" = 0-1 ]
pxc_check "start-up warns that -c 1000 exceeds ulimit -n 40" \
	grep -q "ulimit -n is 40" "$PXC_TMP/log"

# Bad option values: exit 2 at option parsing, with what was wrong.
bad_option() {
	local want=$1 rc
	shift
	"$PXC_BIN" -p 0 -t 1 -m 16 "$@" >"$PXC_TMP/bad" 2>&1
	rc=$?
	[ "$rc" -eq 2 ] && grep -qF -- "$want" "$PXC_TMP/bad" && return 0
	echo "# exit $rc: $(head -1 "$PXC_TMP/bad")"
	return 1
}
pxc_check "--policy foo exits 2 naming the policies" \
	bad_option "unknown policy 'foo' (lru, sieve, s3fifo)" --policy foo
pxc_check "-l garbage and an unknown option exit 2 naming them" bash -c "
	$(declare -f bad_option); PXC_BIN='$PXC_BIN' PXC_TMP='$PXC_TMP'
	bad_option \"-l: 'garbage'\" -l garbage &&
	bad_option \"'--no-such-option'\" --no-such-option"
exit "$PXC_FAILED"
