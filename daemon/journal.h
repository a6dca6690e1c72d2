// SPDX-License-Identifier: Apache-2.0
// The on-disk exit journal: length-delimited protobuf records (varint size, then a serialized
// v1::ExitEvent), appended to <dir>/events.journal. When the file would pass max_bytes it is
// rotated to events.journal.1 (replacing the previous one), so disk use stays under 2×max_bytes.
// At start the daemon reloads both files, oldest first; a truncated or corrupt tail (a crash in
// the middle of a write) is dropped and the file truncated to its last good record.
#ifndef PROCSCOPE_DAEMON_JOURNAL_H_
#define PROCSCOPE_DAEMON_JOURNAL_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "procscope.pb.h"

namespace procscope {

class Journal {
 public:
  // Opens (creating the directory and file if needed) and recovers the journal in `dir`.
  static absl::StatusOr<Journal> Open(const std::string& dir, uint64_t max_bytes);
  Journal(Journal&&) noexcept;
  Journal& operator=(Journal&&) noexcept;
  ~Journal();

  // Every record in the journal at Open, oldest first (rotated file first).
  const std::vector<v1::ExitEvent>& Recovered() const { return recovered_; }
  // Bytes dropped from a damaged tail at Open (0 normally).
  uint64_t DroppedBytes() const { return dropped_bytes_; }

  // Appends one record (rotating first if needed). Not flushed to disk until Flush.
  absl::Status Append(const v1::ExitEvent& e);
  // Writes buffered records out and fsyncs.
  absl::Status Flush();

  std::string path() const;

 private:
  Journal() = default;
  std::string rotated_path() const;
  // Reads the records of `path` (absent: none) and truncates it after the last good one.
  absl::Status Recover(const std::string& path);
  // Opens events.journal for appending; size_ becomes its size.
  absl::Status OpenCurrent();
  absl::Status Rotate();
  // After a failed write: drops the buffered and half-written records, back to flushed_size_.
  void RollBack();

  std::string dir_;  // empty: moved from
  uint64_t max_bytes_ = 0;
  uint64_t size_ = 0;          // of events.journal, buffered records included
  uint64_t flushed_size_ = 0;  // of events.journal, as of the last successful fflush
  FILE* file_ = nullptr;
  std::vector<v1::ExitEvent> recovered_;
  uint64_t dropped_bytes_ = 0;
};

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_JOURNAL_H_
