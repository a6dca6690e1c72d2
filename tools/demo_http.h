// SPDX-License-Identifier: Apache-2.0
// A minimal HTTP/1.0 GET over a plain socket, enough to read procscoped's JSON API without
// pulling an HTTP client library into the demo.
#ifndef PROCSCOPE_TOOLS_DEMO_HTTP_H_
#define PROCSCOPE_TOOLS_DEMO_HTTP_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace procscope::demo {

// GET http://<endpoint><path> and return the body of a 200 response. `endpoint` is HOST:PORT,
// [IPv6]:PORT, :PORT or PORT (the last two mean 127.0.0.1). The whole exchange (resolve, connect,
// send, receive) must finish within `timeout`. Not 200 is FailedPrecondition naming the status
// line; no answer is Unavailable or DeadlineExceeded.
absl::StatusOr<std::string> HttpGet(absl::string_view endpoint, absl::string_view path,
                                    absl::Duration timeout);

}  // namespace procscope::demo

#endif  // PROCSCOPE_TOOLS_DEMO_HTTP_H_
