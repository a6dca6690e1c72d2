// SPDX-License-Identifier: Apache-2.0
#include "log.h"

#include <time.h>
#include <unistd.h>

#include <iterator>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace procscope {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::mutex g_program_mu;
std::string g_program = "procscoped";  // guarded by g_program_mu

int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace

// Indexed by LogLevel; "warn" is accepted as well when parsing.
constexpr const char* kLevelNames[] = {"debug", "info", "warning", "error"};
static_assert(std::size(kLevelNames) == static_cast<size_t>(LogLevel::kError) + 1,
              "a LogLevel without a name");

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view s) {
  const std::string v = absl::AsciiStrToLower(s);
  for (size_t i = 0; i < std::size(kLevelNames); ++i) {
    if (v == kLevelNames[i]) return static_cast<LogLevel>(i);
  }
  if (v == "warn") return LogLevel::kWarning;
  return absl::InvalidArgumentError(
      absl::StrCat("--log_level=", s, ": want debug, info, warning or error"));
}

const char* LogLevelName(LogLevel level) {
  const size_t i = static_cast<size_t>(level);
  return i < std::size(kLevelNames) ? kLevelNames[i] : "info";
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed)); }

void SetLogProgram(absl::string_view program) {
  std::lock_guard<std::mutex> l(g_program_mu);
  g_program = std::string(program);
}

void WriteLogLine(LogLevel level, absl::string_view message) {
  if (!LogEnabled(level)) return;
  std::string line;
  {
    std::lock_guard<std::mutex> l(g_program_mu);
    line = absl::StrCat(g_program, ": ", message);
  }
  while (!line.empty() && line.back() == '\n') line.pop_back();
  line.push_back('\n');
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    const ssize_t n = write(STDERR_FILENO, p, left);
    if (n <= 0) return;  // nowhere to log to
    p += n;
    left -= static_cast<size_t>(n);
  }
}

namespace log_internal {

Message::~Message() {
  if (suppressed_ > 0) out_ << " (" << suppressed_ << " more like it not shown)";
  WriteLogLine(level_, out_.str());
}

bool RateLimit::Allow(double seconds, uint64_t* suppressed) {
  const int64_t now = MonotonicNanos();
  int64_t next = next_ns_.load(std::memory_order_relaxed);
  if (now < next ||
      !next_ns_.compare_exchange_strong(next, now + static_cast<int64_t>(seconds * 1e9))) {
    held_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  *suppressed = held_.exchange(0);
  return true;
}

}  // namespace log_internal
}  // namespace procscope
