// Goal: the node life cycle shared by `keyval node` and the simulator (actors/node_lifecycle.h)
// refuses the data directories it must, and reports any actor of a running node that stops.
// Method: real directories (and the simulator's disk) for the identity rules; a real one-node
// actor system over a temporary directory for supervision and the stop order.
#define BOOST_TEST_MODULE node_lifecycle_test
#include <boost/test/unit_test.hpp>

#include <caf/all.hpp>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "actors/messages.h"
#include "actors/node_lifecycle.h"
#include "actors/transport.h"
#include "sim/sim_disk.h"
#include "storage/lmdb_state.h"
#include "sim/sim_node.h"
#include "tests/support/temp_dir.h"

using namespace keyval;
using keyval::testing::TempDir;

namespace {

ClusterView view_listing(uint64_t id, bool learner) {
  ClusterView view;
  view.answered_by = 1;
  view.configuration_index = 7;
  view.configuration.push_back({1, "127.0.0.1:7201", "127.0.0.1:7101", false, 0});
  view.configuration.push_back({2, "127.0.0.1:7202", "127.0.0.1:7102", false, 0});
  view.configuration.push_back({id, "127.0.0.1:7204", "127.0.0.1:7104", learner, 0});
  return view;
}

DataDirectoryOptions options_for(Env& env, const std::string& directory, uint64_t id) {
  DataDirectoryOptions options;
  options.env = &env;
  options.data_directory = directory;
  options.node_id = id;
  options.bootstrap_members = {Member{1, "127.0.0.1:7201"}, Member{2, "127.0.0.1:7202"}, Member{3, "127.0.0.1:7203"}};
  options.join_source = "--join 127.0.0.1:7101";
  options.peer_address = "127.0.0.1:7204";
  options.add_member_command = "keyval member add " + std::to_string(id) + " --peer 127.0.0.1:7204";
  return options;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(data_directory)

BOOST_AUTO_TEST_CASE(a_missing_directory_without_bootstrap_or_join_is_refused) {
  TempDir dir;
  auto opened = open_data_directory(options_for(posix_env(), dir.file("node"), 1));
  BOOST_REQUIRE(!opened.is_ok());
  BOOST_TEST((opened.status().code() == Code::not_found));
  BOOST_TEST(contains(opened.status().message(), dir.file("node") + " does not exist"));
  BOOST_TEST(contains(opened.status().message(), "--bootstrap"));
  BOOST_TEST(contains(opened.status().message(), "--join"));
  BOOST_TEST(!posix_env().exists(dir.file("node")));
}

BOOST_AUTO_TEST_CASE(bootstrap_claims_the_directory_and_a_restart_checks_it) {
  TempDir dir;
  auto options = options_for(posix_env(), dir.file("node"), 1);
  options.bootstrap = true;
  auto created = open_data_directory(options);
  BOOST_REQUIRE_MESSAGE(created.is_ok(), created.status().to_string());
  BOOST_TEST(created->created);
  BOOST_TEST(created->identity.created == "bootstrap");
  BOOST_REQUIRE(created->bootstrap.has_value());
  BOOST_TEST(created->bootstrap->members.size() == 3u);
  BOOST_TEST(posix_env().exists(dir.file("node/IDENTITY")));

  options.bootstrap = false;  // a restart without the flag
  auto restarted = open_data_directory(options);
  BOOST_REQUIRE_MESSAGE(restarted.is_ok(), restarted.status().to_string());
  BOOST_TEST(!restarted->created);
  BOOST_TEST(!restarted->bootstrap.has_value());
}

BOOST_AUTO_TEST_CASE(a_directory_of_another_node_or_cluster_is_refused) {
  TempDir dir;
  auto options = options_for(posix_env(), dir.file("node"), 1);
  options.bootstrap = true;
  BOOST_REQUIRE(open_data_directory(options).is_ok());

  auto other_node = options_for(posix_env(), dir.file("node"), 2);
  other_node.bootstrap = true;
  auto refused = open_data_directory(other_node);
  BOOST_REQUIRE(!refused.is_ok());
  BOOST_TEST((refused.status().code() == Code::invalid_argument));
  BOOST_TEST(contains(refused.status().message(), "belongs to node 1 of cluster keyval, not to node 2"));

  auto other_cluster = options;
  other_cluster.cluster = "other";
  refused = open_data_directory(other_cluster);
  BOOST_REQUIRE(!refused.is_ok());
  BOOST_TEST(contains(refused.status().message(), "not to node 1 of cluster other"));
}

BOOST_AUTO_TEST_CASE(join_of_a_learner_creates_the_directory_without_a_configuration) {
  TempDir dir;
  auto options = options_for(posix_env(), dir.file("node"), 4);
  options.join = true;
  options.ask_cluster = [] { return Result<ClusterView>(view_listing(4, true)); };
  std::vector<std::string> lines;
  options.log = [&lines](const std::string& line) { lines.push_back(line); };
  auto joined = open_data_directory(options);
  BOOST_REQUIRE_MESSAGE(joined.is_ok(), joined.status().to_string());
  BOOST_TEST(joined->created);
  BOOST_TEST(joined->identity.created == "join");
  BOOST_TEST(!joined->bootstrap.has_value());
  BOOST_REQUIRE(joined->cluster_view.has_value());
  BOOST_TEST(joined->cluster_view->configuration.size() == 3u);
  BOOST_REQUIRE(!lines.empty());
  BOOST_TEST(contains(lines.front(), "the cluster lists this node (configuration at index 7, members 1,2,4 (learner)"));
}

BOOST_AUTO_TEST_CASE(join_of_a_voter_id_with_a_fresh_directory_is_refused_naming_the_replacement) {
  TempDir dir;
  auto options = options_for(posix_env(), dir.file("node"), 4);
  options.join = true;
  options.ask_cluster = [] { return Result<ClusterView>(view_listing(4, false)); };
  auto refused = open_data_directory(options);
  BOOST_REQUIRE(!refused.is_ok());
  const std::string& message = refused.status().message();
  BOOST_TEST(contains(message, "node 4 is a voter of the cluster (configuration at index 7"));
  BOOST_TEST(contains(message, "a voter cannot be re-created with an empty data directory under the same id"));
  BOOST_TEST(contains(message, "remove it (keyval member remove 4)"));
  BOOST_TEST(contains(message, "add a new member with a new id (keyval member add ...)"));
  BOOST_TEST(!posix_env().exists(dir.file("node/IDENTITY")));  // nothing claimed
}

BOOST_AUTO_TEST_CASE(a_joined_node_that_became_a_voter_restarts) {
  TempDir dir;
  auto options = options_for(posix_env(), dir.file("node"), 4);
  options.join = true;
  options.ask_cluster = [] { return Result<ClusterView>(view_listing(4, true)); };
  BOOST_REQUIRE(open_data_directory(options).is_ok());
  options.ask_cluster = [] { return Result<ClusterView>(view_listing(4, false)); };  // promoted since
  auto restarted = open_data_directory(options);
  BOOST_REQUIRE_MESSAGE(restarted.is_ok(), restarted.status().to_string());
  BOOST_TEST(!restarted->created);
}

BOOST_AUTO_TEST_CASE(join_when_the_cluster_does_not_list_the_node_is_refused) {
  TempDir dir;
  auto options = options_for(posix_env(), dir.file("node"), 5);
  options.join = true;
  options.ask_cluster = [] { return Result<ClusterView>(view_listing(4, true)); };
  auto refused = open_data_directory(options);
  BOOST_REQUIRE(!refused.is_ok());
  BOOST_TEST((refused.status().code() == Code::not_found));
  BOOST_TEST(contains(refused.status().message(), "--join 127.0.0.1:7101: node 1 answers that the configuration at "
                                                  "index 7 (members 1,2,4 (learner)) does not list node 5"));
  BOOST_TEST(contains(refused.status().message(), "add it first with: keyval member add 5"));

  options.ask_cluster = [] { return Result<ClusterView>(Status::io_error("--join 127.0.0.1:7101: no answer")); };
  refused = open_data_directory(options);
  BOOST_REQUIRE(!refused.is_ok());
  BOOST_TEST(refused.status().message() == "--join 127.0.0.1:7101: no answer");
  BOOST_TEST(!posix_env().exists(dir.file("node")));
}

BOOST_AUTO_TEST_CASE(the_simulated_disk_holds_the_identity_of_a_simulated_node) {
  sim::SimDisk disk;
  auto options = options_for(disk, "/n1", 1);
  options.cluster = "sim";
  BOOST_TEST(!open_data_directory(options).is_ok());
  options.bootstrap = true;
  BOOST_REQUIRE(open_data_directory(options).is_ok());
  BOOST_TEST(disk.exists("/n1/IDENTITY"));
  raft::SplitMix64 random(1);
  disk.crash("/n1", random, true, true);  // synced before it was used: a power cut keeps it
  options.bootstrap = false;
  auto restarted = open_data_directory(options);
  BOOST_REQUIRE_MESSAGE(restarted.is_ok(), restarted.status().to_string());
  BOOST_TEST(restarted->identity.describe() == "node 1 of cluster sim");
}

BOOST_AUTO_TEST_SUITE_END()

// --- supervision and stop order ------------------------------------------------------------

namespace {

// One node (the only voter) in a real actor system over a temporary directory.
struct RunningNode {
  TempDir dir;
  caf::actor_system_config config;
  std::unique_ptr<caf::actor_system> system;
  std::unique_ptr<NodeLifecycle> lifecycle;
  caf::actor transport;
  NodeHandles handles;
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::pair<std::string, std::string>> failures;  // (actor, reason)
  bool handed_off = false;

  RunningNode() {
    add_message_types(config);
    system = std::make_unique<caf::actor_system>(config);
    transport = spawn_local_transport(*system);
    NodeLifecycleConfig lifecycle_config;
    lifecycle_config.transport = transport;
    lifecycle_config.failed = [this](const std::string& actor, const std::string& reason) {
      std::lock_guard<std::mutex> guard(mutex);
      failures.emplace_back(actor, reason);
      changed.notify_all();
    };
    lifecycle_config.hand_off = [this](const NodeHandles&) { handed_off = true; };
    lifecycle = std::make_unique<NodeLifecycle>(*system, std::move(lifecycle_config));

    NodeConfig node;
    node.persistence.data_directory = dir.path();
    node.persistence.log = [](const std::string&) {};
    node.raft.raft.node_id = 1;
    node.raft.raft.voters = {1};
    node.raft.raft.random_seed = 7;
    node.raft.tick_interval = std::chrono::milliseconds(10);
    node.raft.transport = transport;
    std::promise<Result<NodeHandles>> started;
    auto result = started.get_future();
    lifecycle->start(std::move(node), [&started](Result<NodeHandles> handles) { started.set_value(std::move(handles)); });
    BOOST_REQUIRE(result.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
    auto handles_or = result.get();
    BOOST_REQUIRE_MESSAGE(handles_or.is_ok(), handles_or.status().to_string());
    handles = *handles_or;
  }

  ~RunningNode() { shut_down(); }

  // Stops the node (if nothing stopped it yet) and ends the actor system, joining its threads:
  // the exit hooks of the persistence actors (LMDB's clean mark) have run when this returns.
  void shut_down() {
    if (!system) return;
    lifecycle->stop(StopMode::clean_without_hand_off);
    system->await_all_actors_done();
    lifecycle.reset();
    transport = nullptr;
    handles = NodeHandles{};
    system.reset();
  }

  // The first failure reported, waiting up to 10 s for one.
  std::optional<std::pair<std::string, std::string>> first_failure() {
    std::unique_lock<std::mutex> lock(mutex);
    changed.wait_for(lock, std::chrono::seconds(10), [this] { return !failures.empty(); });
    if (failures.empty()) return std::nullopt;
    return failures.front();
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(supervision)

BOOST_AUTO_TEST_CASE(a_wal_writer_that_stops_is_reported_by_name) {
  RunningNode node;
  caf::anon_send_exit(node.handles.writer, caf::exit_reason::unhandled_exception);
  auto failure = node.first_failure();
  BOOST_REQUIRE(failure.has_value());
  BOOST_TEST(failure->first == "wal_writer");
  BOOST_TEST(contains(failure->second, "unhandled_exception"));
}

BOOST_AUTO_TEST_CASE(a_snapshotter_that_stops_is_reported_by_name) {
  RunningNode node;
  caf::anon_send_exit(node.handles.snapshotter, caf::exit_reason::kill);
  auto failure = node.first_failure();
  BOOST_REQUIRE(failure.has_value());
  BOOST_TEST(failure->first == "snapshotter");
}

BOOST_AUTO_TEST_CASE(the_transport_and_the_client_side_are_supervised_too) {
  RunningNode node;
  caf::anon_send_exit(node.transport, caf::exit_reason::unknown);
  auto failure = node.first_failure();
  BOOST_REQUIRE(failure.has_value());
  BOOST_TEST(failure->first == "transport");

  RunningNode other;
  // With an argument: CAF 0.17 runs a function actor spawned without arguments through a null
  // tuple pointer (UBSan: reference binding to null pointer).
  auto client_side =
      other.system->spawn([](caf::event_based_actor*, int) -> caf::behavior { return {[](int) {}}; }, 0);
  other.lifecycle->supervise_client_side(client_side, "client listener");
  caf::anon_send_exit(client_side, caf::exit_reason::unknown);
  failure = other.first_failure();
  BOOST_REQUIRE(failure.has_value());
  BOOST_TEST(failure->first == "client listener");
}

BOOST_AUTO_TEST_CASE(only_the_first_failure_is_reported) {
  RunningNode node;
  caf::anon_send_exit(node.handles.state_machine, caf::exit_reason::unknown);
  auto failure = node.first_failure();
  BOOST_REQUIRE(failure.has_value());
  BOOST_TEST(failure->first == "state machine");
  caf::anon_send_exit(node.handles.gateway, caf::exit_reason::unknown);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a second report would come within this
  std::lock_guard<std::mutex> guard(node.mutex);
  BOOST_TEST(node.failures.size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_clean_stop_hands_off_first_and_reports_nothing) {
  RunningNode node;
  node.lifecycle->stop(StopMode::clean);
  BOOST_TEST(node.handed_off);
  BOOST_TEST(node.lifecycle->stopping());
  node.system->await_all_actors_done();
  std::lock_guard<std::mutex> guard(node.mutex);
  BOOST_TEST(node.failures.empty());
}

// Stops a running node without the hand-off in `mode`: nothing handed off, nothing reported
// as failed; returns LMDB_STATE once the actor system ended (every exit hook has run).
LmdbMarker marker_after_stop_without_hand_off(StopMode mode) {
  RunningNode node;
  node.lifecycle->stop(mode);
  BOOST_TEST(!node.handed_off);
  node.system->await_all_actors_done();
  {
    std::lock_guard<std::mutex> guard(node.mutex);
    BOOST_TEST(node.failures.empty());
  }
  node.shut_down();
  auto marker = read_lmdb_marker(posix_env(), node.dir.path());
  BOOST_TEST_REQUIRE(marker.is_ok(), marker.status().to_string());
  return *marker;
}

// As SIGKILL leaves it: LMDB still marked open (trusted again only in this boot).
BOOST_AUTO_TEST_CASE(a_crash_stop_skips_the_hand_off_and_leaves_lmdb_open) {
  LmdbMarker marker = marker_after_stop_without_hand_off(StopMode::crash);
  BOOST_TEST((marker.kind == LmdbMarkerKind::open), "LMDB_STATE reads: " << marker.text);
}

// A stop without the hand-off (asked for while the node started, or after a listener could not
// bind) is still a clean stop: LMDB synced and marked clean, so a start after a reboot trusts it.
BOOST_AUTO_TEST_CASE(a_clean_stop_without_hand_off_marks_lmdb_clean) {
  LmdbMarker marker = marker_after_stop_without_hand_off(StopMode::clean_without_hand_off);
  BOOST_TEST((marker.kind == LmdbMarkerKind::clean), "LMDB_STATE reads: " << marker.text);
}

BOOST_AUTO_TEST_SUITE_END()

// --- the simulator's node goes through the same life cycle ----------------------------------

BOOST_AUTO_TEST_SUITE(simulated_node)

namespace {

sim::SimNodeConfig sim_node_config(sim::SimDisk& disk, const TempDir& dir, uint64_t id) {
  sim::SimNodeConfig config;
  config.id = id;
  config.voters = {id};
  config.disk = &disk;
  config.lmdb_directory = dir.file("lmdb" + std::to_string(id));
  config.send = [](uint64_t, uint64_t, std::vector<uint8_t>) {};
  config.reply = [](uint64_t, std::vector<uint8_t>) {};
  return config;
}

// Runs the node's jobs (no timers) until nothing is left.
void run_jobs(sim::SimNode& node) {
  for (int i = 0; i < 100000 && node.has_job(); ++i) node.run_job(0);
}

}  // namespace

// A stop may come at any moment of a start (SIGTERM during a long recovery, a crash in the
// simulator): whatever the start spawned by then must stop too, or the actor system never
// ends. Stopped after each number of jobs of a start, in a testing actor system, until a stop
// comes after the start ended; a restart after each (the crash's disk kept) must still serve.
BOOST_AUTO_TEST_CASE(a_node_stopped_at_any_step_of_its_start_leaves_no_actor_running) {
  TempDir dir;
  sim::SimDisk disk;
  DataDirectoryOptions directory = options_for(disk, "/n1", 1);
  directory.cluster = "sim";
  directory.bootstrap = true;
  directory.bootstrap_members = {Member{1, "sim:1"}};
  BOOST_REQUIRE(open_data_directory(directory).is_ok());
  bool stopped_after_start = false;
  size_t stopped_during_start = 0;
  for (int steps = 0; steps < 10000 && !stopped_after_start; ++steps) {
    caf::actor_system_config config;
    config.set("scheduler.policy", caf::atom("testing"));
    config.set("logger.verbosity", caf::atom("quiet"));
    add_message_types(config);
    // Not deleted when an actor is left running: its destructor would wait for it forever.
    auto* system = new caf::actor_system(config);
    auto& scheduler = dynamic_cast<caf::scheduler::test_coordinator&>(system->scheduler());
    NodeLifecycleConfig lifecycle_config;
    lifecycle_config.transport = spawn_local_transport(*system);
    auto lifecycle = std::make_unique<NodeLifecycle>(*system, std::move(lifecycle_config));
    NodeConfig node;
    node.persistence.env = &disk;
    node.persistence.data_directory = "/n1";
    node.persistence.detached = false;
    node.persistence.recovery.lmdb_directory = dir.file("lmdb");
    node.persistence.log = [](const std::string&) {};
    node.raft.raft.node_id = 1;
    node.raft.members = {Member{1, "sim:1"}};
    node.raft.raft.random_seed = 7;
    std::optional<Status> outcome;
    lifecycle->start(std::move(node), [&outcome](Result<NodeHandles> result) { outcome = result.status(); });
    for (int i = 0; i < steps && scheduler.has_job(); ++i) scheduler.run_once();
    stopped_after_start = outcome.has_value();
    if (!stopped_after_start) ++stopped_during_start;
    BOOST_TEST_INFO("stopped after " << steps << " jobs");
    if (stopped_after_start) BOOST_TEST(outcome->is_ok(), outcome->to_string());
    lifecycle->stop(StopMode::crash);
    for (int round = 0; round < 2; ++round) {
      scheduler.clock().cancel_all();
      for (int i = 0; i < 1000000 && scheduler.has_job(); ++i) scheduler.run_once();
    }
    if (!stopped_after_start) {
      BOOST_TEST(outcome.has_value(), "the start reports, with an error, once stopped");
      BOOST_TEST((outcome.has_value() && !outcome->is_ok()));
    }
    const size_t running = system->registry().running();
    BOOST_TEST_REQUIRE(running == 0u, running << " actors still running after a stop at job " << steps);
    lifecycle.reset();
    delete system;
  }
  BOOST_TEST(stopped_after_start, "the start ended within the bound");
  BOOST_TEST(stopped_during_start > 5u, "stops came at several points of the start");
}

BOOST_AUTO_TEST_CASE(a_simulated_node_claims_its_identity_and_a_foreign_one_fails_it) {
  TempDir dir;
  sim::SimDisk disk;
  {
    sim::SimNode node(sim_node_config(disk, dir, 1));
    node.start(0, 1);
    run_jobs(node);
    BOOST_TEST(node.serving());
    BOOST_TEST(disk.exists("/n1/IDENTITY"));
    node.crash();
    node.start(0, 2);  // a restart checks it
    run_jobs(node);
    BOOST_TEST(node.serving());
  }
  // /n2 claimed by node 1's identity, then started as node 2: refused, the node is failed.
  DataDirectoryOptions foreign = options_for(disk, "/n2", 1);
  foreign.cluster = "sim";
  foreign.bootstrap = true;
  BOOST_REQUIRE(open_data_directory(foreign).is_ok());
  std::optional<Status> refused;
  sim::SimNodeConfig config = sim_node_config(disk, dir, 2);
  config.started = [&refused](uint64_t, const Result<NodeHandles>& result) {
    refused = result.is_ok() ? Status::ok() : result.status();
  };
  sim::SimNode node(config);
  node.start(0, 3);
  run_jobs(node);
  BOOST_REQUIRE(refused.has_value());
  BOOST_TEST(contains(refused->message(), "belongs to node 1 of cluster sim, not to node 2"));
  BOOST_TEST(node.failed());
  BOOST_TEST(!node.serving());
  BOOST_TEST(contains(node.failure(), "belongs to node 1"));
}

BOOST_AUTO_TEST_SUITE_END()
