#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The deployment's capability set, tried on the real daemon (root needed to hand out capabilities):
#   unit:      procscoped as an unprivileged user (what DynamicUser=yes gives) with exactly the
#              unit's AmbientCapabilities/CapabilityBoundingSet, no_new_privs, and the shipped
#              config file: it loads, serves, names the executable of another user's process,
#              journals a crash, reloads on SIGHUP, stops cleanly on SIGTERM;
#   container: uid 0 with only the DaemonSet's capabilities (drop ALL + add) and no_new_privs;
#   and why each capability is there: without CAP_PERFMON or CAP_BPF it refuses to start, without
#   CAP_SYS_PTRACE other users' executables stay unknown;
#   with strace at hand: every system call the daemon makes passes the unit's SystemCallFilter.
# Usage: tests/deploy/runtime_test.sh <procscoped binary>
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PROCSCOPED=$(realpath "${1:?usage: runtime_test.sh <procscoped binary>}")
UNIT=$ROOT/deploy/systemd/procscoped.service
CONF=$ROOT/deploy/systemd/procscoped.conf
NOBODY=65534

for t in setpriv curl jq; do
  if ! command -v "$t" >/dev/null || [[ $(id -u) -ne 0 ]]; then
    [[ -n "${CI:-}" ]] && { echo "FAIL: needs root, setpriv, curl and jq (scripts/setup.sh)"; exit 1; }
    echo "SKIP: needs root, setpriv, curl and jq"; exit 77
  fi
done

TMP=$(mktemp -d /var/tmp/procscope-deploy-rt.XXXXXX)
chmod 0755 "$TMP"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
# The unprivileged user runs a copy of the binary and reads a copy of the config: the checkout
# and build tree may be where it cannot reach (a clone in root's 0700 home directory).
install -m 0755 "$PROCSCOPED" "$TMP/procscoped"
install -m 0644 "$CONF" "$TMP/procscoped.conf"
PROCSCOPED=$TMP/procscoped
CONF=$TMP/procscoped.conf
fail() { echo "FAIL: $*"; exit 1; }
pass() { echo "ok: $*"; }

# The unit's capabilities, as setpriv wants them: +bpf,+perfmon,...
caps=$(sed -n 's/^AmbientCapabilities=//p' "$UNIT" | tr ' ' '\n' | grep . | sed 's/^CAP_//' | tr 'A-Z\n' 'a-z ')
caps=${caps% }
[[ -n "$caps" ]] || fail "no AmbientCapabilities in $UNIT"
capspec() { local out=""; for c in "$@"; do out+=",+$c"; done; echo "${out#,}"; }
ALL=$(capspec $caps)

# start NAME UID CAPSPEC [procscoped flags...]: runs procscoped as UID with exactly CAPSPEC
# (inheritable, ambient, bounding), no_new_privs; sets PORT and DPID, or returns 1 if it exited.
start() {
  local name=$1 uid=$2 spec=$3
  shift 3
  mkdir -p "$TMP/$name"
  chown "$uid:$uid" "$TMP/$name"
  : >"$TMP/$name/out"
  local setcaps=()
  [[ -n "$spec" ]] && setcaps=(--inh-caps="-all,$spec" --ambient-caps="-all,$spec" --bounding-set="-all,$spec")
  [[ -z "$spec" ]] && setcaps=(--inh-caps=-all --ambient-caps=-all --bounding-set=-all)
  ${WRAP:-} setpriv --reuid="$uid" --regid="$uid" --clear-groups "${setcaps[@]}" --no-new-privs \
    -- "$PROCSCOPED" --quiet --config="$CONF" --listen=127.0.0.1:0 --pin_path= \
    --journal_dir="$TMP/$name/journal" --sample_interval=200ms "$@" >"$TMP/$name/out" 2>&1 &
  DPID=$!
  PIDS+=("$DPID")
  PORT=
  for _ in $(seq 100); do
    PORT=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$TMP/$name/out")
    [[ -n "$PORT" ]] && curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return 0
    kill -0 "$DPID" 2>/dev/null || return 1
    sleep 0.1
  done
  cat "$TMP/$name/out"
  fail "$name: procscoped not ready after 10 s"
}
stop() {
  # Under strace, the daemon is strace's child: signal it, strace exits with its status.
  local target=$DPID
  [[ -n "${WRAP:-}" ]] && target=$(pgrep -P "$DPID" | head -1)
  kill -TERM "$target"
  local rc=0
  wait "$DPID" || rc=$?
  [[ $rc -eq 0 ]] || { cat "$TMP/$1/out"; fail "$1: procscoped exited $rc on SIGTERM"; }
}
# exe_of PID: the exe procscoped reports for PID (empty if none), waiting up to 5 s for it.
exe_of() {
  local exe=""
  for _ in $(seq 50); do
    exe=$(curl -sf "http://127.0.0.1:$PORT/api/v1/processes" |
          jq -r --argjson p "$1" '.processes[] | select(.pid == $p) | .exe // ""')
    [[ -n "$exe" ]] && break
    sleep 0.1
  done
  echo "$exe"
}

# A process of another user (root) whose executable the daemon should name.
cp "$(command -v sleep)" "$TMP/ps-rt-sleeper"
"$TMP/ps-rt-sleeper" 300 & SLEEPER=$!; PIDS+=("$SLEEPER")
WANT_EXE=$TMP/ps-rt-sleeper

# --- the systemd unit's set, as an unprivileged user -------------------------------------------
start unit "$NOBODY" "$ALL" || { cat "$TMP/unit/out"; fail "unit: procscoped did not start with $ALL as uid $NOBODY"; }
grep -q '^CapEff:.*' "/proc/$DPID/status"
pass "unit: uid $NOBODY with only $ALL (no_new_privs) loads the collector and is ready"
curl -sf "http://127.0.0.1:$PORT/metrics" | grep -c '^procscope_build_info{' >/dev/null || fail "unit: no procscope_build_info"
pass "unit: /metrics serves"
got=$(exe_of "$SLEEPER")
[[ "$got" == "$WANT_EXE" ]] || fail "unit: exe of root's pid $SLEEPER is '$got', want $WANT_EXE"
pass "unit: names the executable of another user's process ($got)"
ln -s "$(command -v bash)" "$TMP/ps-rt-crash"
crash() { "$TMP/ps-rt-crash" -c 'kill -SEGV $$' & wait $! 2>/dev/null || true; }
crash
for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$PORT/api/v1/events?limit=50" |
    jq -e '.events[] | select(.comm == "ps-rt-crash" and .signal_name == "SIGSEGV")' >/dev/null && break
  sleep 0.1
done || true
curl -sf "http://127.0.0.1:$PORT/api/v1/events?limit=50" |
  jq -e '.events[] | select(.comm == "ps-rt-crash")' >/dev/null || fail "unit: the crash is not in /api/v1/events"
for _ in $(seq 30); do [[ -s "$TMP/unit/journal/events.journal" ]] && break; sleep 0.1; done
[[ -s "$TMP/unit/journal/events.journal" ]] || fail "unit: nothing journalled in $TMP/unit/journal"
[[ $(stat -c %u "$TMP/unit/journal/events.journal") == "$NOBODY" ]] || fail "unit: journal not owned by uid $NOBODY"
pass "unit: a crash is in /api/v1/events and in the journal (the StateDirectory is enough)"
kill -HUP "$DPID"; sleep 0.5
kill -0 "$DPID" 2>/dev/null || { cat "$TMP/unit/out"; fail "unit: procscoped died on SIGHUP (ExecReload)"; }
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || fail "unit: not healthy after SIGHUP"
pass "unit: SIGHUP (ExecReload) re-reads procscoped.conf and keeps serving"
stop unit
pass "unit: SIGTERM stops it cleanly (exit 0)"

# --- the DaemonSet's set: uid 0, every other capability dropped ------------------------------
DS_CAPS=$(sed -n '/^ *add:/,/^ *[a-zA-Z]*:$/p' "$ROOT/deploy/kubernetes/daemonset.yaml" |
          sed -n 's/^ *- *\([A-Z_]*\).*/\1/p' | tr 'A-Z\n' 'a-z ')
[[ -n "$DS_CAPS" ]] || fail "no capabilities.add in daemonset.yaml"
start container 0 "$(capspec $DS_CAPS)" || { cat "$TMP/container/out"; fail "container: procscoped did not start as uid 0 with $(capspec $DS_CAPS)"; }
got=$(exe_of "$SLEEPER")
[[ "$got" == "$WANT_EXE" ]] || fail "container: exe of pid $SLEEPER is '$got', want $WANT_EXE"
pass "container: uid 0 with only $(capspec $DS_CAPS) loads, serves, names executables"
stop container

# --- each capability is needed ----------------------------------------------------------------
without() { local out=(); for c in $caps; do [[ "$c" == "$1" ]] || out+=("$c"); done; capspec "${out[@]}"; }
for c in perfmon bpf; do
  if start "no-$c" "$NOBODY" "$(without "$c")"; then
    stop "no-$c"; fail "without cap_$c procscoped started: then it is not needed"
  fi
  rc=0; wait "$DPID" || rc=$?
  [[ $rc -eq 1 ]] && grep -q 'CAP_BPF and CAP_PERFMON' "$TMP/no-$c/out" ||
    { cat "$TMP/no-$c/out"; fail "without cap_$c: expected exit 1 naming the capabilities, got $rc"; }
  pass "without cap_$c procscoped refuses to start (exit 1, names the remedy)"
done
if [[ " $caps " == *" sys_ptrace "* ]]; then
  start no-ptrace "$NOBODY" "$(without sys_ptrace)" || { cat "$TMP/no-ptrace/out"; fail "no-ptrace: did not start"; }
  sleep 1
  got=$(curl -sf "http://127.0.0.1:$PORT/api/v1/processes" |
        jq -r --argjson p "$SLEEPER" '.processes[] | select(.pid == $p) | .exe // ""')
  [[ -z "$got" ]] || fail "without cap_sys_ptrace the exe of root's process is still known ($got): then it is not needed"
  pass "without cap_sys_ptrace the executables of other users' processes stay unknown"
  stop no-ptrace
fi

# --- the unit's SystemCallFilter allows every system call the daemon makes -------------------
if ! command -v strace >/dev/null || ! command -v systemd-analyze >/dev/null; then
  echo "note: strace or systemd-analyze missing: SystemCallFilter not checked"
  exit 0
fi
WRAP="strace -f -qq -o $TMP/trace" start strace "$NOBODY" "$ALL" ||
  { cat "$TMP/strace/out"; fail "strace: procscoped did not start"; }
curl -sf "http://127.0.0.1:$PORT/metrics" >/dev/null
curl -sf "http://127.0.0.1:$PORT/api/v1/processes" >/dev/null
curl -sf "http://127.0.0.1:$PORT/api/v1/events" >/dev/null
curl -sf "http://127.0.0.1:$PORT/api/v1/offenders" >/dev/null
curl -sf "http://127.0.0.1:$PORT/api/v1/status" >/dev/null
crash
kill -HUP "$(pgrep -P "$DPID" | head -1)"; sleep 1.5
WRAP=strace stop strace
# System calls made after procscoped's own execve (setpriv's come before it).
used=$(sed -n "\\|execve(\"$PROCSCOPED\"|,\$p" "$TMP/trace" | tail -n +2 |
       sed -En 's/^[0-9]+ +([a-z0-9_]+)\(.*/\1/p; s/^[0-9]+ +<\.\.\. ([a-z0-9_]+) resumed.*/\1/p' | sort -u)
[[ -n "$used" ]] || fail "strace: no system calls recorded"
# It writes nowhere but its journal directory: a read-only root filesystem (the DaemonSet) and
# ProtectSystem=strict with StateDirectory= (the unit) take nothing from it.
writes=$(sed -n "\\|execve(\"$PROCSCOPED\"|,\$p" "$TMP/trace" | tail -n +2 |
         grep -E '^[0-9]+ +(openat\(.*O_(WRONLY|RDWR|CREAT)|creat\(|mkdir|rename|link|unlink|symlink|truncate\(|rmdir)' |
         grep -v '= -1 ' | grep -oE '"[^"]*"' | tr -d '"' | sort -u)
outside=$(echo "$writes" | grep -v "^$TMP/strace/journal" | grep . || true)
[[ -z "$outside" ]] || fail "procscoped writes outside its journal directory: $(echo $outside)"
pass "procscoped writes only in its journal directory ($(echo "$writes" | grep -c .) paths)"
# Expand the unit's filter: its allow list (groups included), minus its ~deny list.
declare -A members
group=""
while IFS= read -r line; do
  if [[ "$line" =~ ^(@[a-z-]+)$ ]]; then group=${BASH_REMATCH[1]}; members[$group]=""
  elif [[ -n "$group" && "$line" =~ ^\ +([@a-z0-9_-]+)$ ]]; then members[$group]+=" ${BASH_REMATCH[1]}"
  elif [[ -z "$line" ]]; then group=""; fi
done < <(systemd-analyze syscall-filter --no-pager 2>/dev/null)
expand() {
  local x
  for x in "$@"; do
    if [[ "$x" == @* ]]; then
      # shellcheck disable=SC2086
      expand ${members[$x]:-}
    else
      echo "$x"
    fi
  done
}
allow=$(sed -n 's/^SystemCallFilter=\([^~].*\)/\1/p' "$UNIT")
deny=$(sed -n 's/^SystemCallFilter=~//p' "$UNIT")
# shellcheck disable=SC2086
allowed=$(comm -23 <(expand $allow | sort -u) <(expand $deny | sort -u))
[[ $(echo "$allowed" | wc -l) -gt 100 ]] || fail "could not expand the unit's SystemCallFilter (${allow})"
blocked=$(comm -23 <(echo "$used") <(echo "$allowed"))
[[ -z "$blocked" ]] || fail "procscoped calls $(echo $blocked), which the unit's SystemCallFilter blocks"
pass "the $(echo "$used" | wc -l) system calls procscoped made all pass SystemCallFilter=$allow ~$deny"
