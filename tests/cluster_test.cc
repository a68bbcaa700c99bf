// Real clusters: three `keyval node` processes on 127.0.0.1 (free ports), talking TCP,
// writing real files, killed with SIGKILL by PID (apps/local_cluster.h drives them).
#define BOOST_TEST_MODULE cluster_test
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <chrono>
#include <thread>
#include <regex>
#include <sstream>

#include "actors/client_protocol.h"
#include "actors/framing.h"
#include "client/kv_socket.h"
#include "apps/local_cluster.h"
#include "storage/kv_state_machine.h"
#include "storage/node_identity.h"
#include "tests/support/cluster_fixture.h"
#include "tests/support/run_keyval.h"
#include "tests/support/temp_dir.h"

using keyval::testing::cluster_leader_timeout_ms;
using keyval::testing::contains;
using keyval::testing::load_options;
using keyval::testing::read_text;

using keyval::testing::Run;
using keyval::testing::run_keyval;
using keyval::testing::TempDir;

namespace keyval {
namespace {

// The shared three-node fixture, and a clean stop that every node must make.
struct ClusterFixture : testing::ClusterFixture {
  void expect_clean_stop() {
    for (const auto& [id, exit] : cluster->stop_all(10000)) {
      BOOST_TEST((exit.exited && exit.code == 0), "node " << id << ": " << exit.describe() << "\n" << logs());
      BOOST_TEST(contains(read_text(cluster->log_path(id)), "] stopped"), "node " << id << "\n" << logs());
    }
  }
};

// One framed request on a fresh connection to `endpoint`; the response, or an error.
Result<ClientResponse> exchange_once(const Endpoint& endpoint, const ClientRequest& request) {
  const uint64_t deadline = steady_now_ms() + 3000;
  KV_ASSIGN_OR_RETURN(int fd, socket_connect(endpoint.host, endpoint.port, deadline));
  auto frame = make_frame(encode_client_request(request));
  SocketIo wrote = socket_write_all(fd, frame.data(), frame.size(), deadline);
  uint8_t header[frame_header_bytes];
  SocketIo read = wrote.kind == SocketIo::ok ? socket_read_exact(fd, header, sizeof header, deadline) : wrote;
  std::vector<uint8_t> payload;
  if (read.kind == SocketIo::ok) {
    payload.resize(read_frame_header(header));
    read = socket_read_exact(fd, payload.data(), payload.size(), deadline);
  }
  ::close(fd);
  if (read.kind != SocketIo::ok) return Status::io_error(read.what);
  return decode_client_response(payload.data(), payload.size());
}

// A socket listening on a free port of 127.0.0.1 (*port), for tests of ports already in use.
int listen_on_free_port(uint16_t* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  BOOST_TEST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  BOOST_TEST_REQUIRE(::listen(fd, 1) == 0);
  BOOST_TEST_REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  *port = ntohs(address.sin_port);
  return fd;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cluster)

BOOST_FIXTURE_TEST_CASE(three_nodes_elect_one_leader_and_replicate_every_write, ClusterFixture) {
  const uint64_t leader_id = leader();
  KvClient client(cluster->client_endpoints());
  for (int i = 0; i < 100; ++i) {
    auto put = client.put("key-" + std::to_string(i), "value-" + std::to_string(i));
    BOOST_TEST_REQUIRE(put.is_ok(), put.status().message());
  }
  expect_caught_up();
  auto views = cluster->status();
  uint64_t leaders = 0;
  for (uint64_t id = 1; id <= views.size(); ++id) {
    BOOST_TEST_REQUIRE(views[id - 1].is_ok());
    leaders += views[id - 1]->role == "leader";
    BOOST_TEST(views[id - 1]->leader_hint == leader_id);
    BOOST_TEST(views[id - 1]->term == views[leader_id - 1]->term);
    BOOST_TEST(views[id - 1]->applied_index >= 101u);  // the leader's no-op and 100 puts
  }
  BOOST_TEST(leaders == 1u);
  auto got = client.get("key-42");
  BOOST_TEST_REQUIRE(got.is_ok(), got.status().message());
  BOOST_TEST(got->value == "value-42");
  BOOST_TEST(contains(read_text(cluster->log_path(leader_id)), "elected leader in term"));
  // One structured line per event: time, level, node id, and the term on the raft node's lines.
  const std::regex elected("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z info \\[node " + std::to_string(leader_id) +
                           "\\] \\[term \\d+\\] raft node " + std::to_string(leader_id) + ": elected leader in term");
  BOOST_TEST(std::regex_search(read_text(cluster->log_path(leader_id)), elected), read_text(cluster->log_path(leader_id)));
  expect_clean_stop();
}

// Range reads through real nodes: paged by the answer bound, in key order, bounded by a
// limit, counted, from the CLI, and serializable from a follower.
BOOST_FIXTURE_TEST_CASE(range_and_prefix_reads_page_through_every_key_in_order, ClusterFixture) {
  const uint64_t leader_id = leader();
  KvClient client(cluster->client_endpoints());
  auto value_of = [](int i) { return "value-" + std::to_string(i) + std::string(90, 'x'); };
  char key[16];
  for (int i = 0; i < 300; ++i) {
    std::snprintf(key, sizeof key, "r/%03d", i);
    BOOST_TEST_REQUIRE(client.put(key, value_of(i)).is_ok());
  }
  for (const char* other : {"q", "r", "r0", "s/x"}) BOOST_TEST_REQUIRE(client.put(other, "other").is_ok());

  RangeOptions paged;
  paged.to = prefix_end("r/");
  paged.page_bytes = 2000;  // about 19 pairs per answer
  auto all = client.range("r/", paged);
  BOOST_TEST_REQUIRE(all.is_ok(), all.status().message());
  BOOST_TEST_REQUIRE(all->pairs.size() == 300u);
  BOOST_TEST(all->count == 300u);
  BOOST_TEST(all->pages >= 15u, all->pages << " answers");
  for (int i = 0; i < 300; ++i) {
    std::snprintf(key, sizeof key, "r/%03d", i);
    BOOST_TEST(all->pairs[i].first == key);
    BOOST_TEST(all->pairs[i].second == value_of(i));
  }
  paged.limit = 25;
  auto limited = client.range("r/", paged);
  BOOST_TEST_REQUIRE(limited.is_ok());
  BOOST_TEST(limited->pairs.size() == 25u);
  BOOST_TEST(limited->pairs.back().first == "r/024");

  const std::string endpoints = " --endpoints " + cluster->endpoints_flag();
  Run prefix = run_keyval("get --prefix r/ --keys-only --page-bytes 500" + endpoints);
  BOOST_TEST_REQUIRE(prefix.exit_code == 0, prefix.output);
  BOOST_TEST(contains(prefix.output, "r/000\nr/001\n"), prefix.output.substr(0, 200));
  BOOST_TEST(contains(prefix.output, "r/298\nr/299\n"));
  BOOST_TEST(!contains(prefix.output, "r0\n"));
  BOOST_TEST(contains(prefix.output, "300 keys"), prefix.output.substr(prefix.output.size() - 200));

  Run range = run_keyval("range r/100 r/103" + endpoints);
  BOOST_TEST_REQUIRE(range.exit_code == 0, range.output);
  BOOST_TEST(contains(range.output, "r/100\t" + value_of(100) + "\nr/101\t" + value_of(101) + "\nr/102\t" +
                                        value_of(102) + "\n3 keys"),
             range.output);

  expect_caught_up();
  const uint64_t follower = leader_id % 3 + 1;
  Run counted = run_keyval("range \"\" --count --serializable --endpoints " +
                           cluster->client_endpoints()[follower - 1].str());
  BOOST_TEST_REQUIRE(counted.exit_code == 0, counted.output);
  BOOST_TEST(counted.output.find("304\n") == 0, counted.output);
  BOOST_TEST(contains(counted.output, "serializable"), counted.output);

  Run backwards = run_keyval("range b a" + endpoints);
  BOOST_TEST(backwards.exit_code == 2, backwards.output);
  BOOST_TEST(contains(backwards.output, "TO must sort after FROM"), backwards.output);
  expect_clean_stop();
}

BOOST_FIXTURE_TEST_CASE(leader_killed_with_sigkill_under_load_loses_no_acknowledged_write, ClusterFixture) {
  const uint64_t first = leader();
  WriteLoad load(cluster->client_endpoints(), 4, 100, load_options());
  wait_for_acks(load, 200);
  cluster->signal(first, SIGKILL);
  const uint64_t second = leader(first);
  BOOST_TEST(second != first);
  wait_for_acks(load, load.acknowledged() + 200);  // the cluster serves again without the old leader
  BOOST_TEST_REQUIRE(cluster->start(first).is_ok());
  expect_caught_up();
  load.stop();
  expect_no_loss(load);
  expect_clean_stop();
}

// The same with the raft node and the gateway on two scheduler workers (`--threads 2`)
// instead of the network thread (the default, `--threads 0`).
BOOST_AUTO_TEST_CASE(on_scheduler_workers_a_killed_leader_loses_no_acknowledged_write) {
  testing::ClusterFixture fixture({"--threads", "2"});
  LocalCluster& cluster = *fixture.cluster;
  const uint64_t first = fixture.leader();
  WriteLoad load(cluster.client_endpoints(), 4, 100, load_options());
  fixture.wait_for_acks(load, 200);
  cluster.signal(first, SIGKILL);
  const uint64_t second = fixture.leader(first);
  BOOST_TEST(second != first);
  fixture.wait_for_acks(load, load.acknowledged() + 200);
  BOOST_TEST_REQUIRE(cluster.start(first).is_ok());
  fixture.expect_caught_up();
  load.stop();
  fixture.expect_no_loss(load);
  for (const auto& [id, exit] : cluster.stop_all(10000)) {
    BOOST_TEST((exit.exited && exit.code == 0), "node " << id << ": " << exit.describe() << "\n" << fixture.logs());
  }
}

BOOST_FIXTURE_TEST_CASE(a_follower_restarted_after_sigkill_catches_up, ClusterFixture) {
  const uint64_t leader_id = leader();
  const uint64_t follower = leader_id % 3 + 1;
  cluster->signal(follower, SIGKILL);
  KvClient client(cluster->client_endpoints());
  for (int i = 0; i < 300; ++i) BOOST_TEST_REQUIRE(client.put("k" + std::to_string(i), std::string(100, 'x')).is_ok());
  const uint64_t log_before = keyval::testing::file_size(cluster->log_path(follower));
  BOOST_TEST_REQUIRE(cluster->start(follower).is_ok());
  expect_caught_up();
  std::string restart_log = read_text(cluster->log_path(follower)).substr(log_before);
  BOOST_TEST(contains(restart_log, "recovered "), restart_log);
  BOOST_TEST(contains(restart_log, "started in "), restart_log);
  expect_clean_stop();
  // The caught-up follower's data directory verifies clean: WAL and LMDB agree.
  auto verify = run_keyval("wal verify " + cluster->data_directory(follower));
  BOOST_TEST(verify.exit_code == 0, verify.output);
  BOOST_TEST(keyval::testing::json_field(verify.last_line(), "status") == "clean");
}

BOOST_FIXTURE_TEST_CASE(all_nodes_killed_and_restarted_keep_every_acknowledged_write, ClusterFixture) {
  leader();
  WriteLoad load(cluster->client_endpoints(), 4, 100, load_options());
  wait_for_acks(load, 300);
  for (uint64_t id = 1; id <= 3; ++id) cluster->signal(id, SIGKILL);  // mid-load: writes in flight
  load.stop();
  BOOST_TEST_REQUIRE(cluster->start_all().is_ok());
  leader();
  expect_no_loss(load);
  expect_clean_stop();
}

BOOST_FIXTURE_TEST_CASE(a_retried_write_is_applied_once_across_a_leader_change, ClusterFixture) {
  const uint64_t first = leader();
  ClientRequest request;
  request.request_id = 1;
  request.client_id = 0xC0FFEE;
  request.sequence = 1;
  request.op = ClientOp::cas;
  request.key = "once";
  request.value = "first";
  request.expected = std::nullopt;  // only if absent: a second application would fail
  auto answer = exchange_once(cluster->client_endpoints()[first - 1], request);
  BOOST_TEST_REQUIRE(answer.is_ok(), answer.status().message());
  BOOST_TEST_REQUIRE((answer->status == ClientStatus::ok), answer->message);
  BOOST_TEST(answer->cas_succeeded);
  expect_caught_up();  // the entry is on every node before its leader dies
  cluster->signal(first, SIGKILL);
  const uint64_t second = leader(first);
  // The client did not hear the answer (say) and retries the same session and sequence.
  auto retried = exchange_once(cluster->client_endpoints()[second - 1], request);
  BOOST_TEST_REQUIRE(retried.is_ok(), retried.status().message());
  BOOST_TEST_REQUIRE((retried->status == ClientStatus::ok), retried->message);
  BOOST_TEST(retried->cas_succeeded);             // the first result, not a failed second cas
  BOOST_TEST(retried->index == answer->index);    // the same entry
  // A new sequence is a new operation: now the key exists and the cas does not match.
  request.sequence = 2;
  auto next = exchange_once(cluster->client_endpoints()[second - 1], request);
  BOOST_TEST_REQUIRE(next.is_ok(), next.status().message());
  BOOST_TEST(!next->cas_succeeded);
  BOOST_TEST(next->value == "first");
}

// Answers go straight to the client's socket while it has room, and through CAF's buffer, in
// order behind what that buffer holds, when it has not (actors/direct_send.h). A 1 MiB answer is
// more than a fresh loopback socket takes at once: pipelined on one connection, large and small
// answers must each arrive whole, none cut into another. The gets are serializable (the node's
// own state, no leader needed): under the sanitizers a 1 MiB entry can take longer to replicate
// than an election timeout, and leadership may move meanwhile (tls_cluster_test says more).
BOOST_FIXTURE_TEST_CASE(large_and_small_answers_pipelined_on_one_connection_arrive_whole, ClusterFixture) {
  const KvClientOptions patient = testing::through_leader_changes(load_options());
  KvClient client(cluster->client_endpoints(), patient);
  const std::string large = testing::patterned_value(1u << 20);
  auto put = client.put("large", large);
  BOOST_TEST_REQUIRE(put.is_ok(), put.status().message());
  BOOST_TEST_REQUIRE(client.put("small", "s").is_ok());
  // The node that answered last holds both once it applied them (serializable reads wait for nothing).
  const Endpoint endpoint = cluster->client_endpoints()[client.leader() - 1];
  KvClient local({endpoint}, patient);
  const uint64_t applied_by = steady_now_ms() + 20000;
  bool holds = false;
  while (!holds && steady_now_ms() < applied_by) {
    auto got = local.get("small", true);
    holds = got.is_ok() && got->found;
    if (!holds) ::usleep(20 * 1000);
  }
  BOOST_TEST_REQUIRE(holds, "node at port " << endpoint.port << " did not apply the puts\n" << logs());
  const uint64_t deadline = steady_now_ms() + 30000;
  auto fd = socket_connect(endpoint.host, endpoint.port, deadline);
  BOOST_TEST_REQUIRE(fd.is_ok(), fd.status().message());
  constexpr uint64_t requests = 12;
  std::vector<uint8_t> pipelined;
  for (uint64_t id = 1; id <= requests; ++id) {
    ClientRequest request;
    request.request_id = id;
    request.op = ClientOp::get;
    request.serializable = true;
    request.key = id % 2 == 1 ? "large" : "small";
    auto frame = make_frame(encode_client_request(request));
    pipelined.insert(pipelined.end(), frame.begin(), frame.end());
  }
  // A small receive buffer, and no reading for a while: the node's socket fills (its send
  // buffer holds at most 4 MiB here, tcp_wmem), so some answer is only partly taken at once and
  // CAF writes the rest, with the answers after it behind.
  const int receive_bytes = 64 << 10;
  BOOST_TEST_REQUIRE(::setsockopt(*fd, SOL_SOCKET, SO_RCVBUF, &receive_bytes, sizeof receive_bytes) == 0);
  BOOST_TEST_REQUIRE(socket_write_all(*fd, pipelined.data(), pipelined.size(), deadline).kind == SocketIo::ok);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  std::set<uint64_t> answered;
  for (uint64_t n = 0; n < requests; ++n) {
    uint8_t header[frame_header_bytes];
    BOOST_TEST_REQUIRE(socket_read_exact(*fd, header, sizeof header, deadline).kind == SocketIo::ok);
    std::vector<uint8_t> payload(read_frame_header(header));
    BOOST_TEST_REQUIRE(payload.size() < (2u << 20), "answer " << n << ": a frame length of " << payload.size());
    BOOST_TEST_REQUIRE(socket_read_exact(*fd, payload.data(), payload.size(), deadline).kind == SocketIo::ok);
    auto response = decode_client_response(payload.data(), payload.size());
    BOOST_TEST_REQUIRE(response.is_ok(), "answer " << n << ": " << response.status().message());
    BOOST_TEST_REQUIRE((response->status == ClientStatus::ok), response->message);
    BOOST_TEST(response->value == (response->request_id % 2 == 1 ? large : std::string("s")),
               "request " << response->request_id << " got " << response->value.size() << " bytes");
    answered.insert(response->request_id);
  }
  ::close(*fd);
  BOOST_TEST(answered.size() == requests);
}

BOOST_FIXTURE_TEST_CASE(malformed_client_frames_close_that_connection_only, ClusterFixture) {
  const uint64_t leader_id = leader();
  const Endpoint endpoint = cluster->client_endpoints()[leader_id - 1];
  KvClient client(cluster->client_endpoints());
  BOOST_TEST_REQUIRE(client.put("before", "1").is_ok());
  auto refused = [&](const std::vector<uint8_t>& bytes) {
    const uint64_t deadline = steady_now_ms() + 3000;
    auto fd = socket_connect(endpoint.host, endpoint.port, deadline);
    BOOST_TEST_REQUIRE(fd.is_ok(), fd.status().message());
    BOOST_TEST_REQUIRE(socket_write_all(*fd, bytes.data(), bytes.size(), deadline).kind == SocketIo::ok);
    uint8_t header[frame_header_bytes];
    BOOST_TEST_REQUIRE(socket_read_exact(*fd, header, sizeof header, deadline).kind == SocketIo::ok);
    std::vector<uint8_t> payload(read_frame_header(header));
    BOOST_TEST_REQUIRE(socket_read_exact(*fd, payload.data(), payload.size(), deadline).kind == SocketIo::ok);
    auto response = decode_client_response(payload.data(), payload.size());
    uint8_t more;
    SocketIo after = socket_read_exact(*fd, &more, 1, deadline);
    ::close(*fd);
    BOOST_TEST(after.kind == SocketIo::closed, after.what);  // the node closed the connection
    BOOST_TEST_REQUIRE(response.is_ok(), response.status().message());
    BOOST_TEST((response->status == ClientStatus::rejected));
    return response->message;
  };
  std::vector<uint8_t> oversized;
  append_frame_header(oversized, 0x7fffffff);
  BOOST_TEST(contains(refused(oversized), "frame length 2147483647"));
  BOOST_TEST(contains(refused(make_frame(std::vector<uint8_t>(64, 0xAB))), "malformed request"));
  BOOST_TEST(contains(refused(make_frame({})), "frame length 0"));
  // Everyone else is still served, by the same node.
  auto put = client.put("after", "2");
  BOOST_TEST_REQUIRE(put.is_ok(), put.status().message());
  BOOST_TEST(cluster->running(leader_id));
  BOOST_TEST(client.get("before")->value == "1");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(node_command)

// The entry threshold waits, for a state much larger than its entries, until the log since
// the last snapshot holds as many bytes as that snapshot (RaftNodeConfig::snapshot_size_divisor):
// a large state is not rewritten every --snapshot-entries entries.
BOOST_AUTO_TEST_CASE(a_large_state_is_not_rewritten_every_snapshot_entries_entries) {
  TempDir dir;
  LocalClusterOptions options;
  options.directory = dir.path() + "/cluster";
  options.binary = std::getenv("KEYVAL_BINARY") ? std::getenv("KEYVAL_BINARY") : "";
  BOOST_REQUIRE_MESSAGE(!options.binary.empty(), "KEYVAL_BINARY must name the keyval binary (CTest sets it)");
  options.nodes = 1;
  options.extra_node_flags = {"--snapshot-entries", "100", "--log-tail-entries", "10"};
  auto created = LocalCluster::create(options);
  BOOST_REQUIRE_MESSAGE(created.is_ok(), created.status().to_string());
  LocalCluster& cluster = **created;
  BOOST_REQUIRE(cluster.start_all().is_ok());
  BOOST_REQUIRE(cluster.wait_for_leader(cluster_leader_timeout_ms).is_ok());
  KvClient client(cluster.client_endpoints(), load_options());
  const std::string value(100, 'v');
  auto put_range = [&](uint64_t first, uint64_t count) {
    for (uint64_t i = first; i < first + count; ++i) {
      auto put = client.put("key" + std::to_string(i % 1000), value);
      BOOST_REQUIRE_MESSAGE(put.is_ok(), put.status().to_string());
    }
  };
  auto snapshots_since = [&](uint64_t from) {
    std::string log = read_text(cluster.log_path(1)).substr(from);
    uint64_t count = 0;
    for (size_t at = log.find("snapshot taken at index"); at != std::string::npos;
         at = log.find("snapshot taken at index", at + 1)) {
      ++count;
    }
    return count;
  };
  put_range(0, 1000);  // a state of 1,000 keys (about 150 KB in a snapshot file)
  const uint64_t from = cluster.log_bytes(1);
  const uint64_t taken_before = snapshots_since(0);
  put_range(0, 2000);  // 2,000 overwrites: twenty times --snapshot-entries
  const uint64_t taken = snapshots_since(from);
  // The entry threshold alone would take 20; the state's bytes are about 1,000 puts' payload.
  BOOST_TEST(taken_before >= 3u, read_text(cluster.log_path(1)));
  BOOST_TEST(taken >= 1u, read_text(cluster.log_path(1)));
  BOOST_TEST(taken <= 4u, read_text(cluster.log_path(1)));
  cluster.stop_all(5000);
}

BOOST_AUTO_TEST_CASE(bad_flags_and_config_lines_exit_two_naming_the_problem) {
  TempDir dir;
  for (const char* arguments : {"node", "node --id 0 --data-dir x", "node --id 1", "node --id 4 --data-dir x",
                                "node --id 1 --data-dir x --peers 1=nohost", "node --id 1 --data-dir x --tick-ms 0",
                                "node --id 1 --data-dir x --bogus 1", "node --id 1 --data-dir x --peers 1=a.example:1",
                                "node --id 1 --data-dir x --wal-segment-bytes 4095",
                                "node --id 1 --data-dir x --log-level loud", "node --id 1 --data-dir x --log-file /dev/null/f",
                                "node --id 1 --data-dir x --persists-in-flight 0", "node --id 1 --data-dir x --persists-in-flight 65"}) {
    auto run = run_keyval(arguments);
    BOOST_TEST(run.exit_code == 2, arguments << ": " << run.output);
    BOOST_TEST(contains(run.output, "keyval node:"), run.output);
    if (std::string(arguments).find("--persists-in-flight") != std::string::npos) {
      BOOST_TEST(contains(run.output, "--persists-in-flight expects 1..64"), run.output);
    }
  }
  std::ofstream(dir.file("node.conf")) << "# a node\nid = 1\ndata-dir = " << dir.file("d") << "\nport 7000\n";
  auto run = run_keyval("node --config " + dir.file("node.conf"));
  BOOST_TEST(run.exit_code == 2, run.output);
  BOOST_TEST(contains(run.output, "node.conf line 4: expected 'name = value'"), run.output);
}

BOOST_AUTO_TEST_CASE(a_data_directory_of_another_node_or_cluster_is_refused) {
  TempDir dir;
  NodeIdentity other;
  other.cluster = "keyval";
  other.node_id = 2;
  other.voters = {1, 2, 3};
  BOOST_TEST_REQUIRE(claim_data_directory(posix_env(), dir.file("d"), other).is_ok());
  auto run = run_keyval("node --id 1 --data-dir " + dir.file("d") + " --peers 1=127.0.0.1:1,2=127.0.0.1:2,3=127.0.0.1:3");
  BOOST_TEST(run.exit_code == 1, run.output);
  BOOST_TEST(contains(run.output, "belongs to node 2 of cluster keyval"), run.output);
  run = run_keyval("node --id 2 --cluster other --data-dir " + dir.file("d") +
                   " --peers 1=127.0.0.1:1,2=127.0.0.1:2,3=127.0.0.1:3");
  BOOST_TEST(run.exit_code == 1, run.output);
  BOOST_TEST(contains(run.output, "not to node 2 of cluster other"), run.output);
  // Data without an identity (not made by keyval node) is not guessed at either.
  ::mkdir(dir.file("e").c_str(), 0755);
  ::mkdir(dir.file("e/wal").c_str(), 0755);
  run = run_keyval("node --id 1 --data-dir " + dir.file("e") + " --peers 1=127.0.0.1:1 --bootstrap");
  BOOST_TEST(run.exit_code == 1, run.output);
  BOOST_TEST(contains(run.output, "holds data (wal/) but no IDENTITY"), run.output);
}

// --log-file takes the log instead of stderr; --log-level error keeps only the errors.
BOOST_AUTO_TEST_CASE(log_file_and_log_level_choose_where_and_what) {
  TempDir dir;
  uint16_t port = 0;
  const int fd = listen_on_free_port(&port);  // the node cannot start: one error line
  const std::string taken = "127.0.0.1:" + std::to_string(port);
  auto to_stderr = run_keyval("node --id 1 --data-dir " + dir.file("d") + " --peers 1=" + taken + " --bootstrap");
  BOOST_TEST(to_stderr.exit_code == 1, to_stderr.output);
  BOOST_TEST(contains(to_stderr.output, " info [node 1] "), to_stderr.output);
  BOOST_TEST(contains(to_stderr.output, " error [node 1] cannot start: cannot listen for peers on " + taken),
             to_stderr.output);
  auto to_file = run_keyval("node --id 1 --data-dir " + dir.file("d") + " --peers 1=" + taken +
                            " --bootstrap --log-level error --log-file " + dir.file("node.log"));
  BOOST_TEST(to_file.exit_code == 1, to_file.output);
  BOOST_TEST(!contains(to_file.output, "cannot listen"), to_file.output);
  const std::string log = read_text(dir.file("node.log"));
  BOOST_TEST(contains(log, " error [node 1] cannot start: cannot listen for peers on " + taken), log);
  BOOST_TEST(!contains(log, " info "), log);
  ::close(fd);
}

// free_ports picks below the kernel's ephemeral range, where no outgoing connection takes a port
// as its local one between the pick and the node's listen (a CI run lost a cluster that way);
// the ports differ, skip `taken`, and can be listened on.
BOOST_AUTO_TEST_CASE(free_ports_are_below_the_ephemeral_range_distinct_and_listenable) {
  std::ifstream range_file("/proc/sys/net/ipv4/ip_local_port_range");
  uint32_t low = 32768, high = 60999;
  range_file >> low >> high;
  auto first = free_ports(6);
  BOOST_TEST_REQUIRE(first.is_ok(), first.status().to_string());
  auto second = free_ports(6, *first);
  BOOST_TEST_REQUIRE(second.is_ok(), second.status().to_string());
  std::vector<uint16_t> all = *first;
  all.insert(all.end(), second->begin(), second->end());
  std::vector<uint16_t> sorted = all;
  std::sort(sorted.begin(), sorted.end());
  BOOST_TEST((std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end()), "a port was picked twice");
  for (uint16_t port : all) {
    if (low > 11000) BOOST_TEST(port < low, "port " << port << " is in the ephemeral range from " << low);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BOOST_TEST_REQUIRE(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    BOOST_TEST((::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 && ::listen(fd, 1) == 0),
               "cannot listen on picked port " << port);
    ::close(fd);
  }
}

BOOST_AUTO_TEST_CASE(a_port_in_use_is_refused_with_the_address) {
  TempDir dir;
  uint16_t port = 0;
  const int fd = listen_on_free_port(&port);
  const std::string taken = "127.0.0.1:" + std::to_string(port);
  auto run = run_keyval("node --id 1 --data-dir " + dir.file("d") + " --peers 1=" + taken + " --bootstrap");
  BOOST_TEST(run.exit_code == 1, run.output);
  BOOST_TEST(contains(run.output, "cannot listen for peers on " + taken), run.output);
  BOOST_TEST(contains(run.output, "cannot listen on " + taken + ": address already in use"), run.output);
  // The client port and the Redis port say the same, not CAF's "tcp socket creation failed".
  auto spare = free_ports(3);
  BOOST_TEST_REQUIRE(spare.is_ok(), spare.status().to_string());
  struct Busy {
    std::string name;
    std::string flags;
  };
  const Busy cases[] = {
      {"client", "--client-listen " + taken},
      {"redis", "--client-listen 127.0.0.1:" + std::to_string((*spare)[2]) + " --redis-listen " + taken}};
  for (size_t i = 0; i < 2; ++i) {
    const std::string peer = "127.0.0.1:" + std::to_string((*spare)[i]);
    auto busy = run_keyval("node --id 1 --data-dir " + dir.file(cases[i].name) + " --peers 1=" + peer + " " +
                           cases[i].flags + " --bootstrap");
    BOOST_TEST(busy.exit_code == 1, busy.output);
    BOOST_TEST(contains(busy.output, "cannot listen on " + taken + ": address already in use"), busy.output);
    BOOST_TEST(!contains(busy.output, "tcp socket creation failed"), busy.output);
  }
  ::close(fd);
}

// `cluster start` on ports another process holds used to start nodes that could not bind,
// report the other cluster's leader as its own and wait with no live node of its own.
BOOST_AUTO_TEST_CASE(cluster_start_on_busy_ports_names_the_port_and_starts_nothing) {
  TempDir dir;
  uint16_t taken = 0;
  int fd = listen_on_free_port(&taken);
  // The busy port is the second node's client port; the first node's must be free (another
  // test's connection may hold the port below an ephemeral one), so that this one is named.
  for (int attempt = 0; attempt < 20 && (taken <= 1024 || !testing::port_is_free(static_cast<uint16_t>(taken - 1))); ++attempt) {
    ::close(fd);
    fd = listen_on_free_port(&taken);
  }
  auto run = run_keyval("cluster start --dir " + dir.file("c") + " --nodes 3 --client-port-base " +
                        std::to_string(taken - 1) + " --peer-port-base 1");
  BOOST_TEST(run.exit_code == 1, run.output);
  BOOST_TEST(contains(run.output, "client port 127.0.0.1:" + std::to_string(taken) + " is not free"), run.output);
  BOOST_TEST(!contains(run.output, "started"), run.output);
  BOOST_TEST(!contains(run.output, "leader:"), run.output);
  ::close(fd);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace keyval
