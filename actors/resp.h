// RESP, the Redis serialization protocol (versions 2 and 3), without I/O: a parser that turns
// the bytes a Redis client sends into commands, and a writer that turns replies into bytes.
// The Redis gateway (actors/redis_listener.h) feeds one parser per connection.
//
// What a client sends is a command: an array of bulk strings ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
// or an inline command, one line of words ("PING\r\n", what `telnet` and `redis-cli` piped
// input send). The parser bounds everything it buffers: an argument above bulk_bytes_max, more
// than arguments_max arguments, a command above command_bytes_max in all, or an inline line
// above inline_bytes_max is a protocol error,
// reported with Redis's own words ("Protocol error: invalid bulk length"); the connection is
// then closed, since the rest of its stream cannot be framed.
//
// Replies: RESP2 has simple strings, errors, integers, bulk strings and arrays, with nulls as
// "$-1" / "*-1". RESP3 (after HELLO 3) adds a null ("_"), maps ("%") and doubles; a map in
// RESP2 is an array of alternating keys and values, as Redis itself answers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace keyval {

struct RespLimits {
  size_t bulk_bytes_max = 8u << 20;   // one argument (a value): a proto-max-bulk-len
  size_t arguments_max = 1u << 17;    // arguments of one command (MSET of 65536 pairs fits)
  size_t inline_bytes_max = 64u << 10;
  size_t command_bytes_max = 16u << 20;  // one whole command, all its arguments
};

class RespParser {
 public:
  enum class Outcome { command, need_more, error };

  explicit RespParser(RespLimits limits = {}) : limits_(limits) {}

  // Appends what the connection read.
  void feed(const char* data, size_t bytes);
  // The next whole command into *arguments (cleared first): command; need_more when the
  // buffer holds no whole command yet; error (with *error, Redis's text without "ERR ") when
  // the stream is malformed, after which the parser stays in error.
  Outcome next(std::vector<std::string>* arguments, std::string* error);
  size_t buffered_bytes() const { return buffer_.size() - consumed_; }

 private:
  Outcome parse_array(std::vector<std::string>* arguments, std::string* error);
  Outcome parse_whole_array(std::vector<std::string>* arguments, std::string* error);
  Outcome parse_inline(std::vector<std::string>* arguments, std::string* error);
  Outcome fail(std::string* error, const std::string& why);
  void compact();

  RespLimits limits_;
  std::string buffer_;
  size_t consumed_ = 0;  // bytes of buffer_ already parsed into commands
  bool failed_ = false;
};

// Builds the bytes of replies for one protocol version (2 or 3), appended in order.
class RespWriter {
 public:
  explicit RespWriter(int protocol = 2) : protocol_(protocol) {}

  void simple(const std::string& text);         // +OK
  void error(const std::string& text);          // -ERR ... (text holds the prefix word)
  void integer(int64_t value);                  // :1
  void bulk(const std::string& bytes);          // $3\r\nabc
  void null();                                  // $-1 (RESP2) or _ (RESP3)
  void null_array();                            // *-1 (RESP2) or _ (RESP3)
  void array(size_t elements);                  // *N: the next N replies are its elements
  void map(size_t pairs);                       // %N (RESP3) or *2N (RESP2): then key, value, ...
  void set(size_t elements);                    // ~N (RESP3) or *N (RESP2)
  void verbatim(const std::string& text);       // =N\r\ntxt:... (RESP3) or a bulk string (RESP2)

  int protocol() const { return protocol_; }
  void set_protocol(int protocol) { protocol_ = protocol; }  // HELLO: its reply is in the new one
  const std::string& bytes() const { return out_; }
  std::string take();

 private:
  void header(char type, int64_t count);

  int protocol_;
  std::string out_;
};

// Redis's glob-style pattern match (KEYS, SCAN MATCH): * ? [abc] [^a] [a-z] and \ escapes.
bool resp_glob_match(const std::string& pattern, const std::string& text);
// The bytes every key a pattern can match starts with (up to its first special character).
std::string resp_glob_prefix(const std::string& pattern);

}  // namespace keyval
