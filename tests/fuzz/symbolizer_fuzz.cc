// SPDX-License-Identifier: Apache-2.0
// The symbolizer's parsers of outside input: a process's maps, kallsyms (and /proc/modules) text,
// and any ELF image a process maps (its symbol tables, program headers and notes).
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "symbol_tables.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  for (const procscope::MapsLine& m : procscope::ParseExecutableMaps(text)) {
    if (m.end <= m.start || !m.executable) __builtin_trap();
  }
  procscope::KallsymsTable k;
  k.Parse(text, text);
  for (uint64_t a : {uint64_t{0}, uint64_t{0xffffffff81000000}, ~uint64_t{0}}) k.Lookup(a);
  absl::StatusOr<procscope::ElfSymbols> elf =
      procscope::ReadElfMemory(reinterpret_cast<const char*>(data), size, "fuzz");
  if (!elf.ok() && elf.status().message().empty()) __builtin_trap();  // errors say why
  if (elf.ok()) {
    for (const procscope::ElfSymbols::Load& l : elf->loads) {
      std::optional<uint64_t> v = elf->VaddrOf(l.offset);
      if (v) elf->table.Lookup(*v);
    }
  }
  return 0;
}
