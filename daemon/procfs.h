// SPDX-License-Identifier: Apache-2.0
// Reads a process's identity from procfs once. The root is a parameter so that tests can point
// it at a fake tree.
#ifndef PROCSCOPE_DAEMON_PROCFS_H_
#define PROCSCOPE_DAEMON_PROCFS_H_

#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "model.h"

namespace procscope {

// Looks up an identity; the process table calls it once per new process. Interface so that the
// table unit-tests with a fake.
class IdentitySource {
 public:
  virtual ~IdentitySource() = default;
  // The identity of process `pid` whose start time is `start_ns` (boot-time ns, as in ps_key):
  // NotFound if no such process (gone, or the pid now belongs to another process).
  virtual absl::StatusOr<Identity> Read(pid_t pid, uint64_t start_ns) = 0;
};

// uid -> user name from a passwd(5) file, read with glibc's fgetpwent_r (the file only: users
// from NSS, e.g. LDAP, keep their number). Each uid is looked up in the file once and cached, a
// uid the file does not name too, until the file changes (its inode, size, mtime or ctime, checked
// with one stat per lookup): then the cache is dropped, so a user added later gets a name.
class UserNames {
 public:
  explicit UserNames(std::string passwd_path);

  // The name of `uid`, or "" when the file does not name it (or cannot be read).
  std::string Lookup(uint32_t uid) ABSL_LOCKS_EXCLUDED(mu_);

  // How many times the file was read (for tests: what the cache saved).
  uint64_t file_reads() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Stamp {
    bool exists = false;
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    timespec mtime = {};
    timespec ctime = {};
    bool operator==(const Stamp& o) const;
  };
  static Stamp StampOf(int stat_result, const struct stat& st);

  const std::string path_;
  mutable absl::Mutex mu_;
  Stamp stamp_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint32_t, std::string> names_ ABSL_GUARDED_BY(mu_);  // "": not in the file
  uint64_t file_reads_ ABSL_GUARDED_BY(mu_) = 0;
};

class Procfs : public IdentitySource {
 public:
  // `proc_root`: normally "/proc"; `passwd_path`: for uid -> name ("/etc/passwd").
  explicit Procfs(std::string proc_root = "/proc", std::string passwd_path = "/etc/passwd");

  // Reads <root>/<pid>/stat (start time, to check it is the same process: field 22, in clock
  // ticks, compared with start_ns at tick precision), exe, status (real uid) and cgroup.
  absl::StatusOr<Identity> Read(pid_t pid, uint64_t start_ns) override;

  // The command line (NUL-separated args joined by spaces), for opt-in use only: it can hold
  // secrets, so it is never exported by default.
  absl::StatusOr<std::string> ReadCmdline(pid_t pid);

  // CPU pressure: the "some avg10" of <root>/pressure/cpu, in percent (0..100). NotFound when
  // the kernel has no PSI (CONFIG_PSI off, or psi=0).
  absl::StatusOr<double> ReadCpuPressure();

 private:
  std::string root_;
  UserNames users_;
};

// The pure parsers of what Procfs reads (untrusted text: a process chooses its own comm and
// argv), exposed for tests and fuzzing (tests/fuzz/). `display` names the file in errors.
// Field 22 (starttime, clock ticks after boot) of /proc/<pid>/stat.
absl::StatusOr<uint64_t> ParseStartTicks(absl::string_view stat, absl::string_view display);
// The real uid: the first number of the "Uid:" line of /proc/<pid>/status.
absl::StatusOr<uint32_t> ParseRealUid(absl::string_view status, absl::string_view display);
// The name of `uid` in the text of a passwd(5) file, or "" if it does not name it: the first
// entry with that uid, parsed as UserNames parses the file (fgetpwent_r), skipping entries with
// an empty name and NIS compat entries ("+name", "-name").
std::string UserNameInPasswd(absl::string_view passwd, uint32_t uid);
// The "some avg10" of a /proc/pressure/* file ("some avg10=1.23 avg60=... total=..."), in percent.
absl::StatusOr<double> ParsePressureSomeAvg10(absl::string_view text, absl::string_view display);

// /proc/<pid>/cmdline (NUL-separated args) as one line: args joined by spaces.
std::string JoinCmdline(std::string cmdline);

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_PROCFS_H_
