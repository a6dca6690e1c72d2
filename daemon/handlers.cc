// SPDX-License-Identifier: Apache-2.0
// The HTTP endpoints: each takes the published snapshot (and, for the self-metrics, a copy of
// the live counters) and serialises from it with no lock held.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "api.h"
#include "daemon.h"
#include "pprof.h"

namespace procscope {
namespace {

constexpr char kJson[] = "application/json";
constexpr char kText[] = "text/plain; charset=utf-8";

}  // namespace

SelfState Daemon::SelfOf(const Snapshot& s) const {
  SelfState self = s.self;
  absl::MutexLock l(&pub_mu_);
  self.exit_events = live_.exit_events;
  self.journal_dropped_bytes = live_.journal_dropped_bytes;
  self.journal_dropped_records = live_.journal_dropped_records;
  self.journal_damaged_bytes = live_.journal_damaged_bytes;
  self.map_entries = live_.map_entries;
  self.last_scrape_duration_seconds = live_.last_scrape_duration_seconds;
  self.series_dropped_total = live_.series_dropped_total;
  self.profiling = config_.collector.profile_hz > 0 ||
                   (config_.collector.offcpu && config_.collector.offcpu_stack_ratio > 0);
  const ProfileStoreStats ps = profiles_->Stats();
  self.profile_stacks = ps.stacks;
  self.profile_user_stacks = ps.user_stacks;
  self.profile_user_truncated = ps.user_truncated;
  self.profile_dropped_entries = ps.dropped_entries;
  self.profile_store_bytes = ps.bytes;
  return self;
}

HttpResponse Daemon::Metrics() {
  const absl::Time t0 = absl::Now();
  const std::shared_ptr<const Snapshot> snap = snapshot();
  const SelfState self = SelfOf(*snap);
  ExportInput in{&snap->pass->top_processes, &snap->groups, &snap->pass->offenders,
                 &snap->pass->top_rates, &self};
  uint64_t dropped = 0;
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = RenderMetrics(in, snap->export_options, &dropped);
  absl::MutexLock l(&pub_mu_);
  live_.series_dropped_total += dropped;
  live_.last_scrape_duration_seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  return r;
}

HttpResponse Daemon::Processes() { return {200, kJson, ToJson(BuildProcessList(*snapshot()))}; }

HttpResponse Daemon::Offenders() { return {200, kJson, ToJson(BuildOffenderList(*snapshot()))}; }

HttpResponse Daemon::Events(absl::string_view query) {
  auto q = ParseEventQuery(query, config_.events_in_memory);
  if (!q.ok()) return {400, kText, absl::StrCat(q.status().message(), "\n"), {}};
  return {200, kJson, EventListJson(exits_.Newest(q->limit, q->failed))};
}

HttpResponse Daemon::Status() {
  const std::shared_ptr<const Snapshot> snap = snapshot();
  return {200, kJson, ToJson(BuildStatus(*snap, SelfOf(*snap), absl::Now()))};
}

HttpResponse Daemon::Healthz() {
  absl::Time last_loop;
  {
    absl::MutexLock l(&pub_mu_);
    last_loop = live_.last_loop;
  }
  const absl::Duration since = absl::Now() - last_loop;
  if (since > config_.sample_interval * 10 + absl::Seconds(5)) {
    return {503, kText,
            absl::StrCat("collection loop stalled for ", absl::FormatDuration(since), "\n")};
  }
  // How long ago the loop's last pass was, for tests and debugging (the body stays "ok").
  return {
      200,
      kText,
      "ok\n",
      {{"Procscope-Last-Pass-Age-Seconds", absl::StrFormat("%.3f", absl::ToDoubleSeconds(since))}}};
}

HttpResponse Daemon::Pprof(absl::string_view query, bool offcpu) {
  auto req = ParseProfileRequest(query, offcpu, profiles_->history());
  if (!req.ok()) return {400, kText, absl::StrCat(req.status().message(), "\n")};
  // From the history, at once: a scraper asking every N s for seconds=N gets each sample once.
  const ProfileData d = profiles_->Query(req->query, absl::Now());
  if (req->folded) return {200, kText, FoldedStacks(d)};
  return {200,
          "application/octet-stream",
          EncodePprof(d, offcpu ? PprofKind::kOffCpu : PprofKind::kOnCpu),
          {{"Content-Disposition",
            absl::StrCat("attachment; filename=\"", offcpu ? "offcpu" : "profile", ".pb.gz\"")}}};
}

HttpResponse Daemon::Readyz() {
  if (!snapshot()->ready) return {503, kText, "not sampled yet\n"};
  return {200, kText, "ready\n"};
}

}  // namespace procscope
