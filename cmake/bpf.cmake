# SPDX-License-Identifier: Apache-2.0
# Builds CO-RE BPF objects and their libbpf skeletons.
#
#   procscope_bpf_skeleton(<target> NAME <skel-name> SOURCES a.bpf.c ... [HEADERS ...])
#
# compiles each source with clang -target bpf, links them with `bpftool gen object` (so they share
# maps), runs `bpftool gen skeleton`, and makes <target> an INTERFACE library whose include path
# holds <skel-name>.skel.h.

find_program(BPF_CLANG NAMES clang-14 clang REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)

set(PROCSCOPE_BPF_DIR ${CMAKE_BINARY_DIR}/bpf)
file(MAKE_DIRECTORY ${PROCSCOPE_BPF_DIR})

if(PROCSCOPE_VMLINUX_H)
  if(NOT EXISTS ${PROCSCOPE_VMLINUX_H})
    message(FATAL_ERROR "PROCSCOPE_VMLINUX_H=${PROCSCOPE_VMLINUX_H} does not exist")
  endif()
  configure_file(${PROCSCOPE_VMLINUX_H} ${PROCSCOPE_BPF_DIR}/vmlinux.h COPYONLY)
  add_custom_target(procscope_vmlinux_h)
else()
  if(NOT EXISTS ${PROCSCOPE_BTF})
    message(FATAL_ERROR
      "No kernel BTF at ${PROCSCOPE_BTF}. Build on a kernel with CONFIG_DEBUG_INFO_BTF=y, or pass "
      "-DPROCSCOPE_BTF=<btf file> or -DPROCSCOPE_VMLINUX_H=<pinned vmlinux.h>.")
  endif()
  add_custom_command(
    OUTPUT ${PROCSCOPE_BPF_DIR}/vmlinux.h
    COMMAND ${BPFTOOL} btf dump file ${PROCSCOPE_BTF} format c > ${PROCSCOPE_BPF_DIR}/vmlinux.h.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${PROCSCOPE_BPF_DIR}/vmlinux.h.tmp
            ${PROCSCOPE_BPF_DIR}/vmlinux.h
    DEPENDS ${PROCSCOPE_BTF}
    COMMENT "Generating vmlinux.h from ${PROCSCOPE_BTF}")
  add_custom_target(procscope_vmlinux_h DEPENDS ${PROCSCOPE_BPF_DIR}/vmlinux.h)
endif()

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|amd64")
  set(PROCSCOPE_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(PROCSCOPE_BPF_ARCH arm64)
else()
  set(PROCSCOPE_BPF_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

function(procscope_bpf_skeleton target)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;HEADERS" ${ARGN})
  set(objects)
  set(headers)
  foreach(h ${ARG_HEADERS})
    list(APPEND headers ${CMAKE_SOURCE_DIR}/${h})
  endforeach()
  foreach(src ${ARG_SOURCES})
    get_filename_component(stem ${src} NAME_WE)
    set(obj ${PROCSCOPE_BPF_DIR}/${ARG_NAME}.${stem}.bpf.o)
    add_custom_command(
      OUTPUT ${obj}
      COMMAND ${BPF_CLANG} -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_${PROCSCOPE_BPF_ARCH}
              -Wall -Wextra -Werror -Wno-unused-parameter
              -I${PROCSCOPE_BPF_DIR} -I${CMAKE_SOURCE_DIR}/bpf
              -c ${CMAKE_SOURCE_DIR}/${src} -o ${obj}
      DEPENDS ${CMAKE_SOURCE_DIR}/${src} ${headers} ${PROCSCOPE_BPF_DIR}/vmlinux.h
      COMMENT "BPF ${src}")
    list(APPEND objects ${obj})
  endforeach()
  set(linked ${PROCSCOPE_BPF_DIR}/${ARG_NAME}.bpf.o)
  set(skel ${PROCSCOPE_BPF_DIR}/${ARG_NAME}.skel.h)
  add_custom_command(
    OUTPUT ${linked} ${skel}
    COMMAND ${BPFTOOL} gen object ${linked} ${objects}
    COMMAND ${BPFTOOL} gen skeleton ${linked} name ${ARG_NAME} > ${skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skel}.tmp ${skel}
    DEPENDS ${objects}
    COMMENT "Skeleton ${ARG_NAME}.skel.h")
  add_custom_target(${target}_gen DEPENDS ${skel})
  add_dependencies(${target}_gen procscope_vmlinux_h)
  add_library(${target} INTERFACE)
  add_dependencies(${target} ${target}_gen)
  target_include_directories(${target} INTERFACE ${PROCSCOPE_BPF_DIR} ${CMAKE_SOURCE_DIR}/bpf)
  target_link_libraries(${target} INTERFACE PkgConfig::LIBBPF)
endfunction()
