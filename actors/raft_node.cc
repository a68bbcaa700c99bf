// The raft node actor (see raft_node.h).
#include "actors/raft_node.h"

#include <map>
#include <memory>
#include <optional>

namespace keyval {
namespace {

void put_u64(std::vector<uint8_t>& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

class Reader {
 public:
  explicit Reader(const std::vector<uint8_t>& bytes) : bytes_(bytes) {}
  bool u64(uint64_t* value) {
    if (bytes_.size() - offset_ < 8) return false;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(bytes_[offset_ + i]) << (8 * i);
    offset_ += 8;
    *value = v;
    return true;
  }
  bool bytes(uint64_t count, std::vector<uint8_t>* out) {
    if (bytes_.size() - offset_ < count) return false;
    out->assign(bytes_.begin() + offset_, bytes_.begin() + offset_ + count);
    offset_ += count;
    return true;
  }
  bool done() const { return offset_ == bytes_.size(); }

 private:
  const std::vector<uint8_t>& bytes_;
  size_t offset_ = 0;
};

constexpr uint64_t kRaftMessageVersion = 1;

}  // namespace

std::vector<uint8_t> encode_raft_message(const raft::Message& m) {
  std::vector<uint8_t> out;
  out.reserve(160);
  put_u64(out, kRaftMessageVersion);
  put_u64(out, static_cast<uint64_t>(m.type));
  put_u64(out, m.from);
  put_u64(out, m.to);
  put_u64(out, m.term);
  put_u64(out, m.last_log_index);
  put_u64(out, m.last_log_term);
  put_u64(out, m.vote_granted ? 1 : 0);
  put_u64(out, m.prev_log_index);
  put_u64(out, m.prev_log_term);
  put_u64(out, m.leader_commit);
  put_u64(out, m.success ? 1 : 0);
  put_u64(out, m.match_index);
  put_u64(out, m.reject_index);
  put_u64(out, m.conflict_term);
  put_u64(out, m.conflict_index);
  put_u64(out, m.read_context);
  put_u64(out, m.entries.size());
  for (const Entry& entry : m.entries) {
    put_u64(out, entry.index);
    put_u64(out, entry.term);
    put_u64(out, entry.payload.size());
    out.insert(out.end(), entry.payload.begin(), entry.payload.end());
  }
  return out;
}

Result<raft::Message> decode_raft_message(const std::vector<uint8_t>& bytes) {
  Reader in(bytes);
  raft::Message m;
  uint64_t version = 0, type = 0, vote_granted = 0, success = 0, count = 0;
  bool ok = in.u64(&version) && in.u64(&type) && in.u64(&m.from) && in.u64(&m.to) && in.u64(&m.term) &&
            in.u64(&m.last_log_index) && in.u64(&m.last_log_term) && in.u64(&vote_granted) &&
            in.u64(&m.prev_log_index) && in.u64(&m.prev_log_term) && in.u64(&m.leader_commit) &&
            in.u64(&success) && in.u64(&m.match_index) && in.u64(&m.reject_index) && in.u64(&m.conflict_term) &&
            in.u64(&m.conflict_index) && in.u64(&m.read_context) && in.u64(&count);
  if (!ok) return Status::corruption("raft message: truncated header");
  if (version != kRaftMessageVersion) return Status::corruption("raft message: unknown version");
  if (type < 1 || type > 6) return Status::corruption("raft message: unknown type " + std::to_string(type));
  if (vote_granted > 1 || success > 1) return Status::corruption("raft message: bad flag");
  if (count > bytes.size() / 24) return Status::corruption("raft message: entry count too large");
  m.type = static_cast<raft::MessageType>(type);
  m.vote_granted = vote_granted == 1;
  m.success = success == 1;
  m.entries.resize(count);
  for (Entry& entry : m.entries) {
    uint64_t size = 0;
    if (!(in.u64(&entry.index) && in.u64(&entry.term) && in.u64(&size) && in.bytes(size, &entry.payload))) {
      return Status::corruption("raft message: truncated entry");
    }
  }
  if (!in.done()) return Status::corruption("raft message: trailing bytes");
  return m;
}

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
    peers_.clear();
    persistence_.reset();
  }

  caf::behavior make_behavior() override {
    schedule_tick();
    return {
        [this](raft_tick_atom, uint64_t epoch) {
          if (epoch != tick_epoch_) return;  // a timer from an earlier schedule
          core_.tick();
          schedule_tick();
          drain();
        },
        [this](raft_message_atom, const Frame& frame) {
          auto message = decode_raft_message(frame.bytes);
          if (!message.is_ok()) {
            log("dropped malformed raft message: " + message.status().to_string());
            return;
          }
          if (message->to != core_.id()) return;
          core_.step(*message);
          drain();
        },
        [this](raft_propose_atom, std::vector<uint8_t>& payload) {
          raft::ProposeResult result;
          if (!payload.empty()) result = core_.propose(std::move(payload));
          else result.leader_hint = core_.leader_id();
          drain();
          return caf::make_message(result.accepted, result.index, result.term, result.leader_hint);
        },
        [this](raft_peer_atom, uint64_t id, const caf::actor& handle) { peers_[id] = handle; },
        [this](raft_status_atom) {
          return caf::make_message(static_cast<uint64_t>(core_.role()), core_.leader_id(), core_.current_term(),
                                   core_.commit_index(), core_.durable_index());
        },
    };
  }

 private:
  void log(const std::string& line) {
    if (config_.log) config_.log("raft node " + std::to_string(core_.id()) + ": " + line);
  }

  void schedule_tick() {
    delayed_send(this, config_.tick_interval, raft_tick_atom::value, tick_epoch_);
  }

  // Takes Readies until the core has nothing more, stopping at one that needs a persist:
  // the next Ready is taken once that persist is durable.
  void drain() {
    while (!persist_in_flight_ && core_.has_ready()) {
      raft::Ready ready = core_.take_ready();
      if (ready.soft_state) {
        log(std::string("role ") + raft::role_name(ready.soft_state->role) + ", leader " +
            std::to_string(ready.soft_state->leader_id) + ", term " + std::to_string(core_.current_term()));
      }
      bool needs_persist = ready.metadata || ready.log_truncated_to || !ready.entries.empty();
      if (needs_persist) {
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
                               drain();
                             });
      }
      send_messages(ready.messages);
      if (!ready.committed_entries.empty() && config_.apply) config_.apply(ready.committed_entries);
    }
  }

  void send_messages(const std::vector<raft::Message>& messages) {
    for (const raft::Message& message : messages) {
      auto peer = peers_.find(message.to);
      if (peer == peers_.end()) continue;  // unknown peer: as a lost message
      send(peer->second, raft_message_atom::value, Frame{encode_raft_message(message)});
    }
  }

  RaftNodeConfig config_;
  // Reset on exit, with the peer handles: other nodes' actors keep this object alive
  // through their own peer handles, and it must not keep the persistence actors alive.
  std::optional<Persistence> persistence_;
  raft::Core core_;
  uint64_t tick_epoch_ = 1;
  bool persist_in_flight_ = false;
  std::map<uint64_t, caf::actor> peers_;
};

}  // namespace

caf::actor spawn_raft_node(caf::actor_system& system, RaftNodeConfig config, Persistence persistence,
                           raft::RecoveredState recovered) {
  return system.spawn<RaftNodeActor>(std::move(config), std::move(persistence), std::move(recovered));
}

}  // namespace keyval
