// SPDX-License-Identifier: Apache-2.0
// The profile history (windows, filters, bounds), top functions, folded stacks, and the pprof
// encoding read back with the generated perftools.profiles classes.
#include "profile_store.h"

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pprof.h"
#include "profile.pb.h"

namespace procscope {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

Frame Fn(const std::string& name, const std::string& module = "/usr/bin/app",
         uint64_t off = 0x1000) {
  Frame f;
  f.function = name;
  f.module = module;
  f.offset = off;
  f.address = off + 0x555500000000;
  return f;
}
Frame Kfn(const std::string& name) {
  Frame f = Fn(name, "[kernel]", 0);
  f.kernel = true;
  f.address = 0xffffffff81000000 + name.size();
  return f;
}

ps_key Key(uint32_t pid, uint64_t start = 1) {
  ps_key k{};
  k.tgid = pid;
  k.start_ns = start;
  return k;
}

// user: innermost first
SymbolizedStack Stack(const ps_key& k, std::vector<std::string> user, uint64_t value,
                      StackKind kind = StackKind::kOnCpu, std::vector<std::string> kernel = {}) {
  SymbolizedStack s;
  s.key = k;
  s.kind = kind;
  s.value = value;
  for (const std::string& n : kernel) s.kernel.push_back(Kfn(n));
  uint64_t off = 0x1000;
  for (const std::string& n : user) s.user.push_back(Fn(n, "/usr/bin/app", off += 0x10));
  return s;
}

ProfileProcess Meta(const ps_key& k, const std::string& comm, const std::string& group) {
  ProfileProcess p;
  p.key = k;
  p.comm = comm;
  p.group = group;
  p.container = "";
  return p;
}

uint64_t Sum(const ProfileData& p) {
  uint64_t s = 0;
  for (const auto& x : p.samples) s += x.value;
  return s;
}

TEST(ProfileStore, WindowSelectsBuckets) {
  ProfileStore store;
  const ps_key a = Key(100);
  store.SetProcess(Meta(a, "app", "app"), kT0);
  for (int i = 0; i < 10; ++i) {
    store.Add(kT0 + absl::Seconds(i), {Stack(a, {"spin", "main", "__libc_start_main"}, 1 + i)});
  }
  const absl::Time now = kT0 + absl::Seconds(9);
  ProfileQuery q;
  q.window = absl::Seconds(3);  // buckets at 6, 7, 8, 9: 7+8+9+10
  EXPECT_EQ(Sum(store.Query(q, now)), 7u + 8 + 9 + 10);
  q.window = absl::Seconds(60);
  ProfileData all = store.Query(q, now);
  EXPECT_EQ(Sum(all), 55u);
  ASSERT_EQ(all.samples.size(), 1u);  // one stack, aggregated over buckets
  EXPECT_EQ(all.samples[0].frames.size(), 3u);
  EXPECT_EQ(all.processes[0].comm, "app");
}

TEST(ProfileStore, FiltersByPidGroupAndKind) {
  ProfileStore store;
  const ps_key a = Key(100), b = Key(200);
  store.SetProcess(Meta(a, "a", "ga"), kT0);
  store.SetProcess(Meta(b, "b", "gb"), kT0);
  store.Add(kT0, {Stack(a, {"fa", "main"}, 5), Stack(b, {"fb", "main"}, 7),
                  Stack(a, {"read"}, 1000, StackKind::kOffCpuBlocked, {"io_schedule"}),
                  Stack(a, {"poll"}, 3000, StackKind::kOffCpuSleep, {"schedule"})});
  ProfileQuery q;
  q.pid = 100;
  EXPECT_EQ(Sum(store.Query(q, kT0)), 5u);
  q.pid = 0;
  q.group = "gb";
  EXPECT_EQ(Sum(store.Query(q, kT0)), 7u);
  q.group = "";
  q.kinds = {StackKind::kOffCpuBlocked, StackKind::kOffCpuSleep};
  EXPECT_EQ(Sum(store.Query(q, kT0)), 4000u);
  q.pid = 4242;
  EXPECT_TRUE(store.Query(q, kT0).samples.empty());
}

TEST(ProfileStore, PidReuseKeepsProcessesApart) {
  ProfileStore store;
  store.SetProcess(Meta(Key(100, 1), "old", "old"), kT0);
  store.SetProcess(Meta(Key(100, 2), "new", "new"), kT0);
  store.Add(kT0, {Stack(Key(100, 1), {"f"}, 1), Stack(Key(100, 2), {"f"}, 2)});
  ProfileQuery q;
  q.pid = 100;
  ProfileData p = store.Query(q, kT0);
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.processes.size(), 2u);
}

TEST(ProfileStore, HistoryExpiresAndFreesEverything) {
  ProfileStoreOptions o;
  o.history = absl::Seconds(10);
  ProfileStore store(o);
  const ps_key a = Key(1);
  store.SetProcess(Meta(a, "a", "a"), kT0);
  store.Add(kT0, {Stack(a, {"x", "y"}, 1)});
  EXPECT_EQ(store.Stats().distinct_stacks, 1u);
  // 20 s later another process: the first bucket, its stack, frames and process go.
  store.Add(kT0 + absl::Seconds(20), {Stack(Key(2), {"z"}, 1)});
  ProfileStoreStats s = store.Stats();
  EXPECT_EQ(s.buckets, 1u);
  EXPECT_EQ(s.distinct_stacks, 1u);
  EXPECT_EQ(s.frames, 1u);
  EXPECT_EQ(s.processes, 1u);
  EXPECT_FALSE(store.HasProcess(a));
  EXPECT_EQ(s.dropped_entries, 0u);  // expired by age, not dropped early
}

TEST(ProfileStore, MemoryCapDropsOldestAndCounts) {
  ProfileStoreOptions o;
  o.max_bytes = 20000;
  ProfileStore store(o);
  for (int i = 0; i < 200; ++i) {
    store.Add(kT0 + absl::Seconds(i), {Stack(Key(i + 1), {"f" + std::to_string(i), "main"}, 1)});
  }
  ProfileStoreStats s = store.Stats();
  EXPECT_LE(s.bytes, o.max_bytes);
  EXPECT_GT(s.dropped_entries, 0u);
  EXPECT_LT(s.buckets, 200u);
  EXPECT_EQ(s.buckets + s.dropped_entries, 200u);
}

TEST(ProfileStore, CountsTruncatedUserStacks) {
  ProfileStore store;
  const ps_key a = Key(1);
  store.Add(kT0, {Stack(a, {"f", "main", "__libc_start_call_main"}, 1),
                  Stack(a, {"g", "start_thread"}, 1), Stack(a, {"h", "libfoo_internal"}, 1),
                  Stack(a, {}, 1, StackKind::kOnCpu, {"ksoftirqd_fn"})});
  SymbolizedStack missing = Stack(a, {}, 1);
  missing.user_missing = true;
  // A stripped libc: main's caller has no name, but the walk got to main.
  SymbolizedStack stripped = Stack(a, {"f", "main"}, 1);
  stripped.user.push_back(Fn("", "/usr/lib/x86_64-linux-gnu/libc.so.6", 0x2724a));
  SymbolizedStack lost = Stack(a, {"f", "g"}, 1);
  lost.user.push_back(Fn("", "/usr/lib/x86_64-linux-gnu/libc.so.6", 0x1234));
  store.Add(kT0, {missing, stripped, lost});
  ProfileStoreStats s = store.Stats();
  EXPECT_EQ(s.stacks[0], 7u);
  EXPECT_EQ(s.user_stacks[0], 6u);  // the kernel-only one has no user stack
  EXPECT_EQ(s.user_truncated[0], 3u);
}

TEST(ProfileStore, TopFunctionsSelfAndTotal) {
  ProfileStore store;
  const ps_key a = Key(1);
  store.Add(kT0, {Stack(a, {"sha256_block", "hash_file", "main"}, 60),
                  Stack(a, {"memcpy", "hash_file", "main"}, 30), Stack(a, {"main"}, 10),
                  Stack(a, {"rec", "rec", "main"}, 5)});
  uint64_t sum = 0;
  std::vector<TopFunction> top = TopFunctions(store.Query({}, kT0), 0, &sum);
  EXPECT_EQ(sum, 105u);
  ASSERT_GE(top.size(), 4u);
  EXPECT_EQ(top[0].name, "sha256_block");
  EXPECT_EQ(top[0].self, 60u);
  EXPECT_EQ(top[1].name, "memcpy");
  for (const TopFunction& t : top) {
    if (t.name == "main") {
      EXPECT_EQ(t.total, 105u);
      EXPECT_EQ(t.self, 10u);
    }
    if (t.name == "rec") {
      EXPECT_EQ(t.total, 5u);  // once per stack, recursion or not
    }
    if (t.name == "hash_file") {
      EXPECT_EQ(t.total, 90u);
    }
  }
  double share = 0;
  EXPECT_EQ(HottestPath(store.Query({}, kT0), 3, &share), "sha256_block ← hash_file ← main");
  EXPECT_NEAR(share, 60.0 / 105, 1e-9);
}

TEST(Folded, FormatAndEscaping) {
  ProfileStore store;
  const ps_key a = Key(1);
  store.SetProcess(Meta(a, "evil; name\nx", "g"), kT0);
  store.Add(kT0, {Stack(a, {"inner", "outer"}, 3, StackKind::kOnCpu, {"do_syscall_64"}),
                  Stack(a, {"semi;colon"}, 2)});
  const std::string folded = FoldedStacks(store.Query({}, kT0));
  std::vector<std::string> lines = absl::StrSplit(folded, '\n', absl::SkipEmpty());
  EXPECT_THAT(lines,
              ElementsAre("evil__name_x;outer;inner;do_syscall_64 3", "evil__name_x;semi_colon 2"));
  EXPECT_THAT(TopFoldedStacks(store.Query({}, kT0), 1),
              ElementsAre("evil__name_x;outer;inner;do_syscall_64 3"));
}

TEST(Pprof, EncodeDecodeWithGeneratedClasses) {
  ProfileStore store;
  store.set_profile_hz(19);
  const ps_key a = Key(4242);
  ProfileProcess m = Meta(a, "worker\xff", "workers");
  m.container = "abc123";
  store.SetProcess(m, kT0);
  store.Add(kT0, {Stack(a, {"spin", "main"}, 7, StackKind::kOnCpu, {"irq_exit"})});
  const std::string gz = EncodePprof(store.Query({}, kT0), PprofKind::kOnCpu);
  ASSERT_GE(gz.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);  // gzip magic
  auto raw = Gunzip(gz);
  ASSERT_TRUE(raw.ok()) << raw.status();
  perftools::profiles::Profile p;
  ASSERT_TRUE(p.ParseFromString(*raw));
  auto s = [&](int64_t i) { return p.string_table(static_cast<int>(i)); };
  EXPECT_EQ(s(0), "");
  ASSERT_EQ(p.sample_type_size(), 2);
  EXPECT_EQ(s(p.sample_type(0).type()), "samples");
  EXPECT_EQ(s(p.sample_type(0).unit()), "count");
  EXPECT_EQ(s(p.sample_type(1).type()), "cpu");
  EXPECT_EQ(s(p.sample_type(1).unit()), "nanoseconds");
  EXPECT_EQ(s(p.period_type().type()), "cpu");
  EXPECT_EQ(p.period(), 1000000000 / 19);
  ASSERT_EQ(p.sample_size(), 1);
  const auto& sample = p.sample(0);
  EXPECT_EQ(sample.value(0), 7);
  EXPECT_EQ(sample.value(1), 7 * (1000000000 / 19));
  ASSERT_EQ(sample.location_id_size(), 3);
  // Leaf first: the kernel frame, then spin, then main.
  auto fn_of = [&](uint64_t loc_id) {
    for (const auto& l : p.location()) {
      if (l.id() == loc_id) {
        for (const auto& f : p.function()) {
          if (f.id() == l.line(0).function_id()) return s(f.name());
        }
      }
    }
    return std::string("?");
  };
  EXPECT_EQ(fn_of(sample.location_id(0)), "irq_exit");
  EXPECT_EQ(fn_of(sample.location_id(1)), "spin");
  EXPECT_EQ(fn_of(sample.location_id(2)), "main");
  std::map<std::string, std::string> labels;
  for (const auto& l : sample.label()) {
    labels[s(l.key())] = l.str() ? s(l.str()) : std::to_string(l.num());
  }
  EXPECT_EQ(labels["pid"], "4242");
  EXPECT_EQ(labels["comm"], "worker\xEF\xBF\xBD");  // invalid UTF-8 replaced
  EXPECT_EQ(labels["group"], "workers");
  EXPECT_EQ(labels["container"], "abc123");
  bool kernel_mapping = false;
  for (const auto& mp : p.mapping()) kernel_mapping |= s(mp.filename()) == "[kernel]";
  EXPECT_TRUE(kernel_mapping);

  auto back = DecodePprof(gz);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->profile_hz, 19);
  uint64_t sum = 0;
  EXPECT_EQ(TopFunctions(*back, 1, &sum)[0].name, "irq_exit");
  EXPECT_EQ(sum, 7u);
  EXPECT_EQ(back->processes[0].key.tgid, 4242u);
}

TEST(Pprof, OffCpuHasStateLabel) {
  ProfileStore store;
  const ps_key a = Key(7);
  store.Add(kT0, {Stack(a, {"fsync"}, 5000, StackKind::kOffCpuBlocked, {"io_schedule"}),
                  Stack(a, {"nanosleep"}, 9000, StackKind::kOffCpuSleep, {"schedule"})});
  ProfileQuery q;
  q.kinds = {StackKind::kOffCpuBlocked, StackKind::kOffCpuSleep};
  auto raw = Gunzip(EncodePprof(store.Query(q, kT0), PprofKind::kOffCpu));
  ASSERT_TRUE(raw.ok());
  perftools::profiles::Profile p;
  ASSERT_TRUE(p.ParseFromString(*raw));
  ASSERT_EQ(p.sample_type_size(), 1);
  EXPECT_EQ(p.string_table(p.sample_type(0).type()), "offcpu");
  std::map<std::string, int64_t> by_state;
  for (const auto& s : p.sample()) {
    for (const auto& l : s.label()) {
      if (p.string_table(l.key()) == "state") by_state[p.string_table(l.str())] += s.value(0);
    }
  }
  EXPECT_EQ(by_state["blocked"], 5000);
  EXPECT_EQ(by_state["sleep"], 9000);
  auto back = DecodePprof(*raw);  // not gzipped works too
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->samples.size(), 2u);
}

TEST(Pprof, DecodeRejectsGarbage) {
  EXPECT_FALSE(DecodePprof("\x1f\x8b garbage").ok());
  EXPECT_FALSE(DecodePprof(std::string("\xff\xff\xff\xff\xff", 5)).ok());
  std::string gz = Gzip("hello");
  EXPECT_EQ(*Gunzip(gz), "hello");
  EXPECT_FALSE(Gunzip(gz.substr(0, gz.size() - 4)).ok());
}

}  // namespace
}  // namespace procscope
