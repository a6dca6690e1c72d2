// SPDX-License-Identifier: Apache-2.0
// The daemon's one HTTP listener (civetweb's C API, which reports errors instead of throwing).
#ifndef PROCSCOPE_EXPORTER_HTTP_SERVER_H_
#define PROCSCOPE_EXPORTER_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct mg_context;
struct mg_connection;

namespace procscope {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Gets the query string ("limit=10", or "").
using HttpHandler = std::function<HttpResponse(absl::string_view query)>;

class HttpServer {
 public:
  // `listen`: ":PORT" (every interface), "HOST:PORT", or "PORT"; port 0 picks a free one.
  // Each route is an exact path ("/metrics"); anything else gets 404.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      absl::string_view listen, std::vector<std::pair<std::string, HttpHandler>> routes,
      int threads = 4);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }

 private:
  HttpServer() = default;
  static int Dispatch(::mg_connection* conn, void* cbdata);
  static int NotFound(::mg_connection* conn, void* cbdata);

  mg_context* ctx_ = nullptr;
  std::vector<std::pair<std::string, HttpHandler>> routes_;
  int port_ = 0;
};

// Parses a --listen value into civetweb's "listening_ports" form; error names the flag.
absl::StatusOr<std::string> ListenToCivetPorts(absl::string_view listen);

}  // namespace procscope

#endif  // PROCSCOPE_EXPORTER_HTTP_SERVER_H_
