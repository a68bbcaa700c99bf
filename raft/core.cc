// raft::Core: construction, the input/output plumbing and the durability gate on
// outgoing messages. Elections live in election.cc, log replication in replication.cc.
#include "raft/core.h"

#include <algorithm>
#include <set>
#include <utility>

#include "storage/status.h"

namespace keyval::raft {

const char* role_name(Role role) {
  switch (role) {
    case Role::follower: return "follower";
    case Role::pre_candidate: return "pre_candidate";
    case Role::candidate: return "candidate";
    case Role::leader: return "leader";
  }
  return "unknown";
}

Core::Core(Config config, RecoveredState recovered) : config_(std::move(config)), random_(config_.random_seed) {
  KV_ASSERT(config_.node_id != 0);
  KV_ASSERT(std::set<uint64_t>(config_.voters.begin(), config_.voters.end()).size() == config_.voters.size());
  KV_ASSERT(config_.heartbeat_ticks >= 1);
  KV_ASSERT(config_.heartbeat_ticks < config_.election_timeout_ticks_min);
  KV_ASSERT(config_.election_timeout_ticks_min <= config_.election_timeout_ticks_max);
  KV_ASSERT(config_.max_entries_per_append >= 1 && config_.max_inflight_appends >= 1);
  recover_log(recovered);
  // The state machine holds at least the base snapshot, and never more than the log reaches.
  KV_ASSERT(recovered.applied_index >= recovered.snapshot_index);
  KV_ASSERT(recovered.applied_index <= log_.last_index());
  // A log entry's term was the current term of some node that persisted it: never ahead of ours.
  KV_ASSERT(log_.last_term() <= recovered.metadata.current_term);

  metadata_ = durable_metadata_ = handed_metadata_ = recovered.metadata;
  repair_term_ = metadata_.current_term;
  incarnation_ = SplitMix64(config_.random_seed ^ 0x1ca4'7a71'0e00'0000ULL).next() | 1;
  // Everything recovery found is on disk already.
  durable_index_ = log_.last_index();
  unstable_from_ = log_.last_index() + 1;
  // Applied entries were committed; commit_index is volatile and restarts there (Figure 2).
  commit_index_ = applied_index_ = recovered.applied_index;
  snapshot_index_ = durable_snapshot_index_ = recovered.snapshot_index;
  snapshot_term_ = recovered.snapshot_term;
  recover_configuration(recovered);
  become_follower(metadata_.current_term, 0);
}

void Core::recover_log(RecoveredState& recovered) {
  std::vector<Entry>& entries = recovered.entries;
  const uint64_t snapshot_index = recovered.snapshot_index;
  KV_ASSERT(snapshot_index != 0 || recovered.snapshot_term == 0);
  // Entries that end before the snapshot are all covered by it: the log continues after it.
  if (!entries.empty() && entries.back().index < snapshot_index) entries.clear();
  uint64_t start_index = recovered.log_start_index;
  uint64_t start_term = recovered.log_start_term;
  if (entries.empty()) {
    if (start_index < snapshot_index) {
      start_index = snapshot_index;
      start_term = recovered.snapshot_term;
    }
  } else if (entries.front().index != start_index + 1) {
    start_index = entries.front().index - 1;
    KV_ASSERT(start_index == 0 || start_index == snapshot_index);
    start_term = start_index == 0 ? 0 : recovered.snapshot_term;
  }
  // §7: only what a snapshot covers is ever compacted, and the snapshot is where it is said to be.
  KV_ASSERT(start_index <= snapshot_index);
  KV_ASSERT(start_index != snapshot_index || start_term == recovered.snapshot_term);
  log_ = Log(start_index, start_term, std::move(entries));
  KV_ASSERT(log_.last_index() >= snapshot_index && log_.term_at(snapshot_index) == recovered.snapshot_term);
}

const Progress* Core::progress(uint64_t peer) const {
  auto found = progress_.find(peer);
  return found == progress_.end() ? nullptr : &found->second;
}

void Core::tick() {
  if (in_probation()) {
    tick_probation();
  } else if (role_ == Role::leader) {
    tick_heartbeat();
  } else {
    tick_election();
  }
}

void Core::step(const Message& message) {
  KV_ASSERT(message.to == config_.node_id);
  // The hosts move a snapshot's bytes between themselves; the core sees only install_snapshot.
  if (message.type == MessageType::snapshot_chunk || message.type == MessageType::snapshot_chunk_response) return;
  // §4.1: a node takes messages from servers outside its latest configuration too (a leader
  // its log does not name yet, a candidate added since); what a non-voter says is weighed
  // where it matters (votes, commit). Peers are authenticated by the transport.
  if (message.from == 0 || message.from == config_.node_id) return;
  // Probation traffic is outside the term rules: it asks about this node's past, not its term.
  if (message.type == MessageType::probation_query) {
    handle_probation_query(message);
    return;
  }
  if (message.type == MessageType::probation_answer) {
    handle_probation_answer(message);
    return;
  }
  if (in_probation()) return;  // not a participant yet (or never again: refusal())
  if (!handle_term(message)) return;
  switch (message.type) {
    case MessageType::request_vote:
    case MessageType::pre_vote:
      handle_vote_request(message);
      break;
    case MessageType::request_vote_response:
    case MessageType::pre_vote_response:
      handle_vote_response(message);
      break;
    case MessageType::append_entries:
      handle_append(message);
      break;
    case MessageType::append_entries_response:
      handle_append_response(message);
      break;
    case MessageType::install_snapshot:
      handle_install_snapshot(message);
      break;
    case MessageType::timeout_now:
      handle_timeout_now(message);
      break;
    case MessageType::snapshot_chunk:
    case MessageType::snapshot_chunk_response:
    case MessageType::probation_query:
    case MessageType::probation_answer:
      break;
  }
}

ProposeResult Core::propose(std::vector<uint8_t> payload) {
  ProposeResult result;
  if (role_ == Role::leader && transfer_target_ != 0) {
    // §3.10: the log must stop growing for the recipient to catch up; retry there shortly.
    result.transfer_in_progress = true;
    result.leader_hint = transfer_target_;
    return result;
  }
  if (role_ != Role::leader || payload.empty()) {
    result.leader_hint = leader_id_ == config_.node_id ? 0 : leader_id_;
    return result;
  }
  Entry entry{log_.last_index() + 1, metadata_.current_term, std::move(payload)};
  result.accepted = true;
  result.index = entry.index;
  result.term = entry.term;
  append_local(std::move(entry));
  // The AppendEntries go out in take_ready(), so proposals made between two Readies share
  // one message per follower (batching).
  return result;
}

void Core::durable(uint64_t index, uint64_t term) {
  // Entries handed out before a truncation may report late; (index, term) names a whole
  // prefix (log matching, §5.3), so a report whose term no longer matches is stale.
  if (index == 0 || index >= unstable_from_ || log_.term_at(index) != term) return;
  if (index <= durable_index_) return;
  durable_index_ = index;
  // §5.4.2 with §10.2.1 of the thesis: the leader counts itself only once its own copy is durable.
  if (role_ == Role::leader) maybe_commit();
}

void Core::metadata_durable(const Metadata& metadata) {
  KV_ASSERT(metadata.current_term <= metadata_.current_term);
  if (metadata.current_term < durable_metadata_.current_term) return;  // an older write, overtaken
  durable_metadata_ = metadata;
  // A candidate counts its own vote only once that vote is durable; votes and
  // acknowledgements of peers count once the peers are recorded (Metadata::counted).
  if (role_ == Role::candidate) check_election_result();
  if (role_ == Role::leader) maybe_commit();
}

void Core::snapshot_taken(uint64_t index, uint64_t term) {
  if (index <= snapshot_index_) return;  // an older snapshot than the one we have (or installed)
  // The host snapshots what it applied, and applied entries are committed and held.
  KV_ASSERT(index <= applied_index_ && index <= commit_index_);
  KV_ASSERT(log_.term_at(index) == term);
  snapshot_index_ = index;
  snapshot_term_ = term;
  durable_snapshot_index_ = std::max(durable_snapshot_index_, index);
  // The snapshot records the configuration as of its index; later entries still supersede it.
  base_configuration_ = configuration_at(index);
  log_configurations_.erase(log_configurations_.begin(), log_configurations_.upper_bound(index));
  // Keep a tail below the snapshot for followers slightly behind; never drop what is not
  // committed and applied: a leader must still send it, a follower may still lose it to a
  // newer leader (§5.3), and take_committed() must still hand it out.
  uint64_t through = index > config_.log_tail_entries ? index - config_.log_tail_entries : 0;
  through = std::min({through, commit_index_, applied_index_});
  if (config_.planted_bug == PlantedBug::compact_past_commit) through = log_.last_index();
  if (through > log_.start_index()) log_.compact_through(through);
  if (config_.planted_bug != PlantedBug::compact_past_commit) KV_ASSERT(log_.start_index() <= commit_index_);
}

void Core::snapshot_durable(uint64_t index, uint64_t term) {
  if (index <= durable_snapshot_index_) return;
  // Only a snapshot this core asked the host to install (or one it superseded) is reported.
  KV_ASSERT(index <= snapshot_index_);
  KV_ASSERT(index != snapshot_index_ || term == snapshot_term_);
  durable_snapshot_index_ = index;
}

void Core::snapshot_failed(uint64_t peer) {
  if (role_ != Role::leader) return;
  auto found = progress_.find(peer);
  if (found == progress_.end() || found->second.mode != Progress::Mode::snapshot) return;
  // Retry at the next heartbeat (a probe again), not at once: the failure may be the peer being down.
  found->second.become_probe();
  found->second.probe_sent = true;
}

void Core::send(Message message, bool needs_vote, uint64_t needs_log_index, uint64_t needs_snapshot_index) {
  message.from = config_.node_id;
  Outgoing outgoing{std::move(message), std::nullopt, 0, 0, 0};
  const MessageType type = outgoing.message.type;
  // PreVote and probation traffic promise nothing and change no state: never held back.
  const bool planted = config_.planted_bug == PlantedBug::vote_before_durable &&
                       type == MessageType::request_vote_response;
  const bool promises_nothing = type == MessageType::pre_vote || type == MessageType::pre_vote_response ||
                                type == MessageType::probation_query || type == MessageType::probation_answer;
  if (!promises_nothing && !planted) {
    KV_ASSERT(!needs_vote || metadata_.voted_for != 0);
    outgoing.needs_metadata = Metadata{metadata_.current_term, needs_vote ? metadata_.voted_for : 0};
  }
  if (config_.planted_bug == PlantedBug::ack_before_durable && type == MessageType::append_entries_response) {
    needs_log_index = 0;
    outgoing.needs_metadata.reset();
  }
  if (needs_log_index > 0) {
    outgoing.needs_log_index = needs_log_index;
    outgoing.needs_log_term = log_.term_at(needs_log_index);
  }
  if (config_.planted_bug == PlantedBug::snapshot_ack_before_durable && needs_snapshot_index > 0) {
    // The install's success leaves at once, past both snapshot gates below.
    outgoing.planted_snapshot_ack = true;
    needs_snapshot_index = 0;
  }
  outgoing.needs_snapshot_index = needs_snapshot_index;
  outbox_.push_back(std::move(outgoing));
}

bool Core::deliverable(const Outgoing& outgoing, bool* stale) const {
  *stale = false;
  if (outgoing.needs_metadata) {
    const Metadata& needs = *outgoing.needs_metadata;
    // Our term moved on: the message speaks for a term we left; receivers would ignore it.
    if (metadata_.current_term != needs.current_term) {
      *stale = true;
      return false;
    }
    if (durable_metadata_.current_term != needs.current_term) return false;
    if (needs.voted_for != 0 && durable_metadata_.voted_for != needs.voted_for) return false;
  }
  if (outgoing.needs_log_index > 0) {
    // The promised entries were replaced by a newer leader's: the success would be a lie.
    if (log_.term_at(outgoing.needs_log_index) != outgoing.needs_log_term) {
      *stale = true;
      return false;
    }
    if (durable_index_ < outgoing.needs_log_index) return false;
  }
  if ((outgoing.needs_log_index > 0 || outgoing.needs_snapshot_index > 0) && !outgoing.planted_snapshot_ack) {
    // §7: a log that starts at an installed snapshot rests on it: until the snapshot is durable a
    // crash would bring back the old log, so nothing resting on the new one may be promised.
    if (!log_base_durable()) return false;
    if (durable_snapshot_index_ < outgoing.needs_snapshot_index) return false;
  }
  return true;
}

std::vector<Message> Core::release_messages() {
  std::vector<Message> released;
  std::vector<Outgoing> held;
  for (Outgoing& outgoing : outbox_) {
    bool stale = false;
    if (deliverable(outgoing, &stale)) {
      released.push_back(std::move(outgoing.message));
    } else if (!stale) {
      held.push_back(std::move(outgoing));
    }
  }
  outbox_ = std::move(held);
  return released;
}

std::vector<Entry> Core::take_committed() {
  std::vector<Entry> committed;
  // Apply only what is durable here too, so an applied index never runs ahead of the local log.
  const uint64_t upto = std::min(commit_index_, durable_index_);
  // Compaction never passes what was applied, and an installed snapshot counts as applied.
  KV_ASSERT(applied_index_ >= log_.start_index() || upto <= applied_index_);
  uint64_t bytes = 0;
  while (applied_index_ < upto) {
    const Entry& entry = log_.at(applied_index_ + 1);
    if (!committed.empty() && bytes + entry.payload().size() > config_.max_apply_bytes_per_ready) break;
    bytes += entry.payload().size();
    committed.push_back(entry);
    ++applied_index_;
  }
  return committed;
}

bool Core::has_ready() const {
  if (snapshot_to_install_) return true;
  if (!(metadata_ == handed_metadata_) || truncate_pending_ || unstable_from_ <= log_.last_index()) return true;
  if (std::min(commit_index_, durable_index_) > applied_index_ || !read_states_.empty()) return true;
  if (!(SoftState{leader_id_, role_} == handed_soft_state_)) return true;
  if (has_sendable_entries()) return true;
  for (const Outgoing& outgoing : outbox_) {
    bool stale = false;
    if (deliverable(outgoing, &stale)) return true;
  }
  return false;
}

Ready Core::take_ready() {
  Ready ready;
  ready.snapshot = snapshot_to_install_;
  snapshot_to_install_.reset();
  if (!(metadata_ == handed_metadata_)) {
    ready.metadata = metadata_;
    handed_metadata_ = metadata_;
  }
  if (truncate_pending_) {
    ready.log_truncated_to = unstable_from_ - 1;
    truncate_pending_ = false;
  }
  for (uint64_t index = unstable_from_; index <= log_.last_index(); ++index) ready.entries.push_back(log_.at(index));
  unstable_from_ = log_.last_index() + 1;
  if (role_ == Role::leader) broadcast_append();
  ready.messages = release_messages();
  ready.committed_entries = take_committed();
  ready.read_states = std::move(read_states_);
  read_states_.clear();
  const SoftState soft_state{leader_id_, role_};
  if (!(soft_state == handed_soft_state_)) {
    ready.soft_state = soft_state;
    handed_soft_state_ = soft_state;
  }
  return ready;
}

void Core::append_local(Entry entry) {
  KV_ASSERT(entry.term <= metadata_.current_term);
  const uint64_t index = entry.index;
  log_.append(std::move(entry));
  note_configuration_entry(log_.at(index));  // §4.1: in use once in the log
}

void Core::truncate_local(uint64_t index) {
  // §5.4: a committed entry is never overwritten (Leader Completeness); if it were, this node
  // could have applied something a leader does not hold.
  KV_ASSERT(index >= commit_index_);
  log_.truncate_after(index);
  forget_configurations_after(index);  // §4.1: a cut configuration entry rolls back
  durable_index_ = std::min(durable_index_, index);
  if (index + 1 < unstable_from_) {
    // Part of the replaced suffix was already handed to persistence: it must be cut on disk.
    unstable_from_ = index + 1;
    truncate_pending_ = true;
  }
}

}  // namespace keyval::raft
