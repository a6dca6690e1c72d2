// SPDX-License-Identifier: Apache-2.0
// Tier 1: the procscope CLI's logic on fixed protobuf messages: option checks, the HTTP reply
// parser and client errors, the top table (sorting, limit, shares, hostile names), the tree
// (orphans, cycles, reused pids, depth, folding), the JSON documents, --follow's dedupe, and
// the command loops (top --watch, events --follow) on canned replies.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "cli_commands.h"
#include "cli_http.h"
#include "cli_options.h"
#include "cli_render.h"
#include "cli_tree.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "procscope.pb.h"
#include "records.h"

namespace procscope::cli {
namespace {

// A name that tries everything: quotes, a newline, a terminal escape sequence (set the window
// title, then red), a backslash, a tab and invalid UTF-8.
const char kHostile[] = "a\"b'\nc\x1b]0;pwned\x07\x1b[31mred\\\t\xff\xfe";

v1::Process Proc(uint32_t pid, uint32_t ppid, const std::string& comm, double cpu = 0) {
  v1::Process p;
  p.set_pid(pid);
  p.set_ppid(ppid);
  p.set_comm(comm);
  p.set_group(comm);
  p.set_exe("/usr/bin/" + comm);
  p.set_start_time_unix_ns(1000 + pid);
  p.set_cpu_cores(cpu);
  return p;
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

// Row lines of the process table: those after the "PID COMM ..." header of the TOP section.
std::vector<std::string> TableRows(const std::string& text) {
  std::vector<std::string> rows;
  bool in = false;
  for (const std::string& l : Lines(text)) {
    if (absl::StartsWith(l, "TOP ")) {
      in = true;
      continue;
    }
    if (in && absl::StrContains(l, "PID") && absl::StrContains(l, "COMM")) continue;
    if (in) rows.push_back(l);
  }
  return rows;
}

uint32_t RowPid(const std::string& row) {
  uint32_t pid = 0;
  EXPECT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(row.substr(0, 7)), &pid)) << row;
  return pid;
}

bool ValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    size_t len = c < 0x80             ? 1
                 : (c & 0xE0) == 0xC0 ? 2
                 : (c & 0xF0) == 0xE0 ? 3
                 : (c & 0xF8) == 0xF0 ? 4
                                      : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

google::protobuf::Struct ParseStruct(const std::string& json) {
  google::protobuf::Struct st;
  auto s = google::protobuf::util::JsonStringToMessage(json, &st);
  EXPECT_TRUE(s.ok()) << s.ToString() << "\n" << json;
  return st;
}

// ---------------------------------------------------------------------------------------------
// Options

TEST(EndpointTest, Forms) {
  auto e = ParseEndpoint("127.0.0.1:9750");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->host, "127.0.0.1");
  EXPECT_EQ(e->port, 9750);
  e = ParseEndpoint(":1234");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->ToString(), "127.0.0.1:1234");
  e = ParseEndpoint("node1");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->ToString(), "node1:9750");
  e = ParseEndpoint("http://node1:80/");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->ToString(), "node1:80");
  e = ParseEndpoint("[::1]:9750");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->ToString(), "[::1]:9750");
}

TEST(EndpointTest, Https) {
  auto e = ParseEndpoint("https://host:9443/");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_TRUE(e->tls);
  EXPECT_EQ(e->Url(), "https://host:9443");
  EXPECT_EQ(ParseEndpoint("http://[::1]:1")->Url(), "http://[::1]:1");
}

TEST(EndpointTest, ErrorsNameTheFlagAndTheForm) {
  for (const char* bad : {"", "host:", "host:0", "host:65536", "host:http", "::1:9750", "[::1",
                          "host:9750/metrics", "ho st:1", "host:12345678901234567890"}) {
    auto e = ParseEndpoint(bad);
    ASSERT_FALSE(e.ok()) << bad;
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(e.status().message(), "--endpoint=")) << e.status();
    EXPECT_TRUE(absl::StrContains(e.status().message(), "HOST:PORT")) << e.status();
    EXPECT_FALSE(absl::StrContains(e.status().message(), "\n"));
  }
}

TEST(OptionsTest, SortAndColorValues) {
  for (const char* k : {"cpu", "runq", "mem", "faults", "io"}) {
    auto s = ParseSortKey(k);
    ASSERT_TRUE(s.ok()) << k;
    EXPECT_STREQ(SortKeyName(*s), k);
  }
  EXPECT_FALSE(ParseSortKey("CPU").ok());
  EXPECT_TRUE(absl::StrContains(ParseSortKey("disk").status().message(), "--sort=disk"));
  EXPECT_TRUE(ParseColorMode("always").ok());
  EXPECT_FALSE(ParseColorMode("yes").ok());
}

// --sort and --color are flags of their enum types: each name parses and unparses, and a bad
// value's error lists every valid one (the flag parser puts "--sort=<value>: " in front). The
// commands' names come from a checked table too.
TEST(OptionsTest, SortAndColorAreEnumFlags) {
  for (const auto& [key, name] : kSortKeyNames) {
    SortKey parsed = SortKey::kCpu;
    std::string error;
    ASSERT_TRUE(AbslParseFlag(name, &parsed, &error)) << name << ": " << error;
    EXPECT_EQ(parsed, key);
    EXPECT_EQ(AbslUnparseFlag(key), name);
  }
  for (const auto& [mode, name] : kColorModeNames) {
    ColorMode parsed = ColorMode::kAuto;
    std::string error;
    ASSERT_TRUE(AbslParseFlag(name, &parsed, &error)) << name << ": " << error;
    EXPECT_EQ(parsed, mode);
    EXPECT_EQ(AbslUnparseFlag(mode), name);
  }
  for (const auto& [command, name] : kCommandNames) {
    EXPECT_EQ(ParseCommand(name), command) << name;
    EXPECT_STREQ(CommandName(command), name);
  }
  EXPECT_EQ(ParseCommand("Top"), std::nullopt);
  EXPECT_EQ(ParseCommand(""), std::nullopt);
  SortKey key = SortKey::kMem;
  std::string error;
  EXPECT_FALSE(AbslParseFlag("disk", &key, &error));
  EXPECT_EQ(error, "must be one of cpu, runq, mem, faults, io");
  EXPECT_EQ(key, SortKey::kMem);
  ColorMode mode = ColorMode::kNever;
  EXPECT_FALSE(AbslParseFlag("yes", &mode, &error));
  EXPECT_EQ(error, "must be one of auto, always, never");
  EXPECT_EQ(ParseColorMode("yes").status().message(),
            "--color=yes: must be one of auto, always, never");
  EXPECT_EQ(ParseSortKey("disk").status().message(),
            "--sort=disk: must be one of cpu, runq, mem, faults, io");
}

TEST(OptionsTest, ColorAutoOnlyOnATerminal) {
  EXPECT_TRUE(UseColor(ColorMode::kAuto, true, "xterm", nullptr));
  EXPECT_FALSE(UseColor(ColorMode::kAuto, false, "xterm", nullptr));
  EXPECT_FALSE(UseColor(ColorMode::kAuto, true, "dumb", nullptr));
  EXPECT_FALSE(UseColor(ColorMode::kAuto, true, "xterm", "1"));
  EXPECT_TRUE(UseColor(ColorMode::kAlways, false, "dumb", "1"));
  EXPECT_FALSE(UseColor(ColorMode::kNever, true, "xterm", nullptr));
}

TEST(OptionsTest, FlagsMustBelongToTheCommand) {
  EXPECT_TRUE(CheckFlagsForCommand(Command::kTop, {"sort", "watch", "endpoint", "json"}).ok());
  EXPECT_TRUE(CheckFlagsForCommand(Command::kEvents, {"follow", "limit", "failed"}).ok());
  absl::Status s = CheckFlagsForCommand(Command::kStatus, {"watch"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "--watch is not an option of 'status'")) << s;
  EXPECT_FALSE(CheckFlagsForCommand(Command::kTree, {"sort"}).ok());
  EXPECT_FALSE(CheckFlagsForCommand(Command::kEvents, {"standalone"}).ok());
  EXPECT_FALSE(CheckFlagsForCommand(Command::kTop, {"follow"}).ok());
}

TEST(OptionsTest, RangesAndCombinations) {
  FlagValues v;
  auto o = MakeOptions(Command::kTop, v, {});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->endpoint.ToString(), "127.0.0.1:9750");
  EXPECT_EQ(o->limit, 10);
  EXPECT_EQ(o->sort, SortKey::kCpu);

  auto fails = [](Command c, FlagValues v, std::set<std::string> given, const char* want) {
    auto o = MakeOptions(c, v, given);
    ASSERT_FALSE(o.ok()) << want;
    EXPECT_TRUE(absl::StrContains(o.status().message(), want)) << o.status();
  };
  FlagValues bad = v;
  bad.limit = 0;
  fails(Command::kTop, bad, {"limit"}, "--limit=0");
  bad = v;
  bad.interval = absl::Milliseconds(10);
  bad.watch = true;
  fails(Command::kTop, bad, {"interval", "watch"}, "--interval=10ms");
  bad = v;
  bad.watch = true;
  bad.json = true;
  fails(Command::kTop, bad, {"watch", "json"}, "--watch and --json");
  bad = v;
  bad.standalone = true;
  bad.duration = absl::Seconds(3);
  fails(Command::kTop, bad, {"standalone", "duration"}, "at least 5s");
  bad.duration = absl::Seconds(6);
  fails(Command::kTop, bad, {"standalone", "duration", "endpoint"}, "--endpoint has no effect");
  bad.watch = true;
  fails(Command::kTop, bad, {"standalone", "watch"}, "--watch and --standalone");
  bad = v;
  fails(Command::kTop, bad, {"duration"}, "only with --standalone");
  fails(Command::kTop, bad, {"interval"}, "only with --watch");
  fails(Command::kEvents, bad, {"interval"}, "only with --follow");
  bad.endpoint = "nope:x";
  fails(Command::kStatus, bad, {"endpoint"}, "--endpoint=nope:x");
  bad = v;
  bad.timeout = absl::ZeroDuration();
  fails(Command::kStatus, bad, {"timeout"}, "--timeout=0");

  FlagValues good = v;
  good.standalone = true;
  good.duration = absl::Seconds(6);
  EXPECT_TRUE(MakeOptions(Command::kTop, good, {"standalone", "duration"}).ok());
  EXPECT_EQ(StandaloneWindow(absl::Seconds(6)), absl::Seconds(6));
  EXPECT_EQ(StandaloneWindow(absl::Minutes(5)), absl::Seconds(30));
  EXPECT_EQ(StandaloneWindow(absl::Seconds(5)), absl::Seconds(5));
}

TEST(OptionsTest, TlsAndAuthFlags) {
  FlagValues v;
  v.endpoint = "http://127.0.0.1:9750";
  v.ca_file = "ca.pem";
  auto o = MakeOptions(Command::kStatus, v, {"endpoint", "ca_file"});
  ASSERT_FALSE(o.ok());
  EXPECT_TRUE(absl::StrContains(o.status().message(), "--ca_file needs an https:// --endpoint"));
  v.endpoint = "https://127.0.0.1:9750";
  v.user = "prom";
  o = MakeOptions(Command::kStatus, v, {"endpoint", "ca_file", "user"});
  ASSERT_FALSE(o.ok());
  EXPECT_TRUE(absl::StrContains(o.status().message(), "--user and --password_file go together"));
  v.password_file = "pw";
  v.cert_file = "c.pem";
  o = MakeOptions(Command::kStatus, v, {"endpoint", "ca_file", "user", "password_file"});
  ASSERT_FALSE(o.ok());
  EXPECT_TRUE(absl::StrContains(o.status().message(), "--cert_file and --key_file go together"));
  v.key_file = "k.pem";
  o = MakeOptions(Command::kStatus, v, {"endpoint"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->endpoint.tls);
  EXPECT_EQ(o->endpoint.ca_file, "ca.pem");
  EXPECT_EQ(o->endpoint.user, "prom");
  EXPECT_EQ(o->password_file, "pw");
  EXPECT_TRUE(CheckFlagsForCommand(Command::kTree, {"ca_file", "user", "password_file"}).ok());
}

TEST(OptionsTest, EveryCommandHasHelp) {
  for (Command c : {Command::kTop, Command::kEvents, Command::kTree, Command::kStatus}) {
    const std::string h = CommandHelp(c);
    EXPECT_TRUE(absl::StartsWith(h, absl::StrCat("Usage: procscope ", CommandName(c)))) << h;
    EXPECT_TRUE(absl::StrContains(h, "--endpoint")) << h;
    EXPECT_EQ(ParseCommand(CommandName(c)), c);
  }
  EXPECT_FALSE(ParseCommand("--top").has_value());
}

// ---------------------------------------------------------------------------------------------
// HTTP

TEST(HttpParseTest, ContentLengthChunkedAndErrors) {
  auto r = ParseHttpResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello trailing");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello");
  r = ParseHttpResponse(
      "HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: Chunked\r\n\r\n"
      "4\r\nnot \r\n6;x=y\r\nready!\r\n0\r\n\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, "not ready!");
  r = ParseHttpResponse("HTTP/1.0 200 OK\r\n\r\nto the close");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, "to the close");
  EXPECT_EQ(ParseHttpResponse("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_FALSE(ParseHttpResponse("SSH-2.0-OpenSSH_9.2\r\n").ok());
  EXPECT_FALSE(ParseHttpResponse("HTTP/1.1 abc\r\n\r\n").ok());
  EXPECT_FALSE(
      ParseHttpResponse("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nab").ok());
}

// A listening socket on a free loopback port.
int Listen(int* port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  EXPECT_EQ(listen(fd, 4), 0);
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

TEST(HttpClientTest, RefusedIsUnavailableWithTheEndpoint) {
  int port = 0;
  close(Listen(&port));  // nobody listens there any more
  Endpoint ep{"127.0.0.1", port};
  auto r = HttpGet(ep, "/healthz", absl::Seconds(2));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(),
            absl::StrCat("cannot reach procscoped at 127.0.0.1:", port, " (connection refused)"));
}

TEST(HttpClientTest, UnresolvableHost) {
  auto r = HttpGet(Endpoint{"no-such-host.invalid", 9750}, "/healthz", absl::Seconds(2));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "cannot resolve")) << r.status();
}

TEST(HttpClientTest, SilentServerTimesOut) {
  int port = 0;
  const int fd = Listen(&port);  // accepts (backlog) but never answers
  const absl::Time t0 = absl::Now();
  auto r = HttpGet(Endpoint{"127.0.0.1", port}, "/api/v1/processes", absl::Milliseconds(300));
  const absl::Duration took = absl::Now() - t0;
  close(fd);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "did not answer GET /api/v1/processes"));
  EXPECT_LT(took, absl::Seconds(2));
}

// Serves one connection with `reply` and returns the request it read.
std::string ServeOnce(int fd, const std::string& reply) {
  int c = accept(fd, nullptr, nullptr);
  std::string req;
  char buf[4096];
  while (!absl::StrContains(req, "\r\n\r\n")) {
    ssize_t n = read(c, buf, sizeof(buf));
    if (n <= 0) break;
    req.append(buf, n);
  }
  EXPECT_EQ(write(c, reply.data(), reply.size()), static_cast<ssize_t>(reply.size()));
  close(c);
  return req;
}

TEST(HttpClientTest, GetsTheBodyAndReportsOtherStatuses) {
  int port = 0;
  const int fd = Listen(&port);
  std::string request;
  std::thread server([&] {
    request =
        ServeOnce(fd, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n");
    ServeOnce(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\nnot found\n");
  });
  auto ok = HttpGet(Endpoint{"127.0.0.1", port}, "/healthz", absl::Seconds(2));
  auto missing = HttpGet(Endpoint{"127.0.0.1", port}, "/api/v1/nope", absl::Seconds(2));
  server.join();
  close(fd);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, "ok\n");
  EXPECT_TRUE(absl::StartsWith(request, "GET /healthz HTTP/1.0\r\n")) << request;
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "answered 404 to GET /api/v1/nope"))
      << missing.status();
}

TEST(HttpClientTest, HttpsWithoutTheCaSaysSo) {
  int port = 0;
  const int fd = Listen(&port);
  std::thread server([&] {  // a TLS server would send its certificate; this one sends junk
    int c = accept(fd, nullptr, nullptr);
    char buf[512];
    (void)!read(c, buf, sizeof(buf));
    (void)!write(c, "\x15\x03\x03\x00\x02\x02\x28", 7);  // a TLS alert: handshake failure
    close(c);
  });
  Endpoint ep{"127.0.0.1", port};
  ep.tls = true;
  auto r = HttpGet(ep, "/healthz", absl::Seconds(2));
  server.join();
  close(fd);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "127.0.0.1:" + std::to_string(port)))
      << r.status();
  EXPECT_EQ(r.status().message().find('\n'), absl::string_view::npos);
}

TEST(HttpClientTest, JsonParseErrorsAreClear) {
  v1::ProcessList list;
  EXPECT_TRUE(ParseJson(R"({"processes":[{"pid":5,"future_field":1}]})", &list, "processes").ok());
  EXPECT_EQ(list.processes(0).pid(), 5u);
  absl::Status s = ParseJson("<html>", &list, "processes");
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StartsWith(s.message(), "cannot parse processes")) << s;
}

// ---------------------------------------------------------------------------------------------
// top

TopData Busy() {
  TopData d;
  d.taken = absl::FromUnixSeconds(1700000000);
  d.source = "127.0.0.1:9750";
  d.offenders.set_window_seconds(30);
  v1::Process a = Proc(100, 1, "hog", 1.5);
  a.set_page_faults_per_second(10);
  v1::Process b = Proc(200, 1, "faulty", 0.25);
  b.set_page_faults_per_second(3000);
  b.set_block_io_bytes_per_second(4 << 20);
  v1::Process c = Proc(300, 1, "writer", 0.25);
  c.set_block_io_bytes_per_second(12 << 20);
  c.set_runqueue_wait_cores(0.5);
  c.set_container("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  v1::Process e = Proc(50, 1, "grower", 0.0);
  e.set_memory_growth_bytes_per_second(8 << 20);
  for (const v1::Process& p : {e, b, a, c}) *d.processes.add_processes() = p;
  for (uint32_t pid = 1000; pid < 1020; ++pid) *d.processes.add_processes() = Proc(pid, 1, "idle");
  v1::Offender* off = d.offenders.add_offenders();
  off->set_resource("cpu");
  off->set_pid(100);
  off->set_comm("hog");
  off->set_group("hog");
  off->set_rate(1.5);
  off->set_unit("cores");
  off->set_share(0.75);
  off->set_reason("cpu 1.50 cores, 6.0x the next process");
  return d;
}

RenderOptions Plain() {
  RenderOptions o;
  o.num_cpus = 2;
  return o;
}

TEST(TopTest, SortsByEachKeyAndLimits) {
  const TopData d = Busy();
  const std::pair<SortKey, std::vector<uint32_t>> cases[] = {
      {SortKey::kCpu, {100, 200, 300}},  // ties at 0.25 by pid
      {SortKey::kRunq, {300, 100, 200}},   {SortKey::kMem, {50, 100, 200}},
      {SortKey::kFaults, {200, 100, 300}}, {SortKey::kIo, {300, 200, 100}},
  };
  for (const auto& [key, want] : cases) {
    std::vector<uint32_t> got;
    for (const v1::Process& p : TopProcesses(d.processes, key, 3)) got.push_back(p.pid());
    EXPECT_EQ(got, want) << SortKeyName(key);
    std::vector<uint32_t> rows;
    for (const std::string& r : TableRows(RenderTop(d, key, 3, Plain()))) rows.push_back(RowPid(r));
    EXPECT_EQ(rows, want) << SortKeyName(key);
  }
  EXPECT_EQ(TopProcesses(d.processes, SortKey::kCpu, 1000).size(), 24u);
  EXPECT_EQ(TableRows(RenderTop(d, SortKey::kCpu, 7, Plain())).size(), 7u);
}

TEST(TopTest, SharesOfTheMachine) {
  // cpu and runq: of all CPUs; the rest: of all processes' total.
  EXPECT_DOUBLE_EQ(ShareOf(1.5, SortKey::kCpu, 2, 0), 0.75);
  EXPECT_DOUBLE_EQ(ShareOf(3, SortKey::kCpu, 2, 0), 1.0);
  EXPECT_DOUBLE_EQ(ShareOf(0.5, SortKey::kRunq, 4, 0), 0.125);
  EXPECT_DOUBLE_EQ(ShareOf(12, SortKey::kIo, 2, 16), 0.75);
  EXPECT_LT(ShareOf(0, SortKey::kFaults, 2, 0), 0);
  const std::string cpu = RenderTop(Busy(), SortKey::kCpu, 3, Plain());
  const std::vector<std::string> rows = TableRows(cpu);
  EXPECT_TRUE(absl::StrContains(rows[0], "1.50 cores  75.0%")) << rows[0];
  EXPECT_TRUE(absl::StrContains(rows[1], "0.25 cores  12.5%")) << rows[1];
  const std::vector<std::string> io = TableRows(RenderTop(Busy(), SortKey::kIo, 3, Plain()));
  EXPECT_TRUE(absl::StrContains(io[0], "12.0MiB/s  75.0%")) << io[0];
  EXPECT_TRUE(absl::StrContains(io[0], "0123456789ab ")) << io[0];  // short container id
  EXPECT_FALSE(absl::StrContains(io[0], "0123456789abc")) << io[0];
}

TEST(TopTest, OffendersComeFirstWithTheirReason) {
  const std::vector<std::string> lines = Lines(RenderTop(Busy(), SortKey::kCpu, 3, Plain()));
  ASSERT_GE(lines.size(), 4u);
  EXPECT_TRUE(absl::StartsWith(lines[0], "procscope top  ")) << lines[0];
  EXPECT_TRUE(absl::StrContains(lines[0], "24 processes  2 CPUs  window 30s")) << lines[0];
  EXPECT_EQ(lines[1], "OFFENDERS");
  EXPECT_TRUE(absl::StartsWith(lines[3], "cpu               100 hog ")) << lines[3];
  EXPECT_TRUE(absl::StrContains(lines[3], "1.50 cores  75.0%  cpu 1.50 cores, 6.0x the next"))
      << lines[3];
  TopData quiet = Busy();
  quiet.offenders.clear_offenders();
  EXPECT_TRUE(absl::StrContains(RenderTop(quiet, SortKey::kCpu, 3, Plain()),
                                "OFFENDERS  none: no process stands out over the last 30s"));
}

TEST(TopTest, HostileNamesStayOnOneLineWithoutEscapes) {
  TopData d = Busy();
  d.processes.mutable_processes(2)->set_comm(kHostile);  // the hog
  d.processes.mutable_processes(2)->set_group(kHostile);
  d.offenders.mutable_offenders(0)->set_comm(kHostile);
  d.offenders.mutable_offenders(0)->set_reason(kHostile);
  RenderOptions o = Plain();
  const std::string out = RenderTop(d, SortKey::kCpu, 3, o);
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
  EXPECT_EQ(out.find('\x07'), std::string::npos);
  EXPECT_EQ(out.find('\t'), std::string::npos);
  for (char c : out) EXPECT_TRUE(c == '\n' || (c >= 0x20 && c < 0x7f)) << int(c);
  const std::vector<std::string> rows = TableRows(out);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(RowPid(rows[0]), 100u);
  // The columns after the name stay aligned: every row is as long as the others.
  EXPECT_EQ(rows[0].size(), rows[1].size()) << rows[0] << "\n" << rows[1];
  EXPECT_TRUE(absl::StrContains(rows[0], " a\\x22b'\\x0ac\\x1~ ")) << rows[0];  // cut at 16

  // With colour the only escapes are SGR codes, none of them from the name.
  o.color = true;
  const std::string colored = RenderTop(d, SortKey::kCpu, 3, o);
  EXPECT_TRUE(absl::StrContains(colored, "\x1b[1;31m")) << colored;  // offenders in red/bold
  EXPECT_FALSE(absl::StrContains(colored, "\x1b]0;")) << colored;
  EXPECT_FALSE(absl::StrContains(colored, "\x1b[31m")) << colored;
}

TEST(TopTest, WidthAndHeightCutWithoutBreakingColour) {
  RenderOptions o = Plain();
  o.width = 40;
  o.height = 8;
  o.color = true;
  const std::vector<std::string> lines = Lines(RenderTop(Busy(), SortKey::kCpu, 10, o));
  EXPECT_LE(lines.size(), 8u);
  for (const std::string& l : lines) {
    std::string visible = l;
    for (const char* sgr : {"\x1b[1;31m", "\x1b[1m", "\x1b[0m"}) {
      visible = absl::StrReplaceAll(visible, {{sgr, ""}});
    }
    EXPECT_LE(visible.size(), 40u) << l;
    if (absl::StrContains(l, "\x1b[1")) {
      EXPECT_TRUE(absl::EndsWith(l, "\x1b[0m")) << l;
    }
  }
}

TEST(TopTest, JsonIsStableAndParsesBack) {
  TopData d = Busy();
  d.processes.mutable_processes(2)->set_comm("h\xc3\xa9llo");  // valid UTF-8 stays as it is
  const std::string json = TopJson(d, SortKey::kIo, 2, 2);
  EXPECT_TRUE(ValidUtf8(json));
  EXPECT_EQ(std::count(json.begin(), json.end(), '\n'), 1);  // one line
  const google::protobuf::Struct st = ParseStruct(json);
  std::vector<std::string> keys;
  for (const auto& [k, v] : st.fields()) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"generated_unix_ns", "limit", "num_cpus", "offenders",
                                            "processes", "sort", "source"}));
  EXPECT_EQ(st.fields().at("sort").string_value(), "io");
  EXPECT_EQ(st.fields().at("limit").number_value(), 2);
  EXPECT_EQ(st.fields().at("num_cpus").number_value(), 2);
  EXPECT_EQ(st.fields().at("generated_unix_ns").string_value(), "1700000000000000000");
  const auto& procs = st.fields().at("processes").list_value();
  ASSERT_EQ(procs.values_size(), 2);
  EXPECT_EQ(procs.values(0).struct_value().fields().at("pid").number_value(), 300);
  EXPECT_EQ(procs.values(1).struct_value().fields().at("pid").number_value(), 200);
  // Zero fields are present (a stable schema) and 64-bit integers are strings.
  EXPECT_EQ(procs.values(0).struct_value().fields().at("read_bytes").string_value(), "0");

  // The parts parse back into the daemon's own messages.
  std::string offenders_json;
  ASSERT_TRUE(
      google::protobuf::util::MessageToJsonString(st.fields().at("offenders"), &offenders_json)
          .ok());
  v1::OffenderList offenders;
  ASSERT_TRUE(ParseJson(offenders_json, &offenders, "offenders").ok());
  EXPECT_EQ(offenders.offenders(0).pid(), 100u);
  EXPECT_EQ(offenders.window_seconds(), 30);
}

TEST(JsonTest, StringsAreEscapedAndValidUtf8) {
  const std::string s = JsonString(kHostile);
  EXPECT_TRUE(ValidUtf8(s));
  google::protobuf::Value v;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(s, &v).ok()) << s;
  EXPECT_TRUE(absl::StrContains(v.string_value(), "\x1b]0;pwned"));  // data, not a terminal
  EXPECT_TRUE(absl::StrContains(v.string_value(), "\xEF\xBF\xBD"));  // U+FFFD for \xff
}

TEST(FormatTest, Units) {
  EXPECT_EQ(HumanBytes(0), "0B");
  EXPECT_EQ(HumanBytes(1536), "1.5KiB");
  EXPECT_EQ(HumanBytes(12 << 20), "12.0MiB");
  EXPECT_EQ(HumanDuration(0.0042), "0.004s");
  EXPECT_EQ(HumanDuration(75), "1m15s");
  EXPECT_EQ(HumanDuration(7300), "2h01m");
  EXPECT_EQ(HumanDuration(200000), "2d07h");
  EXPECT_EQ(FormatRate(0.5, "cores"), "0.50 cores");
  EXPECT_EQ(FormatRate(2500, "faults/s"), "2500/s");
  EXPECT_EQ(FormatRate(3, "crashes/min"), "3.0/min");
  EXPECT_EQ(Percent(-1), "-");
  EXPECT_EQ(Cell("abcdef", 4), "abc~");
  EXPECT_EQ(Cell("", 3), "-  ");
}

// ---------------------------------------------------------------------------------------------
// tree

std::vector<uint32_t> Pids(const ProcessTree& t, const std::vector<int>& idx) {
  std::vector<uint32_t> out;
  for (int i : idx) out.push_back(t.nodes[i].process.pid());
  return out;
}

int Find(const ProcessTree& t, uint32_t pid) {
  for (size_t i = 0; i < t.nodes.size(); ++i) {
    if (t.nodes[i].process.pid() == pid) return static_cast<int>(i);
  }
  return -1;
}

TEST(TreeTest, ParentsOrphansAndOffenders) {
  v1::ProcessList l;
  *l.add_processes() = Proc(30, 10, "child");
  *l.add_processes() = Proc(10, 1, "parent");
  *l.add_processes() = Proc(1, 0, "init");
  *l.add_processes() = Proc(20, 10, "child");
  *l.add_processes() = Proc(40, 999, "orphan");  // its parent exited
  v1::OffenderList off;
  off.add_offenders()->set_pid(30);
  off.mutable_offenders(0)->set_resource("cpu");
  off.add_offenders()->set_pid(30);
  off.mutable_offenders(1)->set_resource("page_faults");
  const ProcessTree t = BuildTree(l, off);
  EXPECT_EQ(Pids(t, t.roots), (std::vector<uint32_t>{1, 40}));
  EXPECT_EQ(Pids(t, t.nodes[Find(t, 10)].children), (std::vector<uint32_t>{20, 30}));
  EXPECT_EQ(t.nodes[Find(t, 30)].offenses, (std::vector<std::string>{"cpu", "page_faults"}));

  const std::string out = RenderTree(t, absl::UnixEpoch(), "test", false, Plain());
  EXPECT_TRUE(absl::StrContains(out, "1 init\n")) << out;
  EXPECT_TRUE(absl::StrContains(out, "└─ 10 parent\n")) << out;
  EXPECT_TRUE(absl::StrContains(out, "   ├─ 20 child\n")) << out;
  EXPECT_TRUE(absl::StrContains(out, "   └─ 30 child  ◀ cpu, page_faults offender\n")) << out;
  EXPECT_TRUE(absl::StrContains(out, "  40 orphan\n")) << out;
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
}

TEST(TreeTest, CyclesAndSelfParentsAreBroken) {
  v1::ProcessList l;
  // 5 -> 6 -> 7 -> 5 with equal start times (so the start-time rule cannot help), 8 its own
  // parent, 9 under 7.
  for (uint32_t pid : {5u, 6u, 7u, 8u, 9u}) {
    v1::Process p = Proc(pid, 0, "p");
    p.set_start_time_unix_ns(1);
    *l.add_processes() = p;
  }
  l.mutable_processes(0)->set_ppid(7);
  l.mutable_processes(1)->set_ppid(5);
  l.mutable_processes(2)->set_ppid(6);
  l.mutable_processes(3)->set_ppid(8);
  l.mutable_processes(4)->set_ppid(7);
  const ProcessTree t = BuildTree(l, {});
  EXPECT_EQ(Pids(t, t.roots), (std::vector<uint32_t>{5, 8}));  // cut at the lowest pid
  EXPECT_EQ(Pids(t, t.nodes[Find(t, 5)].children), (std::vector<uint32_t>{6}));
  EXPECT_EQ(Pids(t, t.nodes[Find(t, 7)].children), (std::vector<uint32_t>{9}));
  const std::string out = RenderTree(t, absl::UnixEpoch(), "test", true, Plain());
  EXPECT_EQ(Lines(out).size(), 2u + 5u) << out;  // two header lines, every process once
}

TEST(TreeTest, AReusedPidIsNotTheParent) {
  v1::ProcessList l;
  v1::Process child = Proc(50, 40, "child");
  child.set_start_time_unix_ns(100);
  v1::Process impostor = Proc(40, 1, "newer");  // pid 40 reused after the real parent died
  impostor.set_start_time_unix_ns(200);
  *l.add_processes() = child;
  *l.add_processes() = impostor;
  const ProcessTree t = BuildTree(l, {});
  EXPECT_EQ(Pids(t, t.roots), (std::vector<uint32_t>{40, 50}));
}

TEST(TreeTest, DeepChainsAndFolding) {
  v1::ProcessList l;
  for (uint32_t pid = 1; pid <= 2000; ++pid) *l.add_processes() = Proc(pid, pid - 1, "deep");
  const ProcessTree t = BuildTree(l, {});
  const std::string out = RenderTree(t, absl::UnixEpoch(), "test", false, Plain());
  const std::vector<std::string> lines = Lines(out);
  ASSERT_EQ(lines.size(), 2u + 2000u);
  EXPECT_TRUE(absl::StrContains(lines.back(), "⋯(depth 1999) └─ 2000 deep")) << lines.back();
  EXPECT_LT(lines.back().size(), 250u);  // indentation stops growing
  const google::protobuf::Struct st = ParseStruct(TreeJson(t, absl::UnixEpoch(), "test"));
  const auto& nodes = st.fields().at("nodes").list_value();
  ASSERT_EQ(nodes.values_size(), 2000);
  EXPECT_EQ(nodes.values(1999).struct_value().fields().at("depth").number_value(), 1999);
  EXPECT_EQ(nodes.values(1999).struct_value().fields().at("parent_pid").number_value(), 1999);

  v1::ProcessList wide;
  *wide.add_processes() = Proc(1, 0, "init");
  for (uint32_t pid = 10; pid < 110; ++pid) *wide.add_processes() = Proc(pid, 1, "idle");
  wide.mutable_processes(50)->set_cpu_cores(0.5);  // pid 59: a busy one of the pool
  wide.mutable_processes(50)->set_resident_memory_bytes(1 << 20);
  for (int i = 60; i < 80; ++i) wide.mutable_processes(i)->set_resident_memory_bytes(1 << 20);
  *wide.add_processes() = Proc(200, 1, "other", 0.9);
  for (uint32_t pid = 300; pid < 305; ++pid) *wide.add_processes() = Proc(pid, 1, "few");
  const ProcessTree w = BuildTree(wide, {});
  const std::string folded = RenderTree(w, absl::UnixEpoch(), "test", false, Plain());
  // init, the 3 busiest "idle", the fold, "other", 5 "few" (not more than 5: not folded).
  EXPECT_EQ(Lines(folded).size(), 2u + 1 + 3 + 1 + 1 + 5) << folded;
  EXPECT_TRUE(absl::StrContains(folded, "├─ 59 idle\n")) << folded;  // the busy one stays
  const std::vector<std::string> fl = Lines(folded);
  EXPECT_EQ(fl.back(),
            "  0.00   20.0MiB         0       0B/s  └─ … 97 more idle (--all lists them)")
      << folded;  // last, with the totals of what it hides
  EXPECT_TRUE(absl::StrContains(folded, "200 other")) << folded;
  EXPECT_EQ(Lines(RenderTree(w, absl::UnixEpoch(), "test", true, Plain())).size(), 2u + 107);
}

TEST(TreeTest, JsonListsNodesDepthFirst) {
  v1::ProcessList l;
  *l.add_processes() = Proc(3, 1, "second");
  *l.add_processes() = Proc(1, 0, "init");
  *l.add_processes() = Proc(2, 1, ToValidUtf8(kHostile));  // as the daemon serves it
  *l.add_processes() = Proc(4, 2, "grandchild");
  *l.add_processes() = Proc(9, 77, "orphan");
  v1::OffenderList off;
  off.add_offenders()->set_pid(4);
  off.mutable_offenders(0)->set_resource("block_io");
  const std::string json = TreeJson(BuildTree(l, off), absl::UnixEpoch(), "src");
  EXPECT_TRUE(ValidUtf8(json));
  EXPECT_EQ(json.find('\x1b'), std::string::npos);  // escaped as \u001b
  const google::protobuf::Struct st = ParseStruct(json);
  const auto& nodes = st.fields().at("nodes").list_value();
  ASSERT_EQ(nodes.values_size(), 5);
  std::vector<std::string> order;
  for (const auto& n : nodes.values()) {
    const auto& f = n.struct_value().fields();
    order.push_back(absl::StrCat(f.at("process").struct_value().fields().at("pid").number_value(),
                                 "@", f.at("depth").number_value(), "<",
                                 f.at("parent_pid").number_value()));
  }
  EXPECT_EQ(order, (std::vector<std::string>{"1@0<0", "2@1<1", "4@2<2", "3@1<1", "9@0<0"}));
  const auto& grandchild = nodes.values(2).struct_value().fields();
  ASSERT_EQ(grandchild.at("offender_for").list_value().values_size(), 1);
  EXPECT_EQ(grandchild.at("offender_for").list_value().values(0).string_value(), "block_io");
  EXPECT_EQ(nodes.values(1)
                .struct_value()
                .fields()
                .at("process")
                .struct_value()
                .fields()
                .at("comm")
                .string_value(),
            ToValidUtf8(kHostile));
}

// ---------------------------------------------------------------------------------------------
// events

v1::ExitEvent Exit(uint32_t pid, int64_t start, v1::Outcome outcome = v1::SUCCESS) {
  v1::ExitEvent e;
  e.set_pid(pid);
  e.set_start_time_unix_ns(start);
  e.set_exit_time_unix_ns(start + 1000);
  e.set_comm("c" + std::to_string(pid));
  e.set_outcome(outcome);
  return e;
}

v1::EventList NewestFirst(std::vector<v1::ExitEvent> events) {
  v1::EventList l;
  for (auto& e : events) *l.add_events() = e;
  return l;
}

std::vector<uint32_t> EventPids(const std::vector<v1::ExitEvent>& events) {
  std::vector<uint32_t> out;
  for (const auto& e : events) out.push_back(e.pid());
  return out;
}

TEST(EventFollowerTest, PrintsEachExitOnceOldestFirst) {
  EventFollower f;
  EXPECT_EQ(EventPids(f.Update(NewestFirst({Exit(3, 30), Exit(2, 20), Exit(1, 10)}))),
            (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_FALSE(f.MaybeMissed(3));  // the first reply is not a gap
  // Two new exits; the window slid by two.
  EXPECT_EQ(EventPids(f.Update(NewestFirst({Exit(5, 50), Exit(4, 40), Exit(3, 30)}))),
            (std::vector<uint32_t>{4, 5}));
  EXPECT_FALSE(f.MaybeMissed(3));
  // Nothing new.
  EXPECT_TRUE(f.Update(NewestFirst({Exit(5, 50), Exit(4, 40), Exit(3, 30)})).empty());
  // The same pid again, another incarnation (pid reused): new. A duplicate in one reply: once.
  EXPECT_EQ(EventPids(f.Update(NewestFirst({Exit(3, 60), Exit(3, 60), Exit(5, 50)}))),
            (std::vector<uint32_t>{3}));
  // A full reply of only new events: some may have been missed in between.
  EXPECT_EQ(f.Update(NewestFirst({Exit(9, 90), Exit(8, 80), Exit(7, 70)})).size(), 3u);
  EXPECT_TRUE(f.MaybeMissed(3));
  EXPECT_FALSE(f.MaybeMissed(100));
}

TEST(EventsTest, LinesShowHowItEnded) {
  v1::ExitEvent crash = Exit(4242, 1'700'000'000'000'000'000, v1::CRASHED);
  crash.set_signal(11);
  crash.set_signal_name("SIGSEGV");
  crash.set_core_dumped(true);
  crash.set_lifetime_seconds(75);
  crash.set_comm(kHostile);
  v1::ExitEvent fail = Exit(7, 1'700'000'000'000'000'000, v1::FAILURE);
  fail.set_exit_code(3);
  const std::string out = RenderEvents({crash, fail}, Plain());
  const std::vector<std::string> lines = Lines(out);
  ASSERT_EQ(lines.size(), 3u) << out;
  EXPECT_TRUE(absl::StartsWith(lines[0], "TIME")) << lines[0];
  EXPECT_TRUE(absl::StartsWith(lines[1], "11-14 22:13:20    4242 ")) << lines[1];
  EXPECT_TRUE(absl::StrContains(lines[1], " crashed    SIGSEGV  yes  no     -     1m15s"))
      << lines[1];
  EXPECT_TRUE(absl::StrContains(lines[2], " failure    -        no   no     3 ")) << lines[2];
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
  EXPECT_EQ(lines[1].size(), lines[2].size());
  EXPECT_TRUE(IsFailure(crash));
  EXPECT_FALSE(IsFailure(Exit(1, 1)));
  EXPECT_EQ(RenderEvents({}, Plain()), "no exits recorded yet\n");
}

// ---------------------------------------------------------------------------------------------
// status

TEST(StatusTest, ShowsCostsDropsAndFill) {
  StatusData d;
  d.source = "127.0.0.1:9750";
  d.healthz_code = 200;
  d.healthz_body = "ok\n";
  d.readyz_code = 503;
  d.readyz_body = "not sampled yet\n";
  d.status.set_version("0.1.0");
  d.status.set_uptime_seconds(3725);
  auto* p = d.status.add_programs();
  p->set_name("ps_sched_switch");
  p->set_hook("sched_switch");
  p->set_attach("tp_btf");
  (*d.status.mutable_kernel_stats())["drop_ringbuf"] = 3;
  (*d.status.mutable_kernel_stats())["drop_io_map"] = 0;
  (*d.status.mutable_kernel_stats())["exits"] = 10;
  auto* m = d.status.add_maps();
  m->set_name("proc_io");
  m->set_entries(31000);
  m->set_max_entries(32768);
  d.status.add_degraded_hooks("block_getrq");
  const std::string out = RenderStatus(d, Plain());
  EXPECT_TRUE(absl::StrContains(out, "procscoped 0.1.0 at 127.0.0.1:9750")) << out;
  EXPECT_TRUE(absl::StrContains(out, "ready      no       (/readyz: 503 not sampled yet)")) << out;
  EXPECT_TRUE(absl::StrContains(out, "uptime     1h02m")) << out;
  EXPECT_TRUE(absl::StrContains(out, "without --bpf_stats")) << out;
  EXPECT_TRUE(absl::StrContains(out, "DROPS  drop_ringbuf 3\n")) << out;
  EXPECT_TRUE(absl::StrContains(out, "94.6%")) << out;
  EXPECT_TRUE(absl::StrContains(out, "degraded   block_getrq")) << out;
  p->set_ns_per_run(42);
  EXPECT_FALSE(absl::StrContains(RenderStatus(d, Plain()), "without --bpf_stats"));

  const google::protobuf::Struct st = ParseStruct(StatusJson(d));
  EXPECT_EQ(st.fields().at("readyz").struct_value().fields().at("code").number_value(), 503);
  EXPECT_EQ(st.fields().at("healthz").struct_value().fields().at("body").string_value(), "ok");
  EXPECT_EQ(st.fields().at("status").struct_value().fields().at("version").string_value(), "0.1.0");
}

// ---------------------------------------------------------------------------------------------
// the command loops (cli_commands.h), driven with canned replies

// Pure logic: a fake CommandIo with canned JSON replies, a fake clock, scripted keys and a
// captured stdout/stderr. The loops' own decisions are under test here; the real HTTP client is
// covered by HttpClientTest above, the real terminal and daemon by integration.cli.
class FakeIo : public CommandIo {
 public:
  // Replies to GET `path`, in order; the last one repeats.
  void Reply(const std::string& path, absl::StatusOr<HttpReply> r) {
    replies_[path].push_back(std::move(r));
  }
  void Json(const std::string& path, const google::protobuf::Message& m) {
    Reply(path, HttpReply{200, MessageJson(m)});
  }
  int Gets(const std::string& path) const {
    return static_cast<int>(std::count(gets_.begin(), gets_.end(), path));
  }

  absl::StatusOr<HttpReply> Get(absl::string_view path) override {
    gets_.emplace_back(path);
    auto it = replies_.find(std::string(path));
    if (it == replies_.end()) return HttpReply{404, "no canned reply"};
    absl::StatusOr<HttpReply> r = it->second.front();
    if (it->second.size() > 1) it->second.pop_front();
    return r;
  }
  absl::Time Now() override { return now; }
  void Nap(absl::Duration d) override {
    now += d;
    if (on_nap) on_nap(++naps);
  }
  void EnterWatchScreen() override {
    ++screens;
    in_screen = true;
  }
  void LeaveWatchScreen() override { in_screen = false; }
  std::optional<char> WaitKey(absl::Duration d) override {
    now += d;
    ++waits;
    return key_at ? key_at(waits) : std::nullopt;
  }
  TermSize Size() override { return {120, 40}; }
  bool Out(absl::string_view s) override {
    // From the fail_writes_from-th write on, stdout is gone (a closed pipe).
    if (fail_writes_from > 0 && ++writes >= fail_writes_from) return false;
    out.append(s.data(), s.size());
    return true;
  }
  void Err(absl::string_view line) override { absl::StrAppend(&err, line, "\n"); }
  bool Stopped() override { return stopped; }
  void Stop() override { stopped = true; }
  absl::StatusOr<TopData> Standalone(absl::Duration d) override {
    standalone_for = d;
    return Busy();
  }

  absl::Time now = absl::FromUnixSeconds(1700000000);
  std::function<void(int)> on_nap;                 // called with the nap's number (1, 2, ...)
  std::function<std::optional<char>(int)> key_at;  // the key of the n-th WaitKey
  int naps = 0, waits = 0, screens = 0, writes = 0, fail_writes_from = 0;
  bool in_screen = false, stopped = false;
  absl::Duration standalone_for;
  std::string out, err;

 private:
  std::map<std::string, std::deque<absl::StatusOr<HttpReply>>> replies_;
  std::vector<std::string> gets_;
};

Options OptionsFor(Command c, const FlagValues& v, const std::set<std::string>& given) {
  absl::StatusOr<Options> o = MakeOptions(c, v, given);
  EXPECT_TRUE(o.ok()) << o.status();
  return o.ok() ? *o : Options{};
}

size_t Count(absl::string_view text, absl::string_view what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != absl::string_view::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

constexpr char kEventsPath[] = "/api/v1/events?limit=200";

TEST(FollowTest, PrintsEachNewEventOnceAndNotTheOldOnesAgain) {
  FlagValues v;
  v.follow = true;
  v.limit = 2;
  v.interval = absl::Seconds(1);
  const Options o = OptionsFor(Command::kEvents, v, {"follow", "limit", "interval"});
  FakeIo io;
  io.Json(kEventsPath, NewestFirst({Exit(103, 30), Exit(102, 20), Exit(101, 10)}));
  io.Json(kEventsPath, NewestFirst({Exit(104, 40), Exit(103, 30), Exit(102, 20), Exit(101, 10)}));
  io.Json(kEventsPath, NewestFirst({Exit(104, 40), Exit(103, 30), Exit(102, 20)}));  // nothing new
  io.Reply(kEventsPath, absl::UnavailableError("cannot reach procscoped at 127.0.0.1:9750"));
  io.Reply(kEventsPath, absl::UnavailableError("cannot reach procscoped at 127.0.0.1:9750"));
  io.Json(kEventsPath, NewestFirst({Exit(105, 50), Exit(104, 40), Exit(103, 30)}));
  io.on_nap = [&](int n) {
    if (n == 6) io.Stop();  // Ctrl-C during the sixth wait
  };
  EXPECT_EQ(RunEvents(o, Plain(), io), 0);

  // The last --limit of the first reply, oldest first; then each new one once, in order.
  EXPECT_EQ(Count(io.out, "c101"), 0u) << io.out;
  for (const char* comm : {"c102", "c103", "c104", "c105"}) {
    EXPECT_EQ(Count(io.out, comm), 1u) << comm << " in\n" << io.out;
  }
  EXPECT_LT(io.out.find("c102"), io.out.find("c103"));
  EXPECT_LT(io.out.find("c103"), io.out.find("c104"));
  EXPECT_LT(io.out.find("c104"), io.out.find("c105"));
  EXPECT_EQ(Count(io.out, "COMM"), 1u) << io.out;  // one header
  EXPECT_EQ(Lines(io.out).size(), 5u) << io.out;
  // Polled every --interval until stopped; one line when the daemon went away, one when back.
  EXPECT_EQ(io.Gets(kEventsPath), 6);
  EXPECT_EQ(io.now, absl::FromUnixSeconds(1700000000) + absl::Seconds(6));
  EXPECT_EQ(Count(io.err, "cannot reach procscoped at 127.0.0.1:9750; retrying every 1s"), 1u)
      << io.err;
  EXPECT_EQ(Count(io.err, "reconnected to 127.0.0.1:9750"), 1u) << io.err;
  EXPECT_EQ(Lines(io.err).size(), 2u) << io.err;
}

TEST(FollowTest, FailedOnlyAsJsonAndStopsWhenStdoutCloses) {
  FlagValues v;
  v.follow = true;
  v.failed = true;
  v.json = true;
  const Options o = OptionsFor(Command::kEvents, v, {"follow", "failed", "json"});
  const std::string path = absl::StrCat(kEventsPath, "&failed=true");
  FakeIo io;
  io.Json(path, NewestFirst({Exit(201, 10, v1::CRASHED)}));
  // The daemon filters, but an older one may not: a success is never printed with --failed.
  io.Json(path, NewestFirst({Exit(203, 30, v1::SUCCESS), Exit(202, 20, v1::OOM_KILLED),
                             Exit(201, 10, v1::CRASHED)}));
  io.on_nap = [&](int n) {
    if (n == 3) io.Stop();
  };
  EXPECT_EQ(RunEvents(o, Plain(), io), 0);
  const std::vector<std::string> lines = Lines(io.out);
  ASSERT_EQ(lines.size(), 2u) << io.out;
  for (const auto& [line, pid] : {std::pair{lines[0], 201}, {lines[1], 202}}) {
    v1::ExitEvent e;
    ASSERT_TRUE(ParseJson(line, &e, "event").ok()) << line;
    EXPECT_EQ(e.pid(), static_cast<uint32_t>(pid));
  }
  EXPECT_EQ(io.Gets(path), 3);

  // stdout gone (a closed pipe) at the second event: the loop ends without another poll.
  FakeIo closed;
  closed.Json(path, NewestFirst({Exit(202, 20, v1::CRASHED), Exit(201, 10, v1::CRASHED)}));
  closed.fail_writes_from = 2;
  closed.on_nap = [&](int n) {
    if (n == 50) closed.Stop();  // a safety net: the test fails below rather than hang
  };
  EXPECT_EQ(RunEvents(o, Plain(), closed), 0);
  EXPECT_EQ(Lines(closed.out).size(), 1u) << closed.out;
  EXPECT_EQ(closed.Gets(path), 1);
  EXPECT_EQ(closed.naps, 0);
}

TEST(FollowTest, UnreachableAtStartIsOneLineWithTheHint) {
  FlagValues v;
  v.follow = true;
  const Options o = OptionsFor(Command::kEvents, v, {"follow"});
  FakeIo io;
  io.Reply(kEventsPath, absl::UnavailableError("cannot reach procscoped at 127.0.0.1:9750"));
  EXPECT_EQ(RunEvents(o, Plain(), io), 1);
  EXPECT_EQ(io.err,
            "procscope: cannot reach procscoped at 127.0.0.1:9750; is it running? start it with "
            "scripts/run.sh (or try procscope top --standalone)\n");
  EXPECT_EQ(io.out, "");
  EXPECT_EQ(io.naps, 0);
}

void ServeTop(FakeIo& io, const TopData& d) {
  io.Json("/api/v1/offenders", d.offenders);
  io.Json("/api/v1/processes", d.processes);
}

TEST(WatchTest, RefreshesEveryIntervalUntilQ) {
  FlagValues v;
  v.watch = true;
  const Options o = OptionsFor(Command::kTop, v, {"watch"});
  FakeIo io;
  ServeTop(io, Busy());
  io.key_at = [](int n) -> std::optional<char> {
    if (n == 3) return 'q';
    return std::nullopt;
  };
  EXPECT_EQ(RunTop(o, Plain(), io), 0);
  EXPECT_EQ(Count(io.out, "\x1b[H"), 3u);  // three frames
  EXPECT_EQ(Count(io.out, "q quits, any other key refreshes; every 2s, sorted by cpu"), 3u);
  EXPECT_EQ(io.Gets("/api/v1/offenders"), 3);  // one fetch per frame, none after q
  EXPECT_EQ(io.Gets("/api/v1/processes"), 3);
  EXPECT_TRUE(absl::StrContains(io.out, "hog")) << io.out;
  EXPECT_EQ(io.screens, 1);
  EXPECT_FALSE(io.in_screen);  // left on the way out
  EXPECT_EQ(io.err, "");
}

TEST(WatchTest, StopsOnCtrlCAndShowsAFailedRefreshThenRecovers) {
  FlagValues v;
  v.watch = true;
  v.interval = absl::Seconds(5);
  const Options o = OptionsFor(Command::kTop, v, {"watch", "interval"});
  FakeIo io;
  const TopData d = Busy();
  io.Json("/api/v1/offenders", d.offenders);
  io.Reply("/api/v1/offenders",
           absl::UnavailableError("cannot reach procscoped at 127.0.0.1:9750"));
  io.Json("/api/v1/offenders", d.offenders);
  io.Json("/api/v1/processes", d.processes);
  std::vector<std::string> frames;
  io.key_at = [&](int n) -> std::optional<char> {
    frames.push_back(io.out);
    io.out.clear();
    if (n == 3) io.Stop();  // Ctrl-C while waiting
    return std::nullopt;
  };
  EXPECT_EQ(RunTop(o, Plain(), io), 0);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_TRUE(absl::StrContains(frames[0], "hog")) << frames[0];
  EXPECT_TRUE(absl::StrContains(frames[1], "cannot reach procscoped at 127.0.0.1:9750"))
      << frames[1];
  EXPECT_TRUE(absl::StrContains(frames[1], "retrying every 5s")) << frames[1];
  EXPECT_FALSE(absl::StrContains(frames[1], "hog")) << frames[1];
  EXPECT_TRUE(absl::StrContains(frames[2], "hog")) << frames[2];
  EXPECT_EQ(io.Gets("/api/v1/offenders"), 3);  // no fetch after the stop
  EXPECT_EQ(io.out, "");
  EXPECT_FALSE(io.in_screen);
}

TEST(WatchTest, UnreachableAtStartIsAnErrorNotAScreen) {
  FlagValues v;
  v.watch = true;
  const Options o = OptionsFor(Command::kTop, v, {"watch"});
  FakeIo io;
  io.Reply("/api/v1/offenders",
           absl::UnavailableError("cannot reach procscoped at 127.0.0.1:9750"));
  EXPECT_EQ(RunTop(o, Plain(), io), 1);
  EXPECT_TRUE(absl::StrContains(io.err, "is it running?")) << io.err;
  EXPECT_TRUE(absl::StrContains(io.err, "or use --standalone")) << io.err;
  EXPECT_EQ(io.screens, 0);
  EXPECT_EQ(io.out, "");
}

TEST(CommandsTest, TopStandaloneTreeAndStatus) {
  // A named default, not FlagValues{} temporaries: GCC 12 at -O3 (build.release) warns that
  // their strings "may be used uninitialized" (a false positive, and -Werror).
  const FlagValues defaults;
  FlagValues v;
  v.standalone = true;
  v.duration = absl::Seconds(7);
  FakeIo io;
  EXPECT_EQ(RunCommand(OptionsFor(Command::kTop, v, {"standalone", "duration"}), Plain(), io), 0);
  EXPECT_EQ(io.standalone_for, absl::Seconds(7));
  EXPECT_TRUE(absl::StrContains(io.out, "hog")) << io.out;

  FakeIo tree;
  ServeTop(tree, Busy());
  EXPECT_EQ(RunCommand(OptionsFor(Command::kTree, defaults, {}), Plain(), tree), 0);
  EXPECT_TRUE(absl::StrContains(tree.out, "writer")) << tree.out;

  // A 404 from the API is an error naming the endpoint and the path.
  FakeIo missing;
  EXPECT_EQ(RunCommand(OptionsFor(Command::kTree, defaults, {}), Plain(), missing), 1);
  EXPECT_TRUE(
      absl::StrContains(missing.err, "127.0.0.1:9750 answered 404 to GET /api/v1/offenders"))
      << missing.err;

  // status: unhealthy is exit 1; something that is not procscoped says so.
  FakeIo status;
  status.Reply("/healthz", HttpReply{503, "not ok"});
  status.Reply("/readyz", HttpReply{503, "not sampled yet"});
  v1::DaemonStatus st;
  st.set_version("0.1.0");
  status.Json("/api/v1/status", st);
  EXPECT_EQ(RunCommand(OptionsFor(Command::kStatus, defaults, {}), Plain(), status), 1);
  EXPECT_TRUE(absl::StrContains(status.out, "procscoped 0.1.0 at 127.0.0.1:9750")) << status.out;
  FakeIo other;
  other.Reply("/healthz", HttpReply{302, ""});
  EXPECT_EQ(RunCommand(OptionsFor(Command::kStatus, defaults, {}), Plain(), other), 1);
  EXPECT_EQ(other.err,
            "procscope: 127.0.0.1:9750 answered 302 to GET /healthz (is it procscoped?)\n");
}

}  // namespace
}  // namespace procscope::cli
