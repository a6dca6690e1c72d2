// SPDX-License-Identifier: Apache-2.0
// common/: logging (level filter, rate limit, whole lines), HumanBytes, ScopedFd, ReadToEof.
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_split.h"
#include "fd.h"
#include "file.h"
#include "gtest/gtest.h"
#include "log.h"
#include "text.h"

namespace procscope {
namespace {

// Captures what the logger writes to stderr (fd 2) while it lives.
class StderrCapture {
 public:
  StderrCapture() {
    char path[] = "/tmp/procscope-log-test.XXXXXX";
    file_ = mkstemp(path);
    unlink(path);
    saved_ = dup(STDERR_FILENO);
    dup2(file_, STDERR_FILENO);
  }
  ~StderrCapture() {
    dup2(saved_, STDERR_FILENO);
    close(saved_);
    close(file_);
  }
  std::string Text() {
    lseek(file_, 0, SEEK_SET);
    return ReadToEof(file_, "capture").value_or("");
  }

 private:
  int file_ = -1;
  int saved_ = -1;
};

class LogTest : public ::testing::Test {
 protected:
  void TearDown() override { SetLogLevel(LogLevel::kInfo); }
};

TEST_F(LogTest, OneLinePerMessageWithTheProgramName) {
  StderrCapture cap;
  LOG(INFO) << "collecting; serving " << 9750;
  LOG(WARNING) << "two\n";  // a trailing newline is not doubled
  EXPECT_EQ(cap.Text(), "procscoped: collecting; serving 9750\nprocscoped: two\n");
}

TEST_F(LogTest, LevelFilterDropsAndDoesNotEvaluate) {
  StderrCapture cap;
  SetLogLevel(LogLevel::kWarning);
  int evaluated = 0;
  auto side_effect = [&] { return ++evaluated; };
  LOG(INFO) << "hidden " << side_effect();
  LOG(DEBUG) << "hidden " << side_effect();
  LOG(ERROR) << "shown " << side_effect();
  EXPECT_EQ(evaluated, 1);
  EXPECT_EQ(cap.Text(), "procscoped: shown 1\n");
}

TEST_F(LogTest, RateLimitedSiteSaysWhatItHeldBack) {
  StderrCapture cap;
  for (int i = 0; i < 5; ++i) {
    LOG_EVERY_N_SEC(WARNING, 0.2) << "disk full " << i;
  }
  LOG_EVERY_N_SEC(WARNING, 0.2) << "other site";  // a site of its own: not limited by the first
  std::vector<std::string> lines = absl::StrSplit(cap.Text(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << cap.Text();
  EXPECT_EQ(lines[0], "procscoped: disk full 0");
  EXPECT_EQ(lines[1], "procscoped: other site");
}

TEST_F(LogTest, RateLimitCountsHeldBackMessages) {
  StderrCapture cap;
  auto site = [](int i) { LOG_EVERY_N_SEC(ERROR, 0.1) << "write failed " << i; };
  site(0);
  site(1);
  site(2);
  usleep(150 * 1000);
  site(3);
  EXPECT_EQ(cap.Text(),
            "procscoped: write failed 0\n"
            "procscoped: write failed 3 (2 more like it not shown)\n");
}

TEST(LogLevelTest, Parse) {
  EXPECT_EQ(*ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_EQ(*ParseLogLevel("WARN"), LogLevel::kWarning);
  EXPECT_EQ(*ParseLogLevel("error"), LogLevel::kError);
  auto bad = ParseLogLevel("loud");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("debug, info, warning or error"), std::string::npos);
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarning, LogLevel::kError}) {
    EXPECT_EQ(*ParseLogLevel(LogLevelName(l)), l);
  }
}

TEST(HumanBytesTest, Units) {
  EXPECT_EQ(HumanBytes(0), "0B");
  EXPECT_EQ(HumanBytes(512), "512B");
  EXPECT_EQ(HumanBytes(1536), "1.5KiB");
  EXPECT_EQ(HumanBytes(1048575), "1.0MiB");  // not "1024.0KiB"
  EXPECT_EQ(HumanBytes(12 << 20, " "), "12.0 MiB");
  EXPECT_EQ(HumanBytes(-5), "0B");
  EXPECT_EQ(HumanBytes(0.0 / 0.0), "0B");
}

TEST(FileTest, ReadToEofAndLimit) {
  char path[] = "/tmp/procscope-file-test.XXXXXX";
  ScopedFd fd(mkstemp(path));
  ASSERT_TRUE(fd.valid());
  unlink(path);
  const std::string data(10000, 'x');
  ASSERT_EQ(write(fd.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
  lseek(fd.get(), 0, SEEK_SET);
  EXPECT_EQ(*ReadToEof(fd.get(), "f"), data);
  lseek(fd.get(), 0, SEEK_SET);
  EXPECT_TRUE(absl::IsOutOfRange(ReadToEof(fd.get(), "f", 9999).status()));
  EXPECT_TRUE(absl::IsNotFound(ReadFileAt(AT_FDCWD, "/nonexistent/x", "x").status()));
}

TEST(ScopedFdTest, ClosesAndMoves) {
  int raw = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(raw, 0);
  {
    ScopedFd a(raw);
    ScopedFd b(std::move(a));
    EXPECT_FALSE(a.valid());
    EXPECT_EQ(b.get(), raw);
  }
  EXPECT_EQ(fcntl(raw, F_GETFD), -1);  // closed once b went
  ScopedFd c(open("/dev/null", O_RDONLY | O_CLOEXEC));
  const int kept = c.release();
  EXPECT_FALSE(c.valid());
  EXPECT_GE(fcntl(kept, F_GETFD), 0);
  close(kept);
}

}  // namespace
}  // namespace procscope
