// SPDX-License-Identifier: Apache-2.0
// Tier 1: decoding of what the BPF side reports (daemon/records.h), on hand-built inputs.
#include "records.h"

#include <string.h>
#include <sys/wait.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "procscope.h"

namespace procscope {
namespace {

using PidList = std::vector<uint32_t>;

// A process record with every counter derived from `seed`, so that mixed-up fields show.
ps_proc_rec Proc(uint32_t tgid, uint64_t start_ns, const char* comm, uint64_t seed) {
  ps_proc_rec r;
  memset(&r, 0, sizeof(r));
  r.key.tgid = tgid;
  r.key.start_ns = start_ns;
  r.ppid = tgid - 1;
  r.uid = 1000 + tgid;
  r.nr_threads = 3;
  r.cgroup_id = 0xc0000 + tgid;
  r.rss_bytes = seed * 4096;
  memcpy(r.comm, comm, strnlen(comm, PS_COMM_LEN));  // no NUL when 16 bytes long
  r.c.cpu_ns = seed * 1'000'000;
  r.c.runq_ns = seed * 1000;
  r.c.vol_cs = seed * 10;
  r.c.invol_cs = seed * 20;
  r.c.min_flt = seed * 30;
  r.c.maj_flt = seed * 40;
  for (int i = 0; i < PS_RUNQ_BUCKETS; ++i) r.c.runq_hist[i] = seed + i;
  r.io.read_bytes = seed * 512;
  r.io.write_bytes = seed * 1024;
  r.io.read_ops = seed;
  r.io.write_ops = seed * 2;
  r.io.read_lat_ns = seed * 7;
  r.io.write_lat_ns = seed * 9;
  r.io.dirtied_bytes = seed * 4096;
  return r;
}

// A running thread's unfolded counters, as the iterator emits them (no comm, no ids).
ps_proc_rec Delta(uint32_t tgid, uint64_t start_ns, uint64_t cpu, uint64_t runq, uint64_t vol,
                  uint64_t invol, uint64_t min, uint64_t maj) {
  ps_proc_rec r;
  memset(&r, 0, sizeof(r));
  r.key.tgid = tgid;
  r.key.start_ns = start_ns;
  r.flags = PS_REC_DELTA;
  r.c.cpu_ns = cpu;
  r.c.runq_ns = runq;
  r.c.vol_cs = vol;
  r.c.invol_cs = invol;
  r.c.min_flt = min;
  r.c.maj_flt = maj;
  return r;
}

std::string Buffer(const std::vector<ps_proc_rec>& recs) {
  std::string buf(recs.size() * sizeof(ps_proc_rec), '\0');
  if (!recs.empty()) memcpy(&buf[0], recs.data(), buf.size());
  return buf;
}

std::vector<uint32_t> Pids(const std::vector<ProcessSample>& samples) {
  std::vector<uint32_t> pids;
  for (const ProcessSample& s : samples) pids.push_back(s.key.tgid);
  return pids;
}

const ProcessSample* Find(const std::vector<ProcessSample>& samples, uint32_t tgid) {
  for (const ProcessSample& s : samples) {
    if (s.key.tgid == tgid) return &s;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// ParseProcessRecords

TEST(ParseProcessRecordsTest, EmptyBufferGivesNoProcesses) {
  absl::StatusOr<std::vector<ProcessSample>> got = ParseProcessRecords("");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->empty());
}

TEST(ParseProcessRecordsTest, PartialRecordIsDataLoss) {
  const std::string whole = Buffer({Proc(10, 1, "a", 1), Proc(11, 1, "b", 2)});
  for (size_t size :
       {size_t{1}, sizeof(ps_proc_rec) - 1, sizeof(ps_proc_rec) + 1, 2 * sizeof(ps_proc_rec) - 8}) {
    SCOPED_TRACE(size);
    absl::StatusOr<std::vector<ProcessSample>> got =
        ParseProcessRecords(absl::string_view(whole.data(), size));
    EXPECT_TRUE(absl::IsDataLoss(got.status())) << got.status();
  }
  std::string longer = whole + "x";
  EXPECT_TRUE(absl::IsDataLoss(ParseProcessRecords(longer).status()));
}

TEST(ParseProcessRecordsTest, CopiesEveryFieldOfAProcess) {
  const ps_proc_rec r = Proc(4242, 987654321, "worker", 5);
  absl::StatusOr<std::vector<ProcessSample>> got = ParseProcessRecords(Buffer({r}));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 1u);
  const ProcessSample& s = (*got)[0];
  EXPECT_EQ(s.key.tgid, 4242u);
  EXPECT_EQ(s.key.start_ns, 987654321u);
  EXPECT_EQ(s.ppid, r.ppid);
  EXPECT_EQ(s.uid, r.uid);
  EXPECT_EQ(s.nr_threads, r.nr_threads);
  EXPECT_EQ(s.cgroup_id, r.cgroup_id);
  EXPECT_EQ(s.rss_bytes, r.rss_bytes);
  EXPECT_EQ(s.comm, "worker");
  EXPECT_EQ(memcmp(&s.counters, &r.c, sizeof(r.c)), 0);
  EXPECT_EQ(memcmp(&s.io, &r.io, sizeof(r.io)), 0);
}

TEST(ParseProcessRecordsTest, SortsByPidNumerically) {
  absl::StatusOr<std::vector<ProcessSample>> got =
      ParseProcessRecords(Buffer({Proc(1000, 1, "c", 1), Proc(99, 1, "b", 2), Proc(5, 1, "a", 3),
                                  Proc(70000, 1, "d", 4), Proc(100, 1, "e", 5)}));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(Pids(*got), (PidList{5, 99, 100, 1000, 70000}));
  // The records moved with their pids.
  EXPECT_EQ(Find(*got, 5)->comm, "a");
  EXPECT_EQ(Find(*got, 99)->comm, "b");
  EXPECT_EQ(Find(*got, 70000)->comm, "d");
}

// Deltas (running threads' unfolded counters) go to the process with the same tgid *and* start
// time, wherever they appear in the buffer, and never to a neighbour.
TEST(ParseProcessRecordsTest, DeltasAreAddedToTheirOwnProcessOnly) {
  const ps_proc_rec a = Proc(100, 10'000, "alpha", 1);
  const ps_proc_rec b = Proc(200, 20'000, "beta", 2);
  const ps_proc_rec c = Proc(300, 30'000, "gamma", 3);
  absl::StatusOr<std::vector<ProcessSample>> got = ParseProcessRecords(Buffer({
      Delta(200, 20'000, 1, 2, 3, 4, 5, 6),  // before its process
      c,
      a,
      b,
      Delta(200, 20'000, 10, 20, 30, 40, 50, 60),  // a second thread of 200
      Delta(100, 10'000, 7, 0, 0, 1, 0, 0),
  }));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(Pids(*got), (PidList{100, 200, 300}));

  const ProcessSample* pa = Find(*got, 100);
  EXPECT_EQ(pa->counters.cpu_ns, a.c.cpu_ns + 7);
  EXPECT_EQ(pa->counters.runq_ns, a.c.runq_ns);
  EXPECT_EQ(pa->counters.vol_cs, a.c.vol_cs);
  EXPECT_EQ(pa->counters.invol_cs, a.c.invol_cs + 1);
  EXPECT_EQ(pa->counters.min_flt, a.c.min_flt);
  EXPECT_EQ(pa->counters.maj_flt, a.c.maj_flt);

  const ProcessSample* pb = Find(*got, 200);
  EXPECT_EQ(pb->counters.cpu_ns, b.c.cpu_ns + 11);
  EXPECT_EQ(pb->counters.runq_ns, b.c.runq_ns + 22);
  EXPECT_EQ(pb->counters.vol_cs, b.c.vol_cs + 33);
  EXPECT_EQ(pb->counters.invol_cs, b.c.invol_cs + 44);
  EXPECT_EQ(pb->counters.min_flt, b.c.min_flt + 55);
  EXPECT_EQ(pb->counters.maj_flt, b.c.maj_flt + 66);
  // A delta changes counters only: the process's identity, histogram and I/O stay its own.
  EXPECT_EQ(pb->comm, "beta");
  EXPECT_EQ(pb->ppid, b.ppid);
  EXPECT_EQ(pb->nr_threads, b.nr_threads);
  EXPECT_EQ(memcmp(pb->counters.runq_hist, b.c.runq_hist, sizeof(b.c.runq_hist)), 0);
  EXPECT_EQ(memcmp(&pb->io, &b.io, sizeof(b.io)), 0);

  const ProcessSample* pc = Find(*got, 300);
  EXPECT_EQ(memcmp(&pc->counters, &c.c, sizeof(c.c)), 0);
}

// A pid reused within one pass: two incarnations of tgid 500 (different start times) stay two
// processes, and each delta goes to its own incarnation.
TEST(ParseProcessRecordsTest, SameTgidWithAnotherStartTimeDoesNotMerge) {
  const ps_proc_rec old_inc = Proc(500, 1'000, "old", 1);
  const ps_proc_rec new_inc = Proc(500, 9'000, "new", 2);
  absl::StatusOr<std::vector<ProcessSample>> got = ParseProcessRecords(Buffer({
      old_inc,
      new_inc,
      Delta(500, 9'000, 100, 0, 0, 0, 0, 0),
      Delta(500, 1'000, 5, 0, 0, 0, 0, 0),
  }));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 2u);
  for (const ProcessSample& s : *got) {
    EXPECT_EQ(s.key.tgid, 500u);
    if (s.key.start_ns == 1'000) {
      EXPECT_EQ(s.comm, "old");
      EXPECT_EQ(s.counters.cpu_ns, old_inc.c.cpu_ns + 5);
    } else {
      EXPECT_EQ(s.key.start_ns, 9'000u);
      EXPECT_EQ(s.comm, "new");
      EXPECT_EQ(s.counters.cpu_ns, new_inc.c.cpu_ns + 100);
    }
  }
  EXPECT_NE((*got)[0].key.start_ns, (*got)[1].key.start_ns);
}

// Many incarnations of one pid in one buffer (more than a hash table can keep apart by luck):
// every delta still finds exactly its own incarnation.
TEST(ParseProcessRecordsTest, ManyIncarnationsOfOnePidStayApart) {
  constexpr uint64_t kIncarnations = 500;
  std::vector<ps_proc_rec> recs;
  for (uint64_t i = 0; i < kIncarnations; ++i) {
    ps_proc_rec p = Proc(4000, 1'000'000 + i, "inc", 0);
    p.c.cpu_ns = i * 1000;
    recs.push_back(p);
  }
  for (uint64_t i = 0; i < kIncarnations; ++i) {
    recs.push_back(Delta(4000, 1'000'000 + i, i + 1, 0, 0, 0, 0, 0));
  }
  absl::StatusOr<std::vector<ProcessSample>> got = ParseProcessRecords(Buffer(recs));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), kIncarnations);
  for (const ProcessSample& s : *got) {
    const uint64_t i = s.key.start_ns - 1'000'000;
    ASSERT_LT(i, kIncarnations);
    EXPECT_EQ(s.counters.cpu_ns, i * 1000 + i + 1) << "start_ns=" << s.key.start_ns;
  }
}

// A delta of a process that is not in the pass (it began exiting) is dropped: it neither creates
// a process nor lands on one with the same pid and another start time.
TEST(ParseProcessRecordsTest, DeltaOfAbsentProcessIsDropped) {
  const ps_proc_rec p = Proc(600, 6'000, "present", 3);
  absl::StatusOr<std::vector<ProcessSample>> got = ParseProcessRecords(Buffer({
      Delta(700, 7'000, 1, 1, 1, 1, 1, 1),     // no such process
      p, Delta(600, 5'999, 1, 1, 1, 1, 1, 1),  // earlier incarnation of pid 600
  }));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(Pids(*got), (PidList{600}));
  EXPECT_EQ(memcmp(&(*got)[0].counters, &p.c, sizeof(p.c)), 0);

  // Only deltas: no process at all.
  got = ParseProcessRecords(Buffer({Delta(800, 1, 1, 1, 1, 1, 1, 1)}));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->empty());
}

TEST(ParseProcessRecordsTest, CommIsCutAtNulOrTakesAllSixteenBytes) {
  ps_proc_rec nul = Proc(1, 1, "", 1);
  memcpy(nul.comm, "bash\0garbage!!!", 16);  // stale bytes after the NUL
  ps_proc_rec full = Proc(2, 1, "", 1);
  memcpy(full.comm, "abcdefghijklmnop", 16);  // no NUL at all
  ps_proc_rec empty = Proc(3, 1, "", 1);
  ps_proc_rec fifteen = Proc(4, 1, "abcdefghijklmno", 1);
  absl::StatusOr<std::vector<ProcessSample>> got =
      ParseProcessRecords(Buffer({nul, full, empty, fifteen}));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 4u);
  EXPECT_EQ(Find(*got, 1)->comm, "bash");
  EXPECT_EQ(Find(*got, 2)->comm, "abcdefghijklmnop");
  EXPECT_EQ(Find(*got, 2)->comm.size(), 16u);
  EXPECT_EQ(Find(*got, 3)->comm, "");
  EXPECT_EQ(Find(*got, 4)->comm, "abcdefghijklmno");
}

// The daemon parses every pass into the same vector: nothing of the previous pass may survive,
// whether the new pass is longer or shorter, and the result is what a fresh parse gives.
TEST(ParseProcessRecordsTest, ReusedOutputHoldsOnlyTheNewPass) {
  std::vector<ps_proc_rec> big;
  for (uint32_t pid = 10; pid < 2010; ++pid) big.push_back(Proc(pid, pid, "many", pid));
  std::vector<ProcessSample> out;
  ASSERT_TRUE(ParseProcessRecords(Buffer(big), {}, out).ok());
  ASSERT_EQ(out.size(), 2000u);

  const std::string small =
      Buffer({Proc(7, 70, "seven", 7), Delta(7, 70, 5, 0, 0, 0, 0, 0), Proc(3, 30, "three", 3)});
  ASSERT_TRUE(ParseProcessRecords(small, {}, out).ok());
  absl::StatusOr<std::vector<ProcessSample>> fresh = ParseProcessRecords(small);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  ASSERT_EQ(Pids(out), (PidList{3, 7}));
  ASSERT_EQ(out.size(), fresh->size());
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].key, (*fresh)[i].key);
    EXPECT_EQ(out[i].comm, (*fresh)[i].comm);
    EXPECT_EQ(memcmp(&out[i].counters, &(*fresh)[i].counters, sizeof(ps_counters)), 0);
    EXPECT_EQ(memcmp(&out[i].io, &(*fresh)[i].io, sizeof(ps_io)), 0);
  }
  EXPECT_EQ(Find(out, 7)->counters.cpu_ns, 7'000'000u + 5);
  // From 2,000 processes down to 2: the peak's memory is not kept.
  EXPECT_LT(out.capacity(), 2000u);

  // A damaged buffer leaves no stale processes behind either.
  EXPECT_TRUE(absl::IsDataLoss(ParseProcessRecords(small.substr(1), {}, out)));
  EXPECT_TRUE(out.empty());
}

// The iterator's "unchanged since the record you last received": its first 32 bytes only.
std::string Same(uint32_t tgid, uint64_t start_ns) {
  ps_proc_rec r;
  memset(&r, 0, sizeof(r));
  r.key.tgid = tgid;
  r.key.start_ns = start_ns;
  r.flags = PS_REC_SAME;
  return std::string(reinterpret_cast<const char*>(&r), PS_REC_SAME_SIZE);
}

TEST(ParseProcessRecordsTest, SameRecordStandsForThePreviousSample) {
  std::vector<ProcessSample> prev;
  ASSERT_TRUE(
      ParseProcessRecords(Buffer({Proc(10, 1, "ten", 10), Proc(20, 2, "twenty", 20)}), {}, prev)
          .ok());
  std::vector<ProcessSample> out;
  const std::string buf =
      Same(10, 1) + Buffer({Proc(20, 2, "twenty", 21), Proc(30, 3, "thirty", 30)});
  absl::Status s = ParseProcessRecords(buf, prev, out);
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_EQ(Pids(out), (PidList{10, 20, 30}));
  EXPECT_TRUE(out[0].unchanged);
  EXPECT_EQ(out[0].comm, "ten");
  EXPECT_EQ(out[0].ppid, 9u);
  EXPECT_EQ(out[0].rss_bytes, 10u * 4096);
  EXPECT_EQ(memcmp(&out[0].counters, &prev[0].counters, sizeof(ps_counters)), 0);
  EXPECT_EQ(memcmp(&out[0].io, &prev[0].io, sizeof(ps_io)), 0);
  EXPECT_FALSE(out[1].unchanged);
  EXPECT_EQ(out[1].counters.cpu_ns, 21'000'000u);
  EXPECT_FALSE(out[2].unchanged);

  // Unchanged again: the copy of a copy is still the first sample.
  std::vector<ProcessSample> again;
  ASSERT_TRUE(ParseProcessRecords(Same(10, 1) + Same(30, 3), out, again).ok());
  ASSERT_EQ(Pids(again), (PidList{10, 30}));
  EXPECT_EQ(again[0].counters.cpu_ns, 10'000'000u);
  EXPECT_EQ(again[1].comm, "thirty");
}

// The daemon's form: an unchanged process is a key, checked against what the session received.
TEST(ParsePassRecordsTest, UnchangedProcessesAreKeysOfWhatTheSessionReceived) {
  SessionKeys received;
  PassRecords pass;
  ASSERT_TRUE(ParsePassRecords(Buffer({Proc(20, 2, "twenty", 20), Proc(10, 1, "ten", 10),
                                       Delta(20, 2, 5, 0, 0, 0, 0, 0)}),
                               received, pass)
                  .ok());
  ASSERT_EQ(Pids(pass.whole), (PidList{10, 20}));
  EXPECT_TRUE(pass.unchanged.empty());
  EXPECT_TRUE(pass.whole[1].with_deltas);
  // 20 had a delta added: a copy of it would count that twice, so it may not come back SAME.
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0], (ps_key{10, 0, 1}));

  absl::Status s =
      ParsePassRecords(Same(10, 1) + Buffer({Proc(20, 2, "twenty", 21)}), received, pass);
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_EQ(pass.unchanged.size(), 1u);
  EXPECT_EQ(pass.unchanged[0], (ps_key{10, 0, 1}));
  ASSERT_EQ(Pids(pass.whole), (PidList{20}));
  EXPECT_EQ(pass.whole[0].counters.cpu_ns, 21'000'000u);
  EXPECT_EQ(received.size(), 2u);  // 10 still, and 20 now whole without deltas

  // Unchanged again, both: nothing whole at all.
  ASSERT_TRUE(ParsePassRecords(Same(10, 1) + Same(20, 2), received, pass).ok());
  EXPECT_TRUE(pass.whole.empty());
  EXPECT_EQ(pass.unchanged.size(), 2u);

  // Another incarnation of pid 20, and a pid never sent: the caller must start a new session;
  // neither the output nor what the session received is touched.
  const SessionKeys before = received;
  for (const std::string& buf : {Same(20, 3), Same(30, 3), Same(10, 1) + Same(30, 3)}) {
    s = ParsePassRecords(buf, received, pass);
    EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
    EXPECT_TRUE(pass.whole.empty());
    EXPECT_TRUE(pass.unchanged.empty());
    EXPECT_EQ(received, before);
  }
  EXPECT_TRUE(absl::IsDataLoss(ParsePassRecords(Same(10, 1).substr(1), received, pass)));
}

// The compact form gives the memory of a peak back: 3,000 processes, then 3.
TEST(ParsePassRecordsTest, FewerProcessesGiveThePeaksMemoryBack) {
  std::vector<ps_proc_rec> many;
  for (uint32_t pid = 1; pid <= 3000; ++pid) many.push_back(Proc(pid, pid, "p", pid));
  SessionKeys received;
  PassRecords pass;
  ASSERT_TRUE(ParsePassRecords(Buffer(many), received, pass).ok());
  std::string same;
  for (uint32_t pid = 1; pid <= 3000; ++pid) same += Same(pid, pid);
  ASSERT_TRUE(ParsePassRecords(same, received, pass).ok());
  EXPECT_EQ(pass.unchanged.size(), 3000u);
  ASSERT_TRUE(ParsePassRecords(Same(1, 1) + Same(2, 2) + Same(3, 3), received, pass).ok());
  EXPECT_EQ(pass.unchanged.size(), 3u);
  EXPECT_LT(pass.whole.capacity(), 3000u);
  EXPECT_LT(pass.unchanged.capacity(), 3000u);
  EXPECT_LT(received.capacity(), 3000u);
}

TEST(ParseProcessRecordsTest, SameRecordWithoutItsSampleIsFailedPrecondition) {
  std::vector<ProcessSample> prev;
  const std::string with_delta =
      Buffer({Proc(10, 1, "ten", 10), Delta(10, 1, 5, 0, 0, 0, 0, 0), Proc(20, 2, "b", 20)});
  ASSERT_TRUE(ParseProcessRecords(with_delta, {}, prev).ok());
  ASSERT_TRUE(prev[0].with_deltas);
  ASSERT_FALSE(prev[1].with_deltas);
  std::vector<ProcessSample> out;
  // Never received, an earlier incarnation of the pid, no previous read at all, and a sample
  // that had a running thread's counters added (a copy would keep them twice).
  for (const auto& [buf, from] : std::vector<std::pair<std::string, std::vector<ProcessSample>>>{
           {Same(11, 1), prev}, {Same(20, 1), prev}, {Same(20, 2), {}}, {Same(10, 1), prev}}) {
    absl::Status s = ParseProcessRecords(Buffer({Proc(5, 5, "five", 5)}) + buf, from, out);
    EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
    EXPECT_TRUE(out.empty());
  }
  EXPECT_TRUE(ParseProcessRecords(Same(20, 2), prev, out).ok());
  // A record cut inside its first 32 bytes is damage, not a question of sessions.
  EXPECT_TRUE(absl::IsDataLoss(
      ParseProcessRecords(Same(20, 2).substr(0, PS_REC_SAME_SIZE - 1), prev, out)));
}

TEST(CommFromKernelTest, StopsAtNulOrArrayEnd) {
  const char full[PS_COMM_LEN] = {'0', '1', '2', '3', '4', '5', '6', '7',
                                  '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  EXPECT_EQ(CommFromKernel(full), "0123456789abcdef");
  const char with_nul[PS_COMM_LEN] = {'s', 'h', '\0', 'x', 'y'};
  EXPECT_EQ(CommFromKernel(with_nul), "sh");
}

// ---------------------------------------------------------------------------------------------
// DecodeExitStatus, against what the libc wait(2) macros make of the same status.

void ExpectMatchesWaitMacros(uint32_t status) {
  SCOPED_TRACE(testing::Message() << "status=0x" << std::hex << status);
  const int w = static_cast<int>(status);
  const ExitStatus s = DecodeExitStatus(status);
  if (WIFEXITED(w)) {
    EXPECT_EQ(s.signal, 0);
    EXPECT_EQ(s.exit_code, WEXITSTATUS(w));
    EXPECT_FALSE(s.core_dumped);
  } else {
    ASSERT_TRUE(WIFSIGNALED(w));
    EXPECT_EQ(s.signal, WTERMSIG(w));
    EXPECT_EQ(s.core_dumped, WCOREDUMP(w) != 0);
  }
}

TEST(DecodeExitStatusTest, NormalExit) {
  const ExitStatus s = DecodeExitStatus(0x300);  // exit(3)
  EXPECT_EQ(s.exit_code, 3);
  EXPECT_EQ(s.signal, 0);
  EXPECT_FALSE(s.core_dumped);
  ExpectMatchesWaitMacros(0x300);

  EXPECT_EQ(DecodeExitStatus(0).exit_code, 0);
  EXPECT_EQ(DecodeExitStatus(0xff00).exit_code, 255);
  ExpectMatchesWaitMacros(0);
  ExpectMatchesWaitMacros(0xff00);
}

TEST(DecodeExitStatusTest, KilledBySignal) {
  ExitStatus s = DecodeExitStatus(11);  // SIGSEGV, no core
  EXPECT_EQ(s.signal, SIGSEGV);
  EXPECT_FALSE(s.core_dumped);
  ExpectMatchesWaitMacros(11);

  s = DecodeExitStatus(0x8b);  // SIGSEGV, core dumped
  EXPECT_EQ(s.signal, SIGSEGV);
  EXPECT_TRUE(s.core_dumped);
  ExpectMatchesWaitMacros(0x8b);

  s = DecodeExitStatus(9);  // SIGKILL
  EXPECT_EQ(s.signal, SIGKILL);
  EXPECT_FALSE(s.core_dumped);
  ExpectMatchesWaitMacros(9);
}

TEST(DecodeExitStatusTest, AgreesWithWaitMacrosOnEveryExitAndSignal) {
  for (uint32_t code = 0; code < 256; ++code) ExpectMatchesWaitMacros(code << 8);
  for (uint32_t sig = 1; sig < 65; ++sig) {
    ExpectMatchesWaitMacros(sig);
    ExpectMatchesWaitMacros(sig | 0x80);
  }
}

// ---------------------------------------------------------------------------------------------
// SignalName

TEST(SignalNameTest, NamedSignals) {
  EXPECT_EQ(SignalName(SIGSEGV), "SIGSEGV");
  EXPECT_EQ(SignalName(11), "SIGSEGV");
  EXPECT_EQ(SignalName(SIGKILL), "SIGKILL");
  EXPECT_EQ(SignalName(SIGTERM), "SIGTERM");
  EXPECT_EQ(SignalName(SIGABRT), "SIGABRT");
  EXPECT_EQ(SignalName(SIGHUP), "SIGHUP");
}

TEST(SignalNameTest, UnnamedAndRealtimeSignalsGetTheirNumber) {
  EXPECT_EQ(SignalName(42), "SIG42");
  EXPECT_EQ(SignalName(SIGRTMAX), "SIG" + std::to_string(SIGRTMAX));
  EXPECT_EQ(SignalName(100), "SIG100");
  EXPECT_EQ(SignalName(127), "SIG127");
}

TEST(SignalNameTest, NoSignalIsEmpty) {
  EXPECT_EQ(SignalName(0), "");
  EXPECT_EQ(SignalName(-1), "");
}

// ---------------------------------------------------------------------------------------------
// EscapeForDisplay

void ExpectSafe(absl::string_view raw) {
  const std::string out = EscapeForDisplay(raw);
  for (unsigned char c : out) {
    EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "byte 0x" << std::hex << int{c} << " in " << out;
    EXPECT_NE(c, '"') << out;
  }
  EXPECT_EQ(out.find('\n'), std::string::npos);
}

TEST(EscapeForDisplayTest, PrintableNamesAreUnchanged) {
  for (const char* name : {"bash", "kworker/0:1H", "python3.11", "my app (x) [1]", "a-b_c.d~e",
                           "!#$%&'()*+,-./", "0123456789abcdef", ""}) {
    EXPECT_EQ(EscapeForDisplay(name), name);
  }
}

TEST(EscapeForDisplayTest, HostileNamesBecomePrintableAscii) {
  const std::string with_nul("a\0b", 3);
  const std::vector<std::string> hostile = {
      "evil\"name",  "back\\slash",      "two\nlines",  "cr\rlf",
      "\x1b[31mred", "\x1b]0;title\x07", "bad\xffutf8", "\xc3\x28",  // invalid UTF-8 sequence
      "tab\there",   with_nul,           "\x7f del",    "\"\\\n\x1b\xff\x80\x01",
  };
  for (const std::string& h : hostile) {
    SCOPED_TRACE(testing::PrintToString(h));
    ExpectSafe(h);
  }
  EXPECT_EQ(EscapeForDisplay("evil\"name"), "evil\\x22name");
  EXPECT_EQ(EscapeForDisplay("back\\slash"), "back\\x5cslash");
  EXPECT_EQ(EscapeForDisplay("two\nlines"), "two\\x0alines");
  EXPECT_EQ(EscapeForDisplay("\x1b[31mred"), "\\x1b[31mred");
  EXPECT_EQ(EscapeForDisplay("bad\xffutf8"), "bad\\xffutf8");
  EXPECT_EQ(EscapeForDisplay(with_nul), "a\\x00b");  // the NUL is not a terminator
  EXPECT_EQ(EscapeForDisplay("\x7f"), "\\x7f");
}

// Only printable ASCII is kept: multi-byte UTF-8 is escaped byte by byte too.
TEST(EscapeForDisplayTest, NonAsciiIsEscapedBytewise) {
  EXPECT_EQ(EscapeForDisplay("caf\xc3\xa9"), "caf\\xc3\\xa9");
}

// Every single byte has its own rendering, so two different names never display the same (the
// backslash itself is escaped: a name spelled "\x41" is not shown as "A").
TEST(EscapeForDisplayTest, EveryByteIsSafeAndDistinct) {
  std::set<std::string> seen;
  for (int b = 0; b < 256; ++b) {
    const std::string raw(1, static_cast<char>(b));
    const std::string out = EscapeForDisplay(raw);
    SCOPED_TRACE(b);
    ExpectSafe(raw);
    EXPECT_TRUE(seen.insert(out).second) << "duplicate rendering " << out;
    if (b >= 0x20 && b < 0x7f && b != '\\' && b != '"') {
      EXPECT_EQ(out, raw);
    } else {
      EXPECT_EQ(out.size(), 4u) << out;  // \xNN
    }
  }
  EXPECT_NE(EscapeForDisplay("\\x41"), EscapeForDisplay("A"));
}

}  // namespace
TEST(ToValidUtf8Test, KeepsValidTextAndReplacesEveryBadByte) {
  EXPECT_EQ(ToValidUtf8("nginx: worker"), "nginx: worker");
  EXPECT_EQ(ToValidUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  const std::string kFffd = "\xEF\xBF\xBD";
  EXPECT_EQ(ToValidUtf8("a\xFF"
                        "b"),
            "a" + kFffd + "b");
  EXPECT_EQ(ToValidUtf8("\xC3"), kFffd);                                      // truncated sequence
  EXPECT_EQ(ToValidUtf8("\xC0\xAF"), kFffd + kFffd);                          // overlong '/'
  EXPECT_EQ(ToValidUtf8("\xED\xA0\x80"), kFffd + kFffd + kFffd);              // UTF-16 surrogate
  EXPECT_EQ(ToValidUtf8("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);  // > U+10FFFF
  EXPECT_EQ(ToValidUtf8(std::string("a\0b", 3)), "a" + kFffd + "b");
}

}  // namespace procscope
