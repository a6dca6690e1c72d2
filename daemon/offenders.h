// SPDX-License-Identifier: Apache-2.0
// Who is hurting the machine: per-resource rates of every process over a sliding window, ranked,
// and flagged when a process stands out.
#ifndef PROCSCOPE_DAEMON_OFFENDERS_H_
#define PROCSCOPE_DAEMON_OFFENDERS_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "model.h"

namespace procscope {

struct OffenderConfig {
  absl::Duration window = absl::Seconds(30);
  int num_cpus = 1;  // for the cpu share
  // A process is flagged for a resource when its rate is at least `min_rate` for it AND at least
  // `dominance` times the next process's rate.
  double dominance = 2.0;
  double min_cpu_cores = 0.5;
  double min_runqueue_cores = 0.1;         // waiting 100 ms per second
  double min_memory_growth_bps = 4 << 20;  // 4 MiB/s of resident memory growth
  double min_page_faults_per_s = 2000;
  double min_block_io_bps = 4 << 20;  // 4 MiB/s read + write
  double min_crashes_per_min = 3;     // per group, crashed or oom_killed exits
};
absl::Status ValidateOffenderConfig(const OffenderConfig& c);

class OffenderDetector {
 public:
  explicit OffenderDetector(OffenderConfig config);
  void Reconfigure(OffenderConfig config);

  // One observation of every live process (counters are totals since process start).
  void Observe(const std::vector<ProcessInfo>& processes, absl::Time now);
  // The same, without copies: the daemon passes its table's entries.
  void Observe(const std::vector<const ProcessInfo*>& processes, absl::Time now);
  // A crash (crashed or oom_killed exit) of a process of `group`.
  void ObserveCrash(const ProcessInfo& process, absl::Time now);

  // Rates over the window, per resource, highest first, positive ones only (kCrashes: per
  // group, keyed by the last crashed process). A process seen for less than the window is
  // measured over the time it was seen, from zero if it started inside the window.
  std::vector<ResourceRate> Ranking(Resource r) const;

  // The processes that stand out now, with the reason in words
  // ("cpu 0.92 cores, 11.0x the next process"). `since` is kept while a flag persists.
  std::vector<Offender> Evaluate(absl::Time now);

 private:
  // A process incarnation: pid plus start time, since pids are reused.
  using Id = std::pair<uint32_t, uint64_t>;

  // The counters that rates are taken of, at one observation.
  struct Point {
    absl::Time time;
    uint64_t cpu_ns = 0;
    uint64_t runq_ns = 0;
    uint64_t faults = 0;    // minor + major
    uint64_t io_bytes = 0;  // block read + write
    uint64_t rss_bytes = 0;
  };

  struct Track {
    ps_key key{};
    std::string comm;
    std::string group;
    std::string container;
    absl::Time start_time;
    absl::Time seen;  // last Observe that listed it
    // Oldest first; points[0] may be the baseline before the window. Observations that change
    // nothing are not stored (most processes are idle): plateau_end is the last of them.
    std::vector<Point> points;
    absl::Time plateau_end = absl::InfinitePast();
  };

  struct CrashTrack {
    ps_key key{};  // of the last crashed process
    std::string comm;
    std::string group;
    std::string container;
    std::deque<absl::Time> times;  // oldest first, within the window
  };

  struct Flag {
    ps_key key{};
    absl::Time since;
  };

  static Id IdOf(const ps_key& k) { return {k.tgid, k.start_ns}; }
  static bool SameCounters(const Point& a, const Point& b);
  double ProcessRate(const Track& t, Resource r) const;
  void PruneCrashes(absl::Time now);
  double MinRate(Resource r) const;

  OffenderConfig config_;
  absl::Time last_observe_ = absl::InfinitePast();  // reference time of the process rates
  absl::Time now_ = absl::InfinitePast();           // latest time seen by any call
  absl::flat_hash_map<Id, Track> tracks_;
  std::map<std::string, CrashTrack> crashes_;  // by group
  std::map<Resource, Flag> flags_;             // the offenders of the last Evaluate
  // Rankings computed since the last change (Observe, ObserveCrash, Reconfigure): Evaluate and
  // the daemon's scrapes ask for the same ones within a pass.
  mutable std::map<Resource, std::vector<ResourceRate>> ranking_cache_;
};

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_OFFENDERS_H_
