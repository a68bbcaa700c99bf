// A voter that lost its data must not take part under its old id (docs/MEMBERSHIP.md, "A
// voter that lost its data"). Raft's safety rests on every voter keeping what it promised:
// a node restarted with an empty directory has forgotten its votes and its log, and in a
// three-node cluster it can help elect a leader that lacks committed entries.
//
// Two records make this detectable:
//   * every node records a peer in Metadata::counted, durably, before that peer's first vote
//     or append acknowledgement counts (check_election_result, maybe_commit), and also when
//     it grants the peer its vote or follows it as leader: a candidate's or leader's term
//     rests on its own durable vote, which a wiped node would forget too;
//   * a directory made by --bootstrap starts on probation (Metadata::probation): the node
//     asks every other voter of its configuration whether it ever counted it. Only when all
//     of them answered "never" is this the node's first life; it clears the flag durably and
//     takes part. One answer "counted" (or a configuration whose voters differ from the one
//     it was bootstrapped with: the cluster moved on without it, and voters removed since
//     cannot be asked) and it refuses for good; the host stops it and says how to replace it.
//
// A new cluster therefore elects its first leader once every bootstrap member has started:
// a member that never started could be the one holding the record.
#include <algorithm>

#include "raft/core.h"
#include "storage/status.h"

namespace keyval::raft {

namespace {

std::string ids_text(const std::vector<uint64_t>& ids) {
  std::string text;
  for (uint64_t id : ids) text += (text.empty() ? "" : ",") + std::to_string(id);
  return text.empty() ? "none" : text;
}

}  // namespace

bool Core::counted_durably(uint64_t peer) const { return durable_metadata_.has_counted(peer); }

void Core::tick_probation() {
  // Waiting for the cleared flag to be durable, or refused: nothing to ask.
  if (!metadata_.probation || !refusal_.empty()) return;
  maybe_end_probation();  // a single-voter configuration has nobody to ask
  if (!metadata_.probation) return;
  // Ask at once, then every heartbeat interval, whoever has not answered "never" yet.
  if (heartbeat_elapsed_++ % config_.heartbeat_ticks != 0) return;
  for (uint64_t voter : voter_ids(configuration_)) {
    if (voter == config_.node_id || probation_confirmed_.count(voter) != 0) continue;
    Message query;
    query.type = MessageType::probation_query;
    query.to = voter;
    query.term = metadata_.current_term;
    send(query);
  }
}

void Core::handle_probation_query(const Message& message) {
  Message answer;
  answer.type = MessageType::probation_answer;
  answer.to = message.from;
  answer.term = metadata_.current_term;
  // The live set, not only the durable one: a peer being recorded is about to be counted.
  answer.probation_counted = metadata_.has_counted(message.from);
  answer.configuration = configuration_;
  send(answer);
}

void Core::handle_probation_answer(const Message& message) {
  if (!metadata_.probation || !refusal_.empty()) return;
  const std::string from = "node " + std::to_string(message.from);
  if (message.probation_counted) {
    refusal_ = from + " counted a vote or acknowledgement of node " + std::to_string(config_.node_id) +
               " before: this data directory is not the one node " + std::to_string(config_.node_id) +
               " voted with (it was lost, wiped or re-created)";
    return;
  }
  if (!message.configuration.empty()) {
    const std::vector<uint64_t> theirs = voter_ids(message.configuration);
    const std::vector<uint64_t> ours = voter_ids(configuration_);
    if (theirs != ours) {
      refusal_ = from + "'s configuration has voters " + ids_text(theirs) + ", not the voters " + ids_text(ours) +
                 " this data directory was bootstrapped with: the cluster changed since, and this node cannot show "
                 "it never voted in it";
      return;
    }
  }
  if (!is_voter(message.from)) return;
  probation_confirmed_.insert(message.from);
  maybe_end_probation();
}

void Core::maybe_end_probation() {
  for (uint64_t voter : voter_ids(configuration_)) {
    if (voter != config_.node_id && probation_confirmed_.count(voter) == 0) return;
  }
  // Every other voter answered "never": persisted first (in_probation() holds until then).
  metadata_.probation = false;
  probation_confirmed_.clear();
  reset_timers();
}

}  // namespace keyval::raft
