// Fault steps on real processes and in the simulator: the step lines of a scenario, the
// peer-link fault proxy on real sockets (127.0.0.1), a 3-node cluster of `keyval node`
// processes under an isolated leader, a one-way cut and a paused leader with its history
// checked for linearizability, a doctored history refused, a full tmpfs (as root), and the same
// scenario in `keyval sim --scenario`.
#define BOOST_TEST_MODULE fault_steps_test
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "actors/framing.h"
#include "actors/peer_handshake.h"
#include "apps/fault_proxy.h"
#include "sim/scenario.h"
#include "tests/support/run_keyval.h"
#include "tests/support/temp_dir.h"

using keyval::testing::contains;
using keyval::testing::json_field;
using keyval::testing::read_text;
using keyval::testing::run_keyval;
using keyval::testing::TempDir;

namespace keyval {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::vector<std::string> fields_of(const std::string& line) {
  std::vector<std::string> fields;
  std::istringstream in(line);
  for (std::string field; std::getline(in, field, ',');) fields.push_back(field);
  return fields;
}

// The rows of a cycles.csv by column name.
std::vector<std::map<std::string, std::string>> rows_of(const std::string& path) {
  const auto lines = lines_of(read_text(path));
  BOOST_TEST_REQUIRE(!lines.empty(), path << " is empty");
  const auto header = fields_of(lines[0]);
  std::vector<std::map<std::string, std::string>> rows;
  for (size_t line = 1; line < lines.size(); ++line) {
    const auto fields = fields_of(lines[line]);
    BOOST_TEST_REQUIRE(fields.size() == header.size(), lines[line]);
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size(); ++i) row[header[i]] = fields[i];
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string parse_error(const std::string& text) {
  auto parsed = sim::parse_scenario(text, "s.scenario");
  BOOST_TEST_REQUIRE(!parsed.is_ok(), "parsed: " << text);
  return parsed.status().message();
}

// --- sockets for the proxy test ---------------------------------------------------------

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

int listen_on(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  BOOST_TEST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  BOOST_TEST_REQUIRE(::listen(fd, 8) == 0);
  return fd;
}

int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  BOOST_TEST_REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  return fd;
}

void send_all(int fd, const std::vector<uint8_t>& bytes) {
  BOOST_TEST_REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
}

std::vector<uint8_t> hello_from(uint64_t node) {
  PeerHello hello;
  hello.dialer_id = node;
  hello.acceptor_id = 2;
  return encode_peer_hello(hello);
}

std::vector<uint8_t> frame_of(const std::string& text) {
  std::vector<uint8_t> frame(frame_header_bytes + text.size());
  write_frame_header(frame.data(), static_cast<uint32_t>(text.size()));
  std::copy(text.begin(), text.end(), frame.begin() + frame_header_bytes);
  return frame;
}

// What arrives on `fd` within `wait_ms` (until it is quiet that long).
std::string receive_for(int fd, int wait_ms) {
  std::string received;
  while (true) {
    pollfd entry{fd, POLLIN, 0};
    if (::poll(&entry, 1, wait_ms) <= 0) return received;
    char buffer[4096];
    ssize_t count = ::read(fd, buffer, sizeof buffer);
    if (count <= 0) return received;
    received.append(buffer, static_cast<size_t>(count));
  }
}

// The payloads of the frames in `bytes` (after the hello).
std::vector<std::string> payloads(const std::string& bytes) {
  std::vector<std::string> found;
  size_t at = peer_hello_bytes;
  while (at + frame_header_bytes <= bytes.size()) {
    const uint32_t length = read_frame_header(reinterpret_cast<const uint8_t*>(bytes.data() + at));
    found.push_back(bytes.substr(at + frame_header_bytes, length));
    at += frame_header_bytes + length;
  }
  return found;
}

// A step scenario that should keep writing through every fault.
const char* const faults_scenario =
    "name faults\nnodes 3\nclients 3\nmix put 50 get 30 del 10 cas 10\nkeys 20\nsettle 400ms\n"
    "isolate leader 2s\nheal 600ms\noneway leader>follower 1s\nheal 600ms\npause leader 2s\nheal 600ms\n";

}  // namespace

BOOST_AUTO_TEST_SUITE(step_lines)

BOOST_AUTO_TEST_CASE(every_step_is_read_in_order_with_its_nodes_and_hold) {
  auto parsed = sim::parse_scenario(
      "nodes 5\npartition 1,2|3,4,5 for 2s\noneway leader>3\nisolate follower 500ms\ndelay 50ms\n"
      "delay 20ms 1>2 for 3s\nheal\npause leader 2s\nfill-disk 4\n",
      "s.scenario");
  BOOST_TEST_REQUIRE(parsed.is_ok(), parsed.status().to_string());
  const auto& steps = parsed->steps;
  BOOST_TEST_REQUIRE(steps.size() == 8u);
  BOOST_TEST(parsed->cycles == 8u);  // one row per step
  BOOST_TEST((steps[0].kind == sim::StepKind::partition && steps[0].groups.size() == 2 && steps[0].groups[1].size() == 3));
  BOOST_TEST(steps[0].hold_ms == 2000u);
  BOOST_TEST(steps[0].text == "partition 1,2|3,4,5 for 2s");
  BOOST_TEST((steps[1].kind == sim::StepKind::oneway && steps[1].groups[0][0].kind == sim::NodeRef::leader));
  BOOST_TEST(steps[1].groups[1][0].node == 3u);
  BOOST_TEST(steps[1].hold_ms == 1000u);  // the default
  BOOST_TEST((steps[2].kind == sim::StepKind::isolate && steps[2].groups[0][0].kind == sim::NodeRef::follower));
  BOOST_TEST(steps[2].hold_ms == 500u);
  BOOST_TEST((steps[3].kind == sim::StepKind::delay && steps[3].delay_ms == 50 && steps[3].groups.empty()));
  BOOST_TEST((steps[4].delay_ms == 20 && steps[4].groups.size() == 2 && steps[4].hold_ms == 3000));
  BOOST_TEST((steps[5].kind == sim::StepKind::heal));
  BOOST_TEST((steps[6].kind == sim::StepKind::pause && steps[6].hold_ms == 2000));
  BOOST_TEST((steps[7].kind == sim::StepKind::fill_disk && steps[7].groups[0][0].node == 4));
  BOOST_TEST(parsed->fills_disk());
}

BOOST_AUTO_TEST_CASE(bad_steps_are_named_with_what_was_expected) {
  BOOST_TEST(contains(parse_error("partition 1,2\n"), "line 1: 'partition' expects groups of nodes such as 1,2|3"));
  BOOST_TEST(contains(parse_error("partition 1,x|3\n"), "'partition' expects nodes as an id (1..9), leader or follower, got 'x'"));
  BOOST_TEST(contains(parse_error("oneway 1-2\n"), "'oneway' expects a directed link such as 1>2"));
  BOOST_TEST(contains(parse_error("oneway\n"), "'oneway' expects a directed link such as 1>2"));  // fuzz finding: no link at all
  BOOST_TEST(contains(parse_error("nodes 3\nisolate 4\n"), "line 2: 'isolate 4' names node 4 but the cluster has 3 nodes"));
  BOOST_TEST(contains(parse_error("partition 1,2|2\n"), "'partition 1,2|2' names 2 twice"));
  BOOST_TEST(contains(parse_error("delay fast\n"), "'delay' expects a duration such as 500ms, 2s or 1m, got 'fast'"));
  BOOST_TEST(contains(parse_error("heal now\n"), "'heal' expects nothing but maybe 'for DURATION'"));
  BOOST_TEST(contains(parse_error("pause leader for 0ms\n"), "'pause' lasts 0 ms"));
  BOOST_TEST(contains(parse_error("kill leader\nisolate leader\n"),
                      "line 1: 'kill' does not apply to a scenario of fault steps"));
}

BOOST_AUTO_TEST_CASE(the_example_files_parse) {
  for (const char* name : {"partitions", "full-disk"}) {
    auto parsed = sim::load_scenario(std::string(KEYVAL_SOURCE_DIR) + "/experiments/" + name + ".scenario");
    BOOST_TEST(parsed.is_ok(), name << ": " << parsed.status().to_string());
    BOOST_TEST(parsed->has_steps(), name);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(fault_proxy)

// Node 1 dials node 2 through node 2's proxy listener: frames pass; cut, they are read and
// dropped whole on the same connection; healed, they pass again; delayed, they arrive late.
BOOST_AUTO_TEST_CASE(frames_are_dropped_on_a_cut_pair_and_pass_again_once_healed) {
  const uint16_t node_port = free_port(), proxy_port = free_port();
  int node_listener = listen_on(node_port);
  auto proxy = FaultProxy::start({{2, proxy_port, node_port}});
  BOOST_TEST_REQUIRE(proxy.is_ok(), proxy.status().to_string());
  int sender = connect_to(proxy_port);
  send_all(sender, hello_from(1));
  send_all(sender, frame_of("first"));
  int receiver = ::accept(node_listener, nullptr, nullptr);
  BOOST_TEST_REQUIRE(receiver >= 0);
  std::string received = receive_for(receiver, 200);
  BOOST_TEST(received.substr(0, peer_hello_bytes) == std::string(reinterpret_cast<const char*>(hello_from(1).data()), peer_hello_bytes));

  (*proxy)->cut(1, 2);
  send_all(sender, frame_of("lost-1"));
  send_all(sender, frame_of("lost-2"));
  received += receive_for(receiver, 200);
  (*proxy)->heal();
  send_all(sender, frame_of("second"));
  received += receive_for(receiver, 200);
  BOOST_TEST((payloads(received) == std::vector<std::string>{"first", "second"}));
  BOOST_TEST((*proxy)->counters().frames_dropped == 2u);
  BOOST_TEST((*proxy)->counters().frames_forwarded == 2u);

  (*proxy)->cut(2, 1);  // the other direction: node 1's frames to node 2 still pass
  (*proxy)->delay(1, 2, 150);
  const auto sent_at = Clock::now();
  send_all(sender, frame_of("late"));
  pollfd entry{receiver, POLLIN, 0};
  BOOST_TEST_REQUIRE(::poll(&entry, 1, 2000) == 1);
  const auto waited_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - sent_at).count();
  BOOST_TEST(waited_ms >= 140, waited_ms);
  received += receive_for(receiver, 100);
  BOOST_TEST(payloads(received).back() == "late");

  // Not a hello: closed, and counted as refused.
  int stranger = connect_to(proxy_port);
  send_all(stranger, std::vector<uint8_t>(peer_hello_bytes, 'x'));
  BOOST_TEST(receive_for(stranger, 1000).empty());
  BOOST_TEST((*proxy)->counters().refused == 1u);
  for (int fd : {stranger, sender, receiver, node_listener}) ::close(fd);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(fault_steps_on_processes)

// The leader isolated, a one-way cut from the leader to a follower, the leader paused, each
// healed: writes go on within each fault (the majority elects a new leader), every step has its
// row, and the recorded history of every operation is linearizable. The history then checks on
// its own, and the same history with one read's value changed is refused.
BOOST_AUTO_TEST_CASE(isolation_oneway_and_pause_keep_writing_and_the_history_is_linearizable) {
  TempDir dir;
  const std::string scenario = dir.file("faults.scenario");
  std::ofstream(scenario) << faults_scenario;
  auto run = run_keyval("experiment run " + scenario + " --out " + dir.file("out"));
  BOOST_TEST_REQUIRE(run.exit_code == 0, run.output);
  BOOST_TEST(contains(run.output, "step 6 of 6"), run.output);
  const std::string summary = run.last_line();
  BOOST_TEST(json_field(summary, "linearizable") == "yes", summary);
  BOOST_TEST(json_field(summary, "lost_acked_writes") == "0");
  BOOST_TEST(std::stoull(json_field(summary, "history_operations")) > 100u, summary);
  const auto rows = rows_of(dir.file("out/cycles.csv"));
  BOOST_TEST_REQUIRE(rows.size() == 6u, read_text(dir.file("out/cycles.csv")));
  const std::vector<std::string> kinds = {"isolate", "heal", "oneway", "heal", "pause", "heal"};
  for (size_t k = 0; k < rows.size(); ++k) {
    const auto& row = rows[k];
    BOOST_TEST(row.at("how") == kinds[k]);
    BOOST_TEST(std::stoull(row.at("ops_acked")) > 0u, "step " << k + 1);
    const double unavailable = std::stod(row.at("unavailable_ms"));
    BOOST_TEST(unavailable >= 0, "step " << k + 1);
    // Writes resumed while the fault was still on (2 s isolate and pause, 1 s one-way cut).
    BOOST_TEST(unavailable < std::stod(row.at("down_ms")), "step " << k + 1 << ": " << unavailable << " ms");
  }
  for (size_t k : {0, 4}) {  // the isolated and the paused leader lost leadership to another node
    BOOST_TEST(rows[k].at("was_leader") == "1");
    BOOST_TEST(rows[k].at("target_nodes") == rows[k].at("leader_before"));
    BOOST_TEST(rows[k].at("leader_after") != rows[k].at("leader_before"), "step " << k + 1);
    BOOST_TEST(rows[k].at("leader_after") != "0");
  }
  BOOST_TEST(contains(rows[2].at("target_nodes"), ">"));

  const std::string history = dir.file("out/history.jsonl");
  auto check = run_keyval("experiment check " + history);
  BOOST_TEST(check.exit_code == 0, check.output);
  BOOST_TEST(json_field(check.last_line(), "linearizable") == "yes");
  // One read doctored: it returns a value no one ever wrote.
  std::string text = read_text(history);
  size_t read_at = std::string::npos;
  for (size_t at = text.find("\"op\":\"get\""); at != std::string::npos; at = text.find("\"op\":\"get\"", at + 1)) {
    const size_t end = text.find('\n', at);
    if (text.substr(at, end - at).find("\"status\":\"ok\"") != std::string::npos) {
      read_at = at;
      break;
    }
  }
  BOOST_TEST_REQUIRE(read_at != std::string::npos, "no acknowledged read in the history");
  const size_t output = text.find("\"output\":", read_at);
  const size_t end = text.find('}', output);
  text.replace(output, end - output, "\"output\":\"doctored\"");
  const std::string doctored = dir.file("doctored.jsonl");
  std::ofstream(doctored) << text;
  check = run_keyval("experiment check " + doctored);
  BOOST_TEST(check.exit_code == 1, check.output);
  BOOST_TEST(json_field(check.last_line(), "linearizable") == "no");
  BOOST_TEST(contains(check.output, "not linearizable: key \""), check.output);
  BOOST_TEST(contains(check.output, doctored), check.output);
}

// As root each node's data directory is a 64 MiB tmpfs of its own: filling a follower's makes it
// stop by itself (fail-stop on ENOSPC); the cluster writes on, the node comes back through its
// recovery when the space is back, and nothing is lost.
BOOST_AUTO_TEST_CASE(a_full_disk_on_a_follower_is_survived_as_root) {
  if (::geteuid() != 0) {
    BOOST_TEST_MESSAGE("skipped: fill-disk mounts a tmpfs per node, which needs root");
    return;
  }
  TempDir dir;
  const std::string scenario = dir.file("full.scenario");
  std::ofstream(scenario) << "nodes 3\nclients 3\nmix put 80 get 20\nsettle 300ms\nfill-disk follower 3s\nheal 500ms\n";
  auto run = run_keyval("experiment run " + scenario + " --out " + dir.file("out"));
  BOOST_TEST_REQUIRE(run.exit_code == 0, run.output);
  BOOST_TEST(json_field(run.last_line(), "linearizable") == "yes");
  const auto rows = rows_of(dir.file("out/cycles.csv"));
  BOOST_TEST_REQUIRE(rows.size() == 2u);
  BOOST_TEST(rows[0].at("how") == "fill-disk");
  BOOST_TEST(rows[0].at("was_leader") == "0");
  BOOST_TEST(std::stod(rows[0].at("unavailable_ms")) < 2000);
  BOOST_TEST(contains(run.output, "stopped on the full disk (exit 1); restarting it"), run.output);
  BOOST_TEST(std::stoull(rows[0].at("recovery_entries")) > 0u, read_text(dir.file("out/cycles.csv")));
  BOOST_TEST(std::stod(rows[0].at("recovery_ms")) >= 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(fault_steps_in_the_simulator)

// The same file in the simulator: every step has its row, the isolated and the paused leader
// are replaced, writes go on within each fault, and the history is linearizable; the same seed
// gives the same rows. A full disk in the simulator too.
BOOST_AUTO_TEST_CASE(the_same_scenario_runs_in_the_simulator) {
  TempDir dir;
  const std::string scenario = dir.file("faults.scenario");
  std::ofstream(scenario) << faults_scenario << "fill-disk follower 1s\nheal 300ms\n";
  auto run = run_keyval("sim --scenario " + scenario + " --out " + dir.file("out"));
  BOOST_TEST_REQUIRE(run.exit_code == 0, run.output);
  BOOST_TEST(json_field(run.last_line(), "linearizable") == "yes", run.output);
  BOOST_TEST(json_field(run.last_line(), "mode") == "simulation");
  const auto rows = rows_of(dir.file("out/cycles.csv"));
  BOOST_TEST_REQUIRE(rows.size() == 8u, read_text(dir.file("out/cycles.csv")));
  for (size_t k : {0, 4}) {
    BOOST_TEST(rows[k].at("was_leader") == "1");
    BOOST_TEST(rows[k].at("leader_after") != rows[k].at("leader_before"), "step " << k + 1);
  }
  for (const auto& row : rows) {
    BOOST_TEST(std::stod(row.at("unavailable_ms")) >= 0);
    BOOST_TEST(std::stod(row.at("unavailable_ms")) < std::stod(row.at("down_ms")), row.at("how"));
  }
  BOOST_TEST(rows[6].at("how") == "fill-disk");
  auto again = run_keyval("sim --scenario " + scenario + " --out " + dir.file("again"));
  BOOST_TEST(read_text(dir.file("again/cycles.csv")) == read_text(dir.file("out/cycles.csv")));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace keyval
