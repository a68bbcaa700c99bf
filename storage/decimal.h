// Whole decimal numbers from text (flags, config files, IDENTITY, scenario files): digits
// only, no sign, no spaces, within uint64_t.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace keyval {

inline std::optional<uint64_t> parse_decimal(const std::string& text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return std::nullopt;  // out of range
    value = value * 10 + digit;
  }
  return value;
}

}  // namespace keyval
