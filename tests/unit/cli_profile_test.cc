// SPDX-License-Identifier: Apache-2.0
// `procscope profile`: its options, the request it makes, and what it prints of a real pprof
// profile (encoded by the daemon's own encoder) for each output.
#include <map>
#include <string>

#include "absl/strings/str_split.h"
#include "cli_commands.h"
#include "cli_profile.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pprof.h"

namespace procscope::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

Frame Fn(const std::string& name) {
  Frame f;
  f.function = name;
  f.module = "/usr/bin/app";
  f.offset = 0x1000 + name.size();
  return f;
}

// A hostile comm and function name, the known function hot.
std::string Pprof(bool offcpu = false) {
  ProfileStore store;
  store.set_profile_hz(19);
  ps_key k{};
  k.tgid = 4242;
  k.start_ns = 1;
  ProfileProcess m;
  m.key = k;
  m.comm = "spin\x1b[31m";
  m.group = "g";
  const absl::Time t = absl::FromUnixSeconds(1700000000);
  store.SetProcess(m, t);
  SymbolizedStack hot;
  hot.key = k;
  hot.kind = offcpu ? StackKind::kOffCpuBlocked : StackKind::kOnCpu;
  hot.value = offcpu ? 3000000000 : 90;
  hot.user = {Fn("spin_known"), Fn("main")};
  SymbolizedStack cold = hot;
  cold.value = offcpu ? 1000000000 : 10;
  cold.user = {Fn("evil\x1b]0;x\x07"), Fn("main")};
  store.Add(t, {hot, cold});
  ProfileQuery q;
  if (offcpu) q.kinds = {StackKind::kOffCpuBlocked};
  return EncodePprof(store.Query(q, t), offcpu ? PprofKind::kOffCpu : PprofKind::kOnCpu);
}

class ProfileIo : public CommandIo {
 public:
  std::map<std::string, absl::StatusOr<HttpReply>> replies;
  std::vector<std::string> gets;
  std::string out, err;
  absl::Time now = absl::FromUnixSeconds(1700000000);
  absl::Duration napped;
  std::map<std::string, std::string> files;
  std::string standalone_path;

  absl::StatusOr<HttpReply> Get(absl::string_view path) override {
    gets.emplace_back(path);
    auto it = replies.find(std::string(path));
    if (it == replies.end()) return HttpReply{404, "no canned reply"};
    return it->second;
  }
  absl::Time Now() override { return now; }
  void Nap(absl::Duration d) override {
    now += d;
    napped += d;
  }
  void EnterWatchScreen() override {}
  void LeaveWatchScreen() override {}
  std::optional<char> WaitKey(absl::Duration) override { return std::nullopt; }
  TermSize Size() override { return {120, 40}; }
  bool Out(absl::string_view s) override {
    out.append(s.data(), s.size());
    return true;
  }
  void Err(absl::string_view line) override { absl::StrAppend(&err, line, "\n"); }
  bool Stopped() override { return false; }
  void Stop() override {}
  absl::StatusOr<TopData> Standalone(absl::Duration) override { return TopData{}; }
  absl::StatusOr<std::string> StandaloneProfile(absl::Duration, absl::string_view path) override {
    standalone_path = std::string(path);
    return Pprof();
  }
  absl::Status WriteFile(const std::string& file, absl::string_view data) override {
    files[file] = std::string(data);
    return absl::OkStatus();
  }
};

absl::StatusOr<Options> Make(FlagValues v, std::set<std::string> given) {
  return MakeOptions(Command::kProfile, v, given);
}

TEST(ProfileOptions, Checks) {
  FlagValues v;
  EXPECT_TRUE(Make(v, {}).ok());
  EXPECT_EQ(ParseCommand("profile"), Command::kProfile);
  EXPECT_TRUE(
      CheckFlagsForCommand(Command::kProfile, {"pid", "duration", "offcpu", "folded"}).ok());
  EXPECT_FALSE(CheckFlagsForCommand(Command::kTop, {"pid"}).ok());
  FlagValues b = v;
  b.pid = 5;
  b.group = "x";
  EXPECT_THAT(Make(b, {"pid", "group"}).status().message(), HasSubstr("do not go together"));
  b = v;
  b.folded = true;
  b.json = true;
  EXPECT_THAT(Make(b, {"folded", "json"}).status().message(), HasSubstr("one output"));
  b = v;
  b.duration = absl::Minutes(11);
  EXPECT_THAT(Make(b, {"duration"}).status().message(), HasSubstr("--duration=11m"));
  b = v;
  b.pid = -3;
  EXPECT_THAT(Make(b, {"pid"}).status().message(), HasSubstr("--pid=-3"));
  b = v;
  b.standalone = true;
  EXPECT_THAT(Make(b, {"standalone", "endpoint"}).status().message(), HasSubstr("no effect"));
  b = v;
  b.duration = absl::Seconds(2);  // fine for profile (not for top --standalone)
  EXPECT_TRUE(Make(b, {"duration"}).ok());
}

TEST(ProfilePath, Query) {
  FlagValues v;
  v.pid = 77;
  Options o = *Make(v, {"pid"});
  EXPECT_EQ(ProfilePath(o, absl::Seconds(10)), "/debug/pprof/profile?seconds=10&pid=77");
  v.pid = 0;
  v.group = "a b&c";
  v.offcpu = true;
  o = *Make(v, {"group", "offcpu"});
  EXPECT_EQ(ProfilePath(o, absl::Milliseconds(2500)),
            "/debug/pprof/offcpu?seconds=3&group=a%20b%26c");
}

TEST(RunProfile, WaitsThenPrintsTopFunctionsEscaped) {
  FlagValues v;
  v.pid = 4242;
  v.duration = absl::Seconds(5);
  Options o = *Make(v, {"pid", "duration"});
  ProfileIo io;
  io.replies["/healthz"] = HttpReply{200, "ok\n"};
  io.replies["/debug/pprof/profile?seconds=5&pid=4242"] = HttpReply{200, Pprof()};
  ASSERT_EQ(RunProfile(o, RenderOptions{}, io), 0) << io.err;
  EXPECT_EQ(io.napped, absl::Seconds(5));
  std::vector<std::string> lines = absl::StrSplit(io.out, '\n');
  ASSERT_GE(lines.size(), 4u) << io.out;
  EXPECT_THAT(lines[0], HasSubstr("100 samples at 19 Hz"));
  EXPECT_THAT(lines[1], HasSubstr("function"));
  EXPECT_THAT(lines[2], HasSubstr("90.0%"));
  EXPECT_THAT(lines[2], HasSubstr("spin_known"));
  EXPECT_THAT(io.out, HasSubstr("evil\\x1b]0;x\\x07"));
  EXPECT_THAT(io.out, Not(HasSubstr("\x1b")));
}

TEST(RunProfile, FoldedJsonPprofAndErrors) {
  FlagValues v;
  v.duration = absl::Seconds(3);
  v.folded = true;
  ProfileIo io;
  io.replies["/healthz"] = HttpReply{200, "ok\n"};
  io.replies["/debug/pprof/profile?seconds=3"] = HttpReply{200, Pprof()};
  ASSERT_EQ(RunProfile(*Make(v, {"folded", "duration"}), RenderOptions{}, io), 0) << io.err;
  EXPECT_THAT(io.out, HasSubstr("spin_[31m;main;spin_known 90\n"));

  io.out.clear();
  v.folded = false;
  v.json = true;
  ASSERT_EQ(RunProfile(*Make(v, {"json", "duration"}), RenderOptions{}, io), 0);
  EXPECT_THAT(io.out, StartsWith("{\"kind\":\"cpu\""));
  EXPECT_THAT(io.out, HasSubstr("\"name\":\"spin_known\",\"self\":\"90\""));

  io.out.clear();
  v.json = false;
  v.pprof_file = "/tmp/x.pb.gz";
  ASSERT_EQ(RunProfile(*Make(v, {"pprof", "duration"}), RenderOptions{}, io), 0);
  EXPECT_EQ(io.files["/tmp/x.pb.gz"], Pprof());
  EXPECT_THAT(io.err, HasSubstr("go tool pprof -top /tmp/x.pb.gz"));

  ProfileIo bad;
  bad.replies["/healthz"] = HttpReply{200, "ok\n"};
  bad.replies["/debug/pprof/profile?seconds=3"] = HttpReply{400, "seconds=3: must be ...\n"};
  v.pprof_file.clear();
  EXPECT_EQ(RunProfile(*Make(v, {"duration"}), RenderOptions{}, bad), 1);
  EXPECT_THAT(bad.err, HasSubstr("400"));
  ProfileIo down;
  down.replies["/healthz"] = absl::UnavailableError("cannot reach procscoped at 127.0.0.1:9750");
  EXPECT_EQ(RunProfile(*Make(v, {"duration"}), RenderOptions{}, down), 1);
  EXPECT_EQ(down.napped, absl::ZeroDuration());  // no waiting for a daemon that is not there
  EXPECT_THAT(down.err, HasSubstr("--standalone"));
}

TEST(RunProfile, Standalone) {
  FlagValues v;
  v.standalone = true;
  v.pid = 9;
  ProfileIo io;
  ASSERT_EQ(RunProfile(*Make(v, {"standalone", "pid"}), RenderOptions{}, io), 0) << io.err;
  EXPECT_EQ(io.standalone_path, "/debug/pprof/profile?seconds=10&pid=9");
  EXPECT_TRUE(io.gets.empty());
  EXPECT_THAT(io.out, HasSubstr("spin_known"));
}

TEST(RunProfile, OffCpuInSeconds) {
  FlagValues v;
  v.offcpu = true;
  v.duration = absl::Seconds(2);
  ProfileIo io;
  io.replies["/healthz"] = HttpReply{200, "ok\n"};
  io.replies["/debug/pprof/offcpu?seconds=2"] = HttpReply{200, Pprof(/*offcpu=*/true)};
  ASSERT_EQ(RunProfile(*Make(v, {"offcpu", "duration"}), RenderOptions{}, io), 0) << io.err;
  EXPECT_THAT(io.out, HasSubstr("4.000s off the CPU"));
  EXPECT_THAT(io.out, HasSubstr("3.000s"));
}

}  // namespace
}  // namespace procscope::cli
