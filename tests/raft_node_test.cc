// Goal: the raft node actor drives raft::Core over real persistence: three nodes in one
// process elect one leader, commit and apply a proposal on all of them, answer a follower's
// proposal with the leader hint, keep committing after one node is stopped, and hand
// leadership over on request (§3.10), answering once it moved.
// Method: one real (non-testing) actor system per node, each over its own temporary data
// directory through BlockingPersistence; nodes talk through the in-process transport
// (peer handles); the test polls with real-time deadlines.
#define BOOST_TEST_MODULE raft_node_test
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "actors/raft_node.h"
#include "actors/transport.h"
#include "tests/support/temp_dir.h"

using namespace keyval;
using keyval::testing::TempDir;
using Clock = std::chrono::steady_clock;

namespace {

struct NodeStatus {
  raft::Role role = raft::Role::follower;
  uint64_t leader = 0, term = 0, commit = 0, durable = 0;
};

struct Proposal {
  bool accepted = false;
  uint64_t index = 0, term = 0, leader_hint = 0;
};

std::vector<uint8_t> bytes_of(const std::string& text) { return std::vector<uint8_t>(text.begin(), text.end()); }

struct Node {
  Node(uint64_t id, const std::vector<uint64_t>& voters) : id(id) {
    add_message_types(config);
    system = std::make_unique<caf::actor_system>(config);
    PersistenceConfig persistence_config;
    persistence_config.data_directory = dir.path();
    persistence_config.log = [](const std::string&) {};
    auto started = BlockingPersistence::start(*system, persistence_config);
    BOOST_REQUIRE_MESSAGE(started.is_ok(), started.status().to_string());
    persistence = std::move(started).value();

    raft::RecoveredState recovered;
    recovered.metadata = persistence->recovered().metadata;
    const auto& bounds = persistence->recovered();
    if (bounds.last_index >= bounds.first_index) {
      auto entries = persistence->load_entries(bounds.first_index, bounds.last_index);
      BOOST_REQUIRE_MESSAGE(entries.is_ok(), entries.status().to_string());
      recovered.entries = std::move(entries).value();
    }

    RaftNodeConfig node_config;
    node_config.raft.node_id = id;
    node_config.raft.voters = voters;
    node_config.raft.random_seed = 1000 + id;
    node_config.tick_interval = std::chrono::milliseconds(10);
    transport = spawn_local_transport(*system);
    node_config.transport = transport;
    node_config.apply = [this](const std::vector<Entry>& entries) {
      std::lock_guard<std::mutex> lock(mutex);
      for (const Entry& entry : entries) applied.push_back(entry);
    };
    raft = spawn_raft_node(*system, std::move(node_config), persistence->persistence(), std::move(recovered));
  }

  ~Node() { stop(); }

  void stop() {
    if (stopped) return;
    stopped = true;
    caf::scoped_actor self{*system};
    self->send_exit(raft, caf::exit_reason::user_shutdown);
    self->send_exit(transport, caf::exit_reason::user_shutdown);
    self->wait_for(raft, transport);
    persistence->stop();
  }

  std::optional<NodeStatus> status() {
    if (stopped) return std::nullopt;
    caf::scoped_actor self{*system};
    std::optional<NodeStatus> result;
    self->request(raft, std::chrono::seconds(1), raft_status_atom::value)
        .receive(
            [&](uint64_t role, uint64_t leader, uint64_t term, uint64_t commit, uint64_t durable) {
              result = NodeStatus{static_cast<raft::Role>(role), leader, term, commit, durable};
            },
            [&](caf::error&) {});
    return result;
  }

  std::optional<Proposal> propose(const std::string& payload) {
    caf::scoped_actor self{*system};
    std::optional<Proposal> result;
    self->request(raft, std::chrono::seconds(1), raft_propose_atom::value, bytes_of(payload))
        .receive([&](bool accepted, uint64_t index, uint64_t term,
                     uint64_t hint) { result = Proposal{accepted, index, term, hint}; },
                 [&](caf::error&) {});
    return result;
  }

  struct Transfer {
    TransferOutcome outcome;
    uint64_t leader, term;
    std::string why;
  };
  // (leader_transfer_atom, target), waiting for the answer (the transfer's end).
  std::optional<Transfer> transfer(uint64_t target) {
    caf::scoped_actor self{*system};
    std::optional<Transfer> result;
    self->request(raft, std::chrono::seconds(3), leader_transfer_atom_v, target)
        .receive([&](uint64_t outcome, uint64_t leader, uint64_t term,
                     std::string& why) { result = Transfer{static_cast<TransferOutcome>(outcome), leader, term, why}; },
                 [&](caf::error&) {});
    return result;
  }

  // The entry applied at `index`, if any.
  std::optional<Entry> applied_at(uint64_t index) {
    std::lock_guard<std::mutex> lock(mutex);
    for (const Entry& entry : applied) {
      if (entry.index == index) return entry;
    }
    return std::nullopt;
  }

  uint64_t id;
  TempDir dir;
  caf::actor_system_config config;
  std::unique_ptr<caf::actor_system> system;
  std::unique_ptr<BlockingPersistence> persistence;
  raft_node_actor raft;
  caf::actor transport;
  bool stopped = false;
  std::mutex mutex;
  std::vector<Entry> applied;
};

struct Cluster {
  explicit Cluster(size_t size) {
    std::vector<uint64_t> voters;
    for (uint64_t id = 1; id <= size; ++id) voters.push_back(id);
    for (uint64_t id : voters) nodes.push_back(std::make_unique<Node>(id, voters));
    for (auto& node : nodes) {
      for (auto& peer : nodes) {
        if (peer != node) caf::anon_send(node->transport, raft_peer_atom::value, peer->id, caf::actor_cast<caf::actor>(peer->raft));
      }
    }
  }
  ~Cluster() {
    for (auto& node : nodes) node->stop();
  }

  Node& node(uint64_t id) { return *nodes.at(id - 1); }

  // The one leader every running node agrees on, polled until `deadline`; 0 on timeout.
  uint64_t wait_for_leader(Clock::time_point deadline) {
    while (Clock::now() < deadline) {
      uint64_t leader = 0;
      size_t leaders = 0, running = 0;
      for (auto& node : nodes) {
        if (node->stopped) continue;
        ++running;
        auto status = node->status();
        if (!status) continue;
        if (status->role == raft::Role::leader) {
          ++leaders;
          leader = node->id;
        }
      }
      if (leaders == 1) {
        size_t agreeing = 0;
        for (auto& node : nodes) {
          if (node->stopped) continue;
          auto status = node->status();
          if (status && status->leader == leader) ++agreeing;
        }
        if (agreeing == running) return leader;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return 0;
  }

  // Proposes `payload` to the leader (retrying through leader changes) until it is
  // applied on every running node or the deadline passes.
  bool commit_everywhere(const std::string& payload, Clock::time_point deadline) {
    while (Clock::now() < deadline) {
      uint64_t leader = wait_for_leader(deadline);
      if (leader == 0) return false;
      auto proposal = node(leader).propose(payload);
      if (!proposal || !proposal->accepted) continue;
      while (Clock::now() < deadline) {
        size_t done = 0, running = 0, lost = 0;
        for (auto& node : nodes) {
          if (node->stopped) continue;
          ++running;
          auto entry = node->applied_at(proposal->index);
          if (!entry) continue;
          if (entry->term == proposal->term && entry->payload() == bytes_of(payload)) ++done;
          else ++lost;  // another entry won that index: propose again
        }
        if (done == running) return true;
        if (lost > 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    return false;
  }

  std::vector<std::unique_ptr<Node>> nodes;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(raft_node)

BOOST_AUTO_TEST_CASE(three_nodes_elect_commit_and_survive_one_stop) {
  Cluster cluster(3);

  uint64_t leader = cluster.wait_for_leader(Clock::now() + std::chrono::seconds(5));
  BOOST_REQUIRE_MESSAGE(leader != 0, "no single agreed leader within 5 s");

  // A proposal to the leader is committed and applied on all three.
  auto proposal = cluster.node(leader).propose("first");
  BOOST_REQUIRE(proposal);
  BOOST_REQUIRE(proposal->accepted);
  auto deadline = Clock::now() + std::chrono::seconds(5);
  bool applied_everywhere = false;
  while (!applied_everywhere && Clock::now() < deadline) {
    applied_everywhere = true;
    for (auto& node : cluster.nodes) {
      auto entry = node->applied_at(proposal->index);
      if (!entry) {
        applied_everywhere = false;
        break;
      }
      BOOST_REQUIRE(entry->term == proposal->term);
      BOOST_REQUIRE(entry->payload() == bytes_of("first"));
    }
    if (!applied_everywhere) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  BOOST_REQUIRE_MESSAGE(applied_everywhere, "the proposal was not applied on all three nodes within 5 s");

  // A proposal to a follower is refused with the leader's id.
  uint64_t follower = leader == 1 ? 2 : 1;
  auto refused = cluster.node(follower).propose("to a follower");
  BOOST_REQUIRE(refused);
  BOOST_TEST(!refused->accepted);
  BOOST_TEST(refused->leader_hint == leader);

  // Stop the leader's actors (raft node and persistence): the other two elect a new leader
  // and still commit.
  cluster.node(leader).stop();
  BOOST_TEST(cluster.commit_everywhere("after stop", Clock::now() + std::chrono::seconds(5)));
  uint64_t new_leader = cluster.wait_for_leader(Clock::now() + std::chrono::seconds(1));
  BOOST_TEST(new_leader != 0u);
  BOOST_TEST(new_leader != leader);
}

BOOST_AUTO_TEST_CASE(leader_transfer_answers_when_leadership_moved) {
  Cluster cluster(3);
  const uint64_t leader = cluster.wait_for_leader(Clock::now() + std::chrono::seconds(5));
  BOOST_REQUIRE(leader != 0);
  BOOST_REQUIRE(cluster.commit_everywhere("before", Clock::now() + std::chrono::seconds(5)));
  const uint64_t term = cluster.node(leader).status()->term;

  // Refused: by a follower (with the leader as hint), to the leader itself, to a stranger.
  const uint64_t follower = leader % 3 + 1;
  auto by_follower = cluster.node(follower).transfer(leader);
  BOOST_REQUIRE(by_follower);
  BOOST_TEST((by_follower->outcome == TransferOutcome::not_leader));
  BOOST_TEST(by_follower->leader == leader);
  auto to_self = cluster.node(leader).transfer(leader);
  BOOST_REQUIRE(to_self);
  BOOST_TEST((to_self->outcome == TransferOutcome::refused));
  auto to_stranger = cluster.node(leader).transfer(9);
  BOOST_REQUIRE(to_stranger);
  BOOST_TEST((to_stranger->outcome == TransferOutcome::refused), to_stranger->why);

  // Named target: answered once it leads, in a later term.
  auto moved = cluster.node(leader).transfer(follower);
  BOOST_REQUIRE(moved);
  BOOST_TEST((moved->outcome == TransferOutcome::done), moved->why);
  BOOST_TEST(moved->leader == follower);
  BOOST_TEST(moved->term > term);
  BOOST_TEST(cluster.wait_for_leader(Clock::now() + std::chrono::seconds(2)) == follower);

  // No target: the leader picks a follower itself, and the cluster commits afterwards. On a
  // loaded machine another node's election timer may fire first and win (the transfer then
  // answers failed, naming it): that is asked again of whoever leads, a few times.
  uint64_t asked = follower;
  std::optional<Node::Transfer> picked;
  for (int attempt = 0; attempt < 3; ++attempt) {
    picked = cluster.node(asked).transfer(0);
    BOOST_REQUIRE(picked);
    if (picked->outcome != TransferOutcome::failed) break;
    BOOST_TEST_MESSAGE("transfer attempt " << attempt + 1 << ": " << picked->why);
    asked = cluster.wait_for_leader(Clock::now() + std::chrono::seconds(2));
    BOOST_REQUIRE(asked != 0);
  }
  BOOST_TEST((picked->outcome == TransferOutcome::done), picked->why);
  BOOST_TEST(picked->leader != asked);
  BOOST_TEST(cluster.commit_everywhere("after", Clock::now() + std::chrono::seconds(5)));
}

BOOST_AUTO_TEST_SUITE_END()
