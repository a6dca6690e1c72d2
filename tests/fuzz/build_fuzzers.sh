#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The fuzz.build test: configures SOURCE_DIR with clang-14 and -DPROCSCOPE_FUZZ=ON into BUILD_DIR
# and builds the fuzzers only (libFuzzer + ASan + UBSan; only their libraries get built).
# Usage: build_fuzzers.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 dir=$2
cmake -S "$src" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DPROCSCOPE_FUZZ=ON \
  -DPROCSCOPE_BUILD_BENCH=OFF >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; exit 1; }
start=$SECONDS
nice ninja -C "$dir" fuzzers
echo "fuzzers built in $((SECONDS - start)) s"
