// SPDX-License-Identifier: Apache-2.0
// The collection loop: start-up, sampling passes, exit events, hot reload, and publishing the
// snapshot the HTTP handlers (handlers.cc) serve from.
#include "daemon.h"

#include <malloc.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "log.h"
#include "report.h"
#include "text.h"

namespace procscope {
namespace {

TableOptions TableOptionsOf(const ReloadableConfig& c, absl::Duration boot_to_unix) {
  TableOptions o = c.table;
  o.boot_to_unix = boot_to_unix;
  return o;
}

bool KeyLess(const ps_key& a, const ps_key& b) {
  return a.tgid != b.tgid ? a.tgid < b.tgid : a.start_ns < b.start_ns;
}

// Folded stacks a crash event carries.
constexpr size_t kCrashStacks = 5;

// The scheduler's own frames on top of every off-CPU stack: not where a process waits.
bool SchedulerFrame(const std::string& name) {
  return name == "__schedule" || name == "schedule" || name == "schedule_timeout" ||
         name == "schedule_hrtimeout_range_clock" || name == "schedule_hrtimeout_range" ||
         name == "schedule_preempt_disabled" || name == "io_schedule" ||
         name == "preempt_schedule_common" || name == "__cond_resched";
}

OffenderConfig OffenderConfigOf(const ReloadableConfig& c) {
  OffenderConfig o = c.offenders;
  if (o.num_cpus < 1) o.num_cpus = 1;
  return o;
}

}  // namespace

ReloadableConfig ReloadableOf(const Config& c) {
  ReloadableConfig r;
  r.interval = c.interval;
  r.top = c.top;
  r.quiet = c.quiet;
  r.table = c.table;
  r.offenders = c.offenders;
  r.export_options = c.export_options;
  return r;
}

absl::Duration BootToUnixOffset() {
  timespec rt, bt;
  clock_gettime(CLOCK_REALTIME, &rt);
  clock_gettime(CLOCK_BOOTTIME, &bt);
  return absl::DurationFromTimespec(rt) - absl::DurationFromTimespec(bt);
}

Daemon::Daemon(const Config& config)
    : config_(config),
      procfs_(config.proc_root),
      exits_(config.events_in_memory),
      started_(absl::Now()),
      boot_to_unix_(BootToUnixOffset()),
      reload_(ReloadableOf(config)),
      web_config_file_(config.web_config_file),
      table_(TableOptionsOf(reload_, boot_to_unix_), &procfs_),
      detector_(OffenderConfigOf(reload_)),
      pass_(std::make_shared<PassData>()) {
  self_.version = PROCSCOPE_VERSION;
  SymbolizerOptions so;
  so.proc_root = config.proc_root;
  symbolizer_ = std::make_unique<Symbolizer>(so);
  ProfileStoreOptions po;
  po.history = config.profile_history;
  profiles_ = std::make_unique<ProfileStore>(po);
  profiles_->set_profile_hz(config.collector.profile_hz);
}

Daemon::~Daemon() {
  http_.reset();  // no handler may run once members start going away
}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Create(const Config& config, bool serve_http) {
  std::unique_ptr<Daemon> d(new Daemon(config));
  CollectorOptions collector_options = config.collector;
  // With a journal, an exit leaves the ring buffer only once it is on disk (CommitExits after
  // each flush): a kill -9 before the flush leaves it for the next procscoped to read again.
  collector_options.defer_exit_commit = !config.journal_dir.empty();
  auto collector = Collector::Create(collector_options);
  if (!collector.ok()) return collector.status();
  d->collector_ = *std::move(collector);
  d->self_.degraded_hooks = d->collector_->Degraded();
  // Now, while procscoped still has CAP_SYSLOG (main drops it after Create): without it
  // kallsyms shows only zeros and kernel frames would be "[kernel]+0x<ip>".
  if (config.collector.profile_hz > 0 || config.collector.offcpu_stack_ratio > 0) {
    if (absl::Status s = d->symbolizer_->LoadKernelSymbols(); !s.ok()) {
      LOG(WARNING) << "kernel frames will have no names: " << s.message();
    }
  }

  if (!config.journal_dir.empty()) {
    // Streamed: the group totals fold each record in and the store keeps only the newest
    // --events_in_memory, so memory does not grow with the journal.
    const absl::Time now = absl::Now();
    Daemon* self = d.get();
    auto journal =
        Journal::Open(config.journal_dir, config.journal_max_bytes, [self, now](v1::ExitEvent&& e) {
          self->table_.RestoreExit(e, now);
          self->exits_.Add(std::move(e));
        });
    if (!journal.ok()) {
      return absl::Status(journal.status().code(),
                          absl::StrCat("crash journal: ",
                                       absl::StripPrefix(journal.status().message(), "journal: "),
                                       " (set --journal_dir, or --journal_dir= to disable)"));
    }
    d->journal_.emplace(*std::move(journal));
    {
      absl::MutexLock l(&d->pub_mu_);
      d->live_.journal_damaged_bytes = d->journal_->DamagedBytes();
    }
    malloc_trim(0);  // the reader's buffers and the evicted records
  }
  {
    absl::MutexLock l(&d->pub_mu_);
    d->live_.last_loop = absl::Now();
  }
  // Before the listener: the handlers always have a snapshot (the journal's groups, not ready).
  d->Publish(/*pass=*/false, absl::Now());

  if (serve_http) {
    Daemon* self = d.get();
    auto http = HttpServer::Start(
        config.listen,
        {
            {"/metrics", [self](absl::string_view) { return self->Metrics(); }},
            {"/api/v1/processes", [self](absl::string_view) { return self->Processes(); }},
            {"/api/v1/offenders", [self](absl::string_view) { return self->Offenders(); }},
            {"/api/v1/events", [self](absl::string_view q) { return self->Events(q); }},
            {"/api/v1/status", [self](absl::string_view) { return self->Status(); }},
            {"/debug/pprof/profile", [self](absl::string_view q) { return self->PprofProfile(q); }},
            {"/debug/pprof/offcpu", [self](absl::string_view q) { return self->PprofOffcpu(q); }},
            // Open to all (kubelet probes send no credentials); they tell only "alive", "ready".
            {"/healthz", [self](absl::string_view) { return self->Healthz(); }, /*open=*/true},
            {"/readyz", [self](absl::string_view) { return self->Readyz(); }, /*open=*/true},
        },
        config.web);
    if (!http.ok()) return http.status();
    d->http_ = *std::move(http);
  }
  // Once the start can no longer fail: a failing start says only why.
  if (const PinState& pin = d->collector_->Pinning(); !pin.message.empty()) {
    LOG(INFO) << pin.message;
  }
  return d;
}

int Daemon::http_port() const { return http_ ? http_->port() : 0; }

std::shared_ptr<const Snapshot> Daemon::snapshot() const {
  absl::MutexLock l(&pub_mu_);
  return snapshot_;
}

void Daemon::Publish(bool pass, absl::Time now) {
  auto s = std::make_shared<Snapshot>();
  if (pass) {
    auto p = std::make_shared<PassData>();
    // The table's own copies: a process that did not change since the last pass is the same
    // object as in the last snapshot, and nothing is copied for it.
    p->processes = table_.SharedProcesses();
    std::sort(p->processes.begin(), p->processes.end(),
              [](const std::shared_ptr<const ProcessInfo>& a,
                 const std::shared_ptr<const ProcessInfo>& b) { return KeyLess(a->key, b->key); });
    p->offenders = detector_.Evaluate(now);
    AddOffenderWhere(&p->offenders, now);
    p->rankings.reserve(kNumResources);
    for (Resource r : kAllResources) p->rankings.push_back(detector_.Ranking(r));
    // Only the processes that can get series: the top K of each resource, and offenders.
    const size_t top_k = reload_.export_options.top_k;
    std::vector<ps_key> keys;
    for (const std::vector<ResourceRate>& ranking : p->rankings) {
      const size_t n = std::min(ranking.size(), top_k);
      p->top_rates.emplace_back(ranking.begin(), ranking.begin() + n);
      for (size_t i = 0; i < n; ++i) keys.push_back(ranking[i].key);
    }
    for (const Offender& o : p->offenders) keys.push_back(o.key);
    p->top_processes = table_.ProcessesWithKeys(keys);
    pass_ = std::move(p);
  }
  s->ready = ready_;
  s->taken = now;
  s->pass = pass_;
  s->groups = table_.Groups();
  s->self = self_;
  s->self.tracked_processes = table_.size();
  s->export_options = reload_.export_options;
  s->group_by = GroupByName(config_.table.group_by);
  s->offender_window = reload_.offenders.window;
  s->num_cpus = std::max(1, reload_.offenders.num_cpus);
  if (collector_) s->degraded_hooks = collector_->Degraded();
  s->started = started_;
  exits_pending_ = false;
  std::shared_ptr<const Snapshot> old;
  absl::MutexLock l(&pub_mu_);
  old.swap(snapshot_);  // the old one is freed after the unlock (or by its last reader)
  snapshot_ = std::move(s);
}

void Daemon::Sample() {
  const absl::Status read = collector_->ReadPass(pass_records_);
  // After the read: a young process's age must not come out shorter than what it ran.
  const absl::Time now = absl::Now();
  if (!read.ok()) {
    LOG(ERROR) << read.message();
    return;
  }
  auto stats = collector_->ReadStats();
  // A process the table cannot stand for (filters changed): every record whole next time.
  if (!table_.ApplyPass(pass_records_, now)) collector_->RestartSession();
  DrainProfiles(now);
  detector_.Observe(table_.ProcessPtrs(), now);
  // Who delayed whom this pass, and the CPU pressure: for culprits and saturation.
  if (auto pairs = collector_->DrainContention(); pairs.ok()) {
    detector_.ObserveContention(*pairs, now);
  } else {
    LOG(ERROR) << pairs.status().message();
  }
  auto pressure = procfs_.ReadCpuPressure();
  detector_.ObserveCpuPressure(pressure.ok() ? *pressure : -1);
  if (stats.ok()) self_.kernel_stats = *stats;
  self_.programs = collector_->Programs();
  ready_ = true;
  Publish(/*pass=*/true, now);
  {
    absl::MutexLock l(&pub_mu_);
    live_.last_loop = now;
  }
}

void Daemon::CaptureProfiled() {
  collector_->PollProfiled([this](const ProfiledProcess& p) {
    // Every new stack_counts entry notifies, and the map is drained each pass, so a busy process
    // notifies at every sample. Re-reading its mappings per notification cost 0.8 % of a core
    // with 100 busy processes at 19 Hz; Refresh re-reads them at doubling intervals instead, so
    // that a first sample taken mid-execve or before the loader mapped libc is corrected for a
    // process that exits before the drain. A dlopen later is also caught by the symbolizer's
    // re-read on a miss. A process gone already: its stacks come out as [unknown]+0x... frames.
    symbolizer_->Refresh(p.key);
    if (profiles_->HasProcess(p.key)) return;
    ProfileProcess meta;
    meta.key = p.key;
    meta.comm = p.comm;
    profiles_->SetProcess(meta, absl::Now());
  });
}

void Daemon::DrainProfiles(absl::Time now) {
  std::vector<ps_key> forget;
  forget.swap(forget_after_drain_);
  absl::flat_hash_map<ps_key, ProfileProcess> exited;
  exited.swap(exited_meta_);
  auto raw = collector_->DrainStacks();
  if (!raw.ok()) {
    LOG(ERROR) << raw.status().message();
  } else if (!raw->empty()) {
    absl::flat_hash_map<ps_key, const ProcessInfo*> live;
    for (const ProcessInfo* p : table_.ProcessPtrs()) live[p->key] = p;
    absl::flat_hash_set<ps_key> described;
    std::vector<SymbolizedStack> stacks;
    stacks.reserve(raw->size());
    for (RawStack& r : *raw) {
      if (described.insert(r.key).second) {
        if (auto it = live.find(r.key); it != live.end()) {
          const ProcessInfo& p = *it->second;
          ProfileProcess meta;
          meta.key = p.key;
          meta.comm = p.comm;
          meta.group = p.group;
          meta.container = p.identity.cgroup.container_id;
          meta.exe = p.identity.exe;
          profiles_->SetProcess(meta, now);
        } else if (auto ex = exited.find(r.key); ex != exited.end()) {
          profiles_->SetProcess(ex->second, now);
        }
      }
      SymbolizedStack s;
      s.key = r.key;
      s.kind = r.kind;
      s.value = r.value;
      s.kernel = symbolizer_->Kernel(r.kernel_ips);
      s.user = symbolizer_->User(r.key, r.user_ips);
      s.user_missing = r.user_missing;
      stacks.push_back(std::move(s));
    }
    profiles_->Add(now, std::move(stacks));
  }
  for (const ps_key& k : forget) symbolizer_->Forget(k);
}

void Daemon::AddOffenderWhere(std::vector<Offender>* offenders, absl::Time now) const {
  for (Offender& o : *offenders) {
    const bool cpu = o.resource == Resource::kCpu;
    if (!cpu && o.resource != Resource::kBlockIo) continue;
    ProfileQuery q;
    q.window = reload_.offenders.window;
    q.pid = o.key.tgid;
    q.kinds = {cpu ? StackKind::kOnCpu : StackKind::kOffCpuBlocked};
    ProfileData d = profiles_->Query(q, now);
    std::vector<ProfileData::Sample> own;
    for (ProfileData::Sample& s : d.samples) {
      if (!(d.processes[s.process].key == o.key)) continue;
      if (!cpu) {
        size_t skip = 0;
        while (skip + 1 < s.frames.size() && SchedulerFrame(d.frames[s.frames[skip]].function)) {
          ++skip;
        }
        s.frames.erase(s.frames.begin(), s.frames.begin() + skip);
      }
      own.push_back(std::move(s));
    }
    d.samples = std::move(own);
    double share = 0;
    const std::string path = HottestPath(d, cpu ? 3 : 5, &share);
    if (path.empty()) continue;
    o.where = absl::StrCat(cpu ? "hottest" : "blocked in", " (",
                           static_cast<int>(share * 100 + 0.5), "%): ", path);
  }
}

void Daemon::UpdateJournalStats() {
  absl::MutexLock l(&pub_mu_);
  live_.journal_dropped_bytes = journal_->DroppedBytes();
  live_.journal_dropped_records = journal_->DroppedRecords();
}

void Daemon::OnExit(const ps_exit_event& e) {
  const absl::Time now = absl::Now();
  if (table_.Redelivered(e)) return;  // journaled by the previous procscoped already
  v1::ExitEvent rec = table_.ApplyExit(e, now);
  {
    ProfileProcess meta;
    meta.key = e.key;
    meta.comm = CommFromKernel(e.comm);
    meta.group = rec.group();
    meta.container = rec.container();
    meta.exited = true;
    if (profiles_->HasProcess(e.key)) {
      profiles_->SetProcess(meta, now);
    } else {
      exited_meta_[e.key] = std::move(meta);
    }
    forget_after_drain_.push_back(e.key);
  }
  if (rec.outcome() == v1::CRASHED) {
    // Its last samples may still be in the kernel's map: drain them now (crashes are rare; at
    // most one early drain per 100 ms however many come).
    if (now - last_crash_drain_ >= absl::Milliseconds(100)) {
      last_crash_drain_ = now;
      DrainProfiles(now);
    }
    ProfileQuery q;
    q.window = profiles_->history();
    q.pid = e.key.tgid;
    ProfileData d = profiles_->Query(q, now);
    std::vector<ProfileData::Sample> own;
    for (ProfileData::Sample& s : d.samples) {
      if (d.processes[s.process].key == e.key) own.push_back(std::move(s));  // not a reused pid
    }
    d.samples = std::move(own);
    rec.set_last_stacks(ToValidUtf8(absl::StrJoin(TopFoldedStacks(d, kCrashStacks), "\n")));
  }
  if (rec.outcome() == v1::CRASHED || rec.outcome() == v1::OOM_KILLED) {
    ProcessInfo p;
    p.key = e.key;
    p.comm = CommFromKernel(e.comm);
    p.group = rec.group();
    p.identity.cgroup.container_id = rec.container();
    detector_.ObserveCrash(p, now);
  }
  {
    absl::MutexLock l(&pub_mu_);
    live_.exit_events++;
  }
  exits_pending_ = true;
  if (!reload_.quiet && rec.outcome() != v1::SUCCESS) printf("%s\n", FormatExit(e).c_str());
  if (journal_) {
    // A failure is counted and logged (rate-limited) by the journal.
    (void)journal_->Append(rec);
    UpdateJournalStats();
  }
  exits_.Add(std::move(rec));
}

void Daemon::Reconfigure(const Config& c) {
  if (c.table.group_by != config_.table.group_by || c.listen != config_.listen ||
      c.journal_dir != config_.journal_dir) {
    LOG(WARNING) << "--group_by, --listen and --journal_dir change only at restart; "
                    "keeping the running ones";
  }
  ReloadableConfig r = ReloadableOf(c);
  r.table.group_by = config_.table.group_by;
  table_.Reconfigure(TableOptionsOf(r, boot_to_unix_));
  if (collector_) collector_->RestartSession();  // every process judged again, new filters
  detector_.Reconfigure(OffenderConfigOf(r));
  reload_ = std::move(r);
  LOG(INFO) << "configuration reloaded";
}

absl::Status Daemon::Run(std::atomic<bool>& stop, std::atomic<bool>& reload,
                         const std::function<absl::StatusOr<Config>()>& reloader) {
  const absl::Time deadline = config_.duration > absl::ZeroDuration()
                                  ? absl::Now() + config_.duration
                                  : absl::InfiniteFuture();
  Sample();
  if (!reload_.quiet) report_prev_ = ReportSamples();  // the first report has rates already
  report_prev_at_ = absl::Now();
  absl::Time next_sample = absl::Now() + config_.sample_interval;
  absl::Time next_report = absl::Now() + reload_.interval;
  absl::Time next_flush = absl::Now() + absl::Seconds(1);
  absl::Time next_expire = absl::Now() + absl::Minutes(1);
  absl::Time next_maps = absl::Now();
  std::function<void(const ps_exit_event&)> on_exit = [this](const ps_exit_event& e) { OnExit(e); };
  while (!stop.load()) {
    absl::Time now = absl::Now();
    if (now >= deadline) break;
    // Sleep until the next thing to do: exit events wake the poll, and so do SIGINT, SIGTERM and
    // SIGHUP (main() lets only this thread take them; epoll_wait is never restarted). At most
    // 1 s, for a signal that lands between the flag check and the poll.
    absl::Time wake = std::min({next_sample, next_maps, next_expire, deadline});
    if (!reload_.quiet) wake = std::min(wake, next_report);
    if (journal_) wake = std::min(wake, next_flush);
    const int wait_ms =
        static_cast<int>(std::clamp<int64_t>(absl::ToInt64Milliseconds(wake - now), 0, 1000));
    auto polled = collector_->PollExits(wait_ms, on_exit);
    if (!polled.ok()) return polled.status();
    CaptureProfiled();
    if (reload.exchange(false)) {
      auto c = reloader();
      if (c.ok()) {
        Reconfigure(*c);
        // The old listener waits for its handlers to finish.
        if (http_ && (!c->web_config_file.empty() || !web_config_file_.empty())) {
          if (absl::Status s = http_->Reload(c->web); s.ok()) {
            web_config_file_ = c->web_config_file;
            LOG(INFO) << "web config "
                      << (c->web_config_file.empty() ? "removed: plain HTTP, no authentication"
                                                     : "reloaded");
          } else {
            LOG(ERROR) << "web config reload failed, keeping the running one: " << s.message();
          }
        }
      } else {
        LOG(ERROR) << "config reload failed, keeping the current one: " << c.status().message();
      }
    }
    now = absl::Now();
    if (now >= next_sample) {
      Sample();
      next_sample = std::max(next_sample + config_.sample_interval, now);
    }
    if (now >= next_maps) {
      auto maps = collector_->MapEntries();
      if (maps.ok()) {
        absl::MutexLock l(&pub_mu_);
        live_.map_entries = *std::move(maps);
      }
      next_maps = now + absl::Seconds(10);
      malloc_trim(0);  // return what the passes and scrapes freed
    }
    if (!reload_.quiet && now >= next_report) {
      Report(now);
      next_report = std::max(next_report + reload_.interval, now);
    }
    if (journal_ && (now >= next_flush || collector_->CommitBacklogHigh())) {
      (void)journal_->Flush();    // counted and logged by the journal
      collector_->CommitExits();  // even if the flush failed: a full ring would drop exits
      UpdateJournalStats();
      next_flush = now + absl::Seconds(1);
    }
    if (now >= next_expire) {
      table_.ExpireGroups(now);
      table_.ForgetRestored();
      next_expire = now + absl::Minutes(1);
    }
  }
  (void)collector_->PollExits(0, on_exit);  // exits that happened just before we stop
  if (exits_pending_) Publish(/*pass=*/false, absl::Now());
  if (journal_) {
    absl::Status flushed = journal_->Flush();
    collector_->CommitExits();
    return flushed;
  }
  return absl::OkStatus();
}

}  // namespace procscope
