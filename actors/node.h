// One KeyVal node, assembled: recovery first, then the actors that serve (DESIGN.md, "The
// node"). The same code starts a real node (apps/, TCP transport, detached persistence
// actors) and a simulated one (sim/, the simulator's transport and disk, everything on the
// deterministic scheduler).
//
// start_node() never blocks. In the node's actor system it spawns a starter actor that:
//   1. runs the recovery_coordinator (storage/recovery.h: LMDB and the WAL checked,
//      repaired, reconciled), which spawns the wal_writer and store_indexer;
//   2. spawns the state machine actor (the key-value state on the same LMDB, its applied
//      index read as it starts), asks it for that index and loads the log from the indexer;
//   3. spawns the raft node (given the transport) and the client gateway, tells the transport where this node's raft messages go
//      (raft_peer_atom, node_id, raft node), and
//   4. runs `done` with the handles, or with the error that stopped it (corruption, a
//      locked data directory, ...), after which nothing of the node is left running.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "actors/client_gateway.h"
#include "actors/raft_node.h"
#include "actors/recovery_coordinator.h"
#include "actors/state_machine.h"

namespace keyval {

struct NodeConfig {
  PersistenceConfig persistence;  // data directory, Env, detached or not
  RaftNodeConfig raft;            // raft.raft.node_id and voters must be set; transport and observers
  ClientGatewayConfig gateway;    // node_id is filled in from raft.raft.node_id
  StateMachineConfig state_machine;  // persistence, detached and log are filled in from recovery
  // The raft node and the client gateway on the network thread (`keyval node --threads 0`,
  // node_scheduler.h) rather than on the scheduler's workers, and the state machine there
  // rather than on a thread of its own (StateMachineConfig::on_network_thread).
  bool on_network_thread = false;
};

struct NodeHandles {
  uint64_t node_id = 0;
  raft_node_actor raft_node;
  state_machine_actor state_machine;
  client_gateway_actor gateway;
  wal_writer_actor writer;
  store_indexer_actor indexer;
  snapshotter_actor snapshotter;
  applied_reader_actor reader;   // large get batches (state_machine.h); null unless on_network_thread
  RecoveredState recovered;      // what recovery found (log bounds, metadata)
  std::string recovery_summary;  // the recovery_coordinator's one line
  RecoveryFigures recovery;      // its figures
  uint64_t applied_index = 0;    // the state machine's, at start
};

// Returns the starter: an exit sent to it before `done` ran stops what it spawned so far (a
// node stopped while starting), and `done` never runs.
caf::actor start_node(caf::actor_system& system, NodeConfig config, std::function<void(Result<NodeHandles>)> done);

// Stops every actor of a started node (the raft node first, persistence last). With
// user_shutdown (a clean stop) the last of LMDB's two writers to stop (the store_indexer, the
// state machine) syncs LMDB and marks it clean; the
// simulator's crashes use kill, which leaves LMDB as a crash would.
void stop_node(const NodeHandles& handles, caf::exit_reason reason = caf::exit_reason::user_shutdown);

// The scheduler a node runs on (`keyval node`, and the benchmarks that measure its actors):
// NodeCoordinator (actors/node_scheduler.h), one shared queue and `workers` workers. The
// persistence actors run on threads of their own; work-stealing workers polling for jobs cost
// a small machine more CPU than they save (docs/BENCHMARKS.md, "Where the time goes").
void use_node_scheduler(caf::actor_system_config& config, size_t workers);

}  // namespace keyval
