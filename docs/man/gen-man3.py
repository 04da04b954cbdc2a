#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Generates section-3 man pages for patinox's public API from the
contract comments in include/patinox/*.h, so that the pages say exactly
what the headers promise and never drift from them.

    gen-man3.py OUTDIR include/patinox/*.h

writes, under OUTDIR:
  patinox.3          an overview: the headers and what each is for;
  patinox_PART.3     one page per header: its opening comment as the
                     description, then every exported function (PX_API)
                     with its prototype and its contract comment;
  px_NAME.3          one small page per function, `.so` to its header's
                     page, so that `man px_ring_create` finds it.
"""
import os
import re
import sys

DECL_START = re.compile(r"^\s*PX_API\b")
FUNC_NAME = re.compile(r"\b(px_\w+)\s*\(")
PARAM = re.compile(r"^@(\w+|\.\.\.):\s*(.*)$")
LEAD = re.compile(r"^px_\w+(?:\(\))? - (.*)$")
VERSION = re.compile(r'#define\s+PX_VERSION_STRING\s+"([^"]+)"')


def comment_lines(block):
    """The text of a /* ... */ block, one string per line, without the
    comment markers and leading stars but with the indentation after
    them (examples and lists keep their shape)."""
    lines = block.splitlines()
    out = []
    for n, line in enumerate(lines):
        if n == 0:
            line = re.sub(r"^\s*/\*+ ?", "", line)
        else:
            line = re.sub(r"^\s*\*(?!/) ?", "", line)
        if n == len(lines) - 1:
            line = re.sub(r"\s*\*+/\s*$", "", line)
        out.append(line.rstrip())
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return out


class Func:
    def __init__(self, name, proto, contract):
        self.name = name
        self.proto = proto
        self.contract = contract


class Header:
    def __init__(self, path):
        self.path = path
        self.part = os.path.splitext(os.path.basename(path))[0]
        self.intro = []
        self.funcs = []


def parse(path):
    """Reads one header: its opening comment and its PX_API functions."""
    h = Header(path)
    text = open(path, encoding="utf-8").read()
    lines = text.splitlines()
    i = 0
    last_comment = None     # (lines, index of the line after it)
    last_decl_end = None    # index of the line after the last declaration
    last_contract = None
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("/*"):
            j = i
            while "*/" not in lines[j]:
                j += 1
            block = "\n".join(lines[i:j + 1])
            if "SPDX-License-Identifier" not in block:
                body = comment_lines(block)
                if not h.intro and not h.funcs and last_comment is None:
                    h.intro = body
                last_comment = (body, j + 1)
            i = j + 1
            continue
        if DECL_START.match(line) and not line.lstrip().startswith("#"):
            j = i
            while ";" not in lines[j] and "{" not in lines[j]:
                j += 1
            decl = " ".join(s.strip() for s in lines[i:j + 1])
            decl = decl.split("{")[0].strip()
            decl = re.sub(r"^PX_API\s+", "", decl)
            decl = re.sub(r"\s+", " ", decl)
            decl = re.sub(r"\(\s+", "(", decl)
            if not decl.endswith(";"):
                decl += ";"
            m = FUNC_NAME.search(decl)
            if m:
                if last_comment and last_comment[1] == i:
                    contract = last_comment[0]
                elif last_decl_end == i and last_contract is not None:
                    contract = last_contract     # one comment, a group
                else:
                    contract = []
                h.funcs.append(Func(m.group(1), decl, contract))
                last_contract = contract
                last_decl_end = j + 1
            i = j + 1
            continue
        i += 1
    return h


def esc(s):
    """troff-safe text: backslashes, and no control character first."""
    s = s.replace("\\", "\\e")
    if s[:1] in (".", "'"):
        s = "\\&" + s
    return s


def paragraphs(lines):
    para = []
    for line in lines:
        if line.strip():
            para.append(line)
        elif para:
            yield para
            para = []
    if para:
        yield para


def render_text(lines):
    """Comment text to man markup: "px_x - summary" and @param lines
    become a lead sentence and tagged paragraphs, indented or listed
    blocks stay as written, the rest is filled."""
    out = []
    for para in paragraphs(lines):
        m = LEAD.match(para[0].strip())
        if m:
            lead = m.group(1)
            out += [".PP", esc(lead[:1].upper() + lead[1:])]
            para = para[1:]
            if not para:
                continue
        if PARAM.match(para[0].strip()):
            render_params(para, out)
        elif any(l.startswith((" ", "\t", "- ")) for l in para[1:]) or \
                para[0].startswith((" ", "\t")):
            out += [".PP", ".nf"] + [esc(l) for l in para] + [".fi"]
        else:
            out.append(".PP")
            out += [esc(l.strip()) for l in para]
    return out


def render_params(para, out):
    """@name: text lines; an indented line continues the one above."""
    for line in para:
        m = PARAM.match(line.strip())
        if m:
            out += [".TP", "\\fI%s\\fR" % esc(m.group(1)), esc(m.group(2))]
        else:
            out.append(esc(line.strip()))


def th(name, version):
    return ['.TH "%s" 3 "" "patinox %s" "patinox API"'
            % (name.upper(), version)]


def summary(h):
    """The header comment's first sentence (two when the first is a
    single word such as "Errors.")."""
    text = " ".join(l.strip() for l in h.intro)
    sentences = re.split(r"(?<=[.:;])\s+", text)
    lead = sentences[0] if sentences and sentences[0] else \
        "patinox " + h.part
    if len(lead.split()) < 3 and len(sentences) > 1:
        lead += " " + sentences[1]
    return lead.rstrip(".:;")


def header_page(h, version, others):
    out = th("patinox_" + h.part, version)
    out += ['.\\" Generated by docs/man/gen-man3.py from %s; do not edit.'
            % os.path.relpath(h.path)]
    names = ", ".join(f.name for f in h.funcs) or "patinox_" + h.part
    out += [".SH NAME", "%s \\- %s" % (esc(names), esc(summary(h)))]
    out += [".SH SYNOPSIS", ".nf", ".B #include <patinox/%s.h>" % h.part,
            ".PP"]
    out += [esc(f.proto) for f in h.funcs]
    out += [".fi", ".PP",
            "Link with \\fI\\-lpatinox\\fR "
            "(\\fIpkg\\-config \\-\\-cflags \\-\\-libs patinox\\fR)."]
    out += [".SH DESCRIPTION"] + render_text(h.intro)
    if h.funcs:
        out.append(".SH FUNCTIONS")
    for f in h.funcs:
        out += [".SS %s()" % esc(f.name), ".nf", ".B " + esc(f.proto),
                ".fi"]
        out += render_text(f.contract) if f.contract else \
            [".PP", "No contract comment in the header."]
    out += [".SH SEE ALSO", ",\n".join(
        [".BR patinox (3)"] +
        [".BR patinox_%s (3)" % o for o in others if o != h.part])]
    return out


def overview_page(headers, version):
    out = th("patinox", version)
    out += ['.\\" Generated by docs/man/gen-man3.py; do not edit.',
            ".SH NAME", "patinox \\- kernel-assisted userspace library "
            "for Linux servers", ".SH SYNOPSIS", ".nf"]
    out += [".B #include <patinox/%s.h>" % h.part for h in headers]
    out += [".fi", ".PP", "cc app.c $(pkg\\-config \\-\\-cflags \\-\\-libs "
            "patinox)", ".SH DESCRIPTION",
            "One header per part of the library; each has its own page:"]
    for h in headers:
        out += [".TP", ".BR patinox_%s (3)" % h.part, esc(summary(h)) + "."]
    out += [".PP", "Fallible functions return 0 (or a count) on success and "
            "a negative errno on failure;",
            ".BR px_strerror (3)",
            "and px_strerror_in() describe them.  The library never prints.",
            ".SH SEE ALSO", ".BR pxcached (1)"]
    return out


def write(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def main(argv):
    if len(argv) < 3:
        sys.stderr.write("usage: gen-man3.py OUTDIR HEADER...\n")
        return 2
    outdir = argv[1]
    version = "?"
    headers = [parse(p) for p in sorted(argv[2:])]
    for p in argv[2:]:
        m = VERSION.search(open(p, encoding="utf-8").read())
        version = m.group(1) if m else version
    parts = [h.part for h in headers]
    os.makedirs(outdir, exist_ok=True)
    write(os.path.join(outdir, "patinox.3"), overview_page(headers, version))
    for h in headers:
        page = "patinox_%s.3" % h.part
        write(os.path.join(outdir, page), header_page(h, version, parts))
        for f in h.funcs:
            write(os.path.join(outdir, f.name + ".3"),
                  [".so man3/" + page])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
