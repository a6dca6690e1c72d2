// SPDX-License-Identifier: Apache-2.0
#include "pprof.h"

#include <zlib.h>

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "profile.pb.h"

namespace procscope {
namespace {

namespace pb = perftools::profiles;

class StringTable {
 public:
  explicit StringTable(pb::Profile* p) : p_(p) { Get(""); }
  int64_t Get(const std::string& s) {
    auto [it, inserted] = ids_.try_emplace(s, static_cast<int64_t>(ids_.size()));
    if (inserted) p_->add_string_table(s);
    return it->second;
  }

 private:
  pb::Profile* p_;
  absl::flat_hash_map<std::string, int64_t> ids_;
};

// pprof wants valid UTF-8 in its strings (protobuf's proto3 `string` checks it on parse).
std::string Utf8(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = n > 0 && i + n <= s.size();
    for (int j = 1; ok && j < n; ++j) ok = (static_cast<unsigned char>(s[i + j]) >> 6) == 2;
    if (ok) {
      out.append(s.data() + i, n);
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");  // U+FFFD
      ++i;
    }
  }
  return out;
}

}  // namespace

std::string EncodePprofRaw(const ProfileData& p, PprofKind kind) {
  pb::Profile out;
  StringTable st(&out);
  auto value_type = [&](pb::ValueType* v, const char* type, const char* unit) {
    v->set_type(st.Get(type));
    v->set_unit(st.Get(unit));
  };
  const int64_t period = p.profile_hz > 0 ? 1000000000LL / p.profile_hz : 0;
  if (kind == PprofKind::kOnCpu) {
    value_type(out.add_sample_type(), "samples", "count");
    value_type(out.add_sample_type(), "cpu", "nanoseconds");
    value_type(out.mutable_period_type(), "cpu", "nanoseconds");
    out.set_period(period);
  } else {
    value_type(out.add_sample_type(), "offcpu", "nanoseconds");
    value_type(out.mutable_period_type(), "offcpu", "nanoseconds");
    out.set_period(1);
  }
  out.set_time_nanos(absl::ToUnixNanos(p.start));
  out.set_duration_nanos(absl::ToInt64Nanoseconds(p.end - p.start));

  // Mappings by module, one Function per (name, module), one Location per frame.
  absl::flat_hash_map<std::string, pb::Mapping*> mappings;
  absl::flat_hash_map<std::pair<std::string, std::string>, uint64_t> functions;
  std::vector<uint64_t> location_of(p.frames.size());
  auto module_of = [](const Frame& f) {
    return f.module.empty() ? std::string(f.kernel ? "[kernel]" : "[unknown]") : f.module;
  };
  // User objects first: pprof takes mapping[0] for the main binary ("File:" in its header).
  for (bool kernel : {false, true}) {
    for (const Frame& f : p.frames) {
      if (f.kernel != kernel) continue;
      pb::Mapping*& m = mappings[module_of(f)];
      if (m != nullptr) continue;
      m = out.add_mapping();
      m->set_id(out.mapping_size());
      m->set_filename(st.Get(Utf8(module_of(f))));
      m->set_has_functions(true);
    }
  }
  for (size_t i = 0; i < p.frames.size(); ++i) {
    const Frame& f = p.frames[i];
    const std::string module = module_of(f);
    pb::Mapping* m = mappings[module];
    m->set_memory_limit(std::max<uint64_t>(m->memory_limit(), f.offset + 1));
    const std::string name = Utf8(f.Display());
    auto [fit, fnew] = functions.try_emplace(std::make_pair(name, module), 0);
    if (fnew) {
      pb::Function* fn = out.add_function();
      fn->set_id(out.function_size());
      fn->set_name(st.Get(name));
      fn->set_system_name(st.Get(f.function.empty() ? name : Utf8(f.function)));
      fn->set_filename(st.Get(Utf8(module)));
      fit->second = fn->id();
    }
    pb::Location* loc = out.add_location();
    loc->set_id(out.location_size());
    loc->set_mapping_id(m->id());
    // The object-relative address: user processes load objects at different addresses.
    loc->set_address(f.offset);
    loc->add_line()->set_function_id(fit->second);
    location_of[i] = loc->id();
  }

  const int64_t k_pid = st.Get("pid"), k_comm = st.Get("comm"), k_group = st.Get("group"),
                k_container = st.Get("container"), k_state = st.Get("state");
  for (const ProfileData::Sample& s : p.samples) {
    pb::Sample* o = out.add_sample();
    for (uint32_t f : s.frames) o->add_location_id(location_of[f]);
    const int64_t v = static_cast<int64_t>(s.value);
    if (kind == PprofKind::kOnCpu) {
      o->add_value(v);
      o->add_value(v * period);
    } else {
      o->add_value(v);
    }
    const ProfileProcess& proc = p.processes[s.process];
    pb::Label* l = o->add_label();
    l->set_key(k_pid);
    l->set_num(proc.key.tgid);
    auto str_label = [&](int64_t key, const std::string& value) {
      if (value.empty()) return;
      pb::Label* sl = o->add_label();
      sl->set_key(key);
      sl->set_str(st.Get(Utf8(value)));
    };
    str_label(k_comm, proc.comm);
    str_label(k_group, proc.group);
    str_label(k_container, proc.container);
    if (kind == PprofKind::kOffCpu) str_label(k_state, StackKindName(s.kind));
  }
  return out.SerializeAsString();
}

std::string Gzip(absl::string_view data) {
  z_stream z{};
  // 15 + 16: a gzip header and trailer rather than zlib's.
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return "";
  }
  std::string out(deflateBound(&z, data.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

absl::StatusOr<std::string> Gunzip(absl::string_view gz, size_t max_bytes) {
  z_stream z{};
  if (inflateInit2(&z, 15 + 32) != Z_OK) return absl::InternalError("zlib: inflateInit2 failed");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  z.avail_in = static_cast<uInt>(gz.size());
  std::string out;
  char buf[64 << 10];
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof(buf);
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - z.avail_out);
    if (out.size() > max_bytes) rc = Z_MEM_ERROR;
    if (rc == Z_BUF_ERROR && z.avail_in == 0) break;
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END) {
    return absl::DataLossError(out.size() > max_bytes
                                   ? absl::StrCat("gzip: more than ", max_bytes, " bytes")
                                   : "gzip: truncated or damaged data");
  }
  return out;
}

absl::StatusOr<ProfileData> DecodePprof(absl::string_view data) {
  std::string raw;
  if (data.size() >= 2 && static_cast<unsigned char>(data[0]) == 0x1f &&
      static_cast<unsigned char>(data[1]) == 0x8b) {
    auto un = Gunzip(data);
    if (!un.ok()) return un.status();
    raw = *std::move(un);
  } else {
    raw = std::string(data);
  }
  pb::Profile in;
  if (!in.ParseFromString(raw)) return absl::DataLossError("not a pprof profile");
  const int n_strings = in.string_table_size();
  auto str = [&](int64_t i) -> std::string {
    return i >= 0 && i < n_strings ? in.string_table(static_cast<int>(i)) : std::string();
  };
  ProfileData out;
  out.start = absl::FromUnixNanos(in.time_nanos());
  out.end = out.start + absl::Nanoseconds(in.duration_nanos());
  if (in.period() > 0 && str(in.period_type().type()) == "cpu") {
    out.profile_hz = static_cast<int>(1000000000LL / in.period());
  }
  absl::flat_hash_map<uint64_t, const pb::Mapping*> mappings;
  for (const pb::Mapping& m : in.mapping()) mappings[m.id()] = &m;
  absl::flat_hash_map<uint64_t, const pb::Function*> functions;
  for (const pb::Function& f : in.function()) functions[f.id()] = &f;
  absl::flat_hash_map<uint64_t, uint32_t> frame_of;
  for (const pb::Location& l : in.location()) {
    Frame f;
    f.offset = l.address();
    f.address = l.address();
    if (auto m = mappings.find(l.mapping_id()); m != mappings.end()) {
      f.module = str(m->second->filename());
    }
    f.kernel = !f.module.empty() && f.module.front() == '[' && f.module != "[unknown]" &&
               f.module != "[vdso]";
    if (l.line_size() > 0) {
      if (auto fn = functions.find(l.line(0).function_id()); fn != functions.end()) {
        f.function = str(fn->second->name());
      }
    }
    frame_of[l.id()] = static_cast<uint32_t>(out.frames.size());
    out.frames.push_back(std::move(f));
  }
  absl::flat_hash_map<std::string, uint32_t> procs;
  for (const pb::Sample& s : in.sample()) {
    ProfileData::Sample o;
    if (s.value_size() > 0) o.value = static_cast<uint64_t>(std::max<int64_t>(0, s.value(0)));
    ProfileProcess meta;
    for (const pb::Label& l : s.label()) {
      const std::string key = str(l.key());
      if (key == "pid") meta.key.tgid = static_cast<uint32_t>(l.num());
      if (key == "comm") meta.comm = str(l.str());
      if (key == "group") meta.group = str(l.str());
      if (key == "container") meta.container = str(l.str());
      if (key == "state") {
        const std::string state = str(l.str());
        o.kind = state == "blocked" ? StackKind::kOffCpuBlocked
                 : state == "sleep" ? StackKind::kOffCpuSleep
                                    : StackKind::kOnCpu;
      }
    }
    const std::string pkey =
        absl::StrCat(meta.key.tgid, "\n", meta.comm, "\n", meta.group, "\n", meta.container);
    auto [pit, pnew] = procs.try_emplace(pkey, static_cast<uint32_t>(out.processes.size()));
    if (pnew) out.processes.push_back(std::move(meta));
    o.process = pit->second;
    for (uint64_t id : s.location_id()) {
      auto f = frame_of.find(id);
      if (f == frame_of.end()) {
        return absl::DataLossError(absl::StrCat("pprof: sample refers to location ", id,
                                                " that the profile does not have"));
      }
      o.frames.push_back(f->second);
    }
    out.samples.push_back(std::move(o));
  }
  return out;
}

std::string EncodePprof(const ProfileData& p, PprofKind kind) {
  return Gzip(EncodePprofRaw(p, kind));
}

}  // namespace procscope
