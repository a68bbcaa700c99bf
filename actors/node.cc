// Assembling a node (see node.h).
#include "actors/node.h"

#include "actors/node_scheduler.h"

#include "storage/store.h"

#include "actors/record_batch.h"

namespace keyval {
namespace {

class NodeStarter : public caf::event_based_actor {
 public:
  NodeStarter(caf::actor_config& cfg, NodeConfig config, std::function<void(Result<NodeHandles>)> done)
      : caf::event_based_actor(cfg), config_(std::move(config)), done_(std::move(done)) {}

  // Stopped before it finished (the node crashed while starting): what it spawned goes too.
  // (An exit before make_behavior ran, or one the exit handler below did not see.)
  void on_exit() override {
    if (!done_) return;
    auto done = std::move(done_);
    done_ = nullptr;
    if (handles_.writer) caf::anon_send_exit(handles_.writer, caf::exit_reason::kill);
    if (handles_.indexer) caf::anon_send_exit(handles_.indexer, caf::exit_reason::kill);
    if (handles_.state_machine) caf::anon_send_exit(handles_.state_machine, caf::exit_reason::kill);
    if (handles_.reader) caf::anon_send_exit(handles_.reader, caf::exit_reason::kill);
    if (handles_.snapshotter) caf::anon_send_exit(handles_.snapshotter, caf::exit_reason::kill);
    if (coordinator_) caf::anon_send_exit(coordinator_, caf::exit_reason::kill);
    done(Status::busy("the node was stopped while it started"));
  }

  caf::behavior make_behavior() override {
    // Asked to stop (NodeLifecycle::stop while the node starts): the answer in flight still
    // comes, and may name actors recovery just spawned, so the starter waits for it, then stops
    // everything it has and reports that the node did not start (stopped_while_starting).
    set_exit_handler([this](caf::exit_msg& message) {
      if (!stop_reason_) stop_reason_ = message.reason ? message.reason : caf::error(caf::exit_reason::kill);
    });
    handles_.node_id = config_.raft.raft.node_id;
    // A node repairs an unreadable part of its log from its peers (docs/PERSISTENCE.md,
    // "Corruption repaired from peers") rather than refusing to start.
    PersistenceConfig persistence = config_.persistence;
    persistence.recovery.repair_corruption = true;
    coordinator_ = spawn_recovery_coordinator(system(), persistence);
    request(coordinator_, caf::infinite, recover_atom_v)
        .then(
            [this](Frame& state, wal_writer_actor& writer, store_indexer_actor& indexer,
                   snapshotter_actor& snapshotter, SharedStore& store) {
              send_exit(coordinator_, caf::exit_reason::normal);
              store_ = std::move(store);
              handles_.writer = writer;
              handles_.indexer = indexer;
              handles_.snapshotter = snapshotter;
              if (stop_reason_) return stopped_while_starting();
              auto recovered = decode_recovered_state(state.bytes, &handles_.recovery_summary, &handles_.recovery);
              if (!recovered.is_ok()) return fail(recovered.status());
              handles_.recovered = *recovered;
              start_state_machine();
            },
            [this](caf::error& error) { fail(to_status(error)); });
    return {[](stats_atom) {}};  // never sent: the replies above do the work
  }

 private:
  // The state machine first: its applied index (read from LMDB as it starts) is where the
  // core's applying resumes.
  void start_state_machine() {
    StateMachineConfig machine = config_.state_machine;
    applied_reads_ = std::make_shared<AppliedReads>(store_.store);
    machine.applied_reads = applied_reads_;
    machine.persistence = std::move(store_);
    machine.detached = config_.persistence.detached;
    machine.on_network_thread = config_.on_network_thread;
    if (!machine.log) machine.log = config_.persistence.log;
    handles_.state_machine = spawn_state_machine(system(), std::move(machine));
    request(handles_.state_machine, caf::infinite, kv_applied_atom_v)
        .then(
            [this](uint64_t applied) {
              if (stop_reason_) return stopped_while_starting();
              handles_.applied_index = applied;
              raft_state_.metadata = handles_.recovered.metadata;
              raft_state_.applied_index = applied;
              // The core's log starts right after the base snapshot (§7): the term there is
              // known. LMDB's tail below it serves nothing after a restart and stays on disk
              // until the next compaction.
              uint64_t first = handles_.recovered.first_index;
              if (handles_.recovered.snapshot) {
                const SnapshotMetadata& snapshot = *handles_.recovered.snapshot;
                raft_state_.snapshot_index = snapshot.last_included_index;
                raft_state_.snapshot_term = snapshot.last_included_term;
                raft_state_.log_start_index = snapshot.last_included_index;
                raft_state_.log_start_term = snapshot.last_included_term;
                // The configuration as of the snapshot; configuration entries in the log supersede it.
                raft_state_.configuration = snapshot.configuration;
                first = std::max(first, snapshot.last_included_index + 1);
              }
              load_entries(first);
            },
            [this](caf::error& error) { fail(to_status(error)); });
  }

  // The log after the base snapshot into the core, one bounded read at a time.
  void load_entries(uint64_t next) {
    if (stop_reason_) return stopped_while_starting();
    if (next > handles_.recovered.last_index) return spawn_node();
    request(handles_.indexer, caf::infinite, read_atom_v, next, handles_.recovered.last_index)
        .then(
            [this, next](Frame& frame) {
              auto entries = decode_entries(frame.bytes, "recovered log");
              if (!entries.is_ok()) return fail(entries.status());
              if (entries->empty() || entries->front().index != next) {
                return fail(Status::corruption("recovered log: read from index " + std::to_string(next) +
                                               " returned no entry there"));
              }
              uint64_t last = entries->back().index;
              for (Entry& entry : *entries) raft_state_.entries.push_back(std::move(entry));
              load_entries(last + 1);
            },
            [this](caf::error& error) { fail(to_status(error)); });
  }

  void spawn_node() {
    Persistence persistence(handles_.writer, handles_.indexer, handles_.recovered, handles_.snapshotter);
    RaftNodeConfig raft = config_.raft;
    raft.state_machine = handles_.state_machine;
    handles_.raft_node = spawn_raft_node(system(), std::move(raft), std::move(persistence), std::move(raft_state_),
                                         config_.on_network_thread);
    ClientGatewayConfig gateway = config_.gateway;
    gateway.node_id = handles_.node_id;
    gateway.applied_reads = applied_reads_;
    gateway.planted_bug = config_.raft.raft.planted_bug;
    // The state machine on the network thread: large get batches are read on a thread of their own.
    if (config_.on_network_thread && config_.persistence.detached) {
      handles_.reader = spawn_applied_reader(system(), applied_reads_, handles_.state_machine);
      gateway.reader = handles_.reader;
    }
    handles_.gateway = spawn_client_gateway(system(), gateway, handles_.raft_node, handles_.state_machine,
                                            handles_.snapshotter, config_.on_network_thread);
    if (config_.raft.transport) send(config_.raft.transport, raft_peer_atom_v, handles_.node_id, caf::actor_cast<caf::actor>(handles_.raft_node));
    // A node that serves clients on an address tells its gateway where the cluster does.
    if (!config_.raft.client_address.empty()) {
      send(handles_.raft_node, client_directory_atom_v, caf::actor_cast<caf::actor>(handles_.gateway));
    }
    finish(handles_);
  }

  void fail(const Status& status) {
    stop_started(stop_reason_ ? stop_reason_ : caf::error(caf::exit_reason::user_shutdown));
    finish(stop_reason_ ? Status::busy("the node was stopped while it started") : status);
  }

  void stopped_while_starting() { fail(Status::busy("the node was stopped while it started")); }

  // What the start spawned so far stops, with `reason` (kill leaves LMDB unmarked, as a crash).
  void stop_started(const caf::error& reason) {
    if (handles_.writer) send_exit(handles_.writer, reason);
    if (handles_.indexer) send_exit(handles_.indexer, reason);
    if (handles_.state_machine) send_exit(handles_.state_machine, reason);
    if (handles_.reader) send_exit(handles_.reader, reason);
    if (handles_.snapshotter) send_exit(handles_.snapshotter, reason);
    if (coordinator_) send_exit(coordinator_, reason);
  }

  void finish(Result<NodeHandles> result) {
    auto done = std::move(done_);
    done_ = nullptr;
    config_ = NodeConfig{};
    quit();
    if (done) done(std::move(result));
  }

  NodeConfig config_;
  caf::error stop_reason_;  // set by an exit message: stop at the next answer
  std::function<void(Result<NodeHandles>)> done_;
  recovery_coordinator_actor coordinator_;
  SharedStore store_;  // from recovery, for the state machine
  std::shared_ptr<AppliedReads> applied_reads_;  // the state machine publishes, the gateway reads
  NodeHandles handles_;
  raft::RecoveredState raft_state_;
};

}  // namespace

caf::actor start_node(caf::actor_system& system, NodeConfig config, std::function<void(Result<NodeHandles>)> done) {
  return system.spawn<NodeStarter>(std::move(config), std::move(done));
}

void use_node_scheduler(caf::actor_system_config& config, size_t workers) {
  use_node_coordinator(config);
  config.set("scheduler.max-threads", workers);
}

void stop_node(const NodeHandles& handles, caf::exit_reason reason) {
  if (handles.gateway) caf::anon_send_exit(handles.gateway, reason);
  if (handles.raft_node) caf::anon_send_exit(handles.raft_node, reason);
  if (handles.state_machine) caf::anon_send_exit(handles.state_machine, reason);
  if (handles.reader) caf::anon_send_exit(handles.reader, reason);
  if (handles.snapshotter) caf::anon_send_exit(handles.snapshotter, reason);
  if (handles.writer) caf::anon_send_exit(handles.writer, reason);
  if (handles.indexer) caf::anon_send_exit(handles.indexer, reason);
}

}  // namespace keyval
