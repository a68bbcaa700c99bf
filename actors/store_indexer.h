// The store_indexer actor: owns the node's LMDB environment.
//
// It receives records only after the WAL made them durable, in WAL order, and
// applies each batch in LMDB transactions committed without sync (the WAL can
// replay them). Every sync_every_entries entries, and on checkpoint, it syncs
// LMDB and records how far it has indexed; the reply tells the wal_writer it may
// drop the WAL segments LMDB now holds. It serves entry reads and log bounds.
// Snapshots: a snapshot record (durable in the WAL) is saved as the snapshot metadata; when
// LMDB's log does not hold the snapshot's last entry with its term, the snapshot replaced the
// log (§7) and every entry LMDB holds goes; compact deletes the log's prefix. A clean stop
// (exit reason user_shutdown or normal) syncs LMDB and marks it clean, so the next start
// trusts it even after a reboot: once the state machine actor, the environment's other
// writer (the `kv` and session databases), has stopped cleanly too (lmdb_clean_stop.h).
// The indexer only indexes: it applies nothing to the key-value state.
// An LMDB failure is fail-stop, as in the wal_writer: every later request gets it.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "actors/lmdb_clean_stop.h"
#include "actors/messages.h"
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
  std::function<void(const std::string&)> log;  // one line per event; stderr when empty
  // Filled in by the recovery_coordinator: the mark a clean stop of every LMDB writer leaves
  // (null: none).
  std::shared_ptr<LmdbCleanStop> clean_stop;
};

store_indexer_actor spawn_store_indexer(caf::actor_system& system, std::shared_ptr<Store> store,
                                        const StoreIndexerConfig& config, bool detached);

}  // namespace keyval
