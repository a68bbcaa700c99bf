// Snapshots of the state machine: taking one from LMDB into a snapshot file, loading one
// from a file into LMDB, and a hash of the state to compare replicas.
//
// take_snapshot streams one LMDB read transaction (a consistent view at one applied index,
// taken while the store's owner keeps applying entries) into
// "<directory>/snap-<index>-<term>.snap.take.tmp", finishes it (fdatasync) and publishes it
// (rename, directory fsync). The file is not yet the node's base snapshot: that takes the
// WAL's snapshot record (Wal::save_snapshot), written by the caller after this returns.
// On any failure the temporary file is removed and earlier snapshots are untouched.
//
// load_snapshot replaces kv, sessions and the applied position in one LMDB write
// transaction: a damaged file (found part-way) or a crash leaves the store as it was.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "storage/env.h"
#include "storage/snapshot_file.h"
#include "storage/status.h"
#include "storage/store.h"
#include "storage/types.h"

namespace keyval {

// One read transaction of `store`'s state machine, safe from another thread than the store's
// owner. The snapshot's index and term are the store's applied position (invalid_argument
// when nothing is applied yet); `configuration` goes into its header as given.
Result<SnapshotSummary> take_snapshot(Env& env, Store& store, SnapshotDirectory& directory,
                                      const std::vector<Member>& configuration);

// Replaces store's kv + sessions + applied (index, term) with the file's, in one write txn.
Result<SnapshotSummary> load_snapshot(Env& env, const std::string& path, Store& store);

// Hash of the kv state (keys and values in key order) and the applied index it was read at,
// from one read transaction (safe from another thread, as take_snapshot). The hash is FNV-1a
// 64 over, for each pair in LMDB key order, the key's byte count (u64 little-endian), the
// key, the value's byte count (u64 little-endian) and the value: equal states hash equal on
// every replica and build; the lengths keep ("ab","c") apart from ("a","bc"). Sessions are
// not hashed (they only decide retries, and are compared through the results they give).
Result<std::pair<uint64_t /*applied*/, uint64_t /*hash*/>> hash_state_machine(Store& store);

}  // namespace keyval
