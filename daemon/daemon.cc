// SPDX-License-Identifier: Apache-2.0
#include "daemon.h"

#include <malloc.h>
#include <time.h>

#include <algorithm>
#include <cstdio>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"
#include "prometheus/text_serializer.h"
#include "report.h"

namespace procscope {
namespace {

constexpr char kJson[] = "application/json";

std::string ToJson(const google::protobuf::Message& m) {
  // The last line of defence: a string that is not UTF-8 would fail the conversion (and log).
  std::unique_ptr<google::protobuf::Message> fixed;
  if (!StringsAreValidUtf8(m)) {
    fixed.reset(m.New());
    fixed->CopyFrom(m);
    MakeStringsValidUtf8(fixed.get());
  }
  const google::protobuf::Message& valid = fixed ? *fixed : m;
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;  // a stable schema: zero fields are present too
  opts.add_whitespace = false;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(valid, &out, opts).ok()) return "{}";
  out.push_back('\n');
  return out;
}

int64_t UnixNanos(absl::Time t) { return absl::ToUnixNanos(t); }

TableOptions TableOptionsOf(const Config& c, absl::Duration boot_to_unix) {
  TableOptions o = c.table;
  o.boot_to_unix = boot_to_unix;
  return o;
}

OffenderConfig OffenderConfigOf(const Config& c) {
  OffenderConfig o = c.offenders;
  if (o.num_cpus < 1) o.num_cpus = 1;
  return o;
}

}  // namespace

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
      table_(TableOptionsOf(config, boot_to_unix_), &procfs_),
      detector_(OffenderConfigOf(config)),
      export_options_(config.export_options) {
  self_.version = PROCSCOPE_VERSION;
}

Daemon::~Daemon() {
  http_.reset();  // no handler may run once members start going away
}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Create(const Config& config) {
  std::unique_ptr<Daemon> d(new Daemon(config));
  CollectorOptions collector_options = config.collector;
  // With a journal, an exit leaves the ring buffer only once it is on disk (CommitExits after
  // each flush): a kill -9 before the flush leaves it for the next procscoped to read again.
  collector_options.defer_exit_commit = !config.journal_dir.empty();
  auto collector = Collector::Create(collector_options);
  if (!collector.ok()) return collector.status();
  d->collector_ = *std::move(collector);

  if (!config.journal_dir.empty()) {
    // Streamed: the group totals fold each record in and the store keeps only the newest
    // --events_in_memory, so memory does not grow with the journal.
    const absl::Time now = absl::Now();
    Daemon* self = d.get();
    auto journal =
        Journal::Open(config.journal_dir, config.journal_max_bytes, [self, now](v1::ExitEvent&& e) {
          {
            std::lock_guard<std::mutex> l(self->mu_);
            self->table_.RestoreExit(e, now);
          }
          self->exits_.Add(std::move(e));
        });
    if (!journal.ok()) {
      return absl::Status(journal.status().code(),
                          absl::StrCat("crash journal: ",
                                       absl::StripPrefix(journal.status().message(), "journal: "),
                                       " (set --journal_dir, or --journal_dir= to disable)"));
    }
    d->journal_.emplace(*std::move(journal));
    d->self_.journal_damaged_bytes = d->journal_->DamagedBytes();
    malloc_trim(0);  // the reader's buffers and the evicted records
  }

  Daemon* self = d.get();
  auto http = HttpServer::Start(
      config.listen,
      {
          {"/metrics", [self](absl::string_view) { return self->Metrics(); }},
          {"/api/v1/processes", [self](absl::string_view) { return self->Processes(); }},
          {"/api/v1/offenders", [self](absl::string_view) { return self->Offenders(); }},
          {"/api/v1/events", [self](absl::string_view q) { return self->Events(q); }},
          {"/api/v1/status", [self](absl::string_view) { return self->Status(); }},
          // Open to all (kubelet probes send no credentials); they tell only "alive", "ready".
          {"/healthz", [self](absl::string_view) { return self->Healthz(); }, /*open=*/true},
          {"/readyz", [self](absl::string_view) { return self->Readyz(); }, /*open=*/true},
      },
      config.web);
  if (!http.ok()) return http.status();
  d->http_ = *std::move(http);
  d->last_loop_ = absl::Now();
  // Once the start can no longer fail: a failing start says only why.
  if (const PinState& pin = d->collector_->Pinning(); !pin.message.empty()) {
    fprintf(stderr, "procscoped: %s\n", pin.message.c_str());
  }
  return d;
}

int Daemon::http_port() const { return http_ ? http_->port() : 0; }

void Daemon::Sample() {
  auto samples = collector_->ReadProcesses();
  // After the read: a young process's age must not come out shorter than what it ran.
  const absl::Time now = absl::Now();
  if (!samples.ok()) {
    fprintf(stderr, "procscoped: %s\n", std::string(samples.status().message()).c_str());
    return;
  }
  auto stats = collector_->ReadStats();
  std::vector<ProgramStats> programs = collector_->Programs();
  std::lock_guard<std::mutex> l(mu_);
  table_.ApplySamples(*samples, now);
  detector_.Observe(table_.ProcessPtrs(), now);
  offenders_ = detector_.Evaluate(now);
  rankings_.clear();
  for (Resource r : kAllResources) rankings_.push_back(detector_.Ranking(r));
  if (stats.ok()) self_.kernel_stats = *stats;
  self_.programs = std::move(programs);
  self_.tracked_processes = table_.size();
  ready_ = true;
  last_loop_ = now;
  if (!config_.quiet) last_samples_ = *std::move(samples);  // for the terminal report only
}

void Daemon::OnExit(const ps_exit_event& e) {
  const absl::Time now = absl::Now();
  v1::ExitEvent rec;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (table_.Redelivered(e)) return;  // journaled by the previous procscoped already
    rec = table_.ApplyExit(e, now);
    if (rec.outcome() == v1::CRASHED || rec.outcome() == v1::OOM_KILLED) {
      ProcessInfo p;
      p.key = e.key;
      p.comm = CommFromKernel(e.comm);
      p.group = rec.group();
      p.identity.cgroup.container_id = rec.container();
      detector_.ObserveCrash(p, now);
    }
    self_.exit_events++;
  }
  if (!config_.quiet && rec.outcome() != v1::SUCCESS) printf("%s\n", FormatExit(e).c_str());
  if (journal_) {
    // A failure is counted and logged (rate-limited) by the journal.
    (void)journal_->Append(rec);
    std::lock_guard<std::mutex> l(mu_);
    self_.journal_dropped_bytes = journal_->DroppedBytes();
    self_.journal_dropped_records = journal_->DroppedRecords();
  }
  exits_.Add(std::move(rec));
}

void Daemon::Report(absl::Time now) {
  std::vector<Offender> offenders;
  std::vector<ProcessSample> cur;
  {
    std::lock_guard<std::mutex> l(mu_);
    offenders = offenders_;
    cur = last_samples_;
  }
  std::string out = absl::StrFormat(
      "\n%s  %d processes\n", absl::FormatTime("%H:%M:%S", now, absl::LocalTimeZone()), cur.size());
  if (offenders.empty()) {
    out += "offenders: none\n";
  } else {
    for (const Offender& o : offenders) {
      absl::StrAppendFormat(&out, "OFFENDER %-13s pid %-7u %-16s %s\n", ResourceName(o.resource),
                            o.key.tgid, EscapeForDisplay(o.comm), o.reason);
    }
  }
  if (!report_prev_.empty()) {
    out += FormatTopTable(
        ComputeRates(report_prev_, cur, absl::ToDoubleSeconds(now - report_prev_at_)),
        static_cast<size_t>(config_.top));
  }
  printf("%s", out.c_str());
  fflush(stdout);
  report_prev_ = std::move(cur);
  report_prev_at_ = now;
}

void Daemon::Reconfigure(const Config& c) {
  std::lock_guard<std::mutex> l(mu_);
  if (c.table.group_by != config_.table.group_by || c.listen != config_.listen ||
      c.journal_dir != config_.journal_dir) {
    fprintf(stderr,
            "procscoped: --group_by, --listen and --journal_dir change only at restart; "
            "keeping the running ones\n");
  }
  table_.Reconfigure(TableOptionsOf(c, boot_to_unix_));
  detector_.Reconfigure(OffenderConfigOf(c));
  export_options_ = c.export_options;
  config_.interval = c.interval;
  config_.top = c.top;
  config_.quiet = c.quiet;
  const GroupBy group_by = config_.table.group_by;
  config_.table = c.table;
  config_.table.group_by = group_by;
  config_.offenders = c.offenders;
  config_.export_options = c.export_options;
  fprintf(stderr, "procscoped: configuration reloaded\n");
}

absl::Status Daemon::Run(std::atomic<bool>& stop, std::atomic<bool>& reload,
                         const std::function<absl::StatusOr<Config>()>& reloader) {
  const absl::Time deadline = config_.duration > absl::ZeroDuration()
                                  ? absl::Now() + config_.duration
                                  : absl::InfiniteFuture();
  Sample();
  {
    std::lock_guard<std::mutex> l(mu_);
    report_prev_ = last_samples_;  // so that the first report has rates already
  }
  report_prev_at_ = absl::Now();
  absl::Time next_sample = absl::Now() + config_.sample_interval;
  absl::Time next_report = absl::Now() + config_.interval;
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
    if (!config_.quiet) wake = std::min(wake, next_report);
    if (journal_) wake = std::min(wake, next_flush);
    const int wait_ms =
        static_cast<int>(std::clamp<int64_t>(absl::ToInt64Milliseconds(wake - now), 0, 1000));
    auto polled = collector_->PollExits(wait_ms, on_exit);
    if (!polled.ok()) return polled.status();
    if (reload.exchange(false)) {
      auto c = reloader();
      if (c.ok()) {
        Reconfigure(*c);
        // Not under mu_: the old listener waits for its handlers, which take mu_.
        if (!c->web_config_file.empty() || !config_.web_config_file.empty()) {
          if (absl::Status s = http_->Reload(c->web); s.ok()) {
            config_.web_config_file = c->web_config_file;
            fprintf(
                stderr, "procscoped: web config %s\n",
                c->web_config_file.empty() ? "removed: plain HTTP, no authentication" : "reloaded");
          } else {
            fprintf(stderr, "procscoped: web config reload failed, keeping the running one: %s\n",
                    std::string(s.message()).c_str());
          }
        }
      } else {
        fprintf(stderr, "procscoped: config reload failed, keeping the current one: %s\n",
                std::string(c.status().message()).c_str());
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
        std::lock_guard<std::mutex> l(mu_);
        self_.map_entries = *std::move(maps);
      }
      next_maps = now + absl::Seconds(10);
      malloc_trim(0);  // return what the passes and scrapes freed
    }
    if (!config_.quiet && now >= next_report) {
      Report(now);
      next_report = std::max(next_report + config_.interval, now);
    }
    if (journal_ && (now >= next_flush || collector_->CommitBacklogHigh())) {
      (void)journal_->Flush();    // counted and logged by the journal
      collector_->CommitExits();  // even if the flush failed: a full ring would drop exits
      std::lock_guard<std::mutex> l(mu_);
      self_.journal_dropped_bytes = journal_->DroppedBytes();
      self_.journal_dropped_records = journal_->DroppedRecords();
      next_flush = now + absl::Seconds(1);
    }
    if (now >= next_expire) {
      std::lock_guard<std::mutex> l(mu_);
      table_.ExpireGroups(now);
      table_.ForgetRestored();
      next_expire = now + absl::Minutes(1);
    }
  }
  (void)collector_->PollExits(0, on_exit);  // exits that happened just before we stop
  if (journal_) {
    absl::Status flushed = journal_->Flush();
    collector_->CommitExits();
    return flushed;
  }
  return absl::OkStatus();
}

HttpResponse Daemon::Metrics() {
  const absl::Time t0 = absl::Now();
  std::vector<ProcessInfo> processes;
  std::vector<GroupInfo> groups;
  std::vector<Offender> offenders;
  std::vector<std::vector<ResourceRate>> rates;
  SelfState self;
  ExportOptions options;
  {
    std::lock_guard<std::mutex> l(mu_);
    options = export_options_;
    // Only the processes that can get series: the top K of each resource, and offenders.
    std::vector<ps_key> keys;
    for (const std::vector<ResourceRate>& ranking : rankings_) {
      const size_t n = std::min(ranking.size(), options.top_k);
      rates.emplace_back(ranking.begin(), ranking.begin() + n);
      for (size_t i = 0; i < n; ++i) keys.push_back(ranking[i].key);
    }
    for (const Offender& o : offenders_) keys.push_back(o.key);
    processes = table_.ProcessesWithKeys(keys);
    groups = table_.Groups();
    offenders = offenders_;
    self = self_;
  }
  ExportInput in{&processes, &groups, &offenders, &rates, &self};
  uint64_t dropped = 0;
  std::vector<prometheus::MetricFamily> families = BuildMetrics(in, options, &dropped);
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = prometheus::TextSerializer().Serialize(families);
  std::lock_guard<std::mutex> l(mu_);
  self_.series_dropped_total += dropped;
  self_.last_scrape_duration_seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  return r;
}

HttpResponse Daemon::Processes() {
  v1::ProcessList list;
  std::unique_lock<std::mutex> l(mu_);
  absl::flat_hash_map<ps_key, double> rate[std::size(kAllResources)];
  for (size_t res = 0; res < rankings_.size() && res < std::size(kAllResources); ++res) {
    for (const ResourceRate& rr : rankings_[res]) {
      if (rr.rate != 0) rate[res][rr.key] = rr.rate;
    }
  }
  auto get = [&](Resource res, const ps_key& k) {
    auto it = rate[static_cast<int>(res)].find(k);
    return it == rate[static_cast<int>(res)].end() ? 0.0 : it->second;
  };
  for (const ProcessInfo& p : table_.Processes()) {
    v1::Process* o = list.add_processes();
    o->set_pid(p.key.tgid);
    o->set_ppid(p.ppid);
    o->set_comm(ToValidUtf8(p.comm));
    o->set_exe(ToValidUtf8(p.identity.exe));
    o->set_group(ToValidUtf8(p.group));
    o->set_container(ToValidUtf8(p.identity.cgroup.container_id));
    o->set_pod_uid(ToValidUtf8(p.identity.cgroup.pod_uid));
    o->set_systemd_unit(ToValidUtf8(p.identity.cgroup.systemd_unit));
    o->set_uid(p.uid);
    o->set_user(ToValidUtf8(p.identity.user));
    o->set_start_time_unix_ns(UnixNanos(p.start_time));
    o->set_threads(p.threads);
    o->set_resident_memory_bytes(p.rss_bytes);
    o->set_cpu_seconds(p.counters.cpu_ns / 1e9);
    o->set_runqueue_wait_seconds(p.counters.runq_ns / 1e9);
    o->set_voluntary_context_switches(p.counters.vol_cs);
    o->set_involuntary_context_switches(p.counters.invol_cs);
    o->set_minor_faults(p.counters.min_flt);
    o->set_major_faults(p.counters.maj_flt);
    o->set_read_bytes(p.io.read_bytes);
    o->set_write_bytes(p.io.write_bytes);
    o->set_dirtied_bytes(p.io.dirtied_bytes);
    o->set_cpu_cores(get(Resource::kCpu, p.key));
    o->set_runqueue_wait_cores(get(Resource::kRunqueueWait, p.key));
    o->set_memory_growth_bytes_per_second(get(Resource::kMemoryGrowth, p.key));
    o->set_page_faults_per_second(get(Resource::kPageFaults, p.key));
    o->set_block_io_bytes_per_second(get(Resource::kBlockIo, p.key));
  }
  l.unlock();  // serialise without holding the loop off
  return {200, kJson, ToJson(list)};
}

HttpResponse Daemon::Offenders() {
  v1::OffenderList list;
  std::unique_lock<std::mutex> l(mu_);
  list.set_window_seconds(absl::ToDoubleSeconds(config_.offenders.window));
  for (const Offender& o : offenders_) {
    v1::Offender* out = list.add_offenders();
    out->set_resource(ResourceName(o.resource));
    out->set_pid(o.key.tgid);
    out->set_comm(ToValidUtf8(o.comm));
    out->set_group(ToValidUtf8(o.group));
    out->set_container(ToValidUtf8(o.container));
    out->set_rate(o.rate);
    out->set_unit(ResourceUnit(o.resource));
    out->set_share(o.share);
    out->set_reason(ToValidUtf8(o.reason));
    out->set_since_unix_ns(UnixNanos(o.since));
  }
  l.unlock();  // serialise without holding the loop off
  return {200, kJson, ToJson(list)};
}

HttpResponse Daemon::Events(absl::string_view query) {
  // At most what is kept in memory: one request cannot ask for more than is there.
  auto limit = QueryCount(query, "limit", 100, kMaxEventsLimit);
  if (!limit.ok()) {
    return {400, "text/plain; charset=utf-8", absl::StrCat(limit.status().message(), "\n"), {}};
  }
  auto failed = QueryBool(query, "failed", false);
  if (!failed.ok()) {
    return {400, "text/plain; charset=utf-8", absl::StrCat(failed.status().message(), "\n"), {}};
  }
  // All outcomes: the newest exits plus the older failures kept in a ring of their own.
  const size_t held = std::max<size_t>(config_.events_in_memory, 1) * (*failed ? 1 : 2);
  return {200, kJson, EventListJson(exits_.Newest(std::min(*limit, held), *failed))};
}

HttpResponse Daemon::Status() {
  v1::DaemonStatus st;
  std::unique_lock<std::mutex> l(mu_);
  st.set_version(self_.version);
  st.set_ready(ready_);
  st.set_uptime_seconds(absl::ToDoubleSeconds(absl::Now() - started_));
  st.set_tracked_processes(table_.size());
  st.set_exit_events(self_.exit_events);
  for (const ProgramStats& p : self_.programs) {
    v1::DaemonStatus::Program* o = st.add_programs();
    o->set_name(p.name);
    o->set_hook(p.hook);
    o->set_attach(p.attach);
    o->set_runs(p.run_cnt);
    o->set_run_time_seconds(p.run_time_ns / 1e9);
    o->set_ns_per_run(p.run_cnt ? static_cast<double>(p.run_time_ns) / p.run_cnt : 0);
  }
  for (int i = 0; i < PS_STAT_MAX; ++i) {
    (*st.mutable_kernel_stats())[StatName(i)] = self_.kernel_stats[i];
  }
  for (const MapFill& fill : self_.map_entries) {
    v1::DaemonStatus::MapFill* m = st.add_maps();
    m->set_name(fill.name);
    m->set_entries(fill.entries);
    m->set_max_entries(fill.max_entries);
  }
  for (const std::string& h : collector_->Degraded()) st.add_degraded_hooks(h);
  st.set_group_by(GroupByName(config_.table.group_by));
  st.set_offender_window_seconds(absl::ToDoubleSeconds(config_.offenders.window));
  st.set_num_cpus(static_cast<uint32_t>(std::max(1, config_.offenders.num_cpus)));
  l.unlock();  // serialise without holding the loop off
  return {200, kJson, ToJson(st)};
}

HttpResponse Daemon::Healthz() {
  std::lock_guard<std::mutex> l(mu_);
  const absl::Duration since = absl::Now() - last_loop_;
  if (since > config_.sample_interval * 10 + absl::Seconds(5)) {
    return {503, "text/plain; charset=utf-8",
            absl::StrCat("collection loop stalled for ", absl::FormatDuration(since), "\n")};
  }
  // How long ago the loop's last pass was, for tests and debugging (the body stays "ok").
  return {
      200,
      "text/plain; charset=utf-8",
      "ok\n",
      {{"Procscope-Last-Pass-Age-Seconds", absl::StrFormat("%.3f", absl::ToDoubleSeconds(since))}}};
}

HttpResponse Daemon::Readyz() {
  std::lock_guard<std::mutex> l(mu_);
  if (!ready_) return {503, "text/plain; charset=utf-8", "not sampled yet\n"};
  return {200, "text/plain; charset=utf-8", "ready\n"};
}

}  // namespace procscope
