#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The layers of docs/ARCHITECTURE.md hold in the build:
#   - the exporter's, the model's, the config's and the CLI's unit tests build without the BPF
#     toolchain: none of the commands ninja would run for them calls bpftool or clang -target bpf
#     (so no vmlinux.h and no skeleton is needed);
#   - exporter/, profiler/, model/ and common/ include no daemon/ header, common/ and model/
#     nothing above them; only the loader (daemon/collector.cc) includes the BPF skeleton.
# Usage: layering_test.sh <source dir> <build dir>
set -euo pipefail
SRC=$1
BUILD=$2
fail() { echo "FAIL: $*"; exit 1; }

toolchain='bpftool|-target bpf|skel\.h|vmlinux'
# The check must see the toolchain where it is needed, or it proves nothing.
grep -E "$toolchain" <(ninja -C "$BUILD" -t commands tests/e2e_block_tests) >/dev/null ||
  fail "the e2e tests show no bpftool/clang -target bpf command: this check cannot see them"
for target in tests/metrics_tests tests/unit_tests tests/http_server_tests tests/cli_tests \
              tests/offenders_tests; do
  cmds=$(ninja -C "$BUILD" -t commands "$target")
  [[ -n "$cmds" ]] || fail "$target: ninja lists no commands"
  if grep -E "$toolchain" <<<"$cmds" >/dev/null; then
    fail "$target needs the BPF toolchain: $(grep -m1 -E "$toolchain" <<<"$cmds" | cut -c1-200)"
  fi
  echo "ok: $target builds without bpftool, clang -target bpf or vmlinux.h"
done

# Headers each layer may include from the project: its own, those of the layers below.
check_layer() {  # dir allowed-dirs...
  local dir=$1; shift
  local allowed=" "
  for d in "$dir" "$@"; do allowed+="$(cd "$SRC/$d" && ls *.h | tr '\n' ' ')"; done
  allowed+=" procscope.h procscope.pb.h profile.pb.h "
  while IFS= read -r line; do
    file=${line%%:*}
    inc=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"${line#*:}")
    [[ "$inc" == */* ]] && continue  # a library's header (absl/..., prometheus/...)
    [[ "$allowed" == *" $inc "* ]] || fail "$file includes \"$inc\", which $dir/ may not use"
  done < <(cd "$SRC" && grep -H '^#include "' "$dir"/*.h "$dir"/*.cc)
  echo "ok: $dir/ includes only $dir/${*:+, $*} and the BPF/proto contracts"
}
# The loader is the only file that knows the skeleton (bench/ measures programs by name, tests/
# use their own test skeletons).
skel_users=$(cd "$SRC" && grep -l '\.skel\.h"' common/* model/* exporter/* daemon/* tools/* | tr '\n' ' ')
[[ "$skel_users" == "daemon/collector.cc " ]] || fail "a skeleton is included by: $skel_users (only daemon/collector.cc may)"
echo "ok: only daemon/collector.cc includes the skeleton"
check_layer common
check_layer model common
check_layer exporter model common
check_layer profiler model common
