// SPDX-License-Identifier: Apache-2.0
// The process table: live processes keyed by pid + start time, enriched once from /proc, and the
// groups they fold into, so that group totals include every process that ever ran.
#ifndef PROCSCOPE_DAEMON_PROCESS_TABLE_H_
#define PROCSCOPE_DAEMON_PROCESS_TABLE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "group_by.h"
#include "model.h"
#include "procfs.h"
#include "procscope.pb.h"
#include "re2/re2.h"
#include "records.h"

namespace procscope {

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

// Checks the regexes (RE2 syntax) and durations; the message names the setting.
absl::Status ValidateTableOptions(const TableOptions& o);

// The group name of a process under a grouping: comm; exe (or "[comm]" when unknown: kernel
// threads, processes gone before /proc was read); container id ("host" outside containers);
// systemd unit ("none"); user name (uid as a number when it has no name).
std::string GroupName(GroupBy by, absl::string_view comm, const Identity& id, uint32_t uid);

class ProcessTable {
 public:
  // `identities` reads /proc once per new process (not owned).
  ProcessTable(TableOptions options, IdentitySource* identities);

  // One pass of the process iterator. New processes are enriched (once), known ones updated
  // (counters never go backwards), vanished ones wait `exit_grace` for their exit event.
  void ApplySamples(const std::vector<ProcessSample>& samples, absl::Time now);
  // The same from the iterator's compact form: an unchanged key is only seen. False when one
  // names a process the table never took in or no longer remembers (an exclusion forgotten,
  // the filters changed): the caller has the next read send every process whole.
  bool ApplyPass(const PassRecords& pass, absl::Time now);

  // An exit event: the process's final counters go into its group, its record is returned.
  // A process never seen live (shorter than one sampling pass) is named from the event alone,
  // and grouped by comm (or by what its cgroup id was last seen as).
  v1::ExitEvent ApplyExit(const ps_exit_event& e, absl::Time now);

  // A past exit reloaded from the journal at start: its group keeps counting it (exits, crashes
  // and its final totals), so a restart does not erase the crash history from the metrics.
  void RestoreExit(const v1::ExitEvent& e, absl::Time now);

  // True for an exit event that RestoreExit already counted: the previous procscoped journaled
  // it but died before releasing it from the pinned ring buffer, which hands it out again. Only
  // the newest kRedeliverable restored exits are checked (the ring buffer cannot hold more).
  bool Redelivered(const ps_exit_event& e);
  // Ends that check (the ring buffer's backlog is drained by then).
  void ForgetRestored();
  static constexpr size_t kRedeliverable = 1 << 15;

  // New filters and group expiry (group_by is kept: changing it needs a restart).
  void Reconfigure(const TableOptions& options);

  // Drops groups idle for longer than group_idle_expiry.
  void ExpireGroups(absl::Time now);

  std::vector<ProcessInfo> Processes() const;  // live, sorted by pid
  // The live processes in place (valid until the table next changes), in no order.
  std::vector<const ProcessInfo*> ProcessPtrs() const;
  // The live processes themselves, shared (immutable: the table copies one before writing it
  // again), in no order.
  std::vector<std::shared_ptr<const ProcessInfo>> SharedProcesses() const;
  // Copies of the live processes with these keys (for the per-process series).
  std::vector<ProcessInfo> ProcessesWithKeys(const std::vector<ps_key>& keys) const;
  std::vector<GroupInfo> Groups() const;               // sorted by name
  size_t size() const;                                 // live processes
  uint64_t lost_exits() const { return lost_exits_; }  // folded after exit_grace, no event

 private:
  // What a process had done before it changed group (e.g. its comm changed at exec), already
  // credited to the earlier group: its current group counts only the increase over these.
  struct Base {
    ps_counters counters{};
    ps_io io{};
  };
  struct Entry {
    // Shared with the snapshots that published it (Publish takes SharedProcesses()), so one
    // copy of each process serves both; written only through Mutable().
    std::shared_ptr<ProcessInfo> info;
    std::unique_ptr<Base> base;  // null: it never changed group (most processes)
    absl::Time vanished_at = absl::InfiniteFuture();
    uint64_t seen_pass = 0;  // the last ApplySamples() pass that saw it
  };
  // Marks a live process seen by this pass; false if it is not live.
  bool Seen(const ps_key& key);
  void ApplyWhole(const ProcessSample& s, absl::Time now);
  // Folds processes vanished for longer than exit_grace; forgets old exits and exclusions.
  void EndPass(absl::Time now);
  static const Base& BaseOf(const Entry& e);
  // e.info, copied first if a snapshot holds it (a published process never changes).
  static ProcessInfo& Mutable(Entry& e);
  // Credits what `e` did in its group (minus its base) to the group's exited totals.
  void CreditEntry(const Entry& e, absl::Time now);
  bool Excluded(absl::string_view comm, const Identity& id) const;
  Identity Resolve(const ProcessSample& s);
  // Credits counters (minus base) to a group's exited totals.
  void Credit(const std::string& group, const ps_counters& c, const ps_counters& base,
              const ps_io& io, const ps_io& base_io, absl::Time now);

  TableOptions options_;
  IdentitySource* identities_;
  // RE2: linear time and no recursion, whatever the pattern and however long the exe path
  // (std::regex overflowed the stack on a 4,096-byte path). Null: no filter.
  std::unique_ptr<RE2> include_, exclude_;
  absl::flat_hash_map<ps_key, Entry> live_;
  uint64_t versions_ = 0;  // the last ProcessInfo::version given out
  // Per group: totals of its exited processes (and of what processes did in it before they
  // moved to another group), exits and crashes, last activity. Live processes are added on read.
  absl::flat_hash_map<std::string, GroupInfo> groups_;
  // Left out by the filters, under the comm it had then: a process sampled between fork and exec
  // (still its parent's name) is judged again once it exec'd.
  struct ExcludedAs {
    absl::Time at;
    std::string comm;
  };
  absl::flat_hash_map<ps_key, ExcludedAs> excluded_;
  absl::flat_hash_map<ps_key, absl::Time> exited_;     // exit applied: ignore late samples
  absl::flat_hash_map<uint64_t, CgroupInfo> cgroups_;  // cgroup id -> what it was seen as
  absl::flat_hash_map<uint32_t, std::string> users_;   // uid -> name, as seen
  // The newest restored exits (pid, start time), and the same by pid once first looked up.
  std::deque<std::pair<uint32_t, int64_t>> restored_;
  absl::flat_hash_map<uint32_t, std::vector<int64_t>> restored_by_pid_;
  uint64_t lost_exits_ = 0;
  uint64_t pass_ = 0;  // ApplySamples() passes so far
};

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_PROCESS_TABLE_H_
