# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# Helpers shared by tests/scripts/pxload.sh, tests/scripts/nutcracker.sh
# and bench/bench-server.sh to start memcached-protocol servers on
# 127.0.0.1 on a free port and stop them by pid.  Source it; it defines
# functions and no globals but SRV_PID and SRV_PORT, set by srv_start.

# srv_port_open PORT: true when something accepts on 127.0.0.1:PORT.
srv_port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# srv_owns_port PID PORT: true when process PID holds a socket listening
# on 127.0.0.1:PORT or *:PORT.  Something answering on the port is not
# enough: another program may have taken it between our check that it
# was free and our server's bind, and then our server exits while the
# port still answers, and the test would run against a stranger.
srv_owns_port() {
	local hex inode
	hex=$(printf '%04X' "$2")
	for inode in $(awk -v p=":$hex" '$4 == "0A" && substr($2, 9) == p {
		print $10 }' /proc/net/tcp); do
		find "/proc/$1/fd" -lname "socket:\[$inode\]" 2>/dev/null |
			grep -q . && return 0
	done
	return 1
}

# srv_start LOG CMD ARGS...: runs CMD ARGS... -p PORT on random ports in
# 20000-60000 until one listens (a taken port makes the server exit).
# Sets SRV_PID and SRV_PORT; returns 1 when no attempt worked.
srv_start() {
	local log=$1 try=0 i port
	shift
	while [ $((try += 1)) -le 8 ]; do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		srv_port_open "$port" && continue
		"$@" -p "$port" >"$log" 2>&1 &
		SRV_PID=$!
		for i in $(seq 1 100); do
			if srv_port_open "$port" &&
				srv_owns_port "$SRV_PID" "$port"; then
				SRV_PORT=$port
				export SRV_PID SRV_PORT
				return 0
			fi
			kill -0 "$SRV_PID" 2>/dev/null || break
			sleep 0.05
		done
		srv_stop "$SRV_PID"
	done
	SRV_PID='' SRV_PORT=''
	export SRV_PID SRV_PORT
	return 1
}

# srv_stop PID: SIGTERM, then SIGKILL after 5 s; waits for it.
srv_stop() {
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		[ "$i" -lt 50 ] && sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# srv_memcached_cmd MEM THREADS: prints memcached's command (no -p).
srv_memcached_cmd() {
	local user=()
	[ "$(id -u)" -eq 0 ] && user=(-u root)
	echo memcached -l 127.0.0.1 -U 0 -m "$1" -t "$2" "${user[@]}"
}

# srv_stat PORT NAME: prints the value of `stats` field NAME.
srv_stat() {
	local line
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'stats\r\n' >&3
	while IFS= read -r -t 5 line <&3; do
		line=${line%$'\r'}
		[ "$line" = END ] && break
		case $line in "STAT $2 "*) echo "${line#"STAT $2 "}" ;; esac
	done
	exec 3<&- 3>&-
}

# srv_rss_kb PID: Rss plus hugetlb pages (which Rss leaves out), in KiB.
srv_rss_kb() {
	awk '/^(Rss|Shared_Hugetlb|Private_Hugetlb):/ { s += $2 }
		END { print s + 0 }' "/proc/$1/smaps_rollup"
}

# res_field LINE NAME: the value of NAME=... in a RESULT line.
res_field() {
	local f
	for f in $1; do
		case $f in "$2="*) echo "${f#*=}"; return 0 ;; esac
	done
	return 1
}
