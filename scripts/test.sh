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
ctest --output-on-failure --timeout 900 "$@"
