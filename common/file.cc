// SPDX-License-Identifier: Apache-2.0
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "fd.h"

namespace procscope {

absl::Status ErrnoStatus(int err, absl::string_view what) {
  if (err == ENOENT || err == ESRCH) {
    return absl::NotFoundError(absl::StrCat(what, ": ", strerror(err)));
  }
  return absl::ErrnoToStatus(err, what);
}

absl::StatusOr<std::string> ReadToEof(int fd, absl::string_view display, size_t max_bytes) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, absl::StrCat("read ", display));
    }
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      return absl::OutOfRangeError(absl::StrCat(display, ": more than ", max_bytes, " bytes"));
    }
  }
  return out;
}

absl::StatusOr<std::string> ReadFileAt(int dirfd, const std::string& name,
                                       absl::string_view display) {
  ScopedFd fd(openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, absl::StrCat("open ", display));
  return ReadToEof(fd.get(), display);
}

}  // namespace procscope
