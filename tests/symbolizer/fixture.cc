// SPDX-License-Identifier: Apache-2.0
// The symbolizer tests' child: a PIE executable with known C++ functions (a namespace, a template,
// a file-local one, an extern "C" one) and a call into a shared library. It prints "<name> <hex
// address>" for each, then "ready", and waits for EOF on stdin.
// "exit": exits 200 ms after "ready". "map <file>...": also maps each file executable and prints
// "map <file> <hex address>", so a damaged object can be given to the symbolizer as a live mapping.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "fixture_lib.h"

namespace symfix {
namespace inner {

__attribute__((noinline)) int Spin(int n) {
  volatile int acc = 0;
  for (int i = 0; i < n; ++i) acc = acc + i;
  return acc;
}

template <typename T>
__attribute__((noinline)) T Twice(T v) {
  volatile T r = v + v;
  return r;
}
template int Twice<int>(int);

}  // namespace inner
}  // namespace symfix

namespace {
__attribute__((noinline)) int LocalHelper(int n) { return symfix::inner::Spin(n) + 1; }
}  // namespace

extern "C" __attribute__((noinline)) int fixture_c_entry(int n) { return LocalHelper(n) * 2; }

static void Print(const char* name, const void* addr) {
  printf("%s %llx\n", name, static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(addr)));
}

int main(int argc, char** argv) {
  Print("symfix::inner::Spin(int)", reinterpret_cast<const void*>(&symfix::inner::Spin));
  Print("int symfix::inner::Twice<int>(int)",
        reinterpret_cast<const void*>(&symfix::inner::Twice<int>));
  Print("(anonymous namespace)::LocalHelper(int)", reinterpret_cast<const void*>(&LocalHelper));
  Print("fixture_c_entry", reinterpret_cast<const void*>(&fixture_c_entry));
  Print("symfix::LibraryWork(int)", reinterpret_cast<const void*>(&symfix::LibraryWork));
  Print("main", reinterpret_cast<const void*>(&main));
  const bool exit_now = argc > 1 && strcmp(argv[1], "exit") == 0;
  if (argc > 1 && strcmp(argv[1], "map") == 0) {
    for (int i = 2; i < argc; ++i) {
      const int fd = open(argv[i], O_RDONLY | O_CLOEXEC);
      struct stat st;
      if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0) return 2;
      void* p =
          mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) return 3;
      printf("map %s %llx\n", argv[i],
             static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(p)));
      close(fd);
    }
  }
  printf("ready\n");
  fflush(stdout);
  if (exit_now) {
    usleep(200 * 1000);  // a short-lived process: the symbolizer must capture it meanwhile
    return fixture_c_entry(3) + symfix::LibraryWork(2) > 0 ? 0 : 1;
  }
  char buf[64];
  while (read(0, buf, sizeof(buf)) > 0) {
  }
  return symfix::inner::Twice(fixture_c_entry(3)) + symfix::LibraryWork(2) > 0 ? 0 : 1;
}
