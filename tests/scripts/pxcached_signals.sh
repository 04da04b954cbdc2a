#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# pxcached and the signals an operator sends besides SIGTERM/SIGINT, with
# --snapshot: SIGHUP (a terminal's hangup, or a habit of "reload") is
# logged and ignored, the server keeps serving; SIGUSR1 (memcached's
# graceful shutdown) stops it like SIGTERM, with the final snapshot, so
# the items written since the last save come back after a restart.
# SIGPIPE never stops it.  Before, SIGHUP and SIGUSR1 killed the process
# by their default action and the writes since the last save were lost.
# Our own servers on free 127.0.0.1 ports, stopped by pid.
. "$(dirname "$0")/pxcached_server.sh"

NT=5
echo "TAP version 13"
echo "1..$NT"
SNAP=$PXC_TMP/cache.snap

# client set KEY VALUE | get KEY: one request on a fresh connection.
cat >"$PXC_TMP/client.py" <<'PYEOF'
import sys
from pxtap import ask_strict, conn

s = conn()
if sys.argv[1] == "set":
    v = sys.argv[3].encode()
    print(ask_strict(s, b"set %s 0 0 %d\r\n%s\r\n"
                     % (sys.argv[2].encode(), len(v), v), b"\r\n")
          .decode().strip())
else:
    r = ask_strict(s, b"get %s\r\n" % sys.argv[2].encode(), b"END\r\n")
    print(r.decode().split("\r\n")[1] if r.startswith(b"VALUE") else "miss")
PYEOF
client() { pxc_py "$@" <"$PXC_TMP/client.py"; }

# alive SECONDS: the server is still running after SECONDS.
alive() { sleep "$1"; kill -0 "$PXC_PID" 2>/dev/null; }

pxc_require_server "$NT" -t 2 -m 16 --snapshot "$SNAP"
client set before_hup "one" >/dev/null
kill -HUP "$PXC_PID"
pxc_check "SIGHUP leaves the server running, said in the log" bash -c "
	sleep 0.3; kill -0 $PXC_PID 2>/dev/null &&
	grep -q 'SIGHUP) ignored' '$PXC_TMP/log'"
kill -PIPE "$PXC_PID" 2>/dev/null
pxc_check "SIGPIPE leaves the server running" alive 0.3
got=$(client set after_hup "two" 2>&1)
pxc_check "the server still serves after SIGHUP and SIGPIPE ($got)" \
	[ "$got" = STORED ]
pxc_stop USR1
rc=$?
pxc_check "SIGUSR1 stops gracefully with the final snapshot (exit $rc)" \
	bash -c "[ $rc -eq 0 ] && grep -q 'final snapshot' '$PXC_TMP/log'"
pxc_start -t 2 -m 16 --snapshot "$SNAP" --snapshot-strict
got="$(client get before_hup) $(client get after_hup)"
pxc_stop TERM || PXC_FAILED=1
pxc_check "items written before SIGUSR1 come back ($got)" \
	[ "$got" = "one two" ]
exit "$PXC_FAILED"
