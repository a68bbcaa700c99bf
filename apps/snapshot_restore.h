// Restoring a backup (`keyval snapshot restore`): seeds a fresh node's data directory from a
// snapshot file, as a member of a NEW cluster, so a whole cluster can be rebuilt from one
// backup (restore the same file into each node's directory, each with its own id and the same
// peers, then start the nodes; docs/OPERATIONS.md).
//
// The directory it builds is what a node that had just installed that snapshot would hold:
//   IDENTITY                 cluster, node id, voters (storage/node_identity.h)
//   snapshots/snap-<index:020>-<term:020>.snap   a copy of the file, fdatasynced
//   wal/                     metadata {current_term = the snapshot's term, voted_for = 0} and the
//                            snapshot record {index, term, configuration = the new members}: the
//                            restored cluster's membership replaces the backup's
//   lmdb/                    the snapshot loaded (storage/snapshot.h), so a damaged copy is
//                            found now and not at the node's first start; LMDB_STATE "clean"
// The backup file is verified end to end before anything is written. Everything is built in
// "<data dir>.restore.tmp" and renamed to the data directory at the end (which must be absent
// or empty): a failure or a crash never leaves a half-restored data directory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "storage/env.h"
#include "storage/snapshot_file.h"
#include "storage/status.h"
#include "storage/types.h"

namespace keyval {

struct RestoreOptions {
  std::string snapshot_path;     // the backup file
  std::string data_directory;    // must be absent or empty
  std::string cluster = "keyval";
  uint64_t node_id = 0;
  std::vector<Member> members;   // the new cluster's voters, node_id among them
};

struct RestoreReport {
  SnapshotSummary backup;        // what the backup file holds (verified)
  std::string snapshot_path;     // where its copy went, as it will be once renamed into place
  uint64_t keys_loaded = 0;      // into LMDB
};

// invalid_argument when the options are wrong or the data directory is not empty; the
// verification's error (corruption naming file and offset) when the backup is damaged.
Result<RestoreReport> restore_snapshot(Env& env, const RestoreOptions& options);

}  // namespace keyval
