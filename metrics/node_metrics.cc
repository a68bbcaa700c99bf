// The node's metrics (see node_metrics.h). Names follow Prometheus' conventions: keyval_
// prefix, the unit last (_seconds, _bytes), _total for counters.
#include "metrics/node_metrics.h"

#include "storage/status.h"

namespace keyval::metrics {
namespace {

// raft::role_name's vocabulary (metrics/ does not depend on raft/; NodeMetrics checks a role
// it is given is one of these).
const char* const role_names[] = {"follower", "pre_candidate", "candidate", "leader"};

// fdatasync takes from tens of microseconds (a battery-backed cache) to seconds (a failing
// disk): 50 us .. ~3.3 s, doubling.
std::vector<double> fsync_bounds() { return exponential_bounds(0.00005, 2, 17); }
// Entries per group commit: 1 .. 4096, doubling.
std::vector<double> group_bounds() { return exponential_bounds(1, 2, 13); }
// A client request: 100 us .. ~6.5 s, doubling (the gateway's default timeout is 2 s).
std::vector<double> request_bounds() { return exponential_bounds(0.0001, 2, 17); }

Gauge& unlabelled_gauge(Registry& registry, const char* name, const char* help) {
  return registry.gauge(name, help).with({});
}
Counter& unlabelled_counter(Registry& registry, const char* name, const char* help) {
  return registry.counter(name, help).with({});
}

}  // namespace

NodeMetrics::NodeMetrics()
    : role_(registry_.gauge("keyval_raft_role", "1 for the node's Raft role, 0 for the others", {"role"})),
      proposals_(registry_.counter("keyval_raft_proposals_total",
                                   "Proposals handed to the raft node, by result: accepted into the leader's log, "
                                   "or refused (not the leader)",
                                   {"result"})),
      proposal_results_(registry_.counter("keyval_raft_proposal_results_total",
                                          "Accepted proposals a client waited for, by what came of them: applied, "
                                          "or lost (another leader's entry took their index)",
                                          {"result"})),
      client_requests_(registry_.counter("keyval_client_requests_total",
                                         "Client requests answered, by operation and outcome (the answer's status)",
                                         {"operation", "outcome"})),
      client_request_seconds_(registry_.histogram("keyval_client_request_duration_seconds",
                                                  "Time from a client request's arrival to its answer, by operation",
                                                  request_bounds(), {"operation"})),
      serving(unlabelled_gauge(registry_, "keyval_node_serving",
                               "1 once the node has recovered its data directory and serves, 0 while it recovers")),
      term(unlabelled_gauge(registry_, "keyval_raft_term", "The node's current Raft term")),
      leader_id(unlabelled_gauge(registry_, "keyval_raft_leader_id",
                                 "The node id this node believes leads; 0 when it knows no leader")),
      commit_index(unlabelled_gauge(registry_, "keyval_raft_commit_index", "The highest log index known committed")),
      applied_index(unlabelled_gauge(registry_, "keyval_raft_applied_index",
                                     "The highest log index the state machine has applied")),
      proposals_accepted(proposals_.with({"accepted"})),
      proposals_refused(proposals_.with({"refused"})),
      proposals_applied(proposal_results_.with({"applied"})),
      proposals_lost(proposal_results_.with({"lost"})),
      wal_fsync_seconds(registry_
                            .histogram("keyval_wal_fsync_duration_seconds",
                                       "Duration of each WAL group commit's flush and fdatasync", fsync_bounds())
                            .with({})),
      wal_group_entries(registry_
                            .histogram("keyval_wal_group_commit_entries",
                                       "Log entries made durable by each WAL group commit (one fdatasync)",
                                       group_bounds())
                            .with({})),
      wal_written_bytes(unlabelled_counter(registry_, "keyval_wal_written_bytes_total",
                                           "Record bytes appended to the WAL, headers and padding included")),
      snapshots_taken(unlabelled_counter(registry_, "keyval_snapshots_taken_total",
                                         "Snapshots this node took of its state machine (durable)")),
      snapshots_installed(unlabelled_counter(registry_, "keyval_snapshots_installed_total",
                                             "Snapshots received from a leader and installed (InstallSnapshot)")),
      log_compactions(unlabelled_counter(registry_, "keyval_log_compactions_total",
                                         "Log compactions finished (WAL segments and LMDB log released after a snapshot)")),
      client_connections(unlabelled_gauge(registry_, "keyval_client_connections", "Client connections open now")),
      client_connections_accepted(unlabelled_counter(registry_, "keyval_client_connections_accepted_total",
                                                     "Client connections accepted since the node started")) {
  for (const char* role : role_names) role_.with({role});
  set_role("follower");  // what the raft node starts as
}

void NodeMetrics::set_role(std::string_view role) {
  bool known = false;
  for (const char* name : role_names) {
    const bool this_one = role == name;
    known = known || this_one;
    role_.with({name}).set(this_one ? 1 : 0);
  }
  KV_ASSERT(known);
}

void NodeMetrics::client_request(const char* operation, const char* outcome, double seconds) {
  client_requests_.with({operation, outcome}).add();
  client_request_seconds_.with({operation}).observe(seconds);
}

}  // namespace keyval::metrics
