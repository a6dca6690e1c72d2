// SPDX-License-Identifier: Apache-2.0
#include "process_table.h"

#include <string.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "counters.h"
#include "counters_proto.h"
#include "exits.h"

namespace procscope {
namespace {

// How long an exited or excluded key is remembered, so that a sample read just before the exit
// cannot bring the process back.
constexpr absl::Duration kForgetAfter = absl::Minutes(1);

// An --include/--exclude pattern; quiet, since a bad one is reported by ValidateTableOptions.
std::unique_ptr<RE2> CompileFilter(const std::string& pattern) {
  RE2::Options options;
  options.set_log_errors(false);
  return std::make_unique<RE2>(pattern, options);
}

// Counters only grow: a live read can transiently show a thread's slice twice (see
// docs/ARCHITECTURE.md), and the next read must not then go backwards.
void KeepMax(ps_counters& have, const ps_counters& now) { MaxCounters(have, now); }
void KeepMax(ps_io& have, const ps_io& now) { MaxIo(have, now); }

absl::Time TimeOf(absl::Time t) { return t; }
template <typename T>
absl::Time TimeOf(const T& entry) {
  return entry.at;
}

// A hash map keeps its slots after its entries go: after thousands of exits, give them back.
template <typename Map>
void ShrinkAfterDrop(Map& m) {
  if (m.capacity() > 4 * m.size() + 64) m.rehash(0);
}

template <typename Map>
void Forget(Map& m, absl::Time now) {
  for (auto it = m.begin(); it != m.end();) {
    if (now - TimeOf(it->second) > kForgetAfter) {
      m.erase(it++);
    } else {
      ++it;
    }
  }
  ShrinkAfterDrop(m);
}

// Nothing a reader of the process would see changes with this sample.
bool SameAsSample(const ProcessInfo& p, const ProcessSample& s) {
  return p.ppid == s.ppid && p.uid == s.uid && p.nr_threads == s.nr_threads &&
         p.cgroup_id == s.cgroup_id && p.rss_bytes == s.rss_bytes && p.comm == s.comm &&
         memcmp(&p.counters, &s.counters, sizeof(p.counters)) == 0 &&
         memcmp(&p.io, &s.io, sizeof(p.io)) == 0;
}

}  // namespace

absl::Status ValidateTableOptions(const TableOptions& o) {
  for (const auto& [name, re] :
       {std::pair<const char*, const std::string&>{"include", o.include_regex},
        {"exclude", o.exclude_regex}}) {
    if (re.empty()) continue;
    const std::unique_ptr<RE2> compiled = CompileFilter(re);
    if (!compiled->ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", name, "=", re, ": not a valid regular expression: ", compiled->error()));
    }
  }
  if (o.group_idle_expiry < absl::Seconds(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--group_idle_expiry=", absl::FormatDuration(o.group_idle_expiry),
                     ": must be at least 1s"));
  }
  if (o.exit_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("exit grace must not be negative");
  }
  return absl::OkStatus();
}

namespace {

// Raw group name: a comm, path or unit can hold any byte.
std::string RawGroupName(GroupBy by, absl::string_view comm, const Identity& id, uint32_t uid) {
  switch (by) {
    case GroupBy::kComm:
      return std::string(comm);
    case GroupBy::kExe:
      return id.exe.empty() ? absl::StrCat("[", comm, "]") : id.exe;
    case GroupBy::kContainer:
      return id.cgroup.container_id.empty() ? "host" : id.cgroup.container_id;
    case GroupBy::kUnit:
      return id.cgroup.systemd_unit.empty() ? "none" : id.cgroup.systemd_unit;
    case GroupBy::kUser:
      return id.user.empty() ? absl::StrCat(uid) : id.user;
  }
  return std::string(comm);
}

}  // namespace

// Valid UTF-8, as the journal and the API store it: a live "x\xff" and the same group restored
// from the journal after a restart are one group, not two colliding series.
std::string GroupName(GroupBy by, absl::string_view comm, const Identity& id, uint32_t uid) {
  return ToValidUtf8(RawGroupName(by, comm, id, uid));
}

ProcessTable::ProcessTable(TableOptions options, IdentitySource* identities)
    : options_(std::move(options)), identities_(identities) {
  // Validated by ValidateTableOptions before we get here.
  if (!options_.include_regex.empty()) include_ = CompileFilter(options_.include_regex);
  if (!options_.exclude_regex.empty()) exclude_ = CompileFilter(options_.exclude_regex);
}

bool ProcessTable::Excluded(absl::string_view comm, const Identity& id) const {
  auto matches = [&](const RE2& re) {
    return RE2::PartialMatch(re2::StringPiece(comm.data(), comm.size()), re) ||
           (!id.exe.empty() && RE2::PartialMatch(id.exe, re));
  };
  if (exclude_ != nullptr && matches(*exclude_)) return true;
  if (include_ != nullptr && !matches(*include_)) return true;
  return false;
}

Identity ProcessTable::Resolve(const ProcessSample& s) {
  Identity id;
  if (identities_ != nullptr) {
    auto read = identities_->Read(static_cast<pid_t>(s.key.tgid), s.key.start_ns);
    if (read.ok()) id = *std::move(read);
  }
  if (id.resolved) {
    cgroups_[s.cgroup_id] = id.cgroup;
    if (!id.user.empty()) users_[s.uid] = id.user;
  } else {
    // Gone already: what its cgroup and uid were last seen as.
    if (auto it = cgroups_.find(s.cgroup_id); it != cgroups_.end()) id.cgroup = it->second;
    if (auto it = users_.find(s.uid); it != users_.end()) id.user = it->second;
  }
  return id;
}

const ProcessTable::Base& ProcessTable::BaseOf(const Entry& e) {
  static const Base kNone;
  return e.base != nullptr ? *e.base : kNone;
}

ProcessInfo& ProcessTable::Mutable(Entry& e) {
  if (e.info.use_count() > 1) e.info = std::make_shared<ProcessInfo>(*e.info);
  return *e.info;
}

void ProcessTable::CreditEntry(const Entry& e, absl::Time now) {
  const Base& b = BaseOf(e);
  Credit(e.info->group, e.info->counters, b.counters, e.info->io, b.io, now);
}

void ProcessTable::Credit(const std::string& group, const ps_counters& c, const ps_counters& base,
                          const ps_io& io, const ps_io& base_io, absl::Time now) {
  GroupInfo& g = groups_[group];
  g.name = group;
  AddCounterDelta(g.counters, c, base);
  AddIoDelta(g.io, io, base_io);
  g.last_active = now;
}

void ProcessTable::ApplySamples(const std::vector<ProcessSample>& samples, absl::Time now) {
  ++pass_;
  for (const ProcessSample& s : samples) {
    // Same as its previous sample, which this table took in (or judged): only seen.
    if (s.unchanged && Seen(s.key)) continue;
    ApplyWhole(s, now);
  }
  EndPass(now);
}

bool ProcessTable::ApplyPass(const PassRecords& pass, absl::Time now) {
  ++pass_;
  for (const ProcessSample& s : pass.whole) ApplyWhole(s, now);
  bool complete = true;
  for (const ps_key& k : pass.unchanged) {
    if (Seen(k) || exited_.contains(k)) continue;
    if (auto ex = excluded_.find(k); ex != excluded_.end()) {
      ex->second.at = now;  // still left out: not forgotten while it lives
      continue;
    }
    complete = false;  // never taken in (or forgotten): it must come whole
  }
  EndPass(now);
  return complete;
}

bool ProcessTable::Seen(const ps_key& key) {
  auto it = live_.find(key);
  if (it == live_.end()) return false;
  it->second.seen_pass = pass_;
  it->second.vanished_at = absl::InfiniteFuture();
  return true;
}

void ProcessTable::ApplyWhole(const ProcessSample& s, absl::Time now) {
  if (exited_.contains(s.key)) return;
  if (auto ex = excluded_.find(s.key); ex != excluded_.end()) {
    if (ex->second.comm == s.comm) return;
    excluded_.erase(ex);  // it exec'd since: judge it again under its new name
  }
  auto it = live_.find(s.key);
  if (it == live_.end() || it->second.info->comm != s.comm) {
    // New, or its comm changed (it exec'd): read who it is now.
    Identity id = Resolve(s);
    if (Excluded(s.comm, id)) {
      if (it != live_.end()) {
        CreditEntry(it->second, now);
        live_.erase(it);
      }
      excluded_[s.key] = {now, s.comm};
      return;
    }
    std::string group = GroupName(options_.group_by, s.comm, id, s.uid);
    if (it == live_.end()) {
      Entry e;
      e.info = std::make_shared<ProcessInfo>();
      e.info->key = s.key;
      e.info->start_time = absl::FromUnixNanos(0) + options_.boot_to_unix +
                           absl::Nanoseconds(static_cast<int64_t>(s.key.start_ns));
      it = live_.emplace(s.key, std::move(e)).first;
    } else if (it->second.info->group != group) {
      // Credit what it did so far to the group it leaves; the new one counts from here.
      Entry& e = it->second;
      CreditEntry(e, now);
      if (e.base == nullptr) e.base = std::make_unique<Base>();
      e.base->counters = e.info->counters;
      e.base->io = e.info->io;
    }
    ProcessInfo& info = Mutable(it->second);
    info.identity = std::move(id);
    info.group = std::move(group);
    info.version = 0;  // written below
    // Listed from its first process on. Not touched again while it has one: ExpireGroups
    // keeps a group with a live process, and each leaving process stamps last_active (a string
    // lookup per process per pass was 2.5 % of the daemon's CPU with 1,000 processes).
    GroupInfo& g = groups_[info.group];
    if (g.name.empty()) g.name = info.group;
    g.last_active = now;
  }
  Entry& e = it->second;
  e.seen_pass = pass_;
  e.vanished_at = absl::InfiniteFuture();
  // A whole record that changes nothing (every process, at the start of a read session) is
  // not a write: the published copy stays the table's, and its version says so.
  if (e.info->version != 0 && SameAsSample(*e.info, s)) return;
  ProcessInfo& info = Mutable(e);
  info.version = ++versions_;
  info.ppid = s.ppid;
  info.uid = s.uid;
  info.nr_threads = s.nr_threads;
  info.cgroup_id = s.cgroup_id;
  info.comm = s.comm;
  info.rss_bytes = s.rss_bytes;
  KeepMax(info.counters, s.counters);
  KeepMax(info.io, s.io);
}

void ProcessTable::EndPass(absl::Time now) {
  // Vanished without an exit event (yet): after the grace period, its last counters stay in its
  // group so that the group's totals never go backwards.
  for (auto it = live_.begin(); it != live_.end();) {
    Entry& e = it->second;
    if (e.seen_pass == pass_) {
      ++it;
      continue;
    }
    if (e.vanished_at == absl::InfiniteFuture()) e.vanished_at = now;
    if (now - e.vanished_at >= options_.exit_grace) {
      CreditEntry(e, now);
      ++lost_exits_;
      exited_[it->first] = now;
      live_.erase(it++);
    } else {
      ++it;
    }
  }
  ShrinkAfterDrop(live_);
  Forget(exited_, now);
  Forget(excluded_, now);
}

v1::ExitEvent ProcessTable::ApplyExit(const ps_exit_event& ev, absl::Time now) {
  const std::string comm = CommFromKernel(ev.comm);
  ExitContext ctx;
  ctx.boot_to_unix = options_.boot_to_unix;
  std::string group;
  ps_counters base{};
  ps_io base_io{};
  bool excluded = excluded_.contains(ev.key);
  auto it = live_.find(ev.key);
  if (it != live_.end()) {
    const Entry& e = it->second;
    group = e.info->group;
    ctx.cgroup = e.info->identity.cgroup;
    base = BaseOf(e).counters;
    base_io = BaseOf(e).io;
    // Exec'd since the last sample: the group follows the final comm, as for a live process.
    if (options_.group_by == GroupBy::kComm && comm != e.info->comm) {
      CreditEntry(e, now);
      base = e.info->counters;
      base_io = e.info->io;
      group = comm;
    }
    live_.erase(it);
  } else {
    // Shorter than one sampling pass: named from the event and what its cgroup was seen as.
    Identity id;
    if (auto c = cgroups_.find(ev.cgroup_id); c != cgroups_.end()) id.cgroup = c->second;
    if (auto u = users_.find(ev.uid); u != users_.end()) id.user = u->second;
    ctx.cgroup = id.cgroup;
    group = GroupName(options_.group_by, comm, id, ev.uid);
    excluded = excluded || Excluded(comm, id);
  }
  ctx.group = group;
  v1::ExitEvent out = MakeExitEvent(ev, ctx);
  exited_[ev.key] = now;
  if (excluded) return out;
  // The event's totals are final: they replace whatever the last sample showed.
  Credit(group, ev.c, base, ev.io, base_io, now);
  GroupInfo& g = groups_[group];
  g.exits[OutcomeName(out.outcome())]++;
  if (out.outcome() == v1::CRASHED || out.outcome() == v1::OOM_KILLED) {
    g.crashes[out.signal_name().empty() ? "none" : out.signal_name()]++;
  }
  return out;
}

void ProcessTable::RestoreExit(const v1::ExitEvent& e, absl::Time now) {
  GroupInfo& g = groups_[e.group()];
  g.name = e.group();
  AddCountersFromProto(e, g.counters, g.io);
  g.exits[OutcomeName(e.outcome())]++;
  if (e.outcome() == v1::CRASHED || e.outcome() == v1::OOM_KILLED) {
    g.crashes[e.signal_name().empty() ? "none" : e.signal_name()]++;
  }
  g.last_active = now;
  restored_.emplace_back(e.pid(), e.start_time_unix_ns());
  if (restored_.size() > kRedeliverable) restored_.pop_front();
  restored_by_pid_.clear();
}

bool ProcessTable::Redelivered(const ps_exit_event& e) {
  if (restored_.empty()) return false;
  if (restored_by_pid_.empty()) {
    for (const auto& [pid, start] : restored_) restored_by_pid_[pid].push_back(start);
  }
  auto it = restored_by_pid_.find(e.key.tgid);
  if (it == restored_by_pid_.end()) return false;
  // Start times went through two daemons' boot-to-Unix offsets: equal to well within 1 ms.
  const int64_t start = absl::ToUnixNanos(absl::FromUnixNanos(0) + options_.boot_to_unix +
                                          absl::Nanoseconds(static_cast<int64_t>(e.key.start_ns)));
  for (int64_t s : it->second) {
    if (s - start < 1000000 && start - s < 1000000) return true;
  }
  return false;
}

void ProcessTable::ForgetRestored() {
  restored_.clear();
  restored_by_pid_.clear();
}

void ProcessTable::Reconfigure(const TableOptions& options) {
  const GroupBy group_by = options_.group_by;
  const absl::Duration boot_to_unix = options_.boot_to_unix;
  options_ = options;
  options_.group_by = group_by;
  options_.boot_to_unix = boot_to_unix;
  include_ = options_.include_regex.empty() ? nullptr : CompileFilter(options_.include_regex);
  exclude_ = options_.exclude_regex.empty() ? nullptr : CompileFilter(options_.exclude_regex);
  excluded_.clear();  // judged again under the new filters at the next pass
}

void ProcessTable::ExpireGroups(absl::Time now) {
  absl::flat_hash_map<std::string, bool> busy;
  for (const auto& [key, e] : live_) busy[e.info->group] = true;
  for (auto it = groups_.begin(); it != groups_.end();) {
    if (!busy.contains(it->first) && now - it->second.last_active > options_.group_idle_expiry) {
      groups_.erase(it++);
    } else {
      ++it;
    }
  }
}

std::vector<ProcessInfo> ProcessTable::Processes() const {
  std::vector<ProcessInfo> out;
  out.reserve(live_.size());
  for (const auto& [key, e] : live_) {
    if (e.vanished_at == absl::InfiniteFuture()) out.push_back(*e.info);
  }
  std::sort(out.begin(), out.end(),
            [](const ProcessInfo& a, const ProcessInfo& b) { return a.key.tgid < b.key.tgid; });
  return out;
}

std::vector<const ProcessInfo*> ProcessTable::ProcessPtrs() const {
  std::vector<const ProcessInfo*> out;
  out.reserve(live_.size());
  for (const auto& [key, e] : live_) {
    if (e.vanished_at == absl::InfiniteFuture()) out.push_back(e.info.get());
  }
  return out;
}

std::vector<std::shared_ptr<const ProcessInfo>> ProcessTable::SharedProcesses() const {
  std::vector<std::shared_ptr<const ProcessInfo>> out;
  out.reserve(live_.size());
  for (const auto& [key, e] : live_) {
    if (e.vanished_at == absl::InfiniteFuture()) out.push_back(e.info);
  }
  return out;
}

std::vector<ProcessInfo> ProcessTable::ProcessesWithKeys(const std::vector<ps_key>& keys) const {
  std::vector<ProcessInfo> out;
  absl::flat_hash_map<ps_key, bool> taken;
  for (const ps_key& k : keys) {
    if (!taken.emplace(k, true).second) continue;
    auto it = live_.find(k);
    if (it != live_.end() && it->second.vanished_at == absl::InfiniteFuture()) {
      out.push_back(*it->second.info);
    }
  }
  return out;
}

std::vector<GroupInfo> ProcessTable::Groups() const {
  absl::flat_hash_map<std::string, GroupInfo> out;
  for (const auto& [name, g] : groups_) {
    GroupInfo& info = out[name];
    info = g;
    info.name = name;
  }
  for (const auto& [key, e] : live_) {
    const ProcessInfo& p = *e.info;
    GroupInfo& info = out[p.group];
    info.name = p.group;
    const Base& b = BaseOf(e);
    AddCounterDelta(info.counters, p.counters, b.counters);
    AddIoDelta(info.io, p.io, b.io);
    if (e.vanished_at == absl::InfiniteFuture()) {
      info.processes++;
      info.rss_bytes += p.rss_bytes;
    }
  }
  std::vector<GroupInfo> v;
  v.reserve(out.size());
  for (auto& [name, info] : out) v.push_back(std::move(info));
  std::sort(v.begin(), v.end(),
            [](const GroupInfo& a, const GroupInfo& b) { return a.name < b.name; });
  return v;
}

size_t ProcessTable::size() const { return live_.size(); }

}  // namespace procscope
