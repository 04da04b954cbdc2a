#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Real clients against pxcached: libmemcached's protocol checker
# (`memccapable -a`, every ascii test must pass) and its memccp/memccat,
# which store a file and read it back byte-identical.  Each test starts
# its own pxcached on a free 127.0.0.1 port and stops it by pid.
. "$(dirname "$0")/pxcached_server.sh"

echo "TAP version 13"
echo "1..4"
for t in memccapable memccp memccat; do
	command -v "$t" >/dev/null ||
		pxc_skip_all 4 "$t missing (package libmemcached-tools)"
done
pxc_require_server 4 -t 2 -m 32

memccapable -a -h 127.0.0.1 -p "$PXC_PORT" -t 10 >"$PXC_TMP/capable" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && grep -q "All tests passed" "$PXC_TMP/capable" &&
	! grep -qi "\[fail\]" "$PXC_TMP/capable"; then
	pxc_ok "memccapable -a: $(grep -c '\[pass\]' "$PXC_TMP/capable") ascii tests pass"
else
	sed 's/^/# /' "$PXC_TMP/capable"
	pxc_not_ok "memccapable -a: every ascii test passes"
fi

# A file with every byte value, larger than one receive buffer.
head -c 300000 /dev/urandom >"$PXC_TMP/blob.bin"
servers="127.0.0.1:$PXC_PORT"
(cd "$PXC_TMP" && memccp --servers="$servers" blob.bin) >"$PXC_TMP/cp" 2>&1
pxc_check "memccp stores a 300 KB binary file" [ $? -eq 0 ]
memccat --servers="$servers" blob.bin >"$PXC_TMP/back.bin" 2>"$PXC_TMP/cat"
# memccat ends what it prints with a newline (against memcached too).
pxc_check "memccat reads it back byte-identical" bash -c "
	head -c 300000 '$PXC_TMP/back.bin' | cmp -s - '$PXC_TMP/blob.bin' &&
	[ \$(stat -c %s '$PXC_TMP/back.bin') -eq 300001 ]"
pxc_stop TERM
pxc_check "the server exits 0 afterwards" [ $? -eq 0 ]
exit "$PXC_FAILED"
