// The identity of a node's data directory: which cluster and which node id it belongs to.
//
// A data directory holds one node's log and state; started as another node, or in another
// cluster, it would hand out votes and entries that belong elsewhere (two directories with
// the same id in one cluster can elect two leaders in one term). The first start writes
// D/IDENTITY (durably: temporary file, fsync, rename, fsync of D) before any data exists;
// every later start compares it with what the node was started as and refuses a mismatch.
//
// IDENTITY is text, one "name value" pair per line:
//   keyval-identity 1
//   cluster NAME
//   node ID
//   voters 1,2,3
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
  std::vector<uint64_t> voters;  // sorted, includes node_id

  std::string describe() const;  // "node 2 of cluster NAME (voters 1,2,3)"
};

// invalid_argument naming the field when the identity is not well formed.
Status check_identity(const NodeIdentity& identity);

// Reads D/IDENTITY: not_found when absent, corruption naming the line when malformed.
Result<NodeIdentity> read_identity(Env& env, const std::string& directory);

// Creates D when missing and claims it for `identity`: writes IDENTITY when D holds nothing
// else yet; checks it otherwise. invalid_argument with both identities when they differ,
// or when D holds data (wal/, lmdb/) but no IDENTITY.
Status claim_data_directory(Env& env, const std::string& directory, const NodeIdentity& identity);

}  // namespace keyval
