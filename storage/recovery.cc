// Start-up recovery and verification of a data directory (recovery.h).
//
// The WAL is the truth for every index it holds; LMDB is an index kept behind it. LMDB can
// differ from the WAL in three ways a crash explains, and recovery repairs each:
//   * it lags (relaxed commits lost at a power cut, or the indexer had not caught up):
//     the missing WAL entries are copied in;
//   * it holds entries the WAL later truncated (a Raft conflict, §5.3) or that a snapshot
//     replaced (§7): those are deleted, then the WAL's entries copied in;
//   * its metadata or snapshot metadata is older than the WAL's: the WAL's is saved.
// Anything a crash cannot explain (a gap, a decreasing term, a checksum failure, a WAL that
// starts after LMDB ends) refuses to start, before LMDB is changed.
//
// LMDB itself may be untrusted (lmdb_state.h: a power cut since it was opened may have torn
// it): then it is deleted and rebuilt from the base snapshot and the WAL, which hold
// everything durable. See recover() for the order of the steps and why.
//
// Crash during recovery: every step is idempotent. Deletes leave a contiguous log (Store's
// contract), copies are re-done from the WAL, positions are saved last, so running recovery
// again after a crash part-way reaches the same state.
#include "storage/recovery.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "storage/codec.h"
#include "storage/snapshot.h"
#include "storage/wal_format.h"

namespace keyval {
namespace {

const char* const wal_subdirectory = "wal";
const char* const lmdb_subdirectory = "lmdb";
const char* const lmdb_file_name = "data.mdb";
const char* const lmdb_lock_file_name = "lock.mdb";
const char* const snapshot_subdirectory = "snapshots";

// What steps 2-3 found in LMDB's log database.
struct LmdbLog {
  uint64_t first_index = 0;  // 0 when empty
  uint64_t last_index = 0;   // 0 when empty
  uint64_t entries_checked = 0;

  bool empty() const { return last_index == 0; }
};

// What LMDB held before the WAL was looked at.
struct LmdbState {
  std::optional<Metadata> metadata;
  std::optional<SnapshotMetadata> snapshot;
  StorePositions positions;
  LmdbLog log;
  // repair_corruption: the first log entry that could not be read (0: none) and why. `log`
  // then ends before it; the entries from it on are still in LMDB until recovery deletes them.
  uint64_t damaged_index = 0;
  std::string damage;
};

// The first entry of first..last that load_entry cannot read (0: all readable), and why.
uint64_t first_unreadable(Store& store, uint64_t first, uint64_t last, std::string* why) {
  for (uint64_t index = first; index <= last; ++index) {
    auto entry = store.load_entry(index);
    if (!entry.is_ok()) {
      *why = entry.status().to_string();
      return index;
    }
  }
  return 0;
}

std::string lmdb_log_name(const Store& store) {
  return "LMDB log " + join_path(store.directory(), lmdb_file_name);
}

// Steps 2-3: streams the whole log in bounded batches, checking that indices are sequential
// and terms never decrease. load_range checks every entry's checksum and stops at a gap.
// With `damage` (repair_corruption), an entry that fails its checksum or cannot be read ends
// the log before it instead of refusing: its index and the error go to `damage`.
Result<LmdbLog> check_lmdb_log(Store& store, uint64_t batch_entries_max, uint64_t batch_bytes_max,
                               LmdbState* damage = nullptr) {
  LmdbLog log;
  KV_ASSIGN_OR_RETURN(log.first_index, store.first_index());
  KV_ASSIGN_OR_RETURN(log.last_index, store.last_index());
  uint64_t next = log.first_index;
  uint64_t previous_term = 0;
  while (!log.empty() && next <= log.last_index) {
    uint64_t batch_last = next + std::min(batch_entries_max - 1, log.last_index - next);
    auto loaded = store.load_range(next, batch_last, batch_bytes_max);
    if (!loaded.is_ok() && damage != nullptr &&
        (loaded.status().code() == Code::corruption || loaded.status().code() == Code::io_error)) {
      std::string why;
      uint64_t bad = first_unreadable(store, next, batch_last, &why);
      if (bad != 0) {
        damage->damaged_index = bad;
        damage->damage = why;
        if (bad == log.first_index) {
          log.first_index = log.last_index = 0;
        } else {
          log.last_index = bad - 1;
        }
        return log;
      }
    }
    KV_ASSIGN_OR_RETURN(std::vector<Entry> batch, std::move(loaded));
    // load_range returns at least one entry unless `next` itself is missing.
    if (batch.empty()) {
      return Status::corruption(lmdb_log_name(store) + ": gap after index " + std::to_string(next - 1) + ": index " +
                                std::to_string(next) + " is missing although the log spans " +
                                std::to_string(log.first_index) + ".." + std::to_string(log.last_index));
    }
    for (const Entry& entry : batch) {
      KV_ASSERT(entry.index == next);  // load_range's contract: sequential from `next`
      if (entry.term < previous_term) {
        return Status::corruption(lmdb_log_name(store) + ": term decreases from " + std::to_string(previous_term) +
                                  " at index " + std::to_string(next - 1) + " to " + std::to_string(entry.term) +
                                  " at index " + std::to_string(next));
      }
      previous_term = entry.term;
      ++next;
      ++log.entries_checked;
    }
  }
  return log;
}

// Steps 1-4 after the store is open.
Result<LmdbState> load_lmdb(Store& store, uint64_t batch_entries_max, uint64_t batch_bytes_max,
                            bool tolerate_damage = false) {
  LmdbState state;
  KV_ASSIGN_OR_RETURN(state.metadata, store.load_metadata());
  KV_ASSIGN_OR_RETURN(state.positions, store.load_positions());
  KV_ASSIGN_OR_RETURN(state.snapshot, store.load_snapshot_metadata());
  KV_ASSIGN_OR_RETURN(state.log,
                      check_lmdb_log(store, batch_entries_max, batch_bytes_max, tolerate_damage ? &state : nullptr));
  return state;
}

bool has_segments(Env& env, const std::string& directory) {
  if (!env.exists(directory)) return false;
  auto names = env.list(directory);
  if (!names.is_ok()) return true;  // let Wal::open report the I/O error
  for (const std::string& name : *names) {
    uint64_t id = 0;
    uint64_t first = 0;
    if (wal_format::parse_segment_file_name(name, &id, &first)) return true;
  }
  return false;
}

bool wal_holds_entries(const Wal& wal) {
  return wal.last_index() >= wal.first_index();
}

// What LMDB shows of a directory's use, or "" when nothing: its log, a term, an applied
// position or a snapshot. A new directory gets its first WAL segment (durably) before LMDB
// exists, so without segments any of these means the WAL was lost. A crash during the very
// first start leaves at most an empty LMDB: nothing was ever acknowledged, and it starts.
std::string evidence_in_lmdb(const LmdbState& lmdb) {
  if (!lmdb.log.empty()) {
    return "LMDB holds entries " + std::to_string(lmdb.log.first_index) + ".." + std::to_string(lmdb.log.last_index);
  }
  if (lmdb.metadata && lmdb.metadata->current_term > 0) {
    return "LMDB records term " + std::to_string(lmdb.metadata->current_term);
  }
  if (lmdb.positions.applied_index > 0) {
    return "LMDB has applied through index " + std::to_string(lmdb.positions.applied_index);
  }
  if (lmdb.snapshot) return "LMDB names snapshot " + std::to_string(lmdb.snapshot->last_included_index);
  return "";
}

// A WAL that lost its segments (an operator's rm, a wrong path) would otherwise read as an
// empty log: recovery would delete everything LMDB holds, or the node would start with no
// log and no votes (an amnesiac voter). Refused, naming what shows the directory was used.
Status check_wal_exists(const std::string& wal_directory, bool wal_existed, const std::string& evidence) {
  if (evidence.empty() || wal_existed) return Status::ok();
  return Status::corruption("WAL directory " + wal_directory + " holds no segments but " + evidence +
                            ": the WAL, the durable copy of the log and the votes, is missing; restore this "
                            "node from a backup or replace it (docs/OPERATIONS.md)");
}

bool holds_snapshot_files(Env& env, const std::string& directory) {
  if (!env.exists(directory)) return false;
  auto listed = SnapshotDirectory(env, directory).list();
  return !listed.is_ok() || !listed->empty();
}

// Refuses a WAL that starts after LMDB (and the snapshot) end: entries in between exist nowhere.
Status check_wal_continues_lmdb(const Wal& wal, const LmdbLog& log, uint64_t snapshot_index) {
  if (!wal_holds_entries(wal) && log.empty()) return Status::ok();  // a new log may start anywhere
  uint64_t covered = std::max(log.last_index, snapshot_index);
  if (wal.first_index() <= covered + 1) return Status::ok();
  return Status::corruption(
      "LMDB ends at " + std::to_string(log.last_index) +
      (snapshot_index > log.last_index ? " (snapshot at " + std::to_string(snapshot_index) + ")" : std::string()) +
      " but the WAL starts at " + std::to_string(wal.first_index()) + ": entries " + std::to_string(covered + 1) +
      ".." + std::to_string(wal.first_index() - 1) + " exist nowhere (WAL " + wal.directory() + ")");
}

Result<uint64_t> lmdb_term(Store& store, uint64_t index) {
  KV_ASSIGN_OR_RETURN(Entry entry, store.load_entry(index));
  return entry.term;
}

Result<uint64_t> wal_term(Wal& wal, uint64_t index) {
  KV_ASSIGN_OR_RETURN(Entry entry, wal.read(index));
  return entry.term;
}

// The highest index in [low, high] where LMDB and the WAL hold the same term, given that they
// agree at `low`. Log Matching (§5.3) makes agreement a prefix property, so binary search finds
// it in O(log n) reads.
Result<uint64_t> find_agreement(Store& store, Wal& wal, uint64_t low, uint64_t high) {
  while (low < high) {
    uint64_t middle = low + (high - low + 1) / 2;
    KV_ASSIGN_OR_RETURN(uint64_t in_lmdb, lmdb_term(store, middle));
    KV_ASSIGN_OR_RETURN(uint64_t in_wal, wal_term(wal, middle));
    if (in_lmdb == in_wal) {
      low = middle;
    } else {
      high = middle - 1;
    }
  }
  return low;
}

// Deletes LMDB entries <= `index`, counting them as replaced.
Status delete_lmdb_prefix(Store& store, uint64_t index, LmdbLog& log, RecoveryReport& report) {
  if (log.empty() || log.first_index > index) return Status::ok();
  KV_RETURN_IF_ERROR(store.delete_prefix_through(index));
  report.lmdb_entries_replaced += std::min(index, log.last_index) - log.first_index + 1;
  log = index >= log.last_index ? LmdbLog{0, 0, log.entries_checked}
                                : LmdbLog{index + 1, log.last_index, log.entries_checked};
  return Status::ok();
}

// Raft §7: a snapshot whose last entry the log did not hold resets the WAL's log to continue at
// last_included_index + 1. LMDB entries up to the snapshot that do not lead to it are stale.
// LMDB entries that end before the WAL starts (only possible below a snapshot, which the gap
// check guarantees) cannot be joined to it either.
Status drop_entries_the_snapshot_replaced(Store& store, const Wal& wal, uint64_t snapshot_index, LmdbLog& log,
                                          RecoveryReport& report) {
  if (log.empty()) return Status::ok();
  std::optional<SnapshotMetadata> snapshot = wal.snapshot();
  bool reset = snapshot && (!wal_holds_entries(wal) || wal.first_index() == snapshot->last_included_index + 1);
  if (reset && log.first_index <= snapshot->last_included_index) {
    uint64_t index = snapshot->last_included_index;
    bool leads_to_snapshot = false;
    if (log.last_index >= index) {
      KV_ASSIGN_OR_RETURN(uint64_t term, lmdb_term(store, index));
      leads_to_snapshot = term == snapshot->last_included_term;
    }
    if (!leads_to_snapshot) KV_RETURN_IF_ERROR(delete_lmdb_prefix(store, index, log, report));
  }
  if (!log.empty() && log.last_index + 1 < wal.first_index()) {
    KV_ASSERT(log.last_index <= snapshot_index);  // check_wal_continues_lmdb passed
    KV_RETURN_IF_ERROR(delete_lmdb_prefix(store, log.last_index, log, report));
  }
  return Status::ok();
}

// The last LMDB index that the WAL does not contradict.
Result<uint64_t> lmdb_keeps_through(Store& store, Wal& wal, const LmdbLog& log) {
  if (log.last_index < wal.first_index()) return log.last_index;  // nothing overlaps
  // LMDB starts past the WAL's end: the WAL's log ended (truncation) before all of it.
  if (log.first_index > wal.last_index()) return wal.last_index();
  // Below LMDB's first index (compacted) and below the WAL's, nothing is compared.
  uint64_t low = std::max(wal.first_index() - 1, log.first_index - 1);
  uint64_t high = std::min(log.last_index, wal.last_index());
  return find_agreement(store, wal, low, high);
}

// Copies WAL entries from..last_index() into LMDB in bounded batches, streaming the WAL.
Status copy_wal_entries(Wal& wal, Store& store, uint64_t from, const RecoveryOptions& options, uint64_t* copied) {
  std::vector<Entry> batch;
  uint64_t batch_bytes = 0;
  auto save_batch = [&]() -> Status {
    KV_RETURN_IF_ERROR(store.save_entries(batch));
    *copied += batch.size();
    batch.clear();
    batch_bytes = 0;
    return Status::ok();
  };
  KV_RETURN_IF_ERROR(wal.replay(from, [&](const EntryView& view) -> Status {
    // The view's bytes die with the next call on the WAL: copy them.
    batch.push_back(
        Entry{view.index, view.term, std::vector<uint8_t>(view.payload, view.payload + view.payload_bytes), view.type});
    batch_bytes += view.payload_bytes;
    if (batch.size() < options.batch_entries_max && batch_bytes < options.batch_bytes_max) return Status::ok();
    return save_batch();
  }));
  return batch.empty() ? Status::ok() : save_batch();
}

// Step 5, the log: makes LMDB hold exactly the WAL's entries (plus LMDB's older prefix).
Status reconcile_log(Store& store, Wal& wal, uint64_t snapshot_index, const RecoveryOptions& options, LmdbLog& log,
                     RecoveryReport& report) {
  KV_RETURN_IF_ERROR(drop_entries_the_snapshot_replaced(store, wal, snapshot_index, log, report));
  if (!log.empty()) {
    KV_ASSIGN_OR_RETURN(uint64_t keep_through, lmdb_keeps_through(store, wal, log));
    if (keep_through < log.last_index) {
      KV_RETURN_IF_ERROR(store.delete_suffix_after(keep_through));
      report.lmdb_entries_replaced += log.last_index - std::max(keep_through, log.first_index - 1);
      log = keep_through < log.first_index ? LmdbLog{0, 0, log.entries_checked}
                                           : LmdbLog{log.first_index, keep_through, log.entries_checked};
    }
  }
  uint64_t from = std::max(wal.first_index(), log.last_index + 1);
  if (from <= wal.last_index()) {
    KV_RETURN_IF_ERROR(copy_wal_entries(wal, store, from, options, &report.entries_replayed));
    if (log.empty()) log.first_index = from;
    log.last_index = wal.last_index();
  }
  // Postcondition: LMDB ends where the WAL does (or is empty and so is the WAL's log).
  KV_ASSERT(log.empty() ? !wal_holds_entries(wal) : log.last_index == wal.last_index());
  return Status::ok();
}

// Step 5, metadata: the WAL's when it has one (it is written first), else LMDB's.
template <class T>
Result<std::optional<T>> reconcile_value(const std::optional<T>& in_wal, const std::optional<T>& in_lmdb,
                                         const std::function<Status(const T&)>& save) {
  if (!in_wal) return in_lmdb;
  if (!(in_wal == in_lmdb)) KV_RETURN_IF_ERROR(save(*in_wal));  // the types define == only
  return in_wal;
}

Status reconcile_metadata(Store& store, const Wal& wal, const LmdbState& lmdb, RecoveredState& state) {
  KV_ASSIGN_OR_RETURN(std::optional<Metadata> metadata,
                      reconcile_value<Metadata>(wal.metadata(), lmdb.metadata,
                                                [&](const Metadata& value) { return store.save_metadata(value); }));
  state.metadata = metadata.value_or(Metadata{});
  KV_ASSIGN_OR_RETURN(state.snapshot, reconcile_value<SnapshotMetadata>(wal.snapshot(), lmdb.snapshot,
                                                                        [&](const SnapshotMetadata& value) {
                                                                          return store.save_snapshot_metadata(value);
                                                                        }));
  return Status::ok();
}

// Step 6: what Raft resumes from.
Status fill_state(Store& store, Wal& wal, const LmdbLog& log, RecoveredState& state) {
  state.first_index = log.empty() ? wal.first_index() : log.first_index;
  state.last_index = wal.last_index();
  if (state.last_index >= state.first_index) {
    // The WAL holds the last entry unless its log is empty, in which case LMDB does.
    auto term = wal_holds_entries(wal) ? wal_term(wal, state.last_index) : lmdb_term(store, state.last_index);
    if (!term.is_ok()) return term.status();
    state.last_term = *term;
  } else {
    state.last_term = state.snapshot ? state.snapshot->last_included_term : 0;
  }
  return Status::ok();
}

void fill_wal_report(const WalOpenReport& opened, RecoveryReport& report) {
  report.wal_records = opened.records;
  report.wal_segments = opened.segments;
  report.torn_bytes_cut = opened.torn_bytes;
  report.torn_segment = opened.torn_segment;
  report.torn_offset = opened.torn_offset;
}


// --- LMDB trust and rebuild (lmdb_state.h) ---------------------------------------------------

std::string describe_snapshot(const std::string& path, const SnapshotMetadata& snapshot) {
  return "base snapshot " + path + " (index " + std::to_string(snapshot.last_included_index) + ", term " +
         std::to_string(snapshot.last_included_term) + ", named by the WAL's snapshot record)";
}

// The snapshot file, read in full and its header compared with (index, term).
Result<SnapshotSummary> read_snapshot_file(Env& env, const std::string& path, uint64_t index, uint64_t term) {
  auto summary = verify_snapshot_file(env, path);
  if (summary.is_ok() && (summary->header.index != index || summary->header.term != term)) {
    return Status::corruption("its header says index " + std::to_string(summary->header.index) + ", term " +
                              std::to_string(summary->header.term));
  }
  return summary;
}

// The base snapshot's file, read in full and its header compared with the WAL's record.
Result<SnapshotSummary> check_base_snapshot(Env& env, const std::string& path, const SnapshotMetadata& snapshot) {
  auto summary = read_snapshot_file(env, path, snapshot.last_included_index, snapshot.last_included_term);
  if (summary.is_ok()) return summary;
  return Status::corruption(describe_snapshot(path, snapshot) + " cannot be used: " + summary.status().to_string() +
                            ". Without it LMDB cannot be rebuilt: restore this node from a peer or a backup");
}

// Loads the base snapshot into `store` (one transaction: on failure the store is unchanged).
Status load_base_snapshot(Env& env, const std::string& path, const SnapshotMetadata& snapshot, Store& store,
                          RecoveryReport& report) {
  KV_RETURN_IF_ERROR(check_base_snapshot(env, path, snapshot).status());
  auto loaded = load_snapshot(env, path, store);
  if (!loaded.is_ok()) {
    return Status::corruption(describe_snapshot(path, snapshot) + " cannot be loaded: " +
                              loaded.status().to_string() + ". Restore this node from a peer or a backup");
  }
  report.snapshot_loaded = true;
  report.snapshot_keys_loaded = loaded->keys;
  return Status::ok();
}

std::optional<SnapshotMetadata> base_snapshot_of(const std::optional<SnapshotMetadata>& snapshot) {
  if (snapshot && snapshot->last_included_index > 0) return snapshot;
  return std::nullopt;
}

// LMDB can be rebuilt when the base snapshot and the WAL together hold everything: the WAL's
// log continues the snapshot (or, without one, starts at index 1).
bool rebuild_is_possible(const Wal& wal, const std::optional<SnapshotMetadata>& base) {
  const uint64_t covered = base ? base->last_included_index : 0;
  return wal.first_index() <= covered + 1;
}

Status remove_lmdb_files(const std::string& lmdb_directory) {
  for (const char* name : {lmdb_file_name, lmdb_lock_file_name}) {
    const std::string path = join_path(lmdb_directory, name);
    if (posix_env().exists(path)) KV_RETURN_IF_ERROR(posix_env().remove(path));
  }
  return Status::ok();
}

Status clean_snapshot_directory(Env& env, const std::string& directory) {
  SnapshotDirectory snapshots(env, directory);
  KV_RETURN_IF_ERROR(snapshots.create());
  return snapshots.remove_temporaries();
}

Status check_options(const RecoveryOptions& options) {
  if (options.batch_entries_max == 0 || options.batch_bytes_max == 0) {
    return Status::invalid_argument("recovery batches must allow at least one entry (batch_entries_max " +
                                    std::to_string(options.batch_entries_max) + ", batch_bytes_max " +
                                    std::to_string(options.batch_bytes_max) + ")");
  }
  if (options.wal.read_only || options.store.read_only) {
    return Status::invalid_argument("recovery repairs the directory: it cannot open the WAL or LMDB read-only");
  }
  return Status::ok();
}

}  // namespace

std::string RecoveryReport::summary() const {
  std::string text = "recovered " + std::to_string(entries_recovered) + " entries (" +
                     std::to_string(entries_replayed) + " replayed from the WAL, " +
                     std::to_string(lmdb_entries_checked) + " checked in LMDB";
  if (lmdb_entries_replaced > 0) text += ", " + std::to_string(lmdb_entries_replaced) + " replaced in LMDB";
  text += "), cut " + std::to_string(torn_bytes_cut) + " torn bytes";
  if (torn_bytes_cut > 0) text += " at " + torn_segment + " offset " + std::to_string(torn_offset);
  if (lmdb_rebuilt) {
    text += "; LMDB rebuilt (" + lmdb_rebuild_reason + ")";
    text += snapshot_loaded ? " from the snapshot at index " + std::to_string(snapshot_index) + " (" +
                                  std::to_string(snapshot_keys_loaded) + " keys) and the WAL"
                            : " from the WAL alone (no snapshot)";
  } else {
    if (snapshot_loaded && !state_machine_rebuilt) {
      text += "; snapshot at index " + std::to_string(snapshot_index) + " loaded into LMDB (" +
              std::to_string(snapshot_keys_loaded) + " keys)";
    }
    if (!lmdb_rebuild_reason.empty()) text += "; " + lmdb_rebuild_reason;
  }
  if (bootstrapped) text += "; bootstrapped: the log starts with the configuration entry at index 1 (term 1)";
  if (!snapshot_adopted.empty()) text += "; " + snapshot_adopted;
  if (lmdb_damaged_index > 0) {
    text += "; LMDB log entry " + std::to_string(lmdb_damaged_index) + " unreadable (" + lmdb_damage +
            "): LMDB's log from there replaced from the WAL";
  }
  if (wal_damage.damaged) {
    text += "; WAL damaged at segment " + wal_damage.damaged_segment + " offset " +
            std::to_string(wal_damage.damaged_offset) + " (" + wal_damage.damage + "): the WAL is kept up to there, " +
            std::to_string(wal_damage.damaged_segments) + " segment(s) copied as they were to " +
            wal_damage.damaged_copy + (wal_damage.damaged_unreadable_bytes > 0
                                           ? " (" + std::to_string(wal_damage.damaged_unreadable_bytes) +
                                                 " unreadable bytes copied as zeros)"
                                           : std::string()) +
            " and discarded";
    if (entries_refilled > 0) text += ", " + std::to_string(entries_refilled) + " applied entries copied back from LMDB";
  }
  if (state_machine_rebuilt) {
    text += "; state machine rebuilt " +
            (snapshot_loaded ? "from snapshot " + std::to_string(snapshot_index) + " (" +
                                   std::to_string(snapshot_keys_loaded) + " keys)"
                             : std::string("from an empty state (no base snapshot)")) +
            " because " + state_machine_rebuild_reason + ": applied index went back from " +
            std::to_string(applied_index_before) + " to " + std::to_string(snapshot_loaded ? snapshot_index : 0) +
            " (LMDB discarded; the entries after it are applied again as the leader commits them)";
  }
  if (repairing) {
    text += "; repairing: the log ends at index " + std::to_string(entries_recovered_last) +
            (repair_last_index > 0 ? " (it held at least " + std::to_string(repair_last_index) + " before the damage)"
                                   : std::string()) +
            "; no vote or candidacy until a leader's committed entries are refetched";
  }
  return text;
}

namespace {

struct RecoveryPaths {
  std::string lmdb, wal, snapshots, data_directory;
};

RecoveryPaths paths_of(const std::string& data_directory, const RecoveryOptions& options) {
  RecoveryPaths paths;
  paths.data_directory = data_directory;
  paths.lmdb = options.lmdb_directory.empty() ? join_path(data_directory, lmdb_subdirectory) : options.lmdb_directory;
  paths.wal = join_path(data_directory, wal_subdirectory);
  paths.snapshots =
      options.snapshot_directory.empty() ? join_path(data_directory, snapshot_subdirectory) : options.snapshot_directory;
  return paths;
}

// The WAL's options: with repair_corruption it salvages a damaged WAL, keeping the copies in
// the data directory.
WalOptions wal_options_of(const RecoveryOptions& options, const std::string& data_directory) {
  WalOptions wal = options.wal;
  if (options.repair_corruption) {
    wal.salvage = true;
    wal.salvage_directory = data_directory;
  }
  return wal;
}

// --- corruption repaired from peers (RecoveryOptions::repair_corruption) ----------------------

// An LMDB log entry that could not be read is replaced from the WAL when the WAL holds it (LMDB
// is only an index of the WAL there). Below the WAL, LMDB held the only local copy: refused.
Status repair_lmdb_entry(Store& store, const Wal& wal, const LmdbState& lmdb, RecoveryReport& report) {
  if (lmdb.damaged_index == 0) return Status::ok();
  const uint64_t bad = lmdb.damaged_index;
  if (bad < wal.first_index()) {
    return Status::corruption(lmdb_log_name(store) + ": " + lmdb.damage + "; not repaired: the WAL starts at index " +
                              std::to_string(wal.first_index()) + ", so LMDB held the only local copy of entry " +
                              std::to_string(bad) + "; replace this node (docs/OPERATIONS.md)");
  }
  KV_RETURN_IF_ERROR(store.delete_suffix_after(bad - 1));
  report.lmdb_damaged_index = bad;
  report.lmdb_damage = lmdb.damage;
  return Status::ok();
}

// The state machine applied entries the salvaged WAL no longer holds: they are committed, and
// LMDB's log still holds them when it held entry applied_index with the applied term (Log
// Matching: then it holds the committed prefix). Returns why LMDB's log cannot refill the WAL
// up to the applied index, or "" when it can (or nothing is missing).
Result<std::string> refill_obstacle(Store& store, Wal& wal, const LmdbState& lmdb) {
  const uint64_t applied = lmdb.positions.applied_index;
  const uint64_t from = wal.last_index() + 1;
  if (applied < from) return std::string();
  if (lmdb.log.empty() || lmdb.log.first_index > from || lmdb.log.last_index < applied) {
    return "LMDB's readable log (" + std::to_string(lmdb.log.first_index) + ".." +
           std::to_string(lmdb.log.last_index) + ") does not hold the entries in between";
  }
  KV_ASSIGN_OR_RETURN(uint64_t term, lmdb_term(store, applied));
  if (lmdb.positions.applied_term == 0 || term != lmdb.positions.applied_term) {
    return "LMDB's entry " + std::to_string(applied) + " is not the one applied";
  }
  if (wal_holds_entries(wal) && from - 1 >= lmdb.log.first_index) {
    KV_ASSIGN_OR_RETURN(uint64_t in_lmdb, lmdb_term(store, from - 1));
    KV_ASSIGN_OR_RETURN(uint64_t in_wal, wal_term(wal, from - 1));
    if (in_lmdb != in_wal) return "LMDB and the WAL disagree at index " + std::to_string(from - 1);
  }
  return std::string();
}

// The entries the salvaged WAL lost up to the applied index, appended to it again from LMDB's
// log (refill_obstacle found them there) and synced.
Status refill_from_lmdb(Store& store, Wal& wal, const LmdbState& lmdb, const RecoveryOptions& options,
                        RecoveryReport& report) {
  const uint64_t applied = lmdb.positions.applied_index;
  const uint64_t from = wal.last_index() + 1;
  if (applied < from) return Status::ok();
  for (uint64_t next = from; next <= applied;) {
    const uint64_t last = std::min(applied, next + options.batch_entries_max - 1);
    KV_ASSIGN_OR_RETURN(std::vector<Entry> batch, store.load_range(next, last, options.batch_bytes_max));
    KV_ASSERT(!batch.empty() && batch.front().index == next);
    KV_RETURN_IF_ERROR(wal.append_batch(batch));
    next += batch.size();
    report.entries_refilled += batch.size();
  }
  return wal.sync();
}

// A salvaged WAL puts the node in the repairing state, durably, before anything else happens:
// the Raft metadata (the latest of the WAL's kept records and LMDB's copy, which may be newer
// than what the WAL kept) with repairing set and the last index known before the damage. So
// does `lost_applied` (the WAL ends below the applied index): that WAL lost committed entries,
// whether this start salvaged it or an earlier one did and stopped before this point.
Status enter_repair(Wal& wal, const LmdbState& lmdb, bool lost_applied, RecoveryReport& report) {
  const WalOpenReport& damage = wal.open_report();
  if (damage.damaged) report.wal_damage = damage;
  if (damage.damaged || lost_applied) {
    Metadata metadata = wal.metadata().value_or(Metadata{});
    // Copies that may be newer than what the WAL kept: a term or vote recorded in the
    // discarded part (still readable there), and LMDB's (written behind the WAL).
    std::vector<Metadata> others;
    if (damage.damaged_metadata) others.push_back(*damage.damaged_metadata);
    if (lmdb.metadata) others.push_back(*lmdb.metadata);
    for (const Metadata& other : others) {
      const bool newer = other.current_term > metadata.current_term ||
                         (other.current_term == metadata.current_term && metadata.voted_for == 0);
      std::vector<uint64_t> counted = metadata.counted;
      if (newer) {
        const bool probation = metadata.probation;
        metadata = other;
        metadata.probation = probation;
      }
      for (uint64_t id : counted) metadata.add_counted(id);
      for (uint64_t id : other.counted) metadata.add_counted(id);
    }
    uint64_t known = std::max({damage.damaged_last_index, lmdb.log.last_index, lmdb.positions.indexed_index,
                               lmdb.positions.applied_index, lmdb.damaged_index, wal.last_index()});
    metadata.repairing = true;
    metadata.repair_last_index = std::max(metadata.repair_last_index, known);
    KV_RETURN_IF_ERROR(wal.save_metadata(metadata));
    if (lmdb.snapshot && (!wal.snapshot() || wal.snapshot()->last_included_index < lmdb.snapshot->last_included_index)) {
      KV_RETURN_IF_ERROR(wal.save_snapshot(*lmdb.snapshot));
    }
    KV_RETURN_IF_ERROR(wal.sync());
  }
  if (wal.metadata() && wal.metadata()->repairing) {
    report.repairing = true;
    report.repair_last_index = wal.metadata()->repair_last_index;
  }
  return Status::ok();
}

// What shows, before LMDB is opened, that this directory was used: "" when nothing does.
std::string evidence_before_lmdb(Env& env, const RecoveryPaths& paths, const LmdbMarker& marker) {
  if (marker.kind == LmdbMarkerKind::clean) return "LMDB_STATE records a clean stop";
  if (holds_snapshot_files(env, paths.snapshots)) return "the snapshot directory holds snapshots";
  return "";
}

// Steps 1-4 on a trusted LMDB, then the WAL opened. The missing-WAL check runs before
// Wal::open, which creates a segment: a retry must refuse just the same.
Status open_trusted(Env& env, const RecoveryPaths& paths, bool wal_existed, const RecoveryOptions& options,
                    Recovered& recovered, LmdbState& lmdb) {
  const std::string& data_directory = paths.data_directory;
  KV_ASSIGN_OR_RETURN(recovered.store, Store::open(paths.lmdb, options.store));
  KV_ASSIGN_OR_RETURN(lmdb, load_lmdb(*recovered.store, options.batch_entries_max, options.batch_bytes_max,
                                      options.repair_corruption));
  if (!wal_existed) KV_RETURN_IF_ERROR(check_wal_exists(paths.wal, wal_existed, evidence_in_lmdb(lmdb)));
  if (!recovered.wal) {
    KV_ASSIGN_OR_RETURN(recovered.wal, Wal::open(env, paths.wal, wal_options_of(options, data_directory)));
  }
  return Status::ok();
}

// An untrusted LMDB (the WAL exists): the WAL first, to learn the base snapshot; then, when
// the snapshot and the WAL hold everything, LMDB is deleted and the snapshot loaded into a
// fresh one (steps 5-6 then replay the WAL's log into it). The snapshot file is checked in
// full before LMDB is deleted, so a refused start leaves LMDB as it was. LMDB_STATE keeps
// its old (distrusted) marker until the fresh LMDB holds the snapshot: a start refused or
// a crash before that point distrusts LMDB again at the next start, in any boot.
// The WAL names base snapshot `base`, whose file cannot be used. A snapshot file is published
// (complete, fsynced) only for committed state, before its WAL record is written, and an older
// file is released only once a newer record is durable: a missing base file beside a newer one
// means the WAL lost that newer record (a salvage keeps the WAL only up to its first damaged
// record). The newest complete snapshot newer than `base` whose file reads back in full is
// adopted: its record is written to the WAL again (Wal::save_snapshot discards the log it does
// not continue) and synced. nullopt, changing nothing, when there is none.
// Only a snapshot the WAL's log reaches (no entry between them held by LMDB alone) qualifies.
Result<std::optional<SnapshotMetadata>> adopt_newer_snapshot(Env& env, const RecoveryPaths& paths, Wal& wal,
                                                             const SnapshotMetadata& base, const Status& unusable,
                                                             RecoveryReport& report) {
  SnapshotDirectory snapshots(env, paths.snapshots);
  KV_ASSIGN_OR_RETURN(auto listed, snapshots.list());
  for (auto it = listed.rbegin(); it != listed.rend(); ++it) {
    const auto [index, term] = *it;
    if (index <= base.last_included_index || index + 1 < wal.first_index()) break;
    auto summary = read_snapshot_file(env, snapshots.path_for(index, term), index, term);
    if (!summary.is_ok()) continue;
    const SnapshotMetadata newer{index, term, summary->header.configuration};
    KV_RETURN_IF_ERROR(wal.save_snapshot(newer));
    KV_RETURN_IF_ERROR(wal.sync());
    report.snapshot_adopted = "base snapshot " + std::to_string(base.last_included_index) + " unusable (" +
                              unusable.message() + "): the newer complete snapshot " + std::to_string(index) +
                              " (term " + std::to_string(term) + ") beside it adopted and recorded in the WAL again";
    return std::optional<SnapshotMetadata>(newer);
  }
  return std::optional<SnapshotMetadata>();
}

Status open_untrusted(Env& env, const std::string& data_directory, const RecoveryPaths& paths,
                      const RecoveryOptions& options, Recovered& recovered, LmdbState& lmdb) {
  RecoveryReport& report = recovered.report;
  KV_ASSIGN_OR_RETURN(recovered.wal, Wal::open(env, paths.wal, wal_options_of(options, data_directory)));
  std::optional<SnapshotMetadata> base = base_snapshot_of(recovered.wal->snapshot());
  if (base) {
    const std::string path = SnapshotDirectory(env, paths.snapshots).path_for(base->last_included_index,
                                                                             base->last_included_term);
    const Status usable = read_snapshot_file(env, path, base->last_included_index, base->last_included_term).status();
    if (!usable.is_ok()) {
      KV_ASSIGN_OR_RETURN(auto adopted, adopt_newer_snapshot(env, paths, *recovered.wal, *base, usable, report));
      if (!adopted) return check_base_snapshot(env, path, *base).status();  // the refusal, naming the file
      base = adopted;
    }
  }
  if (!rebuild_is_possible(*recovered.wal, base)) {
    // Entries before the WAL's first exist only in LMDB (segments dropped by an older build's
    // rule): deleting it would lose them. Kept, as every build before LMDB_STATE did.
    report.lmdb_rebuild_reason += "; not rebuilt: the WAL starts at " +
                                  std::to_string(recovered.wal->first_index()) + " and " +
                                  (base ? "the base snapshot ends at " + std::to_string(base->last_included_index)
                                        : std::string("there is no base snapshot")) +
                                  ", so LMDB holds the only copy of the entries before: trusted as is";
    KV_RETURN_IF_ERROR(mark_lmdb_open(env, data_directory));
    return open_trusted(env, paths, /*wal_existed=*/true, options, recovered, lmdb);
  }
  SnapshotDirectory snapshots(env, paths.snapshots);
  if (base) {
    const std::string path = snapshots.path_for(base->last_included_index, base->last_included_term);
    KV_RETURN_IF_ERROR(check_base_snapshot(env, path, *base).status());
  }
  KV_RETURN_IF_ERROR(remove_lmdb_files(paths.lmdb));
  report.lmdb_rebuilt = true;
  KV_ASSIGN_OR_RETURN(recovered.store, Store::open(paths.lmdb, options.store));
  if (base) {
    const std::string path = snapshots.path_for(base->last_included_index, base->last_included_term);
    KV_RETURN_IF_ERROR(load_base_snapshot(env, path, *base, *recovered.store, report));
  }
  // The fresh LMDB is consistent (one committed transaction, or empty) and lives in this
  // boot's page cache from here on: the rule for any LMDB opened in this boot applies.
  KV_RETURN_IF_ERROR(mark_lmdb_open(env, data_directory));
  KV_ASSIGN_OR_RETURN(lmdb, load_lmdb(*recovered.store, options.batch_entries_max, options.batch_bytes_max,
                                      options.repair_corruption));
  return Status::ok();
}

// --- damage below the applied index: the state machine rebuilt under the log -----------------

// The base snapshot once enter_repair has run: the WAL's, or LMDB's copy when it is newer (the
// WAL's record of it was discarded with the damage; enter_repair writes it to the WAL again).
std::optional<SnapshotMetadata> repair_base_snapshot(const Wal& wal, const LmdbState& lmdb) {
  std::optional<SnapshotMetadata> base = wal.snapshot();
  if (lmdb.snapshot && (!base || base->last_included_index < lmdb.snapshot->last_included_index)) {
    base = lmdb.snapshot;
  }
  return base_snapshot_of(base);
}

// Whether the state machine can be rebuilt under the log, checked before anything changes (a
// refusal leaves the directory as it was): the base snapshot and the WAL must hold everything
// (no entry between them exists only in LMDB) and the snapshot's file must read back in full.
Status check_state_machine_rebuild(Env& env, const RecoveryPaths& paths, const Wal& wal, const LmdbState& lmdb,
                                   const std::optional<SnapshotMetadata>& base, const std::string& obstacle,
                                   const RecoveryReport& report) {
  auto refuse = [&](const std::string& why) {
    return Status::corruption("WAL " + wal.directory() + " ends at index " + std::to_string(wal.last_index()) +
                              (report.wal_damage.damaged ? " after salvage (" + report.wal_damage.damage + ")" : "") +
                              " but the state machine has applied through index " +
                              std::to_string(lmdb.positions.applied_index) + ", " + obstacle +
                              ", and the state machine cannot be rebuilt under the log: " + why +
                              "; not repaired: replace this node (docs/OPERATIONS.md)");
  };
  if (!rebuild_is_possible(wal, base)) {
    return refuse("the WAL starts at " + std::to_string(wal.first_index()) + " and " +
                  (base ? "the base snapshot ends at " + std::to_string(base->last_included_index)
                        : std::string("there is no base snapshot")) +
                  ", so LMDB holds the only copy of the entries before");
  }
  if (!base) return Status::ok();
  const std::string path =
      SnapshotDirectory(env, paths.snapshots).path_for(base->last_included_index, base->last_included_term);
  auto checked = check_base_snapshot(env, path, *base);
  return checked.is_ok() ? Status::ok() : refuse(checked.status().message());
}

// The state machine rebuilt under the log: LMDB (log, state machine, positions) is discarded and
// the base snapshot loaded into a fresh one, as open_untrusted does for an untrusted LMDB;
// steps 5-6 then index the WAL's entries into it. The applied index goes back to the
// snapshot's (0 without one); the node, repairing, applies the entries again as its leader
// commits them. Crash safety: LMDB_STATE says "discard" (never trusted) before LMDB is deleted
// and "open" only once the fresh LMDB holds the snapshot, so a crash in between makes the next
// start rebuild LMDB from the same snapshot and the WAL (open_untrusted). The WAL already
// records the repairing state and names that snapshot (enter_repair ran first, and synced).
Status rebuild_state_machine(Env& env, const RecoveryPaths& paths, const RecoveryOptions& options,
                             const std::optional<SnapshotMetadata>& base, Recovered& recovered, LmdbState& lmdb) {
  RecoveryReport& report = recovered.report;
  report.state_machine_rebuilt = true;
  report.applied_index_before = lmdb.positions.applied_index;
  KV_RETURN_IF_ERROR(mark_lmdb_discarding(env, paths.data_directory));
  recovered.store.reset();  // LMDB's environment is closed before its files go
  KV_RETURN_IF_ERROR(remove_lmdb_files(paths.lmdb));
  KV_ASSIGN_OR_RETURN(recovered.store, Store::open(paths.lmdb, options.store));
  if (base) {
    const std::string path =
        SnapshotDirectory(env, paths.snapshots).path_for(base->last_included_index, base->last_included_term);
    KV_RETURN_IF_ERROR(load_base_snapshot(env, path, *base, *recovered.store, report));
  }
  KV_RETURN_IF_ERROR(mark_lmdb_open(env, paths.data_directory));
  KV_ASSIGN_OR_RETURN(lmdb, load_lmdb(*recovered.store, options.batch_entries_max, options.batch_bytes_max,
                                      options.repair_corruption));
  return Status::ok();
}

// RecoveryOptions::repair_corruption, after LMDB and the WAL are open: an unreadable LMDB entry
// replaced from the WAL; a WAL that ends below the applied index refilled from LMDB's log, or,
// when LMDB's log cannot, the state machine rebuilt under the log; the repairing state entered.
// Each check that can refuse runs before anything changes (the WAL may already be salvaged).
Status repair_corruption(Env& env, const RecoveryPaths& paths, const RecoveryOptions& options, Recovered& recovered,
                         LmdbState& lmdb) {
  Store& store = *recovered.store;
  Wal& wal = *recovered.wal;
  RecoveryReport& report = recovered.report;
  KV_RETURN_IF_ERROR(repair_lmdb_entry(store, wal, lmdb, report));
  // The state machine applies only entries the WAL made durable (the indexer takes nothing
  // else), so a WAL that ends below the applied index lost durable entries, perhaps
  // acknowledged ones after the applied index too: repairing, even when an earlier start
  // salvaged it and stopped before it wrote the repairing state.
  const bool lost_applied = lmdb.positions.applied_index > wal.last_index();
  KV_ASSIGN_OR_RETURN(std::string obstacle, refill_obstacle(store, wal, lmdb));
  if (obstacle.empty()) {
    KV_RETURN_IF_ERROR(refill_from_lmdb(store, wal, lmdb, options, report));
    return enter_repair(wal, lmdb, lost_applied, report);
  }
  if (wal.open_report().damaged) report.wal_damage = wal.open_report();  // for the refusal's message
  const std::optional<SnapshotMetadata> base = repair_base_snapshot(wal, lmdb);
  KV_RETURN_IF_ERROR(check_state_machine_rebuild(env, paths, wal, lmdb, base, obstacle, report));
  report.state_machine_rebuild_reason = "the WAL ends at index " + std::to_string(wal.last_index()) +
                                        " below the applied index " +
                                        std::to_string(lmdb.positions.applied_index) + " and " + obstacle;
  KV_RETURN_IF_ERROR(enter_repair(wal, lmdb, /*lost_applied=*/true, report));
  KV_ASSERT(base_snapshot_of(wal.snapshot()) == base);  // enter_repair recorded the base in the WAL
  return rebuild_state_machine(env, paths, options, base, recovered, lmdb);
}

// `keyval node --bootstrap`: a log never written to gets the bootstrap configuration entry
// (index 1, term 1) and term 1, durably in the WAL; reconcile_log then copies it into LMDB.
// A crash before the sync leaves the log untouched, and the next start writes it again.
Status write_bootstrap(Wal& wal, const LmdbState& lmdb, const ConfigurationEntry& bootstrap, RecoveryReport& report) {
  const bool untouched = !wal_holds_entries(wal) && wal.first_index() == 1 && !wal.snapshot() &&
                         (!wal.metadata() || wal.metadata()->current_term == 0) && lmdb.log.empty() &&
                         !lmdb.snapshot && (!lmdb.metadata || lmdb.metadata->current_term == 0);
  if (!untouched) return Status::ok();
  KV_ASSERT(bootstrap.kind == ConfChangeKind::bootstrap && !bootstrap.members.empty());
  const Entry entry{1, 1, encode_configuration_entry(bootstrap), EntryType::configuration};
  // On probation until every other voter confirms it never counted this node (types.h,
  // Metadata): written before the entry, so a bootstrapped log always has it.
  Metadata metadata{1, 0};
  metadata.probation = true;
  KV_RETURN_IF_ERROR(wal.save_metadata(metadata));
  KV_RETURN_IF_ERROR(wal.append(entry));
  KV_RETURN_IF_ERROR(wal.sync());
  report.bootstrapped = true;
  return Status::ok();
}

}  // namespace

Result<Recovered> recover(Env& env, const std::string& data_directory, const RecoveryOptions& options) {
  KV_RETURN_IF_ERROR(check_options(options));
  Recovered recovered;
  RecoveryReport& report = recovered.report;
  const RecoveryPaths paths = paths_of(data_directory, options);

  // Step 0: trust, asked before anything is opened. A trusted LMDB gets "open <this boot>"
  // durably before it is changed, so a power cut from here on makes the next start distrust
  // it; an untrusted one keeps its marker until it is rebuilt (open_untrusted).
  KV_RETURN_IF_ERROR(env.create_dir(data_directory));
  const bool wal_existed = has_segments(env, paths.wal);
  KV_ASSIGN_OR_RETURN(LmdbMarker marker, read_lmdb_marker(env, data_directory));
  // Without segments nothing was ever acknowledged: LMDB is checked as it is (step 4 refuses
  // one that holds entries without a WAL), never deleted.
  LmdbTrust trust = decide_lmdb_trust(marker, env.boot_id(), wal_existed);
  report.lmdb_rebuild_reason = trust.reason;
  if (!trust.trusted && !wal_existed) report.lmdb_rebuild_reason += "; the WAL has no segments yet: LMDB checked as is";
  KV_RETURN_IF_ERROR(clean_snapshot_directory(env, paths.snapshots));

  // A brand-new directory gets its first WAL segment, durably, before LMDB exists. A power cut
  // in the first start then never leaves an LMDB (written without sync: possibly torn)
  // beside a WAL without segments, which reads as a lost WAL and is refused at every start:
  // LMDB without WAL segments means exactly that the WAL was lost. What shows a used
  // directory without opening LMDB (a clean-stop marker, snapshot files) is refused first,
  // before anything is created or the marker replaced, so every retry refuses just the same;
  // LMDB's own evidence is checked once it is open (open_trusted), before Wal::open.
  if (!wal_existed) {
    KV_RETURN_IF_ERROR(check_wal_exists(paths.wal, wal_existed, evidence_before_lmdb(env, paths, marker)));
  }
  // LMDB is always a real directory (the simulator too keeps it real), hence posix_env().
  if (!wal_existed && !posix_env().exists(join_path(paths.lmdb, lmdb_file_name))) {
    KV_ASSIGN_OR_RETURN(recovered.wal, Wal::open(env, paths.wal, wal_options_of(options, data_directory)));
  }
  LmdbState lmdb;
  if (trust.trusted || !wal_existed) {
    KV_RETURN_IF_ERROR(mark_lmdb_open(env, data_directory));
    KV_RETURN_IF_ERROR(open_trusted(env, paths, wal_existed, options, recovered, lmdb));
  } else {
    KV_RETURN_IF_ERROR(open_untrusted(env, data_directory, paths, options, recovered, lmdb));
  }
  if (options.bootstrap) KV_RETURN_IF_ERROR(write_bootstrap(*recovered.wal, lmdb, *options.bootstrap, report));
  report.lmdb_entries_checked = lmdb.log.entries_checked;
  fill_wal_report(recovered.wal->open_report(), report);

  std::optional<SnapshotMetadata> snapshot = recovered.wal->snapshot() ? recovered.wal->snapshot() : lmdb.snapshot;
  // LMDB indexes the WAL's records once they are durable, so its snapshot record is newer only
  // when a damaged WAL lost that record (salvage; repair_corruption writes it to the WAL again):
  // it was the commit point all the same.
  if (lmdb.snapshot && snapshot && lmdb.snapshot->last_included_index > snapshot->last_included_index) {
    snapshot = lmdb.snapshot;
  }
  if (!report.lmdb_rebuilt && snapshot && snapshot->last_included_index > lmdb.positions.applied_index) {
    // A crash between the WAL's snapshot record (the commit point of an install) and the
    // state machine's replace: the install is finished here.
    SnapshotDirectory snapshots(env, paths.snapshots);
    const std::string path = snapshots.path_for(snapshot->last_included_index, snapshot->last_included_term);
    KV_RETURN_IF_ERROR(load_base_snapshot(env, path, *snapshot, *recovered.store, report));
    KV_ASSIGN_OR_RETURN(lmdb.positions, recovered.store->load_positions());
  }
  // May replace the store (the state machine rebuilt) and record a newer snapshot in the WAL.
  if (options.repair_corruption) KV_RETURN_IF_ERROR(repair_corruption(env, paths, options, recovered, lmdb));
  Store& store = *recovered.store;
  Wal& wal = *recovered.wal;
  snapshot = wal.snapshot() ? wal.snapshot() : lmdb.snapshot;
  const uint64_t snapshot_index = snapshot ? snapshot->last_included_index : 0;
  report.snapshot_index = snapshot_index;
  KV_RETURN_IF_ERROR(check_wal_continues_lmdb(wal, lmdb.log, snapshot_index));
  KV_RETURN_IF_ERROR(reconcile_log(store, wal, snapshot_index, options, lmdb.log, report));
  KV_RETURN_IF_ERROR(reconcile_metadata(store, wal, lmdb, recovered.state));

  StorePositions positions = lmdb.positions;
  positions.indexed_index = wal.last_index();  // LMDB now holds every WAL entry
  KV_RETURN_IF_ERROR(store.save_positions(positions));
  KV_RETURN_IF_ERROR(store.sync());

  KV_RETURN_IF_ERROR(fill_state(store, wal, lmdb.log, recovered.state));
  const RecoveredState& state = recovered.state;
  report.entries_recovered = state.last_index >= state.first_index ? state.last_index - state.first_index + 1 : 0;
  report.entries_recovered_last = state.last_index;
  return recovered;
}

Result<uint64_t> checkpoint(Wal& wal, Store& store) {
  KV_RETURN_IF_ERROR(store.sync());
  KV_ASSIGN_OR_RETURN(uint64_t lmdb_last, store.last_index());
  uint64_t durable = std::min(lmdb_last, wal.last_index());
  if (durable != 0 && durable >= wal.first_index()) {
    KV_ASSIGN_OR_RETURN(uint64_t in_lmdb, lmdb_term(store, durable));
    KV_ASSIGN_OR_RETURN(uint64_t in_wal, wal_term(wal, durable));
    if (in_lmdb != in_wal) {
      return Status::invalid_argument("checkpoint of " + wal.directory() + ": LMDB holds term " +
                                      std::to_string(in_lmdb) + " at index " + std::to_string(durable) +
                                      " but the WAL term " + std::to_string(in_wal) +
                                      "; LMDB must apply the WAL's truncation before segments are dropped");
    }
  }
  KV_ASSIGN_OR_RETURN(StorePositions positions, store.load_positions());
  positions.indexed_index = durable;
  KV_RETURN_IF_ERROR(store.save_positions(positions));
  KV_RETURN_IF_ERROR(store.sync());
  KV_RETURN_IF_ERROR(wal.drop_segments_through(durable).status());
  return durable;
}

// --- verification -----------------------------------------------------------------------

namespace {

// The highest index where LMDB must already agree with the WAL: both hold it, LMDB has indexed
// it, and no truncate record or snapshot reset the WAL still holds may have changed it since.
uint64_t comparable_index(const Wal& wal, const LmdbLog& log, uint64_t indexed_index, uint64_t lowest_cut) {
  uint64_t index = std::min({log.last_index, wal.last_index(), indexed_index, lowest_cut});
  std::optional<SnapshotMetadata> snapshot = wal.snapshot();
  if (snapshot && wal.first_index() == snapshot->last_included_index + 1) {
    index = std::min(index, snapshot->last_included_index);
  }
  if (log.empty() || index < std::max(log.first_index, wal.first_index())) return 0;
  return index;
}

Status check_agreement(Store& store, Wal& wal, uint64_t index) {
  KV_ASSIGN_OR_RETURN(uint64_t in_lmdb, lmdb_term(store, index));
  KV_ASSIGN_OR_RETURN(uint64_t in_wal, wal_term(wal, index));
  if (in_lmdb == in_wal) return Status::ok();
  return Status::corruption(lmdb_log_name(store) + " holds term " + std::to_string(in_lmdb) + " at index " +
                            std::to_string(index) + " but the WAL " + wal.directory() + " holds term " +
                            std::to_string(in_wal) + ", at or below LMDB's indexed position");
}

// LMDB read-only, or an empty state when the environment was never created.
Result<std::unique_ptr<Store>> open_store_read_only(const std::string& data_directory) {
  std::string directory = join_path(data_directory, lmdb_subdirectory);
  if (!posix_env().exists(join_path(directory, lmdb_file_name))) return std::unique_ptr<Store>();
  StoreOptions options;
  options.read_only = true;
  return Store::open(directory, options);
}

}  // namespace

Result<DataDirectoryReport> verify_data_directory(Env& env, const std::string& data_directory) {
  const RecoveryOptions defaults;
  DataDirectoryReport report;
  WalOptions wal_options;
  wal_options.read_only = true;
  uint64_t lowest_cut = UINT64_MAX;  // lowest index a truncate record in the WAL cut the log at
  auto observe = [&](const WalRecordInfo& record) {
    if (record.type == EntryType::truncate) lowest_cut = std::min(lowest_cut, record.index);
  };
  std::string wal_directory = join_path(data_directory, wal_subdirectory);
  KV_ASSIGN_OR_RETURN(std::unique_ptr<Wal> wal, Wal::open(env, wal_directory, wal_options, observe));
  report.wal = wal->open_report();
  report.wal_first_index = wal->first_index();
  report.wal_last_index = wal->last_index();

  KV_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, open_store_read_only(data_directory));
  LmdbState lmdb;
  if (store) {
    KV_ASSIGN_OR_RETURN(lmdb, load_lmdb(*store, defaults.batch_entries_max, defaults.batch_bytes_max));
  }
  report.lmdb_first_index = lmdb.log.first_index;
  report.lmdb_last_index = lmdb.log.last_index;
  report.lmdb_entries_checked = lmdb.log.entries_checked;
  report.indexed_index = lmdb.positions.indexed_index;
  report.metadata = wal->metadata() ? wal->metadata() : lmdb.metadata;
  report.snapshot = wal->snapshot() ? wal->snapshot() : lmdb.snapshot;

  KV_RETURN_IF_ERROR(check_wal_exists(wal_directory, report.wal.segments > 0, evidence_in_lmdb(lmdb)));
  uint64_t snapshot_index = report.snapshot ? report.snapshot->last_included_index : 0;
  KV_RETURN_IF_ERROR(check_wal_continues_lmdb(*wal, lmdb.log, snapshot_index));
  report.compared_index = comparable_index(*wal, lmdb.log, lmdb.positions.indexed_index, lowest_cut);
  if (report.compared_index != 0) KV_RETURN_IF_ERROR(check_agreement(*store, *wal, report.compared_index));
  if (auto base = base_snapshot_of(report.snapshot)) {
    const RecoveryPaths paths = paths_of(data_directory, defaults);
    const std::string path =
        SnapshotDirectory(env, paths.snapshots).path_for(base->last_included_index, base->last_included_term);
    KV_ASSIGN_OR_RETURN(report.snapshot_file, check_base_snapshot(env, path, *base));
  }
  return report;
}

}  // namespace keyval
