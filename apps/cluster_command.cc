// keyval cluster start|demo: a local cluster of `keyval node` processes on 127.0.0.1.
//
//   keyval cluster start --dir D [--nodes 3] [--client-port-base 7101] [--peer-port-base 7201]
//                        [--tls-dir CERTS] [--cluster-secret-file F]
//       starts the nodes (data in D/node<i>, logs in D/node<i>.log), waits for a leader,
//       prints the endpoints and stays in the foreground; SIGINT or SIGTERM stops every node
//       it started (SIGTERM, by PID) and exits 0 when all of them stopped cleanly. Ports
//       another process holds are refused before anything starts (exit 1, the port named);
//       a node that exits during start-up, or every node stopping by itself, exits 1.
//       --tls-dir: a directory made by scripts/make-certs.sh CERTS 1..N: mutual TLS between the
//       nodes and TLS on their client ports (docs/SECURITY.md); --cluster-secret-file: every
//       node proves the secret on its peer links. Both are checked before anything starts.
//   keyval cluster demo [--dir D --keep] [--keys N] [--writers W] [--value-bytes B]
//       the README's main job: starts a cluster on free ports, writes and reads N keys, kills
//       the leader with SIGKILL under load, shows the new leader and the restarted node's
//       recovery, verifies every acknowledged write, stops everything. Last line JSON; exit 0
//       only when no acknowledged write was lost and every node stopped cleanly.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "apps/cli.h"
#include "apps/commands.h"
#include "apps/local_cluster.h"

namespace keyval::commands {
namespace {

constexpr int exit_failed = 1;
constexpr uint64_t leader_timeout_ms = 10000;

Result<std::unique_ptr<LocalCluster>> make_cluster(const std::string& directory, uint64_t nodes, uint16_t client_base,
                                                   uint16_t peer_base, const std::string& tls_directory = "",
                                                   const std::string& cluster_secret_file = "", uint16_t redis_base = 0) {
  LocalClusterOptions options;
  for (uint64_t i = 0; redis_base != 0 && i < nodes; ++i) options.redis_ports.push_back(static_cast<uint16_t>(redis_base + i));
  options.directory = directory;
  options.nodes = nodes;
  options.client_port_base = client_base;
  options.peer_port_base = peer_base;
  options.tls_directory = tls_directory;
  options.cluster_secret_file = cluster_secret_file;
  return LocalCluster::create(options);
}

// The first of `count` ports from `base` on 127.0.0.1 that cannot be bound (another cluster,
// or anything else, listens there), named with the reason; ok when all are free. The nodes
// bind with SO_REUSEADDR, so the check does too: a port in TIME_WAIT is free for them.
Status check_ports_free(uint16_t base, uint64_t count, const char* what) {
  for (uint64_t i = 0; i < count; ++i) {
    const uint16_t port = static_cast<uint16_t>(base + i);
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return Status::io_error(std::string("socket: ") + std::strerror(errno));
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int bound = ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
    int error = errno;
    ::close(fd);
    if (bound != 0) {
      return Status::io_error(std::string(what) + " port 127.0.0.1:" + std::to_string(port) + " is not free (" +
                              std::strerror(error) + "): another cluster may be running there; stop it or pick " +
                              "other ports with --client-port-base / --peer-port-base");
    }
  }
  return Status::ok();
}

// "node 1: exit 0, node 2: ..." and whether every one exited 0.
bool describe_exits(const std::map<uint64_t, NodeExit>& exits, std::string* text) {
  bool clean = true;
  for (const auto& [id, exit] : exits) {
    *text += (text->empty() ? "" : ", ") + ("node " + std::to_string(id) + ": " + exit.describe());
    clean = clean && exit.exited && exit.code == 0;
  }
  return clean;
}

void print_status(LocalCluster& cluster) {
  auto views = cluster.status();
  for (uint64_t id = 1; id <= views.size(); ++id) {
    std::cout << "      node " << id << " " << cluster.client_endpoints()[id - 1].str() << ": ";
    if (!views[id - 1].is_ok()) {
      std::cout << "down (" << views[id - 1].status().message() << ")\n";
      continue;
    }
    const auto& view = *views[id - 1];
    std::cout << view.role << ", term " << view.term << ", commit " << view.commit_index << ", applied "
              << view.applied_index << " (pid " << cluster.pid(id) << ")\n";
  }
}

// --- keyval cluster start -------------------------------------------------------------------

std::string tls_directory_of(const cli::Flags& flags) { return flags.get("tls-dir"); }

int start_main(const std::vector<std::string>& args) {
  const cli::Command command =
      cli::Command("cluster start", "a local cluster of keyval node processes in the foreground; Ctrl-C stops it")
          .value("dir", "", "data directories and logs (D/node<i>, D/node<i>.log); required")
          .value("nodes", "3", "cluster size, 1..9")
          .value("client-port-base", "7101", "node i serves clients on 127.0.0.1:(base + i - 1)")
          .value("peer-port-base", "7201", "node i listens for peers on 127.0.0.1:(base + i - 1)")
          .value("tls-dir", "", "certificates made by scripts/make-certs.sh: TLS everywhere (docs/SECURITY.md)")
          .value("cluster-secret-file", "", "the peers' shared secret (docs/SECURITY.md)")
          .value("redis-port-base", "0 (none)", "node i serves the Redis protocol on 127.0.0.1:(base + i - 1) (docs/REDIS.md)")
          .footer("exit: 0 every node stopped cleanly, 1 a port in use or a node that failed, 2 usage");
  cli::Flags flags;
  if (auto exit = command.parse(args, flags)) return *exit;
  if (!flags.has("dir")) return cli::usage_error("cluster start", "--dir is required");
  auto nodes = flags.get_u64("nodes", 3);
  auto client_base = flags.get_u64("client-port-base", 7101);
  auto peer_base = flags.get_u64("peer-port-base", 7201);
  auto redis_base = flags.get_u64("redis-port-base", 0);
  for (const auto* value : {&nodes, &client_base, &peer_base, &redis_base}) {
    if (!value->is_ok()) return cli::usage_error("cluster start", value->status().message());
  }
  if (*redis_base + *nodes > 65536) return cli::usage_error("cluster start", "--redis-port-base leaves no room for every node");
  if (*redis_base != 0 && !tls_directory_of(flags).empty()) {
    return cli::usage_error("cluster start", "--redis-port-base cannot be combined with --tls-dir yet (docs/REDIS.md)");
  }
  if (*nodes == 0 || *nodes > 9) return cli::usage_error("cluster start", "--nodes expects 1..9");
  if (*client_base == 0 || *client_base + *nodes > 65536 || *peer_base == 0 || *peer_base + *nodes > 65536) {
    return cli::usage_error("cluster start", "port bases expect 1..65535, with room for every node");
  }
  for (const auto& [base, what] : {std::pair{*client_base, "client"}, std::pair{*peer_base, "peer"},
                                   std::pair{*redis_base, "redis"}}) {
    if (base == 0) continue;
    Status free = check_ports_free(static_cast<uint16_t>(base), *nodes, what);
    if (!free.is_ok()) {
      std::cerr << "keyval cluster start: " << free.message() << "\n";
      return exit_failed;
    }
  }
  const std::string tls_directory = flags.get("tls-dir");
  auto cluster = make_cluster(flags.get("dir"), *nodes, static_cast<uint16_t>(*client_base),
                              static_cast<uint16_t>(*peer_base), tls_directory, flags.get("cluster-secret-file"),
                              static_cast<uint16_t>(*redis_base));
  if (!cluster.is_ok()) return cli::usage_error("cluster start", cluster.status().message());
  LocalCluster& c = **cluster;

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  Status started = c.start_all();
  if (!started.is_ok()) {
    std::cerr << "keyval cluster start: " << started.to_string() << "\n";
    return exit_failed;
  }
  std::cout << "started " << *nodes << " nodes in " << c.directory() << " (logs: node<i>.log)\n";
  auto leader = c.wait_for_leader(leader_timeout_ms);
  if (!leader.is_ok()) {
    std::string exits;
    describe_exits(c.stop_all(), &exits);
    std::cerr << "keyval cluster start: " << leader.status().message() << "; stopped (" << exits
              << "); see the logs in " << c.directory() << "\n";
    return exit_failed;
  }
  // A leader answering on our ports is ours only while our processes run: a node that could
  // not bind exits, and whatever holds its port would answer in its place.
  for (uint64_t id = 1; id <= *nodes; ++id) {
    if (c.running(id)) continue;
    std::string exits;
    describe_exits(c.stop_all(), &exits);
    std::cerr << "keyval cluster start: node " << id << " exited during start-up; stopped (" << exits
              << "); see " << c.log_path(id) << "\n";
    return exit_failed;
  }
  std::cout << "leader: node " << *leader << "\n";
  print_status(c);
  const std::string client_tls_flags = tls_directory.empty() ? "" : " --tls-ca " + tls_directory + "/ca.crt";
  std::cout << "endpoints: " << c.endpoints_flag() << "\n"
            << "try: keyval put hello world --endpoints " << c.endpoints_flag() << client_tls_flags << "\n";
  if (*redis_base != 0) {
    std::cout << "redis: 127.0.0.1:" << *redis_base << ".." << (*redis_base + *nodes - 1)
              << " (try: redis-cli -p " << *redis_base << " SET hello world)\n";
  }
  std::cout << "stop: Ctrl-C, or kill " << ::getpid() << "\n"
            << std::flush;
  timespec poll{0, 200 * 1000 * 1000};
  while (true) {
    if (::sigtimedwait(&stop_signals, nullptr, &poll) > 0) break;
    uint64_t live = 0;
    for (uint64_t id = 1; id <= *nodes; ++id) {
      if (c.pid(id) != 0 && !c.running(id)) {
        std::cout << "node " << id << " stopped by itself (" << c.last_exit(id)->describe() << "); see "
                  << c.log_path(id) << "\n" << std::flush;
      }
      live += c.pid(id) != 0 && c.running(id);
    }
    if (live == 0) {
      std::cerr << "keyval cluster start: every node has stopped; see the logs in " << c.directory() << "\n";
      return exit_failed;
    }
  }
  std::string exits;
  bool clean = describe_exits(c.stop_all(), &exits);
  std::cout << "stopped: " << exits << "\n";
  return clean ? cli::exit_ok : exit_failed;
}

// --- keyval cluster demo --------------------------------------------------------------------

int cluster_demo_main(const std::vector<std::string>& args) {
  const char* command = "cluster demo";
  const cli::Command spec =
      cli::Command(command, "start a cluster, write, kill the leader, recover, verify every acknowledged write, stop")
          .value("dir", "a new temporary directory", "the cluster's directory")
          .flag("keep", "keep the directory")
          .value("keys", "1000", "keys written, 1..1000000")
          .value("writers", "4", "concurrent writers, 1..64")
          .value("value-bytes", "100", "bytes of each value, 0..65536");
  cli::Flags flags;
  if (auto exit = spec.parse(args, flags)) return *exit;
  auto keys = flags.get_u64("keys", 1000);
  auto writers = flags.get_u64("writers", 4);
  auto value_bytes = flags.get_u64("value-bytes", 100);
  for (const auto* value : {&keys, &writers, &value_bytes}) {
    if (!value->is_ok()) return cli::usage_error(command, value->status().message());
  }
  if (*keys == 0 || *keys > 1000000) return cli::usage_error(command, "--keys expects 1..1000000");
  if (*writers == 0 || *writers > 64) return cli::usage_error(command, "--writers expects 1..64");
  if (*value_bytes > 65536) return cli::usage_error(command, "--value-bytes expects 0..65536");
  std::string directory = flags.get("dir");
  const bool remove_after = directory.empty() && !flags.has("keep");
  if (directory.empty()) {
    auto made = cli::make_temp_directory("cluster");
    if (!made.is_ok()) return cli::usage_error(command, made.status().message());
    directory = *made;
  }
  auto created = make_cluster(directory, 3, 0, 0);
  if (!created.is_ok()) return cli::usage_error(command, created.status().message());
  LocalCluster& c = **created;
  auto fail = [&](const std::string& what) {
    std::cerr << "keyval cluster demo: " << what << " (logs kept in " << directory << ")\n";
    c.stop_all();
    return exit_failed;
  };
  const double t0 = cli::monotonic_seconds();
  auto ms_since = [](double start) { return static_cast<uint64_t>((cli::monotonic_seconds() - start) * 1e3); };

  std::cout << "[1/7] starting 3 nodes in " << directory << " on 127.0.0.1 (" << c.endpoints_flag() << ")\n";
  Status started = c.start_all();
  if (!started.is_ok()) return fail(started.to_string());
  auto leader = c.wait_for_leader(leader_timeout_ms);
  if (!leader.is_ok()) return fail(leader.status().message());
  std::cout << "      leader: node " << *leader << " after " << ms_since(t0) << " ms\n";

  std::cout << "[2/7] writing " << *keys << " keys (" << *value_bytes << "-byte values, one client)\n";
  KvClient client(c.client_endpoints());
  double write_start = cli::monotonic_seconds();
  for (uint64_t i = 0; i < *keys; ++i) {
    std::string value = "value-" + std::to_string(i);
    value.resize(std::max<size_t>(*value_bytes, value.size()), '.');
    auto put = client.put("key-" + std::to_string(i), value);
    if (!put.is_ok()) return fail("put: " + put.status().message());
  }
  double write_s = cli::monotonic_seconds() - write_start;
  std::printf("      %llu acknowledged in %.2f s (%.0f puts/s, each durable on a majority)\n",
              static_cast<unsigned long long>(*keys), write_s, *keys / write_s);

  std::cout << "[3/7] reading them back (linearizable reads through the leader)\n";
  uint64_t matched = 0;
  for (uint64_t i = 0; i < *keys; ++i) {
    std::string value = "value-" + std::to_string(i);
    value.resize(std::max<size_t>(*value_bytes, value.size()), '.');
    auto got = client.get("key-" + std::to_string(i));
    if (got.is_ok() && got->found && got->value == value) ++matched;
  }
  std::cout << "      " << matched << " of " << *keys << " match\n";
  if (matched != *keys) return fail("reads did not match the writes");

  std::cout << "[4/7] " << *writers << " writers running; SIGKILL the leader, node " << *leader << " (pid "
            << c.pid(*leader) << ")\n";
  WriteLoad load(c.client_endpoints(), *writers, *value_bytes);
  while (load.acknowledged() < 200) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const uint64_t killed = *leader;
  double kill_time = cli::monotonic_seconds();
  c.signal(killed, SIGKILL);
  auto next_leader = c.wait_for_leader(leader_timeout_ms, killed);
  if (!next_leader.is_ok()) return fail(next_leader.status().message());
  uint64_t election_ms = ms_since(kill_time);
  std::cout << "      new leader: node " << *next_leader << ", " << election_ms << " ms after the kill\n";
  print_status(c);

  std::cout << "[5/7] restarting node " << killed << "\n";
  const uint64_t log_from = c.log_bytes(killed);
  double restart_time = cli::monotonic_seconds();
  Status restarted = c.start(killed);
  if (!restarted.is_ok()) return fail(restarted.to_string());
  std::string recovery;
  for (int i = 0; i < 500 && recovery.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    recovery = c.last_log_line(killed, "started in ", log_from);
  }
  std::cout << "      " << c.last_log_line(killed, "recovered ", log_from) << "\n      " << recovery << "\n";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  load.stop();
  auto views = c.status();
  uint64_t commit = 0;
  for (const auto& view : views) {
    if (view.is_ok()) commit = std::max(commit, view->commit_index);
  }
  Status caught_up = c.wait_for_applied(commit, 10000);
  if (!caught_up.is_ok()) return fail(caught_up.message());
  uint64_t catch_up_ms = ms_since(restart_time);
  std::cout << "      node " << killed << " applied through index " << commit << ", " << catch_up_ms
            << " ms after its restart\n";
  print_status(c);

  std::cout << "[6/7] verifying every acknowledged write\n";
  WriteLoadReport report = load.verify();
  std::cout << "      " << report.acknowledged << " acknowledged under load: " << report.verified
            << " read back with their value, " << report.lost << " lost, " << report.unreadable << " unreadable; "
            << report.unknown << " of unknown outcome (" << report.unknown_present << " took effect), "
            << report.failed << " refused\n";
  for (const std::string& problem : report.problems) std::cout << "      problem: " << problem << "\n";

  std::cout << "[7/7] stopping the cluster (SIGTERM to each node)\n";
  std::string exits;
  bool clean = describe_exits(c.stop_all(), &exits);
  std::cout << "      " << exits << "\n";

  const bool ok = report.lost == 0 && report.unreadable == 0 && clean;
  cli::JsonLine json;
  json.add("demo", "cluster").add("nodes", uint64_t{3}).add("keys", *keys).add("puts_per_s", *keys / write_s)
      .add("killed_leader", killed).add("new_leader", *next_leader).add("election_ms", election_ms)
      .add("catch_up_ms", catch_up_ms).add("acked_under_load", report.acknowledged).add("verified", report.verified)
      .add("lost_acked_writes", report.lost).add("unreadable", report.unreadable).add("unknown", report.unknown)
      .add_bool("clean_shutdown", clean).add_bool("ok", ok);
  std::cout << json.str() << std::endl;
  if (remove_after && ok) {
    std::error_code ignored;
    std::filesystem::remove_all(directory, ignored);
  } else {
    std::cout << "data and logs kept in " << directory << "\n";
  }
  return ok ? cli::exit_ok : exit_failed;
}

}  // namespace

int cluster_main(const std::vector<std::string>& args) {
  return cli::dispatch("cluster",
                       {{"start", "a local cluster in the foreground; Ctrl-C stops it", start_main},
                        {"demo", "start, write, kill the leader, recover, verify, stop", cluster_demo_main}},
                       args, "expects start or demo");
}

}  // namespace keyval::commands
