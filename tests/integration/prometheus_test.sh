#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Integration test, as root: a real Prometheus server scrapes a real procscoped.
#   - PromQL finds a busy child as the top CPU group and as procscope_offender;
#   - `promtool check metrics` finds nothing to report in the exposition;
#   - a child whose name holds hostile bytes (quote, backslash, newline, invalid UTF-8) still
#     scrapes cleanly (target up, no injected line);
#   - a child killed by SIGSEGV is in /api/v1/events and procscope_group_crashes_total, and still
#     is after procscoped restarts (crash journal).
# Usage: prometheus_test.sh <procscoped binary>
set -euo pipefail
source "$(dirname "$0")/lib.sh"
PROCSCOPED=$(realpath "$1")
PROMETHEUS=$(command -v prometheus || true)
[[ -n "$PROMETHEUS" && $(id -u) -eq 0 ]] || missing "needs root and prometheus (scripts/setup.sh)"
scratch procscope-it

start_procscoped() {
  : >"$TMP/procscoped.out"
  "$PROCSCOPED" --listen=127.0.0.1:0 --pin_path= --quiet --journal_dir="$TMP/journal" \
      --sample_interval=500ms --offender_window=6s >"$TMP/procscoped.out" 2>&1 &
  DPID=$!; PIDS+=("$DPID")
  wait_ready "$TMP/procscoped.out" "$DPID"
}

start_procscoped
pass "procscoped ready on port $PORT"

# Children, named through the file name they are started by (that is what comm becomes).
ln -s "$(command -v sha256sum)" "$TMP/psbusy"
"$TMP/psbusy" /dev/zero & PIDS+=($!)
HOSTILE=$'ev"il\\\nx\xff'
ln -s "$(command -v sleep)" "$TMP/$HOSTILE"
"$TMP/$HOSTILE" 300 & PIDS+=($!)
ln -s "$(command -v bash)" "$TMP/pscrash"

# Prometheus, scraping every second.
PPORT=$((20000 + RANDOM % 20000))
cat >"$TMP/prometheus.yml" <<YML
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: procscope
    static_configs: [{targets: ['127.0.0.1:$PORT']}]
YML
promtool check config "$TMP/prometheus.yml" >/dev/null || fail "promtool check config"
"$PROMETHEUS" --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
    --web.listen-address="127.0.0.1:$PPORT" --log.level=warn >"$TMP/prometheus.out" 2>&1 &
PIDS+=($!)

wait_for "the target is up" 'up{job="procscope"}' '.[0].value[1] == "1"'
wait_for "psbusy is the top CPU group" \
  'topk(1, rate(procscope_group_cpu_seconds_total[10s]))' '.[0].metric.group == "psbusy"'
wait_for "psbusy is the cpu offender" 'procscope_offender{resource="cpu"}' \
  '.[0].metric.comm == "psbusy"'

# The exposition is clean, hostile name included.
curl -sf "http://127.0.0.1:$PORT/metrics" >"$TMP/metrics.txt"
# The quote and backslash are escaped; the newline and the invalid byte became U+FFFD.
grep -q $'group="ev\\\\"il\\\\\\\\\xef\xbf\xbdx\xef\xbf\xbd"' "$TMP/metrics.txt" ||
  fail "hostile group not exposed as expected"
pass "hostile name escaped and sanitised"
out=$(promtool check metrics <"$TMP/metrics.txt" 2>&1) || fail "promtool check metrics: $out"
[[ -z "$out" ]] || fail "promtool check metrics reported: $out"
pass "promtool check metrics reports nothing"
bad=$(grep -v '^#' "$TMP/metrics.txt" | grep -Ev '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [-+0-9.eEInfaN]+$' || true)
[[ -z "$bad" ]] || fail "lines that are not samples: $bad"
pass "every line is a comment or a sample"
wait_for "still up with the hostile name exposed" 'up{job="procscope"}' '.[0].value[1] == "1"'

# A crash.
"$TMP/pscrash" -c 'kill -SEGV $$' 2>/dev/null || true
for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$PORT/api/v1/events?limit=1000" >"$TMP/events.json"
  jq -e '.events[] | select(.comm == "pscrash" and .signal_name == "SIGSEGV" and .outcome == "CRASHED")' \
    "$TMP/events.json" >/dev/null && break
  sleep 0.1
done
jq -e '.events[] | select(.comm == "pscrash" and .signal_name == "SIGSEGV")' "$TMP/events.json" \
  >/dev/null || fail "crash not in /api/v1/events"
pass "the SIGSEGV is in /api/v1/events"
wait_for "the SIGSEGV is in procscope_group_crashes_total" \
  'procscope_group_crashes_total{group="pscrash",signal="SIGSEGV"}' '(.[0].value[1] | tonumber) >= 1'

# Restart: the crash history survives.
kill -TERM "$DPID"; wait "$DPID" || fail "procscoped did not exit cleanly on SIGTERM"
start_procscoped
curl -sf "http://127.0.0.1:$PORT/api/v1/events?limit=1000" |
  jq -e '.events[] | select(.comm == "pscrash" and .signal_name == "SIGSEGV")' >/dev/null ||
  fail "crash lost across a restart (/api/v1/events)"
curl -sf "http://127.0.0.1:$PORT/metrics" >"$TMP/metrics2.txt"
grep -q '^procscope_group_crashes_total{group="pscrash",signal="SIGSEGV"} [1-9]' "$TMP/metrics2.txt" ||
  fail "crash lost across a restart (/metrics)"
pass "after a restart the crash is still in /api/v1/events and the metrics"
echo "PASS"
