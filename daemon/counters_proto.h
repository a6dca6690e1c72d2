// SPDX-License-Identifier: Apache-2.0
// The per-counter fields of the API messages, from and to the kernel's totals: every counter of
// bpf/procscope.h's lists, named and scaled as model/counters.h says.
#ifndef PROCSCOPE_DAEMON_COUNTERS_PROTO_H_
#define PROCSCOPE_DAEMON_COUNTERS_PROTO_H_

#include "procscope.h"
#include "procscope.pb.h"

namespace procscope {

// Sets every per-counter field of `out` (cpu_seconds ... runqueue_wait_histogram); the other
// fields (identity, rates) are the caller's.
void SetCounterFields(const ps_counters& c, const ps_io& io, v1::Process* out);
void SetCounterFields(const ps_counters& c, const ps_io& io, v1::ExitEvent* out);

// Adds an exit's counters, as its event (or the journal) holds them, to `c` and `io`.
void AddCountersFromProto(const v1::ExitEvent& e, ps_counters& c, ps_io& io);

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_COUNTERS_PROTO_H_
