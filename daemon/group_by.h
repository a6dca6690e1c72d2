// SPDX-License-Identifier: Apache-2.0
// What groups processes (--group_by), and its names.
#ifndef PROCSCOPE_DAEMON_GROUP_BY_H_
#define PROCSCOPE_DAEMON_GROUP_BY_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "enum_names.h"

namespace procscope {

// kLast names the last enumerator: a new one moves it, and then fails the build until
// kGroupByNames names it.
enum class GroupBy { kComm, kExe, kContainer, kUnit, kUser, kLast = kUser };

inline constexpr EnumTable<GroupBy> kGroupByNames = {{
    {GroupBy::kComm, "comm"},
    {GroupBy::kExe, "exe"},
    {GroupBy::kContainer, "container"},
    {GroupBy::kUnit, "unit"},
    {GroupBy::kUser, "user"},
}};
static_assert(IsEnumTable(kGroupByNames), "kGroupByNames must name every GroupBy");

// "comm", "exe", ... (what --group_by takes and /api/v1/status reports).
constexpr const char* GroupByName(GroupBy by) { return NameOf(kGroupByNames, by); }

// The error names the flag, the value and the valid values: "--group_by=pod: must be one of ...".
absl::StatusOr<GroupBy> ParseGroupBy(absl::string_view s);

// --group_by as an Abseil flag of type GroupBy.
bool AbslParseFlag(absl::string_view text, GroupBy* out, std::string* error);
std::string AbslUnparseFlag(GroupBy by);

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_GROUP_BY_H_
