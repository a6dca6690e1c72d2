#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Integration test, as root: who may read procscoped (--web_config_file, exporter-toolkit's format).
#   - a throwaway CA, server and client certificates (openssl), bcrypt hashes (htpasswd);
#   - a real Prometheus scrapes over TLS with basic auth (tls_config, basic_auth): up == 1 and a
#     procscope metric stored; a job with a wrong password is down;
#   - curl: no credentials 401, wrong password 401, right 200; /healthz and /readyz stay open;
#     plain HTTP to the TLS port gets no data;
#   - SIGHUP: a broken file keeps the running config (and says why); then client-certificate
#     mode (RequireAndVerifyClientCert): no certificate or one from another CA is rejected, the
#     CA's client certificate is accepted;
#   - the procscope CLI with --ca_file/--user/--password_file reads the daemon, and without them
#     fails with a message that says what is missing.
# Usage: tls_test.sh <procscoped binary> <procscope binary>
set -euo pipefail
source "$(dirname "$0")/lib.sh"
PROCSCOPED=$(realpath "$1")
CLI=$(realpath "$2")
PROMETHEUS=$(command -v prometheus || true)
[[ -n "$PROMETHEUS" && $(id -u) -eq 0 ]] || missing "needs root and prometheus (scripts/setup.sh)"
for tool in openssl htpasswd curl jq; do
  command -v "$tool" >/dev/null || missing "needs $tool (scripts/setup.sh)"
done
scratch procscope-tls
cd "$TMP"

# --- Certificates: a CA, a server certificate for 127.0.0.1, a client certificate, and a client
# certificate from another CA.
cert() {  # name CN ca-name extension-lines
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$2" \
      -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$4" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 2 \
      -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
for ca in ca otherca; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
      -subj "/CN=procscope test $ca" -keyout "$ca.key" -out "$ca.pem" 2>/dev/null
done
cert server 127.0.0.1 ca $'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth'
cert client prometheus ca 'extendedKeyUsage=clientAuth'
cert rogue prometheus otherca 'extendedKeyUsage=clientAuth'
[[ -s server.pem && -s client.pem && -s rogue.pem ]] || fail "openssl did not make the certificates"

PASSWORD=correct-horse-$RANDOM
printf '%s' "$PASSWORD" >password
printf 'wrong' >wrong-password
HASH=$(htpasswd -nbBC 10 "" "$PASSWORD" | tr -d ':\n')
cat >web.yml <<YML
# As a node_exporter web-config would be (relative paths: from this file's directory).
tls_server_config:
  cert_file: server.pem
  key_file: server.key
  min_version: TLS12
basic_auth_users:
  prom: $HASH
YML

# --- procscoped over TLS with basic auth.
"$PROCSCOPED" --listen=127.0.0.1:0 --quiet --journal_dir= --pin_path= --sample_interval=500ms \
    --web_config_file="$TMP/web.yml" >procscoped.out 2>&1 &
DPID=$!; PIDS+=("$DPID")
PORT=
for _ in $(seq 150); do
  PORT=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' procscoped.out || true)
  [[ -n "$PORT" ]] && curl -sf --cacert ca.pem "https://127.0.0.1:$PORT/readyz" >/dev/null && break
  kill -0 "$DPID" 2>/dev/null || { cat procscoped.out; fail "procscoped exited"; }
  sleep 0.1
done
[[ -n "$PORT" ]] || { cat procscoped.out; fail "procscoped not ready"; }
grep -q "serving https://127.0.0.1:0 (port $PORT), basic auth" procscoped.out ||
  { cat procscoped.out; fail "the start line does not say https and basic auth"; }
pass "procscoped serves https on port $PORT"
URL="https://127.0.0.1:$PORT"

code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" || true; }
[[ $(code --cacert ca.pem "$URL/metrics") == 401 ]] || fail "no credentials: not 401"
pass "no credentials: 401"
[[ $(code --cacert ca.pem -u prom:wrong "$URL/metrics") == 401 ]] || fail "wrong password: not 401"
[[ $(code --cacert ca.pem -u nobody:"$PASSWORD" "$URL/metrics") == 401 ]] || fail "unknown user: not 401"
pass "wrong password and unknown user: 401"
for p in /api/v1/processes /api/v1/events /api/v1/status /api/v1/offenders; do
  [[ $(code --cacert ca.pem "$URL$p") == 401 ]] || fail "$p without credentials: not 401"
done
pass "the API needs the credentials too"
# Into a file first: grep -q stops reading at its match, and under pipefail curl's SIGPIPE
# would fail the pipeline.
curl -sf --cacert ca.pem -u "prom:$PASSWORD" -o m.txt "$URL/metrics" &&
  grep -q '^procscope_tracked_processes ' m.txt ||
  fail "right password: no metrics"
pass "right password: 200 with metrics"
[[ $(code --cacert ca.pem "$URL/healthz") == 200 && $(code --cacert ca.pem "$URL/readyz") == 200 ]] ||
  fail "/healthz and /readyz must stay open for probes"
pass "/healthz and /readyz open without credentials"
plain=$(curl -s --max-time 5 "http://127.0.0.1:$PORT/metrics" 2>&1 || true)
[[ "$plain" != *procscope_* ]] || fail "plain HTTP to the TLS port got data"
[[ $(code "http://127.0.0.1:$PORT/metrics") != 200 ]] || fail "plain HTTP got a 200"
pass "plain HTTP to the TLS port: no data"
[[ $(code --cacert ca.pem --tls-max 1.1 "$URL/healthz") == 000 ]] || fail "TLS 1.1 was accepted"
pass "TLS 1.1 refused (min_version TLS12)"

# --- A real Prometheus: TLS with the CA, basic auth from a password file.
PPORT=$((20000 + RANDOM % 20000))
cat >prometheus.yml <<YML
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: procscope
    scheme: https
    tls_config: {ca_file: $TMP/ca.pem}
    basic_auth: {username: prom, password_file: $TMP/password}
    static_configs: [{targets: ['127.0.0.1:$PORT']}]
  - job_name: wrong-password
    scheme: https
    tls_config: {ca_file: $TMP/ca.pem}
    basic_auth: {username: prom, password_file: $TMP/wrong-password}
    static_configs: [{targets: ['127.0.0.1:$PORT']}]
YML
promtool check config prometheus.yml >/dev/null || fail "promtool check config"
"$PROMETHEUS" --config.file=prometheus.yml --storage.tsdb.path=tsdb \
    --web.listen-address="127.0.0.1:$PPORT" --log.level=warn >prometheus.out 2>&1 &
PIDS+=($!)
before_wait_fail() { cat prometheus.out; }
wait_for "Prometheus scrapes over TLS with basic auth: up == 1" 'up{job="procscope"}' \
  '.[0].value[1] == "1"'
wait_for "a procscope metric is stored" 'procscope_tracked_processes{job="procscope"}' \
  '(.[0].value[1] | tonumber) > 0'
wait_for "the job with a wrong password is down" 'up{job="wrong-password"}' '.[0].value[1] == "0"'

# --- The CLI.
if out=$("$CLI" status --endpoint="$URL" 2>&1); then fail "CLI without credentials succeeded: $out"; fi
[[ "$out" == *certificate* || "$out" == *ca_file* ]] ||
  fail "CLI without --ca_file: the message does not say what is missing: $out"
pass "CLI without --ca_file fails: $(echo "$out" | head -1)"
if out=$("$CLI" status --endpoint="$URL" --ca_file=ca.pem 2>&1); then
  fail "CLI without a password succeeded"
fi
[[ "$out" == *401* && "$out" == *--user* ]] || fail "CLI without credentials: unclear message: $out"
pass "CLI without --user fails: $(echo "$out" | head -1)"
"$CLI" status --endpoint="$URL" --ca_file=ca.pem --user=prom --password_file=password \
    >cli.out 2>&1 || { cat cli.out; fail "CLI with --ca_file/--user/--password_file failed"; }
grep -q "health" cli.out || { cat cli.out; fail "CLI status printed no health line"; }
"$CLI" top --endpoint="$URL" --ca_file=ca.pem --user=prom --password_file=password \
    >cli-top.out 2>&1 || { cat cli-top.out; fail "CLI top over TLS failed"; }
pass "CLI over TLS with basic auth works (status, top)"

# --- SIGHUP: a broken file keeps the running config.
cp web.yml web.good
printf 'tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  bogus_key: 1\n' >web.yml
kill -HUP "$DPID"
for _ in $(seq 50); do grep -q "bogus_key" procscoped.out && break; sleep 0.1; done
grep -q "keeping the current one.*unknown key 'bogus_key'" procscoped.out ||
  { cat procscoped.out; fail "a broken web config on SIGHUP is not reported with its reason"; }
[[ $(code --cacert ca.pem "$URL/metrics") == 401 &&
   $(code --cacert ca.pem -u "prom:$PASSWORD" "$URL/metrics") == 200 ]] ||
  fail "after a broken reload the running config (TLS + basic auth) is not kept"
pass "SIGHUP with a broken file: running config kept, reason logged"

# --- SIGHUP into client-certificate mode.
cat >web.yml <<YML
tls_server_config:
  cert_file: server.pem
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.pem
YML
kill -HUP "$DPID"
for _ in $(seq 50); do grep -q "web config reloaded" procscoped.out && break; sleep 0.1; done
grep -q "web config reloaded" procscoped.out || { cat procscoped.out; fail "no reload"; }
[[ $(code --cacert ca.pem "$URL/metrics") =~ ^(000|403)$ ]] ||
  fail "client-certificate mode: a client without a certificate was not rejected"
pass "client-certificate mode rejects a client without a certificate"
[[ $(code --cacert ca.pem --cert rogue.pem --key rogue.key "$URL/metrics") =~ ^(000|403)$ ]] ||
  fail "client-certificate mode: a certificate from another CA was accepted"
pass "client-certificate mode rejects a certificate from another CA"
curl -sf --cacert ca.pem --cert client.pem --key client.key -o m.txt "$URL/metrics" &&
  grep -q '^procscope_tracked_processes ' m.txt || fail "client-certificate mode: the CA's client rejected"
pass "client-certificate mode accepts the CA's client certificate"
"$CLI" status --endpoint="$URL" --ca_file=ca.pem --cert_file=client.pem --key_file=client.key \
    >cli.out 2>&1 || { cat cli.out; fail "CLI with a client certificate failed"; }
pass "CLI with --cert_file/--key_file works"
pass "all TLS checks"
