// SPDX-License-Identifier: Apache-2.0
// The daemon's one HTTP listener: GNU libmicrohttpd with internal epoll polling and a small thread
// pool, so that idle or slow connections cost a file descriptor and not a worker; a connection
// timeout and connection limits (total and per client address); TLS (GnuTLS) and basic auth from
// the web-config.
#ifndef PROCSCOPE_EXPORTER_HTTP_SERVER_H_
#define PROCSCOPE_EXPORTER_HTTP_SERVER_H_

#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "web_config.h"

struct MHD_Daemon;
struct MHD_Connection;

namespace procscope {

struct HttpResponse {
  HttpResponse() = default;
  HttpResponse(int status, std::string content_type, std::string body,
               std::vector<std::pair<std::string, std::string>> headers = {})
      : status(status),
        content_type(std::move(content_type)),
        body(std::move(body)),
        headers(std::move(headers)) {}

  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra ones
};

// Gets the raw (still percent-encoded) query string: "limit=10", or "".
using HttpHandler = std::function<HttpResponse(absl::string_view query)>;

struct HttpRoute {
  HttpRoute(std::string path, HttpHandler handler, bool open = false)
      : path(std::move(path)), handler(std::move(handler)), open(open) {}

  std::string path;  // exact; anything else gets 404
  HttpHandler handler;
  bool open = false;  // served without authentication (the probes)
};

struct HttpOptions {
  int threads = 4;           // libmicrohttpd's (accept, read, probes, errors)
  int renderers = 2;         // endpoint handlers (the CPU work); more would only contend on 2 cores
  size_t max_queued = 1024;  // requests waiting for a renderer; more get 503
  absl::Duration connection_timeout = absl::Seconds(10);  // of inactivity
  int max_connections = 1000;                             // lowered to fit RLIMIT_NOFILE
  int max_connections_per_ip = 128;
  size_t max_uri_bytes = 8192;  // longer: 414
};

// A parsed --listen value.
struct ListenAddress {
  std::string host;  // "" for every interface; IPv6 without brackets
  int port = 0;
  std::string ToString() const;  // "HOST:PORT", "[V6]:PORT" or ":PORT"
};

// ":PORT" (every interface, IPv6 and IPv4), "PORT", "HOST:PORT", "[IPV6]:PORT". Numeric hosts
// must be valid addresses (999.1.1.1 is refused); names are resolved when the server starts.
absl::StatusOr<ListenAddress> ParseListen(absl::string_view listen);

// Splits a raw query string at '&' and '=' and percent-decodes names and values ('+' is a space).
// Bad escapes and NUL bytes are errors.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseQuery(
    absl::string_view raw_query);

// The query parameter `name` as a whole number in [1, max]; `fallback` when absent. Errors are one
// line naming the parameter (a duplicate, a sign, letters, 0, more than max).
absl::StatusOr<size_t> QueryCount(absl::string_view raw_query, absl::string_view name,
                                  size_t fallback, size_t max);

class HttpServer {
 public:
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(absl::string_view listen,
                                                           std::vector<HttpRoute> routes,
                                                           WebConfig web = {},
                                                           HttpOptions options = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  bool tls() const;

  // Applies a new web-config on the same listening socket (a new server instance takes over
  // when TLS settings change). On error the running one is kept.
  absl::Status Reload(WebConfig web);

  // Called by libmicrohttpd (public for its C callbacks).
  struct Instance;
  struct Request;
  int Handle(Instance* inst, ::MHD_Connection* conn, const char* method, Request* req);

 private:
  HttpServer() = default;
  // The renderers: endpoints other than the probes run here, the connection suspended meanwhile,
  // so that the libmicrohttpd threads stay free to answer probes and turn away bad requests
  // however many scrapes queue up.
  void RenderLoop();
  void StopRenderers();
  absl::StatusOr<std::unique_ptr<Instance>> StartInstance(const WebConfig& web);
  // Client certificate and basic auth; a password not in the cache is left in `req` for the
  // renderer (PasswordMatches).
  bool Authorized(::MHD_Connection* conn, const WebConfig& web, HttpResponse* deny, Request* req);
  bool PasswordMatches(const WebConfig& web, const Request& req);

  std::vector<HttpRoute> routes_;
  HttpOptions options_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::mutex reload_mu_;  // one Reload at a time
  std::mutex mu_;
  std::shared_ptr<const WebConfig> web_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Instance> instance_ ABSL_GUARDED_BY(mu_);
  std::mutex jobs_mu_;
  std::condition_variable jobs_cv_;
  std::deque<Request*> jobs_ ABSL_GUARDED_BY(jobs_mu_);
  bool stopping_ ABSL_GUARDED_BY(jobs_mu_) = false;
  std::vector<std::thread> renderers_;
  // SHA-256 of user NUL password of recent successful logins: a scrape need not cost a bcrypt.
  absl::flat_hash_set<std::string> auth_cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace procscope

#endif  // PROCSCOPE_EXPORTER_HTTP_SERVER_H_
