// SPDX-License-Identifier: Apache-2.0
#include "text.h"

#include <cstdint>
#include <iterator>

#include "absl/strings/str_format.h"

namespace procscope {

std::string EscapeForDisplay(absl::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (unsigned char c : raw) {
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    }
  }
  return out;
}

std::string ToValidUtf8(absl::string_view raw) {
  static constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  out.reserve(raw.size());
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  const size_t n = raw.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    size_t len = 0;
    uint32_t min = 0;
    if (c == 0) {
      len = 0;
    } else if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, min = 0x10000;
    }
    bool ok = len != 0 && i + len <= n;
    uint32_t cp = ok ? (c & (0x7F >> len)) : 0;
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (p[i + k] & 0xC0) == 0x80;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not valid UTF-8.
    ok = ok && cp >= min && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
    if (ok) {
      out.append(raw.data() + i, len);
      i += len;
    } else {
      out += kReplacement;
      ++i;
    }
  }
  return out;
}

std::string HumanBytes(double bytes, absl::string_view separator) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (!(bytes >= 0)) bytes = 0;  // also NaN
  if (bytes < 1023.5) return absl::StrFormat("%.0f%sB", bytes, separator);
  double v = bytes / 1024;
  size_t i = 0;
  // 1023.95 would print as "1024.0": move to the next unit instead.
  while (v >= 1023.95 && i + 1 < std::size(kUnits)) {
    v /= 1024;
    ++i;
  }
  return absl::StrFormat("%.1f%s%s", v, separator, kUnits[i]);
}

}  // namespace procscope
