// SPDX-License-Identifier: Apache-2.0
#include "flags_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "fd.h"
#include "file.h"

namespace procscope {
namespace {

constexpr size_t kExcerptChars = 80;
constexpr off_t kMaxConfigBytes = 1 << 20;

// Flags that Abseil's parser handles itself.
bool IsBuiltin(absl::string_view name) {
  for (absl::string_view b :
       {"help", "helpfull", "helpshort", "helppackage", "helpon", "helpmatch", "version",
        "only_check_args", "flagfile", "fromenv", "tryfromenv", "undefok"}) {
    if (name == b) return true;
  }
  return false;
}

// Abseil's flags that read other files or the environment: their errors quote what they read
// (--flagfile=/etc/shadow printed its lines), so procscope takes settings from --config only.
bool ReadsElsewhere(absl::string_view name) {
  return name == "flagfile" || name == "fromenv" || name == "tryfromenv";
}

constexpr char kCustomType[] = "a valid value";

// What a flag's value must look like, for errors (Abseil's own message quotes the whole value).
std::string Expected(const absl::CommandLineFlag& f) {
  if (f.IsOfType<bool>()) return "true or false";
  if (f.IsOfType<int>() || f.IsOfType<int64_t>() || f.IsOfType<int32_t>() ||
      f.IsOfType<uint32_t>() || f.IsOfType<uint64_t>()) {
    return "an integer";
  }
  if (f.IsOfType<double>() || f.IsOfType<float>()) return "a number";
  if (f.IsOfType<absl::Duration>()) return "a duration such as 500ms, 2s or 1m";
  return kCustomType;
}

// Parses `value` into `f`; the error names the flag and quotes an Excerpt of the value. A flag
// of a custom type (an enum: --attach, --group_by) says itself what it takes ("must be one of
// ..."); Abseil puts it after "Illegal value '<value>' specified for flag '<name>'; ", which
// quotes the whole value, so only that reason is kept.
bool SetFlag(absl::CommandLineFlag& f, absl::string_view value, std::string* error) {
  std::string abseil_error;
  if (f.ParseFrom(value, &abseil_error)) return true;
  std::string expected = Expected(f);
  absl::string_view reason = abseil_error;
  if (expected == kCustomType &&
      absl::ConsumePrefix(&reason, absl::StrCat("Illegal value '", value, "' specified for flag '",
                                                f.Name(), "'; ")) &&
      !reason.empty()) {
    *error = absl::StrCat("--", f.Name(), "=", Excerpt(value), ": ", reason);
  } else {
    *error = absl::StrCat("--", f.Name(), "=", Excerpt(value), ": not ", expected);
  }
  return false;
}

// --help: the program's flags (every flag not defined inside Abseil); --helpfull: all.
void PrintHelp(const char* program, bool full) {
  std::vector<absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (full || !absl::StrContains(flag->Filename(), "absl/")) flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](const absl::CommandLineFlag* a, const absl::CommandLineFlag* b) {
              return a->Name() < b->Name();
            });
  // One "program:" in front, whether or not the usage message starts with it.
  absl::string_view usage = absl::ProgramUsageMessage();
  absl::ConsumePrefix(&usage, absl::StrCat(program, ": "));
  printf("%s: %s\n\nFlags:\n", program, std::string(usage).c_str());
  for (const absl::CommandLineFlag* f : flags) {
    printf("  --%s (default: %s)\n      %s\n", std::string(f->Name()).c_str(),
           f->DefaultValue().empty() ? "\"\"" : f->DefaultValue().c_str(), f->Help().c_str());
  }
  if (!full) printf("\n--helpfull also lists the flags of the libraries.\n");
}

// The file's bytes, if it is a regular file of at most kMaxConfigBytes. O_NONBLOCK: a FIFO
// must not hang the daemon (it is refused after fstat).
absl::Status ReadRegularFile(const std::string& path, std::string& out) {
  ScopedFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd.valid()) {
    return absl::NotFoundError(
        absl::StrCat("--config=", Excerpt(path), ": cannot read it: ", strerror(errno)));
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) {
    return absl::InternalError(absl::StrCat("--config=", Excerpt(path), ": ", strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--config=", Excerpt(path), ": ",
                     S_ISDIR(st.st_mode) ? "a directory" : "not a regular file",
                     "; give the config file itself"));
  }
  if (st.st_size > kMaxConfigBytes) {
    return absl::InvalidArgumentError(absl::StrCat("--config=", Excerpt(path), ": ", st.st_size,
                                                   " bytes; a config file may have at most ",
                                                   kMaxConfigBytes, " bytes"));
  }
  absl::StatusOr<std::string> text =
      ReadToEof(fd.get(), path, static_cast<size_t>(kMaxConfigBytes));
  if (absl::IsOutOfRange(text.status())) {
    return absl::InvalidArgumentError(absl::StrCat("--config=", Excerpt(path), ": grew past ",
                                                   kMaxConfigBytes, " bytes while read"));
  }
  if (!text.ok()) {
    return absl::InternalError(absl::StrCat(
        "--config=", Excerpt(path), ": reading it: ",
        absl::StripPrefix(text.status().message(), absl::StrCat("read ", path, ": "))));
  }
  out = *std::move(text);
  return absl::OkStatus();
}

}  // namespace

std::string Excerpt(absl::string_view raw) {
  std::string out;
  size_t i = 0;
  for (; i < raw.size() && out.size() < kExcerptChars; ++i) {
    const unsigned char c = static_cast<unsigned char>(raw[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    }
  }
  if (i < raw.size()) absl::StrAppend(&out, "...(", raw.size(), " bytes)");
  return out;
}

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
  if (ReadsElsewhere(name)) {
    return absl::StrCat("--", name, " is not supported: put settings in a --config file");
  }
  if (IsBuiltin(name)) return "";
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  if (flag == nullptr && !has_value && absl::StartsWith(name, "no")) {
    flag = absl::FindCommandLineFlag(name.substr(2));
    if (flag != nullptr && flag->IsOfType<bool>()) return "";
    flag = nullptr;
  }
  if (flag == nullptr) return absl::StrCat("unknown flag --", Excerpt(name), " (see --help)");
  if (!has_value) {
    return flag->IsOfType<bool>() ? ""
                                  : absl::StrCat("--", name, " needs a value: --", name, "=...");
  }
  std::string error;
  if (!SetFlag(*flag, value, &error)) return error;
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
    const absl::string_view a = argv[i];
    if (a == "--") break;
    // Abseil's --help filters by the program's name, which matches none of our files, and
    // exits 1: print the flags here and exit 0.
    if (a == "-h" || a == "-help" || a == "--help" || a == "-helpshort" || a == "--helpshort") {
      PrintHelp(program, false);
      exit(0);
    }
    if (a == "-helpfull" || a == "--helpfull") {
      PrintHelp(program, true);
      exit(0);
    }
  }
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

absl::Status ApplyConfigFile(const std::string& path, const std::set<std::string>& command_line,
                             FlagOrigins& origins) {
  std::string content;
  if (absl::Status s = ReadRegularFile(path, content); !s.ok()) return s;
  // Parse every line before touching a flag: a bad file changes nothing it need not.
  struct Setting {
    absl::CommandLineFlag* flag;
    std::string value;
    std::string where;
  };
  std::vector<Setting> settings;
  const std::string shown = Excerpt(path);
  int n = 0;
  for (absl::string_view rest = content; !rest.empty();) {
    const size_t nl = rest.find('\n');
    absl::string_view l = rest.substr(0, nl);
    rest = nl == absl::string_view::npos ? absl::string_view() : rest.substr(nl + 1);
    ++n;
    const std::string where = absl::StrCat(shown, ":", n);
    l = absl::StripAsciiWhitespace(l);
    if (l.empty() || l[0] == '#') continue;
    absl::ConsumePrefix(&l, "--");
    const size_t eq = l.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": expected name=value, got '", Excerpt(l), "'"));
    }
    const absl::string_view name = absl::StripAsciiWhitespace(l.substr(0, eq));
    const absl::string_view value = absl::StripAsciiWhitespace(l.substr(eq + 1));
    if (IsBuiltin(name) || name == "config") {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": '", name, "' is not allowed in a config file"));
    }
    absl::CommandLineFlag* f = absl::FindCommandLineFlag(name);
    if (f == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": unknown setting '", Excerpt(name), "' (see procscoped --help)"));
    }
    settings.push_back({f, std::string(value), where});
  }
  // Check each value's syntax without keeping it: reset to its current value after.
  for (const Setting& s : settings) {
    const std::string current = s.flag->CurrentValue();
    std::string err, ignored;
    if (!SetFlag(*s.flag, s.value, &err)) {
      return absl::InvalidArgumentError(absl::StrCat(s.where, ": ", err));
    }
    s.flag->ParseFrom(current, &ignored);
  }
  for (const auto& [name, where] : origins) {
    absl::CommandLineFlag* f = absl::FindCommandLineFlag(name);
    std::string ignored;
    if (f != nullptr) f->ParseFrom(f->DefaultValue(), &ignored);
  }
  origins.clear();
  for (const Setting& s : settings) {
    const std::string name(s.flag->Name());
    if (command_line.count(name)) continue;  // the command line wins
    std::string ignored;
    s.flag->ParseFrom(s.value, &ignored);
    origins[name] = s.where;
  }
  return absl::OkStatus();
}

absl::Status WithOrigin(const absl::Status& s, const FlagOrigins& origins) {
  absl::string_view m = s.message();
  if (!absl::ConsumePrefix(&m, "--")) return s;
  const std::string name(m.substr(0, m.find_first_of("=: ")));
  std::string message(s.message());
  // Validators quote the whole value ("--include=<regex>: ..."): cut and escape it.
  if (const absl::CommandLineFlag* f = absl::FindCommandLineFlag(name); f != nullptr) {
    const std::string quoted = absl::StrCat("--", name, "=", f->CurrentValue());
    if (absl::StartsWith(message, quoted)) {
      message =
          absl::StrCat("--", name, "=", Excerpt(f->CurrentValue()), message.substr(quoted.size()));
    }
  }
  const auto it = origins.find(name);
  if (it != origins.end()) message = absl::StrCat(it->second, ": ", message);
  return absl::Status(s.code(), message);
}

}  // namespace procscope
