// SPDX-License-Identifier: Apache-2.0
// procscoped's core: the collection loop (process iterator passes, exit events, offenders), the
// state it keeps, and what the HTTP endpoints serve from it.
#ifndef PROCSCOPE_DAEMON_DAEMON_H_
#define PROCSCOPE_DAEMON_DAEMON_H_

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector.h"
#include "config.h"
#include "exits.h"
#include "http_server.h"
#include "journal.h"
#include "metrics.h"
#include "offenders.h"
#include "process_table.h"
#include "procfs.h"

namespace procscope {

class Daemon {
 public:
  // Loads the collector, reloads the crash journal, starts the HTTP listener.
  static absl::StatusOr<std::unique_ptr<Daemon>> Create(const Config& config);
  ~Daemon();

  // Runs until `stop` is set (or config.duration passes). When `reload` is set, calls
  // `reloader` for a new config and applies its reloadable settings (a bad one is reported and
  // the old config kept). Flushes the journal before returning.
  absl::Status Run(std::atomic<bool>& stop, std::atomic<bool>& reload,
                   const std::function<absl::StatusOr<Config>()>& reloader);

  int http_port() const;

  // /api/v1/events?limit=N accepts 1..this (--events_in_memory's maximum); more is a 400.
  static constexpr size_t kMaxEventsLimit = 1000000;

  // What the endpoints serve (also used by tests).
  HttpResponse Metrics();
  HttpResponse Processes();
  HttpResponse Offenders();
  HttpResponse Events(absl::string_view query);
  HttpResponse Status();
  HttpResponse Healthz();
  HttpResponse Readyz();

 private:
  explicit Daemon(const Config& config);
  void Sample();
  void OnExit(const ps_exit_event& e);
  void Report(absl::Time now);
  void Reconfigure(const Config& c);

  Config config_;
  std::unique_ptr<Collector> collector_;
  Procfs procfs_;
  std::optional<Journal> journal_;
  ExitStore exits_;
  std::unique_ptr<HttpServer> http_;
  const absl::Time started_;
  absl::Duration boot_to_unix_;

  // Guards everything below: the loop writes, HTTP threads read.
  mutable std::mutex mu_;
  ProcessTable table_;
  OffenderDetector detector_;
  std::vector<Offender> offenders_;
  std::vector<std::vector<ResourceRate>> rankings_;  // per Resource, as of the last pass
  ExportOptions export_options_;
  SelfState self_;
  bool ready_ = false;
  absl::Time last_loop_;

  // The console report's previous pass.
  std::vector<ProcessSample> report_prev_;
  absl::Time report_prev_at_;
  std::vector<ProcessSample> last_samples_;
};

// Boot-time (CLOCK_BOOTTIME) to Unix time offset, now.
absl::Duration BootToUnixOffset();

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_DAEMON_H_
