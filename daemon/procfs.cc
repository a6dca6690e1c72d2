// SPDX-License-Identifier: Apache-2.0
#include "procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "cgroup_path.h"
#include "fd.h"
#include "file.h"
#include "status_macros.h"

namespace procscope {
namespace {

// The target of a symlink, or "" if it has none (kernel threads, zombies, no permission).
std::string ReadLinkAt(int dirfd, const char* name) {
  std::vector<char> buf(256);
  while (buf.size() <= (1u << 20)) {
    const ssize_t n = readlinkat(dirfd, name, buf.data(), buf.size());
    if (n < 0) return "";
    // A full buffer may mean a cut target: grow and retry.
    if (static_cast<size_t>(n) < buf.size()) return std::string(buf.data(), n);
    buf.resize(buf.size() * 2);
  }
  return "";
}

// The name of the first entry for `uid` in `f` (read from where it is), or "". glibc skips
// comments and lines it cannot parse; a line longer than the buffer is retried with a bigger
// one (fgetpwent_r rewinds to the line's start on ERANGE), up to 1 MiB, then skipped.
std::string NameInPasswdStream(FILE* f, uint32_t uid) {
  constexpr size_t kMaxLine = 1 << 20;
  std::vector<char> buf(1024);
  struct passwd pw;
  struct passwd* entry = nullptr;
  for (;;) {
    const int err = fgetpwent_r(f, &pw, buf.data(), buf.size(), &entry);
    if (err == ERANGE && buf.size() < kMaxLine) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (err == ERANGE) {  // a line of over 1 MiB: not a user; skip to the next line
      int c;
      while ((c = getc(f)) != EOF && c != '\n') {
      }
      if (c == EOF) return "";
      continue;
    }
    if (err != 0 || entry == nullptr) return "";  // ENOENT: the end; or a read error
    if (pw.pw_uid != uid || pw.pw_name == nullptr) continue;
    const char first = pw.pw_name[0];
    if (first == '\0' || first == '+' || first == '-') continue;  // unnamed, NIS compat
    return pw.pw_name;
  }
}

// The name of `uid` in a passwd(5) file, or the number when the file does not name it (the file
// is missing, or the user comes from NSS).
std::string UserName(UserNames& users, uint32_t uid) {
  if (std::string name = users.Lookup(uid); !name.empty()) return name;
  return absl::StrCat(uid);
}

uint64_t NsPerTick() {
  static const uint64_t ns_per_tick = [] {
    const long hz = sysconf(_SC_CLK_TCK);
    return uint64_t{1'000'000'000} / static_cast<uint64_t>(hz > 0 ? hz : 100);
  }();
  return ns_per_tick;
}

}  // namespace

// Field 22 (starttime, clock ticks after boot) of /proc/<pid>/stat. The comm (field 2) is
// inside parentheses and may itself hold spaces and ')', so fields are counted from the last ')'.
absl::StatusOr<uint64_t> ParseStartTicks(absl::string_view stat, absl::string_view display) {
  const size_t paren = stat.rfind(')');
  if (paren == absl::string_view::npos) {
    return absl::DataLossError(absl::StrCat(display, ": no ')' closing the comm field"));
  }
  std::vector<absl::string_view> fields =
      absl::StrSplit(stat.substr(paren + 1), absl::ByAnyChar(" \n"), absl::SkipEmpty());
  constexpr size_t kStartIndex = 22 - 3;  // fields[0] is field 3 (state)
  if (fields.size() <= kStartIndex) {
    return absl::DataLossError(absl::StrCat(display, ": truncated, ", fields.size() + 2,
                                            " fields where starttime is field 22"));
  }
  uint64_t ticks = 0;
  if (!absl::SimpleAtoi(fields[kStartIndex], &ticks)) {
    return absl::DataLossError(absl::StrCat(display, ": field 22 (starttime) is not a number: \"",
                                            absl::CEscape(fields[kStartIndex]), "\""));
  }
  return ticks;
}

// The real uid: the first number of the "Uid:" line of /proc/<pid>/status.
absl::StatusOr<uint32_t> ParseRealUid(absl::string_view status, absl::string_view display) {
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (!absl::ConsumePrefix(&line, "Uid:")) continue;
    std::vector<absl::string_view> ids =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    uint32_t uid = 0;
    if (ids.empty() || !absl::SimpleAtoi(ids[0], &uid)) {
      return absl::DataLossError(
          absl::StrCat(display, ": bad Uid line: \"", absl::CEscape(line), "\""));
    }
    return uid;
  }
  return absl::DataLossError(absl::StrCat(display, ": no Uid line"));
}

std::string UserNameInPasswd(absl::string_view passwd, uint32_t uid) {
  if (passwd.empty()) return "";
  // fmemopen only reads the buffer ("r"): the cast drops a const it does not need.
  FILE* f = fmemopen(const_cast<char*>(passwd.data()), passwd.size(), "r");
  if (f == nullptr) return "";
  std::string name = NameInPasswdStream(f, uid);
  fclose(f);
  return name;
}

UserNames::UserNames(std::string passwd_path) : path_(std::move(passwd_path)) {}

bool UserNames::Stamp::operator==(const Stamp& o) const {
  return exists == o.exists && dev == o.dev && ino == o.ino && size == o.size &&
         mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec &&
         ctime.tv_sec == o.ctime.tv_sec && ctime.tv_nsec == o.ctime.tv_nsec;
}

UserNames::Stamp UserNames::StampOf(int stat_result, const struct stat& st) {
  Stamp s;
  if (stat_result != 0) return s;  // missing (or unreadable): one stamp for all such states
  s.exists = true;
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  s.size = st.st_size;
  s.mtime = st.st_mtim;
  s.ctime = st.st_ctim;
  return s;
}

std::string UserNames::Lookup(uint32_t uid) {
  struct stat st;
  const int rc = stat(path_.c_str(), &st);
  const Stamp now = StampOf(rc, st);
  absl::MutexLock lock(&mu_);
  if (!(now == stamp_)) {
    names_.clear();
    stamp_ = now;
  }
  if (const auto it = names_.find(uid); it != names_.end()) return it->second;
  std::string name;
  if (FILE* f = fopen(path_.c_str(), "re"); f != nullptr) {
    ++file_reads_;
    // The file may have changed since the stat: cache what was read under its own stamp.
    struct stat opened;
    const Stamp read_stamp = StampOf(fstat(fileno(f), &opened), opened);
    if (!(read_stamp == stamp_)) {
      names_.clear();
      stamp_ = read_stamp;
    }
    name = NameInPasswdStream(f, uid);
    fclose(f);
  }
  names_[uid] = name;
  return name;
}

uint64_t UserNames::file_reads() const {
  absl::MutexLock lock(&mu_);
  return file_reads_;
}

std::string JoinCmdline(std::string cmdline) {
  // Drop every trailing NUL (the terminator, and padding left by processes that rewrote argv).
  while (!cmdline.empty() && cmdline.back() == '\0') cmdline.pop_back();
  std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
  return cmdline;
}

Procfs::Procfs(std::string proc_root, std::string passwd_path)
    : root_(std::move(proc_root)), users_(std::move(passwd_path)) {}

absl::StatusOr<Identity> Procfs::Read(pid_t pid, uint64_t start_ns) {
  if (pid <= 0) return absl::NotFoundError(absl::StrCat("no process has pid ", pid));
  // Every file is read through one descriptor of the process's directory: it stays bound to
  // the process it was opened for, so once the start time matches, a pid reused while we read
  // cannot mix another process's files in (they fail with ENOENT/ESRCH instead).
  const std::string dir = absl::StrCat(root_, "/", pid);
  const int dirfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) return ErrnoStatus(errno, absl::StrCat("open ", dir));
  ScopedFd guard(dirfd);

  const std::string stat_path = absl::StrCat(dir, "/stat");
  ASSIGN_OR_RETURN(const std::string stat_text, ReadFileAt(dirfd, "stat", stat_path));
  ASSIGN_OR_RETURN(const uint64_t ticks, ParseStartTicks(stat_text, stat_path));
  const uint64_t want_ticks = start_ns / NsPerTick();
  if (ticks != want_ticks) {
    return absl::NotFoundError(absl::StrCat("pid ", pid, " now belongs to another process: it ",
                                            "started at tick ", ticks, ", not ", want_ticks));
  }

  Identity id;
  id.exe = ReadLinkAt(dirfd, "exe");

  const std::string status_path = absl::StrCat(dir, "/status");
  ASSIGN_OR_RETURN(const std::string status, ReadFileAt(dirfd, "status", status_path));
  ASSIGN_OR_RETURN(const uint32_t uid, ParseRealUid(status, status_path));
  id.user = UserName(users_, uid);

  ASSIGN_OR_RETURN(const std::string cgroup,
                   ReadFileAt(dirfd, "cgroup", absl::StrCat(dir, "/cgroup")));
  id.cgroup_path = ChooseCgroupPath(cgroup);
  id.cgroup = ParseCgroupPath(id.cgroup_path);
  id.resolved = true;
  return id;
}

absl::StatusOr<std::string> Procfs::ReadCmdline(pid_t pid) {
  if (pid <= 0) return absl::NotFoundError(absl::StrCat("no process has pid ", pid));
  const std::string path = absl::StrCat(root_, "/", pid, "/cmdline");
  ASSIGN_OR_RETURN(std::string cmdline, ReadFileAt(AT_FDCWD, path, path));
  return JoinCmdline(std::move(cmdline));
}

absl::StatusOr<double> Procfs::ReadCpuPressure() {
  const std::string path = absl::StrCat(root_, "/pressure/cpu");
  ASSIGN_OR_RETURN(std::string text, ReadFileAt(AT_FDCWD, path, path));
  return ParsePressureSomeAvg10(text, path);
}

absl::StatusOr<double> ParsePressureSomeAvg10(absl::string_view text, absl::string_view display) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, "some ")) continue;
    for (absl::string_view field : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
      double v = 0;
      if (absl::ConsumePrefix(&field, "avg10=") && absl::SimpleAtod(field, &v) && v >= 0 &&
          v <= 100) {
        return v;
      }
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(display, ": no \"some avg10=\" value"));
}

}  // namespace procscope
