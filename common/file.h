// SPDX-License-Identifier: Apache-2.0
// Whole-file reads that do not trust st_size (procfs and sysfs files report 0).
#ifndef PROCSCOPE_COMMON_FILE_H_
#define PROCSCOPE_COMMON_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace procscope {

// errno as a Status; ENOENT and ESRCH (a /proc/<pid> that died while we read it) are NotFound.
absl::Status ErrnoStatus(int err, absl::string_view what);

// Reads `fd` from its current offset to EOF (retrying EINTR). `display` names it in errors.
// More than `max_bytes`: OutOfRangeError (a file that grows while read, or a pipe).
absl::StatusOr<std::string> ReadToEof(int fd, absl::string_view display,
                                      size_t max_bytes = std::string::npos);

// Opens `name` relative to `dirfd` (AT_FDCWD: the working directory) and reads it to EOF.
absl::StatusOr<std::string> ReadFileAt(int dirfd, const std::string& name,
                                       absl::string_view display);

}  // namespace procscope

#endif  // PROCSCOPE_COMMON_FILE_H_
