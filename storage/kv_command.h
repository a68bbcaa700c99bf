// The key-value state machine's commands and results, and their Cap'n Proto encoding
// (schema/kv.capnp). A Raft entry's payload is encode_command(command); the state
// machine (kv_state_machine.h) stores encode_session(...) in its session table.
// Decoding never throws: malformed bytes become a corruption Status naming `where`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "storage/status.h"

namespace keyval {

// LMDB's largest key (mdb_env_get_maxkeysize with the default build); an empty key is
// refused by LMDB too. The state machine rejects other keys as commands, so a bad key
// can never fail the apply transaction and stop the node.
constexpr size_t kv_key_bytes_max = 511;

// An append cannot grow a value past this, so a get of it still fits in one client message
// (client_protocol.h) with the answer's other fields. Puts are bounded by that message size.
constexpr size_t kv_value_bytes_max = 3u << 20;

// put_many, erase_many, increment and append serve the Redis gateway (docs/REDIS.md): each is
// one entry, so its keys change together or not at all.
enum class CommandKind : uint8_t { noop, put, erase, cas, put_many, erase_many, increment, append };

// put_many's condition, checked against every key before anything is written.
enum class PutCondition : uint8_t { none = 0, all_absent = 1, all_present = 2 };

struct Command {
  uint64_t client_id = 0;  // 0: no session, never deduplicated
  uint64_t sequence = 0;   // per client, from 1, increasing; a retry repeats it
  CommandKind kind = CommandKind::noop;
  std::string key;
  std::string value;                    // put: the value; cas: the new value
  std::optional<std::string> expected;  // cas: the value required, nullopt = "must be absent"
  // put_many: keys[i] gets values[i] when `condition` holds for every key; erase_many: keys.
  std::vector<std::string> keys;
  std::vector<std::string> values;
  PutCondition condition = PutCondition::none;
  int64_t delta = 0;  // increment: added to the key's decimal value (absent: 0)
  // put: the value replaced is not read, and the result leaves it out (found false, no value).
  bool blind = false;

  bool operator==(const Command& other) const {
    return client_id == other.client_id && sequence == other.sequence && kind == other.kind && key == other.key &&
           value == other.value && expected == other.expected && keys == other.keys && values == other.values &&
           condition == other.condition && delta == other.delta && blind == other.blind;
  }
};

// Values are part of the stored format (schema/kv.capnp CommandStatus).
enum class CommandStatus : uint8_t {
  ok = 0,               // applied; a cas that did not match is still ok (cas_succeeded false)
  stale_request = 1,    // sequence below the client's last applied one: not applied
  session_expired = 2,  // unknown client with sequence > 1 (its session was evicted): not applied
  rejected = 3,         // invalid command (undecodable, bad key): not applied
  already_applied = 4,  // entry index <= applied index and no stored result for it
};

const char* command_status_name(CommandStatus status);

struct CommandResult {
  CommandStatus status = CommandStatus::ok;
  std::string message;  // why, when status is not ok
  uint64_t index = 0;   // log index of the entry that produced this result
  bool found = false;   // the key existed before the command
  std::string value;    // the value before the command (put, delete, cas)
  bool cas_succeeded = false;  // cas: written; put_many: its condition held and it wrote
  // increment: the new value; append: the new value's length; put_many, erase_many: how many
  // of the keys existed before. found and value are then the first key's.
  int64_t number = 0;

  bool operator==(const CommandResult& other) const {
    return status == other.status && message == other.message && index == other.index && found == other.found &&
           value == other.value && cas_succeeded == other.cas_succeeded && number == other.number;
  }
};

// A client's row in the session table: its last applied sequence and that command's result.
struct Session {
  uint64_t sequence = 0;
  CommandResult result;
};

std::vector<uint8_t> encode_command(const Command& command);
Result<Command> decode_command(const uint8_t* data, size_t bytes, const std::string& where);

std::vector<uint8_t> encode_result(const CommandResult& result);
Result<CommandResult> decode_result(const uint8_t* data, size_t bytes, const std::string& where);

// The results of one applied batch, in order.
std::vector<uint8_t> encode_results(const std::vector<CommandResult>& results);
Result<std::vector<CommandResult>> decode_results(const uint8_t* data, size_t bytes, const std::string& where);

std::vector<uint8_t> encode_session(const Session& session);
Result<Session> decode_session(const uint8_t* data, size_t bytes, const std::string& where);

}  // namespace keyval
