// Fault steps in the simulator (see fault_steps_sim.h).
#include "sim/fault_steps_sim.h"

#include <algorithm>

#include "sim/fault_steps.h"

namespace keyval::sim {
namespace {

constexpr uint64_t ms = 1'000'000;  // ns
constexpr uint64_t leader_wait_ns_max = 30'000 * ms;  // a step naming the leader waits this long for one
constexpr double bucket_ms = 100;

double to_ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

class StepController final : public SimController {
 public:
  StepController(const Scenario& scenario, CycleProgress progress) : scenario_(scenario), progress_(std::move(progress)) {}

  void act(SimCluster& cluster) override;
  std::optional<uint64_t> next_due_ns() const override { return done_ ? std::nullopt : std::optional<uint64_t>(due_ns_); }
  bool workload_done() const override { return done_; }
  void node_started(uint64_t id, uint64_t now_ns, const RecoveryFigures& recovery) override;

  std::vector<CycleRecord>& rows() { return rows_; }
  const std::vector<uint64_t>& start_ns() const { return start_ns_; }
  const std::vector<std::string>& problems() const { return problems_; }
  uint64_t load_end_ns() const { return load_end_ns_; }

 private:
  void start_step(SimCluster& cluster);
  void end_step(SimCluster& cluster);
  void finish(SimCluster& cluster) {
    done_ = true;
    load_end_ns_ = cluster.now_ns();
  }

  Scenario scenario_;
  CycleProgress progress_;
  bool started_ = false, done_ = false, settling_ = false;
  size_t next_ = 0;                 // the next step to start
  bool in_step_ = false;
  uint64_t due_ns_ = 0;             // the next step's start, the running step's end or the settle's end
  uint64_t waiting_since_ns_ = 0;   // a step waiting for a leader
  ResolvedStep current_;
  bool stopped_ = false;            // fill-disk: its node stopped by itself and is down
  uint64_t restarting_node_ = 0;    // ... and was restarted at the step's end, not yet serving
  size_t restarting_row_ = 0;
  uint64_t restarted_ns_ = 0;
  uint64_t load_end_ns_ = 0;
  std::vector<CycleRecord> rows_;
  std::vector<uint64_t> start_ns_;
  std::vector<std::string> problems_;
};

void StepController::act(SimCluster& cluster) {
  const uint64_t now = cluster.now_ns();
  if (!started_) {
    started_ = true;
    due_ns_ = now + fault_steps_warm_up_ms * ms;
  }
  if (done_) return;
  if (in_step_ && scenario_.steps[next_ - 1].kind == StepKind::fill_disk && !stopped_) {
    const uint64_t node = current_.groups[0][0];
    if (cluster.up(node) && cluster.failed(node)) {  // fail-stop on the full disk
      cluster.take_down(node, SimCluster::Down::power_cut);
      stopped_ = true;
      cluster.trace("scenario: node " + std::to_string(node) + " stopped itself on the full disk");
    }
  }
  if (now < due_ns_) return;
  if (in_step_) end_step(cluster);
  if (settling_) return finish(cluster);
  if (next_ == scenario_.steps.size()) {
    settling_ = true;
    due_ns_ = now + scenario_.settle_ms * ms;
    return;
  }
  start_step(cluster);
}

void StepController::start_step(SimCluster& cluster) {
  const uint64_t now = cluster.now_ns();
  const FaultStep& step = scenario_.steps[next_];
  const uint64_t leader = cluster.leader();
  if (step_needs_leader(step) && leader == 0) {
    if (waiting_since_ns_ == 0) waiting_since_ns_ = now;
    if (now - waiting_since_ns_ > leader_wait_ns_max) {
      problems_.push_back("step " + std::to_string(next_ + 1) + " (" + step.text + "): no leader for " +
                          std::to_string(leader_wait_ns_max / ms) + " ms");
      finish(cluster);
    }
    due_ns_ = now + ms;  // looked at again
    return;
  }
  waiting_since_ns_ = 0;
  current_ = resolve_step(step, leader, scenario_.nodes, cluster.random());
  CycleRecord row;
  row.cycle = next_ + 1;
  row.how = step_kind_name(step.kind);
  row.target_nodes = current_.nodes;
  row.was_leader = current_.names_leader;
  row.killed_at_ms = to_ms(now);
  row.leader_before = static_cast<int64_t>(leader);
  rows_.push_back(row);
  start_ns_.push_back(now);
  cluster.trace("scenario: step " + std::to_string(next_ + 1) + ": " + step.text + " (nodes " + current_.nodes + ")");
  for (auto [from, to] : links_cut(step, current_, scenario_.nodes)) cluster.cut_link(from, to);
  switch (step.kind) {
    case StepKind::delay:
      if (current_.groups.empty()) {
        cluster.delay_link(0, 0, step.delay_ms * ms);
      } else {
        cluster.delay_link(current_.groups[0][0], current_.groups[1][0], step.delay_ms * ms);
      }
      break;
    case StepKind::heal: cluster.heal_links(); break;
    case StepKind::pause: cluster.pause(current_.groups[0][0], true); break;
    case StepKind::fill_disk:
      stopped_ = false;
      cluster.set_disk_full(current_.groups[0][0], true);
      break;
    default: break;
  }
  ++next_;
  in_step_ = true;
  due_ns_ = now + step.hold_ms * ms;
}

void StepController::end_step(SimCluster& cluster) {
  const uint64_t now = cluster.now_ns();
  const FaultStep& step = scenario_.steps[next_ - 1];
  CycleRecord& row = rows_.back();
  if (step.kind == StepKind::pause) cluster.pause(current_.groups[0][0], false);
  if (step.kind == StepKind::fill_disk) {
    const uint64_t node = current_.groups[0][0];
    cluster.set_disk_full(node, false);
    if (stopped_) {
      restarted_ns_ = now;
      restarting_node_ = node;
      restarting_row_ = rows_.size() - 1;
      stopped_ = false;
      cluster.restart(node);
    }
  }
  row.down_ms = to_ms(now - start_ns_.back());
  row.leader_after = static_cast<int64_t>(cluster.leader());
  in_step_ = false;
  if (progress_) progress_(row, static_cast<double>(now) / 1e9, cluster.operations());
}

void StepController::node_started(uint64_t id, uint64_t now_ns, const RecoveryFigures& recovery) {
  if (restarting_node_ == 0 || restarting_node_ != id) return;
  CycleRecord& row = rows_[restarting_row_];
  row.recovery_entries = recovery.entries_recovered;
  row.torn_bytes_cut = recovery.torn_bytes_cut;
  row.recovery_ms = to_ms(now_ns - restarted_ns_);
  restarting_node_ = 0;
}

}  // namespace

ScenarioRun run_fault_steps_simulation(const Scenario& scenario, const SimOptions& base, const CycleProgress& progress) {
  StepController controller(scenario, progress);
  SimOptions options = scenario_sim_options(scenario, base);
  options.spare_nodes = 0;  // steps add no members
  ScenarioRun run;
  run.simulation = run_simulation(options, controller);
  const SimResult& simulation = run.simulation;
  ExperimentResult& result = run.experiment;
  result.scenario = scenario;
  result.mode = "simulation";
  result.bucket_ms = bucket_ms;
  result.cycles = std::move(controller.rows());
  const uint64_t load_end_ns = controller.load_end_ns() != 0 ? controller.load_end_ns()
                                                             : static_cast<uint64_t>(simulation.virtual_seconds * 1e9);
  account_steps(simulation.history, controller.start_ns(), load_end_ns, result.cycles);
  result.throughput = throughput_of_history(simulation.history, load_end_ns, bucket_ms);
  result.duration_ms = to_ms(load_end_ns);
  result.acked_writes = simulation.acked_writes;
  result.lost_acked_writes = simulation.lost_acked_writes;
  result.problems = controller.problems();
  if (result.cycles.size() < scenario.steps.size() && result.problems.empty()) {
    result.problems.push_back("only " + std::to_string(result.cycles.size()) + " of " +
                              std::to_string(scenario.steps.size()) + " steps ran");
  }
  for (const std::string& violation : simulation.violations) {
    if (violation.find("acknowledged write lost") == std::string::npos) result.problems.push_back(violation);
  }
  result.linearizable = verdict_name(simulation.linearizable);
  result.history_operations = simulation.history.size();
  if (simulation.linearizable == Verdict::no) {
    result.problems.push_back("not linearizable: " + simulation.linearizability_detail);
  }
  return run;
}

}  // namespace keyval::sim
