#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every C source and header passes `make check-style` (clang-format with
# the checked-in .clang-format).
echo "TAP version 13"
echo "1..1"
if out=$(make -s check-style 2>&1); then
	echo "ok 1 check-style"
else
	echo "$out" | head -40 | sed 's/^/# /'
	echo "not ok 1 check-style"
fi
