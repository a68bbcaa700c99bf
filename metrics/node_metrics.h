// The metrics one KeyVal node exposes on --metrics-listen (docs/OPERATIONS.md, "Metrics and
// health", lists them with their meaning). One NodeMetrics per node process, shared (by
// shared_ptr) with the actors that update it through their config structs; a null pointer
// there means no metrics, which is what the simulator and the tests without a listener pass.
//
// Raft's state (term, role, leader, commit and applied index) is pushed by its owners as it
// changes rather than asked for at scrape time: a scrape then never waits on an actor, so
// /metrics and /health answer even while the raft node or the state machine is stuck, which
// is when an operator needs them; the cost is a few relaxed atomic stores per raft input.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "metrics/registry.h"

namespace keyval::metrics {

class NodeMetrics {
  // First: the references below point into it, and members are built in declaration order
  // (which is also the order the families are rendered in).
  Registry registry_;
  Family<Gauge>& role_;
  Family<Counter>& proposals_;
  Family<Counter>& proposal_results_;
  Family<Counter>& client_requests_;
  Family<Histogram>& client_request_seconds_;

 public:
  NodeMetrics();
  NodeMetrics(const NodeMetrics&) = delete;
  NodeMetrics& operator=(const NodeMetrics&) = delete;

  std::string render() const { return registry_.render(); }

  // The role gauges: 1 for `role` (a raft::role_name), 0 for the others.
  void set_role(std::string_view role);
  // A client request answered: its operation and outcome (client_op_name, client_status_name)
  // and the time from its arrival to its answer.
  void client_request(const char* operation, const char* outcome, double seconds);

  // Set once the node has recovered and serves (before that, /health says "recovering").
  Gauge& serving;
  // Raft state, as the raft node and the state machine last set it.
  Gauge& term;
  Gauge& leader_id;
  Gauge& commit_index;
  Gauge& applied_index;
  // Proposals the raft node was handed: accepted into the leader's log, or refused (not the
  // leader). What came of the accepted ones a client waited for: applied, or lost (another
  // leader's entry took the index).
  Counter& proposals_accepted;
  Counter& proposals_refused;
  Counter& proposals_applied;
  Counter& proposals_lost;
  // The WAL: each group commit's fdatasync, how many log entries it made durable, and the
  // record bytes appended (headers and padding included).
  Histogram& wal_fsync_seconds;
  Histogram& wal_group_entries;
  Counter& wal_written_bytes;
  // Snapshots this node took, snapshots installed from a leader, log compactions finished.
  Counter& snapshots_taken;
  Counter& snapshots_installed;
  Counter& log_compactions;
  // Client connections open now and accepted since the start.
  Gauge& client_connections;
  Counter& client_connections_accepted;
};

}  // namespace keyval::metrics
