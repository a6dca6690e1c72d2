#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The build.release and build.sanitizers tests: configure and build SOURCE_DIR into BUILD_DIR the
# way a packager (Release) or a sanitizer run (ASan + UBSan) would, then run tests in that tree.
#   release:    -DCMAKE_BUILD_TYPE=Release (-O3), warnings as errors; the unit tests.
#   sanitizers: -DPROCSCOPE_SANITIZE=address,undefined; the unit, BPF and e2e tests and
#               integration.config. Any finding in any process (the tests' children included)
#               fails: the sanitizers log to files here, and there must be none.
# Usage: variant_test.sh release|sanitizers SOURCE_DIR BUILD_DIR
set -euo pipefail
mode=$1 src=$2 dir=$3
case $mode in
  release)
    flags=(-DCMAKE_BUILD_TYPE=Release)
    tests='^unit\.'
    ;;
  sanitizers)
    flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DPROCSCOPE_SANITIZE=address,undefined)
    tests='^(unit|bpf|e2e)\.|^integration\.config$'
    ;;
  *) echo "usage: $0 release|sanitizers SOURCE_DIR BUILD_DIR" >&2; exit 2 ;;
esac
mkdir -p "$dir"
start=$SECONDS
cmake -S "$src" -B "$dir" -G Ninja -DPROCSCOPE_WERROR=ON -DPROCSCOPE_BUILD_BENCH=OFF \
  "${flags[@]}" >"$dir/configure.log" 2>&1 || { cat "$dir/configure.log"; exit 1; }
nice ninja -C "$dir" >"$dir/build.log" 2>&1 || { grep -B2 -A20 -m5 'FAILED\|error' "$dir/build.log"; exit 1; }
echo "$mode: configured and built in $((SECONDS - start)) s"

if [[ $mode == sanitizers ]]; then
  # The tests must really run instrumented.
  # Into variables first: grep -q exits at its match, and under pipefail ldd's SIGPIPE would fail.
  unit_libs=$(ldd "$dir/tests/unit_tests")
  daemon_libs=$(ldd "$dir/daemon/procscoped")
  if ! grep -q libasan <<<"$unit_libs" || ! grep -q libubsan <<<"$daemon_libs"; then
    echo "FAIL: the sanitizer build is not instrumented" >&2
    exit 1
  fi
  logs=$dir/sanitizer-logs
  rm -rf "$logs" && mkdir -p "$logs"
  # handle_segv=0: the e2e tests crash children on purpose (SIGSEGV, with and without a core)
  # and check the kernel's exit status; a real SEGV still fails its test.
  export ASAN_OPTIONS="detect_leaks=1:handle_segv=0:log_path=$logs/report"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/report"
  export LSAN_OPTIONS="log_path=$logs/report"
fi

start=$SECONDS
rc=0
(cd "$dir" && ctest --output-on-failure --timeout 900 -R "$tests") || rc=$?
echo "$mode: tests ran in $((SECONDS - start)) s"
ran=$(cd "$dir" && ctest -N -R "$tests" | sed -n 's/^Total Tests: //p')
if ((${ran:-0} < 10)); then
  echo "FAIL: only ${ran:-0} tests matched $tests" >&2
  exit 1
fi
if [[ $mode == sanitizers ]] && compgen -G "$logs/*" >/dev/null; then
  echo "FAIL: sanitizer findings:" >&2
  head -n 60 "$logs"/* >&2
  exit 1
fi
exit "$rc"
