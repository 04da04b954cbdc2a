# SPDX-License-Identifier: MIT
#
# The TAP counter and socket helpers the Python parts of the
# tests/scripts/pxcached_*.sh and harden_*.sh scripts share (pxc_py puts
# this folder on PYTHONPATH).  The counter starts at $N0 (the tests the
# shell already printed) or 0; check() prints one "ok"/"not ok" line and
# counts failures in `failed`; skip() prints a SKIP line.  Scripts that
# print details as bytes set DETAIL = "# got %r" (and DETAIL_MAX to
# shorten them); CONN_TIMEOUT is conn()'s socket timeout in seconds.
import os
import re
import socket
import sys

PORT = int(os.environ.get("PORT", "0"))
PID = os.environ.get("PID")
n = int(os.environ.get("N0", "0"))
failed = 0
DETAIL = "# %s"
DETAIL_MAX = None
CONN_TIMEOUT = 20


def check(name, cond, detail=None):
    """One TAP line for NAME; on failure the detail, when one is given."""
    global n, failed
    n += 1
    failed += not cond
    print(("ok %d %s" if cond else "not ok %d %s") % (n, name))
    if not cond and detail is not None:
        if DETAIL_MAX is not None:
            detail = detail[:DETAIL_MAX]
        print(DETAIL % (detail,))
    sys.stdout.flush()


def skip(text):
    """One test skipped: "ok N # SKIP TEXT"."""
    global n
    n += 1
    print("ok %d # SKIP %s" % (n, text))
    sys.stdout.flush()


def check_mem(name, cond, detail=None):
    """A memory bound: meaningless under ASan (shadow, quarantine)."""
    if os.environ.get("SANITIZED"):
        skip("%s: memory under a sanitizer" % name)
    else:
        check(name, cond, detail)


def note(s):
    print("# " + s)
    sys.stdout.flush()


def conn(timeout=None):
    """A client connection to the server under test."""
    s = socket.create_connection(("127.0.0.1", PORT))
    s.settimeout(CONN_TIMEOUT if timeout is None else timeout)
    return s


def until(s, end):
    """Reads from S until the data ends with END; "<EOF>" marks a close."""
    got = b""
    while not got.endswith(end):
        d = s.recv(1 << 20)
        if not d:
            return got + b"<EOF>"
        got += d
    return got


def ask(s, data, end=b"\r\n"):
    """Sends DATA on S and reads the reply up to END (see until())."""
    s.sendall(data)
    return until(s, end)


def ask_strict(s, data, end):
    """Like ask(), but a close before END raises OSError."""
    s.sendall(data)
    got = b""
    while not got.endswith(end):
        d = s.recv(1 << 20)
        if not d:
            raise OSError("closed")
        got += d
    return got


def recv_n(s, size):
    """Reads SIZE bytes from S, or fewer when the peer closes first."""
    got = b""
    while len(got) < size:
        d = s.recv(65536)
        if not d:
            break
        got += d
    return got


def stat(name):
    """The server's "stats" value NAME as an int, -1 when absent."""
    s = conn()
    s.sendall(b"stats\r\n")
    got = until(s, b"END\r\n")
    s.close()
    for line in got.split(b"\r\n"):
        w = line.split()
        if len(w) == 3 and w[1] == name.encode():
            return int(w[2])
    return -1


def memory(pid=None):
    """Process memory in KiB: Rss plus hugetlb pages."""
    kib = 0
    for line in open("/proc/%s/smaps_rollup" % (pid or PID)):
        w = line.split()
        if w[0] in ("Rss:", "Shared_Hugetlb:", "Private_Hugetlb:"):
            kib += int(w[1])
    return kib


def fill(s, n, size):
    """Store keys k0..k(N-1) of SIZE bytes, pipelined with noreply, then
    wait for the server to answer an mn: every set was processed."""
    v = b"v" * size
    for i in range(0, n, 100):
        s.sendall(b"".join(b"set k%d 0 0 %d noreply\r\n%s\r\n"
                           % (j, size, v) for j in range(i, min(n, i + 100))))
    assert ask_strict(s, b"mn\r\n", b"\r\n") == b"MN\r\n"


def owns(port, pid, timeout=2):
    """Whether 127.0.0.1:PORT answers and its stats say pid PID: the
    server there is the one we started, not whoever held the port."""
    s = socket.create_connection(("127.0.0.1", port), timeout)
    s.settimeout(timeout)
    s.sendall(b"stats\r\n")
    got = b""
    while not got.endswith(b"END\r\n"):
        d = s.recv(65536)
        if not d:
            break
        got += d
    s.close()
    m = re.search(rb"STAT pid (\d+)\r\n", got)
    return m is not None and m.group(1) == str(pid).encode()
