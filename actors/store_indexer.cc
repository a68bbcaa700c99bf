// The store_indexer actor (see store_indexer.h).
#include "actors/store_indexer.h"

#include <iostream>
#include <algorithm>

#include "actors/client_protocol.h"
#include "actors/record_batch.h"
#include "storage/codec.h"
#include "storage/kv_state_machine.h"
#include "storage/lmdb_state.h"
#include "storage/snapshot.h"
#include "storage/snapshot_file.h"

namespace keyval {
namespace {

struct StoreIndexerState {
  std::shared_ptr<Store> store;
  std::unique_ptr<KvStateMachine> kv;  // the node's state machine, on the same environment
  StoreIndexerConfig config;
  uint64_t indexed_index = 0;     // last log index applied to LMDB
  uint64_t unsynced_entries = 0;  // applied since the last LMDB sync
  Status failure;
  // Set with failure; shared with the exit hook, which runs after the state is gone.
  std::shared_ptr<bool> failed = std::make_shared<bool>(false);

  static inline const char* name = "store_indexer";
};

using Self = store_indexer_actor::stateful_pointer<StoreIndexerState>;

// Fail-stop, as in the wal_writer: every later request is answered with the first failure.
void fail_stop(Self self, const Status& status) {
  if (!self->state.failure.is_ok()) return;
  self->state.failure = status;
  *self->state.failed = true;
  std::string line = "store_indexer: stopped, LMDB failed: " + status.to_string();
  if (self->state.config.log) self->state.config.log(line);
  else std::cerr << line << std::endl;
}

// Raft §7, as Wal::save_snapshot does: a snapshot whose last entry the log holds with its
// term leaves the log alone; otherwise the snapshot replaced the whole log.
Status drop_log_a_snapshot_replaced(StoreIndexerState& state, const SnapshotMetadata& snapshot) {
  auto entry = state.store->load_entry(snapshot.last_included_index);
  if (entry.is_ok() && entry->term == snapshot.last_included_term) return Status::ok();
  if (!entry.is_ok() && entry.status().code() != Code::not_found) return entry.status();
  KV_RETURN_IF_ERROR(state.store->delete_suffix_after(0));
  state.indexed_index = snapshot.last_included_index;
  return Status::ok();
}

Status apply_records(StoreIndexerState& state, std::vector<Record>& records) {
  std::vector<Entry> batch;
  auto flush = [&]() -> Status {
    if (batch.empty()) return Status::ok();
    KV_RETURN_IF_ERROR(state.store->save_entries(batch));
    state.indexed_index = batch.back().index;
    state.unsynced_entries += batch.size();
    batch.clear();
    return Status::ok();
  };
  for (Record& record : records) {
    if (record.is_log_entry()) {
      batch.push_back(Entry{record.index, record.term, std::move(record.payload), record.type});
      continue;
    }
    KV_RETURN_IF_ERROR(flush());
    if (record.type == EntryType::truncate) {
      KV_RETURN_IF_ERROR(state.store->delete_suffix_after(record.index));
      state.indexed_index = std::min(state.indexed_index, record.index);
    } else if (record.type == EntryType::metadata) {
      KV_ASSIGN_OR_RETURN(Metadata metadata, decode_metadata(record.payload.data(), record.payload.size(), "index"));
      KV_RETURN_IF_ERROR(state.store->save_metadata(metadata));
    } else {
      KV_ASSIGN_OR_RETURN(SnapshotMetadata snapshot,
                          decode_snapshot_metadata(record.payload.data(), record.payload.size(), "index"));
      KV_RETURN_IF_ERROR(drop_log_a_snapshot_replaced(state, snapshot));
      KV_RETURN_IF_ERROR(state.store->save_snapshot_metadata(snapshot));
    }
  }
  return flush();
}

// Syncs LMDB with its position recorded; returns the index it is durable through.
Result<uint64_t> sync_store(StoreIndexerState& state) {
  KV_ASSIGN_OR_RETURN(StorePositions positions, state.store->load_positions());
  positions.indexed_index = state.indexed_index;
  KV_RETURN_IF_ERROR(state.store->save_positions(positions));
  KV_RETURN_IF_ERROR(state.store->sync());
  state.unsynced_entries = 0;
  return state.indexed_index;
}

caf::result<uint64_t> on_index(Self self, Frame& frame) {
  auto& state = self->state;
  if (!state.failure.is_ok()) return to_error(state.failure);
  auto records = decode_record_batch(frame.bytes, "index request");
  if (!records.is_ok()) return to_error(records.status());
  Status applied = apply_records(state, *records);
  if (!applied.is_ok()) {
    fail_stop(self, applied);
    return to_error(applied);
  }
  if (state.unsynced_entries < state.config.sync_every_entries) return uint64_t{0};
  auto synced = sync_store(state);
  if (!synced.is_ok()) {
    fail_stop(self, synced.status());
    return to_error(synced.status());
  }
  return *synced;
}

caf::result<Frame> on_read(Self self, uint64_t first, uint64_t last) {
  if (!self->state.failure.is_ok()) return to_error(self->state.failure);
  auto entries = self->state.store->load_range(first, last, self->state.config.read_bytes_max);
  if (!entries.is_ok()) return to_error(entries.status());
  return Frame{encode_entries(*entries)};
}

// Applies committed entries to the kv state machine. A failure here is fail-stop too: an
// entry the state machine cannot apply would make this replica diverge from the others.
caf::result<Frame> on_kv_apply(Self self, Frame& frame) {
  auto& state = self->state;
  if (!state.failure.is_ok()) return to_error(state.failure);
  auto entries = decode_entries(frame.bytes, "kv apply request");
  if (!entries.is_ok()) return to_error(entries.status());
  auto results = state.kv->apply(*entries);
  if (!results.is_ok()) {
    fail_stop(self, results.status());
    return to_error(results.status());
  }
  return Frame{encode_results(*results)};
}

caf::result<bool, std::string> on_kv_get(Self self, const std::string& key) {
  if (!self->state.failure.is_ok()) return to_error(self->state.failure);
  auto value = self->state.kv->get(key);
  if (!value.is_ok()) return to_error(value.status());
  if (!value->has_value()) return {false, std::string()};
  return {true, std::move(**value)};
}

caf::result<Frame> on_kv_range(Self self, const Frame& frame) {
  if (!self->state.failure.is_ok()) return to_error(self->state.failure);
  auto request = decode_client_request(frame.bytes.data(), frame.bytes.size());
  if (!request.is_ok()) return to_error(request.status());
  KvRange range;
  range.from = request->key;
  range.to = request->range_end;
  range.limit = request->range_limit;
  range.bytes_max = request->range_bytes_max == 0 ? range_bytes_max : std::min(request->range_bytes_max, range_bytes_max);
  range.keys_only = request->keys_only;
  range.count_only = request->count_only;
  auto result = self->state.kv->range(range);
  if (!result.is_ok()) return to_error(result.status());
  ClientResponse response;
  response.request_id = request->request_id;
  response.keys = std::move(result->keys);
  response.values = std::move(result->values);
  response.range_count = result->count;
  response.more = result->more;
  return Frame{encode_client_response(response)};
}

caf::result<uint64_t> on_install(Self self, uint64_t index, uint64_t term) {
  auto& state = self->state;
  if (!state.failure.is_ok()) return to_error(state.failure);
  if (state.config.env == nullptr) return to_error(Status::invalid_argument("store_indexer: no snapshot directory"));
  SnapshotDirectory directory(*state.config.env, state.config.snapshot_directory);
  auto loaded = load_snapshot(*state.config.env, directory.path_for(index, term), *state.store);
  if (!loaded.is_ok()) {
    // The file was verified and published before the WAL named it: failing to load it now
    // is the disk failing under us. Fail-stop; recovery retries the load from the file.
    fail_stop(self, loaded.status());
    return to_error(loaded.status());
  }
  return loaded->keys;
}

caf::result<uint64_t> on_compact(Self self, uint64_t index) {
  auto& state = self->state;
  if (!state.failure.is_ok()) return to_error(state.failure);
  auto first = state.store->first_index();
  if (!first.is_ok()) return to_error(first.status());
  if (*first == 0 || *first > index) return uint64_t{0};
  uint64_t last_dropped = std::min(index, state.indexed_index);
  Status deleted = state.store->delete_prefix_through(last_dropped);
  if (!deleted.is_ok()) {
    fail_stop(self, deleted);
    return to_error(deleted);
  }
  return last_dropped >= *first ? last_dropped - *first + 1 : 0;
}

// A clean stop leaves LMDB synced and marked so: the next start may trust it after a reboot.
void on_stop(const std::shared_ptr<Store>& store, const StoreIndexerConfig& config, const caf::error& reason) {
  if (reason && reason != caf::exit_reason::user_shutdown && reason != caf::exit_reason::normal) return;
  if (config.env == nullptr || config.data_directory.empty()) return;
  if (!store->sync().is_ok()) return;
  Status marked = mark_lmdb_clean(*config.env, config.data_directory);
  if (!marked.is_ok() && config.log) config.log("store_indexer: could not mark LMDB clean: " + marked.to_string());
}

store_indexer_actor::behavior_type store_indexer(Self self, std::shared_ptr<Store> store, StoreIndexerConfig config) {
  self->state.store = std::move(store);
  self->state.kv = std::make_unique<KvStateMachine>(*self->state.store, config.kv);
  self->state.config = config;
  auto last = self->state.store->last_index();
  self->state.indexed_index = last.is_ok() ? *last : 0;
  self->attach_functor([store = self->state.store, failed = self->state.failed, config](const caf::error& reason) {
    if (!*failed) on_stop(store, config, reason);
  });
  return {
      [self](index_atom, Frame& frame) { return on_index(self, frame); },
      [self](read_atom, uint64_t first, uint64_t last) { return on_read(self, first, last); },
      [self](bounds_atom) -> caf::result<uint64_t, uint64_t> {
        auto first = self->state.store->first_index();
        auto last = self->state.store->last_index();
        if (!first.is_ok()) return to_error(first.status());
        if (!last.is_ok()) return to_error(last.status());
        return {*first, *last};
      },
      [self](checkpoint_atom) -> caf::result<uint64_t> {
        if (!self->state.failure.is_ok()) return to_error(self->state.failure);
        auto synced = sync_store(self->state);
        if (!synced.is_ok()) {
          fail_stop(self, synced.status());
          return to_error(synced.status());
        }
        return *synced;
      },
      [self](kv_apply_atom, Frame& frame) { return on_kv_apply(self, frame); },
      [self](kv_get_atom, const std::string& key) { return on_kv_get(self, key); },
      [self](kv_range_atom, const Frame& request) { return on_kv_range(self, request); },
      [self](kv_applied_atom) -> caf::result<uint64_t> {
        auto applied = self->state.kv->applied_index();
        if (!applied.is_ok()) return to_error(applied.status());
        return *applied;
      },
      [self](compact_atom, uint64_t index) { return on_compact(self, index); },
      [self](snapshot_install_atom, uint64_t index, uint64_t term) { return on_install(self, index, term); },
      [self](hash_atom) -> caf::result<uint64_t, uint64_t> {
        if (!self->state.failure.is_ok()) return to_error(self->state.failure);
        auto hashed = hash_state_machine(*self->state.store);
        if (!hashed.is_ok()) return to_error(hashed.status());
        return {hashed->first, hashed->second};
      },
  };
}

}  // namespace

store_indexer_actor spawn_store_indexer(caf::actor_system& system, std::shared_ptr<Store> store,
                                        const StoreIndexerConfig& config, bool detached) {
  if (detached) return system.spawn<caf::detached>(store_indexer, std::move(store), config);
  return system.spawn(store_indexer, std::move(store), config);
}

}  // namespace keyval
