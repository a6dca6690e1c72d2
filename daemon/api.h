// SPDX-License-Identifier: Apache-2.0
// The v1 API's documents as pure functions of a Snapshot (no locks, no HTTP): the HTTP handlers
// and `procscope top --standalone` both build their messages here. docs/http.md has the schema.
#ifndef PROCSCOPE_DAEMON_API_H_
#define PROCSCOPE_DAEMON_API_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "exits.h"
#include "metrics.h"
#include "procscope.pb.h"
#include "profile_store.h"
#include "snapshot.h"

namespace procscope {

// /api/v1/processes: every live process with its totals and its rates over the offender window.
v1::ProcessList BuildProcessList(const Snapshot& s);
// /api/v1/offenders.
v1::OffenderList BuildOffenderList(const Snapshot& s);
// /api/v1/status at `now`; `self` is the snapshot's SelfState with the live counters merged in.
v1::DaemonStatus BuildStatus(const Snapshot& s, const SelfState& self, absl::Time now);
// /api/v1/events as a message (the handler streams the same document with EventListJson).
v1::EventList BuildEventList(const std::vector<SharedExitEvent>& events);

// The per-counter fields of a v1::Process (cpu_seconds, minor_faults, read_bytes, ...).
void SetProcessCounters(const ProcessInfo& p, v1::Process* out);

// /api/v1/events?limit=N&failed=B, checked: limit 1..kMaxEventsLimit (default 100) and at most
// what memory holds (`events_in_memory` newest exits plus as many failed ones).
struct EventQuery {
  size_t limit = 100;
  bool failed = false;
};
inline constexpr size_t kMaxEventsLimit = 1000000;
absl::StatusOr<EventQuery> ParseEventQuery(absl::string_view query, size_t events_in_memory);

// /debug/pprof/profile and /debug/pprof/offcpu: seconds=N (1..history, default 30), pid=P,
// group=G, format=pprof|folded. Any other parameter, or a bad value, is a one-line error.
struct ProfileRequest {
  ProfileQuery query;
  bool folded = false;
};
absl::StatusOr<ProfileRequest> ParseProfileRequest(absl::string_view query, bool offcpu,
                                                   absl::Duration history);

// A message as the API serves it: original field names, zero fields present, one line and a
// newline. Strings that are not UTF-8 are repaired first (the conversion would fail).
std::string ToJson(const google::protobuf::Message& m);

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_API_H_
