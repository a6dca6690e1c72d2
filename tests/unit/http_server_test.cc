// SPDX-License-Identifier: Apache-2.0
// The HTTP server on loopback (a real libmicrohttpd, raw requests), and its pure parsers.
#include "http_server.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace procscope {
namespace {

TEST(ParseListen, Forms) {
  auto a = ParseListen(":9750");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "");
  EXPECT_EQ(a->port, 9750);
  EXPECT_EQ(ParseListen("9750")->port, 9750);
  EXPECT_EQ(ParseListen("127.0.0.1:0")->host, "127.0.0.1");
  EXPECT_EQ(ParseListen("[::1]:80")->host, "::1");
  EXPECT_EQ(ParseListen("[::]:80")->ToString(), "[::]:80");
  EXPECT_EQ(ParseListen("localhost:80")->host, "localhost");
}

TEST(ParseListen, RefusesBadOnes) {
  for (const char* bad : {"999.1.1.1:80", "1.2.3:80", "::1:80", "[::1]80", "[zz]:80", ":70000",
                          ":-1", ":+80", ": 80", "", "nohost", "a b:80", "[::1]:"}) {
    auto a = ParseListen(bad);
    EXPECT_FALSE(a.ok()) << bad;
    if (!a.ok()) {
      EXPECT_TRUE(absl::StartsWith(a.status().message(), "--listen=")) << bad;
    }
  }
  EXPECT_TRUE(absl::StrContains(ParseListen("999.1.1.1:80").status().message(),
                                "'999.1.1.1' is not an IPv4 address"));
}

TEST(ParseQuery, DecodesAndRefuses) {
  auto q = ParseQuery("a=1&b=x%20y&c&d=e+f");
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->size(), 4u);
  EXPECT_EQ((*q)[1].second, "x y");
  EXPECT_EQ((*q)[2].first, "c");
  EXPECT_EQ((*q)[3].second, "e f");
  EXPECT_FALSE(ParseQuery("a=%00").ok());
  EXPECT_FALSE(ParseQuery("a=%zz").ok());
  EXPECT_FALSE(ParseQuery("a=%4").ok());
}

TEST(QueryCount, Limit) {
  EXPECT_EQ(*QueryCount("", "limit", 100, 1000), 100u);
  EXPECT_EQ(*QueryCount("other=1", "limit", 100, 1000), 100u);
  EXPECT_EQ(*QueryCount("limit=5", "limit", 100, 1000), 5u);
  EXPECT_EQ(*QueryCount("limit=%35", "limit", 100, 1000), 5u);
  EXPECT_EQ(*QueryCount("limit=1000", "limit", 100, 1000), 1000u);
  for (const char* bad : {"limit=-1", "limit=abc", "limit=0", "limit=1001", "limit=",
                          "limit=99999999999999999999999999", "limit=18446744073709551617",
                          "limit=+5", "limit=%205", "limit=5x", "limit=1&limit=2", "limit=%00"}) {
    auto n = QueryCount(bad, "limit", 100, 1000);
    EXPECT_FALSE(n.ok()) << bad;
    if (!n.ok()) {
      EXPECT_EQ(n.status().message().find('\n'), absl::string_view::npos) << bad;
      EXPECT_TRUE(absl::StrContains(n.status().message(), "limit")) << bad;
    }
  }
  // A long value is not echoed whole.
  auto n = QueryCount("limit=" + std::string(5000, '9'), "limit", 100, 1000);
  ASSERT_FALSE(n.ok());
  EXPECT_LT(n.status().message().size(), 200u);
}

// One raw request over a fresh connection; returns everything the server sent.
std::string Raw(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    char buf[4096];
    for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) > 0;) out.append(buf, n);
  }
  close(fd);
  return out;
}

std::string Get(int port, const std::string& target, const std::string& method = "GET",
                const std::string& extra = "") {
  return Raw(port, method + " " + target + " HTTP/1.0\r\nHost: x\r\n" + extra + "\r\n");
}

int Code(const std::string& reply) { return reply.size() > 12 ? std::atoi(reply.c_str() + 9) : 0; }

std::string Body(const std::string& reply) {
  const size_t e = reply.find("\r\n\r\n");
  return e == std::string::npos ? "" : reply.substr(e + 4);
}

class Server : public ::testing::Test {
 protected:
  void Start(WebConfig web = {}) {
    auto s = HttpServer::Start(
        "127.0.0.1:0",
        {
            {"/metrics", [](absl::string_view) { return HttpResponse(200, "text/plain", big_); }},
            {"/q",
             [](absl::string_view q) { return HttpResponse(200, "text/plain", std::string(q)); }},
            {"/healthz", [](absl::string_view) { return HttpResponse(200, "text/plain", "ok\n"); },
             /*open=*/true},
        },
        std::move(web));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    port_ = server_->port();
  }
  static inline const std::string big_ = std::string(100000, 'm');
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

TEST_F(Server, GetAndHead) {
  Start();
  const std::string get = Get(port_, "/metrics");
  EXPECT_EQ(Code(get), 200);
  EXPECT_EQ(Body(get), big_);
  const std::string head = Get(port_, "/metrics", "HEAD");
  EXPECT_EQ(Code(head), 200);
  EXPECT_EQ(Body(head), "") << "HEAD must carry no body";
  EXPECT_TRUE(absl::StrContains(head, "Content-Length: 100000")) << head;
}

TEST_F(Server, RawQueryReachesTheHandler) {
  Start();
  EXPECT_EQ(Body(Get(port_, "/q?limit=%35&x")), "limit=%35&x");
}

TEST_F(Server, PathTricksAre404) {
  Start();
  for (const char* p :
       {"//metrics", "/metrics/../metrics", "/%2e%2e/metrics", "/%6detrics", "/metrics%00",
        "/metrics/x", "/metrics/", "/METRICS", "metrics", "*", "/metrics;x"}) {
    EXPECT_EQ(Code(Get(port_, p)) / 100, 4) << p;
    EXPECT_NE(Code(Get(port_, p)), 200) << p;
  }
  EXPECT_EQ(Code(Get(port_, "/metrics/x")), 404);
  // A literal NUL byte in the request line: libmicrohttpd waits for a request that never
  // completes (no answer, never a 200) and the server goes on serving.
  EXPECT_NE(Code(Raw(port_, std::string("GET /metrics\0x HTTP/1.0\r\n\r\n", 26))), 200);
  EXPECT_EQ(Code(Get(port_, "/healthz")), 200);
}

TEST_F(Server, OtherMethodsAre405WithAllow) {
  Start();
  for (const char* m : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH", "FOO"}) {
    const std::string r = Get(port_, "/metrics", m);
    EXPECT_EQ(Code(r), 405) << m;
    EXPECT_TRUE(absl::StrContains(r, "Allow: GET, HEAD")) << r;
  }
  // With a body we never read.
  EXPECT_EQ(Code(Get(port_, "/metrics", "POST", "Content-Length: 5\r\n\r\nhello")), 405);
}

TEST_F(Server, LongUriIs414) {
  Start();
  EXPECT_EQ(Code(Get(port_, "/q?" + std::string(8200, 'a'))), 414);
  EXPECT_EQ(Code(Get(port_, "/q?" + std::string(100000, 'a'))) / 100, 4);
  EXPECT_EQ(Code(Get(port_, "/q?" + std::string(8000, 'a'))), 200);
}

TEST_F(Server, GarbageGetsAnErrorNotACrash) {
  Start();
  for (const std::string& g :
       {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc", 9), std::string("GET\r\n\r\n"),
        std::string("\r\n\r\n"), std::string(20000, 'x') + "\r\n\r\n"}) {
    Raw(port_, g);
  }
  EXPECT_EQ(Code(Get(port_, "/healthz")), 200);
}

TEST_F(Server, ListenErrorsNameTheAddressAndReason) {
  Start();
  auto again = HttpServer::Start("127.0.0.1:" + std::to_string(port_), {});
  ASSERT_FALSE(again.ok());
  EXPECT_TRUE(absl::StrContains(again.status().message(), "127.0.0.1:" + std::to_string(port_)));
  EXPECT_TRUE(absl::StrContains(again.status().message(), "Address already in use"))
      << again.status();
  auto unknown = HttpServer::Start("no-such-host.invalid:0", {});
  ASSERT_FALSE(unknown.ok());
  EXPECT_TRUE(absl::StrContains(unknown.status().message(), "no-such-host.invalid"))
      << unknown.status();
}

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  return fd;
}

TEST(ServerLimits, PerAddressLimitAndIdleTimeout) {
  HttpOptions o;
  o.max_connections_per_ip = 2;
  o.connection_timeout = absl::Seconds(1);
  auto s = HttpServer::Start(
      "127.0.0.1:0",
      {{"/healthz", [](absl::string_view) { return HttpResponse(200, "text/plain", "ok\n"); }}}, {},
      o);
  ASSERT_TRUE(s.ok()) << s.status();
  const int port = (*s)->port();
  const int a = Connect(port), b = Connect(port);
  absl::SleepFor(absl::Milliseconds(200));  // both accepted
  EXPECT_EQ(Code(Get(port, "/healthz")), 0) << "a third connection from the address is refused";
  // Idle ones are closed after the timeout (recv sees the end), and the address may connect again.
  char c;
  const absl::Time t0 = absl::Now();
  EXPECT_EQ(recv(a, &c, 1, 0), 0);
  EXPECT_EQ(recv(b, &c, 1, 0), 0);
  EXPECT_LT(absl::Now() - t0, absl::Seconds(4));
  close(a);
  close(b);
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(Code(Get(port, "/healthz")), 200);
}

TEST(ServerV6, LoopbackAndAny) {
  for (const char* listen : {"[::1]:0", "[::]:0", ":0"}) {
    auto s = HttpServer::Start(
        listen,
        {{"/healthz", [](absl::string_view) { return HttpResponse(200, "text/plain", "ok\n"); }}});
    if (!s.ok() && absl::StrContains(s.status().message(), "Address family")) {
      GTEST_SKIP() << "no IPv6 here";
    }
    ASSERT_TRUE(s.ok()) << listen << ": " << s.status();
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    sockaddr_in6 a = {};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(static_cast<uint16_t>((*s)->port()));
    a.sin6_addr = in6addr_loopback;
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << listen;
    const std::string req = "GET /healthz HTTP/1.0\r\n\r\n";
    send(fd, req.data(), req.size(), 0);
    char buf[512] = {};
    recv(fd, buf, sizeof(buf) - 1, MSG_WAITALL);
    close(fd);
    EXPECT_EQ(Code(buf), 200) << listen;
    if (std::string(listen) != "[::1]:0") {  // every interface: IPv4 too
      EXPECT_EQ(Code(Get((*s)->port(), "/healthz")), 200) << listen;
    }
  }
}

std::string Hash(const char* password) {
  char salt[64];
  crypt_gensalt_rn("$2b$", 4, nullptr, 0, salt, sizeof(salt));
  crypt_data d = {};
  return crypt_r(password, salt, &d);
}

TEST_F(Server, BasicAuth) {
  WebConfig web;
  web.basic_auth_users["prom"] = Hash("s3cret");
  Start(web);
  const std::string auth = "Authorization: Basic " + absl::Base64Escape("prom:s3cret") + "\r\n";
  const std::string wrong = "Authorization: Basic " + absl::Base64Escape("prom:nope") + "\r\n";
  const std::string nobody = "Authorization: Basic " + absl::Base64Escape("eve:s3cret") + "\r\n";
  const std::string none = Get(port_, "/metrics");
  EXPECT_EQ(Code(none), 401);
  EXPECT_TRUE(absl::StrContains(none, "WWW-Authenticate: Basic")) << none;
  EXPECT_EQ(Code(Get(port_, "/metrics", "GET", wrong)), 401);
  EXPECT_EQ(Code(Get(port_, "/metrics", "GET", nobody)), 401);
  EXPECT_EQ(Code(Get(port_, "/metrics", "GET", "Authorization: Basic !!!\r\n")), 401);
  EXPECT_EQ(Code(Get(port_, "/metrics", "GET", auth)), 200);
  EXPECT_EQ(Code(Get(port_, "/metrics", "GET", auth)), 200);  // from the cache
  EXPECT_EQ(Code(Get(port_, "/q", "GET", wrong)), 401);
  EXPECT_EQ(Code(Get(port_, "/healthz")), 200) << "the probes stay open";
  // A reload replaces the users (and forgets cached logins).
  WebConfig other;
  other.basic_auth_users["prom"] = Hash("new");
  ASSERT_TRUE(server_->Reload(other).ok());
  EXPECT_EQ(Code(Get(port_, "/metrics", "GET", auth)), 401);
  EXPECT_EQ(Code(Get(port_, "/metrics", "GET",
                     "Authorization: Basic " + absl::Base64Escape("prom:new") + "\r\n")),
            200);
}

}  // namespace
}  // namespace procscope
