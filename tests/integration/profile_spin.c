// SPDX-License-Identifier: Apache-2.0
// The profiler's ground truth: spins in one known function for argv[1] milliseconds (0: until
// killed). Built with frame pointers at -O1, the function not inlined, so that every on-CPU
// sample's user stack is profile_spin_known_function <- main <- __libc_start_call_main.
#include <stdlib.h>
#include <time.h>

static double NowMs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

__attribute__((noinline)) unsigned long profile_spin_known_function(double until_ms) {
  volatile unsigned long x = 0;
  for (;;) {
    // The clock is read through the vDSO (user space) only once per 2^20 additions: almost
    // every sample lands in this loop.
    for (int i = 0; i < (1 << 20); ++i) x += (unsigned long)i * 2654435761u;
    if (until_ms > 0 && NowMs() >= until_ms) return x;
  }
}

int main(int argc, char** argv) {
  const double ms = argc > 1 ? atof(argv[1]) : 0;
  const double until = ms > 0 ? NowMs() + ms : 0;
  return (int)(profile_spin_known_function(until) & 1);
}
