#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Kconfig round trips, in a scratch copy of the configuration: every file
# in configs/ applies cleanly, savedefconfig of it applies back to the
# same .config, and a changed symbol reaches autoconf.h.
set -u
PYTHON=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export KCONFIG_CONFIG="$tmp/.config"
cfgs=(configs/*defconfig)
echo "TAP version 13"
echo "1..$(( ${#cfgs[@]} + 1 ))"
n=0
for c in "${cfgs[@]}"; do
	n=$((n + 1))
	if "$PYTHON" -m defconfig --kconfig Kconfig "$c" >"$tmp/log" 2>&1 &&
		! grep -qi warning "$tmp/log" &&
		cp "$KCONFIG_CONFIG" "$tmp/first" &&
		"$PYTHON" -m savedefconfig --kconfig Kconfig --out "$tmp/saved" \
			>>"$tmp/log" 2>&1 &&
		"$PYTHON" -m defconfig --kconfig Kconfig "$tmp/saved" \
			>>"$tmp/log" 2>&1 &&
		diff -u "$tmp/first" "$KCONFIG_CONFIG" >>"$tmp/log" 2>&1; then
		echo "ok $n $c applies and savedefconfig round-trips"
	else
		sed 's/^/# /' "$tmp/log"
		echo "not ok $n $c applies and savedefconfig round-trips"
	fi
done
n=$((n + 1))
"$PYTHON" -m defconfig --kconfig Kconfig configs/defconfig >/dev/null 2>&1
echo "CONFIG_PX_RING_SQ_ENTRIES=512" >>"$KCONFIG_CONFIG"
if "$PYTHON" -m olddefconfig Kconfig >/dev/null 2>&1 &&
	"$PYTHON" -m genconfig --header-path "$tmp/autoconf.h" Kconfig \
		>/dev/null 2>&1 &&
	grep -q "#define CONFIG_PX_RING_SQ_ENTRIES 512" "$tmp/autoconf.h"; then
	echo "ok $n a changed symbol reaches autoconf.h"
else
	echo "not ok $n a changed symbol reaches autoconf.h"
fi
