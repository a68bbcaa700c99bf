// The recovery_coordinator actor: runs at start. On `recover` it runs
// keyval::recover() on the data directory (storage/recovery.h: LMDB checked, WAL
// scanned and repaired, LMDB caught up), logs one line saying what it did
// (entries, bytes cut, milliseconds), spawns the store_indexer and wal_writer
// with the recovered WAL and store, and replies the recovered state with both
// handles. On corruption it replies the error (naming file and offset) and
// spawns nothing: the node must not start.
#pragma once

#include <functional>
#include <string>

#include "actors/messages.h"
#include "actors/snapshotter.h"
#include "actors/store_indexer.h"
#include "actors/wal_writer.h"
#include "storage/env.h"
#include "storage/recovery.h"

namespace keyval {

struct PersistenceConfig {
  Env* env = &posix_env();         // the WAL's files; the simulator passes its disk
  std::string data_directory;      // holds wal/ and lmdb/
  RecoveryOptions recovery;
  WalWriterConfig writer;
  StoreIndexerConfig indexer;
  SnapshotterConfig snapshotter;   // env and directory are filled in (DATA/snapshots)
  bool detached = true;            // real node: blocking I/O on own threads
  std::function<void(const std::string&)> log;  // one line per event; stderr when empty
};

recovery_coordinator_actor spawn_recovery_coordinator(caf::actor_system& system, const PersistenceConfig& config);

}  // namespace keyval
