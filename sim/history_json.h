// The history file: JSON lines, one Operation per line, written by `keyval sim
// --history FILE` and read back by the checker and by tests.
//
// Format (fields always in this order when written; any order accepted on read,
// each exactly once, no other fields):
//   {"client":3,"op":"cas","key":"k","value":"b","expected":"a","invoke":100,
//    "complete":250,"status":"ok","output":"true"}
// * client, invoke, complete: unsigned 64-bit decimal integers (virtual ns);
//   complete is null when the outcome is unknown.
// * op: "put" | "get" | "del" | "cas"; status: "ok" | "fail" | "unknown".
// * key: string; value, expected, output: string or null (meaning: sim/history.h).
// * Strings escape '"', '\\' and bytes below 0x20 (\n, \t, ... or \u00XX). Other
//   bytes are written as they are, so a UTF-8 key stays readable; a key that is not
//   UTF-8 round-trips through this reader but strict JSON tools may reject it.
//   The reader also accepts \/ and \uXXXX (surrogate pairs included, as UTF-8).
// * Empty lines are ignored. Each line is checked with validate_operation().
// A crash while writing leaves a prefix of the lines, the last maybe torn: the
// reader reports the torn line by number rather than guessing.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "sim/history.h"
#include "storage/status.h"

namespace keyval::sim {

// One line, without the trailing newline.
std::string to_json_line(const Operation& operation);
// `text` as a JSON string: quoted, with quotes, backslashes and control characters escaped
// (nlohmann/json; bytes that are not UTF-8 become U+FFFD).
std::string json_quoted(const std::string& text);
// `value` on one line, as nlohmann/json writes it (no spaces; bytes that are not UTF-8 become U+FFFD).
std::string json_text(const nlohmann::ordered_json& value);
// `line_number` (1-based) only goes into error messages.
Result<Operation> parse_json_line(std::string_view line, size_t line_number);

// Whole histories: one line per operation, each ending in '\n'.
std::string format_history(const std::vector<Operation>& operations);
Result<std::vector<Operation>> parse_history(std::string_view text);

Status write_history_file(const std::string& path, const std::vector<Operation>& operations);
Result<std::vector<Operation>> read_history_file(const std::string& path);

}  // namespace keyval::sim
