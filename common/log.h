// SPDX-License-Identifier: Apache-2.0
// procscope's logging: one line per message on stderr, "<program>: <message>", filtered by level
// (--log_level). No absl/log in Abseil 20220623, hence this small facility.
//
//   LOG(INFO) << "collecting; serving " << url;
//   LOG_EVERY_N_SEC(WARNING, 60) << "crash journal: " << status;  // repeated errors: rate-limited
//
// A rate-limited site says how many messages it held back when it next prints.
#ifndef PROCSCOPE_COMMON_LOG_H_
#define PROCSCOPE_COMMON_LOG_H_

#include <atomic>
#include <cstdint>
#include <sstream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace procscope {

enum class LogLevel { kDebug = 0, kInfo, kWarning, kError };

// "debug", "info", "warning", "error" (case-insensitive; "warn" too). The error lists them.
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view s);
const char* LogLevelName(LogLevel level);

// Messages below `level` are dropped. Default: info.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
inline bool LogEnabled(LogLevel level) { return level >= GetLogLevel(); }

// The "<program>" of each line (default "procscoped").
void SetLogProgram(absl::string_view program);

// Writes one line, whole (a single write(2), so lines from threads do not interleave).
void WriteLogLine(LogLevel level, absl::string_view message);

namespace log_internal {

// One message; emitted when it goes out of scope.
class Message {
 public:
  explicit Message(LogLevel level, uint64_t suppressed = 0)
      : level_(level), suppressed_(suppressed) {}
  ~Message();
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;
  std::ostream& stream() { return out_; }

 private:
  LogLevel level_;
  uint64_t suppressed_;
  std::ostringstream out_;
};

// Per call site of LOG_EVERY_N_SEC: lets one message through every `seconds`, counts the rest.
class RateLimit {
 public:
  // True when this message may print; *suppressed: how many were held back since the last one.
  bool Allow(double seconds, uint64_t* suppressed);

 private:
  std::atomic<int64_t> next_ns_{0};
  std::atomic<uint64_t> held_{0};
};

// Makes `LOG(x) << ...` a void expression so that it fits the macros' ?: form.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace log_internal
}  // namespace procscope

#define PROCSCOPE_LOG_LEVEL_DEBUG ::procscope::LogLevel::kDebug
#define PROCSCOPE_LOG_LEVEL_INFO ::procscope::LogLevel::kInfo
#define PROCSCOPE_LOG_LEVEL_WARNING ::procscope::LogLevel::kWarning
#define PROCSCOPE_LOG_LEVEL_ERROR ::procscope::LogLevel::kError

// The message's operands are not evaluated when the level is off.
#define LOG(severity)                                      \
  !::procscope::LogEnabled(PROCSCOPE_LOG_LEVEL_##severity) \
      ? (void)0                                            \
      : ::procscope::log_internal::Voidify() &             \
            ::procscope::log_internal::Message(PROCSCOPE_LOG_LEVEL_##severity).stream()

#define LOG_EVERY_N_SEC(severity, seconds)                                                   \
  for (uint64_t procscope_log_held = 0, procscope_log_once = 1; procscope_log_once;          \
       procscope_log_once = 0)                                                               \
    if (static ::procscope::log_internal::RateLimit procscope_log_rate;                      \
        !::procscope::LogEnabled(PROCSCOPE_LOG_LEVEL_##severity) ||                          \
        !procscope_log_rate.Allow((seconds), &procscope_log_held)) {                         \
    } else                                                                                   \
      ::procscope::log_internal::Message(PROCSCOPE_LOG_LEVEL_##severity, procscope_log_held) \
          .stream()

#endif  // PROCSCOPE_COMMON_LOG_H_
