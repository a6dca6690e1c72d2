// SPDX-License-Identifier: Apache-2.0
// Who is hurting the machine: per-resource rates of every process over a sliding window, ranked,
// and flagged when a process stands out.
#ifndef PROCSCOPE_DAEMON_OFFENDERS_H_
#define PROCSCOPE_DAEMON_OFFENDERS_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "model.h"

namespace procscope {

struct OffenderConfig {
  absl::Duration window = absl::Seconds(30);
  int num_cpus = 1;  // for the cpu share
  // A process is flagged for a resource when its rate is at least `min_rate` for it AND at least
  // `dominance` times the next process's rate.
  double dominance = 2.0;
  double min_cpu_cores = 0.5;
  double min_runqueue_cores = 0.1;         // waiting 100 ms per second
  double min_memory_growth_bps = 4 << 20;  // 4 MiB/s of resident memory growth
  double min_page_faults_per_s = 2000;
  double min_block_io_bps = 4 << 20;       // 4 MiB/s read + write
  double min_crashes_per_min = 3;          // per group, crashed or oom_killed exits
};
absl::Status ValidateOffenderConfig(const OffenderConfig& c);

class OffenderDetector {
 public:
  explicit OffenderDetector(OffenderConfig config);
  void Reconfigure(OffenderConfig config);

  // One observation of every live process (counters are totals since process start).
  void Observe(const std::vector<ProcessInfo>& processes, absl::Time now);
  // A crash (crashed or oom_killed exit) of a process of `group`.
  void ObserveCrash(const ProcessInfo& process, absl::Time now);

  // Rates over the window, per resource, highest first (kCrashes: per group, keyed by the last
  // crashed process). A process seen for less than the window is measured over the time it was
  // seen, from zero if it started inside the window.
  std::vector<ResourceRate> Ranking(Resource r) const;

  // The processes that stand out now, with the reason in words
  // ("cpu 0.92 cores, 11.0x the next process"). `since` is kept while a flag persists.
  std::vector<Offender> Evaluate(absl::Time now);

 private:
  OffenderConfig config_;
  // ... implementation state
};

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_OFFENDERS_H_
