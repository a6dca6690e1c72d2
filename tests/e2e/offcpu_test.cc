// SPDX-License-Identifier: Apache-2.0
// Off-CPU accounting and contention of the real collector against what the children measure
// themselves: time blocked in fsync (D, the hypervisor's steal set apart), time asleep in
// nanosleep (S), and the run-queue wait two busy loops pinned to one CPU cause a sleeper there and
// each other; the offender detector fed the collector's real samples names both loops when that
// CPU is saturated.
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "harness.h"
#include "offenders.h"

namespace procscope::testing {
namespace {

constexpr double kTolerance = 0.10;  // fixed by the issue

uint64_t Now(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void Report(const std::string& what, double collector, double truth) {
  printf("[ figures  ] %s: collector %.0f, truth %.0f (%.1f %%)\n", what.c_str(), collector, truth,
         truth > 0 ? 100 * (collector - truth) / truth : 0);
  fflush(stdout);
}

bool Within(double v, double truth, double tol) { return std::fabs(v - truth) <= tol * truth; }

// What a child measured about itself, in memory it shares with the parent.
struct Measured {
  uint64_t wall_ns = 0;  // in the measured calls
  uint64_t cpu_ns = 0;   // this thread's CPU time in them
  uint64_t calls = 0;
};
Measured* SharedMeasured() {
  void* m =
      mmap(nullptr, sizeof(Measured), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  return m == MAP_FAILED ? nullptr : new (m) Measured();
}

// A directory on a disk file system (not tmpfs): fsync must reach a device.
std::string DiskTempDir() {
  for (const char* dir : {static_cast<const char*>(getenv("TMPDIR")), "/var/tmp", "/tmp"}) {
    struct statfs fs;
    if (dir != nullptr && statfs(dir, &fs) == 0 && fs.f_type != 0x01021994 /* TMPFS_MAGIC */) {
      return dir;
    }
  }
  return ".";
}

// nice -20 in an autogroup of its own: the children under test barely wait behind the other
// load of the machine, which keeps the run-queue part of their measured calls small.
void Prioritize() {
  (void)setsid();
  if (FILE* f = fopen("/proc/self/autogroup", "w")) {
    fputs("-20", f);
    fclose(f);
  }
  (void)setpriority(PRIO_PROCESS, 0, -20);
}

// Time in calls minus CPU in them minus the run-queue wait (which procscope counts apart): the
// time the child was off-CPU for the calls' own reason.
double AsleepInCalls(const Measured& m, const ps_counters& c0, const ps_counters& c1) {
  return static_cast<double>(m.wall_ns) - static_cast<double>(m.cpu_ns) -
         static_cast<double>(c1.runq_ns - c0.runq_ns);
}

// `cpu`'s line of /proc/stat.
std::optional<CpuTicks> TicksOf(int cpu) {
  for (const CpuTicks& t : ReadCpuTicks()) {
    if (t.cpu == cpu) return t;
  }
  return std::nullopt;
}

// On a VM the hypervisor takes time from a running vCPU (steal). The kernel leaves it out of a
// task's CPU time (CONFIG_PARAVIRT_TIME_ACCOUNTING) and it is not off-CPU time either, so wall
// minus CPU overstates the child's blocked time by what was stolen while it ran. That is at most
// its CPU's steal over the step (ticks, so one more for rounding): 0 on a machine without steal.
// Measured under stress-ng --cpu 2 here: the collector's blocked_ns matched bpftrace's
// switch-out-to-switch-in times within 1 %, while wall - CPU ran 10-55 % over both, by the gap
// between on-CPU wall time and the task's CPU clock, and the CPU's steal covered that gap.
double StealBound(const CpuTicks& a, const CpuTicks& b) {
  const uint64_t ticks = b.steal - a.steal;
  return ticks == 0 ? 0 : (ticks + 1) * 1e9 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Prints `cpu`'s steal between `a` and `b` and returns its bound (StealBound).
double ReportSteal(int cpu, const CpuTicks& a, const CpuTicks& b, const char* span) {
  const double steal = StealBound(a, b);
  printf("[ figures  ] cpu%d: %llu of %llu busy ticks stolen in %s: up to %.0f ns\n", cpu,
         static_cast<unsigned long long>(b.steal - a.steal),
         static_cast<unsigned long long>(b.busy - a.busy), span, steal);
  return steal;
}

TEST(OffcpuTest, BlockedTimeInFsyncMatchesWhatTheChildMeasured) {
  PS_REQUIRE_COLLECTOR();
  Measured* m = SharedMeasured();
  ASSERT_NE(m, nullptr);
  const std::string path = absl::StrCat(DiskTempDir(), "/procscope_offcpu_", getpid(), ".dat");
  // Pinned, so that the steal of its CPU is the steal it can have suffered.
  const int cpu = 1 % std::max(1, static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
  Child child([m, path, cpu](Child& c) {
    Prioritize();
    PinToCpu(cpu);
    const int fd = open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0) return 1;
    std::vector<char> buf(64 << 10, 'x');
    c.Ready();
    c.WaitGo();
    // At least 40 calls and 300 ms of them: a few dozen ticks for the steal estimate.
    const uint64_t until = Now(CLOCK_MONOTONIC) + 300 * 1000 * 1000ull;
    for (int i = 0; i < 40 || (Now(CLOCK_MONOTONIC) < until && i < 2000); ++i) {
      if (write(fd, buf.data(), buf.size()) != static_cast<ssize_t>(buf.size())) return 2;
      const uint64_t w0 = Now(CLOCK_MONOTONIC), c0 = Now(CLOCK_THREAD_CPUTIME_ID);
      if (fsync(fd) != 0) return 3;
      m->cpu_ns += Now(CLOCK_THREAD_CPUTIME_ID) - c0;
      m->wall_ns += Now(CLOCK_MONOTONIC) - w0;
      ++m->calls;
    }
    close(fd);
    c.Ready();
    c.WaitGo();
    return 0;
  });
  const std::optional<CpuTicks> t0 = TicksOf(cpu);
  auto step = MeasureStep(
      child, [](pid_t pid) { return CollectorEnv::Get()->Sample(pid); }, absl::Seconds(60));
  const std::optional<CpuTicks> t1 = TicksOf(cpu);
  unlink(path.c_str());
  ASSERT_TRUE(step.ok()) << step.status();
  ASSERT_TRUE(t0 && t1) << "no cpu" << cpu << " line in /proc/stat";
  const ps_counters& c0 = step->before.counters;
  const ps_counters& c1 = step->after.counters;
  const double blocked = static_cast<double>(c1.blocked_ns - c0.blocked_ns);
  const double truth = AsleepInCalls(*m, c0, c1);
  const double steal = ReportSteal(cpu, *t0, *t1, "the step (of the child's calls)");
  Report(absl::StrCat("blocked_ns in ", m->calls, " fsyncs (wall ", m->wall_ns, ", cpu ", m->cpu_ns,
                      ")"),
         blocked, truth);
  printf("[ figures  ] step: sleep_ns +%llu, runq_ns +%llu, cpu_ns +%llu\n",
         static_cast<unsigned long long>(c1.sleep_ns - c0.sleep_ns),
         static_cast<unsigned long long>(c1.runq_ns - c0.runq_ns),
         static_cast<unsigned long long>(c1.cpu_ns - c0.cpu_ns));
  EXPECT_GT(truth, 1e6) << "fsync did not block: no disk under " << path << "?";
  // Within 10 % of what it measured, less what the hypervisor may have taken while it ran.
  EXPECT_LE(blocked, truth * (1 + kTolerance));
  EXPECT_GE(blocked, (truth - steal) * (1 - kTolerance)) << "steal bound " << steal;
  child.Go();
  EXPECT_EQ(child.Wait(), 0);
  munmap(m, sizeof(Measured));
}

TEST(OffcpuTest, SleepTimeIsTheWallTimeAsleep) {
  PS_REQUIRE_COLLECTOR();
  Measured* m = SharedMeasured();
  ASSERT_NE(m, nullptr);
  Child child([m](Child& c) {
    Prioritize();
    c.Ready();
    c.WaitGo();
    for (int i = 0; i < 50; ++i) {
      const uint64_t w0 = Now(CLOCK_MONOTONIC), c0 = Now(CLOCK_THREAD_CPUTIME_ID);
      timespec ts{0, 10 * 1000 * 1000};
      while (nanosleep(&ts, &ts) != 0) {
      }
      m->cpu_ns += Now(CLOCK_THREAD_CPUTIME_ID) - c0;
      m->wall_ns += Now(CLOCK_MONOTONIC) - w0;
      ++m->calls;
    }
    c.Ready();
    c.WaitGo();
    return 0;
  });
  auto step = MeasureStep(child, [](pid_t pid) { return CollectorEnv::Get()->Sample(pid); });
  ASSERT_TRUE(step.ok()) << step.status();
  const ps_counters& c0 = step->before.counters;
  const ps_counters& c1 = step->after.counters;
  const double sleep = static_cast<double>(c1.sleep_ns - c0.sleep_ns);
  const double truth = AsleepInCalls(*m, c0, c1);
  Report("sleep_ns in 50 nanosleeps of 10 ms", sleep, truth);
  // The parent's go-ahead is a sleep in a pipe read too (it ends inside the step): at most
  // what the parent took between its reading and Go, well under the tolerance.
  EXPECT_TRUE(Within(sleep, truth, kTolerance));
  EXPECT_LT(c1.blocked_ns - c0.blocked_ns, 50u * 1000 * 1000) << "nanosleep is S, not D";
  child.Go();
  EXPECT_EQ(child.Wait(), 0);
  munmap(m, sizeof(Measured));
}

// State shared by the contention test's processes.
struct Shared {
  volatile int go = 0;
  volatile int stop = 0;
  pid_t pids[3] = {};  // loop a, loop b, the sleeper
};

ProcessInfo InfoOf(const ProcessSample& s) {
  ProcessInfo p;
  static_cast<ProcessSample&>(p) = s;
  p.group = s.comm;
  return p;
}

// Forks a process of the test's session that waits for `go`, runs `body` until `stop`, exits.
pid_t Spawn(Shared* sh, int cpu, int nice, void (*body)(Shared*)) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  PinToCpu(cpu);
  (void)setpriority(PRIO_PROCESS, 0, nice);
  while (!sh->go) usleep(1000);
  body(sh);
  _exit(0);
}

void SpinBody(Shared* sh) {
  while (!sh->stop) {
  }
}

void SleepBody(Shared* sh) {
  while (!sh->stop) {
    timespec ts{0, 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
}

TEST(OffcpuTest, TwoLoopsOnOneCpuDelayASleeperEquallyAndSaturateIt) {
  PS_REQUIRE_COLLECTOR();
  const int cpu = 1 % std::max(1, static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
  void* shm =
      mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(shm, MAP_FAILED);
  Shared* sh = new (shm) Shared();
  // One session, its autogroup at nice -20: the other load of a shared machine gets about 1 %
  // of that CPU, so the three are nearly alone there. Inside it nice weighs as usual: the
  // sleeper at nice 19 cannot preempt a loop, so each of its wakeups waits for a loop's slice to
  // end, and that loop is its culprit.
  Child group([sh, cpu](Child& c) {
    (void)setsid();
    if (FILE* f = fopen("/proc/self/autogroup", "w")) {
      fputs("-20", f);
      fclose(f);
    }
    sh->pids[0] = Spawn(sh, cpu, 0, SpinBody);
    sh->pids[1] = Spawn(sh, cpu, 0, SpinBody);
    sh->pids[2] = Spawn(sh, cpu, 19, SleepBody);
    c.Ready();
    c.WaitGo();
    sh->stop = 1;
    for (pid_t p : sh->pids) waitpid(p, nullptr, 0);
    return 0;
  });
  ASSERT_TRUE(group.WaitReady());
  Collector& col = CollectorEnv::Get()->collector();
  ASSERT_TRUE(col.DrainContention().ok());  // pairs of earlier tests

  OffenderConfig oc;
  oc.window = absl::Seconds(5);
  oc.num_cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  OffenderDetector detector(oc);
  auto observe = [&](absl::Time now) {
    auto procs = col.ReadProcesses();
    ASSERT_TRUE(procs.ok()) << procs.status();
    std::vector<ProcessInfo> infos;
    for (const ProcessSample& p : *procs) infos.push_back(InfoOf(p));
    detector.Observe(infos, now);
    auto pairs = col.DrainContention();
    ASSERT_TRUE(pairs.ok()) << pairs.status();
    detector.ObserveContention(*pairs, now);
  };
  auto sample = [](pid_t pid) { return CollectorEnv::Get()->Sample(pid); };

  auto a0 = sample(sh->pids[0]), b0 = sample(sh->pids[1]), s0 = sample(sh->pids[2]);
  ASSERT_TRUE(a0 && b0 && s0);
  const std::optional<CpuTicks> t0 = TicksOf(cpu);
  const absl::Time start = absl::Now();
  observe(start);
  sh->go = 1;
  for (int i = 1; i <= 12; ++i) {  // 6 s: the window and then some
    absl::SleepFor(absl::Milliseconds(500));
    observe(start + absl::Milliseconds(500 * i));
  }
  auto a1 = sample(sh->pids[0]), b1 = sample(sh->pids[1]), s1 = sample(sh->pids[2]);
  const std::optional<CpuTicks> t1 = TicksOf(cpu);
  group.Go();
  EXPECT_EQ(group.Wait(), 0);
  ASSERT_TRUE(a1 && b1 && s1);
  const std::vector<Offender> offenders = detector.Evaluate(start + absl::Seconds(6));

  const double caused_a =
      static_cast<double>(a1->counters.runq_caused_ns - a0->counters.runq_caused_ns);
  const double caused_b =
      static_cast<double>(b1->counters.runq_caused_ns - b0->counters.runq_caused_ns);
  const double runq_s = static_cast<double>(s1->counters.runq_ns - s0->counters.runq_ns);
  Report("runq_caused_ns loop a", caused_a, (caused_a + caused_b) / 2);
  Report("runq_caused_ns loop b", caused_b, (caused_a + caused_b) / 2);
  ASSERT_GT(caused_a + caused_b, 1e9) << "the loops delayed nobody";
  ASSERT_TRUE(t0 && t1) << "no cpu" << cpu << " line in /proc/stat";
  // Split within 10 % of equal, plus what the hypervisor took from the CPU. A stolen slice is
  // not CPU time, so the scheduler lets that loop run on for longer in wall time; the other loop
  // and the sleeper wait through it (run-queue time is wall time) and charge it to that loop.
  // So steal can move up to twice itself from one loop's share to the other's: each loop's
  // distance from the mean, half the difference (the same for both), grows by at most the steal.
  const double steal = ReportSteal(cpu, *t0, *t1, "the window");
  const double mean = (caused_a + caused_b) / 2;
  EXPECT_LE(std::abs(caused_a - caused_b) / 2, kTolerance * mean + steal)
      << "steal bound " << steal;

  // The sleeper is a victim of both loops, and what they are charged with for it is its wait.
  const std::vector<ResourceRate> culprits = detector.Culprits(s1->key);
  double from_a = 0, from_b = 0;
  for (const ResourceRate& r : culprits) {
    if (r.key == a1->key) from_a = r.rate * 1e9;
    if (r.key == b1->key) from_b = r.rate * 1e9;
  }
  for (size_t i = 0; i < culprits.size() && i < 4; ++i) {
    printf("[ figures  ] sleeper's culprit pid %u: %.3f s\n", culprits[i].key.tgid,
           culprits[i].rate);
  }
  auto stats = col.ReadStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ((*stats)[PS_STAT_DROP_CONTENTION], 0u);
  Report("sleeper's wait charged to a + b (episodes >= 1 ms)", from_a + from_b, runq_s);
  EXPECT_GT(from_a, 0) << "the sleeper is not a victim of loop a";
  EXPECT_GT(from_b, 0) << "the sleeper is not a victim of loop b";
  EXPECT_LE(from_a + from_b, runq_s * 1.01);
  EXPECT_GE(from_a + from_b, runq_s * 0.5);  // the rest: other load that ran there

  // Saturation: neither loop dominates, both are cpu offenders, and the reason says why.
  int named = 0;
  for (const Offender& o : offenders) {
    printf("[ figures  ] offender %s pid %u: %s\n", ResourceName(o.resource), o.key.tgid,
           o.reason.c_str());
    if (o.resource == Resource::kCpu && (o.key == a1->key || o.key == b1->key)) {
      ++named;
      EXPECT_TRUE(absl::StrContains(o.reason, "saturated")) << o.reason;
    }
  }
  EXPECT_EQ(named, 2);
  munmap(shm, sizeof(Shared));
}

}  // namespace
}  // namespace procscope::testing
