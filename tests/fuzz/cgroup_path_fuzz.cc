// SPDX-License-Identifier: Apache-2.0
// /proc/<pid>/cgroup and the container, pod and unit read from its path. A process cannot pick
// its cgroup's name, but whoever runs the containers can (any runtime, any naming).
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "cgroup_path.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string chosen = procscope::ChooseCgroupPath(text);
  // The choice is "/" or a path taken from the text.
  if (chosen != "/" && text.find(chosen) == absl::string_view::npos) __builtin_trap();
  const procscope::CgroupInfo info = procscope::ParseCgroupPath(chosen);
  if (!info.container_id.empty() && info.container_id.size() != 64) __builtin_trap();
  procscope::ParseCgroupPath(text);
  return 0;
}
