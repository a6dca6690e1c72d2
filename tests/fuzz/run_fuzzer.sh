#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One fuzz.<name> test: replays the committed corpus (seeds and regression cases) and fuzzes for
# SECONDS more. Fails on any crash, sanitizer finding, leak, timeout or out-of-memory; new inputs
# go to SCRATCH (not the source tree), a crashing input to SCRATCH/crash-*.
# Usage: run_fuzzer.sh FUZZER CORPUS_DIR SCRATCH_DIR SECONDS
set -euo pipefail
fuzzer=$1 corpus=$2 scratch=$3 seconds=$4
if [[ ! -x $fuzzer ]]; then
  echo "FAIL: $fuzzer not built (the fuzz.build test builds it with clang)" >&2
  exit 1
fi
seeds=$(find "$corpus" -type f | wc -l)
if ((seeds == 0)); then
  echo "FAIL: empty seed corpus $corpus" >&2
  exit 1
fi
rm -rf "$scratch" && mkdir -p "$scratch/new"
log=$scratch/fuzz.log
# The journal and config targets write their input to a file each run: on tmpfs, fsync is free.
tmp=$(mktemp -d "$( [[ -d /dev/shm && -w /dev/shm ]] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/procscope-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export TMPDIR=$tmp
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# A dictionary next to the corpus (tests/fuzz/<target>.dict), if any: the config's flag names.
dict=()
[[ -f $corpus/../../$(basename "$corpus").dict ]] && dict=(-dict="$corpus/../../$(basename "$corpus").dict")
set +e
nice "$fuzzer" "${dict[@]}" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$scratch/" "$scratch/new" "$corpus" >"$log" 2>&1
rc=$?
set -e
tail -n 25 "$log"
if ((rc != 0)); then
  echo "FAIL: $(basename "$fuzzer") exited $rc; input kept in $scratch/ (add it to $corpus once fixed)" >&2
  exit 1
fi
# It ran what it should have: the whole corpus first, then instrumented code.
grep -q "INITED\|INIT" "$log" || { echo "FAIL: no corpus replay in the log" >&2; exit 1; }
if ! grep -Eq "Loaded [0-9]+ modules +\([1-9][0-9]* " "$log"; then
  echo "FAIL: no coverage counters: the fuzzer is not instrumented" >&2
  exit 1
fi
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
if ((${runs:-0} < seeds)); then
  echo "FAIL: $runs runs, fewer than the $seeds corpus files" >&2
  exit 1
fi
echo "fuzz $(basename "$fuzzer"): $seeds corpus files replayed, $runs runs in ${seconds}s, no findings"
