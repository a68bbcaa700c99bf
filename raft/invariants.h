// InvariantChecker: the safety properties of Raft (§5.4, Figure 3) checked across a whole
// cluster after every event, by a test or the simulator. It sees snapshots of each node's
// state and the entries each node applied, remembers what it must (leaders per term,
// committed entries, last terms and commit indexes) and returns violations as text.
// Logs may be compacted (§7): each node shows the part it holds, after its log start (the
// last compacted position, whose term it still knows); the checks compare what is held.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "raft/core.h"
#include "storage/types.h"

namespace keyval::raft {

// What the checker needs from one node at one moment.
struct NodeState {
  uint64_t id = 0;
  uint64_t current_term = 0;
  Role role = Role::follower;
  uint64_t commit_index = 0;
  // log_terms[i] is the term of the entry at index log_start_index + 1 + i.
  std::vector<uint64_t> log_terms;
  uint64_t last_index = 0;          // the log's last index, also when log_terms is left empty
  uint64_t log_start_index = 0;     // the last compacted index (0: nothing compacted)
  uint64_t log_start_term = 0;      // its term
  uint64_t snapshot_index = 0;      // the node's latest snapshot (0: none)
  // A leader's match_index per peer: (peer, match_index).
  std::vector<std::pair<uint64_t, uint64_t>> match_indexes{};
  // A leader's configuration entries in its log after its snapshot, by index.
  std::vector<uint64_t> configuration_indexes{};
  // Repairing (Core::in_repair): it discarded a log it could not read, acknowledged entries
  // included (a media fault, outside Raft's fault model): leaders may still hold its old
  // match_index until they hear of it, and count it only for what it holds again.
  bool repairing = false;
  // On probation (Core::in_probation): a directory --bootstrap made, possibly over a voter's
  // lost data (a wipe, outside Raft's fault model). It votes for no one until every other
  // voter answered that it never counted this node, and for good once one did.
  bool on_probation = false;
  // The log index through which the host reported the log durable (Core::durable_index).
  uint64_t durable_index = 0;
  // A leader's voters in the configuration in use (itself included); empty otherwise.
  std::vector<uint64_t> voters{};

  // Costs the held log, not the history: a compacted prefix is not visited.
  static NodeState of(const Core& core);
  static NodeState roles_of(const Core& core);  // without log_terms (for observe_roles)
  // roles_of into this state, its vectors' storage reused (the simulator does it at every step).
  void read_roles(const Core& core);

  uint64_t held_last_index() const { return log_start_index + log_terms.size(); }
  // The term at `index` if this state shows it (log_start_index..held_last_index), else 0.
  // Inline: the whole-log checks call it for every index of every log.
  uint64_t term_at(uint64_t index) const {
    if (index == log_start_index) return log_start_term;
    if (index < log_start_index || index > held_last_index()) return 0;
    return log_terms[index - log_start_index - 1];
  }
};

// Every field equal (log_terms included): the simulator skips a whole-log check of states
// equal to the last ones checked, whose logs have the same versions (Log::version).
bool operator==(const NodeState& a, const NodeState& b);
inline bool operator!=(const NodeState& a, const NodeState& b) { return !(a == b); }

class InvariantChecker {
 public:
  // Checks the cluster as it is now; returns the violations found (empty: all good).
  std::vector<std::string> observe(const std::vector<NodeState>& nodes);
  std::vector<std::string> observe(const std::vector<const Core*>& cores);
  // Only the checks that need no log (election safety, terms and commit indexes never going
  // back): cheap enough for every event while the full check runs less often on long logs.
  std::vector<std::string> observe_roles(const std::vector<NodeState>& nodes);
  // A node handed `entry` to its state machine. Each node applies each index once, in order.
  std::vector<std::string> applied(uint64_t node_id, const Entry& entry);
  // The node crashed and recovered. Its volatile commit_index may restart lower, it applies
  // again from its recovered applied index, and a term that never became durable is gone
  // (harmless: nothing that depended on it left the node); checks resume from there.
  void restarted(uint64_t node_id, uint64_t recovered_term, uint64_t applied_index);
  // The node's state machine was replaced by a snapshot at (index, term) (§7): its applied
  // index jumps there. The snapshot must agree with what was committed and applied at index
  // elsewhere, and never take applied back; violations are reported by the next observe().
  void installed_snapshot(uint64_t node_id, uint64_t index, uint64_t term);

 private:
  struct Committed {
    uint64_t entry_term;
    uint64_t committed_in_term;  // the lowest current_term of a node that saw it committed
  };
  void check_election_safety(const NodeState& node, std::vector<std::string>& violations);
  void check_monotonic(const NodeState& node, std::vector<std::string>& violations);
  static void check_compaction(const NodeState& node, std::vector<std::string>& violations);
  void take_deferred(std::vector<std::string>& violations);
  void record_committed(const NodeState& node, std::vector<std::string>& violations);
  void check_leader_completeness(const NodeState& node, std::vector<std::string>& violations) const;
  static void check_log_matching(const NodeState& a, const NodeState& b, std::vector<std::string>& violations);
  static void check_match_indexes(const std::vector<NodeState>& nodes, std::vector<std::string>& violations);
  void check_one_change_at_a_time(const NodeState& node, std::vector<std::string>& violations) const;
  // A leader's commit index, each time it rises, is durable on a majority of its voters (by
  // the durable indexes last seen of each: a commit counted on a copy not yet synced, its own
  // included, could be lost by one crash). A voter repairing after a media fault counts with
  // the durable index it had before the fault until it has repaired; a voter on probation
  // (its directory wiped and bootstrapped again) with the one it had before the wipe, while
  // the probation lasts.
  void check_commit_durable(const std::vector<NodeState>& nodes, std::vector<std::string>& violations);

  std::map<uint64_t, uint64_t> leader_of_term_;
  std::map<uint64_t, uint64_t> last_term_;
  std::map<uint64_t, uint64_t> last_commit_index_;
  // By index (a vector: the checker looks up every committed index after many events); an
  // entry_term of 0 marks an index no node was seen to commit (entries have terms >= 1).
  std::vector<Committed> committed_;
  uint64_t committed_last_ = 0;  // the highest index recorded in committed_
  const Committed* committed_at(uint64_t index) const {
    return index < committed_.size() && committed_[index].entry_term != 0 ? &committed_[index] : nullptr;
  }
  struct AppliedEntry {
    uint64_t term;
    Entry entry;  // shares the applied entry's frame
    EntryType type;
  };
  std::map<uint64_t, AppliedEntry> applied_;         // by index, first node to apply it
  std::map<uint64_t, uint64_t> last_applied_index_;  // by node
  std::vector<std::string> deferred_;                // found by installed_snapshot()
  std::map<uint64_t, uint64_t> durable_;             // by node: durable index last seen (kept while down)
  std::map<uint64_t, uint64_t> commit_seen_;         // by node: commit index last seen
  // By repairing node: the durable index it had before a media fault took acknowledged
  // entries, credited until it stops repairing (check_commit_durable).
  std::map<uint64_t, uint64_t> repair_credit_;
};

}  // namespace keyval::raft
