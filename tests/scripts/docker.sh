#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The container test (docker/test.sh: podman build and runs, a few
# minutes) as part of `make check`, but only where asked for: with
# PX_DOCKER_TEST=1 or CI=true in the environment.  Otherwise, and in
# sanitized builds (the image builds its own unsanitized copy, so running
# it twice in CI proves nothing new), it prints one skipped test, so that
# a developer's `make check` stays fast.
set -u
cd "$(dirname "$0")/../.." || exit 1
OUT=${OUT:-build}
if [ "${PX_DOCKER_TEST:-0}" != 1 ] && [ "${CI:-}" != true ]; then
	echo "1..1"
	echo "ok 1 docker/test.sh # SKIP set PX_DOCKER_TEST=1 (or CI=true) to run it"
	exit 0
fi
if [ "$OUT" != build ] && [ "${PX_DOCKER_TEST:-0}" != 1 ]; then
	echo "1..1"
	echo "ok 1 docker/test.sh # SKIP runs once per CI, in the unsanitized build"
	exit 0
fi
exec docker/test.sh
