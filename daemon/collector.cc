// SPDX-License-Identifier: Apache-2.0
#include "collector.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <linux/perf_event.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <iterator>
#include <mutex>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "bpf_maps.h"
#include "bpf_pins.h"
#include "libbpf_log.h"
#include "log.h"
#include "procscope_bpf.skel.h"
#include "status_macros.h"

namespace procscope {
namespace {

constexpr char kDefaultBtf[] = "/sys/kernel/btf/vmlinux";
// How long the iterator may answer "unchanged" (PS_REC_SAME) before every process is sent whole.
constexpr absl::Duration kIteratorSessionLength = absl::Seconds(60);
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
  const char* missing;  // what is missing while an optional hook is not attached
};

const Hook kHooks[] = {
    {"sched_switch", [](procscope_bpf* s) { return s->progs.ps_sched_switch; },
     [](procscope_bpf* s) { return s->progs.ps_sched_switch_raw; }, true, ""},
    {"sched_process_exit", [](procscope_bpf* s) { return s->progs.ps_sched_exit; },
     [](procscope_bpf* s) { return s->progs.ps_sched_exit_raw; }, true, ""},
    {"mark_victim", [](procscope_bpf* s) { return s->progs.ps_oom_victim; },
     [](procscope_bpf* s) { return s->progs.ps_oom_victim_raw; }, false,
     "OOM kills, an OOM-killed process is reported as killed by SIGKILL"},
    {"block_getrq", [](procscope_bpf* s) { return s->progs.ps_block_getrq; },
     [](procscope_bpf* s) { return s->progs.ps_block_getrq_raw; }, false,
     "who submitted block I/O, charged to the issuing process instead, writeback unattributed"},
    {"block_rq_issue", [](procscope_bpf* s) { return s->progs.ps_block_rq_issue; },
     [](procscope_bpf* s) { return s->progs.ps_block_rq_issue_raw; }, false,
     "all block I/O bytes, operations and latency"},
    {"block_rq_complete", [](procscope_bpf* s) { return s->progs.ps_block_rq_complete; },
     [](procscope_bpf* s) { return s->progs.ps_block_rq_complete_raw; }, false,
     "all block I/O bytes, operations and latency"},
    {"writeback_dirty_folio", [](procscope_bpf* s) { return s->progs.ps_dirty_folio; },
     [](procscope_bpf* s) { return s->progs.ps_dirty_folio_raw; }, false,
     "page-cache bytes dirtied, and writeback charged to the writer, unattributed instead"},
};

// The on-CPU sampler's "hook": a software CPU-clock perf event per online CPU.
constexpr char kProfileHook[] = "cpu-clock";
constexpr char kProfileMissing[] =
    "on-CPU stacks (perf_event_open needs CAP_PERFMON or CAP_SYS_ADMIN, or "
    "kernel.perf_event_paranoid <= 0, and a seccomp filter that allows it; --profile_hz=0 turns "
    "the sampler off)";

// The online CPUs, from /sys/devices/system/cpu/online ("0-3,5").
absl::StatusOr<std::vector<int>> OnlineCpus() {
  constexpr char kPath[] = "/sys/devices/system/cpu/online";
  const int fd = open(kPath, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat(kPath, ": ", strerror(errno)));
  char buf[1024];
  const ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return absl::InternalError(absl::StrCat("reading ", kPath));
  std::vector<int> cpus;
  for (absl::string_view part : absl::StrSplit(absl::string_view(buf, n), ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) continue;
    const std::vector<absl::string_view> ends = absl::StrSplit(part, '-');
    int lo = 0, hi = 0;
    if (ends.size() > 2 || !absl::SimpleAtoi(ends[0], &lo) || !absl::SimpleAtoi(ends.back(), &hi) ||
        lo > hi) {
      return absl::InternalError(absl::StrCat(kPath, ": cannot parse \"", part, "\""));
    }
    for (int c = lo; c <= hi; ++c) cpus.push_back(c);
  }
  return cpus;
}

// Stack ids of one key, innermost address first, trailing zeros trimmed.
void TrimStack(std::vector<uint64_t>& ips) {
  while (!ips.empty() && ips.back() == 0) ips.pop_back();
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

struct Collector::Impl {
  procscope_bpf* skel = nullptr;
  bpf_link* iter_link = nullptr;
  std::vector<bpf_link*> links;
  std::vector<const char*> link_hooks;  // tracepoint of each link
  std::vector<int> adopted_prog_fds;    // programs of a previous daemon, kept for their stats
  PinState pin;
  int lock_fd = -1;                    // flock of the pin directory
  uint64_t old_ringbuf_events = 0;     // queued in an old ring buffer this build could not read
  std::vector<ProgramStats> attached;  // name, hook, attach; costs filled on demand
  std::vector<int> attached_fds;
  std::vector<std::string> degraded;
  ExitRing ring;
  bool defer_commit = false;  // CommitExits() advances the ring's consumer position
  int stats_fd = -1;          // keeps kernel.bpf_stats on while open
  std::string iter_buf;       // the process iterator's bytes, reused from pass to pass
  // The iterator's reading session (ps_iter_session; 0: start a new one at the next read), when
  // it began, and what it last returned: the processes its PS_REC_SAME records stand for.
  uint32_t iter_session = 0;
  uint32_t last_session = 0;
  absl::Time session_start;
  SessionKeys received;  // what PS_REC_SAME may answer in this session
  // ReadProcesses' last whole samples, when the last read was one (ReadPass keeps none).
  std::vector<ProcessSample> prev;
  bool prev_valid = false;
  // The sampler's perf events, one per online CPU; each link owns its event's fd.
  std::vector<bpf_link*> profile_links;
  // profile_notify, consumed by PollProfiled.
  absl::Mutex notify_mu;
  ring_buffer* notify_rb ABSL_GUARDED_BY(notify_mu) = nullptr;
  const std::function<void(const ProfiledProcess&)>* notify_fn ABSL_GUARDED_BY(notify_mu) = nullptr;
  // DrainStacks runs one at a time; what it could not read is added to ReadStats().
  absl::Mutex drain_mu;
  std::vector<ps_stack_key> drain_keys ABSL_GUARDED_BY(drain_mu);
  std::vector<uint64_t> drain_values ABSL_GUARDED_BY(drain_mu);
  std::atomic<uint64_t> stacks_expired{0};     // key of an epoch whose stack map was reused
  std::atomic<uint64_t> stacks_unreadable{0};  // a referenced stack id not in its map

  ~Impl() {
    if (stats_fd >= 0) close(stats_fd);
    for (bpf_link* l : profile_links) bpf_link__destroy(l);
    {
      absl::MutexLock l(&notify_mu);
      if (notify_rb != nullptr) ring_buffer__free(notify_rb);
    }
    for (bpf_link* l : links) bpf_link__destroy(l);
    if (iter_link != nullptr) bpf_link__destroy(iter_link);
    if (skel != nullptr) procscope_bpf__destroy(skel);
    for (int fd : adopted_prog_fds) close(fd);
    if (lock_fd >= 0) close(lock_fd);
  }

  // Adopts the state pinned in `dir` if its layout is this build's: reuses the pinned maps and
  // opens the pinned links (the running programs stay attached). False, with `why` set, when
  // there is nothing (usable) to adopt; an error only for a failure half-way.
  absl::StatusOr<bool> Adopt(const std::string& dir, uint64_t hash, std::string* why) {
    const int meta_fd = bpf_obj_get(absl::StrCat(dir, "/", kMetaPin).c_str());
    if (meta_fd < 0) {
      *why = "no complete pinned state";
      return false;
    }
    ps_meta meta = {};
    const uint32_t zero = 0;
    const int rc = bpf_map_lookup_elem(meta_fd, &zero, &meta);
    close(meta_fd);
    if (rc != 0 || meta.layout != PS_LAYOUT_VERSION || meta.hash != hash) {
      *why = absl::StrFormat(
          "the pinned state has layout %u (hash %016x), this build layout %u (hash %016x)",
          meta.layout, meta.hash, PS_LAYOUT_VERSION, hash);
      return false;
    }
    std::vector<std::pair<bpf_map*, int>> maps;
    auto close_all = [&] {
      for (auto& [m, fd] : maps) close(fd);
    };
    for (const char* name : kPinnedMaps) {
      const int fd = bpf_obj_get(MapPin(dir, name).c_str());
      if (fd < 0) {
        close_all();
        *why = absl::StrCat("pinned map ", name, " is missing");
        return false;
      }
      maps.push_back({bpf_object__find_map_by_name(skel->obj, name), fd});
    }
    for (const Hook& h : kHooks) {
      if (h.required && access(LinkPin(dir, h.tracepoint).c_str(), F_OK) != 0) {
        close_all();
        *why = absl::StrCat("pinned link of ", h.tracepoint, " is missing");
        return false;
      }
    }
    for (auto& [m, fd] : maps) {
      if (m == nullptr || bpf_map__reuse_fd(m, fd) != 0) {
        const int err = errno;
        close_all();
        return absl::InternalError(absl::StrCat("reusing pinned map in ", dir, ": ", strerror(err),
                                                " (procscoped --unpin starts over)"));
      }
    }
    close_all();  // reuse_fd took its own copies
    return true;
  }

  // After a fresh attach: pins the maps, the programs and their links, then the meta record that
  // marks the state complete.
  absl::Status Pin(const std::string& dir, uint64_t hash) {
    for (const char* name : kPinnedMaps) {
      bpf_map* m = bpf_object__find_map_by_name(skel->obj, name);
      const std::string path = MapPin(dir, name);
      if (m == nullptr || bpf_obj_pin(bpf_map__fd(m), path.c_str()) != 0) {
        return absl::InternalError(absl::StrCat("pinning ", path, ": ", strerror(errno)));
      }
    }
    for (size_t i = 0; i < links.size(); ++i) {
      const std::string lp = LinkPin(dir, link_hooks[i]);
      const std::string pp = ProgPin(dir, link_hooks[i]);
      if (bpf_link__pin(links[i], lp.c_str()) != 0 ||
          bpf_obj_pin(attached_fds[i + 1], pp.c_str()) != 0) {
        return absl::InternalError(absl::StrCat("pinning ", lp, ": ", strerror(errno)));
      }
    }
    const int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "ps_meta", sizeof(uint32_t), sizeof(ps_meta),
                                  1, nullptr);
    if (fd < 0)
      return absl::InternalError(absl::StrCat("creating the meta map: ", strerror(errno)));
    const ps_meta meta = {PS_LAYOUT_VERSION, 0, hash};
    const uint32_t zero = 0;
    const std::string path = absl::StrCat(dir, "/", kMetaPin);
    const bool ok =
        bpf_map_update_elem(fd, &zero, &meta, BPF_ANY) == 0 && bpf_obj_pin(fd, path.c_str()) == 0;
    const int err = errno;
    close(fd);
    if (!ok) return absl::InternalError(absl::StrCat("pinning ", path, ": ", strerror(err)));
    return absl::OkStatus();
  }

  // The pinned links of a previous daemon: held open, their programs listed for Programs().
  void OpenPinnedLinks(const std::string& dir) {
    for (const Hook& h : kHooks) {
      bpf_link* link = bpf_link__open(LinkPin(dir, h.tracepoint).c_str());
      if (link == nullptr) {
        degraded.push_back(h.tracepoint);
        continue;
      }
      links.push_back(link);
      link_hooks.push_back(h.tracepoint);
      const int prog_fd = bpf_obj_get(ProgPin(dir, h.tracepoint).c_str());
      if (prog_fd < 0) continue;
      bpf_prog_info info = {};
      uint32_t len = sizeof(info);
      bpf_program* twin = bpf_obj_get_info_by_fd(prog_fd, &info, &len) == 0 &&
                                  info.type == BPF_PROG_TYPE_RAW_TRACEPOINT
                              ? h.raw_tp(skel)
                              : h.tp_btf(skel);
      adopted_prog_fds.push_back(prog_fd);
      attached.push_back({bpf_program__name(twin), h.tracepoint,
                          info.type == BPF_PROG_TYPE_RAW_TRACEPOINT ? "raw_tp" : "tp_btf", 0, 0});
      attached_fds.push_back(prog_fd);
    }
  }

  // Opens a CPU-clock perf event on every online CPU at `hz` samples per second and attaches
  // the sampler to each. All or nothing: a CPU that fails closes the others.
  absl::Status AttachProfiler(int hz) {
    ASSIGN_OR_RETURN(std::vector<int> cpus, OnlineCpus());
    bpf_program* prog = skel->progs.ps_profile;
    for (int cpu : cpus) {
      perf_event_attr attr = {};
      attr.size = sizeof(attr);
      attr.type = PERF_TYPE_SOFTWARE;
      attr.config = PERF_COUNT_SW_CPU_CLOCK;
      attr.freq = 1;
      attr.sample_freq = static_cast<uint64_t>(hz);
      const int fd =
          static_cast<int>(syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC));
      bpf_link* link = nullptr;
      int err = errno;
      if (fd >= 0) {
        link = bpf_program__attach_perf_event(prog, fd);
        err = errno;
        if (link == nullptr) close(fd);
      }
      if (link == nullptr) {
        for (bpf_link* l : profile_links) bpf_link__destroy(l);
        profile_links.clear();
        const char* why = "";
        if (err == EACCES || err == EPERM) {
          why =
              ": needs CAP_PERFMON (or CAP_SYS_ADMIN) or kernel.perf_event_paranoid <= 0, and "
              "a seccomp filter that allows perf_event_open";
        } else if (err == EINVAL) {
          why = ": the rate may exceed kernel.perf_event_max_sample_rate";
        }
        return absl::FailedPreconditionError(absl::StrFormat(
            "on-CPU sampler not attached: %s of a CPU-clock perf event on CPU %d at %d Hz: "
            "%s%s (--profile_hz=0 turns it off)",
            fd < 0 ? "perf_event_open" : "attaching the program to", cpu, hz, strerror(err), why));
      }
      profile_links.push_back(link);
    }
    attached.push_back({bpf_program__name(prog), kProfileHook, "perf_event", 0, 0});
    attached_fds.push_back(bpf_program__fd(prog));
    return absl::OkStatus();
  }

  // Reads stack `id` of `map_fd` into `out`; false when it is not there.
  bool ReadStack(int map_fd, int32_t id, std::vector<uint64_t>& out) {
    out.assign(PS_STACK_DEPTH, 0);
    const uint32_t key = static_cast<uint32_t>(id);
    if (bpf_map_lookup_elem(map_fd, &key, out.data()) != 0) {
      out.clear();
      return false;
    }
    TrimStack(out);
    return true;
  }

  // Deletes every stack of `map_fd`. Ids are collected first: deleting while walking restarts
  // the walk.
  void ClearStackMap(int map_fd) {
    std::vector<uint32_t> ids;
    uint32_t key = 0, next = 0;
    const uint32_t* prev = nullptr;
    while (bpf_map_get_next_key(map_fd, prev, &next) == 0) {
      ids.push_back(next);
      key = next;
      prev = &key;
    }
    for (uint32_t id : ids) (void)bpf_map_delete_elem(map_fd, &id);
  }

  // One read of the process iterator in `session` (ps_iter_session; 0: every record whole).
  // Every read names its session: an adopted .bss holds the previous daemon's, and the adopted
  // task storage what that session received.
  absl::StatusOr<absl::string_view> ReadIterator(uint32_t session) {
    skel->bss->ps_iter_session = session;
    return ReadProcessIterator(iter_link, iter_buf);
  }
};

Collector::Collector(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Collector::~Collector() = default;

absl::StatusOr<std::unique_ptr<Collector>> Collector::Create(const CollectorOptions& options) {
  SetLibbpfVerbose(options.verbose);
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
  // Not BTF: the error below says so in one line; libbpf's warnings about it (not an ELF file,
  // no EHDR) would only repeat it.
  libbpf_set_print(nullptr);
  btf* kernel_btf = btf__parse(btf_path.c_str(), nullptr);
  libbpf_set_print(LibbpfPrint);
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

  if (options.ring_buffer_bytes != 0 &&
      bpf_map__set_max_entries(impl->skel->maps.events, options.ring_buffer_bytes) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("ring buffer size ", options.ring_buffer_bytes, ": ", strerror(errno)));
  }

  if (options.test_stack_counts_max_entries != 0 &&
      bpf_map__set_max_entries(impl->skel->maps.stack_counts,
                               options.test_stack_counts_max_entries) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "stack_counts size ", options.test_stack_counts_max_entries, ": ", strerror(errno)));
  }
  // No sampler, no program: nothing of it is loaded or attached.
  if (options.profile_hz <= 0) bpf_program__set_autoload(impl->skel->progs.ps_profile, false);

  // Pinned state: adopt it when its layout is ours, else start fresh (and pin after attaching).
  // Pinning that cannot be set up is reported, not fatal: the collector then works unpinned.
  std::string pin_dir = options.pin_path;
  const uint64_t layout_hash = LayoutHash(impl->skel->obj);
  bool adopted = false;
  if (!pin_dir.empty()) {
    absl::Status ready = PreparePinDir(pin_dir);
    if (ready.ok()) {
      auto lock = LockPinDir(pin_dir);
      if (lock.ok()) {
        impl->lock_fd = *lock;
      } else {
        ready = lock.status();
      }
    }
    if (!ready.ok()) {
      impl->pin.message = absl::StrCat("BPF state not pinned: ", ready.message(),
                                       "; a restart will lose the exits while procscoped is down");
      pin_dir.clear();
    }
  }
  if (!pin_dir.empty()) {
    std::string why;
    ASSIGN_OR_RETURN(adopted, impl->Adopt(pin_dir, layout_hash, &why));
    if (adopted) {
      // The previous daemon's programs keep running on these maps: load only the iterator.
      for (const Hook& h : kHooks) {
        bpf_program__set_autoload(h.tp_btf(impl->skel), false);
        bpf_program__set_autoload(h.raw_tp(impl->skel), false);
      }
    } else {
      const bool had_state = access(absl::StrCat(pin_dir, "/events").c_str(), F_OK) == 0 ||
                             access(absl::StrCat(pin_dir, "/", kMetaPin).c_str(), F_OK) == 0;
      impl->old_ringbuf_events = CountQueuedRecords(absl::StrCat(pin_dir, "/events"));
      // Unpinning the old links detaches the old programs before ours attach: nothing counted
      // twice.
      auto cleared = ClearDir(pin_dir);
      if (!cleared.ok()) return cleared.status();
      impl->pin.message = had_state
                              ? absl::StrFormat(
                                    "pinned BPF state in %s not adopted (%s): starting fresh; "
                                    "%u queued exit events of the old programs counted as "
                                    "dropped (ringbuf)",
                                    pin_dir, why, impl->old_ringbuf_events)
                              : "";
    }
  }

  // Resident memory and folio sizes are counted in pages: the kernel's, not 4 KiB (arm64: 16/64K).
  impl->skel->rodata->ps_page_size = static_cast<__u64>(sysconf(_SC_PAGESIZE));
  // Off-CPU accounting and contention: read-only, so that what is off costs no instruction.
  impl->skel->rodata->ps_offcpu = options.offcpu;
  impl->skel->rodata->ps_contention = options.contention;
  const uint32_t ratio =
      options.offcpu && options.offcpu_stack_ratio > 0 ? options.offcpu_stack_ratio : 0;
  impl->skel->rodata->ps_offcpu_stack_ratio = ratio;
  if (ratio > 0) {  // the chance of a D, and (PS_OFFCPU_SLEEP_FACTOR times less) of an S one
    impl->skel->rodata->ps_offcpu_stack_thresh_d =
        static_cast<uint32_t>(std::min<uint64_t>((1ull << 32) / ratio, UINT32_MAX));
    impl->skel->rodata->ps_offcpu_stack_thresh_s = static_cast<uint32_t>(
        std::max<uint64_t>((1ull << 32) / (uint64_t{PS_OFFCPU_SLEEP_FACTOR} * ratio), 1));
  }
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
  if (adopted) {
    // Registered and counted all along by the previous daemon's programs.
    impl->attached.push_back({"ps_dump_procs", "task", "iter", 0, 0});
    impl->attached_fds.push_back(bpf_program__fd(impl->skel->progs.ps_dump_procs));
    // Attached or not by the previous daemon: its links say which hooks run.
    impl->degraded.clear();
    impl->OpenPinnedLinks(pin_dir);
    ASSIGN_OR_RETURN(absl::string_view recs, impl->ReadIterator(/*session=*/0));
    ASSIGN_OR_RETURN(std::vector<ProcessSample> all, ParseProcessRecords(recs));
    const size_t procs = all.size();
    impl->pin = {true, true,
                 absl::StrFormat("adopted pinned BPF state from %s (layout %d, %u processes)",
                                 pin_dir, PS_LAYOUT_VERSION, procs)};
  }
  if (!adopted) {
    impl->skel->bss->ps_registering = 1;
    auto reg = impl->ReadIterator(/*session=*/0);
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
      impl->link_hooks.push_back(kHooks[i].tracepoint);
    }
    if (!pin_dir.empty()) {
      if (absl::Status s = impl->Pin(pin_dir, layout_hash); s.ok()) {
        impl->pin.pinned = true;
        if (impl->pin.message.empty()) {
          impl->pin.message =
              absl::StrFormat("pinned BPF state in %s (layout %d)", pin_dir, PS_LAYOUT_VERSION);
        }
      } else {
        (void)ClearDir(pin_dir);
        impl->pin.message =
            absl::StrCat("BPF state not pinned: ", s.message(),
                         "; a restart will lose the exits while procscoped is down");
      }
    }
  }  // fresh

  // The sampler's perf events are the daemon's own (not pinned): opened here, before the
  // daemon drops its capabilities, in both the fresh and the adopting case.
  if (options.profile_hz > 0) {
    if (absl::Status s = impl->AttachProfiler(options.profile_hz); !s.ok()) {
      LOG(WARNING) << s.message();
      impl->degraded.push_back(kProfileHook);
    }
  }

  RETURN_IF_ERROR(impl->ring.Open(bpf_map__fd(impl->skel->maps.events)));
  {
    absl::MutexLock l(&impl->notify_mu);
    Impl* raw = impl.get();
    impl->notify_rb = ring_buffer__new(
        bpf_map__fd(impl->skel->maps.profile_notify),
        [](void* ctx, void* data, size_t size) -> int {
          Impl* im = static_cast<Impl*>(ctx);
          im->notify_mu.AssertHeld();
          if (size < sizeof(ps_profiled) || im->notify_fn == nullptr) return 0;
          ps_profiled p;
          memcpy(&p, data, sizeof(p));
          ProfiledProcess out;
          out.key = p.key;
          out.tid = p.tid;
          out.cgroup_id = p.cgroup_id;
          out.comm.assign(p.comm, strnlen(p.comm, sizeof(p.comm)));
          (*im->notify_fn)(out);
          return 0;
        },
        raw, nullptr);
    if (impl->notify_rb == nullptr) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot map the profile_notify ring buffer: ", strerror(errno)));
    }
  }
  // A new profiled process ends PollExits' wait, so that its mappings are read within ms.
  RETURN_IF_ERROR(impl->ring.AddWakeFd(bpf_map__fd(impl->skel->maps.profile_notify)));
  impl->defer_commit = options.defer_exit_commit;
  if (options.bpf_stats) {
    impl->stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
    if (impl->stats_fd < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("--bpf_stats: cannot enable BPF run-time statistics: ", strerror(errno)));
    }
  }
  // Once, at start: what is missing (the metric procscope_degraded_hook and /api/v1/status
  // show it for as long as it lasts).
  if (const std::string w = DegradedHooksWarning(impl->degraded); !w.empty()) LOG(WARNING) << w;
  return std::unique_ptr<Collector>(new Collector(std::move(impl)));
}

std::string DegradedHooksWarning(const std::vector<std::string>& hooks) {
  if (hooks.empty()) return "";
  std::string out = "degraded: not attached:";
  for (size_t i = 0; i < hooks.size(); ++i) {
    const char* missing = hooks[i] == kProfileHook ? kProfileMissing : "its data";
    for (const Hook& h : kHooks) {
      if (hooks[i] == h.tracepoint && *h.missing != '\0') missing = h.missing;
    }
    absl::StrAppend(&out, i == 0 ? " " : "; ", hooks[i], " (missing: ", missing, ")");
  }
  absl::StrAppend(&out, "; everything else is collected");
  return out;
}

absl::StatusOr<std::vector<ProcessSample>> Collector::ReadProcesses() {
  std::vector<ProcessSample> out;
  RETURN_IF_ERROR(ReadProcesses(out));
  return out;
}

void Collector::RestartSession() { impl_->iter_session = 0; }

absl::Status Collector::ReadPass(PassRecords& out) {
  Impl& im = *impl_;
  im.prev_valid = false;
  const absl::Time now = absl::Now();
  // A new session now and then sends every process whole again: whatever the signature does not
  // cover (a comm written through /proc by a tracer) is never older than that.
  if (im.iter_session != 0 && now - im.session_start >= kIteratorSessionLength) {
    im.iter_session = 0;
  }
  for (int attempt = 0;; ++attempt) {
    if (im.iter_session == 0) {
      // Never 0, and never the last one: a task's stored session must not match by accident.
      // Starting from the clock, a restarted daemon does not reuse its predecessor's either.
      im.iter_session = im.last_session == 0 ? static_cast<uint32_t>(absl::ToUnixMicros(now)) | 1
                                             : im.last_session + 1;
      if (im.iter_session == 0) im.iter_session = 1;
      im.last_session = im.iter_session;
      im.session_start = now;
      SessionKeys().swap(im.received);
    }
    absl::StatusOr<absl::string_view> buf = im.ReadIterator(im.iter_session);
    absl::Status parsed = buf.ok() ? ParsePassRecords(*buf, im.received, out) : buf.status();
    if (parsed.ok()) return parsed;
    // What the iterator sent this time is not what we hold: start over with every record whole.
    im.iter_session = 0;
    if (!absl::IsFailedPrecondition(parsed) || attempt > 0) return parsed;
  }
}

absl::Status Collector::ReadProcesses(std::vector<ProcessSample>& out) {
  Impl& im = *impl_;
  if (!im.prev_valid) im.iter_session = 0;  // no copies to stand for unchanged processes
  PassRecords pass;
  RETURN_IF_ERROR(ReadPass(pass));
  // Each unchanged process is its copy in prev: ReadPass's session keys came from prev's reads.
  if (absl::Status s = ExpandPass(pass, im.prev, out); !s.ok()) {
    im.iter_session = 0;
    return s;
  }
  if (im.prev.capacity() > 4 * out.size() + 256) std::vector<ProcessSample>().swap(im.prev);
  im.prev = out;
  im.prev_valid = true;
  return absl::OkStatus();
}

absl::StatusOr<int> Collector::PollExits(int timeout_ms,
                                         const std::function<void(const ps_exit_event&)>& fn) {
  auto handle = [&](const uint8_t* data, uint32_t size) {
    if (size < sizeof(ps_exit_event)) return;
    ps_exit_event e;
    memcpy(&e, data, sizeof(e));
    fn(e);
  };
  ExitRing& ring = impl_->ring;
  const uint64_t failures = ring.map_failures();
  int n = ring.Drain(handle);
  if (n == 0 && timeout_ms > 0) {
    ring.Wait(timeout_ms);
    n = ring.Drain(handle);
  }
  if (!impl_->defer_commit) ring.Commit();
  // The exits stay in the ring and are read at a later poll (if it fills meanwhile, the kernel
  // counts the drops). Said once, and again every 1,000 failures.
  if (ring.map_failures() != failures && failures % 1000 == 0) {
    LOG(WARNING) << "cannot map the exit ring buffer's records (" << strerror(errno)
                 << "); retrying at the next poll";
  }
  return std::max(n, 0);
}

void Collector::CommitExits() { impl_->ring.Commit(); }

bool Collector::CommitBacklogHigh() const { return impl_->ring.BacklogHigh(); }

absl::StatusOr<KernelStats> Collector::ReadStats() {
  ASSIGN_OR_RETURN(KernelStats out, ReadPerCpuStats(bpf_map__fd(impl_->skel->maps.stats)));
  out[PS_STAT_DROP_RINGBUF] += impl_->old_ringbuf_events;
  // What DrainStacks found unreadable: an expired epoch, a stack id not in its map.
  out[PS_STAT_OFFCPU_STACK_EXPIRED] += impl_->stacks_expired.load(std::memory_order_relaxed);
  out[PS_STAT_STACK_FAILED] += impl_->stacks_unreadable.load(std::memory_order_relaxed);
  return out;
}

std::vector<ProgramStats> Collector::Programs() const {
  std::vector<ProgramStats> out = impl_->attached;
  FillProgramCosts(impl_->attached_fds, out);
  return out;
}

absl::StatusOr<size_t> Collector::ProcIoEntries() {
  return CountMapEntries(impl_->skel->maps.proc_io);
}

absl::StatusOr<std::vector<MapFill>> Collector::MapEntries() {
  std::vector<MapFill> out;
  {
    const bpf_map* m = impl_->skel->maps.requests;
    ASSIGN_OR_RETURN(size_t n, CountBusyRequestSlots(m));
    out.push_back({bpf_map__name(m), n, bpf_map__max_entries(m)});
  }
  for (const bpf_map* m : {impl_->skel->maps.proc_io, impl_->skel->maps.inode_owner,
                           impl_->skel->maps.oom_victims, impl_->skel->maps.leader_handover,
                           impl_->skel->maps.stack_counts, impl_->skel->maps.contention}) {
    ASSIGN_OR_RETURN(size_t n, CountMapEntries(m));
    out.push_back({bpf_map__name(m), n, bpf_map__max_entries(m)});
  }
  return out;
}

absl::StatusOr<std::vector<ContentionPair>> Collector::DrainContention() {
  const int fd = bpf_map__fd(impl_->skel->maps.contention);
  std::vector<ps_contention_key> keys;
  ps_contention_key k{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    keys.push_back(next);
    k = next;
    prev = &k;
  }
  if (errno != ENOENT) {
    return absl::InternalError(absl::StrCat("walking the contention map: ", strerror(errno)));
  }
  std::vector<ContentionPair> out;
  out.reserve(keys.size());
  for (const ps_contention_key& key : keys) {
    ps_contention_val v{};
    // Read and delete in one step: an episode added in between is not lost.
    if (bpf_map_lookup_and_delete_elem(fd, &key, &v) != 0) continue;
    out.push_back({key.culprit, key.victim, v.wait_ns, v.episodes});
  }
  return out;
}

const std::vector<std::string>& Collector::Degraded() const { return impl_->degraded; }

const PinState& Collector::Pinning() const { return impl_->pin; }

absl::StatusOr<std::vector<RawStack>> Collector::DrainStacks() {
  Impl& im = *impl_;
  absl::MutexLock l(&im.drain_mu);
  volatile __u32* epoch_var = &im.skel->bss->ps_epoch;
  const uint32_t epoch = *epoch_var;
  const int counts_fd = bpf_map__fd(im.skel->maps.stack_counts);
  const int stack_fds[2] = {bpf_map__fd(im.skel->maps.stacks0), bpf_map__fd(im.skel->maps.stacks1)};

  // 1. Every counted key, read and deleted in batches (about 100 ns an entry).
  constexpr uint32_t kBatch = 4096;
  im.drain_keys.resize(kBatch);
  im.drain_values.resize(kBatch);
  std::vector<ps_stack_key> keys;
  std::vector<uint64_t> values;
  uint32_t token = 0;
  bool first = true;
  for (;;) {
    uint32_t count = kBatch;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    const int rc = bpf_map_lookup_and_delete_batch(counts_fd, first ? nullptr : &token, &token,
                                                   im.drain_keys.data(), im.drain_values.data(),
                                                   &count, &opts);
    const int err = errno;
    first = false;
    if (rc != 0 && err != ENOENT) {
      return absl::InternalError(absl::StrCat("draining stack_counts: ", strerror(err)));
    }
    count = std::min(count, kBatch);
    keys.insert(keys.end(), im.drain_keys.begin(), im.drain_keys.begin() + count);
    values.insert(values.end(), im.drain_values.begin(), im.drain_values.begin() + count);
    if (rc != 0) break;  // ENOENT: that was the last batch
  }

  // 2. The stacks they reference, each read once, from the map of the key's epoch. A key more
  // than one epoch old references a map that has been cleared and refilled since: expired.
  std::unordered_map<uint64_t, std::vector<uint64_t>> cache;
  std::vector<uint64_t> buf;
  auto resolve = [&](const ps_stack_key& k, int32_t id, std::vector<uint64_t>& out) -> bool {
    const uint16_t age = static_cast<uint16_t>(static_cast<uint16_t>(epoch) - k.epoch);
    if (age > 1) {
      im.stacks_expired.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    const uint64_t ck = (uint64_t{k.epoch & 1u} << 32) | static_cast<uint32_t>(id);
    if (auto it = cache.find(ck); it != cache.end()) {
      out = it->second;
      return !out.empty();
    }
    const bool ok = im.ReadStack(stack_fds[k.epoch & 1], id, buf);
    if (!ok) im.stacks_unreadable.fetch_add(1, std::memory_order_relaxed);
    cache.emplace(ck, buf);
    out = buf;
    return ok;
  };
  std::vector<RawStack> out;
  out.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    const ps_stack_key& k = keys[i];
    if (k.kind >= PS_STACK_KINDS) continue;
    RawStack r;
    r.key = k.key;
    r.tid = k.tid;
    r.kind = static_cast<StackKind>(k.kind);
    r.value = values[i];
    // -EFAULT: no frames to walk (a sample in user mode has no kernel stack; a kernel thread
    // has no user stack, bpf/stacks.bpf.h): nothing is missing.
    if (k.kstack >= 0) {
      r.kernel_missing = !resolve(k, k.kstack, r.kernel_ips);
    } else {
      r.kernel_missing = k.kstack != -EFAULT;
    }
    if (k.ustack >= 0) {
      r.user_missing = !resolve(k, k.ustack, r.user_ips);
    } else {
      r.user_missing = k.ustack != -EFAULT;
    }
    out.push_back(std::move(r));
  }

  // 3. The map of the epoch before this one is referenced by no key any more (those are read or
  // expired): clear it, then advance, so that the programs fill it next.
  im.ClearStackMap(stack_fds[(epoch + 1) & 1]);
  __atomic_store_n(epoch_var, epoch + 1, __ATOMIC_RELEASE);
  return out;
}

int Collector::PollProfiled(const std::function<void(const ProfiledProcess&)>& fn) {
  absl::MutexLock l(&impl_->notify_mu);
  if (impl_->notify_rb == nullptr) return 0;
  impl_->notify_fn = &fn;
  const int n = ring_buffer__consume(impl_->notify_rb);
  impl_->notify_fn = nullptr;
  return std::max(n, 0);
}

}  // namespace procscope
