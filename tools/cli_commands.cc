// SPDX-License-Identifier: Apache-2.0
#include "cli_commands.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "cli_tree.h"
#include "records.h"

namespace procscope::cli {
namespace {

const char* const kRunHint = "; is it running? start it with scripts/run.sh";

// A runtime error as one line. An unreachable daemon gets the hint of what to do.
int Fail(const Options& o, const absl::Status& s, CommandIo& io) {
  std::string msg(s.message());
  if (s.code() == absl::StatusCode::kUnavailable && !o.standalone) {
    msg += kRunHint;
    msg += o.command == Command::kTop ? ", or use --standalone"
                                      : " (or try procscope top --standalone)";
  }
  absl::StrReplaceAll({{"\n", " "}}, &msg);
  io.Err(absl::StrCat("procscope: ", msg));
  return 1;
}

template <typename M>
absl::StatusOr<M> Fetch(const Options& o, CommandIo& io, absl::string_view path,
                        absl::string_view what) {
  auto body = OkBody(o.endpoint, path, io.Get(path));
  if (!body.ok()) return body.status();
  M msg;
  if (absl::Status s = ParseJson(*body, &msg, absl::StrCat(what, " from ", o.endpoint.ToString()));
      !s.ok()) {
    return s;
  }
  return msg;
}

absl::StatusOr<TopData> FetchTop(const Options& o, CommandIo& io) {
  TopData d;
  auto offenders = Fetch<v1::OffenderList>(o, io, "/api/v1/offenders", "offenders");
  if (!offenders.ok()) return offenders.status();
  auto processes = Fetch<v1::ProcessList>(o, io, "/api/v1/processes", "processes");
  if (!processes.ok()) return processes.status();
  d.offenders = *std::move(offenders);
  d.processes = *std::move(processes);
  d.taken = io.Now();
  d.source = o.endpoint.ToString();
  return d;
}

absl::StatusOr<v1::EventList> FetchEvents(const Options& o, CommandIo& io, int limit) {
  // The daemon filters failures itself, from a ring that successes cannot push them out of.
  return Fetch<v1::EventList>(
      o, io, absl::StrCat("/api/v1/events?limit=", limit, o.failed ? "&failed=true" : ""),
      "events");
}

// The events to show of a reply (newest first): the failed ones only with --failed.
std::vector<v1::ExitEvent> Select(const Options& o, const v1::EventList& list, size_t limit) {
  std::vector<v1::ExitEvent> out;
  for (const v1::ExitEvent& e : list.events()) {
    if (out.size() >= limit) break;
    if (!o.failed || IsFailure(e)) out.push_back(e);
  }
  return out;
}

// One frame of top --watch: the table, or the error and that it retries.
std::string WatchFrame(const Options& o, const RenderOptions& r,
                       const absl::StatusOr<TopData>& data, absl::Time now) {
  if (data.ok()) return RenderTop(*data, o.sort, o.limit, r);
  std::string err(data.status().message());
  for (char& c : err) {
    if (c == '\n') c = ' ';
  }
  return absl::StrCat(
      Paint(absl::StrCat("procscope top  ", absl::FormatTime("%H:%M:%S", now, r.tz)), kBold,
            r.color),
      "\n\n", Paint(EscapeForDisplay(err), kRedBold, r.color), "\nretrying every ",
      absl::FormatDuration(o.interval), "\n");
}

}  // namespace

TerminalIo::TerminalIo(const Options& o,
                       std::function<absl::StatusOr<TopData>(absl::Duration)> standalone)
    : endpoint_(o.endpoint), timeout_(o.timeout), standalone_(std::move(standalone)) {}

TerminalIo::~TerminalIo() = default;

absl::StatusOr<HttpReply> TerminalIo::Get(absl::string_view path) {
  return HttpGetReply(endpoint_, path, timeout_);
}

absl::Time TerminalIo::Now() { return absl::Now(); }

void TerminalIo::Nap(absl::Duration d) {
  const absl::Time until = absl::Now() + d;
  while (!g_stop.load() && absl::Now() < until) {
    poll(nullptr, 0,
         static_cast<int>(std::max<int64_t>(absl::ToInt64Milliseconds(until - absl::Now()), 1)));
  }
}

void TerminalIo::EnterWatchScreen() { terminal_ = std::make_unique<WatchTerminal>(STDIN_FILENO); }

void TerminalIo::LeaveWatchScreen() { terminal_.reset(); }

std::optional<char> TerminalIo::WaitKey(absl::Duration d) {
  if (terminal_ == nullptr) {
    Nap(d);
    return std::nullopt;
  }
  return terminal_->WaitKey(d);
}

TermSize TerminalIo::Size() { return TerminalSize(STDOUT_FILENO); }

bool TerminalIo::Out(absl::string_view s) {
  fwrite(s.data(), 1, s.size(), stdout);
  return fflush(stdout) == 0 && !ferror(stdout);
}

void TerminalIo::Err(absl::string_view line) {
  fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
}

bool TerminalIo::Stopped() { return g_stop.load(); }

void TerminalIo::Stop() { g_stop = true; }

absl::StatusOr<TopData> TerminalIo::Standalone(absl::Duration d) {
  if (isatty(STDERR_FILENO)) {
    fprintf(stderr, "procscope: measuring this machine for %s (Ctrl-C stops early)...\n",
            absl::FormatDuration(d).c_str());
  }
  return standalone_(d);
}

absl::StatusOr<std::string> TerminalIo::StandaloneProfile(absl::Duration d,
                                                          absl::string_view path) {
  if (!standalone_profile_) return CommandIo::StandaloneProfile(d, path);
  if (isatty(STDERR_FILENO)) {
    fprintf(stderr, "procscope: profiling this machine for %s (Ctrl-C stops early)...\n",
            absl::FormatDuration(d).c_str());
  }
  return standalone_profile_(d, path);
}

RenderOptions RenderOptionsForTerminal(const Options& o) {
  RenderOptions r;
  r.color = UseColor(o.color, isatty(STDOUT_FILENO), getenv("TERM"), getenv("NO_COLOR"));
  r.num_cpus = static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  r.tz = absl::LocalTimeZone();
  return r;
}

int Watch(const Options& o, RenderOptions r, CommandIo& io) {
  // The first fetch decides: a daemon that is not there is an error, not an empty screen.
  auto first = FetchTop(o, io);
  if (!first.ok()) return Fail(o, first.status(), io);
  io.EnterWatchScreen();
  absl::StatusOr<TopData> data = *std::move(first);
  while (!io.Stopped()) {
    const TermSize size = io.Size();
    r.width = size.cols > 0 ? size.cols : 0;
    r.height = size.rows > 1 ? size.rows - 1 : 0;  // the last row holds the key help
    const std::string frame = WatchFrame(o, r, data, io.Now());
    std::string footer =
        absl::StrCat("q quits, any other key refreshes; every ", absl::FormatDuration(o.interval),
                     ", sorted by ", SortKeyName(o.sort));
    if (r.width > 0 && footer.size() > r.width) footer.resize(r.width);
    // Home, each line cleared to its end, the rest of the screen cleared: no flicker.
    if (!io.Out(absl::StrCat("\x1b[H", absl::StrReplaceAll(frame, {{"\n", "\x1b[K\n"}}), "\x1b[J",
                             Paint(footer, kDim, r.color)))) {
      break;
    }
    const std::optional<char> key = io.WaitKey(o.interval);
    if (key && (*key == 'q' || *key == 'Q')) break;
    if (io.Stopped()) break;
    data = FetchTop(o, io);
  }
  io.LeaveWatchScreen();
  return 0;
}

int RunTop(const Options& o, const RenderOptions& r, CommandIo& io) {
  if (o.watch) return Watch(o, r, io);
  absl::StatusOr<TopData> data = o.standalone ? io.Standalone(o.duration) : FetchTop(o, io);
  if (!data.ok()) return Fail(o, data.status(), io);
  io.Out(o.json ? TopJson(*data, o.sort, o.limit, r.num_cpus)
                : RenderTop(*data, o.sort, o.limit, r));
  return 0;
}

int RunEvents(const Options& o, const RenderOptions& r, CommandIo& io) {
  const int fetch = o.limit;
  if (!o.follow) {
    auto list = FetchEvents(o, io, fetch);
    if (!list.ok()) return Fail(o, list.status(), io);
    const std::vector<v1::ExitEvent> shown = Select(o, *list, o.limit);
    if (o.json) {
      v1::EventList out;
      for (const v1::ExitEvent& e : shown) *out.add_events() = e;
      io.Out(MessageJson(out) + "\n");
    } else {
      io.Out(RenderEvents(shown, r));
    }
    return 0;
  }

  // --follow: oldest first, new ones appended as they come, like tail -f.
  const int poll_limit = std::max(fetch, 200);
  auto list = FetchEvents(o, io, poll_limit);
  if (!list.ok()) return Fail(o, list.status(), io);
  EventFollower follower;
  follower.Update(*list);
  std::vector<v1::ExitEvent> shown = Select(o, *list, o.limit);
  std::reverse(shown.begin(), shown.end());
  auto emit = [&](const v1::ExitEvent& e) {
    if (!io.Out(o.json ? MessageJson(e) + "\n" : EventLine(e, r))) io.Stop();
  };
  if (!o.json) io.Out(EventsHeader(r));
  for (const v1::ExitEvent& e : shown) emit(e);
  bool failing = false;
  while (!io.Stopped()) {
    io.Nap(o.interval);
    if (io.Stopped()) break;
    list = FetchEvents(o, io, poll_limit);
    if (!list.ok()) {
      if (!failing) {
        io.Err(absl::StrCat("procscope: ", list.status().message(), "; retrying every ",
                            absl::FormatDuration(o.interval)));
      }
      failing = true;
      continue;
    }
    if (failing) io.Err(absl::StrCat("procscope: reconnected to ", o.endpoint.ToString()));
    failing = false;
    const std::vector<v1::ExitEvent> fresh = follower.Update(*list);
    if (follower.MaybeMissed(poll_limit)) {
      io.Err(absl::StrCat("procscope: more than ", poll_limit,
                          " exits since the last poll; some are not shown"));
    }
    for (const v1::ExitEvent& e : fresh) {
      if (!o.failed || IsFailure(e)) emit(e);
    }
  }
  return 0;
}

int RunTree(const Options& o, const RenderOptions& r, CommandIo& io) {
  auto data = FetchTop(o, io);
  if (!data.ok()) return Fail(o, data.status(), io);
  const ProcessTree tree = BuildTree(data->processes, data->offenders);
  io.Out(o.json ? TreeJson(tree, data->taken, data->source)
                : RenderTree(tree, data->taken, data->source, o.all, r));
  return 0;
}

int RunStatus(const Options& o, const RenderOptions& r, CommandIo& io) {
  StatusData d;
  d.source = o.endpoint.ToString();
  auto healthz = io.Get("/healthz");
  if (!healthz.ok()) return Fail(o, healthz.status(), io);
  // procscoped answers 200 or 503; anything else is some other server (or a proxy).
  if (healthz->status != 200 && healthz->status != 503) {
    return Fail(o,
                absl::FailedPreconditionError(absl::StrCat(d.source, " answered ", healthz->status,
                                                           " to GET /healthz (is it procscoped?)")),
                io);
  }
  d.healthz_code = healthz->status;
  d.healthz_body = healthz->body;
  auto readyz = io.Get("/readyz");
  if (!readyz.ok()) return Fail(o, readyz.status(), io);
  d.readyz_code = readyz->status;
  d.readyz_body = readyz->body;
  auto status = Fetch<v1::DaemonStatus>(o, io, "/api/v1/status", "status");
  if (!status.ok()) return Fail(o, status.status(), io);
  d.status = *std::move(status);
  io.Out(o.json ? StatusJson(d) : RenderStatus(d, r));
  return d.healthz_code == 200 ? 0 : 1;
}

int RunCommand(const Options& o, const RenderOptions& r, CommandIo& io) {
  switch (o.command) {
    case Command::kTop:
      return RunTop(o, r, io);
    case Command::kEvents:
      return RunEvents(o, r, io);
    case Command::kTree:
      return RunTree(o, r, io);
    case Command::kStatus:
      return RunStatus(o, r, io);
    case Command::kProfile:
      return RunProfile(o, r, io);
  }
  return 1;
}

}  // namespace procscope::cli
