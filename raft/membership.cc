// Cluster membership in the core (raft/membership.h; thesis chapter 4, §4.1 single-server
// changes): which configuration is in use, how it follows the log (appends, truncations,
// snapshots, recovery), the Progress the leader keeps per member, and the checks a change
// must pass before the leader proposes it.
#include <algorithm>
#include <string>

#include "raft/core.h"
#include "storage/codec.h"
#include "storage/status.h"

namespace keyval::raft {

const char* conf_change_refusal_name(ConfChangeRefusal refusal) {
  switch (refusal) {
    case ConfChangeRefusal::none: return "none";
    case ConfChangeRefusal::not_leader: return "not_leader";
    case ConfChangeRefusal::change_pending: return "change_pending";
    case ConfChangeRefusal::no_commit_in_term: return "no_commit_in_term";
    case ConfChangeRefusal::already_member: return "already_member";
    case ConfChangeRefusal::not_member: return "not_member";
    case ConfChangeRefusal::not_learner: return "not_learner";
    case ConfChangeRefusal::learner_behind: return "learner_behind";
    case ConfChangeRefusal::remove_leader: return "remove_leader";
    case ConfChangeRefusal::last_voter: return "last_voter";
    case ConfChangeRefusal::transfer_in_progress: return "transfer_in_progress";
    case ConfChangeRefusal::invalid: return "invalid";
  }
  return "unknown";
}

const Member* find_member(const std::vector<Member>& members, uint64_t id) {
  for (const Member& member : members) {
    if (member.id == id) return &member;
  }
  return nullptr;
}

bool is_voter(const std::vector<Member>& members, uint64_t id) {
  const Member* member = find_member(members, id);
  return member != nullptr && !member->learner;
}

std::vector<uint64_t> voter_ids(const std::vector<Member>& members) {
  std::vector<uint64_t> ids;
  for (const Member& member : members) {
    if (!member.learner) ids.push_back(member.id);
  }
  return ids;
}

namespace {

std::vector<Member> decode_members(const Entry& entry) {
  auto decoded = decode_configuration_entry(entry.payload().data(), entry.payload().size(),
                                            "configuration entry " + std::to_string(entry.index));
  // Every path that carries an entry checks its checksum: an undecodable configuration that
  // passed them is a bug, and guessing a configuration could break quorum overlap.
  KV_ASSERT(decoded.is_ok());
  return decoded->members;
}

std::string node_name(uint64_t id) { return "node " + std::to_string(id); }

}  // namespace

void Core::recover_configuration(const RecoveredState& recovered) {
  if (!recovered.configuration.empty()) {
    base_configuration_ = recovered.configuration;
  } else {
    // A directory from before configurations were logged: Config::voters, without addresses.
    // Empty as well (a node joining with an empty log): not a member until the log says so.
    for (uint64_t id : config_.voters) base_configuration_.push_back(Member{id, "", "", false});
    std::sort(base_configuration_.begin(), base_configuration_.end(),
              [](const Member& a, const Member& b) { return a.id < b.id; });
  }
  // Entries the snapshot covers are in base_configuration_ already.
  for (uint64_t index = std::max(log_.first_index(), recovered.snapshot_index + 1); index <= log_.last_index();
       ++index) {
    note_configuration_entry(log_.at(index));
  }
  use_latest_configuration();
}

void Core::note_configuration_entry(const Entry& entry) {
  if (entry.type != EntryType::configuration) return;
  log_configurations_[entry.index] = decode_members(entry);
  use_latest_configuration();
}

void Core::forget_configurations_after(uint64_t index) {
  auto first_cut = log_configurations_.upper_bound(index);
  if (first_cut == log_configurations_.end()) return;
  log_configurations_.erase(first_cut, log_configurations_.end());
  use_latest_configuration();
}

void Core::use_latest_configuration() {
  if (log_configurations_.empty()) {
    configuration_ = base_configuration_;
    configuration_index_ = 0;
  } else {
    configuration_ = log_configurations_.rbegin()->second;
    configuration_index_ = log_configurations_.rbegin()->first;
  }
  voter_count_ = voter_ids(configuration_).size();
  if (role_ == Role::leader) sync_progress();
  // A candidate's election was counted against the old voters; a change mid-campaign (a
  // truncation by the new term's leader) is settled by that leader's messages.
}

void Core::sync_progress() {
  // Every member but ourselves gets a Progress; a removed member keeps its own until the
  // removal commits, so the entry that removes it reaches it (it then stops campaigning).
  std::vector<uint64_t> peers;
  for (const Member& member : configuration_) peers.push_back(member.id);
  if (configuration_index_ > commit_index_) {
    for (const Member& member : configuration_at(configuration_index_ - 1)) peers.push_back(member.id);
  }
  for (auto it = progress_.begin(); it != progress_.end();) {
    if (std::find(peers.begin(), peers.end(), it->first) == peers.end()) {
      it = progress_.erase(it);
    } else {
      ++it;
    }
  }
  for (uint64_t peer : peers) {
    if (peer != config_.node_id && progress_.count(peer) == 0) {
      progress_.emplace(peer, Progress(log_.last_index() + 1));
    }
  }
}

void Core::step_down_if_removed() {
  // §4.2.2: a leader that is no longer a voter of its committed configuration steps down. The
  // leader never proposes its own removal (remove_leader), but a voter whose removal another
  // leader appended may be elected before it commits (may_campaign) and commit it itself.
  if (role_ == Role::leader && commit_index_ >= configuration_index_ && !is_voter(config_.node_id)) {
    become_follower(metadata_.current_term, 0);
  }
}

const std::vector<Member>& Core::configuration() const { return configuration_; }
uint64_t Core::configuration_index() const { return configuration_index_; }

std::vector<Member> Core::configuration_at(uint64_t index) const {
  auto found = log_configurations_.upper_bound(index);
  if (found == log_configurations_.begin()) return base_configuration_;
  return std::prev(found)->second;
}

bool Core::is_member() const { return find_member(configuration_, config_.node_id) != nullptr; }
std::vector<uint64_t> Core::configuration_entry_indexes() const {
  std::vector<uint64_t> indexes;
  for (const auto& [index, members] : log_configurations_) indexes.push_back(index);
  return indexes;
}

bool Core::is_voter() const { return is_voter(config_.node_id); }

bool Core::may_campaign() const {
  if (is_voter()) return true;
  // Thesis §4.2.2: a server that is not part of its own latest configuration still starts
  // elections while that configuration is uncommitted, for it may be needed until then. A
  // voter whose removal is appended but not committed may hold the only copy, among the
  // voters that can vote, of the entry that removes it: without its candidacy no leader
  // could be elected (simulator seed 417). It counts the votes of the latest configuration,
  // in which it has none of its own, leads without counting itself (maybe_commit,
  // check_quorum, release_reads), and steps down once its removal commits.
  return configuration_index_ > commit_index_ &&
         raft::is_voter(configuration_at(configuration_index_ - 1), config_.node_id);
}
bool Core::is_voter(uint64_t id) const { return raft::is_voter(configuration_, id); }

ConfChangeRefusal Core::check_conf_change(ConfChangeKind kind, const Member& member, std::string* why) const {
  const uint64_t id = member.id;
  if (transfer_target_ != 0) {
    *why = "leadership is being handed to " + node_name(transfer_target_);
    return ConfChangeRefusal::transfer_in_progress;
  }
  if (id == 0 || kind == ConfChangeKind::bootstrap || (kind == ConfChangeKind::add_learner && member.address.empty())) {
    *why = "a change needs a node id other than 0, a kind other than bootstrap, and an address to add";
    return ConfChangeRefusal::invalid;
  }
  if (configuration_index_ > commit_index_ && config_.planted_bug != PlantedBug::conf_changes_at_once) {
    *why = "the change at index " + std::to_string(configuration_index_) + " is not committed yet (commit index " +
           std::to_string(commit_index_) + ")";
    return ConfChangeRefusal::change_pending;
  }
  if (log_.term_at(commit_index_) != metadata_.current_term) {
    *why = "leader " + node_name(config_.node_id) + " has not committed an entry of term " +
           std::to_string(metadata_.current_term) + " yet";
    return ConfChangeRefusal::no_commit_in_term;
  }
  const Member* current = find_member(configuration_, id);
  if (kind == ConfChangeKind::add_learner) {
    if (current == nullptr) return ConfChangeRefusal::none;
    *why = node_name(id) + " is already a " + (current->learner ? "learner" : "voter");
    return ConfChangeRefusal::already_member;
  }
  if (current == nullptr) {
    *why = node_name(id) + " is not a member";
    return ConfChangeRefusal::not_member;
  }
  if (kind == ConfChangeKind::promote) {
    if (!current->learner) {
      *why = node_name(id) + " is a voter already";
      return ConfChangeRefusal::not_learner;
    }
    const Progress& progress = progress_.at(id);
    const uint64_t behind = log_.last_index() - std::min(log_.last_index(), progress.replicated_index());
    const bool heard = progress.ticks_since_heard < config_.election_timeout_ticks_min;
    // The learner must hold the configuration in use (which names it): until then it does not
    // know it is a member and grants no vote (handle_vote_request), so promoting it would add a
    // voter that cannot help elect anyone. With a short log the lag bound alone lets a learner
    // with an empty log through (simulator seed 9506: no quorum could form after that).
    // When no configuration entry follows our snapshot, the one in use is the snapshot's own
    // (configuration_index_ 0): the learner holds it once its log reaches the snapshot (seeds
    // 152, 175 and 412 with --value-bytes 30720: a learner with an empty log was promoted that way).
    const uint64_t configuration_at = configuration_index_ > 0 ? configuration_index_ : snapshot_index_;
    const bool has_configuration = progress.replicated_index() >= configuration_at;
    if (behind > config_.promote_lag_max || !heard || !has_configuration) {
      *why = "learner " + node_name(id) + " has the log through " + std::to_string(progress.replicated_index()) +
             " of " + std::to_string(log_.last_index()) + " (at most " + std::to_string(config_.promote_lag_max) +
             " behind allowed, and at least the configuration " +
             (configuration_index_ > 0 ? "entry " + std::to_string(configuration_index_)
                                       : "of the snapshot at " + std::to_string(snapshot_index_)) + ")" +
             (heard ? "" : " and has not answered within an election timeout");
      return ConfChangeRefusal::learner_behind;
    }
    return ConfChangeRefusal::none;
  }
  // The only voter is the leader itself, and there is nobody to hand leadership to.
  if (!current->learner && voter_count_ <= 1) {
    *why = node_name(id) + " is the only voter";
    return ConfChangeRefusal::last_voter;
  }
  if (id == config_.node_id) {
    *why = node_name(id) + " leads: transfer leadership first";
    return ConfChangeRefusal::remove_leader;
  }
  return ConfChangeRefusal::none;
}

ConfChangeResult Core::propose_conf_change(ConfChangeKind kind, const Member& member) {
  ConfChangeResult result;
  if (role_ != Role::leader) {
    result.refusal = ConfChangeRefusal::not_leader;
    result.leader_hint = leader_id_ == config_.node_id ? 0 : leader_id_;
    result.why = node_name(config_.node_id) + " is not the leader";
    return result;
  }
  result.refusal = check_conf_change(kind, member, &result.why);
  if (result.refusal != ConfChangeRefusal::none) return result;
  ConfigurationEntry change{kind, member.id, configuration_};
  if (kind == ConfChangeKind::add_learner) {
    Member added = member;
    added.learner = true;
    change.members.push_back(added);
  } else if (kind == ConfChangeKind::promote) {
    for (Member& existing : change.members) {
      if (existing.id == member.id) existing.learner = false;
    }
  } else {
    change.members.erase(std::remove_if(change.members.begin(), change.members.end(),
                                        [&](const Member& existing) { return existing.id == member.id; }),
                         change.members.end());
  }
  std::sort(change.members.begin(), change.members.end(),
            [](const Member& a, const Member& b) { return a.id < b.id; });
  Entry entry{log_.last_index() + 1, metadata_.current_term, encode_configuration_entry(change),
              EntryType::configuration};
  result.index = entry.index;
  result.term = entry.term;
  // §4.1: in use from now on, committed or not; the appends leave with the next Ready.
  append_local(std::move(entry));
  return result;
}

}  // namespace keyval::raft
