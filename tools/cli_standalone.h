// SPDX-License-Identifier: Apache-2.0
// `procscope top --standalone`: the daemon's collection loop run inside the CLI for a fixed time,
// for a machine without procscoped. Needs what procscoped needs (root, or CAP_BPF + CAP_PERFMON).
#ifndef PROCSCOPE_TOOLS_CLI_STANDALONE_H_
#define PROCSCOPE_TOOLS_CLI_STANDALONE_H_

#include <atomic>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cli_render.h"

namespace procscope::cli {

// Loads the BPF collector, samples for `duration` (less if `stop` is set) with an offender
// window of StandaloneWindow(duration), and returns what /api/v1/offenders and
// /api/v1/processes would have served at the end. The error is the daemon's one line.
absl::StatusOr<TopData> CollectStandalone(absl::Duration duration, std::atomic<bool>& stop);

// `procscope profile --standalone`: the collector (with the profiler) for `duration`, then what
// procscoped would answer to `path` ("/debug/pprof/profile?seconds=10&pid=P"): the gzipped pprof.
absl::StatusOr<std::string> ProfileStandalone(absl::Duration duration, absl::string_view path,
                                              std::atomic<bool>& stop);

}  // namespace procscope::cli

#endif  // PROCSCOPE_TOOLS_CLI_STANDALONE_H_
