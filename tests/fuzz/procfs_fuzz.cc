// SPDX-License-Identifier: Apache-2.0
// The parsers of what procscoped reads from /proc/<pid>/: stat (a process picks its own comm, so
// any bytes but NUL may sit between the parentheses), status, cmdline, and the passwd file of a
// container's root.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "procfs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<uint64_t> ticks = procscope::ParseStartTicks(text, "stat");
  if (!ticks.ok() && ticks.status().message().empty()) __builtin_trap();  // errors say why
  absl::StatusOr<uint32_t> uid = procscope::ParseRealUid(text, "status");
  if (!uid.ok() && uid.status().message().empty()) __builtin_trap();
  if (uid.ok()) procscope::UserNameInPasswd(text, *uid);
  const std::string line = procscope::JoinCmdline(std::string(text));
  if (line.size() > size || line.find('\0') != std::string::npos) __builtin_trap();
  return 0;
}
