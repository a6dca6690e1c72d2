#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every ctest test carries the label of its tier, and the tier of its name: `ctest -L unit` is
# then exactly the unit tests (no root), and a new test without a label fails here.
# Usage: labels_test.sh <ctest binary> <build directory>
set -euo pipefail
CTEST=$1
cd "$2"
count() { "$CTEST" -N "$@" | sed -n 's/^Total Tests: //p'; }
all=$(count)
[[ $all -gt 0 ]] || { echo "FAIL: ctest -N lists no tests"; exit 1; }
tiers='unit|bpf|e2e|integration|deploy|build|fresh|fuzz'
unlabeled=$(count -LE "^($tiers)\$")
if [[ $unlabeled -ne 0 ]]; then
  echo "FAIL: $unlabeled tests without a tier label ($tiers):"
  "$CTEST" -N -LE "^($tiers)\$" | grep 'Test *#' || true
  exit 1
fi
for t in ${tiers//|/ }; do
  wrong=$(count -R "^$t\\." -LE "^$t\$")
  [[ $wrong -eq 0 ]] || { echo "FAIL: $wrong tests named $t.* lack the label $t"; exit 1; }
  echo "label $t: $(count -L "^$t\$") tests"
done
echo "PASS: all $all tests carry their tier's label"
