#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fork storm, as root, with the real daemon: 20,000 processes started and exited as fast as the
# machine allows (64 at a time). Every exit is counted in its group or counted as dropped
# (procscope_kernel_events_dropped_total{reason="ringbuf"}); procscoped's resident memory stays
# bounded; sampling goes on (a busy process's CPU keeps advancing in /api/v1/processes, /healthz
# answers 200). Prints the figures docs/PERFORMANCE.md quotes.
# Usage: fork_storm_test.sh <procscoped binary> [processes]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
BIN=$(realpath "${1:?usage: fork_storm_test.sh <procscoped binary> [processes]}")
N=${2:-20000}
RSS_LIMIT_KIB=$((96 * 1024))  # bound on procscoped's peak RSS during the storm
MAX_STALL=3                   # seconds without a new sampling pass
[[ $(id -u) -eq 0 ]] || missing "needs root (BPF)"
for t in curl jq perl; do command -v "$t" >/dev/null || missing "needs $t"; done

scratch procscope-storm
DPID=
before_cleanup() {
  if [[ -n "$DPID" ]] && kill -9 "$DPID" 2>/dev/null; then wait "$DPID" 2>/dev/null || true; fi
}

cpu_of() {
  curl -sf "http://127.0.0.1:$PORT/api/v1/processes" |
    jq -r --argjson p "$1" '[.processes[] | select(.pid == $p) | .cpu_seconds] | first // empty'
}

cp /bin/bash "$TMP/psstormbusy"
"$TMP/psstormbusy" -c 'while :; do :; done' &
BUSY=$!
PIDS+=("$BUSY")
cp "$(command -v perl)" "$TMP/psstorm"
cat >"$TMP/storm.pl" <<'EOF'
use POSIX ();
my ($n, $live) = (shift, 0);
for (1 .. $n) {
  my $pid = fork;
  die "fork: $!" unless defined $pid;
  POSIX::_exit(0) unless $pid;
  if (++$live >= 64) { wait; $live--; }
}
1 while wait > 0;
EOF
# storm RING N STALL: a procscoped with a RING-byte exit ring buffer, a storm of N processes;
# the daemon is stopped (SIGSTOP) for the storm's first STALL seconds, as a daemon too busy to
# drain would be.
storm() {
  local ring=$1 N=$2 stall=$3
  shift 3
  "$BIN" --listen=127.0.0.1:0 --quiet --journal_dir="$TMP/journal-$ring" --sample_interval=500ms \
      --pin_path= --ring_buffer_bytes="$ring" "$@" >"$TMP/out" 2>&1 &
  DPID=$!
  wait_ready "$TMP/out" "$DPID"
  for _ in $(seq 50); do [[ -n "$(cpu_of "$BUSY")" ]] && break; sleep 0.1; done
  [[ -n "$(cpu_of "$BUSY")" ]] || fail "busy process not listed"
  drop0=$(dropped)
  rss0=$(awk '/^VmRSS/ {print $2}' "/proc/$DPID/status")
  
  t0=$(date +%s.%N)
  "$TMP/psstorm" "$TMP/storm.pl" "$N" &
  STORM=$!
  PIDS+=("$STORM")
  if [[ $stall != 0 ]]; then
    kill -STOP "$DPID"
    sleep "$stall"
    kill -CONT "$DPID"
  fi
  # While it runs: the sampling loop's progress (the busy process's CPU as served), health, RSS.
  last_cpu=$(cpu_of "$BUSY")
  last_change=$(date +%s.%N)
  max_stall=0
  max_rss=$rss0
  while kill -0 "$STORM" 2>/dev/null; do
    sleep 0.25
    now=$(date +%s.%N)
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz" || true)
    [[ "$code" == 200 ]] || fail "/healthz answered '$code' during the storm"
    cpu=$(cpu_of "$BUSY")
    if [[ -n "$cpu" && "$cpu" != "$last_cpu" ]]; then
      last_cpu=$cpu
      last_change=$now
    fi
    max_stall=$(awk -v a="$max_stall" -v n="$now" -v l="$last_change" 'BEGIN {s = n - l; print (s > a ? s : a)}')
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$DPID/status")
    ((rss > max_rss)) && max_rss=$rss
  done
  wait "$STORM" || fail "the storm script failed"
  t1=$(date +%s.%N)
  storm_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
  
  # Every exit (the N children and the storm process itself) counted, or counted as dropped.
  want=$((N + 1))
  for _ in $(seq 100); do
    got=$(exits psstorm)
    drop=$(($(dropped) - drop0))
    ((got + drop >= want)) && break
    sleep 0.2
  done
  hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$DPID/status")
  rss_end=$(awk '/^VmRSS/ {print $2}' "/proc/$DPID/status")
  echo "fork storm: $N processes, ring buffer $ring bytes, daemon stopped ${stall} s, in $storm_s s; exits counted $got, dropped (ringbuf) $drop;" \
    "procscoped RSS $((rss0 / 1024)) MiB before, max $((max_rss / 1024)) MiB during" \
    "(VmHWM $((hwm / 1024)) MiB), $((rss_end / 1024)) MiB after; longest gap between sampling" \
    "passes seen ${max_stall} s"
  ((got <= want)) || fail "$got exits counted for $want processes: counted twice"
  ((got + drop >= want)) || fail "$got counted + $drop dropped < $want: exits lost silently"
  pass "every exit counted ($got) or counted as dropped ($drop) of $want"
  ((max_rss <= RSS_LIMIT_KIB && hwm <= RSS_LIMIT_KIB)) ||
    fail "procscoped RSS reached $((max_rss / 1024)) MiB (VmHWM $((hwm / 1024)) MiB), bound $((RSS_LIMIT_KIB / 1024)) MiB"
  pass "procscoped RSS bounded: max $((max_rss / 1024)) MiB (bound $((RSS_LIMIT_KIB / 1024)) MiB)"
  awk -v s="$max_stall" -v m="$MAX_STALL" 'BEGIN {exit !(s <= m)}' ||
    fail "sampling stalled for $max_stall s during the storm (bound $MAX_STALL s)"
  pass "sampling went on: longest gap ${max_stall} s (sample interval 0.5 s), /healthz 200 throughout"
  kill -TERM "$DPID"
  wait "$DPID" || fail "procscoped did not exit cleanly"
  DPID=
}

# The default ring buffer (4 MiB); and one of 16 KiB that the storm overflows while the daemon is
# stopped for 1 s: the drops are counted.
storm $((4 << 20)) "$N" 0
storm 16384 $((N / 2)) 1
((drop > 0)) || fail "a 16 KiB ring buffer did not overflow in a storm: the dropped path is untested"
echo "PASS"
