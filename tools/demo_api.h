// SPDX-License-Identifier: Apache-2.0
// procscoped's JSON API (proto/procscope.proto), as the demo reads it.
#ifndef PROCSCOPE_TOOLS_DEMO_API_H_
#define PROCSCOPE_TOOLS_DEMO_API_H_

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "procscope.pb.h"

namespace procscope::demo {

class DaemonClient {
 public:
  DaemonClient(std::string endpoint, absl::Duration timeout)
      : endpoint_(std::move(endpoint)), timeout_(timeout) {}

  const std::string& endpoint() const { return endpoint_; }

  // /readyz: the daemon has sampled at least once.
  absl::Status Ready() const;
  absl::StatusOr<v1::OffenderList> Offenders() const;
  absl::StatusOr<v1::EventList> Events(int limit) const;
  absl::StatusOr<v1::ProcessList> Processes() const;

 private:
  absl::Status Get(const std::string& path, google::protobuf::Message* out) const;

  std::string endpoint_;
  absl::Duration timeout_;
};

}  // namespace procscope::demo

#endif  // PROCSCOPE_TOOLS_DEMO_API_H_
