// Goal: who may talk to a node's peer port. Issue 15's attack (a made-up node id, then one forged
// AppendEntries of term 1000) moves an open cluster's term, and is refused by a cluster with a
// cluster secret; a node with another secret is refused, the right one serves; a bad secret file
// stops `keyval node` with a message naming it.
// Method: real three-process clusters on 127.0.0.1 (apps/local_cluster.h), a raw socket as the
// forger, the frame built with the project's raft_wire encoder; every wait is bounded.
#define BOOST_TEST_MODULE peer_security_test
#include <arpa/inet.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <fstream>

#include "actors/framing.h"
#include "actors/peer_handshake.h"
#include "actors/raft_wire.h"
#include "client/kv_socket.h"
#include "apps/local_cluster.h"
#include "tests/support/cluster_fixture.h"
#include "tests/support/run_keyval.h"
#include "tests/support/temp_dir.h"

using keyval::testing::contains;
using keyval::testing::read_text;
using keyval::testing::run_keyval;
using keyval::testing::TempDir;

namespace keyval {
namespace {

constexpr uint64_t forged_term = 1000;
constexpr uint64_t forger_id = 99;  // no member has it

void write_secret(const std::string& path, const std::string& secret, mode_t mode = 0600) {
  std::ofstream(path, std::ios::trunc) << secret << "\n";
  BOOST_REQUIRE(::chmod(path.c_str(), mode) == 0);
}

// The forged AppendEntries: "node 99 leads in term 1000", to node `to`.
std::vector<uint8_t> forged_append_entries(uint64_t to, uint64_t commit_index) {
  raft::Message message;
  message.type = raft::MessageType::append_entries;
  message.from = forger_id;
  message.to = to;
  message.term = forged_term;
  message.leader_commit = commit_index;
  return make_frame(encode_raft_message(message));
}

// Connects to `port` on 127.0.0.1, writes `bytes`, lingers a moment so the node reads them, closes.
void send_raw(uint16_t port, const std::vector<uint8_t>& bytes) {
  auto fd = socket_connect("127.0.0.1", port, steady_now_ms() + 2000);
  BOOST_REQUIRE_MESSAGE(fd.is_ok(), fd.status().message());
  SocketIo wrote = socket_write_all(*fd, bytes.data(), bytes.size(), steady_now_ms() + 2000);
  BOOST_CHECK_MESSAGE(wrote.kind == SocketIo::ok, wrote.what);
  ::usleep(200 * 1000);
  ::close(*fd);
}

// The attack on node `target`: the hello a node without a secret sends, claiming node
// 99, then the forged frame; and the same frame after an old KVPEER01 hello.
void attack(const LocalCluster& cluster, uint64_t target) {
  const uint16_t port = cluster.peer_endpoint(target).port;
  auto bytes = encode_peer_hello(PeerHello{forger_id, target, PeerLinkMode::open, PeerNonce{}});
  auto frame = forged_append_entries(target, 0);
  bytes.insert(bytes.end(), frame.begin(), frame.end());
  send_raw(port, bytes);
  std::vector<uint8_t> old(peer_hello_magic_v1, peer_hello_magic_v1 + peer_magic_bytes);
  for (int i = 0; i < 8; ++i) old.push_back(static_cast<uint8_t>(forger_id >> (8 * i)));
  old.insert(old.end(), frame.begin(), frame.end());
  send_raw(port, old);
}

// The highest term any node reports.
uint64_t highest_term(LocalCluster& cluster) {
  uint64_t term = 0;
  for (const auto& view : cluster.status()) {
    if (view.is_ok()) term = std::max(term, view->term);
  }
  return term;
}

// Polls until some node reports a term of at least `term`, or timeout_ms passes.
bool wait_for_term(LocalCluster& cluster, uint64_t term, uint64_t timeout_ms) {
  const uint64_t deadline = steady_now_ms() + timeout_ms;
  while (steady_now_ms() < deadline) {
    if (highest_term(cluster) >= term) return true;
    ::usleep(50 * 1000);
  }
  return false;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(peer_security)

// Without a secret the attack works: this is what the secret is for (and why the next case can fail).
BOOST_AUTO_TEST_CASE(a_forged_append_entries_moves_an_open_cluster_to_its_term) {
  TempDir dir;
  auto cluster = testing::create_cluster(testing::cluster_options(dir.path() + "/cluster"));
  BOOST_REQUIRE(cluster->start_all().is_ok());
  const uint64_t leader = testing::wait_for_leader(*cluster);
  BOOST_REQUIRE(highest_term(*cluster) < forged_term);
  attack(*cluster, leader);
  BOOST_CHECK_MESSAGE(wait_for_term(*cluster, forged_term, 5000),
                      "the open cluster kept its term\n" << testing::logs_of(*cluster));
  BOOST_CHECK_MESSAGE(contains(read_text(cluster->log_path(leader)), "link from peer 99 accepted"),
                      testing::logs_of(*cluster));
  cluster->stop_all();
}

BOOST_AUTO_TEST_CASE(a_cluster_with_a_secret_refuses_the_forger_and_keeps_its_term_and_leader) {
  TempDir dir;
  const std::string secret_file = dir.file("secret");
  write_secret(secret_file, "a-cluster-secret-for-the-test-0123456789");
  auto cluster = testing::create_cluster(
      testing::cluster_options(dir.path() + "/cluster", {"--cluster-secret-file", secret_file}));
  BOOST_REQUIRE(cluster->start_all().is_ok());
  const uint64_t leader = testing::wait_for_leader(*cluster);
  const uint64_t term_before = highest_term(*cluster);
  attack(*cluster, leader);
  BOOST_CHECK_MESSAGE(!wait_for_term(*cluster, term_before + 1, 1500),
                      "the term moved from " << term_before << "\n" << testing::logs_of(*cluster));
  auto still = cluster->wait_for_leader(2000);
  BOOST_CHECK_MESSAGE(still.is_ok() && *still == leader, "the leader changed\n" << testing::logs_of(*cluster));
  const std::string log = read_text(cluster->log_path(leader));
  BOOST_CHECK_MESSAGE(contains(log, "refused link from 127.0.0.1:"), log);
  BOOST_CHECK_MESSAGE(contains(log, "(claiming peer 99): it has no cluster secret and this node requires one"), log);
  BOOST_CHECK_MESSAGE(contains(log, "an old hello (KVPEER01)"), log);
  BOOST_CHECK_MESSAGE(!contains(log, "link from peer 99 accepted"), log);
  // The real peers proved the secret, and the cluster serves.
  BOOST_CHECK_MESSAGE(contains(log, "cluster secret proven both ways"), log);
  KvClient client(cluster->client_endpoints());
  BOOST_REQUIRE(client.put("after-the-attack", "served").is_ok());
  auto got = client.get("after-the-attack");
  BOOST_REQUIRE(got.is_ok());
  BOOST_CHECK_EQUAL(got->value, "served");
  cluster->stop_all();
}

// A follower restarts with another secret: it is refused and refuses, and gets none of the writes made
// meanwhile; restarted with the right one, it catches up. (Every node reads the same file path;
// the file is rewritten between starts.)
BOOST_AUTO_TEST_CASE(a_node_with_another_secret_is_refused_and_with_the_right_one_serves) {
  TempDir dir;
  const std::string secret_file = dir.file("secret");
  const std::string right = "the-right-cluster-secret-0123456789";
  write_secret(secret_file, right);
  auto cluster = testing::create_cluster(
      testing::cluster_options(dir.path() + "/cluster", {"--cluster-secret-file", secret_file}));
  BOOST_REQUIRE(cluster->start_all().is_ok());
  const uint64_t first_leader = testing::wait_for_leader(*cluster);
  const uint64_t victim = first_leader % 3 + 1;  // a follower
  cluster->signal(victim, SIGKILL);
  std::vector<uint64_t> others;
  for (uint64_t id = 1; id <= 3; ++id) {
    if (id != victim) others.push_back(id);
  }
  auto leader = cluster->wait_for_leader_among(others, testing::cluster_leader_timeout_ms);
  BOOST_REQUIRE_MESSAGE(leader.is_ok(), testing::logs_of(*cluster));

  write_secret(secret_file, "a-wrong-cluster-secret-9876543210");
  const uint64_t log3_from = cluster->log_bytes(victim);
  const uint64_t leader_log_from = cluster->log_bytes(*leader);
  BOOST_REQUIRE(cluster->start(victim).is_ok());
  KvClient client(cluster->client_endpoints());
  auto put = client.put("written-while-3-is-refused", "yes");
  BOOST_REQUIRE_MESSAGE(put.is_ok(), put.status().message());
  const uint64_t deadline = steady_now_ms() + 5000;
  auto refused = [&] {
    return !cluster->last_log_line(victim, "did not prove the cluster secret", log3_from).empty() &&
           !cluster->last_log_line(*leader, "refused link from 127.0.0.1:", leader_log_from).empty();
  };
  while (!refused() && steady_now_ms() < deadline) ::usleep(50 * 1000);
  BOOST_CHECK_MESSAGE(refused(), testing::logs_of(*cluster));
  auto view3 = cluster->status()[victim - 1];
  while (!view3.is_ok() && steady_now_ms() < deadline + 5000) {  // its client port opens once it recovered
    ::usleep(50 * 1000);
    view3 = cluster->status()[victim - 1];
  }
  BOOST_REQUIRE_MESSAGE(view3.is_ok(), view3.status().message() << "\n" << testing::logs_of(*cluster));
  BOOST_CHECK_MESSAGE(view3->applied_index < put->index,
                      "node " << victim << " applied " << view3->applied_index << " with a wrong secret (the put is " << put->index << ")");

  cluster->signal(victim, SIGKILL);
  write_secret(secret_file, right);
  BOOST_REQUIRE(cluster->start(victim).is_ok());
  testing::expect_caught_up(*cluster);
  auto caught_up = cluster->status()[victim - 1];
  BOOST_REQUIRE(caught_up.is_ok());
  BOOST_CHECK(caught_up->applied_index >= put->index);
  cluster->stop_all();
}

BOOST_AUTO_TEST_CASE(keyval_node_refuses_a_bad_secret_file_by_name) {
  TempDir dir;
  const std::string base = "node --id 1 --bootstrap --data-dir " + dir.file("data") + " --cluster-secret-file ";
  struct Case {
    std::string file, contents, expected;
    mode_t mode;
  };
  const std::vector<Case> cases = {
      {dir.file("missing"), "", "cannot open: No such file or directory", 0},
      {dir.file("empty"), "", "empty", 0600},
      {dir.file("short"), "short", "holds 5 bytes, fewer than 16", 0600},
      {dir.file("shared"), "a-secret-that-others-may-read-0123", "group or others may access it (mode 644)", 0644},
  };
  for (const Case& c : cases) {
    if (c.mode != 0) {
      std::ofstream(c.file, std::ios::trunc) << c.contents;
      BOOST_REQUIRE(::chmod(c.file.c_str(), c.mode) == 0);
    }
    auto run = run_keyval(base + c.file);
    BOOST_CHECK_EQUAL(run.exit_code, 2);
    BOOST_CHECK_MESSAGE(contains(run.output, "--cluster-secret-file: cluster secret file " + c.file), run.output);
    BOOST_CHECK_MESSAGE(contains(run.output, c.expected), run.output);
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace keyval
