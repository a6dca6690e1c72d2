// SPDX-License-Identifier: Apache-2.0
// procscope-demo: three well-behaved worker processes into which failures are injected on
// demand (cpu spike, memory leak, heavy I/O, crash, OOM kill), to show, or to check in a script,
// that procscoped names the right process for the right reason and leaves the others alone.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "demo_api.h"
#include "demo_fleet.h"
#include "demo_scenario.h"
#include "demo_worker.h"
#include "flags_util.h"

ABSL_FLAG(std::string, scenario, "",
          "Run one scenario and exit: cpu_spike, memory_leak, io_heavy, crash or oom");
ABSL_FLAG(bool, all, false, "Run every scenario in turn and exit (0 only if all pass)");
ABSL_FLAG(std::string, worker, "",
          "Worker the scenarios inject into: alpha, beta or gamma (default: a random one each)");
ABSL_FLAG(std::string, endpoint, "127.0.0.1:9750", "procscoped's HTTP listener, HOST:PORT");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(15),
          "How long a scenario waits for procscoped to name the worker");
ABSL_FLAG(absl::Duration, hold, absl::ZeroDuration(),
          "Keep each scenario's injection this long after its verdict before clearing it");
ABSL_FLAG(uint64_t, seed, 0, "Seed of the random worker choice (0: a random seed)");
ABSL_FLAG(std::string, io_dir, "/var/tmp",
          "Directory of io_heavy's temp files (on a block device: not tmpfs)");

namespace procscope::demo {
namespace {

std::atomic<int> g_stop{0};
void OnSignal(int sig) { g_stop = sig; }

void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocking read returns on Ctrl-C
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

void Print(const std::string& line) {
  fputs(line.c_str(), stdout);
  fputc('\n', stdout);
  fflush(stdout);
}

std::string WorkerList(Fleet& fleet) {
  std::vector<std::string> parts;
  for (const Worker& w : fleet.workers())
    parts.push_back(absl::StrCat(w.comm, " (pid ", w.pid, ")"));
  return absl::StrJoin(parts, ", ");
}

void PrintRestarts(const std::vector<Restart>& restarts) {
  for (const Restart& r : restarts) {
    Print(absl::StrCat(r.comm, " (pid ", r.old_pid, ") ", r.how,
                       r.new_pid > 0 ? absl::StrCat("; restarted as pid ", r.new_pid) : ""));
  }
}

// --- scripted mode ---------------------------------------------------------------------------

int RunScripted(Fleet& fleet, const DaemonClient& daemon, const std::vector<Injection>& scenarios,
                const std::string& fixed_worker, uint64_t seed) {
  double window = 0;
  if (auto offenders = daemon.Offenders(); offenders.ok()) window = offenders->window_seconds();
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  Print(absl::StrFormat(
      "procscope-demo: workers %s; procscoped at %s, offender window %.0fs; seed %d",
      WorkerList(fleet), daemon.endpoint(), window, seed));
  // A 1-core spike reaches the 0.5-core minimum after half the window.
  if (absl::Seconds(window * 0.6) > timeout) {
    Print(absl::StrFormat(
        "note: the daemon's %.0fs window needs about %.0fs to flag a 1-core spike; run it with "
        "--offender_window=5s or give --timeout=%.0fs",
        window, window / 2, window * 0.75));
  }

  ScenarioOptions options;
  options.timeout = timeout;
  options.hold = absl::GetFlag(FLAGS_hold);
  // The window must forget the previous scenario (and a restarted worker's start-up).
  const absl::Duration settle_max = absl::Seconds(window) + absl::Seconds(15);
  std::mt19937_64 rng(seed);
  int failed = 0, passed = 0;
  for (Injection what : scenarios) {
    const std::string still = Settle(fleet, daemon, absl::Seconds(2), settle_max, g_stop);
    if (g_stop) break;
    if (!still.empty())
      Print(absl::StrCat("note: before ", InjectionName(what), ", still flagged: ", still));
    std::string target = fixed_worker;
    if (target.empty()) {
      target = fleet.workers()[rng() % fleet.workers().size()].name;
    }
    ScenarioResult r = RunScenario(fleet, daemon, what, target, options, g_stop);
    Print(r.line);
    for (const std::string& d : r.details) Print(absl::StrCat("    ", d));
    HoldAndClear(fleet, target, options, g_stop);
    if (g_stop) break;
    if (r.verdict == Verdict::kFail) ++failed;
    if (r.verdict == Verdict::kPass) ++passed;
  }
  if (g_stop) return 0;  // main reports the signal
  Print(absl::StrFormat("procscope-demo: %d passed, %d failed, %d skipped", passed, failed,
                        static_cast<int>(scenarios.size()) - passed - failed));
  return failed == 0 && passed > 0 ? 0 : 1;
}

// --- interactive mode ------------------------------------------------------------------------

constexpr char kHelp[] =
    "commands:\n"
    "  inject KIND WORKER   KIND: cpu_spike, memory_leak, io_heavy, crash, oom;\n"
    "                       WORKER: alpha, beta, gamma (or demo-alpha, ...)\n"
    "  clear WORKER|all     stop injecting\n"
    "  status               the workers, what procscoped measures for them, its offenders\n"
    "  help                 this text\n"
    "  quit                 stop the workers, clean up and exit (also Ctrl-C, Ctrl-D)\n"
    "injections:\n"
    "  cpu_spike    busy loop on all its time (1 core)\n"
    "  memory_leak  touches 16 MiB/s more memory, never freed (capped), until cleared\n"
    "  io_heavy     writes and fsyncs 12 MiB/s to a temp file under --io_dir\n"
    "  crash        writes through a bad pointer: SIGSEGV; the demo restarts it\n"
    "  oom          moves it into a 64 MiB memory cgroup and allocates until the kernel\n"
    "               OOM-kills it; the demo restarts it\n";

void Status(Fleet& fleet, const DaemonClient& daemon) {
  auto processes = daemon.Processes();
  auto offenders = daemon.Offenders();
  std::map<uint32_t, const v1::Process*> by_pid;
  if (processes.ok()) {
    for (const v1::Process& p : processes->processes()) by_pid[p.pid()] = &p;
  }
  std::map<uint32_t, std::vector<std::string>> flags;
  if (offenders.ok()) {
    for (const v1::Offender& o : offenders->offenders()) flags[o.pid()].push_back(o.resource());
  }
  Print(absl::StrFormat("%-11s %7s %-12s %5s %12s %11s %12s  %s", "WORKER", "PID", "INJECTION",
                        "CPU", "MEM-GROWTH", "FAULTS/S", "BLOCK-IO", "FLAGGED"));
  for (const Worker& w : fleet.workers()) {
    std::string rates = absl::StrFormat("%5s %12s %11s %12s", "-", "-", "-", "-");
    if (auto it = by_pid.find(static_cast<uint32_t>(w.pid)); it != by_pid.end()) {
      const v1::Process& p = *it->second;
      rates = absl::StrFormat("%5.2f %12s %11.0f %12s", p.cpu_cores(),
                              HumanBytes(p.memory_growth_bytes_per_second(), " ") + "/s",
                              p.page_faults_per_second(),
                              HumanBytes(p.block_io_bytes_per_second(), " ") + "/s");
    }
    const auto f = flags.find(static_cast<uint32_t>(w.pid));
    Print(absl::StrFormat("%-11s %7d %-12s %s  %s", w.comm, w.pid, InjectionName(w.injection),
                          rates, f == flags.end() ? "-" : absl::StrJoin(f->second, ",")));
  }
  if (!offenders.ok()) {
    Print(absl::StrCat("procscoped at ", daemon.endpoint(),
                       " not reachable: ", offenders.status().message()));
    return;
  }
  Print(absl::StrFormat("procscoped offenders (window %.0fs):%s", offenders->window_seconds(),
                        offenders->offenders().empty() ? " none" : ""));
  for (const v1::Offender& o : offenders->offenders()) {
    Print(
        absl::StrFormat("  %-14s pid %-7d %-16s %s", o.resource(), o.pid(), o.comm(), o.reason()));
  }
}

// Runs one command line; false to quit.
bool Command(Fleet& fleet, const DaemonClient& daemon, const std::string& line) {
  std::vector<std::string> args = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (args.empty()) return true;
  const std::string cmd = absl::AsciiStrToLower(args[0]);
  if (cmd == "quit" || cmd == "exit" || cmd == "q") return false;
  if (cmd == "help" || cmd == "?") {
    fputs(kHelp, stdout);
  } else if (cmd == "status") {
    Status(fleet, daemon);
  } else if (cmd == "inject" && args.size() == 3) {
    auto what = ParseInjection(args[1]);
    Worker* w = fleet.Find(args[2]);
    if (!what.ok()) {
      Print(std::string(what.status().message()));
    } else if (w == nullptr) {
      Print(absl::StrCat("no worker '", args[2], "' (alpha, beta or gamma)"));
    } else if (absl::Status s = fleet.Inject(*w, *what); !s.ok()) {
      Print(absl::StrCat("inject ", args[1], " ", w->comm, ": ", s.message()));
    } else {
      Print(absl::StrCat("injecting ", InjectionName(*what), " into ", w->comm, " (pid ", w->pid,
                         ")", *what == Injection::kOom ? absl::StrCat(" in ", w->cgroup) : ""));
    }
  } else if (cmd == "clear" && args.size() == 2) {
    std::vector<Worker*> targets;
    if (args[1] == "all") {
      for (Worker& w : fleet.workers()) targets.push_back(&w);
    } else if (Worker* w = fleet.Find(args[1]); w != nullptr) {
      targets.push_back(w);
    } else {
      Print(absl::StrCat("no worker '", args[1], "' (alpha, beta, gamma or all)"));
    }
    for (Worker* w : targets) {
      if (absl::Status s = fleet.Inject(*w, Injection::kNone); !s.ok()) {
        Print(absl::StrCat("clear ", w->comm, ": ", s.message()));
      } else {
        Print(absl::StrCat(w->comm, " (pid ", w->pid, "): cleared"));
      }
    }
  } else {
    Print(absl::StrCat("unknown or incomplete command '", line, "' (try help)"));
  }
  return true;
}

void RunInteractive(Fleet& fleet, const DaemonClient& daemon) {
  const bool tty = isatty(STDIN_FILENO);
  if (tty) {
    Print(absl::StrCat("procscope-demo: workers ", WorkerList(fleet), "; procscoped at ",
                       daemon.endpoint(),
                       daemon.Ready().ok() ? "" : " (not reachable yet: status shows no rates)"));
    fputs(kHelp, stdout);
  }
  std::string pending;
  bool prompt = true;
  while (g_stop == 0) {
    if (tty && prompt) {
      fputs("procscope-demo> ", stdout);
      fflush(stdout);
      prompt = false;
    }
    // Wake up now and then to notice a crashed worker even while nobody types.
    pollfd p{STDIN_FILENO, POLLIN, 0};
    const int n = poll(&p, 1, 200);
    if (std::vector<Restart> r = fleet.Reap(); !r.empty()) {
      if (tty) fputs("\n", stdout);
      PrintRestarts(r);
      prompt = true;
    }
    if (n <= 0) continue;
    char buf[1024];
    const ssize_t got = read(STDIN_FILENO, buf, sizeof(buf));
    if (got < 0) continue;  // EINTR: the loop checks g_stop
    if (got == 0) {
      if (tty) fputs("\n", stdout);
      return;  // EOF (Ctrl-D)
    }
    pending.append(buf, static_cast<size_t>(got));
    for (size_t eol; (eol = pending.find('\n')) != std::string::npos;) {
      const std::string line = pending.substr(0, eol);
      pending.erase(0, eol + 1);
      if (!Command(fleet, daemon, line)) return;
      prompt = true;
    }
  }
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "procscope-demo: three worker processes (demo-alpha, demo-beta, demo-gamma) into which "
      "failures are injected, to see procscoped name the right one.\n"
      "Usage: procscope-demo [--endpoint=127.0.0.1:9750]       interactive (type help)\n"
      "       procscope-demo --all | --scenario=NAME [--worker=NAME] [--timeout=15s] [--hold=0s]");
  std::vector<char*> rest = ParseFlagsOrExit(argc, argv, "procscope-demo");
  auto usage = [](const std::string& msg) {
    fprintf(stderr, "procscope-demo: %s\n", msg.c_str());
    return 2;
  };
  if (rest.size() > 1)
    return usage(absl::StrCat("unexpected argument '", rest[1], "' (see --help)"));

  std::vector<Injection> scenarios;
  const std::string scenario = absl::GetFlag(FLAGS_scenario);
  if (!scenario.empty() && absl::GetFlag(FLAGS_all)) {
    return usage("--scenario and --all exclude each other");
  }
  if (absl::GetFlag(FLAGS_all)) {
    scenarios.assign(std::begin(kAllInjections), std::end(kAllInjections));
  } else if (!scenario.empty()) {
    auto what = ParseInjection(scenario);
    if (!what.ok()) return usage(absl::StrCat("--scenario: ", what.status().message()));
    scenarios.push_back(*what);
  }
  const std::string worker = absl::GetFlag(FLAGS_worker);
  if (!worker.empty() && worker != "alpha" && worker != "beta" && worker != "gamma" &&
      worker != "demo-alpha" && worker != "demo-beta" && worker != "demo-gamma") {
    return usage(absl::StrCat("--worker=", worker, ": one of alpha, beta, gamma"));
  }
  if (absl::GetFlag(FLAGS_timeout) <= absl::ZeroDuration()) {
    return usage("--timeout must be positive");
  }
  if (absl::GetFlag(FLAGS_hold) < absl::ZeroDuration()) return usage("--hold must be >= 0");
  const std::string io_dir = absl::GetFlag(FLAGS_io_dir);
  if (access(io_dir.c_str(), W_OK) != 0) {
    return usage(absl::StrCat("--io_dir=", io_dir, ": not a writable directory"));
  }
  uint64_t seed = absl::GetFlag(FLAGS_seed);
  if (seed == 0) seed = std::random_device()();

  InstallSignalHandlers();
  DaemonClient daemon(absl::GetFlag(FLAGS_endpoint), absl::Seconds(2));
  if (!scenarios.empty()) {
    if (absl::Status s = daemon.Ready(); !s.ok()) {
      fprintf(stderr, "procscope-demo: procscoped at %s is not ready (%s); start it first\n",
              daemon.endpoint().c_str(), std::string(s.message()).c_str());
      return 1;
    }
  }
  Fleet::SweepStale(io_dir);
  Fleet::Options options;
  options.io_dir = io_dir;
  options.leak_cap_bytes = Fleet::DefaultLeakCap();
  auto fleet = Fleet::Start(options);
  if (!fleet.ok()) {
    fprintf(stderr, "procscope-demo: %s\n", std::string(fleet.status().message()).c_str());
    return 1;
  }
  int rc = 0;
  if (scenarios.empty()) {
    RunInteractive(**fleet, daemon);
  } else {
    rc = RunScripted(**fleet, daemon, scenarios, worker, seed);
  }
  (*fleet)->Shutdown();
  if (const int sig = g_stop.load(); sig != 0) {
    fprintf(stderr, "procscope-demo: %s: workers stopped, temp files and cgroups removed\n",
            SignalName(sig).c_str());
    return 128 + sig;
  }
  return rc;
}

}  // namespace
}  // namespace procscope::demo

int main(int argc, char** argv) { return procscope::demo::Main(argc, argv); }
