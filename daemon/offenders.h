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
  // Saturation: when the run-queue wait summed over every process is at least
  // `saturation_runqueue_per_cpu` cores per CPU, or the CPU pressure (PSI "some avg10") at least
  // `saturation_cpu_pressure` percent, the top CPU users (each at least
  // `saturation_min_cpu_cores`, at most `max_saturation_offenders`, covering 90 % of the CPU the
  // processes used) are cpu offenders even when none dominates.
  double saturation_runqueue_per_cpu = 0.25;
  double saturation_cpu_pressure = 40;
  double saturation_min_cpu_cores = 0.2;
  int max_saturation_offenders = 4;
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
  // The culprit/victim pairs of one collector pass (Collector::DrainContention), kept for the
  // window: who delayed whom.
  void ObserveContention(const std::vector<ContentionPair>& pairs, absl::Time now);
  // The CPU pressure (PSI some avg10, percent) at `now`; negative: not known.
  void ObserveCpuPressure(double some_avg10) { cpu_pressure_ = some_avg10; }

  // Over the window: the processes whose run-queue wait ended when `culprit` left the CPU
  // (other than itself, episodes of 1 ms or more), with the wait, most first.
  std::vector<ResourceRate> Victims(const ps_key& culprit) const;
  // Over the window: who delayed `victim`, with the wait caused, most first.
  std::vector<ResourceRate> Culprits(const ps_key& victim) const;
  // The rate of run-queue wait a process caused (runq_caused_ns) over the window, in s/s.
  double CausedRate(const ps_key& culprit) const;

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
    uint64_t runq_caused_ns = 0;
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
    uint64_t version = 0;  // of the ProcessInfo last observed (ProcessInfo::version)
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

  // One pass's contention pairs.
  struct ContentionPass {
    absl::Time time;
    std::vector<ContentionPair> pairs;
  };

  static Id IdOf(const ps_key& k) { return {k.tgid, k.start_ns}; }
  // The victims of `key` (of_culprit) or its culprits, by wait over the window, highest first.
  std::vector<ResourceRate> Partners(const ps_key& key, bool of_culprit) const;
  static bool SameCounters(const Point& a, const Point& b);
  static bool IdleThroughWindow(const Track& t, absl::Time cutoff);
  // Copies what the table wrote for `p` into its track and adds the pass's point (or extends the
  // plateau, or replaces a point closer than `spacing`).
  static void Update(Track& t, const ProcessInfo& p, absl::Time now, absl::Duration spacing);
  static Point BasePoint(const Track& t, absl::Time cutoff, absl::Time newest, bool from_birth);
  double ProcessRate(const Track& t, Resource r) const;
  double CausedRate(const Track& t) const;
  // Fills the track's comm, group and container into `o`.
  void Describe(const ps_key& key, Offender& o) const;
  // "worker-b delayed 14 processes by 3.20 s/s", or "" when it delayed no other process.
  std::string DelayedText(const ps_key& culprit) const;
  // The cpu offenders beyond the one-process rule: a process whose caused wait stands out, and
  // the top contributors of a saturated machine.
  void EvaluateContention(std::vector<Offender>& out, const std::vector<ResourceRate>& cpu);
  void PruneCrashes(absl::Time now);
  double MinRate(Resource r) const;

  OffenderConfig config_;
  absl::Time last_observe_ = absl::InfinitePast();  // reference time of the process rates
  absl::Time now_ = absl::InfinitePast();           // latest time seen by any call
  absl::flat_hash_map<Id, Track> tracks_;
  std::map<std::string, CrashTrack> crashes_;  // by group
  std::map<Resource, Flag> flags_;             // the offenders of the last Evaluate
  // The extra cpu offenders of the last Evaluate (contention, saturation): since when.
  std::map<Id, absl::Time> extra_cpu_flags_;
  std::deque<ContentionPass> contention_;  // oldest first, within the window
  double cpu_pressure_ = -1;
  // Rankings computed since the last change (Observe, ObserveCrash, Reconfigure): Evaluate and
  // the daemon's scrapes ask for the same ones within a pass.
  mutable std::map<Resource, std::vector<ResourceRate>> ranking_cache_;
  // The tracks not idle through the window as of the last Observe (which invalidates it): the
  // only ones a ranking looks at. Points into tracks_, which only Observe changes.
  mutable std::vector<const Track*> active_;
  mutable bool active_valid_ = false;
};

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_OFFENDERS_H_
