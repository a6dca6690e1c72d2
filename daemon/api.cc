// SPDX-License-Identifier: Apache-2.0
#include "api.h"

#include <algorithm>
#include <iterator>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "counters_proto.h"
#include "google/protobuf/util/json_util.h"
#include "http_server.h"
#include "text.h"

namespace procscope {
namespace {

int64_t UnixNanos(absl::Time t) { return absl::ToUnixNanos(t); }

}  // namespace

std::string ToJson(const google::protobuf::Message& m) {
  // The last line of defence: a string that is not UTF-8 would fail the conversion (and log).
  std::unique_ptr<google::protobuf::Message> fixed;
  if (!StringsAreValidUtf8(m)) {
    fixed.reset(m.New());
    fixed->CopyFrom(m);
    MakeStringsValidUtf8(fixed.get());
  }
  const google::protobuf::Message& valid = fixed ? *fixed : m;
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;  // a stable schema: zero fields are present too
  opts.add_whitespace = false;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(valid, &out, opts).ok()) return "{}";
  out.push_back('\n');
  return out;
}

// Kept apart so that the counter list can generate it.
void SetProcessCounters(const ProcessInfo& p, v1::Process* o) {
  SetCounterFields(p.counters, p.io, o);  // every counter of the list (model/counters.h)
}

v1::ProcessList BuildProcessList(const Snapshot& s) {
  v1::ProcessList list;
  const PassData& pass = *s.pass;
  absl::flat_hash_map<ps_key, double> rate[kNumResources];
  for (size_t res = 0; res < pass.rankings.size() && res < kNumResources; ++res) {
    for (const ResourceRate& rr : pass.rankings[res]) {
      if (rr.rate != 0) rate[res][rr.key] = rr.rate;
    }
  }
  auto get = [&](Resource res, const ps_key& k) {
    auto it = rate[static_cast<int>(res)].find(k);
    return it == rate[static_cast<int>(res)].end() ? 0.0 : it->second;
  };
  list.mutable_processes()->Reserve(static_cast<int>(pass.processes.size()));
  for (const std::shared_ptr<const ProcessInfo>& shared : pass.processes) {
    const ProcessInfo& p = *shared;
    v1::Process* o = list.add_processes();
    o->set_pid(p.key.tgid);
    o->set_ppid(p.ppid);
    o->set_comm(ToValidUtf8(p.comm));
    o->set_exe(ToValidUtf8(p.identity.exe));
    o->set_group(ToValidUtf8(p.group));
    o->set_container(ToValidUtf8(p.identity.cgroup.container_id));
    o->set_pod_uid(ToValidUtf8(p.identity.cgroup.pod_uid));
    o->set_systemd_unit(ToValidUtf8(p.identity.cgroup.systemd_unit));
    o->set_uid(p.uid);
    o->set_user(ToValidUtf8(p.identity.user));
    o->set_start_time_unix_ns(UnixNanos(p.start_time));
    o->set_threads(p.nr_threads);
    o->set_resident_memory_bytes(p.rss_bytes);
    SetProcessCounters(p, o);
    o->set_cpu_cores(get(Resource::kCpu, p.key));
    o->set_runqueue_wait_cores(get(Resource::kRunqueueWait, p.key));
    o->set_memory_growth_bytes_per_second(get(Resource::kMemoryGrowth, p.key));
    o->set_page_faults_per_second(get(Resource::kPageFaults, p.key));
    o->set_block_io_bytes_per_second(get(Resource::kBlockIo, p.key));
  }
  return list;
}

v1::OffenderList BuildOffenderList(const Snapshot& s) {
  v1::OffenderList list;
  list.set_window_seconds(absl::ToDoubleSeconds(s.offender_window));
  for (const Offender& o : s.pass->offenders) {
    v1::Offender* out = list.add_offenders();
    out->set_resource(ResourceName(o.resource));
    out->set_pid(o.key.tgid);
    out->set_comm(ToValidUtf8(o.comm));
    out->set_group(ToValidUtf8(o.group));
    out->set_container(ToValidUtf8(o.container));
    out->set_rate(o.rate);
    out->set_unit(ResourceUnit(o.resource));
    out->set_share(o.share);
    out->set_reason(ToValidUtf8(o.reason));
    out->set_since_unix_ns(UnixNanos(o.since));
    out->set_where(ToValidUtf8(o.where));
  }
  return list;
}

v1::DaemonStatus BuildStatus(const Snapshot& s, const SelfState& self, absl::Time now) {
  v1::DaemonStatus st;
  st.set_version(self.version);
  st.set_ready(s.ready);
  st.set_uptime_seconds(absl::ToDoubleSeconds(now - s.started));
  st.set_tracked_processes(self.tracked_processes);
  st.set_exit_events(self.exit_events);
  for (const ProgramStats& p : self.programs) {
    v1::DaemonStatus::Program* o = st.add_programs();
    o->set_name(p.name);
    o->set_hook(p.hook);
    o->set_attach(p.attach);
    o->set_runs(p.run_cnt);
    o->set_run_time_seconds(p.run_time_ns / 1e9);
    o->set_ns_per_run(p.run_cnt ? static_cast<double>(p.run_time_ns) / p.run_cnt : 0);
  }
  for (int i = 0; i < PS_STAT_MAX; ++i) {
    (*st.mutable_kernel_stats())[StatName(i)] = self.kernel_stats[i];
  }
  for (const MapFill& fill : self.map_entries) {
    v1::DaemonStatus::MapFill* m = st.add_maps();
    m->set_name(fill.name);
    m->set_entries(fill.entries);
    m->set_max_entries(fill.max_entries);
  }
  for (const std::string& h : s.degraded_hooks) st.add_degraded_hooks(h);
  st.set_group_by(s.group_by);
  st.set_offender_window_seconds(absl::ToDoubleSeconds(s.offender_window));
  st.set_num_cpus(static_cast<uint32_t>(std::max(1, s.num_cpus)));
  return st;
}

v1::EventList BuildEventList(const std::vector<SharedExitEvent>& events) {
  v1::EventList list;
  for (const SharedExitEvent& e : events) *list.add_events() = *e;
  return list;
}

absl::StatusOr<EventQuery> ParseEventQuery(absl::string_view query, size_t events_in_memory) {
  // At most what is kept in memory: one request cannot ask for more than is there.
  auto limit = QueryCount(query, "limit", 100, kMaxEventsLimit);
  if (!limit.ok()) return limit.status();
  auto failed = QueryBool(query, "failed", false);
  if (!failed.ok()) return failed.status();
  // All outcomes: the newest exits plus the older failures kept in a ring of their own.
  const size_t held = std::max<size_t>(events_in_memory, 1) * (*failed ? 1 : 2);
  return EventQuery{std::min(*limit, held), *failed};
}

}  // namespace procscope

namespace procscope {

absl::StatusOr<ProfileRequest> ParseProfileRequest(absl::string_view query, bool offcpu,
                                                   absl::Duration history) {
  auto args = ParseQuery(query);
  if (!args.ok()) return args.status();
  ProfileRequest r;
  for (const auto& [name, value] : *args) {
    if (name != "seconds" && name != "pid" && name != "group" && name != "format") {
      return absl::InvalidArgumentError(absl::StrCat("unknown parameter '", EscapeForDisplay(name),
                                                     "': expected seconds, pid, group or format"));
    }
  }
  const size_t max_seconds = static_cast<size_t>(absl::ToInt64Seconds(history));
  auto seconds = QueryCount(query, "seconds", std::min<size_t>(30, max_seconds), max_seconds);
  if (!seconds.ok()) return seconds.status();
  r.query.window = absl::Seconds(static_cast<int64_t>(*seconds));
  auto pid = QueryCount(query, "pid", 0, 4194304);  // PID_MAX_LIMIT
  if (!pid.ok()) return pid.status();
  r.query.pid = static_cast<uint32_t>(*pid);
  for (const auto& [name, value] : *args) {
    if (name == "group") {
      if (value.empty()) return absl::InvalidArgumentError("group: must not be empty");
      r.query.group = value;
    }
    if (name == "format") {
      if (value == "folded") {
        r.folded = true;
      } else if (value != "pprof") {
        return absl::InvalidArgumentError(absl::StrCat("format='", EscapeForDisplay(value),
                                                       "': must be pprof (the default) or folded"));
      }
    }
  }
  r.query.kinds = offcpu
                      ? std::vector<StackKind>{StackKind::kOffCpuBlocked, StackKind::kOffCpuSleep}
                      : std::vector<StackKind>{StackKind::kOnCpu};
  return r;
}

}  // namespace procscope
