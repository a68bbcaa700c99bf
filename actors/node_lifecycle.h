// One node's life cycle, the same for a process (`keyval node`, apps/node_command.cc) and for a
// simulated node (sim/sim_node.cc): which data directory it may use, how it starts, what
// watches it while it runs, and the order it stops in. CLI parsing, sockets, signals and the
// simulator's scheduling stay with the callers; every rule below lives here once.
//
//   1. open_data_directory(): the identity claim (storage/node_identity.h), through an Env
//      (the real file system, or the simulator's SimDisk). A directory is created only by
//      bootstrap (a new cluster) or join (a new member of a running one); without either a
//      missing directory is refused. Join asks the running cluster for its configuration
//      through an injected function (a process: KvClient member_list to --join's endpoints; the
//      simulator: its own view), which must list this node; a fresh directory is refused when
//      the cluster lists this node id as a VOTER: a voter re-created empty under its old id
//      could vote without the log and votes it promised (docs/MEMBERSHIP.md, "Replacing a node").
//   2. NodeLifecycle::start(): start_node() (actors/node.h: recovery, then the actors), then
//      supervision of every actor of the node: raft node, wal_writer, store_indexer,
//      snapshotter, state machine, client gateway, the transport when it is given one, and
//      the caller's client-side actors (supervise_client_side). The first actor that stops
//      without the life cycle having stopped it is reported once, by name and reason, through
//      NodeLifecycleConfig::failed (fail-stop: the caller then stops the node).
//   3. NodeLifecycle::stop(): the stop order, in one place. A clean stop (SIGTERM) first runs
//      the hand-off hook (a leader hands leadership over, §3.10), then
//      stops the client side (the caller's client-side actors, the gateway), the raft node, the
//      state machine, persistence last (snapshotter, wal_writer, store_indexer: user_shutdown
//      makes the indexer sync LMDB and mark it clean), then the transport. A fail-stop skips
//      the hand-off; a crash (the simulator) skips it and uses kill, which leaves LMDB as
//      SIGKILL would.
//
// Threads: in a process the failure callback runs on whichever thread the stopping actor ran
// on, and start's `done` on the starter actor's; stop() may be called from any thread. In the
// simulator everything runs on the one simulation thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/client_protocol.h"
#include "actors/node.h"
#include "storage/env.h"
#include "storage/node_identity.h"

namespace keyval {

// --- 1. the data directory -------------------------------------------------------------------

// What a running cluster answers about its configuration (member_list).
struct ClusterView {
  uint64_t answered_by = 0;  // the node that answered
  uint64_t configuration_index = 0;
  std::vector<ConfigurationMember> configuration;
};

// Asks the running cluster for its configuration; an error says why it could not (the message
// is shown as it is, so it names where it asked).
using AskCluster = std::function<Result<ClusterView>()>;

struct DataDirectoryOptions {
  Env* env = nullptr;  // posix_env() for a process, the SimDisk for a simulated node
  std::string data_directory;
  std::string cluster = "keyval";
  uint64_t node_id = 0;
  // At most one of these: they are how a directory gets created.
  bool bootstrap = false;           // a node of a new cluster whose voters are bootstrap_members
  std::vector<Member> bootstrap_members;
  bool join = false;                // a new member of a running cluster, asked through ask_cluster
  AskCluster ask_cluster;
  // For join's messages: where the cluster was asked ("--join 10.0.0.1:7101"), the peer address
  // this node listens on (a warning when the cluster knows another), and the command that adds
  // this node (the refusal when the cluster does not list it).
  std::string join_source;
  std::string peer_address;
  std::string add_member_command;
  std::function<void(const std::string&)> log;  // one line per event; may be empty
};

struct OpenedDataDirectory {
  NodeIdentity identity;
  bool created = false;  // claimed by this start
  // RecoveryOptions::bootstrap: the first entry of a new cluster's log (bootstrap, on a
  // directory not made by join; recovery writes it only into a log never written to).
  std::optional<ConfigurationEntry> bootstrap;
  // The running cluster's answer (join), when it was asked and answered.
  std::optional<ClusterView> cluster_view;
};

// Checks an existing data directory, or creates it when bootstrap or join asks for it:
//   * exists, IDENTITY of this node and cluster: ok (bootstrap then only re-bootstraps a log
//     never written to, and is ignored for a directory made by join; join asks the cluster
//     for its members' addresses, best effort);
//   * exists, IDENTITY of another node or cluster: invalid_argument naming both;
//   * missing (or without IDENTITY), neither flag: not_found naming the path and both flags;
//   * missing, join: the cluster must answer and list this node, as a learner: not_found when
//     it does not list it (naming add_member_command), invalid_argument when it lists it
//     as a voter (naming the replacement procedure); then IDENTITY is claimed.
Result<OpenedDataDirectory> open_data_directory(const DataDirectoryOptions& options);

// --- 2 and 3. running and stopping -----------------------------------------------------------

struct NodeLifecycleConfig {
  // The node's transport, spawned by the caller (TCP, or the simulator's): supervised from
  // start() on and stopped last. None: the caller owns and stops it.
  caf::actor transport;
  // The first actor that stopped by itself (fail-stop): its name ("wal_writer", ...) and why.
  // Called at most once, never for what stop() stops.
  std::function<void(const std::string& actor, const std::string& reason)> failed;
  // A clean stop of a started node runs this first (a process: a leader hands leadership
  // over, waiting a bounded time). It may block; nothing is stopped yet while it runs.
  std::function<void(const NodeHandles&)> hand_off;
};

enum class StopMode : uint8_t {
  clean,                   // hand-off hook, then user_shutdown (LMDB synced and marked clean)
  // No hand-off, then user_shutdown as `clean` (a stop asked for while the node started, a
  // listener that could not bind): LMDB synced and marked clean. (Until 2026-12-07 this killed,
  // leaving LMDB unmarked, so the next start after a reboot rebuilt it for nothing.)
  clean_without_hand_off,
  // No hand-off, kill (a fail-stop; the simulator's crash): LMDB left as SIGKILL leaves it,
  // trusted again in the same boot and rebuilt after a reboot.
  crash,
};

class NodeLifecycle {
 public:
  NodeLifecycle(caf::actor_system& system, NodeLifecycleConfig config);
  NodeLifecycle(const NodeLifecycle&) = delete;
  NodeLifecycle& operator=(const NodeLifecycle&) = delete;
  ~NodeLifecycle();  // stops nothing: call stop() first

  // start_node() with `node`, then every actor of the node supervised; `done` as start_node's.
  // The transport is supervised from here on. Called once.
  void start(NodeConfig node, std::function<void(Result<NodeHandles>)> done);

  // A client-facing actor the caller spawned around the started node (a process's client
  // listener, the simulator's client port): supervised under `name`, stopped first.
  void supervise_client_side(caf::actor actor, std::string name);

  // Stops the node in the order above. While it is still starting, the start is stopped: what
  // it spawned so far stops, and start()'s `done` hears busy ("stopped while it started")
  // instead of the handles. Failures are no longer reported from the moment it is called.
  // Idempotent.
  void stop(StopMode mode);

  bool stopping() const;

 private:
  struct Shared;
  void supervise(const caf::actor& actor, const std::string& name);

  caf::actor_system& system_;
  NodeLifecycleConfig config_;
  std::shared_ptr<Shared> shared_;  // with the exit functors, which may outlive this object
};

}  // namespace keyval
