#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/soak: a long mixed load on pxcached with periodic injected faults
# (issue 10).  `make bench-soak` runs it; SOAK_SECONDS (default 600) sets
# the length, SOAK_CLIENTS (default 4 processes) the load, SOAK_FAULT_EVERY
# (default 5 s) the fault period, SOAK_DIR (default build/soak) where the
# results go.
#
# The load: gets, sets, deletes, TTLs of 1-3 s, values from 1 byte to
# 512 KiB, and reconnects, on a 64 MiB cache that evicts.  Each client
# owns its keys, so every hit is checked against the value it last set
# (a miss is allowed: evictions and TTLs).  Faults, one every period,
# cycling: a client reset (RST) in the middle of a value, a connection
# half-closed and abandoned, a value over -I, a garbage line, a client
# that stops reading its replies for a while.  Each fault's own replies
# are checked too, but counted apart.
#
# Every second: operations, errors and the server's memory (Rss plus
# hugetlb pages from /proc/PID/smaps_rollup) go to $SOAK_DIR/soak.csv;
# the end draws $SOAK_DIR/soak.png (gnuplot) and prints a summary.  The
# exit status is non-zero on any error outside the injected faults, if
# the server died, or if memory grew by more than 10% after warm-up.
set -u
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-build}
BIN=${PXC_BIN:-$OUT/apps/pxcached/pxcached}
SECS=${SOAK_SECONDS:-600}
CLIENTS=${SOAK_CLIENTS:-4}
EVERY=${SOAK_FAULT_EVERY:-5}
DIR=${SOAK_DIR:-build/soak}
PYTHON=${PYTHON:-/usr/bin/python3}
mkdir -p "$DIR"
tmp=$(mktemp -d)
pid=
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid"
		wait "$pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

"$BIN" -p 0 --port-file "$tmp/port" -t 2 -m 64 -I 1m -c 1024 \
	>"$DIR/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
	[ -s "$tmp/port" ] && break
	sleep 0.1
done
[ -s "$tmp/port" ] || { echo "soak: pxcached did not start"; exit 1; }
echo "soak: pxcached pid $pid port $(cat "$tmp/port"), ${SECS} s," \
	"$CLIENTS clients, a fault every ${EVERY} s"

PORT=$(cat "$tmp/port") PID=$pid SECS=$SECS CLIENTS=$CLIENTS EVERY=$EVERY \
	DIR=$DIR "$PYTHON" - <<'EOF'
import multiprocessing as mp
import os, random, socket, struct, sys, threading, time

PORT = int(os.environ["PORT"])
PID = os.environ["PID"]
SECS = float(os.environ["SECS"])
CLIENTS = int(os.environ["CLIENTS"])
EVERY = float(os.environ["EVERY"])
DIR = os.environ["DIR"]
ITEM_MAX = 1 << 20

def conn():
    s = socket.create_connection(("127.0.0.1", PORT))
    s.settimeout(30)
    return s

class Reader:
    def __init__(self, s):
        self.s, self.buf = s, b""
    def fill(self):
        d = self.s.recv(1 << 20)
        if not d:
            raise OSError("server closed the connection")
        self.buf += d
    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l
    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

def value_of(cid, key, ver, size):
    head = b"%d:%d:%d:" % (cid, key, ver)
    body = (head * (size // len(head) + 1))[:size]
    return body

def client(cid, stop_at, q):
    r = random.Random(cid)
    last = {}  # key -> (version, size) of the last set still expected
    ops = errs = 0
    s = conn(); rd = Reader(s)
    tick = time.time() + 1
    ver = 0
    while time.time() < stop_at:
        try:
            x = r.random()
            key = r.randrange(2000)
            if x < 0.01:  # reconnect
                s.close(); s = conn(); rd = Reader(s)
            elif x < 0.40:  # set, sometimes with a TTL
                ver += 1
                size = (r.randrange(1, 64) if r.random() < 0.7 else
                        int(2 ** r.uniform(6, 19)))
                ttl = 0 if r.random() < 0.8 else r.randrange(1, 4)
                v = value_of(cid, key, ver, size)
                s.sendall(b"set c%d-%d 0 %d %d\r\n%s\r\n" %
                          (cid, key, ttl, size, v))
                rep = rd.line()
                if rep == b"STORED":
                    last[key] = (ver, size)
                else:
                    errs += 1
                    print("client %d: set -> %r" % (cid, rep[:80]),
                          file=sys.stderr)
            elif x < 0.50:  # delete
                s.sendall(b"delete c%d-%d\r\n" % (cid, key))
                rep = rd.line()
                last.pop(key, None)
                if rep not in (b"DELETED", b"NOT_FOUND"):
                    errs += 1
            else:  # get: a hit must be the last value set
                s.sendall(b"get c%d-%d\r\n" % (cid, key))
                rep = rd.line()
                if rep.startswith(b"VALUE "):
                    n = int(rep.split()[3])
                    data = rd.exact(n + 2)[:-2]
                    end = rd.line()
                    want = last.get(key)
                    if (end != b"END" or want is None or
                            data != value_of(cid, key, *want)):
                        errs += 1
                        print("client %d: get c%d-%d wrong value" %
                              (cid, cid, key), file=sys.stderr)
                elif rep != b"END":
                    errs += 1
            ops += 1
        except OSError as e:
            errs += 1
            print("client %d: %s" % (cid, e), file=sys.stderr)
            try:
                s.close()
            except OSError:
                pass
            s = conn(); rd = Reader(s)
        if time.time() >= tick:
            q.put(("ops", ops, errs))
            ops = errs = 0
            tick += 1
    q.put(("ops", ops, errs))

def rst(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()

def fault(i):
    """One injected fault; returns (name, ok)."""
    kind = i % 5
    if kind == 0:
        s = conn()
        s.sendall(b"set f 0 0 100000\r\n" + b"x" * 30000)
        rst(s)
        return "reset mid-value", True
    if kind == 1:
        s = conn()
        s.sendall(b"get f f f\r\n")
        s.shutdown(socket.SHUT_WR)
        return "half-closed, abandoned", True
    if kind == 2:
        s = conn()
        big = b"y" * (ITEM_MAX + 1)
        s.sendall(b"set f 0 0 %d\r\n%s\r\nmn\r\n" % (len(big), big))
        rd = Reader(s)
        ok = rd.line() == b"SERVER_ERROR object too large for cache"
        ok = ok and rd.line() == b"MN"
        s.close()
        return "value over -I", ok
    if kind == 3:
        s = conn()
        s.sendall(b"\x00\xffgarbage \x01\r\nmn\r\n")
        rd = Reader(s)
        ok = rd.line() == b"ERROR" and rd.line() == b"MN"
        s.close()
        return "garbage line", ok
    s = conn()
    s.sendall(b"set f 0 0 200000\r\n" + b"z" * 200000 + b"\r\n")
    Reader(s).line()
    s.sendall(b"get f\r\n" * 100)  # 20 MB of replies nobody reads
    time.sleep(1)
    rst(s)
    return "client not reading, then reset", True

def run_fault(i, results):
    try:
        name, ok = fault(i)
    except OSError as ex:
        name, ok = "fault %d: %s" % (i, ex), False
    if not ok:
        print("soak: fault %r answered wrongly" % name, file=sys.stderr)
    results.append(ok)

def memory():
    kib = 0
    with open("/proc/%s/smaps_rollup" % PID) as f:
        for line in f:
            w = line.split()
            if w[0] in ("Rss:", "Shared_Hugetlb:", "Private_Hugetlb:"):
                kib += int(w[1])
    return kib

def main():
    start = time.time()
    stop_at = start + SECS
    q = mp.Queue()
    procs = [mp.Process(target=client, args=(i, stop_at, q))
             for i in range(CLIENTS)]
    for p in procs:
        p.start()
    rows, faults, results, fault_threads = [], 0, [], []
    next_fault = start + EVERY
    sec_ops = sec_errs = 0
    next_row = start + 1
    while any(p.is_alive() for p in procs) or not q.empty():
        try:
            kind, o, e = q.get(timeout=0.1)
            sec_ops += o; sec_errs += e
        except Exception:
            pass
        now = time.time()
        if now >= next_fault and now < stop_at:
            # In a thread: a fault may take a second, the sampling not.
            t = threading.Thread(target=run_fault, args=(faults, results))
            t.start()
            fault_threads.append(t)
            faults += 1
            next_fault += EVERY
        if now >= next_row:
            try:
                mem = memory()
            except OSError:
                print("soak: the server is gone", file=sys.stderr)
                sys.exit(1)
            rows.append((round(now - start), sec_ops, sec_errs, mem))
            sec_ops = sec_errs = 0
            next_row += 1
    for p in procs:
        p.join()
    for t in fault_threads:
        t.join()
    fault_bad = sum(1 for ok in results if not ok)
    with open(os.path.join(DIR, "soak.csv"), "w") as f:
        f.write("# seconds ops errors memory_kib\n")
        for r in rows:
            f.write("%d %d %d %d\n" % r)
    ops = [r[1] for r in rows[1:-1]] or [0]
    errors = sum(r[2] for r in rows) + sec_errs
    warm = max(1, len(rows) // 5)
    m_warm = max(r[3] for r in rows[:warm])
    m_end = max(r[3] for r in rows[warm:]) if rows[warm:] else m_warm
    growth = (m_end - m_warm) / m_warm
    print("soak: %d s, %d ops, %d errors, %d faults injected (%d answered "
          "wrongly)" % (len(rows), sum(r[1] for r in rows), errors, faults,
                        fault_bad))
    print("soak: throughput ops/s min %d avg %d max %d" %
          (min(ops), sum(ops) / len(ops), max(ops)))
    print("soak: memory %d KiB after warm-up (first %d s), peak after it "
          "%d KiB (%+.1f%%)" % (m_warm, warm, m_end, growth * 100))
    sys.exit(1 if errors or fault_bad or growth > 0.10 else 0)

main()
EOF
rc=$?
kill -TERM "$pid"
wait "$pid"
src=$?
pid=
echo "soak: pxcached exit status $src after SIGTERM"
if command -v gnuplot >/dev/null && [ -s "$DIR/soak.csv" ]; then
	gnuplot <<EOF
set terminal png size 1000,700
set output "$DIR/soak.png"
set multiplot layout 2,1 title "pxcached soak ($SECS s, $CLIENTS clients, a fault every $EVERY s)"
set ylabel "operations / s"
set xlabel "seconds"
set yrange [0:*]
plot "$DIR/soak.csv" using 1:2 with lines title "throughput", \
	"$DIR/soak.csv" using 1:(\$3 > 0 ? \$3 : 1/0) with points title "errors"
set ylabel "memory (MiB)"
plot "$DIR/soak.csv" using 1:(\$4 / 1024) with lines title "Rss + hugetlb"
unset multiplot
EOF
	echo "soak: $DIR/soak.png, $DIR/soak.csv"
fi
[ "$rc" -eq 0 ] && [ "$src" -eq 0 ]
