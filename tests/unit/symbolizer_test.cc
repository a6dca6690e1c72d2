// SPDX-License-Identifier: Apache-2.0
// The symbolizer's pure parts on fixed inputs: maps lines, kallsyms text, symbol tables, and the
// ELF files the test build makes (tests/CMakeLists.txt: a PIE executable, its stripped copy, a
// shared library), whole, truncated and garbage.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "fd.h"
#include "gtest/gtest.h"
#include "profile.h"
#include "symbol_tables.h"

namespace procscope {
namespace {

TEST(MapsLine, ParsesAFileMapping) {
  std::optional<MapsLine> m = ParseMapsLine(
      "55d0c3a00000-55d0c3a21000 r-xp 00002000 fe:01 1311234                    /usr/bin/my prog");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->start, 0x55d0c3a00000u);
  EXPECT_EQ(m->end, 0x55d0c3a21000u);
  EXPECT_EQ(m->offset, 0x2000u);
  EXPECT_EQ(m->inode, 1311234u);
  EXPECT_TRUE(m->executable);
  EXPECT_FALSE(m->deleted);
  EXPECT_EQ(m->range, "55d0c3a00000-55d0c3a21000");
  EXPECT_EQ(m->path, "/usr/bin/my prog");
}

TEST(MapsLine, DeletedAnonymousAndSpecial) {
  std::optional<MapsLine> d =
      ParseMapsLine("7f0000000000-7f0000001000 r-xp 00000000 fe:01 42 /tmp/x (deleted)");
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->deleted);
  EXPECT_EQ(d->path, "/tmp/x");
  std::optional<MapsLine> anon = ParseMapsLine("7f0000000000-7f0000001000 rw-p 00000000 00:00 0");
  ASSERT_TRUE(anon);
  EXPECT_FALSE(anon->executable);
  EXPECT_EQ(anon->path, "");
  std::optional<MapsLine> vdso =
      ParseMapsLine("7ffd1f5e6000-7ffd1f5e8000 r-xp 00000000 00:00 0      [vdso]");
  ASSERT_TRUE(vdso);
  EXPECT_EQ(vdso->path, "[vdso]");
}

TEST(MapsLine, RejectsGarbage) {
  for (const char* bad : {"", "hello", "1000-0500 r-xp 0 fe:01 1 /x", "zz-10 r-xp 0 fe:01 1 /x",
                          "1000-2000 r 0 fe:01 1 /x", "1000-2000 r-xp 0 fe01 1 /x",
                          "1000-2000 r-xp 0 fe:01", "11111111111111111-2 r-xp 0 0:0 1"}) {
    EXPECT_FALSE(ParseMapsLine(bad)) << bad;
  }
}

TEST(MapsLine, ExecutableOnlySortedNoOverlap) {
  const std::vector<MapsLine> maps = ParseExecutableMaps(
      "3000-4000 r-xp 00000000 fe:01 2 /b\n"
      "1000-2000 r--p 00000000 fe:01 1 /a\n"
      "garbage line\n"
      "1000-2000 r-xp 00001000 fe:01 1 /a\n"
      "1800-2800 r-xp 00000000 fe:01 3 /overlap\n");
  ASSERT_EQ(maps.size(), 2u);
  EXPECT_EQ(maps[0].path, "/a");
  EXPECT_EQ(maps[0].offset, 0x1000u);
  EXPECT_EQ(maps[1].path, "/b");
}

TEST(SymbolTable, SizedSymbolsCoverOnlyTheirExtent) {
  SymbolTable t;
  t.Add(0x1000, 0x10, "a");
  t.Add(0x1100, 0x20, "b");
  t.Add(0x1100, 0x30, "b_alias");  // same address: the first added wins
  t.Finish();
  EXPECT_EQ(t.size(), 2u);
  EXPECT_FALSE(t.Lookup(0xfff));
  EXPECT_EQ(t.Lookup(0x1000)->name, "a");
  EXPECT_EQ(t.Lookup(0x100f)->name, "a");
  EXPECT_FALSE(t.Lookup(0x1010)) << "past a's size is not a";
  EXPECT_EQ(t.Lookup(0x111f)->name, "b");
  EXPECT_EQ(t.Lookup(0x111f)->start, 0x1100u);
  EXPECT_FALSE(t.Lookup(0x1120));
}

TEST(SymbolTable, ZeroSizeSymbolsAreTheLastResort) {
  SymbolTable t;
  t.Add(0x1000, 0x100, "sized");
  t.Add(0x1010, 0, "label_inside_sized");  // covered by `sized`: dropped
  t.Add(0x2000, 0, "asm_entry", 0x3000);   // runs to the next symbol
  t.Add(0x2400, 0x10, "next");
  t.Add(0x5000, 0, "tail", 0x5100);  // runs to its section's end
  t.Finish();
  EXPECT_EQ(t.Lookup(0x1010)->name, "sized");
  EXPECT_EQ(t.Lookup(0x23ff)->name, "asm_entry");
  EXPECT_EQ(t.Lookup(0x2400)->name, "next");
  EXPECT_FALSE(t.Lookup(0x2410));
  EXPECT_EQ(t.Lookup(0x50ff)->name, "tail");
  EXPECT_FALSE(t.Lookup(0x5100));
}

TEST(Demangle, CxxNamesAndOthers) {
  EXPECT_EQ(Demangle("_ZN3foo3barEv"), "foo::bar()");
  EXPECT_EQ(Demangle("_ZN6symfix5inner5TwiceIiEET_S2_"), "int symfix::inner::Twice<int>(int)");
  EXPECT_EQ(Demangle("main"), "main");
  EXPECT_EQ(Demangle("_Znot_valid!"), "_Znot_valid!");
}

constexpr char kKallsyms[] =
    "ffffffff81000000 T _stext\n"
    "ffffffff81000000 T _text\n"
    "ffffffff81000100 T do_one\n"
    "ffffffff81000200 t local_two\n"
    "ffffffff81000280 D some_data\n"
    "ffffffff81000300 T schedule\n"
    "ffffffff81000400 T _etext\n"
    "ffffffff81100000 T _sinittext\n"
    "ffffffff81100010 t init_fn\n"
    "ffffffff81100100 T _einittext\n"
    "ffffffffc0001000 t ext4_fill_super\t[ext4]\n"
    "ffffffffc0001800 t ext4_last\t[ext4]\n"
    "ffffffffc0040000 t bpf_prog_abc_ps_switch\t[bpf]\n"
    "not a line\n";

TEST(Kallsyms, NamesKernelAndModuleText) {
  KallsymsTable k;
  k.Parse(kKallsyms);
  EXPECT_FALSE(k.restricted());
  EXPECT_EQ(k.Lookup(0xffffffff81000150)->name, "do_one");
  EXPECT_EQ(k.Lookup(0xffffffff81000150)->module, "");
  EXPECT_EQ(k.Lookup(0xffffffff81000150)->module_base, 0xffffffff81000000u);
  EXPECT_EQ(k.Lookup(0xffffffff81000290)->name, "local_two") << "data symbols are not text";
  EXPECT_EQ(k.Lookup(0xffffffff81000300)->name, "schedule");
  EXPECT_EQ(k.Lookup(0xffffffff81000500)->name, "") << "past _etext";
  EXPECT_EQ(k.Lookup(0xffffffff81100020)->name, "init_fn");
  std::optional<KallsymsTable::Hit> m = k.Lookup(0xffffffffc0001004);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->name, "ext4_fill_super");
  EXPECT_EQ(m->module, "ext4");
  EXPECT_EQ(m->module_base, 0xffffffffc0001000u);
  // The last symbol of a module whose end is unknown names only a little way past its start.
  EXPECT_EQ(k.Lookup(0xffffffffc0001810)->name, "ext4_last");
  EXPECT_EQ(k.Lookup(0xffffffffc0001800 + kKallsymsTailBytes)->name, "");
  // Past the last symbol of all: nothing, so the caller may re-read kallsyms.
  EXPECT_EQ(k.Lookup(0xffffffffc0040010)->name, "bpf_prog_abc_ps_switch");
  EXPECT_FALSE(k.Lookup(0xffffffffc0040000 + kKallsymsTailBytes));
  EXPECT_FALSE(k.Lookup(0x1000));
}

TEST(Kallsyms, ModulesBoundTheirSymbols) {
  KallsymsTable k;
  k.Parse(kKallsyms, "ext4 8192 1 - Live 0xffffffffc0000000\nbroken line\n");
  EXPECT_EQ(k.Lookup(0xffffffffc0001f00)->name, "ext4_last");  // inside the module
  EXPECT_EQ(k.Lookup(0xffffffffc0001f00)->module_base, 0xffffffffc0000000u);
  EXPECT_EQ(k.Lookup(0xffffffffc0002000)->name, "") << "past the module's end";
}

TEST(Kallsyms, RestrictedAddressesAreAState) {
  KallsymsTable k;
  k.Parse("0000000000000000 T _text\n0000000000000000 T schedule\n");
  EXPECT_TRUE(k.restricted());
  EXPECT_EQ(k.size(), 0u);
  EXPECT_FALSE(k.Lookup(0xffffffff81000300));
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<ElfSymbols> ReadElfPath(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(path);
  ScopedFd guard(fd);
  return ReadElf(fd, path);
}

std::string TempFile(const std::string& bytes) {
  char name[] = "/tmp/symbolizer_test_XXXXXX";
  const int fd = mkstemp(name);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  close(fd);
  return name;
}

// The address of `name` in `elf`'s table, found by scanning (the test's own reading of it).
std::optional<uint64_t> FindByName(const ElfSymbols& elf, absl::string_view name) {
  for (const ElfSymbols::Load& l : elf.loads) {
    if (!l.exec) continue;
    for (uint64_t a = l.vaddr; a < l.vaddr + l.filesz; ++a) {
      std::optional<SymbolTable::Hit> h = elf.table.Lookup(a);
      if (h && h->name == name) return h->start;
    }
  }
  return std::nullopt;
}

TEST(Elf, FixtureSymtabHasDemangledFunctions) {
  absl::StatusOr<ElfSymbols> elf = ReadElfPath(SYMFIX_EXE);
  ASSERT_TRUE(elf.ok()) << elf.status();
  EXPECT_FALSE(elf->from_dynsym);
  EXPECT_EQ(elf->build_id.size(), 40u) << "linked with --build-id (sha1)";
  EXPECT_GT(elf->table.size(), 5u);
  for (const char* fn : {"symfix::inner::Spin(int)", "int symfix::inner::Twice<int>(int)",
                         "(anonymous namespace)::LocalHelper(int)", "fixture_c_entry", "main"}) {
    EXPECT_TRUE(FindByName(*elf, fn)) << fn;
  }
}

TEST(Elf, StrippedCopyFallsBackToDynsym) {
  absl::StatusOr<ElfSymbols> elf = ReadElfPath(SYMFIX_STRIPPED);
  ASSERT_TRUE(elf.ok()) << elf.status();
  EXPECT_TRUE(elf->from_dynsym);
  EXPECT_TRUE(FindByName(*elf, "symfix::inner::Spin(int)"));
  EXPECT_TRUE(FindByName(*elf, "fixture_c_entry"));
  EXPECT_FALSE(FindByName(*elf, "(anonymous namespace)::LocalHelper(int)"))
      << "file-local functions are not in .dynsym";
  absl::StatusOr<ElfSymbols> full = ReadElfPath(SYMFIX_EXE);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->build_id, elf->build_id) << "strip keeps the build-id note";
}

TEST(Elf, SharedLibrary) {
  absl::StatusOr<ElfSymbols> elf = ReadElfPath(SYMFIX_LIB);
  ASSERT_TRUE(elf.ok()) << elf.status();
  EXPECT_TRUE(FindByName(*elf, "symfix::LibraryWork(int)"));
  // A shared library's file offsets and vaddrs agree in its text segment (p_vaddr - p_offset).
  std::optional<uint64_t> v = elf->VaddrOf(elf->loads[0].offset);
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, elf->loads[0].vaddr);
  EXPECT_FALSE(elf->VaddrOf(uint64_t{1} << 40));
}

TEST(Elf, DamagedFilesAreErrorsNotCrashes) {
  const std::string lib = ReadAll(SYMFIX_LIB);
  ASSERT_GT(lib.size(), 4096u);
  std::mt19937 rng(12345);
  std::vector<std::string> inputs = {"",
                                     "\x7f"
                                     "ELF",
                                     lib.substr(0, 64), lib.substr(0, 700),
                                     lib.substr(0, lib.size() / 2)};
  std::string noise(8192, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  inputs.push_back(noise);
  std::string bad_header = lib;
  for (size_t i = 0x20; i < 0x40; ++i) bad_header[i] = '\xff';  // phoff, shoff
  inputs.push_back(bad_header);
  int errors = 0;
  for (const std::string& in : inputs) {
    const std::string path = TempFile(in);
    absl::StatusOr<ElfSymbols> elf = ReadElfPath(path);
    EXPECT_FALSE(elf.ok()) << in.size() << " bytes";
    if (!elf.ok()) {
      ++errors;
      EXPECT_FALSE(elf.status().message().empty());
    }
    absl::StatusOr<ElfSymbols> mem = ReadElfMemory(in.data(), in.size(), "mem");
    EXPECT_EQ(mem.ok(), elf.ok()) << in.size();
    unlink(path.c_str());
  }
  EXPECT_GE(errors, 5) << "empty, magic only, header only, garbage, bad offsets";
  // Random bit flips anywhere: whatever comes back, no crash.
  for (int i = 0; i < 200; ++i) {
    std::string flipped = lib;
    for (int j = 0; j < 16; ++j)
      flipped[rng() % flipped.size()] ^= static_cast<char>(1 << (rng() % 8));
    absl::StatusOr<ElfSymbols> mem = ReadElfMemory(flipped.data(), flipped.size(), "flipped");
    if (mem.ok()) mem->table.Lookup(0x1000);
  }
}

TEST(Frame, DisplayFallsBackToModuleOffset) {
  Frame f;
  f.module = "/usr/lib/libfoo.so.1";
  f.offset = 0x1234;
  EXPECT_EQ(f.Display(), "libfoo.so.1+0x1234");
  f.function = "foo()";
  EXPECT_EQ(f.Display(), "foo()");
}

}  // namespace
}  // namespace procscope
