#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# pxload's defaults and limits are Kconfig symbols (bench/Kconfig), not
# #defines: no numeric default is left in bench/pxload, every
# CONFIG_PX_PXLOAD_* symbol has help text, and a changed value reaches
# the program.  The last check builds pxload in a scratch directory
# against an autoconf.h made from a scratch .config with two symbols
# changed, and reads them back from --help.
set -u
PYTHON=${PYTHON:-/usr/bin/python3}
OUT=${OUT:-build}
CC=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "TAP version 13"
echo "1..3"

left=$(grep -nE '^#define PXLOAD_(DEF|MAX|DRAIN|PRELOAD)[A-Z_]*[[:space:]]+[0-9"(]' \
	bench/pxload/*.h bench/pxload/*.c | grep -v CONFIG_PX_PXLOAD_)
if [ -z "$left" ]; then
	echo "ok 1 no numeric pxload default or limit is a #define"
else
	printf '%s\n' "$left" | sed 's/^/# /'
	echo "not ok 1 no numeric pxload default or limit is a #define"
fi

if "$PYTHON" - <<'EOF'
import sys
import kconfiglib
k = kconfiglib.Kconfig("Kconfig", warn=False)
syms = [s for s in k.unique_defined_syms if s.name.startswith("PX_PXLOAD_")]
bad = [s.name for s in syms if not any(n.help for n in s.nodes)]
print("# %d PX_PXLOAD_ symbols, without help: %s" % (len(syms), bad or "none"))
sys.exit(0 if len(syms) >= 10 and not bad else 1)
EOF
then
	echo "ok 2 every CONFIG_PX_PXLOAD_ symbol is defined with help text"
else
	echo "not ok 2 every CONFIG_PX_PXLOAD_ symbol is defined with help text"
fi

lib=$OUT/libpatinox.a
if [ ! -f "$lib" ]; then
	echo "ok 3 # SKIP $lib not built"
	exit 0
fi
export KCONFIG_CONFIG="$tmp/.config"
"$PYTHON" -m defconfig --kconfig Kconfig configs/defconfig >/dev/null 2>&1
printf 'CONFIG_PX_PXLOAD_CONNS=7\nCONFIG_PX_PXLOAD_GET_PERCENT=75\n' \
	>>"$KCONFIG_CONFIG"
numa=
san=
case $(basename "$OUT") in
san-*) san="-fsanitize=$(basename "$OUT" | sed 's/^san-//; s/-/,/g')" ;;
esac
grep -q '^CONFIG_PX_REGION_NUMA=y' "$KCONFIG_CONFIG" && numa=-lnuma
if "$PYTHON" -m olddefconfig Kconfig >/dev/null 2>&1 &&
	"$PYTHON" -m genconfig --header-path "$tmp/autoconf.h" Kconfig \
		>/dev/null 2>&1 &&
	$CC -std=gnu11 -O0 -pthread $san -D_GNU_SOURCE -Iinclude -Ibuild/include \
		-include "$tmp/autoconf.h" -o "$tmp/pxload" bench/pxload/*.c \
		apps/common/*.c "$lib" -luring -lxxhash -lurcu -lurcu-common \
		$numa -lm \
		2>"$tmp/cc.log" &&
	"$tmp/pxload" --help >"$tmp/help" 2>&1; then
	:
fi
if grep -q 'connections (default 7)' "$tmp/help" 2>/dev/null &&
	grep -q 'gets to sets (default 75:25)' "$tmp/help"; then
	echo "ok 3 changed Kconfig defaults reach pxload --help"
else
	sed 's/^/# /' "$tmp/cc.log" "$tmp/help" 2>/dev/null | head -20
	echo "not ok 3 changed Kconfig defaults reach pxload --help"
fi
