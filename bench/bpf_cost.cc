// SPDX-License-Identifier: Apache-2.0
// Loads the collector with the kernel's BPF run-time statistics on, runs a workload command, and
// prints what each program cost: run count, total run time, ns per run.
//
//   procscope_bpf_cost [--offcpu=0|1] [--contention=0|1] [--offcpu_stack_ratio=N]
//                      [--profile_hz=N] -- perf bench sched pipe -l 200000
//   procscope_bpf_cost --profile_hz=99 -- stress-ng --cpu 2 --timeout 30s
//
// The stack counts are drained once a second meanwhile, as the daemon does.
#include <bpf/bpf.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"

#include "absl/strings/str_join.h"
#include "collector.h"

int main(int argc, char** argv) {
  int first = 1;
  procscope::CollectorOptions options;
  // The collector's feature switches (as procscoped's flags of the same names), before "--".
  for (; first < argc && std::string(argv[first]) != "--"; ++first) {
    const std::string a = argv[first];
    const size_t eq = a.find('=');
    const std::string name = a.substr(0, eq),
                      value = eq == std::string::npos ? "" : a.substr(eq + 1);
    char* end = nullptr;
    const long v = strtol(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || v < 0) {
      fprintf(stderr, "procscope_bpf_cost: bad option %s\n", a.c_str());
      return 2;
    }
    if (name == "--offcpu") {
      options.offcpu = v != 0;
    } else if (name == "--contention") {
      options.contention = v != 0;
    } else if (name == "--offcpu_stack_ratio") {
      options.offcpu_stack_ratio = static_cast<int>(v);
    } else if (name == "--profile_hz") {
      options.profile_hz = static_cast<int>(v);
    } else {
      fprintf(stderr, "procscope_bpf_cost: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (first < argc) ++first;  // "--"
  if (first >= argc) {
    fprintf(stderr,
            "usage: %s [--offcpu=0|1] [--contention=0|1] [--offcpu_stack_ratio=N] "
            "[--profile_hz=N] -- <workload command...>\n",
            argv[0]);
    return 2;
  }
  auto collector = procscope::Collector::Create(options);
  if (!collector.ok()) {
    fprintf(stderr, "procscope_bpf_cost: %s\n", std::string(collector.status().message()).c_str());
    return 1;
  }
  // Stats stay enabled while this fd is open.
  int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (stats_fd < 0) {
    fprintf(stderr, "procscope_bpf_cost: cannot enable BPF run-time stats\n");
    return 1;
  }
  const auto before = (*collector)->Programs();
  std::vector<std::string> cmd(argv + first, argv + argc);
  const std::string line = absl::StrJoin(cmd, " ");
  std::atomic<bool> done{false};
  std::thread drainer([&] {
    while (!done.load()) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      (void)(*collector)->DrainStacks();
    }
  });
  const int rc = system(line.c_str());
  const auto after = (*collector)->Programs();
  done = true;
  drainer.join();
  close(stats_fd);
  printf("| program | hook | attach | runs | ns/run |\n|---|---|---|---:|---:|\n");
  for (size_t i = 0; i < after.size(); ++i) {
    const uint64_t runs = after[i].run_cnt - before[i].run_cnt;
    const uint64_t ns = after[i].run_time_ns - before[i].run_time_ns;
    printf("| %s | %s | %s | %lu | %s |\n", after[i].name.c_str(), after[i].hook.c_str(),
           after[i].attach.c_str(), static_cast<unsigned long>(runs),
           runs ? std::to_string(static_cast<double>(ns) / runs).substr(0, 6).c_str() : "-");
  }
  return rc == 0 ? 0 : 1;
}
