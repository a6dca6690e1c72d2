// SPDX-License-Identifier: Apache-2.0
#include "privileges.h"

#include <dirent.h>
#include <errno.h>
#include <linux/capability.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace procscope {
namespace {

constexpr int kCapSetpcap = 8;

// Index = capability number (linux/capability.h), without the "cap_" prefix.
constexpr const char* kCapNames[] = {
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
};
constexpr int kNumCapNames = static_cast<int>(std::size(kCapNames));

// Shared with the signal handler that each other thread runs.
std::atomic<int> g_done{0};
std::atomic<int> g_error{0};
CapMask g_keep = 0;
bool g_drop_bounding = false;
int g_last_cap = kNumCapNames - 1;

// This thread's part. Only system calls: it runs in a signal handler.
int DropInThisThread() {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return errno;
  }
  if (g_drop_bounding) {
    for (int cap = 0; cap <= g_last_cap; ++cap) {
      if ((g_keep & CapBit(cap)) != 0) continue;
      if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return errno;
    }
  }
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) return errno;
  for (int i = 0; i < 2; ++i) {
    const uint32_t keep = static_cast<uint32_t>(g_keep >> (32 * i));
    data[i].permitted &= keep;
    data[i].effective = data[i].permitted;
    data[i].inheritable = 0;
  }
  if (syscall(SYS_capset, &hdr, data) != 0) return errno;
  return 0;
}

void OnDropSignal(int) {
  const int saved = errno;
  const int err = DropInThisThread();
  if (err != 0) g_error.store(err);
  g_done.fetch_add(1);
  errno = saved;
}

std::vector<int> ThreadIds() {
  std::vector<int> tids;
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return tids;
  while (dirent* e = readdir(d)) {
    int tid;
    if (absl::SimpleAtoi(e->d_name, &tid)) tids.push_back(tid);
  }
  closedir(d);
  return tids;
}

absl::StatusOr<PrivilegeState> ReadState(const std::string& status_path) {
  std::ifstream in(status_path);
  if (!in) return absl::InternalError(absl::StrCat("cannot read ", status_path));
  PrivilegeState st;
  int found = 0;
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view l = line;
    const std::pair<const char*, CapMask*> fields[] = {
        {"CapInh:", &st.inheritable}, {"CapPrm:", &st.permitted}, {"CapEff:", &st.effective},
        {"CapBnd:", &st.bounding},    {"CapAmb:", &st.ambient},
    };
    for (const auto& [name, out] : fields) {
      if (absl::ConsumePrefix(&l, name)) {
        if (absl::SimpleHexAtoi(absl::StripAsciiWhitespace(l), out)) ++found;
      }
    }
    if (absl::ConsumePrefix(&l, "NoNewPrivs:")) {
      st.no_new_privs = absl::StripAsciiWhitespace(l) == "1";
      ++found;
    }
  }
  if (found != 6) return absl::InternalError(absl::StrCat(status_path, ": no capability lines"));
  return st;
}

}  // namespace

absl::StatusOr<CapMask> ParseCapabilities(absl::string_view list) {
  CapMask out = 0;
  for (absl::string_view item : absl::StrSplit(list, absl::ByAnyChar(", "), absl::SkipEmpty())) {
    std::string name = absl::AsciiStrToLower(item);
    absl::string_view n = name;
    absl::ConsumePrefix(&n, "cap_");
    int cap = -1;
    for (int i = 0; i < kNumCapNames; ++i) {
      if (n == kCapNames[i]) cap = i;
    }
    if (cap < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown capability '", item, "' (e.g. sys_ptrace, bpf, perfmon)"));
    }
    out |= CapBit(cap);
  }
  return out;
}

std::string FormatCapabilities(CapMask caps) {
  std::vector<std::string> names;
  for (int i = 0; i < 64; ++i) {
    if ((caps & CapBit(i)) == 0) continue;
    names.push_back(i < kNumCapNames ? absl::StrCat("cap_", kCapNames[i]) : absl::StrCat(i));
  }
  return absl::StrJoin(names, ",");
}

absl::StatusOr<PrivilegeState> CurrentPrivileges() { return ReadState("/proc/thread-self/status"); }

absl::StatusOr<PrivilegeState> DropPrivileges(CapMask keep) {
  const absl::StatusOr<PrivilegeState> before = CurrentPrivileges();
  if (!before.ok()) return before.status();
  std::ifstream last("/proc/sys/kernel/cap_last_cap");
  if (int n; last >> n && n >= 0 && n < 64) g_last_cap = n;
  g_keep = keep;
  g_drop_bounding = (before->effective & CapBit(kCapSetpcap)) != 0;
  g_error = 0;
  g_done = 0;

  // Capabilities belong to each thread: the HTTP server's threads already run. Each other thread
  // drops its own from a signal handler, until a pass over /proc/self/task finds none new.
  const int sig = SIGRTMIN;
  struct sigaction sa = {}, old = {};
  sa.sa_handler = OnDropSignal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, &old) != 0) {
    return absl::InternalError(absl::StrCat("sigaction: ", strerror(errno)));
  }
  const int self = static_cast<int>(syscall(SYS_gettid));
  std::set<int> signalled;
  for (int pass = 0; pass < 10; ++pass) {
    int sent = 0;
    for (int tid : ThreadIds()) {
      if (tid == self || signalled.count(tid)) continue;
      if (syscall(SYS_tgkill, getpid(), tid, sig) == 0) ++sent;
      signalled.insert(tid);
    }
    if (sent == 0) break;
    // Up to 2 s for every signalled thread to run its handler.
    for (int i = 0; i < 2000 && g_done.load() < static_cast<int>(signalled.size()); ++i) {
      const timespec ms = {0, 1000000};
      nanosleep(&ms, nullptr);
    }
  }
  const int err = DropInThisThread();
  sigaction(sig, &old, nullptr);
  if (err != 0 || g_error.load() != 0) {
    return absl::InternalError(
        absl::StrCat("dropping capabilities: ", strerror(err != 0 ? err : g_error.load())));
  }

  // Every thread must now be in the same state as this one.
  const absl::StatusOr<PrivilegeState> after = CurrentPrivileges();
  if (!after.ok()) return after.status();
  const CapMask want = keep & before->permitted;
  if (after->effective != want || after->permitted != want || after->inheritable != 0 ||
      after->ambient != 0 || !after->no_new_privs) {
    return absl::InternalError(absl::StrCat("dropping capabilities: still holding ",
                                            FormatCapabilities(after->effective)));
  }
  for (int tid : ThreadIds()) {
    const absl::StatusOr<PrivilegeState> t =
        ReadState(absl::StrCat("/proc/self/task/", tid, "/status"));
    if (!t.ok()) continue;  // exited meanwhile
    if (t->effective != after->effective || t->permitted != after->permitted ||
        t->bounding != after->bounding || t->inheritable != 0 || t->ambient != 0 ||
        !t->no_new_privs) {
      return absl::InternalError(absl::StrCat("dropping capabilities: thread ", tid,
                                              " still holds ", FormatCapabilities(t->effective)));
    }
  }
  return *after;
}

}  // namespace procscope
