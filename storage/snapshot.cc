// Taking, loading and hashing state machine snapshots (snapshot.h).
#include "storage/snapshot.h"

#include <memory>
#include <optional>

namespace keyval {
namespace {

const char* const take_purpose = "take";
constexpr uint64_t fnv_offset_basis = 14695981039346656037ull;
constexpr uint64_t fnv_prime = 1099511628211ull;

uint64_t fnv1a(uint64_t hash, const void* data, size_t bytes) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < bytes; ++i) hash = (hash ^ p[i]) * fnv_prime;
  return hash;
}

uint64_t fnv1a_length(uint64_t hash, uint64_t length) {
  uint8_t bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(length >> (8 * i));
  return fnv1a(hash, bytes, sizeof(bytes));
}

}  // namespace

Result<SnapshotSummary> take_snapshot(Env& env, Store& store, SnapshotDirectory& directory,
                                      const std::vector<Member>& configuration) {
  KV_RETURN_IF_ERROR(directory.create());
  std::unique_ptr<SnapshotWriter> writer;
  std::string temp_path;
  std::optional<SnapshotSummary> summary;
  StateMachineVisitor visitor;
  // The applied position comes first: it names the file before any record is written.
  visitor.applied = [&](uint64_t index, uint64_t term) -> Status {
    if (index == 0) return Status::invalid_argument("take a snapshot of " + store.directory() + ": nothing applied yet");
    temp_path = directory.temp_path_for(index, term, take_purpose);
    KV_ASSIGN_OR_RETURN(writer, SnapshotWriter::create(env, temp_path, SnapshotHeader{index, term, configuration}));
    return Status::ok();
  };
  visitor.kv = [&](std::string_view key, std::string_view value) { return writer->add_kv(key, value); };
  visitor.session = [&](uint64_t client_id, const StoredSession& session) {
    return writer->add_session(client_id, session);
  };
  Status status = store.read_state_machine(visitor);
  if (status.is_ok() && writer == nullptr) {
    status = Status::invalid_argument("take a snapshot of " + store.directory() + ": the store has no state machine");
  }
  if (status.is_ok()) {
    auto finished = writer->finish();
    if (finished.is_ok()) summary = *finished;
    status = finished.status();
  }
  writer.reset();  // closes the file before it is renamed or removed
  if (status.is_ok()) {
    status = directory.publish(temp_path, summary->header.index, summary->header.term);
  }
  if (!status.is_ok()) {
    // Best effort: the error that stopped the snapshot is the one to report; a temporary file
    // that cannot be removed now is removed at the next recovery.
    if (!temp_path.empty() && env.exists(temp_path)) (void)env.remove(temp_path);
    return status;
  }
  return *summary;
}

Result<SnapshotSummary> load_snapshot(Env& env, const std::string& path, Store& store) {
  KV_ASSIGN_OR_RETURN(std::unique_ptr<SnapshotReader> reader, SnapshotReader::open(env, path));
  SnapshotSummary summary;
  const SnapshotHeader header = reader->header();
  // Restartable (replace_state_machine may run it again after growing the map): read_all
  // reads the file from its start every time.
  KV_RETURN_IF_ERROR(store.replace_state_machine(header.index, header.term, [&](KvWriter& writer) -> Status {
    return reader->read_all(
        [&](std::string_view key, std::string_view value) {
          return writer.put(std::string(key), std::string(value));
        },
        [&](uint64_t client_id, const StoredSession& session) { return writer.save_session(client_id, session); },
        &summary);
  }));
  return summary;
}

Result<std::pair<uint64_t, uint64_t>> hash_state_machine(Store& store) {
  uint64_t applied = 0;
  uint64_t hash = fnv_offset_basis;
  StateMachineVisitor visitor;
  visitor.applied = [&](uint64_t index, uint64_t) {
    applied = index;
    return Status::ok();
  };
  visitor.kv = [&](std::string_view key, std::string_view value) {
    hash = fnv1a(fnv1a_length(hash, key.size()), key.data(), key.size());
    hash = fnv1a(fnv1a_length(hash, value.size()), value.data(), value.size());
    return Status::ok();
  };
  KV_RETURN_IF_ERROR(store.read_state_machine(visitor));
  return std::make_pair(applied, hash);
}

}  // namespace keyval
