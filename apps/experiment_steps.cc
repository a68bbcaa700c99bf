// Fault-step scenarios on real `keyval node` processes (see experiment_steps.h).
//
// The cluster's peer links go through a FaultProxy (apps/fault_proxy.h): each node listens for
// peers on a port of its own and --peers advertises the proxy's listener in front of it, so
// partitions, one-way cuts, isolation and delays are rules of the proxy per directed pair. A
// pause is SIGSTOP and SIGCONT by PID. A full disk needs a small file system per node: as root,
// each node's data directory lives on a tmpfs of its own (apps/node_disk.h), which the step
// fills with a filler file; a node that stops by itself (fail-stop on ENOSPC) is restarted once
// the filler is gone at the end of the step. Without root the scenario is refused before it
// starts.
//
// The load's every operation goes into a history (sim/history.h; times in nanoseconds since the
// load started), written to OUT/history.jsonl and checked with the simulator's linearizability
// checker at the end. A violation fails the run, which then keeps the history and the nodes'
// logs (OUT/cluster/node<i>.log) and names them.
#include "apps/experiment_steps.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <optional>
#include <random>
#include <thread>

#include "apps/cli.h"
#include "apps/fault_proxy.h"
#include "client/kv_socket.h"
#include "apps/local_cluster.h"
#include "apps/node_disk.h"
#include "sim/fault_steps.h"
#include "sim/fault_steps_sim.h"
#include "sim/history_json.h"
#include "sim/linearizability.h"

namespace keyval::commands {
namespace {

using sim::CycleRecord;
using sim::FaultStep;
using sim::StepKind;

const char* const command_name = "experiment run";
constexpr uint64_t leader_timeout_ms = 15000;
constexpr uint64_t disk_bytes = 64ull << 20;             // each node's tmpfs (fill-disk)
// Small segments, so that a full disk soon refuses a new one even under a slow build
// (AddressSanitizer: about 100 entries/s): the WAL is then the first to need space, since
// LMDB writes into space it reserved when its map last grew (storage/store.cc
// reserve_map_file) and may need none.
constexpr const char* disk_wal_segment_bytes = "16384";
constexpr uint64_t resume_poll_ms = 5;

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}
void sleep_ms(uint64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// The number after `marker` in `text` (0 when absent).
uint64_t number_after(const std::string& text, const std::string& marker) {
  size_t at = text.find(marker);
  uint64_t value = 0;
  if (at == std::string::npos) return value;
  for (at += marker.size(); at < text.size() && text[at] >= '0' && text[at] <= '9'; ++at) value = value * 10 + (text[at] - '0');
  return value;
}

sim::Operation to_operation(const LoadOp& op, uint64_t start_ns) {
  sim::Operation operation;
  operation.client = op.writer;
  operation.op = static_cast<sim::Operation::Kind>(op.kind);
  operation.key = op.key;
  if (op.kind == LoadOp::put || op.kind == LoadOp::cas) operation.value = op.value;
  operation.invoke_ns = op.invoke_ns - start_ns;
  if (op.outcome == LoadOp::unknown) {
    operation.status = sim::Operation::unknown;
    return operation;
  }
  operation.complete_ns = op.complete_ns - start_ns;
  operation.status = op.outcome == LoadOp::acknowledged ? sim::Operation::ok : sim::Operation::fail;
  if (op.outcome == LoadOp::acknowledged) operation.output = op.output;
  return operation;
}

struct StepRunner {
  sim::Scenario scenario;
  std::string out;
  bool keep_data = false;
  std::unique_ptr<LocalCluster> cluster;
  std::unique_ptr<FaultProxy> proxy;
  std::unique_ptr<WriteLoad> load;
  std::mt19937_64 random;
  uint64_t start_ns = 0;  // the load's start: the history's zero
  sim::ExperimentResult result;
  std::vector<uint64_t> members;
  std::vector<uint64_t> step_start_ns;
  struct Restart {
    size_t row;
    uint64_t node;
    uint64_t log_from;
    uint64_t at_ns;
  };
  std::vector<Restart> restarts;  // fill-disk: nodes restarted once the space was back

  uint64_t since_start_ns() const { return now_ns() - start_ns; }

  uint64_t leader(uint64_t timeout_ms) {
    auto found = cluster->wait_for_leader_among(members, timeout_ms);
    return found.is_ok() ? *found : 0;
  }

  Status set_up() {
    LocalClusterOptions options;
    options.directory = out + "/cluster";
    options.nodes = scenario.nodes;
    options.separate_peer_listen = true;
    options.data_on_disks = scenario.fills_disk();
    if (options.data_on_disks) options.extra_node_flags = {"--wal-segment-bytes", disk_wal_segment_bytes};
    KV_ASSIGN_OR_RETURN(cluster, LocalCluster::create(options));
    std::vector<FaultProxy::Link> links;
    for (uint64_t id = 1; id <= scenario.nodes; ++id) {
      links.push_back({id, cluster->peer_endpoint(id).port, cluster->peer_listen_endpoint(id).port});
      if (options.data_on_disks) KV_RETURN_IF_ERROR(mount_small_disk(cluster->disk_directory(id), disk_bytes));
    }
    KV_ASSIGN_OR_RETURN(proxy, FaultProxy::start(links));
    for (uint64_t id = 1; id <= scenario.nodes; ++id) {
      members.push_back(id);
      KV_RETURN_IF_ERROR(cluster->start(id));
    }
    KV_RETURN_IF_ERROR(cluster->wait_for_leader_among(members, leader_timeout_ms).status());
    return Status::ok();
  }

  void start_load() {
    start_ns = now_ns();
    load = start_scenario_load(scenario, cluster->client_endpoints());
  }

  // Applies step k; its row goes into result.cycles. The network faults stay until `heal`.
  void apply(size_t k) {
    const FaultStep& step = scenario.steps[k];
    const uint64_t leader_now = leader(sim::step_needs_leader(step) ? leader_timeout_ms : 2000);
    const sim::ResolvedStep resolved = sim::resolve_step(step, leader_now, scenario.nodes, random());
    CycleRecord row;
    row.cycle = k + 1;
    row.how = sim::step_kind_name(step.kind);
    row.target_nodes = resolved.nodes;
    row.was_leader = resolved.names_leader;
    row.leader_before = static_cast<int64_t>(leader_now);
    if (sim::step_needs_leader(step) && leader_now == 0) {
      result.problems.push_back("step " + std::to_string(k + 1) + " (" + step.text + "): no leader within " +
                                std::to_string(leader_timeout_ms) + " ms");
    }
    const uint64_t started = since_start_ns();
    row.killed_at_ms = static_cast<double>(started) / 1e6;
    step_start_ns.push_back(started);
    for (auto [from, to] : sim::links_cut(step, resolved, scenario.nodes)) proxy->cut(from, to);
    const uint64_t node = resolved.groups.empty() || resolved.groups[0].empty() ? 0 : resolved.groups[0][0];
    switch (step.kind) {
      case StepKind::delay:
        if (resolved.groups.empty()) proxy->delay(0, 0, step.delay_ms);
        else proxy->delay(resolved.groups[0][0], resolved.groups[1][0], step.delay_ms);
        break;
      case StepKind::heal: proxy->heal(); break;
      case StepKind::pause:
        if (node != 0) cluster->signal(node, SIGSTOP);
        break;
      case StepKind::fill_disk: {
        auto filled = fill_disk(cluster->disk_directory(node));
        if (!filled.is_ok()) result.problems.push_back("step " + std::to_string(k + 1) + ": " + filled.status().message());
        break;
      }
      default: break;
    }
    result.cycles.push_back(row);
    hold(k, node, started);
  }

  // The step lasts its hold; then a pause ends (SIGCONT) and a full disk is emptied (a node that
  // stopped meanwhile is restarted).
  void hold(size_t k, uint64_t node, uint64_t started) {
    const FaultStep& step = scenario.steps[k];
    const uint64_t until = started + step.hold_ms * 1'000'000;
    std::optional<NodeExit> stopped;
    while (since_start_ns() < until) {
      if (step.kind == StepKind::fill_disk && !stopped && !cluster->running(node)) stopped = cluster->last_exit(node);
      sleep_ms(resume_poll_ms);
    }
    CycleRecord& row = result.cycles.back();
    if (step.kind == StepKind::pause && node != 0) cluster->signal(node, SIGCONT);
    if (step.kind == StepKind::fill_disk) {
      Status freed = free_disk(cluster->disk_directory(node));
      if (!freed.is_ok()) result.problems.push_back("step " + std::to_string(k + 1) + ": " + freed.message());
      if (!stopped && !cluster->running(node)) stopped = cluster->last_exit(node);
      if (stopped) {
        std::cerr << "node " << node << " stopped on the full disk (" << stopped->describe() << "); restarting it"
                  << std::endl;
        restarts.push_back({result.cycles.size() - 1, node, cluster->log_bytes(node), since_start_ns()});
        Status restarted = cluster->start(node);
        if (!restarted.is_ok()) result.problems.push_back("step " + std::to_string(k + 1) + ": " + restarted.message());
      }
    }
    row.down_ms = static_cast<double>(since_start_ns() - started) / 1e6;
    // A resumed leader, or one whose isolation just ended, still calls itself leader until it
    // hears the new term: nodes agree on one leader within an election or two, longer on a
    // loaded machine (CI's two cores, building while it tests), hence 5 s rather than 1.
    row.leader_after = static_cast<int64_t>(leader(5000));
    std::cerr << "step " << k + 1 << " of " << scenario.steps.size() << " (" << step.text
              << (row.target_nodes.empty() ? "" : ": nodes " + row.target_nodes) << "), "
              << static_cast<double>(since_start_ns()) / 1e9 << " s, " << load->completed() << " ops so far"
              << std::endl;
  }

  // Recovery figures of the nodes restarted after a full disk, from their logs.
  void fill_restarts() {
    for (const Restart& restart : restarts) {
      const std::string line = cluster->last_log_line(restart.node, "recovery_coordinator: ", restart.log_from);
      if (line.empty()) continue;
      CycleRecord& row = result.cycles[restart.row];
      row.recovery_entries += number_after(line, ": recovered ");
      row.torn_bytes_cut += number_after(line, ", cut ");
      auto in_ms = line.rfind(" in ");
      if (in_ms != std::string::npos) row.recovery_ms = std::atof(line.c_str() + in_ms + 4);
    }
  }

  void tear_down() {
    if (proxy) proxy->heal();
    for (uint64_t id : members) {
      if (cluster->running(id)) cluster->signal(id, SIGCONT);
    }
  }

  int run() {
    result.scenario = scenario;
    result.mode = "processes";
    random.seed(scenario.seed);
    Status ready = set_up();
    if (!ready.is_ok()) {
      std::cerr << "keyval experiment run: the cluster did not start: " << ready.message() << "; see the logs in "
                << out << "/cluster" << std::endl;
      unmount();
      return 1;
    }
    start_load();
    sleep_ms(sim::fault_steps_warm_up_ms);
    for (size_t k = 0; k < scenario.steps.size(); ++k) apply(k);
    const uint64_t settle_until = since_start_ns() + scenario.settle_ms * 1'000'000;
    while (since_start_ns() < settle_until) sleep_ms(10);
    tear_down();
    load->stop();
    const uint64_t end = since_start_ns();
    const std::vector<LoadOp> ops = load->operations();
    std::vector<sim::Operation> history;
    for (const LoadOp& op : ops) history.push_back(to_operation(op, start_ns));
    sim::account_steps(history, step_start_ns, end, result.cycles);
    result.throughput = sim::throughput_of_history(history, end, result.bucket_ms);
    KvClientOptions verify_options;
    WriteLoadReport report = load->verify(verify_options);
    result.acked_writes = report.acknowledged;
    result.lost_acked_writes = report.lost;
    if (report.unreadable > 0) {
      result.problems.push_back(std::to_string(report.unreadable) + " acknowledged writes could not be read back");
    }
    for (const std::string& problem : report.problems) result.problems.push_back("write " + problem);
    check_load_history(ops, start_ns, out, cluster->directory() + "/node<i>.log", result);
    fill_restarts();
    for (const auto& [id, exit] : cluster->stop_all()) {
      if (!exit.exited || exit.code != 0) result.problems.push_back("node " + std::to_string(id) + " stopped with " + exit.describe());
    }
    proxy.reset();
    result.duration_ms = static_cast<double>(since_start_ns()) / 1e6;
    Status written = sim::write_experiment_outputs(out, result);
    if (!written.is_ok()) result.problems.push_back("outputs: " + written.message());
    unmount();
    if (!keep_data && result.ok()) {
      std::error_code ignored;
      std::filesystem::remove_all(cluster->directory(), ignored);
    } else if (!result.ok()) {
      std::cerr << "keyval experiment run: FAILED; kept the history " << result.history_path << " and the nodes' logs "
                << cluster->directory() << "/node<i>.log" << std::endl;
    }
    std::cout << sim::experiment_summary_json(result) << std::endl;
    return result.ok() ? cli::exit_ok : 1;
  }

  // The nodes' tmpfs go (their data with them: the logs stay, they are outside).
  void unmount() {
    if (!cluster || !scenario.fills_disk()) return;
    for (uint64_t id = 1; id <= scenario.nodes; ++id) {
      Status unmounted = unmount_small_disk(cluster->disk_directory(id));
      if (!unmounted.is_ok()) std::cerr << "keyval experiment run: " << unmounted.message() << std::endl;
    }
  }
};

}  // namespace

HistoryVerdict check_history(const std::vector<sim::Operation>& history, const std::string& path) {
  sim::CheckResult checked = sim::check_linearizable(history);
  HistoryVerdict verdict;
  verdict.linearizable = sim::verdict_name(checked.linearizable);
  if (checked.linearizable != sim::Verdict::yes) {
    verdict.detail = std::string(checked.linearizable == sim::Verdict::no ? "not linearizable" : "linearizability undecided") +
                     (checked.key ? ": key " + sim::json_quoted(*checked.key) : std::string()) + ": " + checked.explanation +
                     " (operations #i are line i+1 of the history " + path + ")";
  }
  return verdict;
}

void check_load_history(const std::vector<LoadOp>& ops, uint64_t start_ns, const std::string& out,
                        const std::string& logs, sim::ExperimentResult& result) {
  std::vector<sim::Operation> history;
  history.reserve(ops.size());
  for (const LoadOp& op : ops) history.push_back(to_operation(op, start_ns));
  std::sort(history.begin(), history.end(),
            [](const sim::Operation& a, const sim::Operation& b) { return a.invoke_ns < b.invoke_ns; });
  result.history_path = out + "/history.jsonl";
  result.history_operations = history.size();
  std::error_code ignored;
  std::filesystem::create_directories(out, ignored);
  Status written = sim::write_history_file(result.history_path, history);
  if (!written.is_ok()) result.problems.push_back("history: " + written.message());
  HistoryVerdict verdict = check_history(history, result.history_path);
  result.linearizable = verdict.linearizable;
  if (verdict.linearizable == "no") result.problems.push_back(verdict.detail + "; the nodes' logs: " + logs);
}

KvClientOptions scenario_load_client_options() {
  KvClientOptions client_options;
  client_options.operation_timeout_ms = 3000;
  client_options.request_timeout_ms = 500;
  return client_options;
}

std::unique_ptr<WriteLoad> start_scenario_load(const sim::Scenario& scenario, const std::vector<Endpoint>& endpoints) {
  LoadShape shape;
  shape.put_percent = scenario.put_percent;
  shape.get_percent = scenario.get_percent;
  shape.del_percent = scenario.del_percent;
  shape.cas_percent = scenario.cas_percent;
  shape.keys = scenario.keys;
  shape.rate_ops_per_s = scenario.rate_ops_per_s;
  shape.seed = scenario.seed;
  return std::make_unique<WriteLoad>(endpoints, scenario.clients, scenario.value_bytes, scenario_load_client_options(),
                                     shape);
}

int run_fault_steps_experiment(const sim::Scenario& scenario, const std::string& out, bool keep_data) {
  if (scenario.fills_disk() && !can_mount_disks()) {
    return cli::usage_error(command_name,
                            "fill-disk needs a small file system per node, which only root can mount (a tmpfs per "
                            "node): run as root, or drop the step (keyval sim --scenario runs it on the simulated disk)");
  }
  StepRunner runner;
  runner.scenario = scenario;
  runner.out = out;
  runner.keep_data = keep_data;
  return runner.run();
}

int experiment_check_main(const std::vector<std::string>& args) {
  const cli::Command command =
      cli::Command("experiment check", "check a recorded history for linearizability; prints a JSON line", "HISTORY")
          .footer("exit: 0 linearizable, 1 a violation, 2 usage, 3 undecided");
  cli::Flags flags;
  if (auto exit = command.parse(args, flags)) return *exit;
  if (flags.positional().size() != 1) return cli::usage_error("experiment check", "expects one history file");
  const std::string path = flags.positional()[0];
  auto history = sim::read_history_file(path);
  if (!history.is_ok()) return cli::usage_error("experiment check", path + ": " + history.status().message());
  HistoryVerdict verdict = check_history(*history, path);
  if (!verdict.detail.empty()) std::cerr << verdict.detail << std::endl;
  cli::JsonLine line;
  line.add("history", path).add("operations", static_cast<uint64_t>(history->size())).add("linearizable", verdict.linearizable);
  std::cout << line.str() << std::endl;
  return verdict.linearizable == "yes" ? cli::exit_ok : verdict.linearizable == "no" ? 1 : 3;
}

}  // namespace keyval::commands
