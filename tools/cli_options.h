// SPDX-License-Identifier: Apache-2.0
// The `procscope` command line as plain data: subcommands, which flags each accepts, the
// --endpoint / --sort / --color syntax, and the checks that turn flag values into options. The
// flags themselves are defined and parsed only in procscope_main.cc; this is unit-tested.
#ifndef PROCSCOPE_TOOLS_CLI_OPTIONS_H_
#define PROCSCOPE_TOOLS_CLI_OPTIONS_H_

#include <optional>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "enum_names.h"

namespace procscope::cli {

// Defaults, shared by the flag definitions and the help text.
inline constexpr char kDefaultEndpoint[] = "127.0.0.1:9750";
inline constexpr int kDefaultLimit = 10;
inline constexpr int kDefaultDaemonPort = 9750;

enum class Command { kTop, kEvents, kTree, kStatus, kProfile, kLast = kProfile };
inline constexpr EnumTable<Command> kCommandNames = {{
    {Command::kTop, "top"},
    {Command::kEvents, "events"},
    {Command::kTree, "tree"},
    {Command::kStatus, "status"},
    {Command::kProfile, "profile"},
}};
static_assert(IsEnumTable(kCommandNames), "kCommandNames must name every Command");
inline std::optional<Command> ParseCommand(absl::string_view name) {
  return ValueOf(kCommandNames, name);
}
constexpr const char* CommandName(Command c) { return NameOf(kCommandNames, c); }

// Where procscoped listens. `host` has no brackets, also for IPv6.
struct Endpoint {
  std::string host = "127.0.0.1";
  int port = kDefaultDaemonPort;
  // How to talk to it (--web_config_file on the daemon): https://, the CA to trust, a client
  // certificate, basic auth.
  bool tls = false;
  std::string ca_file = {};
  std::string cert_file = {};
  std::string key_file = {};
  std::string user = {};
  std::string password = {};     // read from --password_file by main
  std::string ToString() const;  // "127.0.0.1:9750", "[::1]:9750"
  std::string Url() const;       // "http://127.0.0.1:9750", "https://[::1]:9750"
};
// "HOST:PORT", "[V6]:PORT", ":PORT" (loopback), "HOST" (port 9750), an optional "http://" or
// "https://" and trailing "/". The error names the flag.
absl::StatusOr<Endpoint> ParseEndpoint(absl::string_view s);

// What `top` sorts its process table by: one of the daemon's per-process rates. kLast names the
// last enumerator: a new one moves it, and then fails the build until kSortKeyNames names it.
enum class SortKey { kCpu, kRunq, kMem, kFaults, kIo, kLast = kIo };
inline constexpr EnumTable<SortKey> kSortKeyNames = {{
    {SortKey::kCpu, "cpu"},
    {SortKey::kRunq, "runq"},
    {SortKey::kMem, "mem"},
    {SortKey::kFaults, "faults"},
    {SortKey::kIo, "io"},
}};
static_assert(IsEnumTable(kSortKeyNames), "kSortKeyNames must name every SortKey");
absl::StatusOr<SortKey> ParseSortKey(absl::string_view s);  // the error names --sort
constexpr const char* SortKeyName(SortKey k) { return NameOf(kSortKeyNames, k); }  // "cpu", ...

enum class ColorMode { kAuto, kAlways, kNever, kLast = kNever };
inline constexpr EnumTable<ColorMode> kColorModeNames = {{
    {ColorMode::kAuto, "auto"},
    {ColorMode::kAlways, "always"},
    {ColorMode::kNever, "never"},
}};
static_assert(IsEnumTable(kColorModeNames), "kColorModeNames must name every ColorMode");
absl::StatusOr<ColorMode> ParseColorMode(absl::string_view s);  // the error names --color
constexpr const char* ColorModeName(ColorMode m) { return NameOf(kColorModeNames, m); }

// --sort and --color as Abseil flags of these types (the error lists the valid values).
bool AbslParseFlag(absl::string_view text, SortKey* out, std::string* error);
std::string AbslUnparseFlag(SortKey k);
bool AbslParseFlag(absl::string_view text, ColorMode* out, std::string* error);
std::string AbslUnparseFlag(ColorMode m);
// kAuto: colours only when stdout is a terminal, TERM is not "dumb" and NO_COLOR is unset.
bool UseColor(ColorMode mode, bool stdout_is_tty, const char* term_env, const char* no_color_env);

// The flags' values that Options keeps as they are (checked, not converted).
struct PlainValues {
  absl::Duration timeout = absl::Seconds(5);
  bool json = false;
  ColorMode color = ColorMode::kAuto;
  SortKey sort = SortKey::kCpu;
  int limit = kDefaultLimit;
  bool watch = false;
  absl::Duration interval = absl::Seconds(2);
  bool standalone = false;
  absl::Duration duration = absl::Seconds(10);
  bool follow = false;
  bool failed = false;
  bool all = false;
  std::string password_file;  // main reads it into Options::endpoint.password
  // profile: one process or one group (neither: every process), off-CPU instead of on-CPU, and
  // the output (the top functions by default).
  int pid = 0;
  std::string group;
  bool offcpu = false;
  bool folded = false;
  std::string pprof_file;
};

// Every flag's value, as main read it.
struct FlagValues : PlainValues {
  std::string endpoint = kDefaultEndpoint;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string user;
};

// Checked options of one invocation.
struct Options : PlainValues {
  Command command = Command::kTop;
  Endpoint endpoint;  // --endpoint parsed, with --ca_file, --cert_file, --key_file and --user
};

// Fails when a flag in `given` (names as FlagNamesInArgv returns them) does not apply to `c`.
absl::Status CheckFlagsForCommand(Command c, const std::set<std::string>& given);

// Checks ranges and combinations. `given`: the flags on the command line (for "--endpoint has no
// effect with --standalone"). Every message is one line that names the flag.
absl::StatusOr<Options> MakeOptions(Command c, const FlagValues& v,
                                    const std::set<std::string>& given);

// The standalone offender window: the run's duration, at most the daemon's default 30 s (the
// detector needs at least 5 s, which MakeOptions already demands of --duration).
absl::Duration StandaloneWindow(absl::Duration duration);

// `procscope --help` and `procscope <command> --help`.
std::string MainHelp();
std::string CommandHelp(Command c);

}  // namespace procscope::cli

#endif  // PROCSCOPE_TOOLS_CLI_OPTIONS_H_
