// Running the keyval binary from tests (see run_keyval.h).
#include "tests/support/run_keyval.h"

#include <sys/wait.h>

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <cstdlib>

namespace keyval::testing {

std::string Run::last_line() const {
  std::string trimmed = output;
  while (!trimmed.empty() && trimmed.back() == '\n') trimmed.pop_back();
  auto newline = trimmed.rfind('\n');
  return newline == std::string::npos ? trimmed : trimmed.substr(newline + 1);
}

Run run_shell(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  BOOST_REQUIRE(pipe != nullptr);
  Run run;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) run.output.append(buffer, n);
  int status = ::pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

Run run_keyval(const std::string& arguments) {
  const char* binary = std::getenv("KEYVAL_BINARY");
  BOOST_REQUIRE_MESSAGE(binary != nullptr, "KEYVAL_BINARY must name the keyval binary (CTest sets it)");
  // Bounded: a command that does not end (a `node` that was expected to refuse but started)
  // is killed with its children after keyval_run_seconds_max, and the test fails on its exit
  // code (124, or 137 after the KILL) instead of hanging until CTest's timeout.
  return run_shell("timeout -k 10 " + std::to_string(keyval_run_seconds_max) + " " + std::string(binary) + " " +
                   arguments);
}

std::string json_field(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\":";
  auto at = json.find(needle);
  if (at == std::string::npos) return "";
  at += needle.size();
  if (at < json.size() && json[at] == '"') {
    auto end = json.find('"', at + 1);
    return json.substr(at + 1, end == std::string::npos ? std::string::npos : end - at - 1);
  }
  auto end = json.find_first_of(",}", at);
  return json.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

}  // namespace keyval::testing
