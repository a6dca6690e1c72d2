// SPDX-License-Identifier: Apache-2.0
#include "cli_terminal.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "absl/time/clock.h"

namespace procscope::cli {

std::atomic<bool> g_stop{false};

namespace {
void OnStop(int) { g_stop = true; }

// Escape sequences: alternate screen on + cursor hidden, and back.
constexpr char kEnter[] = "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J";
constexpr char kLeave[] = "\x1b[?25h\x1b[?1049l";
}  // namespace

void InstallStopHandlers() {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnStop;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: poll() and sleeps return EINTR
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

WatchTerminal::WatchTerminal(int in_fd) : fd_(in_fd) {
  if (isatty(fd_) && tcgetattr(fd_, &saved_) == 0) {
    termios t = saved_;
    t.c_lflag &= ~(ICANON | ECHO);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    raw_ = tcsetattr(fd_, TCSANOW, &t) == 0;
  }
  fputs(kEnter, stdout);
  fflush(stdout);
}

WatchTerminal::~WatchTerminal() {
  fputs(kLeave, stdout);
  fflush(stdout);
  if (raw_) tcsetattr(fd_, TCSANOW, &saved_);
}

std::optional<char> WatchTerminal::WaitKey(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!g_stop.load()) {
    const int64_t ms = std::max<int64_t>(absl::ToInt64Milliseconds(deadline - absl::Now()), 0);
    // stdin that is not a terminal (or at EOF) gives no keys: just wait.
    pollfd p = {fd_, POLLIN, 0};
    const int n = raw_ ? poll(&p, 1, static_cast<int>(ms)) : poll(nullptr, 0, static_cast<int>(ms));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    char c = 0;
    const ssize_t r = read(fd_, &c, 1);
    if (r == 1) return c;
    if (r == 0) raw_ = false;  // EOF: stop reading it
    if (absl::Now() >= deadline) return std::nullopt;
  }
  return std::nullopt;
}

TermSize TerminalSize(int fd) {
  winsize ws{};
  if (ioctl(fd, TIOCGWINSZ, &ws) != 0) return {};
  return {ws.ws_col, ws.ws_row};
}

}  // namespace procscope::cli
