// SPDX-License-Identifier: Apache-2.0
// A demo worker: a forked process with its own comm that does light steady work and, on command
// from its control pipe, misbehaves in one of the ways procscope is meant to catch.
#ifndef PROCSCOPE_TOOLS_DEMO_WORKER_H_
#define PROCSCOPE_TOOLS_DEMO_WORKER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace procscope::demo {

enum class Injection { kNone, kCpuSpike, kMemoryLeak, kIoHeavy, kCrash, kOom };

inline constexpr Injection kAllInjections[] = {Injection::kCpuSpike, Injection::kMemoryLeak,
                                               Injection::kIoHeavy, Injection::kCrash,
                                               Injection::kOom};

// "none", "cpu_spike", "memory_leak", "io_heavy", "crash", "oom".
const char* InjectionName(Injection i);
// One of the five injections (not "none"); the error lists them.
absl::StatusOr<Injection> ParseInjection(absl::string_view name);

// What each injection does (the rates are what the daemon's default minimums are compared with).
inline constexpr uint64_t kMiB = 1 << 20;
inline constexpr uint64_t kLeakBytesPerSecond = 16 * kMiB;  // memory_leak: touched, never freed
inline constexpr uint64_t kIoBytesPerSecond = 12 * kMiB;    // io_heavy: written and fsync'd
inline constexpr uint64_t kIoFileBytes = 64 * kMiB;         // io_heavy rewrites this much, cycling
inline constexpr uint64_t kOomLimitBytes = 64 * kMiB;       // oom: the memory cgroup's limit

struct WorkerSpec {
  std::string comm;             // e.g. "demo-alpha" (at most 15 bytes)
  std::string io_path;          // the file io_heavy writes; removed on clear and at exit
  uint64_t leak_cap_bytes = 0;  // memory_leak and oom never hold more than this
};

// The worker's main loop; reads one byte per command (the Injection's value) from `control_fd`
// and exits when the pipe reaches EOF (the demo is gone). Runs in the forked child only.
[[noreturn]] void RunWorker(const WorkerSpec& spec, int control_fd);

}  // namespace procscope::demo

#endif  // PROCSCOPE_TOOLS_DEMO_WORKER_H_
