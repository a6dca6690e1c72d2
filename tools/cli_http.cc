// SPDX-License-Identifier: Apache-2.0
#include "cli_http.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>

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

absl::Status Unreachable(const Endpoint& ep, absl::string_view why) {
  return absl::UnavailableError(
      absl::StrCat("cannot reach procscoped at ", ep.ToString(), " (", why, ")"));
}

struct Body {
  std::string data;
  bool too_big = false;
};

size_t OnData(char* ptr, size_t size, size_t n, void* cls) {
  auto* body = static_cast<Body*>(cls);
  if (body->data.size() + size * n > kMaxReply) {
    body->too_big = true;
    return 0;  // aborts the transfer
  }
  body->data.append(ptr, size * n);
  return size * n;
}

void CurlInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
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
  CurlInitOnce();
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return absl::InternalError("curl_easy_init failed");
  CURL* c = curl.get();
  const std::string url = absl::StrCat(endpoint.Url(), path);
  char error[CURL_ERROR_SIZE] = "";
  Body body;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_0);  // one request, then close
  curl_easy_setopt(c, CURLOPT_USERAGENT, "procscope");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &OnData);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");  // procscoped is reached directly
  if (!endpoint.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, endpoint.ca_file.c_str());
  if (!endpoint.cert_file.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLCERT, endpoint.cert_file.c_str());
    curl_easy_setopt(c, CURLOPT_SSLKEY, endpoint.key_file.c_str());
  }
  if (!endpoint.user.empty()) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    curl_easy_setopt(c, CURLOPT_USERNAME, endpoint.user.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, endpoint.password.c_str());
  }
  const CURLcode rc = curl_easy_perform(c);
  const std::string why = error[0] ? error : curl_easy_strerror(rc);
  const std::string ep = endpoint.ToString();
  switch (rc) {
    case CURLE_OK:
      break;
    case CURLE_COULDNT_RESOLVE_HOST:
      return Unreachable(endpoint, absl::StrCat("cannot resolve ", endpoint.host));
    case CURLE_COULDNT_CONNECT: {
      long err = 0;
      curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &err);
      return Unreachable(endpoint, err != 0 ? ErrnoText(static_cast<int>(err)) : why);
    }
    case CURLE_OPERATION_TIMEDOUT: {
      curl_off_t connected_us = 0;
      curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connected_us);
      if (connected_us == 0) {
        return Unreachable(endpoint,
                           absl::StrCat("no answer within ", absl::FormatDuration(timeout)));
      }
      return absl::DeadlineExceededError(absl::StrCat("procscoped at ", ep, " did not answer GET ",
                                                      path, " within ",
                                                      absl::FormatDuration(timeout)));
    }
    case CURLE_PEER_FAILED_VERIFICATION:
      return absl::FailedPreconditionError(
          absl::StrCat("cannot verify the certificate of procscoped at ", ep, " (", why, "); ",
                       endpoint.ca_file.empty() ? "give the CA that signed it with --ca_file=FILE"
                                                : "is --ca_file the CA that signed it?"));
    case CURLE_SSL_CACERT_BADFILE:
      return absl::InvalidArgumentError(absl::StrCat("--ca_file=", endpoint.ca_file, ": ", why));
    case CURLE_SSL_CERTPROBLEM:
      return absl::InvalidArgumentError(absl::StrCat(
          "--cert_file=", endpoint.cert_file, " / --key_file=", endpoint.key_file, ": ", why));
    case CURLE_SSL_CONNECT_ERROR:
      return absl::FailedPreconditionError(
          absl::StrCat("TLS with procscoped at ", ep, " failed (", why, ")",
                       endpoint.tls ? "" : "; if it serves http, drop https:// from --endpoint"));
    case CURLE_WRITE_ERROR:
      if (body.too_big) {
        return absl::DataLossError(
            absl::StrCat("the reply of ", ep, " is over 512 MiB: not procscoped?"));
      }
      [[fallthrough]];
    default:
      if (rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR) {
        return absl::UnavailableError(
            absl::StrCat("lost the connection to procscoped at ", ep, " (", why, ")",
                         endpoint.tls ? "" : "; if it serves https, use --endpoint=https://..."));
      }
      return absl::DataLossError(
          absl::StrCat("unexpected reply from ", ep, ": ", why, " (is it procscoped?",
                       endpoint.tls ? ")" : " if it serves https, use --endpoint=https://...)"));
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  HttpReply reply;
  reply.status = static_cast<int>(status);
  reply.body = std::move(body.data);
  return reply;
}

absl::StatusOr<std::string> HttpGet(const Endpoint& endpoint, absl::string_view path,
                                    absl::Duration timeout) {
  return OkBody(endpoint, path, HttpGetReply(endpoint, path, timeout));
}

absl::StatusOr<std::string> OkBody(const Endpoint& endpoint, absl::string_view path,
                                   absl::StatusOr<HttpReply> reply) {
  if (!reply.ok()) return reply.status();
  if (reply->status != 200) {
    std::string excerpt(absl::StripAsciiWhitespace(reply->body.substr(0, 120)));
    for (char& c : excerpt) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = ' ';
    }
    std::string hint = reply->status == 404 ? " (not procscoped, or an older version?)" : "";
    if (reply->status == 401) {
      hint = endpoint.user.empty()
                 ? " (procscoped wants a user and password: --user and --password_file)"
                 : " (wrong --user or password)";
    } else if (reply->status == 403) {
      hint = " (a client certificate from the CA procscoped trusts: --cert_file and --key_file)";
    }
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
