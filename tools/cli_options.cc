// SPDX-License-Identifier: Apache-2.0
#include "cli_options.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace procscope::cli {
namespace {

constexpr const char* kCommonFlags[] = {"endpoint",      "timeout",   "json",
                                        "color",         "ca_file",   "user",
                                        "password_file", "cert_file", "key_file"};

std::vector<std::string> FlagsOf(Command c) {
  std::vector<std::string> f(std::begin(kCommonFlags), std::end(kCommonFlags));
  switch (c) {
    case Command::kTop:
      f.insert(f.end(), {"sort", "limit", "watch", "interval", "standalone", "duration"});
      break;
    case Command::kEvents:
      f.insert(f.end(), {"limit", "follow", "interval", "failed"});
      break;
    case Command::kTree:
      f.insert(f.end(), {"all"});
      break;
    case Command::kStatus:
      break;
    case Command::kProfile:
      f.insert(f.end(),
               {"pid", "group", "duration", "offcpu", "folded", "pprof", "standalone", "limit"});
      break;
  }
  return f;
}

absl::Status Usage(absl::string_view msg) { return absl::InvalidArgumentError(msg); }

bool ParsePort(absl::string_view s, int* port) {
  return !s.empty() && s.size() <= 5 && absl::SimpleAtoi(s, port) && *port >= 1 && *port <= 65535;
}

}  // namespace

std::string Endpoint::ToString() const {
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

std::string Endpoint::Url() const { return absl::StrCat(tls ? "https://" : "http://", ToString()); }

absl::StatusOr<Endpoint> ParseEndpoint(absl::string_view s) {
  const std::string original(s);
  auto bad = [&](absl::string_view why) {
    return Usage(absl::StrCat("--endpoint=", original, ": ", why,
                              " (expected HOST:PORT, e.g. 127.0.0.1:9750)"));
  };
  s = absl::StripAsciiWhitespace(s);
  Endpoint ep;
  absl::ConsumePrefix(&s, "http://");
  if (absl::ConsumePrefix(&s, "https://")) ep.tls = true;
  absl::ConsumeSuffix(&s, "/");
  if (s.empty()) return bad("empty");
  if (absl::StrContains(s, '/')) return bad("a path is not allowed");
  absl::string_view host = s, port;
  if (s.front() == '[') {
    const size_t close = s.find(']');
    if (close == absl::string_view::npos) return bad("unclosed '['");
    host = s.substr(1, close - 1);
    absl::string_view rest = s.substr(close + 1);
    if (!rest.empty() && !absl::ConsumePrefix(&rest, ":")) return bad("junk after ']'");
    port = rest;
    if (host.empty()) return bad("empty IPv6 address");
  } else if (const size_t colon = s.rfind(':'); colon != absl::string_view::npos) {
    if (s.find(':') != colon) return bad("an IPv6 address needs brackets: [::1]:9750");
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (port.empty()) return bad("empty port");
  }
  if (!port.empty() && !ParsePort(port, &ep.port)) return bad("port must be 1..65535");
  if (!host.empty()) ep.host = std::string(host);
  for (char ch : ep.host) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-' &&
        ch != ':' && ch != '_' && ch != '%') {
      return bad("bad character in the host");
    }
  }
  return ep;
}

absl::StatusOr<SortKey> ParseSortKey(absl::string_view s) {
  if (std::optional<SortKey> k = ValueOf(kSortKeyNames, s)) return *k;
  return Usage(absl::StrCat("--sort=", s, ": ", MustBeOneOf(kSortKeyNames)));
}

absl::StatusOr<ColorMode> ParseColorMode(absl::string_view s) {
  if (std::optional<ColorMode> m = ValueOf(kColorModeNames, s)) return *m;
  return Usage(absl::StrCat("--color=", s, ": ", MustBeOneOf(kColorModeNames)));
}

bool AbslParseFlag(absl::string_view text, SortKey* out, std::string* error) {
  return ParseEnumFlag(kSortKeyNames, text, out, error);
}
std::string AbslUnparseFlag(SortKey k) { return SortKeyName(k); }
bool AbslParseFlag(absl::string_view text, ColorMode* out, std::string* error) {
  return ParseEnumFlag(kColorModeNames, text, out, error);
}
std::string AbslUnparseFlag(ColorMode m) { return ColorModeName(m); }

bool UseColor(ColorMode mode, bool stdout_is_tty, const char* term_env, const char* no_color_env) {
  switch (mode) {
    case ColorMode::kAlways:
      return true;
    case ColorMode::kNever:
      return false;
    case ColorMode::kAuto:
      break;
  }
  if (no_color_env != nullptr && no_color_env[0] != '\0') return false;  // no-color.org
  if (term_env != nullptr && absl::string_view(term_env) == "dumb") return false;
  return stdout_is_tty;
}

absl::Status CheckFlagsForCommand(Command c, const std::set<std::string>& given) {
  const std::vector<std::string> allowed = FlagsOf(c);
  for (const std::string& name : given) {
    if (std::find(allowed.begin(), allowed.end(), name) != allowed.end()) continue;
    return Usage(absl::StrCat("--", name, " is not an option of '", CommandName(c),
                              "' (see procscope ", CommandName(c), " --help)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Options> MakeOptions(Command c, const FlagValues& v,
                                    const std::set<std::string>& given) {
  Options o;
  static_cast<PlainValues&>(o) = v;
  o.command = c;
  auto endpoint = ParseEndpoint(v.endpoint);
  if (!endpoint.ok()) return endpoint.status();
  o.endpoint = *endpoint;
  o.endpoint.ca_file = v.ca_file;
  o.endpoint.cert_file = v.cert_file;
  o.endpoint.key_file = v.key_file;
  o.endpoint.user = v.user;
  if (v.timeout < absl::Milliseconds(100) || v.timeout > absl::Minutes(10)) {
    return Usage(absl::StrCat("--timeout=", absl::FormatDuration(v.timeout),
                              ": must be between 100ms and 10m"));
  }
  if (v.limit < 1 || v.limit > 100000) {
    return Usage(absl::StrCat("--limit=", v.limit, ": must be between 1 and 100000"));
  }
  if (v.interval < absl::Milliseconds(100) || v.interval > absl::Hours(1)) {
    return Usage(absl::StrCat("--interval=", absl::FormatDuration(v.interval),
                              ": must be between 100ms and 1h"));
  }
  if (!o.endpoint.tls) {
    for (const char* f : {"ca_file", "cert_file", "key_file"}) {
      if (given.count(f)) {
        return Usage(absl::StrCat("--", f, " needs an https:// --endpoint (e.g. https://",
                                  o.endpoint.ToString(), ")"));
      }
    }
  }
  if (v.cert_file.empty() != v.key_file.empty()) {
    return Usage("--cert_file and --key_file go together (the client certificate and its key)");
  }
  if (v.user.empty() != v.password_file.empty()) {
    return Usage(
        "--user and --password_file go together (the password is read from the file, never "
        "from the command line)");
  }

  if (o.watch && o.json) {
    return Usage("--watch and --json do not go together (--json is one document; poll it instead)");
  }
  if (c == Command::kProfile) {
    if (v.pid < 0 || v.pid > 4194304) {
      return Usage(absl::StrCat("--pid=", v.pid, ": must be a process id (1..4194304)"));
    }
    if (v.pid != 0 && !v.group.empty()) {
      return Usage("--pid and --group do not go together (one process, or one group)");
    }
    if (given.count("group") && v.group.empty()) return Usage("--group: must not be empty");
    if (given.count("pprof") && v.pprof_file.empty()) {
      return Usage("--pprof=FILE: the file to write the profile to");
    }
    if (static_cast<int>(o.json) + static_cast<int>(o.folded) + (v.pprof_file.empty() ? 0 : 1) >
        1) {
      return Usage("--json, --folded and --pprof do not go together (one output)");
    }
    // The daemon keeps 10 minutes of history by default (--profile_history).
    if (o.duration < absl::Seconds(1) || o.duration > absl::Minutes(10)) {
      return Usage(absl::StrCat("--duration=", absl::FormatDuration(o.duration),
                                ": must be between 1s and 10m"));
    }
    if (o.standalone && given.count("endpoint")) {
      return Usage("--endpoint has no effect with --standalone (it measures this machine itself)");
    }
    return o;
  }
  if (o.standalone) {
    if (o.watch)
      return Usage("--watch and --standalone do not go together (a standalone run is one shot)");
    if (given.count("endpoint")) {
      return Usage("--endpoint has no effect with --standalone (it measures this machine itself)");
    }
    // The offender detector measures over a window of at least 5 s.
    if (o.duration < absl::Seconds(5) || o.duration > absl::Hours(1)) {
      return Usage(
          absl::StrCat("--duration=", absl::FormatDuration(o.duration),
                       ": must be between 5s and 1h (the offender window is at least 5s)"));
    }
  } else if (given.count("duration")) {
    return Usage("--duration applies only with --standalone");
  }
  if (given.count("interval") && c == Command::kTop && !o.watch) {
    return Usage("--interval applies only with --watch");
  }
  if (given.count("interval") && c == Command::kEvents && !o.follow) {
    return Usage("--interval applies only with --follow");
  }
  return o;
}

absl::Duration StandaloneWindow(absl::Duration duration) {
  return std::clamp(duration, absl::Seconds(5), absl::Seconds(30));
}

std::string MainHelp() {
  return absl::StrCat(
      "procscope: which process is hurting this machine, and how - a client of procscoped.\n"
      "\n"
      "Usage: procscope <command> [flags]\n"
      "\n"
      "Commands:\n"
      "  top      the offenders and the busiest processes (--watch: refresh like top;\n"
      "           --standalone: measure for --duration without a daemon, as root)\n"
      "  events   exits and crashes, newest first (--follow: print new ones as they come)\n"
      "  tree     the process tree with CPU, memory, faults and I/O per process\n"
      "  status   procscoped's health, version, BPF programs and their cost, drops, map fill\n"
      "  profile  where processes spend their CPU (or wait, --offcpu): the top functions,\n"
      "           folded stacks or a pprof file (--standalone: without a daemon, as root)\n"
      "\n"
      "Every command takes --endpoint=HOST:PORT (default ",
      kDefaultEndpoint,
      "), --json, --color=auto|always|never\n"
      "and --timeout; for a daemon with --web_config_file, --endpoint=https://HOST:PORT,\n"
      "--ca_file, --user with --password_file, --cert_file with --key_file.\n"
      "'procscope <command> --help' lists its flags.\n"
      "Exit codes: 0 ok, 1 runtime error (daemon not reachable, not root, ...), 2 usage error.\n");
}

std::string CommandHelp(Command c) {
  constexpr char kCommon[] =
      "  --endpoint=HOST:PORT   where procscoped serves its API (default 127.0.0.1:9750)\n"
      "  --timeout=5s           give up on a request after this long\n"
      "  --json                 print JSON instead of a table (valid UTF-8, schema in "
      "docs/cli.md)\n"
      "  --color=auto           auto (only on a terminal), always or never\n"
      "  --ca_file=FILE         https://: the CA that signed procscoped's certificate\n"
      "  --user=NAME            basic auth user (with --password_file)\n"
      "  --password_file=FILE   basic auth password, the file's first line\n"
      "  --cert_file=FILE       https://: client certificate (with --key_file)\n"
      "  --key_file=FILE        https://: the client certificate's key\n";
  switch (c) {
    case Command::kTop:
      return absl::StrCat(
          "Usage: procscope top [--sort=cpu] [--limit=10] [--watch [--interval=2s]]\n"
          "       procscope top --standalone [--duration=10s]   (as root, no daemon needed)\n"
          "\n"
          "The processes procscoped flags as offenders (resource, rate, share of the machine,\n"
          "the reason), then the busiest processes by one resource. Rates are over the daemon's\n"
          "offender window (30s by default).\n"
          "\n",
          kCommon,
          "  --sort=cpu             cpu, runq (run-queue wait), mem (resident-memory growth),\n"
          "                         faults (page faults) or io (block I/O)\n"
          "  --limit=10             processes in the table\n"
          "  --watch                refresh in place every --interval; q quits\n"
          "  --interval=2s          refresh period of --watch (100ms..1h)\n"
          "  --standalone           load the BPF collector here instead of asking procscoped\n"
          "  --duration=10s         how long --standalone measures (5s..1h)\n");
    case Command::kEvents:
      return absl::StrCat(
          "Usage: procscope events [--limit=10] [--failed] [--follow [--interval=2s]]\n"
          "\n"
          "Process exits and crashes, newest first: how each ended (signal, core dump, OOM kill,\n"
          "exit code) and how long it lived. --follow prints the last --limit oldest first, then\n"
          "each new one as it comes, until Ctrl-C.\n"
          "\n",
          kCommon,
          "  --limit=10             events shown (with --follow: before following)\n"
          "  --failed               only exits that were not a success\n"
          "  --follow               keep polling and print new events\n"
          "  --interval=2s          poll period of --follow\n");
    case Command::kTree:
      return absl::StrCat(
          "Usage: procscope tree [--all]\n"
          "\n"
          "Every live process under its parent, with CPU (cores), resident memory, page faults\n"
          "per second and block I/O per second; offenders are marked. A process whose parent is\n"
          "gone is shown at the root.\n"
          "\n",
          kCommon,
          "  --all                  list every process; by default more than 5 childless\n"
          "                         siblings with the same name are folded into one line with\n"
          "                         their totals, after the 3 busiest\n");
    case Command::kStatus:
      return absl::StrCat(
          "Usage: procscope status\n"
          "\n"
          "procscoped's health (/healthz, /readyz), version, uptime, processes tracked, BPF\n"
          "programs and their cost, kernel-side drops, map fill and degraded hooks. Exits 1 when\n"
          "the daemon reports itself unhealthy.\n"
          "\n",
          kCommon);
    case Command::kProfile:
      return absl::StrCat(
          "Usage: procscope profile [--pid=P | --group=G] [--duration=10s] [--offcpu]\n"
          "                         [--folded | --pprof=FILE | --json] [--limit=10]\n"
          "       procscope profile --standalone ...   (as root, no daemon needed)\n"
          "\n"
          "Waits --duration, then takes the last --duration of procscoped's profile history\n"
          "(/debug/pprof/profile, or /debug/pprof/offcpu with --offcpu) and prints the top\n"
          "functions: self (the innermost frame of a sample) and total (anywhere on its stack),\n"
          "as `pprof -top` does. On-CPU values are samples, off-CPU ones time blocked or asleep.\n"
          "\n",
          kCommon,
          "  --pid=P                one process (by default every process)\n"
          "  --group=G              one group (as procscoped groups processes, --group_by)\n"
          "  --duration=10s         the window (1s..10m)\n"
          "  --offcpu               time off the CPU (blocked in D state, or asleep) instead\n"
          "  --folded               folded stacks for flamegraph.pl: comm;outer;...;inner value\n"
          "  --pprof=FILE           write the gzipped pprof profile (go tool pprof FILE)\n"
          "  --limit=10             functions shown\n"
          "  --standalone           load the BPF collector here for --duration instead\n");
  }
  return "";
}

}  // namespace procscope::cli
