#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Validates the deployment bundle (deploy/, grafana/) against the real tools and schemas:
#   - Prometheus: `promtool check config` (both scrape configs), `promtool check rules`,
#     `promtool test rules` (every alert fires on its synthetic series and stays quiet on others;
#     a mutation check proves each alert's test fails if the alert never fires); every metric the
#     rules use exists in docs/metrics.md;
#   - Alertmanager: `amtool check-config`, `amtool config routes test`, and a real Alertmanager fed
#     alerts, which must mute exactly what the inhibit rules say;
#   - systemd: `systemd-analyze verify` of the unit (in a scratch root with a stand-in binary);
#   - Kubernetes: every manifest against the Kubernetes and prometheus-operator schemas (npm
#     packages kubernetes-models and @kubernetes-models/prometheus-operator, installed here with
#     `npm ci` from package-lock.json, as are @grafana/schema and typescript for the dashboards),
#     no unknown fields, the DaemonSet's security settings, the PrometheusRule equal to the rule
#     file, the same capabilities as the systemd unit, flags that procscoped has; the kustomize
#     output too when kubectl is at hand;
#   - Grafana (validate-dashboards.mjs): every dashboard of grafana/dashboards type-checks against
#     Grafana's dashboard schema (the `Dashboard` type of @grafana/schema, with the TypeScript
#     compiler: unknown fields, wrong types and enum values are errors; a self-test proves the check
#     catches each), and holds what the schema leaves open (panel types, ids, the grid, the
#     ${datasource} variable everywhere, defined variables, documented metrics, data links); the
#     files are what grafana/generate.mjs makes; the provisioning files agree with
#     docs/dashboards.md and the scrape interval; grafana/kustomization.yaml makes a valid ConfigMap
#     of all dashboards small enough for `kubectl apply` (and equal to the kustomize output when
#     kubectl is at hand);
#   - container: the Dockerfile's Debian packages exist (apt-cache), its build packages are
#     scripts/setup.sh's, its runtime packages cover what a built procscoped links.
# Usage: tests/deploy/validate.sh [procscoped binary, for the runtime-library check]
# Exit: 0 all passed; 1 something failed; 77 a tool was missing (CI unset) and its checks were
# skipped, all others passed. With CI set, a missing tool is a failure.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DEPLOY=$ROOT/deploy
PROCSCOPED=${1:-}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/procscope-deploy.XXXXXX")
AM_PID=
cleanup() {
  [[ -n "$AM_PID" ]] && kill "$AM_PID" 2>/dev/null && wait "$AM_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

FAILED=()
SKIPPED=()
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; FAILED+=("$*"); }
# have TOOL WHAT: is TOOL installed? If not: a failure under CI, else a skip of WHAT.
have() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [[ -n "${CI:-}" ]]; then
    fail "$1 is not installed ($2 cannot run; scripts/setup.sh installs it)"
  else
    echo "SKIP: $2: $1 is not installed (scripts/setup.sh installs it)"
    SKIPPED+=("$2")
  fi
  return 1
}
# run WHAT CMD...: run CMD, show its output only when it fails.
run() {
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$what"; else fail "$what"; echo "$out" | sed 's/^/    /'; fi
}

echo "== Prometheus"
if have promtool "promtool checks"; then
  run "promtool check rules procscope.rules.yml" promtool check rules "$DEPLOY/prometheus/procscope.rules.yml"
  run "promtool check config prometheus.yml" promtool check config "$DEPLOY/prometheus/prometheus.yml"
  # shellcheck disable=SC2046
  run "promtool test rules ($(ls "$DEPLOY"/prometheus/tests/*.test.yml | wc -l) files)" \
    promtool test rules "$DEPLOY"/prometheus/tests/*.test.yml
fi

# Every procscope metric the rules read is one docs/metrics.md documents (a renamed metric breaks
# this test, not the alerts in production). Recording-rule names (procscope:...) are not metrics.
missing=()
while read -r m; do
  grep -q "\`$m\`" "$ROOT/docs/metrics.md" || missing+=("$m")
done < <(grep -oE '(^|[^a-z0-9_:])procscope_[a-z0-9_]+' "$DEPLOY/prometheus/procscope.rules.yml" |
         sed -E 's/^[^p]//' | sort -u)
n_metrics=$(grep -oE '(^|[^a-z0-9_:])procscope_[a-z0-9_]+' "$DEPLOY/prometheus/procscope.rules.yml" |
            sed -E 's/^[^p]//' | sort -u | wc -l)
if ((${#missing[@]})); then
  fail "the rules use metrics docs/metrics.md does not document: ${missing[*]}"
elif ((n_metrics < 5)); then
  fail "found only $n_metrics procscope metrics in the rules: the check is broken"
else
  ok "the $n_metrics procscope metrics the rules use are all in docs/metrics.md"
fi

echo "== Alertmanager"
AM_CONFIG=$DEPLOY/alertmanager/alertmanager.yml
if have amtool "amtool checks"; then
  run "amtool check-config alertmanager.yml" amtool check-config "$AM_CONFIG"
  # route LABELS... RECEIVER: the alert with these labels goes to RECEIVER.
  route() {
    local want=${*: -1} got
    got=$(amtool config routes test --config.file="$AM_CONFIG" "${@:1:$#-1}" 2>/dev/null)
    if [[ "$got" == "$want" ]]; then ok "route ${*:1:$#-1} -> $want"
    else fail "route ${*:1:$#-1}: expected $want, got '$got'"; fi
  }
  route alertname=ProcscopeGroupCPUSaturation severity=red instance=n1 group=java procscope-red
  route alertname=ProcscopeDown severity=red instance=n1 procscope-red
  route alertname=ProcscopeGroupMemoryLeak severity=amber instance=n1 group=java procscope-amber
  route alertname=NodeFilesystemFull severity=red instance=n1 default
fi

# A real Alertmanager with the example config: fire alerts at it, read back which are inhibited.
if have prometheus-alertmanager "the Alertmanager inhibition test" && have curl "the Alertmanager inhibition test" &&
   have jq "the Alertmanager inhibition test"; then
  port=$((20000 + RANDOM % 20000))
  prometheus-alertmanager --config.file="$AM_CONFIG" --storage.path="$TMP/am" \
    --web.listen-address="127.0.0.1:$port" --cluster.listen-address= --log.level=warn \
    >"$TMP/am.log" 2>&1 &
  AM_PID=$!
  for _ in $(seq 100); do curl -sf "127.0.0.1:$port/-/ready" >/dev/null && break; sleep 0.1; done
  alerts='[
    {"labels":{"alertname":"ProcscopeGroupOOMKilled","severity":"red","instance":"n1","job":"procscope","group":"java"}},
    {"labels":{"alertname":"ProcscopeGroupMemoryLeak","severity":"amber","instance":"n1","job":"procscope","group":"java"}},
    {"labels":{"alertname":"ProcscopeGroupMemoryLeak","severity":"amber","instance":"n1","job":"procscope","group":"cache"}},
    {"labels":{"alertname":"ProcscopeGroupMemoryLeak","severity":"amber","instance":"n2","job":"procscope","group":"java"}},
    {"labels":{"alertname":"ProcscopeDown","severity":"red","instance":"n3","job":"procscope"}},
    {"labels":{"alertname":"ProcscopeGroupCPUSaturation","severity":"red","instance":"n3","job":"procscope","group":"db"}},
    {"labels":{"alertname":"ProcscopeKernelEventsDropped","severity":"amber","instance":"n3","job":"procscope","reason":"ringbuf"}},
    {"labels":{"alertname":"NodeFilesystemFull","severity":"red","instance":"n3","job":"node"}}
  ]'
  if ! curl -sf -XPOST -H 'Content-Type: application/json' "127.0.0.1:$port/api/v2/alerts" -d "$alerts" >/dev/null; then
    fail "Alertmanager did not accept the test alerts"; cat "$TMP/am.log"
  else
    # Muted: n1's amber alert of the group that is red there; everything procscope says about
    # n3, where procscope is down. Not muted: other groups, other nodes, other jobs' alerts.
    want='ProcscopeGroupCPUSaturation n3 db
ProcscopeGroupMemoryLeak n1 java
ProcscopeKernelEventsDropped n3 -'
    got=$(curl -sf "127.0.0.1:$port/api/v2/alerts" |
          jq -r '.[] | select((.status.inhibitedBy | length) > 0) | "\(.labels.alertname) \(.labels.instance) \(.labels.group // "-")"' |
          sort)
    active=$(curl -sf "127.0.0.1:$port/api/v2/alerts" | jq '[.[] | select(.status.state == "active")] | length')
    if [[ "$got" == "$want" && "$active" == 5 ]]; then
      ok "Alertmanager inhibits amber under red per node+group, and a node's alerts while procscope is down there"
    else
      fail "Alertmanager inhibition: muted"; echo "$got" | sed 's/^/    got: /'; echo "$want" | sed 's/^/    want: /'
    fi
  fi
  kill "$AM_PID" 2>/dev/null; wait "$AM_PID" 2>/dev/null; AM_PID=
fi

echo "== systemd"
if have systemd-analyze "systemd-analyze verify"; then
  # A scratch root: the unit, the system's units it depends on, stand-ins for the binaries.
  SR=$TMP/sysroot
  mkdir -p "$SR/etc/systemd/system" "$SR/usr/lib/systemd" "$SR/usr/local/sbin" "$SR/usr/bin"
  ln -s usr/bin "$SR/bin"
  cp -r /usr/lib/systemd/system "$SR/usr/lib/systemd/" 2>/dev/null || mkdir -p "$SR/usr/lib/systemd/system"
  printf '#!/bin/sh\nexit 0\n' >"$SR/usr/local/sbin/procscoped"
  cp "$SR/usr/local/sbin/procscoped" "$SR/usr/bin/kill"
  chmod 0755 "$SR/usr/local/sbin/procscoped" "$SR/usr/bin/kill"
  cp "$DEPLOY/systemd/procscoped.service" "$SR/etc/systemd/system/"
  # verify exits 0 on settings it ignores with a warning: any output is a failure too.
  if out=$(systemd-analyze verify --root="$SR" procscoped.service 2>&1) && [[ -z "$out" ]]; then
    ok "systemd-analyze verify procscoped.service"
  else
    fail "systemd-analyze verify procscoped.service"; echo "$out" | sed 's/^/    /'
  fi
fi

echo "== Kubernetes"
run "prometheusrule.yaml is generated from procscope.rules.yml" "$DEPLOY/kubernetes/generate-prometheusrule.sh" --check
npm_ok=0 # set when tests/deploy/node_modules holds package-lock.json (the Grafana checks need it too)
if have node "the manifest, scrape-config and rule-test checks (Node.js)" &&
   have npm "the manifest, scrape-config and rule-test checks (npm)"; then
  # npm ci from the lock file; skipped when node_modules already holds exactly that lock.
  lock_sum=$(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1)
  stamp=$HERE/node_modules/.procscope-lock.sha256
  npm_ok=1
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$lock_sum" ]]; then
    if out=$(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error 2>&1); then
      echo "$lock_sum" >"$stamp"
      ok "npm ci (kubernetes-models, @kubernetes-models/prometheus-operator, yaml, @grafana/schema, typescript)"
    else
      npm_ok=0
      if [[ -n "${CI:-}" ]]; then fail "npm ci in tests/deploy"; echo "$out" | sed 's/^/    /'
      else echo "SKIP: the Node.js checks: npm ci failed (no registry?)"; echo "$out" | sed 's/^/    /'
           SKIPPED+=("the Node.js checks"); fi
    fi
  fi
  if ((npm_ok)); then
    rendered=()
    if command -v kubectl >/dev/null 2>&1 && kubectl kustomize "$DEPLOY/kubernetes" >"$TMP/rendered.yaml" 2>"$TMP/kustomize.err"; then
      rendered=(--rendered "$TMP/rendered.yaml")
    elif command -v kustomize >/dev/null 2>&1 && kustomize build "$DEPLOY/kubernetes" >"$TMP/rendered.yaml" 2>"$TMP/kustomize.err"; then
      rendered=(--rendered "$TMP/rendered.yaml")
    fi
    if out=$(node "$HERE/validate-manifests.mjs" --root "$ROOT" "${rendered[@]}" 2>&1); then
      echo "$out"
    else
      echo "$out"; FAILED+=("manifests")
    fi
    if have promtool "the scrape-config and rule-test checks"; then
      if out=$(node "$HERE/check-scrape-configs.mjs" "$DEPLOY/prometheus/prometheus-kubernetes.yml" 2>&1); then
        echo "$out"
      else
        echo "$out"; FAILED+=("prometheus-kubernetes.yml")
      fi
      if out=$(node "$HERE/check-rule-tests.mjs" --root "$ROOT" 2>&1); then
        echo "$out"
      else
        echo "$out"; FAILED+=("rule tests coverage")
      fi
    fi
  fi
fi

echo "== Grafana"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  have node "the dashboard checks (Node.js)" && have npm "the dashboard checks (npm)"
elif ((!npm_ok)); then
  # npm ci failed above (a failure under CI already, else a skip).
  echo "SKIP: the dashboard checks: npm ci failed"
  [[ -n "${CI:-}" ]] || SKIPPED+=("the dashboard checks")
else
  # The ConfigMap kustomize really makes, when kubectl (or kustomize) is at hand.
  rendered=()
  kustomize_cmd=()
  if command -v kubectl >/dev/null 2>&1; then kustomize_cmd=(kubectl kustomize "$ROOT/grafana")
  elif command -v kustomize >/dev/null 2>&1; then kustomize_cmd=(kustomize build "$ROOT/grafana"); fi
  if ((${#kustomize_cmd[@]})); then
    if "${kustomize_cmd[@]}" >"$TMP/grafana.yaml" 2>"$TMP/kustomize-grafana.err"; then
      rendered=(--rendered "$TMP/grafana.yaml")
    else
      fail "${kustomize_cmd[*]}"; sed 's/^/    /' "$TMP/kustomize-grafana.err"
    fi
  fi
  if out=$(node "$HERE/validate-dashboards.mjs" --root "$ROOT" "${rendered[@]}" 2>&1); then
    echo "$out"
  else
    echo "$out"; FAILED+=("dashboards")
  fi
fi

echo "== container"
DOCKERFILE=$DEPLOY/container/Dockerfile
# The packages of the apt-get install in stage N (1: build, 2: runtime).
stage_packages() {
  awk -v want="$1" '
    /^FROM / { stage++ }
    stage == want && /apt-get install/ { grab = 1 }
    grab {
      line = $0
      sub(/.*--no-install-recommends/, "", line)
      n = split(line, w, /[ \\\t]+/)
      for (i = 1; i <= n; i++) if (w[i] ~ /^[a-z0-9][a-z0-9.+-]+$/) print w[i]
      if ($0 !~ /\\$/) grab = 0
    }' "$DOCKERFILE" | grep -vx -e '&&' -e 'rm' | sort -u
}
build_pkgs=$(stage_packages 1)
runtime_pkgs=$(stage_packages 2)
setup_build=$(sed -n '/^  # build$/,/^  # /p' "$ROOT/scripts/setup.sh" | sed 's/#.*//' | tr -s ' ' '\n' | grep . | sort -u)
if [[ -z "$build_pkgs" || -z "$runtime_pkgs" ]]; then
  fail "Dockerfile: could not read its package lists"
elif [[ "$build_pkgs" != "$setup_build" ]]; then
  fail "Dockerfile: the build stage's packages differ from scripts/setup.sh's build packages"
  diff <(echo "$build_pkgs") <(echo "$setup_build") | sed 's/^/    /'
else
  ok "Dockerfile: build stage installs scripts/setup.sh's $(echo "$build_pkgs" | wc -l) build packages"
fi
if have apt-cache "the Dockerfile package check"; then
  # One apt-cache call: a "name:" line per package it knows, then its Candidate.
  # shellcheck disable=SC2086
  known=$(apt-cache policy $build_pkgs $runtime_pkgs 2>/dev/null |
          awk '/^[^ ].*:$/ { name = substr($0, 1, length($0) - 1) }
               /^  Candidate:/ && $2 != "(none)" { print name }' | sort -u)
  bad=$(comm -23 <(printf '%s\n' $build_pkgs $runtime_pkgs | sort -u) <(echo "$known"))
  if [[ -n "$bad" ]]; then fail "Dockerfile: no such Debian package here: $(echo $bad)"
  else ok "Dockerfile: all $(echo $build_pkgs $runtime_pkgs | wc -w) Debian packages exist (apt-cache policy)"; fi
fi
# The runtime stage must hold every shared library a built procscoped needs (libc6 is in the base).
if [[ -z "$PROCSCOPED" ]]; then
  for b in "${BUILD_DIR:-$ROOT/build}/daemon/procscoped" "$ROOT/build/daemon/procscoped"; do
    [[ -x "$b" ]] && { PROCSCOPED=$b; break; }
  done
fi
if [[ -n "$PROCSCOPED" && -x "$PROCSCOPED" ]] && command -v ldd >/dev/null && command -v dpkg >/dev/null; then
  need=$(ldd "$PROCSCOPED" | awk '$3 ~ /^\// {print $3}' | xargs -r readlink -f | xargs -r dpkg -S 2>/dev/null |
         cut -d: -f1 | sort -u | grep -vx libc6)
  uncovered=$(comm -23 <(echo "$need") <(echo "$runtime_pkgs"))
  if [[ -n "$uncovered" ]]; then
    fail "Dockerfile: the runtime stage lacks $(echo $uncovered) (linked by $PROCSCOPED)"
  else
    ok "Dockerfile: the runtime stage has the $(echo "$need" | wc -l) packages whose libraries procscoped links"
  fi
else
  echo "note: no built procscoped: runtime libraries not checked against ldd"
fi

echo
if ((${#FAILED[@]})); then
  echo "deploy validation FAILED: ${#FAILED[@]} problem(s)"
  exit 1
fi
if ((${#SKIPPED[@]})); then
  echo "deploy validation passed, but skipped: ${SKIPPED[*]}"
  exit 77
fi
echo "deploy validation passed"
