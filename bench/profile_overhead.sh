#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What on-CPU profiling costs as a whole (docs/PERFORMANCE.md, "Profiling cost"): procscoped
# with --profile_hz=0, 19 and 99 in turn, each with N busy processes (frame-pointer busy loops,
# one binary) running; per configuration over WINDOW seconds: the daemon's own CPU (utime +
# stime from /proc/<pid>/stat, symbolisation and the profile store included), the sampler's BPF
# time (ps_profile, kernel.bpf_stats via --bpf_stats), and the daemon's RSS at the end.
# The profiling cost is each rate's figures minus those of --profile_hz=0, measured in the same
# run. Usage (root, after a build): bench/profile_overhead.sh   (N=100, WINDOW=60, WARMUP=10).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
DAEMON=$BUILD/daemon/procscoped
BUSY=$BUILD/bench/procscope_fp_busy
N=${N:-100}
WINDOW=${WINDOW:-60}
WARMUP=${WARMUP:-10}
[[ -x $DAEMON && -x $BUSY ]] || { echo "build first ($DAEMON, $BUSY)" >&2; exit 2; }
PORT=$((20000 + RANDOM % 20000))
DPID=
BUSY_PIDS=()
cleanup() {
  [[ -n $DPID ]] && kill "$DPID" 2>/dev/null
  for p in "${BUSY_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
bpf_profile_s() {
  curl -sf "http://127.0.0.1:$PORT/metrics" |
    awk '/^procscope_bpf_program_run_time_seconds_total\{program="ps_profile"/ {s += $2} END {printf "%.6f", s + 0}'
}
HZ=$(getconf CLK_TCK)
NCPU=$(nproc)

# The busy processes, at the lowest priority so that the daemon runs when it wants to.
for _ in $(seq "$N"); do
  nice -n 19 "$BUSY" $((3 * (WINDOW + WARMUP + 5) + 30)) >/dev/null 2>&1 &
  BUSY_PIDS+=($!)
done
echo "## $N busy processes ($BUSY), $NCPU CPUs, window ${WINDOW}s after ${WARMUP}s, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-14s %14s %14s %14s %10s\n' profile_hz "daemon %core" "BPF %core" "total %core" "RSS MiB"
declare -A D B R
for hz in 0 19 99; do
  "$DAEMON" --quiet --pin_path= --journal_dir= --bpf_stats --listen="127.0.0.1:$PORT" \
    --profile_hz="$hz" >/dev/null 2>&1 &
  DPID=$!
  sleep "$WARMUP"
  t0=$(ticks "$DPID"); b0=$(bpf_profile_s)
  sleep "$WINDOW"
  t1=$(ticks "$DPID"); b1=$(bpf_profile_s); rss=$(rss_kib "$DPID")
  kill "$DPID"; wait "$DPID" 2>/dev/null || true; DPID=
  D[$hz]=$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" -v w="$WINDOW" 'BEGIN {printf "%.3f", (b - a) / hz / w * 100}')
  B[$hz]=$(awk -v a="$b0" -v b="$b1" -v w="$WINDOW" 'BEGIN {printf "%.3f", (b - a) / w * 100}')
  R[$hz]=$(awk -v k="$rss" 'BEGIN {printf "%.1f", k / 1024}')
  printf '%-14s %14s %14s %14s %10s\n' "$hz" "${D[$hz]}" "${B[$hz]}" \
    "$(awk -v d="${D[$hz]}" -v b="${B[$hz]}" 'BEGIN {printf "%.3f", d + b}')" "${R[$hz]}"
done
for hz in 19 99; do
  echo "profiling at $hz Hz costs $(awk -v d="${D[$hz]}" -v b="${B[$hz]}" -v d0="${D[0]}" -v b0="${B[0]}" \
    'BEGIN {printf "%.3f", d + b - d0 - b0}') % of one core (target at 19 Hz: <= 0.5 %), RSS +$(awk -v r="${R[$hz]}" -v r0="${R[0]}" 'BEGIN {printf "%.1f", r - r0}') MiB (target <= 16 MiB)"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
