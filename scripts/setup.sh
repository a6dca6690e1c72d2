#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs every Debian package that procscope's build, tests and benchmarks need.
# Idempotent: prints nothing and changes nothing when everything is already installed.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config clang-14 llvm-14 libbpf-dev bpftool libelf-dev
  zlib1g-dev libabsl-dev libprotobuf-dev protobuf-compiler prometheus-cpp-dev libcivetweb-dev
  libssl-dev libmicrohttpd-dev libgnutls28-dev libyaml-cpp-dev libcurl4-openssl-dev libcrypt-dev
  libre2-dev
  # tests and benchmarks
  googletest libgtest-dev libgmock-dev libbenchmark-dev linux-perf stress-ng fio util-linux
  prometheus prometheus-process-exporter tmux curl jq
  bpftrace                 # bench/: the peer that procscope's overhead is compared with
  libclang-rt-14-dev  # tests/fuzz: libFuzzer and the sanitizer runtimes (clang-14 only recommends it)
  apache2-utils  # tests/integration/tls_test.sh: htpasswd makes the bcrypt hashes, as users do
  prometheus-alertmanager  # tests/deploy: amtool check-config, and a real Alertmanager
  procps strace ca-certificates  # ps/pgrep in the tests; the SystemCallFilter check; npm's TLS
  iproute2                 # ss: tests/integration/config_test.sh finds a quiet daemon's port
  systemd                  # systemd-analyze (tests/deploy), absent from minimal roots and containers
  debootstrap git          # tests/fresh: a minimal Debian root with a clone of the checkout
  golang-go                # go tool pprof: tests/integration/profile_test.sh reads /debug/pprof/*
)
# Node.js and npm (tests/deploy, the dashboard checks): Debian's, unless the commands are already
# there. NodeSource's nodejs bundles npm and conflicts with Debian's npm package, so a machine with
# either kind keeps what it has.
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing packages: ${missing[*]}; run this script as root (sudo $0)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
