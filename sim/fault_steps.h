// Fault-step scenarios (sim/scenario.h: partition, oneway, isolate, delay, heal, pause,
// fill-disk), the parts both runners share: a step's node references resolved against the
// cluster when it starts, the directed links it cuts, and each step's row filled from the
// history (unavailability, operations). `keyval experiment run` applies the steps to real
// processes through apps/fault_proxy.h, SIGSTOP/SIGCONT and a full tmpfs;
// `keyval sim --scenario` through the simulator's network, pause and disk (fault_steps_sim.h).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sim/history.h"
#include "sim/scenario.h"

namespace keyval::sim {

// A step's nodes as ids: groups as FaultStep::groups, `follower` one follower of `leader`
// picked with `random_value` (the same one wherever the step names it).
struct ResolvedStep {
  std::vector<std::vector<uint64_t>> groups;
  std::string nodes;          // for the row's target_nodes: "1 2|3", "1>2", "2", "" (heal, delay everywhere)
  // The step touched the leader (as it was when the step started): it is the node isolated,
  // paused or whose disk fills, an end of the one-way link or delayed link, or on a side of
  // the partition that is no majority.
  bool names_leader = false;
};

// Whether the step needs a leader to resolve (it names `leader` or `follower`).
bool step_needs_leader(const FaultStep& step);
// `leader` 0: none known (then `leader` and `follower` cannot be resolved: the caller waits).
ResolvedStep resolve_step(const FaultStep& step, uint64_t leader, uint64_t nodes, uint64_t random_value);

// The directed links (from, to) a partition, oneway or isolate step cuts in a cluster of
// `nodes`; empty for the other kinds.
std::vector<std::pair<uint64_t, uint64_t>> links_cut(const FaultStep& step, const ResolvedStep& resolved, uint64_t nodes);

// Fills each step row's unavailable_ms (from its start to the first write acknowledged that
// was invoked after it; -1 when none was), ops_acked/failed/unknown (operations completed
// from its start to the next step's start, the last one's to `end_ns`; an unknown one counts
// when it was invoked). `start_ns[k]` is row k's start on the history's clock.
void account_steps(const std::vector<Operation>& history, const std::vector<uint64_t>& start_ns, uint64_t end_ns,
                   std::vector<CycleRecord>& rows);

// Acknowledged operations per `bucket_ms` from 0 to end_ns, on the history's clock.
std::vector<ThroughputSample> throughput_of_history(const std::vector<Operation>& history, uint64_t end_ns,
                                                    double bucket_ms);

}  // namespace keyval::sim
