// SPDX-License-Identifier: Apache-2.0
// Tier 1: settings validation, --attach and --group_by parsing (daemon/config.h, group_by.h).
#include "config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdarg>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "collector.h"
#include "flags_util.h"
#include "group_by.h"
#include "gtest/gtest.h"
#include "libbpf_log.h"
#include "log.h"
#include "privileges.h"

// Flags for the config-file tests (the daemon's own are in daemon/main.cc, not linked here).
ABSL_FLAG(int, cfgtest_int, 10, "test");
ABSL_FLAG(absl::Duration, cfgtest_duration, absl::Seconds(2), "test");
ABSL_FLAG(std::string, cfgtest_string, "default", "test");
ABSL_FLAG(procscope::AttachMode, cfgtest_attach, procscope::AttachMode::kAuto, "test");
ABSL_FLAG(procscope::GroupBy, cfgtest_group_by, procscope::GroupBy::kComm, "test");

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
      {[](Config& c) { c.collector.ring_buffer_bytes = 1 << 16; }, true, ""},
      {[](Config& c) { c.collector.ring_buffer_bytes = 2048; }, false, "--ring_buffer_bytes"},
      {[](Config& c) { c.collector.ring_buffer_bytes = 3 << 12; }, false, "--ring_buffer_bytes"},
      {[](Config& c) { c.collector.ring_buffer_bytes = 1u << 31; }, false, "--ring_buffer_bytes"},
      {[](Config& c) { c.collector.pin_path = "/sys/fs/bpf/procscope"; }, true, ""},
      {[](Config& c) { c.collector.pin_path = "relative/dir"; }, false, "--pin_path"},
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

// --- Defects found when tried as a new user would (issue 11) -----------------------------------

// A scratch directory for config files, removed at the end.
class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/procscope-cfgtest.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    absl::SetFlag(&FLAGS_cfgtest_int, 10);
    absl::SetFlag(&FLAGS_cfgtest_duration, absl::Seconds(2));
    absl::SetFlag(&FLAGS_cfgtest_string, "default");
  }
  void TearDown() override { system(("rm -rf " + dir_).c_str()); }
  std::string Write(const std::string& name, const std::string& content) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << content;
    return path;
  }
  std::string dir_;
  FlagOrigins origins_;
};

// Printable ASCII only, and short: what any error may quote of outside input.
void ExpectSafeOneLine(absl::string_view msg) {
  EXPECT_LT(msg.size(), 400u) << msg.substr(0, 400);
  for (char c : msg) {
    const unsigned char u = static_cast<unsigned char>(c);
    EXPECT_TRUE(u >= 0x20 && u < 0x7f) << "byte " << static_cast<int>(u) << " in " << msg;
  }
}

TEST_F(ConfigFileTest, SetsFlagsAndRecordsWhere) {
  const std::string path = Write("a.conf", "# c\n\ncfgtest_int=5\n--cfgtest_string = x y \n");
  const absl::Status s = ApplyConfigFile(path, {}, origins_);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(absl::GetFlag(FLAGS_cfgtest_int), 5);
  EXPECT_EQ(absl::GetFlag(FLAGS_cfgtest_string), "x y");
  EXPECT_EQ(origins_["cfgtest_int"], path + ":3");
  EXPECT_EQ(origins_["cfgtest_string"], path + ":4");
}

TEST_F(ConfigFileTest, RemovedLineGoesBackToDefaultAndCommandLineWins) {
  ASSERT_TRUE(
      ApplyConfigFile(Write("a.conf", "cfgtest_int=5\ncfgtest_string=f\n"), {}, origins_).ok());
  absl::SetFlag(&FLAGS_cfgtest_duration, absl::Seconds(7));  // as if from the command line
  const absl::Status s = ApplyConfigFile(Write("a.conf", "cfgtest_string=g\ncfgtest_duration=1s\n"),
                                         {"cfgtest_duration"}, origins_);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(absl::GetFlag(FLAGS_cfgtest_int), 10);
  EXPECT_EQ(absl::GetFlag(FLAGS_cfgtest_string), "g");
  EXPECT_EQ(absl::GetFlag(FLAGS_cfgtest_duration), absl::Seconds(7));
  EXPECT_EQ(origins_.count("cfgtest_duration"), 0u);
}

// A directory read as an empty file reset every setting on SIGHUP.
TEST_F(ConfigFileTest, DirectoryIsRefusedAndChangesNothing) {
  ASSERT_TRUE(ApplyConfigFile(Write("a.conf", "cfgtest_int=5\n"), {}, origins_).ok());
  const absl::Status s = ApplyConfigFile(dir_, {}, origins_);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_TRUE(Contains(s.message(), "directory")) << s;
  EXPECT_TRUE(Contains(s.message(), dir_)) << s;
  EXPECT_EQ(absl::GetFlag(FLAGS_cfgtest_int), 5);
  EXPECT_EQ(origins_.count("cfgtest_int"), 1u);
}

TEST_F(ConfigFileTest, FifoIsRefusedWithoutBlocking) {
  const std::string path = dir_ + "/fifo";
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  const absl::Status s = ApplyConfigFile(path, {}, origins_);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_TRUE(Contains(s.message(), "not a regular file")) << s;
}

TEST_F(ConfigFileTest, MissingFileSaysSo) {
  const absl::Status s = ApplyConfigFile(dir_ + "/none.conf", {}, origins_);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.message(), "none.conf")) << s;
}

// flagfile= inside a config file was ignored silently.
TEST_F(ConfigFileTest, AbseilBuiltinsAreRefusedWithFileLine) {
  for (const char* name : {"flagfile", "fromenv", "tryfromenv", "undefok", "help", "config"}) {
    const std::string path = Write("b.conf", absl::StrCat("cfgtest_int=3\n", name, "=/x\n"));
    const absl::Status s = ApplyConfigFile(path, {}, origins_);
    SCOPED_TRACE(name);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
    EXPECT_TRUE(Contains(s.message(), path + ":2")) << s;
    EXPECT_TRUE(Contains(s.message(), absl::StrCat("'", name, "'"))) << s;
    EXPECT_EQ(absl::GetFlag(FLAGS_cfgtest_int), 10);  // nothing applied from a bad file
  }
}

// A 50 MB bad line was echoed whole; control bytes reached the terminal.
TEST_F(ConfigFileTest, BadValueIsQuotedShortAndEscaped) {
  const std::string secret = "\x1b[2J" + std::string(100000, 's');
  const std::string path = Write("c.conf", "cfgtest_int=" + secret + "\n");
  const absl::Status s = ApplyConfigFile(path, {}, origins_);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_TRUE(Contains(s.message(), path + ":1: --cfgtest_int=\\x1b[2Jsss")) << s;
  EXPECT_TRUE(Contains(s.message(), "(100004 bytes)")) << s;
  EXPECT_TRUE(Contains(s.message(), "not an integer")) << s;
  ExpectSafeOneLine(s.message());
  for (const std::string& line : {std::string("no_equals_sign") + secret, "x" + secret + "=1"}) {
    const absl::Status t = ApplyConfigFile(Write("d.conf", line), {}, origins_);
    EXPECT_TRUE(absl::IsInvalidArgument(t)) << t;
    ExpectSafeOneLine(t.message());
  }
}

TEST_F(ConfigFileTest, HugeFileIsRefusedInOneShortLine) {
  const std::string path = Write("big.conf", std::string(2 << 20, 'x'));
  const absl::Status s = ApplyConfigFile(path, {}, origins_);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_TRUE(Contains(s.message(), "at most")) << s;
  ExpectSafeOneLine(s.message());
}

// Range errors from the config file had no file:line.
TEST_F(ConfigFileTest, ValidationErrorsOfFileSettingsGetFileLine) {
  const std::string path = Write("e.conf", "\ncfgtest_int=5000\n");
  ASSERT_TRUE(ApplyConfigFile(path, {}, origins_).ok());
  const absl::Status s = WithOrigin(
      absl::InvalidArgumentError("--cfgtest_int=5000: must be between 1 and 1000"), origins_);
  EXPECT_EQ(s.message(), path + ":2: --cfgtest_int=5000: must be between 1 and 1000");
  const absl::Status other =
      WithOrigin(absl::InvalidArgumentError("--cfgtest_string=x: bad"), origins_);
  EXPECT_EQ(other.message(), "--cfgtest_string=x: bad");  // not from the file
}

TEST_F(ConfigFileTest, ValidationErrorsQuoteTheValueShort) {
  const std::string long_value = "(" + std::string(5000, 'r') + "\x1b";
  const std::string path = Write("f.conf", "cfgtest_string=" + long_value + "\n");
  ASSERT_TRUE(ApplyConfigFile(path, {}, origins_).ok());
  const absl::Status s = WithOrigin(
      absl::InvalidArgumentError("--cfgtest_string=" + long_value + ": not a valid regex"),
      origins_);
  EXPECT_TRUE(Contains(s.message(), path + ":1: --cfgtest_string=(rrr")) << s;
  EXPECT_TRUE(Contains(s.message(), "(5002 bytes): not a valid regex")) << s;
  ExpectSafeOneLine(s.message());
}

// --flagfile=/etc/shadow printed that file's lines.
TEST(CheckFlagArgumentTest, FlagfileAndFromenvAreRefusedWithoutReading) {
  for (const char* arg : {"--flagfile=/etc/shadow", "--fromenv=PATH", "-tryfromenv=HOME"}) {
    const std::string err = CheckFlagArgument(arg);
    EXPECT_TRUE(Contains(err, "not supported")) << err;
    EXPECT_TRUE(Contains(err, "--config")) << err;
  }
}

TEST(CheckFlagArgumentTest, BadValueIsQuotedShortAndEscaped) {
  const std::string err = CheckFlagArgument("--cfgtest_int=\x07" + std::string(5000, '9'));
  EXPECT_TRUE(Contains(err, "--cfgtest_int=\\x0799")) << err;
  EXPECT_TRUE(Contains(err, "(5001 bytes)")) << err;
  ExpectSafeOneLine(err);
  EXPECT_EQ(CheckFlagArgument("--cfgtest_duration=2x"),
            "--cfgtest_duration=2x: not a duration such as 500ms, 2s or 1m");
  EXPECT_EQ(CheckFlagArgument("--cfgtest_int=7"), "");
}

// --attach and --group_by are flags of their enum types (AbslParseFlag): every name parses to its
// enumerator and back, and a bad value is one escaped line that lists the valid ones.
TEST(EnumFlagTest, EveryNameRoundTrips) {
  for (const auto& [mode, name] : kAttachModeNames) {
    SCOPED_TRACE(name);
    EXPECT_EQ(AbslUnparseFlag(mode), name);
    EXPECT_STREQ(AttachModeName(mode), name);
    AttachMode parsed = AttachMode::kAuto;
    std::string error;
    ASSERT_TRUE(AbslParseFlag(name, &parsed, &error)) << error;
    EXPECT_EQ(parsed, mode);
    EXPECT_EQ(*ParseAttachMode(name), mode);
  }
  for (const auto& [by, name] : kGroupByNames) {
    SCOPED_TRACE(name);
    EXPECT_EQ(AbslUnparseFlag(by), name);
    EXPECT_STREQ(GroupByName(by), name);
    GroupBy parsed = GroupBy::kComm;
    std::string error;
    ASSERT_TRUE(AbslParseFlag(name, &parsed, &error)) << error;
    EXPECT_EQ(parsed, by);
    EXPECT_EQ(*ParseGroupBy(name), by);
  }
  EXPECT_EQ(kAttachModeNames.size(), 3u);
  EXPECT_EQ(kGroupByNames.size(), 5u);
  EXPECT_STREQ(GroupByName(static_cast<GroupBy>(99)), "?");  // a bad cast does not read past
}

TEST(EnumFlagTest, BadValueListsTheValidOnes) {
  EXPECT_EQ(CheckFlagArgument("--cfgtest_attach=kprobe"),
            "--cfgtest_attach=kprobe: must be one of auto, tp_btf, raw_tp");
  EXPECT_EQ(CheckFlagArgument("--cfgtest_group_by=pod"),
            "--cfgtest_group_by=pod: must be one of comm, exe, container, unit, user");
  EXPECT_EQ(CheckFlagArgument("--cfgtest_group_by=Comm"),
            "--cfgtest_group_by=Comm: must be one of comm, exe, container, unit, user");
  const std::string err = CheckFlagArgument("--cfgtest_group_by=\x1b[2J" + std::string(500, 'p'));
  EXPECT_TRUE(Contains(err, "--cfgtest_group_by=\\x1b[2Jppp")) << err;
  EXPECT_TRUE(Contains(err, "bytes): must be one of comm, exe, container, unit, user")) << err;
  ExpectSafeOneLine(err);
  EXPECT_EQ(absl::GetFlag(FLAGS_cfgtest_group_by), GroupBy::kComm);  // a bad value sets nothing
  EXPECT_EQ(CheckFlagArgument("--cfgtest_group_by=unit"), "");
  EXPECT_EQ(absl::GetFlag(FLAGS_cfgtest_group_by), GroupBy::kUnit);
  absl::SetFlag(&FLAGS_cfgtest_group_by, GroupBy::kComm);
  // --help shows the default by name.
  EXPECT_EQ(absl::FindCommandLineFlag("cfgtest_attach")->DefaultValue(), "auto");
  EXPECT_EQ(absl::FindCommandLineFlag("cfgtest_group_by")->DefaultValue(), "comm");
}

TEST_F(ConfigFileTest, EnumFlagsFromTheFile) {
  const std::string path = Write("e.conf", "cfgtest_attach=raw_tp\ncfgtest_group_by = user\n");
  ASSERT_TRUE(ApplyConfigFile(path, {}, origins_).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_cfgtest_attach), AttachMode::kRawTp);
  EXPECT_EQ(absl::GetFlag(FLAGS_cfgtest_group_by), GroupBy::kUser);
  const std::string bad = Write("f.conf", "cfgtest_attach=auto\ncfgtest_group_by=pod\n");
  const absl::Status s = ApplyConfigFile(bad, {}, origins_);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_EQ(s.message(), bad +
                             ":2: --cfgtest_group_by=pod: must be one of comm, exe, container, "
                             "unit, user");
  EXPECT_EQ(absl::GetFlag(FLAGS_cfgtest_attach), AttachMode::kRawTp);  // a bad file changes nothing
  // A line removed from the file goes back to the default.
  ASSERT_TRUE(ApplyConfigFile(Write("g.conf", "\n"), {}, origins_).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_cfgtest_attach), AttachMode::kAuto);
  EXPECT_EQ(absl::GetFlag(FLAGS_cfgtest_group_by), GroupBy::kComm);
}

TEST(ExcerptTest, EscapesAndCuts) {
  EXPECT_EQ(Excerpt("abc"), "abc");
  EXPECT_EQ(Excerpt("a\nb\\c\xff"), "a\\x0ab\\x5cc\\xff");
  EXPECT_EQ(Excerpt(std::string(80, 'x')), std::string(80, 'x'));
  EXPECT_EQ(Excerpt(std::string(81, 'x')), std::string(80, 'x') + "...(81 bytes)");
}

// inf and nan thresholds were accepted.
TEST(ValidateConfigTest, ThresholdsMustBeFinite) {
  const std::vector<std::pair<std::string, double OffenderConfig::*>> fields = {
      {"--offender_dominance", &OffenderConfig::dominance},
      {"--offender_min_cpu_cores", &OffenderConfig::min_cpu_cores},
      {"--offender_min_runqueue_cores", &OffenderConfig::min_runqueue_cores},
      {"--offender_min_memory_growth", &OffenderConfig::min_memory_growth_bps},
      {"--offender_min_page_faults", &OffenderConfig::min_page_faults_per_s},
      {"--offender_min_block_io", &OffenderConfig::min_block_io_bps},
      {"--offender_min_crashes", &OffenderConfig::min_crashes_per_min},
  };
  for (const auto& [flag, field] : fields) {
    for (double bad : {HUGE_VAL, -HUGE_VAL, std::nan(""), -1.0}) {
      Config c;
      c.offenders.*field = bad;
      const absl::Status s = ValidateConfig(c);
      SCOPED_TRACE(flag + "=" + std::to_string(bad));
      EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
      EXPECT_TRUE(Contains(s.message(), flag + "=")) << s;
    }
    Config c;
    c.offenders.*field = 1e12;
    EXPECT_TRUE(ValidateConfig(c).ok()) << flag;
  }
}

// A missing --proc_root was accepted (and every process then unknown).
TEST(ValidateConfigTest, ProcRootMustBeAProcfsMount) {
  for (const char* bad : {"/nonexistent-procscope", "/tmp", ""}) {
    Config c;
    c.proc_root = bad;
    const absl::Status s = ValidateConfig(c);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << bad << ": " << s;
    EXPECT_TRUE(Contains(s.message(), std::string("--proc_root=") + bad)) << s;
  }
  Config c;
  c.proc_root = "/proc/";
  EXPECT_TRUE(ValidateConfig(c).ok());
}

// The status endpoint builds a std::string from each name: nullptr would throw.
TEST(StatNameTest, NeverNullAndDistinct) {
  std::set<std::string> names;
  for (int i = 0; i < PS_STAT_MAX; ++i) {
    const char* n = StatName(i);
    ASSERT_NE(n, nullptr) << i;
    EXPECT_NE(std::string(n), "unknown") << i;
    names.insert(n);
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(PS_STAT_MAX));
  for (int i : {-1, static_cast<int>(PS_STAT_MAX), PS_STAT_MAX + 100}) {
    ASSERT_NE(StatName(i), nullptr);
    EXPECT_EQ(std::string(StatName(i)), "unknown");
  }
}

// --- Least privilege (daemon/privileges.h) -------------------------------------------------------

TEST(CapabilitiesTest, ParseAndFormat) {
  absl::StatusOr<CapMask> m = ParseCapabilities("sys_ptrace, CAP_BPF,Perfmon");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(*m, CapBit(19) | CapBit(38) | CapBit(39));
  EXPECT_EQ(FormatCapabilities(*m), "cap_sys_ptrace,cap_perfmon,cap_bpf");
  EXPECT_EQ(FormatCapabilities(kRunCapabilities), "cap_sys_ptrace");
  m = ParseCapabilities("");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, 0u);
  EXPECT_EQ(FormatCapabilities(0), "");
  m = ParseCapabilities("sys_ptrace,cap_flying");
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(Contains(m.status().message(), "cap_flying")) << m.status();
}

TEST(CapabilitiesTest, CurrentPrivilegesReadsThisThread) {
  absl::StatusOr<PrivilegeState> st = CurrentPrivileges();
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->effective & ~st->permitted, 0u);  // effective is a subset of permitted
}

// --- libbpf's messages on the log levels (daemon/libbpf_log.h) ---------------------------------

TEST(LibbpfLogTest, WarningsAreWarningsTheRestDebugAllWarningsWithVerbose) {
  EXPECT_EQ(LibbpfLogLevel(LIBBPF_WARN, false), LogLevel::kWarning);
  EXPECT_EQ(LibbpfLogLevel(LIBBPF_INFO, false), LogLevel::kDebug);
  EXPECT_EQ(LibbpfLogLevel(LIBBPF_DEBUG, false), LogLevel::kDebug);
  for (auto level : {LIBBPF_WARN, LIBBPF_INFO, LIBBPF_DEBUG}) {
    EXPECT_EQ(LibbpfLogLevel(level, true), LogLevel::kWarning) << level;
  }
}

TEST(LibbpfLogTest, EveryLineSaysLibbpf) {
  EXPECT_EQ(LibbpfLogLines("libbpf: prog 'x': failed to load\n"),
            std::vector<std::string>{"libbpf: prog 'x': failed to load"});
  EXPECT_EQ(LibbpfLogLines("libbpf: -- BEGIN PROG LOAD LOG --\n0: R1=ctx\n\n1: exit  \n"),
            (std::vector<std::string>{"libbpf: -- BEGIN PROG LOAD LOG --", "libbpf: 0: R1=ctx",
                                      "libbpf: 1: exit"}));
  EXPECT_TRUE(LibbpfLogLines("\n").empty());
}

// Calls the print callback as libbpf does.
int Print(enum libbpf_print_level level, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  const int n = LibbpfPrint(level, fmt, args);
  va_end(args);
  return n;
}

// What the callback writes to stderr, at `log_level`, for one warning, one info line and one
// debug message longer than its stack buffer.
std::string PrintedAt(LogLevel log_level, bool verbose) {
  char path[] = "/tmp/procscope-libbpf-log.XXXXXX";
  const int file = mkstemp(path);
  unlink(path);
  const int saved = dup(STDERR_FILENO);
  dup2(file, STDERR_FILENO);
  SetLogLevel(log_level);
  SetLibbpfVerbose(verbose);
  Print(LIBBPF_WARN, "libbpf: failed to find BTF for %s\n", "sched_switch");
  Print(LIBBPF_INFO, "libbpf: map '%s': created\n", "events");
  Print(LIBBPF_DEBUG, "libbpf: log %s\n", std::string(2000, 'v').c_str());
  SetLibbpfVerbose(false);
  SetLogLevel(LogLevel::kInfo);
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::string out(8192, '\0');
  const ssize_t n = pread(file, out.data(), out.size(), 0);
  close(file);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

TEST(LibbpfLogTest, CallbackFollowsTheLogLevel) {
  const std::string warning = "procscoped: libbpf: failed to find BTF for sched_switch\n";
  const std::string info = "procscoped: libbpf: map 'events': created\n";
  const std::string debug = "procscoped: libbpf: log " + std::string(2000, 'v') + "\n";
  EXPECT_EQ(PrintedAt(LogLevel::kInfo, false), warning);  // the default: warnings only
  EXPECT_EQ(PrintedAt(LogLevel::kWarning, false), warning);
  EXPECT_EQ(PrintedAt(LogLevel::kError, false), "");
  EXPECT_EQ(PrintedAt(LogLevel::kDebug, false), warning + info + debug);
  EXPECT_EQ(PrintedAt(LogLevel::kInfo, true), warning + info + debug);  // --verbose
  EXPECT_EQ(PrintedAt(LogLevel::kError, true), "");  // an explicit --log_level=error wins
  EXPECT_EQ(Print(LIBBPF_WARN, "libbpf: %d\n", 42), 11);
}

}  // namespace
}  // namespace procscope
