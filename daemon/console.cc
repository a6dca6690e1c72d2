// SPDX-License-Identifier: Apache-2.0
// The console report: the daemon's "top offenders" table on stdout (not a log: --quiet turns
// it off).
#include <cstdio>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "daemon.h"
#include "report.h"
#include "text.h"

namespace procscope {

std::vector<ProcessSample> Daemon::ReportSamples() const {
  std::vector<ProcessSample> out;
  for (ProcessInfo& p : table_.Processes()) out.push_back(std::move(p));  // by pid
  return out;
}

void Daemon::Report(absl::Time now) {
  const std::vector<ProcessSample> cur = ReportSamples();
  std::string out = absl::StrFormat(
      "\n%s  %d processes\n", absl::FormatTime("%H:%M:%S", now, absl::LocalTimeZone()), cur.size());
  if (pass_->offenders.empty()) {
    out += "offenders: none\n";
  } else {
    for (const Offender& o : pass_->offenders) {
      absl::StrAppendFormat(&out, "OFFENDER %-13s pid %-7u %-16s %s\n", ResourceName(o.resource),
                            o.key.tgid, EscapeForDisplay(o.comm), o.reason);
      if (!o.where.empty()) {
        // The arrows are ours; the frames' names are escaped one by one.
        std::vector<std::string> parts = absl::StrSplit(o.where, " \u2190 ");
        for (std::string& part : parts) part = EscapeForDisplay(part);
        absl::StrAppend(&out, "         ", absl::StrJoin(parts, " \u2190 "), "\n");
      }
    }
  }
  if (!report_prev_.empty()) {
    out += FormatTopTable(
        ComputeRates(report_prev_, cur, absl::ToDoubleSeconds(now - report_prev_at_)),
        static_cast<size_t>(reload_.top));
  }
  printf("%s", out.c_str());
  fflush(stdout);
  report_prev_ = std::move(cur);
  report_prev_at_ = now;
}

}  // namespace procscope
