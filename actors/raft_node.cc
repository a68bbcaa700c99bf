// The raft node actor (see raft_node.h).
#include "actors/raft_node.h"

#include <map>
#include <optional>

#include "actors/raft_wire.h"
#include "actors/record_batch.h"

namespace keyval {
namespace {

class RaftNodeActor : public caf::event_based_actor {
 public:
  RaftNodeActor(caf::actor_config& cfg, RaftNodeConfig config, Persistence persistence,
                raft::RecoveredState recovered)
      : caf::event_based_actor(cfg),
        config_(std::move(config)),
        persistence_(std::in_place, std::move(persistence)),
        core_(config_.raft, std::move(recovered)) {}

  void on_exit() override {
    // Handles to other actors (which may hold this one) are released with the actor.
    config_.transport = nullptr;
    config_.state_machine = nullptr;
    persistence_.reset();
    for (auto& [id, promise] : reads_) promise.deliver(false, uint64_t{0}, uint64_t{0});
    reads_.clear();
  }

  caf::behavior make_behavior() override {
    schedule_tick();
    return {
        [this](raft_tick_atom, uint64_t epoch) {
          if (epoch != tick_epoch_) return;  // a timer from an earlier schedule
          core_.tick();
          schedule_tick();
          after_input();
        },
        [this](raft_message_atom, const Frame& frame) {
          auto message = decode_raft_message(frame.bytes.data(), frame.bytes.size());
          if (!message.is_ok()) {
            log("dropped malformed raft message: " + message.status().to_string());
            return;
          }
          if (message->to != core_.id()) return;
          core_.step(*message);
          after_input();
        },
        [this](raft_propose_atom, std::vector<uint8_t>& payload) {
          raft::ProposeResult result;
          if (!payload.empty()) result = core_.propose(std::move(payload));
          else result.leader_hint = core_.leader_id();
          after_input();
          return caf::make_message(result.accepted, result.index, result.term, result.leader_hint);
        },
        [this](raft_read_atom) -> caf::result<bool, uint64_t, uint64_t> {
          const uint64_t request_id = ++read_request_id_;
          uint64_t hint = 0;
          if (!core_.read_index(request_id, &hint)) return {false, uint64_t{0}, hint};
          auto promise = make_response_promise<bool, uint64_t, uint64_t>();
          reads_.emplace(request_id, promise);
          after_input();
          return promise;
        },
        [this](raft_status_atom) {
          return caf::make_message(static_cast<uint64_t>(core_.role()), core_.leader_id(), core_.current_term(),
                                   core_.commit_index(), core_.durable_index());
        },
    };
  }

 private:
  using ReadPromise = caf::typed_response_promise<bool, uint64_t, uint64_t>;

  void log(const std::string& line) {
    if (config_.log) config_.log("raft node " + std::to_string(core_.id()) + ": " + line);
  }

  void schedule_tick() {
    delayed_send(this, config_.tick_interval, raft_tick_atom_v, tick_epoch_);
  }

  void after_input() {
    drain();
    if (config_.observe) config_.observe(core_);
  }

  // Takes Readies until the core has nothing more, stopping at one that needs a persist:
  // the next Ready is taken once that persist is durable.
  void drain() {
    while (!persist_in_flight_ && core_.has_ready()) {
      raft::Ready ready = core_.take_ready();
      if (ready.soft_state) on_soft_state(*ready.soft_state);
      if (ready.metadata || ready.log_truncated_to || !ready.entries.empty()) persist(ready);
      send_messages(ready.messages);
      if (!ready.committed_entries.empty()) apply(ready.committed_entries);
      for (const raft::ReadState& read : ready.read_states) answer_read(read.request_id, true, read.read_index);
    }
  }

  void persist(const raft::Ready& ready) {
    std::optional<Metadata> metadata = ready.metadata;
    std::optional<std::pair<uint64_t, uint64_t>> last;
    if (!ready.entries.empty()) last = std::make_pair(ready.entries.back().index, ready.entries.back().term);
    persist_in_flight_ = true;
    persistence_->persist(this, Persistence::batch(ready.log_truncated_to, ready.metadata, ready.entries),
                          [this, metadata, last](const Status& status, uint64_t) {
                            persist_in_flight_ = false;
                            if (!status.is_ok()) {
                              log("persist failed, stopping: " + status.to_string());
                              quit(to_error(status));
                              return;
                            }
                            if (metadata) core_.metadata_durable(*metadata);
                            if (last) core_.durable(last->first, last->second);
                            after_input();
                          });
  }

  void on_soft_state(const raft::SoftState& soft_state) {
    const std::string term = "term " + std::to_string(core_.current_term());
    const std::string leader = soft_state.leader_id == 0 ? "no leader" : "leader " + std::to_string(soft_state.leader_id);
    if (soft_state.role == raft::Role::leader) {
      log("elected leader in " + term);
    } else if (last_role_ == raft::Role::leader) {
      log("stepped down in " + term + " (" + raft::role_name(soft_state.role) + ", " + leader + ")");
    } else {
      log(std::string(raft::role_name(soft_state.role)) + " in " + term + ", " + leader);
    }
    last_role_ = soft_state.role;
    if (soft_state.role == raft::Role::leader) return;
    // The core dropped its pending reads when it stopped leading: tell their requesters.
    std::map<uint64_t, ReadPromise> reads = std::move(reads_);
    reads_.clear();
    for (auto& [id, promise] : reads) promise.deliver(false, uint64_t{0}, soft_state.leader_id);
  }

  void answer_read(uint64_t request_id, bool ok, uint64_t read_index) {
    auto read = reads_.find(request_id);
    if (read == reads_.end()) return;
    read->second.deliver(ok, read_index, core_.leader_id());
    reads_.erase(read);
  }

  void send_messages(const std::vector<raft::Message>& messages) {
    if (!config_.transport) return;
    for (const raft::Message& message : messages) {
      send(config_.transport, transport_send_atom_v, message.to, Frame{encode_raft_message(message)});
    }
  }

  void apply(const std::vector<Entry>& committed) {
    if (config_.apply) config_.apply(committed);
    if (config_.state_machine) send(config_.state_machine, apply_atom_v, Frame{encode_entries(committed)});
  }

  RaftNodeConfig config_;
  // Reset on exit: it must not keep the persistence actors alive.
  std::optional<Persistence> persistence_;
  raft::Core core_;
  uint64_t tick_epoch_ = 1;
  bool persist_in_flight_ = false;
  raft::Role last_role_ = raft::Role::follower;  // for the elected / stepped down log lines
  uint64_t read_request_id_ = 0;
  std::map<uint64_t, ReadPromise> reads_;  // ReadIndex requests waiting for a quorum
};

}  // namespace

caf::actor spawn_raft_node(caf::actor_system& system, RaftNodeConfig config, Persistence persistence,
                           raft::RecoveredState recovered) {
  return system.spawn<RaftNodeActor>(std::move(config), std::move(persistence), std::move(recovered));
}

}  // namespace keyval
