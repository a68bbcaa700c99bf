// Flag parsing and JSON output for the keyval subcommands.
#include "apps/cli.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>

#include "storage/decimal.h"

namespace keyval::cli {

Result<Flags> Flags::parse(const std::vector<std::string>& args, const std::vector<std::string>& value_flags,
                           const std::vector<std::string>& boolean_flags) {
  Flags flags;
  auto contains = [](const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& word = args[i];
    if (word.size() < 3 || word.compare(0, 2, "--") != 0) {
      flags.positional_.push_back(word);
      continue;
    }
    std::string name = word.substr(2);
    std::string value;
    bool has_inline_value = false;
    if (auto equals = name.find('='); equals != std::string::npos) {
      value = name.substr(equals + 1);
      name = name.substr(0, equals);
      has_inline_value = true;
    }
    if (contains(boolean_flags, name)) {
      if (has_inline_value) return Status::invalid_argument("flag --" + name + " takes no value");
      flags.values_[name] = "true";
    } else if (contains(value_flags, name)) {
      if (!has_inline_value) {
        if (i + 1 >= args.size()) return Status::invalid_argument("flag --" + name + " needs a value");
        value = args[++i];
      }
      flags.values_[name] = value;
    } else {
      return Status::invalid_argument("unknown flag --" + name);
    }
  }
  return flags;
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

void JsonLine::key(const std::string& name) {
  if (!body_.empty()) body_ += ",";
  body_ += "\"" + json_escape(name) + "\":";
}

JsonLine& JsonLine::add(const std::string& name, uint64_t value) {
  key(name);
  body_ += std::to_string(value);
  return *this;
}

JsonLine& JsonLine::add(const std::string& name, int64_t value) {
  key(name);
  body_ += std::to_string(value);
  return *this;
}

JsonLine& JsonLine::add(const std::string& name, double value) {
  key(name);
  if (!std::isfinite(value)) {
    body_ += "null";
    return *this;
  }
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.6g", value);
  body_ += buffer;
  return *this;
}

JsonLine& JsonLine::add(const std::string& name, const std::string& value) {
  key(name);
  body_ += "\"" + json_escape(value) + "\"";
  return *this;
}

JsonLine& JsonLine::add_bool(const std::string& name, bool value) {
  key(name);
  body_ += value ? "true" : "false";
  return *this;
}

JsonLine& JsonLine::add_raw(const std::string& name, const std::string& json) {
  key(name);
  body_ += json;
  return *this;
}

std::string json_escape(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
          out += buffer;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
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
