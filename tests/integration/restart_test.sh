#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Restart and upgrade lose nothing, as root, with the real daemon and a real bpffs:
#   1. procscoped is killed with SIGKILL; 300 short processes and one SIGSEGV happen while it is
#      down; the next procscoped adopts the pinned BPF state and has the 300 exits in the group
#      totals, the SIGSEGV in /api/v1/events, the exits from before the kill once (journal), and a
#      busy process's CPU continued (monotonic, equal to the kernel's, not doubled).
#   2. An outage that overflows a small ring buffer: every exit is counted or counted as dropped.
#   3. A layout mismatch (another version written into the pinned meta): it starts fresh, says so,
#      detaches the old programs and counts their queued exits as dropped, nothing twice.
#   4. --unpin removes the pinned objects (refused while a daemon runs) and the programs detach.
# Usage: restart_test.sh <procscoped binary>
set -euo pipefail
source "$(dirname "$0")/lib.sh"
BIN=$(realpath "${1:?usage: restart_test.sh <procscoped binary>}")
[[ $(id -u) -eq 0 ]] || missing "needs root (BPF, bpffs)"
for t in curl jq bpftool; do command -v "$t" >/dev/null || missing "needs $t"; done

scratch procscope-restart
P=/sys/fs/bpf/procscope-test-$$
P2=/sys/fs/bpf/procscope-test-small-$$
DPID=
before_cleanup() {
  if [[ -n "$DPID" ]] && kill -9 "$DPID" 2>/dev/null; then wait "$DPID" 2>/dev/null || true; fi
  "$BIN" --unpin --pin_path="$P" >/dev/null 2>&1 || true
  "$BIN" --unpin --pin_path="$P2" >/dev/null 2>&1 || true
}

# start PIN_PATH [flags...]: a procscoped on a free port; sets DPID and PORT.
start() {
  local pin=$1
  shift
  : >"$TMP/out"
  "$BIN" --listen=127.0.0.1:0 --quiet --journal_dir="$TMP/journal" --sample_interval=200ms \
    --pin_path="$pin" "$@" >"$TMP/out" 2>&1 &
  DPID=$!
  wait_ready "$TMP/out" "$DPID"
}
# wait_exits GROUP N: until the group has N exits (10 s).
wait_exits() {
  for _ in $(seq 100); do [[ $(exits "$1") -ge $2 ]] && return 0; sleep 0.1; done
  return 1
}
# cpu_of PID: the CPU seconds procscoped reports for PID.
cpu_of() {
  curl -sf "http://127.0.0.1:$PORT/api/v1/processes" |
    jq -r --argjson p "$1" '[.processes[] | select(.pid == $p) | .cpu_seconds] | first // empty'
}
# kernel_cpu PID: the kernel's on-CPU seconds of PID (every thread), /proc/PID/schedstat.
kernel_cpu() { awk '{printf "%.3f", $1 / 1e9}' "/proc/$1/schedstat"; }
run_n() { local bin=$1 n=$2; for _ in $(seq "$n"); do "$bin"; done; }

cp /bin/true "$TMP/psrs300"
cp /bin/true "$TMP/psrsbefore"
cp /bin/true "$TMP/psrsoverflow"
cp /bin/true "$TMP/psrsmismatch"
cp /bin/sleep "$TMP/psrssegv"
cp /bin/bash "$TMP/psrsbusy"
"$TMP/psrsbusy" -c 'while :; do :; done' &
BUSY=$!
PIDS+=("$BUSY")

# --- 1. SIGKILL, 300 exits and a SIGSEGV while down, adoption -----------------------------------
start "$P"
grep -q "pinned BPF state in $P (layout" "$TMP/out" || { cat "$TMP/out"; fail "no pinning line"; }
[[ -e "$P/meta" && -e "$P/events" && -e "$P/link_sched_switch" ]] || fail "nothing pinned in $P"
for _ in $(seq 50); do [[ -n "$(cpu_of "$BUSY")" ]] && break; sleep 0.1; done
cpu_before=$(cpu_of "$BUSY")
[[ -n "$cpu_before" ]] || fail "busy process not listed"
OLD_PROG=$(bpftool -j prog show pinned "$P/prog_sched_switch" | jq -r .id)
# Killed right after it counted these (before its once-a-second journal flush, most likely):
# what it had not flushed stays in the ring buffer for the next one.
run_n "$TMP/psrsbefore" 20
wait_exits psrsbefore 20 || fail "20 exits before the kill: $(exits psrsbefore)"
kill -9 "$DPID"
wait "$DPID" 2>/dev/null || true
t_kill=$(date +%s.%N)
run_n "$TMP/psrs300" 300
"$TMP/psrssegv" 30 &
SEGV=$!
sleep 0.2
kill -SEGV "$SEGV"
wait "$SEGV" 2>/dev/null || true
pass "procscoped killed with SIGKILL; 300 exits and a SIGSEGV while it was down"

start "$P"
grep -q "adopted pinned BPF state from $P (layout [0-9]*, [0-9]* processes)" "$TMP/out" ||
  { cat "$TMP/out"; fail "no adoption line"; }
pass "$(grep -o 'adopted pinned.*' "$TMP/out")"
# The adopting daemon's own sampler fills the pinned stack maps, counts and epoch (.bss) that the
# pinned scheduler hook uses: one set of stacks for DrainStacks.
want=$(for m in stacks0 stacks1 stack_counts bss; do bpftool -j map show pinned "$P/$m" | jq .id; done | sort -n)
got=""
for id in $(bpftool -j prog show | jq -r '.[] | select(.name == "ps_profile") | .id'); do
  maps=$(bpftool -j prog show id "$id" | jq '.map_ids[]' | sort -n)
  [[ -z "$(comm -23 <(echo "$want") <(echo "$maps"))" ]] && got=$id
done
[[ -n "$got" ]] || fail "no ps_profile program uses the pinned stack maps and .bss ($(echo $want))"
pass "the adopting daemon's sampler (prog $got) uses the pinned stacks0/1, stack_counts and .bss"
wait_exits psrs300 300 || fail "exits of psrs300 after the restart: $(exits psrs300), want 300"
sleep 0.5
[[ $(exits psrs300) -eq 300 ]] || fail "psrs300 exits $(exits psrs300), want exactly 300"
pass "the 300 exits while down are in procscope_group_exits_total{group=\"psrs300\"}"
if [[ $(exits psrsbefore) -ne 20 ]]; then
  # Which ones twice (or missing): pid and start of each psrsbefore exit the daemon holds.
  curl -sf "http://127.0.0.1:$PORT/api/v1/events?limit=1000" |
    jq -c '[.events[] | select(.comm == "psrsbefore") | [.pid, .start_time_unix_ns]] | sort' || true
  grep -i journal "$TMP/out" || true
  fail "psrsbefore exits $(exits psrsbefore), want 20 (not 0, not 40)"
fi
pass "the 20 exits just before the kill are counted once (journal or ring buffer), not twice"
curl -sf "http://127.0.0.1:$PORT/api/v1/events?limit=1000" |
  jq -e --argjson p "$SEGV" '[.events[] | select(.pid == $p and .comm == "psrssegv" and
    .signal_name == "SIGSEGV")] | length == 1' >/dev/null || fail "the SIGSEGV is not in /api/v1/events"
pass "the SIGSEGV while down is in /api/v1/events"
for _ in $(seq 50); do [[ -n "$(cpu_of "$BUSY")" ]] && break; sleep 0.1; done
cpu_after=$(cpu_of "$BUSY")
kcpu=$(kernel_cpu "$BUSY")
t_now=$(date +%s.%N)
awk -v b="$cpu_before" -v a="$cpu_after" -v k="$kcpu" -v t0="$t_kill" -v t1="$t_now" \
  'BEGIN {exit !(a >= b && a <= k + 0.5 && a >= k - 1.5 && a - b <= t1 - t0 + 1.5)}' ||
  fail "busy CPU before $cpu_before s, after $cpu_after s, kernel $kcpu s: not continued"
pass "busy process CPU continued across the restart: $cpu_before s -> $cpu_after s (kernel $kcpu s)"

# --- 3. layout mismatch -------------------------------------------------------------------------
kill -TERM "$DPID"
wait "$DPID" || fail "procscoped did not exit cleanly on SIGTERM"
[[ -e "$P/meta" ]] || fail "SIGTERM removed the pins (an upgrade needs them)"
# ps_meta {layout = 999, pad, hash = 1}
bpftool map update pinned "$P/meta" key 0 0 0 0 value 0xe7 0x03 0 0 0 0 0 0 1 0 0 0 0 0 0 0
run_n "$TMP/psrsmismatch" 50
start "$P"
grep -q "pinned BPF state in $P not adopted (the pinned state has layout 999" "$TMP/out" ||
  { cat "$TMP/out"; fail "no mismatch line"; }
grep -q "starting fresh" "$TMP/out" || fail "mismatch does not say it starts fresh"
queued=$(sed -n 's/.*starting fresh; \([0-9]*\) queued exit events.*/\1/p' "$TMP/out")
[[ "$queued" -ge 50 ]] || fail "queued exits of the old programs: '$queued', want >= 50"
pass "$(grep -o 'pinned BPF state in.*not adopted.*' "$TMP/out")"
[[ $(dropped) -ge "$queued" ]] || fail "dropped $(dropped) < queued $queued"
bpftool prog show id "$OLD_PROG" >/dev/null 2>&1 && fail "old program $OLD_PROG still loaded"
pass "the old programs are detached (prog id $OLD_PROG gone), their queued exits counted as dropped"
sleep 1
[[ $(exits psrs300) -eq 300 ]] || fail "after the mismatch psrs300 exits $(exits psrs300), want 300"
[[ $(exits psrsmismatch) -eq 0 ]] || fail "psrsmismatch exits $(exits psrsmismatch): counted and dropped?"
cpu_fresh=$(cpu_of "$BUSY")
kcpu=$(kernel_cpu "$BUSY")
awk -v a="$cpu_fresh" -v b="$cpu_after" -v k="$kcpu" 'BEGIN {exit !(a >= b && a <= k + 0.5)}' ||
  fail "busy CPU after the fresh start $cpu_fresh s (before $cpu_after, kernel $kcpu)"
pass "fresh start counts nothing twice: 300 exits stay 300, busy CPU $cpu_fresh s (kernel $kcpu s)"

# --- 4. --unpin ---------------------------------------------------------------------------------
NEW_PROG=$(bpftool -j prog show pinned "$P/prog_sched_switch" | jq -r .id)
if "$BIN" --unpin --pin_path="$P" 2>"$TMP/unpin.err"; then fail "--unpin succeeded under a running daemon"; fi
grep -q "in use by another running procscoped" "$TMP/unpin.err" || { cat "$TMP/unpin.err"; fail "--unpin error"; }
kill -TERM "$DPID"
wait "$DPID" || fail "procscoped did not exit cleanly"
DPID=
bpftool prog show id "$NEW_PROG" >/dev/null 2>&1 || fail "programs not pinned after SIGTERM"
# Every pin: the maps (13 since issue 10: + stacks0/1, stack_counts, profile_notify, bss), a link
# and a program per hook (7 hooks), meta.
npins=$(ls -A "$P" | wc -l)
((npins >= 28)) || fail "only $npins objects pinned in $P: $(ls -A "$P")"
out=$("$BIN" --unpin --pin_path="$P" 2>&1) || fail "--unpin: $out"
[[ "$out" == "procscoped: removed $npins pinned objects from $P" ]] || fail "--unpin said: $out"
[[ ! -e "$P" ]] || fail "$P still there after --unpin"
for _ in $(seq 50); do bpftool prog show id "$NEW_PROG" >/dev/null 2>&1 || break; sleep 0.1; done
bpftool prog show id "$NEW_PROG" >/dev/null 2>&1 && fail "program $NEW_PROG still loaded after --unpin"
out=$("$BIN" --unpin --pin_path="$P" 2>&1) || fail "second --unpin: $out"
pass "--unpin: $out (programs detached); again: nothing to remove"

# --- 2. an outage that overflows a small ring buffer --------------------------------------------
start "$P2" --ring_buffer_bytes=16384
sleep 0.5
drop0=$(dropped)
kill -9 "$DPID"
wait "$DPID" 2>/dev/null || true
run_n "$TMP/psrsoverflow" 400
start "$P2" --ring_buffer_bytes=16384
grep -q "adopted pinned BPF state from $P2" "$TMP/out" || { cat "$TMP/out"; fail "no adoption"; }
sleep 1
got=$(exits psrsoverflow)
drop=$(($(dropped) - drop0))
[[ $got -lt 400 && $drop -gt 0 ]] || fail "16 KiB ring buffer: $got exits counted, $drop dropped: no overflow?"
[[ $((got + drop)) -ge 400 ]] || fail "$got counted + $drop dropped < 400: exits lost silently"
pass "overflowing outage: $got of 400 exits counted, $drop counted as dropped (reason=ringbuf)"
kill -TERM "$DPID"
wait "$DPID" || true
DPID=
echo "PASS"
