// SPDX-License-Identifier: Apache-2.0
#include "records.h"

#include <string.h>

#include <algorithm>
#include <csignal>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "counters.h"
#include "model.h"
#include "status_macros.h"

namespace procscope {
namespace {

absl::Status ParseInto(absl::string_view buf, const std::vector<ProcessSample>& prev,
                       std::vector<ProcessSample>& out) {
  // At most this many processes (no record is shorter than PS_REC_SAME_SIZE), and at most those
  // of prev plus the whole records.
  const size_t most =
      std::min(buf.size() / PS_REC_SAME_SIZE, prev.size() + buf.size() / sizeof(ps_proc_rec));
  // Far fewer processes than at the peak: give the memory back.
  if (out.capacity() > 4 * most + 256) std::vector<ProcessSample>().swap(out);
  out.reserve(most);
  std::vector<ps_proc_rec> deltas;  // few: only threads on a CPU during the read
  size_t cursor = 0;                // into prev: both are in pid order
  for (size_t off = 0; off < buf.size();) {
    if (buf.size() - off < PS_REC_SAME_SIZE) {
      return absl::DataLossError(
          absl::StrFormat("process iterator returned a truncated record: %d bytes at offset %d",
                          buf.size() - off, off));
    }
    ps_proc_rec r;
    memcpy(&r, buf.data() + off, PS_REC_SAME_SIZE);
    if (r.flags & PS_REC_SAME) {
      off += PS_REC_SAME_SIZE;
      if (cursor >= prev.size() || prev[cursor].key.tgid != r.key.tgid) {
        cursor = std::lower_bound(
                     prev.begin(), prev.end(), r.key.tgid,
                     [](const ProcessSample& s, uint32_t tgid) { return s.key.tgid < tgid; }) -
                 prev.begin();
      }
      while (cursor < prev.size() && prev[cursor].key.tgid == r.key.tgid &&
             !(prev[cursor].key == r.key)) {
        ++cursor;
      }
      if (cursor >= prev.size() || !(prev[cursor].key == r.key) || prev[cursor].with_deltas) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "process iterator: an unchanged record for pid %d, which the previous read did not "
            "return whole",
            r.key.tgid));
      }
      ProcessSample& s = out.emplace_back(prev[cursor++]);
      s.unchanged = true;
      continue;
    }
    if (buf.size() - off < sizeof(r)) {
      return absl::DataLossError(absl::StrFormat(
          "process iterator returned a truncated record: %d bytes at offset %d, not %d",
          buf.size() - off, off, sizeof(r)));
    }
    memcpy(&r, buf.data() + off, sizeof(r));
    off += sizeof(r);
    if (r.flags & PS_REC_DELTA) {
      deltas.push_back(r);
      continue;
    }
    ProcessSample& s = out.emplace_back();
    s.key = r.key;
    s.ppid = r.ppid;
    s.uid = r.uid;
    s.nr_threads = r.nr_threads;
    s.cgroup_id = r.cgroup_id;
    s.rss_bytes = r.rss_bytes;
    s.comm.assign(r.comm, strnlen(r.comm, PS_COMM_LEN));
    s.counters = r.c;
    s.io = r.io;
  }
  // The iterator walks tasks by pid, so leaders come sorted already; sorting only when they do
  // not (a hash index per pass cost more than the parse itself with thousands of processes).
  auto by_pid = [](const ProcessSample& a, const ProcessSample& b) {
    return a.key.tgid < b.key.tgid;
  };
  if (!std::is_sorted(out.begin(), out.end(), by_pid)) {
    std::sort(out.begin(), out.end(), by_pid);
  }
  // A delta whose process is not in this pass (it began exiting meanwhile) is dropped: the exit
  // event carries the final totals.
  for (const ps_proc_rec& d : deltas) {
    auto it =
        std::lower_bound(out.begin(), out.end(), d.key.tgid,
                         [](const ProcessSample& s, uint32_t tgid) { return s.key.tgid < tgid; });
    for (; it != out.end() && it->key.tgid == d.key.tgid; ++it) {
      if (it->key == d.key) {
        AddCounters(it->counters, d.c);
        it->with_deltas = true;
        break;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseProcessRecords(absl::string_view buf, const std::vector<ProcessSample>& prev,
                                 std::vector<ProcessSample>& out) {
  out.clear();
  absl::Status s = ParseInto(buf, prev, out);
  if (!s.ok()) out.clear();  // nothing half-read stands for a pass
  return s;
}

absl::StatusOr<std::vector<ProcessSample>> ParseProcessRecords(absl::string_view buf) {
  std::vector<ProcessSample> out;
  RETURN_IF_ERROR(ParseProcessRecords(buf, {}, out));
  return out;
}

ExitStatus DecodeExitStatus(uint32_t wait_status) {
  ExitStatus s;
  s.signal = wait_status & 0x7f;
  s.core_dumped = (wait_status & 0x80) != 0;
  s.exit_code = s.signal == 0 ? static_cast<int>((wait_status >> 8) & 0xff) : 0;
  return s;
}

std::string SignalName(int signal) {
  if (signal <= 0) return "";
  const char* abbrev = sigabbrev_np(signal);
  return abbrev != nullptr ? absl::StrCat("SIG", abbrev) : absl::StrCat("SIG", signal);
}

std::string CommFromKernel(const char (&comm)[PS_COMM_LEN]) {
  return std::string(comm, strnlen(comm, PS_COMM_LEN));
}

}  // namespace procscope
