#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# procscope-demo against a real procscoped, as root:
#   - `--all` injects cpu_spike, memory_leak, io_heavy, crash and oom (where a v1 memory
#     controller is writable) each into a randomly chosen worker; every scenario must PASS: the
#     daemon names that worker (offender or exit event) within 15 s and none of the other two;
#   - after it exits no demo-* process, temp file or procscope-demo cgroup is left;
#   - Ctrl-C (SIGINT to the demo's process group) during a held injection, and SIGTERM to an
#     interactive demo with three injections running, clean up the same way.
#   - the procscope CLI sees it too: while an injection is held, `procscope top --json` ranks the
#     injected worker first for its resource and flags it; `procscope events --failed` shows the
#     SIGSEGV of the crashed worker (every exit of the machine is kept, so a busy one cannot push
#     it out);
# Usage: demo_test.sh <procscope-demo binary> <procscoped binary> <procscope binary>
set -euo pipefail
source "$(dirname "$0")/lib.sh"
DEMO=$(realpath "$1")
CLI=$(realpath "${3:-$(dirname "$1")/procscope}")
PROCSCOPED=$(realpath "$2")
[[ $(id -u) -eq 0 ]] || missing "needs root"
for tool in curl jq setsid timeout; do
  command -v "$tool" >/dev/null || missing "needs $tool"
done
IO_DIR=/var/tmp
MEMCG=/sys/fs/cgroup/memory
OOM=0
[[ -f $MEMCG/memory.limit_in_bytes && -w $MEMCG ]] && OOM=1

scratch psdemotest

# Nothing of a demo may outlive it: processes, temp files, cgroups.
leftovers() {
  local left=""
  local procs
  procs=$(ps -eo pid=,comm= | awk '$2 ~ /^demo-(alpha|beta|gamma)$/ { printf " %s(%s)", $2, $1 }')
  [[ -n "$procs" ]] && left+=" processes:$procs"
  compgen -G "$IO_DIR/procscope-demo.*" >/dev/null && left+=" files: $(echo $IO_DIR/procscope-demo.*)"
  ls "$MEMCG" 2>/dev/null | grep -q '^procscope-demo-' &&
    left+=" cgroups: $(ls "$MEMCG" | grep '^procscope-demo-' | tr '\n' ' ')"
  echo "$left"
}
[[ -z "$(leftovers)" ]] || fail "demo leftovers before the test:$(leftovers)"

# The daemon sees every exit of the machine, not only the demo's: on a busy one (a build on the
# other core, apt in a fresh root) 1,000 exits take under a minute. The default
# --events_in_memory keeps the failed ones in a ring of their own, so the crash must still be there.
"$PROCSCOPED" --listen=127.0.0.1:0 --pin_path= --journal_dir= --quiet --offender_window=5s \
    >"$TMP/daemon.out" 2>&1 &
PIDS+=($!)
wait_ready "$TMP/daemon.out"
EP=127.0.0.1:$PORT

# --- every scenario, random workers -----------------------------------------------------------
set +e
timeout 330 "$DEMO" --all --endpoint "$EP" >"$TMP/all.out" 2>&1
rc=$?
set -e
cat "$TMP/all.out"
[[ $rc -eq 0 ]] || fail "procscope-demo --all: exit $rc"
scenarios=(cpu_spike memory_leak io_heavy crash)
((OOM)) && scenarios+=(oom)
for s in "${scenarios[@]}"; do
  line=$(grep -E "^$s +" "$TMP/all.out") || fail "$s: no result line"
  re="^$s +PASS +injected into (demo-[a-z]+) \(pid ([0-9]+)\) -> procscope (flagged|recorded)"
  re+=" (demo-[a-z]+) \(pid ([0-9]+)\) [^;]*after ([0-9.]+)s"
  [[ "$line" =~ $re ]] || fail "$s: not a PASS naming the worker: $line"
  comm=${BASH_REMATCH[1]} pid=${BASH_REMATCH[2]} after=${BASH_REMATCH[6]}
  [[ ${BASH_REMATCH[4]} == "$comm" && ${BASH_REMATCH[5]} == "$pid" ]] ||
    fail "$s: injected into $comm ($pid), named ${BASH_REMATCH[4]} (${BASH_REMATCH[5]})"
  awk -v a="$after" 'BEGIN { exit !(a <= 15) }' || fail "$s: named after ${after}s (> 15 s)"
  [[ "$line" == *"; demo-"*", demo-"*" not flagged" && "$line" != *"ALSO FLAGGED"* ]] ||
    fail "$s: other workers flagged or not reported: $line"
  case $s in
    cpu_spike) [[ "$line" == *" for cpu after "* ]] || fail "$s: resource: $line" ;;
    memory_leak) [[ "$line" == *" for memory_growth after "* || "$line" == *" for page_faults after "* ]] ||
                   fail "$s: resource: $line" ;;
    io_heavy) [[ "$line" == *" for block_io after "* ]] || fail "$s: resource: $line" ;;
    crash) [[ "$line" == *"killed by SIGSEGV"*"restarted as pid"* ]] || fail "$s: $line" ;;
    oom) [[ "$line" == *"oom_killed"*"restarted as pid"* ]] || fail "$s: $line" ;;
  esac
  pass "$s: $comm (pid $pid) named after ${after}s, the other workers not flagged"
done
((OOM)) || { grep -qE '^oom +SKIP ' "$TMP/all.out" || fail "oom: not reported as SKIP"; }
left=$(leftovers)
[[ -z "$left" ]] || fail "after --all:$left"
pass "after --all exits: no demo process, temp file or cgroup left"

# --- the CLI's view of the crash: `procscope events --failed`, as an on-call user would ask ----
re='^crash +PASS +injected into (demo-[a-z]+) \(pid ([0-9]+)\)'
[[ "$(grep -E '^crash ' "$TMP/all.out")" =~ $re ]] || fail "no crash PASS line to take the worker from"
crash_comm=${BASH_REMATCH[1]} crash_pid=${BASH_REMATCH[2]}
# A busy node: more successful exits than --events_in_memory (1,000) since the crash.
for _ in $(seq 1100); do /bin/true; done
"$CLI" events --failed --json --limit 1000 --endpoint "$EP" >"$TMP/events.json" ||
  fail "procscope events --failed --json: exit $?"
jq -e --argjson pid "$crash_pid" --arg comm "$crash_comm" \
  '[.events[] | select(.pid == $pid and .comm == $comm and .signal_name == "SIGSEGV")] | length == 1' \
  "$TMP/events.json" >/dev/null ||
  fail "procscope events --failed does not show the SIGSEGV of $crash_comm (pid $crash_pid) among its $(jq '.events | length' "$TMP/events.json") events"
pass "procscope events --failed shows the crashed worker $crash_comm (pid $crash_pid) with SIGSEGV"

# --- the CLI's view of held injections ----------------------------------------------------------
for s in cpu_spike memory_leak io_heavy; do
  : >"$TMP/held.out"
  "$DEMO" --scenario "$s" --hold 30s --endpoint "$EP" >"$TMP/held.out" 2>&1 &
  HELD=$!
  for _ in $(seq 200); do grep -qE "^$s +(PASS|FAIL)" "$TMP/held.out" && break; sleep 0.1; done
  re="^$s +PASS +injected into (demo-[a-z]+) \(pid ([0-9]+)\)"
  line=$(grep -E "^$s +" "$TMP/held.out" || true)
  [[ "$line" =~ $re ]] || { kill "$HELD"; fail "held $s: $line"; }
  pid=${BASH_REMATCH[2]}
  case $s in
    cpu_spike) sort=cpu res='"cpu"' ;;
    memory_leak) sort=mem res='"memory_growth","page_faults"' ;;
    io_heavy) sort=io res='"block_io"' ;;
  esac
  ok=0
  for _ in $(seq 30); do
    if "$CLI" top --json --sort "$sort" --limit 3 --endpoint "$EP" >"$TMP/top.json" 2>/dev/null &&
       jq -e --argjson pid "$pid" "(.processes[0].pid == \$pid) and
          ([.offenders.offenders[] | select(.pid == \$pid and (.resource | IN($res)))] | length > 0)" \
          "$TMP/top.json" >/dev/null; then
      ok=1; break
    fi
    sleep 0.5
  done
  kill "$HELD"; wait "$HELD" 2>/dev/null || true
  ((ok)) || { cat "$TMP/top.json"; fail "$s: procscope top --json does not rank pid $pid first"; }
  pass "$s: procscope top --json --sort $sort ranks the injected worker (pid $pid) first, flagged"
done
left=$(leftovers)
[[ -z "$left" ]] || fail "after the held injections:$left"

# --- Ctrl-C during a held injection -----------------------------------------------------------
# In its own session, like a shell job: SIGINT goes to the whole group, workers included.
setsid "$DEMO" --scenario io_heavy --hold 120s --endpoint "$EP" >"$TMP/int.out" 2>&1 &
DEMO_PID=$!
PIDS+=("$DEMO_PID")
for _ in $(seq 600); do grep -q '^io_heavy ' "$TMP/int.out" && break; sleep 0.1; done
# PASS or not (the --all run above checked that), the injection is now held.
grep -qE '^io_heavy ' "$TMP/int.out" || { cat "$TMP/int.out"; fail "io_heavy (held): no result"; }
compgen -G "$IO_DIR/procscope-demo.$DEMO_PID.*.io" >/dev/null || fail "held io_heavy: no temp file"
[[ $(pgrep -c -P "$DEMO_PID") -eq 3 ]] || fail "held io_heavy: not 3 workers"
PGID=$(ps -o pgid= -p "$DEMO_PID" | tr -d ' ')
kill -INT -- "-$PGID"
set +e
for _ in $(seq 100); do kill -0 "$DEMO_PID" 2>/dev/null || break; sleep 0.1; done
wait "$DEMO_PID"
rc=$?
set -e
cat "$TMP/int.out"
[[ $rc -eq 130 ]] || fail "Ctrl-C: exit $rc, want 130"
left=$(leftovers)
[[ -z "$left" ]] || fail "after Ctrl-C:$left"
pass "Ctrl-C during a held io_heavy: exit 130, nothing left"

# --- SIGTERM to an interactive demo with injections running -----------------------------------
mkfifo "$TMP/in"
"$DEMO" --endpoint "$EP" <"$TMP/in" >"$TMP/term.out" 2>&1 &
DEMO_PID=$!
PIDS+=("$DEMO_PID")
exec 3>"$TMP/in"
printf 'inject io_heavy alpha\ninject memory_leak beta\ninject cpu_spike gamma\n' >&3
for _ in $(seq 50); do [[ $(grep -c '^injecting ' "$TMP/term.out") -eq 3 ]] && break; sleep 0.1; done
sleep 2
printf 'status\n' >&3
for _ in $(seq 50); do grep -q '^demo-gamma .*cpu_spike' "$TMP/term.out" && break; sleep 0.1; done
grep -q '^demo-gamma .*cpu_spike' "$TMP/term.out" || { cat "$TMP/term.out"; fail "interactive: no status"; }
compgen -G "$IO_DIR/procscope-demo.$DEMO_PID.alpha.io" >/dev/null || fail "interactive io_heavy: no temp file"
kill -TERM "$DEMO_PID"
set +e
for _ in $(seq 100); do kill -0 "$DEMO_PID" 2>/dev/null || break; sleep 0.1; done
wait "$DEMO_PID"
rc=$?
set -e
exec 3>&-
cat "$TMP/term.out"
[[ $rc -eq 143 ]] || fail "SIGTERM: exit $rc, want 143"
left=$(leftovers)
[[ -z "$left" ]] || fail "after SIGTERM:$left"
pass "SIGTERM to an interactive demo with three injections: exit 143, nothing left"
echo "PASS"
