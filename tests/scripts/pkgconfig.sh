#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs patinox under a scratch PREFIX and builds a small program
# against the installed copy with `pkg-config --cflags --libs patinox`,
# once against the shared library and once statically; both must run.
set -u
OUT=${OUT:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "TAP version 13"
echo "1..3"

if make -s install PREFIX="$tmp/root/usr" OUT="$OUT" >"$tmp/log" 2>&1 &&
	[ -f "$tmp/root/usr/lib/pkgconfig/patinox.pc" ] &&
	[ -f "$tmp/root/usr/include/patinox/error.h" ] &&
	[ -L "$tmp/root/usr/lib/libpatinox.so" ]; then
	echo "ok 1 install lays out library, headers and patinox.pc"
else
	sed 's/^/# /' "$tmp/log"
	echo "not ok 1 install lays out library, headers and patinox.pc"
fi

cat >"$tmp/hello.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <patinox/error.h>
#include <patinox/probe.h>
int main(void)
{
	struct px_features f;
	if (px_probe_features(&f) != 0)
		return 1;
	if (strcmp(px_version(), PX_VERSION_STRING) != 0)
		return 2;
	printf("%s\n", px_strerror(-PX_ECLOSED));
	return 0;
}
C
export PKG_CONFIG_PATH="$tmp/root/usr/lib/pkgconfig"
flags=$(pkg-config --cflags --libs patinox)
# A sanitized library needs the sanitizer runtime in the program too.
san=${SANITIZE:+-fsanitize=$SANITIZE}
if cc $san -o "$tmp/hello" "$tmp/hello.c" $flags >"$tmp/log" 2>&1 &&
	LD_LIBRARY_PATH="$tmp/root/usr/lib" "$tmp/hello" >"$tmp/out" 2>&1 &&
	grep -q "object closed" "$tmp/out" &&
	LD_LIBRARY_PATH="$tmp/root/usr/lib" ldd "$tmp/hello" | grep -q "$tmp/root/usr/lib/libpatinox.so.0"; then
	echo "ok 2 shared build with pkg-config runs against the installed copy"
else
	sed 's/^/# /' "$tmp/log" "$tmp/out" 2>/dev/null
	echo "not ok 2 shared build with pkg-config runs against the installed copy"
fi

# Link the archive itself; the rest of the flags come from pkg-config.
sflags=$(pkg-config --static --cflags --libs patinox | sed 's/-lpatinox//')
if cc $san -o "$tmp/hello_static" "$tmp/hello.c" \
	"$tmp/root/usr/lib/libpatinox.a" $sflags >"$tmp/log" 2>&1 &&
	! ldd "$tmp/hello_static" | grep -q libpatinox &&
	"$tmp/hello_static" >"$tmp/log" 2>&1; then
	echo "ok 3 static build with pkg-config --static runs"
else
	sed 's/^/# /' "$tmp/log"
	echo "not ok 3 static build with pkg-config --static runs"
fi
