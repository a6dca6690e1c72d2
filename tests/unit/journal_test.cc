// SPDX-License-Identifier: Apache-2.0
// Tier 1: the on-disk exit journal (daemon/journal.h) in a scratch directory: round trip,
// rotation, damage anywhere, the previous format, hostile names, bad file types, a full disk,
// bounded memory, and errors.
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

#include <zlib.h>
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

#include <functional>
#include <iterator>

#include "gmock/gmock.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/stubs/logging.h"
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

constexpr size_t kFileHeaderBytes = 8;  // "PSJRNL2\n"
constexpr size_t kRecordHeaderBytes = 12;

// The journal bytes of one record: magic, length, CRC, then the message.
uint64_t RecordSize(const v1::ExitEvent& e) { return kRecordHeaderBytes + e.ByteSizeLong(); }

void ExpectSameEvents(const std::vector<v1::ExitEvent>& got,
                      const std::vector<v1::ExitEvent>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(got[i], want[i]))
        << "record " << i << ": got " << got[i].ShortDebugString() << ", want "
        << want[i].ShortDebugString();
  }
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// The previous format: varint size, then the message, no header.
std::string LegacyRecord(const std::string& message) {
  std::string rec;
  {
    google::protobuf::io::StringOutputStream zero_copy(&rec);
    google::protobuf::io::CodedOutputStream out(&zero_copy);
    out.WriteVarint32(static_cast<uint32_t>(message.size()));
    out.WriteRaw(message.data(), static_cast<int>(message.size()));
  }
  return rec;
}

// Counts libprotobuf's log lines (an invalid UTF-8 string logs an ERROR line at each
// serialisation and parse) while it lives.
class ProtobufLogCounter {
 public:
  ProtobufLogCounter() {
    count_ = 0;
    old_ = google::protobuf::SetLogHandler(
        [](google::protobuf::LogLevel, const char*, int, const std::string&) { ++count_; });
  }
  ~ProtobufLogCounter() { google::protobuf::SetLogHandler(old_); }
  int count() const { return count_; }

 private:
  static inline int count_ = 0;
  google::protobuf::LogHandler* old_;
};

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

  // Opens the journal, collecting what it recovers into recovered_ and its log into log_.
  absl::StatusOr<Journal> Open(uint64_t max_bytes = kMax) {
    recovered_.clear();
    log_.clear();
    return Journal::Open(
        dir_, max_bytes, [this](v1::ExitEvent&& e) { recovered_.push_back(std::move(e)); },
        [this](absl::string_view line) { log_.emplace_back(line); });
  }

  // Opens, appends `events`, flushes and closes.
  void Write(const std::vector<v1::ExitEvent>& events) {
    absl::StatusOr<Journal> j = Open();
    ASSERT_TRUE(j.ok()) << j.status();
    for (const v1::ExitEvent& e : events) ASSERT_TRUE(j->Append(e).ok());
    ASSERT_TRUE(j->Flush().ok());
  }

  std::vector<std::string> DamagedCopies() const {
    std::vector<std::string> out;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      const std::string name = entry.path().filename().string();
      if (name.find(".damaged-") != std::string::npos) out.push_back(entry.path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  static void AppendBytes(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::app) << bytes;
  }

  std::string root_;
  std::string dir_;
  std::vector<v1::ExitEvent> recovered_;
  std::vector<std::string> log_;
};

TEST_F(JournalTest, RoundTrip) {
  const std::vector<v1::ExitEvent> events = Events(0, 20);
  Write(events);
  uint64_t bytes = kFileHeaderBytes;
  for (const v1::ExitEvent& e : events) bytes += RecordSize(e);
  EXPECT_EQ(fs::file_size(Current()), bytes);
  EXPECT_EQ(ReadAll(Current()).substr(0, kFileHeaderBytes), "PSJRNL2\n");
  absl::StatusOr<Journal> j = Open();
  ASSERT_TRUE(j.ok()) << j.status();
  ExpectSameEvents(recovered_, events);
  EXPECT_EQ(j->RecoveredRecords(), events.size());
  EXPECT_EQ(j->DamagedBytes(), 0u);
  EXPECT_EQ(j->DroppedBytes(), 0u);
  EXPECT_TRUE(log_.empty()) << log_[0];
  EXPECT_EQ(j->path(), Current());
  EXPECT_FALSE(fs::exists(Rotated()));
}

TEST_F(JournalTest, ReopenAndAppendKeepsOrder) {
  Write(Events(0, 3));
  Write(Events(3, 4));
  absl::StatusOr<Journal> j = Open();
  ASSERT_TRUE(j.ok()) << j.status();
  ExpectSameEvents(recovered_, Events(0, 7));
}

TEST_F(JournalTest, NewDirectoryAndMissingFiles) {
  absl::StatusOr<Journal> j = Open();
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_TRUE(recovered_.empty());
  EXPECT_EQ(j->DamagedBytes(), 0u);
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
  absl::StatusOr<Journal> j = Open();
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_TRUE(recovered_.empty());
  EXPECT_EQ(j->DamagedBytes(), 0u);
  EXPECT_TRUE(log_.empty());
}

TEST_F(JournalTest, RotationBoundsDiskUseAndKeepsTheNewest) {
  const uint32_t n = 120;  // about 3 files' worth
  uint64_t largest = 0;
  {
    absl::StatusOr<Journal> j = Open();
    ASSERT_TRUE(j.ok()) << j.status();
    for (uint32_t i = 0; i < n; ++i) {
      ASSERT_TRUE(j->Append(Event(i)).ok());
      ASSERT_TRUE(j->Flush().ok());
      largest = std::max(largest, RecordSize(Event(i)));
      const uint64_t current = fs::file_size(Current());
      const uint64_t rotated = fs::exists(Rotated()) ? fs::file_size(Rotated()) : 0;
      ASSERT_LE(current, kMax + kFileHeaderBytes);
      ASSERT_LE(rotated, kMax + kFileHeaderBytes);
      ASSERT_LT(current + rotated, 2 * kMax + 2 * kFileHeaderBytes);
    }
  }
  ASSERT_TRUE(fs::exists(Rotated()));
  EXPECT_EQ(ReadAll(Rotated()).substr(0, kFileHeaderBytes), "PSJRNL2\n");
  absl::StatusOr<Journal> j = Open();
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(j->DamagedBytes(), 0u);
  // A contiguous run of the newest records, at least one full file of them.
  ASSERT_GE(recovered_.size() * largest, kMax - largest);
  ASSERT_LT(recovered_.size(), n);
  ExpectSameEvents(recovered_, Events(n - recovered_.size(), recovered_.size()));
}

TEST_F(JournalTest, TruncatedTailIsCountedAndTheFileKeptAside) {
  const std::vector<v1::ExitEvent> events = Events(0, 10);
  Write(events);
  const uint64_t full = fs::file_size(Current());
  const uint64_t last = RecordSize(events.back());
  fs::resize_file(Current(), full - 5);  // a crash in the middle of the last record

  {
    absl::StatusOr<Journal> j = Open();
    ASSERT_TRUE(j.ok()) << j.status();
    ExpectSameEvents(recovered_, Events(0, 9));
    EXPECT_EQ(j->DamagedBytes(), last - 5);
    EXPECT_EQ(fs::file_size(Current()), full - last);
    // The damaged file is kept, untouched; one line says so.
    const std::vector<std::string> copies = DamagedCopies();
    ASSERT_EQ(copies.size(), 1u);
    EXPECT_EQ(fs::file_size(copies[0]), full - 5);
    ASSERT_EQ(log_.size(), 1u);
    EXPECT_THAT(log_[0], HasSubstr(absl::StrCat(last - 5, " damaged bytes")));
    EXPECT_THAT(log_[0], HasSubstr(copies[0]));
    ASSERT_TRUE(j->Append(Event(100)).ok());
    ASSERT_TRUE(j->Append(Event(101)).ok());
    ASSERT_TRUE(j->Flush().ok());
  }
  absl::StatusOr<Journal> j = Open();
  ASSERT_TRUE(j.ok()) << j.status();
  std::vector<v1::ExitEvent> want = Events(0, 9);
  want.push_back(Event(100));
  want.push_back(Event(101));
  ExpectSameEvents(recovered_, want);
  EXPECT_EQ(j->DamagedBytes(), 0u);
  EXPECT_TRUE(log_.empty()) << "logged once per damaged file, not at every start";
}

TEST_F(JournalTest, DamagedRotatedFileKeepsTheRestAndTheCurrentFile) {
  Write(Events(0, 60));  // past one rotation
  ASSERT_TRUE(fs::exists(Rotated()));
  std::vector<v1::ExitEvent> before;
  {
    absl::StatusOr<Journal> j = Open();
    ASSERT_TRUE(j.ok()) << j.status();
    before = recovered_;
  }
  // The records of the rotated file come first; damage its second record.
  const std::string rotated = ReadAll(Rotated());
  std::string damaged = rotated;
  const size_t second = kFileHeaderBytes + RecordSize(before[0]);
  damaged[second + kRecordHeaderBytes + 3] ^= 0x55;
  WriteAll(Rotated(), damaged);
  absl::StatusOr<Journal> j = Open();
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(j->DamagedBytes(), RecordSize(before[1]));
  std::vector<v1::ExitEvent> want = before;
  want.erase(want.begin() + 1);
  ExpectSameEvents(recovered_, want);
  ASSERT_EQ(DamagedCopies().size(), 1u);
  EXPECT_EQ(ReadAll(DamagedCopies()[0]), damaged);
}

// One flipped byte anywhere costs at most the record it lands in, never the records after it.
TEST_F(JournalTest, FlippedByteAtEveryOffsetCostsAtMostOneRecord) {
  const std::vector<v1::ExitEvent> events = Events(0, 12);
  Write(events);
  const std::string good = ReadAll(Current());
  uint64_t largest = 0;
  for (const v1::ExitEvent& e : events) largest = std::max(largest, RecordSize(e));
  for (size_t off = 0; off < good.size(); ++off) {
    for (unsigned char mask : {0x01, 0x80, 0xff}) {
      std::string bad = good;
      bad[off] = static_cast<char>(bad[off] ^ mask);
      std::vector<v1::ExitEvent> got;
      const uint64_t damaged =
          ParseJournalBytes(bad, [&](v1::ExitEvent&& e) { got.push_back(std::move(e)); });
      ASSERT_GE(got.size(), events.size() - 1) << "offset " << off << " mask " << int{mask};
      ASSERT_GT(damaged, 0u) << "offset " << off;
      ASSERT_LE(damaged, largest) << "offset " << off;
      // What comes back is the original records, in order.
      size_t k = 0;
      for (const v1::ExitEvent& e : got) {
        while (k < events.size() && !MessageDifferencer::Equals(e, events[k])) ++k;
        ASSERT_LT(k, events.size()) << "offset " << off << ": " << e.ShortDebugString();
        ++k;
      }
    }
  }
  // And through Open, for a sample of offsets.
  for (size_t off = 0; off < good.size(); off += 61) {
    std::string bad = good;
    bad[off] = static_cast<char>(bad[off] ^ 0x20);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    WriteAll(Current(), bad);
    absl::StatusOr<Journal> j = Open();
    ASSERT_TRUE(j.ok()) << j.status();
    ASSERT_GE(recovered_.size(), events.size() - 1) << "offset " << off;
    ASSERT_EQ(j->RecoveredRecords(), recovered_.size());
    // Appending after the damage works and reads back.
    ASSERT_TRUE(j->Append(Event(500)).ok());
    ASSERT_TRUE(j->Flush().ok());
    const size_t n = recovered_.size();
    ASSERT_TRUE(Open().ok());
    ASSERT_EQ(recovered_.size(), n + 1) << "offset " << off;
    EXPECT_TRUE(MessageDifferencer::Equals(recovered_.back(), Event(500)));
  }
}

// Bytes after or between good records, as a crash or a stray write could leave them.
struct Garbage {
  const char* name;
  std::string bytes;
};

std::string Frame(const std::string& payload, uint32_t crc_xor = 0) {
  std::string rec("\xF5PSR", 4);
  uint32_t len = static_cast<uint32_t>(payload.size());
  std::string len_bytes(4, '\0');
  for (int i = 0; i < 4; ++i) len_bytes[i] = static_cast<char>((len >> (8 * i)) & 0xff);
  uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(len_bytes.data()), 4);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(payload.data()), payload.size());
  const uint32_t c = static_cast<uint32_t>(crc) ^ crc_xor;
  rec += len_bytes;
  for (int i = 0; i < 4; ++i) rec.push_back(static_cast<char>((c >> (8 * i)) & 0xff));
  return rec + payload;
}

class JournalGarbageTest : public JournalTest, public ::testing::WithParamInterface<Garbage> {};

TEST_P(JournalGarbageTest, GoodRecordsOnBothSidesKept) {
  Write(Events(0, 5));
  AppendBytes(Current(), GetParam().bytes);
  // Records after the garbage, as a journal appended to after damage has them.
  std::string after;
  for (const v1::ExitEvent& e : Events(5, 3)) after += Frame(e.SerializeAsString());
  AppendBytes(Current(), after);

  {
    absl::StatusOr<Journal> j = Open();
    ASSERT_TRUE(j.ok()) << j.status();
    ExpectSameEvents(recovered_, Events(0, 8));
    EXPECT_EQ(j->DamagedBytes(), GetParam().bytes.size());
    ASSERT_TRUE(j->Append(Event(9)).ok());
    ASSERT_TRUE(j->Flush().ok());
  }
  absl::StatusOr<Journal> j = Open();
  ASSERT_TRUE(j.ok()) << j.status();
  std::vector<v1::ExitEvent> want = Events(0, 8);
  want.push_back(Event(9));
  ExpectSameEvents(recovered_, want);
  EXPECT_EQ(j->DamagedBytes(), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Tails, JournalGarbageTest,
    ::testing::Values(
        Garbage{"text", "garbage written by something else\n"},
        Garbage{"magic_alone", std::string("\xF5PSR", 4)},
        Garbage{"length_past_eof", std::string("\xF5PSR\x40\x00\x00\x00\x00\x00\x00\x00", 12)},
        Garbage{"absurd_length", std::string("\xF5PSR\xff\xff\xff\x7f\x00\x00\x00\x00", 12)},
        Garbage{"zero_length", std::string("\xF5PSR\x00\x00\x00\x00\x00\x00\x00\x00", 12)},
        Garbage{"bad_crc", Frame(Event(77).SerializeAsString(), 1)},
        Garbage{"intact_but_not_an_event", Frame(std::string("\x03\xff\xff\xff", 4))},
        Garbage{"file_header_again", "PSJRNL2\n"}, Garbage{"zero_fill", std::string(512, '\0')}),
    [](const ::testing::TestParamInfo<Garbage>& info) { return info.param.name; });

// The attack of issue 11: a process named with an invalid UTF-8 byte wiped the history. Every
// string field of the record, invalid, costs nothing: the record is kept (repaired), so are the
// records after it, and libprotobuf logs nothing.
TEST_F(JournalTest, InvalidUtf8InEveryStringFieldRoundTrips) {
  const google::protobuf::Descriptor* d = v1::ExitEvent::descriptor();
  std::vector<v1::ExitEvent> written;
  std::vector<v1::ExitEvent> want;
  ProtobufLogCounter protobuf_log;
  {
    absl::StatusOr<Journal> j = Open();
    ASSERT_TRUE(j.ok()) << j.status();
    for (int i = 0; i < d->field_count(); ++i) {
      const google::protobuf::FieldDescriptor* f = d->field(i);
      if (f->type() != google::protobuf::FieldDescriptor::TYPE_STRING) continue;
      v1::ExitEvent e = Event(static_cast<uint32_t>(i));
      e.GetReflection()->SetString(&e, f, "x\xff");
      ASSERT_TRUE(j->Append(e).ok()) << f->name();
      v1::ExitEvent fixed = e;
      e.GetReflection()->SetString(&fixed, f, "x\xEF\xBF\xBD");
      want.push_back(fixed);
      want.push_back(Event(100 + i));
      ASSERT_TRUE(j->Append(Event(100 + i)).ok());
    }
    ASSERT_TRUE(j->Flush().ok());
  }
  ASSERT_GE(want.size(), 2u * 6) << "comm, group, container, pod_uid, systemd_unit, signal_name";
  absl::StatusOr<Journal> j = Open();
  ASSERT_TRUE(j.ok()) << j.status();
  ExpectSameEvents(recovered_, want);
  EXPECT_EQ(j->DamagedBytes(), 0u);
  EXPECT_EQ(protobuf_log.count(), 0) << "libprotobuf logged about invalid UTF-8";
}

// Journals of the previous format (varint length + message) are read once and rewritten in the
// current one, including the raw invalid UTF-8 records that format let in.
TEST_F(JournalTest, PreviousFormatIsReadOnceAndUpgraded) {
  fs::create_directories(dir_);
  std::string old_rotated, old_current;
  for (const v1::ExitEvent& e : Events(0, 4)) old_rotated += LegacyRecord(e.SerializeAsString());
  v1::ExitEvent hostile = Event(4);
  hostile.set_comm("x");
  std::string raw = hostile.SerializeAsString();
  // comm "x" (0x1a 0x01 'x') becomes "\xff", as an unsanitised journal held it.
  const size_t at = raw.find(std::string("\x1a\x01x", 3));
  ASSERT_NE(at, std::string::npos);
  raw[at + 2] = '\xff';
  old_current += LegacyRecord(raw);
  for (const v1::ExitEvent& e : Events(5, 3)) old_current += LegacyRecord(e.SerializeAsString());
  WriteAll(Rotated(), old_rotated);
  WriteAll(Current(), old_current);

  std::vector<v1::ExitEvent> want = Events(0, 8);
  want[4].set_comm("\xEF\xBF\xBD");
  {
    ProtobufLogCounter protobuf_log;
    absl::StatusOr<Journal> j = Open();
    ASSERT_TRUE(j.ok()) << j.status();
    ExpectSameEvents(recovered_, want);
    EXPECT_EQ(j->DamagedBytes(), 0u);
    ASSERT_EQ(log_.size(), 2u);
    EXPECT_THAT(log_[0], HasSubstr("upgraded " + Rotated() + " from the previous format"));
    EXPECT_THAT(log_[1], HasSubstr("upgraded " + Current()));
    EXPECT_EQ(protobuf_log.count(), 0);
    ASSERT_TRUE(j->Append(Event(8)).ok());
    ASSERT_TRUE(j->Flush().ok());
  }
  EXPECT_EQ(ReadAll(Current()).substr(0, kFileHeaderBytes), "PSJRNL2\n");
  EXPECT_EQ(ReadAll(Rotated()).substr(0, kFileHeaderBytes), "PSJRNL2\n");
  absl::StatusOr<Journal> j = Open();
  ASSERT_TRUE(j.ok()) << j.status();
  want.push_back(Event(8));
  ExpectSameEvents(recovered_, want);
  EXPECT_TRUE(log_.empty());
  EXPECT_TRUE(DamagedCopies().empty());
}

TEST_F(JournalTest, PreviousFormatWithADamagedTail) {
  fs::create_directories(dir_);
  std::string old;
  for (const v1::ExitEvent& e : Events(0, 4)) old += LegacyRecord(e.SerializeAsString());
  old +=
      "\x40"
      "abc";
  WriteAll(Current(), old);
  absl::StatusOr<Journal> j = Open();
  ASSERT_TRUE(j.ok()) << j.status();
  ExpectSameEvents(recovered_, Events(0, 4));
  EXPECT_EQ(j->DamagedBytes(), 4u);
  ASSERT_EQ(DamagedCopies().size(), 1u);
  EXPECT_EQ(ReadAll(DamagedCopies()[0]), old);
  EXPECT_EQ(ReadAll(Current()).substr(0, kFileHeaderBytes), "PSJRNL2\n");
}

TEST_F(JournalTest, DamagedCopiesAreBounded) {
  for (int round = 0; round < Journal::kMaxDamagedFiles + 3; ++round) {
    Write(Events(round * 10, 2));
    AppendBytes(Current(), absl::StrCat("damage ", round));
    ASSERT_TRUE(Open().ok());
    ASSERT_EQ(log_.size(), 1u);
  }
  EXPECT_EQ(DamagedCopies().size(), static_cast<size_t>(Journal::kMaxDamagedFiles));
  // Every good record is still there.
  ASSERT_TRUE(Open().ok());
  EXPECT_EQ(recovered_.size(), 2u * (Journal::kMaxDamagedFiles + 3));
}

TEST_F(JournalTest, SymbolicLinksAreRefused) {
  for (const std::string& name : {std::string("events.journal"), std::string("events.journal.1")}) {
    fs::remove_all(root_ + "/state");
    fs::create_directories(dir_);
    const std::string target = root_ + "/precious";
    WriteAll(target, "someone else's file");
    fs::create_symlink(target, dir_ + "/" + name);
    absl::StatusOr<Journal> j = Open();
    ASSERT_FALSE(j.ok()) << name;
    EXPECT_EQ(j.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(j.status().message()), HasSubstr(dir_ + "/" + name));
    EXPECT_THAT(std::string(j.status().message()), HasSubstr("symbolic link"));
    EXPECT_EQ(ReadAll(target), "someone else's file");
  }
}

TEST_F(JournalTest, OtherFileTypesAreRefused) {
  struct Case {
    std::string name;
    const char* type;
    std::function<void(const std::string&)> make;
  };
  const std::vector<Case> cases = {
      {"events.journal", "a FIFO",
       [](const std::string& p) { ASSERT_EQ(mkfifo(p.c_str(), 0600), 0); }},
      {"events.journal.1", "a FIFO",
       [](const std::string& p) { ASSERT_EQ(mkfifo(p.c_str(), 0600), 0); }},
      {"events.journal", "a directory", [](const std::string& p) { fs::create_directory(p); }},
      {"events.journal.1", "a directory", [](const std::string& p) { fs::create_directory(p); }},
  };
  for (const Case& c : cases) {
    fs::remove_all(root_ + "/state");
    fs::create_directories(dir_);
    c.make(dir_ + "/" + c.name);
    absl::StatusOr<Journal> j = Open();  // must not block on the FIFO
    ASSERT_FALSE(j.ok()) << c.name << " " << c.type;
    const std::string msg(j.status().message());
    EXPECT_THAT(msg, HasSubstr(dir_ + "/" + c.name + " is " + c.type));
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
}

// A full disk (here the file size limit, which fails write(2) with EFBIG the same way): every
// lost record is counted, one line is logged however many fail, and the journal goes on.
TEST_F(JournalTest, FullDiskDropsAreCountedAndLoggedOnce) {
  Write(Events(0, 3));
  const uint64_t good = fs::file_size(Current());
  absl::StatusOr<Journal> j = Open();
  ASSERT_TRUE(j.ok()) << j.status();
  struct rlimit old;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  sighandler_t old_handler = signal(SIGXFSZ, SIG_IGN);
  struct rlimit lim = old;
  lim.rlim_cur = good + 100;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
  uint64_t attempted = 0;
  int failures = 0;
  for (uint32_t round = 0; round < 20; ++round) {
    for (uint32_t i = 0; i < 5; ++i, ++attempted) {
      if (!j->Append(Event(10 + attempted)).ok()) ++failures;
    }
    absl::Status s = j->Flush();
    if (!s.ok()) {
      ++failures;
      EXPECT_THAT(std::string(s.message()), HasSubstr(Current()));
    }
  }
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, old_handler);
  ASSERT_GT(failures, 0);
  EXPECT_EQ(fs::file_size(Current()), good) << "no half record left";
  EXPECT_EQ(j->DroppedRecords(), attempted);
  EXPECT_GE(j->DroppedBytes(), attempted * RecordSize(Event(10)));
  ASSERT_EQ(log_.size(), 1u) << "rate-limited";
  EXPECT_THAT(log_[0], HasSubstr(strerror(EFBIG)));
  EXPECT_THAT(log_[0], HasSubstr("dropped"));

  // Space again: it goes on, and says so.
  ASSERT_TRUE(j->Append(Event(50)).ok());
  ASSERT_TRUE(j->Flush().ok());
  EXPECT_EQ(j->DroppedRecords(), attempted);
  ASSERT_EQ(log_.size(), 2u);
  EXPECT_THAT(log_[1], HasSubstr("writing again"));
  const std::vector<v1::ExitEvent> kept = Events(0, 3);
  ASSERT_TRUE(Open().ok());
  std::vector<v1::ExitEvent> want = kept;
  want.push_back(Event(50));
  ExpectSameEvents(recovered_, want);
}

// Every byte offset of it a candidate record of 1 MiB with a bad CRC: the work is bounded and the
// records before it are kept.
TEST_F(JournalTest, CraftedCandidatesCannotStallRecovery) {
  Write(Events(0, 3));
  const uint64_t good = fs::file_size(Current());
  std::string fake("\xF5PSR\x00\x00\x10\x00\x00\x00\x00\x00", 12);  // length 1 MiB, CRC 0
  std::string crafted;
  while (crafted.size() < (4u << 20)) crafted += fake;
  AppendBytes(Current(), crafted);
  const absl::Time start = absl::Now();
  absl::StatusOr<Journal> j = Open();
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
  ExpectSameEvents(recovered_, Events(0, 3));
  EXPECT_EQ(j->DamagedBytes(), crafted.size());
  EXPECT_EQ(fs::file_size(Current()), good);
}

uint64_t RssBytes() {
  std::ifstream f("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

// Recovery streams: a 20 MB journal comes back record by record, and the reader holds no more
// than a chunk of it.
TEST_F(JournalTest, StreamingRecoveryOfA20MBJournal) {
  constexpr uint64_t kBig = 24 << 20;
  uint64_t written = 0;
  {
    absl::StatusOr<Journal> j = Open(kBig);
    ASSERT_TRUE(j.ok()) << j.status();
    while (fs::file_size(Current()) < (20u << 20)) {
      for (int i = 0; i < 1000; ++i) ASSERT_TRUE(j->Append(Event(written++)).ok());
      ASSERT_TRUE(j->Flush().ok());
    }
  }
  ASSERT_FALSE(fs::exists(Rotated()));
  uint64_t count = 0;
  uint32_t next = 0;
  bool in_order = true;
  const uint64_t rss_before = RssBytes();
  uint64_t rss_peak = rss_before;
  absl::StatusOr<Journal> j = Journal::Open(
      dir_, kBig,
      [&](v1::ExitEvent&& e) {
        in_order = in_order && e.pid() == 1000 + next;
        ++next;
        if (++count % 10000 == 0) rss_peak = std::max(rss_peak, RssBytes());
      },
      [](absl::string_view) {});
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(count, written);
  EXPECT_EQ(j->RecoveredRecords(), written);
  EXPECT_TRUE(in_order);
#ifndef __SANITIZE_ADDRESS__  // ASan's quarantine keeps freed memory resident (build.sanitizers)
  EXPECT_LT(rss_peak - rss_before, 8u << 20) << "the reader held more than a window";
#endif
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
  absl::StatusOr<Journal> j = Open();
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(j->Append(v1::ExitEvent()).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(j->Flush().ok());
  EXPECT_EQ(fs::file_size(Current()), 0u);
  EXPECT_EQ(j->DroppedRecords(), 0u);
}

TEST_F(JournalTest, OversizedRecordsRefused) {
  absl::StatusOr<Journal> j = Open();
  ASSERT_TRUE(j.ok()) << j.status();
  v1::ExitEvent huge = Event(1);
  huge.set_comm(std::string((1 << 20) + 1, 'x'));
  EXPECT_EQ(j->Append(huge).code(), absl::StatusCode::kInvalidArgument);
  v1::ExitEvent over_max = Event(2);
  over_max.set_comm(std::string(kMax, 'x'));
  EXPECT_EQ(j->Append(over_max).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(j->Append(Event(3)).ok());
  ASSERT_TRUE(j->Flush().ok());
  ASSERT_TRUE(Open().ok());
  ExpectSameEvents(recovered_, {Event(3)});
}

TEST_F(JournalTest, MovedJournalWritesMovedFromRefuses) {
  absl::StatusOr<Journal> opened = Journal::Open(dir_, kMax);
  ASSERT_TRUE(opened.ok()) << opened.status();
  Journal j = std::move(*opened);
  ASSERT_TRUE(j.Append(Event(1)).ok());
  ASSERT_TRUE(j.Flush().ok());
  EXPECT_EQ(opened->Append(Event(2)).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(fs::file_size(Current()), kFileHeaderBytes + RecordSize(Event(1)));
}

}  // namespace
}  // namespace procscope
