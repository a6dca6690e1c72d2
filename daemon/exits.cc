// SPDX-License-Identifier: Apache-2.0
#include "exits.h"

#include <signal.h>

#include <algorithm>
#include <utility>

#include "counters_proto.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"
#include "google/protobuf/unknown_field_set.h"
#include "google/protobuf/util/json_util.h"
#include "records.h"

namespace procscope {

v1::Outcome ClassifyExit(uint32_t wait_status, bool oom_killed) {
  // The OOM killer sends SIGKILL; only the kernel's mark tells it apart from a plain kill.
  if (oom_killed) return v1::OOM_KILLED;
  const ExitStatus s = DecodeExitStatus(wait_status);
  if (s.signal == 0) return s.exit_code == 0 ? v1::SUCCESS : v1::FAILURE;
  switch (s.signal) {
    case SIGSEGV:
    case SIGBUS:
    case SIGILL:
    case SIGFPE:
    case SIGABRT:
    case SIGSYS:
    case SIGTRAP:
      return v1::CRASHED;
    default:
      return v1::SIGNALED;
  }
}

// A new v1::Outcome needs a name here (and in ClassifyExit's callers' docs).
static_assert(v1::Outcome_MAX == v1::OOM_KILLED, "a v1::Outcome without a name in OutcomeName");
const char* OutcomeName(v1::Outcome o) {
  switch (o) {
    case v1::SUCCESS:
      return "success";
    case v1::FAILURE:
      return "failure";
    case v1::SIGNALED:
      return "signaled";
    case v1::CRASHED:
      return "crashed";
    case v1::OOM_KILLED:
      return "oom_killed";
    default:
      return "unspecified";
  }
}

v1::ExitEvent MakeExitEvent(const ps_exit_event& e, const ExitContext& ctx) {
  const bool oom = (e.flags & PS_EXIT_OOM_KILLED) != 0;
  const ExitStatus status = DecodeExitStatus(e.exit_code);
  const int64_t boot_to_unix_ns = absl::ToInt64Nanoseconds(ctx.boot_to_unix);

  v1::ExitEvent out;
  out.set_pid(e.key.tgid);
  out.set_ppid(e.ppid);
  // The group may be the raw comm (--group_by=comm) and cgroup names are anyone's choice in a
  // delegated subtree: none of them may reach a proto string unchecked.
  out.set_comm(ToValidUtf8(CommFromKernel(e.comm)));
  out.set_group(ToValidUtf8(ctx.group));
  out.set_container(ToValidUtf8(ctx.cgroup.container_id));
  out.set_pod_uid(ToValidUtf8(ctx.cgroup.pod_uid));
  out.set_systemd_unit(ToValidUtf8(ctx.cgroup.systemd_unit));
  out.set_uid(e.uid);
  out.set_outcome(ClassifyExit(e.exit_code, oom));
  if (status.signal == 0) out.set_exit_code(status.exit_code);
  out.set_signal(status.signal);
  out.set_signal_name(SignalName(status.signal));
  out.set_core_dumped(status.core_dumped);
  out.set_oom_killed(oom);
  out.set_start_time_unix_ns(static_cast<int64_t>(e.key.start_ns) + boot_to_unix_ns);
  out.set_exit_time_unix_ns(static_cast<int64_t>(e.exit_ns) + boot_to_unix_ns);
  // An exit stamped before the start would be a clock mix-up, never a negative lifetime.
  out.set_lifetime_seconds(e.exit_ns > e.key.start_ns ? (e.exit_ns - e.key.start_ns) / 1e9 : 0);
  SetCounterFields(e.c, e.io, &out);
  out.set_peak_resident_memory_bytes(e.rss_max_bytes);
  out.set_cgroup_id(e.cgroup_id);
  return out;
}

namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

bool IsValidUtf8(const std::string& s) {
  for (unsigned char c : s) {
    if (c >= 0x80 || c == 0) return ToValidUtf8(s) == s;  // the slow path only past ASCII
  }
  return true;
}

// Visits every string field; `fix` false only checks. Returns whether one was invalid.
bool VisitStrings(Message* m, const Message& cm, bool fix) {
  const google::protobuf::Descriptor* d = cm.GetDescriptor();
  const Reflection* r = cm.GetReflection();
  bool invalid = false;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->type() == FieldDescriptor::TYPE_STRING) {
      if (f->is_repeated()) {
        for (int k = 0; k < r->FieldSize(cm, f); ++k) {
          const std::string s = r->GetRepeatedString(cm, f, k);
          if (IsValidUtf8(s)) continue;
          invalid = true;
          if (!fix) return true;
          r->SetRepeatedString(m, f, k, ToValidUtf8(s));
        }
      } else if (r->HasField(cm, f)) {
        std::string scratch;
        const std::string& s = r->GetStringReference(cm, f, &scratch);
        if (IsValidUtf8(s)) continue;
        invalid = true;
        if (!fix) return true;
        r->SetString(m, f, ToValidUtf8(s));
      }
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int k = 0; k < r->FieldSize(cm, f); ++k) {
          const Message& sub = r->GetRepeatedMessage(cm, f, k);
          if (!fix) {
            if (VisitStrings(nullptr, sub, false)) return true;
          } else if (VisitStrings(nullptr, sub, false)) {
            Message* msub = r->MutableRepeatedMessage(m, f, k);
            invalid |= VisitStrings(msub, *msub, true);
          }
        }
      } else if (r->HasField(cm, f)) {
        const Message& sub = r->GetMessage(cm, f);
        if (!fix) {
          if (VisitStrings(nullptr, sub, false)) return true;
        } else if (VisitStrings(nullptr, sub, false)) {
          Message* msub = r->MutableMessage(m, f);
          invalid |= VisitStrings(msub, *msub, true);
        }
      }
    }
  }
  return invalid;
}

}  // namespace

bool StringsAreValidUtf8(const Message& m) { return !VisitStrings(nullptr, m, false); }

bool MakeStringsValidUtf8(Message* m) { return VisitStrings(m, *m, true); }

bool ParseExitEventLenient(absl::string_view bytes, v1::ExitEvent* out) {
  if (bytes.size() > INT32_MAX) return false;
  // Parsed first without the UTF-8 check, which would fail the record and log.
  google::protobuf::UnknownFieldSet fields;
  if (!fields.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return false;
  const google::protobuf::Descriptor* d = v1::ExitEvent::descriptor();
  bool fixed = false;
  for (int i = 0; i < fields.field_count(); ++i) {
    google::protobuf::UnknownField* f = fields.mutable_field(i);
    if (f->type() != google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED) continue;
    const FieldDescriptor* fd = d->FindFieldByNumber(f->number());
    if (fd == nullptr || fd->type() != FieldDescriptor::TYPE_STRING) continue;
    if (IsValidUtf8(f->length_delimited())) continue;
    *f->mutable_length_delimited() = ToValidUtf8(f->length_delimited());
    fixed = true;
  }
  if (!fixed) return out->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  std::string repaired;
  return fields.SerializeToString(&repaired) && out->ParseFromString(repaired);
}

ExitStore::ExitStore(size_t capacity) : capacity_(capacity) {}

void ExitStore::Add(v1::ExitEvent e) {
  if (capacity_ == 0) return;
  const bool failed = e.outcome() != v1::SUCCESS;
  auto shared = std::make_shared<const v1::ExitEvent>(std::move(e));
  SharedExitEvent evicted[2];  // freed outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t seq = next_seq_++;
  if (failed) {
    failed_.push_front({seq, shared});
    if (failed_.size() > capacity_) {
      evicted[0] = std::move(failed_.back().event);
      failed_.pop_back();
    }
  }
  events_.push_front({seq, std::move(shared)});
  if (events_.size() > capacity_) {
    evicted[1] = std::move(events_.back().event);
    events_.pop_back();
  }
}

std::vector<SharedExitEvent> ExitStore::Newest(size_t limit, bool failed_only) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<SharedExitEvent> out;
  if (failed_only) {
    const size_t n = limit == 0 ? failed_.size() : std::min(limit, failed_.size());
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) out.push_back(failed_[i].event);
    return out;
  }
  // Both rings are newest first; a failed event that is in both has the same seq.
  auto a = events_.begin(), b = failed_.begin();
  while ((limit == 0 || out.size() < limit) && (a != events_.end() || b != failed_.end())) {
    if (b == failed_.end() || (a != events_.end() && a->seq >= b->seq)) {
      if (b != failed_.end() && a->seq == b->seq) ++b;
      out.push_back((a++)->event);
    } else {
      out.push_back((b++)->event);
    }
  }
  return out;
}

std::string EventListJson(const std::vector<SharedExitEvent>& events) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  opts.add_whitespace = false;
  std::string out = "{\"events\":[";
  std::string one;
  bool first = true;
  for (const SharedExitEvent& e : events) {
    one.clear();
    if (!google::protobuf::util::MessageToJsonString(*e, &one, opts).ok()) continue;
    if (first) {
      // Events are alike in size: one allocation near the final size, not a doubling past it.
      out.reserve(out.size() + (one.size() + one.size() / 8 + 1) * events.size() + 4);
    } else {
      out.push_back(',');
    }
    first = false;
    out += one;
  }
  out += "]}\n";
  return out;
}

size_t ExitStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  // Failed events older than the oldest of events_ are in failed_ alone.
  const uint64_t oldest = events_.empty() ? UINT64_MAX : events_.back().seq;
  size_t only_failed = 0;
  for (auto it = failed_.rbegin(); it != failed_.rend() && it->seq < oldest; ++it) ++only_failed;
  return events_.size() + only_failed;
}

}  // namespace procscope
