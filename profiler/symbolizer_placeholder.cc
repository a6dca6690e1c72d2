// SPDX-License-Identifier: Apache-2.0
// Placeholder until profiler/symbolizer.cc (helper "symbolizer") is merged: every frame is
// "[unknown]+0x<ip>" or "[kernel]+0x<ip>", never a name. Not a fake: it names nothing.
#include "symbolizer.h"

namespace procscope {

struct Symbolizer::Impl {};

Symbolizer::Symbolizer(SymbolizerOptions) : impl_(std::make_unique<Impl>()) {}
Symbolizer::~Symbolizer() = default;
absl::Status Symbolizer::Capture(const ps_key&) { return absl::OkStatus(); }
std::vector<Frame> Symbolizer::User(const ps_key&, absl::Span<const uint64_t> ips) {
  std::vector<Frame> out;
  for (uint64_t ip : ips) {
    Frame f;
    f.module = "[unknown]";
    f.address = ip;
    f.offset = ip;
    out.push_back(f);
  }
  return out;
}
std::vector<Frame> Symbolizer::Kernel(absl::Span<const uint64_t> ips) {
  std::vector<Frame> out;
  for (uint64_t ip : ips) {
    Frame f;
    f.module = "[kernel]";
    f.address = ip;
    f.offset = ip;
    f.kernel = true;
    out.push_back(f);
  }
  return out;
}
void Symbolizer::Forget(const ps_key&) {}
SymbolizerStats Symbolizer::Stats() const { return {}; }

}  // namespace procscope
