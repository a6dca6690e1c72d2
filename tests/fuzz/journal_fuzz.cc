// SPDX-License-Identifier: Apache-2.0
// The crash journal as procscoped finds it at start: whatever a crash, a bad disk or someone with
// write access to the directory left in events.journal. Written against the public API only
// (Journal::Open on a directory holding the input), so it outlives changes of the file format.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "journal.h"

namespace {

std::string* g_dir = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "journal-fuzz.XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) abort();
  g_dir = new std::string(tmpl + "/j");
  // Not removed at exit: libFuzzer ends with _exit; the directory is small and in $TMPDIR.
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::error_code ec;
  std::filesystem::remove_all(*g_dir, ec);  // whatever the last run made (rotated, set aside)
  std::filesystem::create_directories(*g_dir);
  {
    std::ofstream out(*g_dir + "/events.journal", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  // The pure parser first: records and damaged bytes are bounded by the input.
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  uint64_t parsed = 0;
  const uint64_t damaged =
      procscope::ParseJournalBytes(bytes, [&](procscope::v1::ExitEvent&&) { ++parsed; });
  if (damaged > size || parsed > size) __builtin_trap();
  // Then the daemon's path: Open recovers the file (setting damaged bytes aside).
  uint64_t recovered = 0;
  absl::StatusOr<procscope::Journal> j = procscope::Journal::Open(
      *g_dir, 64 << 10, [&](procscope::v1::ExitEvent&&) { ++recovered; }, [](absl::string_view) {});
  if (!j.ok()) {
    if (j.status().message().empty()) __builtin_trap();  // an error says why
    return 0;
  }
  // Recovery cannot invent records, and finds what the parser finds.
  if (recovered != parsed || j->RecoveredRecords() != recovered) __builtin_trap();
  // The recovered journal takes new records.
  procscope::v1::ExitEvent e;
  e.set_pid(1);
  e.set_comm("fuzz");
  if (!j->Append(e).ok() || !j->Flush().ok()) __builtin_trap();
  return 0;
}
