// SPDX-License-Identifier: Apache-2.0
// --web_config_file (exporter-toolkit's YAML): whatever an operator or a mounted Secret holds.
// Files it names are looked up under an empty temporary directory, so none is ever read.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/strings/string_view.h"
#include "web_config.h"

namespace {
std::string* g_dir = nullptr;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "web-config-fuzz.XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) abort();
  g_dir = new std::string(tmpl);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view yaml(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<procscope::WebConfig> c = procscope::ParseWebConfig(yaml, *g_dir);
  if (!c.ok()) {
    // Errors are one line.
    const absl::string_view m = c.status().message();
    if (m.empty() || m.find('\n') != absl::string_view::npos) {
      fprintf(stderr, "message: [%s]\n", std::string(m).c_str());
      __builtin_trap();
    }
  }
  return 0;
}
