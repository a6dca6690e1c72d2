// SPDX-License-Identifier: Apache-2.0
#include "harness.h"

#include <dirent.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "config.h"

namespace procscope::testing {
namespace {

std::string& ErrorString() {
  static std::string* e = new std::string;
  return *e;
}

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> ThreadIds(pid_t pid) {
  std::vector<std::string> out;
  DIR* d = opendir(absl::StrCat("/proc/", pid, "/task").c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') out.push_back(e->d_name);
  }
  closedir(d);
  return out;
}

}  // namespace

CollectorEnv* CollectorEnv::Get() {
  static CollectorEnv* env = []() -> CollectorEnv* {
    CollectorOptions opts;
    if (const char* mode = getenv("PROCSCOPE_TEST_ATTACH")) {
      auto m = ParseAttachMode(mode);
      if (!m.ok()) {
        ErrorString() = std::string(m.status().message());
        return nullptr;
      }
      opts.attach = *m;
    }
    auto c = Collector::Create(opts);
    if (!c.ok()) {
      ErrorString() = std::string(c.status().message());
      return nullptr;
    }
    auto* e = new CollectorEnv;
    e->collector_ = *std::move(c);
    e->poller_ = std::thread([e] {
      std::function<void(const ps_exit_event&)> fn = [e](const ps_exit_event& ev) {
        std::lock_guard<std::mutex> l(e->mu_);
        e->exits_.emplace(static_cast<pid_t>(ev.key.tgid), ev);
        e->cv_.notify_all();
      };
      for (;;) {
        {
          std::lock_guard<std::mutex> l(e->mu_);
          if (e->stop_) return;
        }
        (void)e->collector_->PollExits(50, fn);
      }
    });
    return e;
  }();
  return env;
}

const std::string& CollectorEnv::Error() { return ErrorString(); }

CollectorEnv::~CollectorEnv() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  if (poller_.joinable()) poller_.join();
}

std::optional<ps_exit_event> CollectorEnv::WaitExit(pid_t pid, absl::Duration timeout,
                                                    uint64_t start_ns) {
  std::unique_lock<std::mutex> l(mu_);
  const auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
  for (;;) {
    auto range = exits_.equal_range(pid);
    for (auto it = range.first; it != range.second; ++it) {
      if (start_ns == 0 || it->second.key.start_ns == start_ns) return it->second;
    }
    if (cv_.wait_until(l, deadline) == std::cv_status::timeout) return std::nullopt;
  }
}

std::vector<ps_exit_event> CollectorEnv::ExitsOfParent(pid_t ppid) {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<ps_exit_event> out;
  for (const auto& [pid, e] : exits_) {
    if (e.ppid == static_cast<uint32_t>(ppid)) out.push_back(e);
  }
  return out;
}

std::optional<ProcessSample> CollectorEnv::Sample(pid_t pid) {
  auto all = collector_->ReadProcesses();
  if (!all.ok()) return std::nullopt;
  for (ProcessSample& s : *all) {
    if (s.key.tgid == static_cast<uint32_t>(pid)) return std::move(s);
  }
  return std::nullopt;
}

Child::Child(Body body) {
  if (pipe(go_) != 0 || pipe(ready_) != 0) abort();
  pid_ = fork();
  if (pid_ < 0) abort();
  if (pid_ == 0) {
    close(go_[1]);
    close(ready_[0]);
    _exit(body(*this));
  }
  close(go_[0]);
  close(ready_[1]);
  go_[0] = ready_[1] = -1;
}

Child::~Child() {
  if (pid_ > 0 && !reaped_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  for (int fd : {go_[0], go_[1], ready_[0], ready_[1]}) {
    if (fd >= 0) close(fd);
  }
}

void Child::WaitGo() {
  char c;
  while (read(go_[0], &c, 1) < 0 && errno == EINTR) {
  }
}

void Child::Go() {
  char c = 'g';
  (void)!write(go_[1], &c, 1);
}

void Child::Ready() {
  char c = 'r';
  (void)!write(ready_[1], &c, 1);
}

bool Child::WaitReady(absl::Duration timeout) {
  pollfd p{ready_[0], POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) != 1) return false;
  char c;
  return read(ready_[0], &c, 1) == 1;
}

int Child::Wait(struct rusage* ru) {
  int status = 0;
  struct rusage local;
  while (wait4(pid_, &status, 0, ru != nullptr ? ru : &local) < 0 && errno == EINTR) {
  }
  reaped_ = true;
  return status;
}

std::optional<Schedstat> ReadSchedstat(pid_t pid) {
  Schedstat total;
  bool any = false;
  for (const std::string& tid : ThreadIds(pid)) {
    auto text = ReadFile(absl::StrCat("/proc/", pid, "/task/", tid, "/schedstat"));
    if (!text) continue;
    std::vector<std::string> f = absl::StrSplit(absl::StripAsciiWhitespace(*text), ' ');
    uint64_t a, b, c;
    if (f.size() < 3 || !absl::SimpleAtoi(f[0], &a) || !absl::SimpleAtoi(f[1], &b) ||
        !absl::SimpleAtoi(f[2], &c)) {
      continue;
    }
    total.cpu_ns += a;
    total.runq_ns += b;
    total.pcount += c;
    any = true;
  }
  if (!any) return std::nullopt;
  return total;
}

std::optional<ProcStat> ReadProcStat(pid_t pid) {
  auto text = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!text) return std::nullopt;
  // comm may hold spaces and parentheses: fields start after the last ')'.
  size_t close = text->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::vector<std::string> f = absl::StrSplit(text->substr(close + 2), ' ', absl::SkipWhitespace());
  // f[0] is field 3 (state): field N is f[N - 3].
  ProcStat s;
  if (f.size() < 20 || !absl::SimpleAtoi(f[10 - 3], &s.min_flt) ||
      !absl::SimpleAtoi(f[12 - 3], &s.maj_flt) || !absl::SimpleAtoi(f[20 - 3], &s.num_threads) ||
      !absl::SimpleAtoi(f[22 - 3], &s.start_ticks)) {
    return std::nullopt;
  }
  return s;
}

std::optional<CtxSwitches> ReadCtxSwitches(pid_t pid) {
  CtxSwitches total;
  bool any = false;
  for (const std::string& tid : ThreadIds(pid)) {
    auto text = ReadFile(absl::StrCat("/proc/", pid, "/task/", tid, "/status"));
    if (!text) continue;
    for (absl::string_view line : absl::StrSplit(*text, '\n')) {
      uint64_t v;
      if (absl::ConsumePrefix(&line, "voluntary_ctxt_switches:") &&
          absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &v)) {
        total.voluntary += v;
        any = true;
      } else if (absl::ConsumePrefix(&line, "nonvoluntary_ctxt_switches:") &&
                 absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &v)) {
        total.involuntary += v;
      }
    }
  }
  if (!any) return std::nullopt;
  return total;
}

void BurnCpu(absl::Duration cpu) {
  timespec start;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
  const int64_t want = absl::ToInt64Nanoseconds(cpu);
  volatile uint64_t sink = 0;
  for (;;) {
    for (int i = 0; i < 10000; ++i) sink = sink + i;
    timespec now;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    if ((now.tv_sec - start.tv_sec) * 1000000000LL + (now.tv_nsec - start.tv_nsec) >= want) {
      return;
    }
  }
}

void PinToCpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof(set), &set);
}

std::vector<CpuTicks> ReadCpuTicks() {
  std::vector<CpuTicks> out;
  std::ifstream in("/proc/stat");
  std::string line;
  while (std::getline(in, line)) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    CpuTicks t;
    if (f.size() < 9 || !absl::ConsumePrefix(&f[0], "cpu") || !absl::SimpleAtoi(f[0], &t.cpu)) {
      continue;  // not a cpuN line
    }
    for (size_t i = 1; i <= 8; ++i) {  // user nice system idle iowait irq softirq steal
      uint64_t v = 0;
      (void)absl::SimpleAtoi(f[i], &v);
      t.total += v;
      if (i != 4 && i != 5) t.busy += v;
      if (i == 8) t.steal = v;
    }
    out.push_back(t);
  }
  return out;
}

uint64_t RusageCpuNs(const struct rusage& ru) {
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ULL +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ULL;
}

}  // namespace procscope::testing
