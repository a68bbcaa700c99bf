// Whole decimal numbers from text (flags, config files, IDENTITY, scenario files): digits
// only, no sign, no spaces, within uint64_t. parse_signed_decimal: Redis's integer rule (its
// string2ll), for the values INCR changes and the Redis gateway's integer arguments.
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

// An optional '-', then digits without a leading zero ("0" itself aside; "-0" refused),
// within int64_t.
inline std::optional<int64_t> parse_signed_decimal(const std::string& text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  size_t at = text[0] == '-' ? 1 : 0;
  if (at == text.size() || (text[at] == '0' && text.size() > at + 1) || text == "-0") return std::nullopt;
  int64_t value = 0;
  for (; at < text.size(); ++at) {
    if (text[at] < '0' || text[at] > '9') return std::nullopt;
    // Accumulated as a negative number, so INT64_MIN parses too.
    if (__builtin_mul_overflow(value, 10, &value) || __builtin_sub_overflow(value, text[at] - '0', &value)) {
      return std::nullopt;
    }
  }
  if (text[0] == '-') return value;
  if (value == INT64_MIN) return std::nullopt;
  return -value;
}

}  // namespace keyval
