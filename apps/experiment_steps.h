// Fault-step scenarios on real processes (`keyval experiment run FILE` where FILE has steps:
// partition, oneway, isolate, delay, heal, pause, fill-disk; sim/scenario.h), and the
// linearizability check of a recorded history (`keyval experiment check HISTORY`).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "apps/local_cluster.h"
#include "sim/history.h"
#include "sim/scenario.h"

namespace keyval::commands {

// The run: exit 0 when nothing acknowledged was lost, the history is linearizable and every step
// ran; 1 otherwise (the history and the nodes' logs are kept and named); 2 when the scenario
// cannot run here (fill-disk without root).
// The scenario load's clients: an operation is given up within 3 s, one request within 500 ms.
KvClientOptions scenario_load_client_options();
// The scenario's client load (mix, keys, rate, seed, value size) on `endpoints`, started now.
std::unique_ptr<WriteLoad> start_scenario_load(const sim::Scenario& scenario, const std::vector<Endpoint>& endpoints);

int run_fault_steps_experiment(const sim::Scenario& scenario, const std::string& out, bool keep_data);

// Checks `history` (written to `path`) for linearizability; the verdict ("yes", "no",
// "unknown") and, unless yes, a description naming the key, the operations and `path`.
struct HistoryVerdict {
  std::string linearizable;
  std::string detail;
};
HistoryVerdict check_history(const std::vector<sim::Operation>& history, const std::string& path);

// The load's operations as a history (times from `start_ns` on the steady clock), written to
// OUT/history.jsonl and checked; fills result's linearizable, history_operations, history_path,
// and on a violation a problem naming the key, the history and the nodes' logs (`logs`).
void check_load_history(const std::vector<LoadOp>& ops, uint64_t start_ns, const std::string& out,
                        const std::string& logs, sim::ExperimentResult& result);

// keyval experiment check HISTORY: exit 0 linearizable, 1 a violation, 3 undecided (a search
// bound), 2 bad usage or an unreadable file.
int experiment_check_main(const std::vector<std::string>& args);

}  // namespace keyval::commands
