// SPDX-License-Identifier: Apache-2.0
// The pure parts of the symbolizer, on untrusted input (a process's maps, kallsyms text, any ELF
// file a process maps), exposed for the unit tests and the fuzz target (tests/fuzz/).
#ifndef PROCSCOPE_PROFILER_SYMBOL_TABLES_H_
#define PROCSCOPE_PROFILER_SYMBOL_TABLES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace procscope {

// One line of /proc/<pid>/maps.
struct MapsLine {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t offset = 0;  // file offset of `start`
  uint64_t inode = 0;
  bool executable = false;
  bool deleted = false;  // the path ended in " (deleted)" (stripped from `path`)
  std::string range;     // "start-end" as written: the name in /proc/<pid>/map_files/
  std::string path;      // "/usr/lib/...", "[vdso]", "" (anonymous)
};
// nullopt: not a maps line.
std::optional<MapsLine> ParseMapsLine(absl::string_view line);
// The executable mappings of a whole maps file, sorted by start (bad lines are skipped).
std::vector<MapsLine> ParseExecutableMaps(absl::string_view text);

// Symbols as {address, size, name} sorted by address, names in one blob: 16 bytes a symbol.
class SymbolTable {
 public:
  // Adds a symbol (before Finish). size 0: a symbol of unknown extent, named only where no sized
  // symbol covers the address and only up to the next symbol or `limit` (its section's end).
  void Add(uint64_t addr, uint64_t size, absl::string_view name, uint64_t limit = 0);
  // Sorts, drops aliases (same address: the first added wins) and resolves the zero-size ones.
  void Finish();
  // The symbol covering `addr` (start <= addr < start + size): its name and start; nullopt when
  // none does, never the nearest one below.
  struct Hit {
    absl::string_view name;
    uint64_t start = 0;
  };
  std::optional<Hit> Lookup(uint64_t addr) const;
  size_t size() const { return syms_.size(); }
  size_t bytes() const { return syms_.capacity() * sizeof(Sym) + blob_.capacity(); }

 private:
  struct Sym {
    uint64_t addr;
    uint32_t size;  // clamped to 4 GiB
    uint32_t name;  // offset into blob_, NUL-terminated
  };
  struct Pending {
    uint64_t addr;
    uint64_t limit;
    uint32_t name;
  };
  std::vector<Sym> syms_;
  std::vector<Pending> unsized_;
  std::string blob_;
};

// The symbols and layout of one ELF object.
struct ElfSymbols {
  std::string build_id;  // hex of NT_GNU_BUILD_ID; "" when it has none
  struct Load {
    uint64_t offset, filesz, vaddr;
    bool exec;
  };
  std::vector<Load> loads;  // PT_LOAD segments
  SymbolTable table;        // STT_FUNC/STT_GNU_IFUNC of .symtab, else .dynsym, demangled
  bool from_dynsym = false;
  // The ELF virtual address of file offset `off` (through the PT_LOAD containing it, executable
  // ones first); nullopt when no segment holds it.
  std::optional<uint64_t> VaddrOf(uint64_t off) const;
};
// Reads an ELF object from `fd` (read on demand with pread: a file truncated meanwhile gives an
// error, not SIGBUS). `display` names it in errors.
absl::StatusOr<ElfSymbols> ReadElf(int fd, absl::string_view display);
// The same from memory (the vDSO image; fuzzing).
absl::StatusOr<ElfSymbols> ReadElfMemory(const char* data, size_t size, absl::string_view display);

// "_ZN3foo3barEv" -> "foo::bar()"; anything else unchanged.
std::string Demangle(absl::string_view name);

// /proc/kallsyms: text symbols sorted, with their module ("" for the kernel itself).
class KallsymsTable {
 public:
  // `modules`: /proc/modules text ("" if unreadable), which bounds each module's last symbol.
  void Parse(absl::string_view kallsyms, absl::string_view modules = "");
  // The same a line at a time (the daemon streams the 5 MB file rather than hold it whole).
  void Clear();
  void AddLine(absl::string_view line);
  void Finish(absl::string_view modules);
  struct Hit {
    absl::string_view name;    // "" when no symbol covers the address
    absl::string_view module;  // "" for the kernel itself, else e.g. "ext4"
    uint64_t module_base = 0;  // the kernel's _text or the module's base (for offsets)
  };
  // nullopt: the address is past every known symbol (a module loaded since?).
  std::optional<Hit> Lookup(uint64_t addr) const;
  // Every address read as 0: kptr_restrict hides them from us.
  bool restricted() const { return restricted_; }
  size_t size() const { return syms_.size(); }
  size_t bytes() const;

 private:
  struct Sym {
    uint64_t addr;
    uint32_t name;    // offset into blob_; kEnd: an end marker (_etext, a module's end)
    uint16_t module;  // index into modules_ (0: the kernel)
    uint16_t pad;
  };
  static constexpr uint32_t kEnd = 0xffffffff;
  std::vector<Sym> syms_;
  std::string blob_;
  std::vector<std::string> modules_{""};
  std::vector<uint64_t> module_bases_{0};
  bool restricted_ = false;
  size_t lines_ = 0, nonzero_ = 0;
  uint64_t text_ = 0;
};
// How far past its start a symbol with no known end (the last one of a module when /proc/modules
// is unreadable, the last of the table) may still name an address.
inline constexpr uint64_t kKallsymsTailBytes = 4096;

}  // namespace procscope

#endif  // PROCSCOPE_PROFILER_SYMBOL_TABLES_H_
