// SPDX-License-Identifier: Apache-2.0
// Container, pod and systemd unit from a cgroup path, for every common runtime and cgroup driver.
#ifndef PROCSCOPE_DAEMON_CGROUP_PATH_H_
#define PROCSCOPE_DAEMON_CGROUP_PATH_H_

#include "absl/strings/string_view.h"
#include "model.h"

namespace procscope {

// Parses one cgroup path (the part after "N:controllers:" in /proc/<pid>/cgroup), e.g.
//   /docker/<id>, /system.slice/docker-<id>.scope,
//   /kubepods/burstable/pod<uid>/<id>,
//   /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/
//       cri-containerd-<id>.scope (or crio-<id>.scope, docker-<id>.scope),
//   /machine.slice/libpod-<id>.scope, /user.slice/user-1000.slice/user@1000.service/...
// Unknown layouts yield empty fields. Pod UIDs are returned with dashes.
CgroupInfo ParseCgroupPath(absl::string_view path);

// Picks, from the whole text of /proc/<pid>/cgroup (v1, v2 or hybrid), the path that says most:
// the first line whose path names a container; else the cgroup2 ("0::") path if it is not "/";
// else the name=systemd line's; else the first non-root path; else "/".
std::string ChooseCgroupPath(absl::string_view proc_pid_cgroup);

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_CGROUP_PATH_H_
