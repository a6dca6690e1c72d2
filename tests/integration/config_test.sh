#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# procscoped's configuration as an operator meets it, as root:
#   - a bad config file at start is one line naming file:line, exit code 2;
#   - SIGHUP re-reads the file: a new --exclude takes effect; a bad file is reported and the
#     running config kept;
#   - SIGTERM stops it cleanly (exit 0) with the crash journal flushed;
#   - what a new user runs into (issue 11): --help lists the daemon's flags and exits 0; a
#     directory, FIFO or huge file as --config, flagfile=, --flagfile, out-of-range, inf/nan and
#     negative values, a missing --proc_root, a bad --btf: each one short escaped line, exit 2
#     (1 for the load error), never echoing a file's content; a directory on SIGHUP keeps the
#     running config.
# Usage: config_test.sh <procscoped binary>
set -euo pipefail
source "$(dirname "$0")/lib.sh"
PROCSCOPED=$(realpath "$1")
[[ $(id -u) -eq 0 ]] || missing "needs root"
command -v ss >/dev/null || missing "needs ss (iproute2: scripts/setup.sh)"
scratch procscope-cfg

# rejects ARGS...: procscoped exits 2 with one line on stderr; sets $out.
rejects() {
  local rc=0
  out=$("$PROCSCOPED" --listen=127.0.0.1:0 --journal_dir= --pin_path= --quiet "$@" 2>&1 </dev/null) || rc=$?
  [[ $rc -eq 2 ]] || fail "$*: exit $rc, want 2: ${out:0:300}"
  [[ $(printf '%s\n' "$out" | wc -l) -eq 1 ]] || fail "$*: not one line: ${out:0:300}"
  [[ ${#out} -lt 300 ]] || fail "$*: ${#out} bytes of error: ${out:0:300}"
  [[ "$out" != *procscoped:\ procscoped:* ]] || fail "$*: doubled prefix: $out"
  LC_ALL=C; [[ "$out" != *[^[:print:]]* ]] || fail "$*: unprintable bytes in: $out"
}

# --help: the daemon's flags, exit 0, one "procscoped:" prefix.
rc=0; help=$("$PROCSCOPED" --help 2>&1) || rc=$?
[[ $rc -eq 0 ]] || fail "--help: exit $rc"
[[ "$help" != *"No flags matched"* ]] || fail "--help: $help"
for f in --listen --config --top_k --journal_dir --proc_root; do
  grep -q -- "^  $f " <<<"$help" || fail "--help does not list $f"
done
[[ "$help" != *"procscoped: procscoped:"* ]] || fail "--help: doubled prefix"
grep -q -- "--flagfile" <<<"$help" && fail "--help lists Abseil's flags"
rc=0; full=$("$PROCSCOPED" --helpfull 2>&1) || rc=$?
[[ $rc -eq 0 && "$full" == *"--top_k"* && "$full" == *"--flagfile"* ]] || fail "--helpfull: exit $rc"
pass "--help lists the daemon's flags and exits 0 (--helpfull: all)"

# Files that are not config files, and what must never be echoed.
mkdir "$TMP/confdir"
rejects --config="$TMP/confdir"
[[ "$out" == *"confdir: a directory"* ]] || fail "directory as --config: $out"
mkfifo "$TMP/fifo"
rejects --config="$TMP/fifo"
[[ "$out" == *"not a regular file"* ]] || fail "FIFO as --config: $out"
head -c $((50 << 20)) /dev/zero | tr '\0' 'x' >"$TMP/huge.conf"
rejects --config="$TMP/huge.conf"
pass "a directory, a FIFO, a 50 MB file as --config: one short line, exit 2"
printf 'SECRET-LINE-1\nSECRET-LINE-2\n' >"$TMP/secret"
chmod 0600 "$TMP/secret"
rejects --flagfile="$TMP/secret"
[[ "$out" != *SECRET* && "$out" == *"--config"* ]] || fail "--flagfile: $out"
printf 'top_k=5\nflagfile=%s\n' "$TMP/secret" >"$TMP/ff.conf"
rejects --config="$TMP/ff.conf"
[[ "$out" == *"ff.conf:2"*"flagfile"* && "$out" != *SECRET* ]] || fail "flagfile= in a config: $out"
{ printf 'top_k=\033[2J'; head -c 500000 /dev/zero | tr '\0' 9; echo; } >"$TMP/long.conf"
rejects --config="$TMP/long.conf"
[[ "$out" == *"long.conf:1: --top_k=\\x1b[2J999"*"bytes)"* ]] || fail "long bad line: $out"
rejects $'stray\x1b[2J'
[[ "$out" == *"unexpected argument 'stray\\x1b[2J'"* ]] || fail "positional argument: $out"
pass "--flagfile and flagfile= are refused unread; a 500 KB bad line is cut and escaped: $out"

# Values: the given value (not a clamped one), with file:line when the file gave it.
rejects --top_k=-1
[[ "$out" == *"--top_k=-1"* ]] || fail "--top_k=-1: $out"
printf '# x\ntop_k=5000\n' >"$TMP/range.conf"
rejects --config="$TMP/range.conf"
[[ "$out" == *"range.conf:2: --top_k=5000"* ]] || fail "range error from a file: $out"
printf 'events_in_memory=-3\n' >"$TMP/neg.conf"
rejects --config="$TMP/neg.conf"
[[ "$out" == *"neg.conf:1: --events_in_memory=-3"* ]] || fail "negative from a file: $out"
for v in inf nan -inf; do
  rejects --offender_min_cpu_cores=$v
  [[ "$out" == *"--offender_min_cpu_cores=$v"*"finite"* ]] || fail "threshold $v: $out"
done
rejects --proc_root="$TMP/nonexistent"
[[ "$out" == *"--proc_root="*"No such file"* ]] || fail "missing --proc_root: $out"
rejects --proc_root="$TMP"
[[ "$out" == *"not a procfs"* ]] || fail "--proc_root not procfs: $out"
rejects --log_level=loud
[[ "$out" == *"--log_level=loud: want debug, info, warning or error"* ]] || fail "--log_level=loud: $out"
pass "range, negative, inf/nan and --proc_root errors show the given value and file:line"

# Enum flags (Abseil custom flag types): a bad value lists the valid ones, escaped, from the
# command line or with file:line from the file.
rejects --attach=kprobe
[[ "$out" == "procscoped: --attach=kprobe: must be one of auto, tp_btf, raw_tp" ]] || fail "--attach: $out"
rejects --group_by $'pod\e[2J'
[[ "$out" == 'procscoped: --group_by=pod\x1b[2J: must be one of comm, exe, container, unit, user' ]] ||
  fail "--group_by: $out"
printf 'attach=raw_tp\ngroup_by=Comm\n' >"$TMP/enum.conf"
rejects --config="$TMP/enum.conf"
[[ "$out" == *"enum.conf:2: --group_by=Comm: must be one of comm, exe, container, unit, user" ]] ||
  fail "group_by from a file: $out"
pass "a bad --attach/--group_by lists the valid values (from a file: file:line): $out"

# A load error that is not EPERM/EACCES: a valid BTF file with nothing but "int" in it.
printf '\x9f\xeb\x01\x00\x18\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x10\x00\x00\x00\x05\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01\x04\x00\x00\x00\x20\x00\x00\x00\x00int\x00' >"$TMP/int.btf"
rc=0; out=$("$PROCSCOPED" --listen=127.0.0.1:0 --journal_dir= --pin_path= --quiet --btf="$TMP/int.btf" 2>&1) || rc=$?
[[ $rc -eq 1 && "$out" == *"loading the BPF programs failed"* ]] || fail "bad --btf: exit $rc: $out"
[[ "$out" != *"(;"* && "$out" == *"--verbose"* ]] || fail "bad --btf message: $out"
# libbpf's warnings (it cannot relocate against this BTF) show by default, as libbpf lines;
# --log_level=error hides them and still shows the error.
grep -q '^procscoped: libbpf: ' <<<"$out" || fail "bad --btf: no libbpf warning by default: $out"
rc=0; quiet=$("$PROCSCOPED" --listen=127.0.0.1:0 --journal_dir= --pin_path= --quiet --btf="$TMP/int.btf" --log_level=error 2>&1) || rc=$?
[[ $rc -eq 1 && "$quiet" == *"loading the BPF programs failed"* ]] || fail "bad --btf at error level: exit $rc: $quiet"
[[ "$quiet" != *"libbpf: "* && $(printf '%s\n' "$quiet" | wc -l) -eq 1 ]] || fail "--log_level=error shows libbpf's warnings: $quiet"
echo junk >"$TMP/junk.btf"
rc=0; out=$("$PROCSCOPED" --listen=127.0.0.1:0 --journal_dir= --pin_path= --quiet --btf="$TMP/junk.btf" 2>&1) || rc=$?
[[ $rc -ne 0 && "$out" == *"not a valid BTF file"* && "$out" != *"Unknown error"* ]] || fail "junk --btf: $out"
pass "a load error names its cause: $out"

# Bad config at start.
printf 'top_k=5\nno_such_setting=1\n' >"$TMP/bad.conf"
set +e
out=$("$PROCSCOPED" --config="$TMP/bad.conf" --listen=127.0.0.1:0 --journal_dir= --pin_path= 2>&1)
rc=$?
set -e
[[ $rc -eq 2 ]] || fail "bad config: exit $rc, want 2: $out"
[[ $(printf '%s\n' "$out" | wc -l) -eq 1 ]] || fail "bad config: not one line: $out"
[[ "$out" == *"bad.conf:2"*"no_such_setting"* ]] || fail "bad config: message: $out"
pass "a bad config file is one line naming file:line, exit 2"
printf 'offender_window=1s\n' >"$TMP/bad2.conf"
set +e
out=$("$PROCSCOPED" --config="$TMP/bad2.conf" --listen=127.0.0.1:0 --journal_dir= --pin_path= 2>&1)
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

# A directory in the config file's place on SIGHUP: refused, the running config (the exclude) kept.
mv "$TMP/good.conf" "$TMP/good.conf.saved"
mkdir "$TMP/good.conf"
kill -HUP "$DPID"
for _ in $(seq 50); do grep -q "reload failed" "$TMP/out" && break; sleep 0.1; done
grep -q "config reload failed.*good.conf: a directory" "$TMP/out" || { cat "$TMP/out"; fail "directory on SIGHUP not reported"; }
sleep 1
has_victim && fail "a directory on SIGHUP reset the --exclude"
rmdir "$TMP/good.conf"
mv "$TMP/good.conf.saved" "$TMP/good.conf"
pass "a directory on SIGHUP is reported and the running config kept"

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
for _ in $(seq 50); do grep -q "reload failed.*top_k" "$TMP/out" && break; sleep 0.1; done
grep -q "config reload failed.*good.conf:1: --top_k=banana" "$TMP/out" || { cat "$TMP/out"; fail "bad reload not reported"; }
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

# --log_level from the config file: error hides the INFO start lines; SIGHUP applies a new level.
# The port is not logged at that level: ss finds it.
printf 'log_level=error\n' >"$TMP/log.conf"
"$PROCSCOPED" --config="$TMP/log.conf" --listen=127.0.0.1:0 --journal_dir= --pin_path= --quiet \
    >"$TMP/log.out" 2>&1 &
LPID=$!; PIDS+=("$LPID")
LPORT=
for _ in $(seq 150); do
  LPORT=$(ss -Hltnp 2>/dev/null | sed -n "/pid=$LPID,/s/.*127\.0\.0\.1:\([0-9]*\) .*/\1/p" | head -1)
  [[ -n "$LPORT" ]] && curl -sf "http://127.0.0.1:$LPORT/readyz" >/dev/null && break
  kill -0 "$LPID" 2>/dev/null || { cat "$TMP/log.out"; fail "procscoped --log_level=error exited"; }
  sleep 0.1
done
[[ -n "$LPORT" ]] || fail "procscoped --log_level=error: no listening port found"
curl -sf "http://127.0.0.1:$LPORT/readyz" >/dev/null || fail "procscoped --log_level=error not ready"
[[ ! -s "$TMP/log.out" ]] || fail "--log_level=error: a clean start logged: $(head -3 "$TMP/log.out")"
printf 'log_level=info\n' >"$TMP/log.conf"
kill -HUP "$LPID"
for _ in $(seq 50); do grep -q "configuration reloaded" "$TMP/log.out" && break; sleep 0.1; done
grep -q "configuration reloaded" "$TMP/log.out" || { cat "$TMP/log.out"; fail "log_level=info on SIGHUP: no reload line"; }
kill -TERM "$LPID"
rc=0; wait "$LPID" || rc=$?
[[ $rc -eq 0 ]] || fail "--log_level=error daemon: SIGTERM exit $rc"
pass "--log_level=error (config file): a clean start logs nothing; SIGHUP to info logs again"

# A hook that cannot attach: one WARNING line at start naming it and what is missing. Here the
# pinned link of block_rq_issue is removed while no procscoped runs, so the next one adopts the
# pinned state without it.
PIN=/sys/fs/bpf/procscope-cfgtest-$$
before_cleanup() { "$PROCSCOPED" --unpin --pin_path="$PIN" >/dev/null 2>&1 || true; }
rc=0; "$PROCSCOPED" --pin_path="$PIN" --listen=127.0.0.1:0 --journal_dir= --quiet --duration=1s \
    >"$TMP/pin1.out" 2>&1 || rc=$?
[[ $rc -eq 0 && -e "$PIN/link_block_rq_issue" ]] || { cat "$TMP/pin1.out"; fail "pinning: exit $rc"; }
rm "$PIN/link_block_rq_issue"
"$PROCSCOPED" --pin_path="$PIN" --listen=127.0.0.1:0 --journal_dir= --quiet >"$TMP/pin2.out" 2>&1 &
DPID=$!; PIDS+=("$DPID")
wait_ready "$TMP/pin2.out" "$DPID"
curl -sf "http://127.0.0.1:$PORT/api/v1/status" | jq -e '.degraded_hooks == ["block_rq_issue"]' >/dev/null ||
  fail "status does not list block_rq_issue as degraded"
metrics >"$TMP/pin2.metrics" || fail "no /metrics"
grep -qxF 'procscope_degraded_hook{hook="block_rq_issue"} 1' "$TMP/pin2.metrics" ||
  fail "no procscope_degraded_hook{hook=\"block_rq_issue\"} 1 in /metrics"
[[ $(grep -c '^procscope_degraded_hook{' "$TMP/pin2.metrics") -eq 1 ]] || fail "more degraded hooks than one"
want="procscoped: degraded: not attached: block_rq_issue (missing: all block I/O bytes, operations and latency); everything else is collected"
[[ $(grep -cxF "$want" "$TMP/pin2.out") -eq 1 ]] || { cat "$TMP/pin2.out"; fail "no degraded warning, or not once"; }
kill -TERM "$DPID"; wait "$DPID" || true
"$PROCSCOPED" --unpin --pin_path="$PIN" >/dev/null 2>&1 || fail "--unpin $PIN"
pass "a hook that did not attach is one warning line at start: ${want#procscoped: }"
echo "PASS"
