// SPDX-License-Identifier: Apache-2.0
#include "bpf_maps.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "fd.h"
#include "file.h"

namespace procscope {

absl::StatusOr<absl::string_view> ReadProcessIterator(bpf_link* iter_link, std::string& buf) {
  ScopedFd fd(bpf_iter_create(bpf_link__fd(iter_link)));
  if (!fd.valid()) {
    return absl::InternalError(absl::StrCat("creating the process iterator: ", strerror(errno)));
  }
  // Read straight into `buf`, whose capacity stays from pass to pass: a fresh buffer per pass
  // was an mmap, its page faults and an munmap every second (13 % of the daemon's CPU with
  // 1,000 processes).
  constexpr size_t kChunk = 64 << 10;
  size_t used = 0;
  for (;;) {
    if (buf.size() < used + kChunk) buf.resize(std::max(2 * buf.size(), used + kChunk));
    const ssize_t n = read(fd.get(), buf.data() + used, kChunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::InternalError(absl::StrCat("reading the process iterator: ", strerror(errno)));
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  // Far fewer processes than at the peak (thousands exited): give the memory back.
  if (buf.size() > 4 * (used + kChunk)) {
    buf.resize(2 * (used + kChunk));
    buf.shrink_to_fit();
  }
  return absl::string_view(buf.data(), used);
}

absl::StatusOr<KernelStats> ReadPerCpuStats(int fd) {
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return absl::InternalError("cannot count the possible CPUs");
  std::vector<uint64_t> values(static_cast<size_t>(ncpu));
  KernelStats out{};
  for (uint32_t i = 0; i < PS_STAT_MAX; ++i) {
    if (bpf_map_lookup_elem(fd, &i, values.data()) != 0) {
      return absl::InternalError(absl::StrCat("reading stats: ", strerror(errno)));
    }
    for (uint64_t v : values) out[i] += v;
  }
  return out;
}

void FillProgramCosts(const std::vector<int>& prog_fds, std::vector<ProgramStats>& out) {
  for (size_t i = 0; i < out.size() && i < prog_fds.size(); ++i) {
    bpf_prog_info info = {};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(prog_fds[i], &info, &len) == 0) {
      out[i].run_time_ns = info.run_time_ns;
      out[i].run_cnt = info.run_cnt;
    }
  }
}

absl::StatusOr<size_t> CountMapEntries(const bpf_map* map) {
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

absl::StatusOr<size_t> CountBusyRequestSlots(const bpf_map* map) {
  const int fd = bpf_map__fd(map);
  if (bpf_map__value_size(map) != sizeof(ps_request)) {
    return absl::InternalError(absl::StrCat("map ", bpf_map__name(map), " is not a request table"));
  }
  constexpr uint32_t kBatch = 4096;
  std::vector<uint32_t> keys(kBatch);
  std::vector<ps_request> values(kBatch);
  size_t busy = 0;
  uint32_t in = 0, out = 0;
  bool first = true;
  for (;;) {
    uint32_t count = kBatch;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    const int rc = bpf_map_lookup_batch(fd, first ? nullptr : &in, &out, keys.data(), values.data(),
                                        &count, &opts);
    const int err = rc < 0 ? errno : 0;
    if (rc < 0 && err != ENOENT) {
      return absl::InternalError(
          absl::StrCat("reading map ", bpf_map__name(map), ": ", strerror(err)));
    }
    for (uint32_t i = 0; i < count; ++i) busy += values[i].tag != 0 ? 1 : 0;
    if (err == ENOENT) break;  // the last batch
    in = out;
    first = false;
  }
  return busy;
}

}  // namespace procscope
