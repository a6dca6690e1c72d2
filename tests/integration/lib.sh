# SPDX-License-Identifier: Apache-2.0
# Shared by the integration tests (sourced): verdicts, prerequisites, waiting for procscoped.

fail() { echo "FAIL: $*"; exit 1; }
pass() { echo "ok: $*"; }

# A missing prerequisite: a failure when CI is set (CI must run every test), a skip (77) elsewhere.
missing() {
  [[ -n "${CI:-}" ]] && fail "$*"
  echo "SKIP: $*"
  exit 77
}

# wait_ready OUT [PID]: waits until the procscoped writing OUT has printed "(port N)" and answers
# /readyz, and sets PORT; fails (showing OUT) if it does not within 15 s or if PID exits.
wait_ready() {
  local out=$1 pid=${2:-}
  PORT=
  for _ in $(seq 150); do
    PORT=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$out" || true)
    [[ -n "$PORT" ]] && curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return 0
    [[ -z "$pid" ]] || kill -0 "$pid" 2>/dev/null || { cat "$out"; fail "procscoped exited"; }
    sleep 0.1
  done
  cat "$out"
  fail "procscoped not ready"
}

# scratch NAME: a scratch directory $TMP under /var/tmp (on a block device, not tmpfs) and an
# array PIDS for background children; at exit the children get SIGTERM and $TMP is removed. A
# test with more to undo defines before_cleanup().
scratch() {
  TMP=$(mktemp -d "/var/tmp/$1.XXXXXX")
  PIDS=()
  trap cleanup_scratch EXIT
}
cleanup_scratch() {
  if declare -F before_cleanup >/dev/null; then before_cleanup; fi
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}

# Reading the procscoped at $PORT.
metrics() { curl -sf "http://127.0.0.1:$PORT/metrics"; }
# exits GROUP: the group's exits of every outcome.
exits() {
  metrics | awk -v g="group=\"$1\"" '/^procscope_group_exits_total/ && index($0, g) {s += $2}
    END {print s + 0}'
}
# dropped: exit events the kernel side could not queue (ring buffer full).
dropped() {
  metrics | awk '/^procscope_kernel_events_dropped_total/ && /reason="ringbuf"/ {print $2 + 0; f=1}
    END {if (!f) print 0}'
}

# Asking the Prometheus at $PPORT.
query() {  # PromQL -> JSON result array
  curl -sf --get "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$1" |
    jq -c '.data.result'
}
# wait_for DESCRIPTION PROMQL JQ: until the jq filter on the result prints true (60 s); on failure
# shows the last result and what before_wait_fail (if defined) prints.
wait_for() {
  for _ in $(seq 60); do
    if [[ $(query "$2" 2>/dev/null | jq "$3" 2>/dev/null) == true ]]; then pass "$1"; return 0; fi
    sleep 1
  done
  echo "last result: $(query "$2" || true)"
  if declare -F before_wait_fail >/dev/null; then before_wait_fail; fi
  fail "$1"
}
