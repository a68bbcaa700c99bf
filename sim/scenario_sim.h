// Restart-cycle scenarios (sim/scenario.h) in the deterministic simulator: `keyval sim
// --scenario FILE`. The same experiment `keyval experiment run` does with real processes, in
// virtual time, with no random fault besides the scenario's own downs, reproducible from the
// seed down to the trace hash.
//
// The run: the scenario's clients load the cluster (its mix, keys, value size; closed loop or
// paced to its total rate). Then `cycles` times: wait as `every`/`after-writes`/`random` says
// (counted from the moment the previous cycle's node came back, or from the start), pick the
// node(s) to take down (the leader, a follower, ...: a leader or follower kill waits until
// there is a leader), take them down as `how` says, keep them down `down`, and restart them
// through the real recovery. After the last cycle the load goes on for `settle`; then the
// simulator heals, reads back every key the clients touched and checks as always (Raft
// invariants, linearizability, acknowledged writes still in the log).
//
// kill replace / kill grow change the membership instead, one server at a time: each new node
// (a spare, SimOptions::spare_nodes) is added as a learner and starts with an empty data
// directory, is promoted once within the promote bound, and after it the oldest member(s) are
// removed (a leader hands over first) and retired with `how` (sigterm: a clean stop; sigkill:
// a power cut). Each change is asked of the serving leader until its committed configuration
// shows it. The cycle's kill is the first removal; new_member_bytes are the Raft bytes the
// network delivered to the new node(s) until they caught up.
//
// How a node goes down:
//   sigkill    a power cut: the simulated disk keeps only what was synced.
//   torn       a power cut with the last write torn. A node writes and syncs its WAL within
//              one of its jobs, so between two steps it has nothing unsynced: its next sync
//              fails instead (within 50 ms; an idle node just loses power), the power goes
//              right after, and the disk keeps a random prefix of that write (no garbage: the
//              lost part reads as before). killed_at_ms is the power cut.
//   sigterm    a clean stop: the node's actors wind down with the disk working and every
//              byte written stays, synced or not (the operating system outlives the process).
//   disk-full  the node's WAL can no longer grow (writes into space already allocated still
//              succeed, as on a real full disk); the node runs on until it stops by itself
//              (fail-stop on no_space) or 1 s passes, then loses power; the space is back
//              when it restarts. killed_at_ms is when the disk filled, down_ms from the stop.
#pragma once

#include <functional>

#include "sim/scenario.h"
#include "sim/simulator.h"

namespace keyval::sim {

struct ScenarioRun {
  ExperimentResult experiment;  // mode "simulation", times in virtual milliseconds
  SimResult simulation;         // trace hash, steps, history, violations as `keyval sim` has them
};

// After each cycle's node(s) restarted: that cycle, the virtual time, operations invoked so far.
using CycleProgress = std::function<void(const CycleRecord& cycle, double virtual_s, uint64_t operations)>;

// invalid_argument naming what of the scenario the simulator cannot run; ok otherwise.
Status check_scenario_for_simulation(const Scenario& scenario);

// Runs `scenario` (check it first). `base` supplies what a scenario does not say
// (settle_ms_max, work_directory, trace, planted_bug); nodes, clients, keys, the workload,
// the seed and the faults (none but the scenario's) come from the scenario.
ScenarioRun run_scenario_simulation(const Scenario& scenario, const SimOptions& base,
                                    const CycleProgress& progress = {});

// The simulator options a scenario runs with: `base` with the scenario's nodes, clients, keys,
// workload, seed and rate, no random faults, and the spare nodes and snapshot sizes its
// membership changes need (none for a scenario of fault steps).
SimOptions scenario_sim_options(const Scenario& scenario, const SimOptions& base);

}  // namespace keyval::sim
