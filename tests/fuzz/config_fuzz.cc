// SPDX-License-Identifier: Apache-2.0
// procscoped's --config file, through the daemon's own code: main.cc is compiled into this
// target (its main() renamed), and each input is read as the config file by ConfigFromFlags, the
// function the daemon calls at start and on SIGHUP: line syntax, every flag's value parser, and
// the validation of the result.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#define main ProcscopedMain
#include "main.cc"  // NOLINT(build/include): the daemon's flags and config-file code
#undef main

namespace {

std::string* g_path = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "config-fuzz.XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) abort();
  g_path = new std::string(tmpl + "/procscoped.conf");
  absl::SetFlag(&FLAGS_config, *g_path);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  {
    std::ofstream out(*g_path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  absl::StatusOr<procscope::Config> config = procscope::ConfigFromFlags();
  if (!config.ok()) {
    // A clear one-line error.
    const absl::string_view m = config.status().message();
    if (m.empty() || m.find('\n') != absl::string_view::npos) __builtin_trap();
  }
  return 0;
}
