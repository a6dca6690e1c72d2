// SPDX-License-Identifier: Apache-2.0
#include "demo_http.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace procscope::demo {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

absl::StatusOr<std::pair<std::string, std::string>> SplitEndpoint(absl::string_view endpoint) {
  std::string host = "127.0.0.1";
  absl::string_view port = endpoint;
  if (absl::ConsumePrefix(&port, "[")) {
    const size_t close = port.find("]:");
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("endpoint '", endpoint, "': want [IPv6]:PORT"));
    }
    host = std::string(port.substr(0, close));
    port.remove_prefix(close + 2);
  } else if (const size_t colon = port.rfind(':'); colon != absl::string_view::npos) {
    if (colon > 0) host = std::string(port.substr(0, colon));
    port.remove_prefix(colon + 1);
  }
  int n = 0;
  if (!absl::SimpleAtoi(port, &n) || n < 1 || n > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("endpoint '", endpoint, "': bad port"));
  }
  return std::make_pair(host, std::string(port));
}

int MillisLeft(absl::Time deadline) {
  const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  return ms < 0 ? 0 : static_cast<int>(ms);
}

// Waits until `fd` is ready for `events` or the deadline passes.
absl::Status WaitFor(int fd, short events, absl::Time deadline, absl::string_view what) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, MillisLeft(deadline));
    if (n > 0) return absl::OkStatus();
    if (n == 0) return absl::DeadlineExceededError(absl::StrCat(what, ": timed out"));
    if (errno != EINTR) return absl::UnavailableError(absl::StrCat(what, ": ", strerror(errno)));
    // A signal (SIGCHLD of a restarted worker, SIGINT) must not cut a short request short; the
    // caller checks for a stop request after the call.
    if (MillisLeft(deadline) == 0)
      return absl::DeadlineExceededError(absl::StrCat(what, ": timed out"));
  }
}

absl::StatusOr<int> Connect(const std::string& host, const std::string& port, absl::Time deadline,
                            absl::string_view endpoint) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return absl::UnavailableError(absl::StrCat(endpoint, ": ", gai_strerror(rc)));
  }
  std::string last_error = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    const int fd =
        socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_error = strerror(errno);
      continue;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) {
      absl::Status s = WaitFor(fd, POLLOUT, deadline, absl::StrCat("connect to ", endpoint));
      int err = 0;
      socklen_t len = sizeof(err);
      if (s.ok() && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
        freeaddrinfo(res);
        return fd;
      }
      last_error = s.ok() ? strerror(err) : std::string(s.message());
    } else {
      last_error = strerror(errno);
    }
    close(fd);
  }
  freeaddrinfo(res);
  return absl::UnavailableError(absl::StrCat("connect to ", endpoint, ": ", last_error));
}

}  // namespace

absl::StatusOr<std::string> HttpGet(absl::string_view endpoint, absl::string_view path,
                                    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  auto hp = SplitEndpoint(endpoint);
  if (!hp.ok()) return hp.status();
  auto fd_or = Connect(hp->first, hp->second, deadline, endpoint);
  if (!fd_or.ok()) return fd_or.status();
  Fd fd(*fd_or);

  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", hp->first, "\r\nConnection: close\r\n\r\n");
  for (size_t sent = 0; sent < request.size();) {
    if (absl::Status s = WaitFor(fd.get(), POLLOUT, deadline, "send"); !s.ok()) return s;
    const ssize_t n = send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return absl::UnavailableError(absl::StrCat("send to ", endpoint, ": ", strerror(errno)));
    }
    if (n > 0) sent += static_cast<size_t>(n);
  }

  // HTTP/1.0: the server closes the connection after the body.
  std::string response;
  char buf[16384];
  for (;;) {
    if (absl::Status s = WaitFor(fd.get(), POLLIN, deadline, absl::StrCat("GET ", path)); !s.ok()) {
      return s;
    }
    const ssize_t n = recv(fd.get(), buf, sizeof(buf), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("GET ", path, ": ", strerror(errno)));
    }
    response.append(buf, static_cast<size_t>(n));
  }

  const size_t eol = response.find("\r\n");
  const size_t body = response.find("\r\n\r\n");
  if (eol == std::string::npos || body == std::string::npos ||
      !absl::StartsWith(response, "HTTP/")) {
    return absl::UnavailableError(absl::StrCat("GET ", path, ": not an HTTP response"));
  }
  absl::string_view status_line(response.data(), eol);
  absl::string_view code = status_line.substr(std::min(status_line.find(' ') + 1, eol));
  if (!absl::StartsWith(code, "200")) {
    return absl::FailedPreconditionError(absl::StrCat(
        "GET ", path, ": ", status_line, ": ",
        absl::StripAsciiWhitespace(absl::string_view(response).substr(body + 4, 200))));
  }
  return response.substr(body + 4);
}

}  // namespace procscope::demo
