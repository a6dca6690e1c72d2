// SPDX-License-Identifier: Apache-2.0
// The on-disk exit journal, <dir>/events.journal: an 8-byte file header ("PSJRNL2\n"), then
// records framed as
//   magic (4 bytes: F5 'P' 'S' 'R') | payload length (u32 LE) | CRC-32 of length+payload (u32 LE)
//   | payload (a serialized v1::ExitEvent, every string valid UTF-8).
// When the file would pass max_bytes it is rotated to events.journal.1 (replacing the previous
// one), so disk use stays under 2×max_bytes.
//
// At Open both files are streamed, oldest first, through a callback (memory stays bounded
// whatever their size). A damaged record costs only itself: the reader resyncs at the next
// magic whose CRC matches. A file with damage is kept aside as events.journal*.damaged-<unix
// time> (the newest kMaxDamagedFiles of them) and replaced by a copy of its good records. A file
// of the previous format (varint length + message, no header) is read once and rewritten in
// this one. The journal files must be regular files: symbolic links and other types are refused.
#ifndef PROCSCOPE_DAEMON_JOURNAL_H_
#define PROCSCOPE_DAEMON_JOURNAL_H_

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "procscope.pb.h"

namespace procscope {

class Journal {
 public:
  // Gets each recovered record, oldest first (rotated file first).
  using RecordFn = std::function<void(v1::ExitEvent&&)>;
  // Gets one log line (no newline). Default: LOG(WARNING) << "crash journal: " << line. The
  // journal rate-limits its write failures itself (per journal, counting the records dropped).
  using LogFn = std::function<void(absl::string_view)>;

  static constexpr int kMaxDamagedFiles = 3;
  // Write failures are logged at most this often (the counters count every one).
  static constexpr absl::Duration kLogInterval = absl::Minutes(1);

  // Opens (creating the directory and file if needed) and recovers the journal in `dir`.
  static absl::StatusOr<Journal> Open(const std::string& dir, uint64_t max_bytes,
                                      const RecordFn& on_record = nullptr, LogFn log = nullptr);
  Journal(Journal&&) noexcept;
  Journal& operator=(Journal&&) noexcept;
  ~Journal();

  // What Open found.
  uint64_t RecoveredRecords() const { return recovered_records_; }
  uint64_t DamagedBytes() const { return damaged_bytes_; }
  // Records (and their bytes) lost to failing writes (a full disk, I/O errors) since Open.
  uint64_t DroppedRecords() const { return dropped_records_; }
  uint64_t DroppedBytes() const { return dropped_bytes_; }

  // Appends one record (rotating first if needed). Not flushed to disk until Flush. Invalid
  // UTF-8 in a string field is replaced (U+FFFD). A failure is counted and logged (rate-limited).
  absl::Status Append(const v1::ExitEvent& e);
  // Writes buffered records out and fsyncs. A failure drops them, counted and logged.
  absl::Status Flush();

  std::string path() const;

 private:
  Journal() = default;
  std::string rotated_path() const;
  // Streams the records of `path` (absent: none) to on_record; sets it aside when damaged.
  absl::Status Recover(const std::string& path, const RecordFn& on_record);
  // Opens events.journal for appending; size_ becomes its size.
  absl::Status OpenCurrent();
  absl::Status Rotate();
  // After a failed write: drops the buffered and half-written records, back to flushed_size_.
  void RollBack();
  // Counts `records` of `bytes` as dropped and logs `s` unless it logged within kLogInterval.
  void Dropped(uint64_t records, uint64_t bytes, const absl::Status& s);
  void Log(absl::string_view line) const;

  std::string dir_;  // empty: moved from
  uint64_t max_bytes_ = 0;
  uint64_t size_ = 0;          // of events.journal, buffered records included
  uint64_t flushed_size_ = 0;  // of events.journal, as of the last successful fflush
  uint64_t buffered_records_ = 0;
  FILE* file_ = nullptr;
  LogFn log_;
  uint64_t recovered_records_ = 0;
  uint64_t damaged_bytes_ = 0;
  uint64_t dropped_records_ = 0;
  uint64_t dropped_bytes_ = 0;
  absl::Time last_log_ = absl::InfinitePast();
  uint64_t unlogged_drops_ = 0;  // records dropped since the last log line
};

// The records of one journal file's bytes (either format), for tests and fuzzing: calls
// `on_record` for each good one and returns the damaged byte count.
uint64_t ParseJournalBytes(absl::string_view data, const Journal::RecordFn& on_record);

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_JOURNAL_H_
