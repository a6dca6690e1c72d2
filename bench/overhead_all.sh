#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Issue 14's benchmark: every overhead figure of docs/PERFORMANCE.md side by side, each against a
# baseline measured in the same run, with bpftrace's and prometheus-process-exporter's figures.
#   1. context switches: pinned `perf bench sched pipe`, PAIRS rounds; each round runs it with
#      nothing attached (the baseline), with an empty tp_btf/sched_switch program (the floor any
#      BPF accounting pays), with procscoped at its defaults, and with bpftrace doing per-thread
#      on-CPU accounting; the median of the per-round ratios against that round's baseline;
#   2. BPF cost per run (kernel.bpf_stats) of ps_sched_switch under that workload, beside the
#      empty program's (bpf_stats' own clock reads are most of it) and bpftrace's program's;
#   3. block I/O: BPF ns per I/O of getrq + issue + complete (+ dirtying) under fio, direct 4 KiB
#      random reads and buffered 64 KiB writes with fsync, beside empty programs on the same hooks;
#   4. the daemon (bench/daemon_bench.sh): CPU at 1,000 idle processes, RSS at 10,000 and after
#      they exit, scrape time at 10,000 in 500 groups, process-exporter beside it.
# Usage (root): bench/overhead_all.sh   (~20 minutes; BUILD_DIR=build)
#   knobs (env): PAIRS=21 LOOPS=100000 COST_ROUNDS=5 IO_ROUNDS=3 IO_SECONDS=5 DAEMON_BENCH=1
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
DAEMON=$BUILD/daemon/procscoped
COST=$BUILD/bench/procscope_bpf_cost
PAIRS=${PAIRS:-21}
LOOPS=${LOOPS:-100000}
COST_ROUNDS=${COST_ROUNDS:-5}
IO_ROUNDS=${IO_ROUNDS:-3}
IO_SECONDS=${IO_SECONDS:-5}
DAEMON_BENCH=${DAEMON_BENCH:-1}
[[ $(id -u) == 0 ]] || { echo "overhead_all.sh: run as root" >&2; exit 1; }
for b in "$DAEMON" "$COST"; do [[ -x $b ]] || { echo "overhead_all.sh: no $b (build first)" >&2; exit 1; }; done
for t in perf fio bpftrace bpftool clang-14 cc; do
  command -v "$t" >/dev/null || { echo "overhead_all.sh: $t is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
TMP=$(mktemp -d /var/tmp/procscope-bench.XXXXXX)
PIDS=()
MOUNTED_TRACEFS=0
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  sysctl -qw kernel.bpf_stats_enabled=0 2>/dev/null || true
  ((MOUNTED_TRACEFS)) && umount /sys/kernel/tracing 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "overhead_all.sh: interrupted" >&2; exit 130' INT TERM
# bpftrace attaches tracepoints through tracefs; a fresh machine may not have it mounted.
if ! mountpoint -q /sys/kernel/tracing; then
  mount -t tracefs nodev /sys/kernel/tracing && MOUNTED_TRACEFS=1
fi

median() { sort -g | awk '{a[NR]=$1} END {if (NR) print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.4f", b / a}'; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", a - b}'; }
met() { awk -v x="$1" -v t="$2" 'BEGIN{print (x <= t ? "met" : "**missed**")}'; }

# The floor programs (bench/floor), built against this kernel's vmlinux.h.
clang-14 -g -O2 -target bpf -D__TARGET_ARCH_x86 -I "$BUILD/bpf" -c bench/floor/floor.bpf.c -o "$TMP/floor.bpf.o"
cc -O2 -o "$TMP/floor" bench/floor/floor.c -lbpf
FLOOR() { "$TMP/floor" "$TMP/floor.bpf.o" "$@"; }

# bpftrace doing the on-CPU half of procscope's scheduler accounting, per thread.
cat >"$TMP/oncpu.bt" <<'EOF'
tracepoint:sched:sched_switch {
  if (@on[args->prev_pid]) {
    @cpu_ns[args->prev_pid] = sum(nsecs - @on[args->prev_pid]);
    delete(@on[args->prev_pid]);
  }
  @on[args->next_pid] = nsecs;
}
EOF
start_bpftrace() {
  taskset -c 1 bpftrace "$TMP/oncpu.bt" >"$TMP/bt.log" 2>&1 &
  BT=$!; PIDS+=("$BT")
  for _ in $(seq 100); do grep -q '^Attaching' "$TMP/bt.log" && break; sleep 0.1; done
  sleep 1
}
stop_bpftrace() { kill -INT "$BT" 2>/dev/null || true; wait "$BT" 2>/dev/null || true; }
start_daemon() { taskset -c 1 "$DAEMON" --quiet --pin_path= --journal_dir= --listen=127.0.0.1:0 >/dev/null 2>&1 & D=$!; PIDS+=("$D"); sleep 2; }
stop_daemon() { kill "$D" 2>/dev/null || true; wait "$D" 2>/dev/null || true; }
pipe_usec() { taskset -c 0 perf bench sched pipe -l "$LOOPS" 2>/dev/null | awk '/usecs\/op/ {print $1}'; }
PIPE_CMD="taskset -c 0 perf bench sched pipe -l 300000 >/dev/null 2>&1"

cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
echo "# procscope overhead benchmark (issue 14): $(date -u +%FT%TZ)"
echo "# machine: $cpu, $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo), kernel $(uname -r), $(systemd-detect-virt 2>/dev/null || echo unknown virt)"
echo "# procscope $(git log -1 --format='%h %s' | cut -c1-80); $(bpftrace --version 2>/dev/null | head -1)"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- 1. context switches -----------------------------------------------------------------------
echo
echo "## 1. taskset -c 0 perf bench sched pipe -l $LOOPS, $PAIRS rounds (usecs/op; ratios against the round's baseline)"
r_empty=(); r_ps=(); r_bt=()
for i in $(seq "$PAIRS"); do
  base=$(pipe_usec)
  empty=$(FLOOR floor_sched_switch -- "taskset -c 0 perf bench sched pipe -l $LOOPS 2>/dev/null" | awk '/usecs\/op/ {print $1}')
  start_daemon; ps=$(pipe_usec); stop_daemon
  start_bpftrace; bt=$(pipe_usec); stop_bpftrace
  r_empty+=("$(ratio "$base" "$empty")"); r_ps+=("$(ratio "$base" "$ps")"); r_bt+=("$(ratio "$base" "$bt")")
  echo "round $i: none $base, empty program $empty, procscoped $ps, bpftrace $bt"
done
P_EMPTY=$(printf '%s\n' "${r_empty[@]}" | median)
P_PS=$(printf '%s\n' "${r_ps[@]}" | median)
P_BT=$(printf '%s\n' "${r_bt[@]}" | median)
echo "median per-round ratio: empty program ${P_EMPTY}x, procscoped ${P_PS}x, bpftrace ${P_BT}x"

# --- 2. BPF cost of the scheduler hook -----------------------------------------------------------
echo
echo "## 2. ns per sched_switch run (kernel.bpf_stats), perf bench sched pipe -l 300000, $COST_ROUNDS rounds"
c_ps=(); c_empty=(); c_storage=(); c_bt=()
for i in $(seq "$COST_ROUNDS"); do
  read -r e s < <(FLOOR floor_sched_switch floor_sched_switch_storage -- "$PIPE_CMD" | awk '{v[$1] = $3} END {print v["floor_sched_switch"], v["floor_sched_switch_storage"]}')
  o=$("$COST" --profile_hz=0 -- "$PIPE_CMD" | awk -F'|' '$2 ~ / ps_sched_switch / {gsub(/ /, "", $6); print $6}')
  sysctl -qw kernel.bpf_stats_enabled=1
  start_bpftrace
  bash -c "$PIPE_CMD"
  b=$(bpftool prog show -j | jq -r '[.[] | select(.type == "tracepoint" and (.name | test("sched_switch")) and .run_cnt > 0)][0] | if . then "\(.run_time_ns / .run_cnt * 10 | floor / 10)" else "" end')
  stop_bpftrace
  sysctl -qw kernel.bpf_stats_enabled=0
  c_ps+=("$o"); c_empty+=("$e"); c_storage+=("$s"); c_bt+=("${b:-0}")
  echo "round $i: ps_sched_switch $o, empty $e, empty + task storage $s, bpftrace ${b:-?} ns/run"
done
S_PS=$(printf '%s\n' "${c_ps[@]}" | median); S_EMPTY=$(printf '%s\n' "${c_empty[@]}" | median)
S_STORAGE=$(printf '%s\n' "${c_storage[@]}" | median); S_BT=$(printf '%s\n' "${c_bt[@]}" | median)
S_NET=$(minus "$S_PS" "$S_EMPTY")
echo "median: ps_sched_switch $S_PS ns/run = $S_EMPTY (empty program: bpf_stats and the call) + $S_NET; the task-storage lookup alone $(minus "$S_STORAGE" "$S_EMPTY"); bpftrace $S_BT ns/run"

# --- 3. block I/O ----------------------------------------------------------------------------------
echo
echo "## 3. BPF ns per block I/O (kernel.bpf_stats), fio ${IO_SECONDS} s each, $IO_ROUNDS rounds"
FIO_DIRECT="fio --name=d --filename=$TMP/fio.direct --size=64M --direct=1 --rw=randread --bs=4k --ioengine=psync --runtime=$IO_SECONDS --time_based --output-format=terse >/dev/null 2>&1"
FIO_BUFFERED="fio --name=w --filename=$TMP/fio.buffered --size=64M --rw=write --bs=64k --ioengine=psync --runtime=$IO_SECONDS --time_based --fsync=16 --output-format=terse >/dev/null 2>&1"
# per_io FILE: sum of runs x ns/run of the block programs (and dirtying) / completions, and
# dirtying's share per dirtied page; FILE lines: "name runs ns".
per_io() { awk '{t += $2 * $3; if ($1 ~ /complete/) n = $2; if ($1 ~ /dirty/) {dn = $2; dt = $2 * $3}} END {printf "%.1f %.1f %d\n", n ? t / n : 0, dn ? dt / dn : 0, n}' "$1"; }
ours_table() { awk -F'|' '$2 ~ / ps_(block|dirty)/ {gsub(/ /, "", $2); gsub(/ /, "", $5); gsub(/ /, "", $6); if ($5 > 0) print $2, $5, $6}'; }
io_d=(); io_df=(); io_b=(); io_bf=(); pg_b=(); pg_bf=()
for i in $(seq "$IO_ROUNDS"); do
  for w in direct buffered; do
    cmd=$FIO_DIRECT; [[ $w == buffered ]] && cmd=$FIO_BUFFERED
    FLOOR floor_block_getrq floor_block_rq_issue floor_block_rq_complete floor_dirty_folio -- "$cmd" >"$TMP/floor.$w"
    "$COST" --profile_hz=0 -- "$cmd" | ours_table >"$TMP/ours.$w"
    rm -f "$TMP"/fio.*
    read -r fo fp fn < <(per_io "$TMP/floor.$w"); read -r oo op on < <(per_io "$TMP/ours.$w")
    echo "round $i $w: procscope $oo ns per I/O over $on I/Os (dirtying $op ns per page); empty programs $fo ns per I/O (dirtying $fp)"
    if [[ $w == direct ]]; then io_d+=("$oo"); io_df+=("$fo"); else io_b+=("$oo"); io_bf+=("$fo"); pg_b+=("$op"); pg_bf+=("$fp"); fi
  done
done
B_D=$(printf '%s\n' "${io_d[@]}" | median); B_DF=$(printf '%s\n' "${io_df[@]}" | median)
B_B=$(printf '%s\n' "${io_b[@]}" | median); B_BF=$(printf '%s\n' "${io_bf[@]}" | median)
B_PG=$(printf '%s\n' "${pg_b[@]}" | median); B_PGF=$(printf '%s\n' "${pg_bf[@]}" | median)
echo "median: direct read $B_D ns per I/O (floor $B_DF, net $(minus "$B_D" "$B_DF")); buffered write $B_B ns per I/O with its dirtying (floor $B_BF, net $(minus "$B_B" "$B_BF")); dirtying $B_PG ns per page (floor $B_PGF)"

# --- 4. the daemon -----------------------------------------------------------------------------------
if [[ $DAEMON_BENCH == 1 ]]; then
  echo
  echo "## 4. the daemon: bench/daemon_bench.sh (SCRAPES=10 SCRAPES_10K=10 CPU_ROUNDS=3 CPU_SECONDS=30 SHORT_N=500)"
  SCRAPES=10 SCRAPES_10K=10 CPU_ROUNDS=3 CPU_SECONDS=30 SHORT_N=500 BUILD_DIR=$BUILD \
    bench/daemon_bench.sh | tee "$TMP/daemon.out" | sed -n '/^## Results/,$p'
fi

# --- summary -----------------------------------------------------------------------------------------
echo
echo "## Summary (issue 14 targets)"
echo
echo "| measure | procscope | floor / baseline | bpftrace | target | |"
echo "|---|---:|---:|---:|---|---|"
echo "| perf bench sched pipe, median per-round ratio ($PAIRS rounds) | ${P_PS}x | empty program ${P_EMPTY}x | ${P_BT}x | ≤ 1.03x | $(met "$P_PS" 1.03) |"
echo "| sched_switch BPF ns/run, with bpf_stats | $S_PS | empty $S_EMPTY | $S_BT | | |"
echo "| sched_switch BPF ns/run, less the empty program | $S_NET | | $(minus "$S_BT" "$S_EMPTY") | ≤ 60 | $(met "$S_NET" 60) |"
echo "| block: direct 4 KiB read, BPF ns per I/O (getrq + issue + complete) | $B_D | empty $B_DF | | | |"
echo "| block: same, less the empty programs | $(minus "$B_D" "$B_DF") | | | ≤ 300 | $(met "$(minus "$B_D" "$B_DF")" 300) |"
echo "| block: buffered 64 KiB write, BPF ns per I/O with dirtying | $B_B | empty $B_BF | | | |"
echo "| block: dirtying, ns per page | $B_PG | empty $B_PGF | | | |"
if [[ $DAEMON_BENCH == 1 ]]; then
  echo
  echo "Daemon (process-exporter beside it): the table of section 4."
fi
