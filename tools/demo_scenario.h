// SPDX-License-Identifier: Apache-2.0
// Scripted scenarios: inject one failure into one worker, then ask procscoped whether it names
// that worker, and only that worker, for the right thing.
#ifndef PROCSCOPE_TOOLS_DEMO_SCENARIO_H_
#define PROCSCOPE_TOOLS_DEMO_SCENARIO_H_

#include <atomic>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "demo_api.h"
#include "demo_fleet.h"
#include "demo_worker.h"
#include "text.h"

namespace procscope::demo {

enum class Verdict { kPass, kFail, kSkip };
const char* VerdictName(Verdict v);  // "PASS", "FAIL", "SKIP"

struct ScenarioOptions {
  absl::Duration timeout = absl::Seconds(15);  // for the daemon to name the worker
  absl::Duration hold = absl::ZeroDuration();  // HoldAndClear: keep injecting this long
  absl::Duration poll = absl::Milliseconds(500);
};

struct ScenarioResult {
  Verdict verdict = Verdict::kFail;
  std::string line;                  // one line: what was injected, what was flagged, verdict
  std::vector<std::string> details;  // on FAIL: what the daemon saw, to find out why
};

// Injects `what` into the worker named `worker`, polls the daemon until it names the worker for
// it (cpu_spike: a cpu offender; memory_leak: memory_growth or page_faults; io_heavy: block_io;
// crash: an exit event with SIGSEGV; oom: an exit event with oom_killed) and checks that no other
// worker is flagged meanwhile. The injection is left on (see HoldAndClear). oom is SKIP where
// the host has no writable memory controller.
ScenarioResult RunScenario(Fleet& fleet, const DaemonClient& daemon, Injection what,
                           const std::string& worker, const ScenarioOptions& options,
                           const std::atomic<int>& stop);

// Keeps the worker's injection on for options.hold (restarting workers that die), then clears it.
void HoldAndClear(Fleet& fleet, const std::string& worker, const ScenarioOptions& options,
                  const std::atomic<int>& stop);

// Waits at least `min` and then until no offender names a worker (of any incarnation), for at
// most `max`. Returns "" when settled, else what is still flagged.
std::string Settle(Fleet& fleet, const DaemonClient& daemon, absl::Duration min, absl::Duration max,
                   const std::atomic<int>& stop);

}  // namespace procscope::demo

#endif  // PROCSCOPE_TOOLS_DEMO_SCENARIO_H_
