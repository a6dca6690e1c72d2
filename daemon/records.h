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
