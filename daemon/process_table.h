// SPDX-License-Identifier: Apache-2.0
// The process table: live processes keyed by pid + start time, enriched once from /proc, and the
// groups they fold into, so that group totals include every process that ever ran.
#ifndef PROCSCOPE_DAEMON_PROCESS_TABLE_H_
#define PROCSCOPE_DAEMON_PROCESS_TABLE_H_

#include <cstdint>
#include <regex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "model.h"
#include "procfs.h"
#include "procscope.pb.h"
#include "records.h"

namespace procscope {

enum class GroupBy { kComm, kExe, kContainer, kUnit, kUser };
absl::StatusOr<GroupBy> ParseGroupBy(absl::string_view s);  // "comm", "exe", "container", ...

struct TableOptions {
  GroupBy group_by = GroupBy::kComm;
  // Group series of groups with no live process and no exit for this long are dropped.
  absl::Duration group_idle_expiry = absl::Minutes(10);
  // A process missing from the iterator whose exit event has not come yet is folded with its
  // last counters after this long (the event was lost, e.g. ring buffer full).
  absl::Duration exit_grace = absl::Seconds(5);
  // Processes whose comm or exe matches `exclude`, or does not match `include` (when set), are
  // left out of the table and of every group.
  std::string include_regex;
  std::string exclude_regex;
  absl::Duration boot_to_unix;  // add to a boot-time instant to get Unix time
};

class ProcessTable {
 public:
  // `identities` reads /proc once per new process (not owned).
  ProcessTable(TableOptions options, IdentitySource* identities);

  // One pass of the process iterator. New processes are enriched (once), known ones updated
  // (counters never go backwards), vanished ones wait `exit_grace` for their exit event.
  void ApplySamples(const std::vector<ProcessSample>& samples, absl::Time now);

  // An exit event: the process's final counters go into its group, its record is returned.
  // A process never seen live (shorter than one sampling pass) is named from the event alone,
  // and grouped by comm (or by what its cgroup id was last seen as).
  v1::ExitEvent ApplyExit(const ps_exit_event& e, absl::Time now);

  // Drops groups idle for longer than group_idle_expiry.
  void ExpireGroups(absl::Time now);

  std::vector<ProcessInfo> Processes() const;  // live, sorted by pid
  std::vector<GroupInfo> Groups() const;       // sorted by name
  size_t size() const;

 private:
  // ... implementation state
};

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_PROCESS_TABLE_H_
