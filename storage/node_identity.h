// The identity of a node's data directory: which cluster and which node id it belongs to.
//
// A data directory holds one node's log and state; started as another node, or in another
// cluster, it would hand out votes and entries that belong elsewhere (two directories with
// the same id in one cluster can elect two leaders in one term). The first start writes
// D/IDENTITY (durably: temporary file, fsync, rename, fsync of D) before any data exists;
// every later start compares it with what the node was started as and refuses a mismatch.
// The identity is the cluster name and the node id. Since membership changes exist
// (docs/MEMBERSHIP.md) the members live in the log (configuration entries) and snapshots, not
// here: a directory is created by `keyval node --bootstrap` or `--join`, and says which.
//
// IDENTITY is text, one "name value" pair per line:
//   keyval-identity 1
//   cluster NAME
//   node ID
//   created bootstrap|join      (directories made since membership changes)
//   voters 1,2,3                (older directories and restored backups: the voters fixed at
//                                creation, used when the log holds no configuration)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "storage/env.h"
#include "storage/status.h"

namespace keyval {

constexpr const char* identity_file_name = "IDENTITY";

struct NodeIdentity {
  std::string cluster;           // [A-Za-z0-9._-], 1..64 characters
  uint64_t node_id = 0;          // never 0
  // Sorted, includes node_id; empty in a directory made by --bootstrap or --join (its members
  // are in its log).
  std::vector<uint64_t> voters;
  std::string created;           // "bootstrap", "join", or "" (an older directory, a restore)

  std::string describe() const;  // "node 2 of cluster NAME" (+ " (voters 1,2,3)" when it has them)
};

// invalid_argument naming the field when the identity is not well formed.
Status check_identity(const NodeIdentity& identity);

// Reads D/IDENTITY: not_found when absent, corruption naming the line when malformed.
Result<NodeIdentity> read_identity(Env& env, const std::string& directory);

// Creates D when missing and claims it for `identity`: writes IDENTITY when D holds nothing
// else yet; checks it otherwise (cluster and node id). invalid_argument with both identities
// when they differ, or when D holds data (wal/, lmdb/) but no IDENTITY.
Status claim_data_directory(Env& env, const std::string& directory, const NodeIdentity& identity);

// A start without --bootstrap or --join: D must hold the IDENTITY of node `node_id` of
// `cluster`. The identity found; not_found (naming D) when D or its IDENTITY is missing;
// invalid_argument when it belongs to another node or cluster.
Result<NodeIdentity> check_data_directory(Env& env, const std::string& directory, const std::string& cluster,
                                          uint64_t node_id);

}  // namespace keyval
