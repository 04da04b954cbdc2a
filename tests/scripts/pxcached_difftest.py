# SPDX-License-Identifier: MIT
#
# A seeded differential tester: the same random command sequence goes to
# memcached 1.6.18 and to pxcached, and every reply must agree.  A seed
# makes a sequence of text and meta commands over a small key space (so
# that commands meet the same keys), with some malformed lines among
# them.  Each sequence is sent twice to each server: one command at a
# time, and pipelined in chunks of random size.  Each command is followed
# by an "mn", whose "MN" marks where its reply ends.
#
# Only what legitimately differs is normalised: cas ids (each server's
# are numbered in the order they are first seen), the version string,
# TTLs within 1 s, and the documented differences of docs/pxcached.md
# ("Differences from memcached") that the generator marks on a command:
# the meta flags pxcached refuses and the space padding memcached leaves
# after an incr or decr.  On a difference the sequence is shrunk to a
# minimal one that still shows it, and printed.
#
# Usage: pxcached_difftest.py MC_PORT MC_PID PX_PORT PX_PID WORD...
#   WORD: a seed, A-B (a range of seeds), "expiry" (the one case that
#   sleeps: keys given a 1 s TTL, read 2.2 s later), or "inject:S:K"
#   (seed S with pxcached's reply to command K altered: the self-check
#   that a difference is found and shrunk).  Prints one line per word:
#   "PASS ..." or "FAIL ...", with the reproduction on "# " lines.  Exits
#   1 when one failed, 2 when a port is not served by the given pid
#   (its "stats pid").  PX_DIFFTEST_CMDS: commands per seed (200).
import base64
import os
import random
import re
import socket
import sys
import time

from pxtap import owns

KEYS = [b"k0", b"k1", b"k2", b"n0", b"n1", b"noreply", b"k\x01\xc3\xa9"]
NUMKEYS = [b"n0", b"n1"]
LONG_KEY = b"x" * 251
MAX_KEY = b"y" * 250
ALL_KEYS = KEYS + [MAX_KEY]
# Number words one of the servers refuses (or truncates).
BAD_NUM = (b"x", b"-1", b"abc", b"4294967296", b"-2147483649", b"")
# Stored values: letters without m (a data line read as a command must
# never be an "mn"), numbers as strtoull reads them, and odd spellings.
NUMBERS = [b"0", b"1", b"9", b"99", b"100", b"12345", b"4294967296",
           b"9223372036854775808", b"18446744073709551614",
           b"18446744073709551615", b"18446744073709551616",
           b"99999999999999999999", b" 12", b"+5", b"-5", b"-0",
           b"12 34", b"0x10", b"\t7", b"1\n", b"abc", b"", b"007",
           b"-18446744073709551615"]
DELTAS = [b"0", b"1", b"2", b"5", b"100", b"+3", b"-0", b"-1", b"x",
          b"18446744073709551615", b"18446744073709551616",
          b"9223372036854775807", b"1.5", b"", b"01"]
# TTLs that cannot expire during a run: none, long, in the past (negative
# or an absolute time long gone), 30 days (the last relative one).
TTLS = [b"0", b"0", b"100", b"1000", b"-1", b"-100", b"2592000",
        b"2592001", b"+50", b"abc", b"4294967296", b"-2147483649",
        b"2147483647"]
REPLY_WAIT = 2.0
NON_NUMERIC = b"CLIENT_ERROR cannot increment or decrement non-numeric " \
    b"value\r\n"
CAS_WRONG = 10 ** 15

# The meta flags pxcached refuses on purpose (docs/pxcached.md, "Refused
# flags"): the letters memcached 1.6.18 knows that pxcached does not take
# on that command.  A reply of "CLIENT_ERROR invalid flag" to a command
# carrying one of them is a documented difference.
KNOWN = b"bcfhklqstuvILOPCDFJMNRT"
ALLOWED = {b"mg": b"cfkOqstvT", b"ms": b"cCFkOqTM", b"md": b"kOq",
           b"ma": b"cDJkMNOqtTv"}
REFUSED = {c: bytes(x for x in KNOWN if x not in a)
           for c, a in ALLOWED.items()}
# Numbers past 32 bits where memcached truncates them and pxcached
# refuses the command (docs/pxcached.md, "Numbers are not truncated").
OOB = (b"4294967296", b"-2147483649")


class Cmd:
    """One request: parts (bytes, or ("cas", r) resolved per server at
    send time from the cas ids that server returned so far), the key it
    works on, and the documented differences it may show."""

    def __init__(self, parts, key=None, refused=False, padded=(),
                 keys=()):
        self.parts = parts if isinstance(parts, list) else [parts]
        self.key = key
        self._keys = list(keys)
        self.refused = refused
        self.padded = set(padded)
        self.extra = 0  # replies ended by an MN of its own (mn itself)
        self.partial = False
        self.inject = False
        # an incr of a value of white space only, which memcached reads
        # past its end (documented)
        self.ws_value = False
        self.t_lost = False
        # memcached's delayed flush_all takes back an earlier flush_all
        self.undoes_flush = False
        line = self.text().split(b"\r\n")[0].split(b" ")
        # memcached runs a meta command, then refuses its opaque
        self.long_opaque = line[0] in ALLOWED and any(
            w.startswith(b"O") and len(w) > 32 for w in line[2:])
        self.oob = any(w in OOB or w[1:] in OOB for w in line)

    @property
    def keys(self):
        return self._keys or ([self.key] if self.key else [])

    def text(self):
        out = b""
        for p in self.parts:
            out += p if isinstance(p, bytes) else b"<cas %d>" % p[1]
        return out


class Gen:
    """Random commands from one seed.  It keeps a small model, only to
    mark the keys an incr or decr may have padded with spaces on
    memcached (a documented difference) and to avoid appending to them,
    since the padding would then sit inside the value."""

    def __init__(self, seed):
        self.r = random.Random(seed)
        self.padded = set()
        self.ws = set()  # keys that may hold white space only

    def key(self):
        r = self.r.random()
        if r < 0.02:
            return LONG_KEY
        if r < 0.04:
            return MAX_KEY
        return self.r.choice(KEYS)

    def value(self):
        r = self.r.random()
        if r < 0.4:
            return self.r.choice(NUMBERS)
        n = self.r.choice([0, 1, 2, 3, 5, 8, 20])
        return bytes(self.r.choice(b"abcdefghijkl0123456789 \r\n\x00")
                     for _ in range(n))

    def ttl(self):
        return self.r.choice(TTLS)

    def noreply(self):
        return b" noreply" if self.r.random() < 0.2 else b""

    def cas(self):
        r = self.r.random()
        if r < 0.1:
            return b"0"
        if r < 0.2:
            return b"%d" % (CAS_WRONG + self.r.randrange(1000))
        if r < 0.25:
            return self.r.choice([b"x", b"-1", b"18446744073709551616"])
        return ("cas", self.r.randrange(1 << 30))

    def wrote(self, key, arith=False):
        """KEY surely holds a new value (or none): an arith one, which
        memcached may pad, or another."""
        if arith:
            self.padded.add(key)
        else:
            self.padded.discard(key)
            self.ws.discard(key)

    def stored(self, key, val):
        """VAL may have been stored in KEY (or added to it)."""
        if all(ch in b" \t\n\v\f\r" for ch in val):
            self.ws.add(key)

    # ---- text protocol ----------------------------------------------

    def storage(self):
        cmd = self.r.choice([b"set", b"set", b"add", b"replace", b"append",
                             b"prepend", b"cas"])
        key = self.key()
        if cmd in (b"append", b"prepend") and key in self.padded:
            cmd = b"set"
        val = self.value()
        flags = self.r.choice([b"0", b"0", b"1", b"4294967295", b"+7",
                               b"-0", b"-1", b"x", b"4294967296"])
        ttl = self.ttl()
        parts = [b"%s %s %s %s %d" % (cmd, key, flags, ttl, len(val))]
        if cmd == b"cas":
            parts += [b" ", self.cas()]
        parts.append(self.noreply() + b"\r\n" + val + b"\r\n")
        if cmd == b"set" and key != LONG_KEY and flags not in BAD_NUM and \
                ttl not in BAD_NUM:
            self.wrote(key)
        self.stored(key, val)
        return Cmd(parts, key)

    def bad_storage(self):
        """Malformed storage lines; a data line refused is then read as a
        command, as both servers do, so it holds no "mn"."""
        key = self.r.choice(KEYS)
        kind = self.r.randrange(8)
        if kind == 0:  # data longer than said: bad data chunk
            line = b"set %s 0 0 2\r\nabcd\r\n" % key
        elif kind == 1:
            line = b"set %s 0 0 -1\r\nab\r\n" % key
        elif kind == 2:
            line = b"set %s 0 0 zz\r\nab\r\n" % key
        elif kind == 3:
            line = b"set %s 0 0\r\n" % key
        elif kind == 4:
            line = b"set %s 0 0 1 2 3\r\nx\r\n" % key
        elif kind == 5:
            line = b"cas %s 0 0 1\r\nx\r\n" % key
        elif kind == 6:
            line = b"set %s 0 0 2\r\nab\nc\r\n" % key
        else:
            line = b"set %s 0 0 1\r\nab\r\n" % key
        return Cmd(line, key)

    def retrieval(self):
        cmd = self.r.choice([b"get", b"gets", b"gat", b"gats", b"get"])
        keys = [self.key() for _ in range(self.r.choice([0, 1, 1, 2, 4]))]
        if self.r.random() < 0.1 and keys:
            keys.append(keys[0])
        line = cmd
        if cmd in (b"gat", b"gats"):
            line += b" " + self.ttl()
        for k in keys:
            line += b" " + k
        c = Cmd(line + b"\r\n", padded=self.padded & set(keys), keys=keys)
        # memcached touches the keys before a refused one (documented).
        c.partial = cmd.startswith(b"gat") and LONG_KEY in keys[1:]
        return c

    def delete(self):
        key = self.key()
        extra = self.r.choice([b"", b"", b" 0", b" 1", b" 0 0"])
        if extra in (b"", b" 0") and key != LONG_KEY:
            self.wrote(key)
        return Cmd(b"delete %s%s%s\r\n" % (key, extra, self.noreply()), key)

    def arith(self):
        key = self.r.choice(NUMKEYS + [self.key()])
        cmd = self.r.choice([b"incr", b"decr"])
        delta = self.r.choice(DELTAS)
        c = Cmd(b"%s %s %s%s\r\n" % (cmd, key, delta, self.noreply()), key)
        c.ws_value = key in self.ws
        self.wrote(key, arith=True)
        return c

    def touch(self):
        key = self.key()
        return Cmd(b"touch %s %s%s\r\n" % (key, self.ttl(), self.noreply()),
                   key)

    def admin(self):
        r = self.r.randrange(8)
        if r == 0:
            self.padded.clear()
            return Cmd(b"flush_all%s\r\n" % self.noreply())
        if r == 1:
            c = Cmd(b"flush_all %s%s\r\n" % (
                self.r.choice([b"100", b"1000", b"x", b"+200", b"-1",
                               b"1000000000", b"2592000"]),
                self.noreply()), keys=ALL_KEYS)
            c.undoes_flush = True
            return c
        if r == 2:
            return Cmd(b"verbosity %s%s\r\n" % (
                self.r.choice([b"0", b"1", b"+0", b"x", b"-1", b"0 0"]),
                self.noreply()))
        if r == 3:
            return Cmd(b"version\r\n")
        if r == 4:
            return Cmd(self.r.choice([b"verbosity\r\n", b"flush_all 0 0 0\r\n",
                                      b"touch\r\n", b"incr\r\n",
                                      b"delete\r\n", b"get\r\n",
                                      b"gat\r\n", b"cas\r\n"]))
        return Cmd(self.garbage(), padded=self.padded & {b"k0"})

    def garbage(self):
        r = self.r.randrange(6)
        if r == 0:
            return b"\r\n"
        if r == 1:
            return b"GET k0\r\n"
        if r == 2:
            return b"xyzzy plugh\r\n"
        if r == 3:
            return b"get " + b" ".join([b"k0"] * 30) + b"\r\n"
        if r == 4:
            return b"set " + b" ".join([b"1"] * 30) + b"\r\n"
        return bytes(self.r.choice(b"abcdefghijkl \t0123456789")
                     for _ in range(self.r.randrange(1, 40))) + b"\r\n"

    # ---- meta protocol ----------------------------------------------

    def mkey(self, flags):
        """The key word; with b, base64 of a key (or not base64)."""
        key = self.key()
        if b" b" in b" " + b" ".join(flags):
            enc = base64.b64encode(key) if key != LONG_KEY else LONG_KEY
            return key, self.r.choice([enc, enc, enc, b"!!!"])
        return key, key

    def flags(self, pool, n_max=4):
        out = []
        for _ in range(self.r.randrange(n_max + 1)):
            f = self.r.choice(pool)
            out.append(f() if callable(f) else f)
        return out

    def num_flag(self, letter, values):
        return lambda: letter + self.r.choice(values)

    def opaque(self):
        n = self.r.choice([0, 1, 4, 31, 32])
        return b"O" + b"a" * n

    def meta_line(self, cmd, key, flags, refused=False, padded=()):
        refused = refused or any(f and f[0] in REFUSED[cmd] for f in flags)
        return Cmd([b"%s %s" % (cmd, key)] + [b" " + f for f in flags] +
                   [b"\r\n"], refused=refused, padded=padded)

    def mg(self):
        fl = self.flags([b"v", b"v", b"f", b"t", b"c", b"k", b"s", b"q",
                         self.opaque, self.num_flag(b"T", TTLS), b"b",
                         b"N30", b"R30", b"h", b"l", b"u", b"E5", b"zz",
                         b"T", b"Tx", b"v"], 5)
        key, word = self.mkey(fl)
        c = self.meta_line(b"mg", word, fl,
                           padded=self.padded & {key})
        c.key = key
        if any(f.startswith(b"N") for f in fl):
            self.wrote(key)
        return c

    def ms(self):
        fl = self.flags([b"c", b"k", b"q", self.opaque,
                         self.num_flag(b"T", TTLS),
                         self.num_flag(b"F", [b"0", b"5", b"4294967295",
                                              b"x", b"-1"]),
                         self.num_flag(b"M", [b"S", b"E", b"A", b"P", b"R",
                                              b"S", b"s", b"X", b"SS"]),
                         lambda: [b"C", self.cas()], b"I", b"b", b"E77",
                         b"k"], 4)
        key, word = self.mkey([f for f in fl if isinstance(f, bytes)])
        val = self.value()
        mode = [f for f in fl if isinstance(f, bytes) and f[:1] == b"M"]
        if key in self.padded and mode and mode[0] in (b"MA", b"MP"):
            fl.remove(mode[0])
        parts = [b"ms %s %d" % (word, len(val))]
        text = []
        for f in fl:
            if isinstance(f, list):
                parts += [b" " + f[0], f[1]]
                text.append(b"C")
            else:
                parts.append(b" " + f)
                text.append(f)
        parts.append(b"\r\n" + val + b"\r\n")
        c = self.meta_line(b"ms", word, text)
        c.parts = parts
        c.key = key
        if word == key and key != LONG_KEY and \
                len(set(f[:1] for f in text)) == len(text) and all(
                f in (b"c", b"k", b"q", b"F0", b"F5") or
                (f[:1] == b"O" and len(f) <= 32) or
                (f[:1] == b"T" and f[1:] not in BAD_NUM) for f in text):
            self.wrote(key)
        self.stored(key, val)
        return c

    def md(self):
        fl = self.flags([b"k", b"q", self.opaque, b"I", b"b", b"C1", b"x",
                         b"zz", b"T30"], 3)
        key, word = self.mkey(fl)
        if word == key and key != LONG_KEY and \
                len(set(f[:1] for f in fl)) == len(fl) and all(
                f in (b"k", b"q") or (f[:1] == b"O" and len(f) <= 32)
                for f in fl):
            self.wrote(key)
        c = self.meta_line(b"md", word, fl)
        c.key = key
        return c

    def ma(self):
        fl = self.flags([b"v", b"t", b"c", b"k", b"q", self.opaque,
                         self.num_flag(b"D", DELTAS),
                         self.num_flag(b"N", [b"0", b"100", b"-1"]),
                         self.num_flag(b"J", [b"0", b"7", b"13",
                                              b"18446744073709551615"]),
                         self.num_flag(b"T", TTLS),
                         self.num_flag(b"M", [b"I", b"D", b"+", b"-", b"i",
                                              b"X"]), b"b", b"C1"], 4)
        if self.r.random() < 0.7:
            key = self.r.choice(NUMKEYS)
            word = key
            if b"b" in fl:
                word = base64.b64encode(key)
        else:
            key, word = self.mkey(fl)
        c = self.meta_line(b"ma", word, fl)
        c.key = key
        c.ws_value = key in self.ws
        # memcached loses ma's T when the number grows a digit
        c.t_lost = any(f.startswith(b"T") for f in fl)
        self.wrote(key, arith=True)
        return c

    def command(self):
        padded, ws = set(self.padded), set(self.ws)
        c = self.pick()
        r = self.r.random()
        if r < 0.06 and self.spacing(c, r):
            # the command may now be refused: keep what it would clear
            self.padded |= padded
            self.ws |= ws
        if self.r.random() < 0.05:
            # a bare newline ends the command line
            for i, p in enumerate(c.parts):
                if isinstance(p, bytes) and b"\r\n" in p:
                    c.parts[i] = p.replace(b"\r\n", b"\n", 1)
                    break
        return c

    def spacing(self, c, r):
        """Two spaces for one, a leading or a trailing space, or a tab,
        in the command line (its first part); true if it changed."""
        p = c.parts[0]
        if not isinstance(p, bytes) or b" " not in p.split(b"\n")[0]:
            return False
        line, nl, rest = p.partition(b"\r\n") if b"\r\n" in p else \
            (p, b"", b"")
        if r >= 0.05 and c.text().count(b"\n") > 1:
            return False  # a tab joining two words: the data eats an mn
        if r < 0.02:
            i = self.r.choice([i for i, ch in enumerate(line) if ch == 32])
            line = line[:i] + b" " + line[i:]
        elif r < 0.03:
            line = b" " + line
        elif r < 0.05:
            line = line + b" " if nl else line
        else:
            i = self.r.choice([i for i, ch in enumerate(line) if ch == 32])
            line = line[:i] + b"\t" + line[i + 1:]
        c.parts[0] = line + nl + rest
        return True

    def pick(self):
        pick = self.r.random()
        for limit, fn in ((0.22, self.storage), (0.27, self.bad_storage),
                          (0.42, self.retrieval), (0.47, self.delete),
                          (0.57, self.arith), (0.61, self.touch),
                          (0.66, self.admin), (0.76, self.mg),
                          (0.86, self.ms), (0.91, self.md), (0.99, self.ma)):
            if pick < limit:
                return fn()
        c = Cmd(b"mn\r\n")
        c.extra = 1
        return c


def sequence(seed, n):
    """N commands from SEED.  A command carrying a flag pxcached refuses
    is followed by a silent delete of its key: memcached may have changed
    the key, and both must hold the same again."""
    g = Gen(seed)
    out = []
    while len(out) < n:
        c = g.command()
        out.append(c)
        if c.refused or c.oob or c.partial or c.undoes_flush or \
                c.long_opaque or c.ws_value or c.t_lost:
            for k in c.keys:
                out.append(Cmd(b"delete %s noreply\r\n" % k))
                g.wrote(k)
    return out


# ---- talking to a server ---------------------------------------------

class Server:
    def __init__(self, name, port):
        self.name, self.port = name, port
        self.s = None
        self.cas_seen = []

    def connect(self):
        self.close()
        self.s = socket.create_connection(("127.0.0.1", self.port))
        self.s.settimeout(REPLY_WAIT)
        self.buf = b""
        self.cas_seen = []

    def close(self):
        if self.s:
            self.s.close()
            self.s = None

    def resolve(self, cmd):
        out = b""
        for p in cmd.parts:
            if isinstance(p, bytes):
                out += p
            elif self.cas_seen:
                out += b"%d" % self.cas_seen[p[1] % len(self.cas_seen)]
            else:
                out += b"%d" % CAS_WRONG
        return out

    def replies(self, n):
        """The next N replies, each up to its MN; a timeout or close ends
        the list early (marked)."""
        out = []
        while len(out) < n:
            i = self.buf.find(b"MN\r\n")
            if i >= 0:
                out.append(self.buf[:i])
                self.buf = self.buf[i + 4:]
                continue
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                out.append(self.buf + b"<TIMEOUT>")
                break
            if not d:
                out.append(self.buf + b"<EOF>")
                break
            self.buf += d
        return out

    def learn(self, reply):
        for c in cas_ids(reply):
            if c not in self.cas_seen:
                self.cas_seen.append(c)


def items(reply):
    """A reply split into lines, a data block kept with its header."""
    out = []
    while reply:
        i = reply.find(b"\r\n")
        if i < 0:
            out.append(reply)
            break
        line, reply = reply[:i], reply[i + 2:]
        w = line.split(b" ")
        n = None
        if w[0] == b"VALUE" and len(w) >= 4 and w[3].isdigit():
            n = int(w[3])
        elif w[0] == b"VA" and len(w) >= 2 and w[1].isdigit():
            n = int(w[1])
        if n is not None and len(reply) >= n + 2:
            out.append((line, reply[:n]))
            reply = reply[n + 2:]
        else:
            out.append(line)
    return out


def cas_ids(reply):
    ids = []
    for it in items(reply):
        line = it[0] if isinstance(it, tuple) else it
        w = line.split(b" ")
        if w[0] == b"VALUE" and len(w) == 5 and w[4].isdigit():
            ids.append(int(w[4]))
        elif w[0] in (b"HD", b"VA", b"EN", b"NF", b"NS", b"EX"):
            ids += [int(t[1:]) for t in w[1:]
                    if t[:1] == b"c" and t[1:].isdigit() and t != b"c0"]
    return ids


def normal(reply, seen):
    """The reply as comparable items: cas ids as their first-seen index
    and the version's words made alike (TTLs and padding: see same())."""
    out = []
    for it in items(reply):
        line, data = it if isinstance(it, tuple) else (it, None)
        w = line.split(b" ")
        if w[0] == b"VERSION":
            w = [b"VERSION", b"*"]
        elif w[0] == b"VALUE" and len(w) == 5 and w[4].isdigit():
            w[4] = b"#%d" % seen.index(int(w[4]))
        elif w[0] in (b"HD", b"VA", b"EN", b"NF", b"NS", b"EX"):
            for i in range(1, len(w)):
                t = w[i]
                if t[:1] == b"c" and t[1:].isdigit() and t != b"c0":
                    w[i] = b"c#%d" % seen.index(int(t[1:]))
        out.append((w, data))
    return out


def unpad(w, data, cmd):
    """memcached's incr/decr rewrites a shorter number in place, padded
    with spaces (docs/pxcached.md: no space padding after incr/decr)."""
    key_ok = w[0] == b"VA" or (len(w) > 1 and w[1] in cmd.padded)
    if not key_ok or not re.fullmatch(rb"\d+ +", data):
        return w, data
    d = data.rstrip(b" ")
    w = list(w)
    if w[0] == b"VALUE":
        w[3] = b"%d" % len(d)
    else:
        w[1] = b"%d" % len(d)
        w = [b"s%d" % len(d) if t[:1] == b"s" and t[1:].isdigit() else t
             for t in w]
    return w, d


def ttl_close(a, b):
    """TTL words within 1 s (2 s for absolute times); and memcached's t
    of a TTL set in the past by the same request, printed as a negative
    number wrapped to 32 bits (documented), against pxcached's t0."""
    if a[:1] != b"t" or b[:1] != b"t":
        return False
    try:
        x, y = int(a[1:]), int(b[1:])
    except ValueError:
        return False
    if x >= 1 << 31 and y == 0:
        return True
    if x > 2592000 and y > 2592000:
        # an absolute expiry: memcached's clock counts from its start,
        # which it sets 2 s early
        return abs(x - y) <= 2
    return x >= 0 and y >= 0 and abs(x - y) <= 1


def same(a, b, cmd):
    if len(a) != len(b):
        return False
    for (wa, da), (wb, db) in zip(a, b):
        if da != db and cmd.padded and da is not None and \
                da.rstrip(b" ") == db:
            wa, da = unpad(wa, da, cmd)
        if da != db or len(wa) != len(wb):
            return False
        for x, y in zip(wa, wb):
            if x == y or ttl_close(x, y):
                continue
            # padding left on an HD ... s<n> without the value
            if (cmd.padded and x[:1] == b"s" and y[:1] == b"s" and
                    x[1:].isdigit() and y[1:].isdigit() and
                    int(x[1:]) >= int(y[1:])):
                continue
            return False
    return True


def documented(cmd, mc, px):
    """A difference docs/pxcached.md documents, on this command only."""
    if cmd.refused and px == b"CLIENT_ERROR invalid flag\r\n":
        return True
    if cmd.ws_value and px == NON_NUMERIC:
        return True
    if cmd.long_opaque and px == b"CLIENT_ERROR opaque token too long\r\n":
        return mc.startswith(b"CLIENT_ERROR ")
    lines = px.split(b"\r\n")[:-1]
    return cmd.oob and all(x == b"ERROR" or x.startswith(b"CLIENT_ERROR ")
                           for x in lines)


def regroup(replies, part):
    """One reply per command: an mn's own MN joins it to the next."""
    out = []
    for c in part:
        r = replies[:1 + c.extra]
        replies = replies[1 + c.extra:]
        out.append(b"MN\r\n".join(r))
    return out


def run(mc, px, cmds, chunks):
    """Sends CMDS in CHUNKS (sizes) to both; returns None, or the index
    of the first command whose replies differ, with both replies."""
    for s in (mc, px):
        s.connect()
        s.s.sendall(b"flush_all\r\nverbosity 0\r\n" + b"".join(
            b"delete %s noreply\r\n" % k for k in ALL_KEYS) + b"mn\r\n")
        s.replies(1)
    i = 0
    for size in chunks:
        part = cmds[i:i + size]
        if not part:
            break
        got = {}
        for s in (mc, px):
            s.s.sendall(b"".join(s.resolve(c) + b"mn\r\n" for c in part))
        for s in (mc, px):
            got[s.name] = regroup(s.replies(len(part) + sum(
                c.extra for c in part)), part)
        for j, c in enumerate(part):
            if c.inject:  # the self-check: a reply made to differ
                got["px"][j] += b"INJECTED\r\n"
        for j, c in enumerate(part):
            a = got["mc"][j] if j < len(got["mc"]) else b"<none>"
            b = got["px"][j] if j < len(got["px"]) else b"<none>"
            if documented(c, a, b):
                continue  # its cas ids, if any, are not learnt
            mc.learn(a)
            px.learn(b)
            na = normal(a, mc.cas_seen)
            nb = normal(b, px.cas_seen)
            if not same(na, nb, c):
                return i + j, a, b
        i += len(part)
    return None


def chunking(seed, n, pipelined):
    if not pipelined:
        return [1] * n
    r = random.Random(seed * 7919 + 1)
    out = []
    while sum(out) < n:
        out.append(r.choice([2, 3, 5, 8, 13, 40]))
    return out


def still_fails(mc, px, cmds, last_text, pipelined):
    got = run(mc, px, cmds, [len(cmds)] if pipelined else [1] * len(cmds))
    return got is not None and got[0] == len(cmds) - 1 and \
        cmds[-1].text() == last_text


def minimize(mc, px, cmds, at, pipelined):
    """ddmin over the commands before the failing one, which stays."""
    head, last = cmds[:at], cmds[at]
    text = last.text()
    n = 2
    while head and n <= len(head) * 2:
        size = max(1, len(head) // n)
        cut = False
        for start in range(0, len(head), size):
            cand = head[:start] + head[start + size:]
            if still_fails(mc, px, cand + [last], text, pipelined):
                head, cut = cand, True
                n = max(n - 1, 2)
                break
        if not cut:
            if size == 1:
                break
            n *= 2
    return head + [last]


def seeds(words):
    for w in words:
        if "-" in w:
            a, b = w.split("-")
            yield from range(int(a), int(b) + 1)
        else:
            yield int(w)


def one_seed(mc, px, seed, ncmds, inject=None):
    cmds = sequence(seed, ncmds)
    if inject is not None:
        cmds[inject].inject = True
    for pipelined in (False, True):
        chunks = chunking(seed, ncmds, pipelined)
        got = run(mc, px, cmds, chunks)
        if got is None:
            continue
        if inject is None and run(mc, px, cmds, chunks) is None:
            # Not reproduced: said, not failed (see docs/pxcached.md).
            print("# seed %d: a difference that did not come again: "
                  "command %d %r: memcached %r, pxcached %r" %
                  ((seed, got[0], cmds[got[0]].text()) + got[1:]))
            continue
        at, a, b = got
        mode = "pipelined" if pipelined else "one at a time"
        small = minimize(mc, px, cmds, at, pipelined)
        print("FAIL seed %d (%s): command %d %r: memcached %r, pxcached %r"
              % (seed, mode, at, cmds[at].text(), a, b))
        got = run(mc, px, small, [len(small)] if pipelined else
                  [1] * len(small))
        if got:
            print("# minimal: memcached %r, pxcached %r" % (got[1], got[2]))
        for c in small:
            print("#   %r" % c.text())
        return False
    print("PASS seed %d: %d commands" % (seed, ncmds))
    return True


EXPIRY_SET = (b"set e1 0 1 1\r\nx\r\nms e2 1 T1\r\ny\r\nma e3 N1 J5\r\n"
              b"set e4 0 100 1\r\nz\r\ntouch e4 1\r\nset e5 0 0 1\r\nw\r\n"
              b"gat 1 e5\r\nset e6 0 100 2\r\n10\r\nmg e6 T1\r\n"
              b"set e7 0 1 1\r\nv\r\ntouch e7 0\r\nmn\r\n")
EXPIRY_GET = (b"get e1 e2 e3 e4 e5 e6 e7\r\nmg e1 v\r\nma e3\r\n"
              b"incr e6 1\r\nadd e1 0 0 1\r\nq\r\nmg e7 t v\r\nmn\r\n")


def expiry(mc, px):
    """The explicit TTL case: keys given 1 s in every way, 2.2 s later."""
    for s in (mc, px):
        s.connect()
        s.s.sendall(b"flush_all\r\n" + EXPIRY_SET)
        s.replies(1)
    time.sleep(2.2)
    got = []
    for s in (mc, px):
        s.s.sendall(EXPIRY_GET)
        got.append(s.replies(1)[0])
    if got[0] == got[1]:
        print("PASS expiry: 7 keys given a 1 s TTL")
        return True
    print("FAIL expiry: memcached %r, pxcached %r" % tuple(got))
    return False


def main():
    if len(sys.argv) < 6:
        sys.exit("usage: see the file's header")
    mc_port, mc_pid, px_port, px_pid = sys.argv[1:5]
    ncmds = int(os.environ.get("PX_DIFFTEST_CMDS", "200"))
    for port, pid in ((mc_port, mc_pid), (px_port, px_pid)):
        if not owns(int(port), pid, 5):
            print("FAIL port %s is not served by pid %s" % (port, pid))
            sys.exit(2)
    mc, px = Server("mc", int(mc_port)), Server("px", int(px_port))
    failed = 0
    for word in sys.argv[5:]:
        if word == "expiry":
            failed += not expiry(mc, px)
        elif word.startswith("inject:"):
            seed, at = map(int, word[7:].split(":"))
            failed += not one_seed(mc, px, seed, ncmds, at)
        else:
            for seed in seeds([word]):
                failed += not one_seed(mc, px, seed, ncmds)
        sys.stdout.flush()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
