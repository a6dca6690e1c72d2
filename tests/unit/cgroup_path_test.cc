// SPDX-License-Identifier: Apache-2.0
// Tier 1: container, pod and unit from real-world cgroup paths of every runtime and driver
// (daemon/cgroup_path.h), and the choice of path in /proc/<pid>/cgroup.
#include "cgroup_path.h"

#include <ostream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"

namespace procscope {
namespace {

const std::string kId = "5d28ef412e89308f7138f10a07203e79d4c4d0bd34987dcf097eaeddab63c2d9";
const std::string kId2 = "1b6e3dc3d69ed2dfa1be23f373b06057cd158775e82e065774fdf9f44446c9e2";
const std::string kUid = "8f3a0b2c-4d5e-4f60-9a1b-2c3d4e5f6a7b";
const std::string kUidU = absl::StrReplaceAll(kUid, {{"-", "_"}});  // as in systemd slice names
const std::string kStaticPodUid = "b4fec3d6d21378523145708f61d95bed";
const std::string kBurstableSlice = absl::StrCat(
    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod", kUidU, ".slice");

struct Case {
  std::string name;  // test name suffix
  std::string path;
  CgroupInfo want;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.path; }

class ParseCgroupPathTest : public testing::TestWithParam<Case> {};

TEST_P(ParseCgroupPathTest, Fields) {
  const Case& c = GetParam();
  const CgroupInfo got = ParseCgroupPath(c.path);
  EXPECT_EQ(got.container_id, c.want.container_id) << c.path;
  EXPECT_EQ(got.runtime, c.want.runtime) << c.path;
  EXPECT_EQ(got.pod_uid, c.want.pod_uid) << c.path;
  EXPECT_EQ(got.systemd_unit, c.want.systemd_unit) << c.path;
}

// want: {container_id, runtime, pod_uid, systemd_unit}.
INSTANTIATE_TEST_SUITE_P(
    RealWorld, ParseCgroupPathTest,
    testing::Values(
        // Docker.
        Case{"DockerCgroupfs", "/docker/" + kId, {kId, "docker", "", ""}},
        Case{"DockerSystemd",
             "/system.slice/docker-" + kId + ".scope",
             {kId, "docker", "", "docker-" + kId + ".scope"}},
        Case{"DockerInDockerInnermost",
             absl::StrCat("/docker/", kId, "/docker/", kId2),
             {kId2, "docker", "", ""}},
        Case{"DockerTrailingSlash", "/docker/" + kId + "/", {kId, "docker", "", ""}},
        Case{"RootlessDocker",
             "/user.slice/user-1000.slice/user@1000.service/docker-" + kId + ".scope",
             {kId, "docker", "", "docker-" + kId + ".scope"}},
        // Kubernetes, cgroupfs driver: the path does not say which runtime.
        Case{"KubeCgroupfsBurstable",
             absl::StrCat("/kubepods/burstable/pod", kUid, "/", kId),
             {kId, "", kUid, ""}},
        Case{"KubeCgroupfsGuaranteed",
             absl::StrCat("/kubepods/pod", kUid, "/", kId),
             {kId, "", kUid, ""}},
        Case{"KubeCgroupfsPodLevel", "/kubepods/besteffort/pod" + kUid, {"", "", kUid, ""}},
        Case{"KubeCgroupfsStaticPod",
             absl::StrCat("/kubepods/burstable/pod", kStaticPodUid, "/", kId),
             {kId, "", kStaticPodUid, ""}},
        Case{"CrioCgroupfs",
             absl::StrCat("/kubepods/burstable/pod", kUid, "/crio-", kId),
             {kId, "crio", kUid, ""}},
        // Kubernetes, systemd driver.
        Case{"KubeSystemdContainerd",
             kBurstableSlice + "/cri-containerd-" + kId + ".scope",
             {kId, "containerd", kUid, "cri-containerd-" + kId + ".scope"}},
        Case{"KubeSystemdGuaranteed",
             absl::StrCat("/kubepods.slice/kubepods-pod", kUidU, ".slice/cri-containerd-", kId,
                          ".scope"),
             {kId, "containerd", kUid, "cri-containerd-" + kId + ".scope"}},
        Case{"KubeSystemdCrio",
             absl::StrCat("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod",
                          kUidU, ".slice/crio-", kId, ".scope"),
             {kId, "crio", kUid, "crio-" + kId + ".scope"}},
        Case{"KubeSystemdCrioCrunSubgroup",
             kBurstableSlice + "/crio-" + kId + ".scope/container",
             {kId, "crio", kUid, "crio-" + kId + ".scope"}},
        Case{"KubeSystemdDocker",
             kBurstableSlice + "/docker-" + kId + ".scope",
             {kId, "docker", kUid, "docker-" + kId + ".scope"}},
        Case{"KubeSystemdPodLevel", kBurstableSlice, {"", "", kUid, ""}},
        Case{"CrioConmonIsNotTheContainer",
             kBurstableSlice + "/crio-conmon-" + kId + ".scope",
             {"", "", kUid, "crio-conmon-" + kId + ".scope"}},
        Case{"KindInnermostContainer",
             absl::StrCat("/docker/", kId2,
                          "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
                          "kubelet-kubepods-besteffort-pod",
                          kUidU, ".slice/cri-containerd-", kId, ".scope"),
             {kId, "containerd", kUid, "cri-containerd-" + kId + ".scope"}},
        // containerd's systemd-style cgroup path without systemd (k3s).
        Case{"K3sColonForm",
             absl::StrCat("/system.slice/containerd.service/kubepods-besteffort-pod", kUidU,
                          ".slice:cri-containerd:", kId),
             {kId, "containerd", kUid, "containerd.service"}},
        Case{"ColonFormCrio",
             absl::StrCat("/kubepods-burstable-pod", kUidU, ".slice:crio:", kId),
             {kId, "crio", kUid, ""}},
        Case{"NerdctlSystemd",
             "/system.slice/nerdctl-" + kId + ".scope",
             {kId, "containerd", "", "nerdctl-" + kId + ".scope"}},
        Case{"EcsTaskBareId", absl::StrCat("/ecs/", kStaticPodUid, "/", kId), {kId, "", "", ""}},
        // Podman.
        Case{"Podman",
             "/machine.slice/libpod-" + kId + ".scope",
             {kId, "podman", "", "libpod-" + kId + ".scope"}},
        Case{"PodmanCrunSubgroup",
             "/machine.slice/libpod-" + kId + ".scope/container",
             {kId, "podman", "", "libpod-" + kId + ".scope"}},
        Case{"PodmanConmonIsNotTheContainer",
             "/machine.slice/libpod-conmon-" + kId + ".scope",
             {"", "", "", "libpod-conmon-" + kId + ".scope"}},
        Case{"PodmanRootless",
             "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + kId + ".scope",
             {kId, "podman", "", "libpod-" + kId + ".scope"}},
        Case{"PodmanCgroupfs", "/libpod_parent/libpod-" + kId, {kId, "podman", "", ""}},
        // systemd units.
        Case{"Service", "/system.slice/nginx.service", {"", "", "", "nginx.service"}},
        Case{"SessionScope",
             "/user.slice/user-1000.slice/session-3.scope",
             {"", "", "", "session-3.scope"}},
        Case{"UserServiceInnermost",
             "/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service",
             {"", "", "", "foo.service"}},
        Case{"UserManager",
             "/user.slice/user-1000.slice/user@1000.service/init.scope",
             {"", "", "", "init.scope"}},
        Case{"ServiceSubgroupKeepsUnit",
             "/system.slice/foo.service/worker",
             {"", "", "", "foo.service"}},
        Case{"DockerDaemon", "/system.slice/docker.service", {"", "", "", "docker.service"}},
        // Negatives: nothing to say, or look-alikes.
        Case{"Root", "/", {}}, Case{"Empty", "", {}}, Case{"UserSlice", "/user.slice", {}},
        Case{"BareSuffixIsNoUnit", "/system.slice/.service", {}},
        Case{"ShortId", "/docker/5d28ef412e89", {}},
        Case{"UpperCaseId", "/docker/" + absl::AsciiStrToUpper(kId), {}},
        Case{"Id63", "/docker/" + kId.substr(1), {}}, Case{"Id65", "/docker/" + kId + "0", {}},
        Case{"Id63Scope",
             "/system.slice/docker-" + kId.substr(1) + ".scope",
             {"", "", "", "docker-" + kId.substr(1) + ".scope"}},
        Case{"UnknownScopePrefix",
             "/system.slice/foo-" + kId + ".scope",
             {"", "", "", "foo-" + kId + ".scope"}},
        Case{"BareIdScopeIsNoContainer",
             "/system.slice/" + kId + ".scope",
             {"", "", "", kId + ".scope"}},
        Case{"ColonFormUnknownPrefix", "/x.slice:unknown:" + kId, {}},
        Case{"ColonFormShortId", "/x.slice:cri-containerd:abc", {}},
        Case{"Hex32IsNoContainer", "/process_api/" + kStaticPodUid, {}},
        Case{
            "BadPodUid", absl::StrCat("/kubepods/burstable/podnot-a-uid/", kId), {kId, "", "", ""}},
        Case{"UpperCasePodUid",
             absl::StrCat("/kubepods/pod", absl::AsciiStrToUpper(kUid), "/", kId),
             {kId, "", "", ""}},
        Case{"PodUidWrongDashes", "/kubepods/pod8f3a0b2c4-d5e-4f60-9a1b-2c3d4e5f6a7b", {}}),
    [](const testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(ChooseCgroupPathTest, V1OnlyContainer) {
  const std::string text =
      absl::StrCat("12:pids:/docker/", kId, "\n11:memory:/docker/", kId, "\n2:cpu,cpuacct:/docker/",
                   kId, "\n1:name=systemd:/docker/", kId, "\n");
  EXPECT_EQ(ChooseCgroupPath(text), "/docker/" + kId);
}

TEST(ChooseCgroupPathTest, V1OnlyPrefersSystemdLine) {
  EXPECT_EQ(ChooseCgroupPath("3:memory:/user.slice\n2:cpu:/\n"
                             "1:name=systemd:/user.slice/user-1000.slice/session-3.scope\n"),
            "/user.slice/user-1000.slice/session-3.scope");
}

TEST(ChooseCgroupPathTest, V1OnlyFirstNonRoot) {
  // This machine's layout: only the memory controller is moved.
  EXPECT_EQ(ChooseCgroupPath(absl::StrCat("9:name=systemd:/\n8:pids:/\n4:memory:/process_api/",
                                          kStaticPodUid, "\n3:cpuset:/other\n1:cpu:/\n")),
            "/process_api/" + kStaticPodUid);
}

TEST(ChooseCgroupPathTest, V2Only) {
  EXPECT_EQ(ChooseCgroupPath("0::/system.slice/nginx.service\n"), "/system.slice/nginx.service");
  EXPECT_EQ(ChooseCgroupPath("0::/system.slice/docker-" + kId + ".scope\n"),
            "/system.slice/docker-" + kId + ".scope");
}

TEST(ChooseCgroupPathTest, V2OnlyRoot) { EXPECT_EQ(ChooseCgroupPath("0::/\n"), "/"); }

TEST(ChooseCgroupPathTest, V2KeepsColonsInPath) {
  const std::string path = absl::StrCat("/system.slice/containerd.service/kubepods-besteffort-pod",
                                        kUidU, ".slice:cri-containerd:", kId);
  EXPECT_EQ(ChooseCgroupPath("0::" + path + "\n"), path);
}

TEST(ChooseCgroupPathTest, V2DeletedCgroup) {
  EXPECT_EQ(ChooseCgroupPath("0::/system.slice/gone.service (deleted)\n"),
            "/system.slice/gone.service");
}

TEST(ChooseCgroupPathTest, HybridContainerWinsOverEarlierLines) {
  const std::string text =
      absl::StrCat("0::/\n1:name=systemd:/system.slice/x.service\n12:memory:/docker/", kId, "\n");
  EXPECT_EQ(ChooseCgroupPath(text), "/docker/" + kId);
}

TEST(ChooseCgroupPathTest, HybridPrefersV2OverSystemd) {
  EXPECT_EQ(ChooseCgroupPath("12:memory:/foo\n1:name=systemd:/system.slice/x.service\n"
                             "0::/system.slice/y.service\n"),
            "/system.slice/y.service");
}

TEST(ChooseCgroupPathTest, HybridV2RootFallsBackToSystemd) {
  EXPECT_EQ(ChooseCgroupPath("12:memory:/foo\n1:name=systemd:/system.slice/x.service\n0::/\n"),
            "/system.slice/x.service");
}

TEST(ChooseCgroupPathTest, EmptyAndGarbage) {
  EXPECT_EQ(ChooseCgroupPath(""), "/");
  EXPECT_EQ(ChooseCgroupPath("\n\n"), "/");
  EXPECT_EQ(ChooseCgroupPath("garbage\n1:cpu\n2:memory:relative/path\n"), "/");
}

TEST(ChooseCgroupPathTest, NoTrailingNewline) {
  EXPECT_EQ(ChooseCgroupPath("0::/system.slice/a.service"), "/system.slice/a.service");
}

}  // namespace
}  // namespace procscope
