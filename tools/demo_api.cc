// SPDX-License-Identifier: Apache-2.0
#include "demo_api.h"

#include "absl/strings/str_cat.h"
#include "cli_http.h"
#include "cli_options.h"

namespace procscope::demo {

// The CLI's HTTP client and JSON reader: one implementation of the daemon's API for both tools.
absl::Status DaemonClient::Ready() const {
  auto ep = cli::ParseEndpoint(endpoint_);
  if (!ep.ok()) return ep.status();
  return cli::HttpGet(*ep, "/readyz", timeout_).status();
}

absl::Status DaemonClient::Get(const std::string& path, google::protobuf::Message* out) const {
  auto ep = cli::ParseEndpoint(endpoint_);
  if (!ep.ok()) return ep.status();
  auto body = cli::HttpGet(*ep, path, timeout_);
  if (!body.ok()) return body.status();
  return cli::ParseJson(*body, out, path);
}

absl::StatusOr<v1::OffenderList> DaemonClient::Offenders() const {
  v1::OffenderList list;
  if (absl::Status s = Get("/api/v1/offenders", &list); !s.ok()) return s;
  return list;
}

absl::StatusOr<v1::EventList> DaemonClient::Events(int limit) const {
  v1::EventList list;
  if (absl::Status s = Get(absl::StrCat("/api/v1/events?limit=", limit), &list); !s.ok()) {
    return s;
  }
  return list;
}

absl::StatusOr<v1::ProcessList> DaemonClient::Processes() const {
  v1::ProcessList list;
  if (absl::Status s = Get("/api/v1/processes", &list); !s.ok()) return s;
  return list;
}

}  // namespace procscope::demo
