// One node's life cycle (see node_lifecycle.h).
#include "actors/node_lifecycle.h"

#include <mutex>
#include <utility>

namespace keyval {
namespace {

void log_line(const DataDirectoryOptions& options, const std::string& line) {
  if (options.log) options.log(line);
}

std::string describe_members(const ClusterView& view) {
  std::string ids;
  for (const ConfigurationMember& member : view.configuration) {
    ids += (ids.empty() ? "" : ",") + std::to_string(member.node_id) + (member.learner ? " (learner)" : "");
  }
  return "configuration at index " + std::to_string(view.configuration_index) + ", members " + ids +
         ", answered by node " + std::to_string(view.answered_by);
}

// Join: the running cluster's configuration, which must list this node. A fresh directory
// (`creating`) must not belong to a voter: the cluster counted that voter's log and votes,
// which an empty directory no longer holds.
Result<ClusterView> ask_cluster(const DataDirectoryOptions& options, bool creating) {
  if (!options.ask_cluster) return Status::invalid_argument(options.join_source + ": nobody to ask for the configuration");
  KV_ASSIGN_OR_RETURN(ClusterView view, options.ask_cluster());
  const ConfigurationMember* self = nullptr;
  for (const ConfigurationMember& member : view.configuration) {
    if (member.node_id == options.node_id) self = &member;
  }
  const std::string id = std::to_string(options.node_id);
  if (self == nullptr) {
    std::string ids;
    for (const ConfigurationMember& member : view.configuration) {
      ids += (ids.empty() ? "" : ",") + std::to_string(member.node_id) + (member.learner ? " (learner)" : "");
    }
    return Status::not_found(options.join_source + ": node " + std::to_string(view.answered_by) +
                             " answers that the configuration at index " +
                             std::to_string(view.configuration_index) + " (members " + ids +
                             ") does not list node " + id + ": add it first with: " + options.add_member_command);
  }
  log_line(options, "the cluster lists this node (" + describe_members(view) + ")");
  if (creating && !self->learner) {
    return Status::invalid_argument(
        "node " + id + " is a voter of the cluster (" + describe_members(view) +
        "): a voter cannot be re-created with an empty data directory under the same id: remove it (keyval member "
        "remove " + id + ") and add a new member with a new id (keyval member add ...)");
  }
  if (!options.peer_address.empty() && self->peer_address != options.peer_address) {
    log_line(options, "warning: the cluster knows this node's peer address as " + self->peer_address +
                          " but it listens on " + options.peer_address);
  }
  return view;
}

ConfigurationEntry bootstrap_entry(const DataDirectoryOptions& options) {
  ConfigurationEntry entry;
  entry.kind = ConfChangeKind::bootstrap;
  entry.members = options.bootstrap_members;
  return entry;
}

}  // namespace

Result<OpenedDataDirectory> open_data_directory(const DataDirectoryOptions& options) {
  KV_ASSERT(options.env != nullptr);
  if (options.bootstrap && options.join) {
    return Status::invalid_argument("bootstrap (a new cluster) and join (a running one) exclude each other");
  }
  OpenedDataDirectory directory;
  auto existing = check_data_directory(*options.env, options.data_directory, options.cluster, options.node_id);
  if (existing.is_ok()) {
    directory.identity = *existing;
    // A log never written to (a crash during its first start) is bootstrapped again; a joined
    // node's never is: its configuration must come from the cluster it joined.
    if (options.bootstrap && existing->created != "join") directory.bootstrap = bootstrap_entry(options);
    if (options.bootstrap && existing->created == "join") {
      log_line(options, "--bootstrap ignored: this directory was made by --join");
    }
    if (options.join) {
      auto view = ask_cluster(options, false);
      if (view.is_ok()) {
        directory.cluster_view = *view;
      } else {
        log_line(options, "starting with the members' addresses from its own log: " + view.status().message());
      }
    }
    return directory;
  }
  if (existing.status().code() != Code::not_found) return existing.status();
  if (!options.bootstrap && !options.join) {
    return Status::not_found(existing.status().message() +
                             ": start a node of a new cluster with --bootstrap (the same --peers on every node), or "
                             "add this node to a running cluster (keyval member add) and start it with --join "
                             "HOST:PORT,... (the members' client addresses)");
  }
  directory.identity.cluster = options.cluster;
  directory.identity.node_id = options.node_id;
  if (options.bootstrap) {
    directory.identity.created = "bootstrap";
    directory.bootstrap = bootstrap_entry(options);
  } else {
    directory.identity.created = "join";
    KV_ASSIGN_OR_RETURN(directory.cluster_view, ask_cluster(options, true));
  }
  KV_RETURN_IF_ERROR(claim_data_directory(*options.env, options.data_directory, directory.identity));
  directory.created = true;
  log_line(options, "created data directory " + options.data_directory + " for " + directory.identity.describe() +
                        " (" +
                        (options.bootstrap ? "--bootstrap: its log starts with the members of --peers"
                                           : "--join: its configuration comes from the leader") +
                        ")");
  return directory;
}

// --- running and stopping --------------------------------------------------------------------

struct NodeLifecycle::Shared {
  std::mutex mutex;
  bool stopping = false;
  bool reported = false;
  std::optional<NodeHandles> handles;
  caf::actor starter;            // start_node's, while it starts the node
  bool start_ended = false;      // the starter reported (handles or an error)
  caf::exit_reason stop_reason = caf::exit_reason::kill;  // stop()'s, for a start that ends after it
  std::vector<caf::actor> client_side;
  std::function<void(const std::string&, const std::string&)> failed;
};

NodeLifecycle::NodeLifecycle(caf::actor_system& system, NodeLifecycleConfig config)
    : system_(system), config_(std::move(config)), shared_(std::make_shared<Shared>()) {
  shared_->failed = config_.failed;
}

NodeLifecycle::~NodeLifecycle() = default;

// Reports the actor's exit unless stop() asked for it. An actor already gone reports at once.
void NodeLifecycle::supervise(const caf::actor& actor, const std::string& name) {
  if (!actor) return;
  actor->attach_functor([shared = shared_, system = &system_, name](const caf::error& reason) {
    std::function<void(const std::string&, const std::string&)> failed;
    {
      std::lock_guard<std::mutex> guard(shared->mutex);
      if (shared->stopping || shared->reported) return;
      shared->reported = true;
      failed = shared->failed;
    }
    if (failed) failed(name, reason ? system->render(reason) : std::string("it quit by itself (exit reason normal)"));
  });
}

void NodeLifecycle::start(NodeConfig node, std::function<void(Result<NodeHandles>)> done) {
  supervise(config_.transport, "transport");
  caf::actor starter = start_node(system_, std::move(node), [this, shared = shared_, done = std::move(done)](
                                                                Result<NodeHandles> result) {
    bool stopping = false;
    caf::exit_reason reason = caf::exit_reason::kill;
    {
      std::lock_guard<std::mutex> guard(shared->mutex);
      shared->start_ended = true;
      shared->starter = nullptr;
      stopping = shared->stopping;
      reason = shared->stop_reason;
      if (result.is_ok() && !stopping) shared->handles = *result;
    }
    if (stopping) {
      // stop() came while the node was starting, and the start finished before the starter saw
      // its exit: what it started stops now, and the caller hears that it did not start.
      if (result.is_ok()) stop_node(*result, reason);
      if (done) done(Status::busy("the node was stopped while it started"));
      return;
    }
    if (result.is_ok()) {
      const NodeHandles& handles = *result;
      supervise(caf::actor_cast<caf::actor>(handles.raft_node), "raft node");
      supervise(caf::actor_cast<caf::actor>(handles.writer), "wal_writer");
      supervise(caf::actor_cast<caf::actor>(handles.indexer), "store_indexer");
      supervise(caf::actor_cast<caf::actor>(handles.snapshotter), "snapshotter");
      supervise(caf::actor_cast<caf::actor>(handles.state_machine), "state machine");
      if (handles.reader) supervise(caf::actor_cast<caf::actor>(handles.reader), "applied reader");
      supervise(caf::actor_cast<caf::actor>(handles.gateway), "client gateway");
    }
    if (done) done(std::move(result));
  });
  std::lock_guard<std::mutex> guard(shared_->mutex);
  if (!shared_->start_ended) shared_->starter = std::move(starter);
}

void NodeLifecycle::supervise_client_side(caf::actor actor, std::string name) {
  if (!actor) return;
  {
    std::lock_guard<std::mutex> guard(shared_->mutex);
    shared_->client_side.push_back(actor);
  }
  supervise(actor, name);
}

void NodeLifecycle::stop(StopMode mode) {
  std::optional<NodeHandles> handles;
  std::vector<caf::actor> client_side;
  caf::actor starter;
  const caf::exit_reason reason = mode == StopMode::crash ? caf::exit_reason::kill : caf::exit_reason::user_shutdown;
  {
    std::lock_guard<std::mutex> guard(shared_->mutex);
    if (shared_->stopping) return;
    shared_->stopping = true;
    shared_->stop_reason = reason;
    handles = shared_->handles;
    client_side = shared_->client_side;
    starter = shared_->starter;
  }
  if (mode == StopMode::clean && handles && config_.hand_off) config_.hand_off(*handles);
  for (const caf::actor& actor : client_side) caf::anon_send_exit(actor, reason);
  if (handles) stop_node(*handles, reason);  // gateway, raft node, state machine, persistence
  // Still starting: the starter stops what it spawned so far (recovery, persistence, the state
  // machine), or, when its start ends first, the callback above stops the node it started.
  if (starter) caf::anon_send_exit(starter, reason);
  if (config_.transport) caf::anon_send_exit(config_.transport, reason);
}

bool NodeLifecycle::stopping() const {
  std::lock_guard<std::mutex> guard(shared_->mutex);
  return shared_->stopping;
}

}  // namespace keyval
