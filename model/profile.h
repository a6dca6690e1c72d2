// SPDX-License-Identifier: Apache-2.0
// Stacks as they cross from the collector (raw instruction pointers, drained from the BPF side)
// to the symbolizer and the profile store, and the frames the symbolizer makes of them.
#ifndef PROCSCOPE_MODEL_PROFILE_H_
#define PROCSCOPE_MODEL_PROFILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "procscope.h"

namespace procscope {

enum class StackKind : uint8_t {
  kOnCpu = PS_STACK_ONCPU,              // value: samples
  kOffCpuBlocked = PS_STACK_OFFCPU_BLOCKED,  // value: ns in uninterruptible sleep (D)
  kOffCpuSleep = PS_STACK_OFFCPU_SLEEP,      // value: ns in interruptible sleep (S)
};
inline constexpr int kNumStackKinds = PS_STACK_KINDS;
// "cpu", "blocked", "sleep" (the pprof `state` label and the API's names).
const char* StackKindName(StackKind k);

// One drained stack_counts entry with its stacks resolved to addresses.
struct RawStack {
  ps_key key{};
  uint32_t tid = 0;
  StackKind kind = StackKind::kOnCpu;
  uint64_t value = 0;  // samples (on-CPU) or ns (off-CPU, already scaled by the sampling ratio)
  std::vector<uint64_t> kernel_ips;  // innermost first; empty: none
  std::vector<uint64_t> user_ips;    // innermost first; empty: kernel thread, or the walk failed
  bool kernel_missing = false;       // the kernel stack could not be had (failed, expired)
  bool user_missing = false;         // the user stack could not be had (a task with an mm)
};

// A process that got its first stack entry (struct ps_profiled): read its mappings now.
struct ProfiledProcess {
  ps_key key{};
  uint32_t tid = 0;
  uint64_t cgroup_id = 0;
  std::string comm;  // raw bytes
};

// One symbolised frame.
struct Frame {
  std::string function;  // demangled; "" when no symbol covers the address
  std::string module;    // "[kernel]", "[ext4]" (a kernel module), or the ELF object's path
  uint64_t address = 0;  // the instruction pointer as sampled
  uint64_t offset = 0;   // within the module: the ELF virtual address for user frames
  bool kernel = false;
  // `function`, or "module_basename+0xoffset" when there is no symbol: never a wrong name.
  std::string Display() const;
};

}  // namespace procscope

#endif  // PROCSCOPE_MODEL_PROFILE_H_
