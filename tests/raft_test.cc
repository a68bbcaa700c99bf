// Goal: the pure Raft core elects one leader per term, replicates and commits safely, holds back
// every reply until what it promises is durable, and keeps the §5.4 invariants under faults.
// Method: drive 1, 3 and 5 Cores in-process through a tiny network (drop, cut, reorder) and a
// manual disk that reports durability when told; an InvariantChecker runs after every event.
// Snapshots (§7) are positions only: the harness plays the host that takes them at the applied
// index, transfers them (delivering install_snapshot is the transfer) and installs them.
// Membership (thesis §4.1): the `membership` suite changes the configuration of such clusters
// (learners added, promoted, members removed) and checks who counts, who campaigns and votes,
// and that configurations survive truncation, snapshots, InstallSnapshot and recovery.
#define BOOST_TEST_MODULE raft_test
#include <boost/test/unit_test.hpp>
#include <cstdlib>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "raft/core.h"
#include "raft/invariants.h"
#include "raft/membership.h"
#include "storage/codec.h"

namespace keyval {

// Let BOOST_TEST print what it compares.
std::ostream& boost_test_print_type(std::ostream& out, const Entry& entry) {
  return out << "Entry{" << entry.index << ", term " << entry.term << ", " << entry.payload().size() << " bytes}";
}

namespace raft {

std::ostream& boost_test_print_type(std::ostream& out, Role role) { return out << role_name(role); }
std::ostream& boost_test_print_type(std::ostream& out, TransferStart start) { return out << transfer_start_name(start); }
std::ostream& boost_test_print_type(std::ostream& out, Progress::Mode mode) {
  const char* names[] = {"probe", "replicate", "snapshot"};
  return out << names[static_cast<int>(mode)];
}

namespace {

std::vector<uint8_t> bytes_of(const std::string& text) { return std::vector<uint8_t>(text.begin(), text.end()); }

Config make_config(uint64_t id, size_t nodes, uint64_t seed) {
  Config config;
  config.node_id = id;
  for (uint64_t voter = 1; voter <= nodes; ++voter) config.voters.push_back(voter);
  config.random_seed = seed * 1000 + id;
  return config;
}

// What one node's persistence holds: written (handed over) and synced (reported durable).
// The logs hold the entries after their start (the compacted prefix, as the WAL drops it).
struct Disk {
  Metadata written_metadata;
  Metadata synced_metadata;
  std::vector<Entry> written_log;
  std::vector<Entry> synced_log;
  SnapshotRef written_start;
  SnapshotRef synced_start;
  SnapshotRef snapshot;                  // the base snapshot (durable)
  std::vector<Member> snapshot_configuration;  // what its metadata records (membership)
  std::optional<SnapshotRef> installing;  // Ready.snapshot handed over, durable at the next sync
  std::vector<uint64_t> truncations;
  bool auto_sync = true;
};

// A cluster of Cores joined by an in-memory network the test controls.
class Cluster {
 public:
  explicit Cluster(size_t nodes, uint64_t seed = 1, const std::function<void(Config&)>& tweak = {},
                   std::vector<RecoveredState> recovered = {})
      : disks_(nodes), applied_(nodes + 1) {
    for (uint64_t id = 1; id <= nodes; ++id) {
      Config config = make_config(id, nodes, seed);
      if (tweak) tweak(config);
      configs_.push_back(config);
      RecoveredState state = recovered.empty() ? RecoveredState{} : recovered[id - 1];
      cores_.push_back(std::make_unique<Core>(config, state));
      const Log& log = cores_.back()->log();
      Disk& disk = disks_[id - 1];
      disk.written_metadata = disk.synced_metadata = state.metadata;
      disk.written_start = disk.synced_start = SnapshotRef{log.start_index(), log.start_term()};
      for (const Entry& entry : state.entries) {
        if (entry.index > log.start_index()) disk.written_log.push_back(entry);
      }
      disk.synced_log = disk.written_log;
      disk.snapshot = SnapshotRef{state.snapshot_index, state.snapshot_term};
      applied_position_[id] = SnapshotRef{state.applied_index, log.term_at(state.applied_index)};
      checker_.restarted(id, state.metadata.current_term, state.applied_index);
    }
    check();
  }

  size_t size() const { return cores_.size(); }
  Core& node(uint64_t id) { return *cores_.at(id - 1); }
  Disk& disk(uint64_t id) { return disks_.at(id - 1); }
  const std::vector<Entry>& applied(uint64_t id) const { return applied_.at(id); }
  std::deque<Message>& network() { return network_; }
  const std::vector<std::string>& violations() const { return violations_; }

  // Every message any node released, in order, for tests that inspect traffic.
  std::vector<Message> sent;
  std::vector<ReadState> read_states;
  // Messages matching this are lost on delivery (in addition to cut links).
  std::function<bool(const Message&)> drop_if;
  // Lets a test reshape a message in flight (e.g. shorten an AppendEntries, which is still a
  // request the leader could have sent).
  std::function<void(Message&)> rewrite;
  // The leader host's transfer of a snapshot fails (reported with snapshot_failed) instead of
  // delivering the install_snapshot.
  std::function<bool(const Message&)> transfer_fails;
  uint64_t installs = 0;            // snapshots installed (made durable) by followers
  uint64_t transfers_failed = 0;

  // The last position the node's state machine holds (applied entries or an installed snapshot).
  SnapshotRef applied_position(uint64_t id) const { return applied_position_.at(id); }

  // The host snapshots the state machine at its applied position and reports it durable; the
  // disk drops the log prefix the core compacted, as the WAL would. False when there is nothing
  // new to snapshot (or an install is still under way).
  bool take_snapshot(uint64_t id) {
    Disk& d = disk(id);
    const SnapshotRef at = applied_position(id);
    if (d.installing || at.index <= d.snapshot.index || at.index <= node(id).snapshot_index()) return false;
    d.snapshot = at;
    d.snapshot_configuration = node(id).configuration_at(at.index);
    node(id).snapshot_taken(at.index, at.term);
    compact_disk(d.written_log, d.written_start, node(id).log().start_index());
    compact_disk(d.synced_log, d.synced_start, node(id).log().start_index());
    process(id);
    return true;
  }

  void process(uint64_t id) {
    for (int rounds = 0; node(id).has_ready(); ++rounds) {
      BOOST_REQUIRE_MESSAGE(rounds < 1000, "has_ready() never settles on node " << id);
      Ready ready = node(id).take_ready();
      persist(id, ready);
      for (Message& message : ready.messages) {
        BOOST_REQUIRE_EQUAL(message.from, id);
        sent.push_back(message);
        network_.push_back(std::move(message));
      }
      for (const Entry& entry : ready.committed_entries) {
        applied_[id].push_back(entry);
        applied_position_[id] = SnapshotRef{entry.index, entry.term};
        add(checker_.applied(id, entry));
      }
      for (const ReadState& read : ready.read_states) read_states.push_back(read);
      if (disk(id).auto_sync) sync(id);
    }
    check();
  }

  void process_all() {
    for (uint64_t id = 1; id <= size(); ++id) process(id);
  }

  // The disk says: everything written so far is durable. A snapshot being installed becomes the
  // base and the state machine's content (the host installs it once its file and record are
  // durable), before the entries after it are reported durable.
  void sync(uint64_t id) {
    Disk& d = disk(id);
    d.synced_metadata = d.written_metadata;
    d.synced_log = d.written_log;
    d.synced_start = d.written_start;
    node(id).metadata_durable(d.synced_metadata);
    if (d.installing) {
      const SnapshotRef snapshot = *d.installing;
      d.installing.reset();
      d.snapshot = snapshot;
      d.snapshot_configuration = node(id).configuration_at(snapshot.index);
      applied_position_[id] = snapshot;
      checker_.installed_snapshot(id, snapshot.index, snapshot.term);
      ++installs;
      node(id).snapshot_durable(snapshot.index, snapshot.term);
    }
    if (!d.synced_log.empty()) node(id).durable(d.synced_log.back().index, d.synced_log.back().term);
  }

  void deliver(Message message) {
    const bool lost = cut_.count({message.from, message.to}) > 0 || (drop_if && drop_if(message));
    if (lost) return;
    if (message.type == MessageType::install_snapshot && transfer_fails && transfer_fails(message)) {
      ++transfers_failed;
      node(message.from).snapshot_failed(message.to);
      process(message.from);
      return;
    }
    if (rewrite) rewrite(message);
    const uint64_t to = message.to;
    node(to).step(message);
    process(to);
  }

  bool deliver_next() {
    if (network_.empty()) return false;
    Message message = std::move(network_.front());
    network_.pop_front();
    deliver(std::move(message));
    return true;
  }

  void settle() {
    process_all();
    for (int steps = 0; deliver_next(); ++steps) BOOST_REQUIRE_MESSAGE(steps < 200000, "network never settles");
  }

  void tick(uint64_t id) {
    node(id).tick();
    process(id);
  }

  void tick_all() {
    for (uint64_t id = 1; id <= size(); ++id) tick(id);
  }

  void cut(uint64_t from, uint64_t to) { cut_.insert({from, to}); }
  void isolate(uint64_t id) {
    for (uint64_t other = 1; other <= size(); ++other) {
      if (other == id) continue;
      cut(id, other);
      cut(other, id);
    }
  }
  void heal() { cut_.clear(); }

  // The leader of the highest term, 0 if there is none.
  uint64_t leader() {
    uint64_t best = 0;
    for (uint64_t id = 1; id <= size(); ++id) {
      if (node(id).role() == Role::leader && (best == 0 || node(id).current_term() > node(best).current_term())) {
        best = id;
      }
    }
    return best;
  }

  // Ticks only `id` (settling after each tick) until it leads.
  bool elect(uint64_t id) {
    for (int ticks = 0; ticks < 200 && node(id).role() != Role::leader; ++ticks) {
      tick(id);
      settle();
    }
    return node(id).role() == Role::leader;
  }

  ProposeResult propose(uint64_t id, const std::string& payload) {
    ProposeResult result = node(id).propose(bytes_of(payload));
    process(id);
    return result;
  }

  // Crash and recover `id` from what its disk synced, as the recovery coordinator would.
  void restart(uint64_t id) {
    Disk& d = disk(id);
    d.written_metadata = d.synced_metadata;
    d.written_log = d.synced_log;
    d.written_start = d.synced_start;
    d.installing.reset();  // not durable: the old base and log are what recovery finds
    RecoveredState state{d.synced_metadata, d.synced_log, applied_position(id).index};
    state.snapshot_index = d.snapshot.index;
    state.snapshot_term = d.snapshot.term;
    state.log_start_index = d.synced_start.index;
    state.log_start_term = d.synced_start.term;
    state.configuration = d.snapshot_configuration;
    cores_[id - 1] = std::make_unique<Core>(configs_[id - 1], state);
    checker_.restarted(id, state.metadata.current_term, state.applied_index);
    check();
  }

  // Crash and recover `id` as recovery does after salvaging a damaged log (docs/PERSISTENCE.md,
  // "Corruption repaired from peers"): the synced log cut after `keep_through`, the node
  // repairing. Its state machine starts again from empty, as after an LMDB rebuilt from a WAL
  // without snapshot (tests of this kind take no snapshot).
  // `knows_it_held`: whether recovery could tell how far the log reached before the damage
  // (records after it readable) or not (the damage took the last records: it knows only
  // keep_through). A new life draws a new incarnation (Config::random_seed), as a process does.
  void restart_repairing(uint64_t id, uint64_t keep_through, bool knows_it_held = true) {
    Disk& d = disk(id);
    BOOST_REQUIRE(d.snapshot.index == 0 && d.synced_start.index == 0);
    const uint64_t last = d.synced_log.size();
    d.synced_metadata.repairing = true;
    d.synced_metadata.repair_last_index = knows_it_held ? last : keep_through;
    if (keep_through < last) d.synced_log.resize(keep_through);
    applied_[id].clear();
    applied_position_[id] = SnapshotRef{};
    configs_[id - 1].random_seed += 7919;
    restart(id);
  }

  // `id` loses its data directory and starts empty (term 0, no log), with the same Config.
  void wipe(uint64_t id) {
    disks_[id - 1] = Disk{};
    applied_[id].clear();
    applied_position_[id] = SnapshotRef{};
    cores_[id - 1] = std::make_unique<Core>(configs_[id - 1], RecoveredState{});
    checker_.restarted(id, 0, 0);
  }

  // `id` loses its data directory and is started again with --bootstrap: recovery writes the
  // bootstrap configuration entry (index 1, term 1) and term 1 on probation (raft/probation.cc).
  void wipe_to_bootstrap(uint64_t id) {
    disks_[id - 1] = Disk{};
    applied_[id].clear();
    applied_position_[id] = SnapshotRef{};
    RecoveredState state = bootstrapped_state(configs_[id - 1].voters);
    Disk& d = disks_[id - 1];
    d.written_metadata = d.synced_metadata = state.metadata;
    d.written_log = d.synced_log = state.entries;
    cores_[id - 1] = std::make_unique<Core>(configs_[id - 1], state);
    checker_.restarted(id, state.metadata.current_term, 0);
  }

  // What recovery hands a node whose directory --bootstrap just made, for these voters.
  static RecoveredState bootstrapped_state(const std::vector<uint64_t>& voters) {
    ConfigurationEntry bootstrap;
    bootstrap.kind = ConfChangeKind::bootstrap;
    for (uint64_t voter : voters) bootstrap.members.push_back(Member{voter, "peer-" + std::to_string(voter) + ":7000"});
    Entry entry{1, 1, encode_configuration_entry(bootstrap)};
    entry.type = EntryType::configuration;
    RecoveredState state;
    state.metadata.current_term = 1;
    state.metadata.probation = true;
    state.entries.push_back(entry);
    return state;
  }

  void check() {
    std::vector<const Core*> cores;
    for (const auto& core : cores_) cores.push_back(core.get());
    add(checker_.observe(cores));
  }

 private:
  void persist(uint64_t id, const Ready& ready) {
    Disk& d = disk(id);
    if (ready.snapshot) {
      // Before anything else: the log is replaced by the snapshot.
      BOOST_REQUIRE(!ready.log_truncated_to);
      d.written_log.clear();
      d.written_start = *ready.snapshot;
      d.installing = *ready.snapshot;
    }
    if (ready.metadata) d.written_metadata = *ready.metadata;
    if (ready.log_truncated_to) {
      const uint64_t to = *ready.log_truncated_to;
      BOOST_REQUIRE(to >= d.written_start.index && to - d.written_start.index <= d.written_log.size());
      d.written_log.resize(to - d.written_start.index);
      d.truncations.push_back(to);
    }
    for (const Entry& entry : ready.entries) {
      // The contract: entries extend the log (after the truncation) without gaps.
      BOOST_REQUIRE_EQUAL(entry.index, d.written_start.index + d.written_log.size() + 1);
      d.written_log.push_back(entry);
    }
  }

  static void compact_disk(std::vector<Entry>& log, SnapshotRef& start, uint64_t through) {
    if (through <= start.index || log.empty()) return;
    const uint64_t drop = std::min<uint64_t>(through - start.index, log.size());
    start = SnapshotRef{log[drop - 1].index, log[drop - 1].term};
    log.erase(log.begin(), log.begin() + static_cast<std::ptrdiff_t>(drop));
  }

  void add(const std::vector<std::string>& found) {
    for (const std::string& violation : found) {
      if (violations_.size() < 20) BOOST_TEST_MESSAGE("violation: " << violation);
      violations_.push_back(violation);
    }
  }

  std::vector<Config> configs_;
  std::vector<std::unique_ptr<Core>> cores_;
  std::vector<Disk> disks_;
  std::vector<std::vector<Entry>> applied_;
  std::map<uint64_t, SnapshotRef> applied_position_;
  std::deque<Message> network_;
  std::set<std::pair<uint64_t, uint64_t>> cut_;
  InvariantChecker checker_;
  std::vector<std::string> violations_;
};

size_t count_sent(const Cluster& cluster, const std::function<bool(const Message&)>& match) {
  return std::count_if(cluster.sent.begin(), cluster.sent.end(), match);
}

std::vector<Entry> entries(std::initializer_list<uint64_t> terms) {
  std::vector<Entry> log;
  for (uint64_t term : terms) log.push_back(Entry{log.size() + 1, term, bytes_of("t" + std::to_string(term))});
  return log;
}

// A node of a three-voter cluster in term 2 holding entries 1..3, for the commit-durable check.
NodeState commit_check_state(uint64_t id, Role role, uint64_t commit, uint64_t durable, bool repairing = false) {
  NodeState node;
  node.id = id;
  node.current_term = 2;
  node.role = role;
  node.commit_index = commit;
  node.log_terms = {1, 2, 2};
  node.last_index = 3;
  node.durable_index = durable;
  node.repairing = repairing;
  if (role == Role::leader) node.voters = {1, 2, 3};
  return node;
}

bool names_commit_not_durable(const std::vector<std::string>& violations) {
  return std::any_of(violations.begin(), violations.end(),
                     [](const std::string& v) { return v.find("commit not durable on a majority") != std::string::npos; });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(raft)

BOOST_AUTO_TEST_CASE(single_node_elects_itself_and_commits) {
  Cluster cluster(1);
  BOOST_TEST(cluster.elect(1));
  BOOST_TEST(cluster.node(1).current_term() == 1u);
  BOOST_TEST(cluster.propose(1, "a").accepted);
  cluster.settle();
  // The no-op at index 1, then the proposal.
  BOOST_REQUIRE_EQUAL(cluster.applied(1).size(), 2u);
  BOOST_TEST(cluster.applied(1)[0].payload().empty());
  BOOST_TEST(cluster.applied(1)[1].payload() == bytes_of("a"));
  BOOST_TEST(cluster.node(1).commit_index() == 2u);
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(three_nodes_elect_exactly_one_leader) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    Cluster cluster(3, seed);
    for (int round = 0; round < 100; ++round) {
      cluster.tick_all();
      cluster.settle();
    }
    const uint64_t leader = cluster.leader();
    BOOST_REQUIRE(leader != 0u);
    for (uint64_t id = 1; id <= 3; ++id) {
      BOOST_TEST((id == leader) == (cluster.node(id).role() == Role::leader));
      BOOST_TEST(cluster.node(id).leader_id() == leader);
      BOOST_TEST(cluster.node(id).current_term() == cluster.node(leader).current_term());
    }
    BOOST_TEST(cluster.violations().empty());
  }
}

BOOST_AUTO_TEST_CASE(vote_not_sent_before_term_is_durable) {
  Cluster cluster(3);
  cluster.isolate(3);
  cluster.disk(2).auto_sync = false;
  auto grants_from_2 = [](const Message& m) {
    return m.from == 2 && m.type == MessageType::request_vote_response && m.vote_granted;
  };
  // Node 1 times out; the pre-vote round needs nothing durable, the real vote does.
  for (int ticks = 0; ticks < 30 && cluster.node(1).role() == Role::follower; ++ticks) cluster.tick(1);
  cluster.settle();
  BOOST_TEST(cluster.node(2).voted_for() == 1u);
  BOOST_TEST(cluster.disk(2).written_metadata.voted_for == 1u);  // handed to persistence...
  BOOST_TEST(count_sent(cluster, grants_from_2) == 0u);           // ...but the grant waits
  BOOST_TEST(cluster.node(1).role() == Role::candidate);
  cluster.sync(2);
  cluster.process(2);
  BOOST_TEST(count_sent(cluster, grants_from_2) == 1u);
  cluster.settle();
  BOOST_TEST(cluster.node(1).role() == Role::leader);
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(vote_not_sent_before_vote_is_durable_in_a_durable_term) {
  // Node 2 first enters term 6 by rejecting node 3 (whose log is behind) and makes that durable;
  // then it votes for node 1 in the same term: only voted_for changed, and the grant still waits.
  std::vector<RecoveredState> states{
      {{5, 0}, entries({1, 1}), 0}, {{5, 0}, entries({1, 1}), 0}, {{5, 0}, entries({1}), 0}};
  Cluster cluster(3, 1, [](Config& config) { config.pre_vote = false; }, states);
  cluster.cut(3, 1);
  cluster.cut(1, 3);
  cluster.disk(2).auto_sync = false;
  for (int ticks = 0; ticks < 30 && cluster.node(3).role() == Role::follower; ++ticks) cluster.tick(3);
  cluster.settle();
  BOOST_REQUIRE(cluster.node(2).current_term() == 6u);
  BOOST_REQUIRE(cluster.node(2).voted_for() == 0u);
  cluster.sync(2);
  cluster.settle();
  for (int ticks = 0; ticks < 30 && cluster.node(1).role() == Role::follower; ++ticks) cluster.tick(1);
  cluster.settle();
  auto grants_from_2 = [](const Message& m) {
    return m.from == 2 && m.type == MessageType::request_vote_response && m.vote_granted;
  };
  BOOST_TEST(cluster.node(2).voted_for() == 1u);
  BOOST_TEST(count_sent(cluster, grants_from_2) == 0u);
  cluster.sync(2);
  cluster.settle();
  BOOST_TEST(count_sent(cluster, grants_from_2) == 1u);
  BOOST_TEST(cluster.node(1).role() == Role::leader);
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(candidate_counts_its_own_vote_only_once_durable) {
  Cluster cluster(1);
  cluster.disk(1).auto_sync = false;
  for (int ticks = 0; ticks < 30; ++ticks) cluster.tick(1);
  BOOST_TEST(cluster.node(1).role() == Role::candidate);
  cluster.sync(1);
  cluster.process(1);
  BOOST_TEST(cluster.node(1).role() == Role::leader);
}

BOOST_AUTO_TEST_CASE(append_success_not_sent_before_entries_are_durable) {
  Cluster cluster(3);
  BOOST_REQUIRE(cluster.elect(1));
  cluster.settle();
  cluster.isolate(3);
  cluster.disk(2).auto_sync = false;
  const ProposeResult proposal = cluster.propose(1, "x");
  BOOST_REQUIRE(proposal.accepted);
  cluster.settle();
  auto acks_from_2 = [&](const Message& m) {
    return m.from == 2 && m.type == MessageType::append_entries_response && m.success &&
           m.match_index >= proposal.index;
  };
  BOOST_TEST(cluster.node(2).log().last_index() == proposal.index);  // received and written...
  BOOST_TEST(count_sent(cluster, acks_from_2) == 0u);                 // ...not acknowledged
  BOOST_TEST(cluster.node(1).commit_index() < proposal.index);
  cluster.sync(2);
  cluster.settle();
  BOOST_TEST(count_sent(cluster, acks_from_2) >= 1u);
  BOOST_TEST(cluster.node(1).commit_index() == proposal.index);
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(leader_counts_itself_only_once_durable) {
  Cluster cluster(3);
  BOOST_REQUIRE(cluster.elect(1));
  cluster.settle();
  cluster.isolate(3);
  cluster.disk(1).auto_sync = false;
  const ProposeResult proposal = cluster.propose(1, "x");
  cluster.settle();
  // Node 2 acknowledged, but with only one durable copy the entry is not committed.
  BOOST_TEST(cluster.node(1).progress(2)->match_index == proposal.index);
  BOOST_TEST(cluster.node(1).commit_index() < proposal.index);
  cluster.sync(1);
  cluster.process(1);
  BOOST_TEST(cluster.node(1).commit_index() == proposal.index);
}

BOOST_AUTO_TEST_CASE(leader_commits_only_current_term_entries_by_counting) {
  // Figure 8: S1 leads term 4 and holds (2, term 2), as S2 does; it copies it to S3, a majority,
  // but must not count that as committed: S5 (last entry (2, term 3)) can still be elected by
  // S2, S3, S4 and overwrite index 2.
  std::vector<RecoveredState> states{
      {{3, 0}, entries({1, 2}), 0}, {{3, 0}, entries({1, 2}), 0}, {{3, 0}, entries({1}), 0},
      {{3, 0}, entries({1}), 0},    {{3, 0}, entries({1, 3}), 0}};
  Cluster cluster(5, 1, [](Config& config) {
    config.max_entries_per_append = 1;
    config.check_quorum = false;  // no lease, so S5 may campaign while S1 still thinks it leads
  }, states);
  // S1's appends reach only S2 and S3, and only up to index 2: its no-op (index 3) is cut off.
  cluster.drop_if = [](const Message& m) {
    return m.from == 1 && m.type == MessageType::append_entries && m.to != 2 && m.to != 3;
  };
  cluster.rewrite = [](Message& m) {
    if (m.from != 1 || m.type != MessageType::append_entries) return;
    while (!m.entries.empty() && m.entries.back().index >= 3) m.entries.pop_back();
  };
  BOOST_REQUIRE(cluster.elect(1));
  cluster.settle();
  BOOST_TEST(cluster.node(1).current_term() == 4u);
  BOOST_TEST(cluster.node(3).log().term_at(2) == 2u);
  BOOST_TEST(cluster.node(1).progress(2)->match_index == 2u);
  BOOST_TEST(cluster.node(1).progress(3)->match_index == 2u);
  BOOST_TEST(cluster.node(1).commit_index() == 0u);  // a majority holds index 2, but of term 2
  cluster.isolate(1);
  cluster.rewrite = {};
  BOOST_REQUIRE(cluster.elect(5));
  cluster.settle();
  BOOST_TEST(cluster.node(5).current_term() == 5u);
  for (uint64_t id = 2; id <= 5; ++id) BOOST_TEST(cluster.node(id).log().term_at(2) == 3u);
  BOOST_TEST(cluster.node(5).commit_index() == 3u);
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(follower_conflicting_suffix_is_truncated_with_fast_backoff) {
  std::vector<RecoveredState> states{{{5, 0}, entries({1, 1, 1, 4, 4, 4, 4, 4}), 0},
                                     {{5, 0}, entries({1, 1, 1, 4, 4, 4, 4, 4}), 0},
                                     {{3, 0}, entries({1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 3, 3}), 0}};
  Cluster cluster(3, 1, {}, states);
  BOOST_REQUIRE(cluster.elect(1));
  cluster.settle();
  auto rejections_from_3 = [](const Message& m) {
    return m.from == 3 && m.type == MessageType::append_entries_response && !m.success;
  };
  // One rejection skips the whole run of term 2 (indices 4..10) instead of one index per trip.
  BOOST_TEST(count_sent(cluster, rejections_from_3) == 1u);
  BOOST_REQUIRE_EQUAL(cluster.disk(3).truncations.size(), 1u);
  BOOST_TEST(cluster.disk(3).truncations[0] == 3u);
  BOOST_REQUIRE_EQUAL(cluster.node(3).log().last_index(), cluster.node(1).log().last_index());
  for (uint64_t index = 1; index <= cluster.node(1).log().last_index(); ++index) {
    BOOST_TEST(cluster.node(3).log().at(index) == cluster.node(1).log().at(index));
    BOOST_TEST(cluster.disk(3).written_log[index - 1] == cluster.node(1).log().at(index));
  }
  BOOST_TEST(cluster.node(1).commit_index() == 9u);
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(higher_term_makes_leader_step_down) {
  Cluster cluster(3);
  BOOST_REQUIRE(cluster.elect(1));
  cluster.settle();
  const uint64_t old_term = cluster.node(1).current_term();
  cluster.isolate(1);  // node 1 is not ticked, so CheckQuorum does not depose it
  for (int round = 0; round < 100 && cluster.leader() == 1; ++round) {
    cluster.tick(2);
    cluster.tick(3);
    cluster.settle();
  }
  const uint64_t new_leader = cluster.leader();
  BOOST_REQUIRE(new_leader == 2u || new_leader == 3u);
  BOOST_TEST(cluster.node(1).role() == Role::leader);  // stale, it has heard nothing yet
  cluster.heal();
  for (int ticks = 0; ticks < 4; ++ticks) cluster.tick(new_leader);
  cluster.settle();
  BOOST_TEST(cluster.node(1).role() == Role::follower);
  BOOST_TEST(cluster.node(1).current_term() > old_term);
  BOOST_TEST(cluster.node(1).leader_id() == new_leader);
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(pre_vote_prevents_disruption_by_partitioned_node) {
  Cluster cluster(3);
  BOOST_REQUIRE(cluster.elect(1));
  cluster.settle();
  const uint64_t term = cluster.node(1).current_term();
  cluster.isolate(3);
  for (int round = 0; round < 200; ++round) {
    cluster.tick_all();
    cluster.settle();
  }
  // Node 3 kept pre-voting without success, so its term never moved.
  BOOST_TEST(cluster.node(3).current_term() == term);
  cluster.heal();
  for (int round = 0; round < 50; ++round) {
    cluster.tick_all();
    cluster.settle();
  }
  BOOST_TEST(cluster.leader() == 1u);
  BOOST_TEST(cluster.node(1).current_term() == term);
  BOOST_TEST(cluster.node(3).leader_id() == 1u);
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(check_quorum_leader_steps_down_when_isolated) {
  Cluster cluster(3);
  BOOST_REQUIRE(cluster.elect(1));
  cluster.settle();
  const uint64_t term = cluster.node(1).current_term();
  cluster.isolate(1);
  for (int ticks = 0; ticks < 2 * 10 + 1; ++ticks) {
    cluster.tick(1);
    cluster.settle();
  }
  BOOST_TEST(cluster.node(1).role() == Role::follower);
  BOOST_TEST(cluster.node(1).current_term() == term);  // stepping down needs no new term
  BOOST_TEST(!cluster.node(1).propose(bytes_of("late")).accepted);
}

// A host may hold back the ticks Core::quiet_ticks names and deliver them late (the raft
// node sets one timer for them): each of them must only count, and the tick after them must
// be the one that campaigns. A leader's ticks are never quiet; a heartbeat resets the count.
BOOST_AUTO_TEST_CASE(quiet_ticks_only_count_and_the_next_one_campaigns) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    Cluster cluster(3, seed);
    const uint32_t quiet = cluster.node(2).quiet_ticks();
    BOOST_REQUIRE(quiet >= Config{}.election_timeout_ticks_min - 1);
    BOOST_REQUIRE(quiet < Config{}.election_timeout_ticks_max);
    for (uint32_t tick = 0; tick < quiet; ++tick) {
      const size_t sent = cluster.sent.size();
      cluster.tick(2);
      BOOST_TEST(cluster.sent.size() == sent);
      BOOST_TEST(cluster.node(2).role() == Role::follower);
      BOOST_TEST(cluster.node(2).quiet_ticks() == quiet - tick - 1);
    }
    const size_t sent = cluster.sent.size();
    cluster.tick(2);
    BOOST_TEST(cluster.node(2).role() != Role::follower);  // campaigning (a pre-vote first)
    BOOST_TEST(cluster.sent.size() > sent);
    cluster.settle();
    BOOST_REQUIRE(cluster.elect(2));
    BOOST_TEST(cluster.node(2).quiet_ticks() == 0u);
    // Node 3 hears heartbeats: its count starts over at each.
    for (int ticks = 0; ticks < 5; ++ticks) cluster.tick(3);
    const uint32_t before = cluster.node(3).quiet_ticks();
    for (uint32_t beat = 0; beat < Config{}.heartbeat_ticks; ++beat) cluster.tick(2);
    cluster.settle();
    BOOST_TEST(cluster.node(3).quiet_ticks() > before);
    BOOST_TEST(cluster.node(3).quiet_ticks() >= Config{}.election_timeout_ticks_min - 1);
    BOOST_TEST(cluster.violations().empty());
  }
}

BOOST_AUTO_TEST_CASE(proposals_to_follower_return_leader_hint) {
  Cluster cluster(3);
  BOOST_REQUIRE(cluster.elect(2));
  cluster.settle();
  const ProposeResult result = cluster.node(1).propose(bytes_of("x"));
  BOOST_TEST(!result.accepted);
  BOOST_TEST(result.leader_hint == 2u);
  uint64_t hint = 0;
  BOOST_TEST(!cluster.node(3).read_index(7, &hint));
  BOOST_TEST(hint == 2u);
  BOOST_TEST(!cluster.node(2).propose({}).accepted);  // empty payloads are the leader's no-op
}

void heartbeat_rounds(Cluster& cluster, uint64_t leader, int rounds);

// A follower learns a commit from the next append that carries entries, or from an empty one
// at the leader's next tick: not from an empty append per commit (twice the messages under
// one client's puts).
BOOST_AUTO_TEST_CASE(a_commit_reaches_followers_with_the_next_append_or_at_the_next_tick) {
  Cluster cluster(3);
  BOOST_REQUIRE(cluster.elect(1));
  cluster.settle();
  heartbeat_rounds(cluster, 1, 2);
  const ProposeResult first = cluster.propose(1, "first");
  BOOST_REQUIRE(first.accepted);
  const size_t sent_before = cluster.sent.size();
  cluster.settle();
  BOOST_TEST(cluster.node(1).commit_index() == first.index);
  // The acknowledgements committed it; no append went out for that alone.
  size_t appends = 0;
  for (size_t i = sent_before; i < cluster.sent.size(); ++i) {
    if (cluster.sent[i].type == MessageType::append_entries) ++appends;
  }
  BOOST_TEST(appends == 0u);
  BOOST_TEST(cluster.node(2).commit_index() < first.index);
  // The next proposal's append carries it.
  const ProposeResult second = cluster.propose(1, "second");
  BOOST_REQUIRE(second.accepted);
  cluster.settle();
  BOOST_TEST(cluster.node(2).commit_index() == first.index);
  BOOST_TEST(cluster.node(3).commit_index() == first.index);
  // With nothing more to send, the next tick (not a heartbeat's) tells them.
  BOOST_REQUIRE_GE(cluster.node(1).commit_index(), second.index);
  cluster.tick(1);
  cluster.settle();
  BOOST_TEST(cluster.node(2).commit_index() == second.index);
  BOOST_TEST(cluster.node(3).commit_index() == second.index);
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(committed_entries_applied_once_in_order) {
  Cluster cluster(3, 7);
  BOOST_REQUIRE(cluster.elect(1));
  std::mt19937_64 random(7);
  for (int i = 0; i < 60; ++i) {
    cluster.propose(1, "p" + std::to_string(i));
    // Duplicate and reorder some traffic; replies and retransmissions must not re-apply.
    while (!cluster.network().empty() && random() % 4 != 0) {
      const size_t pick = random() % cluster.network().size();
      Message message = cluster.network()[pick];
      if (random() % 3 != 0) cluster.network().erase(cluster.network().begin() + pick);
      cluster.deliver(message);
    }
    cluster.tick(1);
  }
  for (int round = 0; round < 20; ++round) {
    cluster.tick(1);
    cluster.settle();
  }
  for (uint64_t id = 1; id <= 3; ++id) {
    const std::vector<Entry>& applied = cluster.applied(id);
    BOOST_REQUIRE_EQUAL(applied.size(), 61u);
    for (size_t i = 0; i < applied.size(); ++i) {
      BOOST_TEST(applied[i].index == i + 1);
      BOOST_TEST(applied[i] == cluster.applied(1)[i]);
    }
  }
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(append_entries_respect_batch_and_inflight_bounds) {
  Cluster cluster(3, 1, [](Config& config) {
    config.max_entries_per_append = 4;
    config.max_bytes_per_append = 100;
    config.max_inflight_appends = 2;
  });
  BOOST_REQUIRE(cluster.elect(1));
  cluster.settle();
  for (int i = 0; i < 40; ++i) cluster.node(1).propose(std::vector<uint8_t>(30, static_cast<uint8_t>(i)));
  cluster.process(1);
  size_t max_in_network = 0;
  while (!cluster.network().empty()) {
    size_t carrying = 0;
    for (const Message& m : cluster.network()) {
      if (m.type != MessageType::append_entries || m.to != 2 || m.entries.empty()) continue;
      ++carrying;
      uint64_t bytes = 0;
      for (const Entry& entry : m.entries) bytes += entry.payload().size();
      BOOST_TEST(m.entries.size() <= 4u);
      BOOST_TEST((bytes <= 100u || m.entries.size() == 1u));
    }
    max_in_network = std::max(max_in_network, carrying);
    BOOST_TEST(carrying <= 2u);
    cluster.deliver_next();
  }
  BOOST_TEST(max_in_network == 2u);  // pipelining did happen, up to the bound
  BOOST_TEST(cluster.node(2).log().last_index() == 41u);
  BOOST_TEST(cluster.node(1).commit_index() == 41u);
}

BOOST_AUTO_TEST_CASE(restart_from_recovered_state_keeps_term_and_vote) {
  Cluster cluster(3);
  BOOST_REQUIRE(cluster.elect(1));
  cluster.propose(1, "kept");
  cluster.settle();
  const uint64_t term = cluster.node(2).current_term();
  cluster.restart(2);
  BOOST_TEST(cluster.node(2).current_term() == term);
  BOOST_TEST(cluster.node(2).voted_for() == 1u);
  BOOST_TEST(cluster.node(2).log().last_index() == 2u);
  BOOST_TEST(cluster.node(2).role() == Role::follower);
  // Having voted for node 1 in this term, it turns node 3 down in the same term.
  Message request;
  request.type = MessageType::request_vote;
  request.from = 3;
  request.to = 2;
  request.term = term;
  request.last_log_index = 10;
  request.last_log_term = term;
  const size_t before = cluster.sent.size();
  cluster.deliver(request);
  BOOST_REQUIRE_EQUAL(cluster.sent.size(), before + 1);
  BOOST_TEST(!cluster.sent.back().vote_granted);
  // It carries on replicating without re-applying what it applied before the crash.
  cluster.propose(1, "after");
  for (int round = 0; round < 5; ++round) {
    cluster.tick(1);
    cluster.settle();
  }
  BOOST_TEST(cluster.node(2).commit_index() == 3u);
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(read_index_answers_after_leadership_is_confirmed) {
  Cluster cluster(3);
  BOOST_REQUIRE(cluster.elect(1));
  cluster.settle();
  cluster.propose(1, "w");
  cluster.settle();
  BOOST_TEST(cluster.node(1).read_index(42, nullptr));
  cluster.process(1);
  BOOST_TEST(cluster.read_states.empty());  // needs a quorum's heartbeat answers first
  cluster.settle();
  BOOST_REQUIRE_EQUAL(cluster.read_states.size(), 1u);
  BOOST_TEST(cluster.read_states[0].request_id == 42u);
  BOOST_TEST(cluster.read_states[0].read_index == 2u);
  // An isolated leader never confirms.
  cluster.isolate(1);
  BOOST_TEST(cluster.node(1).read_index(43, nullptr));
  cluster.settle();
  BOOST_TEST(cluster.read_states.size() == 1u);
}

// A read round needs a quorum's answers, the leader's own counted: after a first round to
// every voter, the next goes to the follower that answered first only. When that follower
// misses a round, the next heartbeat (to every peer, with the newest context) confirms it,
// and the round after goes to every voter again.
BOOST_AUTO_TEST_CASE(read_rounds_go_to_a_quorum_and_to_every_voter_after_a_miss) {
  Cluster cluster(3);
  BOOST_REQUIRE(cluster.elect(1));
  cluster.settle();
  cluster.propose(1, "w");
  cluster.settle();
  auto round_to = [&](uint64_t request_id) {  // the peers the leader's heartbeats for this read went to
    const size_t mark = cluster.sent.size();
    BOOST_REQUIRE(cluster.node(1).read_index(request_id, nullptr));
    cluster.process(1);
    std::set<uint64_t> peers;
    for (size_t i = mark; i < cluster.sent.size(); ++i) {
      const Message& message = cluster.sent[i];
      if (message.type == MessageType::append_entries && message.entries.empty()) peers.insert(message.to);
    }
    return peers;
  };
  auto confirmed = [&](uint64_t request_id) {
    for (const ReadState& read : cluster.read_states) {
      if (read.request_id == request_id) return true;
    }
    return false;
  };
  BOOST_TEST((round_to(42) == std::set<uint64_t>{2, 3}));  // the first round: every voter
  cluster.settle();
  BOOST_TEST(confirmed(42));
  BOOST_TEST((round_to(43) == std::set<uint64_t>{2}));  // node 2 answered first
  cluster.settle();
  BOOST_TEST(confirmed(43));

  cluster.cut(1, 2);
  BOOST_TEST((round_to(44) == std::set<uint64_t>{2}));
  cluster.settle();
  BOOST_TEST(!confirmed(44));  // node 2 never heard it
  for (int tick = 0; tick < 2 && !confirmed(44); ++tick) {
    cluster.tick(1);  // the heartbeat interval: every peer, node 3 answers
    cluster.settle();
  }
  BOOST_TEST(confirmed(44));
  cluster.heal();
  BOOST_TEST((round_to(45) == std::set<uint64_t>{2, 3}));  // node 2 missed a round: every voter
  cluster.settle();
  BOOST_TEST(confirmed(45));
  BOOST_TEST(cluster.violations().empty());
}

// --- leadership transfer (thesis §3.10) ---

bool is_type(const Message& message, MessageType type) { return message.type == type; }

BOOST_AUTO_TEST_CASE(transfer_completes_to_up_to_date_follower) {
  Cluster cluster(3);
  BOOST_REQUIRE(cluster.elect(1));
  BOOST_REQUIRE(cluster.propose(1, "before").accepted);
  cluster.settle();
  const uint64_t term = cluster.node(1).current_term();
  const size_t sent_before = cluster.sent.size();
  BOOST_TEST(cluster.node(1).transfer_leadership(2) == TransferStart::started);
  cluster.process(1);
  cluster.settle();  // no ticks: node 3 heard from node 1 just now, so only the transfer mark wins its vote
  BOOST_TEST(cluster.leader() == 2u);
  BOOST_TEST(cluster.node(2).current_term() == term + 1);
  BOOST_TEST(cluster.node(1).role() == Role::follower);
  BOOST_TEST(cluster.node(1).leader_id() == 2u);
  BOOST_TEST(cluster.node(3).leader_id() == 2u);
  const std::vector<Message> after(cluster.sent.begin() + static_cast<std::ptrdiff_t>(sent_before), cluster.sent.end());
  BOOST_TEST(std::count_if(after.begin(), after.end(),
                           [](const Message& m) { return is_type(m, MessageType::timeout_now); }) >= 1);
  BOOST_TEST(std::count_if(after.begin(), after.end(), [](const Message& m) { return is_type(m, MessageType::pre_vote); }) == 0);
  for (const Message& message : after) {
    if (message.type == MessageType::request_vote) BOOST_TEST(message.leadership_transfer);
  }
  // The new leader holds what the old one committed, and commits on its own.
  BOOST_TEST(cluster.node(2).log().last_index() >= 2u);
  const ProposeResult result = cluster.propose(2, "after");
  BOOST_REQUIRE(result.accepted);
  cluster.settle();
  heartbeat_rounds(cluster, 2, 1);  // the commit reaches followers at the next tick
  BOOST_TEST(cluster.node(1).commit_index() >= result.index);
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(transfer_catches_up_lagging_follower_first) {
  Cluster cluster(3);
  cluster.isolate(3);
  BOOST_REQUIRE(cluster.elect(1));
  for (int i = 0; i < 5; ++i) BOOST_REQUIRE(cluster.propose(1, "w" + std::to_string(i)).accepted);
  cluster.settle();
  const uint64_t last_index = cluster.node(1).log().last_index();
  BOOST_REQUIRE(cluster.node(1).commit_index() == last_index);  // committed with node 2 alone
  BOOST_REQUIRE(cluster.node(3).log().last_index() < last_index);
  cluster.heal();
  const auto timeout_nows = [&cluster] {
    return count_sent(cluster, [](const Message& m) { return is_type(m, MessageType::timeout_now); });
  };
  BOOST_TEST(cluster.node(1).transfer_leadership(3) == TransferStart::started);
  cluster.process(1);
  BOOST_TEST(timeout_nows() == 0u);  // node 3 lacks entries: catch it up first
  BOOST_TEST(cluster.node(1).transfer_target() == 3u);
  for (int ticks = 0; ticks < 4 && cluster.leader() != 3; ++ticks) {
    cluster.tick(1);  // the heartbeat probes node 3, whose answers bring it up to date
    cluster.settle();
  }
  BOOST_TEST(timeout_nows() >= 1u);
  BOOST_TEST(cluster.leader() == 3u);
  BOOST_TEST(cluster.node(3).log().term_at(last_index) == cluster.node(1).log().term_at(last_index));
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(proposals_refused_during_transfer) {
  Cluster cluster(3);
  BOOST_REQUIRE(cluster.elect(1));
  cluster.settle();
  cluster.isolate(3);
  BOOST_REQUIRE(cluster.node(1).transfer_leadership(3) == TransferStart::started);
  cluster.process(1);
  const ProposeResult refused = cluster.propose(1, "during");
  BOOST_TEST(!refused.accepted);
  BOOST_TEST(refused.transfer_in_progress);
  BOOST_TEST(refused.leader_hint == 3u);
  // Reads still confirm leadership through the transfer.
  uint64_t hint = 0;
  BOOST_TEST(cluster.node(1).read_index(11, &hint));
  cluster.process(1);
  cluster.settle();
  BOOST_TEST(cluster.read_states.size() == 1u);
  // A second request for the same target changes nothing; another target replaces it (and,
  // node 2 being up to date, completes at once).
  BOOST_TEST(cluster.node(1).transfer_leadership(3) == TransferStart::started);
  BOOST_TEST(cluster.node(1).transfer_target() == 3u);
  BOOST_TEST(cluster.node(1).transfer_leadership(2) == TransferStart::started);
  BOOST_TEST(cluster.node(1).transfer_target() == 2u);
  cluster.process(1);
  cluster.settle();
  BOOST_TEST(cluster.leader() == 2u);
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(transfer_abandoned_after_election_timeout) {
  Cluster cluster(3);
  BOOST_REQUIRE(cluster.elect(1));
  cluster.settle();
  cluster.isolate(3);  // the recipient never answers
  BOOST_REQUIRE(cluster.node(1).transfer_leadership(3) == TransferStart::started);
  cluster.process(1);
  int ticks = 0;
  for (; ticks < 100 && cluster.node(1).transfer_target() != 0; ++ticks) {
    cluster.tick(1);
    cluster.tick(2);
    cluster.settle();
  }
  BOOST_TEST(ticks == 10);  // election_timeout_ticks_min
  BOOST_TEST(cluster.node(1).role() == Role::leader);  // node 2 keeps CheckQuorum satisfied
  const ProposeResult result = cluster.propose(1, "resumed");
  BOOST_TEST(result.accepted);
  cluster.settle();
  BOOST_TEST(cluster.node(1).commit_index() >= result.index);
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(transfer_refused_to_self_unknown_and_by_follower) {
  Cluster cluster(3);
  BOOST_REQUIRE(cluster.elect(1));
  cluster.settle();
  BOOST_TEST(cluster.node(1).transfer_leadership(1) == TransferStart::to_self);
  BOOST_TEST(cluster.node(1).transfer_leadership(7) == TransferStart::not_voter);
  BOOST_TEST(cluster.node(1).transfer_leadership(0) == TransferStart::not_voter);
  BOOST_TEST(cluster.node(2).transfer_leadership(3) == TransferStart::not_leader);
  BOOST_TEST(cluster.node(1).transfer_target() == 0u);
  BOOST_TEST(cluster.propose(1, "still").accepted);
}

BOOST_AUTO_TEST_CASE(stale_timeout_now_starts_no_second_campaign) {
  Cluster cluster(3);
  BOOST_REQUIRE(cluster.elect(1));
  cluster.settle();
  Message stale;
  stale.type = MessageType::timeout_now;
  stale.from = 1;
  stale.to = 2;
  stale.term = cluster.node(1).current_term();
  BOOST_REQUIRE(cluster.node(1).transfer_leadership(2) == TransferStart::started);
  cluster.process(1);
  cluster.settle();
  BOOST_REQUIRE(cluster.leader() == 2u);
  const uint64_t term = cluster.node(2).current_term();
  cluster.deliver(stale);  // a duplicate of the old leader's message arrives late
  cluster.settle();
  BOOST_TEST(cluster.leader() == 2u);
  BOOST_TEST(cluster.node(2).current_term() == term);
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(invariant_checker_detects_two_leaders_in_one_term) {
  InvariantChecker checker;
  NodeState a{1, 3, Role::leader, 0, {1, 3}};
  NodeState b{2, 3, Role::follower, 0, {1, 3}};
  BOOST_TEST(checker.observe({a, b}).empty());
  b.role = Role::leader;
  const std::vector<std::string> violations = checker.observe({a, b});
  BOOST_REQUIRE_EQUAL(violations.size(), 1u);
  BOOST_TEST(violations[0].find("election safety") != std::string::npos);
}

// The simulator skips a whole-log check when every log's version is the one it last checked
// (sim/simulator.cc full_check): so every change must take a new version, and no two logs
// with different entries may share one.
BOOST_AUTO_TEST_CASE(every_log_change_takes_a_version_no_other_log_had) {
  Log log;
  std::set<uint64_t> seen{log.version()};
  auto changed = [&](const char* what) {
    BOOST_TEST(seen.insert(log.version()).second, what << " kept a version already seen");
  };
  for (uint64_t index = 1; index <= 4; ++index) {
    log.append(Entry{index, 1, bytes_of("x")});
    changed("append");
  }
  log.truncate_after(3);
  changed("truncate_after");
  log.append(Entry{4, 2, bytes_of("y")});  // the same length and index as before, another term
  changed("append after a truncation");
  log.compact_through(2);
  changed("compact_through");
  log.reset(9, 3);
  changed("reset");
  // Two logs built alike are still two logs: each takes its own version.
  Log first(std::vector<Entry>{Entry{1, 1, bytes_of("a")}});
  Log second(std::vector<Entry>{Entry{1, 1, bytes_of("a")}});
  BOOST_TEST(first.version() != second.version());
  BOOST_TEST(seen.count(first.version()) == 0u);
  // A copy holds the same entries and keeps the version; its next change takes a new one.
  Log copy = first;
  BOOST_TEST(copy.version() == first.version());
  copy.append(Entry{2, 1, bytes_of("b")});
  BOOST_TEST(copy.version() != first.version());
  // Reading changes nothing.
  const uint64_t before = log.version();
  std::vector<uint64_t> terms;
  log.append_terms(terms);
  (void)log.term_at(9);
  BOOST_TEST(log.version() == before);
}

// The simulator skips a whole-log check when the states equal those it last checked
// (NodeState's operator==): a change in any one field must make them unequal.
BOOST_AUTO_TEST_CASE(node_states_differing_in_any_one_field_are_unequal) {
  NodeState base{1, 2, Role::leader, 3, {1, 2, 2}, 3, 0, 0, 0, {{2, 3}}, {1}, false, false, 3, {1, 2, 3}};
  BOOST_TEST((NodeState(base) == base));
  const std::vector<std::pair<const char*, std::function<void(NodeState&)>>> changes = {
      {"id", [](NodeState& s) { s.id = 9; }},
      {"current_term", [](NodeState& s) { s.current_term = 9; }},
      {"role", [](NodeState& s) { s.role = Role::follower; }},
      {"commit_index", [](NodeState& s) { s.commit_index = 2; }},
      {"log_terms", [](NodeState& s) { s.log_terms.back() = 9; }},
      {"last_index", [](NodeState& s) { s.last_index = 4; }},
      {"log_start_index", [](NodeState& s) { s.log_start_index = 1; }},
      {"log_start_term", [](NodeState& s) { s.log_start_term = 1; }},
      {"snapshot_index", [](NodeState& s) { s.snapshot_index = 1; }},
      {"match_indexes", [](NodeState& s) { s.match_indexes[0].second = 2; }},
      {"configuration_indexes", [](NodeState& s) { s.configuration_indexes.push_back(3); }},
      {"repairing", [](NodeState& s) { s.repairing = true; }},
      {"on_probation", [](NodeState& s) { s.on_probation = true; }},
      {"durable_index", [](NodeState& s) { s.durable_index = 2; }},
      {"voters", [](NodeState& s) { s.voters.pop_back(); }},
  };
  for (const auto& [field, change] : changes) {
    NodeState changed = base;
    change(changed);
    BOOST_TEST((changed != base), "a change of " << field << " left the states equal");
  }
}

BOOST_AUTO_TEST_CASE(invariant_checker_detects_log_and_commit_violations) {
  InvariantChecker checker;
  NodeState a{1, 3, Role::follower, 2, {1, 2, 3}};
  NodeState b{2, 3, Role::follower, 0, {1, 1, 3}};  // agrees at 3 but not at 2
  auto found = [](const std::vector<std::string>& violations, const std::string& what) {
    return std::any_of(violations.begin(), violations.end(),
                       [&](const std::string& v) { return v.find(what) != std::string::npos; });
  };
  BOOST_TEST(found(checker.observe({a, b}), "log matching"));
  a.commit_index = 1;
  a.current_term = 2;
  b.log_terms = {1, 2, 3};
  std::vector<std::string> violations = checker.observe({a, b});
  BOOST_TEST(found(violations, "commit index went back"));
  BOOST_TEST(found(violations, "term went back"));
  NodeState leader{3, 4, Role::leader, 0, {1}};  // lacks committed index 2
  BOOST_TEST(found(checker.observe({leader}), "leader completeness"));
  BOOST_TEST(checker.applied(1, Entry{1, 1, bytes_of("x")}).empty());
  BOOST_TEST(found(checker.applied(2, Entry{1, 1, bytes_of("y")}), "state machine safety"));
  BOOST_TEST(found(checker.applied(2, Entry{3, 1, bytes_of("y")}), "apply order"));
}

// A leader's commit counts copies that are durable: the checker compares each rise of a
// leader's commit index with the durable indexes last seen of its voters (down nodes keep
// theirs: what was synced survives the crash).
BOOST_AUTO_TEST_CASE(invariant_checker_detects_a_commit_not_durable_on_a_majority) {
  const auto state = [](uint64_t id, Role role, uint64_t commit, uint64_t durable, bool repairing = false) {
    return commit_check_state(id, role, commit, durable, repairing);
  };
  const auto has = names_commit_not_durable;
  InvariantChecker checker;
  // Leader 1 has 3 durable, follower 2 has it durable: 2 of 3 hold index 3.
  BOOST_TEST(!has(checker.observe({state(1, Role::leader, 3, 3), state(2, Role::follower, 1, 3), state(3, Role::follower, 1, 1)})));
  // Node 2 is down now; its durable copy still counts. The leader's own copy is not synced
  // (it counted it early) while commit rises: one durable copy is not a majority.
  InvariantChecker early;
  BOOST_TEST(!has(early.observe({state(1, Role::leader, 1, 1), state(2, Role::follower, 1, 1), state(3, Role::follower, 1, 1)})));
  BOOST_TEST(!has(early.observe({state(2, Role::follower, 1, 3)})));
  const std::vector<std::string> violations = early.observe({state(1, Role::leader, 3, 1), state(3, Role::follower, 1, 1)});
  BOOST_TEST(has(violations));
  BOOST_TEST(has(early.observe_roles({state(1, Role::leader, 3, 1)})) == false);  // reported once, when it rose
}

// A media fault can take entries a follower acknowledged (it then repairs: NodeState::repairing,
// no vote until a leader sent them again). Its leader may still count that follower by the
// match index it heard before, so a commit rising meanwhile is no violation; the same drop
// without the repair is one. Found by the 10,000-seed soak (seeds 1978, 2690, 3301 and 3888:
// a bit flip or a misdirected write just before the leader's commit rose).
BOOST_AUTO_TEST_CASE(invariant_checker_credits_a_repairing_voter_with_what_it_held_before_the_fault) {
  const auto state = [](uint64_t id, Role role, uint64_t commit, uint64_t durable, bool repairing = false) {
    return commit_check_state(id, role, commit, durable, repairing);
  };
  const auto has = names_commit_not_durable;
  for (bool repairing : {true, false}) {
    BOOST_TEST_CONTEXT("follower 2 repairing: " << repairing) {
      InvariantChecker checker;
      // Leader 1 and follower 2 hold index 3 durably; the commit has not risen yet.
      BOOST_TEST(!has(checker.observe({state(1, Role::leader, 1, 3), state(2, Role::follower, 1, 3), state(3, Role::follower, 1, 1)})));
      // Follower 2 restarts having lost index 3 to a damaged WAL; the leader's commit rises to 3.
      const auto violations = checker.observe(
          {state(1, Role::leader, 3, 3), state(2, Role::follower, 1, 2, repairing), state(3, Role::follower, 1, 1)});
      BOOST_TEST(has(violations) == !repairing);
    }
  }
  // Once repaired, the credit is gone: its own durable index counts again.
  InvariantChecker checker;
  BOOST_TEST(!has(checker.observe({state(1, Role::leader, 1, 3), state(2, Role::follower, 1, 3), state(3, Role::follower, 1, 1)})));
  BOOST_TEST(!has(checker.observe({state(1, Role::leader, 1, 3), state(2, Role::follower, 1, 2, true), state(3, Role::follower, 1, 1)})));
  BOOST_TEST(!has(checker.observe({state(1, Role::leader, 1, 3), state(2, Role::follower, 1, 2, false), state(3, Role::follower, 1, 1)})));
  BOOST_TEST(has(checker.observe({state(1, Role::leader, 3, 3), state(2, Role::follower, 1, 2), state(3, Role::follower, 1, 1)})));
}

// The same credit for a voter whose directory was wiped and bootstrapped again (seed 4655): it
// is on probation, votes for no one, and keeps the durable index it had before the wipe while
// the probation lasts; a drop without probation is still named.
BOOST_AUTO_TEST_CASE(invariant_checker_credits_a_wiped_voter_on_probation_with_what_it_held_before) {
  const auto has = names_commit_not_durable;
  for (bool on_probation : {true, false}) {
    BOOST_TEST_CONTEXT("follower 2 on probation: " << on_probation) {
      InvariantChecker checker;
      BOOST_TEST(!has(checker.observe({commit_check_state(1, Role::leader, 1, 3), commit_check_state(2, Role::follower, 1, 3),
                                       commit_check_state(3, Role::follower, 1, 1)})));
      // Follower 2 comes back with a fresh bootstrap (its log holds index 1); the commit rises to 3.
      NodeState wiped = commit_check_state(2, Role::follower, 1, 1);
      wiped.on_probation = on_probation;
      const auto violations = checker.observe(
          {commit_check_state(1, Role::leader, 3, 3), wiped, commit_check_state(3, Role::follower, 1, 1)});
      BOOST_TEST(has(violations) == !on_probation);
    }
  }
}

// --- §7: snapshots, log compaction and InstallSnapshot ---------------------------------

bool is_install_to(const Message& m, uint64_t to) { return m.type == MessageType::install_snapshot && m.to == to; }

auto no_tail = [](Config& config) { config.log_tail_entries = 0; };

// Node 1 leads; node 3 misses `proposals` entries while isolated; node 1 then snapshots at its
// applied index and compacts everything (no tail), so node 3 can only catch up by a snapshot.
void leave_follower_behind_a_snapshot(Cluster& cluster, int proposals) {
  BOOST_REQUIRE(cluster.elect(1));
  cluster.settle();
  cluster.isolate(3);
  for (int i = 0; i < proposals; ++i) cluster.propose(1, "p" + std::to_string(i));
  cluster.settle();
  BOOST_REQUIRE(cluster.take_snapshot(1));
  BOOST_REQUIRE_EQUAL(cluster.node(1).snapshot_index(), cluster.node(1).commit_index());
  BOOST_REQUIRE_EQUAL(cluster.node(1).log().start_index(), cluster.node(1).snapshot_index());
  BOOST_REQUIRE(cluster.node(3).log().last_index() < cluster.node(1).log().start_index());
  cluster.heal();
  // Appends lost while node 3 was cut off are retransmitted after an election timeout of
  // ticks (a probe from match_index + 1): that probe finds the entries compacted.
  for (int tick = 0; tick < 10; ++tick) cluster.tick(1);
}

void heartbeat_rounds(Cluster& cluster, uint64_t leader, int rounds) {
  for (int round = 0; round < rounds; ++round) {
    cluster.tick(leader);
    cluster.settle();
  }
}

// A follower slow to make a probe's entries durable holds its answer. The leader resends a
// small probe at every heartbeat, since a lost one should cost no more than that. It resends
// a probe of more than probe_resend_bytes only after an election timeout (10 ticks here).
// In between, the follower gets plain heartbeats, which carry no entries.
BOOST_AUTO_TEST_CASE(a_large_probe_waits_an_election_timeout_before_it_is_resent) {
  for (const size_t payload : {size_t{100}, size_t{100} << 10}) {
    BOOST_TEST_CONTEXT("payload " << payload << " bytes") {
      Cluster cluster(3);
      BOOST_REQUIRE(cluster.elect(1));
      cluster.settle();
      cluster.disk(3).auto_sync = false;  // 3 takes the entry in but holds its success
      const auto entries_to_3 = [](const Message& m) {
        return m.type == MessageType::append_entries && m.to == 3 && !m.entries.empty();
      };
      const auto heartbeats_to_3 = [](const Message& m) {
        return m.type == MessageType::append_entries && m.to == 3 && m.entries.empty();
      };
      const size_t before = count_sent(cluster, entries_to_3);
      const ProposeResult put = cluster.propose(1, std::string(payload, 'v'));
      BOOST_REQUIRE(put.accepted);
      cluster.settle();
      BOOST_REQUIRE(cluster.node(1).commit_index() >= put.index);  // 1 and 2 made it durable
      // No progress from 3 for an election timeout: the leader falls back to probing it, and
      // the next heartbeat sends the probe, the entry's second copy.
      const size_t first_copy = count_sent(cluster, entries_to_3);
      BOOST_REQUIRE(first_copy == before + 1);
      for (int tick = 0; tick < 20 && count_sent(cluster, entries_to_3) == first_copy; ++tick) {
        heartbeat_rounds(cluster, 1, 1);
      }
      BOOST_REQUIRE(cluster.node(1).progress(3)->mode == Progress::Mode::probe);
      const size_t probes = count_sent(cluster, entries_to_3);
      BOOST_REQUIRE(probes == before + 2);
      const size_t heartbeats = count_sent(cluster, heartbeats_to_3);
      heartbeat_rounds(cluster, 1, 8);  // four heartbeats, less than an election timeout after it
      const size_t resent = count_sent(cluster, entries_to_3) - probes;
      if (payload <= 64u << 10) {
        BOOST_TEST(resent == 4u);
      } else {
        BOOST_TEST(resent == 0u);
        BOOST_TEST(count_sent(cluster, heartbeats_to_3) - heartbeats == 4u);
        heartbeat_rounds(cluster, 1, 2);  // an election timeout after the probe: resent once
        BOOST_TEST(count_sent(cluster, entries_to_3) - probes == 1u);
      }
      // 3's disk catches up: its success reaches the leader, which pipelines again.
      cluster.disk(3).auto_sync = true;
      cluster.sync(3);
      cluster.process(3);
      cluster.settle();
      BOOST_TEST(cluster.node(1).progress(3)->match_index >= put.index);
      BOOST_TEST(cluster.node(1).progress(3)->mode == Progress::Mode::replicate);
      BOOST_TEST(cluster.node(3).role() == Role::follower);
      BOOST_TEST(cluster.violations().empty());
    }
  }
}

BOOST_AUTO_TEST_CASE(leader_sends_install_snapshot_when_follower_needs_compacted_entry) {
  Cluster cluster(3, 1, no_tail);
  leave_follower_behind_a_snapshot(cluster, 10);
  const uint64_t snapshot = cluster.node(1).snapshot_index();
  heartbeat_rounds(cluster, 1, 3);
  const auto installs = count_sent(cluster, [](const Message& m) { return is_install_to(m, 3); });
  BOOST_TEST(installs == 1u);
  const Message& install = *std::find_if(cluster.sent.begin(), cluster.sent.end(),
                                         [](const Message& m) { return is_install_to(m, 3); });
  BOOST_TEST(install.snapshot_index == snapshot);
  BOOST_TEST(install.snapshot_term == cluster.node(1).snapshot_term());
  BOOST_TEST(install.leader_commit >= snapshot);
  // Node 3 took the snapshot as its base, installed it, and replicates from there.
  BOOST_TEST(cluster.node(3).log().start_index() == snapshot);
  BOOST_TEST(cluster.node(3).snapshot_index() == snapshot);
  BOOST_TEST(cluster.applied_position(3).index >= snapshot);
  BOOST_TEST(cluster.installs == 1u);
  BOOST_TEST(cluster.node(1).progress(3)->mode == Progress::Mode::replicate);
  const ProposeResult after = cluster.propose(1, "after");
  cluster.settle();
  heartbeat_rounds(cluster, 1, 1);  // the commit reaches followers at the next tick
  BOOST_TEST(cluster.node(3).commit_index() == after.index);
  BOOST_TEST(cluster.applied_position(3).index == after.index);
  BOOST_TEST(cluster.applied(3).back().payload() == bytes_of("after"));
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(follower_reset_by_snapshot_acks_only_after_durable) {
  for (bool planted : {false, true}) {
    BOOST_TEST_CONTEXT("planted snapshot_ack_before_durable: " << planted) {
      Cluster cluster(3, 1, [&](Config& config) {
        config.log_tail_entries = 0;
        if (planted) config.planted_bug = PlantedBug::snapshot_ack_before_durable;
      });
      leave_follower_behind_a_snapshot(cluster, 6);
      const uint64_t snapshot = cluster.node(1).snapshot_index();
      cluster.disk(3).auto_sync = false;
      heartbeat_rounds(cluster, 1, 2);
      // The snapshot replaced node 3's log: applied = commit = durable = the snapshot index.
      BOOST_TEST(cluster.node(3).log().start_index() == snapshot);
      BOOST_TEST(cluster.node(3).log().last_index() == snapshot);
      BOOST_TEST(cluster.node(3).commit_index() == snapshot);
      BOOST_TEST(cluster.node(3).applied_index() == snapshot);
      BOOST_REQUIRE(cluster.disk(3).installing.has_value());
      BOOST_TEST(cluster.disk(3).installing->index == snapshot);
      auto acks = [&](const Message& m) {
        return m.from == 3 && m.type == MessageType::append_entries_response && m.success && m.match_index >= snapshot;
      };
      if (planted) {
        BOOST_TEST(count_sent(cluster, acks) >= 1u);  // the bug: promised before durable
        continue;
      }
      BOOST_TEST(count_sent(cluster, acks) == 0u);
      BOOST_TEST(cluster.node(1).progress(3)->mode == Progress::Mode::snapshot);
      BOOST_TEST(cluster.node(1).progress(3)->match_index < snapshot);
      cluster.sync(3);
      cluster.process(3);
      BOOST_TEST(count_sent(cluster, acks) >= 1u);
      cluster.settle();
      BOOST_TEST(cluster.node(1).progress(3)->match_index >= snapshot);
      BOOST_TEST(cluster.node(1).progress(3)->mode == Progress::Mode::replicate);
      BOOST_TEST(cluster.violations().empty());
    }
  }
}

// A follower in term 2 holding `terms`, with a leader (node 1) of term 2 that never ticks.
Cluster follower_holding(std::initializer_list<uint64_t> terms, uint64_t applied) {
  std::vector<RecoveredState> states{{{2, 0}, entries({1, 1, 2, 2, 2}), 0},
                                     {{2, 0}, entries(terms), applied},
                                     {{2, 0}, entries({1, 1, 2, 2, 2}), 0}};
  return Cluster(3, 1, {}, states);
}

Message install_snapshot(uint64_t index, uint64_t term, uint64_t leader_commit) {
  Message message;
  message.type = MessageType::install_snapshot;
  message.from = 1;
  message.to = 2;
  message.term = 2;
  message.snapshot_index = index;
  message.snapshot_term = term;
  message.leader_commit = leader_commit;
  return message;
}

BOOST_AUTO_TEST_CASE(install_snapshot_matching_log_keeps_suffix) {
  Cluster cluster = follower_holding({1, 1, 2, 2, 2}, 0);
  cluster.deliver(install_snapshot(3, 2, 3));
  // Node 2 holds (3, term 2): it keeps its log, entries after 3 included, and commits through 3.
  BOOST_TEST(cluster.node(2).log().last_index() == 5u);
  BOOST_TEST(cluster.node(2).log().start_index() == 0u);
  BOOST_TEST(cluster.node(2).commit_index() == 3u);
  BOOST_TEST(!cluster.disk(2).installing.has_value());
  BOOST_TEST(cluster.node(2).leader_id() == 1u);
  BOOST_REQUIRE(!cluster.sent.empty());
  const Message& answer = cluster.sent.back();
  BOOST_TEST((answer.type == MessageType::append_entries_response));
  BOOST_TEST(answer.success);
  BOOST_TEST(answer.match_index == 3u);
  // A conflicting log is replaced instead: (3, term 1) is not what node 2 holds at 3.
  Cluster conflicting = follower_holding({1, 1, 1, 1}, 0);
  conflicting.deliver(install_snapshot(3, 2, 3));
  BOOST_TEST(conflicting.node(2).log().start_index() == 3u);
  BOOST_TEST(conflicting.node(2).log().last_index() == 3u);
  BOOST_TEST(conflicting.disk(2).snapshot.index == 3u);  // durable (auto_sync) and installed
  BOOST_TEST(conflicting.applied_position(2).index == 3u);
  BOOST_TEST(conflicting.sent.back().success);
  BOOST_TEST(conflicting.sent.back().match_index == 3u);
  BOOST_TEST(cluster.violations().empty());
  BOOST_TEST(conflicting.violations().empty());
}

BOOST_AUTO_TEST_CASE(stale_install_snapshot_is_answered_with_commit_index) {
  Cluster cluster = follower_holding({1, 1, 2, 2, 2}, 4);
  BOOST_REQUIRE_EQUAL(cluster.node(2).commit_index(), 4u);
  cluster.deliver(install_snapshot(2, 1, 4));
  BOOST_TEST(cluster.node(2).log().last_index() == 5u);
  BOOST_TEST(cluster.node(2).log().start_index() == 0u);
  BOOST_TEST(!cluster.disk(2).installing.has_value());
  BOOST_REQUIRE(!cluster.sent.empty());
  BOOST_TEST(cluster.sent.back().success);
  BOOST_TEST(cluster.sent.back().match_index == 4u);
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(append_below_follower_log_start_matches_the_compacted_prefix) {
  // Node 2 recovered from a snapshot at (5, term 2) with nothing after it; an append from
  // prev 2 carries 3..7: 3..5 are inside the snapshot (committed, so they match) and 6..7 are new.
  std::vector<RecoveredState> states{{{2, 0}, entries({1, 1, 2, 2, 2, 2, 2}), 0}, {{2, 0}, {}, 5, 5, 2},
                                     {{2, 0}, entries({1, 1, 2, 2, 2}), 0}};
  Cluster cluster(3, 1, {}, states);
  BOOST_REQUIRE_EQUAL(cluster.node(2).log().start_index(), 5u);
  Message append;
  append.type = MessageType::append_entries;
  append.from = 1;
  append.to = 2;
  append.term = 2;
  append.prev_log_index = 2;
  append.prev_log_term = 1;
  append.entries = entries({1, 1, 2, 2, 2, 2, 2});
  append.entries.erase(append.entries.begin(), append.entries.begin() + 2);
  append.leader_commit = 6;
  cluster.deliver(append);
  BOOST_TEST(cluster.node(2).log().last_index() == 7u);
  BOOST_TEST(cluster.node(2).commit_index() == 6u);
  BOOST_TEST(cluster.sent.back().success);
  BOOST_TEST(cluster.sent.back().match_index == 7u);
  // A heartbeat entirely below the start matches too, through the start.
  append.entries.resize(1);
  cluster.deliver(append);
  BOOST_TEST(cluster.sent.back().success);
  BOOST_TEST(cluster.sent.back().match_index == 5u);
  BOOST_TEST(cluster.node(2).log().last_index() == 7u);
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(compaction_keeps_tail_and_never_passes_commit) {
  Cluster cluster(3, 1, [](Config& config) { config.log_tail_entries = 3; });
  BOOST_REQUIRE(cluster.elect(1));
  for (int i = 0; i < 10; ++i) cluster.propose(1, "c" + std::to_string(i));
  cluster.settle();
  BOOST_REQUIRE_EQUAL(cluster.node(1).commit_index(), 11u);
  // Uncommitted entries past the snapshot: node 1 alone holds 12..14.
  cluster.isolate(1);
  for (int i = 0; i < 3; ++i) cluster.propose(1, "u" + std::to_string(i));
  cluster.settle();
  BOOST_REQUIRE_EQUAL(cluster.node(1).log().last_index(), 14u);
  BOOST_REQUIRE(cluster.take_snapshot(1));
  const Log& log = cluster.node(1).log();
  BOOST_TEST(cluster.node(1).snapshot_index() == 11u);
  BOOST_TEST(log.start_index() == 8u);  // 11 - 3: the tail is kept
  BOOST_TEST(log.start_term() == 1u);
  BOOST_TEST(log.first_index() == 9u);
  BOOST_TEST(log.last_index() == 14u);  // nothing after the snapshot is dropped
  BOOST_TEST(log.compacted(7));
  BOOST_TEST(!log.compacted(8));
  BOOST_TEST(log.term_at(7) == 0u);
  BOOST_TEST(log.at(9).payload() == bytes_of("c7"));
  // The disk dropped the same prefix, and an older snapshot changes nothing.
  BOOST_TEST(cluster.disk(1).synced_start.index == 8u);
  BOOST_TEST(cluster.disk(1).synced_log.front().index == 9u);
  cluster.node(1).snapshot_taken(5, 1);
  BOOST_TEST(cluster.node(1).snapshot_index() == 11u);
  BOOST_TEST(cluster.node(1).log().start_index() == 8u);
  // With no tail, the log is compacted through the snapshot, never past the commit index.
  Cluster bare(1, 1, no_tail);
  BOOST_REQUIRE(bare.elect(1));
  bare.propose(1, "x");
  bare.settle();
  bare.disk(1).auto_sync = false;
  bare.propose(1, "not yet durable, so not committed");
  BOOST_REQUIRE(bare.take_snapshot(1));
  BOOST_TEST(bare.node(1).log().start_index() == 2u);
  BOOST_TEST(bare.node(1).log().last_index() == 3u);
  BOOST_TEST(bare.node(1).commit_index() == 2u);
  bare.sync(1);
  bare.process(1);
  BOOST_TEST(bare.node(1).commit_index() == 3u);  // applied past the compaction, from the log
  BOOST_TEST(bare.applied_position(1).index == 3u);
  BOOST_TEST(cluster.violations().empty());
  BOOST_TEST(bare.violations().empty());
}

BOOST_AUTO_TEST_CASE(invariant_checker_catches_compaction_past_commit) {
  Cluster cluster(3, 1, [](Config& config) {
    config.log_tail_entries = 0;
    config.planted_bug = PlantedBug::compact_past_commit;
  });
  BOOST_REQUIRE(cluster.elect(1));
  cluster.propose(1, "committed");
  cluster.settle();
  cluster.isolate(1);
  cluster.propose(1, "uncommitted");
  BOOST_REQUIRE(cluster.take_snapshot(1));
  BOOST_TEST(cluster.node(1).log().start_index() > cluster.node(1).commit_index());
  BOOST_REQUIRE(!cluster.violations().empty());
  BOOST_TEST(cluster.violations()[0].find("compacted past commit") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(heartbeat_to_follower_in_snapshot_mode_keeps_read_index_working) {
  Cluster cluster(3, 1, no_tail);
  leave_follower_behind_a_snapshot(cluster, 5);
  // The transfer to node 3 never completes, and node 2 is gone: only node 3 can confirm reads.
  cluster.drop_if = [](const Message& m) { return m.type == MessageType::install_snapshot; };
  cluster.isolate(2);
  heartbeat_rounds(cluster, 1, 2);
  BOOST_REQUIRE(cluster.node(1).progress(3)->mode == Progress::Mode::snapshot);
  BOOST_TEST(cluster.node(1).read_index(42, nullptr));
  cluster.process(1);
  cluster.settle();
  BOOST_REQUIRE_EQUAL(cluster.read_states.size(), 1u);
  BOOST_TEST(cluster.read_states[0].request_id == 42u);
  BOOST_TEST(cluster.read_states[0].read_index == cluster.node(1).commit_index());
  // Node 3's answers to heartbeats keep node 1 in office through CheckQuorum rounds, while it
  // re-sends the snapshot each election timeout.
  heartbeat_rounds(cluster, 1, 5 * 10);
  BOOST_TEST(cluster.node(1).role() == Role::leader);
  BOOST_TEST(cluster.node(3).leader_id() == 1u);
  BOOST_TEST(count_sent(cluster, [](const Message& m) { return is_install_to(m, 3); }) >= 3u);
  BOOST_TEST(cluster.node(1).read_index(43, nullptr));
  cluster.process(1);
  cluster.settle();
  BOOST_TEST(cluster.read_states.size() == 2u);
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(snapshot_failed_returns_to_probe_and_retries) {
  Cluster cluster(3, 1, no_tail);
  leave_follower_behind_a_snapshot(cluster, 5);
  int failures = 1;
  cluster.transfer_fails = [&](const Message&) { return failures-- > 0; };
  cluster.tick(1);
  cluster.settle();
  BOOST_TEST(cluster.transfers_failed == 1u);
  // Back to probing, which waits for the next heartbeat to send the snapshot again.
  BOOST_TEST(cluster.node(1).progress(3)->mode == Progress::Mode::probe);
  BOOST_TEST(count_sent(cluster, [](const Message& m) { return is_install_to(m, 3); }) == 1u);
  heartbeat_rounds(cluster, 1, 2);
  BOOST_TEST(count_sent(cluster, [](const Message& m) { return is_install_to(m, 3); }) == 2u);
  BOOST_TEST(cluster.installs == 1u);
  BOOST_TEST(cluster.node(3).log().start_index() == cluster.node(1).snapshot_index());
  BOOST_TEST(cluster.node(1).progress(3)->mode == Progress::Mode::replicate);
  // A snapshot lost without a report: after an election timeout without an answer, again.
  cluster.isolate(3);
  for (int i = 0; i < 4; ++i) cluster.propose(1, "more" + std::to_string(i));
  cluster.settle();
  BOOST_REQUIRE(cluster.take_snapshot(1));
  cluster.heal();
  cluster.drop_if = [](const Message& m) { return m.type == MessageType::install_snapshot; };
  heartbeat_rounds(cluster, 1, 10 + 2);
  BOOST_REQUIRE(cluster.node(1).progress(3)->mode == Progress::Mode::snapshot);
  const size_t sent_before = count_sent(cluster, [](const Message& m) { return is_install_to(m, 3); });
  cluster.drop_if = {};
  heartbeat_rounds(cluster, 1, 10 + 2);
  BOOST_TEST(count_sent(cluster, [](const Message& m) { return is_install_to(m, 3); }) == sent_before + 1);
  BOOST_TEST(cluster.node(3).commit_index() == cluster.node(1).commit_index());
  BOOST_TEST(cluster.installs == 2u);
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(elections_after_snapshot_use_start_term) {
  // Node 1's log is empty after a snapshot at (5, term 3): its last term is 3, which beats node
  // 3's longer log ending in term 2. Node 3's conflict hint (term 2) is unknown to node 1's
  // compacted log, so node 1 falls back to the hint's index, below its start: a snapshot.
  std::vector<RecoveredState> states{{{3, 0}, {}, 5, 5, 3},
                                     {{3, 0}, entries({1, 1, 2, 2, 3}), 0},
                                     {{3, 0}, entries({1, 1, 2, 2, 2, 2}), 0}};
  Cluster cluster(3, 1, [](Config& config) { config.check_quorum = false; }, states);
  BOOST_REQUIRE_EQUAL(cluster.node(1).log().last_term(), 3u);
  BOOST_REQUIRE_EQUAL(cluster.node(1).log().last_index(), 5u);
  cluster.isolate(2);
  // Node 3 cannot win node 1's vote: its last term 2 is older.
  for (int ticks = 0; ticks < 30 && cluster.node(3).role() == Role::follower; ++ticks) cluster.tick(3);
  cluster.settle();
  BOOST_TEST(cluster.node(3).role() != Role::leader);
  cluster.heal();
  cluster.cut(1, 2);
  cluster.cut(2, 1);
  BOOST_REQUIRE(cluster.elect(1));
  const Message& request = *std::find_if(cluster.sent.begin(), cluster.sent.end(), [](const Message& m) {
    return m.from == 1 && m.type == MessageType::request_vote;
  });
  BOOST_TEST(request.last_log_index == 5u);
  BOOST_TEST(request.last_log_term == 3u);
  cluster.heal();
  heartbeat_rounds(cluster, 1, 3);
  BOOST_TEST(count_sent(cluster, [](const Message& m) {
               return m.from == 3 && m.type == MessageType::append_entries_response && !m.success &&
                      m.conflict_term == 2u;
             }) >= 1u);
  BOOST_TEST(count_sent(cluster, [](const Message& m) { return is_install_to(m, 3); }) == 1u);
  BOOST_TEST(count_sent(cluster, [](const Message& m) { return is_install_to(m, 2); }) == 0u);
  BOOST_TEST(cluster.node(3).log().start_index() == 5u);
  BOOST_TEST(cluster.node(3).log().term_at(5) == 3u);
  for (uint64_t id = 1; id <= 3; ++id) BOOST_TEST(cluster.node(id).commit_index() == 6u);
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(recovered_state_with_snapshot_and_tail) {
  // A base snapshot at (6, term 2), the WAL's tail from 4 (start (3, term 1)) and one entry past it.
  std::vector<Entry> tail = entries({1, 1, 1, 2, 2, 2, 2});
  tail.erase(tail.begin(), tail.begin() + 3);
  RecoveredState state{{2, 0}, tail, 6, 6, 2, 3, 1};
  Core core(make_config(1, 1, 1), state);
  BOOST_TEST(core.log().start_index() == 3u);
  BOOST_TEST(core.log().start_term() == 1u);
  BOOST_TEST(core.log().first_index() == 4u);
  BOOST_TEST(core.log().last_index() == 7u);
  BOOST_TEST(core.log().compacted(2));
  BOOST_TEST(core.log().term_at(2) == 0u);
  BOOST_TEST(core.snapshot_index() == 6u);
  BOOST_TEST(core.snapshot_term() == 2u);
  BOOST_TEST(core.commit_index() == 6u);
  BOOST_TEST(core.applied_index() == 6u);
  BOOST_TEST(core.durable_index() == 7u);
  // The start may be left to be derived: from the snapshot when nothing follows it...
  Core empty(make_config(1, 1, 1), RecoveredState{{2, 0}, {}, 6, 6, 2});
  BOOST_TEST(empty.log().start_index() == 6u);
  BOOST_TEST(empty.log().last_term() == 2u);
  // ...and from the entries when they start right after it.
  Core after(make_config(1, 1, 1), RecoveredState{{2, 0}, {Entry{7, 2, bytes_of("x")}}, 6, 6, 2});
  BOOST_TEST(after.log().start_index() == 6u);
  BOOST_TEST(after.log().start_term() == 2u);
  BOOST_TEST(after.log().last_index() == 7u);
  // In a cluster: a node restarts from its snapshot and tail, and carries on.
  Cluster cluster(3, 1, [](Config& config) { config.log_tail_entries = 2; });
  BOOST_REQUIRE(cluster.elect(1));
  for (int i = 0; i < 8; ++i) cluster.propose(1, "r" + std::to_string(i));
  cluster.settle();
  heartbeat_rounds(cluster, 1, 1);  // the last commit reaches followers at the next tick
  BOOST_REQUIRE(cluster.take_snapshot(2));
  BOOST_REQUIRE_EQUAL(cluster.node(2).log().start_index(), 7u);
  cluster.restart(2);
  BOOST_TEST(cluster.node(2).snapshot_index() == 9u);
  BOOST_TEST(cluster.node(2).log().start_index() == 7u);
  BOOST_TEST(cluster.node(2).log().last_index() == 9u);
  BOOST_TEST(cluster.node(2).commit_index() == 9u);
  const ProposeResult result = cluster.propose(1, "after restart");
  heartbeat_rounds(cluster, 1, 3);
  BOOST_TEST(cluster.node(2).commit_index() == result.index);
  BOOST_TEST(cluster.applied(2).back().payload() == bytes_of("after restart"));
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(invariant_checker_accepts_snapshots_and_checks_them) {
  auto found = [](const std::vector<std::string>& violations, const std::string& what) {
    return std::any_of(violations.begin(), violations.end(),
                       [&](const std::string& v) { return v.find(what) != std::string::npos; });
  };
  InvariantChecker checker;
  // Node 1 holds 1..4; node 2 compacted through (3, term 2) and holds 4..5. They agree on the overlap.
  NodeState a{1, 2, Role::leader, 4, {1, 2, 2, 2}, 4, 0, 0, 0};
  NodeState b{2, 2, Role::follower, 4, {2, 2}, 5, 3, 2, 3};
  BOOST_TEST(checker.observe({a, b}).empty());
  BOOST_TEST(checker.applied(1, Entry{1, 1, bytes_of("x")}).empty());
  // A leader of a later term whose log starts past committed index 2 is complete (its snapshot
  // covers it); one that lacks index 4 is not.
  NodeState leader{3, 3, Role::leader, 4, {2, 3}, 5, 3, 2, 3};
  BOOST_TEST(checker.observe({leader}).empty());
  leader.current_term = 4;
  leader.log_terms = {3};
  leader.log_start_index = 3;
  leader.last_index = 4;
  leader.commit_index = 3;
  std::vector<std::string> violations = checker.observe({leader});
  BOOST_TEST(found(violations, "leader completeness"));
  // Disagreeing at the overlap's start and agreeing after is a log matching violation.
  InvariantChecker fresh;
  NodeState c{4, 2, Role::follower, 0, {1, 1, 2, 2}, 4, 0, 0, 0};
  NodeState d{5, 2, Role::follower, 3, {2}, 4, 3, 1, 3};
  BOOST_TEST(found(fresh.observe({c, d}), "log matching"));
  // Compaction past commit, a snapshot install disagreeing with a committed entry, and one
  // that takes the applied index back.
  InvariantChecker third;
  NodeState e{6, 2, Role::follower, 2, {2}, 4, 3, 2, 3};
  BOOST_TEST(found(third.observe({e}), "compacted past commit"));
  InvariantChecker fourth;
  NodeState f{7, 2, Role::follower, 3, {1, 1, 2}, 3, 0, 0, 0};
  BOOST_TEST(fourth.observe({f}).empty());
  fourth.installed_snapshot(8, 3, 1);
  BOOST_TEST(found(fourth.observe({f}), "snapshot disagrees with committed"));
  fourth.installed_snapshot(8, 3, 2);
  BOOST_TEST(fourth.observe({f}).empty());
  BOOST_TEST(fourth.applied(8, Entry{4, 2, bytes_of("y")}).empty());  // applies on from the snapshot
  fourth.installed_snapshot(8, 2, 1);
  BOOST_TEST(found(fourth.observe_roles({f}), "snapshot took applied back"));
}

// One randomized run: ticks, deliveries in random order, drops, duplicates, partitions,
// unsynced disks and crashes on 5 nodes; the checker runs after every event.
struct RandomizedStats {
  uint64_t max_term = 0;                // over all seeds
  uint64_t committed_under_faults = 0;  // entries committed before the final healing
  uint64_t truncations = 0;
  uint64_t restarts = 0;
  uint64_t leadership_transfers = 0;
};

void run_randomized(uint64_t seed, int events, RandomizedStats& stats) {
  Cluster cluster(5, seed);
  std::mt19937_64 random(seed);
  for (uint64_t id = 1; id <= 5; ++id) cluster.disk(id).auto_sync = random() % 2 == 0;
  int proposals = 0;
  for (int event = 0; event < events; ++event) {
    const uint64_t id = 1 + random() % 5;
    const uint64_t dice = random() % 100;
    if (dice < 25) {
      cluster.tick(id);
    } else if (dice < 70 && !cluster.network().empty()) {
      const size_t pick = random() % cluster.network().size();
      Message message = cluster.network()[pick];
      const bool duplicate = random() % 10 == 0;
      if (!duplicate) cluster.network().erase(cluster.network().begin() + pick);
      if (random() % 10 != 0) cluster.deliver(message);  // else: lost
    } else if (dice < 80) {
      cluster.sync(id);
      cluster.process(id);
    } else if (dice < 88) {
      const uint64_t leader = cluster.leader();
      if (leader != 0) cluster.propose(leader, "s" + std::to_string(seed) + "-" + std::to_string(proposals++));
    } else if (dice < 92) {
      cluster.cut(id, 1 + random() % 5);
    } else if (dice < 95) {
      cluster.heal();
    } else if (dice < 96) {
      cluster.restart(id);
      ++stats.restarts;
    } else if (dice < 97) {
      // §3.10 at random: to any node (itself and unknown ids are refused), under every fault.
      const uint64_t leader = cluster.leader();
      if (leader != 0 && cluster.node(leader).transfer_leadership(1 + random() % 6) == TransferStart::started) {
        ++stats.leadership_transfers;
        cluster.process(leader);
      }
    }
    if (!cluster.violations().empty()) break;
  }
  for (uint64_t id = 1; id <= 5; ++id) {
    stats.max_term = std::max(stats.max_term, cluster.node(id).current_term());
    stats.truncations += cluster.disk(id).truncations.size();
  }
  stats.committed_under_faults += cluster.node(1).commit_index();
  // Then heal, sync and let the cluster settle: it must elect a leader and commit again.
  cluster.heal();
  for (uint64_t id = 1; id <= 5; ++id) cluster.disk(id).auto_sync = true;
  for (int round = 0; round < 300 && cluster.violations().empty(); ++round) {
    for (uint64_t id = 1; id <= 5; ++id) cluster.sync(id);
    cluster.tick_all();
    cluster.settle();
  }
  const uint64_t leader = cluster.leader();
  BOOST_TEST_CONTEXT("seed " << seed) {
    BOOST_TEST(cluster.violations().empty());
    BOOST_REQUIRE(leader != 0u);
    const ProposeResult result = cluster.propose(leader, "final");
    BOOST_REQUIRE(result.accepted);
    for (int round = 0; round < 20; ++round) {
      cluster.tick_all();
      cluster.settle();
    }
    for (uint64_t id = 1; id <= 5; ++id) BOOST_TEST(cluster.node(id).commit_index() >= result.index);
    BOOST_TEST(cluster.violations().empty());
  }
}

BOOST_AUTO_TEST_CASE(random_faults_never_violate_invariants) {
  RandomizedStats stats;
  // KEYVAL_RAFT_SEEDS widens (a soak) or narrows (the sanitizer build in CI) the sweep.
  const char* seeds_text = std::getenv("KEYVAL_RAFT_SEEDS");
  const uint64_t seeds = seeds_text != nullptr ? std::strtoull(seeds_text, nullptr, 10) : 200;
  BOOST_REQUIRE(seeds > 0);
  for (uint64_t seed = 1; seed <= seeds; ++seed) run_randomized(seed, 3000, stats);
  BOOST_TEST_MESSAGE("randomized: " << seeds << " seeds, highest term " << stats.max_term << ", "
                                    << stats.committed_under_faults << " entries committed under faults, "
                                    << stats.truncations << " log truncations, " << stats.restarts << " restarts, "
                                    << stats.leadership_transfers << " leadership transfers started");
  // The faults must not be so harsh that nothing happens: the run has to exercise the core.
  BOOST_TEST(stats.committed_under_faults > seeds * 5);
  BOOST_TEST(stats.truncations > 0u);
  BOOST_TEST(stats.leadership_transfers > seeds);
}

// One randomized run with snapshots (§7): as run_randomized, on 3 or 5 nodes, plus frequent
// snapshots on random nodes at their applied index (small tails, so followers that fall behind
// need InstallSnapshot), transfers that fail, and restarts from a snapshot and a tail.
struct SnapshotStats {
  uint64_t snapshots = 0;
  uint64_t installs = 0;
  uint64_t transfers_failed = 0;
  uint64_t restarts = 0;
  uint64_t committed = 0;
};

uint64_t leader_or_one(Cluster& cluster) { return cluster.leader() != 0 ? cluster.leader() : 1; }

void run_randomized_snapshots(uint64_t seed, int events, SnapshotStats& stats) {
  const size_t nodes = seed % 2 == 0 ? 3 : 5;
  Cluster cluster(nodes, seed, [&](Config& config) {
    config.log_tail_entries = seed % 4;
    config.max_entries_per_append = 4;
  });
  std::mt19937_64 random(seed);
  cluster.transfer_fails = [&random](const Message&) { return random() % 4 == 0; };
  for (uint64_t id = 1; id <= nodes; ++id) cluster.disk(id).auto_sync = random() % 2 == 0;
  int proposals = 0;
  for (int event = 0; event < events && cluster.violations().empty(); ++event) {
    const uint64_t id = 1 + random() % nodes;
    const uint64_t dice = random() % 100;
    if (dice < 25) {
      cluster.tick(id);
    } else if (dice < 65 && !cluster.network().empty()) {
      const size_t pick = random() % cluster.network().size();
      Message message = cluster.network()[pick];
      if (random() % 10 != 0) cluster.network().erase(cluster.network().begin() + pick);  // else duplicated
      if (random() % 8 != 0) cluster.deliver(message);                                    // else lost
    } else if (dice < 75) {
      cluster.sync(id);
      cluster.process(id);
    } else if (dice < 85) {
      const uint64_t leader = cluster.leader();
      if (leader != 0) cluster.propose(leader, "z" + std::to_string(seed) + "-" + std::to_string(proposals++));
    } else if (dice < 93) {
      stats.snapshots += cluster.take_snapshot(id) ? 1 : 0;
    } else if (dice < 96) {
      cluster.cut(id, 1 + random() % nodes);
    } else if (dice < 98) {
      cluster.heal();
    } else if (dice < 99) {
      cluster.restart(id);
      ++stats.restarts;
    }
  }
  if (!cluster.violations().empty()) {
    BOOST_TEST_CONTEXT("seed " << seed) { BOOST_TEST(cluster.violations().empty()); }
    return;
  }
  // Then heal, sync and let the cluster settle: it must elect a leader and commit again.
  cluster.heal();
  cluster.transfer_fails = {};
  for (uint64_t id = 1; id <= nodes; ++id) cluster.disk(id).auto_sync = true;
  for (int round = 0; round < 100 && cluster.violations().empty(); ++round) {
    for (uint64_t id = 1; id <= nodes; ++id) cluster.sync(id);
    cluster.tick_all();
    cluster.settle();
    if (round >= 30 && cluster.leader() != 0) break;
  }
  BOOST_TEST_CONTEXT("seed " << seed) {
    BOOST_TEST(cluster.violations().empty());
    const uint64_t leader = cluster.leader();
    BOOST_REQUIRE(leader != 0u);
    const ProposeResult result = cluster.propose(leader, "final");
    BOOST_REQUIRE(result.accepted);
    for (int round = 0; round < 30; ++round) {
      cluster.tick_all();
      cluster.settle();
    }
    for (uint64_t id = 1; id <= nodes; ++id) {
      BOOST_TEST(cluster.node(id).commit_index() >= result.index);
      BOOST_TEST(cluster.applied_position(id).index >= result.index);
    }
    BOOST_TEST(cluster.violations().empty());
  }
  stats.installs += cluster.installs;
  stats.transfers_failed += cluster.transfers_failed;
  stats.committed += cluster.node(leader_or_one(cluster)).commit_index();
}

BOOST_AUTO_TEST_CASE(random_faults_with_snapshots_never_violate_invariants) {
  SnapshotStats stats;
  const char* seeds_text = std::getenv("KEYVAL_RAFT_SEEDS");
  const uint64_t seeds = seeds_text != nullptr ? std::strtoull(seeds_text, nullptr, 10) : 300;
  BOOST_REQUIRE(seeds > 0);
  for (uint64_t seed = 1; seed <= seeds; ++seed) run_randomized_snapshots(seed, 2500, stats);
  BOOST_TEST_MESSAGE("randomized with snapshots: " << seeds << " seeds, " << stats.snapshots << " snapshots taken, "
                                                   << stats.installs << " installed by followers, "
                                                   << stats.transfers_failed << " transfers failed, "
                                                   << stats.restarts << " restarts, " << stats.committed
                                                   << " entries committed");
  // The run must exercise what it claims: compaction, installs, failed transfers.
  BOOST_TEST(stats.snapshots > seeds * 5);
  BOOST_TEST(stats.installs > seeds);
  BOOST_TEST(stats.transfers_failed > 0u);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Membership (thesis §4.1, raft/membership.h) ----

std::ostream& boost_test_print_type(std::ostream& out, ConfChangeRefusal refusal) {
  return out << conf_change_refusal_name(refusal);
}

namespace {

Member peer(uint64_t id) {
  return Member{id, "peer-" + std::to_string(id) + ":7000", "client-" + std::to_string(id) + ":8000", false};
}

// `nodes` cores of which 1..voters form the configuration (Config::voters, the legacy base);
// the others join with an empty log and no configuration, as `keyval node --join` starts them.
std::function<void(Config&)> members_tweak(size_t voters, const std::function<void(Config&)>& more = {}) {
  return [voters, more](Config& config) {
    config.voters.clear();
    if (config.node_id <= voters) {
      for (uint64_t id = 1; id <= voters; ++id) config.voters.push_back(id);
    }
    if (more) more(config);
  };
}

std::vector<uint64_t> voters_of(const Core& core) { return voter_ids(core.configuration()); }

// Proposes a change on `leader` and settles until it is committed there.
void commit_change(Cluster& cluster, uint64_t leader, ConfChangeKind kind, uint64_t id) {
  ConfChangeResult result = cluster.node(leader).propose_conf_change(kind, peer(id));
  BOOST_REQUIRE_MESSAGE(result.refusal == ConfChangeRefusal::none,
                        conf_change_kind_name(kind) << " " << id << " refused: " << result.why);
  cluster.process(leader);
  cluster.settle();
  for (int round = 0; round < 50 && cluster.node(leader).commit_index() < result.index; ++round) {
    cluster.tick(leader);
    cluster.settle();
  }
  BOOST_REQUIRE(cluster.node(leader).commit_index() >= result.index);
  BOOST_REQUIRE(cluster.node(leader).configuration_index() == result.index);
}

// Ticks `leader` (settling after each tick) until it commits `index`; false if it never does.
bool tick_until_committed(Cluster& cluster, uint64_t leader, uint64_t index) {
  for (int tick = 0; tick < 30 && cluster.node(leader).commit_index() < index; ++tick) {
    cluster.tick(leader);
    cluster.settle();
  }
  return cluster.node(leader).commit_index() >= index;
}

// A proposal on `leader` is committed there after settling.
bool commits(Cluster& cluster, uint64_t leader, const std::string& payload) {
  ProposeResult proposed = cluster.propose(leader, payload);
  if (!proposed.accepted) return false;
  cluster.settle();
  return cluster.node(leader).commit_index() >= proposed.index;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(membership)

// A configuration entry's commit goes to every follower at once, not at the next tick: a
// member it removes must hear it to stop campaigning.
BOOST_AUTO_TEST_CASE(a_configuration_entrys_commit_reaches_followers_at_once) {
  Cluster cluster(3);
  BOOST_REQUIRE(cluster.elect(1));
  cluster.settle();
  for (int round = 0; round < 2; ++round) {
    cluster.tick(1);
    cluster.settle();
  }
  ConfChangeResult result = cluster.node(1).propose_conf_change(ConfChangeKind::remove, peer(3));
  BOOST_REQUIRE(result.refusal == ConfChangeRefusal::none);
  cluster.process(1);
  cluster.settle();  // no tick
  BOOST_REQUIRE(cluster.node(1).commit_index() >= result.index);
  BOOST_TEST(cluster.node(2).commit_index() >= result.index);
  BOOST_TEST(cluster.node(3).commit_index() >= result.index);
  BOOST_TEST(cluster.violations().empty());
}


BOOST_AUTO_TEST_CASE(learner_is_replicated_but_not_counted) {
  Cluster cluster(4, 1, members_tweak(3));
  BOOST_REQUIRE(cluster.elect(1));
  BOOST_TEST(!cluster.node(4).is_member());
  commit_change(cluster, 1, ConfChangeKind::add_learner, 4);
  BOOST_TEST(cluster.node(1).configuration().size() == 4u);
  BOOST_TEST((voters_of(cluster.node(1)) == std::vector<uint64_t>{1, 2, 3}));
  BOOST_TEST(cluster.node(1).progress(4) != nullptr);
  cluster.settle();
  // The learner holds the leader's log, knows itself a member, and does not vote.
  BOOST_TEST(cluster.node(4).log().last_index() == cluster.node(1).log().last_index());
  BOOST_TEST(cluster.node(4).is_member());
  BOOST_TEST(!cluster.node(4).is_voter());
  // With both other voters cut off, the learner's copy does not make a majority.
  const uint64_t commit = cluster.node(1).commit_index();
  for (uint64_t id : {2, 3}) {
    cluster.cut(1, id);
    cluster.cut(id, 1);
  }
  ProposeResult proposed = cluster.propose(1, "x");
  BOOST_REQUIRE(proposed.accepted);
  cluster.settle();
  BOOST_TEST(cluster.node(4).log().last_index() == proposed.index);
  BOOST_TEST(cluster.node(1).progress(4)->match_index == proposed.index);
  BOOST_TEST(cluster.node(1).commit_index() == commit);
  cluster.heal();
  BOOST_TEST(tick_until_committed(cluster, 1, proposed.index));
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(promoted_learner_counts_toward_commit) {
  Cluster cluster(4, 1, members_tweak(3));
  BOOST_REQUIRE(cluster.elect(1));
  commit_change(cluster, 1, ConfChangeKind::add_learner, 4);
  commit_change(cluster, 1, ConfChangeKind::promote, 4);
  BOOST_TEST((voters_of(cluster.node(1)) == std::vector<uint64_t>{1, 2, 3, 4}));
  cluster.settle();
  BOOST_TEST(cluster.node(4).is_voter());
  // Four voters, quorum three: leader, 2 and the promoted 4 commit without 3...
  cluster.isolate(3);
  BOOST_TEST(commits(cluster, 1, "with 4"));
  // ...and leader with 4 alone do not.
  cluster.isolate(2);
  BOOST_TEST(!commits(cluster, 1, "without 2"));
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(removed_follower_shrinks_quorum_and_gets_no_more_messages) {
  Cluster cluster(5);
  BOOST_REQUIRE(cluster.elect(1));
  commit_change(cluster, 1, ConfChangeKind::remove, 5);
  commit_change(cluster, 1, ConfChangeKind::remove, 4);
  BOOST_TEST((voters_of(cluster.node(1)) == std::vector<uint64_t>{1, 2, 3}));
  BOOST_TEST(cluster.node(1).progress(4) == nullptr);
  BOOST_TEST(cluster.node(1).progress(5) == nullptr);
  // Three voters left: 1 and 2 are a majority, with 3, 4 and 5 all gone.
  for (uint64_t id : {3, 4, 5}) cluster.isolate(id);
  BOOST_TEST(commits(cluster, 1, "two of three"));
  cluster.heal();
  cluster.sent.clear();
  for (int tick = 0; tick < 30; ++tick) {
    cluster.tick(1);
    cluster.settle();
  }
  BOOST_TEST(count_sent(cluster, [](const Message& m) { return m.from == 1 && m.to == 5; }) == 0u);
  BOOST_TEST(count_sent(cluster, [](const Message& m) { return m.from == 1 && m.to == 4; }) == 0u);
  BOOST_TEST(count_sent(cluster, [](const Message& m) { return m.from == 1 && m.to == 3; }) > 0u);
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(removed_node_does_not_campaign) {
  Cluster cluster(3);
  BOOST_REQUIRE(cluster.elect(1));
  commit_change(cluster, 1, ConfChangeKind::remove, 3);
  // Its Progress lasted until the removal committed, so node 3 holds the entry removing it.
  BOOST_TEST(!cluster.node(3).is_member());
  const uint64_t term = cluster.node(3).current_term();
  cluster.isolate(3);
  cluster.sent.clear();
  for (int tick = 0; tick < 100; ++tick) cluster.tick(3);
  BOOST_TEST(cluster.node(3).role() == Role::follower);
  BOOST_TEST(cluster.node(3).current_term() == term);
  BOOST_TEST(count_sent(cluster, [](const Message& m) { return m.from == 3; }) == 0u);
  // Nor does it vote, even for a candidate whose log is ahead of its own.
  Message request;
  request.type = MessageType::request_vote;
  request.from = 2;
  request.to = 3;
  request.term = term + 1;
  request.last_log_index = cluster.node(3).log().last_index() + 1;
  request.last_log_term = term + 1;
  cluster.heal();
  cluster.node(3).step(request);
  cluster.process(3);
  BOOST_TEST(cluster.node(3).voted_for() == 0u);
  BOOST_TEST(count_sent(cluster, [](const Message& m) { return m.from == 3 && m.vote_granted; }) == 0u);
}

BOOST_AUTO_TEST_CASE(a_voter_only_an_uncommitted_removal_leaves_out_campaigns_commits_it_and_steps_down) {
  // Simulator seed 417, reduced. Leader 4 of voters 1..4 appends the removal of node 1, which
  // only node 1 receives, and is lost. Nodes 2 and 3 lack the entry: node 1 refuses them (it
  // is outside its own latest configuration, so it grants no vote), and two votes of four
  // elect no one. Only node 1 can lead: it counts the votes of the configuration it holds
  // ({2, 3, 4}: 2 and 3 are a majority), commits its own removal, and steps down.
  Cluster cluster(4);
  BOOST_REQUIRE(cluster.elect(4));
  cluster.settle();
  for (uint64_t id : {2, 3}) cluster.cut(4, id);
  ConfChangeResult removal = cluster.node(4).propose_conf_change(ConfChangeKind::remove, peer(1));
  BOOST_REQUIRE_MESSAGE(removal.refusal == ConfChangeRefusal::none, removal.why);
  cluster.process(4);
  cluster.settle();
  BOOST_REQUIRE(cluster.node(1).log().last_index() == removal.index);
  BOOST_REQUIRE(!cluster.node(1).is_member());
  BOOST_REQUIRE(cluster.node(1).may_campaign());
  for (uint64_t id : {2, 3}) BOOST_REQUIRE(cluster.node(id).log().last_index() < removal.index);
  BOOST_REQUIRE(cluster.node(4).commit_index() < removal.index);
  const uint64_t old_term = cluster.node(4).current_term();
  cluster.isolate(4);

  cluster.sent.clear();
  uint64_t leader = 0;
  for (int round = 0; round < 300 && leader == 0; ++round) {
    for (uint64_t id : {1, 2, 3}) {
      cluster.tick(id);
      cluster.settle();
    }
    for (uint64_t id : {2, 3}) {
      if (cluster.node(id).role() == Role::leader && cluster.node(id).current_term() > old_term) leader = id;
    }
  }
  // Node 1 led (it sent appends in a newer term: it won, committed and stepped down within
  // one round of deliveries)...
  BOOST_TEST(count_sent(cluster, [&](const Message& m) {
               return m.from == 1 && m.type == MessageType::append_entries && m.term > old_term;
             }) > 0u);
  BOOST_TEST(cluster.node(1).role() == Role::follower);  // ...and stepped down
  BOOST_TEST(cluster.node(1).commit_index() >= removal.index);
  BOOST_TEST(!cluster.node(1).may_campaign());  // its removal committed: it campaigns no more
  BOOST_REQUIRE(leader != 0);  // a voter of {2, 3, 4} leads
  BOOST_TEST(cluster.node(leader).commit_index() >= removal.index);
  BOOST_TEST((voters_of(cluster.node(leader)) == std::vector<uint64_t>{2, 3, 4}));
  BOOST_TEST(commits(cluster, leader, "after the removal"));
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(joining_node_with_empty_log_neither_campaigns_nor_votes) {
  Cluster cluster(4, 1, members_tweak(3));
  for (int tick = 0; tick < 100; ++tick) cluster.tick(4);
  cluster.settle();
  BOOST_TEST(cluster.node(4).role() == Role::follower);
  BOOST_TEST(cluster.node(4).current_term() == 0u);
  Message request;
  request.type = MessageType::request_vote;
  request.from = 1;
  request.to = 4;
  request.term = 1;
  cluster.node(4).step(request);
  cluster.process(4);
  BOOST_TEST(cluster.node(4).voted_for() == 0u);
  BOOST_TEST(count_sent(cluster, [](const Message& m) { return m.from == 4 && m.vote_granted; }) == 0u);
}

BOOST_AUTO_TEST_CASE(each_refusal_is_reported_and_proposes_nothing) {
  Cluster cluster(4, 1, members_tweak(3, [](Config& config) { config.promote_lag_max = 2; }));
  // A leader that has not committed an entry of its term yet.
  cluster.drop_if = [](const Message& m) { return m.type == MessageType::append_entries_response; };
  BOOST_REQUIRE(cluster.elect(1));
  Core& leader = cluster.node(1);
  auto refusal = [&](ConfChangeKind kind, Member member) {
    const uint64_t last = leader.log().last_index();
    ConfChangeResult result = leader.propose_conf_change(kind, member);
    if (result.refusal != ConfChangeRefusal::none) {
      BOOST_TEST(leader.log().last_index() == last);
      BOOST_TEST(!result.why.empty());
    }
    cluster.process(1);
    return result.refusal;
  };
  BOOST_TEST(refusal(ConfChangeKind::add_learner, peer(4)) == ConfChangeRefusal::no_commit_in_term);
  cluster.drop_if = nullptr;
  BOOST_REQUIRE(tick_until_committed(cluster, 1, leader.log().last_index()));
  ConfChangeResult follower = cluster.node(2).propose_conf_change(ConfChangeKind::add_learner, peer(4));
  BOOST_TEST(follower.refusal == ConfChangeRefusal::not_leader);
  BOOST_TEST(follower.leader_hint == 1u);
  BOOST_TEST(refusal(ConfChangeKind::add_learner, Member{0, "a:1", "", false}) == ConfChangeRefusal::invalid);
  BOOST_TEST(refusal(ConfChangeKind::add_learner, Member{4, "", "", false}) == ConfChangeRefusal::invalid);
  BOOST_TEST(refusal(ConfChangeKind::bootstrap, peer(4)) == ConfChangeRefusal::invalid);
  BOOST_TEST(refusal(ConfChangeKind::add_learner, peer(2)) == ConfChangeRefusal::already_member);
  BOOST_TEST(refusal(ConfChangeKind::promote, peer(9)) == ConfChangeRefusal::not_member);
  BOOST_TEST(refusal(ConfChangeKind::remove, peer(9)) == ConfChangeRefusal::not_member);
  BOOST_TEST(refusal(ConfChangeKind::promote, peer(2)) == ConfChangeRefusal::not_learner);
  BOOST_TEST(refusal(ConfChangeKind::remove, peer(1)) == ConfChangeRefusal::remove_leader);
  // One change at a time: the learner's addition is not committed while the voters are cut off.
  cluster.isolate(1);
  BOOST_REQUIRE(refusal(ConfChangeKind::add_learner, peer(4)) == ConfChangeRefusal::none);
  BOOST_TEST(refusal(ConfChangeKind::remove, peer(3)) == ConfChangeRefusal::change_pending);
  cluster.heal();
  cluster.cut(1, 4);  // the learner gets nothing: it is behind
  cluster.cut(4, 1);
  BOOST_REQUIRE(tick_until_committed(cluster, 1, leader.configuration_index()));
  for (int i = 0; i < 5; ++i) cluster.propose(1, "p" + std::to_string(i));
  cluster.settle();
  BOOST_TEST(refusal(ConfChangeKind::promote, peer(4)) == ConfChangeRefusal::learner_behind);
  BOOST_TEST(leader.transfer_leadership(4) == TransferStart::not_voter);
  // Caught up, it may be promoted; a learner silent for an election timeout may not.
  cluster.heal();
  cluster.tick(1);
  cluster.settle();
  BOOST_REQUIRE(leader.progress(4)->match_index == leader.log().last_index());
  cluster.isolate(4);
  for (uint32_t tick = 0; tick < 10; ++tick) {  // election_timeout_ticks_min
    cluster.tick(1);
    cluster.settle();
  }
  BOOST_REQUIRE(leader.role() == Role::leader);
  BOOST_REQUIRE(leader.progress(4)->match_index == leader.log().last_index());
  BOOST_TEST(refusal(ConfChangeKind::promote, peer(4)) == ConfChangeRefusal::learner_behind);
  cluster.heal();
  cluster.tick(1);
  cluster.settle();
  // During a leadership transfer (to a voter that is cut off, so it stays under way).
  cluster.isolate(3);
  BOOST_REQUIRE(leader.transfer_leadership(3) == TransferStart::started);
  BOOST_TEST(refusal(ConfChangeKind::promote, peer(4)) == ConfChangeRefusal::transfer_in_progress);
  cluster.heal();
  for (int tick = 0; tick < 30 && leader.transfer_target() != 0; ++tick) cluster.tick(1);
  cluster.settle();
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(a_learner_without_the_configuration_that_names_it_is_not_promoted) {
  // Simulator seed 9506: with a short log, the lag bound (1,000 entries) let a learner with an
  // empty log be promoted. Not knowing it was a member, it granted no vote, and with one other
  // voter repairing no leader could be elected again.
  Cluster cluster(4, 1, members_tweak(3));
  BOOST_REQUIRE(cluster.elect(1));
  Core& leader = cluster.node(1);
  BOOST_REQUIRE(tick_until_committed(cluster, 1, leader.log().last_index()));
  // The learner gets the leader's empty appends and answers them, so the leader hears from it,
  // but no entry reaches it: its log stays empty, well within the lag bound of a short log.
  cluster.drop_if = [](const Message& m) { return m.to == 4 && !m.entries.empty(); };
  BOOST_REQUIRE(leader.propose_conf_change(ConfChangeKind::add_learner, peer(4)).refusal == ConfChangeRefusal::none);
  BOOST_REQUIRE(tick_until_committed(cluster, 1, leader.configuration_index()));
  BOOST_REQUIRE(leader.log().last_index() < Config{}.promote_lag_max);
  BOOST_REQUIRE(leader.progress(4)->match_index < leader.configuration_index());
  BOOST_REQUIRE(leader.progress(4)->ticks_since_heard < Config{}.election_timeout_ticks_min);
  ConfChangeResult early = leader.propose_conf_change(ConfChangeKind::promote, peer(4));
  BOOST_TEST(early.refusal == ConfChangeRefusal::learner_behind);
  BOOST_TEST(early.why.find("configuration entry") != std::string::npos);
  cluster.drop_if = nullptr;
  for (int tick = 0; tick < 5 && leader.progress(4)->match_index < leader.configuration_index(); ++tick) {
    cluster.tick(1);
    cluster.settle();
  }
  BOOST_REQUIRE(leader.progress(4)->match_index >= leader.configuration_index());
  BOOST_TEST(leader.propose_conf_change(ConfChangeKind::promote, peer(4)).refusal == ConfChangeRefusal::none);
  BOOST_TEST(cluster.violations().empty());
}

// Simulator seeds 152, 175 and 412 with --value-bytes 30720: once the leader's snapshot
// covered the entry that added the learner, no configuration entry followed it, and the
// configuration in use was the snapshot's own (configuration_index() 0). The check compared
// the learner's log against index 0, and a learner with an empty log was promoted: it granted
// no vote, and with a wiped voter and a repairing one no leader could be elected again.
BOOST_AUTO_TEST_CASE(a_learner_short_of_the_snapshot_that_holds_the_configuration_is_not_promoted) {
  Cluster cluster(4, 1, members_tweak(3, [](Config& config) { config.log_tail_entries = 0; }));
  BOOST_REQUIRE(cluster.elect(1));
  Core& leader = cluster.node(1);
  BOOST_REQUIRE(tick_until_committed(cluster, 1, leader.log().last_index()));
  // Neither entries nor a snapshot reach the learner.
  cluster.drop_if = [](const Message& m) {
    return m.to == 4 && (!m.entries.empty() || m.type == MessageType::install_snapshot);
  };
  BOOST_REQUIRE(leader.propose_conf_change(ConfChangeKind::add_learner, peer(4)).refusal == ConfChangeRefusal::none);
  BOOST_REQUIRE(tick_until_committed(cluster, 1, leader.configuration_index()));
  for (int i = 0; i < 3; ++i) BOOST_REQUIRE(cluster.propose(1, "after-" + std::to_string(i)).accepted);
  BOOST_REQUIRE(tick_until_committed(cluster, 1, leader.log().last_index()));
  cluster.tick(1);  // the commit reaches the followers
  cluster.settle();
  // The voters snapshot past the entry that added the learner and restart: each recovers the
  // configuration from its snapshot. Node 1 leads again.
  for (uint64_t id = 1; id <= 3; ++id) {
    BOOST_REQUIRE(cluster.take_snapshot(id));
    cluster.restart(id);
  }
  BOOST_REQUIRE(cluster.elect(1));
  Core& leader_again = cluster.node(1);
  BOOST_REQUIRE(leader_again.configuration_index() == 0u);  // the snapshot's configuration is in use
  BOOST_REQUIRE(leader_again.progress(4) != nullptr);
  // Entries now reach the learner but cannot be taken without the snapshot, which is lost: it
  // answers, rejecting them, then heartbeats while the leader waits on the snapshot.
  cluster.drop_if = [](const Message& m) { return m.to == 4 && m.type == MessageType::install_snapshot; };
  for (int tick = 0; tick < 4; ++tick) {
    cluster.tick(1);
    cluster.settle();
  }
  BOOST_REQUIRE(leader_again.progress(4)->match_index < leader_again.snapshot_index());
  BOOST_REQUIRE(leader_again.progress(4)->ticks_since_heard < Config{}.election_timeout_ticks_min);
  ConfChangeResult early = leader_again.propose_conf_change(ConfChangeKind::promote, peer(4));
  BOOST_TEST(early.refusal == ConfChangeRefusal::learner_behind);
  BOOST_TEST(early.why.find("of the snapshot at " + std::to_string(leader_again.snapshot_index())) != std::string::npos,
             early.why);
  // The snapshot reaches it: now it holds the configuration, and may be promoted.
  cluster.drop_if = nullptr;
  for (int tick = 0; tick < 30 && leader_again.progress(4)->match_index < leader_again.snapshot_index(); ++tick) {
    cluster.tick(1);
    cluster.settle();
  }
  BOOST_REQUIRE(leader_again.progress(4)->match_index >= leader_again.snapshot_index());
  BOOST_TEST(cluster.node(4).configuration().size() == 4u);
  BOOST_TEST(leader_again.propose_conf_change(ConfChangeKind::promote, peer(4)).refusal == ConfChangeRefusal::none);
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(removing_the_only_voter_is_refused) {
  Cluster cluster(2, 1, members_tweak(1));
  BOOST_REQUIRE(cluster.elect(1));
  cluster.settle();
  commit_change(cluster, 1, ConfChangeKind::add_learner, 2);
  ConfChangeResult result = cluster.node(1).propose_conf_change(ConfChangeKind::remove, peer(1));
  BOOST_TEST(result.refusal == ConfChangeRefusal::last_voter);
  // A learner may go.
  commit_change(cluster, 1, ConfChangeKind::remove, 2);
  BOOST_TEST(cluster.node(1).configuration().size() == 1u);
}

BOOST_AUTO_TEST_CASE(truncated_configuration_entry_rolls_back) {
  Cluster cluster(4, 1, members_tweak(3));
  BOOST_REQUIRE(cluster.elect(1));
  cluster.settle();
  // Leader 1, cut off, appends a change nobody else receives.
  cluster.isolate(1);
  ConfChangeResult result = cluster.node(1).propose_conf_change(ConfChangeKind::add_learner, peer(4));
  BOOST_REQUIRE(result.refusal == ConfChangeRefusal::none);
  cluster.process(1);
  BOOST_TEST(cluster.node(1).configuration_index() == result.index);
  BOOST_TEST(cluster.node(1).configuration().size() == 4u);
  // Node 2 or 3 leads term 2 without it; node 1 comes back and its entry is replaced.
  uint64_t next = 0;
  for (int tick = 0; tick < 200 && next == 0; ++tick) {
    cluster.tick(2);
    cluster.tick(3);
    cluster.settle();
    for (uint64_t id : {2, 3}) {
      if (cluster.node(id).role() == Role::leader) next = id;
    }
  }
  BOOST_REQUIRE(next != 0u);
  cluster.heal();
  for (int tick = 0; tick < 5; ++tick) {
    cluster.tick(next);
    cluster.settle();
  }
  BOOST_TEST(cluster.node(1).role() == Role::follower);
  BOOST_TEST(cluster.node(1).log().term_at(result.index) != result.term);
  BOOST_TEST(cluster.node(1).configuration_index() == 0u);
  BOOST_TEST((voters_of(cluster.node(1)) == std::vector<uint64_t>{1, 2, 3}));
  BOOST_TEST(cluster.node(1).configuration().size() == 3u);
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(configuration_survives_snapshot_install_and_recovery) {
  Cluster cluster(4, 1, members_tweak(3, [](Config& config) { config.log_tail_entries = 0; }));
  BOOST_REQUIRE(cluster.elect(1));
  cluster.isolate(4);
  commit_change(cluster, 1, ConfChangeKind::add_learner, 4);
  for (int i = 0; i < 3; ++i) BOOST_REQUIRE(commits(cluster, 1, "v" + std::to_string(i)));
  const std::vector<Member> expected = cluster.node(1).configuration();
  BOOST_REQUIRE(cluster.take_snapshot(1));
  BOOST_REQUIRE(cluster.node(1).log().start_index() > cluster.node(1).configuration_index());
  BOOST_TEST((cluster.node(1).configuration() == expected));
  // The learner, empty, can only get the snapshot: it carries the configuration.
  cluster.heal();
  cluster.sent.clear();
  for (int tick = 0; tick < 5; ++tick) {
    cluster.tick(1);
    cluster.settle();
  }
  auto installs = [](const Message& m) { return m.type == MessageType::install_snapshot && m.to == 4; };
  BOOST_REQUIRE(count_sent(cluster, installs) > 0u);
  const Message install = *std::find_if(cluster.sent.begin(), cluster.sent.end(), installs);
  BOOST_TEST((install.configuration == expected));
  BOOST_TEST(cluster.installs >= 1u);
  BOOST_TEST((cluster.node(4).configuration() == expected));
  BOOST_TEST(cluster.node(4).is_member());
  // Recovery: the snapshot's configuration comes back from its metadata...
  cluster.restart(4);
  BOOST_TEST((cluster.node(4).configuration() == expected));
  cluster.restart(1);
  BOOST_TEST((cluster.node(1).configuration() == expected));
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(recovered_configuration_entries_supersede_the_snapshot) {
  const std::vector<Member> snapshot_members{peer(1), peer(2), peer(3)};
  std::vector<Member> with_learner = snapshot_members;
  with_learner.push_back(peer(4));
  with_learner.back().learner = true;
  // A tail below the snapshot (its configuration entry is covered by the snapshot's metadata),
  // then entries after it, one of them adding a learner.
  RecoveredState state;
  state.metadata = Metadata{2, 0};
  for (uint64_t index = 1; index <= 8; ++index) state.entries.push_back(Entry{index, 2, bytes_of("e")});
  state.entries[2].type = EntryType::configuration;  // index 3: only node 9
  state.entries[2].set_payload(encode_configuration_entry({ConfChangeKind::bootstrap, 0, {peer(9)}}));
  state.entries[6].type = EntryType::configuration;  // index 7
  state.entries[6].set_payload(encode_configuration_entry({ConfChangeKind::add_learner, 4, with_learner}));
  state.snapshot_index = 5;
  state.snapshot_term = 2;
  state.applied_index = 5;
  state.configuration = snapshot_members;
  Config config = make_config(2, 0, 1);  // no Config::voters: the recovered configuration rules
  Core core(config, state);
  BOOST_TEST((core.configuration() == with_learner));
  BOOST_TEST(core.configuration_index() == 7u);
  BOOST_TEST((core.configuration_at(5) == snapshot_members));
  BOOST_TEST((core.configuration_at(6) == snapshot_members));
  BOOST_TEST((core.configuration_at(8) == with_learner));
  BOOST_TEST(core.is_voter());
}

BOOST_AUTO_TEST_CASE(three_to_five_to_three_commits_throughout) {
  Cluster cluster(5, 1, members_tweak(3));
  BOOST_REQUIRE(cluster.elect(1));
  int proposal = 0;
  auto step = [&](ConfChangeKind kind, uint64_t id) {
    commit_change(cluster, 1, kind, id);
    BOOST_TEST(commits(cluster, 1, "after " + std::to_string(++proposal)));
  };
  step(ConfChangeKind::add_learner, 4);
  step(ConfChangeKind::promote, 4);
  step(ConfChangeKind::add_learner, 5);
  step(ConfChangeKind::promote, 5);
  BOOST_TEST((voters_of(cluster.node(1)) == std::vector<uint64_t>{1, 2, 3, 4, 5}));
  step(ConfChangeKind::remove, 5);
  step(ConfChangeKind::remove, 4);
  BOOST_TEST((voters_of(cluster.node(1)) == std::vector<uint64_t>{1, 2, 3}));
  cluster.settle();
  for (uint64_t id = 2; id <= 3; ++id) BOOST_TEST((cluster.node(id).configuration() == cluster.node(1).configuration()));
  BOOST_TEST(!cluster.node(4).is_member());
  BOOST_TEST(!cluster.node(5).is_member());
  // Every entry came out in order on the leader, configuration entries included.
  const std::vector<Entry>& applied = cluster.applied(1);
  BOOST_TEST(std::count_if(applied.begin(), applied.end(),
                           [](const Entry& e) { return e.type == EntryType::configuration; }) == 6);
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(two_changes_at_once_are_refused_and_the_checker_names_the_planted_bug) {
  for (const bool planted : {false, true}) {
    BOOST_TEST_CONTEXT("planted " << planted) {
      Cluster cluster(5, 1, [planted](Config& config) {
        if (planted) config.planted_bug = PlantedBug::conf_changes_at_once;
      });
      BOOST_REQUIRE(cluster.elect(1));
      BOOST_REQUIRE(commits(cluster, 1, "first"));
      // Nodes 4 and 5 hear nothing more: neither removal can commit yet.
      cluster.isolate(4);
      cluster.isolate(5);
      ConfChangeResult first = cluster.node(1).propose_conf_change(ConfChangeKind::remove, peer(4));
      BOOST_REQUIRE(first.refusal == ConfChangeRefusal::none);
      ConfChangeResult second = cluster.node(1).propose_conf_change(ConfChangeKind::remove, peer(5));
      cluster.process(1);
      if (!planted) {
        BOOST_TEST(second.refusal == ConfChangeRefusal::change_pending);
        BOOST_TEST(cluster.violations().empty());
      } else {
        BOOST_TEST(second.refusal == ConfChangeRefusal::none);
        bool named = false;
        for (const std::string& violation : cluster.violations()) {
          named = named || violation.find("two configuration changes at once") != std::string::npos;
        }
        BOOST_TEST(named);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(follower_regression_is_flagged_and_match_index_kept_for_commit) {
  Cluster cluster(3);
  BOOST_REQUIRE(cluster.elect(1));
  for (int i = 0; i < 4; ++i) BOOST_REQUIRE(commits(cluster, 1, "w" + std::to_string(i)));
  const uint64_t acknowledged = cluster.node(1).progress(3)->match_index;
  BOOST_REQUIRE(acknowledged == cluster.node(1).log().last_index());
  // Node 3 loses its data directory; it keeps getting the leader's messages.
  cluster.wipe(3);
  cluster.isolate(2);
  bool flagged = false;
  uint64_t regressed_to = 99;
  for (int tick = 0; tick < 3 && !flagged; ++tick) {
    cluster.tick(1);
    while (!flagged && cluster.deliver_next()) {
      const Progress* progress = cluster.node(1).progress(3);
      if (progress != nullptr && progress->regressed) {
        flagged = true;
        regressed_to = progress->regressed_to;
      }
    }
  }
  BOOST_REQUIRE(flagged);
  BOOST_TEST(regressed_to == 0u);
  BOOST_TEST(cluster.node(1).progress(3)->regressions == 1u);
  BOOST_TEST(cluster.node(1).progress(3)->match_index == acknowledged);  // not lowered
  cluster.settle();
  // Caught up again from its empty log: the flag clears, the count stays for the host.
  BOOST_TEST(!cluster.node(1).progress(3)->regressed);
  BOOST_TEST(cluster.node(1).progress(3)->regressions == 1u);
  BOOST_TEST(cluster.node(3).log().last_index() == cluster.node(1).log().last_index());
  BOOST_TEST(commits(cluster, 1, "after"));
  // The checker sees the wiped follower's log behind what it acknowledged until the leader
  // hears of it; that is the wipe (outside Raft's fault model), and nothing else may show.
  for (const std::string& violation : cluster.violations()) {
    BOOST_TEST(violation.find("match index past the follower's log") != std::string::npos);
    BOOST_TEST(violation.find("for node 3") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(learner_that_missed_its_promotion_still_answers_votes) {
  // Voter 1 promotes learner 2, which does not receive the entry; 1 loses its lease (CheckQuorum
  // now counts 2) and steps down. Only 1 can lead, and it needs 2's vote: 2, a learner in its own
  // log, must grant it or the cluster stays without a leader.
  Cluster cluster(2, 1, members_tweak(1));
  BOOST_REQUIRE(cluster.elect(1));
  commit_change(cluster, 1, ConfChangeKind::add_learner, 2);
  cluster.isolate(2);
  BOOST_REQUIRE(cluster.node(1).propose_conf_change(ConfChangeKind::promote, peer(2)).refusal ==
                ConfChangeRefusal::none);
  cluster.process(1);
  for (int tick = 0; tick < 30 && cluster.node(1).role() == Role::leader; ++tick) cluster.tick(1);
  BOOST_REQUIRE(cluster.node(1).role() != Role::leader);
  cluster.settle();  // everything sent to 2 meanwhile is lost
  BOOST_REQUIRE(!cluster.node(2).is_voter());
  cluster.heal();
  for (int tick = 0; tick < 30; ++tick) cluster.tick(2);  // its leader's lease runs out too
  BOOST_TEST(cluster.node(2).role() == Role::follower);     // a learner: no campaign of its own
  BOOST_TEST(cluster.elect(1));
  cluster.settle();
  BOOST_TEST(cluster.node(2).is_voter());
  BOOST_TEST(commits(cluster, 1, "again"));
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(random_changes_under_loss_and_reordering_keep_every_invariant) {
  // Seeds 1-40 by default: changes proposed at random (ignoring refusals) while 10% of messages
  // are lost, the network reorders, nodes restart and take snapshots; the checker runs after
  // every event, and the cluster recovers at the end.
  uint64_t changes = 0;
  uint64_t installs = 0;
  // KEYVAL_RAFT_SEEDS widens or narrows the sweep, as for random_faults_never_violate_invariants.
  const char* seeds_text = std::getenv("KEYVAL_RAFT_SEEDS");
  const uint64_t seeds = seeds_text != nullptr ? std::strtoull(seeds_text, nullptr, 10) : 40;
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    BOOST_TEST_CONTEXT("seed " << seed) {
      // A short log tail, so lagging members (a new learner above all) need InstallSnapshot.
      Cluster cluster(5, seed, members_tweak(3, [](Config& config) { config.log_tail_entries = 2; }));
      std::mt19937_64 random(seed);
      cluster.drop_if = [&random](const Message&) { return random() % 10 == 0; };
      const ConfChangeKind kinds[] = {ConfChangeKind::add_learner, ConfChangeKind::promote, ConfChangeKind::remove};
      for (int step = 0; step < 1500; ++step) {
        cluster.tick(1 + random() % 5);
        std::deque<Message>& network = cluster.network();
        if (network.size() > 1) std::swap(network.front(), network[random() % network.size()]);
        for (int delivered = 0; delivered < 4 && cluster.deliver_next(); ++delivered) {
        }
        // Crashes (recovery from what was synced, with the snapshot's configuration) and snapshots.
        if (random() % 100 == 0) cluster.restart(1 + random() % 5);
        if (random() % 50 == 0) cluster.take_snapshot(1 + random() % 5);
        const uint64_t leader = cluster.leader();
        if (leader == 0) continue;
        if (random() % 8 == 0) cluster.propose(leader, "s" + std::to_string(step));
        if (random() % 40 == 0) {
          ConfChangeResult result =
              cluster.node(leader).propose_conf_change(kinds[random() % 3], peer(1 + random() % 5));
          changes += result.refusal == ConfChangeRefusal::none;
          cluster.process(leader);
        }
      }
      // Faults end: a leader is elected among the voters and commits again.
      cluster.drop_if = nullptr;
      uint64_t leader = 0;
      for (int round = 0; round < 300 && leader == 0; ++round) {
        cluster.tick_all();
        cluster.settle();
        leader = cluster.leader();
      }
      BOOST_REQUIRE(leader != 0u);
      const ProposeResult last = cluster.propose(leader, "end");
      BOOST_REQUIRE(last.accepted);
      BOOST_TEST(tick_until_committed(cluster, leader, last.index));
      BOOST_TEST(cluster.violations().empty());
      installs += cluster.installs;
    }
  }
  BOOST_TEST_MESSAGE("configuration changes proposed: " << changes << ", snapshots installed: " << installs);
  BOOST_TEST(changes >= seeds);  // the sweep exercised configuration changes, not only refusals
  BOOST_TEST(installs > 0u);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- A voter that lost its data (raft/probation.cc, docs/MEMBERSHIP.md) ----

namespace {

std::vector<RecoveredState> all_bootstrapped(size_t nodes) {
  std::vector<uint64_t> voters;
  for (uint64_t id = 1; id <= nodes; ++id) voters.push_back(id);
  return std::vector<RecoveredState>(nodes, Cluster::bootstrapped_state(voters));
}

bool probation_answer_counted(const Message& message) {
  return message.type == MessageType::probation_answer && message.probation_counted;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(probation)

BOOST_AUTO_TEST_CASE(a_vote_counts_only_once_its_voter_is_recorded_durably) {
  Cluster cluster(3);
  cluster.disk(1).auto_sync = false;
  // Node 1 campaigns (PreVote first, which records nothing), its candidacy synced by hand.
  for (int tick = 0; tick < 40 && cluster.node(1).role() != Role::candidate; ++tick) {
    cluster.tick(1);
    if (cluster.node(1).role() == Role::pre_candidate) cluster.settle();
  }
  BOOST_REQUIRE(cluster.node(1).role() == Role::candidate);
  cluster.sync(1);
  cluster.process(1);
  cluster.settle();  // the vote requests go out; 2 and 3 grant
  BOOST_TEST(cluster.node(1).role() == Role::candidate);  // granted, but 2 and 3 are not recorded yet
  BOOST_TEST(cluster.disk(1).synced_metadata.counted.empty());
  BOOST_TEST(!cluster.disk(1).written_metadata.counted.empty());
  cluster.sync(1);
  cluster.process(1);
  BOOST_TEST(cluster.node(1).role() == Role::leader);
  BOOST_TEST(!cluster.disk(1).synced_metadata.counted.empty());
}

BOOST_AUTO_TEST_CASE(an_acknowledgement_counts_only_once_its_follower_is_recorded_durably) {
  Cluster cluster(3);
  BOOST_REQUIRE(cluster.elect(1));
  cluster.settle();
  BOOST_REQUIRE(commits(cluster, 1, "a"));
  // Both followers acknowledged: both recorded, durably, by the leader.
  BOOST_TEST((cluster.disk(1).synced_metadata.counted == std::vector<uint64_t>{2, 3}));
  // A fresh leader that never counted anyone: its first commit waits for the record's sync.
  Cluster fresh(3);
  fresh.cut(2, 1);  // 1 wins without 2's vote reaching it: only 3 is recorded by the election
  BOOST_REQUIRE(fresh.elect(1));
  fresh.heal();
  fresh.settle();
  BOOST_REQUIRE(!fresh.disk(1).synced_metadata.has_counted(2));
  fresh.disk(1).auto_sync = false;
  fresh.isolate(3);
  const ProposeResult put = fresh.propose(1, "b");
  fresh.sync(1);
  fresh.process(1);
  fresh.settle();
  for (int tick = 0; tick < 10 && fresh.node(1).progress(2)->match_index < put.index; ++tick) {
    fresh.tick(1);  // the heartbeat probes 2 again (its answers were lost before the heal)
    fresh.settle();
  }
  BOOST_REQUIRE(fresh.node(1).progress(2)->match_index >= put.index);  // 2 acknowledged...
  BOOST_TEST(fresh.node(1).commit_index() < put.index);  // ...but is not recorded durably yet
  fresh.sync(1);
  fresh.process(1);
  BOOST_TEST(fresh.node(1).commit_index() >= put.index);
  BOOST_TEST(fresh.disk(1).synced_metadata.has_counted(2));
  BOOST_TEST(fresh.violations().empty());
}

BOOST_AUTO_TEST_CASE(a_new_cluster_leaves_probation_once_every_voter_answered) {
  Cluster cluster(3, 1, {}, all_bootstrapped(3));
  for (uint64_t id = 1; id <= 3; ++id) BOOST_REQUIRE(cluster.node(id).in_probation());
  // Node 3 has not started: nobody may vote, since 3 could be the one that counted them.
  cluster.isolate(3);
  for (int tick = 0; tick < 60; ++tick) {
    cluster.tick(1);
    cluster.tick(2);
    cluster.settle();
  }
  BOOST_TEST(cluster.leader() == 0u);
  BOOST_TEST(cluster.node(1).in_probation());
  BOOST_TEST(cluster.node(2).in_probation());
  cluster.heal();
  for (int tick = 0; tick < 60 && cluster.leader() == 0; ++tick) {
    cluster.tick_all();
    cluster.settle();
  }
  BOOST_TEST(cluster.leader() != 0u);
  for (uint64_t id = 1; id <= 3; ++id) {
    BOOST_TEST(!cluster.node(id).in_probation());
    BOOST_TEST(!cluster.disk(id).synced_metadata.probation);
    BOOST_TEST(cluster.node(id).refusal().empty());
  }
  BOOST_TEST(commits(cluster, cluster.leader(), "first"));
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(a_wiped_voter_restarted_with_bootstrap_refuses_and_never_votes) {
  Cluster cluster(3, 1, {}, all_bootstrapped(3));
  for (int tick = 0; tick < 60 && cluster.leader() == 0; ++tick) {
    cluster.tick_all();
    cluster.settle();
  }
  const uint64_t leader = cluster.leader();
  BOOST_REQUIRE(leader != 0);
  for (int i = 0; i < 3; ++i) BOOST_REQUIRE(commits(cluster, leader, "w" + std::to_string(i)));
  const uint64_t wiped = leader == 3 ? 2 : 3;
  cluster.wipe_to_bootstrap(wiped);
  BOOST_REQUIRE(cluster.node(wiped).in_probation());
  const size_t sent_before = cluster.sent.size();
  for (int tick = 0; tick < 10; ++tick) {
    cluster.tick(wiped);
    cluster.settle();
  }
  // The leader counted it before, and says so; the wiped node refuses for good.
  BOOST_TEST(count_sent(cluster, probation_answer_counted) >= 1u);
  BOOST_TEST(!cluster.node(wiped).refusal().empty());
  BOOST_TEST(cluster.node(wiped).refusal().find("counted") != std::string::npos);
  BOOST_TEST(cluster.node(wiped).in_probation());
  // Whatever happens next, it grants no vote and acknowledges nothing.
  const uint64_t other = 6 - leader - wiped;
  cluster.isolate(leader);
  for (int tick = 0; tick < 100; ++tick) {
    cluster.tick(other);
    cluster.tick(wiped);
    cluster.settle();
  }
  for (size_t i = sent_before; i < cluster.sent.size(); ++i) {
    const Message& message = cluster.sent[i];
    if (message.from != wiped) continue;
    BOOST_TEST((message.type == MessageType::probation_query), "node " << wiped << " sent "
                                                                      << message_type_name(message.type));
  }
  BOOST_TEST(cluster.node(other).role() != Role::leader);  // without the wiped node's vote: no majority
  BOOST_TEST(cluster.violations().empty());
}

BOOST_AUTO_TEST_CASE(probation_refuses_when_the_voters_changed_since_bootstrap) {
  Config config = make_config(3, 3, 1);
  Core core(config, Cluster::bootstrapped_state({1, 2, 3}));
  BOOST_REQUIRE(core.in_probation());
  Message answer;
  answer.type = MessageType::probation_answer;
  answer.from = 1;
  answer.to = 3;
  answer.term = 9;
  answer.configuration = {Member{1, "a:1"}, Member{2, "b:1"}, Member{4, "d:1"}};
  core.step(answer);
  BOOST_TEST(!core.refusal().empty());
  BOOST_TEST(core.refusal().find("voters 1,2,4") != std::string::npos);
  BOOST_TEST(core.in_probation());
}

BOOST_AUTO_TEST_CASE(a_single_voter_leaves_probation_by_itself) {
  Cluster cluster(1, 1, {}, all_bootstrapped(1));
  BOOST_REQUIRE(cluster.node(1).in_probation());
  BOOST_REQUIRE(cluster.elect(1));
  BOOST_TEST(!cluster.disk(1).synced_metadata.probation);
  BOOST_TEST(commits(cluster, 1, "alone"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(repair)

// A request_vote to `to` from `from` for the next term, with a log longer than anyone's.
Message vote_request_to(Cluster& cluster, uint64_t to, uint64_t from) {
  Message request;
  request.type = MessageType::request_vote;
  request.from = from;
  request.to = to;
  request.term = cluster.node(to).current_term() + 1;
  request.last_log_index = 1000;
  request.last_log_term = cluster.node(to).current_term() + 1;
  return request;
}

bool vote_granted_by(Cluster& cluster, uint64_t voter) {
  for (const Message& message : cluster.sent) {
    if (message.from == voter && message.type == MessageType::request_vote_response && message.vote_granted) return true;
  }
  return false;
}

BOOST_AUTO_TEST_CASE(repairing_node_refuses_votes_and_never_campaigns) {
  for (bool planted : {false, true}) {
    BOOST_TEST_CONTEXT((planted ? "with" : "without") << " the planted bug vote-while-repairing") {
      Cluster cluster(3, 1, [&](Config& config) {
        if (planted) config.planted_bug = PlantedBug::vote_while_repairing;
      });
      BOOST_REQUIRE(cluster.elect(1));
      for (int i = 0; i < 5; ++i) BOOST_REQUIRE(commits(cluster, 1, "w" + std::to_string(i)));
      cluster.restart_repairing(3, 2);
      BOOST_REQUIRE(cluster.node(3).in_repair());
      cluster.isolate(3);
      const uint64_t term = cluster.node(3).current_term();
      for (int tick = 0; tick < 100; ++tick) cluster.tick(3);
      BOOST_TEST((cluster.node(3).role() == Role::follower), "a repairing node never campaigns");
      BOOST_TEST(cluster.node(3).current_term() == term);
      cluster.sent.clear();
      cluster.node(3).step(vote_request_to(cluster, 3, 2));
      cluster.process(3);
      BOOST_TEST(vote_granted_by(cluster, 3) == planted);
      BOOST_TEST(cluster.node(3).in_repair());
    }
  }
}

BOOST_AUTO_TEST_CASE(repairing_node_leaves_repair_only_once_it_matches_a_leader_through_its_commit) {
  Cluster cluster(3);
  BOOST_REQUIRE(cluster.elect(1));
  for (int i = 0; i < 8; ++i) BOOST_REQUIRE(commits(cluster, 1, "w" + std::to_string(i)));
  cluster.restart_repairing(3, 3);
  BOOST_REQUIRE(cluster.node(3).in_repair());
  BOOST_REQUIRE(cluster.node(3).log().last_index() < cluster.node(1).commit_index());
  // Deliver one message at a time: whenever node 3 is out of repair, its log holds the
  // leader's commit index with the leader's term, and it said so durably at the end.
  bool left = false;
  for (int round = 0; round < 20 && !left; ++round) {
    cluster.tick(1);
    while (cluster.deliver_next()) {
      if (cluster.node(3).in_repair()) continue;
      left = true;
      const Core& leader = cluster.node(1);
      const Core& repaired = cluster.node(3);
      BOOST_TEST(repaired.log().last_index() >= leader.commit_index());
      BOOST_TEST(repaired.log().term_at(leader.commit_index()) == leader.current_term());
      for (uint64_t index = repaired.log().start_index() + 1; index <= leader.commit_index(); ++index) {
        BOOST_TEST(repaired.log().term_at(index) == leader.log().term_at(index));
      }
    }
  }
  BOOST_TEST(left);
  cluster.settle();
  BOOST_TEST(!cluster.disk(3).synced_metadata.repairing, "leaving repair is written down");
  // Node 2 repairing and node 1 cut off: node 3 finds no majority (node 2 votes for no one):
  // unavailable, never elected on a vote that rests on lost data.
  cluster.restart_repairing(2, 3);
  cluster.isolate(1);
  BOOST_TEST(!cluster.elect(3));
  BOOST_TEST(cluster.node(2).in_repair());
  cluster.heal();
  for (int tick = 0; tick < 200 && (cluster.leader() == 0 || cluster.node(2).in_repair()); ++tick) {
    cluster.tick_all();
    cluster.settle();
  }
  const uint64_t leader = cluster.leader();
  BOOST_REQUIRE(leader != 0u);
  BOOST_TEST(!cluster.node(2).in_repair());
  BOOST_TEST(commits(cluster, leader, "after"));
}

// Simulator seed 20741: a follower acknowledged entry g, then lost it with the last record of
// its WAL, and restarted repairing, knowing only the log before g. Its success for g, sent
// before the crash, was still in flight. Once it has left its repair, that success must not
// make the leader count it for g again (Progress::fence), and it leaves its repair only after
// the leader heard from its new life.
BOOST_AUTO_TEST_CASE(a_success_from_before_a_repairing_restart_does_not_count_again) {
  Cluster cluster(3);
  BOOST_REQUIRE(cluster.elect(1));
  for (int i = 0; i < 3; ++i) BOOST_REQUIRE(commits(cluster, 1, "w" + std::to_string(i)));
  std::vector<Message> held;
  cluster.drop_if = [&](const Message& m) {
    if (m.from != 3 || m.type != MessageType::append_entries_response || !m.success) return false;
    held.push_back(m);  // node 3's acknowledgements stay in flight
    return true;
  };
  const ProposeResult g = cluster.propose(1, "g");
  BOOST_REQUIRE(g.accepted);
  cluster.settle();
  BOOST_REQUIRE(cluster.node(3).log().last_index() >= g.index);
  BOOST_REQUIRE(!held.empty() && held.back().match_index >= g.index);
  const Message stale = held.back();
  cluster.drop_if = nullptr;
  cluster.restart_repairing(3, g.index - 1, /*knows_it_held=*/false);
  BOOST_REQUIRE(cluster.node(3).in_repair());
  bool left = false;
  for (int round = 0; round < 10 && !left; ++round) {
    cluster.tick(1);
    while (!left && cluster.deliver_next()) {
      if (cluster.node(3).in_repair()) continue;
      left = true;
      BOOST_TEST(cluster.node(1).progress(3)->fenced_incarnation != 0u, "the leader heard the new life first");
      cluster.node(1).step(stale);  // the old success arrives now
      cluster.process(1);
      BOOST_TEST(cluster.node(1).progress(3)->replicated_index() <= cluster.node(3).log().last_index(),
                 "counted for " << cluster.node(1).progress(3)->replicated_index() << ", holds through "
                                << cluster.node(3).log().last_index());
    }
  }
  BOOST_TEST(left);
  cluster.settle();
  BOOST_TEST(commits(cluster, 1, "after"));
}

BOOST_AUTO_TEST_CASE(leader_counts_a_repairing_follower_only_for_what_it_holds) {
  Cluster cluster(5);
  BOOST_REQUIRE(cluster.elect(1));
  BOOST_REQUIRE(commits(cluster, 1, "a"));
  // Entry g reaches only node 3, which acknowledges it: 2 of 5, not committed.
  for (uint64_t id : {2, 4, 5}) cluster.isolate(id);
  const ProposeResult g = cluster.propose(1, "g");
  BOOST_REQUIRE(g.accepted);
  cluster.settle();
  BOOST_REQUIRE(cluster.node(1).progress(3)->match_index >= g.index);
  BOOST_REQUIRE(cluster.node(1).commit_index() < g.index);
  // Node 3 loses g (an unreadable WAL record) and comes back repairing; the leader learns its
  // log went backwards.
  cluster.restart_repairing(3, g.index - 1);
  for (int tick = 0; tick < 10 && !cluster.node(1).progress(3)->regressed; ++tick) {
    cluster.tick(1);
    cluster.settle();
  }
  // Node 2 comes back: its acknowledgement of g plus the leader's make 2 real copies; node 3's
  // old acknowledgement must not make a third. Whenever g is committed, 3 nodes hold it.
  cluster.heal();
  for (uint64_t id : {4, 5}) cluster.isolate(id);
  const uint64_t term = cluster.node(1).current_term();
  for (int round = 0; round < 10; ++round) {
    cluster.tick(1);
    while (cluster.deliver_next()) {
      if (cluster.node(1).commit_index() < g.index) continue;
      int copies = 0;
      for (uint64_t id : {1, 2, 3}) {
        const Log& log = cluster.node(id).log();
        copies += log.last_index() >= g.index && log.term_at(g.index) == term;
      }
      BOOST_REQUIRE_MESSAGE(copies >= 3, "g committed with " << copies << " copies");
    }
  }
  BOOST_TEST(cluster.node(1).commit_index() >= g.index);
  BOOST_TEST(!cluster.node(3).in_repair());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace raft
}  // namespace keyval

