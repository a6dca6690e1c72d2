// SPDX-License-Identifier: Apache-2.0
#include "symbolizer.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <list>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "fd.h"
#include "file.h"
#include "symbol_tables.h"

namespace procscope {
namespace {

// A file as the cache knows it when it has no build-id (and how a Capture finds a cached object
// with one stat, without opening the file).
struct FileId {
  uint64_t dev = 0, ino = 0, size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileId& o) const {
    return dev == o.dev && ino == o.ino && size == o.size && mtime_ns == o.mtime_ns;
  }
  template <typename H>
  friend H AbslHashValue(H h, const FileId& f) {
    return H::combine(std::move(h), f.dev, f.ino, f.size, f.mtime_ns);
  }
};

struct Object {
  bool ok = false;  // false: could not be read (not ELF, damaged): frames in it are module+offset
  ElfSymbols elf;
  std::vector<FileId> ids;  // every file identity that maps to it
};

struct Mapping {
  uint64_t start = 0, end = 0, offset = 0;
  std::shared_ptr<const Object> object;  // null: none (anonymous, unreadable)
  std::string module;                    // the path, "[vdso]", ...
};

struct Process {
  std::vector<Mapping> maps;  // sorted by start
  absl::Time captured;
  absl::Duration refresh_wait;  // Refresh's wait after `captured`
  std::list<std::pair<uint32_t, uint64_t>>::iterator lru;
};

// Field 22 (starttime, clock ticks) of /proc/<pid>/stat; the comm before it may hold anything.
std::optional<uint64_t> StartTicks(absl::string_view stat) {
  const size_t paren = stat.rfind(')');
  if (paren == absl::string_view::npos) return std::nullopt;
  std::vector<absl::string_view> f = absl::StrSplit(stat.substr(paren + 1), ' ', absl::SkipEmpty());
  uint64_t ticks = 0;
  // After the comm: state is field 3, so starttime is the 20th.
  if (f.size() < 20 || !absl::SimpleAtoi(f[19], &ticks)) return std::nullopt;
  return ticks;
}

uint64_t NsPerTick() {
  static const uint64_t ns = [] {
    const long hz = sysconf(_SC_CLK_TCK);
    return uint64_t{1'000'000'000} / static_cast<uint64_t>(hz > 0 ? hz : 100);
  }();
  return ns;
}

// The vDSO image of this process: the same kernel's, so usually byte for byte another 64-bit
// process's too (compared before it is used).
struct OwnVdso {
  const char* data = nullptr;
  size_t size = 0;
};
OwnVdso FindOwnVdso() {
  OwnVdso v;
  const uint64_t base = getauxval(AT_SYSINFO_EHDR);
  if (base == 0) return v;
  absl::StatusOr<std::string> maps = ReadFileAt(AT_FDCWD, "/proc/self/maps", "/proc/self/maps");
  if (!maps.ok()) return v;
  for (absl::string_view line : absl::StrSplit(*maps, '\n', absl::SkipEmpty())) {
    std::optional<MapsLine> m = ParseMapsLine(line);
    if (m && m->path == "[vdso]" && m->start == base) {
      v.data = reinterpret_cast<const char*>(base);
      v.size = m->end - m->start;
    }
  }
  return v;
}

}  // namespace

struct Symbolizer::Impl {
  explicit Impl(SymbolizerOptions o) : options(std::move(o)) {
    if (options.kallsyms.empty()) options.kallsyms = options.proc_root + "/kallsyms";
    if (options.max_processes == 0) options.max_processes = 1;
    if (options.max_objects == 0) options.max_objects = 1;
  }

  using Key = std::pair<uint32_t, uint64_t>;
  using ObjectList = std::list<std::shared_ptr<Object>>;

  SymbolizerOptions options;
  SymbolizerStats stats;

  // Processes, most recently captured or used first.
  absl::flat_hash_map<Key, Process> procs;
  std::list<Key> proc_lru;

  // ELF objects, most recently used first, found by file identity or build-id.
  ObjectList objects;
  absl::flat_hash_map<FileId, ObjectList::iterator> by_id;
  absl::flat_hash_map<std::string, ObjectList::iterator> by_build_id;

  std::shared_ptr<const Object> own_vdso;  // parsed on first use
  OwnVdso own_vdso_image;
  bool vdso_looked = false;

  KallsymsTable kallsyms;
  bool kallsyms_loaded = false;
  absl::Time kallsyms_read_at = absl::InfinitePast();

  void TouchObject(ObjectList::iterator it) { objects.splice(objects.begin(), objects, it); }

  void EvictObjects() {
    while (objects.size() > options.max_objects) {
      const std::shared_ptr<Object>& victim = objects.back();
      for (const FileId& id : victim->ids) by_id.erase(id);
      if (!victim->elf.build_id.empty()) {
        auto b = by_build_id.find(victim->elf.build_id);
        if (b != by_build_id.end() && b->second == std::prev(objects.end())) by_build_id.erase(b);
      }
      objects.pop_back();  // processes that map it keep their reference
    }
  }

  // The object `via` (relative to the process's /proc directory) names, cached.
  std::shared_ptr<const Object> OpenObject(int dirfd, const std::string& via, const struct stat& st,
                                           const std::string& display) {
    const FileId id{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                    static_cast<uint64_t>(st.st_size),
                    static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
    auto hit = by_id.find(id);
    if (hit != by_id.end()) {
      TouchObject(hit->second);
      return *hit->second;
    }
    auto obj = std::make_shared<Object>();
    const int fd = openat(dirfd, via.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      ++stats.object_errors;
      return nullptr;  // not cached: it may be readable next time
    }
    ScopedFd guard(fd);
    absl::StatusOr<ElfSymbols> elf = ReadElf(fd, display);
    if (elf.ok()) {
      if (!elf->build_id.empty()) {
        auto b = by_build_id.find(elf->build_id);
        if (b != by_build_id.end()) {  // the same binary under another path or identity
          // ... maybe unstripped where the cached copy was stripped: the same code, so its
          // fuller table serves every process that maps either.
          Object& cached = **b->second;
          if (cached.elf.from_dynsym && !elf->from_dynsym) cached.elf = std::move(*elf);
          cached.ids.push_back(id);
          by_id[id] = b->second;
          TouchObject(b->second);
          return *b->second;
        }
      }
      obj->ok = true;
      obj->elf = std::move(*elf);
    } else {
      ++stats.object_errors;  // cached as unreadable, so it is not re-read on every Capture
    }
    obj->ids.push_back(id);
    objects.push_front(obj);
    by_id[id] = objects.begin();
    if (obj->ok && !obj->elf.build_id.empty()) by_build_id[obj->elf.build_id] = objects.begin();
    EvictObjects();
    return obj;
  }

  std::shared_ptr<const Object> Vdso(int dirfd, const MapsLine& m) {
    if (!vdso_looked) {
      vdso_looked = true;
      own_vdso_image = FindOwnVdso();
      if (own_vdso_image.data != nullptr) {
        absl::StatusOr<ElfSymbols> elf =
            ReadElfMemory(own_vdso_image.data, own_vdso_image.size, "[vdso]");
        if (elf.ok()) {
          auto obj = std::make_shared<Object>();
          obj->ok = true;
          obj->elf = std::move(*elf);
          own_vdso = obj;
        }
      }
    }
    if (own_vdso == nullptr || m.end - m.start != own_vdso_image.size) return nullptr;
    // Only if the process's image is ours (a 32-bit process has another one).
    const int fd = openat(dirfd, "mem", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return nullptr;
    ScopedFd guard(fd);
    std::string buf(own_vdso_image.size, '\0');
    const ssize_t n = pread(fd, buf.data(), buf.size(), static_cast<off_t>(m.start));
    if (n != static_cast<ssize_t>(buf.size()) ||
        memcmp(buf.data(), own_vdso_image.data, buf.size()) != 0) {
      return nullptr;
    }
    return own_vdso;
  }

  void Evict(const Key& k) {
    auto it = procs.find(k);
    if (it == procs.end()) return;
    proc_lru.erase(it->second.lru);
    procs.erase(it);
  }

  absl::Status Capture(const ps_key& key) {
    ++stats.captures;
    const std::string dir = absl::StrCat(options.proc_root, "/", key.tgid);
    auto gone = [&](absl::Status s) {
      ++stats.capture_misses;
      return absl::IsNotFound(s) ? s : absl::NotFoundError(s.message());
    };
    // Every file is read through the directory's descriptor, which stays bound to the process
    // it was opened for: once the start time matches, a reused pid cannot mix in another's maps.
    const int dirfd = key.tgid == 0 ? -1 : open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
      return gone(ErrnoStatus(key.tgid == 0 ? ENOENT : errno, absl::StrCat("open ", dir)));
    ScopedFd guard(dirfd);
    if (key.start_ns != 0) {
      absl::StatusOr<std::string> stat = ReadFileAt(dirfd, "stat", dir + "/stat");
      if (!stat.ok()) return gone(stat.status());
      std::optional<uint64_t> ticks = StartTicks(*stat);
      if (!ticks || *ticks != key.start_ns / NsPerTick()) {
        return gone(absl::NotFoundError(absl::StrCat("pid ", key.tgid, " is another process now")));
      }
    }
    absl::StatusOr<std::string> text = ReadFileAt(dirfd, "maps", dir + "/maps");
    if (!text.ok()) return gone(text.status());
    std::vector<MapsLine> lines = ParseExecutableMaps(*text);
    if (lines.empty()) {
      // A zombie's maps are empty: what an earlier Capture read stays.
      return gone(absl::NotFoundError(absl::StrCat(dir, "/maps: no executable mappings")));
    }

    Process p;
    p.maps.reserve(lines.size());
    for (const MapsLine& l : lines) {
      Mapping m;
      m.start = l.start;
      m.end = l.end;
      m.offset = l.offset;
      m.module = l.path;
      if (l.path == "[vdso]") {
        m.object = Vdso(dirfd, l);
      } else if (!l.path.empty() && l.path[0] == '/') {
        // map_files reaches the very file mapped (deleted, or in another mount namespace; needs
        // CAP_SYS_ADMIN), root/<path> the same path in the process's root otherwise.
        struct stat st;
        std::string via = "map_files/" + l.range;
        if (fstatat(dirfd, via.c_str(), &st, 0) != 0) {
          via = "root" + l.path;
          if (l.deleted || fstatat(dirfd, via.c_str(), &st, 0) != 0) {
            ++stats.object_errors;
            p.maps.push_back(std::move(m));
            continue;
          }
        }
        m.object = OpenObject(dirfd, via, st, l.path);
      }
      p.maps.push_back(std::move(m));
    }
    p.captured = absl::Now();
    const Key k{key.tgid, key.start_ns};
    auto old = procs.find(k);
    p.refresh_wait = old == procs.end() ? options.refresh_min : old->second.refresh_wait;
    Evict(k);
    proc_lru.push_front(k);
    p.lru = proc_lru.begin();
    procs.emplace(k, std::move(p));
    while (procs.size() > options.max_processes) Evict(proc_lru.back());
    return absl::OkStatus();
  }

  bool Refresh(const ps_key& key) {
    auto it = procs.find(Key{key.tgid, key.start_ns});
    if (it != procs.end()) {
      Process& p = it->second;
      if (absl::Now() - p.captured < p.refresh_wait) return false;
      // Doubled first: a process gone (its old mappings kept) is not retried at once either.
      p.refresh_wait = std::min(p.refresh_wait * 2, std::max(options.refresh_max, options.refresh_min));
    }
    return Capture(key).ok();
  }

  const Mapping* FindMapping(const Process& p, uint64_t ip) const {
    auto it = std::upper_bound(p.maps.begin(), p.maps.end(), ip,
                               [](uint64_t a, const Mapping& m) { return a < m.start; });
    if (it == p.maps.begin()) return nullptr;
    --it;
    return ip < it->end ? &*it : nullptr;
  }

  std::vector<Frame> User(const ps_key& key, absl::Span<const uint64_t> ips) {
    const Key k{key.tgid, key.start_ns};
    auto it = procs.find(k);
    if (it == procs.end()) {
      Capture(key).IgnoreError();  // gone: every frame is [unknown]
      it = procs.find(k);
    } else {
      proc_lru.splice(proc_lru.begin(), proc_lru, it->second.lru);
    }
    bool recaptured = false;
    std::vector<Frame> out;
    out.reserve(ips.size());
    for (size_t i = 0; i < ips.size(); ++i) {
      const uint64_t ip = ips[i];
      const uint64_t adj = i > 0 && ip > 0 ? 1 : 0;
      Frame f;
      f.address = ip;
      const Mapping* m = it == procs.end() ? nullptr : FindMapping(it->second, ip - adj);
      if (m == nullptr && it != procs.end() && !recaptured &&
          absl::Now() - it->second.captured >= options.recapture_interval) {
        recaptured = true;  // a dlopen since the last Capture?
        if (Capture(key).ok()) {
          it = procs.find(k);
          m = FindMapping(it->second, ip - adj);
        }
      }
      if (m == nullptr) {
        f.module = "[unknown]";
        f.offset = ip;
        out.push_back(std::move(f));
        continue;
      }
      f.module = m->module;
      const uint64_t file_off = ip - m->start + m->offset;
      f.offset = file_off;
      if (m->object != nullptr && m->object->ok) {
        const ElfSymbols& elf = m->object->elf;
        std::optional<uint64_t> v = elf.VaddrOf(file_off);
        if (v) {
          f.offset = *v;
          std::optional<SymbolTable::Hit> hit = elf.table.Lookup(*v - adj);
          if (hit) f.function = std::string(hit->name);
        }
      } else if (m->module.empty() || m->module[0] == '[') {
        f.offset = ip - m->start;  // anonymous, [vdso] unread, [vsyscall]
      }
      out.push_back(std::move(f));
    }
    return out;
  }

  absl::Status LoadKallsyms() {
    kallsyms_loaded = true;
    kallsyms_read_at = absl::Now();
    ++stats.kallsyms_reads;
    // Streamed a line at a time, into tables that grow once: the file is 5 MB of text.
    FILE* f = fopen(options.kallsyms.c_str(), "re");
    if (f == nullptr) {
      return ErrnoStatus(errno, absl::StrCat("open ", options.kallsyms));
    }
    KallsymsTable fresh;
    char* line = nullptr;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) fresh.AddLine(absl::string_view(line, n));
    free(line);
    fclose(f);
    absl::StatusOr<std::string> modules =
        ReadFileAt(AT_FDCWD, options.proc_root + "/modules", options.proc_root + "/modules");
    fresh.Finish(modules.ok() ? *modules : "");
    absl::Status status = absl::OkStatus();
    if (fresh.restricted() || fresh.size() == 0) {
      status = absl::PermissionDeniedError(
          absl::StrCat(options.kallsyms, " shows no addresses (kptr_restrict, or no CAP_SYSLOG)"));
    }
    // A re-read after privileges were dropped sees zeros: keep what an earlier read had.
    if (status.ok() || kallsyms.size() == 0) kallsyms = std::move(fresh);
    malloc_trim(0);  // the tables' growth left freed chunks behind: give them back
    return status;
  }

  std::vector<Frame> Kernel(absl::Span<const uint64_t> ips) {
    if (!kallsyms_loaded) LoadKallsyms().IgnoreError();
    std::vector<Frame> out;
    out.reserve(ips.size());
    for (size_t i = 0; i < ips.size(); ++i) {
      const uint64_t ip = ips[i];
      const uint64_t look = i > 0 && ip > 0 ? ip - 1 : ip;
      Frame f;
      f.address = ip;
      f.kernel = true;
      f.module = "[kernel]";
      f.offset = ip;
      std::optional<KallsymsTable::Hit> hit = kallsyms.Lookup(look);
      if (!hit && kallsyms.size() > 0 &&
          absl::Now() - kallsyms_read_at >= options.kallsyms_reload_interval) {
        LoadKallsyms().IgnoreError();  // a module (or BPF program) loaded since?
        hit = kallsyms.Lookup(look);
      }
      if (hit) {
        f.function = std::string(hit->name);
        if (!hit->module.empty()) f.module = absl::StrCat("[", hit->module, "]");
        if (hit->module_base != 0 && ip >= hit->module_base) f.offset = ip - hit->module_base;
      }
      out.push_back(std::move(f));
    }
    return out;
  }

  SymbolizerStats Stats() const {
    SymbolizerStats s = stats;
    s.processes = procs.size();
    s.objects = objects.size();
    s.symbols = 0;
    s.bytes = kallsyms.bytes();
    for (const std::shared_ptr<Object>& o : objects) {
      s.symbols += o->elf.table.size();
      s.bytes += o->elf.table.bytes();
    }
    s.kernel_symbols = kallsyms.size();
    s.kernel_restricted = kallsyms_loaded && (kallsyms.restricted() || kallsyms.size() == 0);
    return s;
  }
};

Symbolizer::Symbolizer(SymbolizerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
Symbolizer::~Symbolizer() = default;

absl::Status Symbolizer::Capture(const ps_key& key) { return impl_->Capture(key); }

bool Symbolizer::Refresh(const ps_key& key) { return impl_->Refresh(key); }

absl::Status Symbolizer::LoadKernelSymbols() { return impl_->LoadKallsyms(); }

std::vector<Frame> Symbolizer::User(const ps_key& key, absl::Span<const uint64_t> ips) {
  return impl_->User(key, ips);
}

std::vector<Frame> Symbolizer::Kernel(absl::Span<const uint64_t> ips) { return impl_->Kernel(ips); }

void Symbolizer::Forget(const ps_key& key) { impl_->Evict({key.tgid, key.start_ns}); }

SymbolizerStats Symbolizer::Stats() const { return impl_->Stats(); }

}  // namespace procscope
