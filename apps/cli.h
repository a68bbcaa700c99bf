// Command-line helpers shared by the keyval subcommands: flag parsing with
// clear errors, and JSON formatting of the result line.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "storage/status.h"

namespace keyval::cli {

// Exit codes shared by every subcommand.
constexpr int exit_ok = 0;
constexpr int exit_usage = 2;  // bad flag or value, or an I/O error (keyval wal verify's contract)

// Parses "--name value", "--name=value" and boolean "--name" flags plus positional words.
class Flags {
 public:
  static Result<Flags> parse(const std::vector<std::string>& args, const std::vector<std::string>& value_flags,
                             const std::vector<std::string>& boolean_flags = {});

  bool has(const std::string& name) const { return values_.count(name) != 0; }
  std::string get(const std::string& name, const std::string& fallback = "") const;
  // A whole number; invalid_argument naming the flag when it is not one.
  Result<uint64_t> get_u64(const std::string& name, uint64_t fallback) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

// Parses a whole decimal number; error names `what`.
Result<uint64_t> parse_u64(const std::string& text, const std::string& what);

// Builds one JSON object line: {"a":1,"b":"x"}. Keys keep insertion order.
class JsonLine {
 public:
  JsonLine& add(const std::string& key, uint64_t value);
  JsonLine& add(const std::string& key, int64_t value);
  JsonLine& add(const std::string& key, int value) { return add(key, static_cast<int64_t>(value)); }
  JsonLine& add(const std::string& key, double value);
  JsonLine& add(const std::string& key, const std::string& value);
  JsonLine& add(const std::string& key, const char* value) { return add(key, std::string(value)); }
  JsonLine& add_bool(const std::string& key, bool value);
  JsonLine& add_raw(const std::string& key, const std::string& json);
  std::string str() const { return "{" + body_ + "}"; }

 private:
  void key(const std::string& name);
  std::string body_;
};

std::string json_escape(const std::string& text);

// Prints "keyval <command>: <message>" to stderr and returns exit_usage.
int usage_error(const std::string& command, const std::string& message);

// A new directory under $TMPDIR (or /tmp) named keyval-<purpose>-XXXXXX, for benchmarks and demos.
Result<std::string> make_temp_directory(const std::string& purpose);

// Seconds on a monotonic clock, for benchmarks and progress lines (never in deterministic code).
double monotonic_seconds();

// The benchmarks' shared figures. percentile: the nearest-rank value of `sorted` (ascending)
// at `fraction` (0.99: p99); 0 when empty. bench_key: key `number` as "k" + zero-padded
// digits, `key_bytes` long (at least the digits + 1).
double percentile(const std::vector<double>& sorted, double fraction);
std::string bench_key(uint64_t number, uint64_t key_bytes);

}  // namespace keyval::cli
