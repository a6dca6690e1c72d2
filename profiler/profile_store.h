// SPDX-License-Identifier: Apache-2.0
// The daemon's profile history: symbolised stacks aggregated per (process, kind, stack) in one
// time bucket per drain, for a bounded time (--profile_history) and memory; what falls out early
// because of the memory cap is counted. Frames and stacks are interned (reference counted), so a
// stack seen every second costs one entry per bucket. Per-process metadata (pid, comm, group,
// container, exe) is kept while the process has stacks in the history, also after it exited.
// Thread-safe: the daemon's loop adds, the HTTP renderers query.
#ifndef PROCSCOPE_PROFILER_PROFILE_STORE_H_
#define PROCSCOPE_PROFILER_PROFILE_STORE_H_

#include <array>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "model.h"
#include "profile.h"

namespace procscope {

// What a profile says about the process a stack belongs to.
struct ProfileProcess {
  ps_key key{};
  std::string comm;  // raw bytes
  std::string group;
  std::string container;
  std::string exe;
  bool exited = false;
};

// A profile cut out of the store (or decoded from pprof): its own process and frame tables and
// the samples that index them.
struct ProfileData {
  absl::Time start;  // the window
  absl::Time end;
  int profile_hz = 0;  // on-CPU sampling rate (0: unknown)
  std::vector<ProfileProcess> processes;
  std::vector<Frame> frames;
  struct Sample {
    uint32_t process = 0;  // index into processes
    StackKind kind = StackKind::kOnCpu;
    std::vector<uint32_t> frames;  // indices into frames, innermost first (kernel, then user)
    uint64_t value = 0;            // samples (on-CPU) or ns (off-CPU)
  };
  std::vector<Sample> samples;
};

struct ProfileQuery {
  absl::Duration window = absl::Seconds(30);  // [now - window, now]
  uint32_t pid = 0;                           // 0: every process
  std::string group;                          // "": every group
  std::vector<StackKind> kinds = {StackKind::kOnCpu};
};

struct ProfileStoreOptions {
  absl::Duration history = absl::Minutes(10);
  size_t max_bytes = 64 << 20;  // estimated; the oldest buckets go first when over it
};

// A stack as the daemon hands it to the store.
struct SymbolizedStack {
  ps_key key{};
  StackKind kind = StackKind::kOnCpu;
  uint64_t value = 0;
  std::vector<Frame> kernel;  // innermost first
  std::vector<Frame> user;    // innermost first
  bool user_missing = false;  // a task with an mm whose user stack could not be had
};

struct ProfileStoreStats {
  // Per StackKind: stack entries added, those that carried a user stack, and of those the ones
  // whose outermost frame is not a thread or process entry point (a broken frame-pointer walk).
  std::array<uint64_t, kNumStackKinds> stacks{};
  std::array<uint64_t, kNumStackKinds> user_stacks{};
  std::array<uint64_t, kNumStackKinds> user_truncated{};
  uint64_t dropped_entries = 0;  // aggregated entries dropped early by the memory cap
  uint64_t buckets = 0;
  uint64_t entries = 0;  // aggregated (process, kind, stack) entries over all buckets
  uint64_t distinct_stacks = 0;
  uint64_t frames = 0;
  uint64_t processes = 0;
  uint64_t bytes = 0;  // estimated memory
};

// True when `outermost` (the last user frame) is where a thread or process starts: _start,
// __libc_start_main, __libc_start_call_main, start_thread, clone, clone3.
bool IsEntryFrame(const Frame& outermost);
// A user stack (innermost first) the walk got through whole: its outermost frame is an entry
// point, or a nameless frame (a stripped libc's __libc_start_call_main) calling main.
bool IsCompleteUserStack(const std::vector<Frame>& user);

class ProfileStore {
 public:
  explicit ProfileStore(ProfileStoreOptions options = {});
  ProfileStore(const ProfileStore&) = delete;
  ProfileStore& operator=(const ProfileStore&) = delete;

  // Records (or refreshes) what is known of a process; kept while it has stacks in the history,
  // or for the history's length after this call.
  void SetProcess(const ProfileProcess& p, absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  bool HasProcess(const ps_key& key) const ABSL_LOCKS_EXCLUDED(mu_);
  void MarkExited(const ps_key& key) ABSL_LOCKS_EXCLUDED(mu_);

  // One drain's stacks, as one bucket ending at `now`. A process without SetProcess gets an
  // entry with its pid only. Drops the buckets older than the history, then the oldest ones
  // while over the memory cap.
  void Add(absl::Time now, std::vector<SymbolizedStack> stacks) ABSL_LOCKS_EXCLUDED(mu_);

  // The buckets that ended within [now - window, now], narrowed by the query.
  ProfileData Query(const ProfileQuery& q, absl::Time now) const ABSL_LOCKS_EXCLUDED(mu_);

  absl::Duration history() const { return options_.history; }
  void set_profile_hz(int hz) ABSL_LOCKS_EXCLUDED(mu_);
  ProfileStoreStats Stats() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct FrameKey {
    std::string function, module;
    uint64_t offset = 0, address = 0;
    bool kernel = false;
    bool operator==(const FrameKey& o) const {
      return offset == o.offset && address == o.address && kernel == o.kernel &&
             function == o.function && module == o.module;
    }
    template <typename H>
    friend H AbslHashValue(H h, const FrameKey& k) {
      return H::combine(std::move(h), k.function, k.module, k.offset, k.address, k.kernel);
    }
  };
  struct FrameSlot {
    Frame frame;
    uint32_t refs = 0;
  };
  struct StackSlot {
    std::vector<uint32_t> frames;
    uint32_t refs = 0;
  };
  struct ProcSlot {
    ProfileProcess meta;
    uint32_t refs = 0;  // bucket entries
    absl::Time last_set;
  };
  struct EntryKey {
    uint32_t stack;
    uint32_t proc;
    StackKind kind;
    bool operator==(const EntryKey& o) const {
      return stack == o.stack && proc == o.proc && kind == o.kind;
    }
    template <typename H>
    friend H AbslHashValue(H h, const EntryKey& k) {
      return H::combine(std::move(h), k.stack, k.proc, k.kind);
    }
  };
  struct Bucket {
    absl::Time end;
    absl::flat_hash_map<EntryKey, uint64_t> entries;
  };

  uint32_t InternFrame(const Frame& f) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint32_t InternStack(std::vector<uint32_t> frames) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint32_t ProcIndex(const ps_key& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseStack(uint32_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropOldest() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Trim(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ProfileStoreOptions options_;
  mutable absl::Mutex mu_;
  int profile_hz_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<FrameSlot> frames_ ABSL_GUARDED_BY(mu_);
  std::vector<uint32_t> free_frames_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<FrameKey, uint32_t> frame_ids_ ABSL_GUARDED_BY(mu_);
  std::vector<StackSlot> stacks_ ABSL_GUARDED_BY(mu_);
  std::vector<uint32_t> free_stacks_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::vector<uint32_t>, uint32_t> stack_ids_ ABSL_GUARDED_BY(mu_);
  std::vector<ProcSlot> procs_ ABSL_GUARDED_BY(mu_);
  std::vector<uint32_t> free_procs_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<ps_key, uint32_t> proc_ids_ ABSL_GUARDED_BY(mu_);
  std::deque<Bucket> buckets_ ABSL_GUARDED_BY(mu_);
  size_t entries_ ABSL_GUARDED_BY(mu_) = 0;
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  ProfileStoreStats counters_ ABSL_GUARDED_BY(mu_);
};

// One function's share of a profile, as `pprof -top` shows it.
struct TopFunction {
  std::string name;    // Frame::Display()
  uint64_t self = 0;   // value of the samples whose innermost frame it is
  uint64_t total = 0;  // value of the samples with it anywhere on the stack (once per stack)
};
// Highest self first (then total, then name); at most `limit` (0: all). `*sum`: the total value.
std::vector<TopFunction> TopFunctions(const ProfileData& p, size_t limit, uint64_t* sum);

// The heaviest call path of a profile, by function names, the innermost `depth` frames joined
// with " ← " ("sha256_block ← hash_file ← main"); `share` its part of the profile's value. ""
// when the profile is empty.
std::string HottestPath(const ProfileData& p, size_t depth, double* share);

// flamegraph.pl's input: "comm;outermost;...;innermost value" per distinct stack (same names
// merged), sorted; comm with ';', ' ' and control characters replaced by '_'.
std::string FoldedStacks(const ProfileData& p);
// Up to `n` of the folded lines, the heaviest first.
std::vector<std::string> TopFoldedStacks(const ProfileData& p, size_t n);

}  // namespace procscope

#endif  // PROCSCOPE_PROFILER_PROFILE_STORE_H_
