// Runs the keyval binary (KEYVAL_BINARY, set by CTest) as a child process and captures
// its exit code and output, for tests of the command-line tools.
#pragma once

#include <string>

namespace keyval::testing {

struct Run {
  int exit_code = -1;
  std::string output;  // stdout and stderr
  std::string last_line() const;
};

// `arguments` go through the shell: quote what needs it. The command is killed (with its
// children) if it runs longer than keyval_run_seconds_max; no test's command comes near it.
constexpr unsigned keyval_run_seconds_max = 300;
Run run_keyval(const std::string& arguments);
// Any shell command (redis-cli, python3 ...), its stdout and stderr captured.
Run run_shell(const std::string& command);

// The value of "key": in a one-line JSON object (numbers and strings as text); "" when absent.
std::string json_field(const std::string& json, const std::string& key);

}  // namespace keyval::testing
