#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# python3-pymemcache (Debian's /usr/bin/python3) against pxcached: set,
# get, get_many, gets + cas, incr, decr, touch and delete over 10,000
# keys, binary values, 1 MiB values, noreply, and stats names.  The
# server is our own, on a free 127.0.0.1 port, stopped by pid.
. "$(dirname "$0")/pxcached_server.sh"

echo "TAP version 13"
echo "1..11"
"$PYTHON" -c "import pymemcache" 2>/dev/null ||
	pxc_skip_all 11 "python3-pymemcache missing"
pxc_require_server 11 -t 2 -m 128

pxc_py <<'EOF'
import os
from pymemcache.client.base import Client
from pxtap import PORT, check

c = Client(("127.0.0.1", PORT), connect_timeout=10, timeout=30,
           default_noreply=False)

N = 10000
keys = ["key:%d" % i for i in range(N)]
ok = all(c.set(k, ("v%d" % i).encode()) for i, k in enumerate(keys))
check("set 10,000 keys", ok)
ok = all(c.get(k) == ("v%d" % i).encode() for i, k in enumerate(keys))
check("get 10,000 keys back", ok)
got = {}
for i in range(0, N, 500):
    got.update(c.get_many(keys[i:i + 500]))
check("get_many in batches of 500",
      len(got) == N and all(got[k] == ("v%d" % i).encode()
                            for i, k in enumerate(keys)))
ok = True
for k in keys[:2000]:
    v, cas = c.gets(k)
    ok &= c.cas(k, v + b"!", cas) is True
    ok &= c.cas(k, b"stale", cas) is False
    ok &= c.get(k) == v + b"!"
check("gets + cas: fresh cas stores, stale cas is refused", ok)
ok = True
for i in range(2000):
    k = "n:%d" % i
    c.set(k, b"10")
    ok &= c.incr(k, i) == 10 + i
    ok &= c.decr(k, 5) == 5 + i
    ok &= c.decr(k, 10 ** 6) == 0
ok &= c.incr("n:missing", 1) is None
check("incr/decr on 2,000 counters (decr stops at 0, miss is None)", ok)
ok = all(c.touch(k, 100) for k in keys[:2000])
ok &= c.touch("nope", 10) is False
check("touch", ok)
ok = all(c.delete(k) for k in keys[:5000])
ok &= all(c.get(k) is None for k in keys[:5000])
ok &= c.delete(keys[0]) is False
check("delete 5,000 keys, then they miss", ok)
blob = bytes(range(256)) * 64 + b"\r\nEND\r\n\0"
ok = all(c.set("bin:%d" % i, blob[i:]) for i in range(200))
ok &= all(c.get("bin:%d" % i) == blob[i:] for i in range(200))
check("binary values with CR, LF, NUL and END inside", ok)
big = os.urandom(1 << 20)
ok = c.set("big", big) and c.get("big") == big
ok &= c.set("big2", big[:-1]) and c.get_many(["big", "big2"]) == {
    "big": big, "big2": big[:-1]}
check("1 MiB values", ok)
for i in range(1000):
    c.set("nr:%d" % i, b"x%d" % i, noreply=True)
ok = all(c.get("nr:%d" % i) == b"x%d" % i for i in range(1000))
c.delete("nr:0", noreply=True)
ok &= c.get("nr:0") is None
check("noreply sets and deletes", ok)
st = c.stats()
need = [b"pid", b"uptime", b"time", b"version", b"curr_connections",
        b"total_connections", b"cmd_get", b"cmd_set", b"cmd_flush",
        b"cmd_touch", b"get_hits", b"get_misses", b"get_expired",
        b"delete_hits", b"delete_misses", b"incr_hits", b"incr_misses",
        b"decr_hits", b"decr_misses", b"cas_hits", b"cas_misses",
        b"cas_badval", b"touch_hits", b"touch_misses", b"evictions",
        b"expired_unfetched", b"bytes", b"curr_items", b"total_items",
        b"limit_maxbytes", b"threads", b"bytes_read", b"bytes_written"]
missing = [k.decode() for k in need if k not in st]
ok = not missing and st[b"limit_maxbytes"] == 128 << 20
ok &= st[b"get_hits"] >= 2 * N and st[b"cas_badval"] == 2000
ok &= st[b"delete_hits"] >= 5000 and st[b"threads"] == 2
check("stats: memcached's names and meanings %s" % (missing or ""), ok)
if not ok:
    print("# " + repr({k: st[k] for k in need if k in st}))
EOF
pyrc=$?
PXC_N=11
[ "$pyrc" -eq 0 ] || pxc_not_ok "the client ran to the end (status $pyrc)"
pxc_stop TERM || pxc_not_ok "the server exits 0 afterwards"
exit "$PXC_FAILED"
