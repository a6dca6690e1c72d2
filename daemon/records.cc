// SPDX-License-Identifier: Apache-2.0
#include "records.h"

#include <string.h>

#include <algorithm>
#include <csignal>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model.h"

namespace procscope {
namespace {

void AddCounters(ps_counters& dst, const ps_counters& src) {
  dst.cpu_ns += src.cpu_ns;
  dst.runq_ns += src.runq_ns;
  dst.vol_cs += src.vol_cs;
  dst.invol_cs += src.invol_cs;
  dst.min_flt += src.min_flt;
  dst.maj_flt += src.maj_flt;
}

}  // namespace

absl::StatusOr<std::vector<ProcessSample>> ParseProcessRecords(absl::string_view buf) {
  if (buf.size() % sizeof(ps_proc_rec) != 0) {
    return absl::DataLossError(
        absl::StrFormat("process iterator returned %d bytes, not a multiple of the %d-byte record",
                        buf.size(), sizeof(ps_proc_rec)));
  }
  const size_t n = buf.size() / sizeof(ps_proc_rec);
  std::vector<ProcessSample> out;
  out.reserve(n);
  absl::flat_hash_map<ps_key, size_t> index;  // hash and equality: model.h
  std::vector<ps_proc_rec> deltas;
  for (size_t i = 0; i < n; ++i) {
    ps_proc_rec r;
    memcpy(&r, buf.data() + i * sizeof(r), sizeof(r));
    if (r.flags & PS_REC_DELTA) {
      deltas.push_back(r);
      continue;
    }
    ProcessSample s;
    s.key = r.key;
    s.ppid = r.ppid;
    s.uid = r.uid;
    s.nr_threads = r.nr_threads;
    s.cgroup_id = r.cgroup_id;
    s.rss_bytes = r.rss_bytes;
    s.comm = CommFromKernel(r.comm);
    s.counters = r.c;
    s.io = r.io;
    index.emplace(s.key, out.size());
    out.push_back(std::move(s));
  }
  // A delta whose process is not in this pass (it began exiting meanwhile) is dropped: the exit
  // event carries the final totals.
  for (const ps_proc_rec& d : deltas) {
    auto it = index.find(d.key);
    if (it != index.end()) AddCounters(out[it->second].counters, d.c);
  }
  std::sort(out.begin(), out.end(),
            [](const ProcessSample& a, const ProcessSample& b) { return a.key.tgid < b.key.tgid; });
  return out;
}

ExitStatus DecodeExitStatus(uint32_t wait_status) {
  ExitStatus s;
  s.signal = wait_status & 0x7f;
  s.core_dumped = (wait_status & 0x80) != 0;
  s.exit_code = s.signal == 0 ? static_cast<int>((wait_status >> 8) & 0xff) : 0;
  return s;
}

std::string SignalName(int signal) {
  if (signal <= 0) return "";
  const char* abbrev = sigabbrev_np(signal);
  return abbrev != nullptr ? absl::StrCat("SIG", abbrev) : absl::StrCat("SIG", signal);
}

std::string CommFromKernel(const char (&comm)[PS_COMM_LEN]) {
  return std::string(comm, strnlen(comm, PS_COMM_LEN));
}

std::string EscapeForDisplay(absl::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (unsigned char c : raw) {
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    }
  }
  return out;
}

std::string ToValidUtf8(absl::string_view raw) {
  static constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  out.reserve(raw.size());
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  const size_t n = raw.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    size_t len = 0;
    uint32_t min = 0;
    if (c == 0) {
      len = 0;
    } else if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, min = 0x10000;
    }
    bool ok = len != 0 && i + len <= n;
    uint32_t cp = ok ? (c & (0x7F >> len)) : 0;
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (p[i + k] & 0xC0) == 0x80;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not valid UTF-8.
    ok = ok && cp >= min && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
    if (ok) {
      out.append(raw.data() + i, len);
      i += len;
    } else {
      out += kReplacement;
      ++i;
    }
  }
  return out;
}

}  // namespace procscope
