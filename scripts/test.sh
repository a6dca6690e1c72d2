#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what is missing, builds, and runs every test: unit tests, BPF programs on fixed inputs,
# and end-to-end tests that load the collector into the running kernel (these need root; with CI
# set in the environment a missing capability fails them instead of skipping).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
cd "${BUILD_DIR:-build}"
rc=0
ctest --output-on-failure --timeout 900 "$@" || rc=$?
if ((rc != 0)) && [[ -f Testing/Temporary/LastTest.log ]]; then
  # A digest at the very end, where a truncated CI log still shows it: each failed test with its
  # first failure lines (gtest's "Failure" and the 3 lines after it, a script's "FAIL:"; those of
  # the fresh root's inner tests come prefixed with "|").
  echo "=== failure digest ==="
  awk '/^[0-9]+\/[0-9]+ Test: / {name = $3; n = 0; after = 0; delete keep; next}
       /^<end of output>/ {out = 0}
       /^Output:/ {out = 1; next}
       out && (/: Failure$/ || /FAIL:/ || /\*\*\*Failed/) && n < 12 {keep[++n] = $0; after = 3; next}
       out && after > 0 && n < 12 {keep[++n] = $0; after--; next}
       /^Test Failed\./ {print "--- " name; for (i = 1; i <= n; i++) print substr(keep[i], 1, 240)}' \
    Testing/Temporary/LastTest.log | tail -60
fi
exit "$rc"
