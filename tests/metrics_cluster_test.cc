// Goal: `keyval node --metrics-listen` serves /metrics that Prometheus' own tools accept and
// scrape, and /health that follows the node's leader; `keyval status` says when no quorum answers.
// Method: real three-process clusters on 127.0.0.1, plain HTTP over sockets, Debian's promtool
// and prometheus run as child processes (stopped by PID); peers killed with SIGKILL by PID.
#define BOOST_TEST_MODULE metrics_cluster_test
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>

#include "tests/support/cluster_fixture.h"

extern char** environ;

namespace keyval::testing {
namespace {

struct HttpReply {
  int status = 0;  // 0: no answer
  std::string head;
  std::string body;
};

int connect_local(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  BOOST_REQUIRE(fd >= 0);
  timeval timeout{5, 0};  // a listener that never answers fails the test, never hangs it
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void send_all(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

// Everything the server sends until it closes (or 5 s pass without a byte).
std::string read_to_end(int fd) {
  std::string bytes;
  char buffer[8192];
  while (true) {
    ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    bytes.append(buffer, static_cast<size_t>(n));
  }
  return bytes;
}

HttpReply parse_reply(const std::string& bytes) {
  HttpReply reply;
  const size_t head_end = bytes.find("\r\n\r\n");
  if (bytes.rfind("HTTP/1.1 ", 0) != 0 || head_end == std::string::npos) return reply;
  reply.status = std::atoi(bytes.c_str() + 9);
  reply.head = bytes.substr(0, head_end);
  reply.body = bytes.substr(head_end + 4);
  return reply;
}

// One request on its own connection, the server asked to close after it.
HttpReply http_request(uint16_t port, const std::string& method, const std::string& path) {
  int fd = connect_local(port);
  if (fd < 0) return {};
  send_all(fd, method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  HttpReply reply = parse_reply(read_to_end(fd));
  ::close(fd);
  return reply;
}

HttpReply http_get(uint16_t port, const std::string& path) { return http_request(port, "GET", path); }

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  BOOST_REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  ::close(fd);
  return ntohs(address.sin_port);
}

// A program CI installs (scripts/install-deps.sh): its path, or the test fails naming it.
std::string required_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream directories(path ? path : "/usr/bin:/bin");
  for (std::string directory; std::getline(directories, directory, ':');) {
    const std::string candidate = (directory.empty() ? "." : directory) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  BOOST_FAIL(name + " is not installed (not on PATH): it comes with Debian's prometheus package, which "
                    "scripts/install-deps.sh installs");
  return {};
}

// The command's JSON line (stdout), wherever stderr's lines fell around it.
std::string json_line(const std::string& output) {
  const size_t at = output.find("{\"command\"");
  return at == std::string::npos ? std::string() : output.substr(at, output.find('\n', at) - at);
}

std::string quoted(const std::string& text) { return "'" + text + "'"; }

// The value of the unlabelled (or exactly labelled) sample `series` in a /metrics body; -1 when absent.
double sample_value(const std::string& body, const std::string& series) {
  const std::string needle = "\n" + series + " ";
  const size_t at = ("\n" + body).find(needle);
  if (at == std::string::npos) return -1;
  return std::strtod(body.c_str() + at + needle.size() - 1, nullptr);
}

// A three-node cluster whose node i serves metrics on metrics_ports[i - 1].
struct MetricsCluster {
  TempDir dir;
  std::vector<uint16_t> metrics_ports;
  std::unique_ptr<LocalCluster> cluster;

  MetricsCluster() {
    LocalClusterOptions options = cluster_options(dir.path() + "/cluster");
    // Three distinct ports, kept out of the ones the cluster picks for its nodes (the kernel
    // may hand a released port out again: a node's peer port once equalled another's metrics port).
    auto picked = free_ports(3);
    BOOST_REQUIRE_MESSAGE(picked.is_ok(), picked.status().to_string());
    metrics_ports = *picked;
    options.taken_ports = metrics_ports;
    for (uint64_t id = 1; id <= 3; ++id) {
      options.node_flags[id] = {"--metrics-listen", "127.0.0.1:" + std::to_string(metrics_ports[id - 1])};
    }
    cluster = create_cluster(options);
    Status started = cluster->start_all();
    BOOST_REQUIRE_MESSAGE(started.is_ok(), started.to_string());
  }
  ~MetricsCluster() { cluster->stop_all(5000); }

  uint16_t port(uint64_t id) const { return metrics_ports.at(id - 1); }
  std::string logs() const { return logs_of(*cluster); }

  // Polls /health on node `id` until it answers `status`, for up to timeout_ms.
  HttpReply wait_for_health(uint64_t id, int status, uint64_t timeout_ms = 10000) const {
    const uint64_t deadline = steady_now_ms() + timeout_ms;
    HttpReply reply;
    do {
      reply = http_get(port(id), "/health");
      if (reply.status == status) return reply;
      ::usleep(50 * 1000);
    } while (steady_now_ms() < deadline);
    return reply;
  }
};

// A child process started by PID and stopped by PID (SIGTERM, then SIGKILL after 10 s).
class Child {
 public:
  Child(const std::vector<std::string>& args, const std::string& log_path) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<char*> argv;
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    const int spawned = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    BOOST_REQUIRE_MESSAGE(spawned == 0, "cannot start " + args[0] + ": " + std::strerror(spawned));
  }
  ~Child() { stop(); }

  // True when it exited by itself (it should not have).
  bool exited() {
    if (pid_ <= 0) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return true;
    }
    return false;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const uint64_t deadline = steady_now_ms() + 10000;
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (steady_now_ms() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      ::usleep(20 * 1000);
    }
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(metrics_cluster)

BOOST_AUTO_TEST_CASE(metrics_show_the_raft_state_and_requests_and_pass_promtool) {
  const std::string promtool = required_program("promtool");
  MetricsCluster fixture;
  const uint64_t leader = wait_for_leader(*fixture.cluster);
  constexpr uint64_t puts = 20;
  KvClient client(fixture.cluster->client_endpoints(), load_options());
  for (uint64_t i = 0; i < puts; ++i) {
    auto put = client.put("metrics-key-" + std::to_string(i), "value");
    BOOST_REQUIRE_MESSAGE(put.is_ok() && put->status == ClientStatus::ok, "put " << i << " failed\n" << fixture.logs());
  }
  expect_caught_up(*fixture.cluster);
  uint64_t leader_term = 0;
  for (const auto& view : fixture.cluster->status()) {
    if (view.is_ok() && view->node_id == leader) leader_term = view->term;
  }

  HttpReply metrics = http_get(fixture.port(leader), "/metrics");
  BOOST_REQUIRE_MESSAGE(metrics.status == 200, "GET /metrics: " << metrics.status << "\n" << fixture.logs());
  BOOST_TEST(contains(metrics.head, "Content-Type: text/plain; version=0.0.4"), metrics.head);
  const std::string& body = metrics.body;
  BOOST_TEST(sample_value(body, "keyval_raft_role{role=\"leader\"}") == 1, body);
  BOOST_TEST(sample_value(body, "keyval_raft_role{role=\"follower\"}") == 0, body);
  BOOST_TEST(sample_value(body, "keyval_raft_leader_id") == static_cast<double>(leader), body);
  BOOST_TEST(sample_value(body, "keyval_raft_term") >= 1);
  BOOST_TEST(sample_value(body, "keyval_raft_term") == static_cast<double>(leader_term), body);
  BOOST_TEST(sample_value(body, "keyval_raft_commit_index") >= static_cast<double>(puts), body);
  BOOST_TEST(sample_value(body, "keyval_raft_applied_index") >= static_cast<double>(puts), body);
  BOOST_TEST(sample_value(body, "keyval_client_requests_total{operation=\"put\",outcome=\"ok\"}") >=
                 static_cast<double>(puts),
             body);
  BOOST_TEST(sample_value(body, "keyval_client_request_duration_seconds_count{operation=\"put\"}") >=
                 static_cast<double>(puts),
             body);
  BOOST_TEST(sample_value(body, "keyval_raft_proposals_total{result=\"accepted\"}") >= static_cast<double>(puts), body);
  BOOST_TEST(sample_value(body, "keyval_wal_fsync_duration_seconds_count") >= 1, body);
  BOOST_TEST(sample_value(body, "keyval_wal_written_bytes_total") > 0, body);
  BOOST_TEST(sample_value(body, "keyval_node_serving") == 1, body);

  // Debian's promtool lints every node's exposition (names, units, HELP and TYPE).
  for (uint64_t id = 1; id <= 3; ++id) {
    HttpReply node = http_get(fixture.port(id), "/metrics");
    BOOST_REQUIRE(node.status == 200);
    const std::string file = fixture.dir.path() + "/metrics-" + std::to_string(id) + ".txt";
    write_file(file, std::vector<uint8_t>(node.body.begin(), node.body.end()));
    Run checked = run_shell(promtool + " check metrics < " + quoted(file));
    BOOST_TEST(checked.exit_code == 0, "node " << id << ": promtool check metrics: " << checked.output);
    BOOST_TEST(checked.output.empty(), "node " << id << ": promtool check metrics: " << checked.output);
    // Every node sees the leader and applies: healthy.
    HttpReply health = fixture.wait_for_health(id, 200);
    BOOST_TEST(health.status == 200, "node " << id << " /health: " << health.status << " " << health.body);
    BOOST_TEST(health.body == "ok\n");
  }
}

BOOST_AUTO_TEST_CASE(the_listener_refuses_what_it_does_not_serve_and_keeps_serving) {
  MetricsCluster fixture;
  wait_for_leader(*fixture.cluster);  // every node has started (and listens)
  const uint16_t port = fixture.port(1);
  HttpReply missing = http_get(port, "/nothing");
  BOOST_TEST(missing.status == 404);
  BOOST_TEST(contains(missing.body, "/metrics"), missing.body);
  HttpReply posted = http_request(port, "POST", "/metrics");
  BOOST_TEST(posted.status == 405);
  BOOST_TEST(contains(posted.head, "Allow: GET"), posted.head);
  // A malformed request gets 400 and its connection closed, while another connection stays open.
  int idle = connect_local(port);
  BOOST_REQUIRE(idle >= 0);
  int bad = connect_local(port);
  BOOST_REQUIRE(bad >= 0);
  send_all(bad, "NOT HTTP AT ALL\r\n\r\n");
  HttpReply refused = parse_reply(read_to_end(bad));  // ends: the server closed it
  ::close(bad);
  BOOST_TEST(refused.status == 400);
  // An oversized head: 431, closed.
  int large = connect_local(port);
  BOOST_REQUIRE(large >= 0);
  // Exactly the bound, no end of head: the listener has read every byte when it closes (unread
  // bytes would make TCP reset the connection, which may lose the answer).
  const std::string start = "GET /metrics HTTP/1.1\r\nX-Filler: ";
  send_all(large, start + std::string(8192 - start.size(), 'x'));
  HttpReply too_large = parse_reply(read_to_end(large));
  ::close(large);
  BOOST_TEST(too_large.status == 431);
  // The connection opened before still works, with keep-alive: two requests, two answers.
  send_all(idle, "GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string both = read_to_end(idle);
  ::close(idle);
  BOOST_TEST(both.rfind("HTTP/1.1 ", 0) == 0u, both);
  BOOST_TEST(contains(both.substr(1), "HTTP/1.1 200 OK"), both);
  BOOST_TEST(contains(both, "# TYPE keyval_raft_term gauge"), both);

  // A taken port: the node refuses to start and says why.
  const std::string data = fixture.dir.path() + "/busy";
  auto free = free_ports(2, {port});
  BOOST_REQUIRE_MESSAGE(free.is_ok(), free.status().to_string());
  Run busy = run_keyval("node --id 1 --bootstrap --data-dir " + data + " --peers 1=127.0.0.1:" +
                        std::to_string((*free)[0]) + " --client-listen 127.0.0.1:" + std::to_string((*free)[1]) +
                        " --metrics-listen 127.0.0.1:" + std::to_string(port));
  BOOST_TEST(busy.exit_code == 1, busy.output);
  BOOST_TEST(contains(busy.output, "address already in use"), busy.output);
  BOOST_TEST(contains(busy.output, "127.0.0.1:" + std::to_string(port)), busy.output);
}

BOOST_AUTO_TEST_CASE(health_and_status_say_so_when_a_node_loses_its_peers) {
  MetricsCluster fixture;
  const uint64_t leader = wait_for_leader(*fixture.cluster);
  BOOST_TEST(fixture.wait_for_health(leader, 200).status == 200);
  Run quorum = run_keyval("status --timeout-ms 2000 --endpoints " + fixture.cluster->endpoints_flag());
  BOOST_TEST(quorum.exit_code == 0, quorum.output);
  BOOST_TEST(json_field(json_line(quorum.output), "quorum") == "true", quorum.output);
  // The leader survives; its two peers are killed by PID.
  for (uint64_t id = 1; id <= 3; ++id) {
    if (id != leader) fixture.cluster->signal(id, SIGKILL);
  }
  HttpReply health = fixture.wait_for_health(leader, 503);
  BOOST_TEST(health.status == 503, health.status << " " << health.body << "\n" << fixture.logs());
  BOOST_TEST(health.body == "no leader\n", health.body);
  Run status = run_keyval("status --timeout-ms 2000 --request-timeout-ms 300 --endpoints " +
                          fixture.cluster->endpoints_flag());
  BOOST_TEST(status.exit_code == 4, status.output);
  BOOST_TEST(contains(status.output, "no quorum reachable: 1 of 3 voters answered"), status.output);
  BOOST_TEST(contains(status.output, "node " + std::to_string(leader) + " "), status.output);  // its line stays
  BOOST_TEST(json_field(json_line(status.output), "quorum") == "false", status.output);
}

BOOST_AUTO_TEST_CASE(a_prometheus_server_scrapes_every_node) {
  const std::string prometheus = required_program("prometheus");
  const std::string promtool = required_program("promtool");
  MetricsCluster fixture;
  wait_for_leader(*fixture.cluster);
  const std::string config = fixture.dir.path() + "/prometheus.yml";
  std::string targets;
  for (uint16_t port : fixture.metrics_ports) {
    targets += (targets.empty() ? "'" : ", '") + std::string("127.0.0.1:") + std::to_string(port) + "'";
  }
  const std::string yaml = "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n"
                           "  - job_name: keyval\n    static_configs:\n      - targets: [" + targets + "]\n";
  write_file(config, std::vector<uint8_t>(yaml.begin(), yaml.end()));
  const uint16_t web_port = free_port();
  const std::string server = "http://127.0.0.1:" + std::to_string(web_port);
  const std::string log = fixture.dir.path() + "/prometheus.log";
  Child child({prometheus, "--config.file=" + config, "--web.listen-address=127.0.0.1:" + std::to_string(web_port),
               "--storage.tsdb.path=" + fixture.dir.path() + "/tsdb"},
              log);
  // Until the three targets are up and a keyval_ series is stored from each.
  Run up, series;
  const uint64_t deadline = steady_now_ms() + 30000;
  while (steady_now_ms() < deadline && !child.exited()) {
    up = run_shell(promtool + " query instant " + server + " 'sum(up{job=\"keyval\"})'");
    series = run_shell(promtool + " query instant " + server + " 'count(keyval_raft_term)'");
    if (contains(up.output, "=> 3 @") && contains(series.output, "=> 3 @")) break;
    ::usleep(250 * 1000);
  }
  BOOST_TEST(contains(up.output, "=> 3 @"), "sum(up): " << up.output << "\n" << read_text(log));
  BOOST_TEST(contains(series.output, "=> 3 @"), "count(keyval_raft_term): " << series.output);
  child.stop();
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace keyval::testing
