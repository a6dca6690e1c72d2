// SPDX-License-Identifier: Apache-2.0
// Exit events: one per process (never per thread), with the status wait(2) reports, the OOM flag
// for a real OOM kill, the whole process's CPU, no loss or leak under many short-lived children,
// and a reused pid that starts from zero. wait4's status and rusage are the ground truth.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

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

constexpr char kMemcgRoot[] = "/sys/fs/cgroup/memory";

uint64_t BootNs() {
  timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

double Ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

// A comm (at most 15 bytes) no other process on the machine is likely to have.
std::string UniqueComm(const char* tag) {
  return absl::StrCat("px", tag, getpid() % 100000).substr(0, PS_COMM_LEN - 1);
}

std::optional<std::string> ReadText(const std::string& path) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool WriteText(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

void SetCoreLimit(rlim_t limit) {
  rlimit rl{limit, limit};
  setrlimit(RLIMIT_CORE, &rl);
}

// Writes through an address the compiler cannot prove null: a genuine page fault, not a trap
// instruction (which GCC may emit for a literal null dereference) and not kill().
void Segfault() {
  static volatile uintptr_t bad = 16;
  *reinterpret_cast<volatile int*>(bad) = 1;
}

// The event must say exactly what wait(2) said.
void ExpectSameStatus(const ps_exit_event& e, int status) {
  EXPECT_EQ(e.exit_code, static_cast<uint32_t>(status)) << "event status vs wait4 status";
  const ExitStatus s = DecodeExitStatus(e.exit_code);
  EXPECT_EQ(s.signal, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(s.core_dumped, WIFSIGNALED(status) && WCOREDUMP(status));
  EXPECT_EQ(s.exit_code, WIFEXITED(status) ? WEXITSTATUS(status) : 0);
}

// An exit by `signal` (with or without a core dump): the event says what wait(2) said, and it is
// not flagged as an OOM kill.
void ExpectSignalExit(const std::optional<ps_exit_event>& e, int status, int signal, bool core) {
  ASSERT_TRUE(e.has_value()) << "no exit event";
  ExpectSameStatus(*e, status);
  const ExitStatus s = DecodeExitStatus(e->exit_code);
  EXPECT_EQ(s.signal, signal);
  EXPECT_EQ(s.core_dumped, core);
  EXPECT_EQ(e->flags & PS_EXIT_OOM_KILLED, 0u);
}

// Every event seen for one process incarnation.
int CountEvents(pid_t ppid, pid_t pid, uint64_t start_ns) {
  int n = 0;
  for (const ps_exit_event& e : CollectorEnv::Get()->ExitsOfParent(ppid)) {
    if (e.key.tgid == static_cast<uint32_t>(pid) && e.key.start_ns == start_ns) ++n;
  }
  return n;
}

// |got - want| within `frac` of want.
void ExpectCpuNear(uint64_t got, uint64_t want, double frac, const char* what) {
  EXPECT_NEAR(static_cast<double>(got), static_cast<double>(want), frac * want)
      << what << ": event " << Ms(got) << " ms vs wait4 rusage " << Ms(want) << " ms";
}

// Inode number of the cgroup2 directory of `pid`: what the kernel reports as its cgroup id.
std::optional<uint64_t> Cgroup2Id(pid_t pid) {
  auto mounts = ReadText("/proc/self/mounts");
  auto cgroups = ReadText(absl::StrCat("/proc/", pid, "/cgroup"));
  if (!mounts || !cgroups) return std::nullopt;
  std::string mnt;
  for (absl::string_view line : absl::StrSplit(*mounts, '\n')) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() > 2 && f[2] == "cgroup2") {
      mnt = f[1];
      break;
    }
  }
  if (mnt.empty()) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(*cgroups, '\n')) {
    if (absl::ConsumePrefix(&line, "0::")) {
      struct stat st;
      if (stat(absl::StrCat(mnt, line).c_str(), &st) != 0) return std::nullopt;
      return st.st_ino;
    }
  }
  return std::nullopt;
}

// State letter of one thread of `pid` ('Z' for a zombie), 0 if gone.
char ThreadState(pid_t pid, pid_t tid) {
  auto text = ReadText(absl::StrCat("/proc/", pid, "/task/", tid, "/stat"));
  if (!text) return 0;
  size_t close = text->rfind(')');
  return close != std::string::npos && close + 2 < text->size() ? (*text)[close + 2] : 0;
}

int ThreadsOf(pid_t pid) {
  auto text = ReadText(absl::StrCat("/proc/", pid, "/status"));
  if (!text) return -1;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    int n;
    if (absl::ConsumePrefix(&line, "Threads:") &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &n)) {
      return n;
    }
  }
  return -1;
}

// A temporary directory on a real file system (page-cache dirtying is traced there, not on
// tmpfs), removed with its files.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/var/tmp/procscope-exit-XXXXXX";
    if (mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    if (path_.empty()) return;
    if (DIR* d = opendir(path_.c_str())) {
      while (dirent* e = readdir(d)) {
        if (e->d_name[0] != '.') unlink(absl::StrCat(path_, "/", e->d_name).c_str());
      }
      closedir(d);
    }
    rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A v1 memory cgroup of our own, removed (after its processes are gone) even on failure.
class MemCgroup {
 public:
  MemCgroup() {
    path_ = absl::StrCat(kMemcgRoot, "/procscope-exit-oom-", getpid(), "-", BootNs());
    if (mkdir(path_.c_str(), 0755) != 0) path_.clear();
  }
  ~MemCgroup() {
    if (path_.empty()) return;
    // The last charges go away asynchronously after the reap: retry for a while.
    for (int i = 0; i < 100 && rmdir(path_.c_str()) != 0 && errno == EBUSY; ++i) {
      absl::SleepFor(absl::Milliseconds(50));
    }
  }
  bool ok() const { return !path_.empty(); }
  std::string file(const char* name) const { return absl::StrCat(path_, "/", name); }
  bool Has(const char* name) const { return access(file(name).c_str(), F_OK) == 0; }
  bool Write(const char* name, const std::string& v) const { return WriteText(file(name), v); }
  // memory.oom_control's "oom_kill" count: how many tasks the OOM killer killed here.
  int OomKills() const {
    auto text = ReadText(file("memory.oom_control"));
    if (!text) return -1;
    for (absl::string_view line : absl::StrSplit(*text, '\n')) {
      int n;
      if (absl::ConsumePrefix(&line, "oom_kill ") && absl::SimpleAtoi(line, &n)) return n;
    }
    return -1;
  }

 private:
  std::string path_;
};

// Reads exactly `len` bytes (false on EOF or error).
bool ReadAll(int fd, void* buf, size_t len) {
  char* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t n = read(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

bool WriteAll(int fd, const void* buf, size_t len) {
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

// Children are copies of this multi-threaded binary: flush stdio first so that nothing buffered
// is printed twice. They leave with _exit (the harness's, or their own), the same exit_group(2)
// as exit() without running this binary's static destructors a second time.
void BeforeFork() { fflush(nullptr); }

TEST(ExitTest, NormalExitReportsCodeParentCommAndLifetime) {
  PS_REQUIRE_COLLECTOR();
  CollectorEnv* env = CollectorEnv::Get();
  const std::string comm = UniqueComm("ex");
  BeforeFork();
  const uint64_t t0 = BootNs();
  Child c([&](Child& self) {
    prctl(PR_SET_NAME, comm.c_str());
    // 16 MiB resident, so that the peak RSS is measurably ours.
    const size_t len = 16 << 20;
    void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return 10;
    auto* p = static_cast<volatile char*>(m);
    for (size_t i = 0; i < len; i += 4096) p[i] = 1;
    BurnCpu(absl::Milliseconds(20));
    self.Ready();
    self.WaitGo();
    usleep(100000);  // a known minimum lifetime
    return 3;        // the harness's _exit(3)
  });
  ASSERT_TRUE(c.WaitReady());
  auto cg = Cgroup2Id(c.pid());
  c.Go();
  rusage ru;
  const int status = c.Wait(&ru);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 3);

  auto e = env->WaitExit(c.pid(), absl::Seconds(10));
  const uint64_t t1 = BootNs();
  ASSERT_TRUE(e.has_value()) << "no exit event for pid " << c.pid();
  ExpectSameStatus(*e, status);
  const ExitStatus s = DecodeExitStatus(e->exit_code);
  EXPECT_EQ(s.exit_code, 3);
  EXPECT_EQ(s.signal, 0);
  EXPECT_FALSE(s.core_dumped);
  EXPECT_EQ(e->flags & PS_EXIT_OOM_KILLED, 0u);
  EXPECT_EQ(e->ppid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(e->uid, getuid());
  EXPECT_EQ(CommFromKernel(e->comm), comm);
  if (cg) {
    EXPECT_EQ(e->cgroup_id, *cg);
  }

  // Started after t0, lived at least the 100 ms sleep, ended before we saw the event.
  EXPECT_GE(e->key.start_ns, t0);
  EXPECT_LE(e->exit_ns, t1);
  ASSERT_GT(e->exit_ns, e->key.start_ns);
  const uint64_t life = e->exit_ns - e->key.start_ns;
  EXPECT_GE(life, 100000000u) << "lifetime " << Ms(life) << " ms";
  EXPECT_LE(life, t1 - t0);

  // Peak RSS is the kernel's, as wait4 reports it (KiB), and covers the 16 MiB touched.
  EXPECT_EQ(e->rss_max_bytes, static_cast<uint64_t>(ru.ru_maxrss) * 1024);
  EXPECT_GE(e->rss_max_bytes, 16u << 20);
  EXPECT_GE(e->c.cpu_ns, 20000000u);
  ExpectCpuNear(e->c.cpu_ns, RusageCpuNs(ru), 0.05, "short child");
  std::printf("  status 0x%x, lifetime %.1f ms, CPU %.1f ms (rusage %.1f), peak RSS %llu KiB\n",
              e->exit_code, Ms(life), Ms(e->c.cpu_ns), Ms(RusageCpuNs(ru)),
              static_cast<unsigned long long>(e->rss_max_bytes >> 10));
}

// Whether a core dump lands as a file in the dumping process's cwd (core_pattern "core",
// "core.%p", ...), not in a pipe or an absolute path.
bool CoreFileInCwd() {
  auto pattern = ReadText("/proc/sys/kernel/core_pattern");
  return pattern && !pattern->empty() && (*pattern)[0] != '|' &&
         pattern->find('/') == std::string::npos;
}

// Whether `dir` holds a file whose name starts with "core".
bool HasCoreFile(const std::string& dir) {
  bool found = false;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) found |= absl::StartsWith(e->d_name, "core");
    closedir(d);
  }
  return found;
}

// Runs a child that segfaults with RLIMIT_CORE = `core_limit` in a fresh directory (its core
// file, if any, lands and is removed there); returns its wait status, whether a core file
// appeared, and its exit event.
void RunSegfault(rlim_t core_limit, const std::string& comm, int* status, bool* core_file,
                 std::optional<ps_exit_event>* event) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  BeforeFork();
  Child c([&](Child&) {
    prctl(PR_SET_NAME, comm.c_str());
    SetCoreLimit(core_limit);
    if (chdir(dir.path().c_str()) != 0) return 100;  // core_pattern "core": lands in the cwd
    Segfault();
    return 101;
  });
  *status = c.Wait();
  *core_file = HasCoreFile(dir.path());
  *event = CollectorEnv::Get()->WaitExit(c.pid(), absl::Seconds(10));
}

TEST(ExitTest, SegfaultWithCoreDumpSetsCoreFlag) {
  PS_REQUIRE_COLLECTOR();
  int status = 0;
  bool core_file = false;
  std::optional<ps_exit_event> e;
  RunSegfault(RLIM_INFINITY, UniqueComm("sc"), &status, &core_file, &e);
  ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status;
  ASSERT_EQ(WTERMSIG(status), SIGSEGV);
  ASSERT_TRUE(WCOREDUMP(status)) << "the kernel wrote no core: nothing to check";
  if (CoreFileInCwd()) {
    EXPECT_TRUE(core_file);
  }
  ASSERT_NO_FATAL_FAILURE(ExpectSignalExit(e, status, SIGSEGV, /*core=*/true));
  EXPECT_EQ(CommFromKernel(e->comm), UniqueComm("sc"));
  std::printf("  event status 0x%x, wait4 status 0x%x\n", e->exit_code, status);
}

TEST(ExitTest, SegfaultWithoutCoreDumpHasNoCoreFlag) {
  PS_REQUIRE_COLLECTOR();
  int status = 0;
  bool core_file = true;
  std::optional<ps_exit_event> e;
  RunSegfault(0, UniqueComm("sn"), &status, &core_file, &e);
  ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status;
  ASSERT_EQ(WTERMSIG(status), SIGSEGV);
  EXPECT_FALSE(WCOREDUMP(status));
  EXPECT_FALSE(core_file);
  ASSERT_NO_FATAL_FAILURE(ExpectSignalExit(e, status, SIGSEGV, /*core=*/false));
  std::printf("  event status 0x%x, wait4 status 0x%x\n", e->exit_code, status);
}

TEST(ExitTest, SigkillIsSignalNineWithoutCoreOrOomFlag) {
  PS_REQUIRE_COLLECTOR();
  BeforeFork();
  Child c([](Child& self) {
    self.Ready();
    for (;;) pause();
    return 0;
  });
  ASSERT_TRUE(c.WaitReady());
  ASSERT_EQ(kill(c.pid(), SIGKILL), 0);
  const int status = c.Wait();
  ASSERT_TRUE(WIFSIGNALED(status));
  ASSERT_EQ(WTERMSIG(status), SIGKILL);
  // Killed by us, not by the OOM killer.
  ExpectSignalExit(CollectorEnv::Get()->WaitExit(c.pid(), absl::Seconds(10)), status, SIGKILL,
                   /*core=*/false);
}

TEST(ExitTest, AbortIsSigabrt) {
  PS_REQUIRE_COLLECTOR();
  BeforeFork();
  Child c([](Child&) {
    SetCoreLimit(0);
    abort();
    return 0;
  });
  const int status = c.Wait();
  ASSERT_TRUE(WIFSIGNALED(status));
  ASSERT_EQ(WTERMSIG(status), SIGABRT);
  ExpectSignalExit(CollectorEnv::Get()->WaitExit(c.pid(), absl::Seconds(10)), status, SIGABRT,
                   /*core=*/false);
}

TEST(ExitTest, OomKillIsFlagged) {
  PS_REQUIRE_COLLECTOR();
  CollectorEnv* env = CollectorEnv::Get();
  const auto& degraded = env->collector().Degraded();
  ASSERT_EQ(std::count(degraded.begin(), degraded.end(), "mark_victim"), 0)
      << "the OOM hook (mark_victim) is not attached";
  if (access(kMemcgRoot, F_OK) != 0) GTEST_SKIP() << "no cgroup v1 memory controller";

  MemCgroup cg;  // declared before the child: removed after the child is reaped
  ASSERT_TRUE(cg.ok()) << "cannot create a memory cgroup: " << strerror(errno);
  ASSERT_TRUE(cg.Write("memory.limit_in_bytes", std::to_string(32 << 20)));
  // memsw (memory + swap) only exists with swap accounting; there is no swap, but cap it too.
  if (cg.Has("memory.memsw.limit_in_bytes")) {
    ASSERT_TRUE(cg.Write("memory.memsw.limit_in_bytes", std::to_string(32 << 20)));
  }
  const std::string comm = UniqueComm("om");
  BeforeFork();
  Child c([&](Child& self) {
    prctl(PR_SET_NAME, comm.c_str());
    self.WaitGo();  // until we are in the cgroup
    const size_t len = 256 << 20;
    void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return 10;
    auto* p = static_cast<volatile char*>(m);
    for (size_t i = 0; i < len; i += 4096) p[i] = 1;
    return 11;  // survived 256 MiB in a 32 MiB cgroup: no OOM kill happened
  });
  ASSERT_TRUE(cg.Write("cgroup.procs", std::to_string(c.pid())));
  c.Go();
  const int status = c.Wait();
  ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status;
  ASSERT_EQ(WTERMSIG(status), SIGKILL);
  EXPECT_GE(cg.OomKills(), 1) << "the cgroup recorded no OOM kill";

  auto e = env->WaitExit(c.pid(), absl::Seconds(10));
  ASSERT_TRUE(e.has_value());
  ExpectSameStatus(*e, status);
  EXPECT_EQ(DecodeExitStatus(e->exit_code).signal, SIGKILL);
  EXPECT_NE(e->flags & PS_EXIT_OOM_KILLED, 0u) << "an OOM kill without PS_EXIT_OOM_KILLED";
  EXPECT_EQ(CommFromKernel(e->comm), comm);
  EXPECT_GE(e->rss_max_bytes, 16u << 20);  // it did grow before the kill
  std::printf("  status 0x%x, flags 0x%x, cgroup oom_kill %d, peak RSS %llu KiB\n", e->exit_code,
              e->flags, cg.OomKills(), static_cast<unsigned long long>(e->rss_max_bytes >> 10));
}

TEST(ExitTest, ThreadExitsSendNoEventAndTheProcessEventHasAllThreadsCpu) {
  PS_REQUIRE_COLLECTOR();
  CollectorEnv* env = CollectorEnv::Get();
  int tids[2];
  ASSERT_EQ(pipe(tids), 0);
  BeforeFork();
  Child c([&](Child& self) {
    close(tids[0]);
    pthread_t th[2];
    for (pthread_t& t : th) {
      pthread_create(
          &t, nullptr,
          [](void* fd) -> void* {
            const pid_t tid = gettid();
            (void)!write(*static_cast<int*>(fd), &tid, sizeof(tid));
            BurnCpu(absl::Milliseconds(100));
            pthread_exit(nullptr);
          },
          &tids[1]);
    }
    for (pthread_t t : th) pthread_join(t, nullptr);
    self.Ready();
    self.WaitGo();
    return 0;
  });
  close(tids[1]);
  ASSERT_TRUE(c.WaitReady(absl::Seconds(30)));
  pid_t thread_ids[2];
  ASSERT_TRUE(ReadAll(tids[0], thread_ids, sizeof(thread_ids)));
  close(tids[0]);
  // pthread_join returns when a thread clears its tid, on its way out of do_exit(): it is
  // released (and leaves Threads:) a moment later, longer on a loaded machine.
  for (int i = 0; i < 200 && ThreadsOf(c.pid()) != 1; ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_EQ(ThreadsOf(c.pid()), 1);

  // Both threads are gone, the process lives on: listed, their CPU kept, and no event.
  auto live = env->Sample(c.pid());
  ASSERT_TRUE(live.has_value());
  const uint64_t start = live->key.start_ns;
  EXPECT_EQ(live->nr_threads, 1u);
  EXPECT_GE(live->counters.cpu_ns, 200000000u) << "the exited threads' CPU was lost";
  EXPECT_FALSE(env->WaitExit(c.pid(), absl::Milliseconds(300)).has_value())
      << "an exit event while the process is alive";
  for (pid_t tid : thread_ids) {
    EXPECT_FALSE(env->WaitExit(tid, absl::Milliseconds(1)).has_value())
        << "an exit event for thread " << tid;
  }

  c.Go();
  rusage ru;
  const int status = c.Wait(&ru);
  ASSERT_TRUE(WIFEXITED(status));
  auto e = env->WaitExit(c.pid(), absl::Seconds(10), start);
  ASSERT_TRUE(e.has_value());
  ExpectSameStatus(*e, status);
  EXPECT_GE(e->c.cpu_ns, 200000000u);
  EXPECT_GE(e->c.cpu_ns, live->counters.cpu_ns);
  ExpectCpuNear(e->c.cpu_ns, RusageCpuNs(ru), 0.02, "two threads of 100 ms");
  absl::SleepFor(absl::Milliseconds(200));  // room for a duplicate to arrive
  EXPECT_EQ(CountEvents(getpid(), c.pid(), start), 1);
  std::printf("  live after thread exits %.1f ms, event %.1f ms, rusage %.1f ms\n",
              Ms(live->counters.cpu_ns), Ms(e->c.cpu_ns), Ms(RusageCpuNs(ru)));
}

TEST(ExitTest, LeaderExitsFirstThenLastThreadExitsWithCode) {
  PS_REQUIRE_COLLECTOR();
  CollectorEnv* env = CollectorEnv::Get();
  const std::string comm = UniqueComm("lx");
  BeforeFork();
  Child c([&](Child& self) {
    prctl(PR_SET_NAME, comm.c_str());
    pthread_t t;
    pthread_create(
        &t, nullptr,
        [](void* arg) -> void* {
          auto* self = static_cast<Child*>(arg);
          const pid_t leader = getpid();
          while (ThreadState(leader, leader) != 'Z') usleep(1000);
          BurnCpu(absl::Milliseconds(100));
          self->Ready();
          self->WaitGo();
          _exit(5);
        },
        &self);
    BurnCpu(absl::Milliseconds(100));
    // The leader's thread exit. pthread_exit would do the same exit(2) after unwinding this
    // stack, which holds the test framework's frames (its catch (...) would abort the unwind).
    syscall(SYS_exit, 0);
    return 99;
  });
  ASSERT_TRUE(c.WaitReady(absl::Seconds(30)));
  ASSERT_EQ(ThreadState(c.pid(), c.pid()), 'Z');

  // The leader's exit is a thread exit: the process is still listed, and no event yet.
  auto live = env->Sample(c.pid());
  ASSERT_TRUE(live.has_value()) << "a process whose leader exited is no longer listed";
  const uint64_t start = live->key.start_ns;
  EXPECT_GE(live->counters.cpu_ns, 200000000u);
  EXPECT_FALSE(env->WaitExit(c.pid(), absl::Milliseconds(300)).has_value())
      << "an exit event at the leader's thread exit";

  c.Go();
  rusage ru;
  const int status = c.Wait(&ru);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 5);
  auto e = env->WaitExit(c.pid(), absl::Seconds(10), start);
  ASSERT_TRUE(e.has_value());
  ExpectSameStatus(*e, status);
  EXPECT_EQ(DecodeExitStatus(e->exit_code).exit_code, 5);
  EXPECT_EQ(e->ppid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(CommFromKernel(e->comm), comm);
  ExpectCpuNear(e->c.cpu_ns, RusageCpuNs(ru), 0.02, "leader 100 ms + thread 100 ms");
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(CountEvents(getpid(), c.pid(), start), 1);
  std::printf("  status 0x%x, live %.1f ms, event %.1f ms, rusage %.1f ms\n", e->exit_code,
              Ms(live->counters.cpu_ns), Ms(e->c.cpu_ns), Ms(RusageCpuNs(ru)));
}

// What the dedicated parent of test 6 learnt from wait4 about one child.
struct ReapedChild {
  pid_t pid;
  uint32_t min_flt;
  uint64_t cpu_ns;
};

TEST(ExitTest, ThousandShortLivedChildrenAllReportedNothingLeaked) {
  PS_REQUIRE_COLLECTOR();
  constexpr int kChildren = 1000;
  CollectorEnv* env = CollectorEnv::Get();
  Collector& col = env->collector();
  const auto& degraded = col.Degraded();
  const bool dirty_traced =
      std::count(degraded.begin(), degraded.end(), "writeback_dirty_folio") == 0;
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());

  auto stats0 = col.ReadStats();
  ASSERT_TRUE(stats0.ok());
  auto io0 = col.ProcIoEntries();
  ASSERT_TRUE(io0.ok());
  auto procs0 = col.ReadProcesses();
  ASSERT_TRUE(procs0.ok());

  // A dedicated parent, so that "ppid == that parent" selects exactly these children. It forks
  // them one at a time, reaps each with wait4 and reports what wait4 said.
  const std::string comm = UniqueComm("sh");
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  BeforeFork();
  const uint64_t t0 = BootNs();
  Child parent([&](Child&) {
    close(out[0]);
    prctl(PR_SET_NAME, comm.c_str());
    std::vector<ReapedChild> reaped;
    for (int i = 0; i < kChildren; ++i) {
      const pid_t pid = fork();
      if (pid < 0) return 2;
      if (pid == 0) {
        // A little CPU and one dirtied page cache page: each child gets an I/O map entry.
        BurnCpu(absl::Microseconds(500));
        const std::string f = absl::StrCat(dir.path(), "/f", i);
        int fd = open(f.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
        char page[4096] = {1};
        if (fd < 0 || write(fd, page, sizeof(page)) != sizeof(page)) _exit(3);
        close(fd);
        unlink(f.c_str());  // dropped before writeback: no disk I/O needed
        _exit(0);
      }
      int st;
      rusage ru;
      if (wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 4;
      reaped.push_back({pid, static_cast<uint32_t>(ru.ru_minflt), RusageCpuNs(ru)});
    }
    return WriteAll(out[1], reaped.data(), reaped.size() * sizeof(ReapedChild)) ? 0 : 5;
  });
  close(out[1]);
  std::vector<ReapedChild> reaped(kChildren);
  const bool got = ReadAll(out[0], reaped.data(), reaped.size() * sizeof(ReapedChild));
  close(out[0]);
  const int pstatus = parent.Wait();
  ASSERT_TRUE(WIFEXITED(pstatus) && WEXITSTATUS(pstatus) == 0) << "status " << pstatus;
  ASSERT_TRUE(got);

  // Events of these children (started after t0: a recycled parent pid cannot add older ones).
  auto ours = [&] {
    std::vector<ps_exit_event> v;
    for (const ps_exit_event& e : env->ExitsOfParent(parent.pid())) {
      if (e.key.start_ns >= t0) v.push_back(e);
    }
    return v;
  };
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (ours().size() < kChildren && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  absl::SleepFor(absl::Milliseconds(300));  // room for duplicates
  const std::vector<ps_exit_event> events = ours();
  ASSERT_EQ(events.size(), static_cast<size_t>(kChildren));

  std::map<pid_t, ReapedChild> want;
  uint64_t rusage_cpu = 0;
  for (const ReapedChild& r : reaped) {
    want[r.pid] = r;
    rusage_cpu += r.cpu_ns;
  }
  ASSERT_EQ(want.size(), static_cast<size_t>(kChildren));
  uint64_t event_cpu = 0;
  int dirtied = 0, bad_status = 0, bad_comm = 0, unknown = 0, inflated = 0, bad_faults = 0;
  std::string examples;
  for (const ps_exit_event& e : events) {
    event_cpu += e.c.cpu_ns;
    if (e.io.dirtied_bytes >= 4096) ++dirtied;
    if (e.exit_code != 0) ++bad_status;
    if (CommFromKernel(e.comm) != comm) ++bad_comm;
    auto it = want.find(static_cast<pid_t>(e.key.tgid));
    if (it == want.end()) {
      ++unknown;
      continue;
    }
    // Per child: the CPU wait4 saw, give or take the last slice of a child reaped before its
    // final switch-out; page faults exactly (none happen after the reap).
    const ReapedChild& r = it->second;
    // wait4 can be short by the slice the child ran since its last tick when the parent reaped
    // it (the event is sent at the child's final switch-out, with that slice): up to one tick,
    // 4 ms at HZ=250. Doubled counters are caught exactly by the faults check below.
    const bool cpu_off = e.c.cpu_ns > r.cpu_ns + r.cpu_ns / 4 + 4000000;
    const bool faults_off = e.c.min_flt != r.min_flt;
    inflated += cpu_off;
    bad_faults += faults_off;
    if ((cpu_off || faults_off) && examples.size() < 600) {
      absl::StrAppend(&examples, "\n    pid ", r.pid, ": event CPU ", Ms(e.c.cpu_ns),
                      " ms vs wait4 ", Ms(r.cpu_ns), " ms, minor faults ", e.c.min_flt, " vs ",
                      r.min_flt);
    }
  }
  EXPECT_EQ(unknown, 0) << "events of processes that are not these children";
  EXPECT_EQ(bad_status, 0);
  EXPECT_EQ(bad_comm, 0);
  ExpectCpuNear(event_cpu, rusage_cpu, 0.02, "1000 children summed");
  auto stats_mid = col.ReadStats();
  ASSERT_TRUE(stats_mid.ok());
  const uint64_t unstable =
      (*stats_mid)[PS_STAT_DROP_SUMMED_READ] - (*stats0)[PS_STAT_DROP_SUMMED_READ];
  EXPECT_EQ(inflated, 0) << "children whose event CPU exceeds wait4's" << examples
                         << "\n    summed reads that stayed inconsistent: " << unstable;
  EXPECT_EQ(bad_faults, 0) << "children whose event page faults differ from wait4's" << examples
                           << "\n    summed reads that stayed inconsistent: " << unstable;
  if (dirty_traced) {
    EXPECT_EQ(dirtied, kChildren) << "children without an I/O map entry";
  }

  auto stats1 = col.ReadStats();
  ASSERT_TRUE(stats1.ok());
  EXPECT_EQ((*stats1)[PS_STAT_DROP_RINGBUF], (*stats0)[PS_STAT_DROP_RINGBUF]);

  // Nothing of them is left: no I/O map entries, no live processes. Other processes on the
  // machine come and go, hence the tolerance, far below the 1000 a leak would add.
  auto io1 = col.ProcIoEntries();
  ASSERT_TRUE(io1.ok());
  EXPECT_LE(*io1, *io0 + 50) << "I/O map entries " << *io0 << " -> " << *io1;
  auto procs1 = col.ReadProcesses();
  ASSERT_TRUE(procs1.ok());
  EXPECT_LE(procs1->size(), procs0->size() + 50)
      << "live processes " << procs0->size() << " -> " << procs1->size();
  int leftover = 0;
  for (const ProcessSample& s : *procs1) {
    if (s.key.start_ns >= t0 && want.count(static_cast<pid_t>(s.key.tgid)) > 0) ++leftover;
  }
  EXPECT_EQ(leftover, 0) << "exited children still listed as live";
  std::printf(
      "  %d events, event CPU %.1f ms vs rusage %.1f ms (%d children inflated), %d "
      "dirtied, I/O entries %zu -> %zu, live %zu -> %zu, ringbuf drops %llu\n",
      static_cast<int>(events.size()), Ms(event_cpu), Ms(rusage_cpu), inflated, dirtied, *io0, *io1,
      procs0->size(), procs1->size(),
      static_cast<unsigned long long>((*stats1)[PS_STAT_DROP_RINGBUF]));
}

// Forks a child whose pid is `want`: the kernel hands out ns_last_pid + 1 next, unless another
// process forks in between (then retry). Falls back to cycling through the pid space.
std::unique_ptr<Child> ForkWithPid(pid_t want, const Child::Body& body) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (kill(want, 0) == 0 || errno != ESRCH) return nullptr;  // taken by a live process
    if (!WriteText("/proc/sys/kernel/ns_last_pid", std::to_string(want - 1))) break;
    BeforeFork();
    auto c = std::make_unique<Child>(body);
    if (c->pid() == want) return c;
  }
  for (int i = 0; i < 2 * 32768; ++i) {
    if (kill(want, 0) == 0 || errno != ESRCH) return nullptr;
    BeforeFork();
    auto c = std::make_unique<Child>(body);
    if (c->pid() == want) return c;
  }
  return nullptr;
}

TEST(ExitTest, ReusedPidStartsFromZero) {
  PS_REQUIRE_COLLECTOR();
  CollectorEnv* env = CollectorEnv::Get();
  BeforeFork();
  Child a([](Child&) {
    BurnCpu(absl::Milliseconds(200));
    return 0;
  });
  const pid_t pid = a.pid();
  rusage ru_a;
  ASSERT_TRUE(WIFEXITED(a.Wait(&ru_a)));
  auto ea = env->WaitExit(pid, absl::Seconds(10));
  ASSERT_TRUE(ea.has_value());
  ASSERT_GE(ea->c.cpu_ns, 200000000u);

  // B waits for the go-ahead before doing anything: a wrong-pid attempt is just killed.
  auto b = ForkWithPid(pid, [](Child& self) {
    self.WaitGo();
    BurnCpu(absl::Milliseconds(10));
    self.Ready();
    self.WaitGo();
    return 7;
  });
  ASSERT_NE(b, nullptr) << "could not get pid " << pid << " again";
  b->Go();
  ASSERT_TRUE(b->WaitReady());

  auto live = env->Sample(pid);
  ASSERT_TRUE(live.has_value());
  EXPECT_NE(live->key.start_ns, ea->key.start_ns);
  EXPECT_GT(live->key.start_ns, ea->exit_ns);
  EXPECT_GE(live->counters.cpu_ns, 10000000u);
  EXPECT_LT(live->counters.cpu_ns, 100000000u) << "B carries A's CPU";
  auto truth = ReadSchedstat(pid);
  ASSERT_TRUE(truth.has_value());
  EXPECT_LE(live->counters.cpu_ns, truth->cpu_ns);

  b->Go();
  rusage ru_b;
  const int status = b->Wait(&ru_b);
  ASSERT_TRUE(WIFEXITED(status));
  auto eb = env->WaitExit(pid, absl::Seconds(10), live->key.start_ns);
  ASSERT_TRUE(eb.has_value());
  ExpectSameStatus(*eb, status);
  EXPECT_EQ(DecodeExitStatus(eb->exit_code).exit_code, 7);
  EXPECT_GE(eb->c.cpu_ns, 10000000u);
  EXPECT_LT(eb->c.cpu_ns, 100000000u) << "B's exit event carries A's CPU";
  ExpectCpuNear(eb->c.cpu_ns, RusageCpuNs(ru_b), 0.1, "B");

  // Each incarnation's event is found by its start time; without one, an earlier one (A's, or
  // an older holder of the pid), never B's.
  auto again_a = env->WaitExit(pid, absl::Seconds(1), ea->key.start_ns);
  ASSERT_TRUE(again_a.has_value());
  EXPECT_EQ(again_a->c.cpu_ns, ea->c.cpu_ns);
  EXPECT_EQ(again_a->exit_ns, ea->exit_ns);
  EXPECT_NE(eb->exit_ns, ea->exit_ns);
  auto first = env->WaitExit(pid, absl::Seconds(1));
  ASSERT_TRUE(first.has_value());
  EXPECT_NE(first->key.start_ns, eb->key.start_ns);
  EXPECT_EQ(CountEvents(getpid(), pid, ea->key.start_ns), 1);
  EXPECT_EQ(CountEvents(getpid(), pid, eb->key.start_ns), 1);
  std::printf("  pid %d: A %.1f ms (rusage %.1f), B %.1f ms (rusage %.1f)\n", pid, Ms(ea->c.cpu_ns),
              Ms(RusageCpuNs(ru_a)), Ms(eb->c.cpu_ns), Ms(RusageCpuNs(ru_b)));
}

}  // namespace
}  // namespace procscope::testing
