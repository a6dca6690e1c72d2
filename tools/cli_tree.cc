// SPDX-License-Identifier: Apache-2.0
#include "cli_tree.h"

#include <algorithm>
#include <map>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "records.h"

namespace procscope::cli {
namespace {

// Leaf siblings with one name beyond kFoldAbove fold into a line with their totals, keeping the
// kFoldKeep busiest: a pool of 1000 workers is one line, not a screenful, and nothing is lost.
constexpr size_t kFoldAbove = 5;
constexpr size_t kFoldKeep = 3;
constexpr size_t kMaxIndent = 32;

// Kernel threads have no executable and are children of kthreadd (pid 2).
bool KernelThread(const v1::Process& p) {
  return p.exe().empty() && (p.ppid() == 2 || p.pid() == 2);
}

// Kernel threads fold together whatever their names (kworker/0:1, ksoftirqd/1, ...).
constexpr char kKernelThreads[] = "\x01kernel threads";

// A line of the tree: a process, or a fold of siblings with the same comm.
struct Item {
  int node = -1;
  std::string fold_comm;
  size_t fold_count = 0;
  double cpu = 0, rss = 0, faults = 0, io = 0;
};

std::vector<Item> ItemsOf(const ProcessTree& t, const std::vector<int>& siblings, bool all) {
  std::vector<Item> items;
  std::map<std::string, std::vector<int>> foldable;  // comm -> leaf siblings, not offenders
  if (!all) {
    for (int i : siblings) {
      const TreeNode& n = t.nodes[i];
      if (n.children.empty() && n.offenses.empty()) {
        foldable[KernelThread(n.process) ? kKernelThreads : n.process.comm()].push_back(i);
      }
    }
  }
  std::map<int, bool> folded;  // node -> hidden
  std::vector<Item> folds;
  for (auto& [comm, nodes] : foldable) {
    if (nodes.size() <= kFoldAbove) continue;
    std::stable_sort(nodes.begin(), nodes.end(), [&t](int a, int b) {
      return t.nodes[a].process.cpu_cores() > t.nodes[b].process.cpu_cores();
    });
    Item f;
    f.fold_comm = comm;
    for (size_t k = kFoldKeep; k < nodes.size(); ++k) {
      const v1::Process& p = t.nodes[nodes[k]].process;
      folded[nodes[k]] = true;
      f.fold_count++;
      f.cpu += p.cpu_cores();
      f.rss += static_cast<double>(p.resident_memory_bytes());
      f.faults += p.page_faults_per_second();
      f.io += p.block_io_bytes_per_second();
    }
    folds.push_back(std::move(f));
  }
  for (int i : siblings) {
    if (folded.count(i)) continue;
    Item it;
    it.node = i;
    items.push_back(std::move(it));
  }
  for (Item& f : folds) items.push_back(std::move(f));
  return items;
}

}  // namespace

ProcessTree BuildTree(const v1::ProcessList& processes, const v1::OffenderList& offenders) {
  ProcessTree t;
  const int n = processes.processes_size();
  t.nodes.resize(n);
  absl::flat_hash_map<uint32_t, int> by_pid;
  for (int i = 0; i < n; ++i) {
    t.nodes[i].process = processes.processes(i);
    by_pid.emplace(t.nodes[i].process.pid(), i);  // a duplicate pid keeps the first
  }
  for (const v1::Offender& off : offenders.offenders()) {
    auto it = by_pid.find(off.pid());
    if (it != by_pid.end()) t.nodes[it->second].offenses.push_back(off.resource());
  }
  for (int i = 0; i < n; ++i) {
    const v1::Process& p = t.nodes[i].process;
    auto it = by_pid.find(p.ppid());
    if (p.ppid() == p.pid() || it == by_pid.end() || it->second == i) continue;
    const v1::Process& parent = t.nodes[it->second].process;
    // A parent cannot start after its child: that pid was reused, the real parent is gone.
    if (parent.start_time_unix_ns() != 0 && p.start_time_unix_ns() != 0 &&
        parent.start_time_unix_ns() > p.start_time_unix_ns()) {
      continue;
    }
    t.nodes[i].parent = it->second;
  }
  // Cycles are still possible with equal or unknown start times: cut each at its lowest pid.
  std::vector<char> state(n, 0);  // 0 unseen, 1 on the current path, 2 done
  std::vector<int> path;
  for (int i = 0; i < n; ++i) {
    path.clear();
    int cur = i;
    while (cur != -1 && state[cur] == 0) {
      state[cur] = 1;
      path.push_back(cur);
      cur = t.nodes[cur].parent;
    }
    if (cur != -1 && state[cur] == 1) {
      auto first = std::find(path.begin(), path.end(), cur);
      int cut = *first;
      for (auto k = first; k != path.end(); ++k) {
        if (t.nodes[*k].process.pid() < t.nodes[cut].process.pid()) cut = *k;
      }
      t.nodes[cut].parent = -1;
    }
    for (int k : path) state[k] = 2;
  }
  auto by_pid_order = [&t](int a, int b) {
    const v1::Process& pa = t.nodes[a].process;
    const v1::Process& pb = t.nodes[b].process;
    if (pa.pid() != pb.pid()) return pa.pid() < pb.pid();
    return a < b;
  };
  for (int i = 0; i < n; ++i) {
    const int parent = t.nodes[i].parent;
    if (parent == -1) {
      t.roots.push_back(i);
    } else {
      t.nodes[parent].children.push_back(i);
    }
  }
  std::sort(t.roots.begin(), t.roots.end(), by_pid_order);
  for (TreeNode& node : t.nodes) {
    std::sort(node.children.begin(), node.children.end(), by_pid_order);
  }
  return t;
}

std::string RenderTree(const ProcessTree& t, absl::Time taken, absl::string_view source, bool all,
                       const RenderOptions& o) {
  std::string out;
  auto line = [&](const std::string& text, const char* sgr) {
    out += sgr != nullptr ? Paint(text, sgr, o.color) : text;
    out.push_back('\n');
  };
  line(absl::StrFormat("procscope tree  %s  %s  %d processes",
                       absl::FormatTime("%H:%M:%S", taken, o.tz), EscapeForDisplay(source),
                       t.nodes.size()),
       kBold);
  line(absl::StrFormat("%6s %9s %9s %10s  %s", "CPU", "RSS", "FAULTS/s", "I/O/s",
                       "PID COMM (cpu in cores, rates over the offender window)"),
       kBold);

  struct Frame {
    std::vector<Item> items;
    size_t next = 0;
  };
  std::vector<Frame> stack;
  stack.push_back({ItemsOf(t, t.roots, all)});
  while (!stack.empty()) {
    if (stack.back().next == stack.back().items.size()) {
      stack.pop_back();
      continue;
    }
    const Item item = stack.back().items[stack.back().next++];
    const bool last = stack.back().next == stack.back().items.size();
    const size_t depth = stack.size() - 1;
    std::string prefix;
    for (size_t l = 1; l < depth && l < kMaxIndent; ++l) {
      prefix += stack[l].next < stack[l].items.size() ? "│  " : "   ";
    }
    if (depth >= kMaxIndent) absl::StrAppend(&prefix, "⋯(depth ", depth, ") ");
    if (depth > 0) prefix += last ? "└─ " : "├─ ";

    if (item.node < 0) {
      const std::string what = item.fold_comm == kKernelThreads ? std::string("kernel threads")
                                                                : EscapeForDisplay(item.fold_comm);
      line(absl::StrFormat("%6.2f %9s %9.0f %10s  %s… %d more %s (--all lists them)", item.cpu,
                           HumanBytes(item.rss), item.faults, HumanBytes(item.io) + "/s", prefix,
                           item.fold_count, what),
           kDim);
      continue;
    }
    const TreeNode& n = t.nodes[item.node];
    const v1::Process& p = n.process;
    std::string mark;
    if (!n.offenses.empty()) {
      std::vector<std::string> res;
      for (const std::string& r : n.offenses) res.push_back(EscapeForDisplay(r));
      mark = absl::StrCat("  ◀ ", absl::StrJoin(res, ", "), " offender");
    }
    line(absl::StrFormat("%6.2f %9s %9.0f %10s  %s%d %s%s", p.cpu_cores(),
                         HumanBytes(static_cast<double>(p.resident_memory_bytes())),
                         p.page_faults_per_second(),
                         HumanBytes(p.block_io_bytes_per_second()) + "/s", prefix, p.pid(),
                         EscapeForDisplay(p.comm()), mark),
         n.offenses.empty() ? nullptr : kRedBold);
    if (!n.children.empty()) stack.push_back({ItemsOf(t, n.children, all)});
  }
  return out;
}

std::string TreeJson(const ProcessTree& t, absl::Time taken, absl::string_view source) {
  v1::TreeReport r;
  r.set_generated_unix_ns(absl::ToUnixNanos(taken));
  r.set_source(std::string(source));
  // Depth first, like the text; iterative, so no depth of tree can overflow anything.
  std::vector<std::pair<int, int>> stack;  // node, depth
  for (auto it = t.roots.rbegin(); it != t.roots.rend(); ++it) stack.push_back({*it, 0});
  while (!stack.empty()) {
    const auto [i, depth] = stack.back();
    stack.pop_back();
    const TreeNode& n = t.nodes[i];
    v1::TreeReport::Node* out = r.add_nodes();
    out->set_depth(static_cast<uint32_t>(depth));
    out->set_parent_pid(n.parent < 0 ? 0 : t.nodes[n.parent].process.pid());
    for (const std::string& o : n.offenses) out->add_offender_for(o);
    *out->mutable_process() = n.process;
    for (auto c = n.children.rbegin(); c != n.children.rend(); ++c)
      stack.push_back({*c, depth + 1});
  }
  return MessageJson(r) + "\n";
}

}  // namespace procscope::cli
