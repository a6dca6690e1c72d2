// SPDX-License-Identifier: Apache-2.0
#include "report.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "text.h"

namespace procscope {
namespace {

double Rate(uint64_t now, uint64_t before, double seconds) {
  return now >= before && seconds > 0 ? static_cast<double>(now - before) / seconds : 0;
}

// The escaped form of `raw`, cut to at most `width` characters without splitting an escape.
std::string DisplayName(absl::string_view raw, size_t width) {
  std::string out;
  for (char c : raw) {
    std::string piece = EscapeForDisplay(absl::string_view(&c, 1));
    if (out.size() + piece.size() > width) break;
    out += piece;
  }
  return out;
}

}  // namespace

std::vector<ProcessRate> ComputeRates(const std::vector<ProcessSample>& prev,
                                      const std::vector<ProcessSample>& cur, double seconds) {
  std::vector<ProcessRate> out;
  out.reserve(cur.size());
  static const ProcessSample kZero;
  size_t j = 0;
  for (const ProcessSample& c : cur) {
    while (j < prev.size() && prev[j].key.tgid < c.key.tgid) ++j;
    const ProcessSample& p = (j < prev.size() && prev[j].key.tgid == c.key.tgid &&
                              prev[j].key.start_ns == c.key.start_ns)
                                 ? prev[j]
                                 : kZero;
    ProcessRate r;
    r.sample = &c;
    r.cpu_cores = Rate(c.counters.cpu_ns, p.counters.cpu_ns, seconds) / 1e9;
    r.runq_cores = Rate(c.counters.runq_ns, p.counters.runq_ns, seconds) / 1e9;
    r.switches = Rate(c.counters.vol_cs + c.counters.invol_cs,
                      p.counters.vol_cs + p.counters.invol_cs, seconds);
    r.minor_faults = Rate(c.counters.min_flt, p.counters.min_flt, seconds);
    r.major_faults = Rate(c.counters.maj_flt, p.counters.maj_flt, seconds);
    r.read_bytes = Rate(c.io.read_bytes, p.io.read_bytes, seconds);
    r.write_bytes = Rate(c.io.write_bytes, p.io.write_bytes, seconds);
    out.push_back(r);
  }
  return out;
}

std::string FormatTopTable(std::vector<ProcessRate> rates, size_t limit) {
  std::sort(rates.begin(), rates.end(), [](const ProcessRate& a, const ProcessRate& b) {
    if (a.cpu_cores != b.cpu_cores) return a.cpu_cores > b.cpu_cores;
    return a.sample->key.tgid < b.sample->key.tgid;
  });
  std::string out =
      absl::StrFormat("%8s %-16s %6s %6s %8s %9s %8s %10s %10s %10s\n", "PID", "COMM", "CPU%",
                      "RUNQ%", "CSW/s", "MINFLT/s", "MAJFLT/s", "READ/s", "WRITE/s", "RSS");
  for (size_t i = 0; i < rates.size() && i < limit; ++i) {
    const ProcessRate& r = rates[i];
    absl::StrAppendFormat(&out, "%8u %-16s %6.1f %6.1f %8.0f %9.0f %8.0f %10s %10s %10s\n",
                          r.sample->key.tgid, DisplayName(r.sample->comm, 16), r.cpu_cores * 100,
                          r.runq_cores * 100, r.switches, r.minor_faults, r.major_faults,
                          HumanBytes(r.read_bytes), HumanBytes(r.write_bytes),
                          HumanBytes(static_cast<double>(r.sample->rss_bytes)));
  }
  return out;
}

std::string FormatExit(const ps_exit_event& e) {
  const ExitStatus st = DecodeExitStatus(e.exit_code);
  std::string how;
  if (e.flags & PS_EXIT_OOM_KILLED) {
    how = absl::StrCat("oom-killed (", SignalName(st.signal), ")");
  } else if (st.signal != 0) {
    how = absl::StrCat("killed by ", SignalName(st.signal), st.core_dumped ? ", core dumped" : "");
  } else {
    how = absl::StrCat("exited ", st.exit_code);
  }
  const double lifetime_s = e.exit_ns > e.key.start_ns ? (e.exit_ns - e.key.start_ns) / 1e9 : 0;
  return absl::StrFormat(
      "exit pid=%u ppid=%u comm=\"%s\" %s lifetime=%.3fs cpu=%.3fs runq=%.3fs minflt=%u "
      "majflt=%u read=%s write=%s",
      e.key.tgid, e.ppid, EscapeForDisplay(CommFromKernel(e.comm)), how, lifetime_s,
      e.c.cpu_ns / 1e9, e.c.runq_ns / 1e9, e.c.min_flt, e.c.maj_flt,
      HumanBytes(static_cast<double>(e.io.read_bytes)),
      HumanBytes(static_cast<double>(e.io.write_bytes)));
}

}  // namespace procscope
