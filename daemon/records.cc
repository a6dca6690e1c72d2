// SPDX-License-Identifier: Apache-2.0
#include "records.h"

#include <string.h>

#include <algorithm>
#include <csignal>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "counters.h"
#include "model.h"

namespace procscope {
absl::StatusOr<std::vector<ProcessSample>> ParseProcessRecords(absl::string_view buf) {
  if (buf.size() % sizeof(ps_proc_rec) != 0) {
    return absl::DataLossError(
        absl::StrFormat("process iterator returned %d bytes, not a multiple of the %d-byte record",
                        buf.size(), sizeof(ps_proc_rec)));
  }
  const size_t n = buf.size() / sizeof(ps_proc_rec);
  std::vector<ProcessSample> out;
  out.reserve(n);
  absl::flat_hash_map<ps_key, size_t> index;  // hash and equality: model.h
  std::vector<ps_proc_rec> deltas;
  for (size_t i = 0; i < n; ++i) {
    ps_proc_rec r;
    memcpy(&r, buf.data() + i * sizeof(r), sizeof(r));
    if (r.flags & PS_REC_DELTA) {
      deltas.push_back(r);
      continue;
    }
    ProcessSample s;
    s.key = r.key;
    s.ppid = r.ppid;
    s.uid = r.uid;
    s.nr_threads = r.nr_threads;
    s.cgroup_id = r.cgroup_id;
    s.rss_bytes = r.rss_bytes;
    s.comm = CommFromKernel(r.comm);
    s.counters = r.c;
    s.io = r.io;
    index.emplace(s.key, out.size());
    out.push_back(std::move(s));
  }
  // A delta whose process is not in this pass (it began exiting meanwhile) is dropped: the exit
  // event carries the final totals.
  for (const ps_proc_rec& d : deltas) {
    auto it = index.find(d.key);
    if (it != index.end()) AddCounters(out[it->second].counters, d.c);
  }
  std::sort(out.begin(), out.end(),
            [](const ProcessSample& a, const ProcessSample& b) { return a.key.tgid < b.key.tgid; });
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
