// restore_snapshot (see snapshot_restore.h).
#include "apps/snapshot_restore.h"

#include <algorithm>
#include <filesystem>
#include <memory>

#include "storage/lmdb_state.h"
#include "storage/node_identity.h"
#include "storage/snapshot.h"
#include "storage/store.h"
#include "storage/wal.h"

namespace keyval {
namespace {

// A data directory's parts, as storage/recovery.cc lays them out.
const char* const wal_subdirectory = "wal";
const char* const lmdb_subdirectory = "lmdb";
const char* const snapshot_subdirectory = "snapshots";
constexpr size_t copy_bytes_max = 1u << 20;  // the file is copied in pieces of this size


Status check_options(const RestoreOptions& options) {
  if (options.snapshot_path.empty()) return Status::invalid_argument("no snapshot file given");
  if (options.data_directory.empty()) return Status::invalid_argument("no data directory given");
  const bool listed = std::any_of(options.members.begin(), options.members.end(),
                                  [&](const Member& member) { return member.id == options.node_id; });
  if (!listed) {
    return Status::invalid_argument("the peers do not list this node (id " + std::to_string(options.node_id) + ")");
  }
  return Status::ok();
}

// A restore makes a new node: it never writes over one (an existing node's log and votes
// mixed with a backup's state would break Raft's promises to its cluster).
Status check_absent_or_empty(Env& env, const std::string& directory) {
  if (!env.exists(directory)) return Status::ok();
  KV_ASSIGN_OR_RETURN(std::vector<std::string> names, env.list(directory));
  if (names.empty()) return Status::ok();
  std::string listed;
  for (size_t i = 0; i < names.size() && i < 3; ++i) listed += (i == 0 ? "" : ", ") + names[i];
  if (names.size() > 3) listed += ", ...";
  return Status::invalid_argument("data directory " + directory + " is not empty (it holds " + listed +
                                  "): restore only into a new node's directory");
}

// A directory left by a restore that failed or crashed (it is never a node's: only this
// function writes there, and it is renamed away once complete).
Status remove_tree(const std::string& directory) {
  std::error_code error;
  std::filesystem::remove_all(directory, error);
  if (error) return Status::io_error("cannot remove " + directory + ": " + error.message());
  return Status::ok();
}

Status copy_file(Env& env, const std::string& from, const std::string& to) {
  KV_ASSIGN_OR_RETURN(std::unique_ptr<File> source, env.open_file(from, OpenMode::read_only));
  KV_ASSIGN_OR_RETURN(std::unique_ptr<File> target, env.open_file(to, OpenMode::create_new));
  std::vector<uint8_t> buffer(copy_bytes_max);
  for (uint64_t offset = 0;;) {
    KV_ASSIGN_OR_RETURN(size_t read, source->read_at(offset, buffer.data(), buffer.size()));
    if (read == 0) break;
    KV_RETURN_IF_ERROR(target->write_at(offset, buffer.data(), read));
    offset += read;
  }
  return target->sync_data();
}

// snapshots/: the backup's copy under its canonical name. Returns its path.
Result<std::string> place_snapshot(Env& env, const RestoreOptions& options, const std::string& directory,
                                   const SnapshotHeader& header) {
  SnapshotDirectory snapshots(env, join_path(directory, snapshot_subdirectory));
  KV_RETURN_IF_ERROR(snapshots.create());
  const std::string temporary = snapshots.temp_path_for(header.index, header.term, "restore");
  KV_RETURN_IF_ERROR(copy_file(env, options.snapshot_path, temporary));
  KV_RETURN_IF_ERROR(snapshots.publish(temporary, header.index, header.term));
  return snapshots.path_for(header.index, header.term);
}

// wal/: the term and the base snapshot, the new members as its configuration; the log
// continues after the snapshot.
Status write_wal(Env& env, const std::string& directory, const Metadata& metadata, const SnapshotMetadata& snapshot) {
  WalOptions wal_options;
  wal_options.first_index = snapshot.last_included_index + 1;
  KV_ASSIGN_OR_RETURN(std::unique_ptr<Wal> wal, Wal::open(env, join_path(directory, wal_subdirectory), wal_options));
  KV_RETURN_IF_ERROR(wal->save_metadata(metadata));
  KV_RETURN_IF_ERROR(wal->save_snapshot(snapshot));
  return wal->sync();
}

// lmdb/: what the store_indexer would hold after applying those WAL records and installing
// the snapshot (store_indexer.cc): metadata, snapshot metadata, the state machine at the
// snapshot, indexed through it. Written with durable commits and synced.
Result<uint64_t> load_store(Env& env, const std::string& directory, const std::string& snapshot_path,
                            const Metadata& metadata, const SnapshotMetadata& snapshot) {
  KV_ASSIGN_OR_RETURN(std::unique_ptr<Store> store,
                      Store::open(join_path(directory, lmdb_subdirectory), StoreOptions{SyncMode::durable}));
  KV_RETURN_IF_ERROR(store->save_metadata(metadata));
  KV_RETURN_IF_ERROR(store->save_snapshot_metadata(snapshot));
  KV_ASSIGN_OR_RETURN(SnapshotSummary loaded, load_snapshot(env, snapshot_path, *store));
  KV_ASSIGN_OR_RETURN(StorePositions positions, store->load_positions());
  positions.indexed_index = snapshot.last_included_index;
  KV_RETURN_IF_ERROR(store->save_positions(positions));
  KV_RETURN_IF_ERROR(store->sync());
  return loaded.keys;
}

Status build(Env& env, const RestoreOptions& options, const std::string& directory, RestoreReport& report) {
  const SnapshotHeader& header = report.backup.header;
  NodeIdentity identity;
  identity.cluster = options.cluster;
  identity.node_id = options.node_id;
  for (const Member& member : options.members) identity.voters.push_back(member.id);
  std::sort(identity.voters.begin(), identity.voters.end());
  KV_RETURN_IF_ERROR(claim_data_directory(env, directory, identity));

  KV_ASSIGN_OR_RETURN(std::string snapshot_path, place_snapshot(env, options, directory, header));
  const Metadata metadata{header.term, 0};
  const SnapshotMetadata snapshot{header.index, header.term, options.members};
  KV_RETURN_IF_ERROR(write_wal(env, directory, metadata, snapshot));
  KV_ASSIGN_OR_RETURN(report.keys_loaded, load_store(env, directory, snapshot_path, metadata, snapshot));
  if (report.keys_loaded != report.backup.keys) {
    return Status::corruption("loaded " + std::to_string(report.keys_loaded) + " keys from the copy of " +
                              options.snapshot_path + ", which verified with " + std::to_string(report.backup.keys));
  }
  // LMDB was written with durable commits and is closed: the node's first start trusts it.
  KV_RETURN_IF_ERROR(mark_lmdb_clean(env, directory));
  return env.sync_dir(directory);
}

}  // namespace

Result<RestoreReport> restore_snapshot(Env& env, const RestoreOptions& given) {
  RestoreOptions options = given;
  // "d/" names d: the directory built beside it must not land inside it.
  while (options.data_directory.size() > 1 && options.data_directory.back() == '/') options.data_directory.pop_back();
  KV_RETURN_IF_ERROR(check_options(options));
  KV_RETURN_IF_ERROR(check_absent_or_empty(env, options.data_directory));
  RestoreReport report;
  // Nothing is written before the whole file has verified.
  KV_ASSIGN_OR_RETURN(report.backup, verify_snapshot_file(env, options.snapshot_path));
  if (report.backup.header.index == 0) {
    return Status::invalid_argument(options.snapshot_path + " is a snapshot of an empty state (index 0)");
  }

  const std::string building = options.data_directory + ".restore.tmp";
  KV_RETURN_IF_ERROR(remove_tree(building));
  Status built = build(env, options, building, report);
  if (!built.is_ok()) {
    (void)remove_tree(building);
    return built;
  }
  // rename(2) replaces an empty directory; the parent is fsynced so the name is durable.
  KV_RETURN_IF_ERROR(env.rename(building, options.data_directory));
  KV_RETURN_IF_ERROR(env.sync_dir(parent_directory(options.data_directory)));
  report.snapshot_path = SnapshotDirectory(env, join_path(options.data_directory, snapshot_subdirectory))
                             .path_for(report.backup.header.index, report.backup.header.term);
  return report;
}

}  // namespace keyval
