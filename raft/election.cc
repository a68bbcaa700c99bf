// Leader election (§5.2) with PreVote and CheckQuorum's lease (etcd's names; thesis §9.6),
// the term rules every message goes through (§5.1) and vote granting (§5.2, §5.4.1).
#include <algorithm>

#include "raft/core.h"
#include "storage/status.h"

namespace keyval::raft {

void Core::reset_timers() {
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  // §5.2: randomized timeouts make split votes rare; the draw comes from the seeded generator.
  randomized_election_timeout_ =
      static_cast<uint32_t>(random_.between(config_.election_timeout_ticks_min, config_.election_timeout_ticks_max));
}

void Core::tick_election() {
  if (election_elapsed_ < UINT32_MAX) ++election_elapsed_;
  // §5.2: no word from a leader (or no decision) within the election timeout: campaign.
  if (election_elapsed_ < randomized_election_timeout_) return;
  // Learners and nodes outside the configuration (removed, or joining with an empty log)
  // do not campaign: they could not win, and a removed node would only disturb the others.
  // Their timer keeps running, so CheckQuorum's lease (in_lease) ends for them as for voters.
  // A voter left out only by an uncommitted change still campaigns (may_campaign).
  if (!may_campaign()) return;
  // A repairing node may lack committed entries: it waits for a leader to repair it.
  if (in_repair()) return;
  campaign(config_.pre_vote);
}

// tick_election only counts until the count reaches the randomized timeout.
uint32_t Core::quiet_ticks() const {
  if (in_probation() || role_ == Role::leader) return 0;
  if (randomized_election_timeout_ == 0 || election_elapsed_ + 1 >= randomized_election_timeout_) return 0;
  return randomized_election_timeout_ - election_elapsed_ - 1;
}

void Core::campaign(bool pre_vote, bool leadership_transfer) {
  if (pre_vote) {
    become_pre_candidate();
  } else {
    become_candidate();
  }
  KV_ASSERT(may_campaign());
  const MessageType type = pre_vote ? MessageType::pre_vote : MessageType::request_vote;
  for (uint64_t peer : voter_ids(configuration_)) {
    if (peer == config_.node_id) continue;
    Message request;
    request.type = type;
    request.to = peer;
    // A pre-vote asks about the term we would campaign in, without entering it.
    request.term = pre_vote ? metadata_.current_term + 1 : metadata_.current_term;
    request.last_log_index = log_.last_index();
    request.last_log_term = log_.last_term();
    request.leadership_transfer = leadership_transfer;
    // A real candidacy rests on our own vote: it must be durable before anyone sees it.
    send(request, /*needs_vote=*/!pre_vote);
  }
  check_election_result();  // a single-node cluster decides at once
}

void Core::become_follower(uint64_t term, uint64_t leader_id) {
  KV_ASSERT(term >= metadata_.current_term);
  if (term > metadata_.current_term) {
    // §5.1: adopt the newer term; the vote belongs to the old one.
    metadata_.current_term = term;
    metadata_.voted_for = 0;
  }
  role_ = Role::follower;
  leader_id_ = leader_id;
  votes_.clear();
  progress_.clear();
  end_transfer();
  pending_reads_.clear();
  reads_before_commit_.clear();
  reads_next_round_.clear();
  read_broadcast_context_ = 0;
  read_answer_order_.clear();
  reset_timers();
}

void Core::become_pre_candidate() {
  // PreVote changes neither term nor vote, so a node cut off from the cluster cannot inflate
  // its term and depose a healthy leader when it returns.
  role_ = Role::pre_candidate;
  leader_id_ = 0;
  votes_.clear();
  reset_timers();
}

void Core::become_candidate() {
  // §5.2: increment current_term, vote for self (set ⇒ durable before the candidacy counts).
  metadata_.current_term += 1;
  metadata_.voted_for = config_.node_id;
  role_ = Role::candidate;
  leader_id_ = 0;
  votes_.clear();
  reset_timers();
}

void Core::become_leader() {
  KV_ASSERT(role_ == Role::candidate);
  role_ = Role::leader;
  leader_id_ = config_.node_id;
  votes_.clear();
  progress_.clear();
  end_transfer();
  // Figure 2: next_index starts just past the leader's log, match_index at 0; probe first.
  // Every member gets one, learners included (they replicate, they do not count).
  sync_progress();
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  read_broadcast_context_ = 0;  // the first read round goes to every voter
  read_answer_order_.clear();
  // §5.4.2 / §8: a no-op in the new term lets the leader commit (and learn the commit index
  // of) everything earlier, which it may not do by counting old-term replicas.
  append_local(Entry{log_.last_index() + 1, metadata_.current_term, {}});
  broadcast_append();
}

bool Core::in_lease() const {
  // CheckQuorum's lease: we heard from a live leader within the minimum election timeout,
  // so a candidate asking for votes is disrupting a working cluster.
  return config_.check_quorum && leader_id_ != 0 && election_elapsed_ < config_.election_timeout_ticks_min;
}

bool Core::handle_term(const Message& message) {
  const MessageType type = message.type;
  const bool vote_request = type == MessageType::request_vote || type == MessageType::pre_vote;
  if (message.term > metadata_.current_term) {
    // A campaign the leader asked for (timeout_now, §3.10) is not a disruption.
    if (vote_request && in_lease() && !message.leadership_transfer) return false;
    // A pre-vote carries the term the sender would campaign in; a granted pre-vote response
    // echoes it. Neither means a newer term exists.
    if (type == MessageType::pre_vote) return true;
    if (type == MessageType::pre_vote_response && message.vote_granted) return true;
    // §5.1: a newer term always wins; leaders and candidates revert to follower.
    const bool from_leader = type == MessageType::append_entries || type == MessageType::install_snapshot;
    become_follower(message.term, from_leader ? message.from : 0);
    return true;
  }
  if (message.term < metadata_.current_term) {
    // With PreVote and CheckQuorum a stale leader or pre-candidate may never hear a newer
    // term otherwise; answer with ours so it steps down (etcd does the same).
    if (type == MessageType::append_entries || type == MessageType::install_snapshot ||
        type == MessageType::pre_vote) {
      Message response;
      response.type = type == MessageType::pre_vote ? MessageType::pre_vote_response
                                                     : MessageType::append_entries_response;
      response.to = message.from;
      response.term = metadata_.current_term;
      response.reject_index = message.prev_log_index;
      send(response);
    }
    return false;
  }
  return true;
}

bool Core::log_up_to_date(uint64_t last_log_index, uint64_t last_log_term) const {
  // §5.4.1: compare the last entries' terms, then the lengths. A log emptied by a snapshot
  // ends at the snapshot (Log::last_term() is then its term).
  return last_log_term > log_.last_term() || (last_log_term == log_.last_term() && last_log_index >= log_.last_index());
}

void Core::handle_vote_request(const Message& message) {
  const bool pre_vote = message.type == MessageType::pre_vote;
  // A rejection is filled in first and overwritten only when the vote is granted.
  Message response;
  response.type = pre_vote ? MessageType::pre_vote_response : MessageType::request_vote_response;
  response.to = message.from;
  response.term = metadata_.current_term;
  response.vote_granted = false;
  // A node outside its configuration (removed, or joining with an empty log: possibly a voter
  // that lost its data) grants no votes. A learner does answer: a candidate asks only the
  // voters of its own configuration, so it asks a learner only when its log promotes it, and
  // the learner may not have that entry yet. Refusing then can leave no electable voter (the
  // leader that proposed the promotion steps down before the learner hears of it, and without
  // the new voter's vote nobody reaches a majority); the vote is safe, being one per term and
  // subject to the §5.4.1 check like any other.
  if (!is_member()) {
    send(response);
    return;
  }
  // A repairing node's log may lack committed entries it once acknowledged: its vote could
  // elect a leader without them (docs/PERSISTENCE.md, "Corruption repaired from peers").
  if (in_repair() && config_.planted_bug != PlantedBug::vote_while_repairing) {
    send(response);
    return;
  }
  // §5.2: one vote per term, first come first served; a known leader in this term means the
  // election is over. A pre-vote for a later term binds nothing.
  const bool can_vote = metadata_.voted_for == message.from || (metadata_.voted_for == 0 && leader_id_ == 0) ||
                        (pre_vote && message.term > metadata_.current_term);
  if (!can_vote || !log_up_to_date(message.last_log_index, message.last_log_term)) {
    send(response);
    return;
  }
  response.vote_granted = true;
  response.term = message.term;
  if (pre_vote) {
    send(response);
    return;
  }
  metadata_.voted_for = message.from;
  // The candidate's campaign rests on its own durable vote: recorded (Metadata::counted) in
  // the same write as ours.
  note_counted(message.from);
  election_elapsed_ = 0;  // §5.2: granting a vote resets the election timer
  send(response, /*needs_vote=*/true);  // Figure 2: voted_for durable before the grant leaves
}

void Core::handle_timeout_now(const Message& message) {
  // §3.10: the leader of our term caught our log up to its own and steps aside: campaign now,
  // in a real election (PreVote would only ask the same voters whether we could win). A
  // candidate is campaigning already; a leader of this term is the sender itself.
  (void)message;
  if (role_ != Role::follower || !is_voter() || in_repair()) return;
  campaign(/*pre_vote=*/false, /*leadership_transfer=*/true);
}

void Core::handle_vote_response(const Message& message) {
  const bool pre_vote = message.type == MessageType::pre_vote_response;
  if (pre_vote && role_ != Role::pre_candidate) return;
  if (!pre_vote && role_ != Role::candidate) return;
  // A granted pre-vote echoes the term we would campaign in; anything else is a leftover.
  if (pre_vote && message.vote_granted && message.term != metadata_.current_term + 1) return;
  if (!is_voter(message.from)) return;  // only voters of the configuration in use count
  votes_.emplace(message.from, message.vote_granted);  // the first answer of each voter counts
  check_election_result();
}

void Core::check_election_result() {
  uint64_t granted = 0;
  uint64_t rejected = 0;
  for (const auto& [voter, vote] : votes_) {
    if (!is_voter(voter)) continue;
    if (!vote) {
      ++rejected;
    } else if (role_ == Role::candidate && !counted_durably(voter)) {
      note_counted(voter);  // counts once the record is durable (metadata_durable decides again)
    } else {
      ++granted;
    }
  }
  // Our own vote: a pre-vote costs nothing; a real vote counts once it is durable, or a
  // crash could let us vote again in this term for someone else (§5.1). A candidate that
  // the uncommitted configuration leaves out (may_campaign) has no vote in it to count.
  if (role_ == Role::pre_candidate && is_voter()) granted += 1;
  if (role_ == Role::candidate && is_voter() && durable_metadata_.current_term == metadata_.current_term &&
      durable_metadata_.voted_for == metadata_.voted_for) {
    granted += 1;
  }
  if (granted >= quorum()) {
    if (role_ == Role::pre_candidate) {
      campaign(false);
    } else {
      become_leader();
    }
  } else if (rejected >= quorum()) {
    become_follower(metadata_.current_term, 0);  // lost: wait for a leader or the next timeout
  }
}

}  // namespace keyval::raft
