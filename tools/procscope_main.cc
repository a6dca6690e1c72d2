// SPDX-License-Identifier: Apache-2.0
// procscope: the command-line client of procscoped (top, events, tree, status), and a standalone
// one-shot `top` that runs the collector itself. Flags are parsed here only; everything that
// decides or draws lives in cli_*.cc, which the unit tests cover.
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "cli_http.h"
#include "cli_options.h"
#include "cli_render.h"
#include "cli_standalone.h"
#include "cli_terminal.h"
#include "cli_tree.h"
#include "flags_util.h"
#include "records.h"

ABSL_FLAG(std::string, endpoint, procscope::cli::kDefaultEndpoint,
          "Where procscoped serves its API: HOST:PORT, [IPv6]:PORT or :PORT");
ABSL_FLAG(std::string, ca_file, "", "https:// endpoint: the CA certificate (PEM) to trust");
ABSL_FLAG(std::string, user, "", "Basic auth user (the password comes from --password_file)");
ABSL_FLAG(std::string, password_file, "", "Basic auth: a file whose first line is the password");
ABSL_FLAG(std::string, cert_file, "", "https:// endpoint: client certificate (PEM)");
ABSL_FLAG(std::string, key_file, "", "https:// endpoint: the client certificate's key (PEM)");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(5), "Give up on one request after this long");
ABSL_FLAG(bool, json, false, "Print one JSON document instead of a table (schema: docs/cli.md)");
ABSL_FLAG(procscope::cli::ColorMode, color, procscope::cli::ColorMode::kAuto,
          "Colours: auto (only on a terminal), always or never");
ABSL_FLAG(procscope::cli::SortKey, sort, procscope::cli::SortKey::kCpu,
          "top: sort by cpu, runq, mem, faults or io");
ABSL_FLAG(int, limit, procscope::cli::kDefaultLimit, "top: processes shown; events: events shown");
ABSL_FLAG(bool, watch, false, "top: refresh in place every --interval until q or Ctrl-C");
ABSL_FLAG(absl::Duration, interval, absl::Seconds(2), "top --watch / events --follow: period");
ABSL_FLAG(bool, standalone, false, "top: run the BPF collector here for --duration (root)");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "top --standalone: how long to measure");
ABSL_FLAG(bool, follow, false, "events: keep polling and print new events until Ctrl-C");
ABSL_FLAG(bool, failed, false, "events: only exits that were not a success");
ABSL_FLAG(bool, all, false, "tree: do not fold idle siblings with the same name");

namespace procscope::cli {
namespace {

const char* const kRunHint = "; is it running? start it with scripts/run.sh";

// A runtime error as one line. An unreachable daemon gets the hint of what to do.
int Fail(const Options& o, const absl::Status& s) {
  std::string msg(s.message());
  if (s.code() == absl::StatusCode::kUnavailable && !o.standalone) {
    msg += kRunHint;
    msg += o.command == Command::kTop ? ", or use --standalone"
                                      : " (or try procscope top --standalone)";
  }
  absl::StrReplaceAll({{"\n", " "}}, &msg);
  fprintf(stderr, "procscope: %s\n", msg.c_str());
  return 1;
}

// False once stdout is gone (a closed pipe: SIGPIPE is ignored), so that loops can stop.
bool Print(const std::string& s) {
  fwrite(s.data(), 1, s.size(), stdout);
  return fflush(stdout) == 0 && !ferror(stdout);
}

// Sleeps `d`, returning early when Ctrl-C (g_stop) arrives.
void Nap(absl::Duration d) {
  const absl::Time until = absl::Now() + d;
  while (!g_stop.load() && absl::Now() < until) {
    poll(nullptr, 0,
         static_cast<int>(std::max<int64_t>(absl::ToInt64Milliseconds(until - absl::Now()), 1)));
  }
}

RenderOptions RenderOptionsFor(const Options& o) {
  RenderOptions r;
  r.color = UseColor(o.color, isatty(STDOUT_FILENO), getenv("TERM"), getenv("NO_COLOR"));
  r.num_cpus = static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  r.tz = absl::LocalTimeZone();
  return r;
}

template <typename M>
absl::StatusOr<M> Fetch(const Options& o, absl::string_view path, absl::string_view what) {
  auto body = HttpGet(o.endpoint, path, o.timeout);
  if (!body.ok()) return body.status();
  M msg;
  if (absl::Status s = ParseJson(*body, &msg, absl::StrCat(what, " from ", o.endpoint.ToString()));
      !s.ok()) {
    return s;
  }
  return msg;
}

absl::StatusOr<TopData> FetchTop(const Options& o) {
  TopData d;
  auto offenders = Fetch<v1::OffenderList>(o, "/api/v1/offenders", "offenders");
  if (!offenders.ok()) return offenders.status();
  auto processes = Fetch<v1::ProcessList>(o, "/api/v1/processes", "processes");
  if (!processes.ok()) return processes.status();
  d.offenders = *std::move(offenders);
  d.processes = *std::move(processes);
  d.taken = absl::Now();
  d.source = o.endpoint.ToString();
  return d;
}

int Watch(const Options& o, RenderOptions r) {
  // The first fetch decides: a daemon that is not there is an error, not an empty screen.
  auto first = FetchTop(o);
  if (!first.ok()) return Fail(o, first.status());
  WatchTerminal term(STDIN_FILENO);
  absl::StatusOr<TopData> data = *std::move(first);
  while (!g_stop.load()) {
    const TermSize size = TerminalSize(STDOUT_FILENO);
    r.width = size.cols > 0 ? size.cols : 0;
    r.height = size.rows > 1 ? size.rows - 1 : 0;  // the last row holds the key help
    std::string frame;
    if (data.ok()) {
      frame = RenderTop(*data, o.sort, o.limit, r);
    } else {
      std::string err(data.status().message());
      for (char& c : err) {
        if (c == '\n') c = ' ';
      }
      frame = absl::StrCat(
          Paint(absl::StrCat("procscope top  ", absl::FormatTime("%H:%M:%S", absl::Now(), r.tz)),
                kBold, r.color),
          "\n\n", Paint(EscapeForDisplay(err), kRedBold, r.color), "\nretrying every ",
          absl::FormatDuration(o.interval), "\n");
    }
    std::string footer =
        absl::StrCat("q quits, any other key refreshes; every ", absl::FormatDuration(o.interval),
                     ", sorted by ", SortKeyName(o.sort));
    if (r.width > 0 && footer.size() > r.width) footer.resize(r.width);
    // Home, each line cleared to its end, the rest of the screen cleared: no flicker.
    if (!Print(absl::StrCat("\x1b[H", absl::StrReplaceAll(frame, {{"\n", "\x1b[K\n"}}), "\x1b[J",
                            Paint(footer, kDim, r.color)))) {
      break;
    }
    const std::optional<char> key = term.WaitKey(o.interval);
    if (key && (*key == 'q' || *key == 'Q')) break;
    if (g_stop.load()) break;
    data = FetchTop(o);
  }
  return 0;
}

int RunTop(const Options& o) {
  RenderOptions r = RenderOptionsFor(o);
  if (o.watch) return Watch(o, r);
  absl::StatusOr<TopData> data;
  if (o.standalone) {
    if (isatty(STDERR_FILENO)) {
      fprintf(stderr, "procscope: measuring this machine for %s (Ctrl-C stops early)...\n",
              absl::FormatDuration(o.duration).c_str());
    }
    data = CollectStandalone(o.duration, g_stop);
  } else {
    data = FetchTop(o);
  }
  if (!data.ok()) return Fail(o, data.status());
  Print(o.json ? TopJson(*data, o.sort, o.limit, r.num_cpus)
               : RenderTop(*data, o.sort, o.limit, r));
  return 0;
}

absl::StatusOr<v1::EventList> FetchEvents(const Options& o, int limit) {
  // The daemon filters failures itself, from a ring that successes cannot push them out of.
  return Fetch<v1::EventList>(
      o, absl::StrCat("/api/v1/events?limit=", limit, o.failed ? "&failed=true" : ""), "events");
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

int RunEvents(const Options& o) {
  const RenderOptions r = RenderOptionsFor(o);
  const int fetch = o.limit;
  if (!o.follow) {
    auto list = FetchEvents(o, fetch);
    if (!list.ok()) return Fail(o, list.status());
    const std::vector<v1::ExitEvent> shown = Select(o, *list, o.limit);
    if (o.json) {
      v1::EventList out;
      for (const v1::ExitEvent& e : shown) *out.add_events() = e;
      Print(MessageJson(out) + "\n");
    } else {
      Print(RenderEvents(shown, r));
    }
    return 0;
  }

  // --follow: oldest first, new ones appended as they come, like tail -f.
  const int poll_limit = std::max(fetch, 200);
  auto list = FetchEvents(o, poll_limit);
  if (!list.ok()) return Fail(o, list.status());
  EventFollower follower;
  follower.Update(*list);
  std::vector<v1::ExitEvent> shown = Select(o, *list, o.limit);
  std::reverse(shown.begin(), shown.end());
  auto emit = [&](const v1::ExitEvent& e) {
    if (!Print(o.json ? MessageJson(e) + "\n" : EventLine(e, r))) g_stop = true;
  };
  if (!o.json) Print(EventsHeader(r));
  for (const v1::ExitEvent& e : shown) emit(e);
  bool failing = false;
  while (!g_stop.load()) {
    Nap(o.interval);
    if (g_stop.load()) break;
    list = FetchEvents(o, poll_limit);
    if (!list.ok()) {
      if (!failing) {
        fprintf(stderr, "procscope: %s; retrying every %s\n",
                std::string(list.status().message()).c_str(),
                absl::FormatDuration(o.interval).c_str());
      }
      failing = true;
      continue;
    }
    if (failing) fprintf(stderr, "procscope: reconnected to %s\n", o.endpoint.ToString().c_str());
    failing = false;
    const std::vector<v1::ExitEvent> fresh = follower.Update(*list);
    if (follower.MaybeMissed(poll_limit)) {
      fprintf(stderr, "procscope: more than %d exits since the last poll; some are not shown\n",
              poll_limit);
    }
    for (const v1::ExitEvent& e : fresh) {
      if (!o.failed || IsFailure(e)) emit(e);
    }
  }
  return 0;
}

int RunTree(const Options& o) {
  const RenderOptions r = RenderOptionsFor(o);
  auto data = FetchTop(o);
  if (!data.ok()) return Fail(o, data.status());
  const ProcessTree tree = BuildTree(data->processes, data->offenders);
  Print(o.json ? TreeJson(tree, data->taken, data->source)
               : RenderTree(tree, data->taken, data->source, o.all, r));
  return 0;
}

int RunStatus(const Options& o) {
  StatusData d;
  d.source = o.endpoint.ToString();
  auto healthz = HttpGetReply(o.endpoint, "/healthz", o.timeout);
  if (!healthz.ok()) return Fail(o, healthz.status());
  // procscoped answers 200 or 503; anything else is some other server (or a proxy).
  if (healthz->status != 200 && healthz->status != 503) {
    return Fail(
        o, absl::FailedPreconditionError(absl::StrCat(d.source, " answered ", healthz->status,
                                                      " to GET /healthz (is it procscoped?)")));
  }
  d.healthz_code = healthz->status;
  d.healthz_body = healthz->body;
  auto readyz = HttpGetReply(o.endpoint, "/readyz", o.timeout);
  if (!readyz.ok()) return Fail(o, readyz.status());
  d.readyz_code = readyz->status;
  d.readyz_body = readyz->body;
  auto status = Fetch<v1::DaemonStatus>(o, "/api/v1/status", "status");
  if (!status.ok()) return Fail(o, status.status());
  d.status = *std::move(status);
  Print(o.json ? StatusJson(d) : RenderStatus(d, RenderOptionsFor(o)));
  return d.healthz_code == 200 ? 0 : 1;
}

bool IsHelp(absl::string_view a) {
  return a == "-h" || a == "--help" || a == "-help" || a == "--helpfull" || a == "-helpfull" ||
         a == "--helpshort" || a == "-helpshort" || a == "help";
}

}  // namespace
}  // namespace procscope::cli

int main(int argc, char** argv) {
  namespace cli = procscope::cli;
  absl::SetProgramUsageMessage(cli::MainHelp());
  if (argc < 2) {
    fputs(cli::MainHelp().c_str(), stderr);
    return 2;
  }
  const absl::string_view first = argv[1];
  if (cli::IsHelp(first)) {
    fputs(cli::MainHelp().c_str(), stdout);
    return 0;
  }
  if (first == "--version" || first == "-version" || first == "version") {
    printf("procscope %s\n", PROCSCOPE_VERSION);
    return 0;
  }
  const std::optional<cli::Command> command = cli::ParseCommand(first);
  if (!command) {
    if (absl::StartsWith(first, "-")) {
      fprintf(stderr,
              "procscope: the command comes first: procscope top|events|tree|status [flags] "
              "(see procscope --help)\n");
    } else {
      fprintf(stderr,
              "procscope: unknown command '%s': expected top, events, tree or status (see "
              "procscope --help)\n",
              procscope::EscapeForDisplay(first).c_str());
    }
    return 2;
  }
  for (int i = 2; i < argc && absl::string_view(argv[i]) != "--"; ++i) {
    if (cli::IsHelp(argv[i]) && absl::string_view(argv[i]) != "help") {
      fputs(cli::CommandHelp(*command).c_str(), stdout);
      return 0;
    }
  }

  // Parse the flags after the command, as if "procscope top" were the program.
  const std::string program = absl::StrCat("procscope ", cli::CommandName(*command));
  std::vector<char*> args = {const_cast<char*>(program.c_str())};
  for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
  const std::set<std::string> given =
      procscope::FlagNamesInArgv(static_cast<int>(args.size()), args.data());
  std::vector<char*> rest =
      procscope::ParseFlagsOrExit(static_cast<int>(args.size()), args.data(), program.c_str());
  if (rest.size() > 1) {
    fprintf(stderr, "%s: unexpected argument '%s' (see %s --help)\n", program.c_str(),
            procscope::EscapeForDisplay(rest[1]).c_str(), program.c_str());
    return 2;
  }
  if (absl::Status s = cli::CheckFlagsForCommand(*command, given); !s.ok()) {
    fprintf(stderr, "%s: %s\n", program.c_str(), std::string(s.message()).c_str());
    return 2;
  }
  cli::FlagValues v;
  v.endpoint = absl::GetFlag(FLAGS_endpoint);
  v.timeout = absl::GetFlag(FLAGS_timeout);
  v.json = absl::GetFlag(FLAGS_json);
  v.color = absl::GetFlag(FLAGS_color);
  v.sort = absl::GetFlag(FLAGS_sort);
  v.limit = absl::GetFlag(FLAGS_limit);
  v.watch = absl::GetFlag(FLAGS_watch);
  v.interval = absl::GetFlag(FLAGS_interval);
  v.standalone = absl::GetFlag(FLAGS_standalone);
  v.duration = absl::GetFlag(FLAGS_duration);
  v.follow = absl::GetFlag(FLAGS_follow);
  v.failed = absl::GetFlag(FLAGS_failed);
  v.all = absl::GetFlag(FLAGS_all);
  v.ca_file = absl::GetFlag(FLAGS_ca_file);
  v.cert_file = absl::GetFlag(FLAGS_cert_file);
  v.key_file = absl::GetFlag(FLAGS_key_file);
  v.user = absl::GetFlag(FLAGS_user);
  v.password_file = absl::GetFlag(FLAGS_password_file);
  auto options = cli::MakeOptions(*command, v, given);
  if (!options.ok()) {
    fprintf(stderr, "%s: %s\n", program.c_str(), std::string(options.status().message()).c_str());
    return 2;
  }
  if (!options->password_file.empty()) {
    std::ifstream in(options->password_file);
    std::string password;
    if (!in || !std::getline(in, password)) {
      fprintf(stderr, "%s: --password_file=%s: cannot read it\n", program.c_str(),
              options->password_file.c_str());
      return 2;
    }
    if (!password.empty() && password.back() == '\r') password.pop_back();
    options->endpoint.password = std::move(password);
  }
  cli::InstallStopHandlers();
  switch (*command) {
    case cli::Command::kTop:
      return cli::RunTop(*options);
    case cli::Command::kEvents:
      return cli::RunEvents(*options);
    case cli::Command::kTree:
      return cli::RunTree(*options);
    case cli::Command::kStatus:
      return cli::RunStatus(*options);
  }
  return 1;
}
