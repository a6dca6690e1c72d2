// SPDX-License-Identifier: Apache-2.0
// Exit events: classification, conversion to the public record, and a bounded in-memory store.
#ifndef PROCSCOPE_DAEMON_EXITS_H_
#define PROCSCOPE_DAEMON_EXITS_H_

#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
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

// The public record of one exit. Every string is made valid UTF-8 (invalid bytes become U+FFFD).
v1::ExitEvent MakeExitEvent(const ps_exit_event& e, const ExitContext& ctx);

// proto3 strings must be valid UTF-8: an invalid one does not parse back, and libprotobuf logs
// an ERROR line each time it is serialised. These check and fix every string field of a message
// (singular, repeated, nested, map entries) with ToValidUtf8.
bool StringsAreValidUtf8(const google::protobuf::Message& m);
// Returns whether anything changed.
bool MakeStringsValidUtf8(google::protobuf::Message* m);

// Parses a serialized ExitEvent whose strings may be invalid UTF-8 (journals written before
// they were sanitised): those are repaired instead of failing the parse, and nothing is logged.
bool ParseExitEventLenient(absl::string_view bytes, v1::ExitEvent* out);

using SharedExitEvent = std::shared_ptr<const v1::ExitEvent>;

// The newest `capacity` exit events, newest first. Thread-safe. Readers share the events
// rather than copy them.
class ExitStore {
 public:
  explicit ExitStore(size_t capacity);
  void Add(v1::ExitEvent e);
  // Up to `limit` newest events (0: all), newest first.
  std::vector<SharedExitEvent> Newest(size_t limit = 0) const;
  size_t size() const;

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::deque<SharedExitEvent> events_;  // front: newest
};

// The JSON of a v1::EventList of `events` (as the API's ToJson prints it: original field names,
// zero fields present, one line), built one event at a time: its cost is the output, not an
// EventList copy plus the JSON converter's tree of all of them.
std::string EventListJson(const std::vector<SharedExitEvent>& events);

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_EXITS_H_
