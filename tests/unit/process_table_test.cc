// SPDX-License-Identifier: Apache-2.0
// The process table on synthetic samples and exit events: keying by pid + start time, one
// identity read per process, group folding that never loses or double-counts a process.
#include "process_table.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace procscope {
namespace {

using ::testing::SizeIs;

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

class FakeIdentities : public IdentitySource {
 public:
  absl::StatusOr<Identity> Read(pid_t pid, uint64_t start_ns) override {
    reads[{pid, start_ns}]++;
    auto it = ids.find(pid);
    if (it == ids.end()) return absl::NotFoundError("gone");
    return it->second;
  }
  std::map<pid_t, Identity> ids;
  std::map<std::pair<pid_t, uint64_t>, int> reads;
};

Identity Id(const std::string& exe, const std::string& container = "",
            const std::string& user = "root", const std::string& unit = "") {
  Identity id;
  id.resolved = true;
  id.exe = exe;
  id.user = user;
  id.cgroup.container_id = container;
  id.cgroup.systemd_unit = unit;
  return id;
}

ProcessSample S(uint32_t pid, uint64_t start, const std::string& comm, uint64_t cpu_ns,
                uint64_t cgroup_id = 1) {
  ProcessSample s;
  s.key = {pid, 0, start};
  s.comm = comm;
  s.uid = 0;
  s.cgroup_id = cgroup_id;
  s.nr_threads = 1;
  s.rss_bytes = 1000;
  s.counters.cpu_ns = cpu_ns;
  s.counters.min_flt = cpu_ns / 1000;
  s.io.write_bytes = cpu_ns * 2;
  return s;
}

ps_exit_event Exit(uint32_t pid, uint64_t start, const std::string& comm, uint64_t cpu_ns,
                   uint32_t status, uint64_t cgroup_id = 1) {
  ps_exit_event e{};
  e.key = {pid, 0, start};
  memcpy(e.comm, comm.data(), std::min(comm.size(), sizeof(e.comm)));
  e.exit_code = status;
  e.exit_ns = start + 1000000;
  e.cgroup_id = cgroup_id;
  e.c.cpu_ns = cpu_ns;
  e.c.min_flt = cpu_ns / 1000;
  e.io.write_bytes = cpu_ns * 2;
  return e;
}

const GroupInfo* FindGroup(const std::vector<GroupInfo>& groups, const std::string& name) {
  for (const GroupInfo& g : groups) {
    if (g.name == name) return &g;
  }
  return nullptr;
}

class ProcessTableTest : public ::testing::Test {
 protected:
  ProcessTableTest() {
    ids_.ids[10] = Id("/usr/bin/app", "c0ffee", "alice", "app.service");
    ids_.ids[11] = Id("/usr/bin/app", "c0ffee", "alice", "app.service");
    ids_.ids[20] = Id("/usr/sbin/db", "", "bob", "db.service");
  }
  ProcessTable Make(GroupBy by = GroupBy::kComm, std::string include = "",
                    std::string exclude = "") {
    TableOptions o;
    o.group_by = by;
    o.include_regex = std::move(include);
    o.exclude_regex = std::move(exclude);
    o.exit_grace = absl::Seconds(5);
    o.group_idle_expiry = absl::Minutes(10);
    EXPECT_TRUE(ValidateTableOptions(o).ok());
    return ProcessTable(o, &ids_);
  }
  FakeIdentities ids_;
};

TEST_F(ProcessTableTest, EnrichesEachProcessOnceFromProc) {
  ProcessTable t = Make();
  t.ApplySamples({S(10, 1, "app", 100), S(20, 2, "db", 50)}, kT0);
  t.ApplySamples({S(10, 1, "app", 200), S(20, 2, "db", 60)}, kT0 + absl::Seconds(1));
  t.ApplySamples({S(10, 1, "app", 300), S(20, 2, "db", 70)}, kT0 + absl::Seconds(2));
  EXPECT_EQ((ids_.reads[{10, 1}]), 1);
  EXPECT_EQ((ids_.reads[{20, 2}]), 1);
  auto procs = t.Processes();
  ASSERT_EQ(procs.size(), 2u);
  EXPECT_EQ(procs[0].identity.exe, "/usr/bin/app");
  EXPECT_EQ(procs[0].counters.cpu_ns, 300u);
  EXPECT_EQ(procs[1].identity.user, "bob");
}

// The daemon's compact pass: an unchanged key is only seen (no identity read, no copy, no new
// version); a whole record that changes nothing is not a write either, so the snapshot's copy
// stays the table's own; a key the table cannot stand for asks for a whole read.
TEST_F(ProcessTableTest, CompactPassSeesUnchangedKeysAndShares) {
  ProcessTable t = Make(GroupBy::kComm, "", "^db$");
  PassRecords pass;
  pass.whole = {S(10, 1, "app", 100), S(20, 2, "db", 50)};
  EXPECT_TRUE(t.ApplyPass(pass, kT0));
  ASSERT_THAT(t.SharedProcesses(), SizeIs(1));  // db is excluded
  const std::shared_ptr<const ProcessInfo> first = t.SharedProcesses()[0];
  const uint64_t version = first->version;

  pass.whole.clear();
  pass.unchanged = {{10, 0, 1}, {20, 0, 2}};
  for (int i = 1; i <= 8; ++i) {  // past the exit grace and the 1 min an exclusion is kept
    EXPECT_TRUE(t.ApplyPass(pass, kT0 + absl::Seconds(10 * i)));
  }
  ASSERT_THAT(t.SharedProcesses(), SizeIs(1));
  EXPECT_EQ(t.SharedProcesses()[0], first);  // the same object: nothing was copied
  EXPECT_EQ(t.lost_exits(), 0u);
  EXPECT_EQ((ids_.reads[{10, 1}]), 1);
  EXPECT_EQ((ids_.reads[{20, 2}]), 1);  // still excluded, not judged again

  // Whole again at a session's start, unchanged: still the same object and version.
  pass.unchanged.clear();
  pass.whole = {S(10, 1, "app", 100)};
  EXPECT_TRUE(t.ApplyPass(pass, kT0 + absl::Seconds(90)));
  EXPECT_EQ(t.SharedProcesses()[0], first);
  EXPECT_EQ(t.SharedProcesses()[0]->version, version);

  // A change while a snapshot holds the old copy: the table writes a new one.
  pass.whole = {S(10, 1, "app", 150)};
  EXPECT_TRUE(t.ApplyPass(pass, kT0 + absl::Seconds(91)));
  EXPECT_NE(t.SharedProcesses()[0], first);
  EXPECT_EQ(first->counters.cpu_ns, 100u);
  EXPECT_EQ(t.SharedProcesses()[0]->counters.cpu_ns, 150u);
  EXPECT_GT(t.SharedProcesses()[0]->version, version);

  // A pid the table never took in.
  pass.whole.clear();
  pass.unchanged = {{10, 0, 1}, {30, 0, 3}};
  EXPECT_FALSE(t.ApplyPass(pass, kT0 + absl::Seconds(92)));
  EXPECT_THAT(t.SharedProcesses(), SizeIs(1));
}

// An unchanged sample (the iterator's PS_REC_SAME) keeps the process live and its version, so that
// the pass skips it; any other sample is a write and a new version.
TEST_F(ProcessTableTest, UnchangedSampleKeepsTheVersionAndTheProcessLive) {
  ProcessTable t = Make();
  t.ApplySamples({S(10, 1, "app", 100), S(20, 2, "db", 50)}, kT0);
  const std::vector<ProcessInfo> first = t.Processes();
  ASSERT_THAT(first, SizeIs(2));
  EXPECT_NE(first[0].version, 0u);
  EXPECT_NE(first[0].version, first[1].version);

  ProcessSample same = S(10, 1, "app", 100);
  same.unchanged = true;
  // Past the exit grace (5 s): only seen, yet not taken for vanished.
  for (int i = 1; i <= 8; ++i) {
    t.ApplySamples({same, S(20, 2, "db", 50 + i)}, kT0 + absl::Seconds(i));
  }
  const std::vector<ProcessInfo> later = t.Processes();
  ASSERT_THAT(later, SizeIs(2));
  EXPECT_EQ(later[0].version, first[0].version);
  EXPECT_EQ(later[0].counters.cpu_ns, 100u);
  EXPECT_GT(later[1].version, first[1].version);
  EXPECT_EQ(later[1].counters.cpu_ns, 58u);
  EXPECT_EQ(t.lost_exits(), 0u);
}

TEST_F(ProcessTableTest, GroupTotalsIncludeLiveAndExitedProcesses) {
  ProcessTable t = Make();
  t.ApplySamples({S(10, 1, "app", 100), S(11, 5, "app", 40), S(20, 2, "db", 7)}, kT0);
  auto g = t.Groups();
  ASSERT_NE(FindGroup(g, "app"), nullptr);
  EXPECT_EQ(FindGroup(g, "app")->counters.cpu_ns, 140u);
  EXPECT_EQ(FindGroup(g, "app")->processes, 2u);
  EXPECT_EQ(FindGroup(g, "app")->rss_bytes, 2000u);
  // pid 11 exits with final totals larger than its last sample.
  v1::ExitEvent rec = t.ApplyExit(Exit(11, 5, "app", 55, 3 << 8), kT0 + absl::Seconds(1));
  EXPECT_EQ(rec.group(), "app");
  EXPECT_EQ(rec.container(), "c0ffee");
  g = t.Groups();
  EXPECT_EQ(FindGroup(g, "app")->counters.cpu_ns, 155u);  // 100 live + 55 final
  EXPECT_EQ(FindGroup(g, "app")->io.write_bytes, 310u);
  EXPECT_EQ(FindGroup(g, "app")->processes, 1u);
  EXPECT_EQ(FindGroup(g, "app")->exits.at("failure"), 1u);
  EXPECT_EQ(t.size(), 2u);
}

TEST_F(ProcessTableTest, ShortLivedProcessNeverSampledStillCounts) {
  ProcessTable t = Make(GroupBy::kContainer);
  t.ApplySamples({S(10, 1, "app", 100, /*cgroup_id=*/77)}, kT0);
  // pid 30 lived less than a sampling pass, in the same cgroup as pid 10.
  v1::ExitEvent rec = t.ApplyExit(Exit(30, 9, "helper", 25, 11 | 0x80, 77), kT0);
  EXPECT_EQ(rec.group(), "c0ffee");
  EXPECT_EQ(rec.outcome(), v1::CRASHED);
  auto g = t.Groups();
  ASSERT_NE(FindGroup(g, "c0ffee"), nullptr);
  EXPECT_EQ(FindGroup(g, "c0ffee")->counters.cpu_ns, 125u);
  EXPECT_EQ(FindGroup(g, "c0ffee")->crashes.at("SIGSEGV"), 1u);
  EXPECT_EQ(FindGroup(g, "c0ffee")->exits.at("crashed"), 1u);
}

// A restart after kill -9: the journal had the exit, the pinned ring buffer hands it out again.
TEST_F(ProcessTableTest, RedeliveredExitOfTheJournalIsRecognised) {
  TableOptions o;
  o.boot_to_unix = absl::Seconds(1700000000);
  ProcessTable before(o, &ids_);
  const ps_exit_event ev = Exit(30, 5000000000, "helper", 25, 0);
  const v1::ExitEvent journaled = before.ApplyExit(ev, kT0);
  // The next daemon's offset differs by a few microseconds.
  o.boot_to_unix += absl::Microseconds(3);
  ProcessTable t(o, &ids_);
  t.RestoreExit(journaled, kT0);
  EXPECT_TRUE(t.Redelivered(ev));
  EXPECT_FALSE(t.Redelivered(Exit(30, 5000000000 + 2000000, "helper", 25, 0)));  // reused pid
  EXPECT_FALSE(t.Redelivered(Exit(31, 5000000000, "helper", 25, 0)));
  ASSERT_NE(FindGroup(t.Groups(), "helper"), nullptr);
  EXPECT_EQ(FindGroup(t.Groups(), "helper")->exits.at("success"), 1u);
  t.ForgetRestored();
  EXPECT_FALSE(t.Redelivered(ev));
}

TEST_F(ProcessTableTest, ReusedPidIsAnotherProcess) {
  ProcessTable t = Make();
  t.ApplySamples({S(10, 1, "app", 500)}, kT0);
  t.ApplyExit(Exit(10, 1, "app", 600, 0), kT0 + absl::Seconds(1));
  // Same pid, later start time: a new process, from zero, and read from /proc again.
  t.ApplySamples({S(10, 9, "app", 5)}, kT0 + absl::Seconds(2));
  auto procs = t.Processes();
  ASSERT_EQ(procs.size(), 1u);
  EXPECT_EQ(procs[0].key.start_ns, 9u);
  EXPECT_EQ(procs[0].counters.cpu_ns, 5u);
  EXPECT_EQ((ids_.reads[{10, 9}]), 1);
  EXPECT_EQ(FindGroup(t.Groups(), "app")->counters.cpu_ns, 605u);
}

TEST_F(ProcessTableTest, CountersNeverGoBackwards) {
  ProcessTable t = Make();
  t.ApplySamples({S(10, 1, "app", 500)}, kT0);
  t.ApplySamples({S(10, 1, "app", 480)}, kT0 + absl::Seconds(1));
  EXPECT_EQ(t.Processes()[0].counters.cpu_ns, 500u);
  EXPECT_EQ(FindGroup(t.Groups(), "app")->counters.cpu_ns, 500u);
}

TEST_F(ProcessTableTest, LateSampleAfterExitDoesNotResurrect) {
  ProcessTable t = Make();
  t.ApplySamples({S(10, 1, "app", 100)}, kT0);
  t.ApplyExit(Exit(10, 1, "app", 150, 0), kT0);
  t.ApplySamples({S(10, 1, "app", 140)}, kT0 + absl::Milliseconds(10));
  EXPECT_TRUE(t.Processes().empty());
  EXPECT_EQ(FindGroup(t.Groups(), "app")->counters.cpu_ns, 150u);
}

TEST_F(ProcessTableTest, VanishedWithoutEventKeepsItsCountersAfterGrace) {
  ProcessTable t = Make();
  t.ApplySamples({S(10, 1, "app", 100), S(11, 5, "app", 40)}, kT0);
  t.ApplySamples({S(10, 1, "app", 110)}, kT0 + absl::Seconds(1));
  EXPECT_EQ(FindGroup(t.Groups(), "app")->counters.cpu_ns, 150u);  // waiting for its event
  EXPECT_EQ(t.lost_exits(), 0u);
  t.ApplySamples({S(10, 1, "app", 120)}, kT0 + absl::Seconds(7));
  EXPECT_EQ(t.lost_exits(), 1u);
  EXPECT_EQ(FindGroup(t.Groups(), "app")->counters.cpu_ns, 160u);
  EXPECT_EQ(FindGroup(t.Groups(), "app")->processes, 1u);
}

TEST_F(ProcessTableTest, ExecMovesTheProcessToItsNewGroupWithoutLosingCounters) {
  ProcessTable t = Make();
  t.ApplySamples({S(10, 1, "bash", 100)}, kT0);
  t.ApplySamples({S(10, 1, "make", 130)}, kT0 + absl::Seconds(1));  // exec'd
  EXPECT_EQ((ids_.reads[{10, 1}]), 2);                              // re-read after the exec
  auto g = t.Groups();
  EXPECT_EQ(FindGroup(g, "bash")->counters.cpu_ns, 100u);
  EXPECT_EQ(FindGroup(g, "make")->counters.cpu_ns, 30u);
  EXPECT_EQ(FindGroup(g, "bash")->processes, 0u);
  t.ApplyExit(Exit(10, 1, "make", 200, 0), kT0 + absl::Seconds(2));
  g = t.Groups();
  EXPECT_EQ(FindGroup(g, "bash")->counters.cpu_ns, 100u);
  EXPECT_EQ(FindGroup(g, "make")->counters.cpu_ns, 100u);
  EXPECT_EQ(FindGroup(g, "make")->exits.at("success"), 1u);
}

TEST_F(ProcessTableTest, FiltersLeaveProcessesOutOfTableAndGroups) {
  ProcessTable t = Make(GroupBy::kComm, /*include=*/"", /*exclude=*/"^db$");
  t.ApplySamples({S(10, 1, "app", 100), S(20, 2, "db", 50)}, kT0);
  t.ApplyExit(Exit(20, 2, "db", 60, 0), kT0);
  EXPECT_EQ(t.Processes().size(), 1u);
  EXPECT_EQ(FindGroup(t.Groups(), "db"), nullptr);
  ProcessTable only_db = Make(GroupBy::kComm, /*include=*/"db", /*exclude=*/"");
  only_db.ApplySamples({S(10, 1, "app", 100), S(20, 2, "db", 50)}, kT0);
  ASSERT_EQ(only_db.Processes().size(), 1u);
  EXPECT_EQ(only_db.Processes()[0].comm, "db");
}

// A shell forks, the pass sees the child under the shell's name (left out by --include), then the
// child execs the matching program: the same pid and start time must be judged again.
TEST_F(ProcessTableTest, ProcessExcludedBeforeItsExecIsIncludedAfter) {
  ProcessTable t = Make(GroupBy::kComm, /*include=*/"^db$", /*exclude=*/"");
  t.ApplySamples({S(20, 2, "bash", 10)}, kT0);
  EXPECT_TRUE(t.Processes().empty());
  t.ApplySamples({S(20, 2, "db", 50)}, kT0 + absl::Seconds(1));
  ASSERT_EQ(t.Processes().size(), 1u);
  EXPECT_EQ(t.Processes()[0].comm, "db");
  // And the other way: an included process that execs into an excluded name leaves the table.
  t.ApplySamples({S(20, 2, "sh", 60)}, kT0 + absl::Seconds(2));
  EXPECT_TRUE(t.Processes().empty());
}

// std::regex matched recursively and overflowed the stack on a path this long (any user can run
// a binary from a deep directory); RE2 matches in linear time.
TEST_F(ProcessTableTest, FiltersMatchLongExePathsWithoutRecursion) {
  const std::string deep = "/" + std::string(4090, 'b') + "/a";
  ids_.ids[30] = Id(deep, "", "carol", "deep.service");
  ProcessTable t = Make(GroupBy::kExe, /*include=*/"(b|c)*/a$", /*exclude=*/"");
  t.ApplySamples({S(10, 1, "app", 100), S(30, 3, "deep", 50)}, kT0);
  ASSERT_EQ(t.Processes().size(), 1u);
  EXPECT_EQ(t.Processes()[0].identity.exe, deep);
}

TEST_F(ProcessTableTest, IdleExitedGroupsExpire) {
  ProcessTable t = Make();
  t.ApplySamples({S(10, 1, "app", 100), S(20, 2, "db", 50)}, kT0);
  t.ApplyExit(Exit(20, 2, "db", 60, 0), kT0);
  t.ApplySamples({S(10, 1, "app", 100)}, kT0 + absl::Minutes(5));
  t.ExpireGroups(kT0 + absl::Minutes(5));
  EXPECT_NE(FindGroup(t.Groups(), "db"), nullptr);
  t.ApplySamples({S(10, 1, "app", 100)}, kT0 + absl::Minutes(11));
  t.ExpireGroups(kT0 + absl::Minutes(11));
  EXPECT_EQ(FindGroup(t.Groups(), "db"), nullptr);
  EXPECT_NE(FindGroup(t.Groups(), "app"), nullptr);  // live: never expires
}

TEST_F(ProcessTableTest, GroupNamesPerGrouping) {
  const Identity app = Id("/usr/bin/app", "c0ffee", "alice", "app.service");
  const Identity gone;
  EXPECT_EQ(GroupName(GroupBy::kComm, "app", app, 0), "app");
  EXPECT_EQ(GroupName(GroupBy::kExe, "app", app, 0), "/usr/bin/app");
  EXPECT_EQ(GroupName(GroupBy::kExe, "kworker/0:1", gone, 0), "[kworker/0:1]");
  EXPECT_EQ(GroupName(GroupBy::kContainer, "app", app, 0), "c0ffee");
  EXPECT_EQ(GroupName(GroupBy::kContainer, "app", gone, 0), "host");
  EXPECT_EQ(GroupName(GroupBy::kUnit, "app", app, 0), "app.service");
  EXPECT_EQ(GroupName(GroupBy::kUnit, "app", gone, 0), "none");
  EXPECT_EQ(GroupName(GroupBy::kUser, "app", app, 1000), "alice");
  EXPECT_EQ(GroupName(GroupBy::kUser, "app", gone, 1000), "1000");
  // Invalid UTF-8 becomes U+FFFD, as the journal stores it, so a live group and the same group
  // restored after a restart are one.
  EXPECT_EQ(GroupName(GroupBy::kComm, "x\xff", app, 0), "x\xEF\xBF\xBD");
  EXPECT_EQ(GroupName(GroupBy::kExe, "x\xff", gone, 0), "[x\xEF\xBF\xBD]");
}

TEST(ProcessTableOptionsTest, BadRegexAndGroupingAreClearErrors) {
  TableOptions o;
  o.exclude_regex = "([unclosed";
  absl::Status s = ValidateTableOptions(o);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--exclude"), std::string::npos) << s.message();
  EXPECT_FALSE(ParseGroupBy("pod").ok());
  EXPECT_NE(ParseGroupBy("pod").status().message().find("comm, exe, container, unit, user"),
            std::string::npos);
  EXPECT_EQ(*ParseGroupBy("unit"), GroupBy::kUnit);
}

}  // namespace
}  // namespace procscope
