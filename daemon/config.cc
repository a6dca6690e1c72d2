// SPDX-License-Identifier: Apache-2.0
#include "config.h"

#include "absl/strings/str_cat.h"
#include "http_server.h"

namespace procscope {

absl::StatusOr<AttachMode> ParseAttachMode(absl::string_view s) {
  if (s == "auto") return AttachMode::kAuto;
  if (s == "tp_btf") return AttachMode::kTpBtf;
  if (s == "raw_tp") return AttachMode::kRawTp;
  return absl::InvalidArgumentError(
      absl::StrCat("--attach=", s, ": must be one of auto, tp_btf, raw_tp"));
}

absl::Status ValidateConfig(const Config& c) {
  if (c.interval < absl::Milliseconds(100) || c.interval > absl::Hours(1)) {
    return absl::InvalidArgumentError(absl::StrCat("--interval=", absl::FormatDuration(c.interval),
                                                   ": must be between 100ms and 1h"));
  }
  if (c.duration < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("--duration=", absl::FormatDuration(c.duration),
                                                   ": must not be negative (0: forever)"));
  }
  if (c.top < 1 || c.top > 10000) {
    return absl::InvalidArgumentError(
        absl::StrCat("--top=", c.top, ": must be between 1 and 10000"));
  }
  if (c.sample_interval < absl::Milliseconds(100) || c.sample_interval > absl::Minutes(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--sample_interval=", absl::FormatDuration(c.sample_interval),
                     ": must be between 100ms and 1m"));
  }
  if (auto listen = ParseListen(c.listen); !listen.ok()) return listen.status();
  if (c.export_options.top_k < 1 || c.export_options.top_k > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("--top_k=", c.export_options.top_k, ": must be between 1 and 1000"));
  }
  if (c.export_options.max_series < 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_series=", c.export_options.max_series, ": must be at least 100"));
  }
  if (!c.journal_dir.empty() && c.journal_max_bytes < 4096) {
    return absl::InvalidArgumentError(
        absl::StrCat("--journal_max_bytes=", c.journal_max_bytes, ": must be at least 4096"));
  }
  if (c.events_in_memory < 1 || c.events_in_memory > 1000000) {
    return absl::InvalidArgumentError(
        absl::StrCat("--events_in_memory=", c.events_in_memory, ": must be between 1 and 1000000"));
  }
  if (absl::Status s = ValidateTableOptions(c.table); !s.ok()) return s;
  return ValidateOffenderConfig(c.offenders);
}

}  // namespace procscope
