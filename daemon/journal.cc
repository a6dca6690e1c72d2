// SPDX-License-Identifier: Apache-2.0
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio_ext.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "status_macros.h"

namespace procscope {
namespace {

constexpr uint64_t kMinMaxBytes = 4096;
// Far above any real ExitEvent: a larger length prefix can only be damage.
constexpr uint32_t kMaxRecordBytes = 1 << 20;

constexpr char kCurrentName[] = "events.journal";
constexpr char kRotatedName[] = "events.journal.1";

// One line: what failed, on which path, and strerror.
absl::Status Errno(int err, absl::string_view what, absl::string_view path) {
  return absl::ErrnoToStatus(err, absl::StrCat("journal: ", what, " ", path));
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// mkdir -p, so that a fresh --journal-dir several levels deep just works.
absl::Status MakeDirs(const std::string& dir) {
  for (size_t pos = dir.find('/', 1);; pos = dir.find('/', pos + 1)) {
    const std::string prefix = dir.substr(0, pos);
    if (mkdir(prefix.c_str(), 0750) != 0 && errno != EEXIST) {
      // EACCES and the like come before EEXIST on some file systems: an existing directory
      // is all that is needed.
      const int err = errno;
      if (!IsDirectory(prefix)) return Errno(err, "cannot create directory", prefix);
    }
    if (pos == std::string::npos) break;
  }
  if (!IsDirectory(dir)) return Errno(ENOTDIR, "cannot use directory", dir);
  return absl::OkStatus();
}

absl::Status SyncDir(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno(errno, "cannot open directory", dir);
  const int rc = fsync(fd);
  const int err = errno;
  close(fd);
  if (rc != 0) return Errno(err, "cannot sync directory", dir);
  return absl::OkStatus();
}

// Whole file, or "" if it does not exist.
absl::StatusOr<std::string> ReadFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::string();
    return Errno(errno, "cannot open", path);
  }
  std::string data;
  char buf[64 * 1024];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      close(fd);
      return Errno(err, "cannot read", path);
    }
    data.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return data;
}

// Appends the records of `data` to `out` up to the first damaged one; returns the length of the
// good prefix. A zero length counts as damage: Append never writes one, and a crash can leave a
// file extended with zeros.
size_t ParseRecords(absl::string_view data, std::vector<v1::ExitEvent>* out) {
  size_t pos = 0;
  while (pos < data.size()) {
    const auto* p = reinterpret_cast<const uint8_t*>(data.data()) + pos;
    const size_t left = data.size() - pos;
    google::protobuf::io::CodedInputStream in(p, static_cast<int>(std::min<size_t>(left, INT_MAX)));
    uint32_t len = 0;
    if (!in.ReadVarint32(&len)) break;
    const size_t header = static_cast<size_t>(in.CurrentPosition());
    if (len == 0 || len > kMaxRecordBytes || len > left - header) break;
    v1::ExitEvent e;
    if (!e.ParseFromArray(p + header, static_cast<int>(len))) break;
    out->push_back(std::move(e));
    pos += header + len;
  }
  return pos;
}

}  // namespace

absl::StatusOr<Journal> Journal::Open(const std::string& dir, uint64_t max_bytes) {
  if (max_bytes < kMinMaxBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "journal: max size ", max_bytes, " bytes is below the minimum of ", kMinMaxBytes));
  }
  if (dir.empty()) return absl::InvalidArgumentError("journal: no directory given");
  RETURN_IF_ERROR(MakeDirs(dir));
  Journal j;
  j.dir_ = dir;
  j.max_bytes_ = max_bytes;
  RETURN_IF_ERROR(j.Recover(j.rotated_path()));
  RETURN_IF_ERROR(j.Recover(j.path()));
  RETURN_IF_ERROR(j.OpenCurrent());
  return j;
}

Journal::Journal(Journal&& other) noexcept { *this = std::move(other); }

Journal& Journal::operator=(Journal&& other) noexcept {
  if (this == &other) return *this;
  if (file_ != nullptr) fclose(file_);
  dir_ = std::move(other.dir_);
  max_bytes_ = other.max_bytes_;
  size_ = other.size_;
  flushed_size_ = other.flushed_size_;
  file_ = std::exchange(other.file_, nullptr);
  recovered_ = std::move(other.recovered_);
  dropped_bytes_ = other.dropped_bytes_;
  other.dir_.clear();
  return *this;
}

Journal::~Journal() {
  // Buffered records reach the page cache; only Flush makes them durable.
  if (file_ != nullptr) fclose(file_);
}

std::string Journal::path() const { return absl::StrCat(dir_, "/", kCurrentName); }

std::string Journal::rotated_path() const { return absl::StrCat(dir_, "/", kRotatedName); }

absl::Status Journal::Recover(const std::string& path) {
  ASSIGN_OR_RETURN(const std::string data, ReadFile(path));
  const size_t good = ParseRecords(data, &recovered_);
  if (good == data.size()) return absl::OkStatus();
  // Cut the damaged tail, or records appended after it would be unreachable at the next start.
  if (truncate(path.c_str(), static_cast<off_t>(good)) != 0) {
    return Errno(errno, "cannot truncate the damaged tail of", path);
  }
  dropped_bytes_ += data.size() - good;
  return absl::OkStatus();
}

absl::Status Journal::OpenCurrent() {
  const std::string p = path();
  const int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return Errno(errno, "cannot open", p);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return Errno(err, "cannot stat", p);
  }
  FILE* f = fdopen(fd, "a");
  if (f == nullptr) {
    const int err = errno;
    close(fd);
    return Errno(err, "cannot open", p);
  }
  file_ = f;
  size_ = flushed_size_ = static_cast<uint64_t>(st.st_size);
  // The file may be new (first start, or just rotated): make its name durable too.
  return SyncDir(dir_);
}

absl::Status Journal::Rotate() {
  RETURN_IF_ERROR(Flush());
  const int rc = fclose(file_);
  const int err = errno;
  file_ = nullptr;
  if (rc != 0) return Errno(err, "cannot close", path());
  // rename replaces the previous events.journal.1 atomically: no moment with neither file.
  if (rename(path().c_str(), rotated_path().c_str()) != 0) {
    return Errno(errno, absl::StrCat("cannot rename ", path(), " to"), rotated_path());
  }
  return OpenCurrent();
}

void Journal::RollBack() {
  // Discard what stdio still buffers, so that it cannot land after the cut.
  __fpurge(file_);
  clearerr(file_);
  if (ftruncate(fileno(file_), static_cast<off_t>(flushed_size_)) != 0) {
    // Reopened (and re-measured) at the next Append.
    fclose(file_);
    file_ = nullptr;
  }
  size_ = flushed_size_;
}

absl::Status Journal::Append(const v1::ExitEvent& e) {
  if (dir_.empty()) return absl::FailedPreconditionError("journal: not open");
  const size_t body = e.ByteSizeLong();
  if (body == 0) {
    // It would read back as the zero fill of a crash.
    return absl::InvalidArgumentError("journal: refusing an empty record");
  }
  if (body > kMaxRecordBytes) {
    return absl::InvalidArgumentError(absl::StrCat("journal: record of ", body, " bytes"));
  }
  std::string rec;
  {
    google::protobuf::io::StringOutputStream zero_copy(&rec);
    google::protobuf::io::CodedOutputStream out(&zero_copy);
    out.WriteVarint32(static_cast<uint32_t>(body));
    e.SerializeWithCachedSizes(&out);
  }
  if (rec.size() > max_bytes_) {
    return absl::InvalidArgumentError(absl::StrCat("journal: record of ", rec.size(),
                                                   " bytes exceeds the max size of ", max_bytes_));
  }
  if (file_ == nullptr) RETURN_IF_ERROR(OpenCurrent());
  if (size_ > 0 && size_ + rec.size() > max_bytes_) RETURN_IF_ERROR(Rotate());
  if (fwrite(rec.data(), 1, rec.size(), file_) != rec.size()) {
    const int err = errno;
    RollBack();
    return Errno(err, "cannot write", path());
  }
  size_ += rec.size();
  return absl::OkStatus();
}

absl::Status Journal::Flush() {
  if (dir_.empty()) return absl::FailedPreconditionError("journal: not open");
  if (file_ == nullptr) return absl::OkStatus();  // nothing buffered since the failure
  if (fflush(file_) != 0) {
    const int err = errno;
    RollBack();
    return Errno(err, "cannot write", path());
  }
  flushed_size_ = size_;
  if (fsync(fileno(file_)) != 0) return Errno(errno, "cannot sync", path());
  return absl::OkStatus();
}

}  // namespace procscope
