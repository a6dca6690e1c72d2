#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Two procscoped builds side by side (issue 14): the CPU each uses with N idle processes, both
# running at once against the same processes, so that the machine's noise is shared. Each round
# reads both daemons' on-CPU time over SECONDS, in ns (the sum of /proc/<pid>/task/*/schedstat:
# utime+stime come in 10 ms ticks, 6 % of a 0.4 % daemon over 40 s); prints every round, the
# medians and the ratio B / A. Both scrape-free by default (SCRAPE_EVERY=0): the pass alone.
# With SCRAPES=N, then N scrapes of each, interleaved: the median scrape time (curl's, the
# whole request) of each, bytes, and B / A. The idle processes fall into IDLE_GROUPS groups
# (comm psidle-0 .. psidle-<IDLE_GROUPS-1>; 1: one group, "psidle").
# Usage (root): bench/daemon_ab.sh OLD_PROCSCOPED NEW_PROCSCOPED
#   knobs (env): IDLE=1000 IDLE_GROUPS=1 ROUNDS=5 SECONDS_PER_ROUND=60 SETTLE=15 SCRAPE_EVERY=0
#   SCRAPES=0 PORT_A=19761 PORT_B=19762 EXTRA_FLAGS=   (passed to both daemons)
# e.g. the scrape at 10,000 processes in 500 groups, no CPU rounds:
#   IDLE=10000 IDLE_GROUPS=500 ROUNDS=0 SCRAPES=30 EXTRA_FLAGS=--max_series=40000 bench/daemon_ab.sh A B
# e.g. git worktree add /tmp/old HEAD~1 && cmake -S /tmp/old -B /tmp/old/build -G Ninja
#   -DCMAKE_BUILD_TYPE=RelWithDebInfo && ninja -C /tmp/old/build procscoped
#   bench/daemon_ab.sh /tmp/old/build/daemon/procscoped build/daemon/procscoped
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# == 2 ]] || { echo "usage: bench/daemon_ab.sh OLD_PROCSCOPED NEW_PROCSCOPED" >&2; exit 2; }
A=$1 B=$2
IDLE=${IDLE:-1000}
ROUNDS=${ROUNDS:-5}
SECS=${SECONDS_PER_ROUND:-60}
SETTLE=${SETTLE:-15}
SCRAPE_EVERY=${SCRAPE_EVERY:-0}
SCRAPES=${SCRAPES:-0}
IDLE_GROUPS=${IDLE_GROUPS:-1}
PORT_A=${PORT_A:-19761}
PORT_B=${PORT_B:-19762}
[[ $(id -u) == 0 ]] || { echo "daemon_ab.sh: run as root" >&2; exit 1; }
for bin in "$A" "$B"; do
  [[ -x $bin ]] || { echo "daemon_ab.sh: $bin is not an executable" >&2; exit 1; }
done

TMP=$(mktemp -d /var/tmp/procscope-daemon-ab.XXXXXX)
PIDS=()
cleanup() {
  trap - EXIT INT TERM
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "daemon_ab.sh: interrupted" >&2; exit 130' INT TERM
ulimit -u unlimited 2>/dev/null || true

cc -O2 -Wall -o "$TMP/psidle" bench/psidle.c
cpu_ns() { cat "/proc/$1"/task/*/schedstat | awk '{s += $1} END {printf "%d", s}'; }
median() { sort -g | awk '{v[NR] = $1} END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

"$TMP/psidle" "$IDLE" psidle "$IDLE_GROUPS" >"$TMP/idle.out" &
PIDS+=($!)
for _ in $(seq 100); do grep -q ready "$TMP/idle.out" 2>/dev/null && break; sleep 0.1; done
grep -q "ready $IDLE" "$TMP/idle.out" || { echo "daemon_ab.sh: psidle did not start $IDLE" >&2; exit 1; }

# shellcheck disable=SC2086  # EXTRA_FLAGS is a list of flags
"$A" --quiet --journal_dir= --pin_path= --listen="127.0.0.1:$PORT_A" ${EXTRA_FLAGS:-} 2>"$TMP/a.err" &
PID_A=$!
PIDS+=("$PID_A")
# shellcheck disable=SC2086
"$B" --quiet --journal_dir= --pin_path= --listen="127.0.0.1:$PORT_B" ${EXTRA_FLAGS:-} 2>"$TMP/b.err" &
PID_B=$!
PIDS+=("$PID_B")
sleep "$SETTLE"
for p in $PID_A $PID_B; do
  kill -0 "$p" 2>/dev/null || { echo "daemon_ab.sh: a daemon exited:" >&2; cat "$TMP"/*.err >&2; exit 1; }
done

echo "# daemon A/B: $(date -u +%FT%TZ), $(uname -r), $(nproc) CPUs, $IDLE idle in $IDLE_GROUPS groups, ${SECS} s rounds, scrape every ${SCRAPE_EVERY:-0} s (0: none)"
echo "# A: $A"
echo "# B: $B"
ra=() rb=()
for ((r = 1; r <= ROUNDS; r++)); do
  a0=$(cpu_ns "$PID_A"); b0=$(cpu_ns "$PID_B"); t0=$(date +%s.%N)
  if ((SCRAPE_EVERY > 0)); then
    for ((s = 0; s < SECS; s += SCRAPE_EVERY)); do
      curl -s -o /dev/null "http://127.0.0.1:$PORT_A/metrics" || true
      curl -s -o /dev/null "http://127.0.0.1:$PORT_B/metrics" || true
      sleep "$SCRAPE_EVERY"
    done
  else
    sleep "$SECS"
  fi
  a1=$(cpu_ns "$PID_A"); b1=$(cpu_ns "$PID_B"); t1=$(date +%s.%N)
  ra+=("$(awk -v a="$a0" -v b="$a1" -v t0="$t0" -v t1="$t1" 'BEGIN{printf "%.3f", 100 * (b - a) / 1e9 / (t1 - t0)}')")
  rb+=("$(awk -v a="$b0" -v b="$b1" -v t0="$t0" -v t1="$t1" 'BEGIN{printf "%.3f", 100 * (b - a) / 1e9 / (t1 - t0)}')")
  echo "round $r: A ${ra[-1]} %, B ${rb[-1]} % of one core (load average $(cut -d' ' -f1 /proc/loadavg))"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (a > 0) printf "%.3f", b / a; else print "n/a"}'; }
if ((ROUNDS > 0)); then
  ma=$(printf '%s\n' "${ra[@]}" | median)
  mb=$(printf '%s\n' "${rb[@]}" | median)
  echo "median: A $ma %, B $mb % of one core; B / A = $(ratio "$ma" "$mb")"
fi
if ((SCRAPES > 0)); then
  sa=() sb=()
  for ((i = 0; i < SCRAPES; i++)); do
    sa+=("$(curl -sf -o /dev/null -w '%{time_total} %{size_download}' "http://127.0.0.1:$PORT_A/metrics")")
    sb+=("$(curl -sf -o /dev/null -w '%{time_total} %{size_download}' "http://127.0.0.1:$PORT_B/metrics")")
  done
  msa=$(printf '%s\n' "${sa[@]}" | awk '{print $1 * 1000}' | median)
  msb=$(printf '%s\n' "${sb[@]}" | awk '{print $1 * 1000}' | median)
  echo "scrape ($SCRAPES each, interleaved): A median $msa ms ($(echo "${sa[-1]}" | cut -d' ' -f2) bytes), B median $msb ms ($(echo "${sb[-1]}" | cut -d' ' -f2) bytes); B / A = $(ratio "$msa" "$msb")"
fi
echo "VmRSS: A $(awk '/^VmRSS/{print $2, $3}' "/proc/$PID_A/status"), B $(awk '/^VmRSS/{print $2, $3}' "/proc/$PID_B/status")"
