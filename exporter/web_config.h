// SPDX-License-Identifier: Apache-2.0
// --web_config_file: who may read the HTTP endpoints. The YAML format of Prometheus'
// exporter-toolkit (docs/web-configuration.md there), so the file a team already has for
// node_exporter works unchanged: TLS (server certificate, client certificates, versions) and
// basic auth users with bcrypt hashes.
#ifndef PROCSCOPE_EXPORTER_WEB_CONFIG_H_
#define PROCSCOPE_EXPORTER_WEB_CONFIG_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace procscope {

// Go's crypto/tls ClientAuthType names, as exporter-toolkit takes them.
enum class ClientAuth {
  kNoClientCert,
  kRequestClientCert,
  kRequireAnyClientCert,
  kVerifyClientCertIfGiven,
  kRequireAndVerifyClientCert,
};

struct TlsServerConfig {
  // PEM contents (read from cert_file/key_file/client_ca_file, or given inline).
  std::string cert_pem;
  std::string key_pem;
  std::string client_ca_pem;
  ClientAuth client_auth = ClientAuth::kNoClientCert;
  // 0x0303 = TLS 1.2, 0x0304 = TLS 1.3 (the wire numbers).
  int min_version = 0x0303;
  int max_version = 0x0304;
};

struct WebConfig {
  std::optional<TlsServerConfig> tls;
  // user -> bcrypt hash ($2a$, $2b$ or $2y$). Empty: no authentication.
  std::map<std::string, std::string> basic_auth_users;
  // Extra response headers (http_server_config.headers).
  std::vector<std::pair<std::string, std::string>> headers;
  // Settings accepted but not applied, one line each (logged at start and reload).
  std::vector<std::string> notes;
};

// Parses the YAML text. Relative file names are taken from `base_dir` (the config file's
// directory, as exporter-toolkit does) and the files are read. Errors are one line and name the
// key or file.
absl::StatusOr<WebConfig> ParseWebConfig(absl::string_view yaml, absl::string_view base_dir);

// Reads and parses `path`; the error starts with "--web_config_file=PATH: ".
absl::StatusOr<WebConfig> LoadWebConfig(const std::string& path);

// True when `password` matches the bcrypt `hash` (libxcrypt's crypt_r).
bool BcryptMatches(absl::string_view password, const std::string& hash);

}  // namespace procscope

#endif  // PROCSCOPE_EXPORTER_WEB_CONFIG_H_
