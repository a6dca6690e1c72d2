// SPDX-License-Identifier: Apache-2.0
// The demo's workers: started side by side, told what to inject, restarted when a crash or an
// OOM kill takes one down, and cleaned up (processes, temp files, cgroups) at the end.
#ifndef PROCSCOPE_TOOLS_DEMO_FLEET_H_
#define PROCSCOPE_TOOLS_DEMO_FLEET_H_

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "demo_worker.h"

namespace procscope::demo {

// Where the oom injection creates its cgroups (cgroup v1 memory controller).
inline constexpr char kMemoryCgroupRoot[] = "/sys/fs/cgroup/memory";
// Prefix of everything the demo leaves on the host while it runs: temp files
// (<io_dir>/procscope-demo.<demo pid>.<worker>.io) and cgroups (procscope-demo-<worker pid>).
inline constexpr char kArtifactPrefix[] = "procscope-demo";

struct Worker {
  std::string name;  // "alpha"
  std::string comm;  // "demo-alpha"
  pid_t pid = -1;
  int control_fd = -1;  // write end of its control pipe
  Injection injection = Injection::kNone;
  std::string cgroup;  // the memory cgroup it was moved to for oom, "" if none
  int restarts = 0;
  std::vector<pid_t> past_pids;  // earlier incarnations (crashed, OOM-killed)
};

// A worker that died and was started again.
struct Restart {
  std::string comm;
  pid_t old_pid = -1;
  pid_t new_pid = -1;  // -1 if it could not be restarted
  std::string how;     // "killed by SIGSEGV", "OOM-killed (SIGKILL)", "exited with code 1"
};

class Fleet {
 public:
  struct Options {
    std::string io_dir = "/var/tmp";
    uint64_t leak_cap_bytes = 1536 * kMiB;
  };

  // Forks demo-alpha, demo-beta and demo-gamma. The caller must be single-threaded.
  static absl::StatusOr<std::unique_ptr<Fleet>> Start(const Options& options);
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  std::vector<Worker>& workers() { return workers_; }
  // By name ("beta") or comm ("demo-beta"); nullptr if there is no such worker.
  Worker* Find(absl::string_view name);

  // Starts `what` in the worker (replacing what it did); Injection::kNone clears. oom first
  // moves the worker into its own memory cgroup with a kOomLimitBytes limit.
  absl::Status Inject(Worker& worker, Injection what);

  // Collects workers that died since the last call and starts each again under the same comm
  // (removing its temp file and cgroup). Call it often: it is also how a crash is noticed.
  std::vector<Restart> Reap();

  // Kills every worker and removes their temp files and cgroups. Idempotent.
  void Shutdown();

  // OK when the oom injection can run here: a writable cgroup v1 memory controller.
  static absl::Status CheckOomSupport();

  // Removes temp files and cgroups that earlier demos, since killed, left behind.
  static void SweepStale(const std::string& io_dir);

  // A reasonable cap on what memory_leak may hold: 1.5 GiB, or half of what is available.
  static uint64_t DefaultLeakCap();

 private:
  explicit Fleet(Options options) : options_(std::move(options)) {}
  absl::Status Spawn(Worker& worker);
  std::string IoPath(const Worker& worker) const;
  void RemoveCgroup(Worker& worker);

  Options options_;
  pid_t demo_pid_ = 0;
  std::vector<Worker> workers_;
  bool shut_down_ = false;
};

// Sleeps for `d` in short steps; false as soon as `stop` is set (a signal arrived).
bool Nap(absl::Duration d, const std::atomic<int>& stop);

// "SIGSEGV" for SIGSEGV.
std::string SignalName(int sig);

}  // namespace procscope::demo

#endif  // PROCSCOPE_TOOLS_DEMO_FLEET_H_
