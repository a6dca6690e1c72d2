// SPDX-License-Identifier: Apache-2.0
#include "demo_api.h"

#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "demo_http.h"

namespace procscope::demo {

absl::Status DaemonClient::Ready() const {
  return HttpGet(endpoint_, "/readyz", timeout_).status();
}

absl::Status DaemonClient::Get(const std::string& path, google::protobuf::Message* out) const {
  auto body = HttpGet(endpoint_, path, timeout_);
  if (!body.ok()) return body.status();
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // a newer daemon may add fields
  auto s = google::protobuf::util::JsonStringToMessage(*body, out, options);
  if (!s.ok()) {
    return absl::DataLossError(absl::StrCat("GET ", path, ": bad JSON: ", s.message().ToString()));
  }
  return absl::OkStatus();
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
