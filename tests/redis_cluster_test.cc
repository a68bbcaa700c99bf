// Goal: real Redis tools and a real Redis client library use a 3-node KeyVal cluster through
// the Redis gateway (docs/REDIS.md): on the leader and on followers (which forward), with
// pipelines, atomic increments, and no acknowledged write lost when the leader is killed.
// Method: `keyval node --redis-listen` processes on 127.0.0.1; redis-cli and redis-benchmark
// (Debian redis-tools) and python3-redis (tests/redis/redis_client.py) as child processes.
#define BOOST_TEST_MODULE redis_cluster_test
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/cluster_fixture.h"

namespace keyval {
namespace {

using testing::TempDir;

const std::string client_script = std::string(KEYVAL_SOURCE_DIR) + "/tests/redis/redis_client.py";

using Shell = testing::Run;

Shell shell(const std::string& command) { return testing::run_shell(command); }

// The tools the tests drive must be installed (scripts/install-deps.sh): a missing one fails
// the test by name instead of skipping it.
void require_tool(const std::string& check, const std::string& package) {
  BOOST_REQUIRE_MESSAGE(shell(check).exit_code == 0, "'" + check + "' failed: install " + package +
                                                         " (scripts/install-deps.sh)");
}

void require_tools() {
  require_tool("redis-cli --version", "redis-tools");
  require_tool("redis-benchmark --version", "redis-tools");
  require_tool("/usr/bin/python3 -c 'import redis'", "python3-redis");
}

struct RedisCluster {
  TempDir temp;
  std::vector<uint16_t> ports;
  std::unique_ptr<LocalCluster> cluster;
  uint64_t leader = 0;

  explicit RedisCluster(const std::vector<std::string>& node_flags = {}) {
    auto picked = free_ports(3);
    BOOST_REQUIRE_MESSAGE(picked.is_ok(), picked.status().to_string());
    ports = *picked;
    LocalClusterOptions options = testing::cluster_options(temp.file("cluster"), node_flags);
    options.redis_ports = ports;
    cluster = testing::create_cluster(options);
    BOOST_REQUIRE(cluster->start_all().is_ok());
    leader = testing::wait_for_leader(*cluster);
  }

  uint16_t port(uint64_t id) const { return ports[id - 1]; }
  uint64_t follower() const { return leader == 1 ? 2 : 1; }

  std::string cli(uint64_t id, const std::string& arguments) {
    Shell run = shell("redis-cli -p " + std::to_string(port(id)) + " " + arguments);
    BOOST_REQUIRE_MESSAGE(run.exit_code == 0, "redis-cli " + arguments + ": " + run.output);
    std::string out = run.output;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }
};

// A raw connection to a Redis port, for bytes no client library would send.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    BOOST_REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    timeval timeout{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~RawConnection() { ::close(fd_); }

  void send(const std::string& bytes) { BOOST_REQUIRE(::write(fd_, bytes.data(), bytes.size()) == ssize_t(bytes.size())); }

  // Everything until the peer closes (or the 5 s timeout).
  std::string read_to_end() {
    std::string text;
    char buffer[4096];
    while (true) {
      ssize_t n = ::read(fd_, buffer, sizeof buffer);
      if (n <= 0) return text;
      text.append(buffer, static_cast<size_t>(n));
    }
  }

  std::string read_some(size_t bytes) {
    std::string text;
    char buffer[4096];
    while (text.size() < bytes) {
      ssize_t n = ::read(fd_, buffer, sizeof buffer);
      if (n <= 0) break;
      text.append(buffer, static_cast<size_t>(n));
    }
    return text;
  }

 private:
  int fd_ = -1;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_gateway)

BOOST_AUTO_TEST_CASE(redis_cli_reads_and_writes_through_the_leader_and_the_followers) {
  require_tools();
  RedisCluster redis;
  const uint64_t follower = redis.follower();
  BOOST_CHECK_EQUAL(redis.cli(follower, "PING"), "PONG");
  BOOST_CHECK_EQUAL(redis.cli(follower, "SET greeting hello"), "OK");
  for (uint64_t id = 1; id <= 3; ++id) BOOST_CHECK_EQUAL(redis.cli(id, "GET greeting"), "hello");
  BOOST_CHECK_EQUAL(redis.cli(redis.leader, "INCR counter"), "1");
  BOOST_CHECK_EQUAL(redis.cli(follower, "INCRBY counter 9"), "10");
  BOOST_CHECK_EQUAL(redis.cli(follower, "MSET a 1 b 2"), "OK");
  BOOST_CHECK_EQUAL(redis.cli(redis.leader, "--no-raw MGET a b nope"), "1) \"1\"\n2) \"2\"\n3) (nil)");
  BOOST_CHECK_EQUAL(redis.cli(follower, "EXISTS a b nope"), "2");
  BOOST_CHECK_EQUAL(redis.cli(follower, "DEL a b nope"), "2");
  BOOST_CHECK_EQUAL(redis.cli(follower, "DBSIZE"), "2");
  BOOST_CHECK_EQUAL(redis.cli(follower, "--scan --pattern 'g*'"), "greeting");
  BOOST_CHECK_EQUAL(redis.cli(follower, "KEYS '*'"), "counter\ngreeting");
  BOOST_CHECK_EQUAL(redis.cli(follower, "-3 --no-raw GET nope"), "(nil)");
  const std::string hello = redis.cli(follower, "-3 --no-raw HELLO 3");
  BOOST_CHECK_MESSAGE(hello.find("\"proto\"\n6# (integer) 3") != std::string::npos ||
                          hello.find("\"proto\" => (integer) 3") != std::string::npos,
                      hello);
  BOOST_CHECK_EQUAL(redis.cli(follower, "GETDEL greeting"), "hello");
  BOOST_CHECK_EQUAL(redis.cli(follower, "EXISTS greeting"), "0");
  const std::string unknown = redis.cli(follower, "FLY away");
  BOOST_CHECK_MESSAGE(unknown.find("unknown command 'FLY'") != std::string::npos, unknown);
  const std::string arity = redis.cli(follower, "GET");
  BOOST_CHECK_MESSAGE(arity.find("wrong number of arguments for 'get' command") != std::string::npos, arity);
  const std::string info = redis.cli(redis.leader, "INFO replication");
  BOOST_CHECK_MESSAGE(info.find("raft_role:leader") != std::string::npos, info);
  // The leader answered its GET and MGET from GetBatches; a follower's gateway refuses them
  // (it cannot confirm a read index), so its reads went the general way, to the leader.
  const std::string leader_stats = redis.cli(redis.leader, "INFO stats");
  BOOST_CHECK_MESSAGE(leader_stats.find("batched_read_commands:2\r") != std::string::npos ||
                          leader_stats.find("batched_read_commands:2\n") != std::string::npos,
                      leader_stats);
  const std::string follower_stats = redis.cli(follower, "INFO stats");
  BOOST_CHECK_MESSAGE(follower_stats.find("batched_read_commands:0") != std::string::npos, follower_stats);
  const std::string follower_info = redis.cli(follower, "INFO replication");
  BOOST_CHECK_MESSAGE(follower_info.find("raft_leader_id:" + std::to_string(redis.leader)) != std::string::npos,
                      follower_info);
}

BOOST_AUTO_TEST_CASE(a_client_library_pipelines_and_increments_atomically_through_a_follower) {
  require_tools();
  RedisCluster redis;
  const std::string port = std::to_string(redis.port(redis.follower()));
  Shell check = shell("/usr/bin/python3 " + client_script + " check " + port);
  BOOST_CHECK_MESSAGE(check.exit_code == 0 && check.output.find("check ok") != std::string::npos, check.output);
  // Four clients, each 50 increments, through two different nodes: no increment is lost.
  Shell a = shell("/usr/bin/python3 " + client_script + " incr " + port + " hits 4 50");
  BOOST_REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  Shell b = shell("/usr/bin/python3 " + client_script + " incr " + std::to_string(redis.port(redis.leader)) +
                  " hits 2 50");
  BOOST_REQUIRE_MESSAGE(b.exit_code == 0, b.output);
  BOOST_CHECK_EQUAL(redis.cli(redis.leader, "GET hits"), "300");
}

BOOST_AUTO_TEST_CASE(redis_benchmark_runs_pipelined_sets_and_gets_against_a_follower) {
  require_tools();
  RedisCluster redis;
  Shell bench = shell("redis-benchmark -p " + std::to_string(redis.port(redis.follower())) +
                      " -t set,get -n 4000 -c 8 -P 16 -d 100 -r 1000 -q");
  BOOST_REQUIRE_MESSAGE(bench.exit_code == 0, bench.output);
  BOOST_CHECK_MESSAGE(bench.output.find("SET: ") != std::string::npos, bench.output);
  BOOST_CHECK_MESSAGE(bench.output.find("GET: ") != std::string::npos, bench.output);
  BOOST_CHECK_MESSAGE(bench.output.find("requests per second") != std::string::npos, bench.output);
  const uint64_t keys = std::stoull(redis.cli(redis.leader, "DBSIZE"));
  BOOST_CHECK_MESSAGE(keys >= 100 && keys <= 1000, "DBSIZE " + std::to_string(keys));
}

// The failure case: a pipelined load through a follower while the leader is killed.
BOOST_AUTO_TEST_CASE(a_pipelined_load_loses_no_acknowledged_write_when_the_leader_is_killed) {
  require_tools();
  RedisCluster redis;
  const uint64_t old_leader = redis.leader;
  const uint64_t follower = redis.follower();
  const uint64_t third = 6 - old_leader - follower;
  const std::string acknowledged = redis.temp.file("acknowledged");
  const std::string stop = redis.temp.file("stop");
  const std::string command = "/usr/bin/python3 " + client_script + " load " + acknowledged + " " + stop + " " +
                              std::to_string(redis.port(follower)) + " " + std::to_string(redis.port(third));
  std::string load_output;
  std::thread load([&] { load_output = shell(command).output; });
  auto lines = [&] {
    std::ifstream in(acknowledged);
    return static_cast<size_t>(std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), '\n'));
  };
  auto wait_for_lines = [&](size_t at_least) {
    for (int i = 0; i < 200 && lines() < at_least; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return lines();
  };
  const size_t before_kill = wait_for_lines(500);
  redis.cluster->signal(old_leader, SIGKILL);
  testing::wait_for_leader(*redis.cluster, old_leader);
  const size_t after_election = wait_for_lines(before_kill + 500);
  { std::ofstream(stop) << "stop\n"; }
  load.join();
  BOOST_TEST_MESSAGE("load: " << load_output << " before the kill " << before_kill << ", after " << after_election);
  BOOST_REQUIRE_MESSAGE(before_kill >= 500, "the load acknowledged only " + std::to_string(before_kill) +
                                                " writes before the kill: " + load_output);
  BOOST_CHECK_MESSAGE(after_election >= before_kill + 500, "the load made no progress under the new leader: " +
                                                               load_output + testing::logs_of(*redis.cluster));
  Shell verify = shell("/usr/bin/python3 " + client_script + " verify " + acknowledged + " " +
                       std::to_string(redis.port(third)));
  BOOST_CHECK_MESSAGE(verify.exit_code == 0, verify.output);
}

// --redis-password-file: every node asks for AUTH; the password from the file (its newline
// dropped) opens the connection, a wrong one does not.
BOOST_AUTO_TEST_CASE(a_password_file_makes_every_node_require_auth) {
  require_tools();
  TempDir dir;
  const std::string file = dir.file("redis-password");
  { std::ofstream(file) << "a redis password of some length\n"; }
  std::filesystem::permissions(file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::replace);
  RedisCluster redis({"--redis-password-file", file});
  const std::string port = std::to_string(redis.port(redis.follower()));
  Shell open = shell("redis-cli -p " + port + " SET k v");
  BOOST_CHECK_MESSAGE(open.output.find("NOAUTH Authentication required.") != std::string::npos, open.output);
  Shell wrong = shell("redis-cli --no-auth-warning -a 'not it' -p " + port + " SET k v");
  BOOST_CHECK_MESSAGE(wrong.output.find("WRONGPASS") != std::string::npos, wrong.output);
  Shell right = shell("redis-cli --no-auth-warning -a 'a redis password of some length' -p " + port + " SET k v");
  BOOST_CHECK_MESSAGE(right.exit_code == 0 && right.output == "OK\n", right.output);
  Shell read = shell("redis-cli --no-auth-warning -a 'a redis password of some length' -p " +
                     std::to_string(redis.port(redis.leader)) + " GET k");
  BOOST_CHECK_MESSAGE(read.output == "v\n", read.output);
}

// A node that lost its quorum: each command is retried until its deadline (5 s), then
// answered with an error; a write's says it may or may not have taken effect unless every
// attempt was refused, a read's says to try again. The node serves on meanwhile.
BOOST_AUTO_TEST_CASE(commands_to_a_node_without_quorum_end_at_their_deadline_with_an_error) {
  require_tools();
  RedisCluster redis;
  const uint64_t alone = redis.follower();
  for (uint64_t id = 1; id <= 3; ++id) {
    if (id != alone) redis.cluster->signal(id, SIGKILL);
  }
  const std::string port = std::to_string(redis.port(alone));
  for (const std::string& command : {std::string("SET k v"), std::string("GET k")}) {
    const auto start = std::chrono::steady_clock::now();
    Shell run = shell("redis-cli -p " + port + " " + command);
    const auto took =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
    const bool write = command[0] == 'S';
    const bool said_so = write ? (run.output.find("may or may not have taken effect") != std::string::npos ||
                                  run.output.find("did not take effect") != std::string::npos)
                               : run.output.find("TRYAGAIN") != std::string::npos;
    BOOST_TEST(said_so, command << ": " << run.output);
    // Answered at the deadline, not before it and not long after (the sweep runs every 25 ms).
    BOOST_TEST(took >= 4500, command << " answered after " << took << " ms: " << run.output);
    BOOST_TEST(took < 30000, command << " answered after " << took << " ms");
  }
  Shell ping = shell("redis-cli -p " + port + " PING");
  BOOST_TEST(ping.output == "PONG\n", ping.output);
}

BOOST_AUTO_TEST_CASE(malformed_resp_closes_only_that_connection) {
  RedisCluster redis;
  const uint16_t port = redis.port(redis.follower());
  RawConnection healthy(port);
  {
    RawConnection bad(port);
    bad.send("*1\r\n$-7\r\n");
    BOOST_CHECK_EQUAL(bad.read_to_end(), "-ERR Protocol error: invalid bulk length\r\n");
  }
  {
    RawConnection oversized(port);
    oversized.send("*2\r\n$3\r\nGET\r\n$999999999\r\n");
    BOOST_CHECK_EQUAL(oversized.read_to_end(), "-ERR Protocol error: invalid bulk length\r\n");
  }
  // Pipelined commands on the healthy connection: answered in order.
  healthy.send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
  BOOST_CHECK_EQUAL(healthy.read_some(19), "+OK\r\n+PONG\r\n$1\r\nv\r\n");
}

// `keyval cluster start --redis-port-base P`: every node it starts serves Redis on P + i - 1,
// its banner says so, and SIGTERM (by PID) stops every node with exit 0.
BOOST_AUTO_TEST_CASE(cluster_start_with_a_redis_port_base_serves_redis_on_every_node) {
  require_tools();
  TempDir dir;
  const uint16_t client_base = testing::free_port_run(static_cast<uint16_t>(24000 + ::getpid() % 3000));
  const uint16_t peer_base = testing::free_port_run(static_cast<uint16_t>(client_base + 10));
  const uint16_t redis_base = testing::free_port_run(static_cast<uint16_t>(peer_base + 10));
  const std::string output = dir.file("cluster-start.out");
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    const std::string command = "exec \"" + std::string(std::getenv("KEYVAL_BINARY")) + "\" cluster start --dir " +
                                dir.file("c") + " --client-port-base " + std::to_string(client_base) +
                                " --peer-port-base " + std::to_string(peer_base) + " --redis-port-base " +
                                std::to_string(redis_base) + " > " + output + " 2>&1";
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  auto read_output = [&] {
    std::ifstream in(output);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  for (int i = 0; i < 300 && read_output().find("stop: ") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const std::string started = read_output();
  BOOST_CHECK_MESSAGE(started.find("redis: 127.0.0.1:" + std::to_string(redis_base)) != std::string::npos, started);
  Shell set = shell("redis-cli -p " + std::to_string(redis_base) + " SET started yes");
  BOOST_CHECK_MESSAGE(set.exit_code == 0 && set.output == "OK\n", set.output << started);
  for (int i = 1; i < 3; ++i) {
    Shell get = shell("redis-cli -p " + std::to_string(redis_base + i) + " GET started");
    BOOST_CHECK_MESSAGE(get.output == "yes\n", get.output);
  }
  ::kill(pid, SIGTERM);
  int status = 0;
  BOOST_REQUIRE(::waitpid(pid, &status, 0) == pid);
  BOOST_CHECK_MESSAGE(WIFEXITED(status) && WEXITSTATUS(status) == 0, read_output());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace keyval
