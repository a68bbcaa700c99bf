// Fault-step scenarios on real processes (`keyval experiment run FILE` where FILE has steps:
// partition, oneway, isolate, delay, heal, pause, fill-disk; sim/scenario.h), and the
// linearizability check of a recorded history (`keyval experiment check HISTORY`).
#pragma once

#include <string>
#include <vector>

#include "sim/history.h"
#include "sim/scenario.h"

namespace keyval::commands {

// The run: exit 0 when nothing acknowledged was lost, the history is linearizable and every step
// ran; 1 otherwise (the history and the nodes' logs are kept and named); 2 when the scenario
// cannot run here (fill-disk without root).
int run_fault_steps_experiment(const sim::Scenario& scenario, const std::string& out, bool keep_data);

// Checks `history` (written to `path`) for linearizability; the verdict ("yes", "no",
// "unknown") and, unless yes, a description naming the key, the operations and `path`.
struct HistoryVerdict {
  std::string linearizable;
  std::string detail;
};
HistoryVerdict check_history(const std::vector<sim::Operation>& history, const std::string& path);

// keyval experiment check HISTORY: exit 0 linearizable, 1 a violation, 3 undecided (a search
// bound), 2 bad usage or an unreadable file.
int experiment_check_main(const std::vector<std::string>& args);

}  // namespace keyval::commands
