#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What off-CPU accounting, contention and off-CPU stack sampling cost on the context-switch path
# (docs/PERFORMANCE.md, "Off-CPU accounting and contention"):
#   1. `taskset -c 0 perf bench sched pipe`, each round: without procscoped, with procscoped as
#      shipped (all on), with them off (--offcpu=false --contention=false --offcpu_stack_ratio=0
#      --profile_hz=0); median usec/op and median per-round ratios against the baseline;
#   2. ps_sched_switch ns/run (kernel.bpf_stats) in each configuration, and one at a time.
# Usage (root): bench/offcpu_overhead.sh   (PIPE_ROUNDS=21, LOOPS=100000; needs a build).
set -euo pipefail
cd "$(dirname "$0")/.."
PIPE_ROUNDS=${PIPE_ROUNDS:-21}
BUILD=${BUILD_DIR:-build}
DAEMON=$BUILD/daemon/procscoped
COST=$BUILD/bench/procscope_bpf_cost
LOOPS=${LOOPS:-100000}
OFF="--offcpu=false --contention=false --offcpu_stack_ratio=0 --profile_hz=0"
DPID=
trap 'kill $DPID 2>/dev/null || true' EXIT
start_daemon() { taskset -c 1 "$DAEMON" --quiet --pin_path= "$@" >/dev/null 2>&1 & DPID=$!; sleep 1; }
stop_daemon() { kill "$DPID"; wait "$DPID" 2>/dev/null || true; DPID=; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
pipe_usec() { taskset -c 0 perf bench sched pipe -l "$LOOPS" 2>/dev/null | awk '/usecs\/op/ {print $1}'; }
ratio() { awk -v b="$1" -v w="$2" 'BEGIN{printf "%.4f", w/b}'; }

echo "## perf bench sched pipe (taskset -c 0, $LOOPS loops, $PIPE_ROUNDS rounds: without / on / off)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
base=(); on=(); off=(); r_on=(); r_off=()
for i in $(seq "$PIPE_ROUNDS"); do
  b=$(pipe_usec)
  start_daemon; w=$(pipe_usec); stop_daemon
  # shellcheck disable=SC2086
  start_daemon $OFF; o=$(pipe_usec); stop_daemon
  base+=("$b"); on+=("$w"); off+=("$o"); r_on+=("$(ratio "$b" "$w")"); r_off+=("$(ratio "$b" "$o")")
  echo "round $i: without $b, on $w, off $o us/op"
done
echo "median us/op: without $(printf '%s\n' "${base[@]}" | median), on $(printf '%s\n' "${on[@]}" | median), off $(printf '%s\n' "${off[@]}" | median)"
echo "median per-round ratio: on $(printf '%s\n' "${r_on[@]}" | median)x, off $(printf '%s\n' "${r_off[@]}" | median)x (target <= 1.05x)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "## ps_sched_switch ns/run (kernel.bpf_stats), taskset -c 0 perf bench sched pipe -l 300000"
for cfg in "--offcpu=1 --contention=1 --offcpu_stack_ratio=16" \
           "--offcpu=0 --contention=0 --offcpu_stack_ratio=0" \
           "--offcpu=1 --contention=0 --offcpu_stack_ratio=0" \
           "--offcpu=0 --contention=1 --offcpu_stack_ratio=0" \
           "--offcpu=1 --contention=0 --offcpu_stack_ratio=16"; do
  # shellcheck disable=SC2086
  ns=$("$COST" $cfg --profile_hz=0 -- "taskset -c 0 perf bench sched pipe -l 300000 >/dev/null 2>&1" |
       awk -F'|' '$2 ~ /ps_sched_switch/ {gsub(/ /, "", $6); print $6}')
  echo "$cfg: $ns ns/run"
done
