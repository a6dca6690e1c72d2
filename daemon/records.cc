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

bool ByPid(const ProcessSample& a, const ProcessSample& b) { return a.key.tgid < b.key.tgid; }
bool KeyByPid(const ps_key& a, const ps_key& b) {
  return a.tgid != b.tgid ? a.tgid < b.tgid : a.start_ns < b.start_ns;
}

// Releases a vector's memory once it holds far fewer than its capacity (the peak's processes
// exited), then makes room for `most`.
template <typename T>
void Fit(std::vector<T>& v, size_t most) {
  if (v.capacity() > 4 * most + 256) std::vector<T>().swap(v);
  v.reserve(most);
}

absl::Status ParseInto(absl::string_view buf, const SessionKeys& received, PassRecords& out) {
  // At most this many records of each kind (no record is shorter than PS_REC_SAME_SIZE).
  Fit(out.whole, buf.size() / sizeof(ps_proc_rec));
  Fit(out.unchanged, buf.size() / PS_REC_SAME_SIZE);
  std::vector<ps_proc_rec> deltas;  // few: only threads on a CPU during the read
  size_t cursor = 0;                // into received: both are in pid order
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
      if (cursor >= received.size() || !(received[cursor] == r.key)) {
        cursor =
            std::lower_bound(received.begin(), received.end(), r.key, KeyByPid) - received.begin();
      }
      if (cursor >= received.size() || !(received[cursor] == r.key)) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "process iterator: an unchanged record for pid %d, which the previous read did not "
            "return whole",
            r.key.tgid));
      }
      ++cursor;
      out.unchanged.push_back(r.key);
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
    ProcessSample& s = out.whole.emplace_back();
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
  if (!std::is_sorted(out.whole.begin(), out.whole.end(), ByPid)) {
    std::sort(out.whole.begin(), out.whole.end(), ByPid);
  }
  if (!std::is_sorted(out.unchanged.begin(), out.unchanged.end(), KeyByPid)) {
    std::sort(out.unchanged.begin(), out.unchanged.end(), KeyByPid);
  }
  // A delta whose process is not in this pass (it began exiting meanwhile) is dropped: the exit
  // event carries the final totals.
  for (const ps_proc_rec& d : deltas) {
    auto it =
        std::lower_bound(out.whole.begin(), out.whole.end(), d.key.tgid,
                         [](const ProcessSample& s, uint32_t tgid) { return s.key.tgid < tgid; });
    for (; it != out.whole.end() && it->key.tgid == d.key.tgid; ++it) {
      if (it->key == d.key) {
        AddCounters(it->counters, d.c);
        it->with_deltas = true;
        break;
      }
    }
  }
  return absl::OkStatus();
}

// What the session may answer with PS_REC_SAME after `pass`: its unchanged processes and its
// whole records without deltas.
void NextSessionKeys(const PassRecords& pass, SessionKeys& next) {
  next.clear();
  Fit(next, pass.unchanged.size() + pass.whole.size());
  size_t u = 0;
  for (const ProcessSample& s : pass.whole) {
    if (s.with_deltas) continue;
    while (u < pass.unchanged.size() && KeyByPid(pass.unchanged[u], s.key)) {
      next.push_back(pass.unchanged[u++]);
    }
    next.push_back(s.key);
  }
  next.insert(next.end(), pass.unchanged.begin() + u, pass.unchanged.end());
  if (!std::is_sorted(next.begin(), next.end(), KeyByPid)) {
    std::sort(next.begin(), next.end(), KeyByPid);
  }
}

}  // namespace

absl::Status ParsePassRecords(absl::string_view buf, SessionKeys& received, PassRecords& out) {
  out.whole.clear();
  out.unchanged.clear();
  absl::Status s = ParseInto(buf, received, out);
  if (!s.ok()) {  // nothing half-read stands for a pass
    out.whole.clear();
    out.unchanged.clear();
    return s;
  }
  SessionKeys next;
  NextSessionKeys(out, next);
  received.swap(next);
  return absl::OkStatus();
}

absl::Status ParseProcessRecords(absl::string_view buf, const std::vector<ProcessSample>& prev,
                                 std::vector<ProcessSample>& out) {
  out.clear();
  SessionKeys received;
  received.reserve(prev.size());
  for (const ProcessSample& s : prev) {
    if (!s.with_deltas) received.push_back(s.key);
  }
  if (!std::is_sorted(received.begin(), received.end(), KeyByPid)) {
    std::sort(received.begin(), received.end(), KeyByPid);
  }
  PassRecords pass;
  RETURN_IF_ERROR(ParsePassRecords(buf, received, pass));
  return ExpandPass(pass, prev, out);
}

absl::Status ExpandPass(PassRecords& pass, const std::vector<ProcessSample>& prev,
                        std::vector<ProcessSample>& out) {
  out.clear();
  Fit(out, pass.whole.size() + pass.unchanged.size());
  size_t w = 0;
  for (const ps_key& k : pass.unchanged) {
    while (w < pass.whole.size() && pass.whole[w].key.tgid < k.tgid) {
      out.push_back(std::move(pass.whole[w++]));
    }
    auto it =
        std::lower_bound(prev.begin(), prev.end(), k.tgid,
                         [](const ProcessSample& s, uint32_t tgid) { return s.key.tgid < tgid; });
    while (it != prev.end() && it->key.tgid == k.tgid && !(it->key == k)) ++it;
    if (it == prev.end() || !(it->key == k)) {
      out.clear();
      return absl::FailedPreconditionError(absl::StrFormat(
          "process iterator: an unchanged record for pid %d, whose sample is not at hand", k.tgid));
    }
    ProcessSample& s = out.emplace_back(*it);
    s.unchanged = true;
  }
  for (; w < pass.whole.size(); ++w) out.push_back(std::move(pass.whole[w]));
  return absl::OkStatus();
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
