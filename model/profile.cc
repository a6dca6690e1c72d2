// SPDX-License-Identifier: Apache-2.0
#include "profile.h"

#include <cstdio>

namespace procscope {

const char* StackKindName(StackKind k) {
  switch (k) {
    case StackKind::kOnCpu:
      return "cpu";
    case StackKind::kOffCpuBlocked:
      return "blocked";
    case StackKind::kOffCpuSleep:
      return "sleep";
  }
  return "unknown";
}

std::string Frame::Display() const {
  if (!function.empty()) return function;
  const size_t slash = module.rfind('/');
  const std::string base = slash == std::string::npos ? module : module.substr(slash + 1);
  char off[32];
  snprintf(off, sizeof(off), "+0x%llx", static_cast<unsigned long long>(offset));
  return (base.empty() ? std::string("[unknown]") : base) + off;
}

}  // namespace procscope
