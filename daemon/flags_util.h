// SPDX-License-Identifier: Apache-2.0
// Command-line parsing for procscope's binaries: Abseil flags, but a bad flag or value is one
// line on stderr and exit code 2 (Abseil alone exits 1), so scripts can tell usage errors apart.
#ifndef PROCSCOPE_DAEMON_FLAGS_UTIL_H_
#define PROCSCOPE_DAEMON_FLAGS_UTIL_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace procscope {

// Checks every --flag in argv against the registered flags and their value syntax, then parses.
// --help/--helpshort list the program's own flags (not Abseil's), --helpfull every flag; both
// exit 0. --flagfile/--fromenv/--tryfromenv are refused (they echo file or environment content
// in their errors): use a --config file. Returns the positional arguments, argv[0] first. Exits
// 2 on a usage error.
std::vector<char*> ParseFlagsOrExit(int argc, char** argv, const char* program);

// Names of the flags given in argv ("--top=5", "--top 5", "--noquiet" -> "top", "quiet"), so that
// a config file can leave them alone.
std::set<std::string> FlagNamesInArgv(int argc, char** argv);

// The usage error of one argument, or "" if it is fine (exposed for tests).
std::string CheckFlagArgument(const std::string& arg);

// Outside text (a flag's value, a config line) made safe to quote in a one-line error: bytes
// other than printable ASCII become \xNN, and past 80 characters it is cut ("...(N bytes)").
std::string Excerpt(absl::string_view raw);

// Where each flag set by the config file came from: name -> "path:line".
using FlagOrigins = std::map<std::string, std::string>;

// Reads a config file (one name=value per line, '#' comments, an optional leading "--") and sets
// its flags, except those in `command_line` (the command line wins). The flags the previous call
// set (`origins` on entry) go back to their defaults first, so a removed line stops applying;
// on return `origins` holds the flags this file set. Refuses anything but a regular file of at
// most 1 MiB before changing a flag; a bad line is an error naming path:line and the flag, never
// echoing more than an Excerpt of the line.
absl::Status ApplyConfigFile(const std::string& path, const std::set<std::string>& command_line,
                             FlagOrigins& origins);

// `s` with "path:line: " in front when its message is about a flag ("--name=...") that the
// config file set, and the flag's value in it cut to an Excerpt.
absl::Status WithOrigin(const absl::Status& s, const FlagOrigins& origins);

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_FLAGS_UTIL_H_
