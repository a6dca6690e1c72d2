// SPDX-License-Identifier: Apache-2.0
// Tier 1: the on-disk exit journal (daemon/journal.h) in a scratch directory: round trip,
// rotation, recovery from a damaged tail, and errors.
#include "journal.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "procscope.pb.h"

namespace procscope {
namespace {

namespace fs = std::filesystem;
using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;

constexpr uint64_t kMax = 4096;

// An event with fields derived from `i`, so that a mixed-up or damaged record shows.
v1::ExitEvent Event(uint32_t i) {
  v1::ExitEvent e;
  e.set_pid(1000 + i);
  e.set_ppid(1);
  e.set_comm(absl::StrCat("proc-", i));
  e.set_group("batch");
  e.set_container(std::string(64, 'c'));
  e.set_outcome(i % 2 == 0 ? v1::SUCCESS : v1::CRASHED);
  e.set_signal(i % 2 == 0 ? 0 : 11);
  e.set_signal_name(i % 2 == 0 ? "" : "SIGSEGV");
  e.set_start_time_unix_ns(1'700'000'000'000'000'000 + i);
  e.set_exit_time_unix_ns(1'700'000'001'000'000'000 + i);
  e.set_lifetime_seconds(1.0 + i);
  e.set_cpu_seconds(0.5 * i);
  e.set_read_bytes(4096ull * i);
  return e;
}

std::vector<v1::ExitEvent> Events(uint32_t first, uint32_t count) {
  std::vector<v1::ExitEvent> out;
  for (uint32_t i = first; i < first + count; ++i) out.push_back(Event(i));
  return out;
}

// The journal bytes of one record: varint size, then the message.
uint64_t RecordSize(const v1::ExitEvent& e) {
  const size_t n = e.ByteSizeLong();
  return n + (n < 128 ? 1 : 2);
}

void ExpectSameEvents(const std::vector<v1::ExitEvent>& got,
                      const std::vector<v1::ExitEvent>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(got[i], want[i]))
        << "record " << i << ": got " << got[i].ShortDebugString() << ", want "
        << want[i].ShortDebugString();
  }
}

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "journal_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/state/journal";
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(root_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(root_, ec);
  }

  std::string Current() const { return dir_ + "/events.journal"; }
  std::string Rotated() const { return dir_ + "/events.journal.1"; }

  // Opens, appends `events`, flushes and closes.
  void Write(const std::vector<v1::ExitEvent>& events) {
    absl::StatusOr<Journal> j = Journal::Open(dir_, kMax);
    ASSERT_TRUE(j.ok()) << j.status();
    for (const v1::ExitEvent& e : events) ASSERT_TRUE(j->Append(e).ok());
    ASSERT_TRUE(j->Flush().ok());
  }

  static void AppendBytes(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::app) << bytes;
  }

  std::string root_;
  std::string dir_;
};

TEST_F(JournalTest, RoundTrip) {
  const std::vector<v1::ExitEvent> events = Events(0, 20);
  Write(events);
  absl::StatusOr<Journal> j = Journal::Open(dir_, kMax);
  ASSERT_TRUE(j.ok()) << j.status();
  ExpectSameEvents(j->Recovered(), events);
  EXPECT_EQ(j->DroppedBytes(), 0u);
  EXPECT_EQ(j->path(), Current());
  EXPECT_FALSE(fs::exists(Rotated()));
}

TEST_F(JournalTest, ReopenAndAppendKeepsOrder) {
  Write(Events(0, 3));
  Write(Events(3, 4));
  absl::StatusOr<Journal> j = Journal::Open(dir_, kMax);
  ASSERT_TRUE(j.ok()) << j.status();
  ExpectSameEvents(j->Recovered(), Events(0, 7));
}

TEST_F(JournalTest, NewDirectoryAndMissingFiles) {
  absl::StatusOr<Journal> j = Journal::Open(dir_, kMax);
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_TRUE(j->Recovered().empty());
  EXPECT_EQ(j->DroppedBytes(), 0u);
  struct stat st;
  ASSERT_EQ(stat(dir_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0027, 0u) << "directory open to others";
  EXPECT_TRUE(fs::exists(Current()));
}

TEST_F(JournalTest, EmptyFiles) {
  fs::create_directories(dir_);
  AppendBytes(Current(), "");
  AppendBytes(Rotated(), "");
  absl::StatusOr<Journal> j = Journal::Open(dir_, kMax);
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_TRUE(j->Recovered().empty());
  EXPECT_EQ(j->DroppedBytes(), 0u);
}

TEST_F(JournalTest, RotationBoundsDiskUseAndKeepsTheNewest) {
  const uint32_t n = 120;  // about 3 files' worth
  uint64_t largest = 0;
  {
    absl::StatusOr<Journal> j = Journal::Open(dir_, kMax);
    ASSERT_TRUE(j.ok()) << j.status();
    for (uint32_t i = 0; i < n; ++i) {
      ASSERT_TRUE(j->Append(Event(i)).ok());
      ASSERT_TRUE(j->Flush().ok());
      largest = std::max(largest, RecordSize(Event(i)));
      const uint64_t current = fs::file_size(Current());
      const uint64_t rotated = fs::exists(Rotated()) ? fs::file_size(Rotated()) : 0;
      ASSERT_LE(current, kMax);
      ASSERT_LE(rotated, kMax);
      ASSERT_LT(current + rotated, 2 * kMax);
    }
  }
  ASSERT_TRUE(fs::exists(Rotated()));
  absl::StatusOr<Journal> j = Journal::Open(dir_, kMax);
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(j->DroppedBytes(), 0u);
  const std::vector<v1::ExitEvent>& got = j->Recovered();
  // A contiguous run of the newest records, at least one full file of them.
  ASSERT_GE(got.size() * largest, kMax - largest);
  ASSERT_LT(got.size(), n);
  ExpectSameEvents(got, Events(n - got.size(), got.size()));
}

TEST_F(JournalTest, TruncatedTailIsDroppedAndCut) {
  const std::vector<v1::ExitEvent> events = Events(0, 10);
  Write(events);
  const uint64_t full = fs::file_size(Current());
  const uint64_t last = RecordSize(events.back());
  fs::resize_file(Current(), full - 5);  // a crash in the middle of the last record

  {
    absl::StatusOr<Journal> j = Journal::Open(dir_, kMax);
    ASSERT_TRUE(j.ok()) << j.status();
    ExpectSameEvents(j->Recovered(), Events(0, 9));
    EXPECT_EQ(j->DroppedBytes(), last - 5);
    EXPECT_EQ(fs::file_size(Current()), full - last);
    ASSERT_TRUE(j->Append(Event(100)).ok());
    ASSERT_TRUE(j->Append(Event(101)).ok());
    ASSERT_TRUE(j->Flush().ok());
  }
  absl::StatusOr<Journal> j = Journal::Open(dir_, kMax);
  ASSERT_TRUE(j.ok()) << j.status();
  std::vector<v1::ExitEvent> want = Events(0, 9);
  want.push_back(Event(100));
  want.push_back(Event(101));
  ExpectSameEvents(j->Recovered(), want);
  EXPECT_EQ(j->DroppedBytes(), 0u);
}

TEST_F(JournalTest, DamagedRotatedFileKeepsItsGoodPrefixAndTheCurrentFile) {
  Write(Events(0, 60));  // past one rotation
  ASSERT_TRUE(fs::exists(Rotated()));
  std::vector<v1::ExitEvent> before;
  {
    absl::StatusOr<Journal> j = Journal::Open(dir_, kMax);
    ASSERT_TRUE(j.ok()) << j.status();
    before = j->Recovered();
  }
  // The records of the rotated file come first; find where it ends.
  const uint64_t rotated_size = fs::file_size(Rotated());
  size_t rotated_count = 0;
  for (uint64_t bytes = 0; bytes < rotated_size && rotated_count < before.size(); ++rotated_count) {
    bytes += RecordSize(before[rotated_count]);
  }
  ASSERT_GT(rotated_count, 0u);
  ASSERT_LT(rotated_count, before.size());

  fs::resize_file(Rotated(), rotated_size - 1);
  absl::StatusOr<Journal> j = Journal::Open(dir_, kMax);
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(j->DroppedBytes(), RecordSize(before[rotated_count - 1]) - 1);
  // Every record but the rotated file's last one.
  std::vector<v1::ExitEvent> want = before;
  want.erase(want.begin() + rotated_count - 1);
  ExpectSameEvents(j->Recovered(), want);
}

// Bytes after the last good record, as a crash or a stray write could leave them.
struct Garbage {
  const char* name;
  std::string bytes;
};

// A well-formed record, but bigger than any real one can be: only the size cap rejects it.
std::string OversizedRecord() {
  v1::ExitEvent e;
  e.set_comm(std::string((1 << 20) + 1, 'x'));
  std::string rec;
  {
    google::protobuf::io::StringOutputStream zero_copy(&rec);
    google::protobuf::io::CodedOutputStream out(&zero_copy);
    out.WriteVarint32(static_cast<uint32_t>(e.ByteSizeLong()));
    e.SerializeWithCachedSizes(&out);
  }
  return rec;
}

class JournalGarbageTest : public JournalTest, public ::testing::WithParamInterface<Garbage> {};

TEST_P(JournalGarbageTest, GoodRecordsKeptGarbageCut) {
  const std::vector<v1::ExitEvent> events = Events(0, 5);
  Write(events);
  const uint64_t good = fs::file_size(Current());
  AppendBytes(Current(), GetParam().bytes);
  ASSERT_EQ(fs::file_size(Current()), good + GetParam().bytes.size());

  {
    absl::StatusOr<Journal> j = Journal::Open(dir_, kMax);
    ASSERT_TRUE(j.ok()) << j.status();
    ExpectSameEvents(j->Recovered(), events);
    EXPECT_EQ(j->DroppedBytes(), GetParam().bytes.size());
    EXPECT_EQ(fs::file_size(Current()), good);
    ASSERT_TRUE(j->Append(Event(7)).ok());
    ASSERT_TRUE(j->Flush().ok());
  }
  absl::StatusOr<Journal> j = Journal::Open(dir_, kMax);
  ASSERT_TRUE(j.ok()) << j.status();
  std::vector<v1::ExitEvent> want = events;
  want.push_back(Event(7));
  ExpectSameEvents(j->Recovered(), want);
  EXPECT_EQ(j->DroppedBytes(), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Tails, JournalGarbageTest,
    ::testing::Values(Garbage{"text", "garbage written by something else\n"},
                      Garbage{"length_past_eof", std::string("\x40", 1) + "abc"},
                      Garbage{"absurd_length", std::string("\xff\xff\xff\xff\x0f", 5) + "xyz"},
                      Garbage{"record_over_1mib", OversizedRecord()},
                      Garbage{"bad_varint", std::string(11, '\x80')},
                      Garbage{"unparsable_record", std::string("\x03\xff\xff\xff", 4)},
                      Garbage{"invalid_utf8_comm", std::string("\x03\x1a\x01\xff", 4)},
                      Garbage{"zero_fill", std::string(512, '\0')}),
    [](const ::testing::TestParamInfo<Garbage>& info) { return info.param.name; });

TEST_F(JournalTest, WriteErrorLeavesNoHalfRecord) {
  Write(Events(0, 3));
  const uint64_t good = fs::file_size(Current());
  {
    absl::StatusOr<Journal> j = Journal::Open(dir_, kMax);
    ASSERT_TRUE(j.ok()) << j.status();
    // The file size limit makes write(2) stop mid-record with EFBIG, as a full disk would.
    struct rlimit old;
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
    sighandler_t old_handler = signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = old;
    lim.rlim_cur = good + 100;
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
    absl::Status s;
    for (uint32_t i = 3; i < 8 && s.ok(); ++i) s = j->Append(Event(i));
    if (s.ok()) s = j->Flush();
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_handler);
    ASSERT_FALSE(s.ok());
    EXPECT_THAT(std::string(s.message()), HasSubstr(Current()));
    EXPECT_EQ(fs::file_size(Current()), good);

    // The journal goes on after the failure.
    ASSERT_TRUE(j->Append(Event(50)).ok());
    ASSERT_TRUE(j->Flush().ok());
  }
  absl::StatusOr<Journal> j = Journal::Open(dir_, kMax);
  ASSERT_TRUE(j.ok()) << j.status();
  std::vector<v1::ExitEvent> want = Events(0, 3);
  want.push_back(Event(50));
  ExpectSameEvents(j->Recovered(), want);
  EXPECT_EQ(j->DroppedBytes(), 0u);
}

TEST_F(JournalTest, DirectoryUnderARegularFile) {
  const std::string file = root_ + "/plain";
  AppendBytes(file, "x");
  const std::string dir = file + "/journal";
  absl::StatusOr<Journal> j = Journal::Open(dir, kMax);
  ASSERT_FALSE(j.ok());
  const std::string msg(j.status().message());
  EXPECT_THAT(msg, HasSubstr(dir));
  EXPECT_THAT(msg, HasSubstr(strerror(ENOTDIR)));
  EXPECT_EQ(msg.find('\n'), std::string::npos);
}

TEST_F(JournalTest, DirectoryIsARegularFile) {
  fs::create_directories(root_);
  AppendBytes(root_ + "/plain", "x");
  absl::StatusOr<Journal> j = Journal::Open(root_ + "/plain", kMax);
  ASSERT_FALSE(j.ok());
  EXPECT_THAT(std::string(j.status().message()), HasSubstr(root_ + "/plain"));
}

TEST_F(JournalTest, ReadOnlyDirectory) {
  fs::create_directories(dir_);
  fs::permissions(dir_, fs::perms::owner_read | fs::perms::owner_exec);
  auto denied = [&] {
    absl::StatusOr<Journal> j = Journal::Open(dir_, kMax);
    return !j.ok() && j.status().code() == absl::StatusCode::kPermissionDenied &&
           std::string(j.status().message()).find(dir_) != std::string::npos;
  };
  if (geteuid() != 0) {
    EXPECT_TRUE(denied());
    return;
  }
  // Root writes anywhere: check as an unprivileged user, in a child, who can reach the
  // directory but not write in it.
  for (const std::string& d : {root_, root_ + "/state"}) {
    fs::permissions(d, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                           fs::perms::others_read | fs::perms::others_exec);
  }
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    _exit(denied() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}

TEST_F(JournalTest, MaxBytesTooSmall) {
  absl::StatusOr<Journal> j = Journal::Open(dir_, 4095);
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir_));
  EXPECT_TRUE(Journal::Open(dir_, 4096).ok());
}

TEST_F(JournalTest, EmptyRecordRefused) {
  absl::StatusOr<Journal> j = Journal::Open(dir_, kMax);
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(j->Append(v1::ExitEvent()).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(j->Flush().ok());
  EXPECT_EQ(fs::file_size(Current()), 0u);
}

TEST_F(JournalTest, MovedJournalWritesMovedFromRefuses) {
  absl::StatusOr<Journal> opened = Journal::Open(dir_, kMax);
  ASSERT_TRUE(opened.ok()) << opened.status();
  Journal j = std::move(*opened);
  ASSERT_TRUE(j.Append(Event(1)).ok());
  ASSERT_TRUE(j.Flush().ok());
  EXPECT_EQ(opened->Append(Event(2)).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(fs::file_size(Current()), RecordSize(Event(1)));
}

}  // namespace
}  // namespace procscope
