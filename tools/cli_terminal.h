// SPDX-License-Identifier: Apache-2.0
// The terminal side of `procscope top --watch`: keys read one at a time without echo, the
// terminal restored on every way out (q, Ctrl-C, SIGTERM, an error), and its size.
#ifndef PROCSCOPE_TOOLS_CLI_TERMINAL_H_
#define PROCSCOPE_TOOLS_CLI_TERMINAL_H_

#include <termios.h>

#include <atomic>
#include <optional>

#include "absl/time/time.h"

namespace procscope::cli {

// Set by SIGINT, SIGTERM and SIGHUP once InstallStopHandlers ran.
extern std::atomic<bool> g_stop;
// Without SA_RESTART, so that a blocking poll() returns at once on Ctrl-C.
void InstallStopHandlers();

// Non-canonical, no-echo input on `fd` while it lives (signals such as Ctrl-C still work), and
// the alternate screen with the cursor hidden on stdout. Does nothing on a fd that is not a
// terminal. The destructor restores both.
class WatchTerminal {
 public:
  explicit WatchTerminal(int in_fd);
  ~WatchTerminal();
  WatchTerminal(const WatchTerminal&) = delete;
  WatchTerminal& operator=(const WatchTerminal&) = delete;

  // Waits up to `timeout` for a key: the key, or nullopt on timeout or when g_stop is set.
  std::optional<char> WaitKey(absl::Duration timeout);

 private:
  int fd_;
  bool raw_ = false;
  termios saved_{};
};

// Columns and rows of the terminal on `fd`; 0 when it is not one.
struct TermSize {
  int cols = 0;
  int rows = 0;
};
TermSize TerminalSize(int fd);

}  // namespace procscope::cli

#endif  // PROCSCOPE_TOOLS_CLI_TERMINAL_H_
