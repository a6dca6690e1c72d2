# SPDX-License-Identifier: Apache-2.0
# procscope-demo: failure injection into three worker processes, checked against procscoped's
# JSON API. Included from the top-level CMakeLists.txt (paths are relative to this file).
add_executable(procscope-demo
  ${CMAKE_CURRENT_LIST_DIR}/demo_main.cc
  ${CMAKE_CURRENT_LIST_DIR}/demo_api.cc
  ${CMAKE_CURRENT_LIST_DIR}/demo_fleet.cc
  ${CMAKE_CURRENT_LIST_DIR}/demo_scenario.cc
  ${CMAKE_CURRENT_LIST_DIR}/demo_worker.cc)
target_include_directories(procscope-demo PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(procscope-demo PRIVATE procscope_cli procscope_core procscope_proto absl::flags
                      absl::flags_parse absl::flags_usage absl::status absl::statusor
                      absl::strings absl::str_format absl::time)
install(TARGETS procscope-demo RUNTIME DESTINATION bin)
