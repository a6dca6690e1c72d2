// SPDX-License-Identifier: Apache-2.0
#include "model.h"

namespace procscope {

const char* ResourceName(Resource r) {
  switch (r) {
    case Resource::kCpu:
      return "cpu";
    case Resource::kRunqueueWait:
      return "runqueue_wait";
    case Resource::kMemoryGrowth:
      return "memory_growth";
    case Resource::kPageFaults:
      return "page_faults";
    case Resource::kBlockIo:
      return "block_io";
    case Resource::kCrashes:
      return "crashes";
  }
  return "unknown";
}

const char* ResourceUnit(Resource r) {
  switch (r) {
    case Resource::kCpu:
    case Resource::kRunqueueWait:
      return "cores";
    case Resource::kMemoryGrowth:
    case Resource::kBlockIo:
      return "bytes/s";
    case Resource::kPageFaults:
      return "faults/s";
    case Resource::kCrashes:
      return "crashes/min";
  }
  return "";
}

}  // namespace procscope
