// SPDX-License-Identifier: Apache-2.0
// procscoped: loads the kernel collector and reports the busiest processes and every exit.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "collector.h"
#include "config.h"
#include "flags_util.h"
#include "report.h"

ABSL_FLAG(absl::Duration, interval, absl::Seconds(2), "Time between reports (100ms..1h)");
ABSL_FLAG(absl::Duration, duration, absl::ZeroDuration(),
          "Stop after this long (e.g. 30s); 0 runs until SIGINT/SIGTERM");
ABSL_FLAG(int, top, 10, "Processes shown per report, busiest CPU first");
ABSL_FLAG(bool, quiet, false, "Collect without printing reports (for benchmarks)");
ABSL_FLAG(std::string, attach, "auto",
          "Tracepoint attach type: auto (tp_btf, else raw_tp), tp_btf or raw_tp");
ABSL_FLAG(std::string, btf, "", "Kernel BTF file to use instead of /sys/kernel/btf/vmlinux");
ABSL_FLAG(bool, verbose, false, "Print libbpf's messages, the verifier log included");

namespace procscope {
namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

int Run(const Config& config) {
  auto collector_or = Collector::Create(config.collector);
  if (!collector_or.ok()) {
    fprintf(stderr, "procscoped: %s\n", std::string(collector_or.status().message()).c_str());
    return 1;
  }
  Collector& collector = **collector_or;
  for (const std::string& hook : collector.Degraded()) {
    fprintf(stderr, "procscoped: warning: tracepoint %s unavailable; its data will be missing\n",
            hook.c_str());
  }
  fprintf(stderr, "procscoped: collector attached (%zu programs)\n", collector.Programs().size());

  std::vector<ProcessSample> prev;
  absl::Time prev_at = absl::Now();
  if (auto s = collector.ReadProcesses(); s.ok()) prev = *std::move(s);
  const absl::Time deadline =
      config.duration > absl::ZeroDuration() ? absl::Now() + config.duration : absl::InfiniteFuture();
  absl::Time next_report = absl::Now() + config.interval;
  auto print_exit = [&](const ps_exit_event& e) {
    if (!config.quiet) printf("%s\n", FormatExit(e).c_str());
  };
  while (!g_stop && absl::Now() < deadline) {
    auto polled = collector.PollExits(100, print_exit);
    if (!polled.ok()) {
      fprintf(stderr, "procscoped: %s\n", std::string(polled.status().message()).c_str());
      return 1;
    }
    if (absl::Now() < next_report) continue;
    next_report += config.interval;
    auto cur = collector.ReadProcesses();
    if (!cur.ok()) {
      fprintf(stderr, "procscoped: %s\n", std::string(cur.status().message()).c_str());
      return 1;
    }
    const absl::Time now = absl::Now();
    if (!config.quiet) {
      auto stats = collector.ReadStats();
      std::string drops;
      if (stats.ok()) {
        for (int i = 0; i < PS_STAT_MAX; ++i) {
          if (absl::StartsWith(StatName(i), "drop_") && (*stats)[i] != 0) {
            absl::StrAppend(&drops, " ", StatName(i), "=", (*stats)[i]);
          }
        }
      }
      printf("\n%s  %zu processes%s%s\n", absl::FormatTime("%H:%M:%S", now, absl::LocalTimeZone()).c_str(),
             cur->size(), drops.empty() ? "" : "  drops:", drops.c_str());
      printf("%s", FormatTopTable(ComputeRates(prev, *cur, absl::ToDoubleSeconds(now - prev_at)),
                                  static_cast<size_t>(config.top))
                       .c_str());
      fflush(stdout);
    }
    prev = *std::move(cur);
    prev_at = now;
  }
  // Events of processes that exited just before we stop.
  (void)collector.PollExits(0, print_exit);
  return 0;
}

}  // namespace
}  // namespace procscope

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "procscoped: per-process CPU, run-queue wait, context switches, page faults, block I/O and "
      "exits from the kernel, via BPF.\nUsage: procscoped [--interval=2s] [--top=10] "
      "[--duration=0] [--attach=auto|tp_btf|raw_tp]");
  std::vector<char*> rest = procscope::ParseFlagsOrExit(argc, argv, "procscoped");
  if (rest.size() > 1) {
    fprintf(stderr, "procscoped: unexpected argument '%s' (see --help)\n", rest[1]);
    return 2;
  }
  procscope::Config config;
  config.interval = absl::GetFlag(FLAGS_interval);
  config.duration = absl::GetFlag(FLAGS_duration);
  config.top = absl::GetFlag(FLAGS_top);
  config.quiet = absl::GetFlag(FLAGS_quiet);
  config.collector.btf_path = absl::GetFlag(FLAGS_btf);
  config.collector.verbose = absl::GetFlag(FLAGS_verbose);
  auto mode = procscope::ParseAttachMode(absl::GetFlag(FLAGS_attach));
  absl::Status valid = mode.ok() ? procscope::ValidateConfig(config) : mode.status();
  if (!valid.ok()) {
    fprintf(stderr, "procscoped: %s\n", std::string(valid.message()).c_str());
    return 2;
  }
  config.collector.attach = *mode;
  signal(SIGINT, procscope::OnSignal);
  signal(SIGTERM, procscope::OnSignal);
  return procscope::Run(config);
}
