// SPDX-License-Identifier: Apache-2.0
#include "flags_util.h"

#include <cstdio>
#include <cstdlib>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace procscope {
namespace {

// Flags that Abseil's parser handles itself.
bool IsBuiltin(absl::string_view name) {
  for (absl::string_view b :
       {"help", "helpfull", "helpshort", "helppackage", "helpon", "helpmatch", "version",
        "only_check_args", "flagfile", "fromenv", "tryfromenv", "undefok"}) {
    if (name == b) return true;
  }
  return false;
}

}  // namespace

std::string CheckFlagArgument(const std::string& arg) {
  absl::string_view a = arg;
  if (!absl::ConsumePrefix(&a, "-")) return "";
  absl::ConsumePrefix(&a, "-");
  if (a.empty()) return "";  // "--": end of flags
  absl::string_view name = a, value;
  const bool has_value = absl::StrContains(a, '=');
  if (has_value) {
    name = a.substr(0, a.find('='));
    value = a.substr(a.find('=') + 1);
  }
  if (IsBuiltin(name)) return "";
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  if (flag == nullptr && !has_value && absl::StartsWith(name, "no")) {
    flag = absl::FindCommandLineFlag(name.substr(2));
    if (flag != nullptr && flag->IsOfType<bool>()) return "";
    flag = nullptr;
  }
  if (flag == nullptr) return absl::StrCat("unknown flag --", name, " (see --help)");
  if (!has_value) {
    return flag->IsOfType<bool>() ? ""
                                  : absl::StrCat("--", name, " needs a value: --", name, "=...");
  }
  std::string error;
  if (!flag->ParseFrom(value, &error)) {
    return absl::StrCat("--", name, "=", value, ": ", error);
  }
  return "";
}

std::set<std::string> FlagNamesInArgv(int argc, char** argv) {
  std::set<std::string> names;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (a == "--") break;
    if (!absl::ConsumePrefix(&a, "-")) continue;
    absl::ConsumePrefix(&a, "-");
    std::string name(a.substr(0, a.find('=')));
    if (absl::FindCommandLineFlag(name) == nullptr && absl::StartsWith(name, "no")) {
      name = name.substr(2);
    }
    names.insert(name);
  }
  return names;
}

std::vector<char*> ParseFlagsOrExit(int argc, char** argv, const char* program) {
  for (int i = 1; i < argc; ++i) {
    if (absl::string_view(argv[i]) == "--") break;
    std::string arg = argv[i];
    // "--name value" form: Abseil takes the next argument as the value of a non-bool flag.
    if (i + 1 < argc && absl::StartsWith(arg, "-") && !absl::StrContains(arg, '=') &&
        absl::EndsWith(CheckFlagArgument(arg), "=...")) {
      arg = absl::StrCat(arg, "=", argv[++i]);
    }
    std::string err = CheckFlagArgument(arg);
    if (!err.empty()) {
      fprintf(stderr, "%s: %s\n", program, err.c_str());
      exit(2);
    }
  }
  return absl::ParseCommandLine(argc, argv);
}

}  // namespace procscope
