// SPDX-License-Identifier: Apache-2.0
#include "symbol_tables.h"

#include <cxxabi.h>
#include <gelf.h>
#include <libelf.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace procscope {
namespace {

bool ParseHex(absl::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 16) return false;
  for (char c : s) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return absl::SimpleHexAtoi(s, out);
}

// The next whitespace-separated token of `*rest`, which is advanced past it.
absl::string_view NextToken(absl::string_view* rest) {
  *rest = absl::StripLeadingAsciiWhitespace(*rest);
  size_t n = 0;
  while (n < rest->size() && !absl::ascii_isspace(static_cast<unsigned char>((*rest)[n]))) ++n;
  absl::string_view tok = rest->substr(0, n);
  rest->remove_prefix(n);
  return tok;
}

}  // namespace

std::optional<MapsLine> ParseMapsLine(absl::string_view line) {
  // start-end perms offset dev inode [path]; the path may hold spaces.
  absl::string_view rest = line;
  const absl::string_view range = NextToken(&rest);
  const absl::string_view perms = NextToken(&rest);
  const absl::string_view offset = NextToken(&rest);
  const absl::string_view dev = NextToken(&rest);
  const absl::string_view inode = NextToken(&rest);
  if (inode.empty() || perms.size() < 4 || dev.find(':') == absl::string_view::npos) {
    return std::nullopt;
  }
  const size_t dash = range.find('-');
  if (dash == absl::string_view::npos) return std::nullopt;
  MapsLine m;
  if (!ParseHex(range.substr(0, dash), &m.start) || !ParseHex(range.substr(dash + 1), &m.end) ||
      m.end <= m.start || !ParseHex(offset, &m.offset) || !absl::SimpleAtoi(inode, &m.inode)) {
    return std::nullopt;
  }
  m.executable = perms[2] == 'x';
  m.range = std::string(range);
  absl::string_view path = absl::StripAsciiWhitespace(rest);
  m.deleted = absl::ConsumeSuffix(&path, " (deleted)");
  m.path = std::string(path);
  return m;
}

std::vector<MapsLine> ParseExecutableMaps(absl::string_view text) {
  std::vector<MapsLine> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::optional<MapsLine> m = ParseMapsLine(line);
    if (m && m->executable) out.push_back(std::move(*m));
  }
  std::sort(out.begin(), out.end(),
            [](const MapsLine& a, const MapsLine& b) { return a.start < b.start; });
  // Overlapping lines cannot come from the kernel; keep the first of any such pair.
  std::vector<MapsLine> sorted;
  for (MapsLine& m : out) {
    if (!sorted.empty() && m.start < sorted.back().end) continue;
    sorted.push_back(std::move(m));
  }
  return sorted;
}

void SymbolTable::Add(uint64_t addr, uint64_t size, absl::string_view name, uint64_t limit) {
  if (blob_.size() + name.size() + 1 > std::numeric_limits<uint32_t>::max()) return;
  const uint32_t off = static_cast<uint32_t>(blob_.size());
  blob_.append(name.data(), name.size());
  blob_.push_back('\0');
  if (size == 0) {
    unsized_.push_back({addr, limit, off});
  } else {
    const uint64_t max = std::numeric_limits<uint32_t>::max();
    syms_.push_back({addr, static_cast<uint32_t>(std::min(size, max)), off});
  }
}

void SymbolTable::Finish() {
  auto by_addr = [](const auto& a, const auto& b) { return a.addr < b.addr; };
  std::stable_sort(syms_.begin(), syms_.end(), by_addr);
  syms_.erase(std::unique(syms_.begin(), syms_.end(),
                          [](const Sym& a, const Sym& b) { return a.addr == b.addr; }),
              syms_.end());
  if (!unsized_.empty()) {
    // A symbol of unknown size (hand-written assembly, say) names the addresses from its start
    // to the next symbol or its section's end, and only where no sized symbol covers them.
    std::stable_sort(unsized_.begin(), unsized_.end(), by_addr);
    std::vector<Sym> extra;
    for (size_t i = 0; i < unsized_.size(); ++i) {
      const Pending& p = unsized_[i];
      if (i > 0 && unsized_[i - 1].addr == p.addr) continue;
      if (Lookup(p.addr)) continue;
      uint64_t end = p.limit > p.addr ? p.limit : p.addr + 1;
      if (i + 1 < unsized_.size()) end = std::min(end, unsized_[i + 1].addr);
      auto next = std::upper_bound(syms_.begin(), syms_.end(), p.addr,
                                   [](uint64_t a, const Sym& s) { return a < s.addr; });
      if (next != syms_.end()) end = std::min(end, next->addr);
      if (end <= p.addr) continue;
      const uint64_t max = std::numeric_limits<uint32_t>::max();
      extra.push_back({p.addr, static_cast<uint32_t>(std::min(end - p.addr, max)), p.name});
    }
    syms_.insert(syms_.end(), extra.begin(), extra.end());
    std::stable_sort(syms_.begin(), syms_.end(), by_addr);
    unsized_.clear();
    unsized_.shrink_to_fit();
  }
  syms_.shrink_to_fit();
  blob_.shrink_to_fit();
}

std::optional<SymbolTable::Hit> SymbolTable::Lookup(uint64_t addr) const {
  auto it = std::upper_bound(syms_.begin(), syms_.end(), addr,
                             [](uint64_t a, const Sym& s) { return a < s.addr; });
  // The nearest start below may be a small symbol nested in a bigger one (a local label with a
  // size): look a few further back for one that covers the address.
  for (int back = 0; back < 4 && it != syms_.begin(); ++back) {
    --it;
    if (addr - it->addr < it->size)
      return Hit{absl::string_view(blob_.data() + it->name), it->addr};
  }
  return std::nullopt;
}

std::optional<uint64_t> ElfSymbols::VaddrOf(uint64_t off) const {
  for (int pass = 0; pass < 2; ++pass) {
    for (const Load& l : loads) {
      if (l.exec != (pass == 0)) continue;
      if (off >= l.offset && off - l.offset < l.filesz) return off - l.offset + l.vaddr;
    }
  }
  return std::nullopt;
}

std::string Demangle(absl::string_view name) {
  if (!absl::StartsWith(name, "_Z")) return std::string(name);
  const std::string z(name);
  int status = 0;
  char* out = abi::__cxa_demangle(z.c_str(), nullptr, nullptr, &status);
  if (status != 0 || out == nullptr) {
    free(out);
    return z;
  }
  std::string s(out);
  free(out);
  return s;
}

namespace {

struct ElfCloser {
  void operator()(Elf* e) const { elf_end(e); }
};

absl::Status ElfError(absl::string_view display, absl::string_view what) {
  return absl::DataLossError(absl::StrCat(display, ": ", what, ": ", elf_errmsg(-1)));
}

std::string Hex(const unsigned char* p, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    s.push_back(kDigits[p[i] >> 4]);
    s.push_back(kDigits[p[i] & 15]);
  }
  return s;
}

std::string BuildIdOf(Elf* e, const GElf_Phdr& ph) {
  Elf_Data* d =
      elf_getdata_rawchunk(e, ph.p_offset, ph.p_filesz, ph.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
  if (d == nullptr) return "";
  size_t off = 0;
  GElf_Nhdr nh;
  size_t name_off = 0, desc_off = 0;
  while (off < d->d_size) {
    const size_t next = gelf_getnote(d, off, &nh, &name_off, &desc_off);
    if (next == 0 || next <= off) break;
    const char* base = static_cast<const char*>(d->d_buf);
    if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
        memcmp(base + name_off, "GNU", 4) == 0 && nh.n_descsz > 0 && nh.n_descsz <= 64) {
      return Hex(reinterpret_cast<const unsigned char*>(base + desc_off), nh.n_descsz);
    }
    off = next;
  }
  return "";
}

// One symbol table's functions into `out`; false if the section could not be read.
struct Candidate {
  uint64_t addr, size, limit;
  int rank;  // 0 global, 1 weak, 2 local: of aliases, the lowest rank names the address
  const char* name;
};

bool CollectFunctions(Elf* e, Elf_Scn* scn, const GElf_Shdr& sh,
                      const std::vector<uint64_t>& section_ends, std::vector<Candidate>* out) {
  if (sh.sh_entsize == 0) return false;
  Elf_Data* data = elf_getdata(scn, nullptr);
  if (data == nullptr) return false;
  const size_t count = std::min<uint64_t>(sh.sh_size / sh.sh_entsize, data->d_size / sh.sh_entsize);
  for (size_t i = 0; i < count; ++i) {
    GElf_Sym sym;
    if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr) continue;
    const int type = GELF_ST_TYPE(sym.st_info);
    if (type != STT_FUNC && type != STT_GNU_IFUNC) continue;
    if (sym.st_shndx == SHN_UNDEF || sym.st_value == 0) continue;
    const char* name = elf_strptr(e, sh.sh_link, sym.st_name);
    if (name == nullptr || *name == '\0') continue;
    const int bind = GELF_ST_BIND(sym.st_info);
    const uint64_t limit = sym.st_shndx < section_ends.size() ? section_ends[sym.st_shndx] : 0;
    out->push_back({sym.st_value, sym.st_size, limit,
                    bind == STB_GLOBAL ? 0
                    : bind == STB_WEAK ? 1
                                       : 2,
                    name});
  }
  return true;
}

absl::StatusOr<ElfSymbols> ReadFromElf(Elf* raw, absl::string_view display) {
  std::unique_ptr<Elf, ElfCloser> e(raw);
  if (e == nullptr) return ElfError(display, "elf_begin");
  if (elf_kind(e.get()) != ELF_K_ELF) {
    return absl::InvalidArgumentError(absl::StrCat(display, ": not an ELF file"));
  }
  GElf_Ehdr eh;
  if (gelf_getehdr(e.get(), &eh) == nullptr) return ElfError(display, "ELF header");
  ElfSymbols out;
  size_t phnum = 0;
  if (elf_getphdrnum(e.get(), &phnum) != 0) return ElfError(display, "program headers");
  for (size_t i = 0; i < phnum; ++i) {
    GElf_Phdr ph;
    if (gelf_getphdr(e.get(), static_cast<int>(i), &ph) == nullptr) {
      return ElfError(display, "program header");
    }
    if (ph.p_type == PT_LOAD) {
      out.loads.push_back({ph.p_offset, ph.p_filesz, ph.p_vaddr, (ph.p_flags & PF_X) != 0});
    } else if (ph.p_type == PT_NOTE && out.build_id.empty()) {
      out.build_id = BuildIdOf(e.get(), ph);
    }
  }
  if (out.loads.empty()) return absl::InvalidArgumentError(absl::StrCat(display, ": no PT_LOAD"));

  size_t shnum = 0;
  if (elf_getshdrnum(e.get(), &shnum) != 0) return ElfError(display, "section headers");
  // libelf counts no sections when their headers lie past the end of the file.
  if (shnum == 0 && eh.e_shoff != 0) {
    return absl::DataLossError(
        absl::StrCat(display, ": section headers past the end (truncated?)"));
  }
  std::vector<uint64_t> section_ends(shnum, 0);
  Elf_Scn* symtab = nullptr;
  Elf_Scn* dynsym = nullptr;
  GElf_Shdr symtab_sh{}, dynsym_sh{};
  for (Elf_Scn* scn = elf_nextscn(e.get(), nullptr); scn != nullptr;
       scn = elf_nextscn(e.get(), scn)) {
    GElf_Shdr sh;
    if (gelf_getshdr(scn, &sh) == nullptr) return ElfError(display, "section header (truncated?)");
    const size_t idx = elf_ndxscn(scn);
    if (idx < section_ends.size()) section_ends[idx] = sh.sh_addr + sh.sh_size;
    if (sh.sh_type == SHT_SYMTAB && symtab == nullptr) {
      symtab = scn;
      symtab_sh = sh;
    } else if (sh.sh_type == SHT_DYNSYM && dynsym == nullptr) {
      dynsym = scn;
      dynsym_sh = sh;
    }
  }
  std::vector<Candidate> funcs;
  bool symtab_ok = true;
  if (symtab != nullptr) {
    symtab_ok = CollectFunctions(e.get(), symtab, symtab_sh, section_ends, &funcs);
  }
  if (funcs.empty() && dynsym != nullptr) {
    if (!CollectFunctions(e.get(), dynsym, dynsym_sh, section_ends, &funcs)) {
      return ElfError(display, ".dynsym (truncated?)");
    }
    out.from_dynsym = true;
  } else if (!symtab_ok) {
    return ElfError(display, ".symtab (truncated?)");
  }
  std::sort(funcs.begin(), funcs.end(), [](const Candidate& a, const Candidate& b) {
    if (a.addr != b.addr) return a.addr < b.addr;
    if ((a.size == 0) != (b.size == 0)) return a.size != 0;  // sized first
    return a.rank < b.rank;
  });
  for (size_t i = 0; i < funcs.size(); ++i) {
    if (i > 0 && funcs[i - 1].addr == funcs[i].addr &&
        (funcs[i].size == 0 || funcs[i - 1].size != 0)) {
      continue;  // an alias of the one just added
    }
    out.table.Add(funcs[i].addr, funcs[i].size, Demangle(funcs[i].name), funcs[i].limit);
  }
  out.table.Finish();
  return out;
}

void InitLibelf() {
  static const bool ok = elf_version(EV_CURRENT) != EV_NONE;
  (void)ok;
}

}  // namespace

absl::StatusOr<ElfSymbols> ReadElf(int fd, absl::string_view display) {
  InitLibelf();
  return ReadFromElf(elf_begin(fd, ELF_C_READ, nullptr), display);
}

absl::StatusOr<ElfSymbols> ReadElfMemory(const char* data, size_t size, absl::string_view display) {
  InitLibelf();
  // libelf does not write through the image when opened for reading.
  return ReadFromElf(elf_memory(const_cast<char*>(data), size), display);
}

void KallsymsTable::Clear() {
  syms_.clear();
  blob_.clear();
  modules_.assign(1, "");
  module_bases_.assign(1, 0);
  lines_ = nonzero_ = 0;
  text_ = 0;
}

void KallsymsTable::AddLine(absl::string_view line) {
  absl::string_view rest = line;
  const absl::string_view addr_s = NextToken(&rest);
  const absl::string_view type = NextToken(&rest);
  const absl::string_view name = NextToken(&rest);
  uint64_t addr = 0;
  if (name.empty() || type.size() != 1 || !ParseHex(addr_s, &addr)) return;
  ++lines_;
  if (addr != 0) ++nonzero_;
  const char t = type[0];
  if (t != 't' && t != 'T' && t != 'W') return;
  absl::string_view mod = absl::StripAsciiWhitespace(rest);
  uint16_t mi = 0;
  if (absl::ConsumePrefix(&mod, "[") && absl::ConsumeSuffix(&mod, "]") && !mod.empty()) {
    // Modules' symbols come grouped, so the last one is nearly always the one.
    mi = 0xffff;
    for (size_t i = modules_.size(); i-- > 1;) {
      if (modules_[i] == mod) {
        mi = static_cast<uint16_t>(i);
        break;
      }
    }
    if (mi == 0xffff) {
      if (modules_.size() >= 0xffff) return;
      modules_.emplace_back(mod);
      module_bases_.push_back(std::numeric_limits<uint64_t>::max());
      mi = static_cast<uint16_t>(modules_.size() - 1);
    }
    module_bases_[mi] = std::min(module_bases_[mi], addr);
  }
  if (mi == 0 && name == "_text") text_ = addr;
  if (blob_.size() + name.size() + 1 > std::numeric_limits<uint32_t>::max()) return;
  uint32_t off = static_cast<uint32_t>(blob_.size());
  // Ends of the kernel's text areas: no function lies past them.
  if (mi == 0 && (name == "_etext" || name == "_einittext")) {
    off = kEnd;
  } else {
    blob_.append(name.data(), name.size());
    blob_.push_back('\0');
  }
  syms_.push_back({addr, off, mi, 0});
}

void KallsymsTable::Finish(absl::string_view modules) {
  restricted_ = lines_ > 0 && nonzero_ == 0;
  module_bases_[0] = text_;
  // /proc/modules: "name size refs deps state base": each module's end is an end marker.
  for (absl::string_view line : absl::StrSplit(modules, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t size = 0, base = 0;
    if (f.size() < 6 || !absl::SimpleAtoi(f[1], &size) ||
        !ParseHex(absl::StripPrefix(f[5], "0x"), &base) || base == 0) {
      continue;
    }
    for (size_t i = 1; i < modules_.size(); ++i) {
      if (modules_[i] == f[0]) {
        module_bases_[i] = base;
        syms_.push_back({base + size, kEnd, static_cast<uint16_t>(i), 0});
      }
    }
  }
  std::stable_sort(syms_.begin(), syms_.end(),
                   [](const Sym& a, const Sym& b) { return a.addr < b.addr; });
  syms_.erase(std::unique(syms_.begin(), syms_.end(),
                          [](const Sym& a, const Sym& b) { return a.addr == b.addr; }),
              syms_.end());
  if (restricted_) {
    syms_.clear();
    blob_.clear();
  }
  syms_.shrink_to_fit();
  blob_.shrink_to_fit();
}

void KallsymsTable::Parse(absl::string_view kallsyms, absl::string_view modules) {
  Clear();
  for (absl::string_view line : absl::StrSplit(kallsyms, '\n', absl::SkipEmpty())) AddLine(line);
  Finish(modules);
}

std::optional<KallsymsTable::Hit> KallsymsTable::Lookup(uint64_t addr) const {
  auto it = std::upper_bound(syms_.begin(), syms_.end(), addr,
                             [](uint64_t a, const Sym& s) { return a < s.addr; });
  if (it == syms_.begin()) return std::nullopt;
  const Sym& s = *(it - 1);
  Hit hit;
  hit.module = modules_[s.module];
  hit.module_base = module_bases_[s.module];
  if (s.name == kEnd) {  // in a gap past a text area's end, or past the end of all
    if (it == syms_.end()) return std::nullopt;
    return hit;
  }
  // The symbol runs to the next one, if that is of the same module (or ends it); the last one of
  // a module whose end is unknown, and the last of all, only a little way.
  const bool bounded = it != syms_.end() && (it->module == s.module || it->name == kEnd);
  if (!bounded && addr - s.addr >= kKallsymsTailBytes) {
    if (it == syms_.end()) return std::nullopt;
    return hit;
  }
  hit.name = absl::string_view(blob_.data() + s.name);
  return hit;
}

size_t KallsymsTable::bytes() const {
  size_t n = syms_.capacity() * sizeof(Sym) + blob_.capacity();
  for (const std::string& m : modules_) n += sizeof(m) + m.capacity();
  return n;
}

}  // namespace procscope
