#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# procscoped's configuration as an operator meets it, as root:
#   - a bad config file at start is one line naming file:line, exit code 2;
#   - SIGHUP re-reads the file: a new --exclude takes effect; a bad file is reported and the
#     running config kept;
#   - SIGTERM stops it cleanly (exit 0) with the crash journal flushed.
# Usage: config_test.sh <procscoped binary>
set -euo pipefail
source "$(dirname "$0")/lib.sh"
PROCSCOPED=$(realpath "$1")
[[ $(id -u) -eq 0 ]] || missing "needs root"
scratch procscope-cfg

# Bad config at start.
printf 'top_k=5\nno_such_setting=1\n' >"$TMP/bad.conf"
set +e
out=$("$PROCSCOPED" --config="$TMP/bad.conf" --listen=127.0.0.1:0 --journal_dir= 2>&1)
rc=$?
set -e
[[ $rc -eq 2 ]] || fail "bad config: exit $rc, want 2: $out"
[[ $(printf '%s\n' "$out" | wc -l) -eq 1 ]] || fail "bad config: not one line: $out"
[[ "$out" == *"bad.conf:2"*"no_such_setting"* ]] || fail "bad config: message: $out"
pass "a bad config file is one line naming file:line, exit 2"
printf 'offender_window=1s\n' >"$TMP/bad2.conf"
set +e
out=$("$PROCSCOPED" --config="$TMP/bad2.conf" --listen=127.0.0.1:0 --journal_dir= 2>&1)
rc=$?
set -e
[[ $rc -eq 2 && "$out" == *"window"* ]] || fail "out-of-range value: exit $rc: $out"
pass "an out-of-range value in the file is exit 2: $out"

# A victim process, excluded by the config file.
ln -s "$(command -v sleep)" "$TMP/psvictim"
"$TMP/psvictim" 300 & PIDS+=($!)
VICTIM=$!
printf '# procscoped config\nexclude=^psvictim$\nsample_interval=200ms\n' >"$TMP/good.conf"
: >"$TMP/out"
"$PROCSCOPED" --config="$TMP/good.conf" --listen=127.0.0.1:0 --pin_path= --quiet \
    --journal_dir="$TMP/journal" >"$TMP/out" 2>&1 &
DPID=$!; PIDS+=("$DPID")
wait_ready "$TMP/out" "$DPID"
has_victim() {
  curl -sf "http://127.0.0.1:$PORT/api/v1/processes" |
    jq -e --argjson pid "$VICTIM" '.processes[] | select(.pid == $pid)' >/dev/null
}
sleep 1
has_victim && fail "excluded process is listed"
pass "the config file's --exclude applies"

# Reload with the filter removed.
printf 'sample_interval=200ms\n' >"$TMP/good.conf"
kill -HUP "$DPID"
for _ in $(seq 50); do has_victim && break; sleep 0.1; done
has_victim || { cat "$TMP/out"; fail "after SIGHUP the process is still excluded"; }
grep -q "configuration reloaded" "$TMP/out" || fail "no reload message"
pass "SIGHUP re-reads the file"

# A bad file on reload: reported, old config kept, daemon alive.
printf 'top_k=banana\n' >"$TMP/good.conf"
kill -HUP "$DPID"
for _ in $(seq 50); do grep -q "reload failed" "$TMP/out" && break; sleep 0.1; done
grep -q "config reload failed" "$TMP/out" || { cat "$TMP/out"; fail "bad reload not reported"; }
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || fail "daemon unhealthy after a bad reload"
pass "a bad reload is reported and the running config kept"

# SIGTERM: a clean stop, with the exit of the victim in the journal.
kill "$VICTIM"; wait "$VICTIM" 2>/dev/null || true
for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$PORT/api/v1/events" |
    jq -e --argjson pid "$VICTIM" '.events[] | select(.pid == $pid)' >/dev/null && break
  sleep 0.1
done
kill -TERM "$DPID"
set +e
wait "$DPID"
rc=$?
set -e
[[ $rc -eq 0 ]] || fail "SIGTERM: exit $rc"
grep -qa psvictim "$TMP/journal/events.journal" || fail "journal does not hold the exit"
pass "SIGTERM stops cleanly with the journal flushed"
echo "PASS"
