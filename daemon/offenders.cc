// SPDX-License-Identifier: Apache-2.0
#include "offenders.h"

#include <algorithm>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "text.h"

namespace procscope {
namespace {

// An observation closer than window / kMaxPointsPerWindow to the point before the newest
// replaces the newest instead of being appended: any two points apart by one are at least that
// far apart, so a process holds at most 2 * kMaxPointsPerWindow + 2 points however often the
// daemon observes.
constexpr int kMaxPointsPerWindow = 16;

// Rate of a total that must not go down (a decrease would be a bug upstream): never negative.
double Delta(uint64_t newest, uint64_t base) {
  return newest >= base ? static_cast<double>(newest - base) : 0;
}

const char* What(Resource r) {
  switch (r) {
    case Resource::kCpu:
      return "cpu";
    case Resource::kRunqueueWait:
      return "run-queue wait";
    case Resource::kMemoryGrowth:
      return "memory growth";
    case Resource::kPageFaults:
      return "page faults";
    case Resource::kBlockIo:
      return "block I/O";
    case Resource::kCrashes:
      return "crashes";
  }
  return "unknown";
}

std::string FormatRate(Resource r, double rate) {
  switch (r) {
    case Resource::kCpu:
    case Resource::kRunqueueWait:
      return absl::StrFormat("%.2f cores", rate);
    case Resource::kMemoryGrowth:
    case Resource::kBlockIo:
      return HumanBytes(rate, " ") + "/s";
    case Resource::kPageFaults:
      return absl::StrFormat("%.0f faults/s", rate);
    case Resource::kCrashes:
      return absl::StrFormat("%.1f crashes/min", rate);
  }
  return "";
}

bool RankedBefore(const ResourceRate& a, const ResourceRate& b) {
  if (a.rate != b.rate) return a.rate > b.rate;
  if (a.key.tgid != b.key.tgid) return a.key.tgid < b.key.tgid;
  return a.key.start_ns < b.key.start_ns;
}

bool SameKey(const ps_key& a, const ps_key& b) {
  return a.tgid == b.tgid && a.start_ns == b.start_ns;
}

// A comm for a reason text: its bytes are the process's choice, so only printable ASCII stays.
std::string SafeComm(const std::string& comm) {
  std::string out = comm;
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

// "must be >= 0" for a minimum; the negated comparison also rejects NaN.
absl::Status CheckMinimum(const char* field, double v) {
  if (!(v >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat("offender ", field, " ", v, ": must be >= 0"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateOffenderConfig(const OffenderConfig& c) {
  if (c.window < absl::Seconds(5) || c.window > absl::Hours(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "offender window ", absl::FormatDuration(c.window), ": must be between 5s and 1h"));
  }
  if (c.num_cpus < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("offender num_cpus ", c.num_cpus, ": must be at least 1"));
  }
  if (!(c.dominance >= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("offender dominance ", c.dominance, ": must be at least 1"));
  }
  if (c.max_saturation_offenders < 0) {
    return absl::InvalidArgumentError(absl::StrCat("offender max_saturation_offenders ",
                                                   c.max_saturation_offenders, ": must be >= 0"));
  }
  const std::pair<const char*, double> minimums[] = {
      {"saturation_runqueue_per_cpu", c.saturation_runqueue_per_cpu},
      {"saturation_cpu_pressure", c.saturation_cpu_pressure},
      {"saturation_min_cpu_cores", c.saturation_min_cpu_cores},
      {"min_cpu_cores", c.min_cpu_cores},
      {"min_runqueue_cores", c.min_runqueue_cores},
      {"min_memory_growth_bps", c.min_memory_growth_bps},
      {"min_page_faults_per_s", c.min_page_faults_per_s},
      {"min_block_io_bps", c.min_block_io_bps},
      {"min_crashes_per_min", c.min_crashes_per_min},
  };
  for (const auto& [field, v] : minimums) {
    absl::Status s = CheckMinimum(field, v);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

OffenderDetector::OffenderDetector(OffenderConfig config) : config_(std::move(config)) {}

void OffenderDetector::Reconfigure(OffenderConfig config) {
  // History is kept: a longer window fills in as observations come; a shorter one applies at once
  // (rates pick their baseline and count crashes by the current window) and is pruned to at the
  // next call.
  config_ = std::move(config);
  ranking_cache_.clear();
  active_valid_ = false;  // idle through another window
}

bool OffenderDetector::SameCounters(const Point& a, const Point& b) {
  return a.cpu_ns == b.cpu_ns && a.runq_ns == b.runq_ns && a.faults == b.faults &&
         a.io_bytes == b.io_bytes && a.rss_bytes == b.rss_bytes &&
         a.runq_caused_ns == b.runq_caused_ns;
}

void OffenderDetector::Observe(const std::vector<ProcessInfo>& processes, absl::Time now) {
  std::vector<const ProcessInfo*> ptrs;
  ptrs.reserve(processes.size());
  for (const ProcessInfo& p : processes) ptrs.push_back(&p);
  Observe(ptrs, now);
}

void OffenderDetector::Observe(const std::vector<const ProcessInfo*>& processes, absl::Time now) {
  ranking_cache_.clear();
  active_valid_ = false;  // tracks_ changes below
  last_observe_ = now;
  now_ = std::max(now_, now);
  const absl::Time cutoff = now - config_.window;
  const absl::Duration spacing = config_.window / kMaxPointsPerWindow;

  for (const ProcessInfo* pp : processes) {
    const ProcessInfo& p = *pp;
    Track& t = tracks_[IdOf(p.key)];
    std::vector<Point>& points = t.points;
    if (p.version != 0 && t.version == p.version && !points.empty() && now >= points.back().time) {
      // Not written by the table since the last pass (idle): the same counters, names and start.
      t.seen = now;
      t.plateau_end = now;
    } else {
      Update(t, p, now, spacing);
    }
    // Keep the newest point at or before the cutoff as the baseline.
    size_t drop = 0;
    while (points.size() - drop >= 2 && points[drop + 1].time <= cutoff) ++drop;
    points.erase(points.begin(), points.begin() + drop);
  }

  PruneCrashes(now_);

  // Vanished processes are not ranked (and their pid may come back as another process).
  for (auto it = tracks_.begin(); it != tracks_.end();) {
    if (it->second.seen != now) {
      tracks_.erase(it++);
    } else {
      ++it;
    }
  }
  // A hash map keeps its slots after its entries go: after thousands of exits, give them back.
  if (tracks_.capacity() > 4 * tracks_.size() + 64) tracks_.rehash(0);
}

void OffenderDetector::Update(Track& t, const ProcessInfo& p, absl::Time now,
                              absl::Duration spacing) {
  t.version = p.version;
  t.key = p.key;
  t.comm = p.comm;
  t.group = p.group;
  t.container = p.identity.cgroup.container_id;
  t.start_time = p.start_time;
  t.seen = now;

  Point point;
  point.time = now;
  point.cpu_ns = p.counters.cpu_ns;
  point.runq_ns = p.counters.runq_ns;
  point.faults = p.counters.min_flt + p.counters.maj_flt;
  point.io_bytes = p.io.read_bytes + p.io.write_bytes;
  point.rss_bytes = p.rss_bytes;
  point.runq_caused_ns = p.counters.runq_caused_ns;

  std::vector<Point>& points = t.points;
  // The wall clock went back: the old points would be in the future, start over.
  if (!points.empty() && now < points.back().time) {
    points.clear();
    t.plateau_end = absl::InfinitePast();
  }
  if (!points.empty() && SameCounters(points.back(), point)) {
    t.plateau_end = now;  // idle: no new point
  } else if (!points.empty() && t.plateau_end > points.back().time) {
    // Activity after a plateau: the plateau's end is where the change starts from.
    Point end = points.back();
    end.time = t.plateau_end;
    points.push_back(end);
    points.push_back(point);
  } else if (!points.empty() && now == points.back().time) {
    points.back() = point;
  } else if (points.size() >= 2 && now - points[points.size() - 2].time < spacing) {
    points.back() = point;
  } else {
    points.push_back(point);
  }
}

void OffenderDetector::ObserveCrash(const ProcessInfo& process, absl::Time now) {
  ranking_cache_.clear();
  now_ = std::max(now_, now);
  CrashTrack& c = crashes_[process.group];
  c.key = process.key;
  c.comm = process.comm;
  c.group = process.group;
  c.container = process.identity.cgroup.container_id;
  c.times.insert(std::upper_bound(c.times.begin(), c.times.end(), now), now);
  PruneCrashes(now_);
}

void OffenderDetector::ObserveContention(const std::vector<ContentionPair>& pairs, absl::Time now) {
  ranking_cache_.clear();
  now_ = std::max(now_, now);
  if (!pairs.empty()) contention_.push_back({now, pairs});
  PruneCrashes(now_);
}

std::vector<ResourceRate> OffenderDetector::Partners(const ps_key& key, bool of_culprit) const {
  absl::flat_hash_map<Id, double> ns;
  for (const ContentionPass& pass : contention_) {
    for (const ContentionPair& c : pass.pairs) {
      const ps_key& self = of_culprit ? c.culprit : c.victim;
      const ps_key& other = of_culprit ? c.victim : c.culprit;
      if (SameKey(self, key) && !SameKey(other, key)) {
        ns[IdOf(other)] += static_cast<double>(c.wait_ns);
      }
    }
  }
  std::vector<ResourceRate> out;
  for (const auto& [id, v] : ns) {
    ps_key k{};
    k.tgid = id.first;
    k.start_ns = id.second;
    out.push_back({k, v / 1e9});
  }
  std::sort(out.begin(), out.end(), RankedBefore);
  return out;
}

std::vector<ResourceRate> OffenderDetector::Victims(const ps_key& culprit) const {
  return Partners(culprit, /*of_culprit=*/true);
}

std::vector<ResourceRate> OffenderDetector::Culprits(const ps_key& victim) const {
  return Partners(victim, /*of_culprit=*/false);
}

void OffenderDetector::PruneCrashes(absl::Time now) {
  const absl::Time cutoff = now - config_.window;
  while (!contention_.empty() && contention_.front().time <= cutoff) contention_.pop_front();
  for (auto it = crashes_.begin(); it != crashes_.end();) {
    std::deque<absl::Time>& times = it->second.times;
    while (!times.empty() && times.front() <= cutoff) times.pop_front();
    if (times.empty()) {
      it = crashes_.erase(it);
    } else {
      ++it;
    }
  }
}

// The point a rate over the window is measured from: zero counters at its start for a process
// born inside the window (`from_birth`), else the newest point at or before the cutoff (the
// oldest when seen for less than the window), moved to the cutoff across a plateau.
OffenderDetector::Point OffenderDetector::BasePoint(const Track& t, absl::Time cutoff,
                                                    absl::Time newest, bool from_birth) {
  Point base;
  if (from_birth && t.start_time > cutoff && t.start_time < newest) {
    base.time = t.start_time;
    return base;
  }
  auto it = std::upper_bound(t.points.begin(), t.points.end(), cutoff,
                             [](absl::Time c, const Point& p) { return c < p.time; });
  base = it == t.points.begin() ? t.points.front() : *std::prev(it);
  // A plateau across the cutoff: the counters at the cutoff were the base's.
  if (it != t.points.begin() && it != t.points.end() && SameCounters(base, *it)) {
    base.time = cutoff;
  }
  return base;
}

// Unchanged since before the window (a single point, and not born inside it): every rate is 0.
// Most processes are idle; this spares them the time arithmetic, each resource, each pass.
bool OffenderDetector::IdleThroughWindow(const Track& t, absl::Time cutoff) {
  return t.points.size() == 1 && t.start_time <= cutoff;
}

double OffenderDetector::ProcessRate(const Track& t, Resource r) const {
  if (t.points.empty()) return 0;
  const absl::Time cutoff = last_observe_ - config_.window;
  if (IdleThroughWindow(t, cutoff)) return 0;
  Point newest = t.points.back();
  newest.time = std::max(newest.time, t.plateau_end);  // unchanged since

  // Memory and faults are not measured from birth: every process starts by faulting its
  // binary in and growing from nothing, which over a short life looks like a leak or a storm.
  // They are measured from the first observation. Every rate needs a quarter of the window.
  const bool from_birth = r != Resource::kMemoryGrowth && r != Resource::kPageFaults;
  const Point base = BasePoint(t, cutoff, newest.time, from_birth);
  const double seconds = absl::ToDoubleSeconds(newest.time - base.time);
  if (seconds <= 0) return 0;
  // Too young (or seen too briefly) to rank: a 50 ms sed at 1 core is no CPU hog.
  if (newest.time - base.time < config_.window / 4) return 0;

  switch (r) {
    case Resource::kCpu:
      return Delta(newest.cpu_ns, base.cpu_ns) / seconds / 1e9;
    case Resource::kRunqueueWait:
      return Delta(newest.runq_ns, base.runq_ns) / seconds / 1e9;
    case Resource::kMemoryGrowth:
      return Delta(newest.rss_bytes, base.rss_bytes) / seconds;  // shrinking counts as 0
    case Resource::kPageFaults:
      return Delta(newest.faults, base.faults) / seconds;
    case Resource::kBlockIo:
      return Delta(newest.io_bytes, base.io_bytes) / seconds;
    case Resource::kCrashes:
      return 0;
  }
  return 0;
}

double OffenderDetector::CausedRate(const Track& t) const {
  if (t.points.empty()) return 0;
  // As the run-queue wait: from birth inside the window, else from the baseline point.
  const absl::Time cutoff = last_observe_ - config_.window;
  if (IdleThroughWindow(t, cutoff)) return 0;
  Point newest = t.points.back();
  newest.time = std::max(newest.time, t.plateau_end);
  const Point base = BasePoint(t, cutoff, newest.time, /*from_birth=*/true);
  if (newest.time - base.time < config_.window / 4) return 0;
  return Delta(newest.runq_caused_ns, base.runq_caused_ns) /
         absl::ToDoubleSeconds(newest.time - base.time) / 1e9;
}

double OffenderDetector::CausedRate(const ps_key& culprit) const {
  auto it = tracks_.find(IdOf(culprit));
  return it == tracks_.end() ? 0 : CausedRate(it->second);
}

void OffenderDetector::Describe(const ps_key& key, Offender& o) const {
  if (auto it = tracks_.find(IdOf(key)); it != tracks_.end()) {
    o.comm = it->second.comm;
    o.group = it->second.group;
    o.container = it->second.container;
  }
}

std::string OffenderDetector::DelayedText(const ps_key& culprit) const {
  const std::vector<ResourceRate> victims = Victims(culprit);
  if (victims.empty()) return "";
  auto it = tracks_.find(IdOf(culprit));
  const std::string comm = it != tracks_.end() ? it->second.comm : absl::StrCat(culprit.tgid);
  double rate = CausedRate(culprit);
  if (rate <= 0) {  // not measured long enough: what the pairs say, over the window
    for (const ResourceRate& v : victims) rate += v.rate;
    rate /= absl::ToDoubleSeconds(config_.window);
  }
  return absl::StrFormat("%s delayed %d process%s by %.2f s/s", SafeComm(comm), victims.size(),
                         victims.size() == 1 ? "" : "es", rate);
}

void OffenderDetector::EvaluateContention(std::vector<Offender>& out,
                                          const std::vector<ResourceRate>& cpu) {
  std::map<Id, absl::Time> flagged;
  auto add = [&](const ps_key& key, double rate, std::string reason) {
    for (const Offender& o : out) {
      if (o.resource == Resource::kCpu && SameKey(o.key, key)) return;
    }
    Offender o;
    o.resource = Resource::kCpu;
    o.key = key;
    o.rate = rate;
    o.share = std::clamp(rate / std::max(config_.num_cpus, 1), 0.0, 1.0);
    o.reason = std::move(reason);
    Describe(key, o);
    auto prev = extra_cpu_flags_.find(IdOf(key));
    o.since = prev != extra_cpu_flags_.end() ? prev->second : last_observe_;
    flagged[IdOf(key)] = o.since;
    out.push_back(std::move(o));
  };
  auto cpu_of = [&](const ps_key& key) {
    for (const ResourceRate& r : cpu) {
      if (SameKey(r.key, key)) return r.rate;
    }
    return 0.0;
  };

  // A process whose caused run-queue wait stands out, as the one-process rule does.
  std::vector<ResourceRate> caused;
  for (const auto& [id, t] : tracks_) {
    const double rate = CausedRate(t);
    if (rate > 0) caused.push_back({t.key, rate});
  }
  std::sort(caused.begin(), caused.end(), RankedBefore);
  if (!caused.empty() && caused[0].rate >= config_.min_runqueue_cores &&
      (caused.size() < 2 || caused[0].rate >= config_.dominance * caused[1].rate)) {
    std::string text = DelayedText(caused[0].key);
    if (!text.empty()) {
      add(caused[0].key, cpu_of(caused[0].key),
          absl::StrCat(text, ", cpu ", FormatRate(Resource::kCpu, cpu_of(caused[0].key))));
    }
  }

  // Saturation: several contributors, none of which need dominate.
  double runq = 0, used = 0;
  for (const ResourceRate& r : Ranking(Resource::kRunqueueWait)) runq += r.rate;
  for (const ResourceRate& r : cpu) used += r.rate;
  const bool by_runq = runq >= config_.saturation_runqueue_per_cpu * config_.num_cpus && runq > 0;
  const bool by_psi = cpu_pressure_ >= 0 && cpu_pressure_ >= config_.saturation_cpu_pressure;
  if ((by_runq || by_psi) && used > 0) {
    std::string why = absl::StrFormat("machine saturated (run-queue wait %.2f cores on %d CPU%s",
                                      runq, config_.num_cpus, config_.num_cpus == 1 ? "" : "s");
    if (cpu_pressure_ >= 0) absl::StrAppendFormat(&why, ", cpu pressure %.0f %%", cpu_pressure_);
    why += ")";
    double covered = 0;
    int n = 0;
    for (const ResourceRate& r : cpu) {
      if (n >= config_.max_saturation_offenders || covered >= 0.9 * used) break;
      if (r.rate < config_.saturation_min_cpu_cores) break;
      covered += r.rate;
      ++n;
      std::string reason = absl::StrFormat("%s: cpu %s, %.0f %% of all processes' CPU", why,
                                           FormatRate(Resource::kCpu, r.rate), 100 * r.rate / used);
      if (std::string text = DelayedText(r.key); !text.empty()) {
        absl::StrAppend(&reason, "; ", text);
      }
      add(r.key, r.rate, std::move(reason));
    }
  }
  extra_cpu_flags_ = std::move(flagged);
}

std::vector<ResourceRate> OffenderDetector::Ranking(Resource r) const {
  auto cached = ranking_cache_.find(r);
  if (cached != ranking_cache_.end()) return cached->second;
  std::vector<ResourceRate> out;
  if (r == Resource::kCrashes) {
    const absl::Time cutoff = now_ - config_.window;
    const double per_minute = 60 / absl::ToDoubleSeconds(config_.window);
    for (const auto& [group, c] : crashes_) {
      const auto n = std::count_if(c.times.begin(), c.times.end(),
                                   [&](absl::Time t) { return t > cutoff && t <= now_; });
      if (n > 0) out.push_back({c.key, static_cast<double>(n) * per_minute});
    }
  } else {
    // Only positive rates rank: most processes are idle, and sorting their zeros every pass
    // was most of the daemon's CPU with thousands of them. Those idle through the window are
    // left out once per pass, not once per resource.
    if (!active_valid_) {
      const absl::Time cutoff = last_observe_ - config_.window;
      active_.clear();
      for (const auto& [id, t] : tracks_) {
        if (!t.points.empty() && !IdleThroughWindow(t, cutoff)) active_.push_back(&t);
      }
      active_valid_ = true;
    }
    for (const Track* t : active_) {
      const double rate = ProcessRate(*t, r);
      if (rate > 0) out.push_back({t->key, rate});
    }
  }
  std::sort(out.begin(), out.end(), RankedBefore);
  ranking_cache_[r] = out;
  return out;
}

double OffenderDetector::MinRate(Resource r) const {
  switch (r) {
    case Resource::kCpu:
      return config_.min_cpu_cores;
    case Resource::kRunqueueWait:
      return config_.min_runqueue_cores;
    case Resource::kMemoryGrowth:
      return config_.min_memory_growth_bps;
    case Resource::kPageFaults:
      return config_.min_page_faults_per_s;
    case Resource::kBlockIo:
      return config_.min_block_io_bps;
    case Resource::kCrashes:
      return config_.min_crashes_per_min;
  }
  return 0;
}

std::vector<Offender> OffenderDetector::Evaluate(absl::Time now) {
  ranking_cache_.clear();  // a later `now` moves the crash window
  now_ = std::max(now_, now);
  PruneCrashes(now_);

  std::vector<Offender> out;
  for (Resource r : kAllResources) {
    const std::vector<ResourceRate> ranking = Ranking(r);
    const double top = ranking.empty() ? 0 : ranking[0].rate;
    const double next = ranking.size() > 1 ? ranking[1].rate : 0;
    // A zero rate is never an offence, even with a minimum of 0.
    // One crash is not a loop: at least two in the window, whatever the per-minute rate says.
    const double per_window = absl::ToDoubleSeconds(config_.window) / 60;
    const bool enough = r != Resource::kCrashes || top * per_window >= 2 - 1e-9;
    const bool flagged =
        top > 0 && enough && top >= MinRate(r) && (next <= 0 || top >= config_.dominance * next);
    if (!flagged) {
      flags_.erase(r);
      continue;
    }

    Offender o;
    o.resource = r;
    o.key = ranking[0].key;
    o.rate = top;
    if (r == Resource::kCpu || r == Resource::kRunqueueWait) {
      o.share = std::clamp(top / std::max(config_.num_cpus, 1), 0.0, 1.0);
    }
    if (r == Resource::kCrashes) {
      for (const auto& [group, c] : crashes_) {
        if (!SameKey(c.key, o.key)) continue;
        o.comm = c.comm;
        o.group = c.group;
        o.container = c.container;
        break;
      }
    } else if (auto it = tracks_.find(IdOf(o.key)); it != tracks_.end()) {
      o.comm = it->second.comm;
      o.group = it->second.group;
      o.container = it->second.container;
    }
    o.reason = absl::StrCat(What(r), " ", FormatRate(r, top), ", ",
                            next > 0 ? absl::StrFormat("%.1fx the next process", top / next)
                                     : "no other process close");
    if (r == Resource::kCpu) {
      if (std::string text = DelayedText(o.key); !text.empty())
        absl::StrAppend(&o.reason, "; ", text);
    } else if (r == Resource::kRunqueueWait) {
      // Its culprits: whose slices its waits ended with.
      const std::vector<ResourceRate> culprits = Culprits(o.key);
      std::string names;
      const double window_s = absl::ToDoubleSeconds(config_.window);
      for (size_t i = 0; i < culprits.size() && i < 3; ++i) {
        auto t = tracks_.find(IdOf(culprits[i].key));
        absl::StrAppendFormat(
            &names, "%s%s %.2f s/s", i == 0 ? "" : ", ",
            t != tracks_.end() ? SafeComm(t->second.comm) : absl::StrCat(culprits[i].key.tgid),
            culprits[i].rate / window_s);
      }
      if (!names.empty()) absl::StrAppend(&o.reason, "; delayed by ", names);
    }

    auto [flag, inserted] = flags_.try_emplace(r, Flag{o.key, now});
    if (!inserted && !SameKey(flag->second.key, o.key)) flag->second = Flag{o.key, now};
    o.since = flag->second.since;
    out.push_back(std::move(o));
  }
  EvaluateContention(out, Ranking(Resource::kCpu));
  return out;
}

}  // namespace procscope
