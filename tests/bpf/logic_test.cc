// SPDX-License-Identifier: Apache-2.0
// Tier 2: the pure helpers of bpf/core.bpf.h, as the BPF compiler and verifier see them, run on
// fixed inputs with BPF_PROG_TEST_RUN (tests/bpf/logic_test.bpf.c) and checked against a C++
// reference written from the contract in bpf/procscope.h.
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "procscope.h"

// Mirror of struct ps_thread_counters from bpf/core.bpf.h (BPF-only: it cannot be included
// here), which the skeleton's bss refers to, from the same field list.
// BtfLayout.MirrorsMatchTheBpfObject checks it.
struct ps_thread_counters {
  __u64 pcount;
  PS_COUNTER_FIELDS(PS_U64_MEMBER)
};

// Mirrors of the program contexts in logic_test.bpf.c.
struct logic_bucket_args {
  __u64 wait_ns;
};
struct logic_fold_args {
  ps_thread_counters cur;
  __u32 shared;
  __u32 pad;
};

// Mirrors of the leader state and the transition programs' contexts (logic_test.bpf.c).
struct ps_task {
  ps_thread_counters snap;
  ps_counters proc;
  __u32 totals;
  __u32 group_dead;
  __u32 was_thread;
  __u32 emit_session;
  __u64 emit_sig;
  __u64 off_ts;
  __u32 off_kind;
  __u32 pad2;
  ps_stack_key off_stack;
};
struct logic_offcpu_args {
  __u64 a;
  __u64 b;
  __u64 c;
  __u32 preempt;
  __u32 state;
  __u32 key_epoch;
  __u32 pad;
};
struct logic_adopt_args {
  ps_counters prev;
};
// enum ps_totals_state and enum ps_final, mirrored; BtfLayout.EnumsMatchTheBpfObject checks them.
enum ps_totals_state { PS_TOTALS_NONE = 0, PS_TOTALS_OWN, PS_TOTALS_ADOPTING };
enum ps_final { PS_FINAL_NOTHING = 0, PS_FINAL_EXIT, PS_FINAL_HAND_OVER };

#include "logic_test.skel.h"

namespace {

// A thread's kernel counters, in the order the tests list them.
ps_thread_counters T(uint64_t cpu, uint64_t runq, uint64_t pcount, uint64_t vol, uint64_t invol,
                     uint64_t min, uint64_t maj) {
  ps_thread_counters t{};
  t.cpu_ns = cpu;
  t.runq_ns = runq;
  t.pcount = pcount;
  t.vol_cs = vol;
  t.invol_cs = invol;
  t.min_flt = min;
  t.maj_flt = maj;
  return t;
}

// ---------------------------------------------------------------------------------------------
// C++ reference, from the comments of bpf/procscope.h and bpf/core.bpf.h.

// Bucket 0: waits below 2 us; bucket i (1..N-2): [2^i, 2^(i+1)) us; last: from 2^(N-1) us up.
uint32_t ReferenceBucket(uint64_t wait_ns) {
  const uint64_t us = wait_ns / 1000;
  if (us < 2) return 0;
  const uint32_t log2 = 63 - static_cast<uint32_t>(__builtin_clzll(us));
  return std::min<uint32_t>(log2, PS_RUNQ_BUCKETS - 1);
}

// The snapshot after a fold: pcount and the PS_FOLDED counter (run_delay) from `cur`; the
// PS_SUMMED ones (CPU time, switches, faults) are never folded, so they stay as they were.
ps_thread_counters Advanced(ps_thread_counters snap, const ps_thread_counters& cur) {
  snap.pcount = cur.pcount;
  snap.runq_ns = cur.runq_ns;
  return snap;
}

// Adds the run-queue increase to the totals, counts one run-queue episode when exactly one
// switch-in happened, and advances the snapshot. CPU time, switches and faults are summed by the
// kernel for dead threads and read whole (ps_add_summed): the fold leaves them alone.
void ReferenceFold(ps_thread_counters& snap, const ps_thread_counters& cur, ps_counters& p) {
  p.runq_ns += cur.runq_ns - snap.runq_ns;
  if (cur.pcount - snap.pcount == 1) ++p.runq_hist[ReferenceBucket(cur.runq_ns - snap.runq_ns)];
  snap = Advanced(snap, cur);
}

// ---------------------------------------------------------------------------------------------
// Printing and comparison, so that a mismatch names the field.

std::string ToString(const ps_thread_counters& t) {
  return "{cpu=" + std::to_string(t.cpu_ns) + " runq=" + std::to_string(t.runq_ns) +
         " pcount=" + std::to_string(t.pcount) + " vol=" + std::to_string(t.vol_cs) +
         " invol=" + std::to_string(t.invol_cs) + " min=" + std::to_string(t.min_flt) +
         " maj=" + std::to_string(t.maj_flt) + "}";
}

std::string ToString(const ps_counters& c) {
  std::string s =
      "{cpu_ns=" + std::to_string(c.cpu_ns) + " runq_ns=" + std::to_string(c.runq_ns) +
      " vol_cs=" + std::to_string(c.vol_cs) + " invol_cs=" + std::to_string(c.invol_cs) +
      " min_flt=" + std::to_string(c.min_flt) + " maj_flt=" + std::to_string(c.maj_flt) + " hist=[";
  for (int i = 0; i < PS_RUNQ_BUCKETS; ++i) {
    if (i) s += ",";
    s += std::to_string(c.runq_hist[i]);
  }
  return s + "]}";
}

// Whole structs (all __u64, no padding): a counter added to the list is compared too, so the
// reference above must learn it.
bool Equal(const ps_thread_counters& a, const ps_thread_counters& b) {
  return memcmp(&a, &b, sizeof(a)) == 0;
}

bool Equal(const ps_counters& a, const ps_counters& b) { return memcmp(&a, &b, sizeof(a)) == 0; }

#define EXPECT_COUNTERS_EQ(actual, expected)                                       \
  EXPECT_TRUE(Equal(actual, expected)) << "  actual: " << ToString(actual) << "\n" \
                                       << "expected: " << ToString(expected)

// Every __u64 of the totals, scalars and buckets, in order (from the list in bpf/procscope.h).
template <typename F>
void ForEachU64(ps_counters& c, F&& fn) {
#define PS_EACH(f, ...) fn(c.f);
#define PS_EACH_ARRAY(f, n) \
  for (int i = 0; i < (n); ++i) fn(c.f[i]);
  PS_SCALAR_FIELDS(PS_EACH)
  PS_COUNTER_ARRAYS(PS_EACH_ARRAY)
#undef PS_EACH_ARRAY
#undef PS_EACH
}

uint64_t HistSum(const ps_counters& c) {
  uint64_t sum = 0;
  for (int i = 0; i < PS_RUNQ_BUCKETS; ++i) sum += c.runq_hist[i];
  return sum;
}

// ---------------------------------------------------------------------------------------------
// The reference itself, so that a wrong reference cannot hide a wrong BPF helper.

TEST(ReferenceBucketTest, FollowsTheDocumentedRanges) {
  EXPECT_EQ(ReferenceBucket(0), 0u);
  EXPECT_EQ(ReferenceBucket(1999), 0u);
  EXPECT_EQ(ReferenceBucket(2000), 1u);
  EXPECT_EQ(ReferenceBucket(3999), 1u);
  EXPECT_EQ(ReferenceBucket(4000), 2u);
  EXPECT_EQ(ReferenceBucket((1ull << 18) * 1000 - 1), 17u);
  EXPECT_EQ(ReferenceBucket((1ull << 18) * 1000), 18u);
  EXPECT_EQ(ReferenceBucket((1ull << 19) * 1000 - 1), 18u);
  EXPECT_EQ(ReferenceBucket((1ull << 19) * 1000), PS_RUNQ_BUCKETS - 1u);
  EXPECT_EQ(ReferenceBucket(UINT64_MAX), PS_RUNQ_BUCKETS - 1u);
}

// ---------------------------------------------------------------------------------------------
// Layout: the C++ mirrors above against the BTF of the BPF object (no root needed to open it).

struct Member {
  const char* name;
  size_t offset;
};

void ExpectStructLayout(const struct btf* btf, const char* name, size_t size,
                        const std::vector<Member>& members) {
  SCOPED_TRACE(name);
  const int id = btf__find_by_name_kind(btf, name, BTF_KIND_STRUCT);
  ASSERT_GT(id, 0) << "struct " << name << " not in the BTF of logic_test.bpf.o";
  const struct btf_type* t = btf__type_by_id(btf, id);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->size, size);
  ASSERT_EQ(btf_vlen(t), members.size());
  const struct btf_member* m = btf_members(t);
  for (size_t i = 0; i < members.size(); ++i) {
    EXPECT_STREQ(btf__name_by_offset(btf, m[i].name_off), members[i].name) << "member " << i;
    EXPECT_EQ(btf_member_bit_offset(t, i), members[i].offset * 8) << members[i].name;
  }
}

TEST(BtfLayout, MirrorsMatchTheBpfObject) {
  struct logic_test* skel = logic_test__open();
  ASSERT_NE(skel, nullptr) << "logic_test__open: " << strerror(errno);
  const struct btf* btf = bpf_object__btf(skel->obj);
  ASSERT_NE(btf, nullptr);
  ExpectStructLayout(btf, "ps_thread_counters", sizeof(ps_thread_counters),
                     {{"pcount", offsetof(ps_thread_counters, pcount)},
                      {"cpu_ns", offsetof(ps_thread_counters, cpu_ns)},
                      {"runq_ns", offsetof(ps_thread_counters, runq_ns)},
                      {"vol_cs", offsetof(ps_thread_counters, vol_cs)},
                      {"invol_cs", offsetof(ps_thread_counters, invol_cs)},
                      {"min_flt", offsetof(ps_thread_counters, min_flt)},
                      {"maj_flt", offsetof(ps_thread_counters, maj_flt)}});
  ExpectStructLayout(btf, "logic_bucket_args", sizeof(logic_bucket_args),
                     {{"wait_ns", offsetof(logic_bucket_args, wait_ns)}});
  ExpectStructLayout(btf, "logic_fold_args", sizeof(logic_fold_args),
                     {{"cur", offsetof(logic_fold_args, cur)},
                      {"shared", offsetof(logic_fold_args, shared)},
                      {"pad", offsetof(logic_fold_args, pad)}});
  ExpectStructLayout(btf, "ps_counters", sizeof(ps_counters),
                     {{"cpu_ns", offsetof(ps_counters, cpu_ns)},
                      {"runq_ns", offsetof(ps_counters, runq_ns)},
                      {"vol_cs", offsetof(ps_counters, vol_cs)},
                      {"invol_cs", offsetof(ps_counters, invol_cs)},
                      {"min_flt", offsetof(ps_counters, min_flt)},
                      {"maj_flt", offsetof(ps_counters, maj_flt)},
                      {"blocked_ns", offsetof(ps_counters, blocked_ns)},
                      {"sleep_ns", offsetof(ps_counters, sleep_ns)},
                      {"runq_caused_ns", offsetof(ps_counters, runq_caused_ns)},
                      {"runq_hist", offsetof(ps_counters, runq_hist)}});
  ExpectStructLayout(btf, "ps_task", sizeof(ps_task),
                     {{"snap", offsetof(ps_task, snap)},
                      {"proc", offsetof(ps_task, proc)},
                      {"totals", offsetof(ps_task, totals)},
                      {"group_dead", offsetof(ps_task, group_dead)},
                      {"was_thread", offsetof(ps_task, was_thread)},
                      {"emit_session", offsetof(ps_task, emit_session)},
                      {"emit_sig", offsetof(ps_task, emit_sig)},
                      {"off_ts", offsetof(ps_task, off_ts)},
                      {"off_kind", offsetof(ps_task, off_kind)},
                      {"pad2", offsetof(ps_task, pad2)},
                      {"off_stack", offsetof(ps_task, off_stack)}});
  ExpectStructLayout(btf, "logic_offcpu_args", sizeof(logic_offcpu_args),
                     {{"a", offsetof(logic_offcpu_args, a)},
                      {"b", offsetof(logic_offcpu_args, b)},
                      {"c", offsetof(logic_offcpu_args, c)},
                      {"preempt", offsetof(logic_offcpu_args, preempt)},
                      {"state", offsetof(logic_offcpu_args, state)},
                      {"key_epoch", offsetof(logic_offcpu_args, key_epoch)},
                      {"pad", offsetof(logic_offcpu_args, pad)}});
  logic_test__destroy(skel);
}

void ExpectEnum(const struct btf* btf, const char* name,
                const std::vector<std::pair<const char*, int>>& values) {
  SCOPED_TRACE(name);
  const int id = btf__find_by_name_kind(btf, name, BTF_KIND_ENUM);
  ASSERT_GT(id, 0) << "enum " << name << " not in the BTF of logic_test.bpf.o";
  const struct btf_type* t = btf__type_by_id(btf, id);
  ASSERT_EQ(btf_vlen(t), values.size());
  const struct btf_enum* e = btf_enum(t);
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_STREQ(btf__name_by_offset(btf, e[i].name_off), values[i].first);
    EXPECT_EQ(e[i].val, values[i].second) << values[i].first;
  }
}

TEST(BtfLayout, EnumsMatchTheBpfObject) {
  struct logic_test* skel = logic_test__open();
  ASSERT_NE(skel, nullptr) << "logic_test__open: " << strerror(errno);
  const struct btf* btf = bpf_object__btf(skel->obj);
  ASSERT_NE(btf, nullptr);
  ExpectEnum(btf, "ps_totals_state",
             {{"PS_TOTALS_NONE", PS_TOTALS_NONE},
              {"PS_TOTALS_OWN", PS_TOTALS_OWN},
              {"PS_TOTALS_ADOPTING", PS_TOTALS_ADOPTING}});
  ExpectEnum(btf, "ps_final",
             {{"PS_FINAL_NOTHING", PS_FINAL_NOTHING},
              {"PS_FINAL_EXIT", PS_FINAL_EXIT},
              {"PS_FINAL_HAND_OVER", PS_FINAL_HAND_OVER}});
  logic_test__destroy(skel);
}

// ---------------------------------------------------------------------------------------------
// The programs, loaded fresh for every test.

class BpfLogicTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      Unavailable("needs root to load BPF programs and use BPF_PROG_TEST_RUN");
      return;
    }
    skel_ = logic_test__open_and_load();
    if (skel_ == nullptr) {
      const int err = errno;
      Unavailable(std::string("logic_test__open_and_load failed: ") + strerror(err) +
                  " (no CAP_BPF/CAP_SYS_ADMIN, a kernel without BPF_PROG_TYPE_SYSCALL, or a "
                  "verifier rejection: see the libbpf log above)");
      return;
    }
    ASSERT_NE(skel_->bss, nullptr) << "skeleton has no mmapped .bss";
  }

  void TearDown() override { logic_test__destroy(skel_); }

  // Without CI set (a developer's machine), a missing privilege skips; in CI it must fail, so
  // that the tier cannot pass by running nothing.
  static void Unavailable(const std::string& why) {
    if (getenv("CI") != nullptr) {
      FAIL() << "BPF logic tests cannot run: " << why
             << ". CI is set, so this is a failure: run them as root on a kernel with "
                "BPF_PROG_TYPE_SYSCALL (5.14+).";
    }
    GTEST_SKIP() << why;
  }

  // ps_runq_bucket(wait_ns) in the kernel.
  uint32_t Bucket(uint64_t wait_ns) {
    logic_bucket_args args{wait_ns};
    bpf_test_run_opts opts{};
    opts.sz = sizeof(opts);
    opts.ctx_in = &args;
    opts.ctx_size_in = sizeof(args);
    const int err = bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.run_bucket), &opts);
    EXPECT_EQ(err, 0) << "BPF_PROG_TEST_RUN run_bucket: " << strerror(errno);
    return opts.retval;
  }

  // ps_fold_values(&fold_snap, &cur, &fold_totals, shared) in the kernel.
  void Fold(const ps_thread_counters& cur, bool shared) {
    logic_fold_args args{};
    args.cur = cur;
    args.shared = shared ? 1 : 0;
    bpf_test_run_opts opts{};
    opts.sz = sizeof(opts);
    opts.ctx_in = &args;
    opts.ctx_size_in = sizeof(args);
    const int err = bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.run_fold), &opts);
    ASSERT_EQ(err, 0) << "BPF_PROG_TEST_RUN run_fold: " << strerror(errno);
    ASSERT_EQ(opts.retval, 0u);
  }

  // Runs a program that takes `args` as its context; returns its return value.
  template <typename Args>
  uint32_t Run(struct bpf_program* prog, Args* args) {
    bpf_test_run_opts opts{};
    opts.sz = sizeof(opts);
    opts.ctx_in = args;
    opts.ctx_size_in = args != nullptr ? sizeof(*args) : 0;
    const int err = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts);
    EXPECT_EQ(err, 0) << "BPF_PROG_TEST_RUN " << bpf_program__name(prog) << ": " << strerror(errno);
    return opts.retval;
  }
  // ps_start_totals(&lead); returns whether this call made the step.
  bool Start() { return Run<char>(skel_->progs.run_start, nullptr) != 0; }
  void Adopt(const ps_counters& prev) {
    logic_adopt_args args{prev};
    Run(skel_->progs.run_adopt, &args);
  }
  uint32_t Final() { return Run<char>(skel_->progs.run_final, nullptr); }
  ps_task& Lead() { return skel_->bss->lead; }
  uint32_t OffcpuKind(uint32_t state) {
    logic_offcpu_args args{};
    args.state = state;
    return Run(skel_->progs.run_offcpu_kind, &args);
  }
  uint64_t OffcpuNs(uint64_t off_ts, uint64_t arrival, uint64_t d_runq) {
    logic_offcpu_args args{};
    args.a = off_ts;
    args.b = arrival;
    args.c = d_runq;
    Run(skel_->progs.run_offcpu_ns, &args);
    return skel_->bss->offcpu_result;
  }
  uint64_t WaitEnding(uint64_t now, uint64_t last_queued) {
    logic_offcpu_args args{};
    args.a = now;
    args.b = last_queued;
    Run(skel_->progs.run_wait_ending, &args);
    return skel_->bss->offcpu_result;
  }
  bool EpochLive(uint32_t epoch, uint16_t key_epoch) {
    logic_offcpu_args args{};
    args.state = epoch;
    args.key_epoch = key_epoch;
    return Run(skel_->progs.run_epoch_live, &args) != 0;
  }

  void SetState(const ps_thread_counters& snap, const ps_counters& totals) {
    skel_->bss->fold_snap = snap;
    skel_->bss->fold_totals = totals;
  }
  const ps_thread_counters& Snap() const { return skel_->bss->fold_snap; }
  const ps_counters& Totals() const { return skel_->bss->fold_totals; }

  struct logic_test* skel_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// ps_runq_bucket

TEST_F(BpfLogicTest, BucketBoundaries) {
  struct Case {
    uint64_t wait_ns;
    uint32_t bucket;
  };
  const Case cases[] = {
      {0, 0},
      {1, 0},
      {999, 0},
      {1000, 0},
      {1999, 0},
      {2000, 1},
      {2001, 1},
      {3999, 1},
      {4000, 2},
      {7999, 2},
      {8000, 3},
      {1'000'000, 9},  // 1 ms = 1000 us: [512, 1024) us
      {(1ull << 16) * 1000 - 1, 15},
      {(1ull << 16) * 1000, 16},
      {(1ull << 18) * 1000, 18},
      {(1ull << 19) * 1000 - 1, 18},
      {(1ull << 19) * 1000, PS_RUNQ_BUCKETS - 1},   // about 0.52 s: the last bucket
      {3'600'000'000'000ull, PS_RUNQ_BUCKETS - 1},  // an hour
      {(1ull << 32) * 1000, PS_RUNQ_BUCKETS - 1},
      {UINT64_MAX, PS_RUNQ_BUCKETS - 1},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Bucket(c.wait_ns), c.bucket) << "wait_ns=" << c.wait_ns;
  }
}

TEST_F(BpfLogicTest, BucketMatchesReferenceAroundEveryPowerOfTwo) {
  for (int i = 0; i < 54; ++i) {  // 2^53 us * 1000 still fits in 64 bits
    const uint64_t edge = (1ull << i) * 1000;
    for (uint64_t ns : {edge - 1, edge, edge + 1, edge + 999, edge + 1000}) {
      EXPECT_EQ(Bucket(ns), ReferenceBucket(ns)) << "wait_ns=" << ns;
    }
  }
}

TEST_F(BpfLogicTest, BucketMatchesReferenceOnRandomWaits) {
  std::mt19937_64 rng(20240601);
  for (int i = 0; i < 2000; ++i) {
    // Spread over every magnitude, not just the huge values a uniform draw would give.
    const uint64_t ns = rng() >> (rng() % 64);
    const uint32_t b = Bucket(ns);
    ASSERT_EQ(b, ReferenceBucket(ns)) << "wait_ns=" << ns;
    ASSERT_LT(b, static_cast<uint32_t>(PS_RUNQ_BUCKETS));
  }
}

// ---------------------------------------------------------------------------------------------
// ps_fold_values

// The single-fold tests, once with plain adds and once with the atomic adds that sched.bpf.c uses
// when other threads of the process may fold at the same time.
class BpfFoldTest : public BpfLogicTest, public ::testing::WithParamInterface<bool> {
 protected:
  bool Shared() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(SharedOrNot, BpfFoldTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Shared" : "Unshared";
                         });

// Two successive folds: the totals grow by exactly the differences (added to what was there),
// each single-episode fold counts its wait in the right bucket, and the snapshot follows.
TEST_P(BpfFoldTest, FoldAddsDifferencesOfSuccessiveSnapshots) {
  const ps_thread_counters s0 = T(1'000'000, 50'000'000, 10, 5, 3, 100, 2);
  // +2.5 ms CPU, a 5 us wait (bucket 2), one switch-in.
  const ps_thread_counters s1 = T(3'500'000, 50'005'000, 11, 7, 4, 150, 2);
  // +0.5 ms CPU, a 300 us wait (bucket 8), one switch-in, a major fault.
  const ps_thread_counters s2 = T(4'000'000, 50'305'000, 12, 8, 6, 151, 3);
  ps_counters base{};
  base.cpu_ns = 42;
  base.runq_ns = 7;
  base.vol_cs = 1;
  base.invol_cs = 2;
  base.min_flt = 3;
  base.maj_flt = 4;
  base.runq_hist[2] = 5;
  SetState(s0, base);

  ASSERT_NO_FATAL_FAILURE(Fold(s1, Shared()));
  ps_counters want = base;  // CPU, switches, faults: not folded (summed when read)
  want.runq_ns += 5'000;
  want.runq_hist[2] += 1;
  EXPECT_COUNTERS_EQ(Totals(), want);
  EXPECT_TRUE(Equal(Snap(), Advanced(s0, s1))) << ToString(Snap());

  ASSERT_NO_FATAL_FAILURE(Fold(s2, Shared()));
  want.runq_ns += 300'000;
  want.runq_hist[8] += 1;
  EXPECT_COUNTERS_EQ(Totals(), want);
  EXPECT_TRUE(Equal(Snap(), Advanced(s0, s2))) << ToString(Snap());
  EXPECT_EQ(skel_->bss->fold_runs, 2u);

  // Against the reference too.
  ps_thread_counters ref_snap = s0;
  ps_counters ref = base;
  ReferenceFold(ref_snap, s1, ref);
  ReferenceFold(ref_snap, s2, ref);
  EXPECT_COUNTERS_EQ(Totals(), ref);
}

// The snapshot advances, so folding the same kernel values again adds nothing.
TEST_P(BpfFoldTest, FoldAdvancesSnapshotSoNothingIsCountedTwice) {
  const ps_thread_counters s0 = T(100, 200, 1, 1, 1, 1, 1);
  const ps_thread_counters s1 = T(900, 9'200, 2, 4, 5, 6, 7);
  SetState(s0, ps_counters{});
  ASSERT_NO_FATAL_FAILURE(Fold(s1, Shared()));
  EXPECT_TRUE(Equal(Snap(), Advanced(s0, s1))) << ToString(Snap());
  const ps_counters after_first = Totals();
  EXPECT_EQ(after_first.runq_ns, 9'000u);
  EXPECT_EQ(after_first.cpu_ns, 0u) << "summed when read, never folded";
  EXPECT_EQ(HistSum(after_first), 1u);

  ASSERT_NO_FATAL_FAILURE(Fold(s1, Shared()));
  EXPECT_COUNTERS_EQ(Totals(), after_first);
  EXPECT_TRUE(Equal(Snap(), Advanced(s0, s1))) << ToString(Snap());
}

// With exactly one switch-in since the last fold, the run-queue delta is one wait episode and is
// counted in its bucket, and only there. The absolute run_delay is large and falls in another
// bucket, so using it instead of the delta would be caught.
TEST_P(BpfFoldTest, FoldCountsOneEpisodeInExactlyItsBucket) {
  const uint64_t base_runq = 10'000'000'000ull;  // 10 s: the last bucket
  const uint64_t waits[] = {0,           1'999,       2'000,           3'999,       4'000,
                            65'000,      999'999,     1'000'000,       262'143'999, 262'144'000,
                            524'287'999, 524'288'000, 5'000'000'000ull};
  for (uint64_t wait : waits) {
    SCOPED_TRACE("wait_ns=" + std::to_string(wait));
    const ps_thread_counters s0 = T(0, base_runq, 40, 0, 0, 0, 0);
    const ps_thread_counters s1 = T(1'000, base_runq + wait, 41, 0, 1, 0, 0);
    SetState(s0, ps_counters{});
    ASSERT_NO_FATAL_FAILURE(Fold(s1, Shared()));
    const ps_counters& got = Totals();
    const uint32_t want_bucket = ReferenceBucket(wait);
    for (uint32_t b = 0; b < PS_RUNQ_BUCKETS; ++b) {
      EXPECT_EQ(got.runq_hist[b], b == want_bucket ? 1u : 0u) << "bucket " << b;
    }
    EXPECT_EQ(got.runq_ns, wait);
  }
}

// Zero switch-ins (still running, or still waiting) or several (the delta mixes episodes): the
// run-queue time is added but no histogram bucket moves.
TEST_P(BpfFoldTest, FoldCountsNoEpisodeUnlessExactlyOneSwitchIn) {
  for (uint64_t d_pcount : {0ull, 2ull, 3ull, 1000ull}) {
    SCOPED_TRACE("d_pcount=" + std::to_string(d_pcount));
    const ps_thread_counters s0 = T(0, 1'000, 7, 0, 0, 0, 0);
    const ps_thread_counters s1 = T(5'000, 1'000 + 50'000, 7 + d_pcount, 1, 0, 0, 0);
    SetState(s0, ps_counters{});
    ASSERT_NO_FATAL_FAILURE(Fold(s1, Shared()));
    EXPECT_EQ(HistSum(Totals()), 0u) << ToString(Totals());
    EXPECT_EQ(Totals().runq_ns, 50'000u);
    EXPECT_EQ(Totals().cpu_ns, 0u);
    EXPECT_TRUE(Equal(Snap(), Advanced(s0, s1))) << ToString(Snap());
  }
}

// The atomic (shared) and plain paths give the same totals and snapshot, fold after fold.
TEST_F(BpfLogicTest, FoldSharedAndUnsharedAgree) {
  std::mt19937_64 rng(7);
  std::vector<ps_thread_counters> seq;
  const uint64_t cpu0 = rng() % 1'000'000;  // drawn in this order, as before
  const uint64_t runq0 = rng() % 1'000'000;
  const uint64_t pcount0 = rng() % 100;
  ps_thread_counters t = T(cpu0, runq0, pcount0, 0, 0, 0, 0);
  seq.push_back(t);
  for (int i = 0; i < 50; ++i) {
    t.cpu_ns += rng() % 10'000'000;
    t.runq_ns += rng() >> (24 + rng() % 40);  // 0 .. ~1.1e12 ns, every magnitude
    t.pcount += rng() % 3;                    // 0, 1 or 2 switch-ins
    t.vol_cs += rng() % 5;
    t.invol_cs += rng() % 5;
    t.min_flt += rng() % 1000;
    t.maj_flt += rng() % 2;
    seq.push_back(t);
  }
  ps_counters start{};
  start.cpu_ns = 123;
  start.runq_hist[0] = 9;

  ps_counters results[2];
  ps_thread_counters snaps[2];
  for (int shared = 0; shared < 2; ++shared) {
    SCOPED_TRACE(shared ? "shared" : "unshared");
    SetState(seq[0], start);
    for (size_t i = 1; i < seq.size(); ++i) ASSERT_NO_FATAL_FAILURE(Fold(seq[i], shared != 0));
    results[shared] = Totals();
    snaps[shared] = Snap();
  }
  EXPECT_COUNTERS_EQ(results[1], results[0]);
  EXPECT_TRUE(Equal(snaps[0], Advanced(seq[0], seq.back()))) << ToString(snaps[0]);
  EXPECT_TRUE(Equal(snaps[1], Advanced(seq[0], seq.back()))) << ToString(snaps[1]);

  ps_thread_counters ref_snap = seq[0];
  ps_counters ref = start;
  for (size_t i = 1; i < seq.size(); ++i) ReferenceFold(ref_snap, seq[i], ref);
  EXPECT_COUNTERS_EQ(results[0], ref);
  EXPECT_GT(HistSum(ref), 9u) << "the sequence should include single-episode folds";
}

// ---------------------------------------------------------------------------------------------
// The totals' states (ps_totals_state), one test per transition.

// NONE -> OWN: the first fold (or exit) of a process that is not a leader by exec starts its
// totals, once, and leaves what is in them (nothing is seeded: what dead threads left in the
// signal struct is added when the totals are read).
TEST_F(BpfLogicTest, StartOwnsOnceAndAddsNothing) {
  ps_counters before{};
  before.runq_ns = 7;  // a thread folded meanwhile
  before.runq_hist[3] = 2;
  Lead() = ps_task{};
  Lead().proc = before;
  EXPECT_TRUE(Start());
  EXPECT_EQ(Lead().totals, static_cast<__u32>(PS_TOTALS_OWN));
  EXPECT_COUNTERS_EQ(Lead().proc, before);
  // OWN stays OWN: a second start (another thread, the exit hook) changes nothing.
  EXPECT_FALSE(Start());
  EXPECT_EQ(Lead().totals, static_cast<__u32>(PS_TOTALS_OWN));
  EXPECT_COUNTERS_EQ(Lead().proc, before);
}

// NONE -> ADOPTING: a leader that folded as a thread before got there by execve(); it waits to
// adopt the old leader's totals.
TEST_F(BpfLogicTest, StartOfALeaderByExecWaitsToAdopt) {
  Lead() = ps_task{};
  Lead().was_thread = 1;
  Lead().proc.runq_ns = 40;
  EXPECT_TRUE(Start());
  EXPECT_EQ(Lead().totals, static_cast<__u32>(PS_TOTALS_ADOPTING));
  ps_counters want{};
  want.runq_ns = 40;
  EXPECT_COUNTERS_EQ(Lead().proc, want);
  // ADOPTING stays ADOPTING until the handover: starting again changes nothing.
  EXPECT_FALSE(Start());
  EXPECT_EQ(Lead().totals, static_cast<__u32>(PS_TOTALS_ADOPTING));
  EXPECT_COUNTERS_EQ(Lead().proc, want);
}

// ADOPTING -> OWN: the previous leader's totals, every counter and bucket, add to the new
// leader's own.
TEST_F(BpfLogicTest, AdoptAddsThePreviousLeadersTotalsAndOwns) {
  ps_counters own{};
  ps_counters prev{};
  uint64_t v = 1;
  ForEachU64(own, [&](__u64& x) { x = v++; });
  ForEachU64(prev, [&](__u64& x) { x = 1000 * v++; });
  Lead() = ps_task{};
  Lead().was_thread = 1;
  Lead().totals = PS_TOTALS_ADOPTING;
  Lead().proc = own;
  Adopt(prev);
  EXPECT_EQ(Lead().totals, static_cast<__u32>(PS_TOTALS_OWN));
  ps_counters want = own;
  const __u64* p = reinterpret_cast<const __u64*>(&prev);
  size_t i = 0;
  ForEachU64(want, [&](__u64& x) { x += p[i++]; });
  EXPECT_COUNTERS_EQ(Lead().proc, want);
}

// The final switch-out: the last thread sends the exit, a holder of the totals hands them over,
// any other thread does nothing.
TEST_F(BpfLogicTest, FinalStepFollowsTheState) {
  struct Case {
    __u32 group_dead;
    __u32 totals;
    uint32_t want;
  };
  const Case cases[] = {
      {1, PS_TOTALS_OWN, PS_FINAL_EXIT},           {1, PS_TOTALS_ADOPTING, PS_FINAL_EXIT},
      {1, PS_TOTALS_NONE, PS_FINAL_EXIT},          {0, PS_TOTALS_OWN, PS_FINAL_HAND_OVER},
      {0, PS_TOTALS_ADOPTING, PS_FINAL_HAND_OVER}, {0, PS_TOTALS_NONE, PS_FINAL_NOTHING},
  };
  for (const Case& c : cases) {
    Lead() = ps_task{};
    Lead().group_dead = c.group_dead;
    Lead().totals = c.totals;
    EXPECT_EQ(Final(), c.want) << "group_dead=" << c.group_dead << " totals=" << c.totals;
  }
}

}  // namespace

namespace {

// ---------------------------------------------------------------------------------------------
// Off-CPU and contention helpers (core.bpf.h), against the kernel's task states
// (include/linux/sched.h): S 0x1, D 0x2, stopped 0x4 | 0x100, traced 0x8, dead 0x80,
// TASK_IDLE = D | NOLOAD (0x400), TASK_KILLABLE = D | WAKEKILL (0x100), frozen 0x8000.

TEST_F(BpfLogicTest, OffcpuKindFollowsTheTaskState) {
  struct Case {
    uint32_t state;
    uint32_t kind;
  };
  const Case cases[] = {
      {0x0, 0},                          // running: preempted or yielded, stays runnable
      {0x1, PS_STACK_OFFCPU_SLEEP},      // S
      {0x2, PS_STACK_OFFCPU_BLOCKED},    // D
      {0x102, PS_STACK_OFFCPU_BLOCKED},  // TASK_KILLABLE
      {0x402, PS_STACK_OFFCPU_SLEEP},    // TASK_IDLE: an idle kernel thread
      {0x2001, PS_STACK_OFFCPU_SLEEP},   // S | TASK_FREEZABLE
      {0x104, 0},                        // stopped
      {0x8, 0},                          // traced
      {0x80, 0},                         // dead
      {0x8000, 0},                       // frozen
  };
  for (const Case& c : cases) {
    EXPECT_EQ(OffcpuKind(c.state), c.kind) << "state=0x" << std::hex << c.state;
  }
}

TEST_F(BpfLogicTest, OffcpuNsIsTheSpanLessTheWaitAfterWakeup) {
  EXPECT_EQ(OffcpuNs(1000, 5000, 0), 4000u);
  EXPECT_EQ(OffcpuNs(1000, 5000, 1500), 2500u);
  EXPECT_EQ(OffcpuNs(1000, 5000, 4000), 0u);  // all of it waiting: nothing asleep
  EXPECT_EQ(OffcpuNs(1000, 5000, 9000), 0u);  // a migration's wait on another CPU: no underflow
  EXPECT_EQ(OffcpuNs(5000, 5000, 0), 0u);     // not switched in since
  EXPECT_EQ(OffcpuNs(5000, 1000, 0), 0u);     // arrival before the switch-out: still asleep
  EXPECT_EQ(OffcpuNs(1, UINT64_MAX, 0), UINT64_MAX - 1);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 500; ++i) {
    const uint64_t off = rng() >> 2, span = rng() >> 20, runq = rng() >> 20;
    const uint64_t want = span > runq ? span - runq : 0;
    ASSERT_EQ(OffcpuNs(off, off + span, runq), span == 0 ? 0 : want)
        << off << " " << span << " " << runq;
  }
}

TEST_F(BpfLogicTest, WaitEndingIsTheClockLessLastQueued) {
  EXPECT_EQ(WaitEnding(10'000, 4'000), 6'000u);
  EXPECT_EQ(WaitEnding(10'000, 0), 0u);  // not queued (the idle task, a fresh task)
  EXPECT_EQ(WaitEnding(10'000, 10'000), 0u);
  EXPECT_EQ(WaitEnding(10'000, 12'000), 0u);  // queued on a CPU whose clock is ahead
}

TEST_F(BpfLogicTest, StackEpochLiveIsCurrentOrPrevious) {
  EXPECT_TRUE(EpochLive(7, 7));
  EXPECT_TRUE(EpochLive(7, 6));
  EXPECT_FALSE(EpochLive(7, 5));
  EXPECT_FALSE(EpochLive(7, 8));            // from the future: not this map
  EXPECT_TRUE(EpochLive(0x10000, 0xffff));  // the 16-bit epoch of the key wraps
  EXPECT_TRUE(EpochLive(0x10000, 0));
  EXPECT_FALSE(EpochLive(0x10001, 0xffff));
}

}  // namespace
