#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# pxcached's live settings (a px_cow cell read by every thread): the
# verbosity command changes what the running server logs, on the workers
# and on the snapshot thread alike, up and back down; maxconns N changes
# the connection limit of the running server both ways, and stats shows
# the current values.  Our own server on a free 127.0.0.1 port, by pid.
. "$(dirname "$0")/pxcached_server.sh"

NT=8
echo "TAP version 13"
echo "1..$NT"
pxc_require_server "$NT" -t 2 -m 16 -c 100 --snapshot "$PXC_TMP/snap" \
	--snapshot-interval 1

PXC_LOG=$PXC_TMP/log pxc_py <<'EOF' || PXC_FAILED=1
import os, sys, time
import pxtap
from pxtap import ask, check, conn

log = os.environ["PXC_LOG"]

def logged(what):
    return open(log).read().count(what)

def wait_logged(what, more, secs=10):
    want = logged(what) + more
    end = time.time() + secs
    while time.time() < end:
        if logged(what) >= want:
            return True
        time.sleep(0.1)
    return False

def setting(s, name):
    r = ask(s, b"stats settings\r\n", b"END\r\n").decode()
    for l in r.split("\r\n"):
        if l.startswith("STAT %s " % name):
            return int(l.split()[2])

c = conn()
# At the default level (notices) the periodic saves are not logged.
time.sleep(2.5)
check("no info lines at verbosity 0 (periodic snapshots run quietly)",
      logged("periodic snapshot") == 0 and logged("info:") == 0)
r = ask(c, b"verbosity 1\r\n")
check("verbosity 1 answers OK and shows in stats settings",
      r == b"OK\r\n" and setting(c, "verbosity") == 1, r)
check("after verbosity 1 the snapshot thread logs at info level",
      wait_logged("periodic snapshot", 2))

# A worker logs at info level too: a connection over the limit.
r = ask(c, b"maxconns 3\r\n")
held = [conn(), conn()]               # c and these two: 3 open
for h in held:
    ask(h, b"mn\r\n")
over = conn()
got = over.recv(100)
check("maxconns 3: the fourth client is refused, stats say 3",
      r == b"OK\r\n" and got == b"ERROR Too many open connections\r\n" and
      setting(c, "maxconns") == 3, (r, got))
time.sleep(0.3)
check("the worker logged the refusal at info level",
      logged("refusing a connection") >= 1)
r = ask(c, b"maxconns 50\r\n")
late = conn()
check("maxconns 50: a new client is served again",
      r == b"OK\r\n" and ask(late, b"mn\r\n") == b"MN\r\n", r)
r = ask(c, b"maxconns 0\r\nmaxconns x\r\nmn\r\n", b"MN\r\n")
check("maxconns 0 or garbage is refused, the limit kept",
      r.count(b"CLIENT_ERROR") == 2 and setting(c, "maxconns") == 50, r)

# Back down: noreply, then the info lines stop (one save may have been
# logging while the level changed).
c.sendall(b"verbosity 0 noreply\r\n")
ask(c, b"mn\r\n")
time.sleep(0.5)
before = logged("periodic snapshot")
time.sleep(2.5)
check("verbosity 0 noreply: the info lines stop",
      logged("periodic snapshot") <= before + 1 and
      setting(c, "verbosity") == 0, (before, logged("periodic snapshot")))
sys.exit(1 if pxtap.failed else 0)
EOF
PXC_N=$NT
pxc_stop TERM || { echo "# server exit status $?"; exit 1; }
exit "$PXC_FAILED"
