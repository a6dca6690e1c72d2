// SPDX-License-Identifier: Apache-2.0
// A busy loop for N seconds in two known functions, built with frame pointers (as every target
// is): the sampler's cost with whole user stacks. Usage: procscope_fp_busy SECONDS
#include <stdlib.h>
#include <time.h>

__attribute__((noinline)) void tick(unsigned long* x) { __asm__ volatile("" : "+m"(*x)); }

__attribute__((noinline)) unsigned long spin(unsigned long n) {
  unsigned long x = 1;
  for (unsigned long i = 0; i < n; i++) {
    x = x * 6364136223846793005UL + i;
    __asm__ volatile("" : "+r"(x));
    if (!(i & 0xfffff)) tick(&x);  // not a leaf: GCC gives it a frame
  }
  return x;
}

int main(int argc, char** argv) {
  const time_t end = time(NULL) + (argc > 1 ? atoi(argv[1]) : 10);
  unsigned long x = 0;
  while (time(NULL) < end) x += spin(10000000);
  return (int)(x & 1);
}
