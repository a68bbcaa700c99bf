// The node's config file (see config_file.h).
#include "apps/config_file.h"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace keyval {
namespace {

std::string trim(std::string_view text) {
  const char* blanks = " \t\r";
  auto first = text.find_first_not_of(blanks);
  if (first == std::string_view::npos) return std::string();
  return std::string(text.substr(first, text.find_last_not_of(blanks) - first + 1));
}

}  // namespace

Result<std::map<std::string, std::string>> parse_config_text(std::string_view text, const std::string& name,
                                                             const std::vector<std::string>& allowed) {
  std::map<std::string, std::string> settings;
  size_t number = 0;
  while (!text.empty()) {
    ++number;
    const size_t newline = text.find('\n');
    std::string_view raw = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    if (auto hash = raw.find('#'); hash != std::string_view::npos) raw = raw.substr(0, hash);
    const std::string line = trim(raw);
    if (line.empty()) continue;
    const std::string where = name + " line " + std::to_string(number) + ": ";
    const auto equals = line.find('=');
    if (equals == std::string::npos) {
      return Status::invalid_argument(where + "expected 'name = value', got '" + line + "'");
    }
    std::string setting = trim(std::string_view(line).substr(0, equals));
    std::string value = trim(std::string_view(line).substr(equals + 1));
    if (std::find(allowed.begin(), allowed.end(), setting) == allowed.end()) {
      return Status::invalid_argument(where + "unknown setting '" + setting + "'");
    }
    if (value.empty()) return Status::invalid_argument(where + "'" + setting + "' has no value");
    settings[setting] = value;
  }
  return settings;
}

Result<std::map<std::string, std::string>> read_config_file(const std::string& path,
                                                            const std::vector<std::string>& allowed) {
  std::ifstream in(path);
  if (!in) return Status::invalid_argument("cannot read config file " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config_text(text.str(), path, allowed);
}

}  // namespace keyval
