// SPDX-License-Identifier: Apache-2.0
#include "model.h"

#include <iterator>

namespace procscope {
namespace {

// Indexed by enum ps_stat; the size check makes a stat added to procscope.h without a name here
// a compile error (a sized array would leave a null slot).
constexpr const char* kStatNames[] = {
    "drop_ringbuf",           // PS_STAT_DROP_RINGBUF
    "drop_task_storage",      // PS_STAT_DROP_TASK_STORAGE
    "drop_io_map",            // PS_STAT_DROP_IO_MAP
    "drop_requests",          // PS_STAT_DROP_REQUESTS
    "drop_inode_owner",       // PS_STAT_DROP_INODE_OWNER
    "drop_oom_map",           // PS_STAT_DROP_OOM_MAP
    "drop_handover",          // PS_STAT_DROP_HANDOVER
    "io_unattributed_ops",    // PS_STAT_IO_UNATTRIBUTED_OPS
    "io_unattributed_bytes",  // PS_STAT_IO_UNATTRIBUTED_BYTES
    "io_orphan_ops",          // PS_STAT_IO_ORPHAN_OPS
    "exits",                  // PS_STAT_EXITS
    "profile_samples",        // PS_STAT_PROFILE_SAMPLES
    "profile_idle",           // PS_STAT_PROFILE_IDLE
    "drop_stack_counts",      // PS_STAT_DROP_STACK_COUNTS
    "stack_collisions",       // PS_STAT_STACK_COLLISIONS
    "stack_failed",           // PS_STAT_STACK_FAILED
    "drop_profile_notify",    // PS_STAT_DROP_PROFILE_NOTIFY
    "offcpu_stack_expired",   // PS_STAT_OFFCPU_STACK_EXPIRED
    "drop_contention",        // PS_STAT_DROP_CONTENTION
    "drop_thread_walk",       // PS_STAT_DROP_THREAD_WALK
    "drop_summed_read",       // PS_STAT_DROP_SUMMED_READ
};
static_assert(std::size(kStatNames) == PS_STAT_MAX, "a ps_stat without a name in kStatNames");

struct ResourceDesc {
  Resource resource;
  const char* name;
  const char* unit;
};
// In enum order; checked below.
constexpr ResourceDesc kResources[] = {
    {Resource::kCpu, "cpu", "cores"},
    {Resource::kRunqueueWait, "runqueue_wait", "cores"},
    {Resource::kMemoryGrowth, "memory_growth", "bytes/s"},
    {Resource::kPageFaults, "page_faults", "faults/s"},
    {Resource::kBlockIo, "block_io", "bytes/s"},
    {Resource::kCrashes, "crashes", "crashes/min"},
};
static_assert(std::size(kResources) == kNumResources, "a Resource without a name");
constexpr bool ResourcesInOrder() {
  for (size_t i = 0; i < std::size(kResources); ++i) {
    if (static_cast<size_t>(kResources[i].resource) != i) return false;
    if (kAllResources[i] != kResources[i].resource) return false;
  }
  return true;
}
static_assert(ResourcesInOrder(), "kResources and kAllResources must list Resource in order");

}  // namespace

const char* StatName(int index) {
  return index >= 0 && index < PS_STAT_MAX ? kStatNames[index] : "unknown";
}

const char* ResourceName(Resource r) {
  const size_t i = static_cast<size_t>(r);
  return i < std::size(kResources) ? kResources[i].name : "unknown";
}

const char* ResourceUnit(Resource r) {
  const size_t i = static_cast<size_t>(r);
  return i < std::size(kResources) ? kResources[i].unit : "";
}

}  // namespace procscope
