// The persistence API the raft node builds on: persist metadata (durable before a
// vote is answered), persist entries (durable before they are acknowledged or
// counted), a batch of both (durable together, one group commit), load metadata
// (from the recovered state), load entries, sync, checkpoint.
//
// Persistence wraps the wal_writer and store_indexer handles; each call sends a
// request from the calling actor (`self`) and runs the callback with the result
// on that actor. BlockingPersistence does the same from outside any actor (tools,
// benchmarks, the crash-test child) with a scoped actor.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "actors/messages.h"
#include "actors/record_batch.h"
#include "actors/recovery_coordinator.h"

namespace keyval {

class Persistence {
 public:
  using DurableCallback = std::function<void(const Status&, uint64_t durable_index)>;
  using EntriesCallback = std::function<void(const Status&, std::vector<Entry>)>;

  Persistence(wal_writer_actor writer, store_indexer_actor indexer, RecoveredState recovered,
              snapshotter_actor snapshotter = {})
      : writer_(std::move(writer)),
        indexer_(std::move(indexer)),
        snapshotter_(std::move(snapshotter)),
        recovered_(std::move(recovered)) {}

  // The state recovered at start: current_term, voted_for, log bounds, snapshot.
  const RecoveredState& recovered() const { return recovered_; }
  const wal_writer_actor& writer() const { return writer_; }
  const store_indexer_actor& indexer() const { return indexer_; }
  const snapshotter_actor& snapshotter() const { return snapshotter_; }

  // Any records in order; `done` runs once they are durable (or failed).
  template <class Self>
  void persist(Self* self, const std::vector<Record>& records, DurableCallback done) const {
    self->request(writer_, caf::infinite, persist_atom_v, Frame{encode_record_batch(records)})
        .then([done](uint64_t index) { done(Status::ok(), index); },
              [done](caf::error& error) { done(to_status(error), 0); });
  }
  template <class Self>
  void persist_metadata(Self* self, const Metadata& metadata, DurableCallback done) const {
    persist(self, {Record::metadata(metadata)}, std::move(done));
  }
  template <class Self>
  void persist_entries(Self* self, const std::vector<Entry>& entries, DurableCallback done) const {
    persist(self, entry_records(entries), std::move(done));
  }
  // Everything up to now durable: the reply is the log's last index.
  template <class Self>
  void sync(Self* self, DurableCallback done) const {
    persist(self, {}, std::move(done));
  }
  template <class Self>
  void load_entries(Self* self, uint64_t first, uint64_t last, EntriesCallback done) const {
    self->request(indexer_, caf::infinite, read_atom_v, first, last)
        .then(
            [done](Frame& frame) {
              auto entries = decode_entries(frame.bytes, "read reply");
              if (!entries.is_ok()) return done(entries.status(), {});
              done(Status::ok(), std::move(entries).value());
            },
            [done](caf::error& error) { done(to_status(error), {}); });
  }

  static std::vector<Record> entry_records(const std::vector<Entry>& entries);
  // One group: optional truncation, optional metadata, then entries.
  // A snapshot record (an installed snapshot, §7) goes first: it resets the log the rest follows.
  static std::vector<Record> batch(std::optional<uint64_t> truncate_after, const std::optional<Metadata>& metadata,
                                   const std::vector<Entry>& entries,
                                   const std::optional<SnapshotMetadata>& snapshot = std::nullopt);

 private:
  wal_writer_actor writer_;
  store_indexer_actor indexer_;
  snapshotter_actor snapshotter_;
  RecoveredState recovered_;
};

// Blocking use from outside an actor. Not for use inside an actor's handler.
class BlockingPersistence {
 public:
  // Spawns the recovery_coordinator, recovers `config.data_directory`, returns the ready API.
  static Result<std::unique_ptr<BlockingPersistence>> start(caf::actor_system& system, const PersistenceConfig& config);

  const RecoveredState& recovered() const { return persistence_.recovered(); }
  const std::string& recovery_summary() const { return summary_; }
  const Persistence& persistence() const { return persistence_; }

  Result<uint64_t> persist(const std::vector<Record>& records);
  Result<uint64_t> persist_metadata(const Metadata& metadata) { return persist({Record::metadata(metadata)}); }
  Result<uint64_t> persist_entries(const std::vector<Entry>& entries) {
    return persist(Persistence::entry_records(entries));
  }
  Result<uint64_t> sync() { return persist({}); }
  Result<std::vector<Entry>> load_entries(uint64_t first, uint64_t last);
  Result<uint64_t> checkpoint();
  // Asks both actors to stop and waits until they have.
  void stop();

 private:
  BlockingPersistence(caf::actor_system& system, Persistence persistence, std::string summary)
      : system_(system), persistence_(std::move(persistence)), summary_(std::move(summary)) {}

  caf::actor_system& system_;
  Persistence persistence_;
  std::string summary_;
};

}  // namespace keyval
