// keyval bench transfer: how long writes are unavailable while leadership moves, on a local
// three-node cluster of real processes (apps/local_cluster.h), idle and loaded, compared with
// losing the leader to SIGKILL in the same run.
//
//   keyval bench transfer [--nodes 3] [--rounds 5] [--writers 4] [--idle-rate 500] [--dir D] [--keep]
//
// Unavailability is what a client sees: the longest time between two consecutive acknowledged
// puts (apps/ack_gap.h) from the moment the transfer is asked for (or the leader is killed)
// until writes flow at the new leader. "idle": one writer paced at --idle-rate puts/s (the
// probe); "loaded": --writers writers as fast as the cluster acknowledges. Each mode runs
// --rounds transfers (`leader transfer` with no id: the leader's most up-to-date follower),
// then --rounds SIGKILLs of the leader (each restarted, and given a second to catch up,
// before the next). One line per event on stderr; a summary line per mode and a JSON line.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>

#include "apps/ack_gap.h"
#include "apps/cli.h"
#include "apps/commands.h"
#include "client/kv_socket.h"
#include "apps/local_cluster.h"

namespace keyval::commands {
namespace {

struct BenchTransferConfig {
  uint64_t nodes = 3;
  uint64_t rounds = 5;
  uint64_t writers = 4;
  uint64_t idle_rate = 500;
  std::string directory;
  bool keep = false;
};

struct Gaps {
  std::vector<uint64_t> transfer_ms;
  std::vector<uint64_t> kill_ms;
};

KvClientOptions bench_client_options() {
  KvClientOptions options;
  options.operation_timeout_ms = 5000;
  options.request_timeout_ms = 500;
  return options;
}

// Waits for `more` acknowledgements after now; false on a 10 s timeout.
bool wait_for_acks(WriteLoad& load, uint64_t more) {
  const uint64_t target = load.acknowledged() + more;
  const uint64_t deadline = steady_now_ms() + 10000;
  while (load.acknowledged() < target && steady_now_ms() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return load.acknowledged() >= target;
}

// The gap across one event that began at `from_ms`: until writes flowed again for a while.
uint64_t gap_after(WriteLoad& load, uint64_t from_ms) {
  wait_for_acks(load, 50);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  return longest_ack_gap_ms(load.operations(), from_ms, steady_now_ms());
}

Status run_mode(const BenchTransferConfig& config, const std::string& directory, bool loaded, Gaps* gaps) {
  LocalClusterOptions options;
  options.directory = directory;
  options.nodes = config.nodes;
  KV_ASSIGN_OR_RETURN(auto cluster, LocalCluster::create(options));
  KV_RETURN_IF_ERROR(cluster->start_all());
  KV_ASSIGN_OR_RETURN(uint64_t leader, cluster->wait_for_leader(10000));
  LoadShape shape;
  if (!loaded) shape.rate_ops_per_s = config.idle_rate;
  WriteLoad load(cluster->client_endpoints(), loaded ? config.writers : 1, 100, bench_client_options(), shape);
  if (!wait_for_acks(load, 200)) return Status::io_error("the load never got going");
  const char* mode = loaded ? "loaded" : "idle";
  KvClient client(cluster->client_endpoints(), bench_client_options());
  for (uint64_t round = 1; round <= config.rounds; ++round) {
    const uint64_t from_ms = steady_now_ms();
    auto moved = client.leader_transfer(0);
    if (!moved.is_ok()) return Status::io_error("transfer " + std::to_string(round) + ": " + moved.status().message());
    const uint64_t answered_ms = steady_now_ms() - from_ms;
    gaps->transfer_ms.push_back(gap_after(load, from_ms));
    std::cerr << mode << " transfer " << round << ": node " << moved->node_id << " -> node " << moved->leader_hint
              << " (answered in " << answered_ms << " ms), longest gap " << gaps->transfer_ms.back() << " ms\n";
    leader = moved->leader_hint;
  }
  for (uint64_t round = 1; round <= config.rounds; ++round) {
    KV_ASSIGN_OR_RETURN(leader, cluster->wait_for_leader(10000));
    const uint64_t from_ms = steady_now_ms();
    cluster->signal(leader, SIGKILL);
    gaps->kill_ms.push_back(gap_after(load, from_ms));
    std::cerr << mode << " SIGKILL " << round << " of leader node " << leader << ": longest gap "
              << gaps->kill_ms.back() << " ms\n";
    KV_RETURN_IF_ERROR(cluster->start(leader));
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  load.stop();
  WriteLoadReport report = load.verify(bench_client_options());
  cluster->stop_all(10000);
  if (report.lost > 0) return Status::corruption(std::to_string(report.lost) + " acknowledged writes lost");
  return Status::ok();
}

uint64_t median(std::vector<uint64_t> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

uint64_t largest(const std::vector<uint64_t>& values) {
  return values.empty() ? 0 : *std::max_element(values.begin(), values.end());
}

cli::Command command() {
  return cli::Command("bench transfer", "write unavailability across a leadership transfer and across a SIGKILL")
      .value("nodes", "3", "cluster size, 3..7")
      .value("rounds", "5", "transfers and kills per mode, 1..100")
      .value("writers", "4", "clients writing in the loaded mode, 1..64")
      .value("idle-rate", "500", "writes per second probing the idle mode")
      .value("dir", "a new temporary directory", "the clusters' directory")
      .flag("keep", "keep the directory");
}

Result<BenchTransferConfig> parse_config(const cli::Flags& flags) {
  BenchTransferConfig config;
  KV_ASSIGN_OR_RETURN(config.nodes, flags.get_u64("nodes", 3));
  KV_ASSIGN_OR_RETURN(config.rounds, flags.get_u64("rounds", 5));
  KV_ASSIGN_OR_RETURN(config.writers, flags.get_u64("writers", 4));
  KV_ASSIGN_OR_RETURN(config.idle_rate, flags.get_u64("idle-rate", 500));
  if (config.nodes < 3 || config.nodes > 7) return Status::invalid_argument("--nodes must be 3..7");
  if (config.rounds < 1 || config.rounds > 100) return Status::invalid_argument("--rounds must be 1..100");
  if (config.writers < 1 || config.writers > 64) return Status::invalid_argument("--writers must be 1..64");
  if (config.idle_rate < 1) return Status::invalid_argument("--idle-rate must be at least 1");
  config.directory = flags.get("dir");
  config.keep = flags.has("keep");
  return config;
}

}  // namespace

int bench_transfer_main(const std::vector<std::string>& args) {
  cli::Flags flags;
  if (auto exit = command().parse(args, flags)) return *exit;
  auto config = parse_config(flags);
  if (!config.is_ok()) return cli::usage_error("bench transfer", config.status().message());
  std::string directory = config->directory;
  if (directory.empty()) {
    auto made = cli::make_temp_directory("bench-transfer");
    if (!made.is_ok()) return cli::usage_error("bench transfer", made.status().message());
    directory = *made;
  }
  cli::JsonLine line;
  line.add("command", "bench transfer").add("nodes", config->nodes).add("rounds", config->rounds)
      .add("writers", config->writers).add("idle_rate", config->idle_rate);
  int exit_code = cli::exit_ok;
  for (bool loaded : {false, true}) {
    Gaps gaps;
    const std::string mode = loaded ? "loaded" : "idle";
    Status status = run_mode(*config, directory + "/" + mode, loaded, &gaps);
    if (!status.is_ok()) {
      std::cerr << "keyval bench transfer: " << mode << ": " << status.to_string() << "\n";
      exit_code = 3;
    }
    std::cout << mode << ": transfer gap median " << median(gaps.transfer_ms) << " ms, max "
              << largest(gaps.transfer_ms) << " ms; SIGKILL gap median " << median(gaps.kill_ms) << " ms, max "
              << largest(gaps.kill_ms) << " ms\n";
    line.add(mode + "_transfer_gap_ms_median", median(gaps.transfer_ms))
        .add(mode + "_transfer_gap_ms_max", largest(gaps.transfer_ms))
        .add(mode + "_kill_gap_ms_median", median(gaps.kill_ms))
        .add(mode + "_kill_gap_ms_max", largest(gaps.kill_ms));
  }
  std::cout << line.str() << std::endl;
  if (!config->keep && config->directory.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(directory, ignored);
  }
  return exit_code;
}

}  // namespace keyval::commands
