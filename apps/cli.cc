// Flag parsing (CLI11) and JSON output for the keyval subcommands.
#include "apps/cli.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include <CLI/CLI.hpp>

#include "storage/decimal.h"

namespace keyval::cli {

Command::Command(std::string path, std::string summary, std::string positional_usage)
    : path_(std::move(path)), summary_(std::move(summary)), positional_usage_(std::move(positional_usage)) {}

Command& Command::value(const std::string& name, const std::string& default_text, const std::string& help) {
  specs_.push_back(FlagSpec{name, default_text, help, false});
  return *this;
}

Command& Command::flag(const std::string& name, const std::string& help) {
  specs_.push_back(FlagSpec{name, "", help, true});
  return *this;
}

Command& Command::add(const std::vector<FlagSpec>& specs) {
  specs_.insert(specs_.end(), specs.begin(), specs.end());
  return *this;
}

Command& Command::footer(const std::string& text) {
  footer_ = text;
  return *this;
}

namespace {

// CLI11's help with our usage line ("keyval put KEY VALUE [flags]") in place of its generic one.
class Formatter : public CLI::Formatter {
 public:
  explicit Formatter(std::string usage) : usage_(std::move(usage)) {}
  std::string make_usage(const CLI::App*, std::string) const override { return "usage: " + usage_ + "\n"; }

 private:
  std::string usage_;
};

// The CLI11 application for `command`; `values` and `positional` receive what it parses.
// CLI11 keeps pointers to both: they must outlive the application's use.
struct Parser {
  CLI::App app;
  std::map<std::string, std::string> values;
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, CLI::Option*>> options;

  Parser(const std::string& path, const std::string& summary, const std::string& positional_usage,
         const std::string& footer, const std::vector<FlagSpec>& specs)
      : app(summary, "keyval " + path) {
    app.set_help_flag("-h,--help", "print this help and exit");
    auto formatter = std::make_shared<Formatter>("keyval " + path + (positional_usage.empty() ? "" : " " + positional_usage) +
                                                 (specs.empty() ? "" : " [flags]"));
    formatter->column_width(36);
    app.formatter(formatter);
    // Unknown flags are reported by parse() in the words the tests and scripts know.
    app.allow_extras(true);
    if (!positional_usage.empty()) {
      app.add_option("ARGS", positional, positional_usage)->type_name("")->expected(0, -1);
    }
    for (const FlagSpec& spec : specs) {
      CLI::Option* option = nullptr;
      if (spec.boolean) {
        option = app.add_flag("--" + spec.name, spec.help);
      } else {
        const std::string names = (spec.short_name.empty() ? "" : "-" + spec.short_name + ",") + "--" + spec.name;
        option = app.add_option(names, values[spec.name], spec.help)
                     ->type_name("VALUE")
                     ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
        if (!spec.default_text.empty()) option->default_str(spec.default_text);
      }
      options.emplace_back(spec.name, option);
    }
    if (!footer.empty()) app.footer(footer);
  }
};

}  // namespace

std::string Command::help() const {
  Parser parser(path_, summary_, positional_usage_, footer_, specs_);
  return parser.app.help();
}

std::optional<int> Command::parse(const std::vector<std::string>& args, Flags& flags) const {
  Parser parser(path_, summary_, positional_usage_, footer_, specs_);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes the words last first
  try {
    parser.app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    std::cout << help();
    return exit_ok;
  } catch (const CLI::ParseError& error) {
    return usage_error(path_, error.what());
  }
  for (const std::string& extra : parser.app.remaining()) {
    if (extra.size() > 1 && extra[0] == '-') return usage_error(path_, "unknown flag " + extra);
    return usage_error(path_, "unexpected argument '" + extra + "'");
  }
  flags = Flags();
  for (size_t i = 0; i < specs_.size(); ++i) {
    const FlagSpec& spec = specs_[i];
    if (parser.options[i].second->count() == 0) continue;
    flags.values_[spec.name] = spec.boolean ? "true" : parser.values[spec.name];
  }
  flags.positional_ = parser.positional;
  return std::nullopt;
}

int dispatch(const std::string& path, const std::vector<Subcommand>& subcommands, const std::vector<std::string>& args,
             const std::string& missing, const std::string& unknown_what) {
  if (args.empty()) return usage_error(path, missing);
  std::vector<std::string> rest(args.begin() + 1, args.end());
  for (const Subcommand& subcommand : subcommands) {
    if (subcommand.name == args[0]) return subcommand.main(rest);
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << "usage: keyval " << path << " <" << unknown_what << "> [args]\n\n" << unknown_what << "s:\n";
    for (const Subcommand& subcommand : subcommands) {
      std::string name = "  " + subcommand.name;
      name.resize(std::max<size_t>(name.size() + 2, 14), ' ');
      std::cout << name << subcommand.summary << "\n";
    }
    std::cout << "\nkeyval " << path << " <" << unknown_what << "> --help: its flags and their defaults\n";
    return exit_ok;
  }
  std::string known;
  for (size_t i = 0; i < subcommands.size(); ++i) {
    known += (i == 0 ? "" : i + 1 == subcommands.size() ? " or " : ", ") + subcommands[i].name;
  }
  return usage_error(path, "unknown " + unknown_what + " '" + args[0] + "' (expected " + known + ")");
}

const char* version() { return KEYVAL_VERSION; }

std::string hex_encode(const std::string& bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string text;
  text.reserve(bytes.size() * 2);
  for (unsigned char byte : bytes) {
    text += digits[byte >> 4];
    text += digits[byte & 0xf];
  }
  return text;
}

Result<std::string> hex_decode(const std::string& text, const std::string& what) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (text.size() % 2 != 0) return Status::invalid_argument(what + " is not hex: an odd number of digits");
  std::string bytes;
  bytes.reserve(text.size() / 2);
  for (size_t i = 0; i < text.size(); i += 2) {
    const int high = nibble(text[i]), low = nibble(text[i + 1]);
    if (high < 0 || low < 0) {
      return Status::invalid_argument(what + " is not hex: '" + text.substr(i, 2) + "' at digit " + std::to_string(i + 1));
    }
    bytes += static_cast<char>(high << 4 | low);
  }
  return bytes;
}

Result<std::string> read_all(const std::string& path) {
  std::ostringstream bytes;
  if (path == "-") {
    bytes << std::cin.rdbuf();
    if (std::cin.bad()) return Status::invalid_argument("cannot read standard input");
    return bytes.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::invalid_argument("cannot read " + path + ": " + std::strerror(errno));
  bytes << in.rdbuf();
  if (in.bad()) return Status::invalid_argument("cannot read " + path);
  return bytes.str();
}

std::string Flags::get(const std::string& name, const std::string& fallback) const {
  auto found = values_.find(name);
  return found == values_.end() ? fallback : found->second;
}

Result<uint64_t> Flags::get_u64(const std::string& name, uint64_t fallback) const {
  auto found = values_.find(name);
  if (found == values_.end()) return fallback;
  return parse_u64(found->second, "--" + name);
}

Result<uint64_t> parse_u64(const std::string& text, const std::string& what) {
  if (text.empty() || text.size() > 20 || !std::all_of(text.begin(), text.end(), ::isdigit)) {
    return Status::invalid_argument(what + " expects a whole number, got '" + text + "'");
  }
  std::optional<uint64_t> value = parse_decimal(text);
  if (!value) return Status::invalid_argument(what + " is out of range: '" + text + "'");
  return *value;
}

std::string json_text(const Json& value) { return value.dump(-1, ' ', false, Json::error_handler_t::replace); }

JsonLine& JsonLine::add(const std::string& name, uint64_t value) {
  json_[name] = value;
  return *this;
}

JsonLine& JsonLine::add(const std::string& name, int64_t value) {
  json_[name] = value;
  return *this;
}

JsonLine& JsonLine::add(const std::string& name, double value) {
  if (!std::isfinite(value)) {
    json_[name] = nullptr;
    return *this;
  }
  // Six significant digits, as "%.6g" prints them: a benchmark's figure, not its float noise.
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.6g", value);
  json_[name] = std::strtod(buffer, nullptr);
  return *this;
}

JsonLine& JsonLine::add(const std::string& name, const std::string& value) {
  json_[name] = value;
  return *this;
}

JsonLine& JsonLine::add(const std::string& name, Json value) {
  json_[name] = std::move(value);
  return *this;
}

JsonLine& JsonLine::add_bool(const std::string& name, bool value) {
  json_[name] = value;
  return *this;
}

int usage_error(const std::string& command, const std::string& message) {
  std::cerr << "keyval " << command << ": " << message << "\n";
  return exit_usage;
}

Result<std::string> make_temp_directory(const std::string& purpose) {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/keyval-" + purpose + "-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) return Status::from_errno("create temporary directory", pattern, errno);
  return std::string(buffer.data());
}

double monotonic_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

double percentile(const std::vector<double>& sorted, double fraction) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(fraction * sorted.size()));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

std::string bench_key(uint64_t number, uint64_t key_bytes) {
  std::string digits = std::to_string(number);
  return "k" + std::string(key_bytes > digits.size() + 1 ? key_bytes - 1 - digits.size() : 0, '0') + digits;
}

}  // namespace keyval::cli
