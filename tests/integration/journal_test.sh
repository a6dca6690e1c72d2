#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The crash journal of a real procscoped under the attacks of issue 11, as root:
#   - a process named "x\xff" (invalid UTF-8) exits among others; after a restart every earlier
#     event is still in /api/v1/events, the journal did not shrink, nothing was damaged, and
#     libprotobuf logged nothing (neither at the exits nor at events requests);
#   - a full disk (a 64 KiB tmpfs, filled): the lost exits are counted in
#     procscope_journal_dropped_records_total, logged once, and the daemon goes on serving;
#   - a symbolic link as events.journal: refused in one line, its target untouched.
# Usage: journal_test.sh <procscoped binary>
# shellcheck disable=SC2015
set -euo pipefail
source "$(dirname "$0")/lib.sh"
PROCSCOPED=$(realpath "$1")
[[ $(id -u) -eq 0 ]] || missing "needs root"
for tool in curl jq mount umount; do
  command -v "$tool" >/dev/null || missing "needs $tool"
done

scratch procscope-journal
MOUNTED=
before_cleanup() {
  [[ -z "$DAEMON" ]] || kill "$DAEMON" 2>/dev/null || true
  [[ -z "$MOUNTED" ]] || umount "$MOUNTED" 2>/dev/null || true
}
DAEMON=

# start_daemon JOURNAL_DIR OUT: starts procscoped (its stderr and stdout in OUT), sets DAEMON, PORT.
start_daemon() {
  "$PROCSCOPED" --listen=127.0.0.1:0 --journal_dir="$1" --quiet --events_in_memory=5000 \
    >"$2" 2>&1 &
  DAEMON=$!
  PIDS+=("$DAEMON")
  wait_ready "$2" "$DAEMON"
}
stop_daemon() {
  kill -TERM "$DAEMON"
  wait "$DAEMON" || fail "procscoped exited with $? at SIGTERM: $(tail -3 "$1")"
  DAEMON=
}
metric() { curl -sf "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
event_pids() { curl -sf "http://127.0.0.1:$PORT/api/v1/events?limit=5000" | jq -r '.events[].pid'; }

# --- A hostile name among ordinary exits; restart ------------------------------------------
J=$TMP/journal
start_daemon "$J" "$TMP/d1.out"
HOSTILE=$'x\xff'
cp "$(type -P true)" "$TMP/$HOSTILE"
cp "$(type -P true)" "$TMP/psjrnl-ok"
WANT=()
for i in $(seq 40); do
  "$TMP/psjrnl-ok" & WANT+=("$!"); wait "$!"
  if [[ $i -eq 20 ]]; then "$TMP/$HOSTILE" & WANT+=("$!"); wait "$!"; fi
done
for _ in $(seq 50); do
  [[ $(event_pids | grep -cxF -f <(printf '%s\n' "${WANT[@]}")) -eq ${#WANT[@]} ]] && break
  sleep 0.1
done
[[ $(event_pids | grep -cxF -f <(printf '%s\n' "${WANT[@]}")) -eq ${#WANT[@]} ]] ||
  fail "not all ${#WANT[@]} exits in /api/v1/events before the restart"
for _ in $(seq 5); do event_pids >/dev/null; done  # events requests must not log either
curl -sf "http://127.0.0.1:$PORT/api/v1/events?limit=5000" |
  jq -e --arg c $'x\uFFFD' '[.events[] | select(.comm == $c and .group == $c)] | length == 1' \
    >/dev/null || fail "the hostile exit is not there as x U+FFFD (comm and group)"
stop_daemon "$TMP/d1.out"
SIZE1=$(stat -c %s "$J/events.journal")
head -c 8 "$J/events.journal" | grep -q PSJRNL2 || fail "no file header in the journal"

start_daemon "$J" "$TMP/d2.out"
GOT=$(event_pids | grep -cxF -f <(printf '%s\n' "${WANT[@]}") || true)
[[ $GOT -eq ${#WANT[@]} ]] || fail "after the restart $GOT of ${#WANT[@]} earlier exits in /api/v1/events"
[[ $(metric procscope_journal_damaged_bytes_total) == 0 ]] || fail "damaged bytes at restart"
stop_daemon "$TMP/d2.out"
SIZE2=$(stat -c %s "$J/events.journal")
[[ $SIZE2 -ge $SIZE1 ]] || fail "journal shrank across the restart: $SIZE1 -> $SIZE2 bytes"
if compgen -G "$J/*.damaged-*" >/dev/null; then fail "a damaged copy appeared: $(ls "$J")"; fi
PROTOBUF_LINES=$(cat "$TMP/d1.out" "$TMP/d2.out" | grep -c libprotobuf || true)
[[ $PROTOBUF_LINES -eq 0 ]] || fail "$PROTOBUF_LINES libprotobuf lines: $(grep -m1 libprotobuf "$TMP/d1.out" "$TMP/d2.out")"
pass "a process named x\\xff: all ${#WANT[@]} exits survive a restart, journal $SIZE1 -> $SIZE2 bytes, 0 libprotobuf lines"

# --- A full disk -----------------------------------------------------------------------------
FULL=$TMP/full
mkdir -p "$FULL"
mount -t tmpfs -o size=64k,mode=0750 procscope-journal-test "$FULL" || missing "cannot mount a tmpfs"
MOUNTED=$FULL
start_daemon "$FULL/j" "$TMP/d3.out"
dd if=/dev/zero of="$FULL/filler" bs=4k 2>/dev/null || true  # until ENOSPC
N=60
for _ in $(seq $N); do "$TMP/psjrnl-ok"; done
DROPPED=0
for _ in $(seq 50); do
  DROPPED=$(metric procscope_journal_dropped_records_total)
  [[ ${DROPPED:-0} -ge $N ]] && break
  sleep 0.1
done
[[ ${DROPPED:-0} -ge $N ]] || fail "full disk: $DROPPED exit records counted as dropped, want >= $N"
[[ $(metric procscope_journal_dropped_bytes_total) -gt 0 ]] || fail "no dropped bytes counted"
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || fail "not healthy on a full disk"
LINES=$(grep -c "crash journal" "$TMP/d3.out" || true)
[[ $LINES -ge 1 && $LINES -le 2 ]] || fail "full disk: $LINES log lines, want 1 (rate-limited): $(head -3 "$TMP/d3.out")"
grep "crash journal" "$TMP/d3.out" | grep -q "No space left on device" || fail "the log line does not say ENOSPC"
# Space again: it writes again.
rm -f "$FULL/filler"
for _ in $(seq 5); do "$TMP/psjrnl-ok"; done
sleep 2.5
BEFORE=$(metric procscope_journal_dropped_records_total)
"$TMP/psjrnl-ok"
sleep 1.5
[[ $(metric procscope_journal_dropped_records_total) -eq $BEFORE ]] || fail "still dropping with space"
stop_daemon "$TMP/d3.out"
pass "full disk: $DROPPED exits counted as dropped, $LINES log line(s), still serving, writes again after"
umount "$FULL"
MOUNTED=

# --- A symbolic link in the journal's place ----------------------------------------------------
L=$TMP/linked
mkdir -p "$L"
echo "precious" >"$TMP/target"
ln -s "$TMP/target" "$L/events.journal"
set +e
"$PROCSCOPED" --listen=127.0.0.1:0 --journal_dir="$L" --quiet >"$TMP/d4.out" 2>&1
RC=$?
set -e
[[ $RC -ne 0 ]] || fail "procscoped started with a symbolic link as its journal"
[[ $(wc -l <"$TMP/d4.out") -eq 1 ]] && grep -q "symbolic link" "$TMP/d4.out" ||
  fail "symbolic link: not one clear line: $(cat "$TMP/d4.out")"
[[ $(cat "$TMP/target") == precious ]] || fail "the link's target was changed"
pass "symbolic link refused: $(cat "$TMP/d4.out")"
