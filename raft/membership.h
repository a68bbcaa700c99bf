// Cluster membership (thesis chapter 4, single-server changes, §4.1): which nodes replicate
// the log, which of them vote, and the one change at a time that moves from one
// configuration to the next. A configuration is a list of Members (storage/types.h); a
// learner (non-voting member) receives the log but never campaigns and never counts toward
// commit or elections. It does answer a vote request (a candidate whose log promotes it
// asks it; see Core::handle_vote_request); a node outside its configuration does not. Configurations live in the log as entries of type
// EntryType::configuration whose payload is encode_configuration_entry(...)
// (storage/codec.h; ConfigurationEntry is in storage/types.h) and in snapshots (SnapshotMetadata::configuration). A node uses the
// latest configuration in its log, committed or not (§4.1); a truncated configuration
// entry rolls the node back to the one before it. The one exception (§4.2.2): a voter that
// only an uncommitted entry leaves out still campaigns (Core::may_campaign), since it may
// hold the only copy of that entry among the nodes that can vote; it then leads without
// counting itself and steps down once the entry commits.
//
// Why single-server changes rather than joint consensus: every change KeyVal's operators
// make (add a learner, promote it, remove a node) moves one server, any two majorities of
// consecutive configurations then overlap, and there is no intermediate state to explain
// or to get stuck in. The one known pitfall (the leader must commit an entry of its own
// term before a change, Ongaro's raft-dev note of 2015) is handled (see ConfChangeRefusal).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "storage/types.h"

namespace keyval::raft {

using keyval::ConfChangeKind;
using keyval::ConfigurationEntry;
using keyval::conf_change_kind_name;

// Why a leader refused a change (Core::propose_conf_change). Nothing was proposed.
enum class ConfChangeRefusal : uint8_t {
  none = 0,
  not_leader,           // leader_hint says who to ask
  change_pending,       // the previous change is not committed yet: one at a time (§4.1)
  no_commit_in_term,    // the leader has not committed an entry of its own term yet
  already_member,       // add_learner of an id already in the configuration
  not_member,           // promote/remove of an id not in the configuration
  not_learner,          // promote of a voter
  learner_behind,       // promote of a learner whose log is more than Config::promote_lag_max
                        // entries behind the leader's (or that has not answered lately)
  remove_leader,        // remove of the leader itself: transfer leadership first
  last_voter,           // remove of the only voter
  transfer_in_progress, // the leader is handing over leadership
  invalid,              // node id 0, an empty address for add_learner, bootstrap proposed
};
const char* conf_change_refusal_name(ConfChangeRefusal refusal);

struct ConfChangeResult {
  ConfChangeRefusal refusal = ConfChangeRefusal::none;  // none: proposed at (index, term)
  uint64_t index = 0;
  uint64_t term = 0;
  uint64_t leader_hint = 0;  // refused with not_leader: who leads (0: unknown)
  std::string why;           // refused: a sentence for the operator, naming the node and figures
};

// Helpers over a configuration (a vector of Members).
const Member* find_member(const std::vector<Member>& members, uint64_t id);
bool is_voter(const std::vector<Member>& members, uint64_t id);
std::vector<uint64_t> voter_ids(const std::vector<Member>& members);

}  // namespace keyval::raft
