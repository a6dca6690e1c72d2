// SPDX-License-Identifier: Apache-2.0
// Rates between two samples, the top-processes table and exit lines: pure logic on plain structs.
#ifndef PROCSCOPE_DAEMON_REPORT_H_
#define PROCSCOPE_DAEMON_REPORT_H_

#include <string>
#include <vector>

#include "procscope.h"
#include "records.h"

namespace procscope {

// Per-second rates of one process over an interval.
struct ProcessRate {
  const ProcessSample* sample = nullptr;
  double cpu_cores = 0;   // on-CPU seconds per second
  double runq_cores = 0;  // run-queue wait seconds per second
  double switches = 0;    // context switches per second
  double minor_faults = 0;
  double major_faults = 0;
  double read_bytes = 0;
  double write_bytes = 0;
};

// Rates of every process in `cur` against `prev` (both sorted by pid, as ParseProcessRecords
// returns them); a process absent from `prev` (or with another start time) counts from zero.
std::vector<ProcessRate> ComputeRates(const std::vector<ProcessSample>& prev,
                                      const std::vector<ProcessSample>& cur, double seconds);

// The `limit` processes with the highest CPU, as a fixed-width table.
std::string FormatTopTable(std::vector<ProcessRate> rates, size_t limit);

// One line for an exit event: who, how it ended, what it used.
std::string FormatExit(const ps_exit_event& e);

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_REPORT_H_
