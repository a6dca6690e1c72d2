// SPDX-License-Identifier: Apache-2.0
// The collector as a whole: it sees this process, reports its programs and counters, and
// procscoped fails with one clear line (and the right exit code) on bad input or no privileges.
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "harness.h"

namespace procscope::testing {
namespace {

struct RunResult {
  int status = -1;
  std::string output;  // stdout and stderr
};

// Runs `exe` (procscoped) with `args`, as `uid` when non-zero (which drops every capability).
RunResult RunProcscoped(const std::vector<std::string>& args, uid_t uid = 0,
                        const std::string& exe = PROCSCOPED_PATH) {
  int out[2];
  if (pipe(out) != 0) abort();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(out[1], 2);
    close(out[0]);
    if (uid != 0 && (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0)) {
      _exit(127);
    }
    std::vector<char*> argv{const_cast<char*>(exe.c_str())};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  close(out[1]);
  RunResult r;
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof(buf))) > 0) r.output.append(buf, n);
  close(out[0]);
  waitpid(pid, &r.status, 0);
  return r;
}

// A copy of procscoped that any user can execute, in a fresh directory removed afterwards: the
// build tree may be where another user cannot reach (a clone in root's 0700 home directory).
class ReachableCopy {
 public:
  ReachableCopy() {
    namespace fs = std::filesystem;
    constexpr fs::perms kRwxRxRx = fs::perms::owner_all | fs::perms::group_read |
                                   fs::perms::group_exec | fs::perms::others_read |
                                   fs::perms::others_exec;
    char tmpl[] = "/var/tmp/procscope-e2e.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return;
    dir_ = tmpl;
    const std::string exe = dir_ + "/procscoped";
    std::error_code ec;
    fs::permissions(dir_, kRwxRxRx, ec);
    if (!ec) fs::copy_file(PROCSCOPED_PATH, exe, ec);
    if (!ec) fs::permissions(exe, kRwxRxRx, ec);
    if (!ec) path_ = exe;
  }
  ~ReachableCopy() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  // Empty if the copy could not be made.
  const std::string& path() const { return path_; }

 private:
  std::string dir_;
  std::string path_;
};

int ExitCode(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }

int LineCount(const std::string& s) {
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

uint64_t VmRssBytes(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    absl::string_view v = line;
    uint64_t kb;
    if (absl::ConsumePrefix(&v, "VmRSS:") &&
        absl::SimpleAtoi(absl::StripSuffix(absl::StripAsciiWhitespace(v), " kB"), &kb)) {
      return kb * 1024;
    }
  }
  return 0;
}

TEST(CollectorTest, SeesThisProcessWithItsIdentity) {
  PS_REQUIRE_COLLECTOR();
  prctl(PR_SET_NAME, "ps-self-test");
  auto s = CollectorEnv::Get()->Sample(getpid());
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->comm, "ps-self-test");
  EXPECT_EQ(s->ppid, static_cast<uint32_t>(getppid()));
  EXPECT_EQ(s->uid, getuid());
  EXPECT_GE(s->nr_threads, 2u);  // this thread and the exit-event poller
  EXPECT_GT(s->counters.cpu_ns, 0u);
  auto stat = ReadProcStat(getpid());
  ASSERT_TRUE(stat.has_value());
  EXPECT_EQ(s->nr_threads, stat->num_threads);
  // The key's start time is the one /proc reports, in ns instead of clock ticks.
  const uint64_t tick_ns = 1000000000ULL / sysconf(_SC_CLK_TCK);
  EXPECT_EQ(s->key.start_ns / tick_ns, stat->start_ticks);
  const uint64_t rss = VmRssBytes(getpid());
  EXPECT_NEAR(static_cast<double>(s->rss_bytes), static_cast<double>(rss), rss * 0.05);
}

TEST(CollectorTest, AttachesEveryHookOnThisKernel) {
  PS_REQUIRE_COLLECTOR();
  Collector& c = CollectorEnv::Get()->collector();
  EXPECT_TRUE(c.Degraded().empty());
  std::vector<std::string> hooks;
  for (const ProgramStats& p : c.Programs()) hooks.push_back(p.hook);
  for (const char* want :
       {"task", "sched_switch", "sched_process_exit", "mark_victim", "block_getrq",
        "block_rq_issue", "block_rq_complete", "writeback_dirty_folio"}) {
    EXPECT_NE(std::find(hooks.begin(), hooks.end(), want), hooks.end()) << want;
  }
}

// The start-up warning of a degraded collector: each hook, and what is missing without it.
TEST(CollectorTest, DegradedWarningNamesEachHookAndWhatIsMissing) {
  EXPECT_EQ(DegradedHooksWarning({}), "");
  EXPECT_EQ(DegradedHooksWarning({"block_rq_issue", "mark_victim"}),
            "degraded: not attached: block_rq_issue (missing: all block I/O bytes, operations and "
            "latency); mark_victim (missing: OOM kills, an OOM-killed process is reported as "
            "killed by SIGKILL); everything else is collected");
  for (const char* hook : {"block_getrq", "block_rq_complete", "writeback_dirty_folio"}) {
    const std::string w = DegradedHooksWarning({hook});
    EXPECT_TRUE(absl::StrContains(w, absl::StrCat(": ", hook, " (missing: "))) << w;
    EXPECT_FALSE(absl::StrContains(w, "its data")) << w;  // every optional hook says what
  }
  EXPECT_TRUE(
      absl::StrContains(DegradedHooksWarning({"future_hook"}), "future_hook (missing: its data)"));
}

// Idle processes come back from the iterator as 32-byte "unchanged" records, each standing for
// the previous read's sample. 400 of them are more than one read() of the iterator holds (its
// buffer overflows and the kernel shows a task again): no read may fail, none may be lost. A
// process that runs again is read whole.
TEST(CollectorTest, IdleProcessesComeBackUnchangedAndWholeOnceTheyRun) {
  PS_REQUIRE_COLLECTOR();
  Collector& c = CollectorEnv::Get()->collector();
  constexpr int kIdle = 400;
  int gate[2];
  ASSERT_EQ(pipe(gate), 0);
  std::vector<pid_t> idle;
  for (int i = 0; i < kIdle; ++i) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(gate[1]);
      char b;
      _exit(read(gate[0], &b, 1) < 0 ? 1 : 0);  // blocks until the parent closes its end
    }
    idle.push_back(pid);
  }
  close(gate[0]);
  // A failed assertion returns early: the children must not outlive the test.
  absl::Cleanup reap = [&idle] {
    for (pid_t pid : idle) kill(pid, SIGKILL);
    for (pid_t pid : idle) waitpid(pid, nullptr, 0);
  };
  Child runner([](Child& self) {
    self.Ready();
    self.WaitGo();
    const absl::Time until = absl::Now() + absl::Milliseconds(100);
    while (absl::Now() < until) {
    }
    self.Ready();
    self.WaitGo();
    return 0;
  });
  ASSERT_TRUE(runner.WaitReady());
  absl::SleepFor(absl::Milliseconds(300));  // every child blocked in read()

  auto ByPid = [](const std::vector<ProcessSample>& all) {
    std::map<uint32_t, ProcessSample> m;
    for (const ProcessSample& s : all) m[s.key.tgid] = s;
    return m;
  };
  std::vector<std::map<uint32_t, ProcessSample>> reads;
  for (int i = 0; i < 3; ++i) {
    auto all = c.ReadProcesses();
    ASSERT_TRUE(all.ok()) << all.status();
    reads.push_back(ByPid(*all));
  }
  int unchanged = 0;
  for (pid_t pid : idle) {
    for (const auto& r : reads) ASSERT_EQ(r.count(pid), 1u) << pid;
    const ProcessSample& last = reads[2].at(pid);
    const ProcessSample& before = reads[1].at(pid);
    unchanged += last.unchanged;
    EXPECT_EQ(last.counters.cpu_ns, before.counters.cpu_ns) << pid;
    EXPECT_EQ(last.comm, before.comm) << pid;
    EXPECT_EQ(last.ppid, static_cast<uint32_t>(getpid())) << pid;
  }
  // A few may have been woken (or be on a CPU) during a read; nearly all must be unchanged.
  EXPECT_GE(unchanged, kIdle * 9 / 10);

  const ProcessSample idle_run = reads[2].at(runner.pid());
  runner.Go();
  ASSERT_TRUE(runner.WaitReady());
  auto after = c.ReadProcesses();
  ASSERT_TRUE(after.ok()) << after.status();
  const auto m = ByPid(*after);
  ASSERT_EQ(m.count(runner.pid()), 1u);
  EXPECT_FALSE(m.at(runner.pid()).unchanged);
  EXPECT_GE(m.at(runner.pid()).counters.cpu_ns, idle_run.counters.cpu_ns + 50'000'000);

  // The runner holds the gate's write end too (forked after it): it goes first.
  runner.Go();
  runner.Wait();
  close(gate[1]);
  for (pid_t pid : idle) {
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  idle.clear();
}

// A restarted daemon adopts the pinned task storage and .bss: the previous collector's sessions
// and what they received. Its reads must all be whole again (no record may stand for a sample
// this collector never had).
TEST(CollectorTest, AdoptingPinnedStateReadsEveryProcessWhole) {
  PS_REQUIRE_COLLECTOR();  // the BPF this test needs loads here
  // Not made here: on a fresh machine /sys/fs/bpf is no bpffs until the collector mounts one.
  const std::string dir = absl::StrCat("/sys/fs/bpf/procscope-e2e-adopt-", getpid());
  absl::Cleanup unpin = [&dir] {
    (void)UnpinCollector(dir);
    rmdir(dir.c_str());
  };
  CollectorOptions opts;
  opts.pin_path = dir;
  size_t first = 0;
  {
    auto c = Collector::Create(opts);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_FALSE((*c)->Pinning().adopted);
    for (int i = 0; i < 3; ++i) {  // the second and third reads answer idle processes SAME
      auto all = (*c)->ReadProcesses();
      ASSERT_TRUE(all.ok()) << all.status();
      first = all->size();
    }
  }
  auto c = Collector::Create(opts);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE((*c)->Pinning().adopted);
  for (int i = 0; i < 2; ++i) {
    auto all = (*c)->ReadProcesses();
    ASSERT_TRUE(all.ok()) << all.status();
    EXPECT_GE(all->size(), first / 2);
    if (i == 0) {
      for (const ProcessSample& s : *all) EXPECT_FALSE(s.unchanged) << s.key.tgid;
    }
  }
}

TEST(CollectorTest, CountsExitsAndDropsNothing) {
  PS_REQUIRE_COLLECTOR();
  Collector& c = CollectorEnv::Get()->collector();
  auto before = c.ReadStats();
  ASSERT_TRUE(before.ok());
  Child child([](Child&) { return 0; });
  child.Wait();
  ASSERT_TRUE(CollectorEnv::Get()->WaitExit(child.pid()).has_value());
  auto after = c.ReadStats();
  ASSERT_TRUE(after.ok());
  EXPECT_GT((*after)[PS_STAT_EXITS], (*before)[PS_STAT_EXITS]);
  EXPECT_EQ((*after)[PS_STAT_DROP_RINGBUF], (*before)[PS_STAT_DROP_RINGBUF]);
  EXPECT_EQ((*after)[PS_STAT_DROP_TASK_STORAGE], 0u);
}

TEST(ProcscopedTest, RunsAndReportsAnExit) {
  PS_REQUIRE_COLLECTOR();
  RunResult r = RunProcscoped({"--interval=200ms", "--duration=1500ms", "--top=3",
                               "--listen=127.0.0.1:0", "--journal_dir=", "--pin_path="});
  EXPECT_EQ(ExitCode(r.status), 0) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "collecting; serving")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "PID COMM")) << r.output;
}

TEST(ProcscopedTest, BadFlagsAreOneLineAndExitTwo) {
  for (const auto& [flag, mention] : std::vector<std::pair<std::string, std::string>>{
           {"--interval=1ms", "--interval"},
           {"--top=0", "--top"},
           {"--attach=kprobe", "--attach"},
           {"--duration=-3s", "--duration"},
           {"--no-such-flag", "no-such-flag"},
       }) {
    RunResult r = RunProcscoped({flag});
    EXPECT_EQ(ExitCode(r.status), 2) << flag << ": " << r.output;
    EXPECT_EQ(LineCount(r.output), 1) << flag << ": " << r.output;
    EXPECT_TRUE(absl::StrContains(r.output, mention)) << flag << ": " << r.output;
  }
}

TEST(ProcscopedTest, WithoutPrivilegesSaysWhichCapabilities) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to drop to another user";
  ReachableCopy copy;
  ASSERT_FALSE(copy.path().empty()) << "cannot copy " << PROCSCOPED_PATH << " to /var/tmp";
  RunResult r =
      RunProcscoped({"--duration=1s", "--listen=127.0.0.1:0", "--journal_dir=", "--pin_path="},
                    /*uid=*/65534, copy.path());
  EXPECT_EQ(ExitCode(r.status), 1) << r.output;
  EXPECT_EQ(LineCount(r.output), 1) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "CAP_BPF")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "CAP_PERFMON")) << r.output;
}

TEST(ProcscopedTest, MissingOrBadBtfIsOneClearLine) {
  PS_REQUIRE_COLLECTOR();
  RunResult missing = RunProcscoped({"--btf=/nonexistent/vmlinux", "--duration=1s",
                                     "--listen=127.0.0.1:0", "--journal_dir=", "--pin_path="});
  EXPECT_EQ(ExitCode(missing.status), 1) << missing.output;
  EXPECT_EQ(LineCount(missing.output), 1) << missing.output;
  EXPECT_TRUE(absl::StrContains(missing.output, "/nonexistent/vmlinux")) << missing.output;
  RunResult bad = RunProcscoped({"--btf=/etc/hostname", "--duration=1s", "--listen=127.0.0.1:0",
                                 "--journal_dir=", "--pin_path="});
  EXPECT_EQ(ExitCode(bad.status), 1) << bad.output;
  EXPECT_EQ(LineCount(bad.output), 1) << bad.output;
  EXPECT_TRUE(absl::StrContains(bad.output, "not a valid BTF")) << bad.output;
}

}  // namespace
}  // namespace procscope::testing
