// The operator's membership procedures (docs/MEMBERSHIP.md) on a LocalCluster, timed: what
// `keyval experiment run` (kill replace, kill grow) and `keyval bench replace` do to real
// `keyval node` processes on 127.0.0.1.
//
// join_new_member: `keyval member add ID` (a learner), the node started with --join and a new,
// empty data directory, its log followed until it is within the promote bound of the leader's,
// then `keyval member promote ID` (asked again while the leader answers learner_behind); it
// returns once the node also applied the commit index the cluster had when it started.
// remove_old_member: `keyval member remove ID` (a leader hands leadership over first), then the
// node's process is stopped by its PID and its data directory deleted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "apps/local_cluster.h"
#include "storage/status.h"

namespace keyval {

struct MemberJoin {
  uint64_t id = 0;
  // Steady-clock milliseconds (steady_now_ms).
  uint64_t asked_ms = 0;      // member add asked
  uint64_t started_ms = 0;    // the node's process started (after the add was committed)
  uint64_t voter_ms = 0;      // its promotion was committed
  uint64_t caught_up_ms = 0;  // it applied `commit_index`
  uint64_t commit_index = 0;  // the highest commit index among the members at its start
  // What the cluster sent it while it caught up: the snapshot bytes it received (its log's
  // "snapshot N received from node L: B bytes" lines) plus its WAL's record bytes then
  // (live_wal_record_bytes).
  uint64_t bytes_received = 0;
  uint64_t snapshot_bytes = 0;  // of which snapshots
};

struct MembershipTimeouts {
  uint64_t catch_up_ms = 60000;   // from the start until promoted and caught up
  uint64_t change_ms = 15000;     // one configuration change (add, promote, remove)
  uint64_t stop_ms = 10000;       // a SIGTERMed node's exit
};

// `members`: the ids in the configuration now (their client endpoints are asked).
Result<MemberJoin> join_new_member(LocalCluster& cluster, const std::vector<uint64_t>& members, uint64_t id,
                                   const MembershipTimeouts& timeouts = {});

// Removes `id` from the configuration, then stops its process (SIGTERM, waited for, or
// SIGKILL) and deletes its data directory. `members` as above (it may include `id`).
Status remove_old_member(LocalCluster& cluster, const std::vector<uint64_t>& members, uint64_t id, int stop_signal,
                         const MembershipTimeouts& timeouts = {});

// The WAL's bytes of records (not its preallocated space). A running node may be writing the
// tail while it is read, so a failed read is retried a few times; nullopt when every attempt
// raced the writer.
std::optional<uint64_t> wal_record_bytes(const std::string& data_directory, int attempts = 5);
// For a WAL being written: the bytes of the records read whole before the reader met the one
// being written (under load a live read nearly always meets one): short by that record at most.
uint64_t live_wal_record_bytes(const std::string& data_directory);

// The sum of the "snapshot N received from node L: B bytes" lines in node id's log from `from`.
uint64_t snapshot_bytes_received(const LocalCluster& cluster, uint64_t id, uint64_t from = 0);

}  // namespace keyval
