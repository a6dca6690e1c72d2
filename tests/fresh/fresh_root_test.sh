#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's two commands on a really fresh machine: a minimal Debian 12 root (debootstrap
# --variant=minbase) sharing this kernel, with what a booted machine mounts (/proc, a fresh /sys
# with its BTF, the cgroup hierarchies, /dev, a tmpfs /run; no tracefs, no bpffs), this checkout
# `git clone`d into /root/procscope (root's home, mode 0700) as a new user would. In it, as root:
#   scripts/run.sh --duration=10s --listen=127.0.0.1:0   installs, builds, reports, exits 0;
#   CI=true scripts/test.sh -E '^fresh\.|^build\.(release|sanitizers)$'
#                                                       every other test passes, none skipped.
# The two build variants (22 of CI's 90 minutes) are left to the run outside, on this kernel with
# the packages the same setup.sh installs: here a sanitized program must compile, link and run.
# It tests the committed HEAD (uncommitted changes are not in the clone). Mounts live in a private
# mount namespace and are undone on exit, failure included; the root is removed unless --keep.
# The debootstrap download is cached in /var/cache/procscope-fresh (a bad cache is re-made).
# Usage: tests/fresh/fresh_root_test.sh [--keep]   (root; exit 77 = skipped, never under CI)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
SUITE=bookworm
CACHE=/var/cache/procscope-fresh
KEEP=0
[[ "${1:-}" == --keep ]] && KEEP=1
START=$SECONDS
# The whole run stays within BUDGET seconds (under ctest's TIMEOUT of 4800, so that this script,
# not a kill, ends it and cleans up); each step gets at most its own bound of what is left.
BUDGET=${PROCSCOPE_FRESH_BUDGET:-4500}
within() { local left=$((BUDGET - (SECONDS - START))); ((left > 10)) || left=10; echo $((left < $1 ? left : $1)); }

fail() { echo "FAIL: $*"; exit 1; }
# An unexpected failure says where (the checks below say what).
on_error() { trap 'echo "FAIL: line $LINENO: $BASH_COMMAND exited $?"' ERR; }
on_error
step() { printf 'fresh: [%4ds] %s\n' $((SECONDS - START)) "$*"; }
missing() {
  [[ -n "${CI:-}" ]] && fail "$*"
  echo "SKIP: $*"
  exit 77
}

# Inside the root this test must not run again (the inner suite excludes it; this is the guard).
[[ -z "${PROCSCOPE_FRESH_INNER:-}" ]] || fail "fresh.debian_minbase started inside its own fresh root"
[[ $(id -u) -eq 0 ]] || missing "needs root (debootstrap, chroot, mounts)"
for t in debootstrap git unshare chroot findmnt; do
  command -v "$t" >/dev/null || missing "needs $t (scripts/setup.sh)"
done

# --- in a private mount namespace from here on: nothing mounted here is seen outside ------------
if [[ -z "${PROCSCOPE_FRESH_NS:-}" ]]; then
  PROCSCOPE_FRESH_NS=1 exec unshare --mount --propagation private -- "$BASH" "$0" "$@"
fi

HEAD_SHA=$(git -C "$SRC" rev-parse HEAD) || fail "$SRC is not a git checkout"
[[ -z "$(git -C "$SRC" status --porcelain --untracked-files=no)" ]] ||
  echo "fresh: note: $SRC has uncommitted changes; the root gets the committed HEAD only"

# Debian's mirror as apt is configured here (deb822 .sources and one-line .list files).
apt_uris() {
  { sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n'
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }'
  } || true
}
MIRROR=$(apt_uris | grep -m1 -E '/debian/?$' || echo http://deb.debian.org/debian)
SECURITY=$(apt_uris | grep -m1 -E '/debian-security/?$' || echo http://security.debian.org/debian-security)

ROOT=$(mktemp -d /var/tmp/procscope-fresh.XXXXXX)
chmod 0755 "$ROOT" # it is /: every user (_apt, nobody) must get through it
LOGS=$(mktemp -d /var/tmp/procscope-fresh-logs.XXXXXX)
DL=""
MOUNTS=()
cleanup() {
  local rc=$?
  set +e
  trap - ERR
  # Whatever still runs in the root (a daemon a failed test left) is ours: stop it.
  local p
  for p in /proc/[0-9]*; do
    [[ "$(readlink "$p/root" 2>/dev/null)" == "$ROOT" ]] && kill -9 "${p#/proc/}" 2>/dev/null
  done
  sleep 0.5
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount -R "${MOUNTS[i]}" 2>/dev/null || umount -R -l "${MOUNTS[i]}"
  done
  # Anything the inner run mounted itself (a bpffs, say).
  findmnt -rn -o TARGET | grep "^$ROOT/" | sort -r | xargs -r -n1 umount -l 2>/dev/null
  if findmnt -rn -o TARGET | grep -q "^$ROOT"; then
    echo "fresh: still mounted under $ROOT, not removing it:"; findmnt -rn -o TARGET | grep "^$ROOT"
  elif ((KEEP)); then
    rm -rf "$LOGS" "$DL"
    echo "fresh: kept $ROOT"
  else
    rm -rf --one-file-system "$ROOT" "$LOGS" "$DL"
  fi
  step "done (exit $rc)"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the root ---------------------------------------------------------------------------------
TARBALL=$CACHE/$SUITE-minbase-amd64.tgz
mkdir -p "$CACHE"
bootstrap() { timeout "$(within 900)" nice debootstrap --variant=minbase "$@" "$SUITE" "$ROOT" "$MIRROR" >"$LOGS/debootstrap.log" 2>&1; }
if [[ -s "$TARBALL" ]] && step "debootstrap $SUITE minbase from the cached $TARBALL" &&
   bootstrap --unpack-tarball="$TARBALL"; then
  :
else
  [[ -s "$TARBALL" ]] && { echo "fresh: the cached tarball did not unpack; downloading again"; tail -5 "$LOGS/debootstrap.log"; }
  rm -rf --one-file-system "$ROOT" && mkdir -m 0755 "$ROOT"
  rm -f "$TARBALL"
  step "debootstrap $SUITE minbase from $MIRROR (caching the download in $TARBALL)"
  DL=$(mktemp -d /var/tmp/procscope-fresh-dl.XXXXXX)
  if timeout "$(within 900)" nice debootstrap --variant=minbase --make-tarball="$TARBALL.tmp" "$SUITE" \
       "$DL" "$MIRROR" >"$LOGS/debootstrap.log" 2>&1; then
    mv "$TARBALL.tmp" "$TARBALL"
    bootstrap --unpack-tarball="$TARBALL" || { tail -20 "$LOGS/debootstrap.log"; fail "debootstrap --unpack-tarball"; }
  else
    # No cache to be had (a read-only /var/cache?): straight into the root.
    rm -f "$TARBALL.tmp"
    bootstrap || { tail -20 "$LOGS/debootstrap.log"; fail "debootstrap $SUITE $MIRROR"; }
  fi
fi
[[ -z "$DL" ]] || rm -rf "$DL"
[[ -x "$ROOT/bin/bash" && -f "$ROOT/etc/debian_version" ]] || fail "debootstrap made no usable root"
step "root: Debian $(cat "$ROOT/etc/debian_version") in $ROOT ($(du -sh --one-file-system "$ROOT" | cut -f1))"

# apt as on a freshly installed machine: the release, its updates and security.
rm -f "$ROOT/etc/apt/sources.list"
cat >"$ROOT/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
{ grep -rls 'Acquire::.*Proxy' /etc/apt/apt.conf.d/ 2>/dev/null || true; } | xargs -r cp -t "$ROOT/etc/apt/apt.conf.d/"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
# This network's own trust anchors (certificates added here outside Debian's ca-certificates, e.g.
# a TLS-inspecting egress proxy's CA), as its admin would install them on any new machine: npm
# reaches its registry through them. ca-certificates, which setup.sh installs, takes them in.
mkdir -p "$ROOT/usr/local/share/ca-certificates"
for f in /usr/local/share/ca-certificates/*.crt /etc/ssl/certs/*.pem; do
  [[ -f "$f" && ! -L "$f" ]] || continue
  b=${f##*/}
  cp "$f" "$ROOT/usr/local/share/ca-certificates/site-${b%.*}.crt"
done
cp /etc/hosts "$ROOT/etc/hosts"

# --- what a booted machine has mounted (and nothing more) --------------------------------------
mnt() { local dst=$ROOT$1; shift; mount "$@" "$dst"; MOUNTS+=("$dst"); }
mnt /proc -t proc proc
mnt /sys -t sysfs sysfs
mnt /sys/fs/cgroup --rbind /sys/fs/cgroup
mnt /dev --rbind /dev
mnt /run -t tmpfs -o mode=0755,nosuid,nodev tmpfs
[[ -f "$ROOT/sys/kernel/btf/vmlinux" ]] || fail "no /sys/kernel/btf/vmlinux in the root"
findmnt -rn -o TARGET,FSTYPE | awk -v r="$ROOT" 'index($1, r) == 1 && $2 ~ /^(tracefs|bpf|debugfs)$/ { bad = bad " " $1 } END { if (bad) { print "fresh: unexpected mounts:" bad; exit 1 } }' ||
  fail "tracefs, bpffs or debugfs mounted in the root"
step "mounted /proc, /sys (BTF there), /sys/fs/cgroup, /dev, /run; no tracefs, bpffs or debugfs"

# --- the checkout, cloned into root's home ----------------------------------------------------
[[ $(stat -c %a "$ROOT/root") == 700 ]] || fail "root's home in the root is mode $(stat -c %a "$ROOT/root"), not 0700"
git clone -q --no-checkout "$SRC" "$ROOT/root/procscope"
git -C "$ROOT/root/procscope" checkout -q --detach "$HEAD_SHA"
step "git clone $SRC -> /root/procscope at $(git -C "$SRC" log -1 --format='%h %s' | cut -c1-70)"

# in_root LIMIT CMD: runs CMD with bash in the root for at most LIMIT, as root in /root/procscope,
# with a clean environment as a login gives (CI set, and the marker that keeps this test out).
in_root() {
  timeout -k 30 "$1" chroot "$ROOT" /usr/bin/env -i HOME=/root USER=root LOGNAME=root \
    SHELL=/bin/bash TERM=dumb LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    CI=true PROCSCOPE_FRESH_INNER=1 \
    ${http_proxy:+http_proxy=$http_proxy} ${https_proxy:+https_proxy=$https_proxy} \
    /bin/bash -c "cd /root/procscope && $2"
}
# The root has neither node nor npm nor anything else setup.sh installs.
in_root 60 'command -v node || command -v npm || command -v cmake || command -v clang-14' >/dev/null &&
  fail "the fresh root already has node, npm, cmake or clang"

# --- README command 1: scripts/run.sh (setup, build, the daemon with its report) -----------------
step "scripts/run.sh --duration=10s --listen=127.0.0.1:0 (installs, builds: the slow part)"
set +e
trap - ERR
RUN_LIMIT=$(within 3000)
in_root "$RUN_LIMIT" 'nice scripts/run.sh --duration=10s --listen=127.0.0.1:0 --interval=2s' 2>&1 |
  tee "$LOGS/run.log" | sed -u 's/^/    /'
rc=${PIPESTATUS[0]}
set -e
on_error
if [[ $rc -ne 0 ]] || ! grep -q 'collecting; serving' "$LOGS/run.log" || ! grep -q 'PID COMM' "$LOGS/run.log"; then
  fail "scripts/run.sh: exit $rc (124: over $RUN_LIMIT s), or no 'collecting; serving' and report in its output"
fi
step "scripts/run.sh: exit 0 after its 10 s, $(grep -c 'PID COMM' "$LOGS/run.log") reports"

# --- README command 2: scripts/test.sh, every test but this one -----------------------------------
step "CI=true scripts/test.sh -E '^fresh\\.|^build\\.(release|sanitizers)\$' (the suite in the root)"
set +e
trap - ERR
TEST_LIMIT=$(within 2400)
in_root "$TEST_LIMIT" "nice scripts/test.sh -E '^fresh\\.|^build\\.(release|sanitizers)\$'" 2>&1 | tee "$LOGS/test.log" |
  grep --line-buffered -E '^ *[0-9]+/[0-9]+ Test +#|^setup:' | sed -uE 's/ \.{3,}/ /; s/^/    /'
rc=${PIPESTATUS[0]}
set -e
on_error
summary=$(grep -E '^[0-9]+% tests passed' "$LOGS/test.log" || true)
notrun=$(sed -n '/The following tests did not run/,/^$/p' "$LOGS/test.log")
if [[ $rc -ne 0 || "$summary" != "100% tests passed"* || -n "$notrun" ]]; then
  # The failing tests' own output (ctest --output-on-failure), then the summary.
  grep -vE '^ *(Start +[0-9]+:|[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed)' "$LOGS/test.log" | tail -400 | sed -E 's/ \.{3,}/ /; s/^/    | /'
  fail "scripts/test.sh in the fresh root: exit $rc (124: over $TEST_LIMIT s); ${summary:-no summary}${notrun:+; some did not run}"
fi
total=$(sed -nE 's/.* out of ([0-9]+)$/\1/p' <<<"$summary")
[[ ${total:-0} -gt 100 ]] || fail "scripts/test.sh ran only ${total:-0} tests"
step "scripts/test.sh: $summary, none skipped ($(grep -E '^Total Test time' "$LOGS/test.log"))"
# What build.sanitizers needs beyond the main build: the ASan and UBSan runtimes (libgcc-12-dev's).
in_root 300 'printf "int main() { return 0; }\n" | c++ -x c++ -fsanitize=address,undefined -o /tmp/san - && /tmp/san' \
  >"$LOGS/san.log" 2>&1 || { cat "$LOGS/san.log"; fail "an ASan+UBSan program does not build or run in the root"; }
step "an ASan+UBSan program builds and runs in the root (build.sanitizers runs outside)"
echo "PASS: the README's two commands on a fresh Debian $SUITE minbase root ($((SECONDS - START)) s)"
