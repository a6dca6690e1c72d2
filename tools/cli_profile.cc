// SPDX-License-Identifier: Apache-2.0
#include "cli_profile.h"

#include <cstdio>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli_commands.h"
#include "pprof.h"
#include "text.h"

namespace procscope::cli {
namespace {

// Query values: unreserved characters as they are, the rest %XX.
std::string PercentEncode(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "%%%02X", c);
    }
  }
  return out;
}

std::string What(const Options& o) {
  if (o.pid != 0) return absl::StrCat("pid ", o.pid);
  if (!o.group.empty()) return absl::StrCat("group ", EscapeForDisplay(o.group));
  return "every process";
}

// On-CPU: samples, shown as CPU time when the rate is known; off-CPU: nanoseconds.
std::string Value(const Options& o, const ProfileData& p, uint64_t v) {
  if (o.offcpu) return absl::StrFormat("%.3fs", static_cast<double>(v) / 1e9);
  if (p.profile_hz > 0) return absl::StrFormat("%.2fs", static_cast<double>(v) / p.profile_hz);
  return absl::StrCat(v);
}

double Share(uint64_t v, uint64_t total) {
  return total == 0 ? 0 : 100.0 * static_cast<double>(v) / static_cast<double>(total);
}

}  // namespace

std::string ProfilePath(const Options& o, absl::Duration window) {
  std::string path =
      absl::StrCat(o.offcpu ? "/debug/pprof/offcpu" : "/debug/pprof/profile",
                   "?seconds=", absl::ToInt64Seconds(absl::Ceil(window, absl::Seconds(1))));
  if (o.pid != 0) absl::StrAppend(&path, "&pid=", o.pid);
  if (!o.group.empty()) absl::StrAppend(&path, "&group=", PercentEncode(o.group));
  return path;
}

std::string RenderProfileTop(const Options& o, const ProfileData& p, const RenderOptions& r) {
  uint64_t total = 0;
  const std::vector<TopFunction> top = TopFunctions(p, static_cast<size_t>(o.limit), &total);
  uint64_t samples = 0;
  for (const ProfileData::Sample& s : p.samples) samples += s.value;
  std::string out = Paint(absl::StrCat("procscope profile: ", o.offcpu ? "off-CPU" : "on-CPU", ", ",
                                       What(o), ", last ", absl::FormatDuration(o.duration)),
                          kBold, r.color);
  if (o.offcpu) {
    absl::StrAppend(&out, ": ", Value(o, p, total), " off the CPU (blocked and asleep)\n");
  } else {
    absl::StrAppend(&out, ": ", samples, " samples",
                    p.profile_hz > 0 ? absl::StrCat(" at ", p.profile_hz, " Hz per CPU, ",
                                                    Value(o, p, total), " of CPU")
                                     : "",
                    "\n");
  }
  if (top.empty()) {
    absl::StrAppend(&out, "no samples", o.pid != 0 ? " for that process" : "",
                    " (is it running? is procscoped profiling, --profile_hz > 0?)\n");
    return out;
  }
  absl::StrAppend(&out,
                  Paint(absl::StrFormat("%10s %6s %6s %10s %6s  %s", "self", "self%", "sum%",
                                        "total", "total%", "function"),
                        kDim, r.color),
                  "\n");
  double sum = 0;
  for (const TopFunction& t : top) {
    sum += Share(t.self, total);
    absl::StrAppendFormat(&out, "%10s %5.1f%% %5.1f%% %10s %5.1f%%  %s\n", Value(o, p, t.self),
                          Share(t.self, total), sum, Value(o, p, t.total), Share(t.total, total),
                          EscapeForDisplay(t.name));
  }
  return out;
}

v1::ProfileReport ProfileReportOf(const Options& o, const ProfileData& p) {
  v1::ProfileReport rep;
  rep.set_kind(o.offcpu ? "offcpu" : "cpu");
  rep.set_unit(o.offcpu ? "nanoseconds" : "samples");
  rep.set_seconds(absl::ToDoubleSeconds(o.duration));
  rep.set_pid(static_cast<uint32_t>(o.pid));
  rep.set_group(o.group);
  uint64_t total = 0;
  for (const TopFunction& t : TopFunctions(p, static_cast<size_t>(o.limit), &total)) {
    v1::ProfileReport::Function* f = rep.add_functions();
    f->set_name(t.name);
    f->set_self(t.self);
    f->set_total(t.total);
    f->set_self_share(Share(t.self, total) / 100);
    f->set_total_share(Share(t.total, total) / 100);
  }
  rep.set_total(total);
  for (std::string& line : TopFoldedStacks(p, static_cast<size_t>(o.limit))) {
    rep.add_folded(std::move(line));
  }
  return rep;
}

absl::Status CommandIo::WriteFile(const std::string& file, absl::string_view data) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (out) out.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!out) return absl::UnavailableError(absl::StrCat("--pprof=", file, ": cannot write it"));
  return absl::OkStatus();
}

int RunProfile(const Options& o, const RenderOptions& r, CommandIo& io) {
  auto fail = [&](const absl::Status& s) {
    std::string msg(s.message());
    for (char& c : msg) {
      if (c == '\n') c = ' ';
    }
    io.Err(absl::StrCat("procscope: ", msg,
                        s.code() == absl::StatusCode::kUnavailable && !o.standalone &&
                                !absl::StartsWith(msg, "--pprof")
                            ? "; is it running? start it with scripts/run.sh, or use --standalone"
                            : ""));
    return 1;
  };
  absl::StatusOr<std::string> body;
  if (o.standalone) {
    body = io.StandaloneProfile(o.duration, ProfilePath(o, o.duration));
  } else {
    // The daemon answers from its history at once: check it is there first, then wait for the
    // window to fill (Ctrl-C cuts it short and takes what there is).
    if (auto h = io.Get("/healthz"); !h.ok()) return fail(h.status());
    const absl::Time start = io.Now();
    io.Nap(o.duration);
    const absl::Duration waited = std::max(io.Now() - start, absl::Seconds(1));
    const std::string path = ProfilePath(o, std::min(waited, o.duration));
    body = OkBody(o.endpoint, path, io.Get(path));
  }
  if (!body.ok()) return fail(body.status());
  if (!o.pprof_file.empty()) {
    if (absl::Status s = io.WriteFile(o.pprof_file, *body); !s.ok()) return fail(s);
  }
  auto p = DecodePprof(*body);
  if (!p.ok()) return fail(p.status());
  if (!o.pprof_file.empty()) {
    uint64_t total = 0;
    for (const ProfileData::Sample& s : p->samples) total += s.value;
    io.Err(absl::StrCat(
        "procscope: wrote ", p->samples.size(), " stacks (",
        o.offcpu ? absl::StrFormat("%.3fs off-CPU", total / 1e9) : absl::StrCat(total, " samples"),
        ") to ", EscapeForDisplay(o.pprof_file), "; read it with: go tool pprof -top ",
        EscapeForDisplay(o.pprof_file)));
    return 0;
  }
  if (o.folded) {
    io.Out(FoldedStacks(*p));
  } else if (o.json) {
    io.Out(absl::StrCat(MessageJson(ProfileReportOf(o, *p)), "\n"));
  } else {
    io.Out(RenderProfileTop(o, *p, r));
  }
  return 0;
}

}  // namespace procscope::cli
