// SPDX-License-Identifier: Apache-2.0
// Enum <-> name tables checked at compile time: one constexpr array of {enumerator, name} per
// enum, in enumerator order, that both parsing and naming use:
//   inline constexpr EnumTable<GroupBy> kGroupByNames = {{{GroupBy::kComm, "comm"}, ...}};
//   static_assert(IsEnumTable(kGroupByNames), "...");
// The table has kEnumCount<E> entries (E::kLast + 1): a value added without a name (or a name
// out of order, or used twice) fails the build instead of reading past the table at run time.
// Also the bodies of the Abseil custom flag functions (AbslParseFlag / AbslUnparseFlag) of enum
// flags such as --attach and --group_by.
#ifndef PROCSCOPE_COMMON_ENUM_NAMES_H_
#define PROCSCOPE_COMMON_ENUM_NAMES_H_

#include <array>
#include <cstddef>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace procscope {

template <typename E>
struct EnumName {
  E value;
  const char* name;
};

namespace enum_names_internal {
constexpr bool SameName(const char* a, const char* b) {
  while (*a != '\0' && *a == *b) {
    ++a;
    ++b;
  }
  return *a == *b;
}
}  // namespace enum_names_internal

// The number of enumerators of E: E::kLast + 1, where kLast names the last enumerator (an
// alias, so that switches need no case for it). Specialise it for an enum without kLast.
template <typename E>
inline constexpr size_t kEnumCount = static_cast<size_t>(E::kLast) + 1;

// The name table of E: one entry per enumerator. Entries left out are {E(0), nullptr}, which
// IsEnumTable refuses.
template <typename E>
using EnumTable = std::array<EnumName<E>, kEnumCount<E>>;

// True when `table` has kEnumCount<E> entries, entry i names enumerator i (so naming is an
// index), and every name is non-empty and different from the others.
template <typename E, size_t N>
constexpr bool IsEnumTable(const std::array<EnumName<E>, N>& table) {
  if (N != kEnumCount<E>) return false;
  for (size_t i = 0; i < N; ++i) {
    if (static_cast<size_t>(table[i].value) != i) return false;
    if (table[i].name == nullptr || table[i].name[0] == '\0') return false;
    for (size_t j = 0; j < i; ++j) {
      if (enum_names_internal::SameName(table[i].name, table[j].name)) return false;
    }
  }
  return true;
}

// The name of `value`; "?" for a value outside the enum (a cast from a bad integer).
template <typename E, size_t N>
constexpr const char* NameOf(const std::array<EnumName<E>, N>& table, E value) {
  const size_t i = static_cast<size_t>(value);
  return i < N ? table[i].name : "?";
}

// The enumerator named exactly `name` (case-sensitive), if any.
template <typename E, size_t N>
std::optional<E> ValueOf(const std::array<EnumName<E>, N>& table, absl::string_view name) {
  for (const EnumName<E>& e : table) {
    if (name == e.name) return e.value;
  }
  return std::nullopt;
}

// "auto, tp_btf, raw_tp": the names for error messages.
template <typename E, size_t N>
std::string NameList(const std::array<EnumName<E>, N>& table) {
  std::string out;
  for (const EnumName<E>& e : table) absl::StrAppend(&out, out.empty() ? "" : ", ", e.name);
  return out;
}

// "must be one of auto, tp_btf, raw_tp": what a bad value is told.
template <typename E, size_t N>
std::string MustBeOneOf(const std::array<EnumName<E>, N>& table) {
  return absl::StrCat("must be one of ", NameList(table));
}

// The body of an enum flag's AbslParseFlag. On failure `error` says which values are valid;
// the flag parser (flags_util.h) puts the flag's name and the value given in front.
template <typename E, size_t N>
bool ParseEnumFlag(const std::array<EnumName<E>, N>& table, absl::string_view text, E* out,
                   std::string* error) {
  if (std::optional<E> v = ValueOf(table, text)) {
    *out = *v;
    return true;
  }
  *error = MustBeOneOf(table);
  return false;
}

}  // namespace procscope

#endif  // PROCSCOPE_COMMON_ENUM_NAMES_H_
