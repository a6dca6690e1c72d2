// SPDX-License-Identifier: Apache-2.0
#include "libbpf_log.h"

#include <atomic>
#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace procscope {
namespace {

std::atomic<bool> g_verbose{false};

}  // namespace

int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  const LogLevel at = LibbpfLogLevel(level, g_verbose.load(std::memory_order_relaxed));
  if (!LogEnabled(at)) return 0;  // not even formatted: libbpf's info lines are many
  va_list again;
  va_copy(again, args);
  char small[512];
  const int n = vsnprintf(small, sizeof(small), fmt, args);
  std::string message;
  if (n >= 0 && static_cast<size_t>(n) >= sizeof(small)) {
    message.resize(static_cast<size_t>(n) + 1);
    vsnprintf(message.data(), message.size(), fmt, again);
    message.resize(static_cast<size_t>(n));
  } else if (n > 0) {
    message.assign(small, static_cast<size_t>(n));
  }
  va_end(again);
  for (const std::string& line : LibbpfLogLines(message)) WriteLogLine(at, line);
  return n;
}

LogLevel LibbpfLogLevel(enum libbpf_print_level level, bool verbose) {
  if (verbose) return LogLevel::kWarning;
  return level == LIBBPF_WARN ? LogLevel::kWarning : LogLevel::kDebug;
}

std::vector<std::string> LibbpfLogLines(absl::string_view message) {
  std::vector<std::string> lines;
  for (absl::string_view l : absl::StrSplit(message, '\n')) {
    l = absl::StripTrailingAsciiWhitespace(l);
    if (l.empty()) continue;
    lines.push_back(absl::StartsWith(l, "libbpf: ") ? std::string(l) : absl::StrCat("libbpf: ", l));
  }
  return lines;
}

void SetLibbpfVerbose(bool verbose) { g_verbose = verbose; }

}  // namespace procscope
