// SPDX-License-Identifier: Apache-2.0
// What any client on the network sends: the query string of an API request (percent-decoding,
// limit=...) and, as an operator's input, the --listen address.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "http_server.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view raw(reinterpret_cast<const char*>(data), size);
  auto params = procscope::ParseQuery(raw);
  if (params.ok()) {
    for (const auto& [name, value] : *params) {
      // Decoding only shrinks, and a NUL is refused.
      if (name.size() > size || value.size() > size) __builtin_trap();
      if (name.find('\0') != std::string::npos || value.find('\0') != std::string::npos) {
        __builtin_trap();
      }
    }
  } else if (params.status().message().empty()) {
    __builtin_trap();
  }
  absl::StatusOr<size_t> limit = procscope::QueryCount(raw, "limit", 100, 10000);
  if (limit.ok() && (*limit < 1 || *limit > 10000)) __builtin_trap();
  if (!limit.ok() && limit.status().message().find('\n') != absl::string_view::npos) {
    __builtin_trap();
  }
  procscope::ParseListen(raw).IgnoreError();
  return 0;
}
