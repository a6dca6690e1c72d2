// SPDX-License-Identifier: Apache-2.0
// Tier 1: the Prometheus exposition (exporter/metrics.h), checked line by line, against
// prometheus-cpp's TextSerializer (what the daemon used before it wrote the format itself), and
// by the real promtool.
#include "metrics.h"

#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "procscope.h"
#include "prometheus/text_serializer.h"
#include "text.h"

namespace procscope {
namespace {

using ::testing::ElementsAreArray;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

constexpr char kFffd[] = "\xEF\xBF\xBD";  // U+FFFD

// Series of the self-metrics of Self(): 2 per program (1), 12 drop reasons, 5 single counters
// and gauges, 2 per map (1), scrape duration, series dropped, series limit, journal (3), build
// info; on-CPU samples (busy, idle) and lost stacks (3 reasons).
constexpr size_t kSelfLines = 2 + 12 + 5 + 2 + 5 + 2 + 2 + 3;
constexpr size_t kProcessLines = 10;
constexpr size_t kGroupLines = 15 + PS_RUNQ_BUCKETS + 2;  // without exits and crashes

// prometheus-cpp's serialisation, the reference for number formatting and escaping.
std::string Serialize(const std::vector<prometheus::MetricFamily>& families) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

std::vector<std::string> SampleLines(const std::string& text) {
  std::vector<std::string> out;
  for (std::string& l : Lines(text)) {
    if (!absl::StartsWith(l, "#")) out.push_back(std::move(l));
  }
  return out;
}

// One sample line parsed back: the text format's escapes undone.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  std::string value;
};

bool ParseSample(absl::string_view line, Sample* s) {
  size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
  s->name = std::string(line.substr(0, i));
  s->labels.clear();
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      const size_t eq = line.find("=\"", i);
      if (eq == absl::string_view::npos) return false;
      const std::string name(line.substr(i, eq - i));
      std::string value;
      for (i = eq + 2; i < line.size() && line[i] != '"'; ++i) {
        if (line[i] == '\\') {
          if (++i == line.size()) return false;
          if (line[i] == 'n') {
            value.push_back('\n');
          } else if (line[i] == '\\' || line[i] == '"') {
            value.push_back(line[i]);
          } else {
            return false;
          }
        } else {
          value.push_back(line[i]);
        }
      }
      if (i == line.size()) return false;
      ++i;  // closing quote
      if (i < line.size() && line[i] == ',') ++i;
      if (!s->labels.emplace(name, value).second) return false;
    }
    if (i == line.size()) return false;
    ++i;  // '}'
  }
  if (i >= line.size() || line[i] != ' ') return false;
  s->value = std::string(line.substr(i + 1));
  return !s->value.empty() && s->value.find(' ') == std::string::npos;
}

std::vector<Sample> Samples(const std::string& text) {
  std::vector<Sample> out;
  for (const std::string& l : SampleLines(text)) {
    Sample s;
    EXPECT_TRUE(ParseSample(l, &s)) << l;
    out.push_back(s);
  }
  return out;
}

// Values of label `label` over the samples of metric `name`.
std::set<std::string> LabelValues(const std::string& text, absl::string_view name,
                                  const std::string& label) {
  std::set<std::string> out;
  for (const Sample& s : Samples(text)) {
    if (s.name != name) continue;
    auto it = s.labels.find(label);
    if (it != s.labels.end()) out.insert(it->second);
  }
  return out;
}

size_t CountWithPrefix(const std::string& text, absl::string_view prefix) {
  size_t n = 0;
  for (const std::string& l : SampleLines(text)) n += absl::StartsWith(l, prefix);
  return n;
}

ProcessInfo Process(uint32_t pid, std::string comm, std::string group, uint64_t seed) {
  ProcessInfo p;
  p.key.tgid = pid;
  p.key.start_ns = 1000 + pid;
  p.comm = std::move(comm);
  p.group = std::move(group);
  p.rss_bytes = seed << 20;
  p.counters.cpu_ns = seed * 1'000'000'000;
  p.counters.runq_ns = seed * 1'000'000;
  p.counters.vol_cs = seed * 10;
  p.counters.invol_cs = seed * 20;
  p.counters.min_flt = seed * 30;
  p.counters.maj_flt = seed * 40;
  p.io.read_bytes = seed * 4096;
  p.io.write_bytes = seed * 8192;
  p.start_time = absl::FromUnixSeconds(1'700'000'000 + seed);
  return p;
}

GroupInfo Group(std::string name, uint64_t seed) {
  GroupInfo g;
  g.name = std::move(name);
  g.counters.cpu_ns = seed * 1'000'000'000;
  g.counters.runq_ns = seed * 1'000'000;
  g.counters.runq_hist[seed % PS_RUNQ_BUCKETS] = seed;
  g.processes = seed;
  return g;
}

SelfState Self() {
  SelfState s;
  s.programs = {{"on_switch", "sched_switch", "tp_btf", 2'000'000'000, 1000}};
  for (int i = 0; i < PS_STAT_MAX; ++i) s.kernel_stats[i] = i + 1;
  s.exit_events = 12;
  s.tracked_processes = 13;
  s.map_entries = {{"proc_io", 14, 16384}};
  s.journal_dropped_bytes = 15;
  s.journal_dropped_records = 16;
  s.journal_damaged_bytes = 17;
  s.last_scrape_duration_seconds = 0.25;
  s.series_dropped_total = 16;
  s.version = "1.2.3";
  return s;
}

// Owns what an ExportInput points to.
struct Fixture {
  std::vector<ProcessInfo> processes;
  std::vector<GroupInfo> groups;
  std::vector<Offender> offenders;
  std::vector<std::vector<ResourceRate>> rates =
      std::vector<std::vector<ResourceRate>>(std::size(kAllResources));
  SelfState self = Self();
  ExportOptions options;
  uint64_t dropped = 12345;  // RenderMetrics must overwrite it

  void Rate(Resource r, uint32_t pid, double rate) {
    rates[static_cast<int>(r)].push_back({{pid, 0, 1000 + pid}, rate});
  }
  void Flag(Resource r, const ProcessInfo& p, double rate) {
    Offender o;
    o.resource = r;
    o.key = p.key;
    o.comm = p.comm;
    o.group = p.group;
    o.rate = rate;
    offenders.push_back(o);
  }
  std::string Text() {
    ExportInput in;
    in.processes = &processes;
    in.groups = &groups;
    in.offenders = &offenders;
    in.rates = &rates;
    in.self = &self;
    return RenderMetrics(in, options, &dropped);
  }
};

TEST(SanitizeLabelValueTest, ControlCharactersAndInvalidUtf8BecomeReplacement) {
  EXPECT_EQ(SanitizeLabelValue("nginx: worker"), "nginx: worker");
  EXPECT_EQ(SanitizeLabelValue("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(SanitizeLabelValue("a\nb\tc\x1f"
                               "d\x7f"),
            absl::StrCat("a", kFffd, "b", kFffd, "c", kFffd, "d", kFffd));
  EXPECT_EQ(SanitizeLabelValue(absl::string_view("x\0y", 3)), absl::StrCat("x", kFffd, "y"));
  EXPECT_EQ(SanitizeLabelValue("\xff\xc3"), absl::StrCat(kFffd, kFffd));
  // Quotes and backslashes are the serializer's job.
  EXPECT_EQ(SanitizeLabelValue("a\"b\\c"), "a\"b\\c");
}

// Values are printed as prometheus-cpp printed them (%.16g), so that no series changes its
// digits with the writer; NaN is spelt as the Go client spells it. Offender rates carry any
// double into a sample line.
TEST(RenderMetricsTest, ValuesAsPrometheusCppPrintedThem) {
  std::vector<double> values = {0,
                                -0.0,
                                1,
                                -1,
                                0.5,
                                0.1 + 0.2,
                                1.0 / 3,
                                1e-9,
                                2.5e-7,
                                0.000128,
                                1.6e-05,
                                4096000000,
                                1700000000.5,
                                999999999999999,
                                1e15,
                                1e16,
                                123456789012345678.0,
                                18446744073709551615.0,
                                1.5e20,
                                1e22,
                                -3.75e-300,
                                std::numeric_limits<double>::max(),
                                std::numeric_limits<double>::min(),
                                std::numeric_limits<double>::denorm_min(),
                                std::numeric_limits<double>::infinity(),
                                -std::numeric_limits<double>::infinity()};
  uint64_t bits = 0x9E3779B97F4A7C15;
  for (int i = 0; i < 2000; ++i) {  // and a spread of doubles of every magnitude
    bits = bits * 6364136223846793005 + 1442695040888963407;
    double v;
    const uint64_t finite = (bits & ~(uint64_t{0x7FF} << 52)) | ((bits >> 53) % 2046 + 1) << 52;
    memcpy(&v, &finite, sizeof v);
    values.push_back(v);
    values.push_back(static_cast<double>(bits >> (i % 64)));  // integers of every size
  }
  Fixture fx;
  prometheus::MetricFamily reference;
  reference.name = "procscope_offender";
  reference.type = prometheus::MetricType::Gauge;
  for (size_t i = 0; i < values.size(); ++i) {
    ProcessInfo p = Process(static_cast<uint32_t>(i + 1), "p", "g", 1);
    fx.Flag(Resource::kCpu, p, values[i]);
    prometheus::ClientMetric m;
    m.gauge.value = values[i];
    reference.metric.push_back(m);
  }
  fx.options.max_series = 1'000'000;
  std::vector<std::string> got;
  for (const Sample& s : Samples(fx.Text())) {
    if (s.name == "procscope_offender") got.push_back(s.value);
  }
  std::vector<std::string> want;
  for (const std::string& l : SampleLines(Serialize({reference}))) {
    want.push_back(l.substr(l.find(' ') + 1));
  }
  ASSERT_EQ(got.size(), values.size());
  EXPECT_THAT(got, ElementsAreArray(want));

  fx.offenders.clear();
  fx.Flag(Resource::kCpu, Process(1, "p", "g", 1), std::numeric_limits<double>::quiet_NaN());
  EXPECT_THAT(
      SampleLines(fx.Text()),
      ::testing::Contains(R"(procscope_offender{resource="cpu",pid="1",comm="p",group="g"} NaN)"));
}

// The text format's escaping of label values (what SanitizeLabelValue leaves): backslash, double
// quote and newline, as prometheus-cpp escapes backslash and double quote.
TEST(RenderMetricsTest, EscapesBackslashQuoteAndNewlineInLabelValues) {
  Fixture fx;
  fx.self = SelfState();
  fx.self.map_entries = {{"a\"b\\c", 1, 2}};
  EXPECT_THAT(SampleLines(fx.Text()),
              ::testing::Contains(R"(procscope_bpf_map_entries{map="a\"b\\c"} 1)"));

  prometheus::MetricFamily f;
  f.name = "procscope_bpf_map_entries";
  f.type = prometheus::MetricType::Gauge;
  prometheus::ClientMetric m;
  m.label = {{"map", "a\"b\\c"}};
  m.gauge.value = 1;
  f.metric.push_back(m);
  EXPECT_THAT(SampleLines(fx.Text()), ::testing::Contains(SampleLines(Serialize({f}))[0]));
  // A newline never reaches the writer (SanitizeLabelValue), but the format's escape is \n.
  fx.self.map_entries = {{"x\ny", 1, 2}};
  EXPECT_THAT(fx.Text(), ::testing::HasSubstr(absl::StrCat("map=\"x", kFffd, "y\"")));
}

TEST(RenderMetricsTest, ExactSeriesForSmallFixture) {
  Fixture fx;
  ProcessInfo p;
  p.key = {42, 0, 4242};
  p.comm = "nginx";
  p.group = "web";
  p.identity.cgroup.container_id = "abc123";
  p.rss_bytes = 2 << 20;
  p.counters.cpu_ns = 750'000'000;
  p.counters.runq_ns = 125'000'000;
  p.counters.vol_cs = 7;
  p.counters.invol_cs = 8;
  p.counters.min_flt = 9;
  p.counters.maj_flt = 1;
  p.io.read_bytes = 512;
  p.io.write_bytes = 1024;
  p.start_time = absl::FromUnixSeconds(1'700'000'000) + absl::Milliseconds(500);
  fx.processes = {p};
  fx.rates[static_cast<int>(Resource::kCpu)] = {{p.key, 0.5}};
  fx.Flag(Resource::kCpu, p, 0.9);

  GroupInfo g;
  g.name = "web";
  g.counters.cpu_ns = 1'500'000'000;
  g.counters.runq_ns = 250'000'000;
  g.counters.vol_cs = 10;
  g.counters.invol_cs = 20;
  g.counters.min_flt = 30;
  g.counters.maj_flt = 4;
  g.counters.runq_hist[0] = 3;
  g.counters.runq_hist[1] = 2;
  g.counters.runq_hist[5] = 1;
  g.counters.runq_hist[PS_RUNQ_BUCKETS - 1] = 4;
  g.io = {4096, 8192, 1, 2, 3'000'000, 5'000'000, 12288};
  g.processes = 1;
  g.rss_bytes = 1 << 20;
  g.exits = {{"success", 5}, {"crashed", 1}};
  g.crashes = {{"SIGSEGV", 1}};
  fx.groups = {g};

  const std::string text = fx.Text();
  const std::string proc = R"(pid="42",comm="nginx",group="web",container="abc123")";
  const std::vector<std::string> expected = {
      R"(procscope_group_cpu_seconds_total{group="web"} 1.5)",
      R"(procscope_group_runqueue_wait_seconds_total{group="web"} 0.25)",
      R"(procscope_group_context_switches_total{group="web",type="voluntary"} 10)",
      R"(procscope_group_context_switches_total{group="web",type="involuntary"} 20)",
      R"(procscope_group_page_faults_total{group="web",type="minor"} 30)",
      R"(procscope_group_page_faults_total{group="web",type="major"} 4)",
      R"(procscope_group_block_io_bytes_total{group="web",direction="read"} 4096)",
      R"(procscope_group_block_io_bytes_total{group="web",direction="write"} 8192)",
      R"(procscope_group_block_io_operations_total{group="web",direction="read"} 1)",
      R"(procscope_group_block_io_operations_total{group="web",direction="write"} 2)",
      R"(procscope_group_block_io_time_seconds_total{group="web",direction="read"} 0.003)",
      R"(procscope_group_block_io_time_seconds_total{group="web",direction="write"} 0.005)",
      R"(procscope_group_page_cache_dirtied_bytes_total{group="web"} 12288)",
      R"(procscope_group_processes{group="web"} 1)",
      R"(procscope_group_resident_memory_bytes{group="web"} 1048576)",
      R"(procscope_group_exits_total{group="web",outcome="crashed"} 1)",
      R"(procscope_group_exits_total{group="web",outcome="success"} 5)",
      R"(procscope_group_crashes_total{group="web",signal="SIGSEGV"} 1)",
      R"(procscope_group_runqueue_latency_seconds_count{group="web"} 10)",
      R"(procscope_group_runqueue_latency_seconds_sum{group="web"} 0.25)",
      R"(procscope_group_runqueue_latency_seconds_bucket{group="web",le="2e-06"} 3)",
      R"(procscope_group_runqueue_latency_seconds_bucket{group="web",le="4e-06"} 5)",
      R"(procscope_group_runqueue_latency_seconds_bucket{group="web",le="8e-06"} 5)",
      R"(procscope_group_runqueue_latency_seconds_bucket{group="web",le="1.6e-05"} 5)",
      R"(procscope_group_runqueue_latency_seconds_bucket{group="web",le="3.2e-05"} 5)",
      R"(procscope_group_runqueue_latency_seconds_bucket{group="web",le="6.4e-05"} 6)",
      R"(procscope_group_runqueue_latency_seconds_bucket{group="web",le="0.000128"} 6)",
      R"(procscope_group_runqueue_latency_seconds_bucket{group="web",le="0.000256"} 6)",
      R"(procscope_group_runqueue_latency_seconds_bucket{group="web",le="0.000512"} 6)",
      R"(procscope_group_runqueue_latency_seconds_bucket{group="web",le="0.001024"} 6)",
      R"(procscope_group_runqueue_latency_seconds_bucket{group="web",le="0.002048"} 6)",
      R"(procscope_group_runqueue_latency_seconds_bucket{group="web",le="0.004096"} 6)",
      R"(procscope_group_runqueue_latency_seconds_bucket{group="web",le="0.008192"} 6)",
      R"(procscope_group_runqueue_latency_seconds_bucket{group="web",le="0.016384"} 6)",
      R"(procscope_group_runqueue_latency_seconds_bucket{group="web",le="0.032768"} 6)",
      R"(procscope_group_runqueue_latency_seconds_bucket{group="web",le="0.065536"} 6)",
      R"(procscope_group_runqueue_latency_seconds_bucket{group="web",le="0.131072"} 6)",
      R"(procscope_group_runqueue_latency_seconds_bucket{group="web",le="0.262144"} 6)",
      R"(procscope_group_runqueue_latency_seconds_bucket{group="web",le="0.524288"} 6)",
      R"(procscope_group_runqueue_latency_seconds_bucket{group="web",le="+Inf"} 10)",
      absl::StrCat("procscope_process_cpu_seconds_total{", proc, "} 0.75"),
      absl::StrCat("procscope_process_runqueue_wait_seconds_total{", proc, "} 0.125"),
      absl::StrCat("procscope_process_context_switches_total{", proc, R"(,type="voluntary"} 7)"),
      absl::StrCat("procscope_process_context_switches_total{", proc, R"(,type="involuntary"} 8)"),
      absl::StrCat("procscope_process_page_faults_total{", proc, R"(,type="minor"} 9)"),
      absl::StrCat("procscope_process_page_faults_total{", proc, R"(,type="major"} 1)"),
      absl::StrCat("procscope_process_block_io_bytes_total{", proc, R"(,direction="read"} 512)"),
      absl::StrCat("procscope_process_block_io_bytes_total{", proc, R"(,direction="write"} 1024)"),
      absl::StrCat("procscope_process_resident_memory_bytes{", proc, "} 2097152"),
      absl::StrCat("procscope_process_start_time_seconds{", proc, "} 1700000000.5"),
      R"(procscope_offender{resource="cpu",pid="42",comm="nginx",group="web"} 0.9)",
      R"(procscope_bpf_program_run_time_seconds_total{program="on_switch",hook="sched_switch"} 2)",
      R"(procscope_bpf_program_runs_total{program="on_switch",hook="sched_switch"} 1000)",
      R"(procscope_kernel_events_dropped_total{reason="ringbuf"} 1)",
      R"(procscope_kernel_events_dropped_total{reason="task_storage"} 2)",
      R"(procscope_kernel_events_dropped_total{reason="io_map"} 3)",
      R"(procscope_kernel_events_dropped_total{reason="requests"} 4)",
      R"(procscope_kernel_events_dropped_total{reason="inode_owner"} 5)",
      R"(procscope_kernel_events_dropped_total{reason="oom_map"} 6)",
      R"(procscope_kernel_events_dropped_total{reason="handover"} 7)",
      R"(procscope_kernel_events_dropped_total{reason="stack_counts"} 14)",
      R"(procscope_kernel_events_dropped_total{reason="profile_notify"} 17)",
      R"(procscope_kernel_events_dropped_total{reason="contention"} 19)",
      R"(procscope_kernel_events_dropped_total{reason="thread_walk"} 20)",
      R"(procscope_kernel_events_dropped_total{reason="summed_read"} 21)",
      // samples 12, idle 13 in the fixture: busy clamps at 0
      R"(procscope_profile_samples_total{cpu="busy"} 0)",
      R"(procscope_profile_samples_total{cpu="idle"} 13)",
      R"(procscope_profile_stacks_lost_total{reason="collision"} 15)",
      R"(procscope_profile_stacks_lost_total{reason="failed"} 16)",
      R"(procscope_profile_stacks_lost_total{reason="offcpu_expired"} 18)",
      R"(procscope_unattributed_block_io_operations_total 8)",
      R"(procscope_unattributed_block_io_bytes_total 9)",
      R"(procscope_orphan_block_io_operations_total 10)",
      R"(procscope_exit_events_total 12)",
      R"(procscope_tracked_processes 13)",
      R"(procscope_bpf_map_entries{map="proc_io"} 14)",
      R"(procscope_bpf_map_max_entries{map="proc_io"} 16384)",
      R"(procscope_scrape_duration_seconds 0.25)",
      R"(procscope_series_dropped_total 16)",
      R"(procscope_series_limit 20000)",
      R"(procscope_journal_dropped_bytes_total 15)",
      R"(procscope_journal_dropped_records_total 16)",
      R"(procscope_journal_damaged_bytes_total 17)",
      R"(procscope_build_info{version="1.2.3"} 1)",
  };
  EXPECT_THAT(SampleLines(text), ElementsAreArray(expected));
  EXPECT_EQ(fx.dropped, 0u);

  // Every family has HELP and TYPE; counters end in _total; the histogram is typed as one.
  std::map<std::string, std::string> types;
  std::set<std::string> helped;
  for (const std::string& l : Lines(text)) {
    std::vector<std::string> f = absl::StrSplit(l, absl::MaxSplits(' ', 3));
    if (f.size() == 4 && f[1] == "TYPE") types[f[2]] = f[3];
    if (f.size() == 4 && f[1] == "HELP" && f[3].size() > 10) helped.insert(f[2]);
  }
  EXPECT_EQ(types.size(), 40u);
  for (const auto& [name, type] : types) {
    EXPECT_EQ(helped.count(name), 1u) << name;
    EXPECT_EQ(type == "counter", absl::EndsWith(name, "_total")) << name;
  }
  EXPECT_EQ(types["procscope_group_runqueue_latency_seconds"], "histogram");
  EXPECT_EQ(types["procscope_offender"], "gauge");
  EXPECT_EQ(types["procscope_build_info"], "gauge");
  EXPECT_EQ(types["procscope_process_start_time_seconds"], "gauge");
  size_t self = 0;
  for (const std::string& l : SampleLines(text)) {
    self += !absl::StartsWith(l, "procscope_group_") &&
            !absl::StartsWith(l, "procscope_process_") &&
            !absl::StartsWith(l, "procscope_offender");
  }
  EXPECT_EQ(self, kSelfLines);
}

TEST(RenderMetricsTest, ProcessSeriesOnlyForTopKAndOffenders) {
  Fixture fx;
  for (uint32_t pid = 1; pid <= 7; ++pid) fx.processes.push_back(Process(pid, "p", "g", pid));
  fx.Rate(Resource::kCpu, 1, 5);
  fx.Rate(Resource::kCpu, 2, 4);
  fx.Rate(Resource::kCpu, 3, 3);
  fx.Rate(Resource::kBlockIo, 4, 9);
  fx.Rate(Resource::kBlockIo, 3, 1);
  fx.Rate(Resource::kPageFaults, 6, 0);             // a zero rate is no top entry
  fx.Rate(Resource::kMemoryGrowth, 7, -1e6);        // nor is shrinking
  fx.Rate(Resource::kRunqueueWait, 99, 8);          // exited: nothing to show
  fx.Flag(Resource::kCrashes, fx.processes[4], 3);  // pid 5: an offender outside every top K
  fx.options.top_k = 1;

  const std::string text = fx.Text();
  EXPECT_THAT(LabelValues(text, "procscope_process_cpu_seconds_total", "pid"),
              UnorderedElementsAre("1", "4", "5"));
  // The whole set for each: 10 series per selected process.
  EXPECT_EQ(CountWithPrefix(text, "procscope_process_"), 3 * kProcessLines);
  EXPECT_THAT(LabelValues(text, "procscope_offender", "pid"), UnorderedElementsAre("5"));

  fx.options.top_k = 2;
  EXPECT_THAT(LabelValues(fx.Text(), "procscope_process_cpu_seconds_total", "pid"),
              UnorderedElementsAre("1", "2", "3", "4", "5"));

  fx.options.top_k = 0;
  EXPECT_THAT(LabelValues(fx.Text(), "procscope_process_cpu_seconds_total", "pid"),
              UnorderedElementsAre("5"));
}

TEST(RenderMetricsTest, AnotherIncarnationOfAPidIsNotThatProcess) {
  Fixture fx;
  fx.processes = {Process(1, "p", "g", 1)};
  fx.rates[static_cast<int>(Resource::kCpu)] = {{{1, 0, 999}, 5.0}};  // same pid, other start
  EXPECT_EQ(CountWithPrefix(fx.Text(), "procscope_process_"), 0u);
}

TEST(RenderMetricsTest, ContainerLabelOnlyWhenKnown) {
  Fixture fx;
  fx.processes = {Process(1, "a", "g", 1), Process(2, "b", "g", 2)};
  fx.processes[0].identity.cgroup.container_id = "0123abcd";
  fx.Rate(Resource::kCpu, 2, 2);
  fx.Rate(Resource::kCpu, 1, 1);

  std::string text = fx.Text();
  for (const Sample& s : Samples(text)) {
    if (!absl::StartsWith(s.name, "procscope_process_")) continue;
    if (s.labels.at("pid") == "1") {
      EXPECT_EQ(s.labels.count("container"), 1u) << s.name;
      EXPECT_EQ(s.labels.at("container"), "0123abcd");
    } else {
      EXPECT_EQ(s.labels.count("container"), 0u) << s.name;
    }
  }
  EXPECT_EQ(CountWithPrefix(text, "procscope_process_"), 2 * kProcessLines);
  EXPECT_THAT(LabelValues(text, "procscope_process_cpu_seconds_total", "container"),
              UnorderedElementsAre("0123abcd"));

  fx.options.export_container_label = false;
  text = fx.Text();
  EXPECT_EQ(CountWithPrefix(text, "procscope_process_"), 2 * kProcessLines);
  EXPECT_THAT(text, Not(::testing::HasSubstr("container=")));
}

TEST(RenderMetricsTest, SeriesCapDropsWholeGroupsAndCountsThem) {
  Fixture fx;
  fx.processes = {Process(1, "p", "busy", 1)};
  fx.Rate(Resource::kCpu, 1, 1);
  fx.Flag(Resource::kCpu, fx.processes[0], 1);
  fx.groups = {Group("idle", 1), Group("busy", 3), Group("mid", 2)};
  fx.groups[0].exits = {{"success", 1}};  // one series more than the others

  // Everything fits exactly.
  const size_t all = kSelfLines + 1 + kProcessLines + 3 * kGroupLines + 1;
  fx.options.max_series = all;
  std::string text = fx.Text();
  EXPECT_EQ(SampleLines(text).size(), all);
  EXPECT_EQ(fx.dropped, 0u);

  // One short: the group with the least CPU goes, whole, and is counted.
  fx.options.max_series = all - 1;
  text = fx.Text();
  EXPECT_EQ(SampleLines(text).size(), all - kGroupLines - 1);
  EXPECT_EQ(fx.dropped, kGroupLines + 1);
  EXPECT_THAT(LabelValues(text, "procscope_group_cpu_seconds_total", "group"),
              UnorderedElementsAre("busy", "mid"));
  EXPECT_EQ(CountWithPrefix(text, "procscope_group_"), 2 * kGroupLines);
  EXPECT_EQ(CountWithPrefix(text, "procscope_process_"), kProcessLines);
  EXPECT_EQ(CountWithPrefix(text, "procscope_offender"), 1u);
  // This scrape's drops are in the counter already.
  EXPECT_THAT(SampleLines(text), ::testing::Contains(absl::StrCat("procscope_series_dropped_total ",
                                                                  16 + kGroupLines + 1)));

  // Room for one and a half groups: never half a group.
  fx.options.max_series = kSelfLines + 1 + kProcessLines + kGroupLines + kGroupLines / 2;
  text = fx.Text();
  EXPECT_THAT(LabelValues(text, "procscope_group_cpu_seconds_total", "group"),
              UnorderedElementsAre("busy"));
  EXPECT_EQ(CountWithPrefix(text, "procscope_group_"), kGroupLines);
  EXPECT_EQ(fx.dropped, 2 * kGroupLines + 1);

  // Below the self-metrics: they stay, everything else goes.
  fx.options.max_series = 1;
  text = fx.Text();
  EXPECT_EQ(SampleLines(text).size(), kSelfLines);
  EXPECT_EQ(fx.dropped, 1 + kProcessLines + 3 * kGroupLines + 1);
  EXPECT_EQ(CountWithPrefix(text, "procscope_build_info"), 1u);
  EXPECT_EQ(CountWithPrefix(text, "procscope_kernel_events_dropped_total"), 12u);
}

TEST(RenderMetricsTest, SeriesCapKeepsOffendersBeforeProcessesBeforeGroups) {
  Fixture fx;
  fx.processes = {Process(1, "p", "g", 1), Process(2, "q", "g", 2)};
  fx.Rate(Resource::kCpu, 2, 2);
  fx.Flag(Resource::kCpu, fx.processes[0], 1);
  fx.groups = {Group("g", 1)};
  // Offender, its process, and not quite the top-K process.
  fx.options.max_series = kSelfLines + 1 + kProcessLines + kProcessLines - 1;
  const std::string text = fx.Text();
  EXPECT_EQ(CountWithPrefix(text, "procscope_offender"), 1u);
  EXPECT_THAT(LabelValues(text, "procscope_process_cpu_seconds_total", "pid"),
              UnorderedElementsAre("1"));
  EXPECT_EQ(CountWithPrefix(text, "procscope_group_"), 0u);
  EXPECT_EQ(fx.dropped, kProcessLines + kGroupLines);
}

TEST(RenderMetricsTest, HostileNamesCannotInjectSeries) {
  const std::string hostile[] = {
      "a\"b\\c",
      "x\"} injected 1\n",
      "line\nprocscope_injected_total 1",
      "\xff\xfe\xc3(bad\x80utf8",
      std::string("nul\0tab\tdel\x7f", 12),
      "\\",
      "\"",
  };
  Fixture fx;
  fx.self.version = "1\"} injected 1\n";
  fx.self.map_entries = {{"m\"} injected 1\n", 1, 2}};
  uint32_t pid = 1;
  for (const std::string& name : hostile) {
    fx.processes.push_back(Process(pid, name, name, pid));
    fx.groups.push_back(Group(name, pid));
    fx.groups.back().exits = {{name, 1}};
    fx.groups.back().crashes = {{name, 1}};
    fx.Rate(Resource::kCpu, pid, pid);
    fx.Flag(Resource::kBlockIo, fx.processes.back(), pid);
    ++pid;
  }
  const size_t n = std::size(hostile);
  fx.options.top_k = n;
  const std::string text = fx.Text();

  const size_t series = kSelfLines + n * (1 + kProcessLines + kGroupLines + 2);
  EXPECT_EQ(SampleLines(text).size(), series);
  EXPECT_EQ(Lines(text).size(), series + 2 * 40);  // HELP and TYPE of every family
  EXPECT_EQ(fx.dropped, 0u);
  EXPECT_EQ(ToValidUtf8(text), text);
  EXPECT_THAT(text, Not(::testing::HasSubstr("\ninjected")));
  EXPECT_THAT(text, Not(::testing::HasSubstr("\nprocscope_injected")));
  for (const std::string& l : Lines(text)) {
    ASSERT_TRUE(absl::StartsWith(l, "procscope_") || absl::StartsWith(l, "# ")) << l;
  }
  // Every line parses back, and the values are the sanitised names, intact.
  std::set<std::string> expected_groups;
  for (const std::string& name : hostile) expected_groups.insert(SanitizeLabelValue(name));
  EXPECT_EQ(LabelValues(text, "procscope_group_cpu_seconds_total", "group"), expected_groups);
  EXPECT_EQ(LabelValues(text, "procscope_process_cpu_seconds_total", "comm"), expected_groups);
  EXPECT_EQ(LabelValues(text, "procscope_group_crashes_total", "signal"), expected_groups);
  EXPECT_THAT(LabelValues(text, "procscope_build_info", "version"),
              UnorderedElementsAre(absl::StrCat("1\"} injected 1", kFffd)));
  EXPECT_THAT(text, ::testing::HasSubstr(R"(group="a\"b\\c")"));
}

TEST(RenderMetricsTest, NamesThatSanitiseAlikeMakeOneGroup) {
  Fixture fx;
  fx.groups = {Group("a\x01", 1), Group("a\x02", 2)};
  const std::string text = fx.Text();
  EXPECT_EQ(CountWithPrefix(text, "procscope_group_"), kGroupLines);
  // The busier one keeps the name.
  EXPECT_THAT(SampleLines(text),
              ::testing::Contains(
                  absl::StrCat("procscope_group_cpu_seconds_total{group=\"a", kFffd, "\"} 2")));
}

// The series a collision leaves out are counted like the cap's (issue 11).
TEST(RenderMetricsTest, GroupsLostToANameCollisionAreCountedAsDropped) {
  Fixture fx;
  fx.groups = {Group("a\x01", 1), Group("a\x02", 2), Group("b", 3)};
  fx.groups[0].exits = {{"success", 1}};  // the dropped one has one series more
  const std::string text = fx.Text();
  EXPECT_EQ(CountWithPrefix(text, "procscope_group_"), 2 * kGroupLines);
  EXPECT_EQ(fx.dropped, kGroupLines + 1);
  EXPECT_THAT(SampleLines(text), ::testing::Contains(absl::StrCat("procscope_series_dropped_total ",
                                                                  16 + kGroupLines + 1)));
}

TEST(RenderMetricsTest, MissingInputsGiveNoFamilies) {
  uint64_t dropped = 7;
  EXPECT_THAT(RenderMetrics(ExportInput{}, ExportOptions{}, &dropped), IsEmpty());
  EXPECT_EQ(dropped, 0u);
}

// Degraded hooks: one gauge series each, label sanitised, one series for names that sanitise
// alike; no family when every hook is attached.
TEST(RenderMetricsTest, DegradedHooksOneSeriesEach) {
  Fixture fx;
  EXPECT_THAT(fx.Text(), Not(::testing::HasSubstr("procscope_degraded_hook")));
  fx.self.degraded_hooks = {"block_rq_issue", "mark_victim", "h\x01\"} injected 1\n",
                            "h\x02\"} injected 1\n"};
  const std::string text = fx.Text();
  std::vector<std::string> degraded;
  for (const std::string& l : SampleLines(text)) {
    if (absl::StartsWith(l, "procscope_degraded_hook")) degraded.push_back(l);
  }
  EXPECT_THAT(degraded,
              UnorderedElementsAre(R"(procscope_degraded_hook{hook="block_rq_issue"} 1)",
                                   R"(procscope_degraded_hook{hook="mark_victim"} 1)",
                                   absl::StrCat(R"(procscope_degraded_hook{hook="h)", kFffd,
                                                R"(\"} injected 1)", kFffd, R"("} 1)")));
  EXPECT_THAT(LabelValues(text, "procscope_degraded_hook", "hook"),
              UnorderedElementsAre("block_rq_issue", "mark_victim",
                                   absl::StrCat("h", kFffd, "\"} injected 1", kFffd)));
  EXPECT_THAT(text, ::testing::HasSubstr("# TYPE procscope_degraded_hook gauge\n"));
  EXPECT_THAT(text, Not(::testing::HasSubstr("\ninjected")));
}

// Where promtool is on PATH, or "".
std::string FindPromtool() {
  const char* path = getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path != nullptr ? path : "", ':')) {
    const std::string p = absl::StrCat(dir.empty() ? "." : dir, "/promtool");
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

// Pipes `text` into `promtool check metrics`; returns its exit status and output.
int PromtoolCheck(const std::string& promtool, const std::string& text, std::string* output) {
  const std::string out_path = absl::StrCat(testing::TempDir(), "/promtool_out_", getpid());
  const std::string cmd = absl::StrCat(promtool, " check metrics >", out_path, " 2>&1");
  signal(SIGPIPE, SIG_IGN);  // a promtool that stops reading fails the test, not the binary
  FILE* p = popen(cmd.c_str(), "w");
  if (p == nullptr) return -1;
  fwrite(text.data(), 1, text.size(), p);
  const int status = pclose(p);
  std::ifstream in(out_path);
  std::stringstream buf;
  buf << in.rdbuf();
  *output = buf.str();
  unlink(out_path.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class PromtoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    promtool_ = FindPromtool();
    if (promtool_.empty()) {
      if (getenv("CI") != nullptr) FAIL() << "promtool not found on PATH (CI is set)";
      GTEST_SKIP() << "promtool not found on PATH";
    }
  }
  std::string promtool_;
};

// The harness itself: promtool does flag a bad exposition.
TEST_F(PromtoolTest, FlagsALintProblem) {
  std::string output;
  const int rc = PromtoolCheck(
      promtool_, "# HELP bad_counter x\n# TYPE bad_counter counter\nbad_counter 1\n", &output);
  EXPECT_NE(rc, 0);
  EXPECT_THAT(output, ::testing::HasSubstr("_total"));
}

TEST_F(PromtoolTest, RealisticExpositionHasNoProblems) {
  Fixture fx;
  fx.self.programs = {{"handle_switch", "sched_switch", "tp_btf", 123456789, 1000},
                      {"handle_exit", "sched_process_exit", "tp_btf", 555, 7},
                      {"handle_rq_complete", "block_rq_complete", "raw_tp", 9999, 42},
                      {"dump_task", "iter/task", "iter", 0, 0}};
  fx.self.map_entries = {{"proc_io", 10, 16384}, {"requests", 3, 8192}};
  fx.self.degraded_hooks = {"writeback_dirty_folio", "mark_victim"};
  const std::string names[] = {
      "systemd",           "nginx",    "postgres",  "bash",        "kworker/0:1",         "a\"b\\c",
      "x\"} injected 1\n", "\xff\xfe", "tab\there", "caf\xC3\xA9", "12345678901234567890"};
  uint32_t pid = 100;
  for (const std::string& name : names) {
    ProcessInfo p = Process(pid, name, absl::StrCat(name, ".service"), pid % 17 + 1);
    if (pid % 2 == 0) p.identity.cgroup.container_id = std::string(64, 'a' + pid % 6);
    fx.processes.push_back(p);
    GroupInfo g = Group(p.group, pid % 13 + 1);
    for (int i = 0; i < PS_RUNQ_BUCKETS; ++i) g.counters.runq_hist[i] = pid * i;
    g.exits = {{"success", pid}, {"failure", 2}, {"crashed", 1}, {"oom_killed", 1}};
    g.crashes = {{"SIGSEGV", 1}, {"SIGABRT", 2}};
    fx.groups.push_back(g);
    for (Resource r : kAllResources) fx.Rate(r, pid, pid % 5);
    ++pid;
  }
  for (auto& list : fx.rates) {  // highest first, as the offender detector ranks
    std::stable_sort(list.begin(), list.end(),
                     [](const ResourceRate& a, const ResourceRate& b) { return a.rate > b.rate; });
  }
  for (Resource r : kAllResources) fx.Flag(r, fx.processes[static_cast<int>(r)], 1.5);
  fx.options.top_k = 3;
  const std::string text = fx.Text();
  ASSERT_GT(SampleLines(text).size(), 400u);

  std::string output;
  const int rc = PromtoolCheck(promtool_, text, &output);
  EXPECT_EQ(rc, 0) << output;
  EXPECT_EQ(output, "");
}

}  // namespace
}  // namespace procscope
