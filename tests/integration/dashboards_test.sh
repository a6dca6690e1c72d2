#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The bundled Grafana dashboards against real data, as root: a real Prometheus scrapes a real
# procscoped (every second, with the deploy/ scrape relabelling and alert rules) while
# procscope-demo injects failures into the worker demo-beta:
#   - while a CPU spike is held, the overview's "Offenders now" query returns that worker (pid,
#     comm, group, resource cpu);
#   - after a CPU spike, memory leak, heavy I/O, crash and OOM kill (`procscope-demo --all`), every
#     panel target, annotation and variable query of the three dashboards
#     (tests/integration/dashboard-queries-run.mjs) returns data, with the variables set to this
#     node, the group demo-beta and the injected worker's pid.
# Usage: dashboards_test.sh <procscoped binary> <procscope-demo binary>
set -euo pipefail
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PROCSCOPED=$(realpath "$1")
DEMO=$(realpath "$2")
PROMETHEUS=$(command -v prometheus || true)
[[ $(id -u) -eq 0 ]] || missing "needs root"
[[ -n "$PROMETHEUS" ]] || missing "needs prometheus (scripts/setup.sh)"
for tool in curl jq node; do command -v "$tool" >/dev/null || missing "needs $tool"; done
# The OOM panels need a real OOM kill, which the demo makes in a v1 memory cgroup.
[[ -f /sys/fs/cgroup/memory/memory.limit_in_bytes && -w /sys/fs/cgroup/memory ]] ||
  missing "needs a writable v1 memory controller for the OOM kill"

scratch procscope-dash

"$PROCSCOPED" --listen=127.0.0.1:0 --pin_path= --quiet --journal_dir= --bpf_stats \
    --sample_interval=500ms --offender_window=5s >"$TMP/procscoped.out" 2>&1 &
DPID=$!; PIDS+=("$DPID")
wait_ready "$TMP/procscoped.out" "$DPID"
EP=127.0.0.1:$PORT

# The production scrape config's job, relabelling (instance = host without port) and rules, with
# a 1 s interval so that a short run has enough samples.
PPORT=$((20000 + RANDOM % 20000))
cp "$ROOT/deploy/prometheus/procscope.rules.yml" "$TMP/"
cat >"$TMP/prometheus.yml" <<YML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [procscope.rules.yml]
scrape_configs:
  - job_name: procscope
    static_configs: [{targets: ['$EP']}]
    relabel_configs:
      - source_labels: [__address__]
        regex: '(.+):[0-9]+'
        target_label: instance
        replacement: '\$1'
YML
promtool check config "$TMP/prometheus.yml" >/dev/null || fail "promtool check config"
"$PROMETHEUS" --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
    --web.listen-address="127.0.0.1:$PPORT" --log.level=warn >"$TMP/prometheus.out" 2>&1 &
PIDS+=($!)
PROM=http://127.0.0.1:$PPORT
START=$(date +%s)
for _ in $(seq 100); do
  curl -sf --get "$PROM/api/v1/query" --data-urlencode 'query=up{job="procscope"} == 1' |
    jq -e '.data.result | length == 1' >/dev/null 2>&1 && break
  sleep 0.2
done
curl -sf --get "$PROM/api/v1/query" --data-urlencode 'query=up{job="procscope"} == 1' |
  jq -e '.data.result | length == 1' >/dev/null || { cat "$TMP/prometheus.out"; fail "no scrape of procscoped"; }
pass "Prometheus on :$PPORT scrapes procscoped on :$PORT"

VARS_BASE='"job":"procscope","instance":"127.0.0.1","__interval":"5s","__rate_interval":"5s","__range":"30s"'
run_queries() {  # mode vars-json extra-args...
  local mode=$1 vars=$2
  shift 2
  node "$HERE/dashboard-queries-run.mjs" "$mode" --root "$ROOT" --prometheus "$PROM" --vars "$vars" "$@"
}

# --- the offender panel names the injected worker ----------------------------------------------
"$DEMO" --scenario cpu_spike --worker beta --hold 25s --endpoint "$EP" >"$TMP/held.out" 2>&1 &
HELD=$!; PIDS+=("$HELD")
for _ in $(seq 300); do grep -qE '^cpu_spike +(PASS|FAIL)' "$TMP/held.out" && break; sleep 0.1; done
re='^cpu_spike +PASS +injected into demo-beta \(pid ([0-9]+)\)'
line=$(grep -E '^cpu_spike ' "$TMP/held.out" || true)
[[ "$line" =~ $re ]] || { cat "$TMP/held.out"; fail "held cpu_spike: $line"; }
pid=${BASH_REMATCH[1]}
ok=0
for _ in $(seq 30); do
  run_queries instant "{$VARS_BASE}" --panel "Offenders now" >"$TMP/offenders.json"
  if jq -e --arg pid "$pid" '[.[] | select(.metric.pid == $pid and .metric.comm == "demo-beta"
        and .metric.group == "demo-beta" and .metric.resource == "cpu" and (.value[1] | tonumber) > 0.5)]
        | length == 1' "$TMP/offenders.json" >/dev/null; then
    ok=1; break
  fi
  sleep 0.5
done
((ok)) || { cat "$TMP/offenders.json"; fail "the overview's Offenders now does not name demo-beta (pid $pid) for cpu"; }
others=$(jq -r --arg pid "$pid" '[.[] | select(.metric.pid != $pid) | .metric.comm] | join(", ")' "$TMP/offenders.json")
[[ "$others" != *demo-* ]] || fail "Offenders now also names other demo workers: $others"
pass "Offenders now (overview) returns the injected worker demo-beta (pid $pid) for cpu: $(jq -c '.[0].value[1]' "$TMP/offenders.json") cores"
wait "$HELD" || fail "held cpu_spike demo: exit $?"

# --- every scenario, then every query ----------------------------------------------------------
# The crash and OOM panels count exits only where procscope was scraped a minute before (see
# newExits in grafana/generate.mjs): give Prometheus that minute of history first.
while (($(date +%s) - START < 62)); do sleep 1; done
set +e
timeout 330 "$DEMO" --all --worker beta --hold 4s --endpoint "$EP" >"$TMP/all.out" 2>&1
rc=$?
set -e
cat "$TMP/all.out"
[[ $rc -eq 0 ]] || fail "procscope-demo --all: exit $rc"
for s in cpu_spike memory_leak io_heavy crash oom; do
  grep -qE "^$s +PASS +injected into demo-beta" "$TMP/all.out" || fail "$s did not PASS on demo-beta"
done
pid=$(sed -nE 's/^cpu_spike +PASS +injected into demo-beta \(pid ([0-9]+)\).*/\1/p' "$TMP/all.out")
sleep 3  # the last scrapes
END=$(date +%s)
vars="{$VARS_BASE,\"group\":\"demo-beta\",\"pid\":\"$pid\"}"
echo "variables: $vars; range $START..$END"
run_queries all "$vars" --start "$START" --end "$END" --step 1 >"$TMP/queries.out" || {
  cat "$TMP/queries.out"; fail "a dashboard query returns no data"; }
cat "$TMP/queries.out"
pass "$(tail -1 "$TMP/queries.out")"
echo "PASS"
