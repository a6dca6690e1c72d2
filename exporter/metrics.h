// SPDX-License-Identifier: Apache-2.0
// Turns what procscoped knows into the Prometheus text exposition (format 0.0.4), per scrape.
// Every metric is documented in docs/metrics.md.
#ifndef PROCSCOPE_EXPORTER_METRICS_H_
#define PROCSCOPE_EXPORTER_METRICS_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "model.h"

namespace procscope {

// The state of the daemon itself, for the self-metrics.
struct SelfState {
  std::vector<ProgramStats> programs;  // BPF run time and run count per program
  KernelStats kernel_stats{};          // drops and unattributed I/O (enum ps_stat)
  uint64_t tracked_processes = 0;
  std::vector<MapFill> map_entries;  // the BPF maps that can fill up
  uint64_t exit_events = 0;          // handled since start
  uint64_t journal_dropped_bytes = 0;
  // Exit records whose write failed; bytes skipped as damaged when the journal was read.
  uint64_t journal_dropped_records = 0;
  uint64_t journal_damaged_bytes = 0;
  double last_scrape_duration_seconds = 0;
  uint64_t series_dropped_total = 0;  // by the series cap, over all scrapes
  // Optional hooks that could not attach (Collector::Degraded): their data is missing.
  std::vector<std::string> degraded_hooks;
  std::string version;
  // The profile history (profiler/profile_store.h), indexed by StackKind: stack entries drained,
  // those with a user stack, and of those the truncated ones; entries the memory cap dropped.
  // Exported only while `profiling` (on-CPU sampling or off-CPU stacks are on).
  bool profiling = false;
  std::array<uint64_t, PS_STACK_KINDS> profile_stacks{};
  std::array<uint64_t, PS_STACK_KINDS> profile_user_stacks{};
  std::array<uint64_t, PS_STACK_KINDS> profile_user_truncated{};
  uint64_t profile_dropped_entries = 0;
  uint64_t profile_store_bytes = 0;
};

struct ExportOptions {
  size_t top_k = 10;          // per-process series: the top K of each resource, plus offenders
  size_t max_series = 20000;  // hard cap on series per scrape; what it drops is counted
  bool export_container_label = true;
};

// Everything one scrape shows. `rates` holds, per resource, the processes' rates over the
// offender window (highest first), which picks the top K.
struct ExportInput {
  const std::vector<ProcessInfo>* processes = nullptr;
  const std::vector<GroupInfo>* groups = nullptr;
  const std::vector<Offender>* offenders = nullptr;
  const std::vector<std::vector<ResourceRate>>* rates = nullptr;  // indexed by Resource
  const SelfState* self = nullptr;
};

// The exposition: every family with series, with its HELP and TYPE. `series_dropped` receives
// how many series the cap dropped in this call; the caller adds it to
// SelfState::series_dropped_total for the next scrape.
std::string RenderMetrics(const ExportInput& in, const ExportOptions& options,
                          uint64_t* series_dropped);

// A label value that is valid UTF-8 (ToValidUtf8 in common/text.h) and has no control
// characters (they become U+FFFD too); the text format's own escaping of backslash, double quote
// and newline is done by RenderMetrics.
std::string SanitizeLabelValue(absl::string_view raw);

}  // namespace procscope

#endif  // PROCSCOPE_EXPORTER_METRICS_H_
