// What a Raft core is told at construction: who it is, who votes, its timeouts in ticks
// and the bounds on replication traffic. Time is counted in ticks so the core never
// reads a clock; the host decides how long a tick is.
#pragma once

#include <cstdint>
#include <vector>

namespace keyval::raft {

// Deliberate safety bugs, for the simulator's test that it catches them (tests/sim_test.cc).
// Never set outside that test: each one breaks Raft.
enum class PlantedBug : uint8_t {
  none,
  vote_before_durable,  // a vote grant leaves before the vote is durable (breaks Figure 2)
  ack_before_durable,   // an append success leaves before its entries are durable (Figure 2)
  commit_old_term,      // a leader commits an earlier term's entry by counting replicas (Figure 8)
  snapshot_ack_before_durable,  // an InstallSnapshot success leaves before snapshot_durable()
  compact_past_commit,  // snapshot_taken() compacts the whole log, uncommitted entries included (§7)
  // propose_conf_change() accepts a change while the previous one is uncommitted: two
  // single-server changes at once, whose old and new majorities need not overlap (§4.1)
  conf_changes_at_once,
  // a leader counts the acknowledgements of every node it replicates to, a member its latest
  // configuration removed included, toward commit (§4.1: only the voters of the configuration
  // in use count)
  removed_still_counts,
  // a node in the repairing state (Metadata::repairing: it discarded a log it could not read)
  // grants votes like any other, although its log may lack committed entries it acknowledged
  vote_while_repairing,
  // a leader counts its own copy of an entry toward commit as soon as the entry is in its log,
  // before its own fsync reports it durable (thesis §10.2.1 allows writing the leader's log in
  // parallel with replicating it, but a leader's copy counts only once durable)
  leader_counts_before_durable,
  // Not the core's: the raft node (actors/raft_node.cc installed()) removes the snapshot files
  // older than an installed snapshot at once, not after its state machine has loaded it, so a
  // snapshot received just before may lose its file before its load
  release_snapshot_before_load,
  // Not the core's: the client gateway (actors/client_gateway.cc read_batch) serves a batch of
  // gets (GetBatch) from the node's applied state without a ReadIndex, so a deposed leader or
  // a follower answers with values that may be stale (§6.4)
  get_batch_without_read_index,
};

struct Config {
  uint64_t node_id = 0;            // never 0 (0 means "none" in voted_for and leader ids)
  // Every voting member, including node_id: used only when the recovered state holds no
  // configuration (a directory from before configurations were logged).
  std::vector<uint64_t> voters;

  // §5.2: a follower that hears nothing for a random timeout in [min, max] campaigns.
  uint32_t election_timeout_ticks_min = 10;
  uint32_t election_timeout_ticks_max = 20;
  uint32_t heartbeat_ticks = 2;    // must be well below election_timeout_ticks_min

  bool pre_vote = true;            // thesis §9.6: a partitioned node cannot inflate terms
  bool check_quorum = true;        // a leader that lost a quorum steps down; live leader ⇒ ignore votes

  // Bounds on one AppendEntries and on what may be unacknowledged per follower (pipelining).
  uint32_t max_entries_per_append = 1024;
  uint64_t max_bytes_per_append = 1 << 20;
  uint32_t max_inflight_appends = 8;
  uint64_t max_inflight_bytes = 8 << 20;
  // A probe carrying more entry bytes than this is not resent at every heartbeat, only after
  // an election timeout without an answer (Core::send_heartbeat).
  uint64_t probe_resend_bytes = 64 << 10;

  // Bound on the committed entries handed out in one Ready (the rest follow in the next).
  uint64_t max_apply_bytes_per_ready = 4 << 20;

  // §7: entries kept in memory below a snapshot, so a follower a little behind catches up by
  // AppendEntries instead of a whole snapshot (etcd's SnapshotCatchUpEntries).
  uint64_t log_tail_entries = 5000;

  // Membership: a learner is promoted only while its log is at most this many entries behind
  // the leader's last index, holds the configuration entry in use, and answered within the
  // last election timeout.
  uint64_t promote_lag_max = 1000;

  uint64_t random_seed = 1;        // election timeouts and the incarnation; a new one at each start

  PlantedBug planted_bug = PlantedBug::none;  // tests only (see PlantedBug)
};

}  // namespace keyval::raft
