// SPDX-License-Identifier: Apache-2.0
#include "demo_fleet.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace procscope::demo {
namespace {

constexpr const char* kWorkerNames[] = {"alpha", "beta", "gamma"};

absl::Status WriteFile(const std::string& path, const std::string& value) {
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return absl::PermissionDeniedError(absl::StrCat(path, ": ", strerror(errno)));
  const ssize_t n = write(fd, value.data(), value.size());
  const int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    return absl::FailedPreconditionError(
        absl::StrCat("write ", value, " to ", path, ": ", n < 0 ? strerror(err) : "short write"));
  }
  return absl::OkStatus();
}

bool Alive(pid_t pid) { return kill(pid, 0) == 0 || errno != ESRCH; }

// The pid in "<prefix><pid><rest>", or 0.
pid_t PidAfter(absl::string_view name, absl::string_view prefix) {
  if (!absl::ConsumePrefix(&name, prefix)) return 0;
  const size_t end = std::min(name.find('.'), name.size());
  int pid = 0;
  return absl::SimpleAtoi(name.substr(0, end), &pid) && pid > 0 ? pid : 0;
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* e = readdir(d)) names.emplace_back(e->d_name);
  closedir(d);
  return names;
}

}  // namespace

bool Nap(absl::Duration d, const std::atomic<int>& stop) {
  const absl::Time end = absl::Now() + d;
  while (stop.load() == 0) {
    const absl::Duration left = end - absl::Now();
    if (left <= absl::ZeroDuration()) return true;
    absl::SleepFor(std::min(left, absl::Milliseconds(50)));
  }
  return false;
}

std::string SignalName(int sig) {
  if (const char* abbrev = sigabbrev_np(sig); abbrev != nullptr) return absl::StrCat("SIG", abbrev);
  return absl::StrCat("signal ", sig);
}

absl::StatusOr<std::unique_ptr<Fleet>> Fleet::Start(const Options& options) {
  std::unique_ptr<Fleet> fleet(new Fleet(options));
  fleet->demo_pid_ = getpid();
  for (const char* name : kWorkerNames) {
    Worker w;
    w.name = name;
    w.comm = absl::StrCat("demo-", name);
    fleet->workers_.push_back(std::move(w));
  }
  for (Worker& w : fleet->workers_) {
    if (absl::Status s = fleet->Spawn(w); !s.ok()) return s;  // the destructor stops the others
  }
  return fleet;
}

Fleet::~Fleet() { Shutdown(); }

Worker* Fleet::Find(absl::string_view name) {
  absl::ConsumePrefix(&name, "demo-");
  for (Worker& w : workers_) {
    if (w.name == name) return &w;
  }
  return nullptr;
}

std::string Fleet::IoPath(const Worker& worker) const {
  return absl::StrCat(options_.io_dir, "/", kArtifactPrefix, ".", demo_pid_, ".", worker.name,
                      ".io");
}

absl::Status Fleet::Spawn(Worker& w) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return absl::ResourceExhaustedError(absl::StrCat("pipe: ", strerror(errno)));
  }
  const WorkerSpec spec{w.comm, IoPath(w), options_.leak_cap_bytes};
  // Buffered output would be written twice if a child flushed its copy.
  fflush(stdout);
  fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    close(fds[0]);
    close(fds[1]);
    return absl::ResourceExhaustedError(absl::StrCat("fork: ", strerror(err)));
  }
  if (pid == 0) {
    // The worker dies with the demo, however the demo ends (even SIGKILL).
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != demo_pid_) _exit(1);  // the demo was already gone
    close(fds[1]);
    // Only the demo may hold a write end, or a worker would never see EOF.
    for (const Worker& other : workers_) {
      if (other.control_fd >= 0) close(other.control_fd);
    }
    RunWorker(spec, fds[0]);
  }
  close(fds[0]);
  if (w.control_fd >= 0) close(w.control_fd);
  w.control_fd = fds[1];
  w.pid = pid;
  w.injection = Injection::kNone;
  w.cgroup.clear();
  return absl::OkStatus();
}

absl::Status Fleet::CheckOomSupport() {
  const std::string limit = absl::StrCat(kMemoryCgroupRoot, "/memory.limit_in_bytes");
  if (access(limit.c_str(), F_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("no cgroup v1 memory controller at ", kMemoryCgroupRoot));
  }
  if (access(kMemoryCgroupRoot, W_OK) != 0) {
    return absl::PermissionDeniedError(absl::StrCat("cannot create a memory cgroup in ",
                                                    kMemoryCgroupRoot, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status Fleet::Inject(Worker& w, Injection what) {
  if (w.pid <= 0) return absl::FailedPreconditionError(absl::StrCat(w.comm, " is not running"));
  if (w.injection == what && what != Injection::kNone) return absl::OkStatus();
  if (w.injection == Injection::kOom) {
    // Its cgroup still holds it (it was not OOM-killed yet): a fresh worker is simpler and surer
    // than moving it back.
    kill(w.pid, SIGKILL);
    while (waitpid(w.pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    w.past_pids.push_back(w.pid);
    w.pid = -1;
    RemoveCgroup(w);
    if (absl::Status s = Spawn(w); !s.ok()) return s;
    if (what == Injection::kNone) return absl::OkStatus();
  }
  if (what == Injection::kOom) {
    if (absl::Status s = CheckOomSupport(); !s.ok()) return s;
    const std::string cg = absl::StrCat(kMemoryCgroupRoot, "/", kArtifactPrefix, "-", w.pid);
    if (mkdir(cg.c_str(), 0755) != 0 && errno != EEXIST) {
      return absl::PermissionDeniedError(absl::StrCat("mkdir ", cg, ": ", strerror(errno)));
    }
    w.cgroup = cg;
    const std::string limit = absl::StrCat(kOomLimitBytes);
    absl::Status s = WriteFile(cg + "/memory.limit_in_bytes", limit);
    // With swap the limit alone would only push it to swap; the file is absent without swap
    // accounting, which is fine.
    if (s.ok() && access((cg + "/memory.memsw.limit_in_bytes").c_str(), F_OK) == 0) {
      WriteFile(cg + "/memory.memsw.limit_in_bytes", limit).IgnoreError();
    }
    if (s.ok()) s = WriteFile(cg + "/cgroup.procs", absl::StrCat(w.pid));
    if (!s.ok()) {
      RemoveCgroup(w);
      return s;
    }
  }
  const char c = static_cast<char>(what);
  if (write(w.control_fd, &c, 1) != 1) {
    return absl::UnavailableError(absl::StrCat(w.comm, ": control pipe: ", strerror(errno)));
  }
  w.injection = what;
  return absl::OkStatus();
}

std::vector<Restart> Fleet::Reap() {
  std::vector<Restart> out;
  if (shut_down_) return out;
  for (Worker& w : workers_) {
    if (w.pid <= 0) continue;
    int status = 0;
    if (waitpid(w.pid, &status, WNOHANG) != w.pid) continue;
    Restart r;
    r.comm = w.comm;
    r.old_pid = w.pid;
    if (WIFSIGNALED(status)) {
      const int sig = WTERMSIG(status);
      r.how = w.injection == Injection::kOom && sig == SIGKILL
                  ? "OOM-killed in its memory cgroup"
                  : absl::StrCat("killed by ", SignalName(sig));
    } else {
      r.how = absl::StrCat("exited with code ", WEXITSTATUS(status));
    }
    w.past_pids.push_back(w.pid);
    w.pid = -1;
    RemoveCgroup(w);
    unlink(IoPath(w).c_str());
    ++w.restarts;
    if (absl::Status s = Spawn(w); s.ok()) {
      r.new_pid = w.pid;
    } else {
      r.how += absl::StrCat(" (not restarted: ", s.message(), ")");
    }
    out.push_back(std::move(r));
  }
  return out;
}

void Fleet::RemoveCgroup(Worker& w) {
  if (w.cgroup.empty()) return;
  // The dead worker leaves the cgroup once reaped; the kernel may take a moment more.
  for (int i = 0; i < 40; ++i) {
    if (rmdir(w.cgroup.c_str()) == 0 || errno == ENOENT) {
      w.cgroup.clear();
      return;
    }
    usleep(50'000);
  }
  fprintf(stderr, "procscope-demo: cannot remove %s: %s\n", w.cgroup.c_str(), strerror(errno));
  w.cgroup.clear();
}

void Fleet::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  for (Worker& w : workers_) {
    if (w.pid > 0) kill(w.pid, SIGKILL);
  }
  for (Worker& w : workers_) {
    if (w.pid > 0) {
      while (waitpid(w.pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      w.past_pids.push_back(w.pid);
      w.pid = -1;
    }
    if (w.control_fd >= 0) close(w.control_fd);
    w.control_fd = -1;
    RemoveCgroup(w);
    unlink(IoPath(w).c_str());
  }
}

void Fleet::SweepStale(const std::string& io_dir) {
  const std::string file_prefix = absl::StrCat(kArtifactPrefix, ".");
  for (const std::string& name : ListDir(io_dir)) {
    const pid_t pid = PidAfter(name, file_prefix);
    if (pid > 0 && absl::EndsWith(name, ".io") && !Alive(pid)) {
      unlink(absl::StrCat(io_dir, "/", name).c_str());
    }
  }
  const std::string cgroup_prefix = absl::StrCat(kArtifactPrefix, "-");
  for (const std::string& name : ListDir(kMemoryCgroupRoot)) {
    const pid_t pid = PidAfter(name, cgroup_prefix);
    if (pid > 0 && !Alive(pid)) rmdir(absl::StrCat(kMemoryCgroupRoot, "/", name).c_str());
  }
}

uint64_t Fleet::DefaultLeakCap() {
  uint64_t cap = 1536 * kMiB;
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    absl::string_view l = line;
    uint64_t kib = 0;
    if (absl::ConsumePrefix(&l, "MemAvailable:") && absl::ConsumeSuffix(&l, "kB") &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(l), &kib)) {
      cap = std::min(cap, kib * 1024 / 2);
    }
  }
  return std::max(cap, 2 * kOomLimitBytes);
}

}  // namespace procscope::demo
