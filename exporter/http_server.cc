// SPDX-License-Identifier: Apache-2.0
#include "http_server.h"

#include <civetweb.h>

#include <cstring>
#include <mutex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace procscope {
namespace {

const char* StatusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

void Send(::mg_connection* conn, const HttpResponse& r) {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            r.status, StatusText(r.status), r.content_type.c_str(), r.body.size());
  mg_write(conn, r.body.data(), r.body.size());
}

// civetweb's library-wide init, once.
void InitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { mg_init_library(0); });
}

}  // namespace

absl::StatusOr<std::string> ListenToCivetPorts(absl::string_view listen) {
  absl::string_view host, port = listen;
  if (size_t colon = listen.rfind(':'); colon != absl::string_view::npos) {
    host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
  }
  int p = 0;
  if (!absl::SimpleAtoi(port, &p) || p < 0 || p > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen=", listen, ": expected :PORT, HOST:PORT or PORT (0..65535)"));
  }
  if (host.empty() || host == "0.0.0.0") return absl::StrCat(p);
  if (host.find(':') != absl::string_view::npos || host.find(' ') != absl::string_view::npos ||
      host.find(',') != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--listen=", listen, ": bad host"));
  }
  return absl::StrCat(host, ":", p);
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    absl::string_view listen, std::vector<std::pair<std::string, HttpHandler>> routes,
    int threads) {
  auto ports = ListenToCivetPorts(listen);
  if (!ports.ok()) return ports.status();
  InitOnce();
  std::unique_ptr<HttpServer> server(new HttpServer());
  server->routes_ = std::move(routes);
  const std::string nthreads = absl::StrCat(threads);
  const char* options[] = {"listening_ports",
                           ports->c_str(),
                           "num_threads",
                           nthreads.c_str(),
                           "enable_keep_alive",
                           "no",
                           "request_timeout_ms",
                           "10000",
                           nullptr};
  mg_callbacks callbacks;
  memset(&callbacks, 0, sizeof(callbacks));
  char error[256] = "";
  mg_init_data init = {&callbacks, server.get(), options};
  unsigned code = 0;
  mg_error_data err = {};
  err.code = &code;
  err.text = error;
  err.text_buffer_size = sizeof(error);
  server->ctx_ = mg_start2(&init, &err);
  if (server->ctx_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen, ": ",
                                               error[0] ? error : "civetweb failed to start"));
  }
  for (size_t i = 0; i < server->routes_.size(); ++i) {
    mg_set_request_handler(server->ctx_, server->routes_[i].first.c_str(), &HttpServer::Dispatch,
                           &server->routes_[i]);
  }
  mg_set_request_handler(server->ctx_, "/", &HttpServer::NotFound, nullptr);
  mg_server_port sp[4];
  int n = mg_get_server_ports(server->ctx_, 4, sp);
  server->port_ = n > 0 ? sp[0].port : 0;
  return server;
}

HttpServer::~HttpServer() {
  if (ctx_ != nullptr) mg_stop(ctx_);
}

int HttpServer::Dispatch(::mg_connection* conn, void* cbdata) {
  const auto* route = static_cast<std::pair<std::string, HttpHandler>*>(cbdata);
  const mg_request_info* info = mg_get_request_info(conn);
  // Exact paths only: civetweb also routes "/metrics/x" here.
  if (info->local_uri == nullptr || route->first != info->local_uri) return NotFound(conn, cbdata);
  if (strcmp(info->request_method, "GET") != 0 && strcmp(info->request_method, "HEAD") != 0) {
    Send(conn, {405, "text/plain; charset=utf-8", "only GET\n"});
    return 405;
  }
  HttpResponse r = route->second(info->query_string ? info->query_string : "");
  Send(conn, r);
  return r.status;
}

int HttpServer::NotFound(::mg_connection* conn, void*) {
  Send(conn, {404, "text/plain; charset=utf-8",
              "not found; try /metrics, /api/v1/processes, /api/v1/offenders, /api/v1/events, "
              "/api/v1/status, "
              "/healthz, /readyz\n"});
  return 404;
}

}  // namespace procscope
