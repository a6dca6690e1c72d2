// SPDX-License-Identifier: Apache-2.0
#include "demo_scenario.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace procscope::demo {
namespace {

// The offender resources that count as the daemon catching an injection.
std::vector<std::string> ExpectedResources(Injection what) {
  switch (what) {
    case Injection::kCpuSpike:
      return {"cpu"};
    case Injection::kMemoryLeak:
      return {"memory_growth", "page_faults"};  // the first is preferred
    case Injection::kIoHeavy:
      return {"block_io"};
    default:
      return {};
  }
}

double RateOf(const v1::Process& p, const std::string& resource) {
  if (resource == "cpu") return p.cpu_cores();
  if (resource == "runqueue_wait") return p.runqueue_wait_cores();
  if (resource == "memory_growth") return p.memory_growth_bytes_per_second();
  if (resource == "page_faults") return p.page_faults_per_second();
  if (resource == "block_io") return p.block_io_bytes_per_second();
  return 0;
}

std::string FormatRate(const std::string& resource, double rate) {
  if (resource == "cpu" || resource == "runqueue_wait") return absl::StrFormat("%.2f cores", rate);
  if (resource == "page_faults") return absl::StrFormat("%.0f faults/s", rate);
  return absl::StrCat(HumanBytes(rate, " "), "/s");
}

std::string Seconds(absl::Duration d) {
  const double s = absl::ToDoubleSeconds(d);
  return s < 1 ? absl::StrFormat("%.2fs", s) : absl::StrFormat("%.1fs", s);  // crashes: ms
}

std::string Describe(const v1::Offender& o) {
  return absl::StrCat(o.comm(), " (pid ", o.pid(), ") for ", o.resource(), " (", o.reason(), ")");
}

// pid -> comm of every incarnation of every worker but `except`.
std::map<uint32_t, std::string> OtherWorkerPids(Fleet& fleet, const std::string& except) {
  std::map<uint32_t, std::string> pids;
  for (const Worker& w : fleet.workers()) {
    if (w.name == except) continue;
    if (w.pid > 0) pids[static_cast<uint32_t>(w.pid)] = w.comm;
    for (pid_t p : w.past_pids) pids[static_cast<uint32_t>(p)] = w.comm;
  }
  return pids;
}

// What the daemon shows now, for a FAIL: the offenders, and the ranking of each resource that
// should have caught the injection with the worker's own rate.
void Investigate(const DaemonClient& daemon, Injection what, pid_t pid,
                 std::vector<std::string>& out) {
  if (auto offenders = daemon.Offenders(); offenders.ok()) {
    out.push_back(absl::StrFormat("offender window %.0fs; %d offender(s) now%s",
                                  offenders->window_seconds(), offenders->offenders_size(),
                                  offenders->offenders_size() ? ":" : ""));
    for (const v1::Offender& o : offenders->offenders()) out.push_back("  " + Describe(o));
  } else {
    out.push_back(absl::StrCat("/api/v1/offenders: ", offenders.status().message()));
  }
  if (what == Injection::kCrash || what == Injection::kOom) {
    auto events = daemon.Events(5);
    if (!events.ok()) {
      out.push_back(absl::StrCat("/api/v1/events: ", events.status().message()));
      return;
    }
    out.push_back("newest exit events:");
    for (const v1::ExitEvent& e : events->events()) {
      out.push_back(absl::StrFormat("  pid %d %s outcome=%s signal=%s oom_killed=%d", e.pid(),
                                    e.comm(), v1::Outcome_Name(e.outcome()), e.signal_name(),
                                    e.oom_killed()));
    }
    return;
  }
  auto processes = daemon.Processes();
  if (!processes.ok()) {
    out.push_back(absl::StrCat("/api/v1/processes: ", processes.status().message()));
    return;
  }
  for (const std::string& resource : ExpectedResources(what)) {
    std::vector<const v1::Process*> ranked;
    for (const v1::Process& p : processes->processes()) ranked.push_back(&p);
    std::sort(ranked.begin(), ranked.end(), [&](const v1::Process* a, const v1::Process* b) {
      return RateOf(*a, resource) > RateOf(*b, resource);
    });
    std::vector<std::string> top;
    bool worker_listed = false;
    for (size_t i = 0; i < ranked.size() && i < 5; ++i) {
      top.push_back(absl::StrCat(ranked[i]->comm(), " (pid ", ranked[i]->pid(), ") ",
                                 FormatRate(resource, RateOf(*ranked[i], resource))));
      worker_listed |= ranked[i]->pid() == static_cast<uint32_t>(pid);
    }
    if (!worker_listed) {
      auto it = std::find_if(ranked.begin(), ranked.end(), [&](const v1::Process* p) {
        return p->pid() == static_cast<uint32_t>(pid);
      });
      top.push_back(it == ranked.end()
                        ? absl::StrCat("pid ", pid, " not listed")
                        : absl::StrCat("... ", (*it)->comm(), " (pid ", pid, ") ",
                                       FormatRate(resource, RateOf(**it, resource))));
    }
    out.push_back(absl::StrCat("top ", resource, ": ", absl::StrJoin(top, ", ")));
  }
}

}  // namespace

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kPass:
      return "PASS";
    case Verdict::kFail:
      return "FAIL";
    case Verdict::kSkip:
      return "SKIP";
  }
  return "?";
}

ScenarioResult RunScenario(Fleet& fleet, const DaemonClient& daemon, Injection what,
                           const std::string& worker_name, const ScenarioOptions& options,
                           const std::atomic<int>& stop) {
  ScenarioResult result;
  const std::string name = absl::StrFormat("%-12s", InjectionName(what));
  Worker* worker = fleet.Find(worker_name);
  if (worker == nullptr || worker->pid <= 0) {
    result.line = absl::StrCat(name, "FAIL  no running worker '", worker_name, "'");
    return result;
  }
  const pid_t pid = worker->pid;
  const std::string comm = worker->comm;
  const std::string injected = absl::StrCat("injected into ", comm, " (pid ", pid, ")");
  std::vector<std::string> others;
  for (const Worker& w : fleet.workers()) {
    if (w.name != worker->name) others.push_back(w.comm);
  }

  if (what == Injection::kOom) {
    if (absl::Status s = Fleet::CheckOomSupport(); !s.ok()) {
      result.verdict = Verdict::kSkip;
      result.line = absl::StrCat(name, "SKIP  not injected: ", s.message());
      return result;
    }
  }
  const absl::Time start = absl::Now();
  if (absl::Status s = fleet.Inject(*worker, what); !s.ok()) {
    result.line = absl::StrCat(name, "FAIL  cannot inject into ", comm, ": ", s.message());
    return result;
  }

  std::string caught;   // what the daemon said about the worker
  std::string instead;  // what it flagged for the resource instead, if not the worker
  std::set<std::string> also_flagged;  // other workers it named meanwhile
  std::vector<std::string> restarts;
  std::string last_error;
  const std::vector<std::string> expected = ExpectedResources(what);
  while (caught.empty() && absl::Now() - start < options.timeout && stop.load() == 0) {
    for (const Restart& r : fleet.Reap()) {
      restarts.push_back(r.old_pid == pid ? absl::StrCat("restarted as pid ", r.new_pid)
                                          : absl::StrCat(r.comm, " (pid ", r.old_pid, ") ", r.how,
                                                         ", restarted as pid ", r.new_pid));
    }
    const std::map<uint32_t, std::string> other_pids = OtherWorkerPids(fleet, worker->name);
    auto offenders = daemon.Offenders();
    if (!offenders.ok()) {
      last_error = std::string(offenders.status().message());
    } else {
      instead.clear();
      for (const v1::Offender& o : offenders->offenders()) {
        if (other_pids.count(o.pid())) also_flagged.insert(Describe(o));
      }
      // The preferred resource first (memory_growth before page_faults).
      for (const std::string& resource : expected) {
        for (const v1::Offender& o : offenders->offenders()) {
          if (o.resource() != resource) continue;
          if (o.pid() == static_cast<uint32_t>(pid)) {
            if (caught.empty()) {
              caught = absl::StrCat("procscope flagged ", o.comm(), " (pid ", o.pid(), ") for ",
                                    o.resource(), " after ", Seconds(absl::Now() - start), " (",
                                    o.reason(), ")");
            }
          } else if (instead.empty()) {
            instead = absl::StrCat(", flagged ", Describe(o), " instead");
          }
        }
      }
    }
    if (what == Injection::kCrash || what == Injection::kOom) {
      auto events = daemon.Events(100);
      if (!events.ok()) {
        last_error = std::string(events.status().message());
      } else {
        for (const v1::ExitEvent& e : events->events()) {
          if (e.pid() != static_cast<uint32_t>(pid)) continue;
          const bool match =
              what == Injection::kCrash ? e.signal_name() == "SIGSEGV" : e.oom_killed();
          if (!match) continue;
          caught = absl::StrCat(
              "procscope recorded ", e.comm(), " (pid ", e.pid(), ") ",
              what == Injection::kCrash ? "killed by " : "oom_killed, ", e.signal_name(), " after ",
              Seconds(absl::Now() - start), " (outcome ", v1::Outcome_Name(e.outcome()),
              ", peak RSS ", HumanBytes(static_cast<double>(e.peak_resident_memory_bytes()), " "), ")");
          break;
        }
      }
    }
    if (caught.empty()) Nap(options.poll, stop);
  }
  // A crash is reaped (and the worker restarted) right after it happens; make sure of it before
  // reporting, so the line says the demo carries on.
  if (what == Injection::kCrash || what == Injection::kOom) {
    for (int i = 0; i < 20 && restarts.empty() && stop.load() == 0; ++i) {
      for (const Restart& r : fleet.Reap()) {
        if (r.old_pid == pid) restarts.push_back(absl::StrCat("restarted as pid ", r.new_pid));
      }
      if (restarts.empty()) Nap(absl::Milliseconds(100), stop);
    }
  }

  const bool pass = !caught.empty() && also_flagged.empty();
  result.verdict = pass ? Verdict::kPass : Verdict::kFail;
  std::string outcome = caught;
  if (outcome.empty()) {
    const std::string resources =
        expected.empty()
            ? (what == Injection::kCrash ? "a SIGSEGV exit event" : "an oom_killed exit event")
            : absl::StrJoin(expected, " or ");
    outcome = absl::StrCat("procscope flagged none for ", resources, " within ",
                           absl::FormatDuration(options.timeout), instead);
    if (stop.load() != 0) outcome = "interrupted";
  }
  std::vector<std::string> parts = {absl::StrCat(injected, " -> ", outcome)};
  for (const std::string& r : restarts) parts.push_back(r);
  parts.push_back(also_flagged.empty()
                      ? absl::StrCat(absl::StrJoin(others, ", "), " not flagged")
                      : absl::StrCat("ALSO FLAGGED: ", absl::StrJoin(also_flagged, "; ")));
  result.line = absl::StrCat(name, VerdictName(result.verdict), "  ", absl::StrJoin(parts, "; "));
  if (!pass) {
    if (!last_error.empty()) result.details.push_back(absl::StrCat("last error: ", last_error));
    Investigate(daemon, what, pid, result.details);
  }

  return result;
}

void HoldAndClear(Fleet& fleet, const std::string& worker, const ScenarioOptions& options,
                  const std::atomic<int>& stop) {
  const absl::Time hold_end = absl::Now() + options.hold;
  while (absl::Now() < hold_end && stop.load() == 0) {
    fleet.Reap();
    Nap(std::min(options.poll, hold_end - absl::Now()), stop);
  }
  Worker* w = fleet.Find(worker);
  if (w != nullptr && w->injection != Injection::kNone) {
    fleet.Inject(*w, Injection::kNone).IgnoreError();
  }
}

std::string Settle(Fleet& fleet, const DaemonClient& daemon, absl::Duration min, absl::Duration max,
                   const std::atomic<int>& stop) {
  const absl::Time start = absl::Now();
  std::string flagged;
  while (stop.load() == 0) {
    fleet.Reap();
    const absl::Duration elapsed = absl::Now() - start;
    if (elapsed >= min) {
      const std::map<uint32_t, std::string> pids = OtherWorkerPids(fleet, "");
      auto offenders = daemon.Offenders();
      flagged.clear();
      if (!offenders.ok()) {
        flagged = std::string(offenders.status().message());
      } else {
        std::vector<std::string> names;
        for (const v1::Offender& o : offenders->offenders()) {
          if (pids.count(o.pid())) names.push_back(Describe(o));
        }
        flagged = absl::StrJoin(names, "; ");
      }
      if (flagged.empty() || elapsed >= max) break;
    }
    Nap(absl::Milliseconds(500), stop);
  }
  return flagged;
}

}  // namespace procscope::demo
