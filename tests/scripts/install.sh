#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# `make install DESTDIR=... PREFIX=/usr` as a distribution package would
# run it: the library, headers, patinox.pc, pxcached, its man page, the
# API man pages and the systemd unit land where they belong; the pages
# render without warnings and cover every option and every exported
# function; `systemd-analyze verify` accepts the unit; the unit's command
# line really starts pxcached on 127.0.0.1; uninstall removes it all but
# the administrator's option file.  Prints TAP.
set -u
cd "$(dirname "$0")/../.." || exit 1
OUT=${OUT:-build}
tmp=$(mktemp -d)
D=$tmp/root
PID=
cleanup() {
	if [ -n "$PID" ]; then
		kill -TERM "$PID" 2>/dev/null
		wait "$PID" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
N=0
FAILED=0
ok() { N=$((N + 1)); echo "ok $N $*"; }
skip() { N=$((N + 1)); echo "ok $N $1 # SKIP $2"; }
notok() {
	N=$((N + 1))
	[ -s "$tmp/why" ] && sed 's/^/# /' "$tmp/why" | head -n 40
	echo "not ok $N $*"
	FAILED=$((FAILED + 1))
}
check() { # check NAME COMMAND...: ok when COMMAND succeeds
	local name=$1
	shift
	: >"$tmp/why"
	if "$@" >>"$tmp/why" 2>&1; then ok "$name"; else notok "$name"; fi
}
HAVE_PXCACHED=
[ -n "$(ls apps/pxcached/*.c 2>/dev/null)" ] && HAVE_PXCACHED=1
UNIT=$D/usr/lib/systemd/system/pxcached.service

echo "TAP version 13"
echo "1..8"

do_install() {
	make -s install DESTDIR="$D" PREFIX=/usr OUT="$OUT" || return 1
	local f missing=0
	for f in usr/lib/libpatinox.a usr/lib/libpatinox.so.0.1.0 \
		usr/lib/libpatinox.so usr/lib/libpatinox.so.0 \
		usr/lib/pkgconfig/patinox.pc usr/include/patinox/common.h \
		usr/include/patinox/error.h usr/share/man/man1/pxcached.1 \
		usr/share/man/man3/patinox.3 usr/share/man/man3/px_strerror.3 \
		usr/lib/systemd/system/pxcached.service etc/default/pxcached \
		${HAVE_PXCACHED:+usr/bin/pxcached}; do
		[ -e "$D/$f" ] || { echo "missing: $f"; missing=1; }
	done
	grep -q '^prefix=/usr$' "$D/usr/lib/pkgconfig/patinox.pc" ||
		{ echo "patinox.pc: prefix is not /usr"; missing=1; }
	if ! grep -q '^ExecStart=/usr/bin/pxcached ' "$UNIT" ||
		! grep -q '^EnvironmentFile=-/etc/default/pxcached$' "$UNIT"; then
		echo "unit paths are not the installation's"
		missing=1
	fi
	return $missing
}
check "make install DESTDIR= PREFIX=/usr lays out library, headers, patinox.pc, ${HAVE_PXCACHED:+pxcached, }man pages and the unit" \
	do_install

# Every exported function has a page that carries its contract.
man3_cover() {
	local h fn missing=0
	for h in include/patinox/*.h; do
		[ -e "$D/usr/share/man/man3/patinox_$(basename "$h" .h).3" ] ||
			{ echo "no page for $h"; missing=1; }
		while read -r fn; do
			[ -e "$D/usr/share/man/man3/$fn.3" ] ||
				{ echo "no page for $fn ($h)"; missing=1; }
		done < <(grep -A2 '^PX_API' "$h" | grep -v '^#' |
			sed -n 's/.*\<\(px_[a-z0-9_]*\)[[:space:]]*(.*/\1/p')
	done
	grep -qi 'describe an error code' \
		"$D/usr/share/man/man3/patinox_error.3" ||
		{ echo "patinox_error.3 lacks px_strerror's contract"; missing=1; }
	return $missing
}
check "a man3 page per header and per exported function" man3_cover

# groff warnings (bad requests, unknown escapes) make this fail.
render_pages() {
	local p out bad=0
	for p in "$D"/usr/share/man/man1/pxcached.1 \
		"$D"/usr/share/man/man3/patinox*.3; do
		out=$(MANWIDTH=80 MAN_KEEP_STDERR=1 man --warnings -l "$p" \
			2>&1 >/dev/null)
		[ -z "$out" ] || { echo "$p: $out"; bad=1; }
	done
	return $bad
}
if command -v man >/dev/null && command -v groff >/dev/null; then
	check "man pages render without groff warnings" render_pages
else
	skip "man pages render without groff warnings" "man or groff missing"
fi

# The man page documents every option that `pxcached --help` lists.
options_documented() {
	local opt missing=0
	for opt in $("$OUT"/apps/pxcached/pxcached --help |
		grep -o -- '--[a-z][a-z-]*' | sort -u); do
		grep -qF -- "${opt//-/\\-}" docs/man/pxcached.1 ||
			{ echo "pxcached.1 lacks $opt"; missing=1; }
	done
	return $missing
}
if [ -x "$OUT/apps/pxcached/pxcached" ]; then
	check "pxcached.1 documents every option of pxcached --help" \
		options_documented
else
	skip "pxcached.1 documents every option of pxcached --help" \
		"pxcached is not built yet"
fi

# systemd-analyze checks the installed unit; ExecStart and man: links are
# resolved inside DESTDIR.
ensure_systemd_analyze() {
	command -v systemd-analyze >/dev/null && return 0
	[ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null || return 1
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends systemd >/dev/null 2>&1
	command -v systemd-analyze >/dev/null
}
verify_unit() {
	local exe=$D/usr/bin/pxcached out
	[ -n "$HAVE_PXCACHED" ] || exe=$D/usr/bin/pxprobe
	mkdir -p "$tmp/verify"
	sed "s|^ExecStart=/usr/bin/pxcached|ExecStart=$exe|" "$UNIT" \
		>"$tmp/verify/pxcached.service"
	out=$(MANPATH=$D/usr/share/man systemd-analyze verify \
		"$tmp/verify/pxcached.service" 2>&1)
	local rc=$?
	echo "$out"
	[ "$rc" -eq 0 ] && [ -z "$out" ]
}
if ensure_systemd_analyze; then
	note=
	[ -n "$HAVE_PXCACHED" ] ||
		note=" (ExecStart: pxprobe until pxcached exists)"
	check "systemd-analyze verify accepts pxcached.service$note" \
		verify_unit
else
	skip "systemd-analyze verify accepts pxcached.service" \
		"systemd-analyze missing and not installable"
fi

unit_hardening() {
	local k missing=0
	for k in DynamicUser=yes NoNewPrivileges=yes ProtectSystem=strict \
		ProtectHome=yes PrivateDevices=yes CapabilityBoundingSet= \
		LimitMEMLOCK= LimitNOFILE= RestrictAddressFamilies= \
		SystemCallFilter=@system-service; do
		grep -q "^$k" "$UNIT" || { echo "unit lacks $k"; missing=1; }
	done
	if ! grep -q '^Environment=.*PXCACHED_LISTEN=127\.0\.0\.1' "$UNIT" ||
		! grep -q '^PXCACHED_LISTEN=127\.0\.0\.1$' \
			"$D/etc/default/pxcached"; then
		echo "default address is not 127.0.0.1"
		missing=1
	fi
	return $missing
}
check "unit: dynamic user, no privileges, read-only system, loopback" \
	unit_hardening

# The unit's ExecStart, expanded as systemd would with the installed
# option file, must start pxcached; only the port is changed (0, written
# to a file) so the test never needs 11211.
unit_command_serves() {
	local cmd i port
	cmd=$(sed -n 's/^ExecStart=//p' "$UNIT")
	cmd=${cmd/#\/usr\/bin\/pxcached/$OUT/apps/pxcached/pxcached}
	(
		set -a
		# shellcheck disable=SC1091 # the installed option file
		. "$D/etc/default/pxcached"
		export PXCACHED_PORT=0
		export PXCACHED_OPTIONS="-t 1 --port-file=$tmp/port"
		eval "exec $cmd"
	) >"$tmp/server.log" 2>&1 &
	PID=$!
	for i in $(seq 1 100); do
		[ -s "$tmp/port" ] && break
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$tmp/server.log"
	[ -s "$tmp/port" ] || return 1
	port=$(cat "$tmp/port")
	echo "port $port (loop $i)"
	exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
	printf 'version\r\n' >&3
	IFS= read -r -t 5 line <&3
	exec 3<&-
	echo "reply: $line"
	kill -TERM "$PID"
	wait "$PID"
	local rc=$?
	PID=
	echo "exit status $rc"
	grep -q 'listening on 127\.0\.0\.1' "$tmp/server.log" &&
		[[ $line == VERSION* ]] && [ "$rc" -eq 0 ]
}
if [ -x "$OUT/apps/pxcached/pxcached" ]; then
	check "the unit's command line starts pxcached on 127.0.0.1" \
		unit_command_serves
else
	skip "the unit's command line starts pxcached on 127.0.0.1" \
		"pxcached is not built yet"
fi

do_uninstall() {
	echo "PXCACHED_OPTIONS=-t 2" >>"$D/etc/default/pxcached"
	make -s install DESTDIR="$D" PREFIX=/usr OUT="$OUT" >/dev/null ||
		return 1
	grep -q '^PXCACHED_OPTIONS=-t 2' "$D/etc/default/pxcached" ||
		{ echo "reinstall replaced the edited option file"; return 1; }
	make -s uninstall DESTDIR="$D" PREFIX=/usr OUT="$OUT" || return 1
	local left
	left=$(cd "$D" && find . -type f ! -path ./etc/default/pxcached)
	[ -z "$left" ] || { echo "left behind: $left"; return 1; }
	[ -f "$D/etc/default/pxcached" ]
}
check "reinstall keeps the edited option file; uninstall removes the rest" \
	do_uninstall
[ "$FAILED" -eq 0 ]
