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
# The console output is kept (ctest's own LastTest.log is rewritten by any later ctest call in this
# directory, as some tests make) for the failure digest below.
mkdir -p Testing
rc=0
ctest --output-on-failure --timeout 900 "$@" 2>&1 | tee Testing/console.log || rc=${PIPESTATUS[0]}
if ((rc != 0)); then
  # A digest at the very end, where a truncated CI log still shows it: each failed test with its
  # first failure lines (gtest's "Failure" and the 3 lines after it, a script's "FAIL:"); the
  # fresh root's inner tests come in its output, prefixed with "|".
  echo "=== failure digest ==="
  awk '/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: / {out = /\*\*\*|Not Run/; n = 0; after = 0;
                                             if (out) print "--- " $4; next}
       /^ *Start +[0-9]+: / {out = 0; next}
       out && (/: Failure$/ || /FAIL:/ || /\*\*\*Failed/) && n < 12 {print substr($0, 1, 240); n++; after = 3; next}
       out && after > 0 && n < 12 {print substr($0, 1, 240); n++; after--}' Testing/console.log | tail -60
fi
exit "$rc"
