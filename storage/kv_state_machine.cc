// The key-value state machine (kv_state_machine.h): commands applied to LMDB in one
// transaction per batch, together with the session table and the applied index.
#include "storage/kv_state_machine.h"

#include <functional>
#include <utility>

#include "storage/decimal.h"

namespace keyval {
namespace {

CommandResult refused(CommandStatus status, uint64_t index, std::string message) {
  CommandResult result;
  result.status = status;
  result.index = index;
  result.message = std::move(message);
  return result;
}

std::string entry_name(uint64_t index) { return "entry " + std::to_string(index); }

bool is_single_key(CommandKind kind) {
  return kind == CommandKind::put || kind == CommandKind::erase || kind == CommandKind::cas ||
         kind == CommandKind::increment || kind == CommandKind::append;
}

std::optional<CommandResult> check_one_key(const std::string& key, uint64_t index) {
  if (!key.empty() && key.size() <= kv_key_bytes_max) return std::nullopt;
  return refused(CommandStatus::rejected, index,
                 entry_name(index) + ": key of " + std::to_string(key.size()) + " bytes; keys hold 1 to " +
                     std::to_string(kv_key_bytes_max) + " bytes");
}

// A bad key is the client's mistake: rejected as a result, never an LMDB error that would
// abort the batch and stop the node on every replica.
std::optional<CommandResult> check_key(const Command& command, uint64_t index) {
  if (is_single_key(command.kind)) return check_one_key(command.key, index);
  if (command.kind != CommandKind::put_many && command.kind != CommandKind::erase_many) return std::nullopt;
  if (command.keys.empty() || (command.kind == CommandKind::put_many && command.values.size() != command.keys.size())) {
    return refused(CommandStatus::rejected, index,
                   entry_name(index) + ": " + std::to_string(command.keys.size()) + " keys and " +
                       std::to_string(command.values.size()) + " values; one value per key, at least one key");
  }
  for (const std::string& key : command.keys) {
    if (auto bad = check_one_key(key, index)) return bad;
  }
  return std::nullopt;
}

// The many-key commands: every key read first (the condition and the answer need them), then
// written, so the command is all or nothing within the batch's transaction.
Result<CommandResult> execute_many(KvWriter& writer, const Command& command, CommandResult result) {
  bool all_present = true;
  bool all_absent = true;
  for (size_t i = 0; i < command.keys.size(); ++i) {
    KV_ASSIGN_OR_RETURN(std::optional<std::string> previous, writer.get(command.keys[i]));
    if (i == 0 && previous) {
      result.found = true;
      result.value = *previous;
    }
    result.number += previous ? 1 : 0;
    (previous ? all_absent : all_present) = false;
  }
  if (command.kind == CommandKind::erase_many) {
    for (const std::string& key : command.keys) KV_RETURN_IF_ERROR(writer.erase(key));
    return result;
  }
  result.cas_succeeded = command.condition == PutCondition::none ||
                         (command.condition == PutCondition::all_absent && all_absent) ||
                         (command.condition == PutCondition::all_present && all_present);
  if (!result.cas_succeeded) return result;
  for (size_t i = 0; i < command.keys.size(); ++i) KV_RETURN_IF_ERROR(writer.put(command.keys[i], command.values[i]));
  return result;
}

// increment and append: a new value computed from the old one, or rejected leaving it as it is.
Result<CommandResult> execute_update(KvWriter& writer, const Command& command, CommandResult result) {
  std::string updated;
  if (command.kind == CommandKind::increment) {
    std::optional<int64_t> current = result.found ? parse_signed_decimal(result.value) : std::optional<int64_t>(0);
    int64_t sum = 0;
    if (!current || __builtin_add_overflow(*current, command.delta, &sum)) {
      return refused(CommandStatus::rejected, result.index, "value is not an integer or out of range");
    }
    result.number = sum;
    updated = std::to_string(sum);
  } else {
    if (result.value.size() + command.value.size() > kv_value_bytes_max) {
      return refused(CommandStatus::rejected, result.index,
                     "append would make a value of " + std::to_string(result.value.size() + command.value.size()) +
                         " bytes, over the bound of " + std::to_string(kv_value_bytes_max));
    }
    updated = result.value + command.value;
    result.number = static_cast<int64_t>(updated.size());
  }
  KV_RETURN_IF_ERROR(writer.put(command.key, updated));
  return result;
}

// Runs one command against the data; the caller has dealt with sessions.
Result<CommandResult> execute(KvWriter& writer, const Command& command, uint64_t index) {
  if (auto bad = check_key(command, index)) return std::move(*bad);
  CommandResult result;
  result.index = index;
  if (command.kind == CommandKind::noop) return result;
  if (command.kind == CommandKind::put_many || command.kind == CommandKind::erase_many) {
    return execute_many(writer, command, std::move(result));
  }
  // A blind put does not read the value it replaces (nobody asked for it).
  std::optional<std::string> previous;
  if (command.kind != CommandKind::put || !command.blind) {
    KV_ASSIGN_OR_RETURN(previous, writer.get(command.key));
  }
  result.found = previous.has_value();
  if (previous) result.value = *previous;
  switch (command.kind) {
    case CommandKind::put: KV_RETURN_IF_ERROR(writer.put(command.key, command.value)); break;
    case CommandKind::erase:
      if (previous) KV_RETURN_IF_ERROR(writer.erase(command.key));
      break;
    case CommandKind::cas:
      result.cas_succeeded = command.expected ? previous == command.expected : !previous.has_value();
      if (result.cas_succeeded) KV_RETURN_IF_ERROR(writer.put(command.key, command.value));
      break;
    case CommandKind::increment:
    case CommandKind::append: return execute_update(writer, command, std::move(result));
    default: break;
  }
  return result;
}

Result<std::optional<Session>> load_session(KvWriter& writer, uint64_t client_id) {
  KV_ASSIGN_OR_RETURN(std::optional<StoredSession> stored, writer.load_session(client_id));
  if (!stored) return std::optional<Session>();
  std::string where = "session of client " + std::to_string(client_id);
  KV_ASSIGN_OR_RETURN(Session session, decode_session(stored->record.data(), stored->record.size(), where));
  return std::optional<Session>(std::move(session));
}

}  // namespace

KvStateMachine::KvStateMachine(Store& store, KvStateMachineOptions options) : store_(store), options_(options) {
  KV_ASSERT(options_.sessions_max >= 1);
}

Result<std::vector<CommandResult>> KvStateMachine::apply(const std::vector<Entry>& committed) {
  std::vector<CommandResult> results;
  if (committed.empty()) return results;
  Status status = store_.write_kv([&](KvWriter& writer) { return apply_in(writer, committed, &results); });
  if (!status.is_ok()) return status;
  return results;
}

// May run more than once (write_kv retries after growing a full map): starts from scratch.
Status KvStateMachine::apply_in(KvWriter& writer, const std::vector<Entry>& committed,
                                std::vector<CommandResult>* results) {
  results->clear();
  KV_ASSIGN_OR_RETURN(uint64_t applied, writer.applied_index());
  KV_ASSIGN_OR_RETURN(uint64_t applied_term, writer.applied_term());
  uint64_t previous = 0;
  for (const Entry& entry : committed) {
    // Raft hands out committed entries in order and without gaps; anything else is a caller
    // bug, refused before anything is written (returning aborts the transaction).
    bool in_order = entry.index > previous && (entry.index <= applied || entry.index == applied + 1);
    if (!in_order) {
      return Status::invalid_argument("apply " + entry_name(entry.index) + " after " + entry_name(previous) +
                                      " with applied index " + std::to_string(applied) +
                                      ": committed entries must be increasing and contiguous");
    }
    previous = entry.index;
    if (entry.index <= applied) {
      KV_ASSIGN_OR_RETURN(CommandResult skipped, skipped_result(writer, entry));
      results->push_back(std::move(skipped));
      continue;
    }
    KV_ASSIGN_OR_RETURN(CommandResult result, apply_entry(writer, entry));
    results->push_back(std::move(result));
    applied = entry.index;
    applied_term = entry.term;
  }
  return writer.set_applied(applied, applied_term);
}

Result<CommandResult> KvStateMachine::apply_entry(KvWriter& writer, const Entry& entry) {
  CommandResult result;
  result.index = entry.index;
  if (entry.payload().empty()) return result;  // Raft's own no-op (a new leader's first entry)
  // A configuration change is Raft's own business (raft/membership.h): a no-op here that
  // still advances the applied index, like the leader's no-op.
  if (entry.type == EntryType::configuration) return result;
  auto command = decode_command(entry.payload().data(), entry.payload().size(), entry_name(entry.index));
  if (!command.is_ok()) {
    // An undecodable payload is committed on every replica alike: applying it as a no-op
    // recorded as rejected keeps replicas identical and the node running. Stopping here would
    // stop every replica at the same entry, forever.
    return refused(CommandStatus::rejected, entry.index, "undecodable command: " + command.status().message());
  }
  if (command->client_id == 0) return execute(writer, *command, entry.index);
  return apply_with_session(writer, *command, entry.index);
}

Result<CommandResult> KvStateMachine::apply_with_session(KvWriter& writer, const Command& command, uint64_t index) {
  auto client = [&command] { return "client " + std::to_string(command.client_id); };
  KV_ASSIGN_OR_RETURN(std::optional<Session> session, load_session(writer, command.client_id));
  if (session && command.sequence == session->sequence) {
    // A retry: answered with the first result; the session counts as used again.
    KV_RETURN_IF_ERROR(save_session(writer, command.client_id, *session, index));
    return session->result;
  }
  if (session && command.sequence < session->sequence) {
    return refused(CommandStatus::stale_request, index,
                   client() + " sequence " + std::to_string(command.sequence) + " is stale: sequence " +
                       std::to_string(session->sequence) + " was already applied");
  }
  if (!session && command.sequence != 1) {
    return refused(CommandStatus::session_expired, index,
                   client() + " has no session (expired or never started) and sent sequence " +
                       std::to_string(command.sequence) + "; a new session starts at sequence 1");
  }
  KV_ASSIGN_OR_RETURN(CommandResult result, execute(writer, command, index));
  KV_RETURN_IF_ERROR(save_session(writer, command.client_id, Session{command.sequence, result}, index));
  if (!session) KV_RETURN_IF_ERROR(evict_beyond_bound(writer));
  return result;
}

// An entry already applied before (a replay after a restart): the data already reflects it.
Result<CommandResult> KvStateMachine::skipped_result(KvWriter& writer, const Entry& entry) {
  CommandResult gone = refused(CommandStatus::already_applied, entry.index,
                               entry_name(entry.index) + " was applied before and its result is no longer kept");
  if (entry.payload().empty() || entry.type == EntryType::configuration) return gone;
  auto command = decode_command(entry.payload().data(), entry.payload().size(), entry_name(entry.index));
  if (!command.is_ok() || command->client_id == 0) return gone;
  KV_ASSIGN_OR_RETURN(std::optional<Session> session, load_session(writer, command->client_id));
  if (session && session->sequence == command->sequence) return session->result;
  return gone;
}

Status KvStateMachine::save_session(KvWriter& writer, uint64_t client_id, const Session& session, uint64_t index) {
  return writer.save_session(client_id, StoredSession{index, encode_session(session)});
}

// Deterministic: session_order sorts by last used index, then client id.
Status KvStateMachine::evict_beyond_bound(KvWriter& writer) {
  KV_ASSIGN_OR_RETURN(uint64_t count, writer.session_count());
  for (; count > options_.sessions_max; --count) {
    KV_ASSIGN_OR_RETURN(std::optional<uint64_t> oldest, writer.least_recently_used_session());
    KV_ASSERT(oldest.has_value());  // count > sessions_max >= 1 sessions exist
    KV_RETURN_IF_ERROR(writer.erase_session(*oldest));
  }
  return Status::ok();
}

namespace {

Result<std::optional<std::string>> read_value(const std::string& key,
                                              const std::function<Status(const std::function<Status(KvReader&)>&)>& read) {
  std::optional<std::string> value;
  // LMDB refuses such keys; none can have been stored.
  if (key.empty() || key.size() > kv_key_bytes_max) return value;
  Status status = read([&](KvReader& reader) -> Status {
    KV_ASSIGN_OR_RETURN(value, reader.get(key));
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return value;
}

}  // namespace

Result<std::optional<std::string>> KvStateMachine::get(const std::string& key) {
  return read_value(key, [this](const std::function<Status(KvReader&)>& body) { return store_.read_kv(body); });
}

Result<std::vector<std::optional<std::string>>> KvStateMachine::get_many(const std::vector<std::string>& keys) {
  std::vector<std::optional<std::string>> values(keys.size());
  Status status = store_.read_kv([&](KvReader& reader) -> Status {
    for (size_t i = 0; i < keys.size(); ++i) {
      // LMDB refuses such keys; none can have been stored.
      if (keys[i].empty() || keys[i].size() > kv_key_bytes_max) continue;
      KV_ASSIGN_OR_RETURN(values[i], reader.get(keys[i]));
    }
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return values;
}

std::string prefix_end(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (!end.empty()) end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

Result<KvRangeResult> KvStateMachine::range(const KvRange& range) {
  KvRangeResult result;
  if (!range.to.empty() && range.to <= range.from) return result;
  uint64_t bytes = 0;
  Status status = store_.read_kv([&](KvReader& reader) -> Status {
    return reader.scan(range.from, range.to, [&](std::string_view key, std::string_view value) {
      if (range.limit != 0 && result.count == range.limit) {
        result.more = true;
        return false;
      }
      if (range.count_only) {
        ++result.count;
        return true;
      }
      const uint64_t pair_bytes = key.size() + (range.keys_only ? 0 : value.size());
      if (result.count > 0 && bytes + pair_bytes > range.bytes_max) {
        result.more = true;
        return false;
      }
      bytes += pair_bytes;
      result.keys.emplace_back(key);
      if (!range.keys_only) result.values.emplace_back(value);
      ++result.count;
      return true;
    });
  });
  if (!status.is_ok()) return status;
  return result;
}

Result<std::pair<uint64_t, uint64_t>> KvStateMachine::applied() {
  std::pair<uint64_t, uint64_t> position;
  Status status = store_.read_kv([&](KvReader& reader) -> Status {
    KV_ASSIGN_OR_RETURN(position.first, reader.applied_index());
    KV_ASSIGN_OR_RETURN(position.second, reader.applied_term());
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return position;
}

Result<uint64_t> KvStateMachine::applied_index() {
  uint64_t index = 0;
  Status status = store_.read_kv([&](KvReader& reader) -> Status {
    KV_ASSIGN_OR_RETURN(index, reader.applied_index());
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return index;
}

}  // namespace keyval
