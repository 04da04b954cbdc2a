#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Builds the container of docker/Dockerfile with podman and runs it, the
# way ../shared/ENVIRONMENT.md says podman works on our machines: a
# Debian base image made locally with debootstrap and imported as
# localhost/debian:bookworm (kept for the next run), `podman build
# --isolation=chroot`, and runc with cgroupfs for the runs.  Checks that
#   - docker/seccomp-io_uring.json is what docker/seccomp-gen.py writes;
#   - with that profile rings work and the benchmark suite runs inside;
#   - under stock Docker's policy (the same profile without io_uring) a
#     ring user fails with the clear EPERM message, not a crash, and under
#     podman's own default policy (ENOSYS) nothing crashes either;
#   - the pxcached entry point serves, and minimal_defconfig builds.
# Prints TAP.  Installs podman, runc and debootstrap with apt-get when
# missing; skips everything (TAP SKIP) when podman cannot run here.
# Knobs: PX_DOCKER_REBUILD_BASE=1 makes a fresh base image,
# PX_DOCKER_BENCH=TARGETS runs only those bench targets in test 5.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
T0=$(date +%s)
BASE_IMAGE=localhost/debian:bookworm
BUILD_IMAGE=localhost/patinox-build:test
IMAGE=localhost/patinox:test
MIN_IMAGE=localhost/patinox:test-minimal
PROFILE=$ROOT/docker/seccomp-io_uring.json
PLAN=11
N=0
FAILED=0
SKIP_ALL=
NAME=pxtest-$$
OLD_BASE=
tmp=$(mktemp -d /var/tmp/patinox-docker.XXXXXX)

cleanup() {
	local c
	for c in "$NAME" "$NAME-bench" "$NAME-ring"; do
		podman rm -f -t 1 "$c" >/dev/null 2>&1
	done
	# Our images of earlier builds, left untagged by this one.
	podman image prune -f --filter label=org.patinox.image \
		>/dev/null 2>&1
	# The base image this run replaced, once nothing is built on it.
	[ -n "$OLD_BASE" ] && podman rmi "$OLD_BASE" >/dev/null 2>&1
	rm -rf "$tmp"
	echo "# docker/test.sh: $(($(date +%s) - T0)) s with the clean-up"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# TAP: t NAME FUNCTION runs FUNCTION and prints its result; everything
# is skipped once SKIP_ALL holds a reason.  A function returns 0 (ok),
# 1 (not ok) or 77 (skip, reason in $WHY).
t() {
	local name=$1 rc start
	shift
	N=$((N + 1))
	if [ -n "$SKIP_ALL" ]; then
		echo "ok $N $name # SKIP $SKIP_ALL"
		return 0
	fi
	WHY=
	start=$(date +%s)
	"$@" >"$tmp/step.log" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ]; then
		echo "ok $N $name"
	elif [ "$rc" -eq 77 ]; then
		echo "ok $N $name # SKIP $WHY"
	else
		tail -n 40 "$tmp/step.log" | sed 's/^/# /'
		echo "not ok $N $name"
		FAILED=$((FAILED + 1))
	fi
	echo "#   ($(($(date +%s) - start)) s)"
}

have_pkg() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null |
		grep -q "install ok installed"
}

# Installs podman and friends when missing.  Needs root and apt.
ensure_packages() {
	local p missing=()
	for p in podman runc debootstrap; do
		have_pkg "$p" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null || return 1
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
		{ apt-get update -qq && apt-get install -y -qq \
			--no-install-recommends "${missing[@]}"; }
}

# The Debian mirror this machine uses: the URIs of the first deb822
# stanza whose Suites name bookworm itself, else a sources.list line.
debian_mirror() {
	local m=
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		m=$(awk 'BEGIN { RS = ""; FS = "\n" }
			{ uri = ""; suite = 0
			  for (i = 1; i <= NF; i++) {
				if ($i ~ /^URIs:/) { split($i, a, " "); uri = a[2] }
				if ($i ~ /^Suites:/ && $i ~ /[ \t]bookworm([ \t]|$)/)
					suite = 1
			  }
			  if (uri != "" && suite) { print uri; exit } }' \
			/etc/apt/sources.list.d/debian.sources)
	fi
	if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
		m=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' \
			/etc/apt/sources.list)
	fi
	echo "${m:-http://deb.debian.org/debian}"
}

podman_run() {
	podman --runtime runc --cgroup-manager=cgroupfs run --rm \
		--network=host --ulimit nofile=1024:1024 \
		--ulimit nproc=1024:1024 "$@"
}

with_profile() { podman_run --security-opt seccomp="$PROFILE" "$@"; }
docker_default() {
	podman_run --security-opt seccomp="$tmp/docker-default.json" "$@"
}

in_image() {
	podman_run --entrypoint /bin/sh "$IMAGE" -c "$1" >/dev/null 2>&1
}

test_profile_generated() {
	python3 docker/seccomp-gen.py >"$tmp/gen.json" &&
		cmp "$tmp/gen.json" "$PROFILE" &&
		python3 - "$PROFILE" <<-'PY'
		import json, sys
		p = json.load(open(sys.argv[1]))
		allowed = {n for r in p["syscalls"] if r["action"] == "SCMP_ACT_ALLOW"
		           and not r["includes"] and not r["args"] for n in r["names"]}
		need = {"io_uring_setup", "io_uring_enter", "io_uring_register",
		        "read", "mmap", "epoll_wait", "futex"}
		assert p["defaultAction"] == "SCMP_ACT_ERRNO", p["defaultAction"]
		assert need <= allowed, need - allowed
		assert "mount" not in allowed and "bpf" not in allowed
		PY
}

test_base_image() {
	local mirror rootfs=$tmp/rootfs
	if [ "${PX_DOCKER_REBUILD_BASE:-0}" != 1 ] &&
		podman image exists "$BASE_IMAGE"; then
		echo "reusing $BASE_IMAGE"
		return 0
	fi
	OLD_BASE=$(podman image inspect -f '{{.Id}}' "$BASE_IMAGE" 2>/dev/null)
	mirror=$(debian_mirror)
	echo "debootstrap from $mirror"
	debootstrap --variant=minbase bookworm "$rootfs" "$mirror" ||
		return 1
	tar -C "$rootfs" -c . | podman import - "$BASE_IMAGE"
}

build_image() {
	local tag=$1 config=$2
	shift 2
	podman build --isolation=chroot -f docker/Dockerfile \
		--build-arg BASE="$BASE_IMAGE" --build-arg CONFIG="$config" \
		"$@" -t "$tag" .
}

# The build stage gets its own tag, so that pruning leaves its cached
# layers (the apt-get step) for the next run.
test_build() {
	build_image "$BUILD_IMAGE" defconfig --target build &&
		build_image "$IMAGE" defconfig
}

test_rings_allowed() {
	with_profile "$IMAGE" probe | tee "$tmp/probe.txt"
	grep -q '^io_uring: available' "$tmp/probe.txt"
}

# The profile adds io_uring and nothing else: what the default policy
# refuses without a capability (here unshare, which needs CAP_SYS_ADMIN)
# stays refused.  Without any filter the same command succeeds.
test_defaults_kept() {
	local out
	out=$(with_profile --entrypoint /bin/sh "$IMAGE" -c \
		'unshare --user --map-root-user true' 2>&1)
	echo "with the profile: $out"
	case $out in *"Operation not permitted"*) ;; *) return 1 ;; esac
	podman_run --security-opt seccomp=unconfined --entrypoint /bin/sh \
		"$IMAGE" -c 'unshare --user --map-root-user true'
}

trace_mount() {
	local d
	for d in /work/shared/traces "$ROOT/../shared/traces"; do
		[ -d "$d" ] && { echo "-v=$(cd "$d" && pwd):/traces:ro"; return; }
	done
}

# The default entry point: probe, then `make bench` with quick settings.
test_bench() {
	local rc mount
	mount=$(trace_mount)
	# shellcheck disable=SC2086 # PX_DOCKER_BENCH is a list of targets
	timeout -k 10 900 podman --runtime runc --cgroup-manager=cgroupfs \
		run --rm --name "$NAME-bench" --network=host \
		--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
		--security-opt seccomp="$PROFILE" ${mount:+"$mount"} \
		"$IMAGE" bench ${PX_DOCKER_BENCH:-} >"$tmp/bench.txt" 2>&1
	rc=$?
	cat "$tmp/bench.txt"
	[ "$rc" -eq 0 ] &&
		! grep -q '^make: \*\*\*' "$tmp/bench.txt" &&
		grep -qv '^#' "$tmp/bench.txt"
}

test_probe_eperm() {
	docker_default "$IMAGE" probe | tee "$tmp/probe.txt"
	grep -q '^io_uring: unavailable (Operation not permitted)' \
		"$tmp/probe.txt"
}

# A program that needs rings must exit with an error and the ring's EPERM
# text (px_strerror_in(PX_PART_RING, -EPERM)), not die by a signal: the
# server, and a ring-using benchmark through `make` (its recipe must fail
# with exit status 1, not 134 or 139).
test_ring_user_eperm() {
	local rc
	if ! in_image 'test -x build/apps/pxcached/pxcached'; then
		WHY="pxcached is not built in this tree yet"
		return 77
	fi
	timeout -k 10 60 podman --runtime runc --cgroup-manager=cgroupfs \
		run --rm --name "$NAME-ring" --network=host \
		--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
		--security-opt seccomp="$tmp/docker-default.json" \
		"$IMAGE" pxcached -p 0 -t 1 -m 16 -c 64 >"$tmp/ring.txt" 2>&1
	rc=$?
	cat "$tmp/ring.txt"
	echo "pxcached exit status $rc"
	[ "$rc" -ne 0 ] && [ "$rc" -lt 124 ] &&
		grep -q 'io_uring is blocked' "$tmp/ring.txt" || return 1
	in_image 'test -x build/bench/guard' || return 0
	docker_default "$IMAGE" bench bench-guard >"$tmp/ring.txt" 2>&1
	cat "$tmp/ring.txt"
	grep -q 'io_uring is blocked' "$tmp/ring.txt" &&
		grep -q 'bench-guard. Error 1$' "$tmp/ring.txt"
}

# podman's own default policy answers unknown calls with ENOSYS: the
# probe and pxcached must still fail cleanly and name io_uring.
test_podman_default() {
	local rc
	podman_run "$IMAGE" probe >"$tmp/probe.txt" 2>&1
	rc=$?
	cat "$tmp/probe.txt"
	[ "$rc" -eq 0 ] && grep -q '^io_uring: unavailable' "$tmp/probe.txt" ||
		return 1
	in_image 'test -x build/apps/pxcached/pxcached' || return 0
	timeout -k 10 60 podman --runtime runc --cgroup-manager=cgroupfs \
		run --rm --name "$NAME-ring" --network=host \
		--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
		"$IMAGE" pxcached -p 0 -t 1 -m 16 -c 64 >"$tmp/ring.txt" 2>&1
	rc=$?
	cat "$tmp/ring.txt"
	echo "exit status $rc"
	[ "$rc" -ne 0 ] && [ "$rc" -lt 124 ] && grep -q 'io_uring' "$tmp/ring.txt"
}

free_port() {
	local p
	while :; do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || break
	done
	echo "$p"
}

# memcached text protocol over bash's /dev/tcp; prints the reply.
mc_talk() {
	local port=$1 req=$2 line
	exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
	printf '%b' "$req" >&3
	while IFS= read -r -t 5 line <&3; do
		echo "${line%$'\r'}"
		case $line in END* | ERROR* | CLIENT_ERROR* | SERVER_ERROR*)
			break ;;
		esac
	done
	exec 3<&-
}

test_pxcached_entry() {
	local port rc
	if ! in_image 'test -x build/apps/pxcached/pxcached'; then
		WHY="pxcached is not built in this tree yet"
		return 77
	fi
	port=$(free_port)
	podman --runtime runc --cgroup-manager=cgroupfs run -d \
		--name "$NAME" --network=host --ulimit nofile=1024:1024 \
		--ulimit nproc=1024:1024 --security-opt seccomp="$PROFILE" \
		"$IMAGE" pxcached -p "$port" -t 1 -m 64 -c 256 || return 1
	for _ in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
		sleep 0.1
	done
	mc_talk "$port" 'set k 0 0 5\r\nhello\r\nget k\r\n' >"$tmp/mc.txt"
	cat "$tmp/mc.txt"
	podman stop -t 10 "$NAME" >/dev/null
	rc=$(podman wait "$NAME" 2>/dev/null || podman inspect \
		-f '{{.State.ExitCode}}' "$NAME")
	podman logs "$NAME" 2>&1 | tail -n 20
	echo "pxcached exit status $rc"
	grep -q '^VALUE k 0 5' "$tmp/mc.txt" && grep -q '^hello' "$tmp/mc.txt" &&
		[ "$rc" = 0 ]
}

test_minimal() {
	build_image "$MIN_IMAGE" minimal_defconfig || return 1
	with_profile "$MIN_IMAGE" probe | tee "$tmp/probe.txt"
	grep -q '^io_uring: available' "$tmp/probe.txt"
}

echo "TAP version 13"
echo "1..$PLAN"
if ! ensure_packages >"$tmp/apt.log" 2>&1; then
	SKIP_ALL="podman, runc or debootstrap missing and not installable"
elif ! podman info >"$tmp/info.log" 2>&1; then
	SKIP_ALL="podman cannot run here: $(tail -n 1 "$tmp/info.log")"
fi
# One run at a time: images and tags are shared.
exec 9>/var/tmp/patinox-docker-test.lock
flock -w 1200 9 || SKIP_ALL=${SKIP_ALL:-"another docker/test.sh holds the lock"}
python3 docker/seccomp-gen.py --docker-default >"$tmp/docker-default.json"

save_skip=$SKIP_ALL SKIP_ALL=
t "seccomp-io_uring.json is seccomp-gen.py's output, io_uring allowed" \
	test_profile_generated
SKIP_ALL=$save_skip
t "base image $BASE_IMAGE (debootstrap minbase, reused when present)" \
	test_base_image
[ -z "$SKIP_ALL" ] && ! podman image exists "$BASE_IMAGE" &&
	SKIP_ALL="no base image (debootstrap failed)"
t "image builds (podman build --isolation=chroot, defconfig)" test_build
[ -z "$SKIP_ALL" ] && ! podman image exists "$IMAGE" &&
	SKIP_ALL="the image did not build"
t "with seccomp-io_uring.json: pxprobe finds io_uring" test_rings_allowed
t "with seccomp-io_uring.json: unshare is still refused (default policy kept)" \
	test_defaults_kept
t "with seccomp-io_uring.json: the benchmark suite runs" test_bench
[ -f "$tmp/bench.txt" ] && sed 's/^/# /' "$tmp/bench.txt"
t "Docker's default policy: pxprobe says io_uring is refused (EPERM)" \
	test_probe_eperm
t "Docker's default policy: pxcached and bench-guard print the EPERM message, no crash" \
	test_ring_user_eperm
t "podman's default policy: pxprobe and pxcached fail cleanly, no crash" \
	test_podman_default
t "pxcached entry point serves with seccomp-io_uring.json" \
	test_pxcached_entry
t "minimal_defconfig image builds and finds io_uring" test_minimal
echo "# docker/test.sh: $(($(date +%s) - T0)) s"
[ "$FAILED" -eq 0 ]
