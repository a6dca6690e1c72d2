// SPDX-License-Identifier: Apache-2.0
#include "cli_render.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "exits.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "records.h"

namespace procscope::cli {
namespace {

// One output line before colour: colour codes are added after a line is cut to the terminal
// width, so a cut never splits an escape sequence.
struct Line {
  std::string text;
  const char* sgr = nullptr;
};

std::string Join(const std::vector<Line>& lines, const RenderOptions& o) {
  size_t n = lines.size();
  if (o.height > 0) n = std::min(n, o.height);
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    std::string text = lines[i].text;
    if (o.width > 0 && text.size() > o.width) text.resize(o.width);
    out += lines[i].sgr != nullptr ? Paint(text, lines[i].sgr, o.color) : text;
    out.push_back('\n');
  }
  return out;
}

std::string Clock(absl::Time t, const RenderOptions& o) {
  return absl::FormatTime("%H:%M:%S", t, o.tz);
}

const char* RateHeader(SortKey k) {
  switch (k) {
    case SortKey::kCpu:
      return "CPU";
    case SortKey::kRunq:
      return "RUNQ WAIT";
    case SortKey::kMem:
      return "MEM GROWTH";
    case SortKey::kFaults:
      return "FAULTS";
    case SortKey::kIo:
      return "BLOCK I/O";
  }
  return "RATE";
}

const char* SortTitle(SortKey k) {
  switch (k) {
    case SortKey::kCpu:
      return "CPU";
    case SortKey::kRunq:
      return "RUN-QUEUE WAIT";
    case SortKey::kMem:
      return "RESIDENT-MEMORY GROWTH";
    case SortKey::kFaults:
      return "PAGE FAULTS";
    case SortKey::kIo:
      return "BLOCK I/O";
  }
  return "";
}

std::string OffenderRate(const v1::Offender& off) { return FormatRate(off.rate(), off.unit()); }

// A window length as the daemon's flags spell it: "30s", "1m".
std::string Window(double seconds) {
  if (!(seconds > 0)) return "?";
  return absl::FormatDuration(absl::Trunc(absl::Seconds(seconds), absl::Milliseconds(1)));
}

}  // namespace

std::string Paint(absl::string_view text, const char* sgr, bool color) {
  if (!color) return std::string(text);
  return absl::StrCat("\x1b[", sgr, "m", text, "\x1b[0m");
}

std::string Cell(absl::string_view raw, size_t width) {
  std::string s = EscapeForDisplay(raw);
  if (s.empty()) s = "-";
  if (s.size() > width) {
    s.resize(width);
    if (width > 0) s.back() = '~';
  }
  s.resize(width, ' ');
  return s;
}

std::string HumanDuration(double seconds) {
  if (!(seconds >= 0)) seconds = 0;
  if (seconds < 10) return absl::StrFormat("%.3fs", seconds);
  if (seconds < 60) return absl::StrFormat("%.1fs", seconds);
  const int64_t s = static_cast<int64_t>(seconds);
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  if (s < 86400) return absl::StrFormat("%dh%02dm", s / 3600, s % 3600 / 60);
  return absl::StrFormat("%dd%02dh", s / 86400, s % 86400 / 3600);
}

std::string Percent(double share) {
  if (share < 0 || std::isnan(share)) return "-";
  return absl::StrFormat("%.1f%%", share * 100);
}

std::string FormatRate(double rate, absl::string_view unit) {
  if (unit == "cores") return absl::StrFormat("%.2f cores", rate);
  if (unit == "bytes/s") return absl::StrCat(HumanBytes(rate), "/s");
  if (unit == "faults/s") return absl::StrFormat("%.0f/s", rate);
  if (unit == "crashes/min") return absl::StrFormat("%.1f/min", rate);
  return absl::StrFormat("%.2f %s", rate, EscapeForDisplay(unit));
}

std::string ShortContainer(absl::string_view id) {
  if (id.empty()) return "-";
  return std::string(id.substr(0, 12));
}

std::string MessageJson(const google::protobuf::Message& m) {
  // A string that is not UTF-8 (a hostile source name, say) would fail the conversion.
  std::unique_ptr<google::protobuf::Message> fixed;
  if (!StringsAreValidUtf8(m)) {
    fixed.reset(m.New());
    fixed->CopyFrom(m);
    MakeStringsValidUtf8(fixed.get());
  }
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(fixed ? *fixed : m, &out, opts).ok()) {
    return "{}";
  }
  return out;
}

std::string JsonString(absl::string_view s) {
  google::protobuf::Value v;
  v.set_string_value(ToValidUtf8(s));
  return MessageJson(v);
}

// ---------------------------------------------------------------------------------------------
// top

double RateOf(const v1::Process& p, SortKey k) {
  switch (k) {
    case SortKey::kCpu:
      return p.cpu_cores();
    case SortKey::kRunq:
      return p.runqueue_wait_cores();
    case SortKey::kMem:
      return p.memory_growth_bytes_per_second();
    case SortKey::kFaults:
      return p.page_faults_per_second();
    case SortKey::kIo:
      return p.block_io_bytes_per_second();
  }
  return 0;
}

const char* UnitOf(SortKey k) {
  switch (k) {
    case SortKey::kCpu:
    case SortKey::kRunq:
      return "cores";
    case SortKey::kMem:
    case SortKey::kIo:
      return "bytes/s";
    case SortKey::kFaults:
      return "faults/s";
  }
  return "";
}

std::vector<v1::Process> TopProcesses(const v1::ProcessList& list, SortKey k, size_t limit) {
  std::vector<const v1::Process*> all;
  all.reserve(list.processes_size());
  for (const v1::Process& p : list.processes()) all.push_back(&p);
  auto before = [k](const v1::Process* a, const v1::Process* b) {
    const double ra = RateOf(*a, k), rb = RateOf(*b, k);
    if (ra != rb) return ra > rb;
    if (a->cpu_cores() != b->cpu_cores()) return a->cpu_cores() > b->cpu_cores();
    return a->pid() < b->pid();
  };
  const size_t n = std::min(limit, all.size());
  std::partial_sort(all.begin(), all.begin() + n, all.end(), before);
  std::vector<v1::Process> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(*all[i]);
  return out;
}

double TotalOf(const v1::ProcessList& list, SortKey k) {
  double total = 0;
  for (const v1::Process& p : list.processes()) total += std::max(RateOf(p, k), 0.0);
  return total;
}

double ShareOf(double rate, SortKey k, int num_cpus, double total) {
  if (k == SortKey::kCpu || k == SortKey::kRunq) {
    return std::clamp(rate / std::max(num_cpus, 1), 0.0, 1.0);
  }
  if (!(total > 0)) return -1;
  return std::clamp(rate / total, 0.0, 1.0);
}

std::string RenderTop(const TopData& d, SortKey sort, size_t limit, const RenderOptions& o) {
  std::vector<Line> lines;
  lines.push_back(
      {absl::StrFormat("procscope top  %s  %s  %d processes  %d CPUs  window %s", Clock(d.taken, o),
                       EscapeForDisplay(d.source), d.processes.processes_size(), o.num_cpus,
                       Window(d.offenders.window_seconds())),
       kBold});
  lines.push_back({""});
  std::set<uint32_t> offender_pids;
  if (d.offenders.offenders().empty()) {
    lines.push_back({absl::StrCat("OFFENDERS  none: no process stands out over the last ",
                                  Window(d.offenders.window_seconds())),
                     kBold});
  } else {
    lines.push_back({"OFFENDERS", kBold});
    lines.push_back({absl::StrFormat("%-13s %7s %-16s %-16s %-12s %12s %6s  %s", "RESOURCE", "PID",
                                     "COMM", "GROUP", "CONTAINER", "RATE", "SHARE", "REASON")});
    for (const v1::Offender& off : d.offenders.offenders()) {
      offender_pids.insert(off.pid());
      lines.push_back({absl::StrFormat("%s %7u %s %s %s %12s %6s  %s", Cell(off.resource(), 13),
                                       off.pid(), Cell(off.comm(), 16), Cell(off.group(), 16),
                                       Cell(ShortContainer(off.container()), 12), OffenderRate(off),
                                       off.share() > 0 ? Percent(off.share()) : "-",
                                       EscapeForDisplay(off.reason())),
                       kRedBold});
      if (!off.where().empty()) {
        // The arrows are ours; the frames' names are escaped one by one.
        std::vector<std::string> parts = absl::StrSplit(off.where(), " \u2190 ");
        for (std::string& part : parts) part = EscapeForDisplay(part);
        lines.push_back({absl::StrCat(std::string(22, ' '), absl::StrJoin(parts, " \u2190 "))});
      }
    }
  }
  lines.push_back({""});
  const std::vector<v1::Process> top = TopProcesses(d.processes, sort, limit);
  const double total = TotalOf(d.processes, sort);
  lines.push_back({absl::StrFormat("TOP %d BY %s", top.size(), SortTitle(sort)), kBold});
  lines.push_back({absl::StrFormat("%7s %-16s %-16s %-12s %12s %6s", "PID", "COMM", "GROUP",
                                   "CONTAINER", RateHeader(sort), "SHARE")});
  for (const v1::Process& p : top) {
    const double rate = RateOf(p, sort);
    lines.push_back(
        {absl::StrFormat("%7u %s %s %s %12s %6s", p.pid(), Cell(p.comm(), 16), Cell(p.group(), 16),
                         Cell(ShortContainer(p.container()), 12), FormatRate(rate, UnitOf(sort)),
                         Percent(ShareOf(rate, sort, o.num_cpus, total))),
         offender_pids.count(p.pid()) ? kRedBold : nullptr});
  }
  return Join(lines, o);
}

std::string TopJson(const TopData& d, SortKey sort, size_t limit, int num_cpus) {
  v1::TopReport r;
  r.set_generated_unix_ns(absl::ToUnixNanos(d.taken));
  r.set_source(d.source);
  r.set_sort(SortKeyName(sort));
  r.set_limit(static_cast<uint32_t>(limit));
  r.set_num_cpus(num_cpus);
  *r.mutable_offenders() = d.offenders;
  for (v1::Process& p : TopProcesses(d.processes, sort, limit)) *r.add_processes() = std::move(p);
  return MessageJson(r) + "\n";
}

// ---------------------------------------------------------------------------------------------
// events

bool IsFailure(const v1::ExitEvent& e) { return e.outcome() != v1::SUCCESS; }

std::string EventsHeader(const RenderOptions& o) {
  return Join(
      {{absl::StrFormat("%-14s %7s %-16s %-16s %-10s %-8s %-4s %-3s %4s %9s", "TIME", "PID", "COMM",
                        "GROUP", "OUTCOME", "SIGNAL", "CORE", "OOM", "EXIT", "LIFETIME"),
        kBold}},
      o);
}

std::string EventLine(const v1::ExitEvent& e, const RenderOptions& o) {
  const absl::Time t = absl::FromUnixNanos(e.exit_time_unix_ns());
  const bool exited = e.outcome() == v1::SUCCESS || e.outcome() == v1::FAILURE;
  std::string signal = "-";
  if (e.signal() != 0)
    signal = e.signal_name().empty() ? absl::StrCat(e.signal()) : e.signal_name();
  const char* sgr = nullptr;
  if (e.outcome() == v1::CRASHED || e.outcome() == v1::OOM_KILLED) {
    sgr = kRedBold;
  } else if (e.outcome() == v1::FAILURE || e.outcome() == v1::SIGNALED) {
    sgr = kYellow;
  }
  return Join(
      {{absl::StrFormat("%-14s %7u %s %s %-10s %s %-4s %-3s %4s %9s",
                        absl::FormatTime("%m-%d %H:%M:%S", t, o.tz), e.pid(), Cell(e.comm(), 16),
                        Cell(e.group(), 16), OutcomeName(e.outcome()), Cell(signal, 8),
                        e.core_dumped() ? "yes" : "no", e.oom_killed() ? "yes" : "no",
                        exited ? absl::StrCat(e.exit_code()) : "-",
                        HumanDuration(e.lifetime_seconds())),
        sgr}},
      o);
}

std::string RenderEvents(const std::vector<v1::ExitEvent>& events, const RenderOptions& o) {
  if (events.empty()) return "no exits recorded yet\n";
  std::string out = EventsHeader(o);
  for (const v1::ExitEvent& e : events) out += EventLine(e, o);
  return out;
}

std::vector<v1::ExitEvent> EventFollower::Update(const v1::EventList& newest_first) {
  std::set<Key> now;
  std::vector<v1::ExitEvent> fresh;
  for (const v1::ExitEvent& e : newest_first.events()) {
    const Key k{e.pid(), e.start_time_unix_ns()};
    if (!now.insert(k).second) continue;  // listed twice in one reply
    if (!seen_.count(k)) fresh.push_back(e);
  }
  all_new_ = primed_ && !newest_first.events().empty() &&
             fresh.size() == static_cast<size_t>(newest_first.events_size());
  last_size_ = static_cast<size_t>(newest_first.events_size());
  primed_ = true;
  seen_ = std::move(now);
  std::reverse(fresh.begin(), fresh.end());  // oldest first, as they happened
  return fresh;
}

bool EventFollower::MaybeMissed(size_t requested) const {
  return all_new_ && last_size_ >= requested;
}

// ---------------------------------------------------------------------------------------------
// status

std::string RenderStatus(const StatusData& d, const RenderOptions& o) {
  const v1::DaemonStatus& st = d.status;
  std::vector<Line> lines;
  auto body = [](absl::string_view b) {
    std::string s = EscapeForDisplay(absl::StripAsciiWhitespace(b));
    return s.empty() ? std::string("-") : s;
  };
  lines.push_back({absl::StrCat("procscoped ", EscapeForDisplay(st.version()), " at ",
                                EscapeForDisplay(d.source)),
                   kBold});
  lines.push_back({absl::StrFormat("  health     %-8s (/healthz: %d %s)",
                                   d.healthz_code == 200 ? "ok" : "FAILING", d.healthz_code,
                                   body(d.healthz_body)),
                   d.healthz_code == 200 ? nullptr : kRedBold});
  lines.push_back(
      {absl::StrFormat("  ready      %-8s (/readyz: %d %s)", d.readyz_code == 200 ? "yes" : "no",
                       d.readyz_code, body(d.readyz_body)),
       d.readyz_code == 200 ? nullptr : kYellow});
  lines.push_back({absl::StrCat("  uptime     ", HumanDuration(st.uptime_seconds()))});
  lines.push_back({absl::StrFormat(
      "  tracking   %d live processes, %d exits recorded; grouped by %s; offender window %s",
      st.tracked_processes(), st.exit_events(), EscapeForDisplay(st.group_by()),
      Window(st.offender_window_seconds()))});
  if (st.degraded_hooks().empty()) {
    lines.push_back({"  degraded   none: every hook is attached"});
  } else {
    std::vector<std::string> hooks;
    for (const std::string& h : st.degraded_hooks()) hooks.push_back(EscapeForDisplay(h));
    lines.push_back({absl::StrCat("  degraded   ", absl::StrJoin(hooks, ", "),
                                  " (not attached: their data is missing)"),
                     kYellow});
  }

  lines.push_back({""});
  bool any_cost = false;
  for (const auto& p : st.programs()) any_cost |= p.ns_per_run() > 0;
  lines.push_back(
      {any_cost ? "BPF PROGRAMS"
                : "BPF PROGRAMS  (runs and ns/run are 0: procscoped runs without --bpf_stats)",
       kBold});
  lines.push_back({absl::StrFormat("  %-22s %-24s %-7s %14s %8s %10s", "NAME", "HOOK", "ATTACH",
                                   "RUNS", "NS/RUN", "CPU TOTAL")});
  for (const auto& p : st.programs()) {
    lines.push_back({absl::StrFormat("  %s %s %s %14d %8.0f %10s", Cell(p.name(), 22),
                                     Cell(p.hook(), 24), Cell(p.attach(), 7), p.runs(),
                                     p.ns_per_run(), HumanDuration(p.run_time_seconds()))});
  }

  lines.push_back({""});
  std::vector<std::string> drops, counters;
  for (const auto& [name, value] :
       std::map<std::string, uint64_t>(st.kernel_stats().begin(), st.kernel_stats().end())) {
    if (name.rfind("drop_", 0) == 0) {
      if (value > 0) drops.push_back(absl::StrCat(EscapeForDisplay(name), " ", value));
    } else {
      counters.push_back(absl::StrCat(EscapeForDisplay(name), " ", value));
    }
  }
  if (drops.empty()) {
    lines.push_back({"DROPS  none (every drop_* counter is 0)", kBold});
  } else {
    lines.push_back({absl::StrCat("DROPS  ", absl::StrJoin(drops, ", ")), kRedBold});
  }
  if (!counters.empty()) {
    lines.push_back({absl::StrCat("  other kernel counters: ", absl::StrJoin(counters, ", "))});
  }

  lines.push_back({""});
  lines.push_back({"MAPS", kBold});
  lines.push_back({absl::StrFormat("  %-22s %10s %10s %6s", "NAME", "ENTRIES", "MAX", "FILL")});
  for (const auto& m : st.maps()) {
    const double fill =
        m.max_entries() > 0 ? static_cast<double>(m.entries()) / m.max_entries() : -1;
    lines.push_back({absl::StrFormat("  %s %10d %10d %6s", Cell(m.name(), 22), m.entries(),
                                     m.max_entries(), Percent(fill)),
                     fill >= 0.9 ? kRedBold : nullptr});
  }
  return Join(lines, o);
}

std::string StatusJson(const StatusData& d) {
  v1::StatusReport r;
  r.set_source(d.source);
  r.mutable_healthz()->set_code(d.healthz_code);
  r.mutable_healthz()->set_body(std::string(absl::StripAsciiWhitespace(d.healthz_body)));
  r.mutable_readyz()->set_code(d.readyz_code);
  r.mutable_readyz()->set_body(std::string(absl::StripAsciiWhitespace(d.readyz_body)));
  *r.mutable_status() = d.status;
  return MessageJson(r) + "\n";
}

}  // namespace procscope::cli
