#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Overhead of the attached collector, measured against a baseline in the same run:
#   1. `taskset -c 0 perf bench sched pipe`, alternating runs without/with procscoped attached;
#      median usec/op each way and the median ratio;
#   2. BPF cost per program (kernel.bpf_stats run_time_ns / run_cnt) under the same workloads;
#   3. page faults (stress-ng --fault) and direct block I/O (fio) throughput without/with.
# Usage (root): bench/overhead.sh [ROUNDS]   (default 7; the pipe benchmark runs PIPE_ROUNDS=31
# shorter rounds, since single runs on a small VM swing by +-30 %). Needs a build in ./build.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-7}
PIPE_ROUNDS=${PIPE_ROUNDS:-31}
BUILD=${BUILD_DIR:-build}
DAEMON=$BUILD/daemon/procscoped
COST=$BUILD/bench/procscope_bpf_cost
LOOPS=${LOOPS:-100000}
TMP=$(mktemp -d /var/tmp/procscope-bench.XXXXXX)
trap 'kill $DPID 2>/dev/null || true; rm -rf "$TMP"' EXIT
DPID=
# The daemon runs on CPU 1 so that CPU 0 sees only the cost of the BPF hooks.
start_daemon() { taskset -c 1 "$DAEMON" --quiet --pin_path= >/dev/null 2>&1 & DPID=$!; sleep 1; }
stop_daemon() { kill "$DPID"; wait "$DPID" 2>/dev/null || true; DPID=; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

pipe_usec() { taskset -c 0 perf bench sched pipe -l "$LOOPS" 2>/dev/null | awk '/usecs\/op/ {print $1}'; }
fault_ops() {  # bogo ops/s of stress-ng's page-fault stressor, pinned
  taskset -c 0 stress-ng --fault 1 --timeout 5s --metrics-brief 2>&1 |
    awk '/fault / && $NF ~ /[0-9.]+/ {print $(NF-1)}' | tail -1
}
fio_iops() {
  fio --name=d --filename="$TMP/fio" --size=256M --direct=1 --rw=randread --bs=4k \
      --ioengine=psync --runtime=5 --time_based --output-format=terse 2>/dev/null |
    awk -F';' '{print $8}'
}

echo "## perf bench sched pipe (taskset -c 0, $LOOPS loops, $PIPE_ROUNDS alternating rounds)"
base=(); with=(); ratios=()
for i in $(seq "$PIPE_ROUNDS"); do
  b=$(pipe_usec); start_daemon; w=$(pipe_usec); stop_daemon
  base+=("$b"); with+=("$w"); ratios+=("$(awk -v b="$b" -v w="$w" 'BEGIN{printf "%.4f", w/b}')")
  echo "round $i: without ${b} us/op, with ${w} us/op"
done
mb=$(printf '%s\n' "${base[@]}" | median); mw=$(printf '%s\n' "${with[@]}" | median)
mr=$(printf '%s\n' "${ratios[@]}" | median)
minb=$(printf '%s\n' "${base[@]}" | sort -g | head -1); minw=$(printf '%s\n' "${with[@]}" | sort -g | head -1)
echo "median: without $mb us/op, with $mw us/op; median of per-round ratios ${mr}x (target <= 1.05x);"
echo "ratio of medians $(awk -v b="$mb" -v w="$mw" 'BEGIN{printf "%.4f", w/b}')x; ratio of minimums $(awk -v b="$minb" -v w="$minw" 'BEGIN{printf "%.4f", w/b}')x"

echo
echo "## page faults: stress-ng --fault (bogo ops/s, taskset -c 0, $ROUNDS alternating rounds)"
ratios=()
for i in $(seq "$ROUNDS"); do
  b=$(fault_ops); start_daemon; w=$(fault_ops); stop_daemon
  ratios+=("$(awk -v b="$b" -v w="$w" 'BEGIN{printf "%.4f", b/w}')")
  echo "round $i: without $b, with $w ops/s"
done
echo "median slowdown ratio (without/with throughput): $(printf '%s\n' "${ratios[@]}" | median)x"

echo
echo "## block I/O: fio 4 KiB O_DIRECT random reads, psync ($ROUNDS alternating rounds)"
fio --name=prep --filename="$TMP/fio" --size=256M --rw=write --bs=1M --output-format=terse >/dev/null
ratios=()
for i in $(seq "$ROUNDS"); do
  b=$(fio_iops); start_daemon; w=$(fio_iops); stop_daemon
  ratios+=("$(awk -v b="$b" -v w="$w" 'BEGIN{printf "%.4f", b/w}')")
  echo "round $i: without $b, with $w IOPS"
done
echo "median slowdown ratio (without/with IOPS): $(printf '%s\n' "${ratios[@]}" | median)x"

echo
echo "## BPF cost per program (kernel.bpf_stats), under sched pipe + stress-ng --fault + fio"
"$COST" -- "taskset -c 0 perf bench sched pipe -l $LOOPS >/dev/null 2>&1; \
  taskset -c 0 stress-ng --fault 1 --timeout 3s >/dev/null 2>&1; \
  fio --name=d --filename=$TMP/fio --size=256M --direct=1 --rw=randread --bs=4k --ioengine=psync \
      --runtime=3 --time_based >/dev/null 2>&1; \
  dd if=/dev/zero of=$TMP/buffered bs=1M count=64 conv=fsync status=none"
