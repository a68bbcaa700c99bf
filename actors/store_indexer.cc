// The store_indexer actor (see store_indexer.h).
#include "actors/store_indexer.h"

#include <iostream>
#include <algorithm>

#include "actors/node_scheduler.h"
#include "actors/record_batch.h"
#include "storage/codec.h"

namespace keyval {
namespace {

struct StoreIndexerState {
  std::shared_ptr<Store> store;
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
      batch.push_back(record.log_entry());  // its frame is what LMDB stores
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
  // Only its own field: the state machine actor writes the applied index meanwhile.
  KV_RETURN_IF_ERROR(state.store->save_indexed_index(state.indexed_index));
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

store_indexer_actor::behavior_type store_indexer(Self self, std::shared_ptr<Store> store, StoreIndexerConfig config) {
  self->state.store = std::move(store);
  self->state.config = config;
  auto last = self->state.store->last_index();
  self->state.indexed_index = last.is_ok() ? *last : 0;
  // A clean stop leaves LMDB synced and marked so, once the state machine stopped too.
  self->attach_functor([clean_stop = config.clean_stop, failed = self->state.failed](const caf::error& reason) {
    if (clean_stop) clean_stop->writer_stopped(reason, *failed);
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
      [self](compact_atom, uint64_t index) { return on_compact(self, index); },
  };
}

}  // namespace

store_indexer_actor spawn_store_indexer(caf::actor_system& system, std::shared_ptr<Store> store,
                                        const StoreIndexerConfig& config, bool detached) {
  if (config.clean_stop) config.clean_stop->add_writer();  // reported by the exit hook
  if (detached) return spawn_on_own_thread(system, "kv.indexer", store_indexer, std::move(store), config);
  return system.spawn(store_indexer, std::move(store), config);
}

}  // namespace keyval
