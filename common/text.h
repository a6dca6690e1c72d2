// SPDX-License-Identifier: Apache-2.0
// Text helpers every output path shares: process names are any bytes, and must never corrupt a
// terminal, a log line, the exposition, JSON or a web page.
#ifndef PROCSCOPE_COMMON_TEXT_H_
#define PROCSCOPE_COMMON_TEXT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace procscope {

// A process name made safe for a terminal or a log line: printable ASCII is kept, and every
// other byte (control characters, backslash, double quote, invalid UTF-8) becomes \xNN.
std::string EscapeForDisplay(absl::string_view raw);

// `raw` as valid UTF-8: every byte that is not part of a well-formed UTF-8 sequence (and every
// NUL) becomes U+FFFD. For JSON and label values, which must be UTF-8.
std::string ToValidUtf8(absl::string_view raw);

// "512B", "1.5KiB", "12.0MiB" (binary units, one decimal above bytes; negative or NaN: "0B").
// `separator` goes between number and unit: " " gives "12.0 MiB".
std::string HumanBytes(double bytes, absl::string_view separator = "");

}  // namespace procscope

#endif  // PROCSCOPE_COMMON_TEXT_H_
