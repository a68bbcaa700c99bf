// The store_indexer actor: owns the node's LMDB environment.
//
// It receives records only after the WAL made them durable, in WAL order, and
// applies each batch in LMDB transactions committed without sync (the WAL can
// replay them). Every sync_every_entries entries, and on checkpoint, it syncs
// LMDB and records how far it has indexed; the reply tells the wal_writer it may
// drop the WAL segments LMDB now holds. It serves entry reads and log bounds.
// Snapshots: a snapshot record (durable in the WAL) is saved as the snapshot metadata; when
// LMDB's log does not hold the snapshot's last entry with its term, the snapshot replaced the
// log (§7) and every entry LMDB holds goes. snapshot_install loads a published snapshot file
// into the state machine (one transaction); compact deletes the log's prefix. A clean stop
// (exit reason user_shutdown or normal) syncs LMDB and marks it clean, so the next start
// trusts it even after a reboot.
// It also hosts the key-value state machine (the `kv` and session databases of the same
// environment): committed entries are applied here, one transaction per batch.
// An LMDB failure is fail-stop, as in the wal_writer: every later request gets it.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "actors/messages.h"
#include "storage/env.h"
#include "storage/kv_state_machine.h"
#include "storage/store.h"

namespace keyval {

struct StoreIndexerConfig {
  // LMDB sync cadence. A relaxed LMDB is trusted only after a clean stop or a process crash
  // (never after a power cut: docs/PERSISTENCE.md), and WAL segments go with the snapshots,
  // so this sync protects nothing; it only bounds how far LMDB's file lags its map. Each msync
  // write-protects every page it cleans, and the next store into each faults: at 100,000
  // entries that was a tenth of the cluster's SET throughput (docs/BENCHMARKS.md).
  uint64_t sync_every_entries = 1000000;
  uint64_t read_bytes_max = 4ull << 20;  // payload bytes in one read reply (at least one entry)
  KvStateMachineOptions kv;              // the state machine hosted beside the log
  std::function<void(const std::string&)> log;  // one line per event; stderr when empty
  // Filled in by the recovery_coordinator: where snapshots are installed from, and the data
  // directory whose LMDB_STATE a clean stop marks (storage/recovery.h mark_lmdb_clean).
  Env* env = nullptr;
  std::string snapshot_directory;
  std::string data_directory;
};

store_indexer_actor spawn_store_indexer(caf::actor_system& system, std::shared_ptr<Store> store,
                                        const StoreIndexerConfig& config, bool detached);

}  // namespace keyval
