// keyval experiment run SCENARIO --out DIR [--seed S] [--keep-data]
//
// Runs a restart-cycle scenario (sim/scenario.h) on real `keyval node` processes on 127.0.0.1
// (free ports; data under DIR/cluster, removed at the end unless --keep-data), with the
// scenario's load running throughout, and writes the outputs (cycles.csv, summary.json,
// summary.txt, SVG plots) to DIR. A progress line per cycle goes to stderr; the last stdout
// line is the summary JSON. Every operation of the load goes into DIR/history.jsonl, which is
// checked for linearizability. Exit 0 when no acknowledged write was lost, the history is
// linearizable and every cycle completed, 1 otherwise (the cluster directory with the nodes'
// logs is kept), 2 for bad usage or a bad scenario file.
//
// Kill methods on processes: sigkill; sigterm (waits for the clean exit); torn (SIGKILL, then
// half of a next record is written after the node's last WAL record, as if power failed in the
// middle of that write: its recovery must cut the torn tail).
// disk-full is refused here (it needs a small file system per node; the crash tests cover a
// full disk on a real tmpfs).
//
// A scenario of fault steps (partition, oneway, isolate, delay, heal, pause, fill-disk) runs in
// apps/experiment_steps.cc; `keyval experiment check HISTORY` checks a recorded history.
//
// kill replace / kill grow follow the operator's procedure of docs/MEMBERSHIP.md
// (apps/cluster_membership.h): new nodes (new ids, new empty data directories, started with
// --join) are added as learners, promoted once caught up, then the oldest members are removed
// (a leader hands leadership over first), stopped by PID (how: sigkill or sigterm) and their
// data directories deleted.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <optional>
#include <random>

#include "apps/cli.h"
#include "apps/cluster_membership.h"
#include "apps/commands.h"
#include "apps/experiment_steps.h"
#include "client/kv_socket.h"
#include "apps/local_cluster.h"
#include "sim/scenario.h"
#include "storage/env.h"
#include "storage/wal.h"
#include "storage/wal_format.h"

namespace keyval::commands {
namespace {

using sim::CycleRecord;
using sim::ExperimentResult;
using sim::KillHow;
using sim::KillTarget;
using sim::KillWhen;
using sim::Scenario;

const char* const command_name = "experiment run";
constexpr uint64_t leader_timeout_ms = 15000;
constexpr uint64_t catch_up_timeout_ms = 30000;

uint64_t now_ms() { return steady_now_ms(); }
void sleep_ms(uint64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// A write torn by a power cut: the first half of a record that was being appended after the
// last complete one (a copy of the last record's first half, at the offset where the next
// record would go). Nothing that was written whole is damaged: a torn write only ever
// affects a write that had not completed, which no one was told about.
Result<std::string> tear_next_write(const std::string& data_directory) {
  WalOptions options;
  options.read_only = true;
  std::optional<WalRecordInfo> last;
  {
    auto wal = Wal::open(posix_env(), data_directory + "/wal", options, [&](const WalRecordInfo& record) { last = record; });
    if (!wal.is_ok()) return wal.status();
  }
  if (!last) return Status::not_found("no WAL record in " + data_directory);
  const uint64_t length = wal_format::record_bytes(last->payload_bytes);
  const uint64_t end = last->offset + length;
  const std::string path = data_directory + "/wal/" + last->segment;
  KV_ASSIGN_OR_RETURN(std::unique_ptr<File> file, posix_env().open_file(path, OpenMode::read_write));
  KV_ASSIGN_OR_RETURN(uint64_t size, file->size());
  const uint64_t torn = std::max<uint64_t>(wal_format::record_header_bytes / 2, length / 2);
  if (end + torn > size) return Status::invalid_argument("no room after the last record of " + path + " to tear a write");
  std::vector<uint8_t> bytes(torn);
  KV_ASSIGN_OR_RETURN(size_t read, file->read_at(last->offset, bytes.data(), bytes.size()));
  bytes.resize(read);
  KV_RETURN_IF_ERROR(file->write_at(end, bytes.data(), bytes.size()));
  KV_RETURN_IF_ERROR(file->sync_data());
  return "tore a write of " + std::to_string(bytes.size()) + " bytes after record " + std::to_string(last->index);
}

// From the restarted node's log (from byte `from`): "recovered N entries (...), cut T torn bytes ... in M ms".
struct RecoveryLine {
  bool found = false;
  uint64_t entries = 0;
  uint64_t torn_bytes = 0;
  double ms = -1;
};

// `line`: "recovery_coordinator: DIR: recovered N entries (...), cut T torn bytes ... in M ms".
RecoveryLine parse_recovery_line(const std::string& line) {
  RecoveryLine result;
  auto recovered = line.find(": recovered ");
  if (line.rfind("recovery_coordinator: ", 0) != 0 || recovered == std::string::npos) return result;
  try {
    result.entries = std::stoull(line.substr(recovered + 12));
    auto cut = line.find(", cut ", recovered);
    if (cut != std::string::npos) result.torn_bytes = std::stoull(line.substr(cut + 6));
    auto in_ms = line.rfind(" in ");
    if (in_ms != std::string::npos) result.ms = std::stod(line.substr(in_ms + 4));
    result.found = true;
  } catch (const std::exception&) {
    result = RecoveryLine{};  // not the line it looks like
  }
  return result;
}

struct Runner {
  Scenario scenario;
  std::string out;
  bool keep_data = false;
  std::unique_ptr<LocalCluster> cluster;
  std::unique_ptr<WriteLoad> load;
  std::mt19937_64 random;
  uint64_t start_ms = 0;
  ExperimentResult result;
  std::vector<uint64_t> members;  // the configuration's ids, oldest first
  uint64_t next_new_node = 0;     // kill replace / grow: the id the next new node gets

  double since_start(uint64_t at) const { return static_cast<double>(at) - static_cast<double>(start_ms); }

  uint64_t current_leader() {
    auto leader = cluster->wait_for_leader_among(members, leader_timeout_ms);
    return leader.is_ok() ? *leader : 0;
  }

  std::vector<uint64_t> pick_targets(uint64_t leader) {
    const uint64_t n = scenario.nodes;
    switch (scenario.target) {
      case KillTarget::leader: return {leader != 0 ? leader : 1 + random() % n};
      case KillTarget::follower: {
        std::vector<uint64_t> followers;
        for (uint64_t id = 1; id <= n; ++id) {
          if (id != leader) followers.push_back(id);
        }
        return {followers[random() % followers.size()]};
      }
      case KillTarget::random: return {1 + random() % n};
      case KillTarget::node: return {scenario.target_node};
      case KillTarget::all: {
        std::vector<uint64_t> all;
        for (uint64_t id = 1; id <= n; ++id) all.push_back(id);
        return all;
      }
      case KillTarget::replace:
      case KillTarget::grow: return {};  // membership cycles: membership_cycle
    }
    return {};
  }

  void wait_before_kill(uint64_t since_ms, uint64_t acked_at_restart) {
    switch (scenario.when) {
      case KillWhen::every: {
        const uint64_t until = since_ms + scenario.every_ms;
        while (now_ms() < until) sleep_ms(5);
        break;
      }
      case KillWhen::after_writes: {
        const uint64_t deadline = now_ms() + 120000;  // a cluster that stopped serving ends the wait
        while (load->acknowledged() < acked_at_restart + scenario.after_writes && now_ms() < deadline) sleep_ms(2);
        break;
      }
      case KillWhen::random: {
        const uint64_t span = scenario.random_max_ms - scenario.random_min_ms;
        const uint64_t until = since_ms + scenario.random_min_ms + (span == 0 ? 0 : random() % (span + 1));
        while (now_ms() < until) sleep_ms(5);
        break;
      }
    }
  }

  // One cycle; false when the cluster could not be brought back (recorded in problems).
  bool cycle(uint64_t number, uint64_t* came_back_ms) {
    CycleRecord record;
    record.cycle = number;
    record.how = sim::kill_how_name(scenario.how);
    const uint64_t leader = current_leader();
    record.leader_before = static_cast<int64_t>(leader);
    std::vector<uint64_t> targets = pick_targets(leader);
    std::vector<uint64_t> log_offsets;
    for (uint64_t id : targets) {
      record.target_nodes += (record.target_nodes.empty() ? "" : " ") + std::to_string(id);
      record.was_leader = record.was_leader || id == leader;
      log_offsets.push_back(cluster->log_bytes(id));
    }
    const uint64_t killed_at = now_ms();
    record.killed_at_ms = since_start(killed_at);
    for (uint64_t id : targets) {
      if (scenario.how == KillHow::sigterm) {
        cluster->signal(id, SIGTERM);
        auto exit = cluster->wait_exit(id, 10000);
        if (!exit.is_ok()) cluster->signal(id, SIGKILL);
      } else {
        cluster->signal(id, SIGKILL);
      }
      if (scenario.how == KillHow::torn) {
        auto torn = tear_next_write(cluster->data_directory(id));
        if (!torn.is_ok()) result.problems.push_back("cycle " + std::to_string(number) + ": tearing node " +
                                                     std::to_string(id) + ": " + torn.status().message());
      }
    }
    while (now_ms() < killed_at + scenario.down_ms) sleep_ms(5);
    record.down_ms = static_cast<double>(now_ms() - killed_at);
    for (uint64_t id : targets) record.recovery_wal_bytes += wal_record_bytes(cluster->data_directory(id)).value_or(0);
    const uint64_t restarted_at = now_ms();
    for (uint64_t id : targets) {
      Status started = cluster->start(id);
      if (!started.is_ok()) {
        result.problems.push_back("cycle " + std::to_string(number) + ": restarting node " + std::to_string(id) + ": " +
                                  started.message());
        return false;
      }
    }
    auto after = cluster->wait_for_leader_among(members, leader_timeout_ms);
    if (!after.is_ok()) {
      result.problems.push_back("cycle " + std::to_string(number) + ": " + after.status().message());
      return false;
    }
    record.leader_after = static_cast<int64_t>(*after);
    uint64_t commit = 0;
    for (const auto& view : cluster->status()) {
      if (view.is_ok()) commit = std::max(commit, view->commit_index);
    }
    Status caught_up = cluster->wait_for_applied(commit, catch_up_timeout_ms);
    if (!caught_up.is_ok()) {
      result.problems.push_back("cycle " + std::to_string(number) + ": " + caught_up.message());
      return false;
    }
    record.catch_up_ms = static_cast<double>(now_ms() - restarted_at);
    double recovery_ms = 0;
    for (size_t i = 0; i < targets.size(); ++i) {
      RecoveryLine line =
          parse_recovery_line(cluster->last_log_line(targets[i], "recovery_coordinator: ", log_offsets[i]));
      if (!line.found) {
        recovery_ms = -1;
        continue;
      }
      record.recovery_entries += line.entries;
      record.torn_bytes_cut += line.torn_bytes;
      if (recovery_ms >= 0) recovery_ms = std::max(recovery_ms, line.ms);
    }
    record.recovery_ms = recovery_ms;
    record_log(record);
    result.cycles.push_back(record);
    *came_back_ms = now_ms();
    return true;
  }

  // The log when the cycle ended: the highest commit index, the largest WAL (live WALs: a node
  // whose read raced its writer every time counts with the records read whole before the one
  // being written; a restarted node's WAL at restart is the floor).
  void record_log(CycleRecord& record) {
    for (const auto& view : cluster->status()) {
      if (view.is_ok()) record.log_entries = std::max(record.log_entries, view->commit_index);
    }
    record.log_bytes = record.recovery_wal_bytes;
    for (uint64_t id : members) {
      const std::string directory = cluster->data_directory(id);
      record.log_bytes = std::max(record.log_bytes, wal_record_bytes(directory).value_or(live_wal_record_bytes(directory)));
    }
  }

  bool cycle_failed(uint64_t number, const Status& status) {
    result.problems.push_back("cycle " + std::to_string(number) + ": " + status.message());
    return false;
  }

  // kill replace / kill grow: the new node(s) join (learner, caught up, promoted), then the
  // oldest member(s) leave. The cycle's "kill" is the first removal.
  bool membership_cycle(uint64_t number, uint64_t* came_back_ms) {
    CycleRecord record;
    record.cycle = number;
    record.how = sim::kill_how_name(scenario.how);
    record.leader_before = static_cast<int64_t>(current_leader());
    const uint64_t count = scenario.members_added_per_cycle();
    std::vector<uint64_t> leaving(members.begin(), members.begin() + std::min<size_t>(count, members.size()));
    for (uint64_t k = 0; k < count; ++k) {
      const uint64_t id = next_new_node++;
      auto join = join_new_member(*cluster, members, id);
      if (!join.is_ok()) return cycle_failed(number, join.status());
      members.push_back(id);
      record.new_members += (record.new_members.empty() ? "" : " ") + std::to_string(id);
      record.catch_up_ms = std::max(record.catch_up_ms, static_cast<double>(join->caught_up_ms - join->started_ms));
      record.voter_ms = std::max(record.voter_ms, static_cast<double>(join->voter_ms - join->asked_ms));
      record.new_member_bytes += join->bytes_received;
    }
    record.killed_at_ms = since_start(now_ms());
    for (uint64_t id : leaving) {
      record.target_nodes += (record.target_nodes.empty() ? "" : " ") + std::to_string(id);
      record.was_leader = record.was_leader || id == current_leader();
      Status removed = remove_old_member(*cluster, members, id, scenario.how == KillHow::sigterm ? SIGTERM : SIGKILL);
      members.erase(std::find(members.begin(), members.end(), id));
      if (!removed.is_ok()) return cycle_failed(number, removed);
    }
    auto after = cluster->wait_for_leader_among(members, leader_timeout_ms);
    if (!after.is_ok()) return cycle_failed(number, after.status());
    record.leader_after = static_cast<int64_t>(*after);
    record_log(record);
    result.cycles.push_back(record);
    *came_back_ms = now_ms();
    return true;
  }

  // Fills each cycle's unavailability and operation counts, and the throughput series, in
  // one pass over the operations.
  void account(const std::vector<LoadOp>& ops, uint64_t end_ms) {
    auto& cycles = result.cycles;
    // The cycle an instant falls in: the last kill at or before it (none before the first).
    auto cycle_at = [&](double at) -> std::optional<size_t> {
      auto after = std::upper_bound(cycles.begin(), cycles.end(), at,
                                    [](double t, const CycleRecord& record) { return t < record.killed_at_ms; });
      if (after == cycles.begin()) return std::nullopt;
      return static_cast<size_t>(after - cycles.begin() - 1);
    };
    std::vector<double> first_ack(cycles.size(), -1);  // of the writes invoked in each cycle
    const double duration = since_start(end_ms);
    result.throughput.assign(static_cast<size_t>(duration / result.bucket_ms) + 1, {});
    for (size_t b = 0; b < result.throughput.size(); ++b) result.throughput[b].at_ms = b * result.bucket_ms;
    for (const LoadOp& op : ops) {
      const double invoked = since_start(op.invoke_ms), completed = since_start(op.complete_ms);
      if (auto c = cycle_at(completed)) {
        (op.outcome == LoadOp::acknowledged ? cycles[*c].ops_acked
         : op.outcome == LoadOp::unknown    ? cycles[*c].ops_unknown
                                            : cycles[*c].ops_failed)++;
      }
      if (op.outcome != LoadOp::acknowledged) continue;
      if (completed >= 0) {
        size_t bucket = std::min(result.throughput.size() - 1, static_cast<size_t>(completed / result.bucket_ms));
        ++result.throughput[bucket].acked;
      }
      auto c = op.kind == LoadOp::get ? std::nullopt : cycle_at(invoked);
      if (c && (first_ack[*c] < 0 || completed < first_ack[*c])) first_ack[*c] = completed;
    }
    // Unavailability: from the kill to the first write acknowledged among those invoked after
    // it, in this cycle or a later one.
    double earliest = -1;
    for (size_t c = cycles.size(); c-- > 0;) {
      if (first_ack[c] >= 0 && (earliest < 0 || first_ack[c] < earliest)) earliest = first_ack[c];
      cycles[c].unavailable_ms = earliest < 0 ? -1 : earliest - cycles[c].killed_at_ms;
    }
  }

  int run() {
    result.scenario = scenario;
    result.mode = "processes";
    LocalClusterOptions options;
    options.directory = out + "/cluster";
    options.nodes = scenario.nodes + scenario.cycles * scenario.members_added_per_cycle();
    options.bootstrap_nodes = scenario.nodes;  // the others join (kill replace, kill grow)
    auto created = LocalCluster::create(options);
    if (!created.is_ok()) return cli::usage_error(command_name, created.status().message());
    cluster = std::move(*created);
    random.seed(scenario.seed);
    start_ms = now_ms();
    Status started;
    for (uint64_t id = 1; id <= scenario.nodes && started.is_ok(); ++id) {
      members.push_back(id);
      started = cluster->start(id);
    }
    next_new_node = scenario.nodes + 1;
    if (!started.is_ok() || !cluster->wait_for_leader_among(members, leader_timeout_ms).is_ok()) {
      std::cerr << "keyval experiment run: the cluster did not start; see the logs in " << options.directory << "\n";
      return 1;
    }
    load = start_scenario_load(scenario, cluster->client_endpoints());
    uint64_t came_back = now_ms();
    for (uint64_t k = 1; k <= scenario.cycles; ++k) {
      wait_before_kill(came_back, load->acknowledged());
      if (!(scenario.changes_membership() ? membership_cycle(k, &came_back) : cycle(k, &came_back))) break;
      const CycleRecord& done = result.cycles.back();
      std::cerr << "cycle " << k << " of " << scenario.cycles << ", " << (now_ms() - start_ms) / 1000.0 << " s, "
                << load->completed() << " ops so far (";
      if (scenario.changes_membership()) {
        std::cerr << "node(s) " << done.new_members << " joined, voter after " << done.voter_ms << " ms, caught up "
                  << done.catch_up_ms << " ms after the start; node(s) " << done.target_nodes << " removed)" << std::endl;
      } else {
        std::cerr << "node " << done.target_nodes << " down " << done.down_ms << " ms, recovered " << done.recovery_entries
                  << " entries)" << std::endl;
      }
    }
    const uint64_t settle_until = now_ms() + scenario.settle_ms;
    while (now_ms() < settle_until) sleep_ms(10);
    load->stop();
    const uint64_t end = now_ms();
    account(load->operations(), end);
    WriteLoadReport report = load->verify(scenario_load_client_options());
    result.acked_writes = report.acknowledged;
    result.lost_acked_writes = report.lost;
    if (report.unreadable > 0) {
      result.problems.push_back(std::to_string(report.unreadable) + " acknowledged writes could not be read back");
    }
    for (const std::string& problem : report.problems) result.problems.push_back("write " + problem);
    check_load_history(load->operations(), start_ms * 1'000'000, out, options.directory + "/node<i>.log", result);
    for (const auto& [id, exit] : cluster->stop_all()) {
      if (!exit.exited || exit.code != 0) result.problems.push_back("node " + std::to_string(id) + " stopped with " + exit.describe());
    }
    result.duration_ms = since_start(now_ms());
    Status written = sim::write_experiment_outputs(out, result);
    if (!written.is_ok()) result.problems.push_back("outputs: " + written.message());
    if (!keep_data && result.ok()) {
      std::error_code ignored;
      std::filesystem::remove_all(options.directory, ignored);
    } else if (!result.ok()) {
      std::cerr << "keyval experiment run: FAILED; kept the history " << result.history_path << " and the nodes' logs "
                << options.directory << "/node<i>.log" << std::endl;
    }
    std::cout << sim::experiment_summary_json(result) << std::endl;
    return result.ok() ? cli::exit_ok : 1;
  }
};

int run_main(const std::vector<std::string>& args) {
  const cli::Command command =
      cli::Command(command_name, "a restart-cycle or fault-step scenario on real processes (docs/EXPERIMENTS.md)",
                   "SCENARIO")
          .value("out", "", "where the outputs go; required")
          .value("seed", "the scenario's", "the run's seed")
          .flag("keep-data", "keep the nodes' data directories")
          .footer("exit: 0 the run passed its checks, 1 it did not, 2 usage");
  cli::Flags flags;
  if (auto exit = command.parse(args, flags)) return *exit;
  if (flags.positional().size() != 1) return cli::usage_error(command_name, "expects one scenario file");
  if (!flags.has("out")) return cli::usage_error(command_name, "--out DIR is required");
  auto scenario = sim::load_scenario(flags.positional()[0]);
  if (!scenario.is_ok()) return cli::usage_error(command_name, scenario.status().message());
  if (flags.has("seed")) {
    auto seed = flags.get_u64("seed", 0);
    if (!seed.is_ok()) return cli::usage_error(command_name, seed.status().message());
    scenario->seed = *seed;
  }
  if (scenario->has_steps()) return run_fault_steps_experiment(*scenario, flags.get("out"), flags.has("keep-data"));
  if (scenario->how == KillHow::disk_full) {
    return cli::usage_error(command_name, "how disk-full is not supported on real processes (it needs a small file "
                                          "system per node); use sigkill, sigterm or torn, or run it in the simulator");
  }
  const uint64_t nodes_in_all = scenario->nodes + scenario->cycles * scenario->members_added_per_cycle();
  if (nodes_in_all > endpoints_max) {
    return cli::usage_error(command_name, std::string("kill ") + sim::kill_target_name(scenario->target) + " with " +
                                              std::to_string(scenario->cycles) + " cycles needs " +
                                              std::to_string(nodes_in_all) + " node ids; at most " +
                                              std::to_string(endpoints_max) + " on processes");
  }
  Runner runner;
  runner.scenario = *scenario;
  runner.out = flags.get("out");
  runner.keep_data = flags.has("keep-data");
  return runner.run();
}

}  // namespace

int experiment_main(const std::vector<std::string>& args) {
  return cli::dispatch("experiment",
                       {{"run", "a restart-cycle or fault-step scenario on real processes", run_main},
                        {"check", "a recorded history's linearizability", experiment_check_main}},
                       args, "expects: run SCENARIO --out DIR, or check HISTORY");
}

}  // namespace keyval::commands
