// SPDX-License-Identifier: Apache-2.0
#include "group_by.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace procscope {

absl::StatusOr<GroupBy> ParseGroupBy(absl::string_view s) {
  if (std::optional<GroupBy> by = ValueOf(kGroupByNames, s)) return *by;
  return absl::InvalidArgumentError(
      absl::StrCat("--group_by=", s, ": ", MustBeOneOf(kGroupByNames)));
}

bool AbslParseFlag(absl::string_view text, GroupBy* out, std::string* error) {
  return ParseEnumFlag(kGroupByNames, text, out, error);
}

std::string AbslUnparseFlag(GroupBy by) { return GroupByName(by); }

}  // namespace procscope
