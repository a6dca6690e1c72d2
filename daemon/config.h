// SPDX-License-Identifier: Apache-2.0
// procscoped's settings: filled from flags in main, validated once, then passed down.
#ifndef PROCSCOPE_DAEMON_CONFIG_H_
#define PROCSCOPE_DAEMON_CONFIG_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "collector.h"

namespace procscope {

struct Config {
  absl::Duration interval = absl::Seconds(2);  // between reports
  absl::Duration duration = absl::ZeroDuration();  // stop after this long; zero: run until signal
  int top = 10;                                // processes per report
  bool quiet = false;                          // no reports (benchmarks): only collect
  CollectorOptions collector;
};

// Parses --attach: "auto", "tp_btf" or "raw_tp".
absl::StatusOr<AttachMode> ParseAttachMode(absl::string_view s);

// Checks ranges; the message names the flag and the accepted values.
absl::Status ValidateConfig(const Config& c);

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_CONFIG_H_
