// The Redis gateway's commands, without I/O: each Redis command becomes either a reply written
// at once (PING, HELLO, CLIENT ..., errors) or a step of client requests (actors/
// client_protocol.h) whose answers make the reply. The listener (actors/redis_listener.h) sends
// a step's requests to the leader and hands the answers back; docs/REDIS.md lists the
// commands and how each maps onto KeyVal.
//
// Consistency is the native API's: a write is one log entry (MSET and MSETNX too: their keys
// change together or not at all; INCR and APPEND read and write inside the state machine), and
// a read goes through a ReadIndex on the leader (§6.4), so every command is linearizable. A
// command made of several requests (MGET, EXISTS: one get per key) is linearizable key by key,
// not as a whole.
//
// Errors use Redis's own forms ("ERR unknown command 'x', with args beginning with: ",
// "ERR wrong number of arguments for 'get' command", "NOAUTH Authentication required.",
// "WRONGPASS ..."), so clients and scripts that match on them keep working.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "actors/client_protocol.h"
#include "actors/resp.h"

namespace keyval {

// One client connection's state.
struct RedisSession {
  uint64_t id = 0;           // CLIENT ID: from 1, per listener
  int protocol = 2;          // HELLO 3 switches to RESP3
  bool authenticated = false;
  std::string name;          // CLIENT SETNAME
  std::string address;       // "HOST:PORT" of the client
};

// The listener's figures INFO reports.
struct RedisStats {
  uint64_t connections_open = 0;
  uint64_t connections_total = 0;
  uint64_t commands_total = 0;
  uint64_t forwarded_total = 0;  // requests sent to another node's client port (the leader)
  // GET and MGET commands answered from a GetBatch (the rest of the reads go the general way).
  uint64_t batched_reads_total = 0;
  uint64_t started_at_ms = 0;    // monotonic, for uptime
  uint64_t now_ms = 0;
};

struct RedisStep;
// Makes the reply (or the next step, for paged reads) from the answers, which are all `ok`:
// the listener turns the first failed answer into an error reply itself.
using RedisContinuation = std::function<std::optional<RedisStep>(const std::vector<ClientResponse>&, RespWriter&)>;

struct RedisStep {
  std::vector<ClientRequest> requests;  // sent together; answers come back in this order
  bool local = false;                   // to this node (INFO describes it), not to the leader
  RedisContinuation then;
};

struct RedisOutcome {
  std::optional<RedisStep> step;  // cluster work to do; without it the reply is written
  bool close = false;             // close the connection once the reply is written (QUIT)
};

struct RedisCommandsConfig {
  uint64_t node_id = 0;
  std::string password;  // empty: no AUTH required
  size_t scan_cursors_max = 1u << 16;
};

class RedisCommands {
 public:
  explicit RedisCommands(RedisCommandsConfig config) : config_(std::move(config)) {}

  // One command (arguments[0] is its name, any case). Writes a reply into `out` or returns a
  // step; `stats` is read by INFO.
  RedisOutcome execute(RedisSession& session, const std::vector<std::string>& arguments, RespWriter& out,
                       const RedisStats& stats);

  // Whether the command is a plain read of keys that a batch of gets can serve (GET, MGET:
  // the session may run commands, the arity is right, every key is within kv_key_bytes_max
  // and not empty), with `array` set for MGET (its reply is an array). The listener sends such
  // commands' keys to the gateway as one GetBatch per cycle (client_gets_atom) and writes the
  // replies itself (write_read_reply); everything else goes through execute.
  bool batched_read(const RedisSession& session, const std::vector<std::string>& arguments, bool* array) const;
  // A GET's or MGET's reply from its keys' answers: a bulk string or a null, or an array of them.
  static void write_read_reply(RespWriter& out, bool array, const uint8_t* found, const std::string* values,
                               size_t count);

  // The error reply for an answer that is not ok (after the listener's retries).
  static std::string error_of(const ClientResponse& response);
  // The names this gateway serves, lower case (COMMAND COUNT and docs/REDIS.md).
  static std::vector<std::string> command_names();

  // The commands that use this object's or the session's state (execute calls them).
  RedisOutcome scan(const std::vector<std::string>& arguments, RespWriter& out);
  RedisOutcome info(const std::vector<std::string>& arguments, const RedisStats& stats);
  RedisOutcome hello(RedisSession& session, const std::vector<std::string>& arguments, RespWriter& out);
  RedisOutcome client(RedisSession& session, const std::vector<std::string>& arguments, RespWriter& out);

 private:
  uint64_t remember_cursor(std::string resume_key);

  RedisCommandsConfig config_;
  // SCAN cursors: a number stands for the key to resume from (Redis clients parse cursors as
  // numbers; keys are bytes). The oldest are forgotten past scan_cursors_max.
  std::map<uint64_t, std::string> cursors_;
  std::deque<uint64_t> cursor_order_;
  uint64_t next_cursor_ = 1;
};

}  // namespace keyval
