// SPDX-License-Identifier: Apache-2.0
// The carry-through test of the counter lists (bpf/procscope.h): every counter, set to a value of
// its own, comes out everywhere it should — the parsed iterator records, the process table, the
// exposition, the API message, the exit event, and a journal round trip back into the group
// totals. The cases are generated from the lists themselves, so a counter added to a list is
// covered without touching this file, and one dropped anywhere fails here by name.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "counters.h"
#include "counters_proto.h"
#include "gtest/gtest.h"
#include "journal.h"
#include "metrics.h"
#include "process_table.h"
#include "records.h"

namespace procscope {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);
constexpr uint32_t kPid = 4242;
constexpr uint64_t kStart = 777;
constexpr char kComm[] = "carry";

// One counter of the lists (one element, for an array), and where it shows.
struct Field {
  std::string name;  // "cpu_ns", "runq_hist[3]", "dirtied_bytes"
  bool io = false;
  size_t offset = 0;  // of the __u64 in ps_counters or ps_io
  const char* api = nullptr;
  int element = -1;  // index into the repeated API field, for an array
  bool seconds = false;
  const char* group_family = nullptr;
  const char* process_family = nullptr;
  const char* label = nullptr;
  const char* label_value = nullptr;
};

std::vector<Field> AllFields() {
  std::vector<Field> out;
#define PS_SCALAR(f, is_io, type)                                                \
  out.push_back({#f, is_io, offsetof(type, f), counter_meta::f::kApiName, -1,    \
                 counter_meta::f::kScale == counter_meta::kNanoseconds,          \
                 counter_meta::f::kGroupFamily, counter_meta::f::kProcessFamily, \
                 counter_meta::f::kLabel, counter_meta::f::kLabelValue});
#define PS_FIELD(f, ...) PS_SCALAR(f, false, ps_counters)
#define PS_IO(f) PS_SCALAR(f, true, ps_io)
#define PS_ARRAY(f, n)                                                                          \
  for (int i = 0; i < (n); ++i) {                                                               \
    out.push_back({absl::StrCat(#f, "[", i, "]"), false, offsetof(ps_counters, f) + 8 * i,      \
                   counter_meta::f::kApiName, i, false, counter_meta::f::kGroupFamily, nullptr, \
                   nullptr, nullptr});                                                          \
  }
  PS_SCALAR_FIELDS(PS_FIELD)
  PS_COUNTER_ARRAYS(PS_ARRAY)
  PS_IO_FIELDS(PS_IO)
#undef PS_ARRAY
#undef PS_IO
#undef PS_FIELD
#undef PS_SCALAR
  return out;
}

uint64_t& Ref(const Field& f, ps_counters& c, ps_io& io) {
  char* base = f.io ? reinterpret_cast<char*>(&io) : reinterpret_cast<char*>(&c);
  return *reinterpret_cast<uint64_t*>(base + f.offset);
}
uint64_t Get(const Field& f, const ps_counters& c, const ps_io& io) {
  return Ref(f, const_cast<ps_counters&>(c), const_cast<ps_io&>(io));
}

// Distinct per field and per source, so that a swapped or dropped field shows.
uint64_t Value(size_t i, uint64_t source) { return source * 1'000'000'007ull + (i + 1) * 1'009; }

// A field's value in an API message (v1::Process or v1::ExitEvent), by reflection on the name
// model/counters.h gives it, in the kernel's unit; false if the message has no such field.
bool ApiValue(const google::protobuf::Message& m, const Field& f, double* raw) {
  const google::protobuf::Descriptor* d = m.GetDescriptor();
  const google::protobuf::FieldDescriptor* fd = d->FindFieldByName(f.api);
  if (fd == nullptr) return false;
  const google::protobuf::Reflection* r = m.GetReflection();
  using FD = google::protobuf::FieldDescriptor;
  if (fd->is_repeated()) {
    if (f.element < 0 || f.element >= r->FieldSize(m, fd) || fd->cpp_type() != FD::CPPTYPE_UINT64)
      return false;
    *raw = static_cast<double>(r->GetRepeatedUInt64(m, fd, f.element));
    return true;
  }
  if (fd->cpp_type() == FD::CPPTYPE_DOUBLE) {
    *raw = r->GetDouble(m, fd) * (f.seconds ? 1e9 : 1);
  } else if (fd->cpp_type() == FD::CPPTYPE_UINT64) {
    *raw = static_cast<double>(r->GetUInt64(m, fd));
  } else {
    return false;
  }
  return true;
}

// Sample lines of the text exposition: "name{labels}" -> value.
std::map<std::string, double> Samples(const std::string& text) {
  std::map<std::string, double> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (line[0] == '#') continue;
    const size_t sp = line.rfind(' ');
    double v = 0;
    if (sp != absl::string_view::npos && absl::SimpleAtod(line.substr(sp + 1), &v)) {
      out[std::string(line.substr(0, sp))] = v;
    }
  }
  return out;
}

std::string SeriesName(const char* family, const std::string& labels, const Field& f) {
  std::string l = labels;
  if (f.label != nullptr) absl::StrAppend(&l, ",", f.label, "=\"", f.label_value, "\"");
  return absl::StrCat(family, "{", l, "}");
}

class FakeIdentities : public IdentitySource {
 public:
  absl::StatusOr<Identity> Read(pid_t, uint64_t) override {
    Identity id;
    id.resolved = true;
    id.exe = "/usr/bin/carry";
    id.user = "root";
    return id;
  }
};

class CounterCarryTest : public ::testing::Test {
 protected:
  CounterCarryTest() : fields_(AllFields()) {}

  ProcessTable MakeTable() {
    TableOptions o;
    o.group_by = GroupBy::kComm;
    o.exit_grace = absl::Seconds(5);
    o.group_idle_expiry = absl::Minutes(10);
    EXPECT_TRUE(ValidateTableOptions(o).ok());
    return ProcessTable(o, &ids_);
  }

  // The iterator's bytes for one process: its record with source `source`'s values (scaled by
  // `num`/`den`), and a PS_REC_DELTA record of a running thread adding `i + 1` to each counter.
  std::string IteratorBytes(uint64_t source, uint64_t num, uint64_t den) {
    ps_proc_rec rec{};
    rec.key = {kPid, 0, kStart};
    rec.nr_threads = 2;
    memcpy(rec.comm, kComm, sizeof(kComm));
    ps_proc_rec delta{};
    delta.key = rec.key;
    delta.flags = PS_REC_DELTA;
    for (size_t i = 0; i < fields_.size(); ++i) {
      Ref(fields_[i], rec.c, rec.io) = Value(i, source) * num / den;
      if (!fields_[i].io) Ref(fields_[i], delta.c, delta.io) = i + 1;
    }
    std::string buf(reinterpret_cast<const char*>(&rec), sizeof(rec));
    buf.append(reinterpret_cast<const char*>(&delta), sizeof(delta));
    return buf;
  }
  // What a live read of IteratorBytes(source, 1, 1) amounts to: the deltas added to counters.
  uint64_t LiveValue(size_t i, uint64_t source) const {
    return Value(i, source) + (fields_[i].io ? 0 : i + 1);
  }

  std::vector<Field> fields_;
  FakeIdentities ids_;
};

TEST_F(CounterCarryTest, ListsHaveFieldsOfEveryKind) {
  // The generated cases are the lists: at least what procscope has today.
  EXPECT_GE(fields_.size(), 6u + PS_RUNQ_BUCKETS + 7u);
  EXPECT_EQ(sizeof(ps_counters) + sizeof(ps_io), fields_.size() * 8) << "a field not in a list";
}

TEST_F(CounterCarryTest, EveryCounterIsCarriedFromTheKernelRecordToEveryOutput) {
  // 1. The iterator's records, parsed: the delta adds to the counters.
  absl::StatusOr<std::vector<ProcessSample>> half = ParseProcessRecords(IteratorBytes(1, 1, 2));
  absl::StatusOr<std::vector<ProcessSample>> full = ParseProcessRecords(IteratorBytes(1, 1, 1));
  ASSERT_TRUE(half.ok() && full.ok());
  ASSERT_EQ(full->size(), 1u);
  for (size_t i = 0; i < fields_.size(); ++i) {
    EXPECT_EQ(Get(fields_[i], (*full)[0].counters, (*full)[0].io), LiveValue(i, 1))
        << "ParseProcessRecords: " << fields_[i].name;
  }

  // 2. The process table: two passes, the second higher (KeepMax), into the process and group.
  ProcessTable table = MakeTable();
  table.ApplySamples(*half, kT0);
  table.ApplySamples(*full, kT0 + absl::Seconds(1));
  std::vector<ProcessInfo> procs = table.Processes();
  std::vector<GroupInfo> groups = table.Groups();
  ASSERT_EQ(procs.size(), 1u);
  ASSERT_EQ(groups.size(), 1u);
  for (size_t i = 0; i < fields_.size(); ++i) {
    EXPECT_EQ(Get(fields_[i], procs[0].counters, procs[0].io), LiveValue(i, 1))
        << "ProcessTable process: " << fields_[i].name;
    EXPECT_EQ(Get(fields_[i], groups[0].counters, groups[0].io), LiveValue(i, 1))
        << "ProcessTable group: " << fields_[i].name;
  }

  // 3. The exposition: each counter's group series, and its process series where it has one.
  std::vector<std::vector<ResourceRate>> rates(kNumResources);
  rates[static_cast<int>(Resource::kCpu)].push_back({procs[0].key, 1.0});
  ExportInput in;
  in.processes = &procs;
  in.groups = &groups;
  in.rates = &rates;
  uint64_t dropped = 0;
  const std::map<std::string, double> samples =
      Samples(RenderMetrics(in, ExportOptions{}, &dropped));
  const std::string group_labels = absl::StrCat("group=\"", kComm, "\"");
  const std::string proc_labels =
      absl::StrCat("pid=\"", kPid, "\",comm=\"", kComm, "\",group=\"", kComm, "\"");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < fields_.size(); ++i) {
    const Field& f = fields_[i];
    const double want = static_cast<double>(LiveValue(i, 1)) / (f.seconds ? 1e9 : 1);
    if (f.element >= 0) {  // a histogram bucket: cumulative, bounded by 2^(i+1) us
      cumulative += LiveValue(i, 1);
      const std::string le =
          f.element == PS_RUNQ_BUCKETS - 1
              ? "+Inf"
              : absl::StrCat(std::ldexp(1e-6, f.element + 1));  // as %.16g prints it
      auto it =
          samples.find(absl::StrCat(f.group_family, "_bucket{", group_labels, ",le=\"", le, "\"}"));
      if (it == samples.end()) {  // le formatting differs: find the element-th bucket line
        std::vector<double> buckets;
        for (const auto& [name, v] : samples) {
          if (absl::StartsWith(name, absl::StrCat(f.group_family, "_bucket{", group_labels))) {
            buckets.push_back(v);
          }
        }
        std::sort(buckets.begin(), buckets.end());
        ASSERT_EQ(buckets.size(), static_cast<size_t>(PS_RUNQ_BUCKETS)) << f.name;
        EXPECT_DOUBLE_EQ(buckets[f.element], static_cast<double>(cumulative)) << f.name;
      } else {
        EXPECT_DOUBLE_EQ(it->second, static_cast<double>(cumulative)) << f.name;
      }
      continue;
    }
    auto g = samples.find(SeriesName(f.group_family, group_labels, f));
    ASSERT_NE(g, samples.end()) << "exposition: no group series for " << f.name << " ("
                                << SeriesName(f.group_family, group_labels, f) << ")";
    EXPECT_NEAR(g->second, want, std::abs(want) * 1e-12) << "group series of " << f.name;
    if (f.process_family != nullptr) {
      auto p = samples.find(SeriesName(f.process_family, proc_labels, f));
      ASSERT_NE(p, samples.end()) << "exposition: no process series for " << f.name;
      EXPECT_NEAR(p->second, want, std::abs(want) * 1e-12) << "process series of " << f.name;
    }
  }
  EXPECT_DOUBLE_EQ(samples.at(absl::StrCat("procscope_group_runqueue_latency_seconds_count{",
                                           group_labels, "}")),
                   static_cast<double>(cumulative));

  // 4. The API: the v1::Process helper.
  v1::Process api;
  SetCounterFields(procs[0].counters, procs[0].io, &api);
  for (size_t i = 0; i < fields_.size(); ++i) {
    double raw = 0;
    ASSERT_TRUE(ApiValue(api, fields_[i], &raw)) << "v1::Process has no " << fields_[i].api;
    EXPECT_NEAR(raw, static_cast<double>(LiveValue(i, 1)), 1) << "v1::Process: " << fields_[i].name;
  }

  // 5. The exit event, with values of its own: into the v1::ExitEvent and the group totals.
  ps_exit_event ev{};
  ev.key = {kPid, 0, kStart};
  ev.exit_ns = kStart + 1'000'000;
  memcpy(ev.comm, kComm, sizeof(kComm));
  for (size_t i = 0; i < fields_.size(); ++i) Ref(fields_[i], ev.c, ev.io) = Value(i, 2);
  const v1::ExitEvent out = table.ApplyExit(ev, kT0 + absl::Seconds(2));
  groups = table.Groups();
  ASSERT_EQ(groups.size(), 1u);
  for (size_t i = 0; i < fields_.size(); ++i) {
    double raw = 0;
    ASSERT_TRUE(ApiValue(out, fields_[i], &raw)) << "v1::ExitEvent has no " << fields_[i].api;
    EXPECT_NEAR(raw, static_cast<double>(Value(i, 2)), 1) << "v1::ExitEvent: " << fields_[i].name;
    EXPECT_EQ(Get(fields_[i], groups[0].counters, groups[0].io), Value(i, 2))
        << "group after the exit: " << fields_[i].name;
  }

  // 6. A journal round trip into a fresh daemon's group totals (RestoreExit).
  char tmpl[] = "/tmp/procscope_counters_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  {
    absl::StatusOr<Journal> j = Journal::Open(dir, 1 << 20, nullptr, [](absl::string_view) {});
    ASSERT_TRUE(j.ok()) << j.status();
    ASSERT_TRUE(j->Append(out).ok());
    ASSERT_TRUE(j->Flush().ok());
  }
  ProcessTable restored = MakeTable();
  int records = 0;
  absl::StatusOr<Journal> j = Journal::Open(
      dir, 1 << 20,
      [&](v1::ExitEvent&& e) {
        ++records;
        restored.RestoreExit(e, kT0 + absl::Seconds(3));
      },
      [](absl::string_view) {});
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(records, 1);
  groups = restored.Groups();
  ASSERT_EQ(groups.size(), 1u);
  for (size_t i = 0; i < fields_.size(); ++i) {
    const uint64_t got = Get(fields_[i], groups[0].counters, groups[0].io);
    // Seconds in the record: back to ns to within rounding.
    EXPECT_NEAR(static_cast<double>(got), static_cast<double>(Value(i, 2)), fields_[i].seconds)
        << "RestoreExit from the journal: " << fields_[i].name;
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace procscope
