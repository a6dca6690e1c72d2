// SPDX-License-Identifier: Apache-2.0
#include "cli_standalone.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli_http.h"
#include "cli_options.h"
#include "config.h"
#include "daemon.h"

namespace procscope::cli {

absl::StatusOr<TopData> CollectStandalone(absl::Duration duration, std::atomic<bool>& stop) {
  Config c;
  c.listen = "127.0.0.1:0";  // the daemon always serves; loopback and an unused port
  c.quiet = true;
  c.journal_dir = "";  // a one-shot run must not touch the daemon's journal
  c.duration = duration;
  c.offenders.window = StandaloneWindow(duration);
  c.offenders.num_cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  if (absl::Status s = ValidateConfig(c); !s.ok()) return s;
  auto daemon = Daemon::Create(c);
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
  if (absl::Status s = ParseJson((*daemon)->Offenders().body, &d.offenders, "offenders"); !s.ok()) {
    return s;
  }
  if (absl::Status s = ParseJson((*daemon)->Processes().body, &d.processes, "processes"); !s.ok()) {
    return s;
  }
  return d;
}

}  // namespace procscope::cli
