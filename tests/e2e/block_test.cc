// SPDX-License-Identifier: Apache-2.0
// Block I/O accounting end to end: direct, fsync'd, flusher-written and cold-read I/O of a child
// that does exactly known I/O on a file of its own, checked in its live sample and exit event.
// Every assertion is on the child's own counters, as deltas from a baseline taken while it was
// parked before its I/O, so that other processes' I/O on the same disk cannot enter them.
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "harness.h"

namespace procscope::testing {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kChunk = kMiB;  // one write()/read() call
// Largest page-cache folio on x86-64 (PMD size): dirtied_bytes counts whole folios.
constexpr uint64_t kMaxFolio = 2 * kMiB;
// Upper slack on a buffered writer's bytes. Its data goes out as exactly the pages of its file;
// on top, fsync of a new file writes its inode and a few metadata blocks in the writer's context
// (12 KiB measured on ext4 without a journal; with one, jbd2 writes them, charged to nobody).
// 1 MiB covers that and stays far below the 32 MiB that a mis-charge would add.
constexpr uint64_t kWriteSlack = kMiB;
// Upper slack on a cold reader's bytes: readahead stops at EOF and a 16 MiB file's extents fit in
// its (cached) inode, so nothing beyond the file is expected; 1 MiB for a stray metadata block.
constexpr uint64_t kReadSlack = kMiB;
const absl::Duration kIoTimeout = absl::Seconds(120);  // noisy shared disk

ps_io Delta(const ps_io& after, const ps_io& before) {
  ps_io d{};
  d.read_bytes = after.read_bytes - before.read_bytes;
  d.write_bytes = after.write_bytes - before.write_bytes;
  d.read_ops = after.read_ops - before.read_ops;
  d.write_ops = after.write_ops - before.write_ops;
  d.read_lat_ns = after.read_lat_ns - before.read_lat_ns;
  d.write_lat_ns = after.write_lat_ns - before.write_lat_ns;
  d.dirtied_bytes = after.dirtied_bytes - before.dirtied_bytes;
  return d;
}

std::string Str(const ps_io& io) {
  return absl::StrCat("read_bytes=", io.read_bytes, " write_bytes=", io.write_bytes,
                      " read_ops=", io.read_ops, " write_ops=", io.write_ops,
                      " read_lat_ns=", io.read_lat_ns, " write_lat_ns=", io.write_lat_ns,
                      " dirtied_bytes=", io.dirtied_bytes);
}

uint64_t AbsDiff(uint64_t a, uint64_t b) { return a > b ? a - b : b - a; }

std::optional<std::string> ReadLine(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  if (!f || !std::getline(f, s)) return std::nullopt;
  return s;
}

// Largest request the device takes, in bytes: /sys/dev/block/MAJ:MIN/queue/max_sectors_kb, or the
// parent disk's for a partition. 0 when the file is not on a block device.
uint64_t MaxRequestBytes(dev_t dev) {
  const std::string base = absl::StrCat("/sys/dev/block/", major(dev), ":", minor(dev));
  for (const char* q : {"/queue/max_sectors_kb", "/../queue/max_sectors_kb"}) {
    uint64_t kb;
    auto s = ReadLine(base + q);
    if (s && absl::SimpleAtoi(absl::StripAsciiWhitespace(*s), &kb) && kb > 0) return kb * kKiB;
  }
  return 0;
}

// Bytes the device holding `dev` has read since boot (/sys/dev/block/M:m/stat, field 3 is sectors
// of 512 bytes; a partition has its own); nullopt if unreadable.
std::optional<uint64_t> DeviceReadBytes(dev_t dev) {
  auto s = ReadLine(absl::StrCat("/sys/dev/block/", major(dev), ":", minor(dev), "/stat"));
  if (!s) return std::nullopt;
  std::vector<std::string> f = absl::StrSplit(*s, ' ', absl::SkipEmpty());
  uint64_t sectors;
  if (f.size() < 3 || !absl::SimpleAtoi(f[2], &sectors)) return std::nullopt;
  return sectors * 512;
}

// Reads the test binary once so that its text is in the page cache: a child faulting it in would
// otherwise read it from disk, in its own context, on top of the I/O under test.
void WarmExecutable() {
  std::ifstream f("/proc/self/exe", std::ios::binary);
  std::vector<char> buf(kMiB);
  while (f.read(buf.data(), buf.size()) || f.gcount() > 0) {
  }
}

// A file of its own in a fresh directory on disk (/var/tmp: not tmpfs), removed with the test.
class TestFile {
 public:
  explicit TestFile(const char* name) {
    char tmpl[] = "/var/tmp/procscope-block-XXXXXX";
    if (mkdtemp(tmpl) != nullptr) {
      dir_ = tmpl;
      path_ = absl::StrCat(dir_, "/", name);
    }
  }
  ~TestFile() {
    if (fd_ >= 0) close(fd_);
    if (!path_.empty()) unlink(path_.c_str());
    if (!dir_.empty()) rmdir(dir_.c_str());
  }
  TestFile(const TestFile&) = delete;
  TestFile& operator=(const TestFile&) = delete;

  // Creates the file (in the parent, so that its metadata I/O is not the child's); -1 on error.
  int Open(int extra_flags) {
    if (path_.empty()) return -1;
    fd_ = open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | extra_flags, 0600);
    return fd_;
  }
  const std::string& path() const { return path_; }

  // Max request size of the file's block device, 0 if it has none (tmpfs, overlay, ...).
  uint64_t MaxRequest() const {
    struct stat st;
    if (fstat(fd_, &st) != 0) return 0;
    return MaxRequestBytes(st.st_dev);
  }
  dev_t Device() const {
    struct stat st;
    return fstat(fd_, &st) == 0 ? st.st_dev : 0;
  }

 private:
  std::string dir_, path_;
  int fd_ = -1;
};

// One 4 KiB-aligned chunk, for O_DIRECT; allocated in the parent so that the child does not
// allocate after the fork of a multithreaded process.
struct AlignedBuf {
  AlignedBuf() : p(static_cast<char*>(aligned_alloc(4096, kChunk))) {
    if (p != nullptr) memset(p, 0x5a, kChunk);
  }
  ~AlignedBuf() { free(p); }
  char* p;
};

bool PwriteAll(int fd, const char* buf, uint64_t size) {
  for (uint64_t off = 0; off < size; off += kChunk) {
    if (pwrite(fd, buf, kChunk, static_cast<off_t>(off)) != static_cast<ssize_t>(kChunk)) {
      return false;
    }
  }
  return true;
}

bool PreadAll(int fd, char* buf, uint64_t size) {
  for (uint64_t off = 0; off < size; off += kChunk) {
    if (pread(fd, buf, kChunk, static_cast<off_t>(off)) != static_cast<ssize_t>(kChunk)) {
      return false;
    }
  }
  return true;
}

// Cached pages of the first `size` bytes of the file (mmap without touching, then mincore).
int64_t ResidentPages(int fd, uint64_t size) {
  void* m = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) return -1;
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> vec((size + page - 1) / page);
  int64_t n = -1;
  if (mincore(m, size, vec.data()) == 0) {
    n = 0;
    for (unsigned char v : vec) n += v & 1;
  }
  munmap(m, size);
  return n;
}

// The I/O counters of a live process (zeros if it has done none yet).
std::optional<ps_io> LiveIo(pid_t pid) {
  auto s = CollectorEnv::Get()->Sample(pid);
  if (!s) return std::nullopt;
  return s->io;
}

// A stretch of the test: its wall time, and the system-wide count of requests charged to nobody
// meanwhile. That count is only a diagnostic for a failure (other processes add to it): a request
// of the child that lost its owner shows up there.
class Phase {
 public:
  // `dev`: also report what that device read meanwhile (everyone's reads: an upper bound of what
  // the child can have read from it).
  explicit Phase(dev_t dev = 0) : start_(absl::Now()), dev_(dev) {
    auto s = CollectorEnv::Get()->collector().ReadStats();
    if (s.ok()) stats_ = *s;
    if (dev_ != 0) dev_read_ = DeviceReadBytes(dev_);
    auto procs = CollectorEnv::Get()->collector().ReadProcesses();
    if (procs.ok()) {
      for (const ProcessSample& p : *procs) {
        io_bytes_[p.key.tgid] = p.io.read_bytes + p.io.write_bytes;
      }
    }
  }
  // The processes charged with I/O meanwhile (the child's missing bytes went somewhere).
  std::string Charged() const {
    auto procs = CollectorEnv::Get()->collector().ReadProcesses();
    if (!procs.ok()) return "";
    std::string out;
    for (const ProcessSample& p : *procs) {
      auto it = io_bytes_.find(p.key.tgid);
      const uint64_t before = it == io_bytes_.end() ? 0 : it->second;
      const uint64_t now = p.io.read_bytes + p.io.write_bytes;
      if (now > before) absl::StrAppend(&out, " ", p.key.tgid, "/", p.comm, "+", now - before);
    }
    return absl::StrCat("; charged meanwhile:", out);
  }
  absl::Duration Elapsed() const { return absl::Now() - start_; }
  std::string Unattributed() const {
    auto s = CollectorEnv::Get()->collector().ReadStats();
    if (!s.ok() || !stats_) return "stats unavailable";
    return absl::StrCat(
        "system-wide meanwhile: unattributed ops=",
        (*s)[PS_STAT_IO_UNATTRIBUTED_OPS] - (*stats_)[PS_STAT_IO_UNATTRIBUTED_OPS],
        " bytes=", (*s)[PS_STAT_IO_UNATTRIBUTED_BYTES] - (*stats_)[PS_STAT_IO_UNATTRIBUTED_BYTES],
        ", orphan ops=", (*s)[PS_STAT_IO_ORPHAN_OPS] - (*stats_)[PS_STAT_IO_ORPHAN_OPS],
        ", requests dropped=", (*s)[PS_STAT_DROP_REQUESTS] - (*stats_)[PS_STAT_DROP_REQUESTS],
        DeviceRead(), Charged());
  }

 private:
  std::string DeviceRead() const {
    const std::optional<uint64_t> now = dev_ != 0 ? DeviceReadBytes(dev_) : std::nullopt;
    if (!now || !dev_read_) return "";
    return absl::StrCat(", device read ", *now - *dev_read_, " bytes");
  }

  absl::Time start_;
  std::map<uint32_t, uint64_t> io_bytes_;  // tgid -> bytes read + written at the start
  dev_t dev_;
  std::optional<uint64_t> dev_read_;
  std::optional<KernelStats> stats_;
};

// Device latency is charged per request from issue to completion: positive, and a request's
// share cannot exceed the wall time of the phase that waited for it.
void ExpectLatencySane(uint64_t lat_ns, uint64_t ops, absl::Duration phase, const char* what) {
  EXPECT_GT(lat_ns, 0u) << what;
  if (ops > 0) {
    EXPECT_LE(lat_ns / ops, static_cast<uint64_t>(absl::ToInt64Nanoseconds(phase))) << what;
  }
}

// 1. Direct I/O bypasses the page cache: exactly the bytes the child asks for reach the device, in
// its own context, so they must be charged exactly, to within one request of the device.
TEST(BlockIo, DirectWriteThenReadChargedExactly) {
  PS_REQUIRE_COLLECTOR();
  constexpr uint64_t kSize = 32 * kMiB;
  WarmExecutable();
  TestFile file("direct");
  const int fd = file.Open(O_DIRECT);
  ASSERT_GE(fd, 0) << file.path() << ": " << strerror(errno);
  const uint64_t tol = file.MaxRequest();
  ASSERT_GT(tol, 0u) << file.path() << " is not on a block device";
  AlignedBuf buf;
  ASSERT_NE(buf.p, nullptr);
  // Allocate and write the blocks once here: the child's write is then a pure overwrite, with no
  // block allocation or unwritten-extent conversion (metadata I/O) in its context.
  ASSERT_EQ(fallocate(fd, 0, 0, kSize), 0) << strerror(errno);
  ASSERT_TRUE(PwriteAll(fd, buf.p, kSize)) << strerror(errno);
  ASSERT_EQ(fsync(fd), 0) << strerror(errno);

  Child child([&](Child& c) {
    c.Ready();
    c.WaitGo();
    if (!PwriteAll(fd, buf.p, kSize)) return 1;
    c.Ready();
    c.WaitGo();
    if (!PreadAll(fd, buf.p, kSize)) return 2;
    c.Ready();
    c.WaitGo();
    return 0;
  });
  ASSERT_TRUE(child.WaitReady());
  auto base = LiveIo(child.pid());
  ASSERT_TRUE(base.has_value());

  Phase write_phase;
  child.Go();
  ASSERT_TRUE(child.WaitReady(kIoTimeout)) << "direct write did not finish";
  auto after_write = LiveIo(child.pid());
  ASSERT_TRUE(after_write.has_value());
  const ps_io w = Delta(*after_write, *base);
  {
    SCOPED_TRACE(absl::StrCat("write phase: ", Str(w), "; max request=", tol, "; ",
                              write_phase.Unattributed()));
    EXPECT_LE(AbsDiff(w.write_bytes, kSize), tol);
    // Each pwrite() waits for its own requests: none can span two calls.
    EXPECT_GE(w.write_ops, kSize / kChunk);
    ExpectLatencySane(w.write_lat_ns, w.write_ops, write_phase.Elapsed(), "write latency");
    EXPECT_LE(w.read_bytes, tol) << "nothing was read yet";
    // No page cache of the file; at most the inode's block, dirtied for the mtime.
    EXPECT_LE(w.dirtied_bytes, tol);
  }

  Phase read_phase;
  child.Go();
  ASSERT_TRUE(child.WaitReady(kIoTimeout)) << "direct read did not finish";
  auto after_read = LiveIo(child.pid());
  ASSERT_TRUE(after_read.has_value());
  const ps_io r = Delta(*after_read, *after_write);
  {
    SCOPED_TRACE(absl::StrCat("read phase: ", Str(r), "; ", read_phase.Unattributed()));
    EXPECT_LE(AbsDiff(r.read_bytes, kSize), tol);
    EXPECT_GE(r.read_ops, kSize / kChunk);
    ExpectLatencySane(r.read_lat_ns, r.read_ops, read_phase.Elapsed(), "read latency");
    EXPECT_LE(r.write_bytes, tol) << "nothing was written in the read phase";
  }

  child.Go();
  auto exit = CollectorEnv::Get()->WaitExit(child.pid());
  ASSERT_TRUE(exit.has_value()) << "no exit event";
  EXPECT_EQ(child.Wait(), 0);
  const ps_io e = Delta(exit->io, *base);
  SCOPED_TRACE(absl::StrCat("exit event: ", Str(e)));
  EXPECT_LE(AbsDiff(e.write_bytes, kSize), tol);
  EXPECT_LE(AbsDiff(e.read_bytes, kSize), tol);
  EXPECT_GE(e.write_ops, kSize / kChunk);
  EXPECT_GE(e.read_ops, kSize / kChunk);
  EXPECT_GT(e.write_lat_ns, 0u);
  EXPECT_GT(e.read_lat_ns, 0u);
  // The exit event carries the final totals: never less than the last live sample.
  EXPECT_GE(exit->io.write_bytes, after_read->write_bytes);
  EXPECT_GE(exit->io.read_bytes, after_read->read_bytes);
  std::cout << "[ measured ] direct: live write=" << w.write_bytes << " read=" << r.read_bytes
            << ", exit write=" << e.write_bytes << " read=" << e.read_bytes << ", expected "
            << kSize << " +-" << tol << std::endl;
}

// 2. Buffered write + fsync: fsync writes the file's dirty pages in the writer's own context, so
// the writer is charged the file's data, and not much more (see kWriteSlack).
TEST(BlockIo, BufferedWriteFsyncChargedToWriter) {
  PS_REQUIRE_COLLECTOR();
  constexpr uint64_t kSize = 32 * kMiB;
  WarmExecutable();
  TestFile file("fsync");
  const int fd = file.Open(0);
  ASSERT_GE(fd, 0) << file.path() << ": " << strerror(errno);
  ASSERT_GT(file.MaxRequest(), 0u) << file.path() << " is not on a block device";
  AlignedBuf buf;
  ASSERT_NE(buf.p, nullptr);

  Child child([&](Child& c) {
    c.Ready();
    c.WaitGo();
    if (!PwriteAll(fd, buf.p, kSize)) return 1;
    if (fsync(fd) != 0) return 2;
    c.Ready();
    c.WaitGo();
    return 0;
  });
  std::optional<Phase> phase;
  auto step = MeasureStep(child, LiveIo, kIoTimeout, [&] { phase.emplace(); });
  ASSERT_TRUE(step.ok()) << "write + fsync did not finish: " << step.status();
  const ps_io* base = &step->before;
  const ps_io* live = &step->after;
  const ps_io d = Delta(*live, *base);
  {
    SCOPED_TRACE(absl::StrCat("live: ", Str(d), "; ", phase->Unattributed()));
    EXPECT_GE(d.write_bytes, kSize);
    EXPECT_LE(d.write_bytes, kSize + kWriteSlack);
    EXPECT_GT(d.write_ops, 0u);
    ExpectLatencySane(d.write_lat_ns, d.write_ops, phase->Elapsed(), "write latency");
    EXPECT_GE(d.dirtied_bytes, kSize);
    EXPECT_LE(d.dirtied_bytes, kSize + kMaxFolio);
  }

  child.Go();
  auto exit = CollectorEnv::Get()->WaitExit(child.pid());
  ASSERT_TRUE(exit.has_value()) << "no exit event";
  EXPECT_EQ(child.Wait(), 0);
  const ps_io e = Delta(exit->io, *base);
  SCOPED_TRACE(absl::StrCat("exit event: ", Str(e)));
  EXPECT_GE(e.write_bytes, kSize);
  EXPECT_LE(e.write_bytes, kSize + kWriteSlack);
  EXPECT_GE(e.dirtied_bytes, kSize);
  EXPECT_LE(e.dirtied_bytes, kSize + kMaxFolio);
  std::cout << "[ measured ] fsync: live write=" << d.write_bytes << " dirtied=" << d.dirtied_bytes
            << ", exit write=" << e.write_bytes << " dirtied=" << e.dirtied_bytes << ", expected "
            << kSize << std::endl;
}

// 3. Buffered write without fsync: the flusher kworker writes the pages back when the parent calls
// syncfs(). The bytes belong to the process that dirtied them, the child: not to the kworker (a
// kernel thread has no counters) and not to the parent that asked for the sync.
TEST(BlockIo, FlusherWritebackChargedToDirtier) {
  PS_REQUIRE_COLLECTOR();
  constexpr uint64_t kSize = 32 * kMiB;
  WarmExecutable();
  TestFile file("writeback");
  const int fd = file.Open(0);
  ASSERT_GE(fd, 0) << file.path() << ": " << strerror(errno);
  ASSERT_GT(file.MaxRequest(), 0u) << file.path() << " is not on a block device";
  AlignedBuf buf;
  ASSERT_NE(buf.p, nullptr);

  Child child([&](Child& c) {
    c.Ready();
    c.WaitGo();
    if (!PwriteAll(fd, buf.p, kSize)) return 1;
    c.Ready();
    c.WaitGo();  // parked, alive, while the parent has its pages written back
    return 0;
  });
  ASSERT_TRUE(child.WaitReady());
  auto base = LiveIo(child.pid());
  ASSERT_TRUE(base.has_value());
  Phase phase;  // latency bound: periodic writeback may start before syncfs
  child.Go();
  ASSERT_TRUE(child.WaitReady(kIoTimeout)) << "buffered write did not finish";
  auto before_sync = LiveIo(child.pid());
  ASSERT_TRUE(before_sync.has_value());
  auto parent_before = LiveIo(getpid());
  ASSERT_TRUE(parent_before.has_value());

  // syncfs hands the dirty inodes to the flusher and waits until they are written back.
  ASSERT_EQ(syncfs(fd), 0) << strerror(errno);
  auto live = LiveIo(child.pid());
  ASSERT_TRUE(live.has_value());
  auto parent_after = LiveIo(getpid());
  ASSERT_TRUE(parent_after.has_value());
  const ps_io d = Delta(*live, *base);
  const ps_io p = Delta(*parent_after, *parent_before);
  {
    SCOPED_TRACE(absl::StrCat("child: ", Str(d), "; child before syncfs: write_bytes=",
                              before_sync->write_bytes - base->write_bytes,
                              "; parent during syncfs: ", Str(p), "; ", phase.Unattributed()));
    EXPECT_GE(d.write_bytes, kSize);
    EXPECT_LE(d.write_bytes, kSize + kWriteSlack);
    EXPECT_GT(d.write_ops, 0u);
    ExpectLatencySane(d.write_lat_ns, d.write_ops, phase.Elapsed(), "write latency");
    EXPECT_GE(d.dirtied_bytes, kSize);
    EXPECT_LE(d.dirtied_bytes, kSize + kMaxFolio);
    // syncfs ends by writing the block device's dirty metadata in the caller's context (a few
    // hundred KiB at most measured); the file's 32 MiB must not be charged to the parent.
    EXPECT_LT(p.write_bytes, kSize / 2) << "the file's writeback was charged to the syncer";
  }

  child.Go();
  auto exit = CollectorEnv::Get()->WaitExit(child.pid());
  ASSERT_TRUE(exit.has_value()) << "no exit event";
  EXPECT_EQ(child.Wait(), 0);
  const ps_io e = Delta(exit->io, *base);
  SCOPED_TRACE(absl::StrCat("exit event: ", Str(e)));
  EXPECT_GE(e.write_bytes, kSize);
  EXPECT_LE(e.write_bytes, kSize + kWriteSlack);
  EXPECT_GE(e.dirtied_bytes, kSize);
  std::cout << "[ measured ] writeback: child write=" << d.write_bytes
            << " (before syncfs: " << before_sync->write_bytes - base->write_bytes
            << ") dirtied=" << d.dirtied_bytes << ", exit write=" << e.write_bytes
            << ", parent write during syncfs=" << p.write_bytes << ", expected " << kSize
            << std::endl;
}

// 4. Cold read: the file is not cached, so read() and its readahead, both submitted in the
// reader's context, must fetch the whole file from the device, charged to the reader.
TEST(BlockIo, ColdReadChargedToReader) {
  PS_REQUIRE_COLLECTOR();
  constexpr uint64_t kSize = 16 * kMiB;
  WarmExecutable();
  TestFile file("cold");
  const int fd = file.Open(0);
  ASSERT_GE(fd, 0) << file.path() << ": " << strerror(errno);
  ASSERT_GT(file.MaxRequest(), 0u) << file.path() << " is not on a block device";
  AlignedBuf buf;
  ASSERT_NE(buf.p, nullptr);
  ASSERT_TRUE(PwriteAll(fd, buf.p, kSize)) << strerror(errno);
  ASSERT_EQ(fsync(fd), 0) << strerror(errno);
  // DONTNEED drops clean pages that nobody maps; retry in case writeback still holds one.
  int64_t resident = -1;
  for (int i = 0; i < 50 && resident != 0; ++i) {
    if (i > 0) absl::SleepFor(absl::Milliseconds(100));
    ASSERT_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    resident = ResidentPages(fd, kSize);
  }
  ASSERT_EQ(resident, 0) << "could not drop the file from the page cache";

  Child child([&](Child& c) {
    c.Ready();
    c.WaitGo();
    if (lseek(fd, 0, SEEK_SET) != 0) return 1;
    uint64_t total = 0;
    for (;;) {
      const ssize_t n = read(fd, buf.p, kChunk);
      if (n < 0) return 2;
      if (n == 0) break;
      total += static_cast<uint64_t>(n);
    }
    if (total != kSize) return 3;
    c.Ready();
    c.WaitGo();
    return 0;
  });
  std::optional<Phase> phase;
  auto step = MeasureStep(child, LiveIo, kIoTimeout, [&] { phase.emplace(file.Device()); });
  ASSERT_TRUE(step.ok()) << "cold read did not finish: " << step.status();
  const int64_t resident_after = ResidentPages(fd, kSize);
  const ps_io* base = &step->before;
  const ps_io* live = &step->after;
  const ps_io d = Delta(*live, *base);
  {
    SCOPED_TRACE(absl::StrCat("live: ", Str(d), "; ", phase->Unattributed(),
                              "; resident pages after the read ", resident_after));
    EXPECT_GE(d.read_bytes, kSize);
    EXPECT_LE(d.read_bytes, kSize + kReadSlack);
    EXPECT_GT(d.read_ops, 0u);
    ExpectLatencySane(d.read_lat_ns, d.read_ops, phase->Elapsed(), "read latency");
    EXPECT_EQ(d.write_bytes, 0u) << "a reader writes nothing";
  }

  child.Go();
  auto exit = CollectorEnv::Get()->WaitExit(child.pid());
  ASSERT_TRUE(exit.has_value()) << "no exit event";
  EXPECT_EQ(child.Wait(), 0);
  const ps_io e = Delta(exit->io, *base);
  SCOPED_TRACE(absl::StrCat("exit event: ", Str(e)));
  EXPECT_GE(e.read_bytes, kSize);
  EXPECT_LE(e.read_bytes, kSize + kReadSlack);
  EXPECT_GT(e.read_ops, 0u);
  std::cout << "[ measured ] cold read: live read=" << d.read_bytes << " ops=" << d.read_ops
            << ", exit read=" << e.read_bytes << ", expected " << kSize << "; "
            << phase->Unattributed() << std::endl;
}

}  // namespace
}  // namespace procscope::testing
