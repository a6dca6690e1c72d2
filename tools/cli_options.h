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

namespace procscope::cli {

// Defaults, shared by the flag definitions and the help text.
inline constexpr char kDefaultEndpoint[] = "127.0.0.1:9750";
inline constexpr int kDefaultLimit = 10;
inline constexpr int kDefaultDaemonPort = 9750;

enum class Command { kTop, kEvents, kTree, kStatus };
std::optional<Command> ParseCommand(absl::string_view name);
const char* CommandName(Command c);

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

// What `top` sorts its process table by: one of the daemon's per-process rates.
enum class SortKey { kCpu, kRunq, kMem, kFaults, kIo };
absl::StatusOr<SortKey> ParseSortKey(absl::string_view s);
const char* SortKeyName(SortKey k);  // "cpu", "runq", ...

enum class ColorMode { kAuto, kAlways, kNever };
absl::StatusOr<ColorMode> ParseColorMode(absl::string_view s);
// kAuto: colours only when stdout is a terminal, TERM is not "dumb" and NO_COLOR is unset.
bool UseColor(ColorMode mode, bool stdout_is_tty, const char* term_env, const char* no_color_env);

// Every flag's value, as main read it.
struct FlagValues {
  std::string endpoint = kDefaultEndpoint;
  absl::Duration timeout = absl::Seconds(5);
  bool json = false;
  std::string color = "auto";
  std::string sort = "cpu";
  int limit = kDefaultLimit;
  bool watch = false;
  absl::Duration interval = absl::Seconds(2);
  bool standalone = false;
  absl::Duration duration = absl::Seconds(10);
  bool follow = false;
  bool failed = false;
  bool all = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string user;
  std::string password_file;
};

// Checked options of one invocation.
struct Options {
  Command command = Command::kTop;
  Endpoint endpoint;
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
  std::string password_file;  // main reads it into endpoint.password
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
