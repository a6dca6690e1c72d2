// SPDX-License-Identifier: Apache-2.0
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio_ext.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "exits.h"
#include "log.h"
#include "status_macros.h"

namespace procscope {
namespace {

constexpr uint64_t kMinMaxBytes = 4096;
// Far above any real ExitEvent: a larger length can only be damage.
constexpr uint32_t kMaxRecordBytes = 1 << 20;

constexpr char kCurrentName[] = "events.journal";
constexpr char kRotatedName[] = "events.journal.1";
constexpr char kDamagedInfix[] = ".damaged-";

constexpr char kFileHeader[] = "PSJRNL2\n";
constexpr size_t kFileHeaderBytes = sizeof(kFileHeader) - 1;
// 0xF5 never occurs in UTF-8, so the sanitised strings of a payload rarely hold a false magic
// (and the CRC rejects one that does).
constexpr char kMagic[] = "\xF5PSR";
constexpr size_t kMagicBytes = 4;
constexpr size_t kRecordHeaderBytes = 12;  // magic, length, CRC

constexpr size_t kReadChunk = 256 * 1024;

// One line: what failed, on which path, and strerror.
absl::Status Errno(int err, absl::string_view what, absl::string_view path) {
  return absl::ErrnoToStatus(err, absl::StrCat("journal: ", what, " ", path));
}

void PutLe32(uint32_t v, char* out) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint32_t GetLe32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return u[0] | (u[1] << 8) | (u[2] << 16) | (static_cast<uint32_t>(u[3]) << 24);
}

// CRC-32 (zlib) of the 4 length bytes and the payload: a damaged length fails it too.
uint32_t RecordCrc(const char* len_bytes, const char* payload, size_t n) {
  uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(len_bytes), 4);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(payload), static_cast<uInt>(n));
  return static_cast<uint32_t>(crc);
}

// The framed record of a serialized payload.
std::string Frame(absl::string_view payload) {
  std::string rec(kRecordHeaderBytes, '\0');
  memcpy(rec.data(), kMagic, kMagicBytes);
  PutLe32(static_cast<uint32_t>(payload.size()), rec.data() + 4);
  PutLe32(RecordCrc(rec.data() + 4, payload.data(), payload.size()), rec.data() + 8);
  rec.append(payload.data(), payload.size());
  return rec;
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

const char* FileType(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISLNK(m)) return "a symbolic link";
  return "not a regular file";
}

// Opens a journal file without following a symbolic link and without blocking on a FIFO, and
// refuses anything but a regular file. -1 with ENOENT (only with `flags` lacking O_CREAT) when
// it does not exist.
absl::StatusOr<int> OpenRegular(const std::string& path, int flags, mode_t mode = 0640) {
  const int fd = open(path.c_str(), flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, mode);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT && (flags & O_CREAT) == 0) return -1;
    struct stat st;
    if (err == ELOOP && lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "journal: ", path, " is a symbolic link; refusing to follow it (remove it)"));
    }
    if ((err == ENXIO || err == EISDIR || err == EWOULDBLOCK) && lstat(path.c_str(), &st) == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "journal: ", path, " is ", FileType(st.st_mode), ", not a regular file (remove it)"));
    }
    return Errno(err, "cannot open", path);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return Errno(err, "cannot stat", path);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return absl::FailedPreconditionError(absl::StrCat(
        "journal: ", path, " is ", FileType(st.st_mode), ", not a regular file (remove it)"));
  }
  // Regular files ignore O_NONBLOCK, but clear it so that nothing depends on that.
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

// A window on a journal file's bytes, read in chunks: at most one record plus one chunk is in
// memory, whatever the file's size.
class Reader {
 public:
  explicit Reader(int fd) : fd_(fd) {}
  explicit Reader(absl::string_view data) : fd_(-1), buf_(data), eof_(true) {}

  // Buffers up to `n` bytes from the cursor; returns how many are buffered (fewer at the end).
  absl::StatusOr<size_t> Need(size_t n) {
    if (buf_.size() - pos_ < n && !eof_) {
      buf_.erase(0, pos_);
      base_ += pos_;
      pos_ = 0;
      while (buf_.size() < n && !eof_) {
        const size_t old = buf_.size();
        const size_t want = std::max(kReadChunk, n - old);
        buf_.resize(old + want);
        const ssize_t got = read(fd_, buf_.data() + old, want);
        const int err = errno;
        buf_.resize(old + static_cast<size_t>(std::max<ssize_t>(got, 0)));
        if (got == 0) eof_ = true;
        if (got < 0 && err != EINTR) return absl::ErrnoToStatus(err, "journal: cannot read");
      }
    }
    return std::min(n, buf_.size() - pos_);
  }
  const char* at() const { return buf_.data() + pos_; }
  uint64_t offset() const { return base_ + pos_; }
  void Skip(size_t n) {
    // Never past the buffer: callers skip what Need returned.
    n = std::min(n, buf_.size() - pos_);
    pos_ += n;
    if (pos_ == buf_.size()) {
      base_ += pos_;
      buf_.clear();
      pos_ = 0;
    }
  }
  // Skips at least one byte, then up to the next buffered `c` (or all that is buffered).
  void SkipToNext(char c) {
    Skip(1);
    const void* hit = memchr(at(), c, buf_.size() - pos_);
    Skip(hit == nullptr ? buf_.size() - pos_ : static_cast<const char*>(hit) - at());
  }

 private:
  const int fd_;
  std::string buf_;
  size_t pos_ = 0;     // cursor in buf_
  uint64_t base_ = 0;  // file offset of buf_[0]
  bool eof_ = false;
};

// Runs of damaged bytes, each counted once.
class DamageCount {
 public:
  void Begin(uint64_t offset) {
    if (!open_) start_ = offset, open_ = true;
  }
  void End(uint64_t offset) {
    if (open_) total_ += offset - start_, open_ = false;
  }
  uint64_t total() const { return total_; }

 private:
  bool open_ = false;
  uint64_t start_ = 0;
  uint64_t total_ = 0;
};

struct ScanResult {
  uint64_t records = 0;
  uint64_t damaged_bytes = 0;
  bool legacy = false;  // the previous format: varint length + message
};

// Calls on_record(payload, event) for each good record.
using PayloadFn = std::function<void(absl::string_view, v1::ExitEvent&&)>;

// A crafted file could make every byte a candidate record of 1 MiB with a bad CRC: past this
// much work on candidates that fail, the rest of the file counts as damaged.
constexpr uint64_t kMaxFailedCandidateBytes = 256 << 20;

absl::Status ScanFramed(Reader& r, DamageCount& damage, ScanResult& out, const PayloadFn& fn) {
  uint64_t failed_candidate_bytes = 0;
  for (;;) {
    ASSIGN_OR_RETURN(size_t avail, r.Need(kRecordHeaderBytes));
    if (avail == 0) break;
    if (avail < kRecordHeaderBytes || memcmp(r.at(), kMagic, kMagicBytes) != 0) {
      damage.Begin(r.offset());
      r.SkipToNext(kMagic[0]);
      continue;
    }
    const uint32_t len = GetLe32(r.at() + 4);
    const uint32_t crc = GetLe32(r.at() + 8);
    if (len == 0 || len > kMaxRecordBytes) {
      damage.Begin(r.offset());
      r.SkipToNext(kMagic[0]);
      continue;
    }
    ASSIGN_OR_RETURN(avail, r.Need(kRecordHeaderBytes + len));
    if (avail < kRecordHeaderBytes + len ||
        RecordCrc(r.at() + 4, r.at() + kRecordHeaderBytes, len) != crc) {
      damage.Begin(r.offset());
      failed_candidate_bytes += len;
      if (failed_candidate_bytes > kMaxFailedCandidateBytes) {
        for (;;) {
          ASSIGN_OR_RETURN(avail, r.Need(kReadChunk));
          if (avail == 0) break;
          r.Skip(avail);
        }
        break;
      }
      r.SkipToNext(kMagic[0]);
      continue;
    }
    damage.End(r.offset());
    const absl::string_view payload(r.at() + kRecordHeaderBytes, len);
    v1::ExitEvent e;
    if (ParseExitEventLenient(payload, &e)) {
      ++out.records;
      if (fn) fn(payload, std::move(e));
    } else {
      // Intact (the CRC matches) but not an ExitEvent: costs only itself.
      damage.Begin(r.offset());
      r.Skip(kRecordHeaderBytes + len);
      damage.End(r.offset());
      continue;
    }
    r.Skip(kRecordHeaderBytes + len);
  }
  return absl::OkStatus();
}

// The previous format has no checksum to resync by: it is read up to its first damage.
absl::Status ScanLegacy(Reader& r, DamageCount& damage, ScanResult& out, const PayloadFn& fn) {
  for (;;) {
    ASSIGN_OR_RETURN(size_t avail, r.Need(5));
    if (avail == 0) break;
    uint32_t len = 0;
    size_t header = 0;
    bool terminated = false;
    while (header < avail && !terminated) {
      const uint8_t b = static_cast<uint8_t>(r.at()[header]);
      len |= static_cast<uint32_t>(b & 0x7f) << (7 * header);
      terminated = (b & 0x80) == 0;
      ++header;
    }
    bool ok = terminated && len > 0 && len <= kMaxRecordBytes;
    v1::ExitEvent e;
    if (ok) {
      ASSIGN_OR_RETURN(avail, r.Need(header + len));
      ok = avail >= header + len &&
           ParseExitEventLenient(absl::string_view(r.at() + header, len), &e);
    }
    if (!ok) {
      damage.Begin(r.offset());
      for (;;) {
        ASSIGN_OR_RETURN(avail, r.Need(kReadChunk));
        if (avail == 0) break;
        r.Skip(avail);
      }
      break;
    }
    ++out.records;
    if (fn) fn(absl::string_view(r.at() + header, len), std::move(e));
    r.Skip(header + len);
  }
  return absl::OkStatus();
}

absl::StatusOr<ScanResult> Scan(Reader& r, const PayloadFn& fn) {
  ScanResult out;
  DamageCount damage;
  ASSIGN_OR_RETURN(const size_t avail, r.Need(kFileHeaderBytes + kMagicBytes));
  if (avail == 0) return out;
  if (avail >= kFileHeaderBytes && memcmp(r.at(), kFileHeader, kFileHeaderBytes) == 0) {
    r.Skip(kFileHeaderBytes);
  } else if (avail == kFileHeaderBytes + kMagicBytes &&
             memcmp(r.at() + kFileHeaderBytes, kMagic, kMagicBytes) == 0) {
    damage.Begin(0);  // a damaged file header, records after it
    r.Skip(kFileHeaderBytes);
  } else if (avail < kFileHeaderBytes && memcmp(r.at(), kFileHeader, avail) == 0) {
    damage.Begin(0);  // a torn file header: a crash right after creating the file
    r.Skip(avail);
  } else {
    out.legacy = true;
    RETURN_IF_ERROR(ScanLegacy(r, damage, out, fn));
    damage.End(r.offset());
    out.damaged_bytes = damage.total();
    return out;
  }
  RETURN_IF_ERROR(ScanFramed(r, damage, out, fn));
  damage.End(r.offset());
  out.damaged_bytes = damage.total();
  return out;
}

// "<path>.damaged-<unix seconds>", made unique.
std::string DamagedName(const std::string& path) {
  const std::string base = absl::StrCat(path, kDamagedInfix, absl::ToUnixSeconds(absl::Now()));
  std::string name = base;
  struct stat st;
  for (int i = 1; lstat(name.c_str(), &st) == 0; ++i) name = absl::StrCat(base, "-", i);
  return name;
}

// Keeps the newest `keep` damaged copies in `dir`.
void PruneDamaged(const std::string& dir, int keep) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  std::vector<std::pair<int64_t, std::string>> found;  // (unix time, name)
  while (dirent* de = readdir(d)) {
    absl::string_view name = de->d_name;
    if (!absl::StartsWith(name, kCurrentName)) continue;
    const size_t at = name.find(kDamagedInfix);
    if (at == absl::string_view::npos) continue;
    absl::string_view t = name.substr(at + strlen(kDamagedInfix));
    t = t.substr(0, t.find('-'));
    int64_t secs = 0;
    if (!absl::SimpleAtoi(t, &secs)) continue;
    found.emplace_back(secs, std::string(name));
  }
  closedir(d);
  if (found.size() <= static_cast<size_t>(keep)) return;
  std::sort(found.begin(), found.end());
  for (size_t i = 0; i + keep < found.size(); ++i) {
    unlink(absl::StrCat(dir, "/", found[i].second).c_str());
  }
}

}  // namespace

uint64_t ParseJournalBytes(absl::string_view data, const Journal::RecordFn& on_record) {
  Reader r(data);
  absl::StatusOr<ScanResult> s = Scan(r, [&](absl::string_view, v1::ExitEvent&& e) {
    if (on_record) on_record(std::move(e));
  });
  return s.ok() ? s->damaged_bytes : data.size();
}

absl::StatusOr<Journal> Journal::Open(const std::string& dir, uint64_t max_bytes,
                                      const RecordFn& on_record, LogFn log) {
  if (max_bytes < kMinMaxBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "journal: max size ", max_bytes, " bytes is below the minimum of ", kMinMaxBytes));
  }
  if (dir.empty()) return absl::InvalidArgumentError("journal: no directory given");
  RETURN_IF_ERROR(MakeDirs(dir));
  Journal j;
  j.dir_ = dir;
  j.max_bytes_ = max_bytes;
  j.log_ = std::move(log);
  // Leftovers of a crash during a rewrite (unlink never follows a symbolic link).
  unlink(absl::StrCat(j.rotated_path(), ".tmp").c_str());
  unlink(absl::StrCat(j.path(), ".tmp").c_str());
  RETURN_IF_ERROR(j.Recover(j.rotated_path(), on_record));
  RETURN_IF_ERROR(j.Recover(j.path(), on_record));
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
  buffered_records_ = other.buffered_records_;
  file_ = std::exchange(other.file_, nullptr);
  log_ = std::move(other.log_);
  recovered_records_ = other.recovered_records_;
  damaged_bytes_ = other.damaged_bytes_;
  dropped_records_ = other.dropped_records_;
  dropped_bytes_ = other.dropped_bytes_;
  last_log_ = other.last_log_;
  unlogged_drops_ = other.unlogged_drops_;
  other.dir_.clear();
  return *this;
}

Journal::~Journal() {
  // Buffered records reach the page cache; only Flush makes them durable.
  if (file_ != nullptr) fclose(file_);
}

std::string Journal::path() const { return absl::StrCat(dir_, "/", kCurrentName); }

std::string Journal::rotated_path() const { return absl::StrCat(dir_, "/", kRotatedName); }

void Journal::Log(absl::string_view line) const {
  absl::ConsumePrefix(&line, "journal: ");  // the default prefix says it already
  if (log_) {
    log_(line);
  } else {
    LOG(WARNING) << "crash journal: " << line;
  }
}

absl::Status Journal::Recover(const std::string& path, const RecordFn& on_record) {
  ASSIGN_OR_RETURN(const int fd, OpenRegular(path, O_RDONLY));
  if (fd < 0) return absl::OkStatus();  // absent
  absl::StatusOr<ScanResult> scanned;
  {
    Reader r(fd);
    scanned = Scan(r, [&](absl::string_view, v1::ExitEvent&& e) {
      if (on_record) on_record(std::move(e));
    });
  }
  if (!scanned.ok()) {
    close(fd);
    return absl::Status(scanned.status().code(),
                        absl::StrCat(scanned.status().message(), " ", path));
  }
  recovered_records_ += scanned->records;
  damaged_bytes_ += scanned->damaged_bytes;
  if (!scanned->legacy && scanned->damaged_bytes == 0) {
    close(fd);
    return absl::OkStatus();
  }

  // Copy the good records to a fresh file in the current format, then put it in place.
  const std::string tmp = absl::StrCat(path, ".tmp");
  unlink(tmp.c_str());  // a leftover of a crash during a previous rewrite
  absl::Status written = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(const int out_fd, OpenRegular(tmp, O_WRONLY | O_CREAT | O_EXCL));
    FILE* out = fdopen(out_fd, "w");
    if (out == nullptr) {
      close(out_fd);
      return Errno(errno, "cannot open", tmp);
    }
    bool ok = fwrite(kFileHeader, 1, kFileHeaderBytes, out) == kFileHeaderBytes;
    if (lseek(fd, 0, SEEK_SET) != 0) ok = false;
    Reader r(fd);
    absl::StatusOr<ScanResult> again = Scan(r, [&](absl::string_view payload, v1::ExitEvent&& e) {
      if (!ok) return;
      // A legacy payload may hold invalid UTF-8: write what the reader made of it.
      std::string clean;
      if (!e.SerializeToString(&clean)) {
        ok = false;
        return;
      }
      const std::string rec = Frame(payload == clean ? payload : clean);
      ok = fwrite(rec.data(), 1, rec.size(), out) == rec.size();
    });
    int err = errno;
    if (ok && again.ok() && fflush(out) == 0 && fsync(fileno(out)) == 0) {
      fclose(out);
      return absl::OkStatus();
    }
    err = errno;
    fclose(out);
    unlink(tmp.c_str());
    if (!again.ok()) return again.status();
    return Errno(err, "cannot write", tmp);
  }();
  close(fd);

  const uint64_t good = scanned->records;
  if (!written.ok()) {
    if (scanned->legacy) {
      // It cannot be appended to in the new format: keep it aside, unread from now on.
      const std::string aside = DamagedName(path);
      if (rename(path.c_str(), aside.c_str()) != 0) {
        return Errno(errno, absl::StrCat("cannot rename ", path, " to"), aside);
      }
      Log(absl::StrCat(written.message(), "; kept ", path, " (previous format, ", good,
                       " records) as ", aside));
    } else {
      Log(absl::StrCat(scanned->damaged_bytes, " damaged bytes skipped in ", path, " (", good,
                       " good records); ", written.message(), "; left in place"));
    }
    return SyncDir(dir_);
  }
  if (scanned->damaged_bytes > 0) {
    // A hard link keeps the damaged original; the rename below then replaces the name
    // atomically, so that there is never a moment without the good records.
    const std::string aside = DamagedName(path);
    if (link(path.c_str(), aside.c_str()) != 0) {
      // No hard links here (some FUSE or FAT mounts): a rename, and a moment without the file.
      if (rename(path.c_str(), aside.c_str()) != 0) {
        const int err = errno;
        unlink(tmp.c_str());
        return Errno(err, absl::StrCat("cannot keep a copy of damaged ", path, " as"), aside);
      }
    }
    Log(absl::StrCat(scanned->damaged_bytes, " damaged bytes skipped in ", path, " (", good,
                     " good records kept", scanned->legacy ? ", previous format" : "",
                     "); the damaged file is kept as ", aside));
  } else {
    Log(absl::StrCat("upgraded ", path, " from the previous format (", good, " records)"));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    unlink(tmp.c_str());
    return Errno(err, absl::StrCat("cannot rename ", tmp, " to"), path);
  }
  PruneDamaged(dir_, kMaxDamagedFiles);
  return SyncDir(dir_);
}

absl::Status Journal::OpenCurrent() {
  const std::string p = path();
  ASSIGN_OR_RETURN(const int fd, OpenRegular(p, O_WRONLY | O_CREAT | O_APPEND));
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
  buffered_records_ = 0;
  // The file may be new (first start, or just rotated): make its name durable too.
  return SyncDir(dir_);
}

absl::Status Journal::Rotate() {
  RETURN_IF_ERROR(Flush());
  const int rc = fclose(file_);
  const int err = errno;
  file_ = nullptr;
  if (rc != 0) return Errno(err, "cannot close", path());
  // rename replaces the previous events.journal.1 atomically: no moment with neither file. It
  // never follows a symbolic link: a link in its place is replaced, not its target.
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
  buffered_records_ = 0;
}

void Journal::Dropped(uint64_t records, uint64_t bytes, const absl::Status& s) {
  dropped_records_ += records;
  dropped_bytes_ += bytes;
  unlogged_drops_ += records;
  const absl::Time now = absl::Now();
  if (now - last_log_ < kLogInterval) return;
  Log(absl::StrCat(s.message(), ": ", unlogged_drops_, " exit record(s) dropped (",
                   dropped_records_, " since start; logged at most once a minute)"));
  last_log_ = now;
  unlogged_drops_ = 0;
}

absl::Status Journal::Append(const v1::ExitEvent& e) {
  if (dir_.empty()) return absl::FailedPreconditionError("journal: not open");
  // A proto3 string must be valid UTF-8, or the record would not parse back.
  const v1::ExitEvent* rec_event = &e;
  v1::ExitEvent clean;
  if (!StringsAreValidUtf8(e)) {
    clean = e;
    MakeStringsValidUtf8(&clean);
    rec_event = &clean;
  }
  std::string payload;
  if (!rec_event->SerializeToString(&payload)) {
    return absl::InternalError("journal: cannot serialize a record");
  }
  if (payload.empty()) {
    return absl::InvalidArgumentError("journal: refusing an empty record");
  }
  if (payload.size() > kMaxRecordBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("journal: record of ", payload.size(), " bytes"));
  }
  std::string rec = Frame(payload);
  if (rec.size() + kFileHeaderBytes > max_bytes_) {
    return absl::InvalidArgumentError(absl::StrCat("journal: record of ", rec.size(),
                                                   " bytes exceeds the max size of ", max_bytes_));
  }
  if (file_ == nullptr) {
    if (absl::Status s = OpenCurrent(); !s.ok()) {
      Dropped(1, rec.size(), s);
      return s;
    }
  }
  if (size_ > 0 && size_ + rec.size() > max_bytes_) {
    if (absl::Status s = Rotate(); !s.ok()) {
      Dropped(1, rec.size(), s);
      return s;
    }
  }
  if (size_ == 0) rec.insert(0, kFileHeader, kFileHeaderBytes);
  if (fwrite(rec.data(), 1, rec.size(), file_) != rec.size()) {
    const absl::Status s = Errno(errno, "cannot write", path());
    const uint64_t records = buffered_records_ + 1;
    const uint64_t bytes = size_ - flushed_size_ + rec.size();
    RollBack();
    Dropped(records, bytes, s);
    return s;
  }
  size_ += rec.size();
  ++buffered_records_;
  return absl::OkStatus();
}

absl::Status Journal::Flush() {
  if (dir_.empty()) return absl::FailedPreconditionError("journal: not open");
  if (file_ == nullptr) return absl::OkStatus();  // nothing buffered since the failure
  if (fflush(file_) != 0) {
    const absl::Status s = Errno(errno, "cannot write", path());
    const uint64_t records = buffered_records_;
    const uint64_t bytes = size_ - flushed_size_;
    RollBack();
    Dropped(records, bytes, s);
    return s;
  }
  flushed_size_ = size_;
  buffered_records_ = 0;
  if (fsync(fileno(file_)) != 0) {
    const absl::Status s = Errno(errno, "cannot sync", path());
    if (absl::Now() - last_log_ >= kLogInterval) {
      Log(s.message());
      last_log_ = absl::Now();
    }
    return s;
  }
  if (unlogged_drops_ > 0) {
    Log(absl::StrCat("writing again; ", unlogged_drops_, " more exit record(s) were dropped (",
                     dropped_records_, " since start)"));
    unlogged_drops_ = 0;
  }
  return absl::OkStatus();
}

}  // namespace procscope
