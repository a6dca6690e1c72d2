// SPDX-License-Identifier: Apache-2.0
// A ProfileData as a gzipped pprof profile (proto/profile.proto) and back. On-CPU: sample types
// samples/count and cpu/nanoseconds (period cpu/nanoseconds, 1e9 / profile_hz); off-CPU:
// offcpu/nanoseconds with a `state` label (blocked|sleep). Every sample carries the labels pid
// (numeric), comm, group and container; kernel frames sit in a "[kernel]" mapping (a module's
// in "[module]"), user frames in their object's.
#ifndef PROCSCOPE_PROFILER_PPROF_H_
#define PROCSCOPE_PROFILER_PPROF_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "profile_store.h"

namespace procscope {

enum class PprofKind { kOnCpu, kOffCpu };

// The serialized perftools.profiles.Profile, uncompressed.
std::string EncodePprofRaw(const ProfileData& p, PprofKind kind);
// ... gzip-compressed, as /debug/pprof/* serves it.
std::string EncodePprof(const ProfileData& p, PprofKind kind);

// gzip (RFC 1952) of `data`, and back; Gunzip refuses more than `max_bytes` of output.
std::string Gzip(absl::string_view data);
absl::StatusOr<std::string> Gunzip(absl::string_view gz, size_t max_bytes = 512 << 20);

// Reads a profile (gzipped or not) into ProfileData: value[0] of each sample, the kind from the
// `state` label (none: on-CPU), the process from the labels. Errors name what is wrong.
absl::StatusOr<ProfileData> DecodePprof(absl::string_view data);

}  // namespace procscope

#endif  // PROCSCOPE_PROFILER_PPROF_H_
