// The snapshotter actor (see snapshotter.h).
#include "actors/snapshotter.h"

#include <chrono>
#include <cstdio>
#include <optional>

#include "actors/node_scheduler.h"
#include "storage/codec.h"
#include "storage/snapshot.h"
#include "storage/snapshot_file.h"

namespace keyval {
namespace {

// The snapshot being received, written as its bytes arrive.
struct Incoming {
  uint64_t index = 0;
  uint64_t term = 0;
  std::string temp_path;
  std::unique_ptr<File> file;
  uint64_t next_offset = 0;
  caf::actor_clock::time_point last_chunk_at;  // started, or the last chunk written
};

// A published snapshot kept open between reads of one transfer.
struct OpenForRead {
  uint64_t index = 0;
  uint64_t term = 0;
  std::unique_ptr<File> file;
  uint64_t size = 0;
};

struct SnapshotterState {
  std::shared_ptr<Store> store;
  SnapshotterConfig config;
  std::unique_ptr<SnapshotDirectory> directory;
  std::optional<Incoming> incoming;
  std::optional<OpenForRead> reading;

  static inline const char* name = "snapshotter";
};

using Self = snapshotter_actor::stateful_pointer<SnapshotterState>;

void log_line(SnapshotterState& state, const std::string& line) {
  if (state.config.log) state.config.log("snapshotter: " + line);
}

Frame metadata_frame(const SnapshotHeader& header) {
  return Frame{encode_snapshot_metadata(SnapshotMetadata{header.index, header.term, header.configuration})};
}

caf::result<Frame, uint64_t, uint64_t> on_take(Self self, const Frame& configuration) {
  auto& state = self->state;
  auto members = decode_snapshot_metadata(configuration.bytes.data(), configuration.bytes.size(), "take request");
  if (!members.is_ok()) return to_error(members.status());
  state.reading.reset();  // the new file may replace one of the same name (a damaged one moved aside)
  auto summary = take_snapshot(*state.config.env, *state.store, *state.directory, members->configuration);
  if (!summary.is_ok()) {
    log_line(state, "taking a snapshot failed (the previous one stays): " + summary.status().to_string());
    return to_error(summary.status());
  }
  return {metadata_frame(summary->header), summary->file_bytes, summary->keys};
}

Status open_for_read(SnapshotterState& state, uint64_t index, uint64_t term) {
  if (state.reading && state.reading->index == index && state.reading->term == term) return Status::ok();
  state.reading.reset();
  KV_ASSIGN_OR_RETURN(auto file, state.config.env->open_file(state.directory->path_for(index, term), OpenMode::read_only));
  KV_ASSIGN_OR_RETURN(uint64_t size, file->size());
  state.reading = OpenForRead{index, term, std::move(file), size};
  return Status::ok();
}

// Every transfer and every backup reads from offset 0 first (a follower that refused the file
// asks for offset 0 again): the whole file is checked then, so a published snapshot damaged at
// rest (a flipped bit, a bad sector) is not streamed to a follower, which would refuse it at its
// end and ask for it again, forever. The damaged file is moved aside (kept for the operator)
// and the reply is corruption: the raft node takes a new snapshot of its state machine, which
// LMDB still holds, and sends that one.
Status check_before_sending(SnapshotterState& state, uint64_t index, uint64_t term) {
  state.reading.reset();  // reopened after the check: the file may have been replaced since
  auto verified = verify_snapshot_file(*state.config.env, state.directory->path_for(index, term));
  if (verified.is_ok() && verified->header.index == index && verified->header.term == term) return Status::ok();
  Status damage = verified.is_ok() ? Status::corruption("snapshot " + state.directory->path_for(index, term) +
                                                        " names index " + std::to_string(verified->header.index) +
                                                        " term " + std::to_string(verified->header.term))
                                   : verified.status();
  if (damage.code() != Code::corruption) return damage;  // missing or unreadable: not moved
  Status moved = state.directory->move_aside(index, term);
  log_line(state, "published snapshot damaged: " + damage.message() + "; " +
                      (moved.is_ok() ? "moved aside to " + state.directory->damaged_path_for(index, term)
                                     : "moving it aside failed: " + moved.to_string()) +
                      "; a new snapshot replaces it");
  return damage;
}

caf::result<Frame, uint64_t> on_read(Self self, uint64_t index, uint64_t term, uint64_t offset, uint64_t bytes_max) {
  auto& state = self->state;
  if (offset == 0) {
    Status checked = check_before_sending(state, index, term);
    if (!checked.is_ok()) return to_error(checked);
  }
  Status opened = open_for_read(state, index, term);
  if (!opened.is_ok()) return to_error(opened);
  OpenForRead& reading = *state.reading;
  if (offset > reading.size) {
    return to_error(Status::invalid_argument("snapshot read at offset " + std::to_string(offset) + " past its end (" +
                                             std::to_string(reading.size) + " bytes)"));
  }
  uint64_t bytes = std::min({bytes_max, state.config.read_bytes_max, reading.size - offset});
  Frame frame;
  frame.bytes.resize(bytes);
  auto read = reading.file->read_at(offset, frame.bytes.data(), bytes);
  if (!read.is_ok()) {
    state.reading.reset();
    return to_error(read.status());
  }
  frame.bytes.resize(*read);
  return {std::move(frame), reading.size};
}

void drop_incoming(SnapshotterState& state) {
  if (!state.incoming) return;
  std::string path = state.incoming->temp_path;
  state.incoming.reset();
  (void)state.config.env->remove(path);
}

Status start_incoming(SnapshotterState& state, uint64_t index, uint64_t term) {
  drop_incoming(state);
  Incoming incoming;
  incoming.index = index;
  incoming.term = term;
  incoming.temp_path = state.directory->temp_path_for(index, term, "receive");
  if (state.config.env->exists(incoming.temp_path)) KV_RETURN_IF_ERROR(state.config.env->remove(incoming.temp_path));
  KV_ASSIGN_OR_RETURN(incoming.file, state.config.env->open_file(incoming.temp_path, OpenMode::create_new));
  state.incoming = std::move(incoming);
  return Status::ok();
}

// Before every message: an incoming snapshot idle past incoming_idle_max is dropped.
void drop_idle_incoming(Self self) {
  auto& state = self->state;
  if (!state.incoming || self->clock().now() - state.incoming->last_chunk_at < state.config.incoming_idle_max) return;
  log_line(state, "incoming snapshot " + std::to_string(state.incoming->index) + " dropped: no chunk for " +
                      std::to_string(state.config.incoming_idle_max.count()) + " ms after " +
                      std::to_string(state.incoming->next_offset) + " bytes (its sender gave it up)");
  drop_incoming(state);
}

caf::result<uint64_t> on_write(Self self, uint64_t index, uint64_t term, uint64_t offset, const Frame& frame) {
  auto& state = self->state;
  const bool same = state.incoming && state.incoming->index == index && state.incoming->term == term;
  if (offset == 0 && (!same || state.incoming->next_offset != 0)) {
    Status started = start_incoming(state, index, term);
    if (!started.is_ok()) return to_error(started);
    state.incoming->last_chunk_at = self->clock().now();
  } else if (!same) {
    return uint64_t{0};  // another snapshot (or none) in progress: the sender starts over
  }
  Incoming& incoming = *state.incoming;
  // Chunks may repeat or arrive out of order (a lost one, a retransmission): only the one
  // that continues the file is written; the reply tells the sender where to resume.
  if (offset != incoming.next_offset) return incoming.next_offset;
  Status written = incoming.file->write_at(offset, frame.bytes.data(), frame.bytes.size());
  if (!written.is_ok()) {
    log_line(state, "receiving snapshot " + std::to_string(index) + " failed: " + written.to_string());
    drop_incoming(state);
    return to_error(written);
  }
  incoming.next_offset += frame.bytes.size();
  incoming.last_chunk_at = self->clock().now();
  return incoming.next_offset;
}

caf::result<Frame, uint64_t> on_finish(Self self, uint64_t index, uint64_t term) {
  auto& state = self->state;
  if (!state.incoming || state.incoming->index != index || state.incoming->term != term) {
    return to_error(Status::invalid_argument("no incoming snapshot " + std::to_string(index) + " (term " +
                                             std::to_string(term) + ") to finish"));
  }
  auto fail = [&](const Status& status) -> caf::result<Frame, uint64_t> {
    log_line(state, "incoming snapshot " + std::to_string(index) + " refused: " + status.to_string());
    drop_incoming(state);
    return to_error(status);
  };
  Status synced = state.incoming->file->sync_data();
  if (!synced.is_ok()) return fail(synced);
  state.incoming->file.reset();
  auto summary = verify_snapshot_file(*state.config.env, state.incoming->temp_path);
  if (!summary.is_ok()) return fail(summary.status());
  if (summary->header.index != index || summary->header.term != term) {
    return fail(Status::corruption("incoming snapshot names index " + std::to_string(summary->header.index) +
                                   " term " + std::to_string(summary->header.term) + ", the transfer said " +
                                   std::to_string(index) + " term " + std::to_string(term)));
  }
  Status published = state.directory->publish(state.incoming->temp_path, index, term);
  if (!published.is_ok()) return fail(published);
  state.incoming.reset();
  return {metadata_frame(summary->header), summary->keys};
}

// Only once the WAL names the base: until then recovery may still need the previous one.
caf::result<uint64_t> on_release(Self self, uint64_t base_index, uint64_t base_term) {
  auto& state = self->state;
  auto published = state.directory->list();
  if (!published.is_ok()) return to_error(published.status());
  uint64_t removed = 0;
  for (const auto& [index, term] : *published) {
    if (index > base_index || (index == base_index && term == base_term)) continue;
    if (state.reading && state.reading->index == index && state.reading->term == term) state.reading.reset();
    Status status = state.config.env->remove(state.directory->path_for(index, term));
    if (!status.is_ok()) {
      log_line(state, "removing an old snapshot failed: " + status.to_string());
      continue;
    }
    ++removed;
  }
  return removed;
}

snapshotter_actor::behavior_type snapshotter(Self self, std::shared_ptr<Store> store, SnapshotterConfig config) {
  self->state.store = std::move(store);
  self->state.directory = std::make_unique<SnapshotDirectory>(*config.env, config.directory);
  self->state.config = std::move(config);
  Status created = self->state.directory->create();
  if (!created.is_ok()) log_line(self->state, "cannot create " + self->state.config.directory + ": " + created.to_string());
  return {
      [self](snapshot_take_atom, const Frame& configuration) {
        drop_idle_incoming(self);
        return on_take(self, configuration);
      },
      [self](snapshot_read_atom, uint64_t index, uint64_t term, uint64_t offset, uint64_t bytes_max) {
        drop_idle_incoming(self);
        return on_read(self, index, term, offset, bytes_max);
      },
      [self](snapshot_write_atom, uint64_t index, uint64_t term, uint64_t offset, const Frame& frame) {
        drop_idle_incoming(self);
        return on_write(self, index, term, offset, frame);
      },
      [self](snapshot_finish_atom, uint64_t index, uint64_t term) {
        drop_idle_incoming(self);
        return on_finish(self, index, term);
      },
      [self](compact_atom, uint64_t index, uint64_t term) {
        drop_idle_incoming(self);
        return on_release(self, index, term);
      },
  };
}

}  // namespace

snapshotter_actor spawn_snapshotter(caf::actor_system& system, std::shared_ptr<Store> store,
                                    const SnapshotterConfig& config, bool detached) {
  if (detached) return spawn_on_own_thread(system, "kv.snapshotter", snapshotter, std::move(store), config);
  return system.spawn(snapshotter, std::move(store), config);
}

}  // namespace keyval
