// The recovery_coordinator actor (see recovery_coordinator.h).
#include "actors/recovery_coordinator.h"

#include <chrono>
#include <cstdio>
#include <iostream>

#include "actors/node_scheduler.h"
#include "actors/record_batch.h"

namespace keyval {
namespace {

using Self = recovery_coordinator_actor::pointer;

void log_line(const PersistenceConfig& config, const std::string& line) {
  if (config.log) {
    config.log(line);
  } else {
    std::cerr << line << std::endl;
  }
}

caf::result<Frame, wal_writer_actor, store_indexer_actor, snapshotter_actor, SharedStore> on_recover(Self self, const PersistenceConfig& config) {
  auto start = self->clock().now();
  auto recovered = recover(*config.env, config.data_directory, config.recovery);
  if (recovered.is_ok()) {
    // The term is recorded before the entries it lets in (raft::Core asserts it): a log ahead
    // of the recorded term means the record of this node's term and vote was lost (a WAL
    // segment drop could lose it before 2026-12-06, after a power cut mid-rotation). Started,
    // the node could vote twice in one term.
    const RecoveredState& state = recovered->state;
    if (state.last_term > state.metadata.current_term) {
      recovered = Status::corruption(
          "the log ends at index " + std::to_string(state.last_index) + " of term " + std::to_string(state.last_term) +
          " but the recorded current term is " + std::to_string(state.metadata.current_term) +
          ": the record of this node's term and vote was lost, and started it could vote twice in one term; "
          "not started: replace this node (docs/OPERATIONS.md)");
    }
  }
  if (!recovered.is_ok()) {
    log_line(config, "recovery_coordinator: refusing to start " + config.data_directory + ": " +
                         recovered.status().to_string());
    return to_error(recovered.status());
  }
  std::shared_ptr<Store> store = std::move(recovered->store);
  std::shared_ptr<Wal> wal = std::move(recovered->wal);
  StoreIndexerConfig indexer_config = config.indexer;
  if (!indexer_config.log) indexer_config.log = config.log;
  WalWriterConfig writer_config = config.writer;
  if (!writer_config.log) writer_config.log = config.log;
  SnapshotterConfig snapshotter_config = config.snapshotter;
  snapshotter_config.env = config.env;
  snapshotter_config.directory = config.recovery.snapshot_directory.empty()
                                     ? join_path(config.data_directory, "snapshots")
                                     : config.recovery.snapshot_directory;
  if (!snapshotter_config.log) snapshotter_config.log = config.log;
  // LMDB's two writers (this indexer, then the node's state machine actor) share the mark.
  auto clean_stop = std::make_shared<LmdbCleanStop>(store, config.env, config.data_directory, indexer_config.log);
  indexer_config.clean_stop = clean_stop;
  auto snapshotter = spawn_snapshotter(self->system(), store, snapshotter_config, config.detached);
  auto indexer = spawn_store_indexer(self->system(), store, indexer_config, config.detached);
  auto writer = spawn_wal_writer(self->system(), wal, indexer, writer_config, config.detached);
  double milliseconds = std::chrono::duration<double, std::milli>(self->clock().now() - start).count();
  char timing[64];
  std::snprintf(timing, sizeof timing, " in %.1f ms", milliseconds);
  std::string summary = recovered->report.summary() + timing;
  log_line(config, "recovery_coordinator: " + config.data_directory + ": " + summary);
  return {Frame{encode_recovered_state(recovered->state, summary, recovered->report.figures())}, writer, indexer, snapshotter,
          SharedStore{store, clean_stop, config.env, snapshotter_config.directory}};
}

recovery_coordinator_actor::behavior_type recovery_coordinator(Self self, PersistenceConfig config) {
  return {
      [self, config](recover_atom) { return on_recover(self, config); },
  };
}

}  // namespace

recovery_coordinator_actor spawn_recovery_coordinator(caf::actor_system& system, const PersistenceConfig& config) {
  if (config.detached) return spawn_on_own_thread(system, "kv.recovery", recovery_coordinator, config);
  return system.spawn(recovery_coordinator, config);
}

}  // namespace keyval
