// SPDX-License-Identifier: Apache-2.0
#include "procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
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

// The name of `uid` in a passwd(5) file, or the number when the file does not name it (the file
// is missing, or the user comes from NSS). Read on each call: new processes are rare enough, and
// users added later then resolve too.
std::string UserName(const std::string& passwd_path, uint32_t uid) {
  absl::StatusOr<std::string> passwd = ReadFileAt(AT_FDCWD, passwd_path, passwd_path);
  if (passwd.ok()) {
    if (std::string name = UserNameInPasswd(*passwd, uid); !name.empty()) return name;
  }
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
  for (absl::string_view line : absl::StrSplit(passwd, '\n', absl::SkipEmpty())) {
    // name:password:uid:gid:gecos:home:shell
    std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(':', 3));
    uint32_t entry_uid = 0;
    if (f.size() < 3 || f[0].empty() || absl::StartsWith(f[0], "#") ||
        !absl::SimpleAtoi(f[2], &entry_uid) || entry_uid != uid) {
      continue;
    }
    return std::string(f[0]);
  }
  return "";
}

std::string JoinCmdline(std::string cmdline) {
  // Drop every trailing NUL (the terminator, and padding left by processes that rewrote argv).
  while (!cmdline.empty() && cmdline.back() == '\0') cmdline.pop_back();
  std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
  return cmdline;
}

Procfs::Procfs(std::string proc_root, std::string passwd_path)
    : root_(std::move(proc_root)), passwd_path_(std::move(passwd_path)) {}

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
  id.user = UserName(passwd_path_, uid);

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

}  // namespace procscope
