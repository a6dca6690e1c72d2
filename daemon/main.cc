// SPDX-License-Identifier: Apache-2.0
// procscoped: loads the kernel collector, serves Prometheus metrics and a JSON API, records every
// process exit, names the offending processes, and shows them on its terminal.
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "config.h"
#include "daemon.h"
#include "flags_util.h"
#include "group_by.h"
#include "log.h"
#include "privileges.h"

ABSL_FLAG(std::string, listen, ":9750",
          "HTTP listener for /metrics and the API: :PORT (all interfaces), HOST:PORT or PORT");
ABSL_FLAG(std::string, web_config_file, "",
          "TLS and basic auth for every endpoint but /healthz and /readyz, in the web-config "
          "YAML of Prometheus exporters (tls_server_config, basic_auth_users); re-read on SIGHUP. "
          "Empty: plain HTTP, anyone who reaches the port reads it");
ABSL_FLAG(absl::Duration, interval, absl::Seconds(2), "Time between terminal reports (100ms..1h)");
ABSL_FLAG(int, top, 10, "Processes shown per terminal report, busiest CPU first");
ABSL_FLAG(bool, quiet, false, "No terminal report (serve only)");
ABSL_FLAG(absl::Duration, duration, absl::ZeroDuration(),
          "Stop after this long (e.g. 30s); 0 runs until SIGINT/SIGTERM");
ABSL_FLAG(absl::Duration, sample_interval, absl::Seconds(1),
          "Time between passes over all processes (100ms..1m)");
ABSL_FLAG(procscope::AttachMode, attach, procscope::AttachMode::kAuto,
          "Tracepoint attach type: auto (tp_btf, else raw_tp), tp_btf or raw_tp");
ABSL_FLAG(std::string, btf, "", "Kernel BTF file to use instead of /sys/kernel/btf/vmlinux");
ABSL_FLAG(std::string, log_level, "info",
          "Least severe messages logged to stderr: debug, info, warning or error. libbpf's "
          "warnings are warnings; its other messages are debug");
ABSL_FLAG(bool, verbose, false,
          "Print all of libbpf's messages, the verifier log included (at warning level)");
ABSL_FLAG(bool, bpf_stats, false,
          "Measure each BPF program's run time (procscope_bpf_program_* metrics); ~35 ns per run");
ABSL_FLAG(int, profile_hz, 19,
          "On-CPU stack samples per second per CPU (0: no on-CPU profiling; at most 1000)");
ABSL_FLAG(bool, offcpu, true, "Off-CPU accounting: time blocked (D) and sleeping (S) per process");
ABSL_FLAG(int, offcpu_stack_ratio, 16,
          "Off-CPU stacks: sample one D switch-out in N, one S switch-out in 1024 N (0: no off-CPU "
          "stacks; at most 65536)");
ABSL_FLAG(absl::Duration, profile_history, absl::Minutes(10),
          "How far back /debug/pprof/profile and /debug/pprof/offcpu can look (1m to 1h)");
ABSL_FLAG(bool, contention, true,
          "Run-queue wait caused: charge each wait to the process that held the CPU");
ABSL_FLAG(std::string, proc_root, "/proc", "Where procfs is mounted (a host's /proc in a pod)");
ABSL_FLAG(procscope::GroupBy, group_by, procscope::GroupBy::kComm,
          "What groups processes: comm, exe, container, unit (systemd) or user");
ABSL_FLAG(absl::Duration, group_idle_expiry, absl::Minutes(10),
          "Series of a group with no live process and no exit for this long are dropped");
ABSL_FLAG(std::string, include, "",
          "Only processes whose comm or exe matches this regex (RE2 syntax); empty: all");
ABSL_FLAG(std::string, exclude, "",
          "Leave out processes whose comm or exe matches this regex (RE2 syntax)");
ABSL_FLAG(int, top_k, 10, "Per-process series: the top K processes of each resource (1..1000)");
ABSL_FLAG(int, max_series, 20000, "Hard cap on series per scrape (what it drops is counted)");
ABSL_FLAG(absl::Duration, offender_window, absl::Seconds(30),
          "Sliding window the offender rates are measured over (5s..1h)");
ABSL_FLAG(double, offender_dominance, 2.0,
          "An offender's rate must be at least this many times the next process's");
ABSL_FLAG(double, offender_min_cpu_cores, 0.5, "Minimum CPU for a cpu offender (cores)");
ABSL_FLAG(double, offender_min_runqueue_cores, 0.1,
          "Minimum run-queue wait for a runqueue_wait offender (seconds per second)");
ABSL_FLAG(double, offender_min_memory_growth, 4 << 20,
          "Minimum resident-memory growth for a memory_growth offender (bytes/s)");
ABSL_FLAG(double, offender_min_page_faults, 2000,
          "Minimum page faults for a page_faults offender (faults/s)");
ABSL_FLAG(double, offender_min_block_io, 4 << 20,
          "Minimum block I/O for a block_io offender (bytes/s, read + write)");
ABSL_FLAG(double, offender_min_crashes, 3,
          "Minimum crashes (crashed or OOM-killed exits) per minute of one group");
ABSL_FLAG(std::string, journal_dir, "/var/lib/procscope",
          "Directory of the on-disk crash journal; empty disables it");
ABSL_FLAG(int64_t, journal_max_bytes, 16 << 20,
          "Journal size before it rotates (disk use stays under twice this)");
ABSL_FLAG(int, events_in_memory, 1000, "Exit events kept in memory for /api/v1/events");
ABSL_FLAG(std::string, pin_path, "/sys/fs/bpf/procscope",
          "bpffs directory where the BPF maps, exit ring buffer and links are pinned so that "
          "counting goes on across restarts and upgrades; empty: no pinning");
ABSL_FLAG(bool, unpin, false,
          "Remove what is pinned in --pin_path (detaching the BPF programs) and exit");
ABSL_FLAG(int64_t, ring_buffer_bytes, 4 << 20,
          "Exit-event ring buffer size (power of 2, 4096..1 GiB): exits it can hold while "
          "procscoped is down or busy, about 350 bytes each");
ABSL_FLAG(
    std::string, keep_capabilities, "",
    "Capabilities kept once loaded (debugging): empty for the run set (cap_sys_ptrace), "
    "a list such as sys_ptrace,bpf, 'none', or 'all' to drop nothing. no_new_privs is set unless "
    "'all'");
ABSL_FLAG(std::string, config, "",
          "Optional config file: one flag=value per line (# comments), the flags' names without "
          "--; command-line flags win. Re-read on SIGHUP");

namespace procscope {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};
void OnStop(int) { g_stop = true; }
void OnHup(int) { g_reload = true; }

// Flags the config file set last time (and where), reset to their defaults before it is read
// again so that a line removed from the file stops applying.
FlagOrigins& FileFlags() {
  static auto* m = new FlagOrigins;
  return *m;
}

// Flags given on the command line: they win over the config file.
std::set<std::string>& CommandLineFlags() {
  static auto* s = new std::set<std::string>;
  return *s;
}

// A count flag converted to size_t: a negative value is refused as given (not clamped first).
absl::Status NotNegative(const char* flag, int64_t v) {
  if (v >= 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", v, ": must not be negative"));
}

absl::StatusOr<Config> ConfigFromFlagsInner();

absl::StatusOr<Config> ConfigFromFlags() {
  if (const std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
    if (absl::Status s = ApplyConfigFile(path, CommandLineFlags(), FileFlags()); !s.ok()) return s;
  }
  absl::StatusOr<Config> c = ConfigFromFlagsInner();
  if (!c.ok()) return WithOrigin(c.status(), FileFlags());
  return c;
}

absl::StatusOr<Config> ConfigFromFlagsInner() {
  Config c;
  c.listen = absl::GetFlag(FLAGS_listen);
  c.web_config_file = absl::GetFlag(FLAGS_web_config_file);
  if (!c.web_config_file.empty()) {
    auto web = procscope::LoadWebConfig(c.web_config_file);
    if (!web.ok()) return web.status();
    c.web = *std::move(web);
  }
  c.interval = absl::GetFlag(FLAGS_interval);
  c.top = absl::GetFlag(FLAGS_top);
  c.quiet = absl::GetFlag(FLAGS_quiet);
  c.duration = absl::GetFlag(FLAGS_duration);
  c.sample_interval = absl::GetFlag(FLAGS_sample_interval);
  c.collector.attach = absl::GetFlag(FLAGS_attach);
  c.collector.btf_path = absl::GetFlag(FLAGS_btf);
  auto log_level = ParseLogLevel(absl::GetFlag(FLAGS_log_level));
  if (!log_level.ok()) return log_level.status();
  c.log_level = *log_level;
  c.collector.verbose = absl::GetFlag(FLAGS_verbose);
  c.collector.bpf_stats = absl::GetFlag(FLAGS_bpf_stats);
  c.collector.pin_path = absl::GetFlag(FLAGS_pin_path);
  c.collector.profile_hz = absl::GetFlag(FLAGS_profile_hz);
  c.collector.offcpu = absl::GetFlag(FLAGS_offcpu);
  c.collector.offcpu_stack_ratio = absl::GetFlag(FLAGS_offcpu_stack_ratio);
  c.collector.contention = absl::GetFlag(FLAGS_contention);
  c.profile_history = absl::GetFlag(FLAGS_profile_history);
  const int64_t ring = absl::GetFlag(FLAGS_ring_buffer_bytes);
  c.collector.ring_buffer_bytes =
      ring == (4 << 20) ? 0 : static_cast<uint32_t>(std::clamp<int64_t>(ring, 1, UINT32_MAX));
  c.proc_root = absl::GetFlag(FLAGS_proc_root);
  c.table.group_by = absl::GetFlag(FLAGS_group_by);
  c.table.group_idle_expiry = absl::GetFlag(FLAGS_group_idle_expiry);
  c.table.include_regex = absl::GetFlag(FLAGS_include);
  c.table.exclude_regex = absl::GetFlag(FLAGS_exclude);
  const int top_k = absl::GetFlag(FLAGS_top_k);
  const int max_series = absl::GetFlag(FLAGS_max_series);
  const int64_t journal_max = absl::GetFlag(FLAGS_journal_max_bytes);
  const int events = absl::GetFlag(FLAGS_events_in_memory);
  for (const auto& [flag, v] : {std::pair<const char*, int64_t>{"top_k", top_k},
                                {"max_series", max_series},
                                {"journal_max_bytes", journal_max},
                                {"events_in_memory", events}}) {
    if (absl::Status s = NotNegative(flag, v); !s.ok()) return s;
  }
  c.export_options.top_k = top_k < 0 ? 0 : static_cast<size_t>(top_k);
  c.export_options.max_series = max_series < 0 ? 0 : static_cast<size_t>(max_series);
  c.offenders.window = absl::GetFlag(FLAGS_offender_window);
  c.offenders.num_cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  c.offenders.dominance = absl::GetFlag(FLAGS_offender_dominance);
  c.offenders.min_cpu_cores = absl::GetFlag(FLAGS_offender_min_cpu_cores);
  c.offenders.min_runqueue_cores = absl::GetFlag(FLAGS_offender_min_runqueue_cores);
  c.offenders.min_memory_growth_bps = absl::GetFlag(FLAGS_offender_min_memory_growth);
  c.offenders.min_page_faults_per_s = absl::GetFlag(FLAGS_offender_min_page_faults);
  c.offenders.min_block_io_bps = absl::GetFlag(FLAGS_offender_min_block_io);
  c.offenders.min_crashes_per_min = absl::GetFlag(FLAGS_offender_min_crashes);
  c.journal_dir = absl::GetFlag(FLAGS_journal_dir);
  c.journal_max_bytes = journal_max < 0 ? 0 : static_cast<uint64_t>(journal_max);
  c.events_in_memory = events < 0 ? 0 : static_cast<size_t>(events);
  if (const std::string keep = absl::GetFlag(FLAGS_keep_capabilities); keep == "all") {
    c.drop_capabilities = false;
  } else if (keep == "none") {
    c.keep_capabilities = 0;
  } else if (!keep.empty()) {
    absl::StatusOr<CapMask> caps = ParseCapabilities(keep);
    if (!caps.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--keep_capabilities=", Excerpt(keep), ": ", caps.status().message()));
    }
    c.keep_capabilities = *caps;
  }
  if (absl::Status s = ValidateConfig(c); !s.ok()) return s;
  return c;
}

}  // namespace
}  // namespace procscope

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "which process is hurting this machine, and how. Per-process CPU, run-queue "
      "wait, context switches, page faults, block I/O and every exit, from the kernel via BPF; "
      "Prometheus metrics and a JSON API on --listen (default :9750).\n"
      "Usage: procscoped [--listen=:9750] [--config=FILE] [--group_by=comm] [--quiet]");
  procscope::CommandLineFlags() = procscope::FlagNamesInArgv(argc, argv);
  std::vector<char*> rest = procscope::ParseFlagsOrExit(argc, argv, "procscoped");
  if (rest.size() > 1) {
    fprintf(stderr, "procscoped: unexpected argument '%s' (see --help)\n",
            procscope::Excerpt(rest[1]).c_str());
    return 2;
  }
  if (absl::GetFlag(FLAGS_unpin)) {
    const std::string path = absl::GetFlag(FLAGS_pin_path);
    auto n = procscope::UnpinCollector(path);
    if (!n.ok()) {
      fprintf(stderr, "procscoped: --unpin: %s\n", std::string(n.status().message()).c_str());
      return 1;
    }
    fprintf(stderr, "procscoped: removed %d pinned objects from %s\n", *n, path.c_str());
    return 0;
  }
  auto config = procscope::ConfigFromFlags();
  if (!config.ok()) {
    fprintf(stderr, "procscoped: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  procscope::SetLogLevel(config->log_level);
  // Blocks from 128 KiB (a pass's vectors with thousands of processes, a scrape's output) are
  // mapped, so that they go back to the kernel when freed rather than keep the peak resident in
  // a fragmented heap; the buffers a pass reuses keep their capacity, so this costs no page
  // faults per pass.
  mallopt(M_MMAP_THRESHOLD, 128 << 10);
  mallopt(M_ARENA_MAX, 2);
  signal(SIGINT, procscope::OnStop);
  signal(SIGTERM, procscope::OnStop);
  signal(SIGHUP, procscope::OnHup);
  signal(SIGPIPE, SIG_IGN);
  // The HTTP threads start with these blocked (they inherit the mask), so the signals go to this
  // thread and interrupt its poll at once: the loop need not wake up often to look at the flags.
  sigset_t loop_signals;
  sigemptyset(&loop_signals);
  sigaddset(&loop_signals, SIGINT);
  sigaddset(&loop_signals, SIGTERM);
  sigaddset(&loop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &loop_signals, nullptr);
  auto daemon = procscope::Daemon::Create(*config);
  pthread_sigmask(SIG_UNBLOCK, &loop_signals, nullptr);
  if (!daemon.ok()) {
    LOG(ERROR) << daemon.status().message();
    return 1;
  }
  // Loaded and attached, port bound, journal open: from here on only the run set is needed.
  if (config->drop_capabilities) {
    absl::StatusOr<procscope::PrivilegeState> st =
        procscope::DropPrivileges(config->keep_capabilities);
    if (!st.ok()) {
      LOG(ERROR) << st.status().message();
      return 1;
    }
    LOG(INFO) << "capabilities now: "
              << (st->effective == 0 ? "none" : procscope::FormatCapabilities(st->effective))
              << "; bounding set: " << procscope::FormatCapabilities(st->bounding)
              << "; no_new_privs";
  }
  LOG(INFO) << "collecting; serving " << (config->web.tls ? "https" : "http") << "://"
            << config->listen << " (port " << (*daemon)->http_port() << ")"
            << (config->web.basic_auth_users.empty() ? "" : ", basic auth");
  // A reload that the daemon accepts (ConfigFromFlags validated it) applies --log_level too.
  absl::Status s = (*daemon)->Run(procscope::g_stop, procscope::g_reload, [] {
    absl::StatusOr<procscope::Config> c = procscope::ConfigFromFlags();
    if (c.ok()) procscope::SetLogLevel(c->log_level);
    return c;
  });
  if (!s.ok()) {
    LOG(ERROR) << s.message();
    return 1;
  }
  return 0;
}
