// SPDX-License-Identifier: Apache-2.0
// libbpf's messages (its print callback) on procscope's log: its warnings show by default, its
// chatty info lines and the verifier log only at --log_level=debug or with --verbose.
#ifndef PROCSCOPE_DAEMON_LIBBPF_LOG_H_
#define PROCSCOPE_DAEMON_LIBBPF_LOG_H_

#include <bpf/libbpf.h>

#include <cstdarg>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "log.h"

namespace procscope {

// The level a libbpf message is logged at: LIBBPF_WARN is a warning; LIBBPF_INFO (every map,
// every relocation) and LIBBPF_DEBUG (the verifier log) are debug. With `verbose` (--verbose)
// all are warnings, so that they show at the default level.
LogLevel LibbpfLogLevel(enum libbpf_print_level level, bool verbose);

// One formatted libbpf message as log lines: one per line of it (the verifier log comes in one
// message of many lines), empty lines left out, each starting with "libbpf: " (libbpf puts it on
// the first line only).
std::vector<std::string> LibbpfLogLines(absl::string_view message);

// The print callback for libbpf_set_print: formats the message, logs its lines at
// LibbpfLogLevel(level, verbose). Returns the formatted length.
int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args);
void SetLibbpfVerbose(bool verbose);

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_LIBBPF_LOG_H_
