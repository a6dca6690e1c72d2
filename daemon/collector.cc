// SPDX-License-Identifier: Apache-2.0
#include "collector.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <iterator>
#include <mutex>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "procscope_bpf.skel.h"
#include "status_macros.h"

namespace procscope {
namespace {

constexpr char kDefaultBtf[] = "/sys/kernel/btf/vmlinux";
constexpr int kCapSysAdmin = 21;
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;

// A tracepoint hook: its tp_btf program and the raw_tp twin. Required hooks make loading fail
// when they cannot attach; optional ones leave the collector running without that data.
struct Hook {
  const char* tracepoint;
  bpf_program* (*tp_btf)(procscope_bpf*);
  bpf_program* (*raw_tp)(procscope_bpf*);
  bool required;
};

const Hook kHooks[] = {
    {"sched_switch", [](procscope_bpf* s) { return s->progs.ps_sched_switch; },
     [](procscope_bpf* s) { return s->progs.ps_sched_switch_raw; }, true},
    {"sched_process_exit", [](procscope_bpf* s) { return s->progs.ps_sched_exit; },
     [](procscope_bpf* s) { return s->progs.ps_sched_exit_raw; }, true},
    {"mark_victim", [](procscope_bpf* s) { return s->progs.ps_oom_victim; },
     [](procscope_bpf* s) { return s->progs.ps_oom_victim_raw; }, false},
    {"block_getrq", [](procscope_bpf* s) { return s->progs.ps_block_getrq; },
     [](procscope_bpf* s) { return s->progs.ps_block_getrq_raw; }, false},
    {"block_rq_issue", [](procscope_bpf* s) { return s->progs.ps_block_rq_issue; },
     [](procscope_bpf* s) { return s->progs.ps_block_rq_issue_raw; }, false},
    {"block_rq_complete", [](procscope_bpf* s) { return s->progs.ps_block_rq_complete; },
     [](procscope_bpf* s) { return s->progs.ps_block_rq_complete_raw; }, false},
    {"writeback_dirty_folio", [](procscope_bpf* s) { return s->progs.ps_dirty_folio; },
     [](procscope_bpf* s) { return s->progs.ps_dirty_folio_raw; }, false},
};

// libbpf's messages: forwarded with --verbose, otherwise kept quiet (our errors say what failed).
bool g_libbpf_verbose = false;
int LibbpfPrint(enum libbpf_print_level, const char* fmt, va_list args) {
  return g_libbpf_verbose ? vfprintf(stderr, fmt, args) : 0;
}

bool HasCap(const __user_cap_data_struct (&data)[2], int cap) {
  return (data[cap / 32].effective & (1u << (cap % 32))) != 0;
}

absl::Status CheckPrivileges() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) {
    return absl::InternalError(absl::StrCat("capget: ", strerror(errno)));
  }
  if (HasCap(data, kCapSysAdmin) || (HasCap(data, kCapBpf) && HasCap(data, kCapPerfmon))) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      "loading the BPF collector needs root or the capabilities CAP_BPF and CAP_PERFMON: run as "
      "root, or grant them (systemd AmbientCapabilities=CAP_BPF CAP_PERFMON, Kubernetes "
      "securityContext.capabilities.add: [BPF, PERFMON])");
}

std::string AttachName(bpf_program* prog) {
  switch (bpf_program__type(prog)) {
    case BPF_PROG_TYPE_RAW_TRACEPOINT:
      return "raw_tp";
    case BPF_PROG_TYPE_TRACING:
      return bpf_program__expected_attach_type(prog) == BPF_TRACE_ITER ? "iter" : "tp_btf";
    default:
      return "other";
  }
}

}  // namespace

const char* StatName(int index) {
  static const char* const kNames[] = {
      "drop_ringbuf",          "drop_task_storage", "drop_io_map",   "drop_requests",
      "drop_inode_owner",      "drop_oom_map",      "drop_handover", "io_unattributed_ops",
      "io_unattributed_bytes", "io_orphan_ops",     "exits",
  };
  // A stat added to procscope.h needs its name here (a sized array would leave a null slot).
  static_assert(std::size(kNames) == PS_STAT_MAX, "a ps_stat without a name");
  const char* name = index >= 0 && index < PS_STAT_MAX ? kNames[index] : nullptr;
  return name != nullptr ? name : "unknown";
}

struct Collector::Impl {
  procscope_bpf* skel = nullptr;
  bpf_link* iter_link = nullptr;
  std::vector<bpf_link*> links;
  std::vector<ProgramStats> attached;  // name, hook, attach; costs filled on demand
  std::vector<int> attached_fds;
  std::vector<std::string> degraded;
  ring_buffer* rb = nullptr;
  int stats_fd = -1;  // keeps kernel.bpf_stats on while open
  const std::function<void(const ps_exit_event&)>* on_exit = nullptr;
  int handled = 0;
  size_t last_read_size = 0;

  ~Impl() {
    if (rb != nullptr) ring_buffer__free(rb);
    if (stats_fd >= 0) close(stats_fd);
    for (bpf_link* l : links) bpf_link__destroy(l);
    if (iter_link != nullptr) bpf_link__destroy(iter_link);
    if (skel != nullptr) procscope_bpf__destroy(skel);
  }

  static int OnEvent(void* ctx, void* data, size_t size) {
    auto* self = static_cast<Impl*>(ctx);
    if (size < sizeof(ps_exit_event)) return 0;
    ps_exit_event e;
    memcpy(&e, data, sizeof(e));
    ++self->handled;
    if (self->on_exit != nullptr) (*self->on_exit)(e);
    return 0;
  }

  absl::StatusOr<std::string> ReadIterator() {
    int fd = bpf_iter_create(bpf_link__fd(iter_link));
    if (fd < 0) {
      return absl::InternalError(absl::StrCat("creating the process iterator: ", strerror(errno)));
    }
    std::string buf;
    buf.reserve(last_read_size + (64 << 10));  // one allocation per pass, not a doubling series
    char chunk[1 << 16];
    for (;;) {
      ssize_t n = read(fd, chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int err = errno;
        close(fd);
        return absl::InternalError(absl::StrCat("reading the process iterator: ", strerror(err)));
      }
      if (n == 0) break;
      buf.append(chunk, static_cast<size_t>(n));
    }
    close(fd);
    last_read_size = buf.size();
    return buf;
  }
};

Collector::Collector(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Collector::~Collector() = default;

absl::StatusOr<std::unique_ptr<Collector>> Collector::Create(const CollectorOptions& options) {
  g_libbpf_verbose = options.verbose;
  libbpf_set_print(LibbpfPrint);
  RETURN_IF_ERROR(CheckPrivileges());

  const std::string btf_path = options.btf_path.empty() ? kDefaultBtf : options.btf_path;
  if (access(btf_path.c_str(), R_OK) != 0) {
    if (options.btf_path.empty()) {
      return absl::FailedPreconditionError(
          "no kernel BTF at /sys/kernel/btf/vmlinux: this kernel was built without "
          "CONFIG_DEBUG_INFO_BTF; pass --btf=<file> with BTF for this kernel");
    }
    return absl::NotFoundError(
        absl::StrCat("--btf=", btf_path, ": cannot read it: ", strerror(errno)));
  }
  btf* kernel_btf = btf__parse(btf_path.c_str(), nullptr);
  if (kernel_btf == nullptr) {
    char why[128];
    libbpf_strerror(errno, why, sizeof(why));  // libbpf's own codes (4001...) too
    return absl::InvalidArgumentError(absl::StrCat(btf_path, " is not a valid BTF file: ", why));
  }

  // sched_process_exit(task, group_dead): the group_dead argument is what tells the process's
  // last thread apart; kernels without it cannot be served correctly.
  if (int id = btf__find_by_name_kind(kernel_btf, "btf_trace_sched_process_exit", BTF_KIND_TYPEDEF);
      id >= 0) {
    const btf_type* t = btf__type_by_id(kernel_btf, id);
    t = t != nullptr ? btf__type_by_id(kernel_btf, t->type) : nullptr;  // pointer
    t = t != nullptr ? btf__type_by_id(kernel_btf, t->type) : nullptr;  // func proto
    if (t != nullptr && btf_is_func_proto(t) && btf_vlen(t) < 3) {
      btf__free(kernel_btf);
      return absl::FailedPreconditionError(
          "this kernel's sched_process_exit tracepoint has no group_dead argument; procscope "
          "needs a newer kernel (developed on 6.18)");
    }
  }

  auto impl = std::make_unique<Impl>();
  LIBBPF_OPTS(bpf_object_open_opts, open_opts);
  if (!options.btf_path.empty()) open_opts.btf_custom_path = options.btf_path.c_str();
  impl->skel = procscope_bpf__open_opts(&open_opts);
  if (impl->skel == nullptr) {
    btf__free(kernel_btf);
    return absl::InternalError(absl::StrCat("opening the BPF object: ", strerror(errno)));
  }

  // Pick tp_btf or raw_tp per hook; the unused twin is not loaded.
  std::vector<bpf_program*> chosen(std::size(kHooks), nullptr);
  for (size_t i = 0; i < std::size(kHooks); ++i) {
    const Hook& h = kHooks[i];
    const bool has_btf =
        btf__find_by_name_kind(kernel_btf, absl::StrCat("btf_trace_", h.tracepoint).c_str(),
                               BTF_KIND_TYPEDEF) >= 0;
    bool use_btf =
        options.attach == AttachMode::kTpBtf || (options.attach == AttachMode::kAuto && has_btf);
    if (use_btf && !has_btf) {
      if (h.required) {
        btf__free(kernel_btf);
        return absl::FailedPreconditionError(
            absl::StrCat("tracepoint ", h.tracepoint, " has no BTF type in this kernel (btf_trace_",
                         h.tracepoint, "); use --attach=raw_tp or --attach=auto"));
      }
      impl->degraded.push_back(h.tracepoint);
    }
    bpf_program* on = use_btf ? h.tp_btf(impl->skel) : h.raw_tp(impl->skel);
    bpf_program* off = use_btf ? h.raw_tp(impl->skel) : h.tp_btf(impl->skel);
    bpf_program__set_autoload(off, false);
    if (use_btf && !has_btf) {
      bpf_program__set_autoload(on, false);
      on = nullptr;
    }
    chosen[i] = on;
  }
  btf__free(kernel_btf);

  if (procscope_bpf__load(impl->skel) != 0) {
    const int err = errno;
    if (err == EPERM) {
      return absl::PermissionDeniedError(
          absl::StrCat("the kernel refused to load the BPF programs (", strerror(err),
                       "): run as root or with CAP_BPF and CAP_PERFMON; a kernel lockdown or "
                       "kernel.unprivileged_bpf_disabled policy can also forbid it"));
    }
    return absl::InternalError(absl::StrCat(
        "loading the BPF programs failed: ", strerror(err),
        err == EACCES ? " (the verifier rejected a program; run with --verbose for its log)"
                      : " (run with --verbose for libbpf's messages)"));
  }

  // Register the processes that exist now, before any hook runs, then attach.
  impl->iter_link = bpf_program__attach_iter(impl->skel->progs.ps_dump_procs, nullptr);
  if (impl->iter_link == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create the task iterator (iter/task, Linux >= 5.8 with BTF): ", strerror(errno)));
  }
  impl->skel->bss->ps_registering = 1;
  auto reg = impl->ReadIterator();
  impl->skel->bss->ps_registering = 0;
  if (!reg.ok()) return reg.status();
  impl->attached.push_back({"ps_dump_procs", "task", "iter", 0, 0});
  impl->attached_fds.push_back(bpf_program__fd(impl->skel->progs.ps_dump_procs));

  for (size_t i = 0; i < std::size(kHooks); ++i) {
    bpf_program* prog = chosen[i];
    if (prog == nullptr) continue;
    bpf_link* link = bpf_program__attach(prog);
    if (link == nullptr) {
      const int err = errno;
      if (kHooks[i].required) {
        return absl::FailedPreconditionError(
            absl::StrFormat("cannot attach to tracepoint %s (%s): %s; this kernel may lack it",
                            kHooks[i].tracepoint, AttachName(prog), strerror(err)));
      }
      impl->degraded.push_back(kHooks[i].tracepoint);
      continue;
    }
    impl->links.push_back(link);
    impl->attached.push_back(
        {bpf_program__name(prog), kHooks[i].tracepoint, AttachName(prog), 0, 0});
    impl->attached_fds.push_back(bpf_program__fd(prog));
  }

  impl->rb =
      ring_buffer__new(bpf_map__fd(impl->skel->maps.events), &Impl::OnEvent, impl.get(), nullptr);
  if (impl->rb == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot create the exit-event ring buffer: ", strerror(errno),
                     " (locked-memory or memory cgroup limit too low?)"));
  }
  if (options.bpf_stats) {
    impl->stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
    if (impl->stats_fd < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("--bpf_stats: cannot enable BPF run-time statistics: ", strerror(errno)));
    }
  }
  return std::unique_ptr<Collector>(new Collector(std::move(impl)));
}

absl::StatusOr<std::vector<ProcessSample>> Collector::ReadProcesses() {
  ASSIGN_OR_RETURN(std::string buf, impl_->ReadIterator());
  return ParseProcessRecords(buf);
}

absl::StatusOr<int> Collector::PollExits(int timeout_ms,
                                         const std::function<void(const ps_exit_event&)>& fn) {
  impl_->on_exit = &fn;
  impl_->handled = 0;
  int rc = ring_buffer__poll(impl_->rb, timeout_ms);
  impl_->on_exit = nullptr;
  if (rc < 0 && rc != -EINTR) {
    return absl::InternalError(absl::StrCat("polling exit events: ", strerror(-rc)));
  }
  return impl_->handled;
}

absl::StatusOr<Stats> Collector::ReadStats() {
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return absl::InternalError("cannot count the possible CPUs");
  std::vector<uint64_t> values(static_cast<size_t>(ncpu));
  Stats out{};
  const int fd = bpf_map__fd(impl_->skel->maps.stats);
  for (uint32_t i = 0; i < PS_STAT_MAX; ++i) {
    if (bpf_map_lookup_elem(fd, &i, values.data()) != 0) {
      return absl::InternalError(absl::StrCat("reading stats: ", strerror(errno)));
    }
    for (uint64_t v : values) out[i] += v;
  }
  return out;
}

std::vector<ProgramStats> Collector::Programs() const {
  std::vector<ProgramStats> out = impl_->attached;
  for (size_t i = 0; i < out.size(); ++i) {
    bpf_prog_info info = {};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(impl_->attached_fds[i], &info, &len) == 0) {
      out[i].run_time_ns = info.run_time_ns;
      out[i].run_cnt = info.run_cnt;
    }
  }
  return out;
}

namespace {

absl::StatusOr<size_t> CountEntries(const bpf_map* map) {
  const int fd = bpf_map__fd(map);
  std::vector<char> key(bpf_map__key_size(map)), next(bpf_map__key_size(map));
  size_t n = 0;
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
    ++n;
    key.swap(next);
    prev = key.data();
  }
  if (errno != ENOENT) {
    return absl::InternalError(
        absl::StrCat("walking map ", bpf_map__name(map), ": ", strerror(errno)));
  }
  return n;
}

}  // namespace

absl::StatusOr<size_t> Collector::ProcIoEntries() {
  return CountEntries(impl_->skel->maps.proc_io);
}

absl::StatusOr<std::vector<std::pair<std::string, std::pair<uint64_t, uint64_t>>>>
Collector::MapEntries() {
  std::vector<std::pair<std::string, std::pair<uint64_t, uint64_t>>> out;
  for (const bpf_map* m :
       {impl_->skel->maps.proc_io, impl_->skel->maps.requests, impl_->skel->maps.inode_owner,
        impl_->skel->maps.oom_victims, impl_->skel->maps.leader_handover}) {
    ASSIGN_OR_RETURN(size_t n, CountEntries(m));
    out.push_back({bpf_map__name(m), {n, bpf_map__max_entries(m)}});
  }
  return out;
}

const std::vector<std::string>& Collector::Degraded() const { return impl_->degraded; }

}  // namespace procscope
