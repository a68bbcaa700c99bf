// Leadership transfer (Ongaro's thesis §3.10, etcd's MsgTransferLeader/MsgTimeoutNow). The
// leader stops taking proposals so its log stops growing, brings the recipient's log up to
// its own through ordinary replication, then sends it timeout_now: the recipient campaigns at
// once (no PreVote, and its vote requests are marked so voters within CheckQuorum's lease
// grant them). With its log as up to date as anyone's it wins the election in one round, so
// the cluster is without a leader for about one round trip plus one vote's fsync instead of
// an election timeout. If the leader still leads an election timeout later (the recipient
// was down, slow, or lost the message), the transfer is abandoned and proposals flow again.
#include "raft/core.h"
#include "storage/status.h"

namespace keyval::raft {

const char* transfer_start_name(TransferStart start) {
  switch (start) {
    case TransferStart::started: return "started";
    case TransferStart::not_leader: return "not the leader";
    case TransferStart::to_self: return "already the leader";
    case TransferStart::not_voter: return "not a voting member";
  }
  return "unknown";
}

TransferStart Core::transfer_leadership(uint64_t target) {
  if (role_ != Role::leader) return TransferStart::not_leader;
  if (target == config_.node_id) return TransferStart::to_self;
  if (target == 0 || !is_voter(target)) return TransferStart::not_voter;
  if (transfer_target_ == target) return TransferStart::started;  // already under way
  transfer_target_ = target;
  transfer_elapsed_ = 0;
  // Already caught up: hand over now. Otherwise the entries it lacks go out with the next
  // Ready (take_ready() broadcasts appends) and its answers bring it here again.
  maybe_send_timeout_now(target);
  return TransferStart::started;
}

void Core::tick_transfer() {
  if (transfer_target_ == 0) return;
  // §3.10: "if the transfer does not complete within an election timeout, the prior leader
  // aborts the transfer and resumes accepting client requests".
  if (++transfer_elapsed_ >= config_.election_timeout_ticks_min) end_transfer();
}

void Core::maybe_send_timeout_now(uint64_t peer) {
  if (role_ != Role::leader || peer != transfer_target_) return;
  // match_index counts only entries durable on the follower: its log holds all of ours, so
  // its candidacy passes every voter's §5.4.1 check. Sent again with later answers until the
  // recipient moves to the next term: a copy that arrives after that is of an older term and
  // is dropped, so a duplicate never starts a second campaign.
  auto found = progress_.find(peer);
  if (found == progress_.end() || found->second.replicated_index() != log_.last_index()) return;
  Message message;
  message.type = MessageType::timeout_now;
  message.to = peer;
  message.term = metadata_.current_term;
  send(std::move(message));
}

void Core::end_transfer() {
  transfer_target_ = 0;
  transfer_elapsed_ = 0;
}

}  // namespace keyval::raft
