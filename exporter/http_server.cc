// SPDX-License-Identifier: Apache-2.0
#include "http_server.h"

#include <arpa/inet.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "log.h"

namespace procscope {

struct HttpServer::Instance {
  HttpServer* server = nullptr;
  std::atomic<int> suspended{0};  // connections waiting for a renderer
  std::shared_ptr<const WebConfig> web;
  std::string priorities;  // libmicrohttpd keeps these pointers
  std::string trust_pem;
  MHD_Daemon* daemon = nullptr;
  ~Instance() {
    if (daemon != nullptr) MHD_stop_daemon(daemon);
  }
};

namespace {

constexpr char kText[] = "text/plain; charset=utf-8";

}  // namespace

// What a request carries between libmicrohttpd's callbacks: the URI as the client sent it
// (libmicrohttpd decodes the path it hands the access handler, "%2e%2e" and "%00" included), and
// the answer a renderer made while the connection was suspended.
struct HttpServer::Request {
  std::string raw_uri;
  enum { kNew, kRendering, kRendered, kAnswered } phase = kNew;
  MHD_Connection* conn = nullptr;
  Instance* inst = nullptr;
  const HttpRoute* route = nullptr;
  std::string query;
  HttpResponse response;
  // Basic auth not found in the cache: checked by the renderer before the handler runs.
  std::string bcrypt_user, bcrypt_password, bcrypt_key;
};

namespace {

void* OnUri(void*, const char* uri, MHD_Connection*) {
  auto* r = new HttpServer::Request;
  r->raw_uri = uri != nullptr ? uri : "";
  return r;
}

void OnCompleted(void*, MHD_Connection*, void** req_cls, MHD_RequestTerminationCode) {
  delete static_cast<HttpServer::Request*>(*req_cls);
  *req_cls = nullptr;
}

// libmicrohttpd's own messages (a failed TLS handshake, a client that sent garbage): at most 20 a
// minute, so that a flood of bad connections cannot flood the log.
void OnLog(void*, const char* fmt, va_list ap) {
  static std::atomic<int64_t> minute{0};
  static std::atomic<int> count{0};
  const int64_t now = absl::ToUnixSeconds(absl::Now()) / 60;
  if (minute.exchange(now) != now) count = 0;
  const int n = ++count;
  if (n > 20) return;
  char buf[512];
  vsnprintf(buf, sizeof(buf), fmt, ap);
  absl::string_view line = absl::StripTrailingAsciiWhitespace(buf);
  LOG(WARNING) << "http: " << line << (n == 20 ? " (further messages this minute suppressed)" : "");
}

HttpResponse Unauthorized() {
  return {401, kText, "unauthorized\n", {{"WWW-Authenticate", "Basic realm=\"procscope\""}}};
}

void FreeBody(void* cls) { delete static_cast<std::string*>(cls); }

MHD_Result Send(MHD_Connection* conn, HttpResponse r, const WebConfig* web) {
  auto* body = new std::string(std::move(r.body));
  MHD_Response* resp = MHD_create_response_from_buffer_with_free_callback_cls(
      body->size(), body->data(), &FreeBody, body);
  if (resp == nullptr) {
    delete body;
    return MHD_NO;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.content_type.c_str());
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  for (const auto& [k, v] : r.headers) MHD_add_response_header(resp, k.c_str(), v.c_str());
  if (web != nullptr) {
    for (const auto& [k, v] : web->headers) MHD_add_response_header(resp, k.c_str(), v.c_str());
  }
  const MHD_Result ret = MHD_queue_response(conn, static_cast<unsigned>(r.status), resp);
  MHD_destroy_response(resp);
  return ret;
}

MHD_Result OnRequest(void* cls, MHD_Connection* conn, const char*, const char* method, const char*,
                     const char*, size_t* upload_data_size, void** req_cls) {
  auto* inst = static_cast<HttpServer::Instance*>(cls);
  auto* req = static_cast<HttpServer::Request*>(*req_cls);
  if (req == nullptr) return MHD_NO;
  if (req->phase == HttpServer::Request::kAnswered) {  // a body we did not ask for: drop it
    *upload_data_size = 0;
    return MHD_YES;
  }
  return inst->server->Handle(inst, conn, method, req) ? MHD_YES : MHD_NO;
}

bool IsDigits(absl::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isdigit(c); });
}

absl::Status ListenError(absl::string_view listen, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("--listen=", listen, ": ", why,
                   " (expected :PORT, PORT, HOST:PORT or [IPV6]:PORT, port 0..65535)"));
}

std::string Errno(int e) { return absl::StrCat(strerror(e), " (errno ", e, ")"); }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = absl::ascii_tolower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

absl::StatusOr<std::string> PercentDecode(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      c = ' ';
    } else if (c == '%') {
      const int hi = i + 2 < s.size() ? HexValue(s[i + 1]) : -1;
      const int lo = i + 2 < s.size() ? HexValue(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) return absl::InvalidArgumentError("bad percent escape in the query");
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return absl::InvalidArgumentError("NUL byte in the query");
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string ListenAddress::ToString() const {
  if (host.empty()) return absl::StrCat(":", port);
  if (host.find(':') != std::string::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<ListenAddress> ParseListen(absl::string_view listen) {
  ListenAddress a;
  absl::string_view host, port = listen;
  if (absl::StartsWith(listen, "[")) {
    const size_t close = listen.find("]:");
    if (close == absl::string_view::npos) return ListenError(listen, "expected [IPV6]:PORT");
    host = listen.substr(1, close - 1);
    port = listen.substr(close + 2);
    in6_addr v6;
    if (!inet_pton(AF_INET6, std::string(host).c_str(), &v6)) {
      return ListenError(listen, absl::StrCat("'", host, "' is not an IPv6 address"));
    }
  } else if (size_t colon = listen.rfind(':'); colon != absl::string_view::npos) {
    host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
    if (host.find(':') != absl::string_view::npos) {
      return ListenError(listen, "an IPv6 address needs brackets, as in [::1]:9750");
    }
    if (!host.empty() && std::all_of(host.begin(), host.end(),
                                     [](char c) { return absl::ascii_isdigit(c) || c == '.'; })) {
      in_addr v4;
      if (!inet_pton(AF_INET, std::string(host).c_str(), &v4)) {
        return ListenError(listen, absl::StrCat("'", host, "' is not an IPv4 address"));
      }
    } else if (!std::all_of(host.begin(), host.end(), [](char c) {
                 return absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_';
               })) {
      return ListenError(listen, absl::StrCat("'", absl::CHexEscape(host), "' is not a host name"));
    }
  }
  int p = 0;
  if (!IsDigits(port) || port.size() > 5 || !absl::SimpleAtoi(port, &p) || p > 65535) {
    return ListenError(listen, absl::StrCat("bad port '", absl::CHexEscape(port), "'"));
  }
  a.host = std::string(host);
  a.port = p;
  return a;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseQuery(
    absl::string_view raw_query) {
  std::vector<std::pair<std::string, std::string>> out;
  for (absl::string_view kv : absl::StrSplit(raw_query, '&', absl::SkipEmpty())) {
    const size_t eq = kv.find('=');
    auto name = PercentDecode(kv.substr(0, eq));
    if (!name.ok()) return name.status();
    auto value = PercentDecode(eq == absl::string_view::npos ? "" : kv.substr(eq + 1));
    if (!value.ok()) return value.status();
    out.emplace_back(*std::move(name), *std::move(value));
  }
  return out;
}

namespace {

// The value of the query parameter `name` (nullopt when absent); a second one is an error.
absl::StatusOr<std::optional<std::string>> QueryValue(absl::string_view raw_query,
                                                      absl::string_view name) {
  auto args = ParseQuery(raw_query);
  if (!args.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(args.status().message(), " (reading ", name, ")"));
  }
  std::optional<std::string> found;
  for (auto& [k, v] : *args) {
    if (k != name) continue;
    if (found) return absl::InvalidArgumentError(absl::StrCat(name, " given more than once"));
    found = std::move(v);
  }
  return found;
}

// "name=VALUE: why", the value cut short and escaped.
absl::Status BadValue(absl::string_view name, absl::string_view v, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(name, "=", absl::CHexEscape(v.substr(0, 32)),
                                                 v.size() > 32 ? "..." : "", ": ", why));
}

}  // namespace

absl::StatusOr<size_t> QueryCount(absl::string_view raw_query, absl::string_view name,
                                  size_t fallback, size_t max) {
  auto v = QueryValue(raw_query, name);
  if (!v.ok()) return v.status();
  if (!v->has_value()) return fallback;
  uint64_t n = 0;
  // Digits only: SimpleAtoi would take "+5", " 5" and, for an unsigned, wrap "-1".
  if (!IsDigits(**v) || !absl::SimpleAtoi(**v, &n) || n < 1 || n > max) {
    return BadValue(name, **v, absl::StrCat("must be a whole number from 1 to ", max));
  }
  return static_cast<size_t>(n);
}

absl::StatusOr<bool> QueryBool(absl::string_view raw_query, absl::string_view name, bool fallback) {
  auto v = QueryValue(raw_query, name);
  if (!v.ok()) return v.status();
  if (!v->has_value()) return fallback;
  const std::string& s = **v;
  if (s.empty() || s == "true" || s == "1") return true;
  if (s == "false" || s == "0") return false;
  return BadValue(name, s, "must be true or false");
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(absl::string_view listen,
                                                              std::vector<HttpRoute> routes,
                                                              WebConfig web, HttpOptions options) {
  auto addr = ParseListen(listen);
  if (!addr.ok()) return addr.status();
  sockaddr_storage ss = {};
  socklen_t len = 0;
  bool dual_stack = false;
  const std::string shown = addr->ToString();
  if (addr->host.empty()) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    v6->sin6_family = AF_INET6;
    v6->sin6_addr = in6addr_any;
    v6->sin6_port = htons(static_cast<uint16_t>(addr->port));
    len = sizeof(*v6);
    dual_stack = true;
  } else {
    addrinfo hints = {};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const int rc = getaddrinfo(addr->host.c_str(), nullptr, &hints, &res);
    if (rc != 0 || res == nullptr) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", shown, ": host '", addr->host,
                                                 "': ", gai_strerror(rc)));
    }
    memcpy(&ss, res->ai_addr, res->ai_addrlen);
    len = res->ai_addrlen;
    freeaddrinfo(res);
    if (ss.ss_family == AF_INET) {
      reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(static_cast<uint16_t>(addr->port));
    } else {
      reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(static_cast<uint16_t>(addr->port));
      dual_stack = IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr);
    }
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 && addr->host.empty() && errno == EAFNOSUPPORT) {  // a kernel without IPv6
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    memset(&ss, 0, sizeof(ss));
    v4->sin_family = AF_INET;
    v4->sin_addr.s_addr = htonl(INADDR_ANY);
    v4->sin_port = htons(static_cast<uint16_t>(addr->port));
    len = sizeof(*v4);
    dual_stack = false;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  }
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", shown, ": socket: ", Errno(errno)));
  }
  const int one = 1, zero = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (dual_stack) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, SOMAXCONN) != 0) {
    const int e = errno;
    close(fd);
    return absl::UnavailableError(absl::StrCat("cannot listen on ", shown, ": ", Errno(e)));
  }
  sockaddr_storage bound = {};
  socklen_t blen = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);

  std::unique_ptr<HttpServer> server(new HttpServer());
  server->listen_fd_ = fd;
  server->port_ =
      ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  server->routes_ = std::move(routes);
  // Each connection holds a descriptor: stay clear of the process's limit.
  rlimit nofile = {};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY) {
    const int room = static_cast<int>(std::min<rlim_t>(nofile.rlim_cur, 1 << 20)) - 64;
    options.max_connections = std::max(16, std::min(options.max_connections, room));
  }
  server->options_ = options;
  for (const std::string& n : web.notes) LOG(WARNING) << "web config: " << n;
  auto inst = server->StartInstance(web);
  if (!inst.ok()) {
    return absl::Status(inst.status().code(),
                        absl::StrCat("cannot serve on ", shown, ": ", inst.status().message()));
  }
  for (int i = 0; i < std::max(1, options.renderers); ++i) {
    server->renderers_.emplace_back([s = server.get()] { s->RenderLoop(); });
  }
  std::lock_guard<std::mutex> l(server->mu_);
  server->instance_ = *std::move(inst);
  server->web_ = server->instance_->web;
  return server;
}

absl::StatusOr<std::unique_ptr<HttpServer::Instance>> HttpServer::StartInstance(
    const WebConfig& web) {
  auto inst = std::make_unique<Instance>();
  inst->server = this;
  inst->web = std::make_shared<const WebConfig>(web);
  const int fd = dup(listen_fd_);  // each instance closes its own copy when it stops
  if (fd < 0) return absl::UnavailableError(absl::StrCat("dup: ", Errno(errno)));
  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  std::vector<MHD_OptionItem> opts = {
      {MHD_OPTION_EXTERNAL_LOGGER, reinterpret_cast<intptr_t>(&OnLog), nullptr},  // first
      {MHD_OPTION_LISTEN_SOCKET, fd, nullptr},
      {MHD_OPTION_THREAD_POOL_SIZE, options_.threads, nullptr},
      {MHD_OPTION_CONNECTION_TIMEOUT,
       static_cast<intptr_t>(absl::ToInt64Seconds(options_.connection_timeout)), nullptr},
      {MHD_OPTION_CONNECTION_LIMIT, options_.max_connections, nullptr},
      {MHD_OPTION_PER_IP_CONNECTION_LIMIT, options_.max_connections_per_ip, nullptr},
      // Request line and headers must fit; room for an 8 KiB URI to get our 414.
      {MHD_OPTION_CONNECTION_MEMORY_LIMIT,
       static_cast<intptr_t>(std::max<size_t>(options_.max_uri_bytes * 2, 16384)), nullptr},
      {MHD_OPTION_URI_LOG_CALLBACK, reinterpret_cast<intptr_t>(&OnUri), nullptr},
      {MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(&OnCompleted), nullptr},
  };
  if (web.tls) {
    const TlsServerConfig& t = *web.tls;
    flags |= MHD_USE_TLS;
    inst->priorities = "NORMAL:-VERS-ALL";
    if (t.min_version <= 0x0303 && t.max_version >= 0x0303) inst->priorities += ":+VERS-TLS1.2";
    if (t.min_version <= 0x0304 && t.max_version >= 0x0304) inst->priorities += ":+VERS-TLS1.3";
    if (t.min_version <= 0x0302 && t.max_version >= 0x0302) inst->priorities += ":+VERS-TLS1.1";
    if (t.min_version <= 0x0301 && t.max_version >= 0x0301) inst->priorities += ":+VERS-TLS1.0";
    opts.push_back({MHD_OPTION_HTTPS_MEM_KEY, 0, const_cast<char*>(t.key_pem.c_str())});
    opts.push_back({MHD_OPTION_HTTPS_MEM_CERT, 0, const_cast<char*>(t.cert_pem.c_str())});
    opts.push_back({MHD_OPTION_HTTPS_PRIORITIES, 0, const_cast<char*>(inst->priorities.c_str())});
    if (t.client_auth != ClientAuth::kNoClientCert) {
      // A trust list makes libmicrohttpd ask for a client certificate; without a CA (the modes
      // that do not verify) any list does, the server's own certificate here.
      inst->trust_pem = t.client_ca_pem.empty() ? t.cert_pem : t.client_ca_pem;
      opts.push_back({MHD_OPTION_HTTPS_MEM_TRUST, 0, const_cast<char*>(inst->trust_pem.c_str())});
    }
  }
  opts.push_back({MHD_OPTION_END, 0, nullptr});
  inst->daemon = MHD_start_daemon(flags, 0, nullptr, nullptr, &OnRequest, inst.get(),
                                  MHD_OPTION_ARRAY, opts.data(), MHD_OPTION_END);
  if (inst->daemon == nullptr) {
    close(fd);
    return absl::InvalidArgumentError(
        web.tls ? "libmicrohttpd did not start (is the certificate/key pair valid PEM?)"
                : "libmicrohttpd did not start");
  }
  return inst;
}

// Waits (bounded) until no connection of `inst` waits for a renderer: libmicrohttpd must not be
// stopped with suspended connections.
void WaitUnsuspended(HttpServer::Instance* inst) {
  for (int i = 0; i < 6000 && inst->suspended.load() > 0; ++i)
    absl::SleepFor(absl::Milliseconds(5));
}

HttpServer::~HttpServer() {
  std::unique_ptr<Instance> inst;
  {
    std::lock_guard<std::mutex> l(mu_);
    inst = std::move(instance_);
  }
  if (inst && inst->daemon != nullptr) {
    const MHD_socket q = MHD_quiesce_daemon(inst->daemon);  // no new connections
    if (q != MHD_INVALID_SOCKET) close(q);
  }
  StopRenderers();  // answers what is queued, resuming those connections
  if (inst) WaitUnsuspended(inst.get());
  inst.reset();  // waits for its threads: no handler runs after this
  if (listen_fd_ >= 0) close(listen_fd_);
}

void HttpServer::StopRenderers() {
  {
    std::lock_guard<std::mutex> l(jobs_mu_);
    stopping_ = true;
  }
  jobs_cv_.notify_all();
  for (std::thread& t : renderers_) t.join();
  renderers_.clear();
}

void HttpServer::RenderLoop() {
  for (;;) {
    Request* req = nullptr;
    {
      std::unique_lock<std::mutex> l(jobs_mu_);
      jobs_cv_.wait(l, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, and everything queued is answered
      req = jobs_.front();
      jobs_.pop_front();
    }
    if (!req->bcrypt_key.empty() && !PasswordMatches(*req->inst->web, *req)) {
      req->response = Unauthorized();
    } else {
      req->response = req->route->handler(req->query);
    }
    req->phase = Request::kRendered;
    Instance* inst = req->inst;
    MHD_resume_connection(req->conn);  // libmicrohttpd calls OnRequest again: it sends the answer
    inst->suspended--;
  }
}

bool HttpServer::tls() const {
  auto* self = const_cast<HttpServer*>(this);
  std::lock_guard<std::mutex> l(self->mu_);
  return web_ && web_->tls.has_value();
}

absl::Status HttpServer::Reload(WebConfig web) {
  std::lock_guard<std::mutex> reload(reload_mu_);
  auto inst = StartInstance(web);
  if (!inst.ok()) return inst.status();
  std::unique_ptr<Instance> old;
  {
    std::lock_guard<std::mutex> l(mu_);
    old = std::move(instance_);
    instance_ = *std::move(inst);
    web_ = instance_->web;
    auth_cache_.clear();
  }
  // The new instance accepts from now on; the old one finishes what it has, then stops.
  if (old && old->daemon != nullptr) {
    const MHD_socket q = MHD_quiesce_daemon(old->daemon);
    if (q != MHD_INVALID_SOCKET) close(q);
    WaitUnsuspended(old.get());
  }
  old.reset();
  for (const std::string& n : web.notes) LOG(WARNING) << "web config: " << n;
  return absl::OkStatus();
}

bool HttpServer::Authorized(MHD_Connection* conn, const WebConfig& web, HttpResponse* deny,
                            Request* req) {
  if (web.tls && web.tls->client_auth != ClientAuth::kNoClientCert &&
      web.tls->client_auth != ClientAuth::kRequestClientCert) {
    const MHD_ConnectionInfo* ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    auto session = ci != nullptr ? static_cast<gnutls_session_t>(ci->tls_session) : nullptr;
    unsigned n = 0;
    const bool has =
        session != nullptr && gnutls_certificate_get_peers(session, &n) != nullptr && n > 0;
    const ClientAuth mode = web.tls->client_auth;
    if (!has && (mode == ClientAuth::kRequireAnyClientCert ||
                 mode == ClientAuth::kRequireAndVerifyClientCert)) {
      *deny = {403, kText, "a client certificate is required\n", {}};
      return false;
    }
    if (has && (mode == ClientAuth::kVerifyClientCertIfGiven ||
                mode == ClientAuth::kRequireAndVerifyClientCert)) {
      unsigned status = 0;
      if (gnutls_certificate_verify_peers2(session, &status) != GNUTLS_E_SUCCESS || status != 0) {
        *deny = {403, kText, "the client certificate is not trusted\n", {}};
        return false;
      }
    }
  }
  if (web.basic_auth_users.empty()) return true;
  *deny = Unauthorized();
  const char* h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  absl::string_view v = h != nullptr ? h : "";
  if (v.size() < 6 || !absl::EqualsIgnoreCase(v.substr(0, 6), "basic ")) return false;
  std::string decoded;
  if (!absl::Base64Unescape(absl::StripAsciiWhitespace(v.substr(6)), &decoded)) return false;
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) return false;
  const std::string user = decoded.substr(0, colon);
  const std::string password = decoded.substr(colon + 1);
  unsigned char digest[32];
  const std::string keyed = absl::StrCat(user, std::string(1, '\0'), password);
  if (gnutls_hash_fast(GNUTLS_DIG_SHA256, keyed.data(), keyed.size(), digest) != 0) return false;
  const std::string key(reinterpret_cast<char*>(digest), sizeof(digest));
  {
    std::lock_guard<std::mutex> l(mu_);
    if (auth_cache_.contains(key)) return true;
  }
  // Not cached: a bcrypt (tens of ms) is due, which the renderer does, not this thread.
  req->bcrypt_user = user;
  req->bcrypt_password = password;
  req->bcrypt_key = key;
  return true;
}

bool HttpServer::PasswordMatches(const WebConfig& web, const Request& req) {
  auto it = web.basic_auth_users.find(req.bcrypt_user);
  // An unknown user costs a bcrypt too, so that timing does not tell which users exist.
  static const std::string kDummy = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";
  const bool ok =
      BcryptMatches(req.bcrypt_password, it == web.basic_auth_users.end() ? kDummy : it->second) &&
      it != web.basic_auth_users.end();
  if (!ok) return false;
  std::lock_guard<std::mutex> l(mu_);
  if (auth_cache_.size() >= 1024) auth_cache_.clear();  // bounded
  auth_cache_.insert(req.bcrypt_key);
  return true;
}

int HttpServer::Handle(Instance* inst, MHD_Connection* conn, const char* method, Request* req) {
  const WebConfig* web = inst->web.get();
  if (req->phase == Request::kRendering) return true;  // spurious call while suspended
  if (req->phase == Request::kRendered) {
    req->phase = Request::kAnswered;
    return Send(conn, std::move(req->response), web) == MHD_YES;
  }
  req->phase = Request::kAnswered;
  const std::string& uri = req->raw_uri;
  if (uri.size() > options_.max_uri_bytes) {
    return Send(conn,
                {414, kText, absl::StrCat("URI longer than ", options_.max_uri_bytes, " bytes\n")},
                web) == MHD_YES;
  }
  const size_t q = uri.find('?');
  const absl::string_view path = absl::string_view(uri).substr(0, q);
  const absl::string_view query =
      q == std::string::npos ? absl::string_view() : absl::string_view(uri).substr(q + 1);
  const HttpRoute* route = nullptr;
  for (const HttpRoute& r : routes_) {
    if (r.path == path) route = &r;  // the raw bytes: no decoding, no normalising
  }
  if (route == nullptr) {
    std::string paths;
    for (const HttpRoute& r : routes_) absl::StrAppend(&paths, paths.empty() ? "" : ", ", r.path);
    return Send(conn, {404, kText, absl::StrCat("not found; try ", paths, "\n")}, web) == MHD_YES;
  }
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
    return Send(conn, {405, kText, "only GET and HEAD\n", {{"Allow", "GET, HEAD"}}}, web) ==
           MHD_YES;
  }
  // The probes are cheap and must answer at once: here, in libmicrohttpd's thread.
  // libmicrohttpd sends no body for HEAD, with the Content-Length GET would have.
  if (route->open) return Send(conn, route->handler(query), web) == MHD_YES;
  HttpResponse deny;
  if (!Authorized(conn, *web, &deny, req)) return Send(conn, deny, web) == MHD_YES;
  {
    std::lock_guard<std::mutex> l(jobs_mu_);
    if (jobs_.size() >= options_.max_queued || stopping_) {
      return Send(conn, {503, kText, "busy: too many requests waiting\n", {{"Retry-After", "1"}}},
                  web) == MHD_YES;
    }
    req->phase = Request::kRendering;
    req->conn = conn;
    req->inst = inst;
    req->route = route;
    req->query = std::string(query);
    inst->suspended++;
    MHD_suspend_connection(conn);
    jobs_.push_back(req);
  }
  jobs_cv_.notify_one();
  return true;
}

}  // namespace procscope
