// SPDX-License-Identifier: Apache-2.0
// Tier 1: rates, the top table and exit lines (daemon/report.h), on hand-built samples.
#include "report.h"

#include <string.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "procscope.h"
#include "records.h"

namespace procscope {
namespace {

ProcessSample Sample(uint32_t tgid, uint64_t start_ns, const std::string& comm = "proc") {
  ProcessSample s;
  s.key.tgid = tgid;
  s.key.start_ns = start_ns;
  s.comm = comm;
  return s;
}

// A sample whose every counter that has a rate is `scale` times a distinct base value.
ProcessSample Loaded(uint32_t tgid, uint64_t start_ns, uint64_t scale) {
  ProcessSample s = Sample(tgid, start_ns);
  s.counters.cpu_ns = scale * 1'000'000'000;
  s.counters.runq_ns = scale * 100'000'000;
  s.counters.vol_cs = scale * 30;
  s.counters.invol_cs = scale * 70;
  s.counters.min_flt = scale * 1000;
  s.counters.maj_flt = scale * 10;
  s.io.read_bytes = scale * 4096;
  s.io.write_bytes = scale * 8192;
  return s;
}

// Non-empty lines of a table or message.
std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

// ---------------------------------------------------------------------------------------------
// ComputeRates

TEST(ComputeRatesTest, RatesAreDeltasPerSecond) {
  const std::vector<ProcessSample> prev = {Loaded(100, 5, 1)};
  const std::vector<ProcessSample> cur = {Loaded(100, 5, 3)};
  const std::vector<ProcessRate> r = ComputeRates(prev, cur, 2.0);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].sample, &cur[0]);
  EXPECT_DOUBLE_EQ(r[0].cpu_cores, 1.0);              // 2 s of CPU over 2 s
  EXPECT_DOUBLE_EQ(r[0].runq_cores, 0.1);             // 0.2 s of waiting over 2 s
  EXPECT_DOUBLE_EQ(r[0].switches, (60.0 + 140) / 2);  // voluntary + involuntary
  EXPECT_DOUBLE_EQ(r[0].minor_faults, 1000.0);
  EXPECT_DOUBLE_EQ(r[0].major_faults, 10.0);
  EXPECT_DOUBLE_EQ(r[0].read_bytes, 4096.0);
  EXPECT_DOUBLE_EQ(r[0].write_bytes, 8192.0);
}

TEST(ComputeRatesTest, NewProcessCountsFromZero) {
  const std::vector<ProcessSample> prev = {Loaded(50, 1, 9), Loaded(300, 1, 9)};
  const std::vector<ProcessSample> cur = {Loaded(50, 1, 10), Loaded(150, 1, 2), Loaded(300, 1, 10)};
  const std::vector<ProcessRate> r = ComputeRates(prev, cur, 1.0);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[1].sample, &cur[1]);
  EXPECT_DOUBLE_EQ(r[1].cpu_cores, 2.0);  // all of its 2 s since it started
  EXPECT_DOUBLE_EQ(r[1].major_faults, 20.0);
  EXPECT_DOUBLE_EQ(r[0].cpu_cores, 1.0);  // neighbours still matched
  EXPECT_DOUBLE_EQ(r[2].cpu_cores, 1.0);
}

// The pid was reused: same tgid, another start time. The old incarnation's counters must not be
// subtracted (which would give 0 here, or garbage).
TEST(ComputeRatesTest, ReusedPidWithAnotherStartTimeCountsFromZero) {
  const std::vector<ProcessSample> prev = {Loaded(200, 1'000, 5)};
  const std::vector<ProcessSample> cur = {Loaded(200, 2'000, 1)};
  const std::vector<ProcessRate> r = ComputeRates(prev, cur, 2.0);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_DOUBLE_EQ(r[0].cpu_cores, 0.5);
  EXPECT_DOUBLE_EQ(r[0].switches, 50.0);
  EXPECT_DOUBLE_EQ(r[0].minor_faults, 500.0);
  EXPECT_DOUBLE_EQ(r[0].read_bytes, 2048.0);
}

TEST(ComputeRatesTest, ExitedProcessesInPrevAreSkipped) {
  const std::vector<ProcessSample> prev = {Loaded(10, 1, 1), Loaded(20, 1, 100), Loaded(30, 1, 1),
                                           Loaded(40, 1, 100)};
  const std::vector<ProcessSample> cur = {Loaded(30, 1, 4), Loaded(50, 1, 1)};
  const std::vector<ProcessRate> r = ComputeRates(prev, cur, 1.0);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].sample->key.tgid, 30u);
  EXPECT_DOUBLE_EQ(r[0].cpu_cores, 3.0);
  EXPECT_EQ(r[1].sample->key.tgid, 50u);
  EXPECT_DOUBLE_EQ(r[1].cpu_cores, 1.0);
}

// A counter that went backwards (it should not; a bug or a reset) gives a rate of 0, never the
// huge number unsigned wrap-around would.
TEST(ComputeRatesTest, CounterThatWentBackwardsGivesZero) {
  ProcessSample before = Loaded(7, 1, 10);
  ProcessSample after = Loaded(7, 1, 10);
  after.counters.cpu_ns = before.counters.cpu_ns - 1;
  after.counters.min_flt = 0;
  after.io.write_bytes = before.io.write_bytes - 4096;
  after.counters.maj_flt = before.counters.maj_flt + 4;  // this one grew
  const std::vector<ProcessSample> prev = {before};
  const std::vector<ProcessSample> cur = {after};
  const std::vector<ProcessRate> r = ComputeRates(prev, cur, 1.0);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].cpu_cores, 0.0);
  EXPECT_EQ(r[0].minor_faults, 0.0);
  EXPECT_EQ(r[0].write_bytes, 0.0);
  EXPECT_DOUBLE_EQ(r[0].major_faults, 4.0);
  EXPECT_EQ(r[0].runq_cores, 0.0);  // unchanged
}

TEST(ComputeRatesTest, ZeroIntervalGivesFiniteRates) {
  const std::vector<ProcessSample> prev = {Loaded(1, 1, 1)};
  const std::vector<ProcessSample> cur = {Loaded(1, 1, 2)};
  for (double seconds : {0.0, -1.0}) {
    const std::vector<ProcessRate> r = ComputeRates(prev, cur, seconds);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_TRUE(std::isfinite(r[0].cpu_cores)) << seconds;
    EXPECT_EQ(r[0].cpu_cores, 0.0) << seconds;
    EXPECT_EQ(r[0].switches, 0.0) << seconds;
  }
}

TEST(ComputeRatesTest, EmptyCurrentGivesNoRates) {
  EXPECT_TRUE(ComputeRates({Loaded(1, 1, 1)}, {}, 1.0).empty());
}

// ---------------------------------------------------------------------------------------------
// FormatTopTable

struct Row {
  uint32_t pid;
  std::string comm;
  std::string cpu;
};

Row ParseRow(const std::string& line) {
  std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
  Row r{};
  if (f.size() >= 3) {
    r.pid = static_cast<uint32_t>(std::stoul(f[0]));
    r.comm = f[1];
    r.cpu = f[2];
  }
  return r;
}

// Samples that outlive the rates pointing at them.
class TopTableTest : public ::testing::Test {
 protected:
  ProcessRate Rate(uint32_t tgid, double cpu_cores, const std::string& comm = "") {
    samples_.push_back(Sample(tgid, 1, comm.empty() ? "p" + std::to_string(tgid) : comm));
    ProcessRate r;
    r.cpu_cores = cpu_cores;
    r.sample = &samples_.back();
    return r;
  }
  void SetUp() override { samples_.reserve(64); }
  std::vector<ProcessSample> samples_;
};

TEST_F(TopTableTest, OrdersByCpuDescending) {
  std::vector<ProcessRate> rates = {Rate(10, 0.5), Rate(20, 2.0), Rate(30, 0.0), Rate(40, 1.0)};
  const std::vector<std::string> lines = Lines(FormatTopTable(rates, 10));
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_NE(lines[0].find("PID"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("COMM"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("CPU%"), std::string::npos) << lines[0];
  std::vector<uint32_t> pids;
  for (size_t i = 1; i < lines.size(); ++i) pids.push_back(ParseRow(lines[i]).pid);
  EXPECT_EQ(pids, (std::vector<uint32_t>{20, 40, 10, 30}));
  EXPECT_EQ(ParseRow(lines[1]).comm, "p20");
  EXPECT_EQ(ParseRow(lines[1]).cpu, "200.0");  // two cores, in percent of one
  EXPECT_EQ(ParseRow(lines[3]).cpu, "50.0");
}

TEST_F(TopTableTest, TiesAreOrderedByPid) {
  std::vector<ProcessRate> rates = {Rate(300, 1.0), Rate(100, 1.0), Rate(200, 1.0)};
  const std::vector<std::string> lines = Lines(FormatTopTable(rates, 10));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(ParseRow(lines[1]).pid, 100u);
  EXPECT_EQ(ParseRow(lines[2]).pid, 200u);
  EXPECT_EQ(ParseRow(lines[3]).pid, 300u);
}

TEST_F(TopTableTest, LimitKeepsTheBusiest) {
  std::vector<ProcessRate> rates;
  for (uint32_t pid = 1; pid <= 20; ++pid) rates.push_back(Rate(pid, pid * 0.01));
  std::vector<std::string> lines = Lines(FormatTopTable(rates, 3));
  ASSERT_EQ(lines.size(), 4u);  // header + 3
  EXPECT_EQ(ParseRow(lines[1]).pid, 20u);
  EXPECT_EQ(ParseRow(lines[2]).pid, 19u);
  EXPECT_EQ(ParseRow(lines[3]).pid, 18u);

  EXPECT_EQ(Lines(FormatTopTable(rates, 0)).size(), 1u);     // header only
  EXPECT_EQ(Lines(FormatTopTable(rates, 100)).size(), 21u);  // everything
  EXPECT_EQ(Lines(FormatTopTable({}, 5)).size(), 1u);
}

TEST_F(TopTableTest, HostileCommStaysOnItsRow) {
  std::vector<ProcessRate> rates = {Rate(1, 0.2, "evil\nname\"\x1b[2J"), Rate(2, 0.1, "ok")};
  const std::string table = FormatTopTable(rates, 10);
  const std::vector<std::string> lines = Lines(table);
  ASSERT_EQ(lines.size(), 3u) << table;
  EXPECT_EQ(ParseRow(lines[1]).pid, 1u);
  EXPECT_EQ(ParseRow(lines[2]).pid, 2u);
  for (unsigned char c : table) {
    EXPECT_TRUE(c == '\n' || (c >= 0x20 && c < 0x7f)) << "byte 0x" << std::hex << int{c};
  }
}

// ---------------------------------------------------------------------------------------------
// FormatExit

ps_exit_event Exit(uint32_t tgid, const char* comm, uint32_t exit_code) {
  ps_exit_event e;
  memset(&e, 0, sizeof(e));
  e.key.tgid = tgid;
  e.key.start_ns = 1'000'000'000;
  e.exit_ns = 3'500'000'000;
  e.ppid = 1;
  e.exit_code = exit_code;
  memcpy(e.comm, comm, strnlen(comm, PS_COMM_LEN));  // no NUL when 16 bytes long
  return e;
}

TEST(FormatExitTest, NormalExit) {
  ps_exit_event e = Exit(1234, "sleep", 0x300);  // exit(3)
  e.c.cpu_ns = 1'250'000'000;
  e.c.runq_ns = 2'000'000;
  e.c.min_flt = 120;
  e.c.maj_flt = 3;
  e.io.read_bytes = 4096;
  e.io.write_bytes = 100;
  EXPECT_EQ(FormatExit(e),
            "exit pid=1234 ppid=1 comm=\"sleep\" exited 3 lifetime=2.500s cpu=1.250s "
            "runq=0.002s minflt=120 majflt=3 read=4.0KiB write=100B");
}

TEST(FormatExitTest, ExitZeroAndLargeCounters) {
  ps_exit_event e = Exit(9, "true", 0);
  e.c.min_flt = 5'000'000'000ull;  // beyond 32 bits
  const std::string line = FormatExit(e);
  EXPECT_NE(line.find(" exited 0 "), std::string::npos) << line;
  EXPECT_NE(line.find(" minflt=5000000000 "), std::string::npos) << line;
}

TEST(FormatExitTest, KilledBySignalWithCoreDump) {
  const std::string line = FormatExit(Exit(77, "crasher", 0x8b));  // SIGSEGV | core
  EXPECT_NE(line.find(" killed by SIGSEGV, core dumped "), std::string::npos) << line;
  EXPECT_EQ(line.find("exited"), std::string::npos) << line;
  EXPECT_EQ(line.find("oom"), std::string::npos) << line;
}

TEST(FormatExitTest, KilledBySignalWithoutCoreDump) {
  const std::string line = FormatExit(Exit(78, "victim", 9));
  EXPECT_NE(line.find(" killed by SIGKILL "), std::string::npos) << line;
  EXPECT_EQ(line.find("core"), std::string::npos) << line;
}

TEST(FormatExitTest, OomKill) {
  ps_exit_event e = Exit(79, "hog", 9);
  e.flags = PS_EXIT_OOM_KILLED;
  const std::string line = FormatExit(e);
  EXPECT_NE(line.find(" oom-killed (SIGKILL) "), std::string::npos) << line;
  EXPECT_EQ(line.find("killed by"), std::string::npos) << line;
}

TEST(FormatExitTest, HostileCommStaysOnOneLineInItsQuotes) {
  ps_exit_event e = Exit(80, "", 0);
  memcpy(e.comm, "a\"b\nc\\\x1b[2J\r\xff;x=1", 16);  // 16 bytes, no NUL
  const std::string line = FormatExit(e);
  for (unsigned char c : line) {
    EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "byte 0x" << std::hex << int{c} << " in " << line;
  }
  size_t quotes = 0;
  for (char c : line) quotes += c == '"';
  EXPECT_EQ(quotes, 2u) << line;  // only the delimiters around comm
  EXPECT_NE(line.find("comm=\"a\\x22b\\x0ac\\x5c\\x1b[2J\\x0d\\xff;x=1\" exited 0 "),
            std::string::npos)
      << line;
}

TEST(FormatExitTest, ExitBeforeStartGivesZeroLifetime) {
  ps_exit_event e = Exit(81, "odd", 0);
  e.exit_ns = e.key.start_ns - 1;
  const std::string line = FormatExit(e);
  EXPECT_NE(line.find(" lifetime=0.000s "), std::string::npos) << line;
}

TEST_F(TopTableTest, LongHostileCommIsCutBetweenEscapes) {
  // 16 raw bytes whose escaped form is longer than the column: the cut must not split "\xNN".
  std::vector<ProcessSample> cur = {Sample(1, 1, std::string("abcdefghijklmn\n\x01", 16))};
  std::string table = FormatTopTable(ComputeRates({}, cur, 1.0), 10);
  EXPECT_NE(table.find("abcdefghijklmn "), std::string::npos) << table;
  EXPECT_EQ(table.find("\\x0a"), std::string::npos) << table;
  EXPECT_EQ(table.find("\\x "), std::string::npos) << table;
}

TEST_F(TopTableTest, BytesJustUnderAUnitRoundUpToIt) {
  std::vector<ProcessSample> cur = {Sample(1, 1)};
  cur[0].rss_bytes = 1048575;  // 1 MiB - 1 B
  std::string table = FormatTopTable(ComputeRates({}, cur, 1.0), 10);
  EXPECT_NE(table.find("1.0MiB"), std::string::npos) << table;
  EXPECT_EQ(table.find("1024.0KiB"), std::string::npos) << table;
}

}  // namespace
}  // namespace procscope
