// SPDX-License-Identifier: Apache-2.0
#include "cli_standalone.h"

#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "api.h"
#include "cli_options.h"
#include "config.h"
#include "daemon.h"

namespace procscope::cli {

namespace {

Config StandaloneConfig(absl::Duration duration) {
  Config c;
  c.quiet = true;
  c.journal_dir = "";  // a one-shot run must not touch the daemon's journal
  c.duration = duration;
  c.offenders.window = StandaloneWindow(duration);
  c.offenders.num_cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  return c;
}

}  // namespace

absl::StatusOr<TopData> CollectStandalone(absl::Duration duration, std::atomic<bool>& stop) {
  Config c = StandaloneConfig(duration);
  if (absl::Status s = ValidateConfig(c); !s.ok()) return s;
  // No listener: the documents come straight from the daemon's last snapshot.
  auto daemon = Daemon::Create(c, /*serve_http=*/false);
  if (!daemon.ok()) return daemon.status();

  const absl::Time start = absl::Now();
  std::atomic<bool> reload{false};
  absl::Status run = (*daemon)->Run(stop, reload, [&c]() -> absl::StatusOr<Config> { return c; });
  if (!run.ok()) return run;

  TopData d;
  d.taken = absl::Now();
  d.source = absl::StrCat(
      "standalone, ", absl::FormatDuration(absl::Trunc(d.taken - start, absl::Milliseconds(100))),
      stop.load() ? " (interrupted)" : "");
  const std::shared_ptr<const Snapshot> snap = (*daemon)->snapshot();
  d.offenders = BuildOffenderList(*snap);
  d.processes = BuildProcessList(*snap);
  return d;
}

absl::StatusOr<std::string> ProfileStandalone(absl::Duration duration, absl::string_view path,
                                              std::atomic<bool>& stop) {
  Config c = StandaloneConfig(duration);
  // The detector wants a window of at least 5 s; a shorter profile needs none.
  c.offenders.window = std::max(c.offenders.window, absl::Seconds(5));
  if (absl::Status s = ValidateConfig(c); !s.ok()) return s;
  auto daemon = Daemon::Create(c, /*serve_http=*/false);
  if (!daemon.ok()) return daemon.status();
  std::atomic<bool> reload{false};
  absl::Status run = (*daemon)->Run(stop, reload, [&c]() -> absl::StatusOr<Config> { return c; });
  if (!run.ok()) return run;
  const size_t q = path.find('?');
  const absl::string_view route = path.substr(0, q);
  const absl::string_view query = q == absl::string_view::npos ? "" : path.substr(q + 1);
  HttpResponse r = route == "/debug/pprof/offcpu" ? (*daemon)->PprofOffcpu(query)
                                                  : (*daemon)->PprofProfile(query);
  if (r.status != 200) return absl::InvalidArgumentError(r.body);
  return std::move(r.body);
}

}  // namespace procscope::cli
