// SPDX-License-Identifier: Apache-2.0
// The `procscope` commands (top and its --watch loop, events and its --follow loop, tree,
// status) on checked Options. Everything they do to the outside world goes through CommandIo:
// main passes TerminalIo (libcurl, the clock, the terminal, stdout, the standalone collector),
// unit tests a fake with canned replies and a fake clock.
#ifndef PROCSCOPE_TOOLS_CLI_COMMANDS_H_
#define PROCSCOPE_TOOLS_CLI_COMMANDS_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cli_http.h"
#include "cli_options.h"
#include "cli_render.h"
#include "cli_terminal.h"

namespace procscope::cli {

class CommandIo {
 public:
  virtual ~CommandIo() = default;
  // GET `path` from the daemon, with cli_http.h's errors.
  virtual absl::StatusOr<HttpReply> Get(absl::string_view path) = 0;
  virtual absl::Time Now() = 0;
  // Sleeps `d`, returning early once Stopped().
  virtual void Nap(absl::Duration d) = 0;
  // top --watch: the screen (raw keys, alternate screen) from Enter until Leave; WaitKey waits
  // up to `d` for a key (nullopt on timeout or once stopped); Size is the terminal's.
  virtual void EnterWatchScreen() = 0;
  virtual void LeaveWatchScreen() = 0;
  virtual std::optional<char> WaitKey(absl::Duration d) = 0;
  virtual TermSize Size() = 0;
  // Writes to stdout: false once it is gone (a closed pipe), so that loops stop.
  virtual bool Out(absl::string_view s) = 0;
  // One line to stderr (the newline is added).
  virtual void Err(absl::string_view line) = 0;
  // Ctrl-C or SIGTERM came (or Stop was called).
  virtual bool Stopped() = 0;
  virtual void Stop() = 0;
  // top --standalone: measure this machine for `d` (the BPF collector, not in this library).
  virtual absl::StatusOr<TopData> Standalone(absl::Duration d) = 0;
  // profile --standalone: profile this machine for `d`; the gzipped pprof of `path`'s query
  // ("/debug/pprof/profile?seconds=10&pid=P") as the daemon would have served it.
  virtual absl::StatusOr<std::string> StandaloneProfile(absl::Duration /*d*/,
                                                        absl::string_view /*path*/) {
    return absl::UnimplementedError("no standalone profiler here");
  }
  // profile --pprof=FILE: writes `data` to `file`.
  virtual absl::Status WriteFile(const std::string& file, absl::string_view data);
};

// The real one: libcurl to o.endpoint, absl::Now, poll() naps that g_stop cuts short, the
// terminal on stdin/stdout, stdout and stderr. `standalone` runs the collector.
class TerminalIo : public CommandIo {
 public:
  TerminalIo(const Options& o, std::function<absl::StatusOr<TopData>(absl::Duration)> standalone);
  ~TerminalIo() override;
  absl::StatusOr<HttpReply> Get(absl::string_view path) override;
  absl::Time Now() override;
  void Nap(absl::Duration d) override;
  void EnterWatchScreen() override;
  void LeaveWatchScreen() override;
  std::optional<char> WaitKey(absl::Duration d) override;
  TermSize Size() override;
  bool Out(absl::string_view s) override;
  void Err(absl::string_view line) override;
  bool Stopped() override;
  void Stop() override;
  absl::StatusOr<TopData> Standalone(absl::Duration d) override;
  absl::StatusOr<std::string> StandaloneProfile(absl::Duration d, absl::string_view path) override;
  void set_standalone_profile(
      std::function<absl::StatusOr<std::string>(absl::Duration, absl::string_view)> f) {
    standalone_profile_ = std::move(f);
  }

 private:
  std::function<absl::StatusOr<std::string>(absl::Duration, absl::string_view)> standalone_profile_;
  const Endpoint endpoint_;
  const absl::Duration timeout_;
  std::function<absl::StatusOr<TopData>(absl::Duration)> standalone_;
  std::unique_ptr<WatchTerminal> terminal_;
};

// Colours (--color against this terminal, TERM and NO_COLOR), CPUs, the local time zone.
RenderOptions RenderOptionsForTerminal(const Options& o);

// Runs o.command; returns the exit code (0 ok, 1 runtime error; usage errors are main's).
int RunCommand(const Options& o, const RenderOptions& r, CommandIo& io);

// The commands RunCommand dispatches to.
int RunTop(const Options& o, const RenderOptions& r, CommandIo& io);  // --watch: Watch
int Watch(const Options& o, RenderOptions r, CommandIo& io);
int RunEvents(const Options& o, const RenderOptions& r, CommandIo& io);
int RunTree(const Options& o, const RenderOptions& r, CommandIo& io);
int RunStatus(const Options& o, const RenderOptions& r, CommandIo& io);
int RunProfile(const Options& o, const RenderOptions& r, CommandIo& io);  // cli_profile.cc

}  // namespace procscope::cli

#endif  // PROCSCOPE_TOOLS_CLI_COMMANDS_H_
