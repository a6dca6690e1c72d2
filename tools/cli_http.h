// SPDX-License-Identifier: Apache-2.0
// The GET client for procscoped's API (libcurl: http and https, a CA, a client certificate, basic
// auth): one request per connection, a deadline on the whole exchange, and errors that say what
// went wrong in an operator's words.
#ifndef PROCSCOPE_TOOLS_CLI_HTTP_H_
#define PROCSCOPE_TOOLS_CLI_HTTP_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cli_options.h"
#include "google/protobuf/message.h"

namespace procscope::cli {

struct HttpReply {
  int status = 0;
  std::string body;
};

// Parses a complete HTTP/1.x response (status line, headers, body; Content-Length or chunked
// transfer encoding or read-to-close).
absl::StatusOr<HttpReply> ParseHttpResponse(absl::string_view raw);

// GET http(s)://endpoint/path. Errors: kUnavailable "cannot reach procscoped at HOST:PORT (why)"
// when no connection could be made, kDeadlineExceeded when the reply did not come in time,
// kDataLoss for a reply that is not HTTP.
absl::StatusOr<HttpReply> HttpGetReply(const Endpoint& endpoint, absl::string_view path,
                                       absl::Duration timeout);

// The body of a 200 reply; any other status is an error that quotes the start of the body.
absl::StatusOr<std::string> HttpGet(const Endpoint& endpoint, absl::string_view path,
                                    absl::Duration timeout);
// The same check on a reply already received (or its error) from `endpoint` for `path`.
absl::StatusOr<std::string> OkBody(const Endpoint& endpoint, absl::string_view path,
                                   absl::StatusOr<HttpReply> reply);

// Parses the daemon's JSON (protobuf's mapping) into `msg`; fields it does not know (a newer
// daemon) are ignored. `what` names the document in the error.
absl::Status ParseJson(absl::string_view json, google::protobuf::Message* msg,
                       absl::string_view what);

}  // namespace procscope::cli

#endif  // PROCSCOPE_TOOLS_CLI_HTTP_H_
