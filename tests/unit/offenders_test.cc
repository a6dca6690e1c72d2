// SPDX-License-Identifier: Apache-2.0
#include "offenders.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace procscope {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr double kMiB = 1 << 20;
const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

absl::Time At(double seconds) { return kT0 + absl::Seconds(seconds); }

// A process started an hour before kT0 (long before any window), with zero counters.
ProcessInfo Proc(uint32_t pid, uint64_t start_ns = 1000) {
  ProcessInfo p;
  p.key.tgid = pid;
  p.key.start_ns = start_ns;
  p.comm = "proc" + std::to_string(pid);
  p.group = "group" + std::to_string(pid);
  p.identity.cgroup.container_id = "c" + std::to_string(pid);
  p.start_time = kT0 - absl::Hours(1);
  return p;
}

ProcessInfo WithCpu(ProcessInfo p, double seconds) {
  p.counters.cpu_ns = static_cast<uint64_t>(seconds * 1e9);
  return p;
}

// Default config except the window, and no minimum in the way unless a test sets one.
OffenderConfig Config(double window_s = 30) {
  OffenderConfig c;
  c.window = absl::Seconds(window_s);
  c.num_cpus = 4;
  return c;
}

// The highest rate of a resource; 0 when nothing ranks (zero rates are not ranked).
double TopRate(const OffenderDetector& d, Resource r) {
  const std::vector<ResourceRate> ranking = d.Ranking(r);
  return ranking.empty() ? 0 : ranking[0].rate;
}

std::vector<uint32_t> Pids(const std::vector<ResourceRate>& ranking) {
  std::vector<uint32_t> pids;
  for (const ResourceRate& r : ranking) pids.push_back(r.key.tgid);
  return pids;
}

// By value: callers pass Evaluate()'s temporary result.
std::optional<Offender> Find(const std::vector<Offender>& offenders, Resource r) {
  for (const Offender& o : offenders) {
    if (o.resource == r) return o;
  }
  return std::nullopt;
}

TEST(OffenderDetectorTest, CpuHogFlaggedWithExactRateAndReason) {
  OffenderDetector d(Config());
  d.Observe({Proc(100), Proc(200)}, At(0));
  d.Observe({WithCpu(Proc(100), 13.2), WithCpu(Proc(200), 1.2)}, At(15));
  // 0.88 and 0.08 cores over the 30 s window.
  d.Observe({WithCpu(Proc(100), 26.4), WithCpu(Proc(200), 2.4)}, At(30));

  std::vector<Offender> offenders = d.Evaluate(At(30));
  ASSERT_THAT(offenders, SizeIs(1));
  const Offender& o = offenders[0];
  EXPECT_EQ(o.resource, Resource::kCpu);
  EXPECT_EQ(o.key.tgid, 100u);
  EXPECT_EQ(o.key.start_ns, 1000u);
  EXPECT_DOUBLE_EQ(o.rate, 0.88);
  EXPECT_DOUBLE_EQ(o.share, 0.22);  // of 4 cpus
  EXPECT_EQ(o.reason, "cpu 0.88 cores, 11.0x the next process");
  EXPECT_EQ(o.comm, "proc100");
  EXPECT_EQ(o.group, "group100");
  EXPECT_EQ(o.container, "c100");
  EXPECT_EQ(o.since, At(30));
}

TEST(OffenderDetectorTest, RunqueueWaitAloneHasNoOtherProcessClose) {
  OffenderDetector d(Config());
  ProcessInfo a = Proc(100), b = Proc(200);
  d.Observe({a, b}, At(0));
  a.counters.runq_ns = 7'500'000'000;  // 0.25 cores over 30 s
  d.Observe({a, b}, At(30));

  std::optional<Offender> o = Find(d.Evaluate(At(30)), Resource::kRunqueueWait);
  ASSERT_TRUE(o.has_value());
  EXPECT_DOUBLE_EQ(o->rate, 0.25);
  EXPECT_DOUBLE_EQ(o->share, 0.0625);
  EXPECT_EQ(o->reason, "run-queue wait 0.25 cores, no other process close");
}

TEST(OffenderDetectorTest, TwoEqualHogsAreNotFlagged) {
  OffenderDetector d(Config());
  d.Observe({Proc(100), Proc(200)}, At(0));
  d.Observe({WithCpu(Proc(100), 30), WithCpu(Proc(200), 30)}, At(30));
  EXPECT_THAT(d.Evaluate(At(30)), IsEmpty());
  // Still 1 core each: dominance, not the minimum, is what holds them back.
  EXPECT_DOUBLE_EQ(TopRate(d, Resource::kCpu), 1.0);
}

TEST(OffenderDetectorTest, DominanceIsInclusive) {
  OffenderDetector d(Config());  // dominance 2
  d.Observe({Proc(100), Proc(200)}, At(0));
  d.Observe({WithCpu(Proc(100), 30), WithCpu(Proc(200), 15)}, At(30));
  std::optional<Offender> o = Find(d.Evaluate(At(30)), Resource::kCpu);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, "cpu 1.00 cores, 2.0x the next process");
}

TEST(OffenderDetectorTest, BelowMinimumIsNotFlagged) {
  OffenderDetector d(Config());  // min_cpu_cores 0.5
  d.Observe({Proc(100)}, At(0));
  d.Observe({WithCpu(Proc(100), 14.7)}, At(30));  // 0.49 cores
  EXPECT_THAT(d.Evaluate(At(30)), IsEmpty());

  OffenderDetector at_minimum(Config());
  at_minimum.Observe({Proc(100)}, At(0));
  at_minimum.Observe({WithCpu(Proc(100), 15)}, At(30));  // exactly 0.5 cores
  EXPECT_THAT(at_minimum.Evaluate(At(30)), SizeIs(1));
}

TEST(OffenderDetectorTest, ProcessBornInsideWindowIsMeasuredFromItsStart) {
  OffenderDetector d(Config());
  d.Observe({Proc(100)}, At(0));
  ProcessInfo young = WithCpu(Proc(200, 5000), 10);
  young.start_time = At(20);
  // Seen once, 10 s after it started, with 10 s of CPU: one full core.
  d.Observe({WithCpu(Proc(100), 1.5), young}, At(30));

  std::vector<ResourceRate> ranking = d.Ranking(Resource::kCpu);
  ASSERT_THAT(ranking, SizeIs(2));
  EXPECT_EQ(ranking[0].key.tgid, 200u);
  EXPECT_DOUBLE_EQ(ranking[0].rate, 1.0);
  EXPECT_DOUBLE_EQ(ranking[1].rate, 0.05);

  std::optional<Offender> o = Find(d.Evaluate(At(30)), Resource::kCpu);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->key.tgid, 200u);
  EXPECT_EQ(o->reason, "cpu 1.00 cores, 20.0x the next process");
}

TEST(OffenderDetectorTest, ProcessYoungerThanAQuarterWindowIsNotRanked) {
  OffenderDetector d(Config());  // 30 s window: 7.5 s minimum
  d.Observe({Proc(100)}, At(0));
  ProcessInfo young = WithCpu(Proc(200, 5000), 3);
  young.start_time = At(27);  // a 3 s burst at one core, e.g. a compiler job
  d.Observe({WithCpu(Proc(100), 1.5), young}, At(30));
  std::vector<ResourceRate> ranking = d.Ranking(Resource::kCpu);
  ASSERT_THAT(ranking, SizeIs(1));  // the young one is not ranked (rate 0)
  EXPECT_EQ(ranking[0].key.tgid, 100u);
  EXPECT_FALSE(Find(d.Evaluate(At(30)), Resource::kCpu).has_value());  // 0.05 < 0.5 minimum
}

TEST(OffenderDetectorTest, OldProcessSeenOnceHasRateZero) {
  OffenderDetector d(Config());
  // Huge totals, but they were accumulated before the window: nothing to measure yet.
  d.Observe({WithCpu(Proc(100), 1e4)}, At(30));
  std::vector<ResourceRate> ranking = d.Ranking(Resource::kCpu);
  EXPECT_THAT(ranking, IsEmpty());  // rate 0: not ranked
  EXPECT_THAT(d.Evaluate(At(30)), IsEmpty());
}

TEST(OffenderDetectorTest, OldProcessSeenForLessThanWindowIsMeasuredOverThatTime) {
  OffenderDetector d(Config());
  d.Observe({WithCpu(Proc(100), 100)}, At(20));
  d.Observe({WithCpu(Proc(100), 110)}, At(30));
  EXPECT_DOUBLE_EQ(TopRate(d, Resource::kCpu), 1.0);
}

TEST(OffenderDetectorTest, ReusedPidWithAnotherStartIsAnotherProcess) {
  OffenderDetector d(Config());
  d.Observe({WithCpu(Proc(100, 1000), 50)}, At(0));
  d.Observe({WithCpu(Proc(100, 1000), 80)}, At(20));
  // Pid 100 exited; a new process got the same pid at t=21 and burned 4.5 s since.
  ProcessInfo reborn = WithCpu(Proc(100, 9000), 4.5);
  reborn.start_time = At(21);
  d.Observe({reborn}, At(30));

  std::vector<ResourceRate> ranking = d.Ranking(Resource::kCpu);
  ASSERT_THAT(ranking, SizeIs(1));  // the old incarnation is gone
  EXPECT_EQ(ranking[0].key.start_ns, 9000u);
  // Not (4.5 - 50) / 30 clamped to 0 nor 80 s of history: its own 4.5 s over its own 9 s.
  EXPECT_DOUBLE_EQ(ranking[0].rate, 0.5);
}

TEST(OffenderDetectorTest, VanishedProcessesAreDropped) {
  OffenderDetector d(Config());
  d.Observe({Proc(100), Proc(200)}, At(0));
  d.Observe({WithCpu(Proc(100), 30), WithCpu(Proc(200), 1)}, At(30));
  d.Observe({WithCpu(Proc(200), 1)}, At(31));
  EXPECT_THAT(Pids(d.Ranking(Resource::kCpu)), ElementsAre(200u));
  EXPECT_THAT(d.Evaluate(At(31)), IsEmpty());
}

TEST(OffenderDetectorTest, OldBurstLeavesTheWindow) {
  OffenderDetector d(Config());
  // Observed every 5 s; 20 s of CPU burned between t=5 and t=10, nothing after.
  for (int t = 0; t <= 60; t += 5) {
    d.Observe({WithCpu(Proc(100), t <= 5 ? 0 : 20)}, At(t));
    const double rate = TopRate(d, Resource::kCpu);
    if (t == 30 || t == 35) {
      EXPECT_DOUBLE_EQ(rate, 20.0 / 30) << "t=" << t;
    } else if (t >= 40) {
      // The baseline is now the t>=10 point: the burst is out of the window.
      EXPECT_EQ(rate, 0) << "t=" << t;
    }
  }
}

TEST(OffenderDetectorTest, BaselineIsNewestPointAtOrBeforeWindowStart) {
  OffenderDetector d(Config());
  d.Observe({WithCpu(Proc(100), 0)}, At(0));
  d.Observe({WithCpu(Proc(100), 4)}, At(4));
  d.Observe({WithCpu(Proc(100), 5)}, At(10));
  // Window start is t=4: baseline (4 s at t=4), not the t=0 point, and not the t=10 one.
  d.Observe({WithCpu(Proc(100), 19)}, At(34));
  EXPECT_DOUBLE_EQ(TopRate(d, Resource::kCpu), 0.5);
}

TEST(OffenderDetectorTest, FrequentObservationsKeepExactRates) {
  OffenderDetector d(Config(10));
  // 100 observations a second for a minute at exactly 0.75 cores: thinning must not skew it.
  for (int i = 0; i <= 6000; ++i) {
    ProcessInfo p = Proc(100);
    p.counters.cpu_ns = static_cast<uint64_t>(i) * 7'500'000;
    d.Observe({p}, kT0 + absl::Milliseconds(10 * i));
  }
  EXPECT_NEAR(TopRate(d, Resource::kCpu), 0.75, 1e-9);
}

TEST(OffenderDetectorTest, MemoryGrowth) {
  OffenderDetector d(Config());
  ProcessInfo leak = Proc(100), shrink = Proc(200);
  leak.rss_bytes = 100 * kMiB;
  shrink.rss_bytes = 900 * kMiB;
  d.Observe({leak, shrink}, At(0));
  leak.rss_bytes += 375 * kMiB;  // 12.5 MiB/s
  shrink.rss_bytes = 100 * kMiB;
  d.Observe({leak, shrink}, At(30));

  std::vector<ResourceRate> ranking = d.Ranking(Resource::kMemoryGrowth);
  ASSERT_THAT(ranking, SizeIs(1));  // shrinking is not negative growth: not ranked
  EXPECT_DOUBLE_EQ(ranking[0].rate, 12.5 * kMiB);

  std::optional<Offender> o = Find(d.Evaluate(At(30)), Resource::kMemoryGrowth);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->key.tgid, 100u);
  EXPECT_EQ(o->share, 0);
  EXPECT_EQ(o->reason, "memory growth 12.5 MiB/s, no other process close");
}

TEST(OffenderDetectorTest, PageFaultsCountMinorAndMajor) {
  OffenderDetector d(Config());
  ProcessInfo a = Proc(100), b = Proc(200);
  d.Observe({a, b}, At(0));
  a.counters.min_flt = 600'000;  // + 150000 major = 25000 faults/s
  a.counters.maj_flt = 150'000;
  b.counters.min_flt = 75'000;  // 2500 faults/s
  d.Observe({a, b}, At(30));

  std::optional<Offender> o = Find(d.Evaluate(At(30)), Resource::kPageFaults);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->key.tgid, 100u);
  EXPECT_DOUBLE_EQ(o->rate, 25000);
  EXPECT_EQ(o->reason, "page faults 25000 faults/s, 10.0x the next process");
}

TEST(OffenderDetectorTest, BlockIoCountsReadAndWrite) {
  OffenderDetector d(Config());
  ProcessInfo a = Proc(100), b = Proc(200);
  d.Observe({a, b}, At(0));
  a.io.read_bytes = 90 * kMiB;  // + 150 MiB written = 8 MiB/s
  a.io.write_bytes = 150 * kMiB;
  a.io.dirtied_bytes = 1000 * kMiB;  // page cache only: not block I/O
  d.Observe({a, b}, At(30));

  std::optional<Offender> o = Find(d.Evaluate(At(30)), Resource::kBlockIo);
  ASSERT_TRUE(o.has_value());
  EXPECT_DOUBLE_EQ(o->rate, 8 * kMiB);
  EXPECT_EQ(o->reason, "block I/O 8.0 MiB/s, no other process close");
}

TEST(OffenderDetectorTest, CrashesPerGroupWithinTheWindow) {
  OffenderDetector d(Config(60));  // min 3 crashes/min
  ProcessInfo web = Proc(100);
  web.group = "web";
  ProcessInfo db = Proc(500);
  db.group = "db";
  for (int i = 0; i < 3; ++i) {
    web.key.tgid = 100 + i;  // each crash is another process of the group
    web.comm = "web" + std::to_string(i);
    d.ObserveCrash(web, At(10 * (i + 1)));
  }
  d.ObserveCrash(db, At(25));

  std::vector<Offender> offenders = d.Evaluate(At(30));
  std::optional<Offender> o = Find(offenders, Resource::kCrashes);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->key.tgid, 102u);  // the group's last crashed process
  EXPECT_EQ(o->comm, "web2");
  EXPECT_EQ(o->group, "web");
  EXPECT_EQ(o->container, "c100");
  EXPECT_DOUBLE_EQ(o->rate, 3);
  EXPECT_EQ(o->reason, "crashes 3.0 crashes/min, 3.0x the next process");
  EXPECT_THAT(Pids(d.Ranking(Resource::kCrashes)), ElementsAre(102u, 500u));

  // At t=70 the t=10 crash is out of the window: 2 crashes/min, below the minimum.
  EXPECT_FALSE(Find(d.Evaluate(At(70)), Resource::kCrashes).has_value());
  EXPECT_DOUBLE_EQ(TopRate(d, Resource::kCrashes), 2);
  // At t=85 only the t=30 one is left in web; db's t=25 crash is exactly a window old: expired,
  // and the group is no longer ranked.
  d.Evaluate(At(85));
  std::vector<ResourceRate> ranking = d.Ranking(Resource::kCrashes);
  ASSERT_THAT(ranking, SizeIs(1));
  EXPECT_DOUBLE_EQ(ranking[0].rate, 1);
}

TEST(OffenderDetectorTest, CrashRateScalesWithTheWindow) {
  OffenderDetector d(Config(30));
  ProcessInfo p = Proc(100);
  for (int i = 0; i < 2; ++i) d.ObserveCrash(p, At(i));
  std::optional<Offender> o = Find(d.Evaluate(At(5)), Resource::kCrashes);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, "crashes 4.0 crashes/min, no other process close");
}

TEST(OffenderDetectorTest, SinceIsKeptWhileFlaggedAndResetAfter) {
  OffenderDetector d(Config());
  double cpu = 0;
  auto observe = [&](int t, double cores) {
    if (t > 0) cpu += cores * 1;  // observed every second
    d.Observe({WithCpu(Proc(100), cpu), Proc(200)}, At(t));
  };
  for (int t = 0; t <= 30; ++t) observe(t, 1.0);
  std::optional<Offender> o = Find(d.Evaluate(At(30)), Resource::kCpu);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->since, At(30));

  observe(31, 1.0);
  o = Find(d.Evaluate(At(31)), Resource::kCpu);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->since, At(30));

  // It goes idle: after a full window without CPU it is no longer flagged...
  for (int t = 32; t <= 62; ++t) observe(t, 0);
  EXPECT_FALSE(Find(d.Evaluate(At(62)), Resource::kCpu).has_value());
  // ...and when it hogs again the flag is new.
  for (int t = 63; t <= 92; ++t) observe(t, 1.0);
  o = Find(d.Evaluate(At(92)), Resource::kCpu);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->since, At(92));
}

TEST(OffenderDetectorTest, SinceResetsWhenAnotherProcessTakesOver) {
  OffenderDetector d(Config());
  d.Observe({Proc(100), Proc(200)}, At(0));
  d.Observe({WithCpu(Proc(100), 30), Proc(200)}, At(30));
  ASSERT_EQ(d.Evaluate(At(30)).at(0).key.tgid, 100u);
  d.Observe({WithCpu(Proc(100), 30), WithCpu(Proc(200), 60)}, At(31));
  std::vector<Offender> offenders = d.Evaluate(At(31));
  ASSERT_THAT(offenders, SizeIs(1));
  EXPECT_EQ(offenders[0].key.tgid, 200u);
  EXPECT_EQ(offenders[0].since, At(31));
}

TEST(OffenderDetectorTest, RankingIsHighestFirstTiesByPidZerosLeftOut) {
  OffenderDetector d(Config());
  d.Observe({Proc(300), Proc(200), Proc(100), Proc(400)}, At(0));
  d.Observe({WithCpu(Proc(300), 15), WithCpu(Proc(200), 60), WithCpu(Proc(100), 15),
             WithCpu(Proc(400), 0)},
            At(30));
  std::vector<ResourceRate> ranking = d.Ranking(Resource::kCpu);
  EXPECT_THAT(Pids(ranking), ElementsAre(200u, 100u, 300u));  // 400's zero is not ranked
  EXPECT_DOUBLE_EQ(ranking[0].rate, 2.0);
  EXPECT_DOUBLE_EQ(ranking[1].rate, 0.5);
  EXPECT_DOUBLE_EQ(ranking[2].rate, 0.5);
}

TEST(OffenderDetectorTest, ShareIsClampedToOne) {
  OffenderConfig c = Config();
  c.num_cpus = 1;
  OffenderDetector d(c);
  d.Observe({Proc(100)}, At(0));
  d.Observe({WithCpu(Proc(100), 60)}, At(30));  // 2 cores on a machine said to have 1
  std::optional<Offender> o = Find(d.Evaluate(At(30)), Resource::kCpu);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->share, 1);
}

// A process the table did not write since the last pass (same version) is skipped as idle; its
// rates still come out right once it is written again, and the ranking sees it.
TEST(OffenderDetectorTest, SameVersionIsIdleAndANewVersionRanks) {
  OffenderDetector d(Config(30));
  ProcessInfo a = Proc(100), b = Proc(200);
  a.version = 1;
  b.version = 2;
  for (int s = 0; s <= 60; s += 5) d.Observe({a, b}, At(s));
  EXPECT_EQ(TopRate(d, Resource::kCpu), 0);
  // Written: 15 s of CPU over the next 30 s (0.5 cores); b stays at its version.
  for (int s = 65; s <= 90; s += 5) {
    a = WithCpu(a, 2.5 * (s - 60) / 5);
    a.version = s;
    d.Observe({a, b}, At(s));
  }
  EXPECT_THAT(Pids(d.Ranking(Resource::kCpu)), ElementsAre(100));
  EXPECT_NEAR(TopRate(d, Resource::kCpu), 0.5, 1e-9);
  // Then idle under one version: a plateau, and the rate decays out of the window.
  for (int s = 95; s <= 125; s += 5) d.Observe({a, b}, At(s));
  EXPECT_EQ(TopRate(d, Resource::kCpu), 0);
}

// The tracks a ranking looks at follow the window: a process born 50 s before its only
// observation is idle through a 30 s window, not through a 120 s one (measured from its birth).
TEST(OffenderDetectorTest, RankingFollowsAReconfiguredWindow) {
  OffenderDetector d(Config(30));
  ProcessInfo p = WithCpu(Proc(100), 11);
  p.start_time = At(-50);
  for (int s = 0; s <= 60; s += 10) d.Observe({p}, At(s));
  EXPECT_EQ(TopRate(d, Resource::kCpu), 0);
  d.Reconfigure(Config(120));
  EXPECT_NEAR(TopRate(d, Resource::kCpu), 11.0 / 110, 1e-9);
}

TEST(OffenderDetectorTest, ReconfigureChangesThresholdsAndKeepsHistory) {
  OffenderDetector d(Config());
  d.Observe({Proc(100), Proc(200)}, At(0));
  d.Observe({WithCpu(Proc(100), 12), WithCpu(Proc(200), 3)}, At(30));  // 0.4 vs 0.1 cores
  EXPECT_THAT(d.Evaluate(At(30)), IsEmpty());

  OffenderConfig c = Config();
  c.min_cpu_cores = 0.3;
  d.Reconfigure(c);
  std::vector<Offender> offenders = d.Evaluate(At(30));
  ASSERT_THAT(offenders, SizeIs(1));
  EXPECT_EQ(offenders[0].reason, "cpu 0.40 cores, 4.0x the next process");

  c.dominance = 5;
  d.Reconfigure(c);
  EXPECT_THAT(d.Evaluate(At(30)), IsEmpty());
}

TEST(OffenderDetectorTest, ReconfigureToShorterWindowAppliesAtOnce) {
  OffenderDetector d(Config(30));
  d.Observe({Proc(100)}, At(0));
  d.Observe({WithCpu(Proc(100), 10)}, At(10));
  d.Observe({WithCpu(Proc(100), 10)}, At(30));
  d.ObserveCrash(Proc(100), At(5));
  d.ObserveCrash(Proc(100), At(25));
  EXPECT_DOUBLE_EQ(TopRate(d, Resource::kCpu), 10.0 / 30);
  EXPECT_DOUBLE_EQ(TopRate(d, Resource::kCrashes), 4);  // 2 in 30 s

  // 20 s: the baseline moves to the t=10 point and the t=5 crash is out, before any new call.
  OffenderConfig c = Config(20);
  d.Reconfigure(c);
  EXPECT_EQ(TopRate(d, Resource::kCpu), 0);
  EXPECT_DOUBLE_EQ(TopRate(d, Resource::kCrashes), 3);  // 1 in 20 s
}

TEST(OffenderDetectorTest, ZeroRateIsNeverFlaggedEvenWithZeroMinimum) {
  OffenderConfig c = Config();
  c.min_cpu_cores = 0;
  OffenderDetector d(c);
  d.Observe({Proc(100)}, At(0));
  d.Observe({Proc(100)}, At(30));
  EXPECT_THAT(d.Evaluate(At(30)), IsEmpty());
}

TEST(ValidateOffenderConfigTest, DefaultsAndBoundsAreValid) {
  EXPECT_TRUE(ValidateOffenderConfig(OffenderConfig{}).ok());
  OffenderConfig c;
  c.window = absl::Seconds(5);
  EXPECT_TRUE(ValidateOffenderConfig(c).ok());
  c.window = absl::Hours(1);
  c.dominance = 1;
  c.min_crashes_per_min = 0;
  EXPECT_TRUE(ValidateOffenderConfig(c).ok());
}

TEST(ValidateOffenderConfigTest, MessagesNameTheField) {
  OffenderConfig c;
  c.window = absl::Seconds(2);
  absl::Status s = ValidateOffenderConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "offender window 2s: must be between 5s and 1h");

  c.window = absl::Hours(2);
  EXPECT_EQ(ValidateOffenderConfig(c).message(), "offender window 2h: must be between 5s and 1h");

  c = OffenderConfig{};
  c.dominance = 0.5;
  EXPECT_EQ(ValidateOffenderConfig(c).message(), "offender dominance 0.5: must be at least 1");

  c = OffenderConfig{};
  c.num_cpus = 0;
  EXPECT_EQ(ValidateOffenderConfig(c).message(), "offender num_cpus 0: must be at least 1");

  c = OffenderConfig{};
  c.min_cpu_cores = -1;
  EXPECT_EQ(ValidateOffenderConfig(c).message(), "offender min_cpu_cores -1: must be >= 0");

  c = OffenderConfig{};
  c.min_block_io_bps = -2;
  EXPECT_THAT(ValidateOffenderConfig(c).message(), HasSubstr("min_block_io_bps"));

  c = OffenderConfig{};
  c.min_crashes_per_min = -3;
  EXPECT_THAT(ValidateOffenderConfig(c).message(), HasSubstr("min_crashes_per_min"));
}

// Idle observations are not stored; a burst after a long idle stretch is still measured over
// the window, not over the idle stretch.
TEST(OffenderPlateauTest, BurstAfterLongIdleIsMeasuredOverTheWindow) {
  OffenderConfig c;
  c.window = absl::Seconds(30);
  c.num_cpus = 2;
  OffenderDetector d(c);
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  ProcessInfo p;
  p.key = {42, 0, 7};
  p.comm = "idler";
  p.group = "idler";
  p.start_time = t0 - absl::Hours(1);
  for (int s = 0; s <= 600; ++s) d.Observe({p}, t0 + absl::Seconds(s));
  EXPECT_EQ(TopRate(d, Resource::kCpu), 0);
  for (int s = 601; s <= 610; ++s) {
    p.counters.cpu_ns = static_cast<uint64_t>(s - 600) * 1000000000ULL;
    d.Observe({p}, t0 + absl::Seconds(s));
  }
  // 10 s of CPU in the last 30 s.
  EXPECT_NEAR(TopRate(d, Resource::kCpu), 10.0 / 30.0, 1e-9);
  // Idle again for 5 s: the rate falls as the window moves on, over the same 30 s.
  for (int s = 611; s <= 615; ++s) d.Observe({p}, t0 + absl::Seconds(s));
  EXPECT_NEAR(TopRate(d, Resource::kCpu), 10.0 / 30.0, 1e-9);
  for (int s = 616; s <= 640; ++s) d.Observe({p}, t0 + absl::Seconds(s));
  EXPECT_NEAR(TopRate(d, Resource::kCpu), 0.0, 1e-9);
}

// A newborn process's first resident memory and faults (loading its binary) are not a leak or a
// storm; a leak observed for a quarter of the window is.
TEST(OffenderNewbornTest, StartupGrowthIsNotALeakButASteadyLeakIs) {
  OffenderConfig c;
  c.window = absl::Seconds(20);
  c.num_cpus = 2;
  OffenderDetector d(c);
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  ProcessInfo p;
  p.key = {77, 0, 5};
  p.comm = "newborn";
  p.group = "newborn";
  p.start_time = t0 - absl::Milliseconds(200);
  p.rss_bytes = 40 << 20;      // 40 MiB in its first 200 ms
  p.counters.min_flt = 10000;  // and as many faults
  d.Observe({p}, t0);
  p.rss_bytes += 1 << 20;
  d.Observe({p}, t0 + absl::Seconds(1));
  EXPECT_EQ(TopRate(d, Resource::kMemoryGrowth), 0);
  EXPECT_EQ(TopRate(d, Resource::kPageFaults), 0);
  EXPECT_TRUE(d.Evaluate(t0 + absl::Seconds(1)).empty());
  // Then it leaks 8 MiB/s for 5 s (a quarter of the window): a memory_growth offender.
  for (int s = 2; s <= 6; ++s) {
    p.rss_bytes += 8 << 20;
    p.counters.min_flt += 2048;
    d.Observe({p}, t0 + absl::Seconds(s));
  }
  EXPECT_NEAR(TopRate(d, Resource::kMemoryGrowth), (1 + 5 * 8) * 1048576.0 / 6, 1);
  bool flagged = false;
  for (const Offender& o : d.Evaluate(t0 + absl::Seconds(6))) {
    flagged |= o.resource == Resource::kMemoryGrowth && o.key.tgid == 77;
  }
  EXPECT_TRUE(flagged);
}

// One crash in a short window is a high per-minute rate but not a crash loop.
TEST(OffenderCrashLoopTest, OneCrashIsNotALoopTwoAre) {
  OffenderConfig c;
  c.window = absl::Seconds(5);
  c.num_cpus = 2;
  OffenderDetector d(c);
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  ProcessInfo p;
  p.key = {9, 0, 1};
  p.comm = "crasher";
  p.group = "crasher";
  d.ObserveCrash(p, t0);
  EXPECT_NEAR(TopRate(d, Resource::kCrashes), 12.0, 1e-9);  // 1 per 5 s
  for (const Offender& o : d.Evaluate(t0)) EXPECT_NE(o.resource, Resource::kCrashes);
  d.ObserveCrash(p, t0 + absl::Seconds(1));
  bool flagged = false;
  for (const Offender& o : d.Evaluate(t0 + absl::Seconds(1))) {
    flagged |= o.resource == Resource::kCrashes;
  }
  EXPECT_TRUE(flagged);
}

}  // namespace
}  // namespace procscope

namespace procscope {
namespace {

// ---------------------------------------------------------------------------------------------
// Contention and saturation (fixed inputs; e2e.offcpu feeds the detector real samples).

ProcessInfo WithCaused(ProcessInfo p, double cpu_s, double caused_s, double runq_s = 0) {
  p.counters.cpu_ns = static_cast<uint64_t>(cpu_s * 1e9);
  p.counters.runq_caused_ns = static_cast<uint64_t>(caused_s * 1e9);
  p.counters.runq_ns = static_cast<uint64_t>(runq_s * 1e9);
  return p;
}

ContentionPair Pair(uint32_t culprit, uint32_t victim, double wait_s) {
  ContentionPair c;
  c.culprit = Proc(culprit).key;
  c.victim = Proc(victim).key;
  c.wait_ns = static_cast<uint64_t>(wait_s * 1e9);
  c.episodes = 1;
  return c;
}

std::vector<Offender> OfResource(const std::vector<Offender>& all, Resource r) {
  std::vector<Offender> out;
  for (const Offender& o : all) {
    if (o.resource == r) out.push_back(o);
  }
  return out;
}

TEST(OffenderContentionTest, VictimsAndCulpritsOverTheWindowWithoutSelf) {
  OffenderDetector d(Config());
  d.Observe({Proc(1), Proc(2), Proc(3)}, At(0));
  d.ObserveContention({Pair(1, 2, 0.5), Pair(1, 3, 0.25), Pair(1, 1, 9)}, At(10));
  d.ObserveContention({Pair(1, 2, 0.5), Pair(3, 2, 0.1)}, At(20));
  const std::vector<ResourceRate> victims = d.Victims(Proc(1).key);
  ASSERT_THAT(victims, SizeIs(2));  // its own threads' waits are not "delaying others"
  EXPECT_EQ(victims[0].key.tgid, 2u);
  EXPECT_DOUBLE_EQ(victims[0].rate, 1.0);  // seconds of wait caused over the window
  EXPECT_EQ(victims[1].key.tgid, 3u);
  EXPECT_DOUBLE_EQ(victims[1].rate, 0.25);
  const std::vector<ResourceRate> culprits = d.Culprits(Proc(2).key);
  ASSERT_THAT(culprits, SizeIs(2));
  EXPECT_EQ(culprits[0].key.tgid, 1u);
  EXPECT_EQ(culprits[1].key.tgid, 3u);
  EXPECT_DOUBLE_EQ(culprits[1].rate, 0.1);

  // A pass older than the window is forgotten.
  d.ObserveContention({}, At(45));
  EXPECT_THAT(d.Victims(Proc(1).key), SizeIs(1));  // only the pass at 20 s is left
  EXPECT_DOUBLE_EQ(d.Victims(Proc(1).key)[0].rate, 0.5);
}

TEST(OffenderContentionTest, ACulpritThatStandsOutIsACpuOffenderNamingWhomItDelays) {
  OffenderDetector d(Config());  // 4 CPUs: 1.2 cores of wait is no saturation (0.3 per CPU)
  d.Observe({Proc(1), Proc(2), Proc(3), Proc(4)}, At(0));
  // pid 1: 0.4 cores (below min_cpu_cores, so no plain cpu offender), 0.6 s/s of wait caused.
  d.Observe({WithCaused(Proc(1), 12, 18), WithCaused(Proc(2), 3, 1, 9),
             WithCaused(Proc(3), 3, 0, 9), WithCaused(Proc(4), 3, 0, 0.1)},
            At(30));
  d.ObserveContention({Pair(1, 2, 9), Pair(1, 3, 8), Pair(2, 3, 1)}, At(30));
  const std::vector<Offender> cpu = OfResource(d.Evaluate(At(30)), Resource::kCpu);
  ASSERT_THAT(cpu, SizeIs(1));
  EXPECT_EQ(cpu[0].key.tgid, 1u);
  EXPECT_DOUBLE_EQ(cpu[0].rate, 0.4);
  EXPECT_EQ(cpu[0].reason, "proc1 delayed 2 processes by 0.60 s/s, cpu 0.40 cores");
  EXPECT_EQ(cpu[0].comm, "proc1");
  EXPECT_EQ(cpu[0].group, "group1");
}

TEST(OffenderContentionTest, RunqueueOffenderNamesItsCulprits) {
  OffenderDetector d(Config());
  d.Observe({Proc(1), Proc(2), Proc(3)}, At(0));
  d.Observe(
      {WithCaused(Proc(1), 1, 0, 7.5), WithCaused(Proc(2), 1, 4.5), WithCaused(Proc(3), 1, 3)},
      At(30));
  d.ObserveContention({Pair(2, 1, 4.5), Pair(3, 1, 3)}, At(30));
  std::optional<Offender> o = Find(d.Evaluate(At(30)), Resource::kRunqueueWait);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->key.tgid, 1u);
  EXPECT_EQ(o->reason,
            "run-queue wait 0.25 cores, no other process close; delayed by proc2 0.15 s/s, "
            "proc3 0.10 s/s");
}

TEST(OffenderContentionTest, SaturationByRunqueueWaitNamesEveryTopContributor) {
  OffenderConfig c = Config();
  c.num_cpus = 2;
  OffenderDetector d(c);
  d.Observe({Proc(1), Proc(2), Proc(3)}, At(0));
  // Two loops at 1 core each on a 2-CPU machine, neither dominant; 0.9 cores of wait in all
  // (>= 0.25 per CPU): saturated.
  d.Observe({WithCaused(Proc(1), 30, 0, 12), WithCaused(Proc(2), 30, 0, 12),
             WithCaused(Proc(3), 1.5, 0, 3)},
            At(30));
  const std::vector<Offender> cpu = OfResource(d.Evaluate(At(30)), Resource::kCpu);
  ASSERT_THAT(cpu, SizeIs(2));  // pid 3 (0.05 cores) is below saturation_min_cpu_cores
  EXPECT_EQ(cpu[0].key.tgid, 1u);
  EXPECT_EQ(cpu[1].key.tgid, 2u);
  EXPECT_EQ(cpu[0].reason,
            "machine saturated (run-queue wait 0.90 cores on 2 CPUs): cpu 1.00 cores, 49 % of all "
            "processes' CPU");
  EXPECT_DOUBLE_EQ(cpu[0].share, 0.5);
  EXPECT_EQ(cpu[0].since, At(30));
  // Still saturated later: `since` is kept.
  d.Observe({WithCaused(Proc(1), 35, 0, 14), WithCaused(Proc(2), 35, 0, 14),
             WithCaused(Proc(3), 1.75, 0, 3.5)},
            At(35));
  const std::vector<Offender> again = OfResource(d.Evaluate(At(35)), Resource::kCpu);
  ASSERT_THAT(again, SizeIs(2));
  EXPECT_EQ(again[0].since, At(30));
}

TEST(OffenderContentionTest, SaturationByCpuPressureAndNotWithoutIt) {
  OffenderConfig c = Config();
  c.num_cpus = 2;
  OffenderDetector d(c);
  d.Observe({Proc(1), Proc(2)}, At(0));
  d.Observe({WithCpu(Proc(1), 30), WithCpu(Proc(2), 30)}, At(30));  // no run-queue wait
  EXPECT_THAT(d.Evaluate(At(30)), IsEmpty());                       // as before: none dominates
  d.ObserveCpuPressure(12.5);
  EXPECT_THAT(d.Evaluate(At(30)), IsEmpty());  // below saturation_cpu_pressure (40 %)
  d.ObserveCpuPressure(63);
  const std::vector<Offender> cpu = OfResource(d.Evaluate(At(30)), Resource::kCpu);
  ASSERT_THAT(cpu, SizeIs(2));
  EXPECT_THAT(cpu[0].reason,
              HasSubstr("machine saturated (run-queue wait 0.00 cores on 2 CPUs, "
                        "cpu pressure 63 %): cpu 1.00 cores, 50 % of all processes' CPU"));
  d.ObserveCpuPressure(-1);  // not known: back to run-queue wait alone
  EXPECT_THAT(d.Evaluate(At(30)), IsEmpty());
}

TEST(OffenderContentionTest, AtMostMaxSaturationOffendersCovering90PercentOfTheCpu) {
  OffenderConfig c = Config();
  c.num_cpus = 2;
  c.max_saturation_offenders = 2;
  OffenderDetector d(c);
  std::vector<ProcessInfo> zero, busy;
  for (uint32_t pid = 1; pid <= 5; ++pid) {
    zero.push_back(Proc(pid));
    busy.push_back(WithCaused(Proc(pid), 12 - pid, 0, 6));  // 0.37 .. 0.23 cores, 1 core waiting
  }
  d.Observe(zero, At(0));
  d.Observe(busy, At(30));
  const std::vector<Offender> cpu = OfResource(d.Evaluate(At(30)), Resource::kCpu);
  ASSERT_THAT(cpu, SizeIs(2));
  EXPECT_EQ(cpu[0].key.tgid, 1u);
  EXPECT_EQ(cpu[1].key.tgid, 2u);
}

TEST(OffenderContentionTest, SaturationThresholdsAreValidated) {
  OffenderConfig c;
  c.saturation_runqueue_per_cpu = -1;
  EXPECT_EQ(ValidateOffenderConfig(c).message(),
            "offender saturation_runqueue_per_cpu -1: must be >= 0");
  c = OffenderConfig();
  c.max_saturation_offenders = -2;
  EXPECT_EQ(ValidateOffenderConfig(c).message(),
            "offender max_saturation_offenders -2: must be >= 0");
}

}  // namespace
}  // namespace procscope
