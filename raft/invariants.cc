// The cluster-wide Raft safety checks (see invariants.h). Each message names the property
// (Figure 3 of the paper), the nodes, the index and the terms involved.
#include "raft/invariants.h"

#include <algorithm>
#include <string>

namespace keyval::raft {

namespace {

std::string node_name(uint64_t id) { return "node " + std::to_string(id); }

}  // namespace

NodeState NodeState::of(const Core& core) {
  NodeState state = roles_of(core);
  core.log().append_terms(state.log_terms);
  return state;
}

bool operator==(const NodeState& a, const NodeState& b) {
  return a.id == b.id && a.current_term == b.current_term && a.role == b.role && a.commit_index == b.commit_index &&
         a.log_terms == b.log_terms && a.last_index == b.last_index && a.log_start_index == b.log_start_index &&
         a.log_start_term == b.log_start_term && a.snapshot_index == b.snapshot_index &&
         a.match_indexes == b.match_indexes && a.configuration_indexes == b.configuration_indexes &&
         a.repairing == b.repairing && a.on_probation == b.on_probation && a.durable_index == b.durable_index &&
         a.voters == b.voters;
}

NodeState NodeState::roles_of(const Core& core) {
  NodeState state;
  state.read_roles(core);
  return state;
}

void NodeState::read_roles(const Core& core) {
  id = core.id();
  current_term = core.current_term();
  role = core.role();
  commit_index = core.commit_index();
  log_terms.clear();
  last_index = core.log().last_index();
  log_start_index = core.log().start_index();
  log_start_term = core.log().start_term();
  snapshot_index = core.snapshot_index();
  repairing = core.in_repair();
  on_probation = core.in_probation();
  durable_index = core.durable_index();
  voters.clear();
  configuration_indexes.clear();
  if (core.role() == Role::leader) {
    for (const Member& member : core.configuration()) {
      if (!member.learner) voters.push_back(member.id);
    }
    configuration_indexes = core.configuration_entry_indexes();
  }
  // A regressed follower (its log lost what it acknowledged: a wiped directory) is reported by
  // the core itself; its kept match_index is not a claim about its log as it is now.
  match_indexes.clear();
  for (const auto& [peer, progress] : core.progress_by_peer()) {
    if (!progress.regressed) match_indexes.emplace_back(peer, progress.match_index);
  }
}

std::vector<std::string> InvariantChecker::observe_roles(const std::vector<NodeState>& nodes) {
  std::vector<std::string> violations;
  take_deferred(violations);
  for (const NodeState& node : nodes) {
    check_election_safety(node, violations);
    check_monotonic(node, violations);
    check_compaction(node, violations);
  }
  check_match_indexes(nodes, violations);
  check_commit_durable(nodes, violations);
  for (const NodeState& node : nodes) check_one_change_at_a_time(node, violations);
  return violations;
}

void InvariantChecker::take_deferred(std::vector<std::string>& violations) {
  violations.insert(violations.end(), deferred_.begin(), deferred_.end());
  deferred_.clear();
}

std::vector<std::string> InvariantChecker::observe(const std::vector<const Core*>& cores) {
  std::vector<NodeState> nodes;
  nodes.reserve(cores.size());
  for (const Core* core : cores) nodes.push_back(NodeState::of(*core));
  return observe(nodes);
}

std::vector<std::string> InvariantChecker::observe(const std::vector<NodeState>& nodes) {
  std::vector<std::string> violations;
  take_deferred(violations);
  for (const NodeState& node : nodes) {
    check_election_safety(node, violations);
    check_monotonic(node, violations);
    check_compaction(node, violations);
    record_committed(node, violations);
  }
  check_match_indexes(nodes, violations);
  check_commit_durable(nodes, violations);
  for (const NodeState& node : nodes) check_leader_completeness(node, violations);
  for (const NodeState& node : nodes) check_one_change_at_a_time(node, violations);
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (size_t j = i + 1; j < nodes.size(); ++j) check_log_matching(nodes[i], nodes[j], violations);
  }
  return violations;
}

void InvariantChecker::check_election_safety(const NodeState& node, std::vector<std::string>& violations) {
  if (node.role != Role::leader) return;
  // Election Safety: at most one leader can be elected in a given term (§5.2).
  auto [found, inserted] = leader_of_term_.emplace(node.current_term, node.id);
  if (!inserted && found->second != node.id) {
    violations.push_back("election safety: " + node_name(found->second) + " and " + node_name(node.id) +
                         " are both leader in term " + std::to_string(node.current_term));
  }
}

void InvariantChecker::check_monotonic(const NodeState& node, std::vector<std::string>& violations) {
  uint64_t& last_term = last_term_[node.id];
  if (node.current_term < last_term) {
    violations.push_back("term went back: " + node_name(node.id) + " from " + std::to_string(last_term) + " to " +
                         std::to_string(node.current_term));
  }
  last_term = std::max(last_term, node.current_term);
  uint64_t& last_commit = last_commit_index_[node.id];
  if (node.commit_index < last_commit) {
    violations.push_back("commit index went back: " + node_name(node.id) + " from " + std::to_string(last_commit) +
                         " to " + std::to_string(node.commit_index));
  }
  last_commit = std::max(last_commit, node.commit_index);
  const uint64_t log_length = std::max<uint64_t>(node.last_index, node.held_last_index());
  if (node.commit_index > log_length) {
    violations.push_back("commit index past the log: " + node_name(node.id) + " commits " +
                         std::to_string(node.commit_index) + " of " + std::to_string(log_length));
  }
}

void InvariantChecker::check_compaction(const NodeState& node, std::vector<std::string>& violations) {
  // §7: a snapshot holds only committed entries, and compaction drops only what one covers;
  // an uncommitted entry compacted away could be one a newer leader replaces.
  if (node.log_start_index > node.commit_index) {
    violations.push_back("compacted past commit: " + node_name(node.id) + " log starts after index " +
                         std::to_string(node.log_start_index) + " but commits " + std::to_string(node.commit_index));
  }
  if (node.log_start_index > node.snapshot_index) {
    violations.push_back("compacted past the snapshot: " + node_name(node.id) + " log starts after index " +
                         std::to_string(node.log_start_index) + ", snapshot at " +
                         std::to_string(node.snapshot_index));
  }
}

void InvariantChecker::record_committed(const NodeState& node, std::vector<std::string>& violations) {
  // The log start is committed too (it is covered by a snapshot), and its term is known.
  const uint64_t upto = std::min<uint64_t>(node.commit_index, node.held_last_index());
  if (upto >= committed_.size()) committed_.resize(upto + 1, Committed{0, 0});
  for (uint64_t index = std::max<uint64_t>(1, node.log_start_index); index <= upto; ++index) {
    const uint64_t term = node.term_at(index);
    Committed& found = committed_[index];
    if (found.entry_term == 0) {
      found = Committed{term, node.current_term};
      committed_last_ = std::max(committed_last_, index);
      continue;
    }
    // Two nodes committed different entries at one index: state machine safety is lost.
    if (found.entry_term != term) {
      violations.push_back("committed entries differ: " + node_name(node.id) + " committed term " +
                           std::to_string(term) + " at index " + std::to_string(index) + ", earlier term " +
                           std::to_string(found.entry_term));
    }
    found.committed_in_term = std::min(found.committed_in_term, node.current_term);
  }
}

void InvariantChecker::check_one_change_at_a_time(const NodeState& node, std::vector<std::string>& violations) const {
  // Single-server changes (thesis §4.1) are safe only one at a time: a leader appends a
  // configuration entry only once the one before it is committed. Every log is one chain of
  // leaders that kept that rule, so any leader's log holds at most one configuration entry
  // above the highest index anyone committed; two there are two changes in flight, whose old
  // and new majorities need not overlap.
  if (node.role != Role::leader || node.configuration_indexes.size() < 2) return;
  uint64_t committed = std::max(node.commit_index, committed_last_);
  for (const auto& [id, index] : last_commit_index_) committed = std::max(committed, index);
  std::string uncommitted;
  size_t count = 0;
  for (uint64_t index : node.configuration_indexes) {
    if (index <= committed) continue;
    ++count;
    uncommitted += (uncommitted.empty() ? "" : ", ") + std::to_string(index);
  }
  if (count < 2) return;
  violations.push_back("two configuration changes at once: leader " + node_name(node.id) + " of term " +
                       std::to_string(node.current_term) + " holds uncommitted configuration entries at " +
                       uncommitted);
}

void InvariantChecker::check_match_indexes(const std::vector<NodeState>& nodes, std::vector<std::string>& violations) {
  // A success is durable before it leaves (Figure 2), and within one term only its leader
  // changes a follower's log, never below what the follower acknowledged: so a leader's
  // match_index for a follower in its term never runs past the follower's log, crashes
  // included. (A success that left early, then lost in a crash, shows here.)
  for (const NodeState& leader : nodes) {
    if (leader.role != Role::leader) continue;
    for (const auto& [peer, match_index] : leader.match_indexes) {
      // A handful of nodes: a linear search, run after every simulated event, allocates nothing.
      auto found = std::find_if(nodes.begin(), nodes.end(), [peer = peer](const NodeState& n) { return n.id == peer; });
      if (found == nodes.end() || found->current_term != leader.current_term) continue;
      if (found->repairing) continue;  // its log went backwards: a media fault (NodeState)
      const NodeState& follower = *found;
      const uint64_t follower_last = std::max<uint64_t>(follower.last_index, follower.held_last_index());
      if (match_index <= follower_last) continue;
      violations.push_back("match index past the follower's log: leader " + node_name(leader.id) + " of term " +
                           std::to_string(leader.current_term) + " has match " + std::to_string(match_index) +
                           " for " + node_name(peer) + ", whose log ends at " + std::to_string(follower_last));
    }
  }
}

void InvariantChecker::check_leader_completeness(const NodeState& node, std::vector<std::string>& violations) const {
  if (node.role != Role::leader) return;
  // Leader Completeness (§5.4): an entry committed in a term is in the log of every leader of
  // every later term. Below the leader's log start its snapshot covers it (compaction keeps
  // only committed entries, checked on its own): the check starts at the log start.
  for (uint64_t index = std::max<uint64_t>(1, node.log_start_index); index <= committed_last_; ++index) {
    const Committed& committed = committed_[index];
    if (committed.entry_term == 0 || committed.committed_in_term >= node.current_term) continue;
    const uint64_t term = node.term_at(index);
    if (term != committed.entry_term) {
      violations.push_back("leader completeness: leader " + node_name(node.id) + " of term " +
                           std::to_string(node.current_term) + " lacks committed entry " + std::to_string(index) +
                           " (term " + std::to_string(committed.entry_term) + ")");
    }
  }
}

void InvariantChecker::check_log_matching(const NodeState& a, const NodeState& b, std::vector<std::string>& violations) {
  // Log Matching (§5.3): if two logs hold an entry with the same index and term, they are
  // identical up to it; so where the parts both hold overlap (log starts included, their
  // terms being known), the indices where they agree form a prefix of the overlap.
  const uint64_t low = std::max(a.log_start_index, b.log_start_index);
  const uint64_t high = std::min(a.held_last_index(), b.held_last_index());
  uint64_t first_difference = low;
  while (first_difference <= high && a.term_at(first_difference) == b.term_at(first_difference)) ++first_difference;
  for (uint64_t index = first_difference + 1; index <= high; ++index) {
    if (a.term_at(index) != b.term_at(index)) continue;
    violations.push_back("log matching: " + node_name(a.id) + " and " + node_name(b.id) + " agree at index " +
                         std::to_string(index) + " (term " + std::to_string(a.term_at(index)) +
                         ") but differ at index " + std::to_string(first_difference));
    return;
  }
}

std::vector<std::string> InvariantChecker::applied(uint64_t node_id, const Entry& entry) {
  std::vector<std::string> violations;
  uint64_t& last_applied = last_applied_index_[node_id];
  if (entry.index != last_applied + 1) {
    violations.push_back("apply order: " + node_name(node_id) + " applied index " + std::to_string(entry.index) +
                         " after " + std::to_string(last_applied));
  }
  last_applied = std::max(last_applied, entry.index);
  // State Machine Safety: no two nodes apply different entries at the same index.
  auto [found, inserted] = applied_.emplace(entry.index, AppliedEntry{entry.term, entry, entry.type});
  if (!inserted && (found->second.term != entry.term || found->second.entry.payload() != entry.payload() ||
                    found->second.type != entry.type)) {
    violations.push_back("state machine safety: " + node_name(node_id) + " applied a different entry at index " +
                         std::to_string(entry.index) + " (term " + std::to_string(entry.term) + " vs " +
                         std::to_string(found->second.term) + ")");
  }
  return violations;
}

void InvariantChecker::installed_snapshot(uint64_t node_id, uint64_t index, uint64_t term) {
  uint64_t& last_applied = last_applied_index_[node_id];
  if (index < last_applied) {
    deferred_.push_back("snapshot took applied back: " + node_name(node_id) + " installed index " +
                        std::to_string(index) + " after applying " + std::to_string(last_applied));
  }
  last_applied = std::max(last_applied, index);
  // State Machine Safety across snapshots: the snapshot's last entry is the one committed and
  // applied at its index everywhere else.
  const Committed* committed = committed_at(index);
  if (committed != nullptr && committed->entry_term != term) {
    deferred_.push_back("snapshot disagrees with committed: " + node_name(node_id) + " installed index " +
                        std::to_string(index) + " term " + std::to_string(term) + ", committed term " +
                        std::to_string(committed->entry_term));
  }
  auto applied = applied_.find(index);
  if (applied != applied_.end() && applied->second.term != term) {
    deferred_.push_back("state machine safety: " + node_name(node_id) + " installed a snapshot at index " +
                        std::to_string(index) + " (term " + std::to_string(term) + ") where term " +
                        std::to_string(applied->second.term) + " was applied");
  }
}

void InvariantChecker::check_commit_durable(const std::vector<NodeState>& nodes, std::vector<std::string>& violations) {
  for (const NodeState& node : nodes) {
    uint64_t& last = durable_[node.id];
    if (node.repairing || node.on_probation) {
      // A media fault took entries it had acknowledged (NodeState::repairing), or a wipe took
      // its whole directory (NodeState::on_probation). Leaders may still count its copies by
      // the match index they heard before (check_match_indexes allows it): what keeps those
      // entries is that it votes for no one (until a leader has sent them again, or until
      // every other voter said it never counted this node), not its disk. So it keeps the
      // durable index it had until it repairs or its probation ends. A commit quorum holding
      // it still meets every election quorum: elections need a majority of the others.
      uint64_t& credit = repair_credit_[node.id];
      credit = std::max({credit, last, node.durable_index});
    } else {
      repair_credit_.erase(node.id);
    }
    last = node.durable_index;
  }
  for (const NodeState& node : nodes) {
    uint64_t& seen = commit_seen_[node.id];
    const bool rose = node.commit_index > seen;
    seen = node.commit_index;
    if (!rose || node.role != Role::leader || node.voters.empty()) continue;
    auto durable_of = [this](uint64_t voter) {
      auto found = durable_.find(voter);
      uint64_t durable = found == durable_.end() ? uint64_t{0} : found->second;
      auto credit = repair_credit_.find(voter);
      return credit == repair_credit_.end() ? durable : std::max(durable, credit->second);
    };
    size_t durable = 0;
    for (uint64_t voter : node.voters) durable += durable_of(voter) >= node.commit_index ? 1 : 0;
    if (durable >= node.voters.size() / 2 + 1) continue;
    std::string copies;  // only for the message: this check runs at every rise of a commit index
    for (uint64_t voter : node.voters) {
      copies += (copies.empty() ? "" : ", ") + node_name(voter) + " through " + std::to_string(durable_of(voter));
    }
    violations.push_back("commit not durable on a majority: leader " + node_name(node.id) + " in term " +
                         std::to_string(node.current_term) + " committed through " + std::to_string(node.commit_index) +
                         " but only " + std::to_string(durable) + " of " + std::to_string(node.voters.size()) +
                         " voters hold it durably (" + copies + ")");
  }
}

void InvariantChecker::restarted(uint64_t node_id, uint64_t recovered_term, uint64_t applied_index) {
  last_term_[node_id] = recovered_term;
  last_commit_index_[node_id] = applied_index;
  last_applied_index_[node_id] = applied_index;
}

}  // namespace keyval::raft
