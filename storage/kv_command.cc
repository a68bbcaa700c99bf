// Cap'n Proto encoding of the state machine's commands, results and sessions
// (schema/kv.capnp). Cap'n Proto's exceptions are caught by read_message and never
// leave this file.
#include "storage/kv_command.h"

#include <capnp/message.h>

#include "schema/kv.capnp.h"
#include "storage/capnp_message.h"

namespace keyval {
namespace {

void fill_result(schema::CommandResult::Builder builder, const CommandResult& result) {
  builder.setStatus(static_cast<schema::CommandStatus>(result.status));
  builder.setMessage(result.message);
  builder.setIndex(result.index);
  builder.setFound(result.found);
  builder.setValue(as_data(result.value));
  builder.setCasSucceeded(result.cas_succeeded);
  builder.setNumber(result.number);
}

// An unknown status (a newer writer) is corruption for this build, not a silent "ok".
Status read_result(schema::CommandResult::Reader reader, const std::string& where, CommandResult* result) {
  auto status = static_cast<uint16_t>(reader.getStatus());
  if (status > static_cast<uint16_t>(CommandStatus::already_applied)) {
    return Status::corruption(where + ": unknown command status " + std::to_string(status));
  }
  result->status = static_cast<CommandStatus>(status);
  result->message = reader.getMessage().cStr();
  result->index = reader.getIndex();
  result->found = reader.getFound();
  result->value = as_string(reader.getValue());
  result->cas_succeeded = reader.getCasSucceeded();
  result->number = reader.getNumber();
  return Status::ok();
}

std::vector<std::string> read_keys(capnp::List<capnp::Data>::Reader list) {
  std::vector<std::string> keys;
  keys.reserve(list.size());
  for (auto key : list) keys.push_back(as_string(key));
  return keys;
}

void fill_keys(capnp::List<capnp::Data>::Builder list, const std::vector<std::string>& keys) {
  for (unsigned i = 0; i < keys.size(); ++i) list.set(i, as_data(keys[i]));
}

// A union member this build does not know (a newer proposer) is malformed for it.
Status read_command(schema::Command::Reader reader, const std::string& where, Command* command) {
  command->client_id = reader.getClientId();
  command->sequence = reader.getSequence();
  switch (reader.which()) {
    case schema::Command::NOOP: command->kind = CommandKind::noop; return Status::ok();
    case schema::Command::PUT:
      command->kind = CommandKind::put;
      command->key = as_string(reader.getPut().getKey());
      command->value = as_string(reader.getPut().getValue());
      command->blind = reader.getPut().getBlind();
      return Status::ok();
    case schema::Command::DELETE:
      command->kind = CommandKind::erase;
      command->key = as_string(reader.getDelete().getKey());
      return Status::ok();
    case schema::Command::CAS: {
      auto cas = reader.getCas();
      command->kind = CommandKind::cas;
      command->key = as_string(cas.getKey());
      command->value = as_string(cas.getNewValue());
      if (!cas.getExpectedAbsent()) command->expected = as_string(cas.getExpected());
      return Status::ok();
    }
    case schema::Command::PUT_MANY: {
      auto many = reader.getPutMany();
      auto condition = static_cast<uint16_t>(many.getCondition());
      if (condition > static_cast<uint16_t>(PutCondition::all_present)) {
        return Status::corruption(where + ": unknown put condition " + std::to_string(condition));
      }
      command->kind = CommandKind::put_many;
      command->keys = read_keys(many.getKeys());
      command->values = read_keys(many.getValues());
      command->condition = static_cast<PutCondition>(condition);
      if (command->keys.size() != command->values.size()) {
        return Status::corruption(where + ": put_many with " + std::to_string(command->keys.size()) + " keys and " +
                                  std::to_string(command->values.size()) + " values");
      }
      return Status::ok();
    }
    case schema::Command::DELETE_MANY:
      command->kind = CommandKind::erase_many;
      command->keys = read_keys(reader.getDeleteMany().getKeys());
      return Status::ok();
    case schema::Command::INCREMENT:
      command->kind = CommandKind::increment;
      command->key = as_string(reader.getIncrement().getKey());
      command->delta = reader.getIncrement().getDelta();
      return Status::ok();
    case schema::Command::APPEND:
      command->kind = CommandKind::append;
      command->key = as_string(reader.getAppend().getKey());
      command->value = as_string(reader.getAppend().getValue());
      return Status::ok();
  }
  return Status::corruption(where + ": unknown command kind " + std::to_string(static_cast<int>(reader.which())));
}

}  // namespace

const char* command_status_name(CommandStatus status) {
  switch (status) {
    case CommandStatus::ok: return "ok";
    case CommandStatus::stale_request: return "stale_request";
    case CommandStatus::session_expired: return "session_expired";
    case CommandStatus::rejected: return "rejected";
    case CommandStatus::already_applied: return "already_applied";
  }
  return "invalid";
}

std::vector<uint8_t> encode_command(const Command& command) {
  size_t data_bytes = command.key.size() + command.value.size() + (command.expected ? command.expected->size() : 0);
  for (const std::string& key : command.keys) data_bytes += key.size();
  for (const std::string& value : command.values) data_bytes += value.size();
  const size_t blobs = 3 + command.keys.size() + command.values.size();
  // The root, the command, one of its union's structs (at most 4 words), two list pointers'
  // worth of list words, and its byte fields.
  return encode_message(first_segment_words(1 + struct_words<schema::Command>() + 4 + blobs,
                                                          data_bytes, blobs), [&](capnp::MessageBuilder& builder) {
    auto root = builder.initRoot<schema::Command>();
    root.setClientId(command.client_id);
    root.setSequence(command.sequence);
    switch (command.kind) {
      case CommandKind::noop: root.setNoop(); break;
      case CommandKind::put: {
        auto put = root.initPut();
        put.setKey(as_data(command.key));
        put.setValue(as_data(command.value));
        put.setBlind(command.blind);
        break;
      }
      case CommandKind::erase: root.initDelete().setKey(as_data(command.key)); break;
      case CommandKind::cas: {
        auto cas = root.initCas();
        cas.setKey(as_data(command.key));
        cas.setExpectedAbsent(!command.expected.has_value());
        if (command.expected) cas.setExpected(as_data(*command.expected));
        cas.setNewValue(as_data(command.value));
        break;
      }
      case CommandKind::put_many: {
        auto many = root.initPutMany();
        fill_keys(many.initKeys(static_cast<unsigned>(command.keys.size())), command.keys);
        fill_keys(many.initValues(static_cast<unsigned>(command.values.size())), command.values);
        many.setCondition(static_cast<schema::PutCondition>(command.condition));
        break;
      }
      case CommandKind::erase_many:
        fill_keys(root.initDeleteMany().initKeys(static_cast<unsigned>(command.keys.size())), command.keys);
        break;
      case CommandKind::increment: {
        auto increment = root.initIncrement();
        increment.setKey(as_data(command.key));
        increment.setDelta(command.delta);
        break;
      }
      case CommandKind::append: {
        auto append = root.initAppend();
        append.setKey(as_data(command.key));
        append.setValue(as_data(command.value));
        break;
      }
    }
  });
}

Result<Command> decode_command(const uint8_t* data, size_t bytes, const std::string& where) {
  Command command;
  Status status = read_message(data, bytes, where, [&](capnp::MessageReader& reader) {
    return read_command(reader.getRoot<schema::Command>(), where, &command);
  });
  if (!status.is_ok()) return status;
  return command;
}

// A result's words in a message, beside its struct: its message text (with its NUL) and value.
size_t result_data_bytes(const CommandResult& result) { return result.message.size() + 1 + result.value.size(); }

std::vector<uint8_t> encode_result(const CommandResult& result) {
  return encode_message(
      first_segment_words(1 + struct_words<schema::CommandResult>(), result_data_bytes(result), 2), [&](capnp::MessageBuilder& builder) {
    fill_result(builder.initRoot<schema::CommandResult>(), result);
  });
}

Result<CommandResult> decode_result(const uint8_t* data, size_t bytes, const std::string& where) {
  CommandResult result;
  Status status = read_message(data, bytes, where, [&](capnp::MessageReader& reader) {
    return read_result(reader.getRoot<schema::CommandResult>(), where, &result);
  });
  if (!status.is_ok()) return status;
  return result;
}

std::vector<uint8_t> encode_results(const std::vector<CommandResult>& results) {
  size_t data_bytes = 0;
  for (const CommandResult& result : results) data_bytes += result_data_bytes(result);
  return encode_message(first_segment_words(
      2 + struct_words<schema::CommandResults>() + results.size() * struct_words<schema::CommandResult>(), data_bytes,
      2 * results.size()), [&](capnp::MessageBuilder& builder) {
    auto list = builder.initRoot<schema::CommandResults>().initResults(static_cast<unsigned>(results.size()));
    for (unsigned i = 0; i < results.size(); ++i) fill_result(list[i], results[i]);
  });
}

Result<std::vector<CommandResult>> decode_results(const uint8_t* data, size_t bytes, const std::string& where) {
  std::vector<CommandResult> results;
  Status status = read_message(data, bytes, where, [&](capnp::MessageReader& reader) {
    auto list = reader.getRoot<schema::CommandResults>().getResults();
    results.resize(list.size());
    for (unsigned i = 0; i < list.size(); ++i) KV_RETURN_IF_ERROR(read_result(list[i], where, &results[i]));
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return results;
}

// Built in the thread's kept scratch segment, like every other hot encode: the state machine
// saves a session with every write of a client that has one, on every replica, and the
// builder's default first segment (8 KiB, allocated and zeroed) was most of that write's encode.
std::vector<uint8_t> encode_session(const Session& session) {
  return encode_message(first_segment_words(1 + struct_words<schema::Session>() + struct_words<schema::CommandResult>(),
                                            result_data_bytes(session.result), 2),
                        [&](capnp::MessageBuilder& builder) {
                          auto root = builder.initRoot<schema::Session>();
                          root.setSequence(session.sequence);
                          fill_result(root.initResult(), session.result);
                        });
}

Result<Session> decode_session(const uint8_t* data, size_t bytes, const std::string& where) {
  Session session;
  Status status = read_message(data, bytes, where, [&](capnp::MessageReader& reader) {
    auto root = reader.getRoot<schema::Session>();
    session.sequence = root.getSequence();
    return read_result(root.getResult(), where, &session.result);
  });
  if (!status.is_ok()) return status;
  return session;
}

}  // namespace keyval
