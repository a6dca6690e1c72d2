// SPDX-License-Identifier: Apache-2.0
// Command-line parsing for procscope's binaries: Abseil flags, but a bad flag or value is one
// line on stderr and exit code 2 (Abseil alone exits 1), so scripts can tell usage errors apart.
#ifndef PROCSCOPE_DAEMON_FLAGS_UTIL_H_
#define PROCSCOPE_DAEMON_FLAGS_UTIL_H_

#include <set>
#include <string>
#include <vector>

namespace procscope {

// Checks every --flag in argv against the registered flags and their value syntax, then parses
// (handling --help). Returns the positional arguments, argv[0] first. Exits 2 on a usage error.
std::vector<char*> ParseFlagsOrExit(int argc, char** argv, const char* program);

// Names of the flags given in argv ("--top=5", "--top 5", "--noquiet" -> "top", "quiet"), so that
// a config file can leave them alone.
std::set<std::string> FlagNamesInArgv(int argc, char** argv);

// The usage error of one argument, or "" if it is fine (exposed for tests).
std::string CheckFlagArgument(const std::string& arg);

}  // namespace procscope

#endif  // PROCSCOPE_DAEMON_FLAGS_UTIL_H_
