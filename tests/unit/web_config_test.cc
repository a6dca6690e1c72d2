// SPDX-License-Identifier: Apache-2.0
// The web-config parser: exporter-toolkit's format, and a one-line error for each bad file.
#include "web_config.h"

#include <crypt.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace procscope {
namespace {

// A scratch directory with a throwaway self-signed certificate (real openssl).
class WebConfigTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char d[] = "/tmp/web_config_test.XXXXXX";
    ASSERT_NE(mkdtemp(d), nullptr);
    dir_ = d;
    const std::string cmd = absl::StrCat(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        "-subj /CN=localhost -keyout ",
        dir_, "/key.pem -out ", dir_,
        "/cert.pem 2>/dev/null && openssl req -x509 -newkey ec "
        "-pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=other -keyout ",
        dir_, "/other-key.pem -out ", dir_, "/other.pem 2>/dev/null");
    ASSERT_EQ(system(cmd.c_str()), 0) << "openssl failed";
  }
  static void TearDownTestSuite() { (void)!system(("rm -rf " + dir_).c_str()); }

  absl::StatusOr<WebConfig> Parse(const std::string& yaml) { return ParseWebConfig(yaml, dir_); }
  // The error of a file that must not parse: one line, and containing `want`.
  void ExpectError(const std::string& yaml, const std::string& want) {
    auto c = Parse(yaml);
    ASSERT_FALSE(c.ok()) << yaml;
    EXPECT_TRUE(absl::StrContains(c.status().message(), want))
        << "got: " << c.status().message() << "\nwant: " << want;
    EXPECT_EQ(c.status().message().find('\n'), absl::string_view::npos) << c.status();
  }
  static std::string Hash() {
    crypt_data d = {};
    return crypt_r("pw", "$2y$04$abcdefghijklmnopqrstuu", &d);
  }
  static inline std::string dir_;
};

TEST_F(WebConfigTest, EmptyIsPlainHttp) {
  auto c = Parse("");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->tls);
  EXPECT_TRUE(c->basic_auth_users.empty());
  EXPECT_TRUE(Parse("# just a comment\n").ok());
}

TEST_F(WebConfigTest, FullExporterToolkitFile) {
  auto c =
      Parse(absl::StrCat("tls_server_config:\n"
                         "  cert_file: cert.pem\n"
                         "  key_file: ",
                         dir_,
                         "/key.pem\n"
                         "  client_auth_type: RequireAndVerifyClientCert\n"
                         "  client_ca_file: other.pem\n"
                         "  min_version: TLS13\n"
                         "  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"
                         "http_server_config:\n"
                         "  http2: false\n"
                         "  headers:\n"
                         "    X-Frame-Options: deny\n"
                         "basic_auth_users:\n"
                         "  prom: ",
                         Hash(), "\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->tls);
  EXPECT_EQ(c->tls->client_auth, ClientAuth::kRequireAndVerifyClientCert);
  EXPECT_EQ(c->tls->min_version, 0x0304);
  EXPECT_TRUE(absl::StartsWith(c->tls->cert_pem, "-----BEGIN CERTIFICATE-----"));
  EXPECT_TRUE(absl::StrContains(c->tls->client_ca_pem, "BEGIN CERTIFICATE"));
  EXPECT_EQ(c->basic_auth_users.at("prom"), Hash());
  ASSERT_EQ(c->headers.size(), 1u);
  EXPECT_EQ(c->headers[0].second, "deny");
  EXPECT_EQ(c->notes.size(), 2u);  // cipher_suites and http2 are not applied, and said so
}

TEST_F(WebConfigTest, Errors) {
  ExpectError("tls_server_config: [unclosed", "bad YAML");
  ExpectError("- a list\n", "mapping at the top level");
  ExpectError("tls_server_confg: {}\n", "unknown key 'tls_server_confg'");
  ExpectError("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  foo: 1\n",
              "line 4: unknown key 'foo' in tls_server_config");
  ExpectError("tls_server_config:\n  cert_file: missing.pem\n  key_file: key.pem\n",
              "tls_server_config.cert_file: cannot read " + dir_ + "/missing.pem");
  ExpectError("tls_server_config:\n  key_file: key.pem\n", "cert_file (or cert) is required");
  ExpectError("tls_server_config:\n  cert_file: cert.pem\n  key_file: other-key.pem\n",
              "the certificate and key do not load");
  ExpectError("tls_server_config:\n  cert_file: key.pem\n  key_file: key.pem\n",
              "the certificate and key do not load");
  ExpectError(
      "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n"
      "  client_auth_type: RequireClientCert\n",
      "client_auth_type: 'RequireClientCert' is not one of");
  ExpectError(
      "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n"
      "  client_auth_type: RequireAndVerifyClientCert\n",
      "needs client_ca_file");
  ExpectError(
      "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_ca_file: key.pem\n"
      "  client_auth_type: RequireAndVerifyClientCert\n",
      "client CA: no certificate loads");
  ExpectError(
      "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n"
      "  min_version: TLS14\n",
      "min_version: 'TLS14' is not one of");
  ExpectError(
      "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n"
      "  min_version: TLS13\n  max_version: TLS12\n",
      "min_version is above max_version");
  ExpectError("tls_server_config:\n  cert_file: cert.pem\n  cert: inline\n  key_file: key.pem\n",
              "not both");
  ExpectError("tls_server_config:\n  cert_file: [a]\n", "cert_file: expected a string");
  ExpectError("basic_auth_users:\n  prom: plaintext\n", "user 'prom': not a bcrypt hash");
  ExpectError(
      "basic_auth_users:\n  prom: $2y$99$abcdefghijklmnopqrstuuQOauhQNbBCuQDKes6eFzPeMqBSjb7M\n",
      "not a bcrypt hash");
  // Found by fuzzing: cost 31 made the parse run 2^31 bcrypt rounds.
  ExpectError("basic_auth_users:\n  prom: $2y$31$" + std::string(53, 'a') + "\n",
              "bcrypt cost '31' is not a number up to 14");
  ExpectError("basic_auth_users: [a, b]\n", "basic_auth_users: expected a mapping");
  ExpectError("http_server_config:\n  headers:\n    Server: x\n", "unknown key 'Server'");
  ExpectError("http_server_config:\n  tls: x\n", "unknown key 'tls' in http_server_config");
}

TEST_F(WebConfigTest, LoadNamesTheFile) {
  auto c = LoadWebConfig(dir_ + "/nope.yml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "--web_config_file=" + dir_ + "/nope.yml: cannot read it");
  const std::string path = dir_ + "/web.yml";
  std::ofstream(path) << "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n";
  auto ok = LoadWebConfig(path);  // relative to the file's directory
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->tls);
  auto dir = LoadWebConfig(dir_);
  EXPECT_FALSE(dir.ok());
}

TEST(Bcrypt, Matches) {
  crypt_data d = {};
  const std::string h2b = crypt_r("hunter2", "$2b$04$abcdefghijklmnopqrstuu", &d);
  EXPECT_TRUE(BcryptMatches("hunter2", h2b));
  EXPECT_FALSE(BcryptMatches("hunter3", h2b));
  EXPECT_FALSE(BcryptMatches("", h2b));
  EXPECT_FALSE(BcryptMatches(std::string("hunter2\0x", 9), h2b));
  EXPECT_FALSE(BcryptMatches("hunter2", "not a hash"));
  // htpasswd's $2y$ form.
  const std::string h2y = crypt_r("test", "$2y$04$abcdefghijklmnopqrstuu", &d);
  EXPECT_TRUE(BcryptMatches("test", h2y));
}

}  // namespace
}  // namespace procscope
