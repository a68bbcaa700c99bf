// Writer and reader of the history file (format: sim/history_json.h). The writer is
// nlohmann/json's (fields in the format's order); the reader is a hand-written parser for
// exactly one flat object per line, so every error can name the line, the column and what
// was expected, and so that a fuzzed line costs no exception.
#include "sim/history_json.h"

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

namespace keyval::sim {
namespace {

// A string, or null when absent.
nlohmann::ordered_json optional_text(const std::optional<std::string>& text) {
  return text ? nlohmann::ordered_json(*text) : nlohmann::ordered_json(nullptr);
}

// One JSON value as this format allows it: a string, an unsigned integer or null.
struct JsonValue {
  enum Type { string, number, null } type = null;
  std::string text;
  uint64_t number_value = 0;
};

// Walks one line; every failure says where and what was expected.
class LineParser {
 public:
  LineParser(std::string_view line, size_t line_number) : line_(line), line_number_(line_number) {}

  Status error(const std::string& expected) const {
    return Status::invalid_argument("history line " + std::to_string(line_number_) + ", column " +
                                    std::to_string(position_ + 1) + ": expected " + expected);
  }
  void skip_spaces() {
    while (position_ < line_.size() && (line_[position_] == ' ' || line_[position_] == '\t' ||
                                        line_[position_] == '\r')) {
      ++position_;
    }
  }
  bool consume(char character) {
    skip_spaces();
    if (position_ < line_.size() && line_[position_] == character) {
      ++position_;
      return true;
    }
    return false;
  }
  bool at_end() {
    skip_spaces();
    return position_ == line_.size();
  }
  Result<JsonValue> parse_value();
  Result<std::string> parse_string();

 private:
  Result<uint64_t> parse_number();
  Result<uint32_t> parse_hex4();
  Status parse_escape(std::string& out);

  std::string_view line_;
  size_t line_number_;
  size_t position_ = 0;
};

Result<JsonValue> LineParser::parse_value() {
  skip_spaces();
  JsonValue value;
  if (line_.substr(position_, 4) == "null") {
    position_ += 4;
    return value;
  }
  if (position_ < line_.size() && line_[position_] == '"') {
    value.type = JsonValue::string;
    KV_ASSIGN_OR_RETURN(value.text, parse_string());
    return value;
  }
  value.type = JsonValue::number;
  KV_ASSIGN_OR_RETURN(value.number_value, parse_number());
  return value;
}

Result<uint64_t> LineParser::parse_number() {
  size_t start = position_;
  uint64_t number = 0;
  while (position_ < line_.size() && line_[position_] >= '0' && line_[position_] <= '9') {
    uint64_t digit = static_cast<uint64_t>(line_[position_] - '0');
    if (number > (UINT64_MAX - digit) / 10) return error("an unsigned 64-bit integer (this one overflows)");
    number = number * 10 + digit;
    ++position_;
  }
  if (position_ == start) return error("a string, an unsigned integer or null");
  return number;
}

Result<std::string> LineParser::parse_string() {
  if (!consume('"')) return error("'\"' opening a string");
  std::string out;
  while (position_ < line_.size()) {
    char character = line_[position_];
    if (character == '"') {
      ++position_;
      return out;
    }
    if (static_cast<unsigned char>(character) < 0x20) return error("no raw control character in a string");
    if (character == '\\') {
      KV_RETURN_IF_ERROR(parse_escape(out));
    } else {
      out += character;
      ++position_;
    }
  }
  return error("'\"' closing the string (the line ends inside it: a torn write?)");
}

Result<uint32_t> LineParser::parse_hex4() {
  if (position_ + 4 > line_.size()) return error("4 hex digits after \\u");
  uint32_t code = 0;
  for (int i = 0; i < 4; ++i, ++position_) {
    char digit = line_[position_];
    code <<= 4;
    if (digit >= '0' && digit <= '9') code |= static_cast<uint32_t>(digit - '0');
    else if (digit >= 'a' && digit <= 'f') code |= static_cast<uint32_t>(digit - 'a' + 10);
    else if (digit >= 'A' && digit <= 'F') code |= static_cast<uint32_t>(digit - 'A' + 10);
    else return error("a hex digit in \\u escape");
  }
  return code;
}

void append_utf8(std::string& out, uint32_t code) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xE0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code >> 18));
    out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
}

Status LineParser::parse_escape(std::string& out) {
  ++position_;  // the backslash
  if (position_ >= line_.size()) return error("an escape character after '\\'");
  char escape = line_[position_++];
  switch (escape) {
    case '"': out += '"'; return Status::ok();
    case '\\': out += '\\'; return Status::ok();
    case '/': out += '/'; return Status::ok();
    case 'b': out += '\b'; return Status::ok();
    case 'f': out += '\f'; return Status::ok();
    case 'n': out += '\n'; return Status::ok();
    case 'r': out += '\r'; return Status::ok();
    case 't': out += '\t'; return Status::ok();
    case 'u': break;
    default: --position_; return error("one of \" \\ / b f n r t u after '\\'");
  }
  KV_ASSIGN_OR_RETURN(uint32_t code, parse_hex4());
  if (code >= 0xD800 && code < 0xDC00) {  // a high surrogate: its low half must follow
    if (line_.substr(position_, 2) != "\\u") return error("\\u low surrogate after a high surrogate");
    position_ += 2;
    KV_ASSIGN_OR_RETURN(uint32_t low, parse_hex4());
    if (low < 0xDC00 || low > 0xDFFF) return error("a low surrogate (DC00-DFFF)");
    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
  } else if (code >= 0xDC00 && code < 0xE000) {
    return error("a high surrogate before a low one");
  }
  append_utf8(out, code);
  return Status::ok();
}

using Fields = std::map<std::string, JsonValue>;

Result<Fields> parse_object(LineParser& parser) {
  Fields fields;
  if (!parser.consume('{')) return parser.error("'{' starting an operation");
  if (parser.consume('}')) return fields;
  do {
    parser.skip_spaces();
    KV_ASSIGN_OR_RETURN(std::string name, parser.parse_string());
    if (!parser.consume(':')) return parser.error("':' after field \"" + name + "\"");
    KV_ASSIGN_OR_RETURN(JsonValue value, parser.parse_value());
    if (!fields.emplace(name, std::move(value)).second) return parser.error("field \"" + name + "\" only once");
  } while (parser.consume(','));
  if (!parser.consume('}')) return parser.error("',' or '}' after a field");
  if (!parser.at_end()) return parser.error("the end of the line after '}'");
  return fields;
}

// Reads the fields of an object into an Operation, naming the first missing or mistyped one.
class FieldReader {
 public:
  FieldReader(const Fields& fields, size_t line_number) : fields_(fields), line_number_(line_number) {}

  Status error(const std::string& what) const {
    return Status::invalid_argument("history line " + std::to_string(line_number_) + ": " + what);
  }
  Result<const JsonValue*> field(const char* name, bool null_allowed, JsonValue::Type type) const {
    auto found = fields_.find(name);
    if (found == fields_.end()) return error(std::string("expected field \"") + name + "\"");
    if (found->second.type == type || (null_allowed && found->second.type == JsonValue::null)) {
      return &found->second;
    }
    return error(std::string("expected field \"") + name + "\" to be " +
                 (type == JsonValue::string ? "a string" : "an unsigned integer") + (null_allowed ? " or null" : ""));
  }
  Result<std::optional<std::string>> optional_string(const char* name) const {
    KV_ASSIGN_OR_RETURN(const JsonValue* value, field(name, true, JsonValue::string));
    if (value->type == JsonValue::null) return std::optional<std::string>();
    return std::optional<std::string>(value->text);
  }

 private:
  const Fields& fields_;
  size_t line_number_;
};

Result<Operation::Kind> parse_kind(const FieldReader& reader, const std::string& text) {
  for (auto kind : {Operation::put, Operation::get, Operation::del, Operation::cas}) {
    if (text == kind_name(kind)) return kind;
  }
  return reader.error("expected op \"put\", \"get\", \"del\" or \"cas\", not \"" + text + "\"");
}

Result<Operation::Status> parse_status(const FieldReader& reader, const std::string& text) {
  for (auto status : {Operation::ok, Operation::fail, Operation::unknown}) {
    if (text == status_name(status)) return status;
  }
  return reader.error("expected status \"ok\", \"fail\" or \"unknown\", not \"" + text + "\"");
}

Result<Operation> operation_from(const Fields& fields, size_t line_number) {
  FieldReader reader(fields, line_number);
  if (fields.size() != 9) {
    return reader.error("expected exactly the 9 fields client, op, key, value, expected, invoke, complete, "
                        "status, output; found " + std::to_string(fields.size()));
  }
  Operation operation;
  KV_ASSIGN_OR_RETURN(const JsonValue* client, reader.field("client", false, JsonValue::number));
  operation.client = client->number_value;
  KV_ASSIGN_OR_RETURN(const JsonValue* op, reader.field("op", false, JsonValue::string));
  KV_ASSIGN_OR_RETURN(operation.op, parse_kind(reader, op->text));
  KV_ASSIGN_OR_RETURN(const JsonValue* key, reader.field("key", false, JsonValue::string));
  operation.key = key->text;
  KV_ASSIGN_OR_RETURN(operation.value, reader.optional_string("value"));
  KV_ASSIGN_OR_RETURN(operation.expected, reader.optional_string("expected"));
  KV_ASSIGN_OR_RETURN(const JsonValue* invoke, reader.field("invoke", false, JsonValue::number));
  operation.invoke_ns = invoke->number_value;
  KV_ASSIGN_OR_RETURN(const JsonValue* complete, reader.field("complete", true, JsonValue::number));
  if (complete->type == JsonValue::number) operation.complete_ns = complete->number_value;
  KV_ASSIGN_OR_RETURN(const JsonValue* status, reader.field("status", false, JsonValue::string));
  KV_ASSIGN_OR_RETURN(operation.status, parse_status(reader, status->text));
  KV_ASSIGN_OR_RETURN(operation.output, reader.optional_string("output"));
  Status valid = validate_operation(operation);
  if (!valid.is_ok()) return reader.error(valid.message());
  return operation;
}

}  // namespace

std::string json_text(const nlohmann::ordered_json& value) {
  return value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string json_quoted(const std::string& text) { return json_text(nlohmann::ordered_json(text)); }

std::string to_json_line(const Operation& operation) {
  nlohmann::ordered_json line;
  line["client"] = operation.client;
  line["op"] = kind_name(operation.op);
  line["key"] = operation.key;
  line["value"] = optional_text(operation.value);
  line["expected"] = optional_text(operation.expected);
  line["invoke"] = operation.invoke_ns;
  line["complete"] = operation.complete_ns ? nlohmann::ordered_json(*operation.complete_ns) : nlohmann::ordered_json(nullptr);
  line["status"] = status_name(operation.status);
  line["output"] = optional_text(operation.output);
  return json_text(line);
}

Result<Operation> parse_json_line(std::string_view line, size_t line_number) {
  LineParser parser(line, line_number);
  KV_ASSIGN_OR_RETURN(Fields fields, parse_object(parser));
  return operation_from(fields, line_number);
}

std::string format_history(const std::vector<Operation>& operations) {
  std::string text;
  for (const Operation& operation : operations) text += to_json_line(operation) + "\n";
  return text;
}

Result<std::vector<Operation>> parse_history(std::string_view text) {
  std::vector<Operation> operations;
  size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    KV_ASSIGN_OR_RETURN(Operation operation, parse_json_line(line, line_number));
    operations.push_back(std::move(operation));
  }
  return operations;
}

Status write_history_file(const std::string& path, const std::vector<Operation>& operations) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file) return Status::from_errno("open", path, errno);
  std::string text = format_history(operations);
  file.write(text.data(), static_cast<std::streamsize>(text.size()));
  file.close();
  if (!file) return Status::from_errno("write", path, errno);
  return Status::ok();
}

Result<std::vector<Operation>> read_history_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return Status::from_errno("open", path, errno);
  std::ostringstream contents;
  contents << file.rdbuf();
  if (file.bad()) return Status::from_errno("read", path, errno);
  Result<std::vector<Operation>> operations = parse_history(contents.str());
  if (!operations.is_ok()) return Status::invalid_argument(path + ": " + operations.status().message());
  return operations;
}

}  // namespace keyval::sim
