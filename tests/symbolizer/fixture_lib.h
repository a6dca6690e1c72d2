// SPDX-License-Identifier: Apache-2.0
#ifndef PROCSCOPE_TESTS_SYMBOLIZER_FIXTURE_LIB_H_
#define PROCSCOPE_TESTS_SYMBOLIZER_FIXTURE_LIB_H_

namespace symfix {
int LibraryWork(int n);
}  // namespace symfix

#endif  // PROCSCOPE_TESTS_SYMBOLIZER_FIXTURE_LIB_H_
