#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job: installs what is missing, builds, and runs procscoped in the foreground with the
# top-processes report. Arguments go to procscoped (e.g. --interval=5s --top=20).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec "${BUILD_DIR:-build}/daemon/procscoped" "$@"
