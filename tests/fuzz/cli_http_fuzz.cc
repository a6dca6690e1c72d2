// SPDX-License-Identifier: Apache-2.0
// What the procscope CLI reads from the network: an HTTP/1.x reply (status line, headers,
// Content-Length or chunked body) and the JSON documents of procscoped's API in it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "cli_http.h"
#include "procscope.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view raw(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<procscope::cli::HttpReply> reply = procscope::cli::ParseHttpResponse(raw);
  if (!reply.ok()) {
    if (reply.status().message().empty()) __builtin_trap();
    return 0;
  }
  if (reply->body.size() > size) __builtin_trap();  // a body is made of the reply's bytes
  procscope::v1::ProcessList processes;
  procscope::v1::OffenderList offenders;
  procscope::v1::EventList events;
  procscope::v1::DaemonStatus status;
  procscope::cli::ParseJson(reply->body, &processes, "processes").IgnoreError();
  procscope::cli::ParseJson(reply->body, &offenders, "offenders").IgnoreError();
  procscope::cli::ParseJson(reply->body, &events, "events").IgnoreError();
  procscope::cli::ParseJson(reply->body, &status, "status").IgnoreError();
  return 0;
}
