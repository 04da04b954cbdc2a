#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# pxcached under load and at its limits (issue 10), each case with its own
# server on a free 127.0.0.1 port, stopped by pid:
#  - slow clients: 1,000 connections each sending one byte a second of a
#    command while 20 others work: the others get every reply with a p99
#    close to the run without them, and memory per slow connection is
#    bounded;
#  - the memory limit: random value sizes up to -I from 8 clients, the
#    process memory (Rss plus hugetlb pages, /proc/PID/smaps_rollup)
#    sampled every 20 ms never exceeds -m plus a fixed overhead;
#  - 10,000 idle connections while 100 carry traffic (p99 with and
#    without them, memory per idle connection), and 6,000 connections'
#    requests arriving at once on one worker (completion-queue pressure);
#    these need 10,300 descriptors per process and are skipped where the
#    hard limit is lower.
# Figures are printed as TAP comments; docs/hardening.md records them.
# HARDEN_SLOW_SECONDS (default 4) scales the slow-client phase.
. "$(dirname "$0")/pxcached_server.sh"

NT=12
echo "TAP version 13"
echo "1..$NT"
ulimit -n 32768 2>/dev/null || ulimit -n "$(ulimit -Hn)"
heavy=0
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 10300 ] && heavy=1

# The shared Python part: latency clients, idle and slow connections, the
# memory sampler.  Each phase is a function picked by argv[1].
cat >"$PXC_TMP/load.py" <<'EOF'
import os, random, selectors, sys, threading, time
import pxtap
from pxtap import check, check_mem, conn, memory, note, recv_n
from pxtap import ask_strict as ask

pxtap.CONN_TIMEOUT = 30
pid = pxtap.PID

def latency(nconn, secs):
    """nconn clients in one loop, one get at a time each; returns the
    sorted latencies in seconds and the count of wrong replies."""
    sel = selectors.DefaultSelector()
    want = b"VALUE hot 0 100\r\n" + b"h" * 100 + b"\r\nEND\r\n"
    lat, bad = [], 0
    socks = [conn() for _ in range(nconn)]
    ask(socks[0], b"set hot 0 0 100\r\n" + b"h" * 100 + b"\r\n", b"\r\n")
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, [b"", time.perf_counter()])
        s.send(b"get hot\r\n")
    end = time.time() + secs
    while time.time() < end:
        for key, _ in sel.select(timeout=1):
            st = key.data
            d = key.fileobj.recv(65536)
            if not d:
                bad += 1
                sel.unregister(key.fileobj)
                continue
            st[0] += d
            if len(st[0]) < len(want):
                continue
            now = time.perf_counter()
            lat.append(now - st[1])
            bad += st[0] != want
            st[0], st[1] = b"", now
            key.fileobj.send(b"get hot\r\n")
    for s in socks:
        s.close()
    lat.sort()
    return lat, bad

def pct(lat, p):
    return lat[min(len(lat) - 1, int(len(lat) * p))] if lat else float("inf")

def open_idle(count):
    """count connections, each answered once so the server set it up."""
    socks = []
    for i in range(count):
        s = conn()
        s.sendall(b"mn\r\n")
        socks.append(s)
    for s in socks:
        got = b""
        while not got.endswith(b"MN\r\n"):
            got += s.recv(100)
    return socks

def phase_slow():
    secs = float(os.environ.get("HARDEN_SLOW_SECONDS", "4"))
    base, bad0 = latency(20, 2)
    m0 = memory()
    slow = [conn() for _ in range(1000)]
    cmd = b"get slow-client-key-that-takes-a-while\r\n"
    stop = threading.Event()
    def drip():
        i = 0
        while not stop.is_set() and i < len(cmd) - 2:
            for s in slow:
                s.send(cmd[i:i + 1])
            i += 1
            stop.wait(1)
    t = threading.Thread(target=drip)
    t.start()
    time.sleep(1.5)
    lat, bad = latency(20, secs)
    m1 = memory()
    stop.set()
    t.join()
    p0, p1 = pct(base, 0.99), pct(lat, 0.99)
    note("slow clients: 20 active p99 %.2f ms alone, %.2f ms with 1000 "
         "slow (%d and %d requests)" % (p0 * 1e3, p1 * 1e3, len(base),
                                         len(lat)))
    per = (m1 - m0) * 1024 / len(slow)
    note("memory per slow connection: %.0f bytes (process memory %d -> "
         "%d KiB)" % (per, m0, m1))
    check("20 clients get every reply while 1000 clients drip one byte/s",
          bad0 == 0 and bad == 0 and len(lat) > 0, (bad0, bad))
    # Loose: the machine is shared and has 2 cores.
    check("their p99 with slow clients is within 5x (+20 ms) of without",
          p1 <= 5 * p0 + 0.020, (p0, p1))
    check_mem("memory per slow connection <= 20 KiB (one 16 KiB input "
          "buffer at most)", per <= 20 * 1024, per)
    # The partial-request timeout (default 60 s) is longer than this
    # phase; harden_timeouts.sh tests it.
    for s in slow:
        s.close()

def phase_memlimit():
    limit_mb = int(os.environ["LIMIT_MB"])
    overhead_mb = int(os.environ["OVERHEAD_MB"])
    item_max = int(os.environ["ITEM_MAX"])
    m0 = memory()
    peak = [m0]
    stop = threading.Event()
    def sampler():
        while not stop.is_set():
            peak[0] = max(peak[0], memory())
            time.sleep(0.02)
    big = os.urandom(item_max)
    errors = []
    def writer(seed):
        r = random.Random(seed)
        s = conn()
        try:
            for i in range(300):
                size = min(item_max, int(2 ** r.uniform(0, 20.1)))
                k = b"m%d" % r.randrange(20000)
                rep = ask(s, b"set %s 0 0 %d\r\n%s\r\nget %s\r\n" %
                          (k, size, big[:size], k), b"END\r\n")
                if not rep.startswith(b"STORED\r\n"):
                    errors.append(rep[:60])
        except OSError as e:
            errors.append(str(e))
    t = threading.Thread(target=sampler)
    t.start()
    ws = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for w in ws:
        w.start()
    for w in ws:
        w.join()
    stop.set()
    t.join()
    note("memory limit: -m %d, process memory %d KiB at start, peak %d "
         "KiB = -m + %.1f MiB" % (limit_mb, m0, peak[0],
                                   peak[0] / 1024 - limit_mb))
    check("8 writers of random sizes up to -I get STORED for every set",
          not errors, errors[:3])
    check_mem("process memory never exceeds -m %d MiB + %d MiB overhead"
          % (limit_mb, overhead_mb),
          peak[0] <= (limit_mb + overhead_mb) * 1024, peak[0])

def phase_idle():
    count = int(os.environ.get("IDLE", "10000"))
    base, bad0 = latency(100, 3)
    m0 = memory()
    t0 = time.time()
    idle = open_idle(count)
    m1 = memory()
    note("%d idle connections opened in %.1f s" % (count, time.time() - t0))
    lat, bad = latency(100, 3)
    p0, p1 = pct(base, 0.99), pct(lat, 0.99)
    per = (m1 - m0) * 1024 / count
    note("idle: 100 active p50 %.2f/%.2f ms, p99 %.2f ms alone, %.2f ms "
         "with %d idle (ratio %.2f; target <= 2)" %
         (pct(base, .5) * 1e3, pct(lat, .5) * 1e3, p0 * 1e3, p1 * 1e3,
          count, p1 / p0))
    note("memory per idle connection: %.0f bytes (target 4096, bound "
         "8192; process memory %d -> %d KiB)" % (per, m0, m1))
    check("100 active clients get every reply beside %d idle" % count,
          bad0 == 0 and bad == 0 and len(lat) > 0, (bad0, bad))
    check("their p99 with idle connections is within 4x (+5 ms) of "
          "without", p1 <= 4 * p0 + 0.005, (p0, p1))
    check_mem("memory per idle connection <= 8 KiB", per <= 8192, per)
    for s in idle:
        s.close()

def phase_burst():
    """Every connection's request lands while the server is stopped
    (SIGSTOP), so one worker wakes to 6000 completions at once, three
    times its completion queue (CONFIG_PX_RING_CQ_FACTOR x SQ entries)."""
    import signal
    count = 6000
    socks = open_idle(count)
    req = b"set b 0 0 1\r\nx\r\n" + b"mn\r\n" * 20
    want = b"STORED\r\n" + b"MN\r\n" * 20
    bad = 0
    for rnd in range(2):
        os.kill(int(pid), signal.SIGSTOP)
        for s in socks:
            s.send(req)
        os.kill(int(pid), signal.SIGCONT)
        for s in socks:
            bad += recv_n(s, len(want)) != want
    s = conn()
    st = ask(s, b"stats\r\n", b"END\r\n")
    ring = [l.decode()[5:] for l in st.split(b"\r\n")
            if b"ring_overflows" in l or b"ring_completions" in l]
    note("burst: 2 x %d requests landed while stopped: %s" % (count, ring))
    check("%d connections' requests at once on one worker: every reply "
          "right" % count, bad == 0, bad)
    for s in socks:
        s.close()

globals()["phase_" + sys.argv[1]]()
EOF

# phase NAME: runs one phase against the running server.
sanitized=
case $PXC_BIN in *san-*) sanitized=1 ;; esac

phase() {
	SANITIZED=$sanitized N0=$PXC_N PID=$PXC_PID pxc_py "$@" <"$PXC_TMP/load.py" >"$PXC_TMP/out" 2>&1
	pxc_tap_out "$PXC_TMP/out"
}

pxc_require_server "$NT" -t 2 -m 32 -c 2000
phase slow
pxc_stop TERM
pxc_check "the server exits 0 after the slow clients" [ $? -eq 0 ]

# -m 64 with -I 1m and 8 clients: the overhead allowed is the start-up
# memory (code, rings, buffer rings: ~10 MiB) plus each client's input
# buffer (up to 2 MiB for a 1 MiB value) and replies in flight.
pxc_start -t 2 -m 64 -I 1m -c 100
LIMIT_MB=64 OVERHEAD_MB=48 ITEM_MAX=1048576 phase memlimit
pxc_stop TERM
pxc_check "the server exits 0 after the memory-limit run" [ $? -eq 0 ]

if [ "$heavy" = 1 ]; then
	pxc_start -t 2 -m 64 -c 12000
	IDLE=10000 phase idle
	pxc_stop TERM
	pxc_start -t 1 -m 32 -c 7000
	phase burst
	pxc_stop TERM
	pxc_check "the server exits 0 after the burst" [ $? -eq 0 ]
else
	pxc_skip_all "$NT" "10k connections need 10300 descriptors; limit $(ulimit -n)"
fi
exit "$PXC_FAILED"
