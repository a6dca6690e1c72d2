// SPDX-License-Identifier: Apache-2.0
// The C++ side of the counter lists in bpf/procscope.h (PS_SCALAR_FIELDS, PS_COUNTER_ARRAYS,
// PS_IO_FIELDS): how each counter is named and scaled in the API (v1::Process, v1::ExitEvent)
// and in the exposition, and the per-counter arithmetic every part shares. Everything that is
// per counter iterates the lists, and each list entry looks up its metadata here by its field
// name: a counter added to a list without a line below does not compile.
#ifndef PROCSCOPE_MODEL_COUNTERS_H_
#define PROCSCOPE_MODEL_COUNTERS_H_

#include <algorithm>
#include <cstdint>

#include "procscope.h"

namespace procscope {
namespace counter_meta {

// How a raw kernel value is shown: counts as they are, nanoseconds as seconds.
enum Scale { kCount, kNanoseconds };

template <Scale S>
constexpr auto ToApi(uint64_t v) {
  if constexpr (S == kNanoseconds) {
    return static_cast<double>(v) / 1e9;
  } else {
    return v;
  }
}
template <Scale S, typename T>
constexpr uint64_t FromApi(T v) {
  if constexpr (S == kNanoseconds) {
    return static_cast<uint64_t>(v * 1e9);
  } else {
    return v;
  }
}

// One scalar counter: `api` is its field in v1::Process and v1::ExitEvent (the same name in
// both), `group_family`/`process_family` its exposition family (process_family nullptr: no
// per-process series) and `label`/`value` the label that tells it apart within the family
// (nullptr: none).
#define PS_COUNTER_META(field, api, scale, group_family, process_family, label, value)           \
  struct field {                                                                                 \
    static constexpr const char* kApiName = #api;                                                \
    static constexpr Scale kScale = scale;                                                       \
    static constexpr const char* kGroupFamily = group_family;                                    \
    static constexpr const char* kProcessFamily = process_family;                                \
    static constexpr const char* kLabel = label;                                                 \
    static constexpr const char* kLabelValue = value;                                            \
    static constexpr double Exposed(uint64_t v) { return static_cast<double>(ToApi<scale>(v)); } \
    template <typename Msg>                                                                      \
    static void Set(Msg& m, uint64_t v) {                                                        \
      m.set_##api(ToApi<scale>(v));                                                              \
    }                                                                                            \
    template <typename Msg>                                                                      \
    static uint64_t Get(const Msg& m) {                                                          \
      return FromApi<scale>(m.api());                                                            \
    }                                                                                            \
  };

// One array of counters: `api` is a repeated field of both messages, one element per bucket.
#define PS_COUNTER_ARRAY_META(field, api, group_family)                                   \
  struct field {                                                                          \
    static constexpr const char* kApiName = #api;                                         \
    static constexpr const char* kGroupFamily = group_family;                             \
    template <typename Msg, size_t N>                                                     \
    static void Set(Msg& m, const __u64 (&v)[N]) {                                        \
      m.clear_##api();                                                                    \
      for (size_t i = 0; i < N; ++i) m.add_##api(v[i]);                                   \
    }                                                                                     \
    /* Adds the message's buckets to `v`; extra ones (a longer histogram) are ignored. */ \
    template <typename Msg, size_t N>                                                     \
    static void AddTo(const Msg& m, __u64 (&v)[N]) {                                      \
      for (size_t i = 0; i < N && i < static_cast<size_t>(m.api##_size()); ++i) {         \
        v[i] += m.api(i);                                                                 \
      }                                                                                   \
    }                                                                                     \
  };

// PS_COUNTER_FIELDS
PS_COUNTER_META(cpu_ns, cpu_seconds, kNanoseconds, "procscope_group_cpu_seconds_total",
                "procscope_process_cpu_seconds_total", nullptr, nullptr)
PS_COUNTER_META(runq_ns, runqueue_wait_seconds, kNanoseconds,
                "procscope_group_runqueue_wait_seconds_total",
                "procscope_process_runqueue_wait_seconds_total", nullptr, nullptr)
PS_COUNTER_META(vol_cs, voluntary_context_switches, kCount,
                "procscope_group_context_switches_total",
                "procscope_process_context_switches_total", "type", "voluntary")
PS_COUNTER_META(invol_cs, involuntary_context_switches, kCount,
                "procscope_group_context_switches_total",
                "procscope_process_context_switches_total", "type", "involuntary")
PS_COUNTER_META(min_flt, minor_faults, kCount, "procscope_group_page_faults_total",
                "procscope_process_page_faults_total", "type", "minor")
PS_COUNTER_META(maj_flt, major_faults, kCount, "procscope_group_page_faults_total",
                "procscope_process_page_faults_total", "type", "major")
// PS_ACCOUNTED_FIELDS
PS_COUNTER_META(blocked_ns, blocked_seconds, kNanoseconds, "procscope_group_blocked_seconds_total",
                "procscope_process_blocked_seconds_total", nullptr, nullptr)
PS_COUNTER_META(sleep_ns, sleep_seconds, kNanoseconds, "procscope_group_sleep_seconds_total",
                "procscope_process_sleep_seconds_total", nullptr, nullptr)
PS_COUNTER_META(runq_caused_ns, runqueue_wait_caused_seconds, kNanoseconds,
                "procscope_group_runqueue_wait_caused_seconds_total",
                "procscope_process_runqueue_wait_caused_seconds_total", nullptr, nullptr)
// PS_COUNTER_ARRAYS
PS_COUNTER_ARRAY_META(runq_hist, runqueue_wait_histogram,
                      "procscope_group_runqueue_latency_seconds")
// PS_IO_FIELDS
PS_COUNTER_META(read_bytes, read_bytes, kCount, "procscope_group_block_io_bytes_total",
                "procscope_process_block_io_bytes_total", "direction", "read")
PS_COUNTER_META(write_bytes, write_bytes, kCount, "procscope_group_block_io_bytes_total",
                "procscope_process_block_io_bytes_total", "direction", "write")
PS_COUNTER_META(read_ops, read_operations, kCount, "procscope_group_block_io_operations_total",
                nullptr, "direction", "read")
PS_COUNTER_META(write_ops, write_operations, kCount, "procscope_group_block_io_operations_total",
                nullptr, "direction", "write")
PS_COUNTER_META(read_lat_ns, read_time_seconds, kNanoseconds,
                "procscope_group_block_io_time_seconds_total", nullptr, "direction", "read")
PS_COUNTER_META(write_lat_ns, write_time_seconds, kNanoseconds,
                "procscope_group_block_io_time_seconds_total", nullptr, "direction", "write")
PS_COUNTER_META(dirtied_bytes, dirtied_bytes, kCount,
                "procscope_group_page_cache_dirtied_bytes_total", nullptr, nullptr, nullptr)

#undef PS_COUNTER_META
#undef PS_COUNTER_ARRAY_META

}  // namespace counter_meta

// Calls fn(s.f...) for every counter of the lists, over any number of ps_counters (ps_io),
// array elements one by one.
template <typename F, typename... S>
void ForEachCounter(F&& fn, S&... s) {
#define PS_EACH_FIELD(f, ...) fn(s.f...);
#define PS_EACH_ARRAY(f, n) \
  for (int i = 0; i < (n); ++i) fn(s.f[i]...);
  PS_SCALAR_FIELDS(PS_EACH_FIELD)
  PS_COUNTER_ARRAYS(PS_EACH_ARRAY)
#undef PS_EACH_ARRAY
#undef PS_EACH_FIELD
}
template <typename F, typename... S>
void ForEachIo(F&& fn, S&... s) {
#define PS_EACH_FIELD(f) fn(s.f...);
  PS_IO_FIELDS(PS_EACH_FIELD)
#undef PS_EACH_FIELD
}

inline void AddCounters(ps_counters& dst, const ps_counters& src) {
  ForEachCounter([](__u64& d, __u64 v) { d += v; }, dst, src);
}
inline void AddIo(ps_io& dst, const ps_io& src) {
  ForEachIo([](__u64& d, __u64 v) { d += v; }, dst, src);
}

// dst += now - base, counter by counter.
inline void AddCounterDelta(ps_counters& dst, const ps_counters& now, const ps_counters& base) {
  ForEachCounter([](__u64& d, __u64 n, __u64 b) { d += n - b; }, dst, now, base);
}
inline void AddIoDelta(ps_io& dst, const ps_io& now, const ps_io& base) {
  ForEachIo([](__u64& d, __u64 n, __u64 b) { d += n - b; }, dst, now, base);
}

// have = max(have, now), counter by counter.
inline void MaxCounters(ps_counters& have, const ps_counters& now) {
  ForEachCounter([](__u64& h, __u64 n) { h = std::max(h, n); }, have, now);
}
inline void MaxIo(ps_io& have, const ps_io& now) {
  ForEachIo([](__u64& h, __u64 n) { h = std::max(h, n); }, have, now);
}

}  // namespace procscope

#endif  // PROCSCOPE_MODEL_COUNTERS_H_
