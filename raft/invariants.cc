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
  state.log_terms.reserve(core.log().last_index());
  for (uint64_t index = 1; index <= core.log().last_index(); ++index) state.log_terms.push_back(core.log().term_at(index));
  return state;
}

NodeState NodeState::roles_of(const Core& core) {
  NodeState state;
  state.id = core.id();
  state.current_term = core.current_term();
  state.role = core.role();
  state.commit_index = core.commit_index();
  state.last_index = core.log().last_index();
  return state;
}

std::vector<std::string> InvariantChecker::observe_roles(const std::vector<NodeState>& nodes) {
  std::vector<std::string> violations;
  for (const NodeState& node : nodes) {
    check_election_safety(node, violations);
    check_monotonic(node, violations);
  }
  return violations;
}

std::vector<std::string> InvariantChecker::observe(const std::vector<const Core*>& cores) {
  std::vector<NodeState> nodes;
  nodes.reserve(cores.size());
  for (const Core* core : cores) nodes.push_back(NodeState::of(*core));
  return observe(nodes);
}

std::vector<std::string> InvariantChecker::observe(const std::vector<NodeState>& nodes) {
  std::vector<std::string> violations;
  for (const NodeState& node : nodes) {
    check_election_safety(node, violations);
    check_monotonic(node, violations);
    record_committed(node, violations);
  }
  for (const NodeState& node : nodes) check_leader_completeness(node, violations);
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
  const uint64_t log_length = std::max<uint64_t>(node.last_index, node.log_terms.size());
  if (node.commit_index > log_length) {
    violations.push_back("commit index past the log: " + node_name(node.id) + " commits " +
                         std::to_string(node.commit_index) + " of " + std::to_string(log_length));
  }
}

void InvariantChecker::record_committed(const NodeState& node, std::vector<std::string>& violations) {
  const uint64_t upto = std::min<uint64_t>(node.commit_index, node.log_terms.size());
  for (uint64_t index = 1; index <= upto; ++index) {
    const uint64_t term = node.log_terms[index - 1];
    auto [found, inserted] = committed_.emplace(index, Committed{term, node.current_term});
    if (inserted) continue;
    // Two nodes committed different entries at one index: state machine safety is lost.
    if (found->second.entry_term != term) {
      violations.push_back("committed entries differ: " + node_name(node.id) + " committed term " +
                           std::to_string(term) + " at index " + std::to_string(index) + ", earlier term " +
                           std::to_string(found->second.entry_term));
    }
    found->second.committed_in_term = std::min(found->second.committed_in_term, node.current_term);
  }
}

void InvariantChecker::check_leader_completeness(const NodeState& node, std::vector<std::string>& violations) const {
  if (node.role != Role::leader) return;
  // Leader Completeness (§5.4): an entry committed in a term is in the log of every leader of
  // every later term.
  for (const auto& [index, committed] : committed_) {
    if (committed.committed_in_term >= node.current_term) continue;
    const uint64_t term = index <= node.log_terms.size() ? node.log_terms[index - 1] : 0;
    if (term != committed.entry_term) {
      violations.push_back("leader completeness: leader " + node_name(node.id) + " of term " +
                           std::to_string(node.current_term) + " lacks committed entry " + std::to_string(index) +
                           " (term " + std::to_string(committed.entry_term) + ")");
    }
  }
}

void InvariantChecker::check_log_matching(const NodeState& a, const NodeState& b, std::vector<std::string>& violations) {
  // Log Matching (§5.3): if two logs hold an entry with the same index and term, they are
  // identical up to it; so the indices where they agree form a prefix.
  const size_t common = std::min(a.log_terms.size(), b.log_terms.size());
  size_t first_difference = 0;
  while (first_difference < common && a.log_terms[first_difference] == b.log_terms[first_difference]) ++first_difference;
  for (size_t i = first_difference + 1; i < common; ++i) {
    if (a.log_terms[i] != b.log_terms[i]) continue;
    violations.push_back("log matching: " + node_name(a.id) + " and " + node_name(b.id) + " agree at index " +
                         std::to_string(i + 1) + " (term " + std::to_string(a.log_terms[i]) +
                         ") but differ at index " + std::to_string(first_difference + 1));
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
  auto [found, inserted] = applied_.emplace(entry.index, AppliedEntry{entry.term, entry.payload});
  if (!inserted && (found->second.term != entry.term || found->second.payload != entry.payload)) {
    violations.push_back("state machine safety: " + node_name(node_id) + " applied a different entry at index " +
                         std::to_string(entry.index) + " (term " + std::to_string(entry.term) + " vs " +
                         std::to_string(found->second.term) + ")");
  }
  return violations;
}

void InvariantChecker::restarted(uint64_t node_id, uint64_t recovered_term, uint64_t applied_index) {
  last_term_[node_id] = recovered_term;
  last_commit_index_[node_id] = applied_index;
  last_applied_index_[node_id] = applied_index;
}

}  // namespace keyval::raft
