// RESP parsing and writing (resp.h). Numbers in headers follow Redis's own parser: a bulk
// length or array count is a decimal without sign (except -1, a null, which a command never
// holds), and a line ends with "\r\n".
#include "actors/resp.h"

#include <cstring>
#include <utility>

namespace keyval {
namespace {

// The decimal between `from` and `to`; -1 when it is not a non-negative decimal or too long.
int64_t parse_count(const std::string& buffer, size_t from, size_t to) {
  if (from == to || to - from > 18) return -1;
  int64_t value = 0;
  for (size_t at = from; at < to; ++at) {
    if (buffer[at] < '0' || buffer[at] > '9') return -1;
    value = value * 10 + (buffer[at] - '0');
  }
  return value;
}

}  // namespace

void RespParser::feed(const char* data, size_t bytes) {
  if (failed_) return;
  compact();
  buffer_.append(data, bytes);
}

// Parsed bytes are dropped once they are half the buffer, so a long pipelined stream costs
// linear time, not quadratic.
void RespParser::compact() {
  if (consumed_ == 0 || consumed_ < buffer_.size() / 2) return;
  buffer_.erase(0, consumed_);
  consumed_ = 0;
}

RespParser::Outcome RespParser::fail(std::string* error, const std::string& why) {
  failed_ = true;
  *error = why;
  return Outcome::error;
}

RespParser::Outcome RespParser::next(std::vector<std::string>* arguments, std::string* error) {
  arguments->clear();
  if (failed_) return fail(error, "Protocol error: the connection's stream is no longer framed");
  while (consumed_ < buffer_.size()) {
    Outcome outcome = buffer_[consumed_] == '*' ? parse_array(arguments, error) : parse_inline(arguments, error);
    // An empty line (a bare "\r\n" between commands) and an empty array ("*0\r\n") are
    // skipped, as Redis does: a command always has its name.
    if (outcome != Outcome::command || !arguments->empty()) return outcome;
  }
  return Outcome::need_more;
}

// "*N\r\n" then N times "$L\r\n<L bytes>\r\n". Nothing is consumed until the whole command is
// there, so a partial command is parsed again from its start when more bytes arrive; the
// bounds keep that rescan small next to the bytes it waits for.
RespParser::Outcome RespParser::parse_array(std::vector<std::string>* arguments, std::string* error) {
  Outcome outcome = parse_whole_array(arguments, error);
  if (outcome == Outcome::need_more && buffer_.size() - consumed_ > limits_.command_bytes_max) {
    return fail(error, "Protocol error: a command over " + std::to_string(limits_.command_bytes_max) + " bytes");
  }
  return outcome;
}

RespParser::Outcome RespParser::parse_whole_array(std::vector<std::string>* arguments, std::string* error) {
  size_t at = consumed_ + 1;
  size_t line_end = buffer_.find("\r\n", at);
  if (line_end == std::string::npos) {
    if (buffer_.size() - at > 32) return fail(error, "Protocol error: invalid multibulk length");
    return Outcome::need_more;
  }
  const int64_t count = parse_count(buffer_, at, line_end);
  if (count < 0 || static_cast<uint64_t>(count) > limits_.arguments_max) {
    return fail(error, "Protocol error: invalid multibulk length");
  }
  at = line_end + 2;
  std::vector<std::string> parsed;
  parsed.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    if (at >= buffer_.size()) return Outcome::need_more;
    if (buffer_[at] != '$') {
      return fail(error, std::string("Protocol error: expected '$', got '") + buffer_[at] + "'");
    }
    line_end = buffer_.find("\r\n", at + 1);
    if (line_end == std::string::npos) {
      if (buffer_.size() - at > 32) return fail(error, "Protocol error: invalid bulk length");
      return Outcome::need_more;
    }
    const int64_t length = parse_count(buffer_, at + 1, line_end);
    if (length < 0 || static_cast<uint64_t>(length) > limits_.bulk_bytes_max) {
      return fail(error, "Protocol error: invalid bulk length");
    }
    at = line_end + 2;
    if (buffer_.size() < at + static_cast<size_t>(length) + 2) return Outcome::need_more;
    if (buffer_.compare(at + static_cast<size_t>(length), 2, "\r\n") != 0) {
      return fail(error, "Protocol error: a bulk string does not end with CRLF");
    }
    parsed.emplace_back(buffer_, at, static_cast<size_t>(length));
    at += static_cast<size_t>(length) + 2;
  }
  consumed_ = at;
  *arguments = std::move(parsed);
  return Outcome::command;
}

// One line of words separated by spaces; "double quotes" group a word (redis-cli's own
// quoting is resolved on its side, which sends arrays).
RespParser::Outcome RespParser::parse_inline(std::vector<std::string>* arguments, std::string* error) {
  size_t line_end = buffer_.find('\n', consumed_);
  if (line_end == std::string::npos) {
    if (buffer_.size() - consumed_ > limits_.inline_bytes_max) {
      return fail(error, "Protocol error: too big inline request");
    }
    return Outcome::need_more;
  }
  if (line_end - consumed_ > limits_.inline_bytes_max) return fail(error, "Protocol error: too big inline request");
  size_t end = line_end;
  if (end > consumed_ && buffer_[end - 1] == '\r') --end;
  std::string word;
  bool in_word = false;
  bool quoted = false;
  for (size_t at = consumed_; at < end; ++at) {
    const char c = buffer_[at];
    if (quoted) {
      if (c == '"') {
        quoted = false;
      } else {
        word += c;
      }
    } else if (c == '"') {
      quoted = true;
      in_word = true;
    } else if (c == ' ' || c == '\t') {
      if (in_word) arguments->push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (quoted) return fail(error, "Protocol error: unbalanced quotes in request");
  if (in_word) arguments->push_back(std::move(word));
  if (arguments->size() > limits_.arguments_max) return fail(error, "Protocol error: invalid multibulk length");
  consumed_ = line_end + 1;
  return Outcome::command;
}

void RespWriter::header(char type, int64_t count) {
  out_ += type;
  out_ += std::to_string(count);
  out_ += "\r\n";
}

// Simple strings and errors are one line: a CR or LF inside would split the reply.
void RespWriter::simple(const std::string& text) {
  out_ += '+';
  for (char c : text) out_ += (c == '\r' || c == '\n') ? ' ' : c;
  out_ += "\r\n";
}

void RespWriter::error(const std::string& text) {
  out_ += '-';
  for (char c : text) out_ += (c == '\r' || c == '\n') ? ' ' : c;
  out_ += "\r\n";
}

void RespWriter::integer(int64_t value) { header(':', value); }

void RespWriter::bulk(const std::string& bytes) {
  header('$', static_cast<int64_t>(bytes.size()));
  out_ += bytes;
  out_ += "\r\n";
}

void RespWriter::null() {
  if (protocol_ >= 3) {
    out_ += "_\r\n";
  } else {
    out_ += "$-1\r\n";
  }
}

void RespWriter::null_array() {
  if (protocol_ >= 3) {
    out_ += "_\r\n";
  } else {
    out_ += "*-1\r\n";
  }
}

void RespWriter::array(size_t elements) { header('*', static_cast<int64_t>(elements)); }

void RespWriter::map(size_t pairs) {
  if (protocol_ >= 3) return header('%', static_cast<int64_t>(pairs));
  header('*', static_cast<int64_t>(2 * pairs));
}

void RespWriter::set(size_t elements) { header(protocol_ >= 3 ? '~' : '*', static_cast<int64_t>(elements)); }

void RespWriter::verbatim(const std::string& text) {
  if (protocol_ < 3) return bulk(text);
  header('=', static_cast<int64_t>(text.size() + 4));
  out_ += "txt:";
  out_ += text;
  out_ += "\r\n";
}

std::string RespWriter::take() {
  std::string taken;
  taken.swap(out_);
  return taken;
}

namespace {

// Whether the pattern element at `p` ('?', a class, an escaped or plain byte) matches `c`;
// *next is where the next element starts.
bool element_matches(const std::string& pattern, size_t p, char c, size_t* next) {
  if (pattern[p] == '?') {
    *next = p + 1;
    return true;
  }
  if (pattern[p] == '[') {
    size_t at = p + 1;
    const bool negate = at < pattern.size() && pattern[at] == '^';
    if (negate) ++at;
    bool matched = false;
    while (at < pattern.size() && pattern[at] != ']') {
      if (pattern[at] == '\\' && at + 1 < pattern.size()) {
        matched |= pattern[at + 1] == c;
        at += 2;
      } else if (at + 2 < pattern.size() && pattern[at + 1] == '-' && pattern[at + 2] != ']') {
        char low = pattern[at];
        char high = pattern[at + 2];
        if (low > high) std::swap(low, high);
        matched |= c >= low && c <= high;
        at += 3;
      } else {
        matched |= pattern[at] == c;
        ++at;
      }
    }
    *next = at < pattern.size() ? at + 1 : at;
    return matched != negate;
  }
  if (pattern[p] == '\\' && p + 1 < pattern.size()) ++p;
  *next = p + 1;
  return pattern[p] == c;
}

}  // namespace

// Redis's glob rules, matched in O(pattern x text) time: on a mismatch the last '*' takes one
// more byte (the classic wildcard algorithm), so no pattern makes it exponential.
bool resp_glob_match(const std::string& pattern, const std::string& text) {
  size_t p = 0;
  size_t t = 0;
  size_t star = std::string::npos;  // the pattern position after the last '*' seen
  size_t star_text = 0;             // where in the text that '*' resumes
  while (t < text.size()) {
    size_t next = 0;
    if (p < pattern.size() && pattern[p] == '*') {
      star = ++p;
      star_text = t;
    } else if (p < pattern.size() && element_matches(pattern, p, text[t], &next)) {
      p = next;
      ++t;
    } else if (star != std::string::npos) {
      p = star;
      t = ++star_text;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::string resp_glob_prefix(const std::string& pattern) {
  std::string prefix;
  for (size_t at = 0; at < pattern.size(); ++at) {
    const char c = pattern[at];
    if (c == '*' || c == '?' || c == '[') break;
    if (c == '\\') {
      if (at + 1 == pattern.size()) break;
      ++at;
    }
    prefix += pattern[at];
  }
  return prefix;
}

}  // namespace keyval
