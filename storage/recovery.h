// Start-up recovery of a node's data directory: the logic the
// recovery_coordinator actor runs, as a plain function tested without actors.
//
// A data directory holds `wal/` (the durable copy), `snapshots/` (the base snapshot the WAL's
// snapshot record names, and perhaps newer or older ones), `lmdb/` (the index and state
// machine the store_indexer keeps behind the WAL, committed without sync) and `LMDB_STATE`.
// Recovery:
//   0. decides whether LMDB can be trusted (lmdb_state.h): when not (a power cut since it was
//      opened may have torn it), it deletes LMDB, loads the base snapshot into a fresh one
//      and lets steps 5-6 replay the WAL's log into it; a trusted LMDB whose applied index is
//      below the base snapshot (a crash while installing one) gets the snapshot loaded. A
//      missing or damaged base snapshot, when needed, refuses the start. Stale snapshot .tmp
//      files are removed. "open <boot id>" is written to LMDB_STATE before LMDB is touched;
//   1. loads metadata (current_term, voted_for) and positions from LMDB;
//   2. streams the LMDB log range in bounded batches (never all in memory),
//   3. checking indices are sequential, terms never decrease, checksums hold;
//   4. loads snapshot metadata;
//   5. opens the WAL (verifying every record, cutting a torn tail) and makes LMDB
//      agree with it: LMDB entries the WAL contradicts (a later truncation, or
//      commits lost because LMDB was not synced) are replaced by the WAL's;
//   6. returns the recovered state with the WAL and store, ready to be handed to
//      the wal_writer and store_indexer.
// Every check that can refuse runs before LMDB is changed, so a refused start leaves
// the directory as it was (only a torn WAL tail, which open() cuts, is gone).
// Memory: LMDB entries are read and written in batches of batch_entries_max entries and
// batch_bytes_max payload bytes; the WAL keeps its own index (8 bytes per entry).
// Corruption anywhere (a bad record followed by good ones, an LMDB gap or
// checksum failure, a WAL that starts after LMDB ends) refuses to start, with a
// message naming file/database and offset/index.
//
// Relies on Raft's Log Matching property: two entries with the same index and
// term are the same entry, so where LMDB and the WAL agree on a term at index i
// they agree on every index below i.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "storage/env.h"
#include "storage/lmdb_state.h"  // mark_lmdb_clean, for the store_indexer's clean stop
#include "storage/snapshot_file.h"
#include "storage/status.h"
#include "storage/store.h"
#include "storage/types.h"
#include "storage/wal.h"

namespace keyval {

struct RecoveryOptions {
  WalOptions wal;
  StoreOptions store = StoreOptions{SyncMode::relaxed};
  uint64_t batch_entries_max = 4096;       // entries per LMDB read or write batch (bounds memory)
  uint64_t batch_bytes_max = 64ull << 20;  // payload bytes per batch (a batch holds at least one entry)
  // Where LMDB lives; empty: data_directory/lmdb. LMDB always uses the real file system, so
  // the simulator, whose WAL is on its simulated disk, gives each node a real directory here.
  std::string lmdb_directory;
  // Where snapshot files live; empty: data_directory/snapshots. Through `env`, as the WAL.
  std::string snapshot_directory;
  // `keyval node --bootstrap` (docs/MEMBERSHIP.md): a log never written to (no entry, no
  // snapshot, term 0) starts with this configuration entry at index 1, term 1, and the
  // metadata term 1, written to the WAL and synced before recovery goes on. Every node of a
  // new cluster writes the same entry. Ignored for a log that holds anything, so the same
  // command line restarts the node (and a crash before the sync bootstraps again).
  std::optional<ConfigurationEntry> bootstrap;
  // Corruption repaired from peers (docs/PERSISTENCE.md): a WAL record or LMDB log entry that
  // cannot be read (a failed checksum, an I/O error) no longer refuses the start. An LMDB entry
  // the WAL still holds is replaced from the WAL. A WAL record: the WAL is salvaged
  // (WalOptions::salvage: everything before it kept, the rest copied to DATA/damaged-N and
  // discarded) and the node starts in the durable repairing state (Metadata::repairing), in
  // which it takes the lost entries from a leader before it votes again. When the state machine
  // applied past what the salvaged WAL still holds, LMDB's log refills the WAL; when it cannot,
  // the state machine is rebuilt from the base snapshot and its applied index goes back there.
  // What cannot be repaired so (that rebuild without its snapshot file, or with entries that
  // only LMDB holds; an LMDB entry below the WAL; damage before the first metadata record) is
  // refused as before, saying so.
  // Off here (storage tools and tests see corruption as an error); a node turns it on.
  bool repair_corruption = false;
};

// What Raft needs to resume.
struct RecoveredState {
  Metadata metadata;  // zeros when never saved
  std::optional<SnapshotMetadata> snapshot;
  uint64_t first_index = 1;  // first entry held (last_index + 1 when empty)
  uint64_t last_index = 0;
  uint64_t last_term = 0;  // term of last_index (snapshot term when the log is empty)
};

// The figures of a RecoveryReport that the node's callers act on (the simulator counts LMDB
// rebuilds, the experiment tables show the entries recovered and the torn bytes cut), carried
// beside the summary line so nobody reads them back out of its words.
struct RecoveryFigures {
  uint64_t entries_recovered = 0;
  uint64_t torn_bytes_cut = 0;
  bool lmdb_rebuilt = false;
};

struct RecoveryReport {
  uint64_t lmdb_entries_checked = 0;  // entries streamed and checked in step 2-3
  uint64_t wal_records = 0;           // valid WAL records scanned
  uint64_t wal_segments = 0;
  uint64_t entries_replayed = 0;       // WAL entries copied into LMDB
  uint64_t lmdb_entries_replaced = 0;  // LMDB entries removed because the WAL contradicted them
  uint64_t torn_bytes_cut = 0;
  std::string torn_segment;
  uint64_t torn_offset = 0;
  uint64_t entries_recovered = 0;  // entries the log holds after recovery (first_index..last_index)
  uint64_t entries_recovered_last = 0;  // last_index after recovery
  bool lmdb_rebuilt = false;       // LMDB was deleted and rebuilt from the base snapshot and the WAL
  // Why LMDB was rebuilt; or, when not rebuilt, why an untrusted or legacy LMDB was kept. Empty
  // when LMDB was trusted by the rule (closed cleanly, or opened in this boot).
  std::string lmdb_rebuild_reason;
  uint64_t snapshot_index = 0;        // the base snapshot (the WAL's snapshot record); 0: none
  bool snapshot_loaded = false;       // its file was loaded into LMDB (rebuild, or LMDB behind it)
  bool bootstrapped = false;          // RecoveryOptions::bootstrap was written (a new cluster's first start)
  uint64_t snapshot_keys_loaded = 0;  // keys that load wrote (its cost, in place of a clock)
  // RecoveryOptions::repair_corruption: what was repaired.
  WalOpenReport wal_damage;           // damaged: the WAL was salvaged (where, why, the copy)
  uint64_t entries_refilled = 0;      // entries copied back from LMDB into the salvaged WAL
  uint64_t lmdb_damaged_index = 0;    // an unreadable LMDB log entry, replaced from the WAL (0: none)
  std::string lmdb_damage;            // why it was unreadable
  // The salvaged WAL ends below the applied index and LMDB's log cannot refill it: LMDB was
  // discarded and the base snapshot loaded into a fresh one (the state machine rebuilt under
  // the log). The applied index went back from applied_index_before to snapshot_index (0
  // without a snapshot); the node repairs and applies the rest again as its leader commits it.
  bool state_machine_rebuilt = false;
  uint64_t applied_index_before = 0;
  std::string state_machine_rebuild_reason;  // why the log could not be rebuilt under it
  // The WAL's base snapshot file could not be used (a salvage cut the record of a newer one whose
  // file lies beside it): the newest complete snapshot was adopted and its record written to the
  // WAL again. Empty otherwise; else "base snapshot I (file: why) replaced by the newer J".
  std::string snapshot_adopted;
  bool repairing = false;             // the node starts (or stays) in the repairing state
  uint64_t repair_last_index = 0;     // Metadata::repair_last_index
  // "recovered N entries (R replayed from the WAL, C checked in LMDB), cut T torn bytes[, LMDB
  // rebuilt (why) from snapshot I (K keys)]", then what was repaired; a state machine rebuilt
  // under the log reads "state machine rebuilt from snapshot S (K keys) because ...: applied
  // index went back from X to S".
  std::string summary() const;
  RecoveryFigures figures() const { return {entries_recovered, torn_bytes_cut, lmdb_rebuilt}; }
};

struct Recovered {
  std::unique_ptr<Wal> wal;
  std::unique_ptr<Store> store;
  RecoveredState state;
  RecoveryReport report;
};

// Opens and repairs `data_directory` (creating it when new). Files of the WAL go through `env`.
Result<Recovered> recover(Env& env, const std::string& data_directory, const RecoveryOptions& options = {});

// A consistent checkpoint: LMDB synced with its positions saved, then every WAL segment whose
// entries LMDB now holds durably is dropped. Returns the index LMDB is durable through:
// min(LMDB's last index, the WAL's last index). invalid_argument, dropping nothing, when LMDB
// and the WAL disagree on that index's term (LMDB has not yet applied a WAL truncation:
// dropping segments then would lose the WAL's newer entries).
Result<uint64_t> checkpoint(Wal& wal, Store& store);

struct DataDirectoryReport {
  WalOpenReport wal;
  uint64_t wal_first_index = 0, wal_last_index = 0;
  uint64_t lmdb_first_index = 0, lmdb_last_index = 0, lmdb_entries_checked = 0;
  uint64_t indexed_index = 0;                // LMDB's recorded position (positions.indexed_index)
  uint64_t compared_index = 0;               // where LMDB's and the WAL's terms were compared; 0 when nowhere
  std::optional<Metadata> metadata;          // the WAL's, else LMDB's
  std::optional<SnapshotMetadata> snapshot;  // the WAL's, else LMDB's
  std::optional<SnapshotSummary> snapshot_file;  // that snapshot's file, read and checked in full
};

// Checks a data directory without changing it: every WAL record, every LMDB entry (sequence,
// terms, checksums), that the WAL continues LMDB without a gap, and that the two agree at the
// highest index both hold up to LMDB's indexed position (above it LMDB may lag; by Log
// Matching agreement there implies agreement below). That index is lowered to any truncate
// record the WAL still holds, and below a snapshot that reset the WAL's log, since LMDB may
// not yet have applied those. A torn WAL tail is reported in the report (wal.torn_bytes),
// corruption as a Status. A missing lmdb/data.mdb reads as an empty LMDB. The base snapshot's
// file (DATA/snapshots) is read and checked in full; missing or damaged, it is corruption.
Result<DataDirectoryReport> verify_data_directory(Env& env, const std::string& data_directory);

}  // namespace keyval
