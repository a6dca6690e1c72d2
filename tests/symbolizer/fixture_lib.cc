// SPDX-License-Identifier: Apache-2.0
// The shared library of the symbolizer's fixture: a PIE (-fPIC) object with one known function.
#include "fixture_lib.h"

namespace symfix {

__attribute__((noinline)) int LibraryWork(int n) {
  volatile int acc = 0;
  for (int i = 0; i < n; ++i) acc = acc + i * 3;
  return acc;
}

}  // namespace symfix
