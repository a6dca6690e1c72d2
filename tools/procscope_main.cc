// SPDX-License-Identifier: Apache-2.0
// procscope: the command-line client of procscoped (top, events, tree, status), and a standalone
// one-shot `top` that runs the collector itself. Flags are parsed here only, into checked
// Options; the commands and their loops are in cli_commands.cc, and everything that decides or
// draws in cli_*.cc, which the unit tests cover.
#include <cstdio>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cli_commands.h"
#include "cli_options.h"
#include "cli_standalone.h"
#include "cli_terminal.h"
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
ABSL_FLAG(bool, standalone, false,
          "top, profile: run the BPF collector here for --duration (root)");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10),
          "top --standalone: how long to measure; profile: the window");
ABSL_FLAG(bool, follow, false, "events: keep polling and print new events until Ctrl-C");
ABSL_FLAG(bool, failed, false, "events: only exits that were not a success");
ABSL_FLAG(bool, all, false, "tree: do not fold idle siblings with the same name");
ABSL_FLAG(int, pid, 0, "profile: only this process");
ABSL_FLAG(std::string, group, "", "profile: only this group");
ABSL_FLAG(bool, offcpu, false, "profile: time off the CPU (blocked, asleep) instead of on it");
ABSL_FLAG(bool, folded, false, "profile: folded stacks (flamegraph.pl input)");
ABSL_FLAG(std::string, pprof, "", "profile: write the gzipped pprof profile to this file");

namespace procscope::cli {
namespace {

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
      fprintf(
          stderr,
          "procscope: the command comes first: procscope top|events|tree|status|profile [flags] "
          "(see procscope --help)\n");
    } else {
      fprintf(stderr,
              "procscope: unknown command '%s': expected top, events, tree, status or profile (see "
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
  v.pid = absl::GetFlag(FLAGS_pid);
  v.group = absl::GetFlag(FLAGS_group);
  v.offcpu = absl::GetFlag(FLAGS_offcpu);
  v.folded = absl::GetFlag(FLAGS_folded);
  v.pprof_file = absl::GetFlag(FLAGS_pprof);
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
  cli::TerminalIo io(*options,
                     [](absl::Duration d) { return cli::CollectStandalone(d, cli::g_stop); });
  io.set_standalone_profile([](absl::Duration d, absl::string_view path) {
    return cli::ProfileStandalone(d, path, cli::g_stop);
  });
  return cli::RunCommand(*options, cli::RenderOptionsForTerminal(*options), io);
}
