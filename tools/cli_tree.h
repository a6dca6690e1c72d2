// SPDX-License-Identifier: Apache-2.0
// `procscope tree`: the live processes as a forest built from their ppid links, robust to what a
// snapshot of a moving system can hold: a parent that has exited (the child goes to the root),
// a reused pid (a "parent" that started after its child is not its parent) and ppid cycles.
#ifndef PROCSCOPE_TOOLS_CLI_TREE_H_
#define PROCSCOPE_TOOLS_CLI_TREE_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "cli_render.h"
#include "procscope.pb.h"

namespace procscope::cli {

struct TreeNode {
  v1::Process process;
  int parent = -1;                    // index into ProcessTree::nodes, -1 for a root
  std::vector<int> children;          // by pid
  std::vector<std::string> offenses;  // resources it is an offender for ("cpu", ...)
};

struct ProcessTree {
  std::vector<TreeNode> nodes;
  std::vector<int> roots;  // by pid
};

ProcessTree BuildTree(const v1::ProcessList& processes, const v1::OffenderList& offenders);

// One line per process: CPU, RSS, faults/s, I/O/s, then the tree drawing, pid and comm, and
// "◀ cpu offender" marks. Unless `all`, more than 5 leaf siblings with the same comm (or
// kernel threads) fold into one "… N more" line with their totals, after the 3 busiest
// (offenders are never folded). Indentation stops growing at
// 32 levels; deeper nodes say their depth.
std::string RenderTree(const ProcessTree& t, absl::Time taken, absl::string_view source, bool all,
                       const RenderOptions& o);

// {"generated_unix_ns": "...", "source": "...", "nodes": [Node, ...]}, one line, where the nodes
// come in the text's depth-first order and a Node is {"depth": 0, "parent_pid": 0 (a root) or
// the pid it is drawn under, "offender_for": ["cpu", ...], "process": Process}. Flat rather than
// nested, so that no depth of tree trips a JSON parser's nesting limit.
std::string TreeJson(const ProcessTree& t, absl::Time taken, absl::string_view source);

}  // namespace procscope::cli

#endif  // PROCSCOPE_TOOLS_CLI_TREE_H_
