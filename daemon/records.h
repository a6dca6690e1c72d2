// SPDX-License-Identifier: Apache-2.0
// Plain user-space views of what the BPF side reports, and the pure logic that decodes them.
// Nothing here touches the kernel, so it is unit-tested without root.
#ifndef PROCSCOPE_DAEMON_RECORDS_H_
#define PROCSCOPE_DAEMON_RECORDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model.h"
#include "procscope.h"
#include "text.h"  // EscapeForDisplay, ToValidUtf8: most users of the records print them

namespace procscope {

// ProcessSample (a live process as one pass of the iterator saw it) is in model/model.h.

// One read of the process iterator as the daemon keeps it: the whole records (running threads'
// deltas added) and the processes whose PS_REC_SAME record said they are as their last whole
// record went, both sorted by pid. An idle process costs a key, not a copy of its sample.
struct PassRecords {
  std::vector<ProcessSample> whole;
  std::vector<ps_key> unchanged;
};

// The processes a reading session may answer with PS_REC_SAME: those whose last record in it was
// whole and had no deltas added (a copy would count those twice), sorted by pid.
using SessionKeys = std::vector<ps_key>;

// Parses one read into `out`, checking every PS_REC_SAME record against `received` and updating
// it with what this read sent. DataLoss on a truncated record; FailedPrecondition when a
// PS_REC_SAME record's process is not in `received` (the caller reads again in a new session,
// where every record is whole). On an error `out` is empty and `received` as it was.
absl::Status ParsePassRecords(absl::string_view buf, SessionKeys& received, PassRecords& out);

// `pass` as whole samples (its whole records moved out): each unchanged process is its sample in
// `prev` (sorted by pid), marked `unchanged`. FailedPrecondition when one is not there.
absl::Status ExpandPass(PassRecords& pass, const std::vector<ProcessSample>& prev,
                        std::vector<ProcessSample>& out);

// Parses one read of the process iterator: ps_proc_rec records, where PS_REC_DELTA records add a
// running thread's unfolded counters to their process and a PS_REC_SAME record (its first
// PS_REC_SAME_SIZE bytes only) stands for the process's sample in `prev`, the previous read of
// the same session (sorted by pid; empty for none). Output is sorted by pid. DataLoss on a
// truncated record; FailedPrecondition when a PS_REC_SAME record's process is not in `prev` (the
// caller reads again in a new session, where every record is whole).
absl::Status ParseProcessRecords(absl::string_view buf, const std::vector<ProcessSample>& prev,
                                 std::vector<ProcessSample>& out);
// The same with no previous read, into a new vector.
absl::StatusOr<std::vector<ProcessSample>> ParseProcessRecords(absl::string_view buf);

// How a process ended, decoded from the wait(2)-style status the kernel keeps.
struct ExitStatus {
  int exit_code = 0;  // valid when signal == 0
  int signal = 0;     // terminating signal, 0 for a normal exit
  bool core_dumped = false;
};
ExitStatus DecodeExitStatus(uint32_t wait_status);

// "SIGSEGV" for 11, "SIG42" for an unnamed one.
std::string SignalName(int signal);

// The comm bytes of a fixed-size kernel array, up to the first NUL.
std::string CommFromKernel(const char (&comm)[PS_COMM_LEN]);

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_RECORDS_H_
