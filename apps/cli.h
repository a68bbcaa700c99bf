// Command-line helpers shared by the keyval subcommands: each command declares its flags
// once (Command, parsed by CLI11, listed with their defaults by --help), reads them back
// through Flags, and reports a bad one as "keyval <command>: <message>" with exit code 2;
// their JSON output goes through nlohmann/json.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "storage/status.h"

namespace keyval::cli {

// Exit codes shared by every subcommand.
constexpr int exit_ok = 0;
constexpr int exit_usage = 2;  // bad flag or value, or an I/O error (keyval wal verify's contract)

// The flags a command was given (by name, without the dashes) and its positional words, as
// Command::parse found them. A boolean flag that was given reads "true".
class Flags {
 public:
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  std::string get(const std::string& name, const std::string& fallback = "") const;
  // A whole number; invalid_argument naming the flag when it is not one.
  Result<uint64_t> get_u64(const std::string& name, uint64_t fallback) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  friend class Command;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

// One flag of a command: "--name VALUE" (or "--name=VALUE"), or a boolean "--name".
// default_text is what --help shows as the default ("" shows none); the command's code keeps
// the value itself (Flags::get's fallback), next to the constant it comes from.
struct FlagSpec {
  std::string name;  // without the dashes
  std::string default_text;
  std::string help;
  bool boolean = false;
  std::string short_name = "";  // one letter, "-w", or none
};

// A command's flags and positional words, declared once; parsed with CLI11. `path` is the
// command as typed after "keyval" ("put", "member add"), used in help and error lines.
// "--help" or "-h" prints the command's usage, every flag with its default, on stdout.
// A value given twice keeps the last; "--" ends the flags (a positional word may then start
// with '-'); "-" alone is a positional word.
class Command {
 public:
  Command(std::string path, std::string summary, std::string positional_usage = "");

  Command& value(const std::string& name, const std::string& default_text, const std::string& help);
  Command& flag(const std::string& name, const std::string& help);
  Command& add(const std::vector<FlagSpec>& specs);
  // Text after the flags in --help (what the exit codes mean, an example).
  Command& footer(const std::string& text);

  // Parses `args` into `flags`. Returns the exit code to end with instead of running the
  // command: exit_ok after --help, exit_usage after printing "keyval <path>: <message>" for a
  // bad flag or value; nullopt when the command should run.
  std::optional<int> parse(const std::vector<std::string>& args, Flags& flags) const;
  // The --help text.
  std::string help() const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string summary_;
  std::string positional_usage_;
  std::string footer_;
  std::vector<FlagSpec> specs_;
};

// A command made of subcommands (keyval wal dump|verify, keyval member list|add|...).
struct Subcommand {
  std::string name;
  std::string summary;  // one line, for the group's --help
  std::function<int(const std::vector<std::string>&)> main;
};
// Runs the subcommand args[0] names with the words after it. No word: `missing` as a usage
// error; "--help", "-h" or "help": the subcommands and their summaries; an unknown word: a usage
// error naming it and listing the known ones.
int dispatch(const std::string& path, const std::vector<Subcommand>& subcommands, const std::vector<std::string>& args,
             const std::string& missing, const std::string& unknown_what = "subcommand");

// Bytes as lowercase hex, two digits a byte.
std::string hex_encode(const std::string& bytes);
// Hex digits (either case, an even number) as bytes; invalid_argument naming `what` otherwise.
Result<std::string> hex_decode(const std::string& text, const std::string& what);
// The whole of the file at `path` ("-": standard input), as bytes; invalid_argument naming it
// when it cannot be read.
Result<std::string> read_all(const std::string& path);

// The project's version (CMakeLists.txt project(VERSION)).
const char* version();

// Parses a whole decimal number; error names `what`.
Result<uint64_t> parse_u64(const std::string& text, const std::string& what);

// JSON as the commands print it: nlohmann/json objects that keep their keys in insertion order.
using Json = nlohmann::ordered_json;

// `value` on one line, no spaces ({"a":1,"b":"x"}); bytes that are not UTF-8 become U+FFFD
// (binary keys and values are printed with --hex).
std::string json_text(const Json& value);

// Builds one JSON object line field by field, chained: line.add("a", 1).add("b", "x").str().
// A double keeps 6 significant digits (benchmark figures); not finite, it is null.
class JsonLine {
 public:
  JsonLine& add(const std::string& key, uint64_t value);
  JsonLine& add(const std::string& key, int64_t value);
  JsonLine& add(const std::string& key, int value) { return add(key, static_cast<int64_t>(value)); }
  JsonLine& add(const std::string& key, double value);
  JsonLine& add(const std::string& key, const std::string& value);
  JsonLine& add(const std::string& key, const char* value) { return add(key, std::string(value)); }
  JsonLine& add(const std::string& key, Json value);
  JsonLine& add_bool(const std::string& key, bool value);
  std::string str() const { return json_text(json_); }
  const Json& json() const { return json_; }

 private:
  Json json_ = Json::object();
};

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
