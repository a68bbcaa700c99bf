// Goal: a client finds a real cluster from one reachable endpoint, given in any order, and names
// each node correctly. Method: three `keyval node` processes on 127.0.0.1 (apps/local_cluster.h),
// clients given one follower, the endpoints reversed, or only the leader, which is then SIGKILLed.
#define BOOST_TEST_MODULE client_discovery_test
#include <signal.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdlib>
#include <thread>

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

// A client that must wait out a request timeout to find the leader (what happened before
// clients learned the cluster from answers) takes at least request_timeout_ms; one that follows
// the answers takes a few round trips. The timeout is set far above the bound, and the bound far
// above what a sanitized node on a loaded machine needs, so the test tells the two apart
// without depending on the machine's speed.
constexpr int64_t found_within_ms = 8000;
constexpr uint64_t slow_request_timeout_ms = 30000;

struct ClusterFixture : testing::ClusterFixture {
  const Endpoint& endpoint(uint64_t id) const { return cluster->client_endpoints()[id - 1]; }

  // Waits until the leader's answers name every member's client address (it learns each from
  // that member's first message to it), and checks they are the addresses the nodes serve on.
  void expect_leader_names_everyone(uint64_t leader_id) {
    KvClient client({endpoint(leader_id)});
    const uint64_t deadline = steady_now_ms() + 5000;
    std::vector<ClientMember> members;
    while (steady_now_ms() < deadline) {
      auto view = client.status_of(endpoint(leader_id));
      if (view.is_ok()) members = view->members;
      bool all = members.size() == cluster->nodes();
      for (const ClientMember& member : members) all = all && !member.client_address.empty();
      if (all) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    BOOST_REQUIRE_MESSAGE(members.size() == cluster->nodes(), "the leader lists " << members.size() << " members\n"
                                                                                    << logs());
    for (uint64_t id = 1; id <= cluster->nodes(); ++id) {
      BOOST_TEST(members[id - 1].node_id == id);
      BOOST_TEST(members[id - 1].client_address == endpoint(id).str(), logs());
    }
  }
};

int64_t elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(client_discovery, ClusterFixture)

BOOST_AUTO_TEST_CASE(a_client_given_only_a_follower_puts_and_gets_quickly) {
  const uint64_t leader_id = leader();
  const uint64_t follower = leader_id % cluster->nodes() + 1;
  KvClientOptions options;
  options.request_timeout_ms = slow_request_timeout_ms;
  options.operation_timeout_ms = 2 * slow_request_timeout_ms;
  const auto start = std::chrono::steady_clock::now();
  KvClient client({endpoint(follower)}, options);
  auto put = client.put("x", "y");
  BOOST_REQUIRE_MESSAGE(put.is_ok(), put.status().message() + "\n" + logs());
  auto got = client.get("x");
  BOOST_REQUIRE_MESSAGE(got.is_ok(), got.status().message());
  BOOST_TEST(elapsed_ms(start) < found_within_ms);
  BOOST_TEST(got->value == "y");
  // The node that answered is the leader (or, when a sanitized node missed a heartbeat, the
  // one that leads now), found through the follower, at an address the client was not given.
  const uint64_t answered = client.leader();
  BOOST_TEST((answered == leader_id || answered == leader()), "answered by node " << answered);
  BOOST_TEST(answered != follower);
  auto leader_slot = client.known_nodes().find_id(answered);
  BOOST_REQUIRE(leader_slot.has_value());
  BOOST_TEST(client.known_nodes().endpoint(*leader_slot).str() == endpoint(answered).str());

  // The command line as a new user types it.
  const auto cli_start = std::chrono::steady_clock::now();
  auto run = run_keyval("put x z --endpoints " + endpoint(follower).str() + " --request-timeout-ms " +
                        std::to_string(slow_request_timeout_ms) + " --timeout-ms " +
                        std::to_string(2 * slow_request_timeout_ms));
  BOOST_TEST(run.exit_code == 0, run.output);
  BOOST_TEST(elapsed_ms(cli_start) < found_within_ms, run.output);
}

BOOST_AUTO_TEST_CASE(endpoints_in_any_order_work_and_status_names_each_node) {
  const uint64_t leader_id = leader();
  // Once the leader knows every member's client address (from their first messages), and
  // with time for a sanitized node's answer: every node answers for itself, named right.
  expect_leader_names_everyone(leader_id);
  std::vector<Endpoint> reversed(cluster->client_endpoints().rbegin(), cluster->client_endpoints().rend());
  KvClientOptions options;
  options.request_timeout_ms = 2000;
  KvClient client(reversed, options);
  auto put = client.put("k", "v");
  BOOST_REQUIRE_MESSAGE(put.is_ok(), put.status().message());
  BOOST_TEST((client.leader() == leader_id || client.leader() == leader()), "answered by node " << client.leader());
  // A sanitized node on a loaded machine can miss a heartbeat and start an election between
  // two reads. Each check below reads until it sees a settled cluster (one leader, the others
  // its followers) and then asserts every node is named right against the leader it names.
  std::vector<NodeView> views;
  std::string listed;
  uint64_t named_leader = 0;
  for (const uint64_t deadline = steady_now_ms() + 10000; steady_now_ms() < deadline;) {
    views = client.status_all();
    listed.clear();
    named_leader = 0;
    size_t leaders = 0;
    for (const NodeView& view : views) {
      listed += " [node " + std::to_string(view.node_id) + " at " + view.endpoint.str() + ": " +
                (view.view.is_ok() ? view.view->role : view.view.status().message()) + "]";
      if (view.view.is_ok() && view.view->role == "leader") ++leaders, named_leader = view.node_id;
    }
    if (views.size() == cluster->nodes() && leaders == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  BOOST_REQUIRE_MESSAGE(views.size() == cluster->nodes(), "status_all listed" << listed << "\n" << logs());
  BOOST_REQUIRE_MESSAGE(named_leader != 0, "no settled leader in" << listed << "\n" << logs());
  for (uint64_t id = 1; id <= cluster->nodes(); ++id) {
    const NodeView& view = views[id - 1];
    BOOST_TEST(view.node_id == id);
    BOOST_TEST(view.endpoint.str() == endpoint(id).str());
    BOOST_REQUIRE_MESSAGE(view.view.is_ok(), view.view.status().message());
    BOOST_TEST(view.view->node_id == id);
    BOOST_TEST(view.view->role == (id == named_leader ? "leader" : "follower"), listed);
  }

  // `keyval status` with a shuffled list, and with one follower only: every node, named right
  // (the follower names the leader, and the leader every member).
  const uint64_t follower = named_leader % cluster->nodes() + 1;
  for (const std::string& endpoints :
       {endpoint(2).str() + "," + endpoint(3).str() + "," + endpoint(1).str(), endpoint(follower).str()}) {
    testing::Run status;
    std::string leader_named;
    for (const uint64_t deadline = steady_now_ms() + 10000; steady_now_ms() < deadline;) {
      status = run_keyval("status --endpoints " + endpoints);
      leader_named = testing::json_field(status.last_line(), "leader");
      if (status.exit_code == 0 && !leader_named.empty() && leader_named != "0") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    BOOST_TEST(status.exit_code == 0, status.output);
    BOOST_REQUIRE_MESSAGE(!leader_named.empty() && leader_named != "0", endpoints << ": " << status.output);
    for (uint64_t id = 1; id <= cluster->nodes(); ++id) {
      const std::string line = "node " + std::to_string(id) + " " + endpoint(id).str() + ": role " +
                               (std::to_string(id) == leader_named ? "leader" : "follower");
      BOOST_TEST(contains(status.output, line), endpoints << ": " << status.output);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_client_given_only_the_leader_writes_on_after_its_sigkill) {
  const uint64_t first = leader();
  KvClientOptions options;
  options.operation_timeout_ms = 10000;  // a new election fits well inside
  options.request_timeout_ms = 500;
  expect_leader_names_everyone(first);
  KvClient client({endpoint(first)}, options);
  BOOST_REQUIRE(client.put("before", "1").is_ok());
  BOOST_REQUIRE(client.known_nodes().size() == cluster->nodes());  // learned from that answer
  // Each node logs its peers' client addresses as it learns them.
  for (uint64_t id = 1; id <= cluster->nodes(); ++id) {
    if (id == first) continue;
    BOOST_TEST(contains(read_text(cluster->log_path(first)),
                        "node " + std::to_string(id) + " serves clients on " + endpoint(id).str()));
  }

  cluster->signal(first, SIGKILL);
  for (int i = 0; i < 20; ++i) {
    auto put = client.put("after-" + std::to_string(i), "v");
    BOOST_REQUIRE_MESSAGE(put.is_ok(), "write " << i << ": " << put.status().message() << "\n" << logs());
  }
  BOOST_TEST(client.leader() != first);
  BOOST_TEST(client.leader() != 0u);
  auto got = client.get("after-19");
  BOOST_REQUIRE_MESSAGE(got.is_ok(), got.status().message());
  BOOST_TEST(got->found);
}

BOOST_AUTO_TEST_CASE(an_error_names_the_node_it_came_from) {
  const uint64_t leader_id = leader();
  std::vector<Endpoint> reversed(cluster->client_endpoints().rbegin(), cluster->client_endpoints().rend());
  KvClientOptions options;
  options.client_id = 0x5e55;  // two clients, one session: the second's sequence 1 is stale
  KvClient ahead(reversed, options);
  BOOST_REQUIRE(ahead.put("a", "1").is_ok());
  BOOST_REQUIRE(ahead.put("a", "2").is_ok());
  KvClient behind(reversed, options);
  auto stale = behind.put("a", "3");
  BOOST_REQUIRE(!stale.is_ok());
  // Named as the leader it came from (the one that leads now, if a sanitized node missed a heartbeat).
  auto named = [&](uint64_t id) { return "node " + std::to_string(id) + " (" + endpoint(id).str() + ")"; };
  BOOST_TEST((contains(stale.status().message(), named(leader_id)) || contains(stale.status().message(), named(leader()))),
             stale.status().message());
  BOOST_TEST(contains(stale.status().message(), "stale_request"), stale.status().message());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace keyval
