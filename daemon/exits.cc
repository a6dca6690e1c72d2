// SPDX-License-Identifier: Apache-2.0
#include "exits.h"

#include <signal.h>

#include <algorithm>
#include <utility>

#include "records.h"

namespace procscope {

v1::Outcome ClassifyExit(uint32_t wait_status, bool oom_killed) {
  // The OOM killer sends SIGKILL; only the kernel's mark tells it apart from a plain kill.
  if (oom_killed) return v1::OOM_KILLED;
  const ExitStatus s = DecodeExitStatus(wait_status);
  if (s.signal == 0) return s.exit_code == 0 ? v1::SUCCESS : v1::FAILURE;
  switch (s.signal) {
    case SIGSEGV:
    case SIGBUS:
    case SIGILL:
    case SIGFPE:
    case SIGABRT:
    case SIGSYS:
    case SIGTRAP:
      return v1::CRASHED;
    default:
      return v1::SIGNALED;
  }
}

const char* OutcomeName(v1::Outcome o) {
  switch (o) {
    case v1::SUCCESS:
      return "success";
    case v1::FAILURE:
      return "failure";
    case v1::SIGNALED:
      return "signaled";
    case v1::CRASHED:
      return "crashed";
    case v1::OOM_KILLED:
      return "oom_killed";
    default:
      return "unspecified";
  }
}

v1::ExitEvent MakeExitEvent(const ps_exit_event& e, const ExitContext& ctx) {
  const bool oom = (e.flags & PS_EXIT_OOM_KILLED) != 0;
  const ExitStatus status = DecodeExitStatus(e.exit_code);
  const int64_t boot_to_unix_ns = absl::ToInt64Nanoseconds(ctx.boot_to_unix);

  v1::ExitEvent out;
  out.set_pid(e.key.tgid);
  out.set_ppid(e.ppid);
  out.set_comm(ToValidUtf8(CommFromKernel(e.comm)));
  out.set_group(ctx.group);
  out.set_container(ctx.cgroup.container_id);
  out.set_pod_uid(ctx.cgroup.pod_uid);
  out.set_systemd_unit(ctx.cgroup.systemd_unit);
  out.set_uid(e.uid);
  out.set_outcome(ClassifyExit(e.exit_code, oom));
  if (status.signal == 0) out.set_exit_code(status.exit_code);
  out.set_signal(status.signal);
  out.set_signal_name(SignalName(status.signal));
  out.set_core_dumped(status.core_dumped);
  out.set_oom_killed(oom);
  out.set_start_time_unix_ns(static_cast<int64_t>(e.key.start_ns) + boot_to_unix_ns);
  out.set_exit_time_unix_ns(static_cast<int64_t>(e.exit_ns) + boot_to_unix_ns);
  // An exit stamped before the start would be a clock mix-up, never a negative lifetime.
  out.set_lifetime_seconds(e.exit_ns > e.key.start_ns ? (e.exit_ns - e.key.start_ns) / 1e9 : 0);
  out.set_cpu_seconds(e.c.cpu_ns / 1e9);
  out.set_runqueue_wait_seconds(e.c.runq_ns / 1e9);
  out.set_voluntary_context_switches(e.c.vol_cs);
  out.set_involuntary_context_switches(e.c.invol_cs);
  out.set_minor_faults(e.c.min_flt);
  out.set_major_faults(e.c.maj_flt);
  out.set_read_bytes(e.io.read_bytes);
  out.set_write_bytes(e.io.write_bytes);
  out.set_peak_resident_memory_bytes(e.rss_max_bytes);
  out.set_cgroup_id(e.cgroup_id);
  return out;
}

ExitStore::ExitStore(size_t capacity) : capacity_(capacity) {}

void ExitStore::Add(v1::ExitEvent e) {
  std::lock_guard<std::mutex> lock(mu_);
  if (capacity_ == 0) return;
  events_.push_front(std::move(e));
  while (events_.size() > capacity_) events_.pop_back();
}

std::vector<v1::ExitEvent> ExitStore::Newest(size_t limit) const {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t n = limit == 0 ? events_.size() : std::min(limit, events_.size());
  return std::vector<v1::ExitEvent>(events_.begin(), events_.begin() + n);
}

size_t ExitStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_.size();
}

}  // namespace procscope
