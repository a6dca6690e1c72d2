// SPDX-License-Identifier: Apache-2.0
// Least privilege: once the collector is loaded and attached, the port bound and the journal
// open, procscoped keeps only the capabilities its steady state needs (docs/deploy.md: the start
// set and the run set, and how they were measured).
#ifndef PROCSCOPE_DAEMON_PRIVILEGES_H_
#define PROCSCOPE_DAEMON_PRIVILEGES_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace procscope {

// A set of capabilities, bit N for capability N (CAP_SYS_PTRACE = 19, ...).
using CapMask = uint64_t;
constexpr CapMask CapBit(int cap) { return CapMask{1} << cap; }

// What the running daemon needs (measured, tests/integration/privileges_test.sh): only
// CAP_SYS_PTRACE, for /proc/<pid>/exe of other users' (and more privileged) processes. Reading
// and iterating the BPF maps, the ring buffer, the programs' run-time stats and /proc/<pid>/
// status and cgroup need none; nor the journal (its directory is the daemon's own).
constexpr CapMask kRunCapabilities = CapBit(19);

// "sys_ptrace,bpf" or "CAP_SYS_PTRACE CAP_BPF" (commas or spaces, case ignored) -> mask; "" is
// the empty set.
absl::StatusOr<CapMask> ParseCapabilities(absl::string_view list);

// "cap_bpf,cap_sys_ptrace" (lower case, setpriv's spelling); "" for none.
std::string FormatCapabilities(CapMask caps);

struct PrivilegeState {
  CapMask effective = 0, permitted = 0, inheritable = 0, bounding = 0, ambient = 0;
  bool no_new_privs = false;
};

// The calling thread's state, from /proc/thread-self/status.
absl::StatusOr<PrivilegeState> CurrentPrivileges();

// In every thread of the process: sets no_new_privs, clears the ambient and inheritable sets,
// drops from the bounding set every capability not in `keep` (when CAP_SETPCAP allows; else it
// stays as granted, which no_new_privs makes unusable), and leaves effective = permitted =
// keep & permitted. Then checks every thread's /proc status and fails if one differs.
// Returns the state reached.
absl::StatusOr<PrivilegeState> DropPrivileges(CapMask keep);

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_PRIVILEGES_H_
