// SPDX-License-Identifier: Apache-2.0
// Turns stack addresses into frames: kernel ones from /proc/kallsyms, user ones from the ELF
// symbol tables of the objects a process maps (.symtab, else .dynsym), with the load bias of
// each mapping, C++ names demangled. ELF objects are cached by build-id (else file identity), so
// a busy host reads each binary once; a container's binaries are reached through
// /proc/<pid>/map_files or /proc/<pid>/root. What a process maps is read while it lives
// (Capture) and kept after it exits until Forget, so an exited process still gets its names.
// Not thread-safe: one owner (the daemon's loop).
#ifndef PROCSCOPE_PROFILER_SYMBOLIZER_H_
#define PROCSCOPE_PROFILER_SYMBOLIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "procscope.h"
#include "profile.h"

namespace procscope {

struct SymbolizerOptions {
  std::string proc_root = "/proc";  // a host's /proc in a pod
  std::string kallsyms;             // "": <proc_root>/kallsyms
  size_t max_processes = 8192;      // processes whose mappings are kept (oldest dropped first)
  size_t max_objects = 1024;        // ELF objects whose symbols are cached (least recently used
                                    // dropped first)
  // A kernel address past every symbol (a module loaded since) re-reads kallsyms, at most this
  // often.
  absl::Duration kallsyms_reload_interval = absl::Seconds(30);
  // A user address in no known mapping (a dlopen since) re-reads the process's maps, at most
  // this often per process.
  absl::Duration recapture_interval = absl::Seconds(1);
  // Refresh re-reads a process's mappings once this long has passed since the last read, and
  // doubles the wait each time up to refresh_max: a process that has just exec'd is read again
  // while the dynamic loader maps its libraries, a long-lived one rarely.
  absl::Duration refresh_min = absl::Milliseconds(4);
  absl::Duration refresh_max = absl::Seconds(8);
};

struct SymbolizerStats {
  uint64_t processes = 0;          // processes with mappings kept
  uint64_t objects = 0;            // ELF objects cached
  uint64_t symbols = 0;            // symbols held over all cached objects
  uint64_t object_errors = 0;      // objects that could not be read (gone, not ELF, damaged)
  uint64_t captures = 0;           // Capture calls that read /proc/<pid>/maps
  uint64_t capture_misses = 0;     // ... and found the process gone
  uint64_t kernel_symbols = 0;     // text symbols of kallsyms held
  bool kernel_restricted = false;  // kallsyms shows only zeros (kptr_restrict, no CAP_SYSLOG) or
                                   // is unreadable: kernel frames are "[kernel]+0x<ip>"
  uint64_t kallsyms_reads = 0;     // times kallsyms was read (first use, then misses)
  uint64_t bytes = 0;              // memory held by symbol tables (cached objects and kallsyms)
};

class Symbolizer {
 public:
  explicit Symbolizer(SymbolizerOptions options = {});
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  // Reads the process's executable mappings now and opens their objects (cached). Again for a
  // key already captured: re-reads the mappings (a dlopen since). NotFound: the process is gone.
  absl::Status Capture(const ps_key& key);

  // The process has new stacks: Capture it if it never was, or if its mappings were read longer
  // ago than its refresh wait (refresh_min, doubling on each refresh up to refresh_max). A first
  // sample can land mid-execve, or before the dynamic loader maps libc; a process that exits
  // before the next drain must not keep those mappings. Returns whether it read the mappings.
  bool Refresh(const ps_key& key);

  // Reads kallsyms now (else the first Kernel call does). Call it before dropping CAP_SYSLOG:
  // without it kallsyms shows only zeros, and a later re-read that sees zeros keeps this table.
  // PermissionDenied: no addresses (kernel frames will be "[kernel]+0x<ip>").
  absl::Status LoadKernelSymbols();

  // User frames of process `key`, innermost first, one per address. Addresses after the first are
  // return addresses: their function is looked up at address - 1 (a call that ends a function
  // returns past it), their `address` and `offset` stay as given. A process never captured is
  // captured now if it still lives; an address in no known mapping gives "[unknown]+0x<ip>", one
  // in a mapping without a covering symbol "<object>+0x<offset>".
  std::vector<Frame> User(const ps_key& key, absl::Span<const uint64_t> ips);
  // Kernel frames ("[kernel]" or "[module]"), innermost first, return addresses as for User.
  // `offset`: from the kernel's _text or the module's base.
  std::vector<Frame> Kernel(absl::Span<const uint64_t> ips);

  // The process exited: its mappings may go (stacks still being drained use them first).
  void Forget(const ps_key& key);

  SymbolizerStats Stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace procscope

#endif  // PROCSCOPE_PROFILER_SYMBOLIZER_H_
