// SPDX-License-Identifier: Apache-2.0
// Reading what the BPF side keeps, from map, link and program file descriptors: the exit ring
// buffer, the process iterator, the per-CPU drop counters, program costs, map fill. libbpf's
// plain API only: the loader (collector.cc) is the one file that knows the skeleton.
#ifndef PROCSCOPE_DAEMON_BPF_MAPS_H_
#define PROCSCOPE_DAEMON_BPF_MAPS_H_

#include <bpf/bpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "model.h"

struct bpf_link;
struct bpf_map;

namespace procscope {

// One full read of the process iterator into `buf` (grown as needed and kept by the caller, so
// that a pass allocates nothing); the bytes read are the view's, valid until `buf` changes.
absl::StatusOr<absl::string_view> ReadProcessIterator(bpf_link* iter_link, std::string& buf);

// The `stats` per-CPU array, summed over CPUs.
absl::StatusOr<KernelStats> ReadPerCpuStats(int fd);

// run_time_ns / run_cnt of each program fd into the matching entry of `out`.
void FillProgramCosts(const std::vector<int>& prog_fds, std::vector<ProgramStats>& out);

// Entries in a hash map, by walking its keys (about 0.5 us per entry).
absl::StatusOr<size_t> CountMapEntries(const bpf_map* map);

// Slots of the `requests` table (an array of struct ps_request) that hold a request: read in
// batches of 4096 slots (one syscall each), a tag other than 0.
absl::StatusOr<size_t> CountBusyRequestSlots(const bpf_map* map);

// The exit ring buffer, consumed by hand so that the consumer position (what the kernel may
// overwrite, and what a next daemon would read again) advances only on Commit(): after the exits
// read are in the journal, so that a kill -9 in between loses none (they are read again).
// libbpf 1.1's ring_buffer commits after each record.
//
// Only the pages that hold unread records are mapped, while they are read: the kernel maps a
// ring's pages whole at mmap(), and the data area twice (so that a record that wraps reads as one
// piece), so mapping it all, as libbpf does, put 8 MiB of the default 4 MiB ring in the daemon's
// resident set for good.
class ExitRing {
 public:
  ExitRing() = default;
  ExitRing(const ExitRing&) = delete;
  ExitRing& operator=(const ExitRing&) = delete;
  ~ExitRing() {
    Unmap();
    if (producer_ != nullptr) munmap(const_cast<uint64_t*>(producer_), page_);
    if (consumer_ != nullptr) munmap(consumer_, page_);
    if (epfd_ >= 0) close(epfd_);
  }

  absl::Status Open(int fd) {
    bpf_map_info info = {};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) {
      return absl::InternalError(absl::StrCat("exit ring buffer: ", strerror(errno)));
    }
    fd_ = fd;
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    size_ = info.max_entries;
    void* c = mmap(nullptr, page_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (c == MAP_FAILED) return MapError();
    consumer_ = static_cast<uint64_t*>(c);
    void* p = mmap(nullptr, page_, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(page_));
    if (p == MAP_FAILED) return MapError();
    producer_ = static_cast<const uint64_t*>(p);
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev = {};
    ev.events = EPOLLIN;
    if (epfd_ < 0 || epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) return MapError();
    read_ = __atomic_load_n(consumer_, __ATOMIC_ACQUIRE);
    return absl::OkStatus();
  }

  // Makes `fd` (another ring buffer) end Wait() too. Edge-triggered: one wake-up per batch of
  // records there, so that records nobody consumes yet do not turn Wait() into a busy loop.
  absl::Status AddWakeFd(int fd) {
    epoll_event ev = {};
    ev.events = EPOLLIN | EPOLLET;
    ev.data.fd = fd;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      return absl::InternalError(absl::StrCat("epoll on a ring buffer: ", strerror(errno)));
    }
    return absl::OkStatus();
  }

  // Hands every complete record after the read position to `fn`; returns how many, or -1 when
  // the records could not be mapped (counted in map_failures(); they are read at a later call).
  template <typename Fn>
  int Drain(Fn&& fn) {
    const uint64_t prod = __atomic_load_n(producer_, __ATOMIC_ACQUIRE);
    if (read_ >= prod) return 0;
    // From `from` on, the unread bytes are contiguous in the window (wrapping into the data
    // area's second mapping), not at their position modulo the size.
    const uint64_t from = read_;
    const uint8_t* data = MapData(prod - from);
    if (data == nullptr) return -1;
    data += from & (size_ - 1);
    int n = 0;
    while (read_ < prod) {
      const auto* hdr = reinterpret_cast<const uint32_t*>(data + (read_ - from));
      const uint32_t len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
      if (len & BPF_RINGBUF_BUSY_BIT) break;  // reserved, not yet submitted
      const uint32_t body = len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
      if ((len & BPF_RINGBUF_DISCARD_BIT) == 0) {
        fn(reinterpret_cast<const uint8_t*>(hdr) + BPF_RINGBUF_HDR_SZ, body);
        ++n;
      }
      read_ += (body + BPF_RINGBUF_HDR_SZ + 7) & ~uint64_t{7};
    }
    return n;
  }

  // Waits up to timeout_ms for records (a signal ends the wait early). The kernel wakes a
  // consumer only once it has committed everything, and reports "readable" while anything is
  // uncommitted: with records read but not committed, sleep in short steps instead.
  void Wait(int timeout_ms) {
    if (Uncommitted()) {
      const int ms = std::min(timeout_ms, 20);
      timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
      nanosleep(&ts, nullptr);
      return;
    }
    epoll_event ev;
    (void)epoll_wait(epfd_, &ev, 1, timeout_ms);
  }

  bool Uncommitted() const { return read_ != __atomic_load_n(consumer_, __ATOMIC_ACQUIRE); }
  // Read but uncommitted records hold a quarter of the ring or more.
  bool BacklogHigh() const {
    return read_ - __atomic_load_n(consumer_, __ATOMIC_ACQUIRE) >= size_ / 4;
  }
  void Commit() { __atomic_store_n(consumer_, read_, __ATOMIC_RELEASE); }
  // Bytes of the data area mapped now (for the tests).
  size_t mapped_bytes() const { return window_len_; }
  uint64_t map_failures() const { return map_failures_; }

 private:
  // The data area mapped from the read position on: a pointer p such that p + (read_ & (size_ -
  // 1)) is the byte at read_, followed by the `unread` bytes after it. The window mapped is
  // reused while it covers them and is not much larger than they need (after a burst of exits
  // the next small read maps a small window again); otherwise it is replaced, with 64 KiB to
  // spare so that a trickle of exits does not map at every read.
  const uint8_t* MapData(uint64_t unread) {
    const uint64_t start = read_ & (size_ - 1);
    const uint64_t first = start & ~(uint64_t{page_} - 1);
    const uint64_t need = start + unread - first;  // <= 2 * size_: the area is there twice
    const uint64_t spare = 64 << 10;
    if (window_ != nullptr && first >= window_off_ && start + unread <= window_off_ + window_len_ &&
        window_len_ <= 2 * (need + spare)) {
      return window_ - window_off_;
    }
    Unmap();
    uint64_t len = (need + spare + page_ - 1) & ~(uint64_t{page_} - 1);
    len = std::min<uint64_t>(len, 2 * size_ - first);
    void* d = mmap(nullptr, len, PROT_READ, MAP_SHARED, fd_, static_cast<off_t>(2 * page_ + first));
    if (d == MAP_FAILED) {
      ++map_failures_;
      return nullptr;
    }
    window_ = static_cast<const uint8_t*>(d);
    window_off_ = first;
    window_len_ = len;
    return window_ - window_off_;
  }
  void Unmap() {
    if (window_ != nullptr) munmap(const_cast<uint8_t*>(window_), window_len_);
    window_ = nullptr;
    window_len_ = 0;
  }
  absl::Status MapError() const {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot map the exit-event ring buffer: ", strerror(errno),
                     " (locked-memory or memory cgroup limit too low?)"));
  }
  int fd_ = -1;  // the map's (owned by the skeleton)
  size_t page_ = 0;
  uint64_t size_ = 0;
  uint64_t* consumer_ = nullptr;
  const uint64_t* producer_ = nullptr;
  const uint8_t* window_ = nullptr;  // data area bytes [window_off_, window_off_ + window_len_)
  uint64_t window_off_ = 0;
  uint64_t window_len_ = 0;
  uint64_t map_failures_ = 0;
  int epfd_ = -1;
  uint64_t read_ = 0;
};

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_BPF_MAPS_H_
