// SPDX-License-Identifier: Apache-2.0
// What one sampling pass of procscoped saw, immutable once published: /metrics and the HTTP API
// serialise from it (daemon/api.h) without the collection loop's state or lock.
#ifndef PROCSCOPE_DAEMON_SNAPSHOT_H_
#define PROCSCOPE_DAEMON_SNAPSHOT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "metrics.h"
#include "model.h"

namespace procscope {

// The parts that change only with a sampling pass (a snapshot published without a pass, at
// start and at the end of Run, shares them and re-reads only the groups).
struct PassData {
  // Every live process, sorted by pid. Shared, immutable copies: a process that did not change
  // since the last pass (most of them, on an idle machine) keeps the copy it had, so a pass
  // neither copies nor allocates for it and the snapshots share its memory.
  std::vector<std::shared_ptr<const ProcessInfo>> processes;
  // Copies of the processes that can get per-process series: the top K of each resource (as
  // of the pass's export options) and the offenders.
  std::vector<ProcessInfo> top_processes;
  std::vector<std::vector<ResourceRate>> rankings;   // per Resource, highest first: all
  std::vector<std::vector<ResourceRate>> top_rates;  // per Resource: the first top K of rankings
  std::vector<Offender> offenders;
};

struct Snapshot {
  bool ready = false;  // a sampling pass ran (before it: the journal's groups only)
  absl::Time taken;    // when it was published
  std::shared_ptr<const PassData> pass = std::make_shared<PassData>();
  std::vector<GroupInfo> groups;  // live + exited, sorted by name
  // The daemon's own state as of the pass; the counters that move between passes (exit
  // events, journal drops, scrape figures) are the daemon's live ones, merged in per request.
  SelfState self;
  // Settings and facts the status page shows.
  ExportOptions export_options;
  std::string group_by;  // "comm", "exe", ...
  absl::Duration offender_window;
  int num_cpus = 1;
  std::vector<std::string> degraded_hooks;
  absl::Time started;  // of the daemon, for the uptime
};

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_SNAPSHOT_H_
