# SPDX-License-Identifier: Apache-2.0
# libFuzzer targets (tests/fuzz/). The normal (GCC) build only registers one ctest per target,
# fuzz.<name>; the fuzzers themselves are built with clang in a sub-build (build/fuzz, made by the
# fuzz.build test), configured with -DPROCSCOPE_FUZZ=ON, where this builds them instead.
#
#   procscope_fuzzer(<name> <source> <libraries>...)
#
# adds fuzzer fuzz_<name> from <source> linked with <libraries>, seeded from
# tests/fuzz/corpus/<name>/ (replayed first: it holds the regression cases too), and run for
# PROCSCOPE_FUZZ_SECONDS in CI.
set(PROCSCOPE_FUZZ_SECONDS 20 CACHE STRING "How long each fuzz.<name> test fuzzes after the corpus")

if(PROCSCOPE_FUZZ AND NOT TARGET fuzzers)
  add_custom_target(fuzzers)
endif()

function(procscope_fuzzer name source)
  set(corpus ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/${name})
  if(NOT IS_DIRECTORY ${corpus})
    message(FATAL_ERROR "procscope_fuzzer(${name}): no seed corpus at ${corpus}")
  endif()
  if(PROCSCOPE_FUZZ)
    add_executable(fuzz_${name} ${source})
    target_link_libraries(fuzz_${name} PRIVATE ${ARGN})
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
    add_dependencies(fuzzers fuzz_${name})
  elseif(PROCSCOPE_BUILD_TESTS)
    add_test(NAME fuzz.${name}
             COMMAND ${PROJECT_SOURCE_DIR}/tests/fuzz/run_fuzzer.sh
                     ${PROCSCOPE_FUZZ_BUILD_DIR}/tests/fuzz/fuzz_${name} ${corpus}
                     ${CMAKE_BINARY_DIR}/fuzz-runs/${name} ${PROCSCOPE_FUZZ_SECONDS})
    set_tests_properties(fuzz.${name} PROPERTIES LABELS fuzz FIXTURES_REQUIRED fuzz_build
                         TIMEOUT 600)
  endif()
endfunction()
