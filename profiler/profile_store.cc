// SPDX-License-Identifier: Apache-2.0
#include "profile_store.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace procscope {
namespace {

// Rough per-object costs for the memory cap (hash-map slot, vector and string headers).
constexpr size_t kEntryBytes = 32;
constexpr size_t kStackBytes = 96;
constexpr size_t kFrameBytes = 160;
constexpr size_t kProcBytes = 200;

size_t FrameBytes(const Frame& f) { return kFrameBytes + f.function.size() + f.module.size(); }

// flamegraph.pl splits frames at ';' and the count at the last space; a newline ends a line.
std::string FoldedName(absl::string_view s, bool no_spaces) {
  std::string out(s);
  for (char& c : out) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == ';' || u < 0x20 || u == 0x7f || (no_spaces && c == ' ')) c = '_';
  }
  if (out.empty()) out = "[unknown]";
  return out;
}

// Folded key (outermost first) -> value, over the profile.
std::map<std::string, uint64_t> FoldedMap(const ProfileData& p) {
  std::map<std::string, uint64_t> out;
  std::vector<std::string> names;
  for (const ProfileData::Sample& s : p.samples) {
    names.clear();
    names.push_back(FoldedName(p.processes[s.process].comm, /*no_spaces=*/true));
    for (auto it = s.frames.rbegin(); it != s.frames.rend(); ++it) {
      names.push_back(FoldedName(p.frames[*it].Display(), /*no_spaces=*/false));
    }
    out[absl::StrJoin(names, ";")] += s.value;
  }
  return out;
}

}  // namespace

bool IsEntryFrame(const Frame& f) {
  static const absl::flat_hash_set<absl::string_view>* const kEntries =
      new absl::flat_hash_set<absl::string_view>({"_start", "__libc_start_main",
                                                  "__libc_start_call_main", "start_thread", "clone",
                                                  "clone3", "__clone", "__clone3"});
  return kEntries->contains(f.function);
}

bool IsCompleteUserStack(const std::vector<Frame>& user) {
  if (user.empty()) return false;
  if (IsEntryFrame(user.back())) return true;
  // main's caller is libc's __libc_start_call_main, a local symbol that a stripped libc.so.6
  // (Debian's) does not name: a walk that got to main is whole.
  return user.size() >= 2 && user[user.size() - 2].function == "main" &&
         user.back().function.empty();
}

ProfileStore::ProfileStore(ProfileStoreOptions options) : options_(options) {}

void ProfileStore::set_profile_hz(int hz) {
  absl::MutexLock l(&mu_);
  profile_hz_ = hz;
}

uint32_t ProfileStore::ProcIndex(const ps_key& key) {
  auto [it, inserted] = proc_ids_.try_emplace(key, 0);
  if (!inserted) return it->second;
  uint32_t id;
  if (!free_procs_.empty()) {
    id = free_procs_.back();
    free_procs_.pop_back();
    procs_[id] = ProcSlot{};
  } else {
    id = static_cast<uint32_t>(procs_.size());
    procs_.emplace_back();
  }
  procs_[id].meta.key = key;
  bytes_ += kProcBytes;
  it->second = id;
  return id;
}

void ProfileStore::SetProcess(const ProfileProcess& p, absl::Time now) {
  absl::MutexLock l(&mu_);
  ProcSlot& slot = procs_[ProcIndex(p.key)];
  const bool exited = slot.meta.exited || p.exited;
  slot.meta = p;
  slot.meta.exited = exited;
  slot.last_set = now;
}

bool ProfileStore::HasProcess(const ps_key& key) const {
  absl::MutexLock l(&mu_);
  return proc_ids_.contains(key);
}

void ProfileStore::MarkExited(const ps_key& key) {
  absl::MutexLock l(&mu_);
  if (auto it = proc_ids_.find(key); it != proc_ids_.end()) procs_[it->second].meta.exited = true;
}

uint32_t ProfileStore::InternFrame(const Frame& f) {
  FrameKey k{f.function, f.module, f.offset, f.kernel ? f.address : 0, f.kernel};
  auto [it, inserted] = frame_ids_.try_emplace(std::move(k), 0);
  if (!inserted) return it->second;
  uint32_t id;
  if (!free_frames_.empty()) {
    id = free_frames_.back();
    free_frames_.pop_back();
  } else {
    id = static_cast<uint32_t>(frames_.size());
    frames_.emplace_back();
  }
  frames_[id] = FrameSlot{f, 0};
  bytes_ += FrameBytes(f);
  it->second = id;
  return id;
}

uint32_t ProfileStore::InternStack(std::vector<uint32_t> frames) {
  auto it = stack_ids_.find(frames);
  if (it != stack_ids_.end()) {
    // The caller took a reference on each frame for a new stack: give them back (the existing
    // stack holds its own, so none drops to 0).
    for (uint32_t f : frames) frames_[f].refs--;
    return it->second;
  }
  uint32_t id;
  if (!free_stacks_.empty()) {
    id = free_stacks_.back();
    free_stacks_.pop_back();
  } else {
    id = static_cast<uint32_t>(stacks_.size());
    stacks_.emplace_back();
  }
  bytes_ += kStackBytes + 2 * frames.size() * sizeof(uint32_t);
  stack_ids_.emplace(frames, id);
  stacks_[id] = StackSlot{std::move(frames), 0};
  return id;
}

void ProfileStore::ReleaseStack(uint32_t id) {
  StackSlot& s = stacks_[id];
  if (--s.refs > 0) return;
  for (uint32_t f : s.frames) {
    FrameSlot& fs = frames_[f];
    if (--fs.refs > 0) continue;
    bytes_ -= FrameBytes(fs.frame);
    frame_ids_.erase(FrameKey{fs.frame.function, fs.frame.module, fs.frame.offset,
                              fs.frame.kernel ? fs.frame.address : 0, fs.frame.kernel});
    fs = FrameSlot{};
    free_frames_.push_back(f);
  }
  bytes_ -= kStackBytes + 2 * s.frames.size() * sizeof(uint32_t);
  stack_ids_.erase(s.frames);
  s = StackSlot{};
  free_stacks_.push_back(id);
}

void ProfileStore::DropOldest() {
  Bucket& b = buckets_.front();
  for (const auto& [k, v] : b.entries) {
    ReleaseStack(k.stack);
    procs_[k.proc].refs--;
  }
  entries_ -= b.entries.size();
  bytes_ -= b.entries.size() * kEntryBytes;
  buckets_.pop_front();
}

void ProfileStore::Trim(absl::Time now) {
  while (!buckets_.empty() && buckets_.front().end < now - options_.history) DropOldest();
  // The newest bucket stays even over the cap: a profile of the last drain is always there.
  while (buckets_.size() > 1 && bytes_ > options_.max_bytes) {
    counters_.dropped_entries += buckets_.front().entries.size();
    DropOldest();
  }
  // Processes without stacks left whose metadata is older than the history.
  for (auto it = proc_ids_.begin(); it != proc_ids_.end();) {
    ProcSlot& p = procs_[it->second];
    if (p.refs == 0 && p.last_set < now - options_.history) {
      free_procs_.push_back(it->second);
      p = ProcSlot{};
      bytes_ -= kProcBytes;
      proc_ids_.erase(it++);
    } else {
      ++it;
    }
  }
}

void ProfileStore::Add(absl::Time now, std::vector<SymbolizedStack> stacks) {
  absl::MutexLock l(&mu_);
  Bucket b;
  b.end = now;
  std::vector<uint32_t> ids;
  for (SymbolizedStack& s : stacks) {
    const size_t k = static_cast<size_t>(s.kind);
    if (k >= static_cast<size_t>(kNumStackKinds)) continue;
    counters_.stacks[k]++;
    if (!s.user.empty()) {
      counters_.user_stacks[k]++;
      if (!IsCompleteUserStack(s.user)) counters_.user_truncated[k]++;
    } else if (s.user_missing) {
      counters_.user_stacks[k]++;
      counters_.user_truncated[k]++;
    }
    ids.clear();
    ids.reserve(s.kernel.size() + s.user.size());
    for (const Frame& f : s.kernel) ids.push_back(InternFrame(f));
    for (const Frame& f : s.user) ids.push_back(InternFrame(f));
    // References: one per frame per new stack; InternStack gives them back on a hit.
    for (uint32_t f : ids) frames_[f].refs++;
    const uint32_t stack = InternStack(ids);
    const uint32_t proc = ProcIndex(s.key);
    auto [it, inserted] = b.entries.try_emplace(EntryKey{stack, proc, s.kind}, 0);
    it->second += s.value;
    if (inserted) {
      stacks_[stack].refs++;
      procs_[proc].refs++;
      bytes_ += kEntryBytes;
    }
  }
  entries_ += b.entries.size();
  buckets_.push_back(std::move(b));
  Trim(now);
}

ProfileData ProfileStore::Query(const ProfileQuery& q, absl::Time now) const {
  ProfileData out;
  out.start = now - q.window;
  out.end = now;
  absl::MutexLock l(&mu_);
  out.profile_hz = profile_hz_;
  bool kinds[kNumStackKinds] = {};
  for (StackKind k : q.kinds) kinds[static_cast<size_t>(k)] = true;
  absl::flat_hash_map<uint32_t, uint32_t> proc_map, frame_map;
  absl::flat_hash_map<EntryKey, uint64_t> sum;
  for (auto b = buckets_.rbegin(); b != buckets_.rend() && b->end >= out.start; ++b) {
    if (b->end > now) continue;
    for (const auto& [k, v] : b->entries) {
      if (!kinds[static_cast<size_t>(k.kind)]) continue;
      const ProfileProcess& m = procs_[k.proc].meta;
      if (q.pid != 0 && m.key.tgid != q.pid) continue;
      if (!q.group.empty() && m.group != q.group) continue;
      sum[k] += v;
    }
  }
  // In the store's own order (first seen), not the hash map's: the same query gives the same
  // profile bytes, so a pprof or folded file can be compared and cached.
  std::vector<std::pair<EntryKey, uint64_t>> sorted(sum.begin(), sum.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return std::tie(a.first.proc, a.first.stack, a.first.kind) <
           std::tie(b.first.proc, b.first.stack, b.first.kind);
  });
  out.samples.reserve(sorted.size());
  for (const auto& [k, v] : sorted) {
    ProfileData::Sample s;
    auto [pit, pnew] = proc_map.try_emplace(k.proc, out.processes.size());
    if (pnew) out.processes.push_back(procs_[k.proc].meta);
    s.process = pit->second;
    s.kind = k.kind;
    s.value = v;
    for (uint32_t f : stacks_[k.stack].frames) {
      auto [fit, fnew] = frame_map.try_emplace(f, out.frames.size());
      if (fnew) out.frames.push_back(frames_[f].frame);
      s.frames.push_back(fit->second);
    }
    out.samples.push_back(std::move(s));
  }
  return out;
}

ProfileStoreStats ProfileStore::Stats() const {
  absl::MutexLock l(&mu_);
  ProfileStoreStats s = counters_;
  s.buckets = buckets_.size();
  s.entries = entries_;
  s.distinct_stacks = stack_ids_.size();
  s.frames = frame_ids_.size();
  s.processes = proc_ids_.size();
  s.bytes = bytes_;
  return s;
}

std::vector<TopFunction> TopFunctions(const ProfileData& p, size_t limit, uint64_t* sum) {
  absl::flat_hash_map<std::string, TopFunction> by_name;
  uint64_t total = 0;
  absl::flat_hash_set<std::string> seen;
  for (const ProfileData::Sample& s : p.samples) {
    total += s.value;
    seen.clear();
    for (size_t i = 0; i < s.frames.size(); ++i) {
      std::string name = p.frames[s.frames[i]].Display();
      TopFunction& t = by_name[name];
      if (i == 0) t.self += s.value;
      if (seen.insert(name).second) t.total += s.value;
    }
  }
  std::vector<TopFunction> out;
  out.reserve(by_name.size());
  for (auto& [name, t] : by_name) {
    t.name = name;
    out.push_back(std::move(t));
  }
  std::sort(out.begin(), out.end(), [](const TopFunction& a, const TopFunction& b) {
    if (a.self != b.self) return a.self > b.self;
    if (a.total != b.total) return a.total > b.total;
    return a.name < b.name;
  });
  if (limit > 0 && out.size() > limit) out.resize(limit);
  if (sum) *sum = total;
  return out;
}

std::string HottestPath(const ProfileData& p, size_t depth, double* share) {
  std::map<std::vector<std::string>, uint64_t> paths;
  uint64_t total = 0;
  for (const ProfileData::Sample& s : p.samples) {
    total += s.value;
    std::vector<std::string> names;
    for (size_t i = 0; i < s.frames.size() && names.size() < depth; ++i) {
      names.push_back(p.frames[s.frames[i]].Display());
    }
    paths[std::move(names)] += s.value;
  }
  if (share) *share = 0;
  if (paths.empty() || total == 0) return "";
  auto best = std::max_element(paths.begin(), paths.end(),
                               [](const auto& a, const auto& b) { return a.second < b.second; });
  if (share) *share = static_cast<double>(best->second) / static_cast<double>(total);
  if (best->first.empty()) return "[no stack]";
  return absl::StrJoin(best->first, " ← ");
}

std::string FoldedStacks(const ProfileData& p) {
  std::string out;
  for (const auto& [stack, value] : FoldedMap(p)) absl::StrAppend(&out, stack, " ", value, "\n");
  return out;
}

std::vector<std::string> TopFoldedStacks(const ProfileData& p, size_t n) {
  const std::map<std::string, uint64_t> m = FoldedMap(p);
  std::vector<std::pair<std::string, uint64_t>> v(m.begin(), m.end());
  std::stable_sort(v.begin(), v.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size() && i < n; ++i)
    out.push_back(absl::StrCat(v[i].first, " ", v[i].second));
  return out;
}

}  // namespace procscope
