// SPDX-License-Identifier: Apache-2.0
#include "config.h"

#include "absl/strings/str_cat.h"

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
    return absl::InvalidArgumentError(absl::StrCat(
        "--interval=", absl::FormatDuration(c.interval), ": must be between 100ms and 1h"));
  }
  if (c.duration < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--duration=", absl::FormatDuration(c.duration), ": must not be negative (0: forever)"));
  }
  if (c.top < 1 || c.top > 10000) {
    return absl::InvalidArgumentError(
        absl::StrCat("--top=", c.top, ": must be between 1 and 10000"));
  }
  return absl::OkStatus();
}

}  // namespace procscope
