// SPDX-License-Identifier: Apache-2.0
#include "bpf_pins.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "collector.h"
#include "log.h"
#include "procscope.h"
#include "status_macros.h"

namespace procscope {
namespace {

// FNV-1a over the things a pinned map's meaning depends on.
struct Fnv {
  uint64_t h = 1469598103934665603ull;
  void Bytes(const void* p, size_t n) {
    for (size_t i = 0; i < n; ++i)
      h = (h ^ static_cast<const unsigned char*>(p)[i]) * 1099511628211ull;
  }
  void U64(uint64_t v) { Bytes(&v, sizeof(v)); }
  void Str(const char* s) { Bytes(s, strlen(s) + 1); }
};

// A BTF type as a layout: kinds, sizes, member names and offsets, array lengths.
void HashBtfType(const btf* b, uint32_t id, int depth, Fnv& h) {
  const btf_type* t = id != 0 ? btf__type_by_id(b, id) : nullptr;
  if (t == nullptr || depth > 10) {
    h.U64(0);
    return;
  }
  h.U64(btf_kind(t));
  switch (btf_kind(t)) {
    case BTF_KIND_INT:
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64:
    case BTF_KIND_FLOAT:
      h.U64(t->size);
      return;
    case BTF_KIND_ARRAY:
      h.U64(btf_array(t)->nelems);
      HashBtfType(b, btf_array(t)->type, depth + 1, h);
      return;
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION: {
      h.U64(t->size);
      const btf_member* m = btf_members(t);
      for (int i = 0; i < btf_vlen(t); ++i) {
        h.Str(btf__name_by_offset(b, m[i].name_off));
        h.U64(btf_member_bit_offset(t, i));
        HashBtfType(b, m[i].type, depth + 1, h);
      }
      return;
    }
    case BTF_KIND_DATASEC: {  // .bss: every variable's name, place and type
      h.U64(t->size);
      const btf_var_secinfo* v = btf_var_secinfos(t);
      for (int i = 0; i < btf_vlen(t); ++i) {
        const btf_type* var = btf__type_by_id(b, v[i].type);
        h.Str(var != nullptr ? btf__name_by_offset(b, var->name_off) : "");
        h.U64(v[i].offset);
        h.U64(v[i].size);
        HashBtfType(b, v[i].type, depth + 1, h);
      }
      return;
    }
    case BTF_KIND_VAR:
    case BTF_KIND_TYPEDEF:
    case BTF_KIND_VOLATILE:
    case BTF_KIND_CONST:
    case BTF_KIND_RESTRICT:
    case BTF_KIND_TYPE_TAG:
      HashBtfType(b, t->type, depth + 1, h);
      return;
    default:  // pointers and the rest: only the kind
      return;
  }
}

}  // namespace

std::string MapPin(const std::string& dir, const char* map) {
  return absl::StrCat(dir, "/", map[0] == '.' ? map + 1 : map);
}

std::string LinkPin(const std::string& dir, const char* tp) {
  return absl::StrCat(dir, "/link_", tp);
}
std::string ProgPin(const std::string& dir, const char* tp) {
  return absl::StrCat(dir, "/prog_", tp);
}

bool OnBpfFs(const std::string& path) {
  struct statfs st;
  return statfs(path.c_str(), &st) == 0 && static_cast<uint64_t>(st.f_type) == BPF_FS_MAGIC;
}

std::string Parent(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

// The layout hash of this build: every pinned map's definition and key/value types, and the
// records the daemon reads from them.
uint64_t LayoutHash(bpf_object* obj) {
  Fnv h;
  h.U64(PS_LAYOUT_VERSION);
  h.U64(sizeof(ps_exit_event));
  h.U64(sizeof(ps_proc_rec));
  h.U64(PS_STAT_MAX);
  const btf* b = bpf_object__btf(obj);
  for (const char* name : kPinnedMaps) {
    const bpf_map* m = bpf_object__find_map_by_name(obj, name);
    h.Str(name);
    if (m == nullptr) continue;
    h.U64(bpf_map__type(m));
    h.U64(bpf_map__key_size(m));
    h.U64(bpf_map__value_size(m));
    h.U64(bpf_map__max_entries(m));
    h.U64(bpf_map__map_flags(m));
    if (b != nullptr) {
      HashBtfType(b, bpf_map__btf_key_type_id(m), 0, h);
      HashBtfType(b, bpf_map__btf_value_type_id(m), 0, h);
    }
  }
  return h.h;
}

// Makes `dir` a directory on a bpffs: mounts one at /sys/fs/bpf when that is where it belongs
// and none is mounted (a fresh machine), then creates the directory.
absl::Status PreparePinDir(const std::string& dir) {
  if (dir.empty() || dir[0] != '/' || dir.size() < 2 || dir.back() == '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "--pin_path=", dir, ": must be an absolute directory path without a trailing /"));
  }
  const std::string parent = Parent(dir);
  if (!OnBpfFs(parent)) {
    struct stat st;
    if (parent != kSysFsBpf || stat(parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--pin_path=", dir, ": ", parent,
          " is not on a BPF filesystem; mount one (mount -t bpf bpf ", parent,
          "), choose a directory inside a mounted bpffs, or --pin_path= to disable pinning"));
    }
    if (mount("bpf", kSysFsBpf, "bpf", 0, "mode=0700") != 0) {
      return absl::PermissionDeniedError(
          absl::StrCat("no BPF filesystem at /sys/fs/bpf and mounting one failed (",
                       strerror(errno), "; needs CAP_SYS_ADMIN): mount -t bpf bpf /sys/fs/bpf"));
    }
    LOG(INFO) << "mounted a BPF filesystem at /sys/fs/bpf";
  }
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::PermissionDeniedError(
        absl::StrCat("--pin_path=", dir, ": cannot create it: ", strerror(errno)));
  }
  if (!OnBpfFs(dir)) {
    return absl::FailedPreconditionError(
        absl::StrCat("--pin_path=", dir, ": not a directory on a BPF filesystem"));
  }
  return absl::OkStatus();
}

// Locks `dir` against a second collector (which would steal half the exit events). Returns the
// lock's fd.
absl::StatusOr<int> LockPinDir(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("--pin_path=", dir, ": cannot open it: ", strerror(errno)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    close(fd);
    if (err == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat(dir, " is in use by another running procscoped"));
    }
    return absl::InternalError(absl::StrCat("locking ", dir, ": ", strerror(err)));
  }
  return fd;
}

// Removes every entry of `dir` (not the directory). Returns how many. The names are read first
// and unlinked after: unlinking while readdir() walks the directory can skip entries.
absl::StatusOr<int> ClearDir(const std::string& dir) {
  int n = 0;
  for (int pass = 0; pass < 4; ++pass) {
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) {
      return absl::InternalError(absl::StrCat("reading ", dir, ": ", strerror(errno)));
    }
    std::vector<std::string> names;
    while (dirent* e = readdir(d)) {
      if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) names.push_back(e->d_name);
    }
    closedir(d);
    if (names.empty()) return n;
    for (const std::string& name : names) {
      const std::string path = absl::StrCat(dir, "/", name);
      if (unlink(path.c_str()) != 0 && errno != ENOENT) {
        return absl::InternalError(absl::StrCat("removing ", path, ": ", strerror(errno)));
      }
      ++n;
    }
  }
  return n;
}

// Counts (and consumes) the exit events waiting in an old ring buffer that this build cannot
// read: they are reported as dropped rather than silently lost.
uint64_t CountQueuedRecords(const std::string& path) {
  const int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return 0;
  uint64_t n = 0;
  bpf_map_info info = {};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.type == BPF_MAP_TYPE_RINGBUF) {
    ring_buffer* rb = ring_buffer__new(
        fd,
        [](void* ctx, void*, size_t) {
          ++*static_cast<uint64_t*>(ctx);
          return 0;
        },
        &n, nullptr);
    if (rb != nullptr) {
      (void)ring_buffer__consume(rb);
      ring_buffer__free(rb);
    }
  }
  close(fd);
  return n;
}

absl::StatusOr<int> UnpinCollector(const std::string& pin_path) {
  struct stat st;
  if (pin_path.empty()) return absl::InvalidArgumentError("--unpin needs a --pin_path");
  if (stat(pin_path.c_str(), &st) != 0) {
    if (errno == ENOENT) return 0;
    return absl::InternalError(absl::StrCat(pin_path, ": ", strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode) || !OnBpfFs(pin_path) || !OnBpfFs(Parent(pin_path))) {
    return absl::FailedPreconditionError(absl::StrCat(
        pin_path, " is not a directory inside a BPF filesystem: procscoped pinned nothing there"));
  }
  ASSIGN_OR_RETURN(int lock, LockPinDir(pin_path));
  auto n = ClearDir(pin_path);
  close(lock);
  if (!n.ok()) return n.status();
  if (rmdir(pin_path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("removing ", pin_path, ": ", strerror(errno)));
  }
  return *n;
}

}  // namespace procscope
