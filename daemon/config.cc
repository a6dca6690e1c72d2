// SPDX-License-Identifier: Apache-2.0
#include "config.h"

#include <errno.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/statfs.h>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "http_server.h"

namespace procscope {
namespace {

// The offender thresholds, by flag: finite (inf or nan would make a rule never or always fire)
// and at least their floor.
absl::Status CheckThresholds(const OffenderConfig& o) {
  if (o.window < absl::Seconds(5) || o.window > absl::Hours(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--offender_window=", absl::FormatDuration(o.window), ": must be between 5s and 1h"));
  }
  const struct {
    const char* flag;
    double value;
    double floor;
  } thresholds[] = {
      {"offender_dominance", o.dominance, 1},
      {"offender_min_cpu_cores", o.min_cpu_cores, 0},
      {"offender_min_runqueue_cores", o.min_runqueue_cores, 0},
      {"offender_min_memory_growth", o.min_memory_growth_bps, 0},
      {"offender_min_page_faults", o.min_page_faults_per_s, 0},
      {"offender_min_block_io", o.min_block_io_bps, 0},
      {"offender_min_crashes", o.min_crashes_per_min, 0},
  };
  for (const auto& t : thresholds) {
    if (!std::isfinite(t.value) || t.value < t.floor) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "--%s=%g: must be a finite number of at least %g", t.flag, t.value, t.floor));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckProcRoot(const std::string& path) {
  struct statfs fs;
  if (statfs(path.c_str(), &fs) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("--proc_root=", path, ": ", strerror(errno),
                                                   "; give where procfs is mounted"));
  }
  if (fs.f_type != PROC_SUPER_MAGIC) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--proc_root=%s: not a procfs mount (file system type 0x%x); give where procfs is "
        "mounted (a host's /proc in a pod)",
        path, static_cast<unsigned>(fs.f_type)));
  }
  return absl::OkStatus();
}

absl::StatusOr<AttachMode> ParseAttachMode(absl::string_view s) {
  if (std::optional<AttachMode> m = ValueOf(kAttachModeNames, s)) return *m;
  return absl::InvalidArgumentError(
      absl::StrCat("--attach=", s, ": ", MustBeOneOf(kAttachModeNames)));
}

bool AbslParseFlag(absl::string_view text, AttachMode* out, std::string* error) {
  return ParseEnumFlag(kAttachModeNames, text, out, error);
}

std::string AbslUnparseFlag(AttachMode m) { return AttachModeName(m); }

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
  if (const uint32_t r = c.collector.ring_buffer_bytes;
      r != 0 && (r < 4096 || r > (1u << 30) || (r & (r - 1)) != 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--ring_buffer_bytes=", r, ": must be a power of 2 between 4096 and 1073741824"));
  }
  if (c.collector.profile_hz < 0 || c.collector.profile_hz > 1000) {
    return absl::InvalidArgumentError(absl::StrCat("--profile_hz=", c.collector.profile_hz,
                                                   ": must be 0 (off) to 1000 samples per second"));
  }
  if (c.collector.offcpu_stack_ratio < 0 || c.collector.offcpu_stack_ratio > 65536) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--offcpu_stack_ratio=", c.collector.offcpu_stack_ratio, ": must be 0 (off) to 65536"));
  }
  if (c.profile_history < absl::Minutes(1) || c.profile_history > absl::Hours(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--profile_history=", absl::FormatDuration(c.profile_history),
                     ": must be between 1m and 1h"));
  }
  if (!c.collector.pin_path.empty() && c.collector.pin_path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "--pin_path=", c.collector.pin_path, ": must be an absolute path (empty: no pinning)"));
  }
  if (absl::Status s = CheckProcRoot(c.proc_root); !s.ok()) return s;
  if (absl::Status s = ValidateTableOptions(c.table); !s.ok()) return s;
  if (absl::Status s = CheckThresholds(c.offenders); !s.ok()) return s;
  return ValidateOffenderConfig(c.offenders);
}

}  // namespace procscope
