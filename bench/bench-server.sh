#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# make bench-server: pxcached against Debian's memcached, same memory (-m)
# and threads (-t), both on 127.0.0.1, driven by pxload with identical
# settings, alternately (A B A B):
#   (a) 50 connections, depth 1;  (b) 50 connections, depth 16;
#   (c) 1M keys, 100 B values, 90 % gets.
# Then RSS per item after loading 1M items into each, and the hit ratio
# of each replaying traces, each at an equal -m.  Prints one table, keeps the raw
# runs in build/bench/bench-server.csv and draws build/bench/bench-server.png.
# Knobs (environment) are listed below and in docs/bench-server.md.
set -u
OUT=${OUT:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NPROC=$(nproc)
HALF=$((NPROC / 2 > 0 ? NPROC / 2 : 1))
DUR=${PX_BENCH_DURATION:-4}        # measured seconds per run
WARM=${PX_BENCH_WARMUP:-1}         # unmeasured seconds before each run
ROUNDS=${PX_BENCH_ROUNDS:-2}       # A B rounds per scenario
THREADS=${PX_BENCH_THREADS:-$HALF} # server threads (-t), both servers
CLIENT_THREADS=${PX_BENCH_CLIENT_THREADS:-$HALF}
MEM=${PX_BENCH_MEM:-1024}          # MiB (-m), both servers
ITEMS=${PX_BENCH_ITEMS:-1000000}   # items loaded for RSS and (c)
# Traces replayed for the hit ratio, each as FILE:MIB (-m for both
# servers); a FILE without a directory is looked up in ../shared/traces.
TRACES=${PX_BENCH_TRACES:-sprite.keys:8 cloudPhysicsIO.keys:16 multi1.keys:2}
TRACE_DIR=${PX_BENCH_TRACE_DIR:-$ROOT/../shared/traces}
REPLAY_VALUE=${PX_BENCH_REPLAY_VALUE:-2000} # bytes stored per trace key
PXLOAD=$OUT/bench/pxload/pxload
REPLAY=$OUT/bench/replay/replay
PXCACHED=${PX_BENCH_PXCACHED:-$OUT/apps/pxcached/pxcached}
RES=$OUT/bench
CSV=$RES/bench-server.csv
TABLE=$RES/bench-server.txt
PNG=$RES/bench-server.png
# shellcheck source=pxload/servers.sh
. "$ROOT/bench/pxload/servers.sh"

NAMES=(memcached pxcached)
declare -A PID PORT
T0=$(date +%s)
STEP=0
read -r -a TRACE_LIST <<<"$TRACES"
STEPS=$((2 + 3 * ROUNDS * 2 + 2 * ${#TRACE_LIST[@]} + 1))

die() { echo "bench-server: $*" >&2; exit 1; }
step() {
	STEP=$((STEP + 1))
	printf '[bench-server %2d/%d %4ds] %s\n' "$STEP" "$STEPS" \
		$(($(date +%s) - T0)) "$*" >&2
}
stop_all() {
	local s
	for s in "${NAMES[@]}"; do
		[ -n "${PID[$s]:-}" ] && srv_stop "${PID[$s]}"
		PID[$s]=
	done
}
trap stop_all EXIT
trap 'exit 1' INT TERM

for b in "$PXLOAD" "$REPLAY" "$PXCACHED"; do
	[ -x "$b" ] || die "$b is not built (make)"
done
command -v memcached >/dev/null || die "memcached is not installed (make deps)"
trace_file() { # trace_file FILE:MIB -> the path
	local f=${1%:*}
	case $f in */*) echo "$f" ;; *) echo "$TRACE_DIR/$f" ;; esac
}
for t in "${TRACE_LIST[@]}"; do
	[ -f "$(trace_file "$t")" ] || die "no trace $(trace_file "$t")"
done
mkdir -p "$RES"

server_cmd() { # server_cmd NAME MEM
	if [ "$1" = memcached ]; then
		srv_memcached_cmd "$2" "$THREADS"
	else
		echo "$PXCACHED -l 127.0.0.1 -m $2 -t $THREADS"
	fi
}

start_servers() { # start_servers MEM
	local s
	for s in "${NAMES[@]}"; do
		# shellcheck disable=SC2046
		srv_start "$RES/$s.log" $(server_cmd "$s" "$1") ||
			die "$s did not start: $(tail -3 "$RES/$s.log")"
		PID[$s]=$SRV_PID PORT[$s]=$SRV_PORT
		echo "bench-server: $s pid $SRV_PID port $SRV_PORT:" \
			"$(server_cmd "$s" "$1")" >&2
	done
}

# pxload_run NAME ARGS...: one run; prints its RESULT line.
pxload_run() {
	local s=$1 out
	shift
	out=$("$PXLOAD" -q -p "${PORT[$s]}" -T "$CLIENT_THREADS" "$@")
	[ $? -le 2 ] || die "pxload failed against $s"
	echo "$out" | grep '^RESULT '
}

ratio() { # ratio A B [DECIMALS]
	awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN {
		if (b > 0) printf "%.*f", d, a / b; else print "n/a" }'
}

# --- 1. Load ITEMS items into each; RSS per item. ---------------------------
start_servers "$MEM"
declare -A RSS0 RSS ITEMSN
for s in "${NAMES[@]}"; do
	RSS0[$s]=$(srv_rss_kb "${PID[$s]}")
	step "loading $ITEMS items of 100 B into $s"
	r=$("$PXLOAD" -q -p "${PORT[$s]}" -T "$CLIENT_THREADS" -c 50 -d 16 \
		-k "$ITEMS" -V 100 --prefix k: --preload-only --progress |
		grep '^RESULT ')
	[ "$(res_field "$r" errors)" = 0 ] ||
		echo "bench-server: loading $s: $r" >&2
	RSS[$s]=$(srv_rss_kb "${PID[$s]}")
	ITEMSN[$s]=$(srv_stat "${PORT[$s]}" curr_items)
	echo "bench-server: $s rss ${RSS[$s]} KiB (${RSS0[$s]} before)," \
		"curr_items ${ITEMSN[$s]}" >&2
done

# --- 2. The scenarios, A B A B. ----------------------------------------------
SCEN=(a b c)
declare -A TITLE ARGS
TITLE[a]="(a) 50 conns, depth 1"
TITLE[b]="(b) 50 conns, depth 16"
TITLE[c]="(c) $ITEMS keys uniform, 100 B, 90% gets"
common=(-w "$WARM" -t "$DUR" -V 100 -r 9:1 -S 1 --prefix k:)
ARGS[a]="-c 50 -d 1 -k 100000 -z 0.99"
ARGS[b]="-c 50 -d 16 -k 100000 -z 0.99"
ARGS[c]="-c 50 -d 4 -k $ITEMS -u"
# Server CPU over a run (utime + stime), to tell a busy server from a
# starved one on a shared machine: busy cores, and ops per CPU-second.
TCK=$(getconf CLK_TCK)
srv_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
now_s() { date +%s.%N; }
echo "scenario,round,server,ops_per_s,p50_us,p99_us,p999_us,errors," \
	"cpu_cores,ops_per_cpu_s" | tr -d ' ' >"$CSV"
for sc in "${SCEN[@]}"; do
	for round in $(seq 1 "$ROUNDS"); do
		for s in "${NAMES[@]}"; do
			step "${TITLE[$sc]}: round $round, $s"
			c0=$(srv_cpu_ticks "${PID[$s]}") t0=$(now_s)
			# shellcheck disable=SC2086
			r=$(pxload_run "$s" ${ARGS[$sc]} "${common[@]}")
			c1=$(srv_cpu_ticks "${PID[$s]}") t1=$(now_s)
			ops=$(res_field "$r" ops_per_s)
			cores=$(awk -v c=$((c1 - c0)) -v k="$TCK" -v a="$t0" \
				-v b="$t1" 'BEGIN { printf "%.2f", c / k / (b - a) }')
			eff=$(ratio "$ops" "$cores" 0)
			echo "$sc,$round,$s,$ops,$(res_field "$r" p50_us)," \
				"$(res_field "$r" p99_us),$(res_field "$r" p999_us)," \
				"$(res_field "$r" errors),$cores,$eff" |
				tr -d ' ' >>"$CSV"
			echo "    $s: $ops ops/s, p99 $(res_field "$r" p99_us) us," \
				"errors $(res_field "$r" errors), server" \
				"$cores cores busy" >&2
		done
	done
done
stop_all

# --- 3. Hit ratio at equal, small memory, one trace at a time. -----------
declare -A HIT PER
REPERR=(0 0)
for t in "${TRACE_LIST[@]}"; do
	start_servers "${t##*:}"
	for i in 0 1; do
		s=${NAMES[$i]}
		step "replaying $t into $s (-m ${t##*:}, $REPLAY_VALUE B values)"
		r=$("$REPLAY" -q --progress -p "${PORT[$s]}" \
			-f "$(trace_file "$t")" -V "$REPLAY_VALUE" | grep '^RESULT ')
		HIT[$t,$s]=$(res_field "$r" hit_ratio)
		e=$(res_field "$r" errors)
		REPERR[i]=$((REPERR[i] + ${e:-1}))
		[ "$e" = 0 ] || echo "bench-server: replay on $s: $r" >&2
	done
	stop_all
done

# --- 4. The table and the plot. ---------------------------------------------
step "table and plot"
mean() { # mean SCENARIO SERVER COLUMN
	awk -F, -v sc="$1" -v s="$2" -v col="$3" '
		$1 == sc && $3 == s { t += $col; n++ }
		END { if (n) printf "%.1f", t / n; else print "nan" }' "$CSV"
}
errsum() { awk -F, -v s="$1" '$3 == s { t += $8 } END { print t + 0 }' "$CSV"; }
{
	echo "pxcached vs memcached $(memcached -V | cut -d' ' -f2):" \
		"-m $MEM -t $THREADS, pxload -T $CLIENT_THREADS," \
		"${DUR} s per run after ${WARM} s warm-up, $ROUNDS A/B rounds," \
		"$NPROC CPUs"
	printf '%-40s %12s %12s %6s %10s %10s %6s\n' scenario \
		"memcached/s" "pxcached/s" ratio "mc p99us" "px p99us" ratio
	for sc in "${SCEN[@]}"; do
		mo=$(mean "$sc" memcached 4) po=$(mean "$sc" pxcached 4)
		mp=$(mean "$sc" memcached 6) pp=$(mean "$sc" pxcached 6)
		printf '%-40s %12.0f %12.0f %6s %10s %10s %6s\n' \
			"${TITLE[$sc]}" "$mo" "$po" "$(ratio "$po" "$mo")" \
			"$mp" "$pp" "$(ratio "$pp" "$mp")"
	done
	for s in "${NAMES[@]}"; do
		PER[$s]=$(awk -v r="${RSS[$s]}" -v n="${ITEMSN[$s]:-0}" \
			'BEGIN { if (n > 0) printf "%.1f", r * 1024 / n;
				else print "nan" }')
	done
	printf '%-40s %12s %12s %6s   (RSS+hugetlb, items: %s / %s)\n' \
		"RSS per item, $ITEMS x 100 B (bytes)" "${PER[memcached]}" \
		"${PER[pxcached]}" "$(ratio "${PER[pxcached]}" "${PER[memcached]}")" \
		"${ITEMSN[memcached]:-?}" "${ITEMSN[pxcached]:-?}"
	for t in "${TRACE_LIST[@]}"; do
		mh=${HIT[$t,memcached]:-nan} ph=${HIT[$t,pxcached]:-nan}
		printf '%-40s %12s %12s %6s\n' \
			"hit ratio ${t%:*} -m ${t##*:}" "$mh" "$ph" \
			"$(ratio "${ph/nan/0}" "${mh/nan/0}" 3)"
	done
	for sc in "${SCEN[@]}"; do
		mc=$(mean "$sc" memcached 9) pc=$(mean "$sc" pxcached 9)
		me=$(mean "$sc" memcached 10) pe=$(mean "$sc" pxcached 10)
		printf '%-40s %12s %12s %6s   (server cores busy: %s / %s)\n' \
			"${TITLE[$sc]%%,*}: ops per CPU-s" "${me%.*}" "${pe%.*}" \
			"$(ratio "$pe" "$me")" "$mc" "$pc"
	done
	printf '%-40s %12s %12s\n' "errors (pxload runs + replay)" \
		"$(errsum memcached) + ${REPERR[0]}" \
		"$(errsum pxcached) + ${REPERR[1]}"
} >"$TABLE"
cat "$TABLE"

if command -v gnuplot >/dev/null; then
	dat=$RES/bench-server.dat
	for sc in "${SCEN[@]}"; do
		echo "$sc $(mean "$sc" memcached 4) $(mean "$sc" pxcached 4)" \
			"$(mean "$sc" memcached 6) $(mean "$sc" pxcached 6)"
	done >"$dat"
	gnuplot <<-GP || echo "bench-server: gnuplot failed" >&2
		set terminal pngcairo size 1000,450 noenhanced
		set output '$PNG'
		set multiplot layout 1,2 title 'pxcached vs memcached (-m $MEM -t $THREADS)'
		set style data histograms
		set style histogram clustered gap 1
		set style fill solid 0.8 border -1
		set grid ytics
		set yrange [0:*]
		set key below
		set title 'throughput (ops/s)'
		plot '$dat' using 2:xtic(1) title 'memcached', '' using 3 title 'pxcached'
		set title 'p99 latency (us)'
		plot '$dat' using 4:xtic(1) title 'memcached', '' using 5 title 'pxcached'
		unset multiplot
	GP
	[ -s "$PNG" ] && echo "bench-server: plot in $PNG, table in $TABLE," \
		"runs in $CSV"
else
	echo "bench-server: gnuplot not installed, no plot" >&2
fi
echo "bench-server: done in $(($(date +%s) - T0)) s" >&2
