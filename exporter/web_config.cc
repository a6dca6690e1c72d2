// SPDX-License-Identifier: Apache-2.0
#include "web_config.h"

#include <crypt.h>
#include <gnutls/gnutls.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace procscope {
namespace {

constexpr size_t kMaxFileBytes = 1 << 20;
// bcrypt cost 14 is about 1 s per check here; 10 (htpasswd's usual) about 60 ms.
constexpr int kMaxBcryptCost = 14;

absl::Status Error(const YAML::Node& at, absl::string_view what) {
  const YAML::Mark m = at.Mark();
  if (m.line < 0) return absl::InvalidArgumentError(std::string(what));
  return absl::InvalidArgumentError(absl::StrCat("line ", m.line + 1, ": ", what));
}

absl::StatusOr<std::string> ReadFile(absl::string_view base_dir, const std::string& name,
                                     absl::string_view key) {
  std::string path = name;
  if (!absl::StartsWith(name, "/") && !base_dir.empty()) path = absl::StrCat(base_dir, "/", name);
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(key.empty() ? "" : absl::StrCat(key, ": "), path, " is not a regular file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(key.empty() ? std::string("cannot read it")
                                           : absl::StrCat(key, ": cannot read ", path));
  }
  std::string data(kMaxFileBytes + 1, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<size_t>(in.gcount()));
  if (data.size() > kMaxFileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(key.empty() ? "" : absl::StrCat(key, ": "), path, " is larger than 1 MiB"));
  }
  return data;
}

absl::StatusOr<std::string> Scalar(const YAML::Node& n, absl::string_view key) {
  if (!n.IsScalar()) return Error(n, absl::StrCat(key, ": expected a string"));
  return n.Scalar();
}

absl::StatusOr<int> TlsVersion(const YAML::Node& n, absl::string_view key) {
  auto s = Scalar(n, key);
  if (!s.ok()) return s.status();
  if (*s == "TLS10") return 0x0301;
  if (*s == "TLS11") return 0x0302;
  if (*s == "TLS12") return 0x0303;
  if (*s == "TLS13") return 0x0304;
  return Error(n, absl::StrCat(key, ": '", *s, "' is not one of TLS10, TLS11, TLS12, TLS13"));
}

absl::StatusOr<ClientAuth> ClientAuthOf(const YAML::Node& n) {
  auto s = Scalar(n, "client_auth_type");
  if (!s.ok()) return s.status();
  static const std::pair<const char*, ClientAuth> kNames[] = {
      {"NoClientCert", ClientAuth::kNoClientCert},
      {"RequestClientCert", ClientAuth::kRequestClientCert},
      {"RequireAnyClientCert", ClientAuth::kRequireAnyClientCert},
      {"VerifyClientCertIfGiven", ClientAuth::kVerifyClientCertIfGiven},
      {"RequireAndVerifyClientCert", ClientAuth::kRequireAndVerifyClientCert},
  };
  for (const auto& [name, v] : kNames) {
    if (*s == name) return v;
  }
  return Error(n, absl::StrCat("client_auth_type: '", *s,
                               "' is not one of NoClientCert, RequestClientCert, "
                               "RequireAnyClientCert, VerifyClientCertIfGiven, "
                               "RequireAndVerifyClientCert"));
}

// Checks with GnuTLS what the server will load: a matching certificate and key, CA certificates.
absl::Status CheckPem(const TlsServerConfig& t) {
  gnutls_certificate_credentials_t cred = nullptr;
  if (gnutls_certificate_allocate_credentials(&cred) != GNUTLS_E_SUCCESS) {
    return absl::InternalError("gnutls_certificate_allocate_credentials failed");
  }
  std::unique_ptr<gnutls_certificate_credentials_st, void (*)(gnutls_certificate_credentials_t)>
      guard(cred, gnutls_certificate_free_credentials);
  const gnutls_datum_t cert = {
      reinterpret_cast<unsigned char*>(const_cast<char*>(t.cert_pem.data())),
      static_cast<unsigned>(t.cert_pem.size())};
  const gnutls_datum_t key = {reinterpret_cast<unsigned char*>(const_cast<char*>(t.key_pem.data())),
                              static_cast<unsigned>(t.key_pem.size())};
  if (int rc = gnutls_certificate_set_x509_key_mem(cred, &cert, &key, GNUTLS_X509_FMT_PEM);
      rc < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls_server_config: the certificate and key do not load: ", gnutls_strerror(rc)));
  }
  if (!t.client_ca_pem.empty()) {
    const gnutls_datum_t ca = {
        reinterpret_cast<unsigned char*>(const_cast<char*>(t.client_ca_pem.data())),
        static_cast<unsigned>(t.client_ca_pem.size())};
    const int n = gnutls_certificate_set_x509_trust_mem(cred, &ca, GNUTLS_X509_FMT_PEM);
    if (n <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("tls_server_config: client CA: no certificate loads",
                       n < 0 ? absl::StrCat(": ", gnutls_strerror(n)) : std::string()));
    }
  }
  return absl::OkStatus();
}

absl::Status UnknownKey(const YAML::Node& key, absl::string_view section,
                        const std::set<std::string>& known) {
  return Error(key, absl::StrCat("unknown key '", key.Scalar(), "'",
                                 section.empty() ? "" : absl::StrCat(" in ", section),
                                 " (known: ", absl::StrJoin(known, ", "), ")"));
}

absl::StatusOr<TlsServerConfig> ParseTls(const YAML::Node& n, absl::string_view base_dir,
                                         std::vector<std::string>* notes) {
  if (!n.IsMap()) return Error(n, "tls_server_config: expected a mapping");
  static const std::set<std::string> kKnown = {"cert",
                                               "key",
                                               "client_ca",
                                               "cert_file",
                                               "key_file",
                                               "client_ca_file",
                                               "client_auth_type",
                                               "client_allowed_sans",
                                               "min_version",
                                               "max_version",
                                               "cipher_suites",
                                               "prefer_server_cipher_suites",
                                               "curve_preferences"};
  TlsServerConfig t;
  std::string cert_file, key_file, ca_file;
  bool have_cert = false, have_key = false, have_ca = false;
  for (const auto& kv : n) {
    const std::string k = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    if (!kKnown.count(k)) return UnknownKey(kv.first, "tls_server_config", kKnown);
    auto file = [&](std::string* pem, bool* have) -> absl::Status {
      auto name = Scalar(v, k);
      if (!name.ok()) return name.status();
      if (name->empty()) return absl::OkStatus();
      if (*have) {
        return Error(v, absl::StrCat(k, ": give the file or the inline PEM, not both"));
      }
      *have = true;
      if (absl::EndsWith(k, "_file")) {
        auto data = ReadFile(base_dir, *name, absl::StrCat("tls_server_config.", k));
        if (!data.ok()) return data.status();
        *pem = *std::move(data);
      } else {
        *pem = *name;
      }
      return absl::OkStatus();
    };
    absl::Status s;
    if (k == "cert" || k == "cert_file") {
      s = file(&t.cert_pem, &have_cert);
    } else if (k == "key" || k == "key_file") {
      s = file(&t.key_pem, &have_key);
    } else if (k == "client_ca" || k == "client_ca_file") {
      s = file(&t.client_ca_pem, &have_ca);
    } else if (k == "client_auth_type") {
      auto a = ClientAuthOf(v);
      if (!a.ok()) return a.status();
      t.client_auth = *a;
    } else if (k == "min_version" || k == "max_version") {
      auto ver = TlsVersion(v, k);
      if (!ver.ok()) return ver.status();
      (k == "min_version" ? t.min_version : t.max_version) = *ver;
    } else if (k == "client_allowed_sans") {
      if (v.IsNull() || (v.IsSequence() && v.size() == 0)) continue;
      return Error(v,
                   "client_allowed_sans: not supported by procscoped; restrict clients with "
                   "client_ca_file (a CA of their own) instead");
    } else {
      notes->push_back(absl::StrCat("tls_server_config.", k,
                                    " is ignored: GnuTLS's default (NORMAL) ciphers and curves "
                                    "apply"));
    }
    if (!s.ok()) return s;
  }
  if (!have_cert) return Error(n, "tls_server_config: cert_file (or cert) is required");
  if (!have_key) return Error(n, "tls_server_config: key_file (or key) is required");
  if (t.min_version > t.max_version) {
    return Error(n, "tls_server_config: min_version is above max_version");
  }
  const bool verifies = t.client_auth == ClientAuth::kVerifyClientCertIfGiven ||
                        t.client_auth == ClientAuth::kRequireAndVerifyClientCert;
  if (verifies && !have_ca) {
    return Error(n, "tls_server_config: this client_auth_type needs client_ca_file (or client_ca)");
  }
  if (have_ca && t.client_auth == ClientAuth::kNoClientCert) {
    return Error(n,
                 "tls_server_config: client_ca_file is set but client_auth_type is "
                 "NoClientCert (use RequireAndVerifyClientCert)");
  }
  if (absl::Status s = CheckPem(t); !s.ok()) return s;
  return t;
}

absl::Status ParseUsers(const YAML::Node& n, WebConfig* c) {
  if (n.IsNull()) return absl::OkStatus();
  if (!n.IsMap()) return Error(n, "basic_auth_users: expected a mapping of user: bcrypt hash");
  for (const auto& kv : n) {
    const std::string user = kv.first.Scalar();
    if (user.empty() || user.find(':') != std::string::npos) {
      return Error(kv.first, absl::StrCat("basic_auth_users: bad user name '", user, "'"));
    }
    auto hash = Scalar(kv.second, absl::StrCat("basic_auth_users.", user));
    if (!hash.ok()) return hash.status();
    const bool bcrypt =
        hash->size() == 60 && (absl::StartsWith(*hash, "$2a$") || absl::StartsWith(*hash, "$2b$") ||
                               absl::StartsWith(*hash, "$2y$"));
    // The cost is 2^N rounds, paid on every login that misses the cache and by the probe below:
    // refuse one that would take seconds (fuzzing found $2y$31$ hanging the parse for hours).
    int cost = 0;
    if (bcrypt && (!absl::SimpleAtoi(hash->substr(4, 2), &cost) || cost > kMaxBcryptCost)) {
      return Error(kv.second, absl::StrCat("basic_auth_users: user '", user, "': bcrypt cost '",
                                           hash->substr(4, 2), "' is not a number up to ",
                                           kMaxBcryptCost, " (htpasswd -nBC 10 \"\" makes one)"));
    }
    // crypt_r answers "*0"/"*1" for a setting it cannot use (bad cost or salt).
    auto data = std::make_unique<crypt_data>();
    const char* probe = bcrypt ? crypt_r("", hash->c_str(), data.get()) : nullptr;
    if (probe == nullptr || probe[0] == '*') {
      return Error(kv.second, absl::StrCat("basic_auth_users: user '", user,
                                           "': not a bcrypt hash ($2a$, $2b$ or $2y$, 60 "
                                           "characters; make one with htpasswd -nBC 10 \"\")"));
    }
    c->basic_auth_users[user] = *hash;
  }
  return absl::OkStatus();
}

absl::Status ParseHttpServer(const YAML::Node& n, WebConfig* c) {
  if (n.IsNull()) return absl::OkStatus();
  if (!n.IsMap()) return Error(n, "http_server_config: expected a mapping");
  static const std::set<std::string> kKnown = {"http2", "headers"};
  static const std::set<std::string> kHeaders = {"Content-Security-Policy", "X-Frame-Options",
                                                 "X-Content-Type-Options", "X-XSS-Protection",
                                                 "Strict-Transport-Security"};
  for (const auto& kv : n) {
    const std::string k = kv.first.Scalar();
    if (!kKnown.count(k)) return UnknownKey(kv.first, "http_server_config", kKnown);
    if (k == "http2") {
      c->notes.push_back("http_server_config.http2 is ignored: procscoped serves HTTP/1.1");
      continue;
    }
    if (kv.second.IsNull()) continue;
    if (!kv.second.IsMap())
      return Error(kv.second, "http_server_config.headers: expected a mapping");
    for (const auto& h : kv.second) {
      const std::string name = h.first.Scalar();
      if (!kHeaders.count(name)) return UnknownKey(h.first, "http_server_config.headers", kHeaders);
      auto value = Scalar(h.second, name);
      if (!value.ok()) return value.status();
      if (value->find_first_of("\r\n") != std::string::npos) {
        return Error(h.second, absl::StrCat(name, ": a header value must be one line"));
      }
      if (!value->empty()) c->headers.emplace_back(name, *value);
    }
  }
  return absl::OkStatus();
}

// Control bytes of an error message as \xNN: the message quotes the file (keys, names, and
// yaml-cpp's own errors, which quote the offending character), and must stay one line.
absl::Status OneLine(const absl::Status& s) {
  std::string out;
  for (const char ch : s.message()) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    } else {
      out += ch;
    }
  }
  return absl::Status(s.code(), out);
}

absl::StatusOr<WebConfig> ParseWebConfigText(absl::string_view yaml, absl::string_view base_dir);

}  // namespace

absl::StatusOr<WebConfig> ParseWebConfig(absl::string_view yaml, absl::string_view base_dir) {
  absl::StatusOr<WebConfig> c = ParseWebConfigText(yaml, base_dir);
  if (!c.ok()) return OneLine(c.status());
  return c;
}

namespace {

absl::StatusOr<WebConfig> ParseWebConfigText(absl::string_view yaml, absl::string_view base_dir) {
  WebConfig c;
  YAML::Node root;
  try {  // yaml-cpp reports syntax errors, and wrong node types, by throwing
    root = YAML::Load(std::string(yaml));
    if (root.IsNull()) return c;  // an empty file: plain HTTP, no authentication
    if (!root.IsMap()) return Error(root, "expected a mapping at the top level");
    static const std::set<std::string> kKnown = {"tls_server_config", "http_server_config",
                                                 "basic_auth_users", "rate_limit"};
    for (const auto& kv : root) {
      const std::string k = kv.first.Scalar();
      if (!kKnown.count(k)) return UnknownKey(kv.first, "", kKnown);
      absl::Status s;
      if (k == "tls_server_config") {
        if (kv.second.IsNull()) continue;
        auto t = ParseTls(kv.second, base_dir, &c.notes);
        if (!t.ok()) return t.status();
        c.tls = *std::move(t);
      } else if (k == "basic_auth_users") {
        s = ParseUsers(kv.second, &c);
      } else if (k == "http_server_config") {
        s = ParseHttpServer(kv.second, &c);
      } else {
        c.notes.push_back(
            "rate_limit is ignored: the server's connection limits (1000 in all, 128 per client "
            "address) apply");
      }
      if (!s.ok()) return s;
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("bad YAML: ", e.what()));
  }
  return c;
}

}  // namespace

absl::StatusOr<WebConfig> LoadWebConfig(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  auto text = ReadFile("", path, "");
  absl::StatusOr<WebConfig> c =
      text.ok() ? ParseWebConfig(*text, dir) : absl::StatusOr<WebConfig>(text.status());
  if (!c.ok()) {
    return absl::Status(c.status().code(),
                        absl::StrCat("--web_config_file=", path, ": ", c.status().message()));
  }
  return c;
}

bool BcryptMatches(absl::string_view password, const std::string& hash) {
  if (password.find('\0') != absl::string_view::npos) return false;
  auto data = std::make_unique<crypt_data>();
  const char* out = crypt_r(std::string(password).c_str(), hash.c_str(), data.get());
  if (out == nullptr || out[0] == '*') return false;
  const size_t n = strlen(out);
  if (n != hash.size()) return false;
  unsigned char diff = 0;  // constant time
  for (size_t i = 0; i < n; ++i) diff |= static_cast<unsigned char>(out[i] ^ hash[i]);
  return diff == 0;
}

}  // namespace procscope
