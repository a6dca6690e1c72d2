// SPDX-License-Identifier: Apache-2.0
// The v1 documents built from hand-made snapshots (daemon/api.h): no daemon, no HTTP.
#include "api.h"

#include <memory>

#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace procscope {
namespace {

ProcessInfo Proc(uint32_t pid, uint64_t start_ns, const std::string& comm) {
  ProcessInfo p;
  p.key.tgid = pid;
  p.key.start_ns = start_ns;
  p.ppid = 1;
  p.uid = 1000;
  p.nr_threads = 3;
  p.comm = comm;
  p.group = comm;
  p.identity.exe = "/usr/bin/" + comm;
  p.identity.user = "alice";
  p.identity.cgroup.container_id = std::string(64, 'a');
  p.identity.cgroup.pod_uid = "pod";
  p.identity.cgroup.systemd_unit = "x.service";
  p.rss_bytes = 4096 * pid;
  p.counters.cpu_ns = 2500000000ull;
  p.counters.runq_ns = 500000000ull;
  p.counters.vol_cs = 7;
  p.counters.invol_cs = 8;
  p.counters.min_flt = 9;
  p.counters.maj_flt = 10;
  p.io.read_bytes = 11;
  p.io.write_bytes = 12;
  p.io.dirtied_bytes = 13;
  p.start_time = absl::FromUnixSeconds(1700000000 + pid);
  return p;
}

Snapshot TwoProcesses() {
  auto pass = std::make_shared<PassData>();
  pass->processes = {std::make_shared<const ProcessInfo>(Proc(10, 100, "web")),
                     std::make_shared<const ProcessInfo>(Proc(20, 200, "db\xff"))};
  pass->rankings.resize(kNumResources);
  pass->rankings[static_cast<int>(Resource::kCpu)] = {{pass->processes[1]->key, 1.5},
                                                      {pass->processes[0]->key, 0.25}};
  pass->rankings[static_cast<int>(Resource::kBlockIo)] = {{pass->processes[0]->key, 4096}};
  Offender o;
  o.resource = Resource::kCpu;
  o.key = pass->processes[1]->key;
  o.comm = "db\xff";
  o.group = "db";
  o.rate = 1.5;
  o.share = 0.75;
  o.reason = "cpu 1.50 cores, 6.0x the next process";
  o.since = absl::FromUnixSeconds(1700000100);
  pass->offenders = {o};
  Snapshot s;
  s.ready = true;
  s.pass = pass;
  s.offender_window = absl::Seconds(30);
  s.group_by = "exe";
  s.num_cpus = 2;
  s.degraded_hooks = {"block_rq_issue"};
  s.started = absl::FromUnixSeconds(1700000000);
  return s;
}

TEST(ApiTest, ProcessesCarryIdentityTotalsAndRates) {
  const v1::ProcessList list = BuildProcessList(TwoProcesses());
  ASSERT_EQ(list.processes_size(), 2);
  const v1::Process& web = list.processes(0);
  EXPECT_EQ(web.pid(), 10u);
  EXPECT_EQ(web.ppid(), 1u);
  EXPECT_EQ(web.comm(), "web");
  EXPECT_EQ(web.exe(), "/usr/bin/web");
  EXPECT_EQ(web.container(), std::string(64, 'a'));
  EXPECT_EQ(web.pod_uid(), "pod");
  EXPECT_EQ(web.systemd_unit(), "x.service");
  EXPECT_EQ(web.user(), "alice");
  EXPECT_EQ(web.uid(), 1000u);
  EXPECT_EQ(web.threads(), 3u);
  EXPECT_EQ(web.resident_memory_bytes(), 40960u);
  EXPECT_EQ(web.start_time_unix_ns(), (1700000000ll + 10) * 1000000000ll);
  EXPECT_DOUBLE_EQ(web.cpu_seconds(), 2.5);
  EXPECT_DOUBLE_EQ(web.runqueue_wait_seconds(), 0.5);
  EXPECT_EQ(web.voluntary_context_switches(), 7u);
  EXPECT_EQ(web.involuntary_context_switches(), 8u);
  EXPECT_EQ(web.minor_faults(), 9u);
  EXPECT_EQ(web.major_faults(), 10u);
  EXPECT_EQ(web.read_bytes(), 11u);
  EXPECT_EQ(web.write_bytes(), 12u);
  EXPECT_EQ(web.dirtied_bytes(), 13u);
  EXPECT_DOUBLE_EQ(web.cpu_cores(), 0.25);
  EXPECT_DOUBLE_EQ(web.block_io_bytes_per_second(), 4096);
  EXPECT_DOUBLE_EQ(web.page_faults_per_second(), 0);
  const v1::Process& db = list.processes(1);
  EXPECT_DOUBLE_EQ(db.cpu_cores(), 1.5);
  EXPECT_DOUBLE_EQ(db.block_io_bytes_per_second(), 0);
  EXPECT_EQ(db.comm(), "db\xEF\xBF\xBD");  // made valid UTF-8
}

TEST(ApiTest, ARateOfAnotherIncarnationOfThePidIsNotTaken) {
  Snapshot s = TwoProcesses();
  auto pass = std::make_shared<PassData>(*s.pass);
  ps_key old = pass->processes[0]->key;
  old.start_ns = 1;  // same pid, an earlier process
  pass->rankings[static_cast<int>(Resource::kCpu)] = {{old, 9}};
  s.pass = pass;
  EXPECT_DOUBLE_EQ(BuildProcessList(s).processes(0).cpu_cores(), 0);
}

TEST(ApiTest, OffendersAndWindow) {
  const v1::OffenderList list = BuildOffenderList(TwoProcesses());
  EXPECT_DOUBLE_EQ(list.window_seconds(), 30);
  ASSERT_EQ(list.offenders_size(), 1);
  const v1::Offender& o = list.offenders(0);
  EXPECT_EQ(o.resource(), "cpu");
  EXPECT_EQ(o.unit(), "cores");
  EXPECT_EQ(o.pid(), 20u);
  EXPECT_EQ(o.comm(), "db\xEF\xBF\xBD");
  EXPECT_EQ(o.group(), "db");
  EXPECT_DOUBLE_EQ(o.rate(), 1.5);
  EXPECT_DOUBLE_EQ(o.share(), 0.75);
  EXPECT_EQ(o.reason(), "cpu 1.50 cores, 6.0x the next process");
  EXPECT_EQ(o.since_unix_ns(), 1700000100ll * 1000000000ll);
}

TEST(ApiTest, EmptySnapshotGivesEmptyDocuments) {
  const Snapshot s;  // before the first pass
  EXPECT_EQ(BuildProcessList(s).processes_size(), 0);
  EXPECT_EQ(BuildOffenderList(s).offenders_size(), 0);
  SelfState self;
  const v1::DaemonStatus st = BuildStatus(s, self, absl::Now());
  EXPECT_FALSE(st.ready());
  EXPECT_EQ(st.num_cpus(), 1u);
}

TEST(ApiTest, StatusFromSnapshotAndSelf) {
  const Snapshot s = TwoProcesses();
  SelfState self;
  self.version = "1.2.3";
  self.tracked_processes = 2;
  self.exit_events = 5;
  self.programs = {{"handle_switch", "sched_switch", "tp_btf", 4000, 8}};
  self.kernel_stats[0] = 42;
  self.map_entries = {{"tasks", 3, 100}};
  const v1::DaemonStatus st = BuildStatus(s, self, s.started + absl::Seconds(90));
  EXPECT_EQ(st.version(), "1.2.3");
  EXPECT_TRUE(st.ready());
  EXPECT_DOUBLE_EQ(st.uptime_seconds(), 90);
  EXPECT_EQ(st.tracked_processes(), 2u);
  EXPECT_EQ(st.exit_events(), 5u);
  ASSERT_EQ(st.programs_size(), 1);
  EXPECT_EQ(st.programs(0).hook(), "sched_switch");
  EXPECT_EQ(st.programs(0).runs(), 8u);
  EXPECT_DOUBLE_EQ(st.programs(0).ns_per_run(), 500);
  EXPECT_EQ(st.kernel_stats().at(StatName(0)), 42u);
  EXPECT_EQ(st.kernel_stats_size(), PS_STAT_MAX);
  ASSERT_EQ(st.maps_size(), 1);
  EXPECT_EQ(st.maps(0).max_entries(), 100u);
  ASSERT_EQ(st.degraded_hooks_size(), 1);
  EXPECT_EQ(st.group_by(), "exe");
  EXPECT_DOUBLE_EQ(st.offender_window_seconds(), 30);
  EXPECT_EQ(st.num_cpus(), 2u);
}

TEST(ApiTest, EventListAndQuery) {
  auto e = std::make_shared<v1::ExitEvent>();
  e->set_pid(7);
  e->set_outcome(v1::CRASHED);
  const v1::EventList list = BuildEventList({e, e});
  ASSERT_EQ(list.events_size(), 2);
  EXPECT_EQ(list.events(1).pid(), 7u);
  // The streamed document is the message's JSON.
  EXPECT_EQ(EventListJson({e, e}), ToJson(list));

  auto q = ParseEventQuery("", 1000);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->limit, 100u);
  EXPECT_FALSE(q->failed);
  q = ParseEventQuery("limit=5000&failed=1", 1000);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->limit, 1000u);  // no more than the failed ring holds
  EXPECT_TRUE(q->failed);
  EXPECT_EQ(ParseEventQuery("limit=5000", 1000)->limit, 2000u);
  EXPECT_FALSE(ParseEventQuery("limit=0", 1000).ok());
  EXPECT_FALSE(ParseEventQuery("limit=1000001", 1000).ok());
  EXPECT_FALSE(ParseEventQuery("failed=maybe", 1000).ok());
}

TEST(ApiTest, JsonKeepsFieldNamesZerosAndRepairsUtf8) {
  v1::Process p;
  p.set_comm("bad\xff");
  const std::string json = ToJson(p);
  EXPECT_NE(json.find("\"cpu_seconds\":0"), std::string::npos) << json;
  EXPECT_NE(json.find("\"comm\":\"bad\xEF\xBF\xBD\""), std::string::npos) << json;
  EXPECT_EQ(json.back(), '\n');
}

// /debug/pprof/*'s query: defaults, every parameter, and each bad one as one line naming it.
TEST(ParseProfileRequest, DefaultsParametersAndErrors) {
  const absl::Duration history = absl::Minutes(10);
  auto r = ParseProfileRequest("", /*offcpu=*/false, history);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->query.window, absl::Seconds(30));
  EXPECT_EQ(r->query.pid, 0u);
  EXPECT_FALSE(r->folded);
  ASSERT_EQ(r->query.kinds.size(), 1u);
  EXPECT_EQ(r->query.kinds[0], StackKind::kOnCpu);

  r = ParseProfileRequest("seconds=600&pid=42&group=web%20a&format=folded", true, history);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->query.window, absl::Seconds(600));
  EXPECT_EQ(r->query.pid, 42u);
  EXPECT_EQ(r->query.group, "web a");
  EXPECT_TRUE(r->folded);
  EXPECT_EQ(r->query.kinds.size(), 2u);  // blocked and sleep
  EXPECT_TRUE(ParseProfileRequest("format=pprof", false, history).ok());
  // A history shorter than the default window: the default is the history.
  EXPECT_EQ(ParseProfileRequest("", false, absl::Seconds(20))->query.window, absl::Seconds(20));

  const std::pair<const char*, const char*> bad[] = {
      {"seconds=0", "seconds=0: must be a whole number from 1 to 600"},
      {"seconds=601", "from 1 to 600"},
      {"seconds=abc", "seconds=abc"},
      {"seconds=+5", "must be a whole number"},  // + is a space in a query
      {"seconds=1&seconds=2", "more than once"},
      {"pid=-1", "pid=-1"},
      {"pid=0", "pid=0"},
      {"format=svg", "format='svg': must be pprof (the default) or folded"},
      {"group=", "group: must not be empty"},
      {"bogus=1", "unknown parameter 'bogus'"},
      {"seconds=%zz", "percent"},
  };
  for (const auto& [q, want] : bad) {
    auto e = ParseProfileRequest(q, false, history);
    ASSERT_FALSE(e.ok()) << q;
    EXPECT_NE(std::string(e.status().message()).find(want), std::string::npos)
        << q << ": " << e.status().message();
    EXPECT_EQ(std::string(e.status().message()).find('\n'), std::string::npos) << q;
  }
}

}  // namespace
}  // namespace procscope
