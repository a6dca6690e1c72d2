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
