// SPDX-License-Identifier: Apache-2.0
// Fills a crash journal directory with realistic exit records until both files are full, for
// measuring procscoped's memory and start time on a full journal (docs/PERFORMANCE.md).
// Usage: procscope_journal_fill DIR [MAX_BYTES (16 MiB)] [--legacy]
//   --legacy writes the previous format (varint length + message), to measure the upgrade.
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "journal.h"
#include "procscope.pb.h"

namespace {

procscope::v1::ExitEvent Event(uint64_t i) {
  procscope::v1::ExitEvent e;
  e.set_pid(100000 + static_cast<uint32_t>(i % 4000000));
  e.set_ppid(1);
  e.set_comm(absl::StrCat("worker-", i % 97));
  e.set_group(absl::StrCat("worker-", i % 97));
  e.set_container(std::string(64, "0123456789abcdef"[i % 16]));
  e.set_pod_uid("0e1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8");
  e.set_systemd_unit("containerd.service");
  e.set_uid(1000);
  e.set_outcome(i % 10 == 0 ? procscope::v1::CRASHED : procscope::v1::SUCCESS);
  e.set_signal(i % 10 == 0 ? 11 : 0);
  e.set_signal_name(i % 10 == 0 ? "SIGSEGV" : "");
  e.set_start_time_unix_ns(1'700'000'000'000'000'000 + i * 1000);
  e.set_exit_time_unix_ns(1'700'000'001'000'000'000 + i * 1000);
  e.set_lifetime_seconds(1.5);
  e.set_cpu_seconds(0.25);
  e.set_runqueue_wait_seconds(0.01);
  e.set_voluntary_context_switches(i % 1000);
  e.set_involuntary_context_switches(i % 100);
  e.set_minor_faults(1234);
  e.set_read_bytes(4096 * (i % 100));
  e.set_peak_resident_memory_bytes(64 << 20);
  e.set_cgroup_id(0xc0ffee + i % 50);
  return e;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s DIR [MAX_BYTES] [--legacy]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  uint64_t max_bytes = 16 << 20;
  bool legacy = false;
  for (int i = 2; i < argc; ++i) {
    if (strcmp(argv[i], "--legacy") == 0) {
      legacy = true;
    } else {
      max_bytes = strtoull(argv[i], nullptr, 10);
    }
  }
  uint64_t n = 0;
  if (legacy) {
    // Two full files of the previous format, oldest in events.journal.1.
    for (const char* name : {"/events.journal.1", "/events.journal"}) {
      std::string data;
      while (data.size() < max_bytes - 512) {
        const std::string body = Event(n++).SerializeAsString();
        google::protobuf::io::StringOutputStream zero_copy(&data);
        google::protobuf::io::CodedOutputStream out(&zero_copy);
        out.WriteVarint32(static_cast<uint32_t>(body.size()));
        out.WriteRaw(body.data(), static_cast<int>(body.size()));
      }
      std::ofstream f(dir + name, std::ios::binary | std::ios::trunc);
      f << data;
      if (!f.flush()) {
        fprintf(stderr, "cannot write %s%s\n", dir.c_str(), name);
        return 1;
      }
    }
  } else {
    absl::StatusOr<procscope::Journal> j = procscope::Journal::Open(dir, max_bytes);
    if (!j.ok()) {
      fprintf(stderr, "%s\n", std::string(j.status().message()).c_str());
      return 1;
    }
    // Until both files are full: the current one near max_bytes after a rotation.
    uint64_t rotations = 0;
    uint64_t last_size = 0;
    for (;; ++n) {
      if (!j->Append(Event(n)).ok()) return 1;
      if (n % 1000 != 0) continue;
      if (!j->Flush().ok()) return 1;
      struct stat st;
      if (stat(j->path().c_str(), &st) != 0) return 1;
      const uint64_t size = static_cast<uint64_t>(st.st_size);
      if (size < last_size) ++rotations;
      last_size = size;
      if (rotations > 0 && size + 200 * 1000 > max_bytes) break;
    }
    if (!j->Flush().ok()) return 1;
  }
  printf("%llu records\n", static_cast<unsigned long long>(n));
  return 0;
}
