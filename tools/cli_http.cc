// SPDX-License-Identifier: Apache-2.0
#include "cli_http.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"

namespace procscope::cli {
namespace {

// A reply bigger than this is not procscoped's (10k processes are about 6 MiB of JSON).
constexpr size_t kMaxReply = 512 << 20;

// strerror, starting lower-case so it reads inside a sentence.
std::string ErrnoText(int err) {
  std::string s = strerror(err);
  if (!s.empty()) s[0] = absl::ascii_tolower(static_cast<unsigned char>(s[0]));
  return s;
}

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

// Milliseconds until `deadline`, at least 0.
int RemainingMs(absl::Time deadline) {
  return static_cast<int>(
      std::clamp<int64_t>(absl::ToInt64Milliseconds(deadline - absl::Now()), 0, 1 << 30));
}

// Waits for `events` on fd until the deadline: true when ready, false on timeout.
absl::StatusOr<bool> WaitFor(int fd, short events, absl::Time deadline) {
  for (;;) {
    pollfd p = {fd, events, 0};
    const int n = poll(&p, 1, RemainingMs(deadline));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return absl::InternalError(absl::StrCat("poll: ", ErrnoText(errno)));
    if (absl::Now() >= deadline) return false;
  }
}

absl::Status Unreachable(const Endpoint& ep, absl::string_view why) {
  return absl::UnavailableError(
      absl::StrCat("cannot reach procscoped at ", ep.ToString(), " (", why, ")"));
}

// One connected, non-blocking socket to the endpoint, trying each address getaddrinfo gives.
absl::StatusOr<int> Connect(const Endpoint& ep, absl::Time deadline, absl::Duration timeout) {
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port = absl::StrCat(ep.port);
  const int rc = getaddrinfo(ep.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    return Unreachable(ep, absl::StrCat("cannot resolve ", ep.host, ": ", gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> owned(res, freeaddrinfo);
  std::string last_error = "no address";
  int fd = -1;
  for (addrinfo* ai = res; ai != nullptr && fd < 0; ai = ai->ai_next) {
    int s = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (s < 0) {
      last_error = ErrnoText(errno);
      continue;
    }
    if (connect(s, ai->ai_addr, ai->ai_addrlen) == 0) {
      fd = s;
      break;
    }
    if (errno != EINPROGRESS) {
      last_error = ErrnoText(errno);
      close(s);
      continue;
    }
    auto ready = WaitFor(s, POLLOUT, deadline);
    if (!ready.ok() || !*ready) {
      close(s);
      if (!ready.ok()) return ready.status();
      return Unreachable(ep, absl::StrCat("no answer within ", absl::FormatDuration(timeout)));
    }
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      last_error = ErrnoText(err);
      close(s);
      continue;
    }
    fd = s;
  }
  if (fd < 0) return Unreachable(ep, last_error);
  return fd;
}

// Decodes a chunked body; false when it is malformed or cut short.
bool Dechunk(absl::string_view in, std::string* out) {
  for (;;) {
    const size_t eol = in.find("\r\n");
    if (eol == absl::string_view::npos) return false;
    absl::string_view size_text = in.substr(0, eol);
    size_text = size_text.substr(0, size_text.find(';'));  // chunk extensions
    uint64_t size = 0;
    if (!absl::SimpleHexAtoi(absl::StripAsciiWhitespace(size_text), &size)) return false;
    in.remove_prefix(eol + 2);
    if (size == 0) return true;
    if (in.size() < size + 2) return false;
    out->append(in.data(), size);
    in.remove_prefix(size + 2);
  }
}

}  // namespace

absl::StatusOr<HttpReply> ParseHttpResponse(absl::string_view raw) {
  const size_t header_end = raw.find("\r\n\r\n");
  if (!absl::StartsWith(raw, "HTTP/1.") || header_end == absl::string_view::npos) {
    return absl::DataLossError("the reply is not HTTP");
  }
  std::vector<absl::string_view> lines =
      absl::StrSplit(raw.substr(0, header_end), absl::ByString("\r\n"));
  std::vector<absl::string_view> status_line = absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  HttpReply reply;
  if (status_line.size() < 2 || !absl::SimpleAtoi(status_line[1], &reply.status) ||
      reply.status < 100 || reply.status > 999) {
    return absl::DataLossError("the reply has no HTTP status");
  }
  int64_t content_length = -1;
  bool chunked = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos) continue;
    const std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
    absl::string_view value = absl::StripAsciiWhitespace(lines[i].substr(colon + 1));
    if (name == "content-length" && !absl::SimpleAtoi(value, &content_length)) {
      return absl::DataLossError("the reply has a bad Content-Length");
    }
    if (name == "transfer-encoding" && absl::StrContains(absl::AsciiStrToLower(value), "chunked")) {
      chunked = true;
    }
  }
  absl::string_view body = raw.substr(header_end + 4);
  if (chunked) {
    if (!Dechunk(body, &reply.body)) return absl::DataLossError("the reply was cut short");
  } else if (content_length >= 0) {
    if (body.size() < static_cast<uint64_t>(content_length)) {
      return absl::DataLossError("the reply was cut short");
    }
    reply.body = std::string(body.substr(0, content_length));
  } else {
    reply.body = std::string(body);  // HTTP/1.0: the body runs to the close
  }
  return reply;
}

absl::StatusOr<HttpReply> HttpGetReply(const Endpoint& endpoint, absl::string_view path,
                                       absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  auto fd_or = Connect(endpoint, deadline, timeout);
  if (!fd_or.ok()) return fd_or.status();
  Fd fd(*fd_or);
  auto late = [&] {
    return absl::DeadlineExceededError(absl::StrCat("procscoped at ", endpoint.ToString(),
                                                    " did not answer GET ", path, " within ",
                                                    absl::FormatDuration(timeout)));
  };

  const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", endpoint.ToString(),
                                           "\r\nUser-Agent: procscope\r\nAccept: */*\r\n\r\n");
  for (size_t sent = 0; sent < request.size();) {
    auto ready = WaitFor(fd.get(), POLLOUT, deadline);
    if (!ready.ok()) return ready.status();
    if (!*ready) return late();
    const ssize_t n = send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return Unreachable(endpoint, ErrnoText(errno));
    sent += static_cast<size_t>(n);
  }

  std::string raw;
  char buf[64 << 10];
  for (;;) {
    auto ready = WaitFor(fd.get(), POLLIN, deadline);
    if (!ready.ok()) return ready.status();
    if (!*ready) return late();
    const ssize_t n = recv(fd.get(), buf, sizeof(buf), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) {
      return absl::UnavailableError(absl::StrCat("lost the connection to procscoped at ",
                                                 endpoint.ToString(), " (", ErrnoText(errno), ")"));
    }
    if (n == 0) break;
    raw.append(buf, static_cast<size_t>(n));
    if (raw.size() > kMaxReply) {
      return absl::DataLossError(
          absl::StrCat("the reply of ", endpoint.ToString(), " is over 512 MiB: not procscoped?"));
    }
  }
  auto reply = ParseHttpResponse(raw);
  if (!reply.ok()) {
    return absl::DataLossError(absl::StrCat("unexpected reply from ", endpoint.ToString(), ": ",
                                            reply.status().message(), " (is it procscoped?)"));
  }
  return reply;
}

absl::StatusOr<std::string> HttpGet(const Endpoint& endpoint, absl::string_view path,
                                    absl::Duration timeout) {
  auto reply = HttpGetReply(endpoint, path, timeout);
  if (!reply.ok()) return reply.status();
  if (reply->status != 200) {
    std::string excerpt(absl::StripAsciiWhitespace(reply->body.substr(0, 120)));
    for (char& c : excerpt) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = ' ';
    }
    std::string hint = reply->status == 404 ? " (not procscoped, or an older version?)" : "";
    return absl::FailedPreconditionError(absl::StrCat(endpoint.ToString(), " answered ",
                                                      reply->status, " to GET ", path, hint,
                                                      excerpt.empty() ? "" : ": ", excerpt));
  }
  return std::move(reply->body);
}

absl::Status ParseJson(absl::string_view json, google::protobuf::Message* msg,
                       absl::string_view what) {
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = true;
  auto s = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), msg, opts);
  if (!s.ok()) {
    return absl::DataLossError(absl::StrCat("cannot parse ", what, ": ",
                                            std::string(s.message().data(), s.message().size())));
  }
  return absl::OkStatus();
}

}  // namespace procscope::cli
