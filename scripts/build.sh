#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Configures and builds procscope into ./build (or $BUILD_DIR), warnings as errors. Extra args go
# to cmake (they come last, so they can override the defaults here).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPROCSCOPE_WERROR=ON "$@" >/dev/null
ninja -C "$BUILD_DIR" >/dev/null
