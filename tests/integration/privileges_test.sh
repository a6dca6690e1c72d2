#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Least privilege, on the real daemon started as root (issue 11):
#   - once loaded, every thread of procscoped holds exactly the run set documented in
#     docs/deploy.md ("Run set:" line) in CapEff/CapPrm and CapBnd, nothing inheritable or
#     ambient, and NoNewPrivs 1;
#   - and it still does its job: another user's process with its user name and exe (API and
#     /metrics), processes started after the drop (the task iterator), an exit event and the
#     journal (the ring buffer), --bpf_stats run counts, a SIGHUP reload;
#   - with the systemd unit's start set (uid 65534, ambient caps) and the DaemonSet's (uid 0, only
#     capabilities.add), neither with CAP_SETPCAP: the same run set in CapEff and the same
#     features, the bounding set left at the start set (no CAP_SETPCAP to shrink it);
#   - the measurement: with --keep_capabilities=none everything above works but the exe of other
#     users' processes, which is why the run set is CAP_SYS_PTRACE.
# Usage: privileges_test.sh <procscoped binary>
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$HERE/lib.sh"
PROCSCOPED=$(realpath "$1")
[[ $(id -u) -eq 0 ]] || missing "needs root"
for t in setpriv curl jq; do command -v "$t" >/dev/null || missing "needs $t (scripts/setup.sh)"; done
scratch procscope-priv
chmod 0755 "$TMP"
cp "$PROCSCOPED" "$TMP/procscoped"  # reachable by uid 65534 wherever the checkout is
chmod 0755 "$TMP/procscoped"

# The documented run set, as a CapEff mask.
run_set=$(sed -n 's/^Run set: *//p' "$ROOT/docs/deploy.md" | head -1 | tr -d '`')
[[ -n "$run_set" ]] || fail "no 'Run set:' line in docs/deploy.md"
# Capability numbers (linux/capability.h).
CAPS=(chown dac_override dac_read_search fowner fsetid kill setgid setuid setpcap linux_immutable
      net_bind_service net_broadcast net_admin net_raw ipc_lock ipc_owner sys_module sys_rawio
      sys_chroot sys_ptrace sys_pacct sys_admin sys_boot sys_nice sys_resource sys_time
      sys_tty_config mknod lease audit_write audit_control setfcap mac_override mac_admin syslog
      wake_alarm block_suspend audit_read perfmon bpf checkpoint_restore)
mask() { # mask "CAP_A CAP_B" -> 16 hex digits, as /proc/<pid>/status prints CapEff
  local m=0 c i found
  for c in $(echo "$1" | tr ',' ' '); do
    c=${c,,}; c=${c#cap_}; found=
    for i in "${!CAPS[@]}"; do [[ ${CAPS[$i]} == "$c" ]] && { m=$((m | (1 << i))); found=1; }; done
    [[ -n "$found" ]] || fail "unknown capability $c"
  done
  printf '%016x' "$m"
}
RUN=$(mask "$run_set")
START=$(mask "$(sed -n 's/^AmbientCapabilities=//p' "$ROOT/deploy/systemd/procscoped.service")")
field() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status"; }

printf 'include=^ps-priv\nexclude=^ps-priv-hidden$\nsample_interval=200ms\n' >"$TMP/procscoped.conf"
chmod 0644 "$TMP/procscoped.conf"
# start NAME [wrapper...] -- [flags...]: sets DPID, PORT.
start() {
  local name=$1; shift
  local wrap=()
  while [[ $1 != -- ]]; do wrap+=("$1"); shift; done
  shift
  mkdir -p "$TMP/$name"
  chmod 0777 "$TMP/$name"
  : >"$TMP/$name/out"
  "${wrap[@]}" "$TMP/procscoped" --quiet --listen=127.0.0.1:0 --pin_path= --config="$TMP/procscoped.conf" \
      --journal_dir="$TMP/$name/journal" "$@" >"$TMP/$name/out" 2>&1 &
  DPID=$!; PIDS+=("$DPID")
  wait_ready "$TMP/$name/out" "$DPID"
}
stop() {
  kill -TERM "$DPID"
  local rc=0; wait "$DPID" || rc=$?
  [[ $rc -eq 0 ]] || { cat "$TMP/$1/out"; fail "$1: exit $rc on SIGTERM"; }
}
proc() { # proc PID: the process's JSON object, waiting up to 5 s for it
  local j=""
  for _ in $(seq 50); do
    j=$(curl -sf "http://127.0.0.1:$PORT/api/v1/processes" | jq -c --argjson p "$1" '.processes[] | select(.pid == $p)')
    [[ -n "$j" && $(jq -r .user <<<"$j") != "" ]] && break
    sleep 0.1
  done
  echo "$j"
}
# check_threads WANT_EFF WANT_BND: every thread's capability lines.
check_threads() {
  local t n=0
  for t in /proc/"$DPID"/task/*; do
    [[ $(sed -n 's/^CapEff:[[:space:]]*//p' "$t/status") == "$1" ]] || fail "thread ${t##*/}: CapEff $(grep CapEff "$t/status")"
    [[ $(sed -n 's/^CapPrm:[[:space:]]*//p' "$t/status") == "$1" ]] || fail "thread ${t##*/}: CapPrm"
    [[ $(sed -n 's/^CapBnd:[[:space:]]*//p' "$t/status") == "$2" ]] || fail "thread ${t##*/}: CapBnd $(grep CapBnd "$t/status")"
    [[ $(sed -n 's/^CapInh:[[:space:]]*//p' "$t/status") == 0000000000000000 ]] || fail "thread ${t##*/}: CapInh"
    [[ $(sed -n 's/^CapAmb:[[:space:]]*//p' "$t/status") == 0000000000000000 ]] || fail "thread ${t##*/}: CapAmb"
    [[ $(sed -n 's/^NoNewPrivs:[[:space:]]*//p' "$t/status") == 1 ]] || fail "thread ${t##*/}: NoNewPrivs"
    n=$((n + 1))
  done
  [[ $n -ge 2 ]] || fail "only $n thread(s): the HTTP server's threads are missing"
  THREADS=$n
}

# works NAME WANT_EXE [stats]: the daemon's features, with processes started after it dropped privileges.
works() {
  local name=$1 want_exe=$2 stats=${3:-}
  cp "$(command -v sleep)" "$TMP/ps-priv-other"; chmod 0755 "$TMP/ps-priv-other"
  setpriv --reuid=65534 --regid=65534 --clear-groups "$TMP/ps-priv-other" 300 & local other=$!; PIDS+=("$other")
  "$TMP/ps-priv-other" 301 & local mine=$!; PIDS+=("$mine")
  local j; j=$(proc "$other")
  [[ -n "$j" ]] || fail "$name: uid 65534's process $other is not listed (the iterator after the drop)"
  [[ $(jq -r .uid <<<"$j") == 65534 ]] || fail "$name: uid of $other: $j"
  local user; user=$(getent passwd 65534 | cut -d: -f1)
  [[ $(jq -r .user <<<"$j") == "${user:-65534}" ]] || fail "$name: user of $other: $j"
  local exe="" jm=""
  for _ in $(seq 30); do
    exe=$(curl -sf "http://127.0.0.1:$PORT/api/v1/processes" | jq -r --argjson p "$other" '.processes[] | select(.pid == $p) | .exe')
    [[ -n "$exe" ]] && break; sleep 0.1
  done
  [[ "$exe" == "$want_exe" ]] || fail "$name: exe of another user's process: '$exe', want '$want_exe'"
  jm=$(proc "$mine")
  [[ $(jq -r .exe <<<"$jm") == "$want_exe" ]] || fail "$name: exe of root's full-capability process: $jm"
  local metrics; metrics=$(curl -sf "http://127.0.0.1:$PORT/metrics")
  grep -q "^procscope_group_processes{group=\"ps-priv-other\"} [1-9]" <<<"$metrics" ||
    fail "$name: /metrics has no live ps-priv-other group"
  # The ring buffer: a crash, in the API and the journal.
  ln -sf "$(command -v bash)" "$TMP/ps-priv-crash"
  "$TMP/ps-priv-crash" -c 'kill -SEGV $$' & wait $! 2>/dev/null || true
  for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$PORT/api/v1/events?limit=1000" |
      jq -e '.events[] | select(.comm == "ps-priv-crash" and .signal_name == "SIGSEGV")' >/dev/null && break
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$PORT/api/v1/events?limit=1000" |
    jq -e '.events[] | select(.comm == "ps-priv-crash")' >/dev/null || fail "$name: the crash is not in /api/v1/events"
  for _ in $(seq 30); do grep -qa ps-priv-crash "$TMP/$name/journal/events.journal" 2>/dev/null && break; sleep 0.1; done
  grep -qa ps-priv-crash "$TMP/$name/journal/events.journal" || fail "$name: the crash is not journalled"
  # --bpf_stats: the programs' run counts still grow.
  local r1 r2
  r1=$(curl -sf "http://127.0.0.1:$PORT/api/v1/status" | jq '[.programs[].runs | tonumber] | add')
  sleep 0.5
  r2=$(curl -sf "http://127.0.0.1:$PORT/api/v1/status" | jq '[.programs[].runs | tonumber] | add')
  if [[ -n "$stats" ]]; then
    [[ $r1 -gt 0 && $r2 -gt $r1 ]] || fail "$name: program run counts $r1 -> $r2"
  fi
  # SIGHUP: the exclude goes away.
  ln -sf "$(command -v sleep)" "$TMP/ps-priv-hidden"
  "$TMP/ps-priv-hidden" 302 & local hidden=$!; PIDS+=("$hidden")
  sleep 0.6
  [[ -z $(curl -sf "http://127.0.0.1:$PORT/api/v1/processes" | jq -c --argjson p "$hidden" '.processes[] | select(.pid == $p)') ]] ||
    fail "$name: the excluded process is listed"
  printf 'include=^ps-priv\nsample_interval=200ms\n' >"$TMP/procscoped.conf"
  kill -HUP "$DPID"
  [[ -n $(proc "$hidden") ]] || { cat "$TMP/$name/out"; fail "$name: after SIGHUP the process is still excluded"; }
  printf 'include=^ps-priv\nexclude=^ps-priv-hidden$\nsample_interval=200ms\n' >"$TMP/procscoped.conf"
  kill "$other" "$mine" "$hidden" 2>/dev/null || true
}

# --- as root: the run set, bounding set included -----------------------------------------------
start root -- --bpf_stats
check_threads "$RUN" "$RUN"
grep -q "capabilities now: $(echo "$run_set" | tr 'A-Z ' 'a-z,')" "$TMP/root/out" || fail "root: no capability line: $(cat "$TMP/root/out")"
pass "root: all $THREADS threads hold exactly $run_set (CapEff=CapPrm=CapBnd=$RUN), CapInh=CapAmb=0, NoNewPrivs=1"
works root "$TMP/ps-priv-other" stats
pass "root: after the drop it names another user's process (user, exe), scrapes, records a crash in API and journal, keeps --bpf_stats counting, reloads on SIGHUP"
stop root

# --- the systemd unit's start set, as uid 65534 -------------------------------------------------
spec=$(sed -n 's/^AmbientCapabilities=//p' "$ROOT/deploy/systemd/procscoped.service" | tr 'A-Z' 'a-z' |
       sed 's/cap_/+/g; s/ \+/,/g; s/,$//')
start unit setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps="-all,$spec" \
    --ambient-caps="-all,$spec" --bounding-set="-all,$spec" --no-new-privs -- --sample_interval=200ms
check_threads "$RUN" "$START"
pass "unit's start set ($spec) as uid 65534: CapEff=CapPrm=$RUN, CapBnd stays $START (no CAP_SETPCAP), NoNewPrivs=1"
works unit "$TMP/ps-priv-other"
pass "unit: the same features work"
stop unit

# --- the DaemonSet's start set: uid 0 with only its capabilities.add ---------------------------
ds=$(sed -n '/^ *add:/,/^ *[a-zA-Z]*:$/p' "$ROOT/deploy/kubernetes/daemonset.yaml" |
     sed -n 's/^ *- *\([A-Z_]*\).*/\1/p' | tr 'A-Z' 'a-z' | sed 's/^/+/' | paste -sd,)
[[ -n "$ds" ]] || fail "no capabilities.add in daemonset.yaml"
DS_START=$(mask "$(echo "$ds" | tr -d '+')")
start pod setpriv --inh-caps="-all,$ds" --ambient-caps="-all,$ds" --bounding-set="-all,$ds" \
    --no-new-privs -- --sample_interval=200ms
check_threads "$RUN" "$DS_START"
pass "DaemonSet's start set ($ds) as uid 0: CapEff=CapPrm=$RUN, CapBnd stays $DS_START, NoNewPrivs=1"
works pod "$TMP/ps-priv-other"
pass "pod: the same features work"
stop pod

# --- the DaemonSet's start set with pinning: kill -9, a restart adopts the pinned state, drops ---
PIN=/sys/fs/bpf/procscope-priv-test-$$
"$TMP/procscoped" --unpin --pin_path="$PIN" >/dev/null 2>&1 || true
start pinned setpriv --inh-caps="-all,$ds" --ambient-caps="-all,$ds" --bounding-set="-all,$ds" \
    --no-new-privs -- --sample_interval=200ms --pin_path="$PIN"
check_threads "$RUN" "$DS_START"
kill -KILL "$DPID"; wait "$DPID" 2>/dev/null || true
start adopted setpriv --inh-caps="-all,$ds" --ambient-caps="-all,$ds" --bounding-set="-all,$ds" \
    --no-new-privs -- --sample_interval=200ms --pin_path="$PIN"
grep -q "adopted pinned BPF state" "$TMP/adopted/out" ||
  { "$TMP/procscoped" --unpin --pin_path="$PIN" >/dev/null 2>&1; cat "$TMP/adopted/out"; fail "pod restart: the pinned state was not adopted"; }
check_threads "$RUN" "$DS_START"
works adopted "$TMP/ps-priv-other"
stop adopted
"$TMP/procscoped" --unpin --pin_path="$PIN" >/dev/null 2>&1 || fail "--unpin $PIN"
[[ ! -e "$PIN" ]] || fail "$PIN is left after --unpin"
pass "pod with --pin_path: after kill -9 the restart adopts the pinned state with the start set, drops to $RUN, and works"

# --- the measurement: without CAP_SYS_PTRACE only other users' executables are lost -------------
start none -- --bpf_stats --keep_capabilities=none
check_threads 0000000000000000 0000000000000000
works none "" stats
pass "run set 'none': everything works but the exe of other users' processes (empty): CAP_SYS_PTRACE is the run set"
stop none
echo "PASS"
