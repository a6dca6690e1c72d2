// SPDX-License-Identifier: Apache-2.0
// Tier 1: exit classification, the kernel event to public record mapping, and the in-memory store
// (daemon/exits.h).
#include "exits.h"

#include <signal.h>
#include <string.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "procscope.h"
#include "procscope.pb.h"

namespace procscope {
namespace {

using ::testing::ElementsAre;

// wait(2) statuses, as the kernel's exit_code holds them.
uint32_t Exited(int code) { return static_cast<uint32_t>(code) << 8; }
uint32_t Killed(int sig, bool core = false) {
  return static_cast<uint32_t>(sig) | (core ? 0x80u : 0u);
}

TEST(ClassifyExitTest, NormalExits) {
  EXPECT_EQ(ClassifyExit(Exited(0), false), v1::SUCCESS);
  EXPECT_EQ(ClassifyExit(Exited(1), false), v1::FAILURE);
  EXPECT_EQ(ClassifyExit(Exited(255), false), v1::FAILURE);
}

TEST(ClassifyExitTest, KillsThatAreNotCrashes) {
  EXPECT_EQ(ClassifyExit(Killed(SIGKILL), false), v1::SIGNALED);
  EXPECT_EQ(ClassifyExit(Killed(SIGTERM), false), v1::SIGNALED);
  EXPECT_EQ(ClassifyExit(Killed(SIGINT), false), v1::SIGNALED);
  EXPECT_EQ(ClassifyExit(Killed(SIGPIPE), false), v1::SIGNALED);
  EXPECT_EQ(ClassifyExit(Killed(SIGQUIT, /*core=*/true), false), v1::SIGNALED);
}

TEST(ClassifyExitTest, EveryCrashSignal) {
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS, SIGTRAP}) {
    EXPECT_EQ(ClassifyExit(Killed(sig), false), v1::CRASHED) << sig;
    EXPECT_EQ(ClassifyExit(Killed(sig, /*core=*/true), false), v1::CRASHED) << sig;
  }
}

TEST(ClassifyExitTest, OomKillerWinsWhateverTheStatus) {
  EXPECT_EQ(ClassifyExit(Killed(SIGKILL), true), v1::OOM_KILLED);
  // The victim may also have been on its way out by itself.
  EXPECT_EQ(ClassifyExit(Exited(0), true), v1::OOM_KILLED);
  EXPECT_EQ(ClassifyExit(Killed(SIGSEGV), true), v1::OOM_KILLED);
}

TEST(OutcomeNameTest, LabelValues) {
  EXPECT_STREQ(OutcomeName(v1::OUTCOME_UNSPECIFIED), "unspecified");
  EXPECT_STREQ(OutcomeName(v1::SUCCESS), "success");
  EXPECT_STREQ(OutcomeName(v1::FAILURE), "failure");
  EXPECT_STREQ(OutcomeName(v1::SIGNALED), "signaled");
  EXPECT_STREQ(OutcomeName(v1::CRASHED), "crashed");
  EXPECT_STREQ(OutcomeName(v1::OOM_KILLED), "oom_killed");
}

// An event with every field distinct, so that a field read from the wrong place shows.
ps_exit_event Event() {
  ps_exit_event e;
  memset(&e, 0, sizeof(e));
  e.key.tgid = 4242;
  e.key.start_ns = 5'000'000'000;
  e.ppid = 4141;
  e.uid = 1001;
  e.cgroup_id = 0xc0ffee;
  e.exit_ns = 7'500'000'000;
  e.exit_code = Exited(3);
  e.rss_max_bytes = 123 * 4096;
  memcpy(e.comm, "worker", 6);
  e.c.cpu_ns = 1'250'000'000;
  e.c.runq_ns = 250'000'000;
  e.c.vol_cs = 11;
  e.c.invol_cs = 12;
  e.c.min_flt = 13;
  e.c.maj_flt = 14;
  e.io.read_bytes = 15 * 512;
  e.io.write_bytes = 16 * 512;
  e.io.dirtied_bytes = 17 * 4096;
  return e;
}

ExitContext Context() {
  ExitContext ctx;
  ctx.group = "web";
  ctx.cgroup.container_id = std::string(64, 'a');
  ctx.cgroup.runtime = "containerd";
  ctx.cgroup.pod_uid = "0e1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8";
  ctx.cgroup.systemd_unit = "web.service";
  ctx.boot_to_unix = absl::Seconds(1'700'000'000);
  return ctx;
}

TEST(MakeExitEventTest, MapsEveryField) {
  const v1::ExitEvent out = MakeExitEvent(Event(), Context());
  EXPECT_EQ(out.pid(), 4242u);
  EXPECT_EQ(out.ppid(), 4141u);
  EXPECT_EQ(out.comm(), "worker");
  EXPECT_EQ(out.group(), "web");
  EXPECT_EQ(out.container(), std::string(64, 'a'));
  EXPECT_EQ(out.pod_uid(), "0e1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8");
  EXPECT_EQ(out.systemd_unit(), "web.service");
  EXPECT_EQ(out.uid(), 1001u);
  EXPECT_EQ(out.outcome(), v1::FAILURE);
  EXPECT_EQ(out.exit_code(), 3);
  EXPECT_EQ(out.signal(), 0);
  EXPECT_EQ(out.signal_name(), "");
  EXPECT_FALSE(out.core_dumped());
  EXPECT_FALSE(out.oom_killed());
  EXPECT_DOUBLE_EQ(out.cpu_seconds(), 1.25);
  EXPECT_DOUBLE_EQ(out.runqueue_wait_seconds(), 0.25);
  EXPECT_EQ(out.voluntary_context_switches(), 11u);
  EXPECT_EQ(out.involuntary_context_switches(), 12u);
  EXPECT_EQ(out.minor_faults(), 13u);
  EXPECT_EQ(out.major_faults(), 14u);
  EXPECT_EQ(out.read_bytes(), 15u * 512);
  EXPECT_EQ(out.write_bytes(), 16u * 512);
  EXPECT_EQ(out.peak_resident_memory_bytes(), 123u * 4096);
  EXPECT_EQ(out.cgroup_id(), 0xc0ffeeu);
}

TEST(MakeExitEventTest, BootTimeBecomesUnixTime) {
  const v1::ExitEvent out = MakeExitEvent(Event(), Context());
  EXPECT_EQ(out.start_time_unix_ns(), 1'700'000'005'000'000'000);
  EXPECT_EQ(out.exit_time_unix_ns(), 1'700'000'007'500'000'000);
  EXPECT_DOUBLE_EQ(out.lifetime_seconds(), 2.5);
}

TEST(MakeExitEventTest, ExitBeforeStartIsNoNegativeLifetime) {
  ps_exit_event e = Event();
  e.exit_ns = e.key.start_ns - 1000;
  EXPECT_EQ(MakeExitEvent(e, Context()).lifetime_seconds(), 0);
}

TEST(MakeExitEventTest, CrashWithCore) {
  ps_exit_event e = Event();
  e.exit_code = Killed(SIGABRT, /*core=*/true);
  const v1::ExitEvent out = MakeExitEvent(e, Context());
  EXPECT_EQ(out.outcome(), v1::CRASHED);
  EXPECT_EQ(out.signal(), SIGABRT);
  EXPECT_EQ(out.signal_name(), "SIGABRT");
  EXPECT_TRUE(out.core_dumped());
  EXPECT_EQ(out.exit_code(), 0);
  EXPECT_FALSE(out.oom_killed());
}

TEST(MakeExitEventTest, OomKill) {
  ps_exit_event e = Event();
  e.exit_code = Killed(SIGKILL);
  e.flags = PS_EXIT_OOM_KILLED;
  const v1::ExitEvent out = MakeExitEvent(e, Context());
  EXPECT_EQ(out.outcome(), v1::OOM_KILLED);
  EXPECT_TRUE(out.oom_killed());
  EXPECT_EQ(out.signal(), SIGKILL);
  EXPECT_EQ(out.signal_name(), "SIGKILL");
  EXPECT_FALSE(out.core_dumped());
}

TEST(MakeExitEventTest, HostileCommBecomesValidUtf8) {
  ps_exit_event e = Event();
  memset(e.comm, 0, sizeof(e.comm));
  memcpy(e.comm, "a\"b\nc\xff\\d", 8);
  const v1::ExitEvent out = MakeExitEvent(e, Context());
  EXPECT_EQ(out.comm(), "a\"b\nc\xEF\xBF\xBD\\d");
  // proto3 refuses to parse a string field that is not UTF-8.
  v1::ExitEvent back;
  ASSERT_TRUE(back.ParseFromString(out.SerializeAsString()));
  EXPECT_EQ(back.comm(), out.comm());
}

// --group_by=comm makes the group the raw comm, and cgroup directory names are anyone's in a
// delegated subtree: every string of the record must come out valid UTF-8.
TEST(MakeExitEventTest, EveryStringFieldBecomesValidUtf8) {
  ps_exit_event e = Event();
  memset(e.comm, 0, sizeof(e.comm));
  memcpy(e.comm, "x\xff", 2);
  ExitContext ctx = Context();
  ctx.group = "x\xff";
  ctx.cgroup.container_id = "c\xc3";
  ctx.cgroup.pod_uid = "p\xed\xa0\x80";           // a UTF-16 surrogate
  ctx.cgroup.systemd_unit = "u\xc0\xaf.service";  // overlong
  const v1::ExitEvent out = MakeExitEvent(e, ctx);
  EXPECT_TRUE(StringsAreValidUtf8(out));
  EXPECT_EQ(out.comm(), "x\xEF\xBF\xBD");
  EXPECT_EQ(out.group(), "x\xEF\xBF\xBD");
  v1::ExitEvent back;
  ASSERT_TRUE(back.ParseFromString(out.SerializeAsString()));
  EXPECT_EQ(back.group(), out.group());
  EXPECT_EQ(back.systemd_unit(), out.systemd_unit());
}

TEST(Utf8Test, EveryStringFieldOfAnyMessageIsFixed) {
  v1::DaemonStatus st;
  st.set_version("1\xff");
  st.add_degraded_hooks("ok");
  st.add_degraded_hooks("h\x80");
  st.add_programs()->set_name("p\xfe");
  (*st.mutable_kernel_stats())["k\xff"] = 1;
  EXPECT_FALSE(StringsAreValidUtf8(st));
  EXPECT_TRUE(MakeStringsValidUtf8(&st));
  EXPECT_TRUE(StringsAreValidUtf8(st));
  EXPECT_EQ(st.version(), "1\xEF\xBF\xBD");
  EXPECT_EQ(st.degraded_hooks(0), "ok");
  EXPECT_EQ(st.degraded_hooks(1), "h\xEF\xBF\xBD");
  EXPECT_EQ(st.programs(0).name(), "p\xEF\xBF\xBD");
  EXPECT_EQ(st.kernel_stats().count("k\xEF\xBF\xBD"), 1u);
  EXPECT_FALSE(MakeStringsValidUtf8(&st)) << "nothing left to fix";
}

// Bytes of an ExitEvent with raw (invalid) strings, as journals before sanitising held them.
std::string RawEvent(uint32_t pid, const std::string& comm, const std::string& group) {
  std::string b;
  b.push_back(0x08);  // pid, varint
  b.push_back(static_cast<char>(pid & 0x7f));
  b.push_back(0x1a);  // comm, length-delimited
  b.push_back(static_cast<char>(comm.size()));
  b += comm;
  b.push_back(0x22);  // group
  b.push_back(static_cast<char>(group.size()));
  b += group;
  return b;
}

TEST(ParseExitEventLenientTest, RepairsInvalidStringsInsteadOfFailing) {
  const std::string raw = RawEvent(42, "x\xff", "g\xfe");
  v1::ExitEvent strict;
  EXPECT_FALSE(strict.ParseFromString(raw)) << "the failure this works around";
  v1::ExitEvent e;
  ASSERT_TRUE(ParseExitEventLenient(raw, &e));
  EXPECT_EQ(e.pid(), 42u);
  EXPECT_EQ(e.comm(), "x\xEF\xBF\xBD");
  EXPECT_EQ(e.group(), "g\xEF\xBF\xBD");
}

TEST(ParseExitEventLenientTest, ValidAndGarbage) {
  v1::ExitEvent in;
  in.set_pid(7);
  in.set_comm("fine");
  v1::ExitEvent e;
  ASSERT_TRUE(ParseExitEventLenient(in.SerializeAsString(), &e));
  EXPECT_EQ(e.comm(), "fine");
  EXPECT_FALSE(ParseExitEventLenient(std::string("\x03\xff\xff\xff", 4), &e));
  EXPECT_FALSE(ParseExitEventLenient(std::string("\x1a\x40"
                                                 "ab",
                                                 4),
                                     &e))
      << "length past end";
}

TEST(EventListJsonTest, SameAsTheConverterOnTheWholeList) {
  std::vector<SharedExitEvent> events;
  v1::EventList list;
  for (uint32_t pid = 1; pid <= 3; ++pid) {
    v1::ExitEvent e = MakeExitEvent(Event(), Context());
    e.set_pid(pid);
    *list.add_events() = e;
    events.push_back(std::make_shared<const v1::ExitEvent>(std::move(e)));
  }
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  std::string want;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(list, &want, opts).ok());
  EXPECT_EQ(EventListJson(events), want + "\n");
  EXPECT_EQ(EventListJson({}), "{\"events\":[]}\n");
  v1::EventList back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(EventListJson(events), &back).ok());
  EXPECT_EQ(back.events_size(), 3);
}

TEST(MakeExitEventTest, FullLengthCommWithoutNul) {
  ps_exit_event e = Event();
  memcpy(e.comm, "0123456789abcdef", PS_COMM_LEN);
  EXPECT_EQ(MakeExitEvent(e, Context()).comm(), "0123456789abcdef");
}

v1::ExitEvent WithPid(uint32_t pid) {
  v1::ExitEvent e;
  e.set_pid(pid);
  return e;
}

std::vector<uint32_t> Pids(const std::vector<SharedExitEvent>& events) {
  std::vector<uint32_t> pids;
  for (const SharedExitEvent& e : events) pids.push_back(e->pid());
  return pids;
}

TEST(ExitStoreTest, KeepsTheNewestNewestFirst) {
  ExitStore store(3);
  EXPECT_EQ(store.size(), 0u);
  EXPECT_TRUE(store.Newest().empty());
  for (uint32_t pid = 1; pid <= 5; ++pid) store.Add(WithPid(pid));
  EXPECT_EQ(store.size(), 3u);
  EXPECT_THAT(Pids(store.Newest()), ElementsAre(5, 4, 3));
}

TEST(ExitStoreTest, Limit) {
  ExitStore store(10);
  for (uint32_t pid = 1; pid <= 4; ++pid) store.Add(WithPid(pid));
  EXPECT_THAT(Pids(store.Newest(2)), ElementsAre(4, 3));
  EXPECT_THAT(Pids(store.Newest(0)), ElementsAre(4, 3, 2, 1));
  EXPECT_THAT(Pids(store.Newest(100)), ElementsAre(4, 3, 2, 1));
}

TEST(ExitStoreTest, ZeroCapacityHoldsNothing) {
  ExitStore store(0);
  store.Add(WithPid(1));
  EXPECT_EQ(store.size(), 0u);
  EXPECT_TRUE(store.Newest().empty());
}

TEST(ExitStoreTest, ConcurrentAddsAndReads) {
  ExitStore store(100);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&store, t] {
      for (uint32_t i = 0; i < 1000; ++i) {
        store.Add(WithPid(t * 1000 + i + 1));
        EXPECT_LE(store.Newest(10).size(), 10u);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(store.size(), 100u);
  EXPECT_EQ(store.Newest().size(), 100u);
}

}  // namespace
}  // namespace procscope
