// SPDX-License-Identifier: Apache-2.0
// What procscoped knows, as plain structs every part shares: live processes, groups, offenders,
// resource rates, the BPF side's program costs, drop counters and map fill. The collector and the
// process table fill them; the exporter, the HTTP API, the offender detector and the CLI read
// them. Nothing here depends on the BPF skeleton, libbpf or the daemon.
#ifndef PROCSCOPE_MODEL_MODEL_H_
#define PROCSCOPE_MODEL_MODEL_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "procscope.h"

// ps_key (a C struct from the BPF contract) as a hash-map key: a process incarnation.
inline bool operator==(const ps_key& a, const ps_key& b) {
  return a.tgid == b.tgid && a.start_ns == b.start_ns;
}
template <typename H>
H AbslHashValue(H h, const ps_key& k) {
  return H::combine(std::move(h), k.tgid, k.start_ns);
}

namespace procscope {

// Where a cgroup path says a process runs. Empty fields: not known.
struct CgroupInfo {
  std::string container_id;  // 64 lowercase hex chars (docker, containerd/CRI, CRI-O, podman)
  std::string runtime;       // "docker", "containerd", "crio", "podman", "libpod"... or ""
  std::string pod_uid;       // Kubernetes pod UID, 8-4-4-4-12 with dashes (32 hex: static pod)
  std::string systemd_unit;  // e.g. "nginx.service" (the innermost .service/.scope)
};

// Read once from /proc when a process is first seen; never re-read per scrape.
struct Identity {
  bool resolved = false;  // false: the process was gone before /proc could be read
  std::string exe;        // readlink of /proc/<pid>/exe, "" for kernel threads
  std::string user;       // name of the real uid, or the number when it has no name
  std::string cgroup_path;
  CgroupInfo cgroup;
};

// A live process as one pass of the process iterator saw it.
struct ProcessSample {
  ps_key key{};
  uint32_t ppid = 0;
  uint32_t uid = 0;
  uint32_t nr_threads = 0;
  // The iterator said nothing changed since the previous read (the rest is that read's copy).
  bool unchanged = false;
  // Running threads' unfolded counters were added: not a copy the next read can stand for.
  bool with_deltas = false;
  uint64_t cgroup_id = 0;
  uint64_t rss_bytes = 0;
  std::string comm;  // raw bytes as the kernel holds them (any bytes but NUL)
  ps_counters counters{};
  ps_io io{};
};

// A live process as the process table keeps it: the newest sample (counters kept monotonic),
// plus what the table adds: its group, its identity from /proc, its start as wall-clock time.
struct ProcessInfo : ProcessSample {
  std::string group;
  Identity identity;
  absl::Time start_time;  // wall clock
  // Bumped by the process table at every write (0: not from a table): two copies of a process
  // with the same version are equal, so that a pass can skip what did not change.
  uint64_t version = 0;
};

// The totals of a group: every process that ever ran in it (live + exited).
struct GroupInfo {
  std::string name;
  ps_counters counters{};  // includes the run-queue wait histogram
  ps_io io{};
  uint64_t processes = 0;                   // live now
  uint64_t rss_bytes = 0;                   // of the live processes
  std::map<std::string, uint64_t> exits;    // outcome name ("success", ...) -> count
  std::map<std::string, uint64_t> crashes;  // signal name ("SIGSEGV", ...) -> count
  absl::Time last_active;                   // last time it had a live process or an exit
};

// One attached BPF program and what the kernel says it costs (kernel.bpf_stats_enabled=1).
struct ProgramStats {
  std::string name;
  std::string hook;    // tracepoint name
  std::string attach;  // "tp_btf", "raw_tp" or "iter"
  uint64_t run_time_ns = 0;
  uint64_t run_cnt = 0;
};

// The `stats` per-CPU array summed over CPUs, indexed by enum ps_stat: drop counters of every
// lossy path and I/O that could not be charged to a process.
using KernelStats = std::array<uint64_t, PS_STAT_MAX>;

// Name of a stats index ("drop_ringbuf", ...), used for metric labels and the status API. Never
// null: an index out of range is "unknown" (and a ps_stat without a name does not compile).
const char* StatName(int index);

// How full one BPF hash map is that can fill up.
struct MapFill {
  std::string name;
  uint64_t entries = 0;
  uint64_t max_entries = 0;
};

// Contention over one collector pass: the run-queue wait of `victim`'s episodes (each of at least
// 1 ms) that ended when `culprit` left the CPU. From the BPF `contention` map, drained per pass.
struct ContentionPair {
  ps_key culprit{};
  ps_key victim{};
  uint64_t wait_ns = 0;
  uint64_t episodes = 0;
};

// Resources the offender detector ranks.
enum class Resource { kCpu, kRunqueueWait, kMemoryGrowth, kPageFaults, kBlockIo, kCrashes };
inline constexpr size_t kNumResources = 6;  // checked against the name table in model.cc
const char* ResourceName(Resource r);       // "cpu", "runqueue_wait", "memory_growth", ...
const char* ResourceUnit(Resource r);       // "cores", "cores", "bytes/s", "faults/s", "bytes/s",
                                            // "crashes/min"
inline constexpr Resource kAllResources[kNumResources] = {
    Resource::kCpu,        Resource::kRunqueueWait, Resource::kMemoryGrowth,
    Resource::kPageFaults, Resource::kBlockIo,      Resource::kCrashes};

// One process's rate of one resource over the offender window.
struct ResourceRate {
  ps_key key{};
  double rate = 0;
};

// A process flagged for one resource.
struct Offender {
  Resource resource = Resource::kCpu;
  ps_key key{};  // for kCrashes: the last crashed process of the group
  std::string comm;
  std::string group;
  std::string container;
  double rate = 0;   // in ResourceUnit()
  double share = 0;  // of the machine, 0..1, where meaningful (cpu: of all cores), else 0
  std::string reason;
  absl::Time since;  // first evaluation that flagged it, continuously since
  // Where it spends the resource, from the profile history ("hottest: sha256_block ← hash_file
  // ← main"; a block I/O offender's top blocked stack); "" when there are no stacks.
  std::string where;
};

}  // namespace procscope

#endif  // PROCSCOPE_MODEL_MODEL_H_
