// SPDX-License-Identifier: Apache-2.0
// procscoped's settings: filled from flags (and the --config file) in main, validated once, then
// passed down. Reloadable ones are applied again on SIGHUP.
#ifndef PROCSCOPE_DAEMON_CONFIG_H_
#define PROCSCOPE_DAEMON_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "collector.h"
#include "enum_names.h"
#include "log.h"
#include "metrics.h"
#include "offenders.h"
#include "privileges.h"
#include "process_table.h"
#include "web_config.h"

namespace procscope {

struct Config {
  // The console report (the "top offenders" view of the daemon's terminal).
  absl::Duration interval = absl::Seconds(2);      // between reports
  absl::Duration duration = absl::ZeroDuration();  // stop after this long; zero: until signal
  int top = 10;                                    // processes per report
  bool quiet = false;                              // no console report
  // Collection.
  absl::Duration sample_interval = absl::Seconds(1);  // process iterator passes
  CollectorOptions collector;
  std::string proc_root = "/proc";
  // How far back /debug/pprof/* and `procscope profile` can look (the profile history).
  absl::Duration profile_history = absl::Minutes(10);
  // Serving.
  std::string listen = ":9750";
  // --web_config_file (exporter-toolkit's format): TLS and basic auth; re-read on SIGHUP.
  std::string web_config_file;
  WebConfig web;  // loaded from it by main; empty: plain HTTP, open to anyone
  // Process table, offenders, exposition (reloadable: offenders, export, include/exclude and
  // group expiry; group_by only at start).
  TableOptions table;
  OffenderConfig offenders;
  ExportOptions export_options;
  // Crash history.
  std::string journal_dir = "/var/lib/procscope";  // "" disables the on-disk journal
  uint64_t journal_max_bytes = 16 << 20;
  size_t events_in_memory = 1000;
  // Messages below this level are not logged (--log_level); reloadable.
  LogLevel log_level = LogLevel::kInfo;
  // Least privilege: once started, keep only these capabilities (and set no_new_privs).
  bool drop_capabilities = true;
  CapMask keep_capabilities = kRunCapabilities;
};

// AttachMode's names. Its enum (collector.h) has no kLast and ends at kRawTp: a new mode there
// moves this count, and then fails the build until kAttachModeNames names it.
template <>
inline constexpr size_t kEnumCount<AttachMode> = static_cast<size_t>(AttachMode::kRawTp) + 1;
inline constexpr EnumTable<AttachMode> kAttachModeNames = {{
    {AttachMode::kAuto, "auto"},
    {AttachMode::kTpBtf, "tp_btf"},
    {AttachMode::kRawTp, "raw_tp"},
}};
static_assert(IsEnumTable(kAttachModeNames), "kAttachModeNames must name every AttachMode");
constexpr const char* AttachModeName(AttachMode m) { return NameOf(kAttachModeNames, m); }

// Parses --attach: "auto", "tp_btf" or "raw_tp"; the error names the flag and the valid values.
absl::StatusOr<AttachMode> ParseAttachMode(absl::string_view s);

// --attach as an Abseil flag of type AttachMode.
bool AbslParseFlag(absl::string_view text, AttachMode* out, std::string* error);
std::string AbslUnparseFlag(AttachMode m);

// --proc_root: an existing procfs mount.
absl::Status CheckProcRoot(const std::string& path);

// Checks every setting (--proc_root on the file system); the message names the flag and the
// accepted values.
absl::Status ValidateConfig(const Config& c);

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_CONFIG_H_
