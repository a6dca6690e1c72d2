// SPDX-License-Identifier: Apache-2.0
// The pin directory on bpffs (--pin_path): its preparation (mounting /sys/fs/bpf on a fresh
// machine), its lock against a second collector, its clearing (--unpin), the layout hash that
// decides whether pinned state may be adopted. libbpf objects only: no skeleton here.
#ifndef PROCSCOPE_DAEMON_BPF_PINS_H_
#define PROCSCOPE_DAEMON_BPF_PINS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct bpf_object;

namespace procscope {

// The maps that carry state across a restart (scratch is per object). The pinned scheduler hook
// fills the stack maps and reads the stack epoch in .bss, so an adopting daemon drains and
// advances those (its own sampler program uses them too).
inline constexpr const char* kPinnedMaps[] = {
    "tasks",        "proc_io",        "inode_owner", "leader_handover", "requests",
    "oom_victims",  "events",         "stats",       "stacks0",         "stacks1",
    "stack_counts", "profile_notify", ".bss",        "contention"};
inline constexpr char kMetaPin[] = "meta";
inline constexpr char kSysFsBpf[] = "/sys/fs/bpf";

// The pin path of a map: its name, without the leading dot of a data section (".bss": "bss").
std::string MapPin(const std::string& dir, const char* map);
// Pin paths of a hook's link and program.
std::string LinkPin(const std::string& dir, const char* tp);
std::string ProgPin(const std::string& dir, const char* tp);
bool OnBpfFs(const std::string& path);
std::string Parent(const std::string& path);

// The layout hash of this build: every pinned map's definition and key/value types, and the
// records the daemon reads from them.
uint64_t LayoutHash(bpf_object* obj);

// Makes `dir` a directory on a bpffs: mounts one at /sys/fs/bpf when that is where it belongs
// and none is mounted (a fresh machine), then creates the directory.
absl::Status PreparePinDir(const std::string& dir);

// Locks `dir` against a second collector (which would steal half the exit events). Returns the
// lock's fd.
absl::StatusOr<int> LockPinDir(const std::string& dir);

// Removes every entry of `dir` (not the directory). Returns how many.
absl::StatusOr<int> ClearDir(const std::string& dir);

// Counts (and consumes) the exit events waiting in an old ring buffer that this build cannot
// read: they are reported as dropped rather than silently lost.
uint64_t CountQueuedRecords(const std::string& path);

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_BPF_PINS_H_
