// SPDX-License-Identifier: Apache-2.0
// End-to-end test support: one real collector per test binary, exit events gathered in the
// background, children that do exactly known work, and /proc ground truth.
#ifndef PROCSCOPE_TESTS_E2E_HARNESS_H_
#define PROCSCOPE_TESTS_E2E_HARNESS_H_

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "collector.h"
#include "gtest/gtest.h"

namespace procscope::testing {

// The collector shared by every test of the binary, with a thread that drains exit events.
class CollectorEnv {
 public:
  // Loads the collector on first use (attach mode from PROCSCOPE_TEST_ATTACH: auto, tp_btf,
  // raw_tp). Returns nullptr when it cannot; Error() then says why.
  static CollectorEnv* Get();
  static const std::string& Error();

  Collector& collector() { return *collector_; }

  // The exit event of `pid` (the first one seen since the collector started, or the one whose
  // start time is `start_ns` when non-zero), waiting up to `timeout` for it.
  std::optional<ps_exit_event> WaitExit(pid_t pid, absl::Duration timeout = absl::Seconds(10),
                                        uint64_t start_ns = 0);
  // Every exit event seen so far whose parent is `ppid`.
  std::vector<ps_exit_event> ExitsOfParent(pid_t ppid);
  // Live sample of one process now, from one iterator pass.
  std::optional<ProcessSample> Sample(pid_t pid);

  ~CollectorEnv();

 private:
  CollectorEnv() = default;
  std::unique_ptr<Collector> collector_;
  std::thread poller_;
  bool stop_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<pid_t, ps_exit_event> exits_;
};

// Skips (locally) or fails (when the CI environment variable is set) unless the collector loads.
// Use at the top of every test that needs the kernel collector.
#define PS_REQUIRE_COLLECTOR()                                                         \
  do {                                                                                 \
    if (::procscope::testing::CollectorEnv::Get() == nullptr) {                        \
      if (getenv("CI") != nullptr) {                                                   \
        FAIL() << "CI must load BPF: " << ::procscope::testing::CollectorEnv::Error(); \
      }                                                                                \
      GTEST_SKIP() << ::procscope::testing::CollectorEnv::Error();                     \
    }                                                                                  \
  } while (0)

// A forked child that runs `body` and _exits with its return value. The child can wait for the
// parent's go-ahead (WaitGo) and tell the parent it reached a point (Ready).
class Child {
 public:
  using Body = std::function<int(Child&)>;
  explicit Child(Body body);
  ~Child();  // kills and reaps the child if still there

  pid_t pid() const { return pid_; }
  // In the child: blocks until the parent calls Go(). In the parent: releases the child.
  void WaitGo();
  void Go();
  // In the child: signals the parent. In the parent: waits for that signal (false on timeout).
  void Ready();
  bool WaitReady(absl::Duration timeout = absl::Seconds(10));
  // Reaps the child: wait4 status and resource usage.
  int Wait(struct rusage* ru = nullptr);

 private:
  pid_t pid_ = -1;
  int go_[2] = {-1, -1};
  int ready_[2] = {-1, -1};
  bool reaped_ = false;
};

// The arrange/act most e2e tests share. The child has done its setup and said Ready; `read`
// (pid -> std::optional<Reading>) takes the first reading; the child is let Go through its
// measured step until it is Ready again (within `timeout`); `read` takes the second reading.
// `before_go` runs between the first reading and the go-ahead (to start a stopwatch there).
template <typename Reading>
struct Step {
  Reading before;
  Reading after;
};
template <typename Read>
auto MeasureStep(Child& child, Read read, absl::Duration timeout = absl::Seconds(10),
                 const std::function<void()>& before_go = nullptr)
    -> absl::StatusOr<Step<typename decltype(read(pid_t{}))::value_type>> {
  if (!child.WaitReady()) return absl::DeadlineExceededError("the child did not get ready");
  auto before = read(child.pid());
  if (!before.has_value()) return absl::NotFoundError("no reading before the step");
  if (before_go) before_go();
  child.Go();
  if (!child.WaitReady(timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat("the step did not finish within ", absl::FormatDuration(timeout)));
  }
  auto after = read(child.pid());
  if (!after.has_value()) return absl::NotFoundError("no reading after the step");
  return Step<typename decltype(read(pid_t{}))::value_type>{*std::move(before), *std::move(after)};
}

// Ground truth from /proc.
struct Schedstat {
  uint64_t cpu_ns = 0;   // field 1: on-CPU time
  uint64_t runq_ns = 0;  // field 2: run-queue wait
  uint64_t pcount = 0;
};
// Sum of /proc/<pid>/task/*/schedstat: every live thread of the process.
std::optional<Schedstat> ReadSchedstat(pid_t pid);
struct ProcStat {
  uint64_t min_flt = 0;
  uint64_t maj_flt = 0;
  uint64_t num_threads = 0;
  uint64_t start_ticks = 0;
};
std::optional<ProcStat> ReadProcStat(pid_t pid);  // /proc/<pid>/stat (whole process)
struct CtxSwitches {
  uint64_t voluntary = 0;
  uint64_t involuntary = 0;
};
// Sum of /proc/<pid>/task/*/status: every live thread of the process.
std::optional<CtxSwitches> ReadCtxSwitches(pid_t pid);

// Busy-loops on the CPU until this thread has used `cpu` of CPU time.
void BurnCpu(absl::Duration cpu);
// Pins the calling thread to one CPU.
void PinToCpu(int cpu);
// One CPU's line of /proc/stat, in ticks (USER_HZ).
struct CpuTicks {
  int cpu = 0;
  uint64_t busy = 0;   // user nice system irq softirq steal: all but idle and iowait
  uint64_t total = 0;  // all eight
  uint64_t steal = 0;  // taken by the hypervisor from the running vCPU
};
// Every cpuN line of /proc/stat, in its order (empty if unreadable).
std::vector<CpuTicks> ReadCpuTicks();
// ns of CPU in a struct rusage (user + system).
uint64_t RusageCpuNs(const struct rusage& ru);

}  // namespace procscope::testing

#endif  // PROCSCOPE_TESTS_E2E_HARNESS_H_
