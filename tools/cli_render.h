// SPDX-License-Identifier: Apache-2.0
// What `procscope` prints, as pure functions of the daemon's protobuf messages: the top view,
// the events list (and the --follow de-duplication), the status page, and their JSON documents.
// Every string that came from a process (comm, group, exe, reason) goes through
// EscapeForDisplay before it reaches a terminal, so no process name can break a table line or
// send escape sequences; JSON output is valid UTF-8 (the daemon's strings already are).
#ifndef PROCSCOPE_TOOLS_CLI_RENDER_H_
#define PROCSCOPE_TOOLS_CLI_RENDER_H_

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cli_options.h"
#include "procscope.pb.h"
#include "text.h"

namespace procscope::cli {

struct RenderOptions {
  bool color = false;
  int num_cpus = 1;                         // for shares of cpu and run-queue wait
  size_t width = 0;                         // cut lines at this many columns; 0: never (not watch)
  size_t height = 0;                        // at most this many lines; 0: no limit
  absl::TimeZone tz = absl::UTCTimeZone();  // for the clock and event times
};

// SGR codes.
inline constexpr char kBold[] = "1";
inline constexpr char kRedBold[] = "1;31";
inline constexpr char kYellow[] = "33";
inline constexpr char kDim[] = "2";
// `text` wrapped in the SGR code when colour is on, else unchanged.
std::string Paint(absl::string_view text, const char* sgr, bool color);

// A table cell: EscapeForDisplay'd, cut to `width` (the last kept char becomes '~') and padded.
std::string Cell(absl::string_view raw, size_t width);
// Human units (bytes: HumanBytes in common/text.h): durations "0.004s", "12.3s", "5m03s",
// "2h01m", "3d04h"; shares "50.0%" ("-" when negative: not meaningful).
std::string HumanDuration(double seconds);
std::string Percent(double share);
// A rate in the unit the daemon names ("cores", "bytes/s", "faults/s", "crashes/min").
std::string FormatRate(double rate, absl::string_view unit);

// Shortened container id (12 characters, like docker ps), "-" when none.
std::string ShortContainer(absl::string_view id);

// A protobuf message as JSON the way the daemon serves it (original field names, zero fields
// present, 64-bit integers as strings), one line.
std::string MessageJson(const google::protobuf::Message& m);
// A JSON string literal of `s` (made valid UTF-8 first).
std::string JsonString(absl::string_view s);

// ---------------------------------------------------------------------------------------------
// top

// What the top view is drawn from: the daemon's /api/v1/offenders and /api/v1/processes.
struct TopData {
  v1::OffenderList offenders;
  v1::ProcessList processes;
  absl::Time taken;
  std::string source;  // "127.0.0.1:9750" or "standalone, 10s"
};

// A process's rate of the sort key (the daemon's field), and its unit.
double RateOf(const v1::Process& p, SortKey k);
const char* UnitOf(SortKey k);
// The `limit` processes with the highest rate of `k`, ties by cpu then pid.
std::vector<v1::Process> TopProcesses(const v1::ProcessList& list, SortKey k, size_t limit);
// A process's share of the machine for `k`: cpu and runq over all CPUs (`num_cpus`); mem,
// faults and io over the total of all processes (`total`). -1 when the total is 0.
double ShareOf(double rate, SortKey k, int num_cpus, double total);
double TotalOf(const v1::ProcessList& list, SortKey k);

std::string RenderTop(const TopData& d, SortKey sort, size_t limit, const RenderOptions& o);

// {"generated_unix_ns": "...", "source": "...", "sort": "cpu", "limit": 10, "num_cpus": 2,
//  "offenders": OffenderList, "processes": [Process, ...]} (sorted and limited), one line.
std::string TopJson(const TopData& d, SortKey sort, size_t limit, int num_cpus);

// ---------------------------------------------------------------------------------------------
// events

bool IsFailure(const v1::ExitEvent& e);  // any outcome but SUCCESS

// A header line, then one line per event, in the order given.
std::string EventsHeader(const RenderOptions& o);
std::string EventLine(const v1::ExitEvent& e, const RenderOptions& o);
std::string RenderEvents(const std::vector<v1::ExitEvent>& events, const RenderOptions& o);

// --follow: the daemon serves the newest events first, a window that slides as exits come.
// Update returns the events of a new reply that were not in the previous one, oldest first
// (an exit is pid + start time). What left the window can never come back into it, so only the
// previous reply's keys need remembering.
class EventFollower {
 public:
  std::vector<v1::ExitEvent> Update(const v1::EventList& newest_first);
  // True when the last Update found nothing it had seen before in a full reply of `requested`
  // events: more exits happened since the poll before than one reply holds.
  bool MaybeMissed(size_t requested) const;

 private:
  using Key = std::pair<uint32_t, int64_t>;
  std::set<Key> seen_;
  bool primed_ = false;
  bool all_new_ = false;
  size_t last_size_ = 0;
};

// ---------------------------------------------------------------------------------------------
// status

struct StatusData {
  std::string source;
  int healthz_code = 0;
  std::string healthz_body;
  int readyz_code = 0;
  std::string readyz_body;
  v1::DaemonStatus status;
};
std::string RenderStatus(const StatusData& d, const RenderOptions& o);
// {"source": "...", "healthz": {"code": 200, "body": "ok"}, "readyz": {"code": 200, "body":
//  "ready"}, "status": DaemonStatus}, one line.
std::string StatusJson(const StatusData& d);

}  // namespace procscope::cli

#endif  // PROCSCOPE_TOOLS_CLI_RENDER_H_
