// SPDX-License-Identifier: Apache-2.0
// The kernel collector: loads and attaches the BPF programs, drains exit events, reads the live
// process totals. The only user-space code that knows about the BPF skeleton.
#ifndef PROCSCOPE_DAEMON_COLLECTOR_H_
#define PROCSCOPE_DAEMON_COLLECTOR_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model.h"
#include "procscope.h"
#include "profile.h"
#include "records.h"

namespace procscope {

enum class AttachMode {
  kAuto,   // tp_btf where the kernel's BTF has the tracepoint's type, raw_tp otherwise
  kTpBtf,  // tp_btf only
  kRawTp,  // raw_tp only (what a kernel without btf_trace_* types gets)
};

struct CollectorOptions {
  AttachMode attach = AttachMode::kAuto;
  // Kernel BTF to check and relocate against; empty: the running kernel's.
  std::string btf_path;
  // Forward libbpf's own messages (verifier log included) to stderr.
  bool verbose = false;
  // Turn on the kernel's BPF run-time statistics (run_time_ns / run_cnt per program) while the
  // collector lives. Costs about 35 ns per program run; off by default.
  bool bpf_stats = false;
  // A directory on a bpffs where the maps, the exit ring buffer and the hooks' links are pinned,
  // so that the BPF side keeps counting while no daemon runs and the next one adopts the state.
  // Empty: nothing pinned, everything detaches when the collector goes (the library default;
  // procscoped's --pin_path defaults to /sys/fs/bpf/procscope).
  std::string pin_path;
  // Size of the exit-event ring buffer (a power of 2, at least a page); 0: the built-in 4 MiB.
  uint32_t ring_buffer_bytes = 0;
  // Exits handed out by PollExits stay in the ring buffer (for the next collector, after a
  // crash) until CommitExits(); false: committed as they are handed out.
  bool defer_exit_commit = false;
  // On-CPU stack sampling: a software CPU-clock perf event per CPU at this rate (0: off).
  int profile_hz = 19;
  // Off-CPU accounting in the scheduler hook: time blocked (D) and sleeping (S) per process.
  bool offcpu = true;
  // Off-CPU stacks: one D switch-out in this many, and one S switch-out in 64 times as many, is
  // sampled and its time scaled by that (0: no off-CPU stacks; needs offcpu). S sleeps are most
  // switches (pipes, futexes, epoll) and a stack costs ~3 us: sampled as often, they doubled the
  // scheduler hook's cost (docs/PERFORMANCE.md).
  int offcpu_stack_ratio = 16;
  // Run-queue wait caused: a waiter's wait charged to the task that held its CPU.
  bool contention = true;
  // TEST ONLY: capacity of the stack_counts map (0: the built-in 16384), so that a test can fill
  // it. A different size also changes the layout hash: pinned state is then not adopted.
  uint32_t test_stack_counts_max_entries = 0;
};

// What the collector found at options.pin_path.
struct PinState {
  bool pinned = false;   // the state is pinned (now or from before)
  bool adopted = false;  // a previous daemon's pinned state was adopted
  // One line for the log: adopted, started fresh (and why), or why nothing is pinned.
  std::string message;
};

class Collector {
 public:
  // Checks privileges and kernel support, loads, registers the processes that already exist and
  // attaches. Errors are one line that names the remedy.
  static absl::StatusOr<std::unique_ptr<Collector>> Create(const CollectorOptions& options);
  ~Collector();
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  // Every live process with its totals up to now (running threads included): the whole records,
  // and the keys of the processes the iterator found unchanged since their last whole record
  // (the daemon's pass: what it holds of them stands). `out`'s capacity is reused. One caller at
  // a time.
  absl::Status ReadPass(PassRecords& out);
  // The next read sends every process whole (the caller lost track of some: new filters).
  void RestartSession();

  // The same as whole samples: a process found unchanged is the previous read's copy, marked
  // `unchanged` (the previous read must have been one of these; else every record comes whole).
  absl::StatusOr<std::vector<ProcessSample>> ReadProcesses();
  absl::Status ReadProcesses(std::vector<ProcessSample>& out);

  // Waits up to timeout_ms for exit events and hands each to `fn`. Returns how many were handled.
  absl::StatusOr<int> PollExits(int timeout_ms,
                                const std::function<void(const ps_exit_event&)>& fn);

  // Releases the exits PollExits has handed out (with defer_exit_commit: once they are stored).
  void CommitExits();
  // Exits handed out but not committed take a quarter of the ring buffer or more: store and
  // commit them now, before new exits find it full.
  bool CommitBacklogHigh() const;

  // Drop counters and unattributed I/O, summed over CPUs.
  absl::StatusOr<KernelStats> ReadStats();

  // Attached programs and their cost.
  std::vector<ProgramStats> Programs() const;

  // Entries in the per-process I/O map (for leak checks).
  absl::StatusOr<size_t> ProcIoEntries();

  // For each hash map that can fill up: its fill. Walks the keys (about 0.5 us per entry): call
  // it every few seconds, not per scrape.
  absl::StatusOr<std::vector<MapFill>> MapEntries();

  // Stacks counted since the last call (on-CPU samples, sampled off-CPU time), with their
  // addresses; drains the kernel's counts, clears the stack map of the epoch before and advances
  // the stack-map epoch (docs/ARCHITECTURE.md, "Stacks"). Call it once per pass, at least every
  // few seconds: an off-CPU stack must be drained within one epoch of its capture. Empty when
  // nothing was counted. One caller at a time (it serialises itself).
  absl::StatusOr<std::vector<RawStack>> DrainStacks();

  // Hands every process that got its first stack entry since the last call to `fn` (the
  // profile_notify ring; its records also end PollExits' wait). Returns how many.
  int PollProfiled(const std::function<void(const ProfiledProcess&)>& fn);

  // The culprit/victim pairs counted since the last call (the contention map, drained: each
  // read-and-deleted). Empty when contention is off.
  absl::StatusOr<std::vector<ContentionPair>> DrainContention();

  // Pinning and adoption, as decided by Create.
  const PinState& Pinning() const;

  // Hook names that could not be attached (optional hooks only); empty when all are.
  const std::vector<std::string>& Degraded() const;

  struct Impl;

 private:
  explicit Collector(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One log line naming the hooks that could not attach and what data is missing because of each;
// "" when none.
std::string DegradedHooksWarning(const std::vector<std::string>& hooks);

// Removes everything pinned in `pin_path` and the directory (--unpin): the BPF programs detach
// and their maps go once no process holds them. Returns how many objects were removed (0 when
// nothing is pinned there). Fails while a running collector uses the directory.
absl::StatusOr<int> UnpinCollector(const std::string& pin_path);

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_COLLECTOR_H_
