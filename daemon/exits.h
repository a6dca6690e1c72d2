// SPDX-License-Identifier: Apache-2.0
// Exit events: classification, conversion to the public record, and a bounded in-memory store.
#ifndef PROCSCOPE_DAEMON_EXITS_H_
#define PROCSCOPE_DAEMON_EXITS_H_

#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "model.h"
#include "procscope.h"
#include "procscope.pb.h"

namespace procscope {

// SUCCESS (code 0), FAILURE (non-zero code), CRASHED (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT,
// SIGSYS, SIGTRAP), OOM_KILLED (the OOM killer chose it, whatever the signal), else SIGNALED.
v1::Outcome ClassifyExit(uint32_t wait_status, bool oom_killed);
// "success", "failure", "signaled", "crashed", "oom_killed": metric label values.
const char* OutcomeName(v1::Outcome o);

// What the daemon knows about the exiting process besides the kernel event.
struct ExitContext {
  std::string group;
  CgroupInfo cgroup;
  absl::Duration boot_to_unix;  // add to a boot-time instant to get Unix time
};

// The public record of one exit. The comm is made valid UTF-8 (invalid bytes become U+FFFD).
v1::ExitEvent MakeExitEvent(const ps_exit_event& e, const ExitContext& ctx);

// The newest `capacity` exit events, newest first. Thread-safe.
class ExitStore {
 public:
  explicit ExitStore(size_t capacity);
  void Add(v1::ExitEvent e);
  // Up to `limit` newest events (0: all), newest first.
  std::vector<v1::ExitEvent> Newest(size_t limit = 0) const;
  size_t size() const;

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::deque<v1::ExitEvent> events_;  // front: newest
};

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_EXITS_H_
