// keyval bench replace: replacing a follower of a loaded 3-node cluster, as an operator does it
// (docs/MEMBERSHIP.md), on real `keyval node` processes on 127.0.0.1 (apps/local_cluster.h) in
// a temporary directory (removed at the end unless --keep).
//
//   keyval bench replace [--keys 1000000] [--value-bytes 100] [--clients 16] [--load-clients 64]
//                        [--window-s 5] [--snapshot-send-rate B] [--dir D] [--keep]
//     1. writes --keys keys (--load-clients clients; the node's default snapshot settings, so
//        the state is in a snapshot and a short log tail);
//     2. --clients closed-loop put clients start (unique keys, every acknowledged one read back
//        at the end) and their throughput is measured for --window-s seconds: "before";
//     3. a follower is replaced (apps/cluster_membership.h): node 4 added as a learner, started
//        with --join and a new, empty data directory, promoted once within the promote bound,
//        followed until it applied the commit index the cluster had at its start; then the old
//        follower removed, stopped by PID (SIGTERM) and its data directory deleted. Throughput
//        "during" is from node 4's start until it applied that index and was a voter;
//     4. the load runs one more second, stops, and every acknowledged put is read back.
//
// Prints the time until node 4 was a voter (from `member add`, and from its start), the
// throughput before and during its catch-up and their ratio, the bytes it received (snapshot
// bytes from its log's "snapshot N received" lines plus its WAL's record bytes), and the
// issue's targets (a voter within 10 s; throughput during catch-up at least half of before);
// the last line is JSON.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>

#include "apps/cli.h"
#include "apps/cluster_membership.h"
#include "apps/commands.h"
#include "client/kv_socket.h"
#include "apps/local_cluster.h"

namespace keyval::commands {
namespace {

const char* const command_name = "bench replace";
constexpr int exit_failed = 3;
constexpr uint64_t key_bytes = 16;          // as `keyval bench kv` names keys
constexpr uint64_t voter_target_ms = 10000;  // the targets
constexpr double throughput_ratio_target = 0.5;

struct Config {
  uint64_t keys = 1'000'000;
  uint64_t value_bytes = 100;
  uint64_t clients = 16;
  uint64_t load_clients = 64;
  uint64_t window_s = 5;
  uint64_t snapshot_send_rate = 0;  // every node's --snapshot-send-rate (0: the node's default)
  std::string directory;
  bool keep = false;
};

cli::Command command() {
  const Config defaults;
  return cli::Command(command_name, "replace a follower of a loaded 3-node cluster: time to voter, throughput meanwhile")
      .value("keys", std::to_string(defaults.keys), "keys written before the replacement")
      .value("value-bytes", std::to_string(defaults.value_bytes), "bytes of each value, 1..1048576")
      .value("clients", std::to_string(defaults.clients), "clients writing the keys, 1..1024")
      .value("load-clients", std::to_string(defaults.load_clients), "clients loading the cluster meanwhile, 1..1024")
      .value("window-s", std::to_string(defaults.window_s), "seconds of load measured before the replacement")
      .value("snapshot-send-rate", "0 (the node's default)", "every node's --snapshot-send-rate, bytes/s")
      .value("dir", "a new temporary directory", "the cluster's directory (must be empty)")
      .flag("keep", "keep the directory");
}

Result<Config> parse_config(const cli::Flags& flags) {
  Config config;
  KV_ASSIGN_OR_RETURN(config.keys, flags.get_u64("keys", config.keys));
  KV_ASSIGN_OR_RETURN(config.value_bytes, flags.get_u64("value-bytes", config.value_bytes));
  KV_ASSIGN_OR_RETURN(config.clients, flags.get_u64("clients", config.clients));
  KV_ASSIGN_OR_RETURN(config.load_clients, flags.get_u64("load-clients", config.load_clients));
  KV_ASSIGN_OR_RETURN(config.window_s, flags.get_u64("window-s", config.window_s));
  KV_ASSIGN_OR_RETURN(config.snapshot_send_rate, flags.get_u64("snapshot-send-rate", config.snapshot_send_rate));
  if (config.clients == 0 || config.clients > 1024 || config.load_clients == 0 || config.load_clients > 1024) {
    return Status::invalid_argument("--clients and --load-clients expect 1..1024");
  }
  if (config.value_bytes == 0 || config.value_bytes > (1u << 20)) return Status::invalid_argument("--value-bytes expects 1..1048576");
  if (config.window_s == 0 || config.window_s > 3600) return Status::invalid_argument("--window-s expects 1..3600");
  config.keep = flags.has("keep");
  config.directory = flags.get("dir");
  if (config.directory.empty()) {
    KV_ASSIGN_OR_RETURN(config.directory, cli::make_temp_directory("keyval-bench-replace"));
  } else if (std::filesystem::exists(config.directory) && !std::filesystem::is_empty(config.directory)) {
    return Status::invalid_argument("--dir " + config.directory + " is not empty");
  }
  return config;
}

// Writes keys 0..keys-1 once each with `clients` clients; the first error, if any.
Status load_keys(const std::vector<Endpoint>& endpoints, const Config& config) {
  std::atomic<uint64_t> next{0}, done{0};
  std::atomic<bool> failed{false};
  Status first_error;
  std::mutex mutex;
  std::vector<std::thread> threads;
  for (uint64_t c = 0; c < config.load_clients; ++c) {
    threads.emplace_back([&] {
      KvClientOptions options;
      options.operation_timeout_ms = 20000;
      KvClient kv(endpoints, options);
      std::string value(config.value_bytes, 'v');
      for (uint64_t key = next++; key < config.keys && !failed; key = next++) {
        value[0] = static_cast<char>('a' + key % 26);
        auto put = kv.put(cli::bench_key(key, key_bytes), value);
        if (put.is_ok()) {
          ++done;
          continue;
        }
        std::lock_guard<std::mutex> lock(mutex);
        if (!failed.exchange(true)) first_error = put.status();
      }
    });
  }
  uint64_t reported = 0;
  while (done + (failed ? config.keys : 0) < config.keys) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (done >= reported + 100'000) {
      reported = done - done % 100'000;
      std::cerr << "loaded " << reported << " of " << config.keys << " keys" << std::endl;
    }
  }
  for (std::thread& thread : threads) thread.join();
  return first_error;
}

// Acknowledged operations per second that completed in [from_ms, to_ms).
double throughput(const std::vector<LoadOp>& ops, uint64_t from_ms, uint64_t to_ms) {
  if (to_ms <= from_ms) return 0;
  uint64_t acked = 0;
  for (const LoadOp& op : ops) {
    if (op.outcome == LoadOp::acknowledged && op.complete_ms >= from_ms && op.complete_ms < to_ms) ++acked;
  }
  return static_cast<double>(acked) * 1000.0 / static_cast<double>(to_ms - from_ms);
}

void sleep_until(uint64_t at_ms) {
  while (steady_now_ms() < at_ms) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

int fail(const std::string& what) {
  std::cerr << "keyval " << command_name << ": " << what << "\n";
  return exit_failed;
}

int run(const Config& config) {
  LocalClusterOptions options;
  options.directory = config.directory + "/cluster";
  options.nodes = 4;
  options.bootstrap_nodes = 3;
  if (config.snapshot_send_rate > 0) {
    options.extra_node_flags = {"--snapshot-send-rate", std::to_string(config.snapshot_send_rate)};
  }
  auto cluster = LocalCluster::create(options);
  if (!cluster.is_ok()) return fail(cluster.status().to_string());
  std::vector<uint64_t> members = {1, 2, 3};
  for (uint64_t id : members) {
    if (Status started = (*cluster)->start(id); !started.is_ok()) return fail(started.to_string());
  }
  auto leader = (*cluster)->wait_for_leader_among(members, 15000);
  if (!leader.is_ok()) return fail(leader.status().to_string());
  const std::vector<Endpoint> endpoints((*cluster)->client_endpoints().begin(), (*cluster)->client_endpoints().begin() + 3);

  const double load_start = cli::monotonic_seconds();
  if (Status loaded = load_keys(endpoints, config); !loaded.is_ok()) return fail("loading the keys: " + loaded.to_string());
  const double load_s = cli::monotonic_seconds() - load_start;
  std::cout << "loaded " << config.keys << " keys of " << config.value_bytes << " bytes in " << load_s << " s ("
            << config.load_clients << " clients)" << std::endl;

  KvClientOptions client_options;
  client_options.operation_timeout_ms = 10000;
  client_options.request_timeout_ms = 1000;
  LoadShape shape;
  shape.key_prefix = "r";
  WriteLoad load(endpoints, config.clients, config.value_bytes, client_options, shape);
  const uint64_t window_start = steady_now_ms() + 500;  // the clients connected
  sleep_until(window_start + config.window_s * 1000);
  const uint64_t window_end = steady_now_ms();

  leader = (*cluster)->wait_for_leader_among(members, 15000);
  if (!leader.is_ok()) return fail(leader.status().to_string());
  const uint64_t old = *leader == 1 ? 2 : 1;  // a follower
  auto join = join_new_member(**cluster, members, 4);
  if (!join.is_ok()) return fail("replacing node " + std::to_string(old) + ": " + join.status().to_string());
  members.push_back(4);
  const uint64_t during_end = std::max(join->caught_up_ms, join->voter_ms);
  Status removed = remove_old_member(**cluster, members, old, SIGTERM);
  if (!removed.is_ok()) return fail(removed.to_string());
  members.erase(std::find(members.begin(), members.end(), old));
  sleep_until(steady_now_ms() + 1000);
  load.stop();
  const std::vector<LoadOp> ops = load.operations();
  const double before = throughput(ops, window_start, window_end);
  const double during = throughput(ops, join->started_ms, during_end);
  const double ratio = before > 0 ? during / before : 0;
  // The two parts of the catch-up: until the promotion (the snapshot sent, the log tail caught
  // up to the promote bound), and from it until the new node applied the index (installing).
  const uint64_t voter_at = std::min(join->voter_ms, during_end);
  const double until_voter = throughput(ops, join->started_ms, voter_at);
  const double after_voter = throughput(ops, voter_at, during_end);
  WriteLoadReport report = load.verify(client_options);
  (*cluster)->stop_all();

  const uint64_t voter_ms = join->voter_ms - join->asked_ms;
  std::cout << "node 4 replaced node " << old << " (a follower; leader node " << *leader << "): a voter "
            << voter_ms << " ms after member add (" << (join->voter_ms - join->started_ms)
            << " ms after its start), applied the commit index of its start (" << join->commit_index << ") "
            << (join->caught_up_ms - join->started_ms) << " ms after its start\n"
            << "put throughput (" << config.clients << " clients): " << before << "/s before, " << during
            << "/s during catch-up (" << (during_end - join->started_ms) << " ms): ratio " << ratio << " ("
            << until_voter << "/s until it was a voter, " << after_voter << "/s from then until it had applied)\n"
            << "node 4 received " << join->bytes_received << " bytes (" << join->snapshot_bytes
            << " of them in snapshots, the rest its WAL's records)\n"
            << "acknowledged puts read back: " << report.verified << " of " << report.acknowledged << ", lost "
            << report.lost << "\n"
            << "targets: voter within " << voter_target_ms / 1000 << " s: " << (voter_ms <= voter_target_ms ? "met" : "NOT met")
            << "; throughput during catch-up at least half of before: "
            << (ratio >= throughput_ratio_target ? "met" : "NOT met") << std::endl;
  cli::JsonLine line;
  line.add("bench", "replace").add("keys", config.keys).add("value_bytes", config.value_bytes)
      .add("clients", config.clients).add("snapshot_send_rate", config.snapshot_send_rate).add("load_s", load_s).add("replaced", old).add("leader", *leader)
      .add("voter_ms", voter_ms).add("voter_after_start_ms", join->voter_ms - join->started_ms)
      .add("caught_up_ms", join->caught_up_ms - join->started_ms).add("ops_per_s_before", before)
      .add("ops_per_s_during", during).add("throughput_ratio", ratio).add("ops_per_s_until_voter", until_voter)
      .add("ops_per_s_voter_to_caught_up", after_voter).add("bytes_received", join->bytes_received)
      .add("snapshot_bytes", join->snapshot_bytes).add("acked", report.acknowledged).add("lost", report.lost)
      .add_bool("voter_target_met", voter_ms <= voter_target_ms)
      .add_bool("throughput_target_met", ratio >= throughput_ratio_target);
  std::cout << line.str() << std::endl;
  if (config.keep) {
    std::cerr << "kept " << config.directory << "\n";
  } else {
    std::error_code ignored;
    std::filesystem::remove_all(config.directory, ignored);
  }
  return report.lost == 0 && report.unreadable == 0 ? cli::exit_ok : exit_failed;
}

}  // namespace

int bench_replace_main(const std::vector<std::string>& args) {
  cli::Flags flags;
  if (auto exit = command().parse(args, flags)) return *exit;
  auto config = parse_config(flags);
  if (!config.is_ok()) return cli::usage_error(command_name, config.status().message());
  return run(*config);
}

}  // namespace keyval::commands
