// Persistence helpers and the blocking facade.
#include "actors/persistence.h"

namespace keyval {

std::vector<Record> Persistence::entry_records(const std::vector<Entry>& entries) {
  std::vector<Record> records;
  records.reserve(entries.size());
  for (const Entry& entry : entries) records.push_back(Record::entry_of(entry));
  return records;
}

std::vector<Record> Persistence::batch(std::optional<uint64_t> truncate_after, const std::optional<Metadata>& metadata,
                                       const std::vector<Entry>& entries,
                                       const std::optional<SnapshotMetadata>& snapshot) {
  std::vector<Record> records;
  if (snapshot) records.push_back(Record::snapshot(*snapshot));
  if (truncate_after) records.push_back(Record::truncate_after(*truncate_after));
  if (metadata) records.push_back(Record::metadata(*metadata));
  for (Record& record : entry_records(entries)) records.push_back(std::move(record));
  return records;
}

Result<std::unique_ptr<BlockingPersistence>> BlockingPersistence::start(caf::actor_system& system,
                                                                        const PersistenceConfig& config) {
  auto coordinator = spawn_recovery_coordinator(system, config);
  caf::scoped_actor self{system};
  Status status;
  std::unique_ptr<BlockingPersistence> result;
  self->request(coordinator, caf::infinite, recover_atom_v)
      .receive(
          [&](Frame& frame, wal_writer_actor& writer, store_indexer_actor& indexer, snapshotter_actor& snapshotter,
              SharedStore&) {
            std::string summary;
            auto state = decode_recovered_state(frame.bytes, &summary);
            if (!state.is_ok()) {
              status = state.status();
              return;
            }
            result.reset(new BlockingPersistence(system, Persistence(writer, indexer, *state, snapshotter), summary));
          },
          [&](caf::error& error) { status = to_status(error); });
  self->send_exit(coordinator, caf::exit_reason::user_shutdown);
  if (!status.is_ok()) return status;
  return result;
}

Result<uint64_t> BlockingPersistence::persist(const std::vector<Record>& records) {
  caf::scoped_actor self{system_};
  Result<uint64_t> result = Status::io_error("no reply from wal_writer");
  self->request(persistence_.writer(), caf::infinite, persist_atom_v, Frame{encode_record_batch(records)})
      .receive([&](uint64_t index) { result = index; }, [&](caf::error& error) { result = to_status(error); });
  return result;
}

Result<std::vector<Entry>> BlockingPersistence::load_entries(uint64_t first, uint64_t last) {
  caf::scoped_actor self{system_};
  Result<std::vector<Entry>> result = Status::io_error("no reply from store_indexer");
  self->request(persistence_.indexer(), caf::infinite, read_atom_v, first, last)
      .receive([&](Frame& frame) { result = decode_entries(frame.bytes, "read reply"); },
               [&](caf::error& error) { result = to_status(error); });
  return result;
}

Result<uint64_t> BlockingPersistence::checkpoint() {
  caf::scoped_actor self{system_};
  Result<uint64_t> result = Status::io_error("no reply from wal_writer");
  self->request(persistence_.writer(), caf::infinite, checkpoint_atom_v)
      .receive([&](uint64_t index) { result = index; }, [&](caf::error& error) { result = to_status(error); });
  return result;
}

void BlockingPersistence::stop() {
  caf::scoped_actor self{system_};
  for (const caf::actor& actor : {caf::actor_cast<caf::actor>(persistence_.snapshotter()),
                                  caf::actor_cast<caf::actor>(persistence_.writer()),
                                  caf::actor_cast<caf::actor>(persistence_.indexer())}) {
    if (!actor) continue;
    self->send_exit(actor, caf::exit_reason::user_shutdown);
    self->wait_for(actor);
  }
}

}  // namespace keyval
