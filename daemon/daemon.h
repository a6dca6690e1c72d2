// SPDX-License-Identifier: Apache-2.0
// procscoped's core: the collection loop (process iterator passes, exit events, offenders) and
// the snapshot it publishes after each pass, from which the HTTP endpoints serve.
//   daemon.cc   the loop: Create, Run, Sample, OnExit, Reconfigure, publishing the snapshot
//   api.cc      the v1 documents, pure functions of a snapshot
//   handlers.cc the HTTP endpoints (snapshot + live counters -> api.cc / RenderMetrics)
//   console.cc  the console report on stdout
#ifndef PROCSCOPE_DAEMON_DAEMON_H_
#define PROCSCOPE_DAEMON_DAEMON_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api.h"
#include "collector.h"
#include "config.h"
#include "exits.h"
#include "http_server.h"
#include "journal.h"
#include "metrics.h"
#include "offenders.h"
#include "process_table.h"
#include "procfs.h"
#include "profile_store.h"
#include "snapshot.h"
#include "symbolizer.h"

namespace procscope {

// The settings SIGHUP changes, applied in one assignment (group_by stays: it needs a restart).
struct ReloadableConfig {
  absl::Duration interval;  // console report
  int top = 10;
  bool quiet = false;
  TableOptions table;
  OffenderConfig offenders;
  ExportOptions export_options;
};
ReloadableConfig ReloadableOf(const Config& c);

class Daemon {
 public:
  // Loads the collector, reloads the crash journal, starts the HTTP listener (unless
  // `serve_http` is false: `procscope top --standalone` reads snapshot() instead).
  static absl::StatusOr<std::unique_ptr<Daemon>> Create(const Config& config,
                                                        bool serve_http = true);
  ~Daemon();

  // Runs until `stop` is set (or config.duration passes). When `reload` is set, calls
  // `reloader` for a new config and applies its reloadable settings (a bad one is reported and
  // the old config kept). Flushes the journal before returning.
  absl::Status Run(std::atomic<bool>& stop, std::atomic<bool>& reload,
                   const std::function<absl::StatusOr<Config>()>& reloader);

  int http_port() const;

  // /api/v1/events?limit=N accepts 1..this (--events_in_memory's maximum); more is a 400.
  static constexpr size_t kMaxEventsLimit = procscope::kMaxEventsLimit;

  // The last published snapshot (never null once Create returned).
  std::shared_ptr<const Snapshot> snapshot() const ABSL_LOCKS_EXCLUDED(pub_mu_);

  // What the endpoints serve (handlers.cc; also used by tests). None holds the loop's state.
  HttpResponse Metrics() ABSL_LOCKS_EXCLUDED(pub_mu_);
  HttpResponse Processes() ABSL_LOCKS_EXCLUDED(pub_mu_);
  HttpResponse Offenders() ABSL_LOCKS_EXCLUDED(pub_mu_);
  HttpResponse Events(absl::string_view query);
  HttpResponse Status() ABSL_LOCKS_EXCLUDED(pub_mu_);
  HttpResponse Healthz() ABSL_LOCKS_EXCLUDED(pub_mu_);
  HttpResponse Readyz() ABSL_LOCKS_EXCLUDED(pub_mu_);
  // /debug/pprof/profile and /debug/pprof/offcpu: ?seconds=N&pid=P&group=G&format=folded.
  HttpResponse PprofProfile(absl::string_view query) { return Pprof(query, /*offcpu=*/false); }
  HttpResponse PprofOffcpu(absl::string_view query) { return Pprof(query, /*offcpu=*/true); }

  // The profile history (thread-safe on its own), for `procscope profile --standalone`.
  const ProfileStore& profiles() const { return *profiles_; }

 private:
  // Counters that move between passes or per scrape: small, copied under pub_mu_.
  struct LiveStats {
    uint64_t exit_events = 0;
    uint64_t journal_dropped_bytes = 0;
    uint64_t journal_dropped_records = 0;
    uint64_t journal_damaged_bytes = 0;
    std::vector<MapFill> map_entries;
    double last_scrape_duration_seconds = 0;
    uint64_t series_dropped_total = 0;
    absl::Time last_loop;  // the last sampling pass (healthz)
  };

  explicit Daemon(const Config& config);
  void Sample();
  void OnExit(const ps_exit_event& e);
  void Report(absl::Time now);                       // console.cc
  std::vector<ProcessSample> ReportSamples() const;  // the table's processes, by pid
  void Reconfigure(const Config& c);
  // Builds a snapshot and swaps it in. `pass`: after a sampling pass (processes, rankings and
  // offenders are taken anew); otherwise the last pass's are kept and only groups re-read.
  void Publish(bool pass, absl::Time now) ABSL_LOCKS_EXCLUDED(pub_mu_);
  // The snapshot's SelfState with the live counters merged in.
  SelfState SelfOf(const Snapshot& s) const ABSL_LOCKS_EXCLUDED(pub_mu_);
  void UpdateJournalStats() ABSL_LOCKS_EXCLUDED(pub_mu_);
  // Profiling (loop thread): the processes that got their first stack are captured by the
  // symbolizer; DrainProfiles symbolises the stacks drained since the last call into the store,
  // then lets the symbolizer forget the processes that exited before it.
  void CaptureProfiled();
  void DrainProfiles(absl::Time now);
  // The offenders' hottest frames or top off-CPU stack, from the store.
  void AddOffenderWhere(std::vector<Offender>* offenders, absl::Time now) const;
  HttpResponse Pprof(absl::string_view query, bool offcpu);

  const Config config_;  // as started; the reloadable part lives in reload_
  std::unique_ptr<Collector> collector_;
  Procfs procfs_;
  std::optional<Journal> journal_;
  ExitStore exits_;  // thread-safe on its own
  std::unique_ptr<HttpServer> http_;
  const absl::Time started_;
  absl::Duration boot_to_unix_;

  // The collection loop's state: only the thread in Create and then Run touches it (the HTTP
  // threads read the published snapshot), so it needs no lock.
  ReloadableConfig reload_;
  std::string web_config_file_;
  ProcessTable table_;
  OffenderDetector detector_;
  std::shared_ptr<PassData> pass_;  // the last pass's part of the snapshot (read-only now)
  SelfState self_;                  // as of the last pass
  bool ready_ = false;
  bool exits_pending_ = false;              // exits handled since the last Publish
  PassRecords pass_records_;                // the pass's read; its capacity is reused
  std::vector<ProcessSample> report_prev_;  // the console report's previous pass
  absl::Time report_prev_at_;
  std::unique_ptr<Symbolizer> symbolizer_;
  std::vector<ps_key> forget_after_drain_;  // exited: Forget once their last stacks are drained
  // Exited processes the profile store does not know (no stacks yet): described only if the
  // next drain brings stacks of theirs, so that thousands of idle exits leave nothing behind.
  absl::flat_hash_map<ps_key, ProfileProcess> exited_meta_;
  absl::Time last_crash_drain_;
  // Written by the loop, read by the HTTP threads: thread-safe on its own.
  std::unique_ptr<ProfileStore> profiles_;

  // Shared with the HTTP threads.
  mutable absl::Mutex pub_mu_;
  std::shared_ptr<const Snapshot> snapshot_ ABSL_GUARDED_BY(pub_mu_);
  LiveStats live_ ABSL_GUARDED_BY(pub_mu_);
};

// Boot-time (CLOCK_BOOTTIME) to Unix time offset, now.
absl::Duration BootToUnixOffset();

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_DAEMON_H_
