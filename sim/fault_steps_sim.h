// Fault-step scenarios in the simulator (`keyval sim --scenario FILE` of a file with steps):
// a SimController that applies each step when it is due, on the simulator's own seams:
//   partition, oneway, isolate   cut links of the simulated network (SimCluster::cut_link);
//                                what was in flight on a cut link is lost
//   delay                        a fixed extra delay on every link, or one directed link
//   heal                         every cut and delay removed
//   pause                        the node runs nothing and receives nothing for the step, what
//                                was sent to it arrives when it resumes (SIGSTOP's effect)
//   fill-disk                    the node's WAL can no longer grow (the simulated disk's full
//                                flag); a node that stops by itself (fail-stop) is taken down,
//                                and restarted through its recovery when the step ends
// The load runs warm_up_ms before the first step and `settle` after the last; then the
// simulator heals everything and checks as always (invariants, linearizability, acknowledged
// writes). The rows are filled from the history as on processes (sim/fault_steps.h).
#pragma once

#include "sim/scenario_sim.h"

namespace keyval::sim {

constexpr uint64_t fault_steps_warm_up_ms = 500;  // the load before the first step, in both runners

ScenarioRun run_fault_steps_simulation(const Scenario& scenario, const SimOptions& base, const CycleProgress& progress);

}  // namespace keyval::sim
