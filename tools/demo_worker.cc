// SPDX-License-Identifier: Apache-2.0
#include "demo_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace procscope::demo {
namespace {

// Paced work happens once per tick; the rates above are per second.
constexpr int64_t kTickNs = 100'000'000;
constexpr int64_t kSteadyBurnNs = 2'000'000;   // ~2 % of one CPU between sleeps
constexpr int64_t kSpikeSliceNs = 20'000'000;  // cpu_spike checks its pipe this often
constexpr uint64_t kOomChunk = kMiB;

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Spins for `ns` of wall time (on an idle CPU that is the same in CPU time).
void Burn(int64_t ns, std::vector<char>& scratch) {
  const int64_t end = MonotonicNs() + ns;
  size_t i = 0;
  while (MonotonicNs() < end) {
    for (int k = 0; k < 256; ++k) scratch[(i += 64) % scratch.size()] += 1;
  }
}

[[noreturn]] void Crash() {
  // No core file: with core_pattern "core" it would land in the demo's directory. The exit is
  // still "killed by SIGSEGV", just without the core-dumped bit.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  static volatile uintptr_t bad_address = 16;
  *reinterpret_cast<volatile int*>(bad_address) = 1;  // the real SIGSEGV
  _exit(3);                                           // not reached
}

class Worker {
 public:
  Worker(const WorkerSpec& spec, int control_fd) : spec_(spec), control_fd_(control_fd) {
    // A little memory that stays resident and constant: no growth in steady state.
    scratch_.assign(256 << 10, 1);
  }

  [[noreturn]] void Run() {
    int64_t next_tick = MonotonicNs();
    for (;;) {
      ReadCommands();
      switch (injection_) {
        case Injection::kCpuSpike:
          Burn(kSpikeSliceNs, scratch_);
          continue;
        case Injection::kOom:
          // As fast as it can, until the cgroup's limit makes the kernel kill it.
          if (held_bytes_ + kOomChunk <= spec_.leak_cap_bytes) {
            Hold(kOomChunk);
            continue;
          }
          break;  // the cgroup did not apply: stop at the cap and idle
        default:
          break;
      }
      Burn(kSteadyBurnNs, scratch_);
      if (injection_ == Injection::kMemoryLeak) {
        const uint64_t chunk = kLeakBytesPerSecond * kTickNs / 1'000'000'000;
        if (held_bytes_ + chunk <= spec_.leak_cap_bytes) Hold(chunk);
      }
      if (injection_ == Injection::kIoHeavy) WriteChunk();
      next_tick += kTickNs;
      const int64_t now = MonotonicNs();
      if (next_tick < now) next_tick = now;  // fell behind (slow fsync): do not catch up
      pollfd p{control_fd_, POLLIN, 0};
      poll(&p, 1, static_cast<int>((next_tick - now) / 1'000'000));
    }
  }

 private:
  void ReadCommands() {
    char c;
    for (;;) {
      const ssize_t n = read(control_fd_, &c, 1);
      if (n == 1) {
        Switch(static_cast<Injection>(c));
        continue;
      }
      if (n == 0) Exit();  // the demo is gone
      if (errno == EINTR) continue;
      return;  // EAGAIN: nothing more
    }
  }

  void Switch(Injection next) {
    // Leave the current injection: what it held is given back.
    ReleaseMemory();
    CloseIoFile();
    injection_ = Injection::kNone;
    switch (next) {
      case Injection::kCrash:
        Crash();
      case Injection::kIoHeavy:
        io_fd_ = open(spec_.io_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (io_fd_ < 0) {
          fprintf(stderr, "%s: io_heavy: cannot create %s: %s\n", spec_.comm.c_str(),
                  spec_.io_path.c_str(), strerror(errno));
          return;
        }
        io_offset_ = 0;
        if (io_chunk_.empty()) {  // only now: a small worker looks less like a grower at start
          io_chunk_.resize(kIoBytesPerSecond * kTickNs / 1'000'000'000);
          for (size_t i = 0; i < io_chunk_.size(); ++i) {
            io_chunk_[i] = static_cast<char>(i * 131 + 7);
          }
        }
        break;
      default:
        break;
    }
    injection_ = next;
  }

  void Hold(uint64_t bytes) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    memset(p, 0x5a, bytes);  // touch every page: resident, not just reserved
    held_.emplace_back(p, bytes);
    held_bytes_ += bytes;
  }

  void ReleaseMemory() {
    for (auto& [p, n] : held_) munmap(p, n);
    held_.clear();
    held_bytes_ = 0;
  }

  void WriteChunk() {
    if (io_fd_ < 0) return;
    if (io_offset_ + io_chunk_.size() > kIoFileBytes) io_offset_ = 0;
    const ssize_t n = pwrite(io_fd_, io_chunk_.data(), io_chunk_.size(), io_offset_);
    if (n > 0) io_offset_ += static_cast<uint64_t>(n);
    fsync(io_fd_);  // to the device now, in this process's context
  }

  void CloseIoFile() {
    if (io_fd_ < 0) return;
    close(io_fd_);
    io_fd_ = -1;
    unlink(spec_.io_path.c_str());
  }

  [[noreturn]] void Exit() {
    CloseIoFile();
    _exit(0);
  }

  const WorkerSpec& spec_;
  const int control_fd_;
  Injection injection_ = Injection::kNone;
  std::vector<char> scratch_;
  std::vector<char> io_chunk_;
  std::vector<std::pair<void*, uint64_t>> held_;
  uint64_t held_bytes_ = 0;
  int io_fd_ = -1;
  uint64_t io_offset_ = 0;
};

}  // namespace

const char* InjectionName(Injection i) {
  switch (i) {
    case Injection::kNone:
      return "none";
    case Injection::kCpuSpike:
      return "cpu_spike";
    case Injection::kMemoryLeak:
      return "memory_leak";
    case Injection::kIoHeavy:
      return "io_heavy";
    case Injection::kCrash:
      return "crash";
    case Injection::kOom:
      return "oom";
  }
  return "?";
}

absl::StatusOr<Injection> ParseInjection(absl::string_view name) {
  std::vector<std::string> names;
  for (Injection i : kAllInjections) {
    if (name == InjectionName(i)) return i;
    names.push_back(InjectionName(i));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown injection '", name, "' (one of ", absl::StrJoin(names, ", "), ")"));
}

void RunWorker(const WorkerSpec& spec, int control_fd) {
  prctl(PR_SET_NAME, spec.comm.c_str(), 0, 0, 0);
  // Ctrl-C reaches the whole foreground process group: only the demo acts on it, and it stops
  // the workers itself after cleaning up.
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_DFL);
  signal(SIGHUP, SIG_DFL);
  signal(SIGPIPE, SIG_DFL);
  fcntl(control_fd, F_SETFL, fcntl(control_fd, F_GETFL) | O_NONBLOCK);
  Worker(spec, control_fd).Run();
}

}  // namespace procscope::demo
