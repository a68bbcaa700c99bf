// The wal_writer actor (see wal_writer.h for the protocol).
#include "actors/wal_writer.h"

#include <algorithm>
#include <chrono>
#include <iostream>

#include "actors/node_scheduler.h"
#include "actors/record_batch.h"
#include "storage/codec.h"
#include "storage/wal_format.h"

namespace keyval {
namespace {

struct Waiter {
  caf::typed_response_promise<uint64_t> promise;
  uint64_t index;  // what the requester is told is durable
};

struct WalWriterState {
  std::shared_ptr<Wal> wal;
  store_indexer_actor indexer;
  WalWriterConfig config;
  std::vector<Waiter> waiting;    // answered at the next group commit
  std::vector<Record> to_index;   // handed to the indexer once durable
  bool to_index_has_snapshot = false;  // to_index holds a snapshot record (after_group)
  uint64_t queued_bytes = 0;
  bool sync_scheduled = false;
  bool index_scheduled = false;  // an index_atom to itself is on its way
  uint32_t sync_deferrals = 0;  // times the pending group commit let queued requests join it
  uint64_t group_commits = 0;
  uint64_t records = 0;
  uint64_t group_entries = 0;  // log entries in the group being gathered (for the metrics)
  Status failure;

  static inline const char* name = "wal_writer";
};

using Self = wal_writer_actor::stateful_pointer<WalWriterState>;

// Fail-stop: from the first failed write or sync on, nothing is acknowledged again. The
// actor stays up answering every request with that failure (so each requester learns why)
// and the node's owner stops the node when it sees it.
void fail_stop(Self self, const std::string& what, const Status& status) {
  auto& state = self->state;
  if (state.failure.is_ok()) {
    state.failure = status;
    std::string line = "wal_writer: stopped, " + what + ": " + status.to_string();
    if (state.config.log) state.config.log(line);
    else std::cerr << line << std::endl;
  }
  for (Waiter& waiter : state.waiting) waiter.promise.deliver(to_error(state.failure));
  state.waiting.clear();
  state.to_index.clear();
  state.to_index_has_snapshot = false;
}

// Checks the indices of a batch before anything is appended, so a bad request leaves no trace.
Status assign_and_check(const Wal& wal, std::vector<Record>& records) {
  uint64_t next = wal.next_index();
  bool predictable = true;  // a snapshot record may reset the log: the WAL checks what follows it
  for (Record& record : records) {
    if (record.is_log_entry() && predictable) {
      if (record.index == 0) record.index = next;
      if (record.index != next) {
        return Status::invalid_argument("persist of entry " + std::to_string(record.index) + ", expected " +
                                        std::to_string(next));
      }
      ++next;
    } else if (record.type == EntryType::truncate && predictable) {
      if (record.index >= next) {
        return Status::invalid_argument("truncate after " + std::to_string(record.index) + ", but the log ends at " +
                                        std::to_string(next - 1));
      }
      next = record.index + 1;
    } else if (record.type == EntryType::snapshot) {
      predictable = false;
    }
  }
  return Status::ok();
}

Status append_records(Wal& wal, std::vector<Record>& records) {
  for (Record& record : records) {
    switch (record.type) {
      case EntryType::log:
      case EntryType::configuration:
        KV_RETURN_IF_ERROR(wal.append(record.log_entry()));  // the entry's frame, written as it is
        break;
      case EntryType::truncate:
        KV_RETURN_IF_ERROR(wal.truncate_suffix_after(record.index));
        break;
      case EntryType::metadata: {
        KV_ASSIGN_OR_RETURN(Metadata metadata, decode_metadata(record.payload.data(), record.payload.size(), "persist"));
        KV_RETURN_IF_ERROR(wal.save_metadata(metadata));
        break;
      }
      case EntryType::snapshot: {
        KV_ASSIGN_OR_RETURN(SnapshotMetadata snapshot,
                            decode_snapshot_metadata(record.payload.data(), record.payload.size(), "persist"));
        KV_RETURN_IF_ERROR(wal.save_snapshot(snapshot));
        break;
      }
      case EntryType::seal:  // the WAL's own record (Wal::sync writes it); decode_records refuses it
        return Status::invalid_argument("persist of a seal record: the WAL writes its seals itself");
    }
  }
  return Status::ok();
}

caf::result<uint64_t> on_persist(Self self, Frame& frame) {
  auto& state = self->state;
  if (!state.failure.is_ok()) return to_error(state.failure);
  if (state.queued_bytes + frame.bytes.size() > state.config.queue_bytes_max && !state.waiting.empty()) {
    return to_error(Status::busy("wal_writer queue holds " + std::to_string(state.queued_bytes) +
                                 " unsynced bytes (bound " + std::to_string(state.config.queue_bytes_max) + ")"));
  }
  auto records = decode_record_batch(frame.bytes, "persist request");
  if (!records.is_ok()) return to_error(records.status());
  Status checked = assign_and_check(*state.wal, *records);
  if (!checked.is_ok()) return to_error(checked);
  Status appended = append_records(*state.wal, *records);
  if (!appended.is_ok()) {
    // The batch was checked, so this is the WAL failing (or a snapshot reset breaking the order).
    if (appended.code() == Code::invalid_argument) return to_error(appended);
    fail_stop(self, "WAL append failed", appended);
    return to_error(appended);
  }
  uint64_t reply_index = state.wal->last_index();
  for (const Record& record : *records) {
    if (record.is_log_entry()) reply_index = record.index;
  }
  state.records += records->size();
  state.queued_bytes += frame.bytes.size();
  if (state.config.metrics) {
    uint64_t bytes = 0;
    for (const Record& record : *records) {
      if (record.is_log_entry()) ++state.group_entries;
      bytes += wal_format::record_bytes(record.bytes().size());
    }
    state.config.metrics->wal_written_bytes.add(bytes);
  }
  for (Record& record : *records) {
    state.to_index_has_snapshot = state.to_index_has_snapshot || record.type == EntryType::snapshot;
    state.to_index.push_back(std::move(record));
  }
  auto promise = self->make_response_promise<uint64_t>();
  state.waiting.push_back(Waiter{promise, reply_index});
  if (!state.sync_scheduled) {
    state.sync_scheduled = true;
    self->send(self, group_sync_atom_v);
  }
  return promise;
}

// WAL segments may go once LMDB holds their entries durably AND the base snapshot covers
// them: LMDB is rebuilt from the snapshot and the WAL after a power cut (storage/recovery.h),
// so the WAL keeps everything after the snapshot whatever LMDB has synced.
uint64_t releasable_through(const Wal& wal, uint64_t lmdb_durable_index) {
  std::optional<SnapshotMetadata> snapshot = wal.snapshot();
  uint64_t snapshot_index = snapshot ? snapshot->last_included_index : 0;
  return std::min(lmdb_durable_index, snapshot_index);
}

void hand_to_indexer(Self self) {
  auto& state = self->state;
  if (state.to_index.empty()) return;
  Frame frame{encode_record_batch(state.to_index)};
  state.to_index.clear();
  state.to_index_has_snapshot = false;
  self->request(state.indexer, caf::infinite, index_atom_v, std::move(frame))
      .then(
          [self](uint64_t lmdb_durable_index) {
            if (lmdb_durable_index == 0 || !self->state.failure.is_ok()) return;
            uint64_t through = releasable_through(*self->state.wal, lmdb_durable_index);
            if (through == 0) return;
            auto dropped = self->state.wal->drop_segments_through(through);
            if (!dropped.is_ok()) fail_stop(self, "dropping WAL segments failed", dropped.status());
          },
          [self](caf::error& error) { fail_stop(self, "store_indexer failed", to_status(error)); });
}

// After a group commit: hand the batch over if it is full, else make sure a hand-off comes.
// A snapshot record goes at once: recovery falls back on LMDB's copy of it when a damaged WAL
// lost it (storage/recovery.cc), and the older snapshot file goes once the record is durable.
void after_group(Self self) {
  auto& state = self->state;
  if (state.to_index.empty()) return;
  if (state.to_index_has_snapshot || state.to_index.size() >= state.config.index_batch_records ||
      state.config.index_delay.count() <= 0) {
    return hand_to_indexer(self);
  }
  if (state.index_scheduled) return;
  state.index_scheduled = true;
  self->delayed_send(self, state.config.index_delay, index_atom_v);
}

void on_group_sync(Self self) {
  auto& state = self->state;
  // Requests already in the mailbox join this group: one fdatasync for all of them.
  if (!self->mailbox().empty() && state.sync_deferrals < state.config.group_deferrals_max &&
      state.queued_bytes < state.config.queue_bytes_max / 2) {
    ++state.sync_deferrals;
    self->send(self, group_sync_atom_v);
    return;
  }
  state.sync_deferrals = 0;
  state.sync_scheduled = false;
  if (!state.failure.is_ok() || state.waiting.empty()) return;
  const auto sync_start = std::chrono::steady_clock::now();
  Status synced = state.wal->sync();
  if (!synced.is_ok()) return fail_stop(self, "WAL sync failed", synced);
  ++state.group_commits;
  if (state.config.metrics) {
    state.config.metrics->wal_fsync_seconds.observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - sync_start).count());
    state.config.metrics->wal_group_entries.observe(static_cast<double>(state.group_entries));
  }
  state.group_entries = 0;
  for (Waiter& waiter : state.waiting) waiter.promise.deliver(waiter.index);
  state.waiting.clear();
  state.queued_bytes = 0;
  after_group(self);
  // Between groups: get the next segment ready so rotation never waits for allocation.
  Status prepared = state.wal->prepare_next_segment();
  if (!prepared.is_ok()) fail_stop(self, "preparing the next WAL segment failed", prepared);
}

caf::result<uint64_t> on_checkpoint(Self self) {
  if (!self->state.failure.is_ok()) return to_error(self->state.failure);
  hand_to_indexer(self);  // the checkpoint covers every durable record
  auto promise = self->make_response_promise<uint64_t>();
  self->request(self->state.indexer, caf::infinite, checkpoint_atom_v)
      .then(
          [self, promise](uint64_t lmdb_durable_index) mutable {
            auto dropped = self->state.wal->drop_segments_through(releasable_through(*self->state.wal, lmdb_durable_index));
            if (!dropped.is_ok()) {
              promise.deliver(to_error(dropped.status()));
              return fail_stop(self, "dropping WAL segments failed", dropped.status());
            }
            promise.deliver(lmdb_durable_index);
          },
          [promise](caf::error& error) mutable { promise.deliver(std::move(error)); });
  return promise;
}

wal_writer_actor::behavior_type wal_writer(Self self, std::shared_ptr<Wal> wal, store_indexer_actor indexer,
                                           WalWriterConfig config) {
  self->state.wal = std::move(wal);
  self->state.indexer = std::move(indexer);
  self->state.config = config;
  return {
      [self](persist_atom, Frame& frame) { return on_persist(self, frame); },
      [self](group_sync_atom) { on_group_sync(self); },
      [self](index_atom) {
        self->state.index_scheduled = false;
        hand_to_indexer(self);
      },
      [self](checkpoint_atom) { return on_checkpoint(self); },
      [self](compact_atom, uint64_t index) -> caf::result<uint64_t, uint64_t> {
        auto& state = self->state;
        if (!state.failure.is_ok()) return to_error(state.failure);
        // Only what the WAL's own snapshot record covers: a request naming a snapshot whose
        // record is not durable yet releases nothing it would still need.
        std::optional<SnapshotMetadata> snapshot = state.wal->snapshot();
        uint64_t through = std::min(index, snapshot ? snapshot->last_included_index : 0);
        if (through == 0) return {uint64_t{0}, state.wal->first_index()};
        auto dropped = state.wal->drop_segments_through(through);
        if (!dropped.is_ok()) {
          fail_stop(self, "dropping WAL segments failed", dropped.status());
          return to_error(dropped.status());
        }
        return {*dropped, state.wal->first_index()};
      },
      [self](stats_atom) -> caf::result<uint64_t, uint64_t, uint64_t, uint64_t> {
        auto& state = self->state;
        return {state.wal->last_index(), state.wal->synced_index(), state.group_commits, state.records};
      },
  };
}

}  // namespace

wal_writer_actor spawn_wal_writer(caf::actor_system& system, std::shared_ptr<Wal> wal,
                                  store_indexer_actor indexer, const WalWriterConfig& config, bool detached) {
  if (detached) return spawn_on_own_thread(system, "kv.wal", wal_writer, std::move(wal), std::move(indexer), config);
  return system.spawn(wal_writer, std::move(wal), std::move(indexer), config);
}

}  // namespace keyval
