// SPDX-License-Identifier: Apache-2.0
// `procscope profile`: the request it makes and what it prints of the profile it gets (the top
// functions like `pprof -top`, folded stacks, or JSON). Pure: unit-tested on decoded profiles.
#ifndef PROCSCOPE_TOOLS_CLI_PROFILE_H_
#define PROCSCOPE_TOOLS_CLI_PROFILE_H_

#include <string>

#include "cli_options.h"
#include "cli_render.h"
#include "procscope.pb.h"
#include "profile_store.h"

namespace procscope::cli {

// "/debug/pprof/profile?seconds=10&pid=P" (or offcpu, group=G, percent-encoded).
std::string ProfilePath(const Options& o, absl::Duration window);

// The top --limit functions: a header naming what was profiled, then one row per function.
std::string RenderProfileTop(const Options& o, const ProfileData& p, const RenderOptions& r);
v1::ProfileReport ProfileReportOf(const Options& o, const ProfileData& p);

}  // namespace procscope::cli

#endif  // PROCSCOPE_TOOLS_CLI_PROFILE_H_
