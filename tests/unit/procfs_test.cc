// SPDX-License-Identifier: Apache-2.0
// Tier 1: identity from procfs (daemon/procfs.h), against a fake tree in a temp dir and once
// against the real /proc for this test process.
#include "procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cgroup_path.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace procscope {
namespace {

namespace fs = std::filesystem;
using std::string_literals::operator""s;
using testing::HasSubstr;

const std::string kId = "9ef43594d57fd3183b91153fceed2a347215850a1b710957bb1871a281e8f7ec";

uint64_t NsPerTick() { return 1'000'000'000ull / static_cast<uint64_t>(sysconf(_SC_CLK_TCK)); }

// A /proc/<pid>/stat line with starttime (field 22) = `ticks`. Its neighbours (fields 21 and 23)
// hold other numbers so that an off-by-one parser fails.
std::string StatLine(int pid, const std::string& comm, uint64_t ticks) {
  return absl::StrCat(pid, " (", comm, ") S 1 4242 4242 0 -1 4194560 100 0 3 0 5 7 0 0 20 0 1 ",
                      ticks + 1000, " ", ticks, " ", ticks + 2000,
                      " 416 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n");
}

std::string StatusText(uint32_t real_uid) {
  // Effective and saved uids differ from the real one: the real one is what counts.
  return absl::StrCat("Name:\tfake\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\n",
                      "Pid:\t4242\nPPid:\t1\nTracerPid:\t0\nUid:\t", real_uid,
                      "\t0\t0\t0\nGid:\t100\t100\t100\t100\nThreads:\t1\n");
}

class FakeProcTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = testing::TempDir() + "procfs_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    root_ = dir_ + "/proc";
    passwd_ = dir_ + "/passwd";
    fs::create_directories(root_);
    Write(passwd_,
          "root:x:0:0:root:/root:/bin/bash\n"
          "# a comment:x:1001:1001\n"
          "\n"
          "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
          "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"
          "bob:x:1001:1001::/home/bob:/bin/sh\n"
          "broken-line\n");
  }
  void TearDown() override { fs::remove_all(dir_); }

  static void Write(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    ASSERT_TRUE(out.good()) << path;
  }

  // A full fake process: stat, status, cgroup and an exe symlink.
  void AddProcess(int pid, const std::string& comm, uint64_t ticks, uint32_t uid,
                  const std::string& cgroup, const std::string& exe = "/usr/bin/fake-daemon") {
    const std::string d = absl::StrCat(root_, "/", pid);
    fs::create_directories(d);
    Write(d + "/stat", StatLine(pid, comm, ticks));
    Write(d + "/status", StatusText(uid));
    Write(d + "/cgroup", cgroup);
    if (!exe.empty()) fs::create_symlink(exe, d + "/exe");  // need not exist, like "(deleted)"
  }

  std::string PidDir(int pid) const { return absl::StrCat(root_, "/", pid); }

  std::string dir_, root_, passwd_;
};

TEST_F(FakeProcTest, ReadsIdentityWithHostileComm) {
  const std::string cgroup =
      absl::StrCat("12:memory:/docker/", kId, "\n1:name=systemd:/system.slice/x.service\n0::/\n");
  AddProcess(4242, "a) (b c", 123456, 1001, cgroup);
  Procfs procfs(root_, passwd_);

  absl::StatusOr<Identity> id = procfs.Read(4242, 123456 * NsPerTick());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_TRUE(id->resolved);
  EXPECT_EQ(id->exe, "/usr/bin/fake-daemon");
  EXPECT_EQ(id->user, "bob");
  EXPECT_EQ(id->cgroup_path, "/docker/" + kId);
  EXPECT_EQ(id->cgroup.container_id, kId);
  EXPECT_EQ(id->cgroup.runtime, "docker");
  EXPECT_EQ(id->cgroup.pod_uid, "");
  EXPECT_EQ(id->cgroup.systemd_unit, "");
}

TEST_F(FakeProcTest, CommThatLooksLikeFields) {
  // A parser that stops at the first ')' would read "R 1 2 3 ..." as the fields.
  AddProcess(77, "x) R 1 2 3 4 5", 999, 0, "0::/system.slice/nginx.service\n");
  absl::StatusOr<Identity> id = Procfs(root_, passwd_).Read(77, 999 * NsPerTick());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->user, "root");
  EXPECT_EQ(id->cgroup_path, "/system.slice/nginx.service");
  EXPECT_EQ(id->cgroup.systemd_unit, "nginx.service");
}

TEST_F(FakeProcTest, StartTimeComparedAtTickPrecision) {
  AddProcess(10, "sleep", 5000, 0, "0::/\n");
  Procfs procfs(root_, passwd_);
  const uint64_t ns = 5000 * NsPerTick();
  EXPECT_TRUE(procfs.Read(10, ns).ok());
  EXPECT_TRUE(procfs.Read(10, ns + NsPerTick() - 1).ok());  // same tick
  EXPECT_TRUE(absl::IsNotFound(procfs.Read(10, ns - 1).status()));
}

TEST_F(FakeProcTest, ReusedPidIsNotFound) {
  AddProcess(10, "new-owner", 5000, 0, "0::/\n");
  absl::StatusOr<Identity> id = Procfs(root_, passwd_).Read(10, 4000 * NsPerTick());
  EXPECT_TRUE(absl::IsNotFound(id.status())) << id.status();
  EXPECT_THAT(std::string(id.status().message()), HasSubstr("another process"));
}

TEST_F(FakeProcTest, MissingPidIsNotFound) {
  Procfs procfs(root_, passwd_);
  EXPECT_TRUE(absl::IsNotFound(procfs.Read(31337, 0).status()));
  EXPECT_TRUE(absl::IsNotFound(procfs.Read(0, 0).status()));
  EXPECT_TRUE(absl::IsNotFound(procfs.Read(-1, 0).status()));
  EXPECT_TRUE(absl::IsNotFound(Procfs(dir_ + "/no-such-root", passwd_).Read(1, 0).status()));
}

TEST_F(FakeProcTest, KernelThreadHasNoExe) {
  AddProcess(2, "kthreadd", 0, 0, "0::/\n", /*exe=*/"");
  absl::StatusOr<Identity> id = Procfs(root_, passwd_).Read(2, 0);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->exe, "");
  EXPECT_EQ(id->cgroup_path, "/");
}

TEST_F(FakeProcTest, UnnamedUidIsTheNumber) {
  AddProcess(20, "app", 1, 4000, "0::/\n");
  absl::StatusOr<Identity> id = Procfs(root_, passwd_).Read(20, NsPerTick());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->user, "4000");
}

TEST_F(FakeProcTest, MissingPasswdFileGivesTheNumber) {
  AddProcess(20, "app", 1, 1000, "0::/\n");
  absl::StatusOr<Identity> id = Procfs(root_, dir_ + "/no-passwd").Read(20, NsPerTick());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->user, "1000");
}

// The passwd file is read with fgetpwent_r, once per uid: the same uid (named or not) again
// costs a stat, not a read, until the file changes.
TEST_F(FakeProcTest, UserNamesAreCachedPerUidUntilTheFileChanges) {
  UserNames users(passwd_);
  EXPECT_EQ(users.Lookup(1000), "alice");
  EXPECT_EQ(users.Lookup(1001), "bob");  // not the commented-out line before it
  EXPECT_EQ(users.file_reads(), 2u);
  EXPECT_EQ(users.Lookup(1000), "alice");
  EXPECT_EQ(users.Lookup(4000), "");
  EXPECT_EQ(users.Lookup(4000), "");
  EXPECT_EQ(users.file_reads(), 3u);  // one read for 4000, then cached as unnamed too

  // A user added later (useradd appends): the size changed, so 4000 is looked up again.
  std::ofstream(passwd_, std::ios::app) << "carol:x:4000:4000::/home/carol:/bin/sh\n";
  EXPECT_EQ(users.Lookup(4000), "carol");
  EXPECT_EQ(users.Lookup(1000), "alice");
  EXPECT_EQ(users.file_reads(), 5u);

  // Renamed in place, same size and inode: the new mtime alone drops the cache.
  std::stringstream read;
  read << std::ifstream(passwd_).rdbuf();
  std::string text = read.str();
  text.replace(text.find("alice:"), 6, "alicf:");
  Write(passwd_, text);
  const timespec later[2] = {{time(nullptr) + 100, 0}, {time(nullptr) + 100, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, passwd_.c_str(), later, 0), 0) << strerror(errno);
  EXPECT_EQ(users.Lookup(1000), "alicf");

  // Removed: every uid is unnamed; back again: named.
  fs::rename(passwd_, passwd_ + ".moved");
  EXPECT_EQ(users.Lookup(1000), "");
  fs::rename(passwd_ + ".moved", passwd_);
  EXPECT_EQ(users.Lookup(1000), "alicf");
}

TEST_F(FakeProcTest, UserAddedLaterGetsANameFromTheSameProcfs) {
  AddProcess(20, "app", 1, 4000, "0::/\n");
  Procfs procfs(root_, passwd_);
  absl::StatusOr<Identity> id = procfs.Read(20, NsPerTick());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->user, "4000");
  std::ofstream(passwd_, std::ios::app) << "carol:x:4000:4000::/home/carol:/bin/sh\n";
  id = procfs.Read(20, NsPerTick());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->user, "carol");
}

TEST_F(FakeProcTest, MalformedStatIsAnError) {
  struct Bad {
    std::string stat;
    std::string message;
  };
  const std::vector<Bad> bad = {
      {"", "no ')'"},
      {"30 (no closing paren S 1 2 3\n", "no ')'"},
      {"30 (trunc) S 1 30 30 0 -1 4194560 100 0 3 0 5 7 0 0 20 0 1 0\n", "truncated"},
      {"30 (x)", "truncated"},
      {"30 (x) S 1 30 30 0 -1 4194560 100 0 3 0 5 7 0 0 20 0 1 0 12x4 1\n", "not a number"},
      {"30 (x) S 1 30 30 0 -1 4194560 100 0 3 0 5 7 0 0 20 0 1 0 -5 1\n", "not a number"},
      {"30 (x) S 1 30 30 0 -1 4194560 100 0 3 0 5 7 0 0 20 0 1 0 99999999999999999999999 1\n",
       "not a number"},
  };
  Procfs procfs(root_, passwd_);
  for (const Bad& b : bad) {
    SCOPED_TRACE(b.stat);
    AddProcess(30, "x", 1, 0, "0::/\n");
    Write(PidDir(30) + "/stat", b.stat);
    absl::StatusOr<Identity> id = procfs.Read(30, NsPerTick());
    ASSERT_FALSE(id.ok());
    EXPECT_EQ(id.status().code(), absl::StatusCode::kDataLoss) << id.status();
    EXPECT_THAT(std::string(id.status().message()), HasSubstr(b.message));
    EXPECT_THAT(std::string(id.status().message()), HasSubstr("/30/stat"));
    fs::remove_all(PidDir(30));
  }
}

TEST_F(FakeProcTest, MalformedStatusIsAnError) {
  AddProcess(40, "x", 1, 0, "0::/\n");
  Procfs procfs(root_, passwd_);
  Write(PidDir(40) + "/status", "Name:\tx\nGid:\t0\t0\t0\t0\n");
  absl::StatusOr<Identity> id = procfs.Read(40, NsPerTick());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kDataLoss) << id.status();
  EXPECT_THAT(std::string(id.status().message()), HasSubstr("no Uid line"));

  Write(PidDir(40) + "/status", "Uid:\tbob\t0\t0\t0\n");
  id = procfs.Read(40, NsPerTick());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kDataLoss) << id.status();
  EXPECT_THAT(std::string(id.status().message()), HasSubstr("bad Uid line"));
}

TEST_F(FakeProcTest, ProcessGoneMidReadIsNotFound) {
  AddProcess(50, "x", 1, 0, "0::/\n");
  fs::remove(PidDir(50) + "/cgroup");
  EXPECT_TRUE(absl::IsNotFound(Procfs(root_, passwd_).Read(50, NsPerTick()).status()));
}

TEST_F(FakeProcTest, Cmdline) {
  AddProcess(60, "nginx", 1, 0, "0::/\n");
  Procfs procfs(root_, passwd_);
  Write(PidDir(60) + "/cmdline", "nginx: master\0-g\0daemon off;\0"s);
  absl::StatusOr<std::string> cmdline = procfs.ReadCmdline(60);
  ASSERT_TRUE(cmdline.ok()) << cmdline.status();
  EXPECT_EQ(*cmdline, "nginx: master -g daemon off;");

  Write(PidDir(60) + "/cmdline", "postgres: checkpointer\0\0\0\0"s);  // rewritten argv
  EXPECT_EQ(procfs.ReadCmdline(60).value_or("error"), "postgres: checkpointer");

  Write(PidDir(60) + "/cmdline", "");  // kernel thread
  EXPECT_EQ(procfs.ReadCmdline(60).value_or("error"), "");

  EXPECT_TRUE(absl::IsNotFound(procfs.ReadCmdline(61).status()));
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The pure parsers on their own (tests/fuzz/ feeds them arbitrary bytes).
TEST(ProcfsParsersTest, StartTicksCountsFieldsFromTheLastParenthesis) {
  std::string stat = "7 (a) (b) R";
  for (int field = 4; field <= 21; ++field) stat += " 0";
  stat += " 4242 99\n";
  absl::StatusOr<uint64_t> ticks = ParseStartTicks(stat, "stat");
  ASSERT_TRUE(ticks.ok()) << ticks.status();
  EXPECT_EQ(*ticks, 4242u);
  EXPECT_EQ(ParseStartTicks("7 (x R 1 2", "stat").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParseStartTicks("7 (x) R 1 2", "stat").status().code(), absl::StatusCode::kDataLoss);
}

TEST(ProcfsParsersTest, UidPasswdAndCmdline) {
  EXPECT_EQ(*ParseRealUid("Name:\tx\nUid:\t1000\t0\t0\t0\n", "status"), 1000u);
  EXPECT_FALSE(ParseRealUid("Uid:\tabc\n", "status").ok());
  EXPECT_FALSE(ParseRealUid("Name:\tx\n", "status").ok());
  const std::string passwd = "# comment\nroot:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/:/bin/sh\n";
  EXPECT_EQ(UserNameInPasswd(passwd, 1000), "alice");
  EXPECT_EQ(UserNameInPasswd(passwd, 0), "root");
  EXPECT_EQ(UserNameInPasswd(passwd, 7), "");
  EXPECT_EQ(UserNameInPasswd("", 0), "");
  EXPECT_EQ(UserNameInPasswd("last:x:7:7", 7), "last");  // no final newline
  // Skipped: an empty name, NIS compat entries, a bad uid, a line too long for any buffer; the
  // first entry of a uid wins; a line longer than the first buffer (1 KiB) is read whole.
  const std::string odd =
      ":x:5:5::/:/bin/sh\n+nis\n+:x:5:5::/:/\n-old:x:5:5::/:/\nneg:x:-5:0::/:/\n" +
      std::string("huge:x:5:5:") + std::string(2 << 20, 'g') + "::/:/\n" +
      "long:x:6:6:" + std::string(5000, 'g') + "::/:/\n" +
      "five:x:5:5::/:/bin/sh\nfive-again:x:5:5::/:/\n";
  EXPECT_EQ(UserNameInPasswd(odd, 5), "five");
  EXPECT_EQ(UserNameInPasswd(odd, 6), "long");
  EXPECT_EQ(UserNameInPasswd(odd, 0), "");  // "+nis" has no uid: not uid 0
  EXPECT_EQ(JoinCmdline(std::string("a\0b c\0\0\0", 9)), "a b c");
  EXPECT_EQ(JoinCmdline(""), "");
}

TEST(RealProcTest, ReadsThisProcess) {
  const std::string stat = ReadAll("/proc/self/stat");
  std::vector<std::string> fields =
      absl::StrSplit(stat.substr(stat.rfind(')') + 2), ' ', absl::SkipEmpty());
  ASSERT_GT(fields.size(), 19u);
  uint64_t ticks = 0;
  ASSERT_TRUE(absl::SimpleAtoi(fields[19], &ticks)) << fields[19];
  const uint64_t start_ns = ticks * NsPerTick();

  Procfs procfs;
  absl::StatusOr<Identity> id = procfs.Read(getpid(), start_ns);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_TRUE(id->resolved);
  EXPECT_EQ(id->exe, fs::read_symlink("/proc/self/exe").string());
  EXPECT_FALSE(id->exe.empty());
  if (getuid() == 0) {
    EXPECT_EQ(id->user, "root");
  }
  EXPECT_EQ(id->cgroup_path, ChooseCgroupPath(ReadAll("/proc/self/cgroup")));
  EXPECT_EQ(id->cgroup.container_id, ParseCgroupPath(id->cgroup_path).container_id);

  EXPECT_TRUE(absl::IsNotFound(procfs.Read(getpid(), start_ns + NsPerTick()).status()));

  absl::StatusOr<std::string> cmdline = procfs.ReadCmdline(getpid());
  ASSERT_TRUE(cmdline.ok()) << cmdline.status();
  EXPECT_THAT(*cmdline, testing::StartsWith(program_invocation_name));  // argv[0]
}

}  // namespace
}  // namespace procscope

namespace procscope {
namespace {

TEST(PressureTest, SomeAvg10OfTheKernelsFormat) {
  const char kCpu[] =
      "some avg10=12.34 avg60=5.00 avg300=1.00 total=123456\n"
      "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
  absl::StatusOr<double> v = ParsePressureSomeAvg10(kCpu, "cpu");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_DOUBLE_EQ(*v, 12.34);
  EXPECT_DOUBLE_EQ(*ParsePressureSomeAvg10("full avg10=9\nsome avg10=0.00 total=1", "cpu"), 0);
  EXPECT_FALSE(ParsePressureSomeAvg10("", "cpu").ok());
  EXPECT_FALSE(ParsePressureSomeAvg10("some avg60=1.0", "cpu").ok());
  EXPECT_FALSE(ParsePressureSomeAvg10("some avg10=abc", "cpu").ok());
  EXPECT_FALSE(ParsePressureSomeAvg10("some avg10=150", "cpu").ok());
  EXPECT_EQ(ParsePressureSomeAvg10("x", "/proc/pressure/cpu").status().message(),
            "/proc/pressure/cpu: no \"some avg10=\" value");
}

TEST(PressureTest, ReadsTheFileUnderTheProcRoot) {
  const std::string root = ::testing::TempDir() + "/psi_root_" + std::to_string(getpid());
  ASSERT_EQ(system(("mkdir -p " + root + "/pressure").c_str()), 0);
  Procfs fs(root);
  EXPECT_FALSE(fs.ReadCpuPressure().ok());  // no PSI
  FILE* f = fopen((root + "/pressure/cpu").c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("some avg10=41.50 avg60=1 avg300=1 total=9\n", f);
  fclose(f);
  absl::StatusOr<double> v = fs.ReadCpuPressure();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_DOUBLE_EQ(*v, 41.5);
  (void)system(("rm -rf " + root).c_str());
}

}  // namespace
}  // namespace procscope
