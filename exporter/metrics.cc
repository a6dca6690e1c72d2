// SPDX-License-Identifier: Apache-2.0
// The Prometheus exposition, written per scrape straight into the text format (no registry, so
// that nothing outlives a scrape and vanished processes leave no stale series behind). Not via
// prometheus-cpp's MetricFamily and TextSerializer: its ostream formatting took about three
// quarters of a scrape of 20,000 series (docs/PERFORMANCE.md); the output is the same, byte for
// byte, but for NaN.
#include "metrics.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "counters.h"
#include "profile.h"
#include "text.h"

namespace procscope {
namespace {

enum class MetricType { kCounter, kGauge, kHistogram };

// Every family, in output order. Families that end up with no series are left out.
enum Fam {
  kGroupCpu,
  kGroupRunq,
  kGroupBlocked,
  kGroupSleep,
  kGroupRunqCaused,
  kGroupCs,
  kGroupFaults,
  kGroupIoBytes,
  kGroupIoOps,
  kGroupIoTime,
  kGroupDirtied,
  kGroupProcesses,
  kGroupRss,
  kGroupExits,
  kGroupCrashes,
  kGroupRunqLatency,
  kProcCpu,
  kProcRunq,
  kProcBlocked,
  kProcSleep,
  kProcRunqCaused,
  kProcCs,
  kProcFaults,
  kProcIoBytes,
  kProcRss,
  kProcStart,
  kOffender,
  kBpfRunTime,
  kBpfRuns,
  kKernelDropped,
  kProfileSamples,
  kStacksLost,
  kUnattributedOps,
  kUnattributedBytes,
  kOrphanOps,
  kExitEvents,
  kTrackedProcesses,
  kMapEntries,
  kMapMaxEntries,
  kScrapeDuration,
  kSeriesDropped,
  kSeriesLimit,
  kJournalDropped,
  kJournalDroppedRecords,
  kJournalDamaged,
  kDegradedHook,
  kBuildInfo,
  kProfileStacks,
  kProfileUserStacks,
  kProfileUserTruncated,
  kProfileDropped,
  kProfileStoreBytes,
  kNumFamilies,
};

struct FamilyDef {
  const char* name;
  MetricType type;
  const char* help;  // printed as is: no backslash or newline
};

constexpr MetricType kCounter = MetricType::kCounter;
constexpr MetricType kGauge = MetricType::kGauge;

// Indexed by Fam. Unsized, so that a Fam without a definition fails the size check below.
constexpr FamilyDef kFamilies[] = {
    {"procscope_group_cpu_seconds_total", kCounter,
     "On-CPU time of the processes of the group, live and exited, in seconds."},
    {"procscope_group_runqueue_wait_seconds_total", kCounter,
     "Time the processes of the group were runnable but waiting for a CPU, in seconds."},
    {"procscope_group_blocked_seconds_total", kCounter,
     "Off-CPU time of the group in uninterruptible sleep (D: disk, locks), switch-out to wakeup."},
    {"procscope_group_sleep_seconds_total", kCounter,
     "Off-CPU time of the group in interruptible sleep (S), switch-out to wakeup."},
    {"procscope_group_runqueue_wait_caused_seconds_total", kCounter,
     "Run-queue wait of other tasks that ended when a process of the group left their CPU."},
    {"procscope_group_context_switches_total", kCounter,
     "Context switches of the group: voluntary (blocked) or involuntary (preempted)."},
    {"procscope_group_page_faults_total", kCounter,
     "Page faults of the group: minor, or major (needed I/O)."},
    {"procscope_group_block_io_bytes_total", kCounter,
     "Block device bytes charged to the group (writeback to the process that dirtied the page)."},
    {"procscope_group_block_io_operations_total", kCounter,
     "Block device requests completed for the group."},
    {"procscope_group_block_io_time_seconds_total", kCounter,
     "Sum of the device latencies (issue to completion) of the group's block requests."},
    {"procscope_group_page_cache_dirtied_bytes_total", kCounter,
     "Page-cache bytes the group dirtied with buffered writes."},
    {"procscope_group_processes", kGauge, "Live processes in the group."},
    {"procscope_group_resident_memory_bytes", kGauge,
     "Resident memory of the live processes of the group, in bytes."},
    {"procscope_group_exits_total", kCounter, "Process exits of the group, by outcome."},
    {"procscope_group_crashes_total", kCounter,
     "Processes of the group killed by a crash signal, by signal."},
    {"procscope_group_runqueue_latency_seconds", MetricType::kHistogram,
     "Run-queue wait episodes of the group (wakeup or preemption to switch-in), in seconds."},
    {"procscope_process_cpu_seconds_total", kCounter,
     "On-CPU time of the process since it started, in seconds."},
    {"procscope_process_runqueue_wait_seconds_total", kCounter,
     "Time the process was runnable but waiting for a CPU since it started, in seconds."},
    {"procscope_process_blocked_seconds_total", kCounter,
     "Off-CPU time of the process in uninterruptible sleep (D), switch-out to wakeup."},
    {"procscope_process_sleep_seconds_total", kCounter,
     "Off-CPU time of the process in interruptible sleep (S), switch-out to wakeup."},
    {"procscope_process_runqueue_wait_caused_seconds_total", kCounter,
     "Run-queue wait of other tasks that ended when the process left their CPU."},
    {"procscope_process_context_switches_total", kCounter,
     "Context switches of the process: voluntary (blocked) or involuntary (preempted)."},
    {"procscope_process_page_faults_total", kCounter,
     "Page faults of the process: minor, or major (needed I/O)."},
    {"procscope_process_block_io_bytes_total", kCounter,
     "Block device bytes charged to the process (writeback to the process that dirtied it)."},
    {"procscope_process_resident_memory_bytes", kGauge,
     "Resident memory of the process, in bytes."},
    {"procscope_process_start_time_seconds", kGauge,
     "Start time of the process, in seconds since the Unix epoch."},
    {"procscope_offender", kGauge,
     "Rate of a process flagged as an offender: cores for cpu and runqueue_wait, bytes per "
     "second for memory_growth and block_io, faults per second for page_faults, crashes per "
     "minute for crashes."},
    {"procscope_bpf_program_run_time_seconds_total", kCounter,
     "Time spent in the BPF program, as the kernel counts it (kernel.bpf_stats_enabled=1)."},
    {"procscope_bpf_program_runs_total", kCounter,
     "Runs of the BPF program, as the kernel counts them (kernel.bpf_stats_enabled=1)."},
    {"procscope_kernel_events_dropped_total", kCounter,
     "Events the BPF programs could not account, by reason (a full map or ring buffer)."},
    {"procscope_profile_samples_total", kCounter,
     "On-CPU samples taken (--profile_hz per online CPU), by cpu: busy (charged to the running "
     "process) or idle (charged to no one)."},
    {"procscope_profile_stacks_lost_total", kCounter,
     "Stacks not recorded, by reason; the sample or off-CPU time is still counted, without that "
     "stack."},
    {"procscope_unattributed_block_io_operations_total", kCounter,
     "Block requests of no traced process (journal, metadata, kernel I/O)."},
    {"procscope_unattributed_block_io_bytes_total", kCounter,
     "Block device bytes of no traced process (journal, metadata, kernel I/O)."},
    {"procscope_orphan_block_io_operations_total", kCounter,
     "Block requests that completed after the process that caused them exited."},
    {"procscope_exit_events_total", kCounter, "Process exit events handled by the daemon."},
    {"procscope_tracked_processes", kGauge, "Live processes in the process table."},
    {"procscope_bpf_map_entries", kGauge, "Entries in a BPF map that can fill up."},
    {"procscope_bpf_map_max_entries", kGauge, "Capacity of a BPF map that can fill up."},
    {"procscope_scrape_duration_seconds", kGauge,
     "Time the previous scrape took to build and serialise, in seconds."},
    {"procscope_series_dropped_total", kCounter,
     "Series left out of scrapes by the series cap, this scrape included."},
    {"procscope_series_limit", kGauge,
     "The series cap (--max_series): most sample lines one scrape may hold."},
    {"procscope_journal_dropped_bytes_total", kCounter,
     "Bytes of exit records the journal dropped (full or failing writes)."},
    {"procscope_journal_dropped_records_total", kCounter,
     "Exit records the journal dropped (full or failing writes)."},
    {"procscope_journal_damaged_bytes_total", kCounter,
     "Damaged bytes the journal skipped when it was read at start."},
    {"procscope_degraded_hook", kGauge,
     "1 for each tracepoint hook that could not attach: the data it gives is missing."},
    {"procscope_build_info", kGauge, "Always 1; the version label names the daemon's version."},
    {"procscope_profile_stacks_total", kCounter,
     "Stack entries drained into the profile history, by kind (cpu, blocked, sleep)."},
    {"procscope_profile_user_stacks_total", kCounter,
     "Stack entries with a user stack (a task with an mm), by kind."},
    {"procscope_profile_user_stacks_truncated_total", kCounter,
     "User stacks whose outermost frame is no thread or process entry point (frame pointers "
     "missing on the way), by kind."},
    {"procscope_profile_entries_dropped_total", kCounter,
     "Aggregated stack entries the profile history dropped before their time (memory cap)."},
    {"procscope_profile_store_bytes", kGauge,
     "Estimated memory of the profile history (stacks, frames, buckets), in bytes."},
};

static_assert(std::size(kFamilies) == kNumFamilies, "a metric family (Fam) without a definition");

double Seconds(uint64_t ns) { return static_cast<double>(ns) / 1e9; }

constexpr bool NameEquals(const char* a, const char* b) {
  while (*a != '\0' && *a == *b) ++a, ++b;
  return *a == *b;
}

// The family of a name (model/counters.h names each counter's family); kNumFamilies if none.
constexpr Fam FamOf(const char* name) {
  if (name == nullptr) return kNumFamilies;
  for (int f = 0; f < kNumFamilies; ++f) {
    if (NameEquals(kFamilies[f].name, name)) return static_cast<Fam>(f);
  }
  return kNumFamilies;
}

// Every counter's group family exists, and its process family when it has one.
#define PS_CHECK_FAMILIES(f, ...)                                           \
  static_assert(FamOf(counter_meta::f::kGroupFamily) != kNumFamilies,       \
                #f ": group family not in kFamilies");                      \
  static_assert(counter_meta::f::kProcessFamily == nullptr ||               \
                    FamOf(counter_meta::f::kProcessFamily) != kNumFamilies, \
                #f ": process family not in kFamilies");
PS_SCALAR_FIELDS(PS_CHECK_FAMILIES)
PS_IO_FIELDS(PS_CHECK_FAMILIES)
#undef PS_CHECK_FAMILIES

// %.16g, as prometheus-cpp printed it (the 16 digits keep values stable across versions of the
// daemon), and NaN, +Inf, -Inf; integers, most values here, take the quicker integer path.
void AppendValue(std::string& out, double v) {
  char buf[32];
  char* end;
  if (std::isnan(v)) {
    out.append("NaN");
    return;
  }
  if (std::isinf(v)) {
    out.append(v < 0 ? "-Inf" : "+Inf");
    return;
  }
  if (std::fabs(v) < 1e15 && v == std::trunc(v) && !(v == 0 && std::signbit(v))) {
    end = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(v)).ptr;
  } else {
    end = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 16).ptr;
  }
  out.append(buf, end);
}

// A count, as prometheus-cpp printed a uint64_t (histogram counts and buckets).
void AppendCount(std::string& out, uint64_t n) {
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, n).ptr);
}

// name="value" in the text format: the value's backslash, double quote and newline escaped.
void AppendLabel(std::string& out, absl::string_view name, absl::string_view value) {
  out.append(name.data(), name.size());
  out.append("=\"");
  for (const char c : value) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out.append("\\n");
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

// A label set as the text format writes it between the braces: name="value",... Label names
// are ours (constants); values are escaped as they are added.
class Labels {
 public:
  Labels() = default;
  Labels(std::initializer_list<std::pair<const char*, absl::string_view>> labels) {
    for (const auto& [name, value] : labels) Add(name, value);
  }
  void Add(absl::string_view name, absl::string_view value) {
    if (!text_.empty()) text_.push_back(',');
    AppendLabel(text_, name, value);
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// The `le` label values of the run-queue histogram: bucket i of runq_hist ends at 2^(i+1) us,
// the last one is open-ended.
const std::array<std::string, PS_RUNQ_BUCKETS>& RunqueueBounds() {
  static const auto* const bounds = [] {
    auto* b = new std::array<std::string, PS_RUNQ_BUCKETS>;
    for (int i = 0; i < PS_RUNQ_BUCKETS; ++i) {
      AppendValue((*b)[i], i < PS_RUNQ_BUCKETS - 1 ? std::ldexp(1e-6, i + 1)  // exact: 2^k*1e-6
                                                   : std::numeric_limits<double>::infinity());
    }
    return b;
  }();
  return *bounds;
}

// The sample lines of one unit: one group, one process, one offender or the self-metrics, each
// line tagged with its family. A unit is added whole or not at all, so that a group is never
// shown with half its series.
class Unit {
 public:
  void Add(Fam fam, const Labels& labels, double value) { Add(fam, labels, {}, {}, value); }
  // With one more label after `labels`.
  void Add(Fam fam, const Labels& labels, absl::string_view name, absl::string_view value,
           double v) {
    Head(fam, "", labels, name, value);
    AppendValue(text_, v);
    End(fam);
  }
  // _count, _sum and the cumulative buckets, as prometheus-cpp wrote a histogram.
  void AddRunqueueHistogram(Fam fam, const ps_counters& c, const Labels& labels) {
    uint64_t count = 0;
    for (int i = 0; i < PS_RUNQ_BUCKETS; ++i) count += c.runq_hist[i];
    Head(fam, "_count", labels, {}, {});
    AppendCount(text_, count);
    End(fam);
    Head(fam, "_sum", labels, {}, {});
    AppendValue(text_, Seconds(c.runq_ns));
    End(fam);
    uint64_t cumulative = 0;
    const auto& bounds = RunqueueBounds();
    for (int i = 0; i < PS_RUNQ_BUCKETS; ++i) {
      cumulative += c.runq_hist[i];
      Head(fam, "_bucket", labels, "le", bounds[i]);
      AppendCount(text_, cumulative);
      End(fam);
    }
  }
  size_t lines() const { return lines_.size(); }

 private:
  friend class Exposition;

  void Head(Fam fam, absl::string_view suffix, const Labels& labels, absl::string_view name,
            absl::string_view value) {
    text_.append(kFamilies[fam].name);
    text_.append(suffix.data(), suffix.size());
    if (!labels.text().empty() || !name.empty()) {
      text_.push_back('{');
      text_.append(labels.text());
      if (!name.empty()) {
        if (!labels.text().empty()) text_.push_back(',');
        AppendLabel(text_, name, value);
      }
      text_.push_back('}');
    }
    text_.push_back(' ');
  }
  void End(Fam fam) {
    text_.push_back('\n');
    lines_.emplace_back(fam, text_.size());
  }

  std::string text_;
  std::vector<std::pair<Fam, size_t>> lines_;  // each line's family and end offset in text_
};

// Families under construction and the series budget.
class Exposition {
 public:
  explicit Exposition(size_t max_series) : max_series_(max_series) {}

  // For the self-metrics: always shown (they are few and bounded), but they use up the budget.
  void Reserve(size_t lines) { used_ += lines; }
  void AddReserved(Unit&& unit) { Commit(std::move(unit)); }

  // Adds the unit if it fits under the cap; otherwise counts its series as dropped.
  void AddIfRoom(Unit&& unit) {
    if (used_ > max_series_ || unit.lines() > max_series_ - used_) {
      dropped_ += unit.lines();
      return;
    }
    used_ += unit.lines();
    Commit(std::move(unit));
  }

  // Series left out for another reason than the cap (a label collision): counted all the same.
  void CountDropped(size_t lines) { dropped_ += lines; }

  uint64_t dropped() const { return dropped_; }

  // The families in order, each with its HELP and TYPE; families with no series are left out.
  // Each line is copied once, from its unit into the output, which is sized first.
  std::string Finish() && {
    size_t size = 0;
    for (const Unit& u : units_) size += u.text_.size();
    std::string out;
    out.reserve(size + 200 * kNumFamilies);
    for (int f = 0; f < kNumFamilies; ++f) {
      if (spans_[f].empty()) continue;
      absl::StrAppend(&out, "# HELP ", kFamilies[f].name, " ", kFamilies[f].help, "\n# TYPE ",
                      kFamilies[f].name, " ", TypeName(kFamilies[f].type), "\n");
      for (const Span& s : spans_[f]) out.append(units_[s.unit].text_, s.begin, s.end - s.begin);
    }
    return out;
  }

 private:
  static const char* TypeName(MetricType t) {
    switch (t) {
      case MetricType::kCounter:
        return "counter";
      case MetricType::kGauge:
        return "gauge";
      case MetricType::kHistogram:
        return "histogram";
    }
    return "untyped";
  }

  // A unit's consecutive lines of one family.
  struct Span {
    size_t unit;
    size_t begin;
    size_t end;
  };

  void Commit(Unit&& unit) {
    const size_t index = units_.size();
    size_t begin = 0;
    for (size_t i = 0; i < unit.lines_.size(); ++i) {
      const auto [fam, end] = unit.lines_[i];
      if (i + 1 < unit.lines_.size() && unit.lines_[i + 1].first == fam) continue;
      spans_[fam].push_back({index, begin, end});
      begin = end;
    }
    units_.push_back(std::move(unit));
  }

  std::vector<Unit> units_;                            // the units added, whole
  std::array<std::vector<Span>, kNumFamilies> spans_;  // where each family's lines are
  size_t max_series_;
  size_t used_ = 0;
  uint64_t dropped_ = 0;
};

// One series per counter of the lists: in its group family, or its process family (a counter
// without one has no per-process series), with its label if it has one.
template <typename Meta>
void AddCounterSeries(Unit& u, uint64_t value, const Labels& l, bool process) {
  constexpr Fam group = FamOf(Meta::kGroupFamily);
  constexpr Fam proc = FamOf(Meta::kProcessFamily);
  const Fam fam = process ? proc : group;
  if (fam == kNumFamilies) return;
  if constexpr (Meta::kLabel != nullptr) {
    u.Add(fam, l, Meta::kLabel, Meta::kLabelValue, Meta::Exposed(value));
  } else {
    u.Add(fam, l, Meta::Exposed(value));
  }
}

void AddCounterSeries(Unit& u, const ps_counters& c, const ps_io& io, const Labels& l,
                      bool process) {
#define PS_SERIES(f, ...) AddCounterSeries<counter_meta::f>(u, c.f, l, process);
#define PS_IO_SERIES(f) AddCounterSeries<counter_meta::f>(u, io.f, l, process);
// The hook's own measurements appear once non-zero, like the exits of an outcome: off (--offcpu
// or --contention false) they are no series at all, and the series budget is not spent on zeros.
#define PS_NONZERO_SERIES(f, ...) \
  if (c.f != 0) AddCounterSeries<counter_meta::f>(u, c.f, l, process);
  PS_COUNTER_FIELDS(PS_SERIES)
  PS_ACCOUNTED_FIELDS(PS_NONZERO_SERIES)
  PS_IO_FIELDS(PS_IO_SERIES)
#undef PS_NONZERO_SERIES
#undef PS_IO_SERIES
#undef PS_SERIES
}

Unit SelfUnit(const SelfState& s, uint64_t series_dropped_now, size_t max_series) {
  Unit u;
  for (const ProgramStats& p : s.programs) {
    const Labels l = {{"program", SanitizeLabelValue(p.name)},
                      {"hook", SanitizeLabelValue(p.hook)}};
    u.Add(kBpfRunTime, l, Seconds(p.run_time_ns));
    u.Add(kBpfRuns, l, static_cast<double>(p.run_cnt));
  }
  for (int i = 0; i < PS_STAT_MAX; ++i) {
    const absl::string_view name = StatName(i);
    if (absl::StartsWith(name, "drop_")) {
      u.Add(kKernelDropped, {{"reason", name.substr(5)}}, static_cast<double>(s.kernel_stats[i]));
    }
  }
  const KernelStats& k = s.kernel_stats;
  const uint64_t idle = k[PS_STAT_PROFILE_IDLE];
  u.Add(kProfileSamples, {{"cpu", "busy"}},
        static_cast<double>(k[PS_STAT_PROFILE_SAMPLES] > idle ? k[PS_STAT_PROFILE_SAMPLES] - idle
                                                              : 0));
  u.Add(kProfileSamples, {{"cpu", "idle"}}, static_cast<double>(idle));
  u.Add(kStacksLost, {{"reason", "collision"}}, static_cast<double>(k[PS_STAT_STACK_COLLISIONS]));
  u.Add(kStacksLost, {{"reason", "failed"}}, static_cast<double>(k[PS_STAT_STACK_FAILED]));
  u.Add(kStacksLost, {{"reason", "offcpu_expired"}},
        static_cast<double>(k[PS_STAT_OFFCPU_STACK_EXPIRED]));
  const Labels none;
  u.Add(kUnattributedOps, none, static_cast<double>(k[PS_STAT_IO_UNATTRIBUTED_OPS]));
  u.Add(kUnattributedBytes, none, static_cast<double>(k[PS_STAT_IO_UNATTRIBUTED_BYTES]));
  u.Add(kOrphanOps, none, static_cast<double>(k[PS_STAT_IO_ORPHAN_OPS]));
  u.Add(kExitEvents, none, static_cast<double>(s.exit_events));
  u.Add(kTrackedProcesses, none, static_cast<double>(s.tracked_processes));
  for (const MapFill& m : s.map_entries) {
    const Labels l = {{"map", SanitizeLabelValue(m.name)}};
    u.Add(kMapEntries, l, static_cast<double>(m.entries));
    u.Add(kMapMaxEntries, l, static_cast<double>(m.max_entries));
  }
  u.Add(kScrapeDuration, none, s.last_scrape_duration_seconds);
  u.Add(kSeriesDropped, none, static_cast<double>(s.series_dropped_total + series_dropped_now));
  u.Add(kSeriesLimit, none, static_cast<double>(max_series));
  u.Add(kJournalDropped, none, static_cast<double>(s.journal_dropped_bytes));
  u.Add(kJournalDroppedRecords, none, static_cast<double>(s.journal_dropped_records));
  u.Add(kJournalDamaged, none, static_cast<double>(s.journal_damaged_bytes));
  // One series per hook; names that sanitise alike show once (a duplicate label set would be
  // rejected by Prometheus).
  std::set<std::string> hooks;
  for (const std::string& h : s.degraded_hooks) {
    std::string hook = SanitizeLabelValue(h);
    if (hooks.insert(hook).second) u.Add(kDegradedHook, {{"hook", hook}}, 1);
  }
  u.Add(kBuildInfo, {{"version", SanitizeLabelValue(s.version)}}, 1);
  for (int k = 0; s.profiling && k < PS_STACK_KINDS; ++k) {
    const Labels kind = {{"kind", StackKindName(static_cast<StackKind>(k))}};
    u.Add(kProfileStacks, kind, static_cast<double>(s.profile_stacks[k]));
    u.Add(kProfileUserStacks, kind, static_cast<double>(s.profile_user_stacks[k]));
    u.Add(kProfileUserTruncated, kind, static_cast<double>(s.profile_user_truncated[k]));
  }
  if (s.profiling) {
    u.Add(kProfileDropped, none, static_cast<double>(s.profile_dropped_entries));
    u.Add(kProfileStoreBytes, none, static_cast<double>(s.profile_store_bytes));
  }
  return u;
}

Unit ProcessUnit(const ProcessInfo& p, const ExportOptions& options) {
  Labels l = {{"pid", absl::StrCat(p.key.tgid)},
              {"comm", SanitizeLabelValue(p.comm)},
              {"group", SanitizeLabelValue(p.group)}};
  const std::string& container = p.identity.cgroup.container_id;
  if (options.export_container_label && !container.empty()) {
    l.Add("container", SanitizeLabelValue(container));
  }
  Unit u;
  AddCounterSeries(u, p.counters, p.io, l, /*process=*/true);
  u.Add(kProcRss, l, static_cast<double>(p.rss_bytes));
  u.Add(kProcStart, l, absl::ToDoubleSeconds(p.start_time - absl::UnixEpoch()));
  return u;
}

Unit GroupUnit(const GroupInfo& g, const std::string& name) {
  const Labels l = {{"group", name}};
  Unit u;
  AddCounterSeries(u, g.counters, g.io, l, /*process=*/false);
  u.Add(kGroupProcesses, l, static_cast<double>(g.processes));
  u.Add(kGroupRss, l, static_cast<double>(g.rss_bytes));
  for (const auto& [outcome, n] : g.exits) {
    u.Add(kGroupExits, l, "outcome", SanitizeLabelValue(outcome), static_cast<double>(n));
  }
  for (const auto& [signal, n] : g.crashes) {
    u.Add(kGroupCrashes, l, "signal", SanitizeLabelValue(signal), static_cast<double>(n));
  }
  static_assert(FamOf(counter_meta::runq_hist::kGroupFamily) == kGroupRunqLatency);
  u.AddRunqueueHistogram(kGroupRunqLatency, g.counters, l);
  return u;
}

using KeyTuple = std::pair<uint32_t, uint64_t>;
KeyTuple KeyOf(const ps_key& k) { return {k.tgid, k.start_ns}; }

// The processes that get per-process series, highest priority first: offenders, then the top K
// of every resource taken rank by rank (every resource's #1, then every #2, ...), so that a
// cap cuts the least important ones. Processes no longer live are skipped.
std::vector<const ProcessInfo*> SelectProcesses(const ExportInput& in,
                                                const ExportOptions& options) {
  std::vector<const ProcessInfo*> out;
  if (in.processes == nullptr) return out;
  std::map<KeyTuple, const ProcessInfo*> by_key;
  for (const ProcessInfo& p : *in.processes) by_key.emplace(KeyOf(p.key), &p);
  // By pid too: two incarnations of one pid would make duplicate series.
  std::unordered_set<uint32_t> pids;
  auto take = [&](const ps_key& key) {
    auto it = by_key.find(KeyOf(key));
    if (it != by_key.end() && pids.insert(key.tgid).second) out.push_back(it->second);
  };
  if (in.offenders != nullptr) {
    for (const Offender& o : *in.offenders) take(o.key);
  }
  if (in.rates != nullptr) {
    for (size_t rank = 0; rank < options.top_k; ++rank) {
      bool any = false;
      for (const std::vector<ResourceRate>& list : *in.rates) {
        if (rank >= list.size()) continue;
        any = true;
        if (list[rank].rate > 0) take(list[rank].key);  // false for 0, negative and NaN
      }
      if (!any) break;
    }
  }
  return out;
}

}  // namespace

std::string SanitizeLabelValue(absl::string_view raw) {
  static constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD
  const std::string utf8 = ToValidUtf8(raw);
  std::string out;
  out.reserve(utf8.size());
  // In valid UTF-8 a byte below 0x80 is always a whole character, so byte tests suffice.
  for (const char ch : utf8) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7F) {
      out += kReplacement;
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

std::string RenderMetrics(const ExportInput& in, const ExportOptions& options,
                          uint64_t* series_dropped) {
  Exposition ex(options.max_series);
  // The self-metrics are built last, so that procscope_series_dropped_total includes this
  // scrape's drops, but they take their room first: the daemon's own health is never cut. Their
  // number does not depend on the values, so a dry run sizes them.
  if (in.self != nullptr) ex.Reserve(SelfUnit(*in.self, 0, options.max_series).lines());

  if (in.offenders != nullptr) {
    // Label sets must be unique: the same process flagged twice for one resource shows once.
    std::set<std::tuple<std::string, uint32_t, std::string>> seen;
    for (const Offender& o : *in.offenders) {
      std::string group = SanitizeLabelValue(o.group);
      if (!seen.emplace(ResourceName(o.resource), o.key.tgid, group).second) continue;
      Unit u;
      u.Add(kOffender,
            {{"resource", ResourceName(o.resource)},
             {"pid", absl::StrCat(o.key.tgid)},
             {"comm", SanitizeLabelValue(o.comm)},
             {"group", group}},
            o.rate);
      ex.AddIfRoom(std::move(u));
    }
  }

  for (const ProcessInfo* p : SelectProcesses(in, options)) {
    ex.AddIfRoom(ProcessUnit(*p, options));
  }

  if (in.groups != nullptr) {
    std::vector<const GroupInfo*> groups;
    for (const GroupInfo& g : *in.groups) groups.push_back(&g);
    std::sort(groups.begin(), groups.end(), [](const GroupInfo* a, const GroupInfo* b) {
      if (a->counters.cpu_ns != b->counters.cpu_ns) return a->counters.cpu_ns > b->counters.cpu_ns;
      return a->name < b->name;
    });
    // Distinct raw names can sanitise to one label value; only the busiest keeps it, since two
    // series sets with one label set would be rejected by Prometheus. The others' series count
    // as dropped.
    std::unordered_set<std::string> names;
    for (const GroupInfo* g : groups) {
      std::string name = SanitizeLabelValue(g->name);
      if (!names.insert(name).second) {
        ex.CountDropped(GroupUnit(*g, name).lines());
        continue;
      }
      ex.AddIfRoom(GroupUnit(*g, name));
    }
  }

  if (in.self != nullptr) ex.AddReserved(SelfUnit(*in.self, ex.dropped(), options.max_series));
  if (series_dropped != nullptr) *series_dropped = ex.dropped();
  return std::move(ex).Finish();
}

}  // namespace procscope
