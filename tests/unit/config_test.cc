// SPDX-License-Identifier: Apache-2.0
// Tier 1: settings validation and --attach parsing (daemon/config.h).
#include "config.h"

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace procscope {
namespace {

bool Contains(absl::string_view haystack, absl::string_view needle) {
  return haystack.find(needle) != absl::string_view::npos;
}

TEST(ValidateConfigTest, DefaultsAreValid) {
  // A named object: GCC 12 at -O3 warns (-Wmaybe-uninitialized, a false positive) about the
  // std::string members of a temporary Config{} passed by reference.
  const Config defaults;
  const absl::Status s = ValidateConfig(defaults);
  EXPECT_TRUE(s.ok()) << s;
}

TEST(ValidateConfigTest, IntervalRange) {
  for (absl::Duration ok : {absl::Milliseconds(100), absl::Milliseconds(101), absl::Seconds(2),
                            absl::Minutes(59), absl::Hours(1)}) {
    Config c;
    c.interval = ok;
    const absl::Status s = ValidateConfig(c);
    EXPECT_TRUE(s.ok()) << absl::FormatDuration(ok) << ": " << s;
  }
  for (absl::Duration bad :
       {absl::ZeroDuration(), absl::Milliseconds(-5), absl::Milliseconds(99),
        absl::Milliseconds(100) - absl::Nanoseconds(1), absl::Hours(1) + absl::Nanoseconds(1),
        absl::Hours(2), absl::InfiniteDuration()}) {
    Config c;
    c.interval = bad;
    const absl::Status s = ValidateConfig(c);
    SCOPED_TRACE(absl::FormatDuration(bad));
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
    EXPECT_TRUE(Contains(s.message(), "--interval")) << s;
    EXPECT_TRUE(Contains(s.message(), "100ms")) << s;  // says what is accepted
    EXPECT_TRUE(Contains(s.message(), "1h")) << s;
    EXPECT_FALSE(Contains(s.message(), "--top")) << s;
    EXPECT_FALSE(Contains(s.message(), "--duration")) << s;
  }
}

TEST(ValidateConfigTest, DurationMustNotBeNegative) {
  for (absl::Duration ok : {absl::ZeroDuration(), absl::Nanoseconds(1), absl::Hours(24 * 365),
                            absl::InfiniteDuration()}) {
    Config c;
    c.duration = ok;
    const absl::Status s = ValidateConfig(c);
    EXPECT_TRUE(s.ok()) << absl::FormatDuration(ok) << ": " << s;
  }
  for (absl::Duration bad :
       {-absl::Nanoseconds(1), -absl::Seconds(10), -absl::InfiniteDuration()}) {
    Config c;
    c.duration = bad;
    const absl::Status s = ValidateConfig(c);
    SCOPED_TRACE(absl::FormatDuration(bad));
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
    EXPECT_TRUE(Contains(s.message(), "--duration")) << s;
    EXPECT_FALSE(Contains(s.message(), "--interval")) << s;
  }
}

TEST(ValidateConfigTest, TopRange) {
  for (int ok : {1, 2, 10, 9999, 10000}) {
    Config c;
    c.top = ok;
    const absl::Status s = ValidateConfig(c);
    EXPECT_TRUE(s.ok()) << ok << ": " << s;
  }
  for (int bad : {0, -1, 10001, 1 << 30}) {
    Config c;
    c.top = bad;
    const absl::Status s = ValidateConfig(c);
    SCOPED_TRACE(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
    EXPECT_TRUE(Contains(s.message(), "--top=" + std::to_string(bad))) << s;  // the value given
    EXPECT_TRUE(Contains(s.message(), "10000")) << s;
    EXPECT_FALSE(Contains(s.message(), "--interval")) << s;
  }
}

TEST(ValidateConfigTest, QuietAndCollectorOptionsAreNotRangeChecked) {
  Config c;
  c.quiet = true;
  c.collector.attach = AttachMode::kRawTp;
  c.collector.btf_path = "/nonexistent";
  const absl::Status s = ValidateConfig(c);
  EXPECT_TRUE(s.ok()) << s;
}

TEST(ParseAttachModeTest, AcceptedValues) {
  absl::StatusOr<AttachMode> m = ParseAttachMode("auto");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(*m, AttachMode::kAuto);
  m = ParseAttachMode("tp_btf");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(*m, AttachMode::kTpBtf);
  m = ParseAttachMode("raw_tp");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(*m, AttachMode::kRawTp);
}

TEST(ParseAttachModeTest, RejectsEverythingElseNamingFlagValueAndChoices) {
  for (const char* bad :
       {"", "AUTO", "Auto", "tp-btf", "tpbtf", "raw-tp", "raw_tp ", " auto", "kprobe", "fentry"}) {
    SCOPED_TRACE(std::string("'") + bad + "'");
    const absl::StatusOr<AttachMode> m = ParseAttachMode(bad);
    ASSERT_FALSE(m.ok());
    EXPECT_TRUE(absl::IsInvalidArgument(m.status())) << m.status();
    const absl::string_view msg = m.status().message();
    EXPECT_TRUE(Contains(msg, std::string("--attach=") + bad + ":")) << msg;
    EXPECT_TRUE(Contains(msg, "auto")) << msg;
    EXPECT_TRUE(Contains(msg, "tp_btf")) << msg;
    EXPECT_TRUE(Contains(msg, "raw_tp")) << msg;
  }
}

// Each daemon setting: its bad value is InvalidArgument naming the flag; its edges are valid.
TEST(ValidateConfigTest, DaemonSettingsNameTheirFlag) {
  struct Case {
    std::function<void(Config&)> set;
    bool valid;
    std::string mention;
  };
  const std::vector<Case> cases = {
      {[](Config& c) { c.sample_interval = absl::Milliseconds(99); }, false, "--sample_interval"},
      {[](Config& c) { c.sample_interval = absl::Milliseconds(100); }, true, ""},
      {[](Config& c) { c.sample_interval = absl::Minutes(2); }, false, "--sample_interval"},
      {[](Config& c) { c.listen = "127.0.0.1:9750"; }, true, ""},
      {[](Config& c) { c.listen = ":0"; }, true, ""},
      {[](Config& c) { c.listen = ":70000"; }, false, "--listen"},
      {[](Config& c) { c.listen = "nohost"; }, false, "--listen"},
      {[](Config& c) { c.export_options.top_k = 0; }, false, "--top_k"},
      {[](Config& c) { c.export_options.top_k = 1000; }, true, ""},
      {[](Config& c) { c.export_options.max_series = 99; }, false, "--max_series"},
      {[](Config& c) { c.journal_max_bytes = 4095; }, false, "--journal_max_bytes"},
      {[](Config& c) {
         c.journal_dir = "";
         c.journal_max_bytes = 0;
       },
       true, ""},
      {[](Config& c) { c.events_in_memory = 0; }, false, "--events_in_memory"},
      {[](Config& c) { c.table.exclude_regex = "(unclosed"; }, false, "--exclude"},
      {[](Config& c) { c.table.include_regex = "^nginx|php-fpm$"; }, true, ""},
      {[](Config& c) { c.offenders.window = absl::Seconds(1); }, false, "window"},
      {[](Config& c) { c.offenders.dominance = 0.5; }, false, "dominance"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    Config c;
    cases[i].set(c);
    absl::Status st = ValidateConfig(c);
    EXPECT_EQ(st.ok(), cases[i].valid) << "case " << i << ": " << st;
    if (!cases[i].valid) {
      EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << "case " << i;
      EXPECT_NE(st.message().find(cases[i].mention), std::string::npos)
          << "case " << i << ": " << st.message();
    }
  }
}

}  // namespace
}  // namespace procscope
