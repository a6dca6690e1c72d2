// SPDX-License-Identifier: Apache-2.0
// Decisions, where the path alone leaves room:
// - The innermost container wins (docker-in-docker, kind): that is the one the process runs in.
// - runtime is set only when the path names it (a "docker" parent, or a docker-, cri-containerd-,
//   crio-, libpod-, nerdctl- prefix). A bare id under kubepods (cgroupfs driver) is left with
//   runtime "": containerd and dockershim lay it out the same way, so guessing would mislead.
// - Monitors (crio-conmon-<id>.scope, libpod-conmon-<id>.scope) are not the container: no id and
//   no runtime, but the pod UID and the unit still apply.
// - systemd_unit is the innermost .service or .scope, container scopes included
//   ("docker-<id>.scope"), since that is the name systemctl knows the process by. Sub-cgroups a
//   unit makes for itself (".../libpod-<id>.scope/container") keep the unit.
// - Container ids are 64 lowercase hex digits; anything else (short, upper case, 32 digits) is
//   not taken for one, so names like "user.slice" or a task hash are never mistaken for ids.
// - Pod UIDs are UUIDs (underscores of systemd slice names become dashes) or the 32-hex config
//   hash kubelet uses as the UID of a static pod, kept as is.
#include "cgroup_path.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace procscope {
namespace {

bool IsLowerHexDigit(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!IsLowerHexDigit(c)) return false;
  }
  return true;
}

bool IsContainerId(absl::string_view s) { return s.size() == 64 && IsLowerHex(s); }

// `s` as a pod UID with dashes, or "" if it is not one. Accepts '-' or '_' as the separator.
std::string NormalizePodUid(absl::string_view s) {
  if (s.size() == 32 && IsLowerHex(s)) return std::string(s);  // static pod: config hash
  if (s.size() != 36) return "";
  std::string uid(s);
  for (size_t i = 0; i < uid.size(); ++i) {
    const bool sep_pos = i == 8 || i == 13 || i == 18 || i == 23;
    if (sep_pos) {
      if (uid[i] != '-' && uid[i] != '_') return "";
      uid[i] = '-';
    } else if (!IsLowerHexDigit(uid[i])) {
      return "";
    }
  }
  return uid;
}

// The pod UID named by one path component: "pod<uid>" (cgroupfs driver) or a slice whose last
// dash-separated part is "pod<uid_with_underscores>" (systemd driver), e.g.
// "kubepods-burstable-pod<uid>.slice" or, in kind, "kubelet-kubepods-pod<uid>.slice".
std::string PodUidFromComponent(absl::string_view c) {
  if (absl::ConsumeSuffix(&c, ".slice")) {
    const size_t dash = c.rfind('-');
    if (dash != absl::string_view::npos) c.remove_prefix(dash + 1);
  }
  if (!absl::ConsumePrefix(&c, "pod")) return "";
  return NormalizePodUid(c);
}

// Scope prefixes (also the middle part of the colon form) and the runtime each stands for.
struct Prefix {
  absl::string_view prefix;
  absl::string_view runtime;
};
constexpr Prefix kPrefixes[] = {
    {"docker", "docker"}, {"cri-containerd", "containerd"}, {"crio", "crio"},
    {"libpod", "podman"}, {"nerdctl", "containerd"},
};

const Prefix* FindPrefix(absl::string_view name) {
  for (const Prefix& p : kPrefixes) {
    if (name == p.prefix) return &p;
  }
  return nullptr;
}

struct Container {
  std::string id;
  std::string runtime;
  std::string pod_uid;  // from the colon form, which carries the pod slice in the same component
};

// The container one path component names, if any. `parent` is the component above it.
bool ContainerFromComponent(absl::string_view c, absl::string_view parent, Container* out) {
  // containerd's systemd driver without systemd managing it (k3s):
  // "kubepods-besteffort-pod<uid>.slice:cri-containerd:<id>".
  if (absl::StrContains(c, ':')) {
    std::vector<absl::string_view> parts = absl::StrSplit(c, ':');
    if (parts.size() != 3 || !IsContainerId(parts[2])) return false;
    const Prefix* p = FindPrefix(parts[1]);
    if (p == nullptr) return false;
    *out = {std::string(parts[2]), std::string(p->runtime), PodUidFromComponent(parts[0])};
    return true;
  }
  // cgroupfs driver: the bare id, under "docker" for docker, under pod<uid> for Kubernetes.
  if (IsContainerId(c)) {
    *out = {std::string(c), parent == "docker" ? "docker" : "", ""};
    return true;
  }
  // "<prefix>-<id>.scope" (systemd driver) or "<prefix>-<id>" (CRI-O, podman with cgroupfs).
  absl::ConsumeSuffix(&c, ".scope");
  for (const Prefix& p : kPrefixes) {
    absl::string_view rest = c;
    if (absl::ConsumePrefix(&rest, p.prefix) && absl::ConsumePrefix(&rest, "-") &&
        IsContainerId(rest)) {
      *out = {std::string(rest), std::string(p.runtime), ""};
      return true;
    }
  }
  return false;
}

bool IsUnit(absl::string_view c) {
  return (absl::EndsWith(c, ".service") && c.size() > 8) ||
         (absl::EndsWith(c, ".scope") && c.size() > 6);
}

}  // namespace

CgroupInfo ParseCgroupPath(absl::string_view path) {
  CgroupInfo info;
  std::vector<absl::string_view> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  absl::string_view parent;
  // Outermost to innermost: later matches overwrite earlier ones, so the innermost wins.
  for (absl::string_view c : parts) {
    Container container;
    if (ContainerFromComponent(c, parent, &container)) {
      info.container_id = std::move(container.id);
      info.runtime = std::move(container.runtime);
      if (!container.pod_uid.empty()) info.pod_uid = std::move(container.pod_uid);
    } else if (std::string uid = PodUidFromComponent(c); !uid.empty()) {
      info.pod_uid = std::move(uid);
    }
    if (IsUnit(c)) info.systemd_unit = std::string(c);
    parent = c;
  }
  return info;
}

std::string ChooseCgroupPath(absl::string_view proc_pid_cgroup) {
  absl::string_view v2, systemd, first_non_root;
  for (absl::string_view line : absl::StrSplit(proc_pid_cgroup, '\n', absl::SkipEmpty())) {
    // "hierarchy-id:controllers:path"; the path itself may hold colons (k3s), so split twice.
    std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (f.size() != 3 || !absl::StartsWith(f[2], "/")) continue;
    absl::string_view path = f[2];
    // cgroup2 marks the cgroup of a zombie whose cgroup was removed.
    absl::ConsumeSuffix(&path, " (deleted)");
    if (!ParseCgroupPath(path).container_id.empty()) return std::string(path);
    if (path == "/") continue;
    if (f[0] == "0" && f[1].empty() && v2.empty()) v2 = path;
    if (f[1] == "name=systemd" && systemd.empty()) systemd = path;
    if (first_non_root.empty()) first_non_root = path;
  }
  if (!v2.empty()) return std::string(v2);
  if (!systemd.empty()) return std::string(systemd);
  if (!first_non_root.empty()) return std::string(first_non_root);
  return "/";
}

}  // namespace procscope
