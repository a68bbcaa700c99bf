// keyval sim: runs the deterministic simulator (sim/simulator.h) for one seed or a range.
//
//   keyval sim --seed S [--nodes N] [--ops N] [--clients C] [--keys K] [--duration-ms T]
//              [--faults none|network|crash|disk|all] [--history FILE] [--trace]
//              [--snapshot-entries N (20)] [--log-tail-entries N (2)]   (0: no snapshots)
//              [--value-bytes B (0: values as short as they come; up to 64 KiB)]
//   keyval sim --seeds A..B [same flags]     a sweep: one line per failing seed, with the
//              [--jobs N (1)]                command that replays it; a summary line last;
//                                            --jobs: N forked worker processes (sim/seed_workers.h),
//                                            the same lines in the same order
//   --planted-bug vote-before-durable|ack-before-durable|commit-old-term|snapshot-ack-before-durable|
//                 compact-past-commit|conf-changes-at-once|removed-still-counts|vote-while-repairing|
//                 leader-counts-before-durable|release-snapshot-before-load|
//                 get-batch-without-read-index
//                 (tests: a broken Raft to catch)
//   keyval sim --scenario FILE [--out DIR] [--seed S] [--history FILE] [--trace]
//                                            a restart-cycle experiment (sim/scenario.h) in
//                                            virtual time: a progress line per cycle on stderr,
//                                            DIR/cycles.csv, summary.json, ... when --out is given
// One seed: the last line is a JSON object (seed, trace_hash, ops, violations,
// linearizable, lost_acked_writes, ...); a scenario: the experiment's summary. Exit 0 only
// when nothing was violated, 1 when something was, 2 on a usage error or a bad scenario file,
// 3 when a sweep's worker process died (an ERROR line names its seeds; they were not all run).
#include <malloc.h>

#include <iostream>

#include "apps/cli.h"
#include "apps/commands.h"
#include "sim/history_json.h"
#include "sim/scenario.h"
#include "sim/scenario_sim.h"
#include "sim/seed_workers.h"
#include "sim/simulator.h"

namespace keyval::commands {
namespace {

constexpr int exit_violation = 1;
constexpr uint64_t sim_value_bytes_max = 64u << 10;  // as a scenario's value-bytes (sim/scenario_sim.cc)

struct SeedRange {
  uint64_t first = 1, last = 1;
};

Result<SeedRange> parse_seed_range(const std::string& text) {
  auto dots = text.find("..");
  if (dots == std::string::npos) return Status::invalid_argument("--seeds wants A..B, got '" + text + "'");
  KV_ASSIGN_OR_RETURN(uint64_t first, cli::parse_u64(text.substr(0, dots), "--seeds start"));
  KV_ASSIGN_OR_RETURN(uint64_t last, cli::parse_u64(text.substr(dots + 2), "--seeds end"));
  if (last < first) return Status::invalid_argument("--seeds: " + text + " is an empty range");
  return SeedRange{first, last};
}

Result<raft::PlantedBug> parse_planted_bug(const std::string& text) {
  if (text.empty() || text == "none") return raft::PlantedBug::none;
  if (text == "vote-before-durable") return raft::PlantedBug::vote_before_durable;
  if (text == "ack-before-durable") return raft::PlantedBug::ack_before_durable;
  if (text == "commit-old-term") return raft::PlantedBug::commit_old_term;
  if (text == "snapshot-ack-before-durable") return raft::PlantedBug::snapshot_ack_before_durable;
  if (text == "compact-past-commit") return raft::PlantedBug::compact_past_commit;
  if (text == "conf-changes-at-once") return raft::PlantedBug::conf_changes_at_once;
  if (text == "removed-still-counts") return raft::PlantedBug::removed_still_counts;
  if (text == "vote-while-repairing") return raft::PlantedBug::vote_while_repairing;
  if (text == "leader-counts-before-durable") return raft::PlantedBug::leader_counts_before_durable;
  if (text == "release-snapshot-before-load") return raft::PlantedBug::release_snapshot_before_load;
  if (text == "get-batch-without-read-index") return raft::PlantedBug::get_batch_without_read_index;
  return Status::invalid_argument("--planted-bug: unknown '" + text +
                                  "' (vote-before-durable, ack-before-durable, commit-old-term, "
                                  "snapshot-ack-before-durable, compact-past-commit, conf-changes-at-once, removed-still-counts, "
                                  "vote-while-repairing, leader-counts-before-durable, release-snapshot-before-load, "
                                  "get-batch-without-read-index)");
}

Result<sim::SimOptions> parse_options(const cli::Flags& flags) {
  sim::SimOptions options;
  KV_ASSIGN_OR_RETURN(options.seed, flags.get_u64("seed", 1));
  KV_ASSIGN_OR_RETURN(uint64_t nodes, flags.get_u64("nodes", options.nodes));
  KV_ASSIGN_OR_RETURN(options.ops, flags.get_u64("ops", options.ops));
  KV_ASSIGN_OR_RETURN(uint64_t clients, flags.get_u64("clients", options.clients));
  KV_ASSIGN_OR_RETURN(uint64_t keys, flags.get_u64("keys", options.keys));
  KV_ASSIGN_OR_RETURN(options.duration_ms, flags.get_u64("duration-ms", options.duration_ms));
  if (nodes < 1 || nodes > 9) return Status::invalid_argument("--nodes must be 1..9, got " + std::to_string(nodes));
  if (clients < 1 || clients > 64) return Status::invalid_argument("--clients must be 1..64");
  if (keys < 1 || keys > 1000) return Status::invalid_argument("--keys must be 1..1000");
  options.nodes = nodes;
  options.clients = clients;
  options.keys = keys;
  if (!sim::parse_fault_mode(flags.get("faults", "all"), &options.faults)) {
    return Status::invalid_argument("--faults: unknown '" + flags.get("faults") + "' (none, network, crash, disk, all)");
  }
  KV_ASSIGN_OR_RETURN(options.planted_bug, parse_planted_bug(flags.get("planted-bug")));
  KV_ASSIGN_OR_RETURN(options.snapshot_entries, flags.get_u64("snapshot-entries", options.snapshot_entries));
  KV_ASSIGN_OR_RETURN(options.log_tail_entries, flags.get_u64("log-tail-entries", options.log_tail_entries));
  KV_ASSIGN_OR_RETURN(uint64_t increments, flags.get_u64("increment-percent", 0));
  if (increments > options.get_percent) {
    return Status::invalid_argument("--increment-percent must be 0.." + std::to_string(options.get_percent) +
                                    " (taken from the gets)");
  }
  options.increment_percent = static_cast<uint32_t>(increments);
  options.get_percent -= static_cast<uint32_t>(increments);
  if (flags.has("disk-latency-us")) {
    options.disk_latency_by_seed = false;
    const std::string text = flags.get("disk-latency-us");
    const size_t dots = text.find("..");
    if (dots == std::string::npos) return Status::invalid_argument("--disk-latency-us wants MIN..MAX, got '" + text + "'");
    KV_ASSIGN_OR_RETURN(options.disk_latency_min_us, cli::parse_u64(text.substr(0, dots), "--disk-latency-us min"));
    KV_ASSIGN_OR_RETURN(options.disk_latency_max_us, cli::parse_u64(text.substr(dots + 2), "--disk-latency-us max"));
    if (options.disk_latency_max_us < options.disk_latency_min_us || options.disk_latency_max_us > 1000000) {
      return Status::invalid_argument("--disk-latency-us: " + text + " is not a range within 0..1000000");
    }
  }
  KV_ASSIGN_OR_RETURN(options.value_bytes, flags.get_u64("value-bytes", 0));
  if (options.value_bytes > sim_value_bytes_max) {
    return Status::invalid_argument("--value-bytes must be 0.." + std::to_string(sim_value_bytes_max) + ", got " +
                                    std::to_string(options.value_bytes));
  }
  options.trace = flags.has("trace");
  return options;
}

std::string replay_command(const cli::Flags& flags, uint64_t seed) {
  std::string command = "keyval sim --seed " + std::to_string(seed);
  for (const char* name : {"nodes", "ops", "clients", "keys", "duration-ms", "faults", "planted-bug", "snapshot-entries",
                           "log-tail-entries", "increment-percent", "disk-latency-us", "value-bytes"}) {
    if (flags.has(name)) command += std::string(" --") + name + " " + flags.get(name);
  }
  return command;
}

std::string result_json(const sim::SimResult& result) {
  cli::JsonLine line;
  line.add("seed", result.seed)
      .add("trace_hash", result.trace_hash)
      .add("ops", result.ops)
      .add("ok", result.ops_ok)
      .add("failed", result.ops_failed)
      .add("unknown", result.ops_unknown)
      .add("violations", cli::Json(result.violations))
      .add("linearizable", sim::verdict_name(result.linearizable))
      .add("acked_writes", result.acked_writes)
      .add("lost_acked_writes", result.lost_acked_writes)
      .add("increments_acked", result.increments_acked)
      .add("steps", result.steps)
      .add("crashes", result.crashes)
      .add("process_crashes", result.process_crashes)
      .add("kills_at_sync", result.kills_at_sync)
      .add("lmdb_rebuilds", result.lmdb_rebuilds)
      .add("restarts", result.restarts)
      .add("partitions", result.partitions)
      .add("sync_failures", result.sync_failures)
      .add("snapshots", result.snapshots)
      .add("snapshots_installed", result.snapshots_installed)
      .add("leader_transfers", result.leader_transfers)
      .add("leader_transfers_completed", result.leader_transfers_completed)
      .add("member_changes", result.member_changes)
      .add("members_added", result.members_added)
      .add("members_promoted", result.members_promoted)
      .add("members_removed", result.members_removed)
      .add("leaders_outside_configuration", result.leaders_outside_configuration)
      .add("wipes", result.wipes)
      .add("wipes_refused", result.wipes_refused)
      .add("bit_flips", result.bit_flips)
      .add("latent_sector_errors", result.latent_sector_errors)
      .add("misdirected_writes", result.misdirected_writes)
      .add("repairs", result.repairs)
      .add("repairs_completed", result.repairs_completed)
      .add("entries_refetched", result.entries_refetched)
      .add("persists_pipelined", result.persists_pipelined)
      .add("leader_persists_pipelined", result.leader_persists_pipelined)
      .add("persists_in_flight_max", result.persists_in_flight_max)
      .add("packets", result.packets_sent)
      .add("virtual_s", result.virtual_seconds)
      .add("wall_s", result.wall_seconds)
      .add("sim_s_per_wall_s", result.wall_seconds > 0 ? result.virtual_seconds / result.wall_seconds : 0.0);
  if (result.linearizable != sim::Verdict::yes) line.add("linearizability_detail", result.linearizability_detail);
  return line.str();
}

int run_one(const cli::Flags& flags, const sim::SimOptions& options) {
  sim::SimResult result = sim::run_simulation(options);
  if (flags.has("history")) {
    Status written = sim::write_history_file(flags.get("history"), result.history);
    if (!written.is_ok()) return cli::usage_error("sim", "--history: " + written.to_string());
  }
  for (const std::string& violation : result.violations) std::cerr << "violation: " << violation << "\n";
  std::cout << result_json(result) << std::endl;
  return result.ok() ? cli::exit_ok : exit_violation;
}

// What a sweep keeps of one seed's run: enough for its FAIL line and the summary's totals.
// With --jobs it crosses a pipe from a worker (encode/decode, exact: doubles in JSON round-trip).
struct SeedOutcome {
  uint64_t seed = 0;
  bool failed = false;
  std::string failure;  // the first violation, or why the history is not linearizable
  uint64_t media_faults = 0, repairs = 0, repairs_completed = 0, entries_refetched = 0;
  uint64_t leaders_outside_configuration = 0;
  uint64_t process_crashes = 0, lmdb_rebuilds = 0;
  double wall_seconds = 0, virtual_seconds = 0;
};

SeedOutcome outcome_of(const sim::SimResult& result) {
  SeedOutcome outcome;
  outcome.seed = result.seed;
  outcome.failed = !result.ok();
  if (outcome.failed) {
    outcome.failure = result.violations.empty() ? "not linearizable: " + result.linearizability_detail
                                                : result.violations.front();
  }
  outcome.media_faults = result.bit_flips + result.latent_sector_errors + result.misdirected_writes;
  outcome.repairs = result.repairs;
  outcome.repairs_completed = result.repairs_completed;
  outcome.entries_refetched = result.entries_refetched;
  outcome.leaders_outside_configuration = result.leaders_outside_configuration;
  outcome.process_crashes = result.process_crashes;
  outcome.lmdb_rebuilds = result.lmdb_rebuilds;
  outcome.wall_seconds = result.wall_seconds;
  outcome.virtual_seconds = result.virtual_seconds;
  return outcome;
}

// The failure text goes as hex: it is printed byte for byte, and JSON holds only UTF-8.
std::string encode_outcome(const SeedOutcome& outcome) {
  cli::Json json{{"seed", outcome.seed},
                 {"failed", outcome.failed},
                 {"failure_hex", cli::hex_encode(outcome.failure)},
                 {"media_faults", outcome.media_faults},
                 {"repairs", outcome.repairs},
                 {"repairs_completed", outcome.repairs_completed},
                 {"entries_refetched", outcome.entries_refetched},
                 {"leaders_outside_configuration", outcome.leaders_outside_configuration},
                 {"process_crashes", outcome.process_crashes},
                 {"lmdb_rebuilds", outcome.lmdb_rebuilds},
                 {"wall_s", outcome.wall_seconds},
                 {"virtual_s", outcome.virtual_seconds}};
  return json.dump();
}

SeedOutcome decode_outcome(const std::string& record) {
  const cli::Json json = cli::Json::parse(record);  // our own workers wrote it: a bad one is a bug
  SeedOutcome outcome;
  outcome.seed = json.at("seed").get<uint64_t>();
  outcome.failed = json.at("failed").get<bool>();
  auto failure = cli::hex_decode(json.at("failure_hex").get<std::string>(), "failure_hex");
  KV_ASSERT(failure.is_ok());
  outcome.failure = *failure;
  outcome.media_faults = json.at("media_faults").get<uint64_t>();
  outcome.repairs = json.at("repairs").get<uint64_t>();
  outcome.repairs_completed = json.at("repairs_completed").get<uint64_t>();
  outcome.entries_refetched = json.at("entries_refetched").get<uint64_t>();
  outcome.leaders_outside_configuration = json.at("leaders_outside_configuration").get<uint64_t>();
  outcome.process_crashes = json.at("process_crashes").get<uint64_t>();
  outcome.lmdb_rebuilds = json.at("lmdb_rebuilds").get<uint64_t>();
  outcome.wall_seconds = json.at("wall_s").get<double>();
  outcome.virtual_seconds = json.at("virtual_s").get<double>();
  return outcome;
}

// Exit code of a sweep whose workers did not all finish: some seeds were not run.
constexpr int exit_worker_failed = 3;
constexpr uint64_t progress_every_seeds = 50;

// A sweep's stdout: a FAIL line per failing seed (in seed order), an ERROR line per worker
// that died, and the summary line last. Serial and parallel sweeps print through it alike.
class SweepReport {
 public:
  explicit SweepReport(const cli::Flags& flags) : flags_(flags) {}

  void add(const SeedOutcome& outcome) {
    ++runs_;
    media_faults_ += outcome.media_faults;
    repairs_ += outcome.repairs;
    repairs_completed_ += outcome.repairs_completed;
    refetched_ += outcome.entries_refetched;
    leaders_outside_ += outcome.leaders_outside_configuration;
    process_crashes_ += outcome.process_crashes;
    lmdb_rebuilds_ += outcome.lmdb_rebuilds;
    wall_ += outcome.wall_seconds;
    simulated_ += outcome.virtual_seconds;
    if (!outcome.failed) return;
    ++failing_;
    std::cout << "FAIL seed " << outcome.seed << ": " << outcome.failure
              << "\n  replay: " << replay_command(flags_, outcome.seed) << std::endl;
  }

  void worker_failed(const sim::WorkerFailure& failure) {
    const uint64_t running = failure.first_seed + failure.seeds_reported;
    ++worker_failures_;
    seeds_not_run_ += failure.last_seed - running + 1;
    const std::string line = "ERROR seeds " + std::to_string(failure.first_seed) + ".." +
                             std::to_string(failure.last_seed) + ": worker " + std::to_string(failure.pid) + " " +
                             failure.how + " while running seed " + std::to_string(running) + "; seeds " +
                             std::to_string(running) + ".." + std::to_string(failure.last_seed) + " not run";
    std::cout << line << std::endl;
    std::cerr << "sim sweep: " << line << std::endl;
  }

  // The summary line; with worker failures it also says how many seeds were not run.
  void print_summary() const {
    cli::JsonLine line;
    line.add("seeds", runs_).add("failing", failing_).add("media_faults", media_faults_).add("repairs", repairs_)
        .add("repairs_completed", repairs_completed_).add("entries_refetched", refetched_)
        .add("leaders_outside_configuration", leaders_outside_)
        .add("process_crashes", process_crashes_).add("lmdb_rebuilds", lmdb_rebuilds_)
        .add("wall_s", wall_).add("virtual_s", simulated_)
        .add("sim_s_per_wall_s", wall_ > 0 ? simulated_ / wall_ : 0.0);
    if (worker_failures_ > 0) line.add("worker_failures", worker_failures_).add("seeds_not_run", seeds_not_run_);
    std::cout << line.str() << std::endl;
  }

  int exit_code() const {
    if (worker_failures_ > 0) return exit_worker_failed;
    return failing_ == 0 ? cli::exit_ok : exit_violation;
  }
  double simulated_seconds() const { return simulated_; }

 private:
  const cli::Flags& flags_;
  uint64_t runs_ = 0, failing_ = 0, media_faults_ = 0, repairs_ = 0, repairs_completed_ = 0, refetched_ = 0;
  uint64_t leaders_outside_ = 0, process_crashes_ = 0, lmdb_rebuilds_ = 0;
  uint64_t worker_failures_ = 0, seeds_not_run_ = 0;
  double wall_ = 0, simulated_ = 0;
};

void print_progress(uint64_t done, uint64_t total, uint64_t failing, double start, uint64_t jobs) {
  std::cerr << "sim sweep: " << done << " of " << total << " seeds, " << failing << " failing, "
            << cli::monotonic_seconds() - start << " s";
  if (jobs > 1) std::cerr << " (--jobs " << jobs << ")";
  std::cerr << std::endl;
}

int run_sweep(const cli::Flags& flags, sim::SimOptions options, SeedRange range, uint64_t jobs) {
  SweepReport report(flags);
  const uint64_t total = range.last - range.first + 1;
  const double start = cli::monotonic_seconds();
  if (jobs == 1) {
    uint64_t failing = 0;
    for (uint64_t seed = range.first; seed <= range.last; ++seed) {
      options.seed = seed;
      const SeedOutcome outcome = outcome_of(sim::run_simulation(options));
      report.add(outcome);
      failing += outcome.failed ? 1 : 0;
      const uint64_t done = seed - range.first + 1;
      if (done % progress_every_seeds == 0) print_progress(done, total, failing, start, jobs);
    }
    report.print_summary();
    return report.exit_code();
  }
  uint64_t failing_arrived = 0;  // progress counts seeds as they arrive, in any order
  sim::SeedWorkerCalls calls;
  calls.run_seed = [&options](uint64_t seed) {
    options.seed = seed;
    return encode_outcome(outcome_of(sim::run_simulation(options)));
  };
  calls.on_record = [&report](uint64_t seed, const std::string& record) {
    SeedOutcome outcome = decode_outcome(record);
    KV_ASSERT(outcome.seed == seed);
    report.add(outcome);
  };
  calls.on_failure = [&report](const sim::WorkerFailure& failure) { report.worker_failed(failure); };
  calls.on_progress = [&](uint64_t done, const std::string& record) {
    failing_arrived += decode_outcome(record).failed ? 1 : 0;
    if (done % progress_every_seeds == 0) print_progress(done, total, failing_arrived, start, jobs);
  };
  Status ran = sim::run_seeds_in_workers(range.first, range.last, jobs, calls);
  report.print_summary();
  const double elapsed = cli::monotonic_seconds() - start;
  std::cerr << "sim sweep: " << total << " seeds in " << elapsed << " s elapsed (--jobs " << jobs << "), "
            << (elapsed > 0 ? report.simulated_seconds() / elapsed : 0.0) << " simulated s per elapsed s" << std::endl;
  if (!ran.is_ok()) {
    std::cerr << "keyval sim: " << ran.to_string() << std::endl;
    return exit_worker_failed;
  }
  return report.exit_code();
}

Result<uint64_t> parse_jobs(const cli::Flags& flags) {
  const std::string text = flags.get("jobs", "1");
  auto jobs = cli::parse_u64(text, "--jobs");
  if (!jobs.is_ok() || *jobs < 1 || *jobs > sim::jobs_max) {
    return Status::invalid_argument("--jobs wants a number of worker processes, 1 to " +
                                    std::to_string(sim::jobs_max) + ", got '" + text + "'");
  }
  return *jobs;
}

// Every simulated node start and stop opens and closes an LMDB environment, and LMDB
// allocates a 2 MiB dirty-page list (calloc) and a 1 MiB free-page list per environment.
// With glibc's sliding mmap threshold those came from the heap after the first free: each
// open then zeroed 2 MiB of memory the heap had just given back to the kernel, a quarter of
// a sweep's time in memset and page faults (perf, docs/BENCHMARKS.md "Simulator speed").
// A fixed 1 MiB threshold maps them fresh: already zero, and only the pages LMDB touches are
// faulted in. Allocation addresses do not reach the simulated behaviour (same trace hashes).
// Only glibc's malloc reads this: the default build allocates with jemalloc (KEYVAL_JEMALLOC,
// CMakeLists.txt), which ignores it; a build with -DKEYVAL_JEMALLOC=OFF still gains from it.
// (Under jemalloc, purging freed blocks at once, MALLOC_CONF=dirty_decay_ms:0, made
// `keyval sim --seeds 1..40` slower: twice the page faults, seven times the madvise calls.)
void keep_large_allocations_apart() { ::mallopt(M_MMAP_THRESHOLD, 1 << 20); }

// A scenario says what these say.
constexpr const char* flags_a_scenario_sets[] = {"seeds", "nodes", "ops", "clients", "keys", "duration-ms", "faults"};

int run_scenario(const cli::Flags& flags) {
  if (flags.has("jobs")) return cli::usage_error("sim", "--jobs runs a sweep's seeds in parallel: not with --scenario");
  for (const char* name : flags_a_scenario_sets) {
    if (!flags.has(name)) continue;
    const std::string why = std::string(name) == "seeds" ? "one seed: --seed" : "the scenario says";
    return cli::usage_error("sim", std::string("--") + name + " does not go with --scenario (" + why + ")");
  }
  if (flags.has("out") && flags.get("out").empty()) return cli::usage_error("sim", "--out wants a directory");
  auto scenario = sim::load_scenario(flags.get("scenario"));
  if (!scenario.is_ok()) return cli::usage_error("sim", scenario.status().message());
  if (flags.has("seed")) {
    auto seed = flags.get_u64("seed", scenario->seed);
    if (!seed.is_ok()) return cli::usage_error("sim", seed.status().message());
    scenario->seed = *seed;
  }
  Status runnable = sim::check_scenario_for_simulation(*scenario);
  if (!runnable.is_ok()) return cli::usage_error("sim", flags.get("scenario") + ": " + runnable.message());
  sim::SimOptions base;
  auto planted_bug = parse_planted_bug(flags.get("planted-bug"));
  if (!planted_bug.is_ok()) return cli::usage_error("sim", planted_bug.status().message());
  base.planted_bug = *planted_bug;
  base.trace = flags.has("trace");

  const uint64_t cycles = scenario->cycles;
  const char* unit = scenario->has_steps() ? "step " : "cycle ";
  sim::ScenarioRun run = sim::run_scenario_simulation(
      *scenario, base, [cycles, unit](const sim::CycleRecord& cycle, double virtual_s, uint64_t operations) {
        std::cerr << unit << cycle.cycle << " of " << cycles << ", virtual " << virtual_s << " s, ops so far "
                  << operations << (cycle.target_nodes.empty() ? "" : " (" + cycle.how + " " + cycle.target_nodes + ")")
                  << std::endl;
      });
  if (flags.has("history")) {
    Status written = sim::write_history_file(flags.get("history"), run.simulation.history);
    if (!written.is_ok()) return cli::usage_error("sim", "--history: " + written.to_string());
  }
  if (flags.has("out")) {
    Status written = sim::write_experiment_outputs(flags.get("out"), run.experiment);
    if (!written.is_ok()) return cli::usage_error("sim", "--out: " + written.to_string());
  }
  for (const std::string& problem : run.experiment.problems) std::cerr << "problem: " << problem << "\n";
  for (const std::string& violation : run.simulation.violations) {
    if (violation.find("acknowledged write lost") != std::string::npos) std::cerr << "violation: " << violation << "\n";
  }
  // Same scenario, same seed: same trace hash (the replay check).
  const sim::SimResult& simulation = run.simulation;
  cli::JsonLine line;
  line.add("seed", simulation.seed)
      .add("trace_hash", simulation.trace_hash)
      .add("steps", simulation.steps)
      .add("ops", simulation.ops)
      .add("linearizable", sim::verdict_name(simulation.linearizable))
      .add("virtual_s", simulation.virtual_seconds)
      .add("wall_s", simulation.wall_seconds);
  std::cout << line.str() << "\n" << sim::experiment_summary_json(run.experiment) << std::endl;
  return run.experiment.ok() ? cli::exit_ok : exit_violation;
}

}  // namespace

int sim_main(const std::vector<std::string>& args) {
  const sim::SimOptions defaults;
  const cli::Command command =
      cli::Command("sim", "deterministic cluster simulation: one seed, a range of seeds, or a scenario file")
          .value("seed", "1", "the run's seed")
          .value("seeds", "", "A..B: every seed in the range, a summary line each failure")
          .value("nodes", std::to_string(defaults.nodes), "cluster size")
          .value("ops", std::to_string(defaults.ops), "client operations")
          .value("clients", std::to_string(defaults.clients), "concurrent clients")
          .value("keys", std::to_string(defaults.keys), "distinct keys")
          .value("duration-ms", std::to_string(defaults.duration_ms), "virtual time run")
          .value("faults", "all", "none, network, crash, disk or all")
          .value("history", "", "write the recorded history to FILE (one seed)")
          .value("planted-bug", "none", "a known bug to plant, to see the checkers catch it")
          .value("scenario", "", "a scenario file (docs/EXPERIMENTS.md)")
          .value("out", "", "with --scenario: where the experiment outputs go")
          .value("snapshot-entries", std::to_string(defaults.snapshot_entries), "entries between snapshots")
          .value("log-tail-entries", std::to_string(defaults.log_tail_entries), "log kept behind a snapshot")
          .value("increment-percent", "0", "increments of counter keys (the Redis INCR), taken from the gets")
          .value("disk-latency-us", "by seed",
                 "MIN..MAX: virtual time a WAL sync takes (0..0: none); by default the seed picks: "
                 "seed % 3 = 0 none, 1 10..300, 2 50..2000")
          .value("value-bytes", "0", "values written padded to B bytes, up to 65536 (0: as short as they come)")
          .value("jobs", "1", "with --seeds: run the seeds in N worker processes (same output)")
          .flag("trace", "print every delivered event")
          .footer("exit: 0 no violation, 1 a violation (its seed printed), 2 usage, 3 a sweep's worker died");
  cli::Flags flags;
  if (auto exit = command.parse(args, flags)) return *exit;
  keep_large_allocations_apart();
  if (flags.has("scenario")) return run_scenario(flags);
  if (flags.has("out")) return cli::usage_error("sim", "--out writes a scenario's outputs: give --scenario FILE");
  auto options = parse_options(flags);
  if (!options.is_ok()) return cli::usage_error("sim", options.status().message());
  if (flags.has("seeds")) {
    if (flags.has("seed")) return cli::usage_error("sim", "give --seed or --seeds, not both");
    if (flags.has("history")) return cli::usage_error("sim", "--history records one seed: use --seed");
    auto range = parse_seed_range(flags.get("seeds"));
    if (!range.is_ok()) return cli::usage_error("sim", range.status().message());
    auto jobs = parse_jobs(flags);
    if (!jobs.is_ok()) return cli::usage_error("sim", jobs.status().message());
    return run_sweep(flags, *options, *range, *jobs);
  }
  if (flags.has("jobs")) return cli::usage_error("sim", "--jobs runs a sweep's seeds in parallel: give --seeds A..B");
  return run_one(flags, *options);
}

}  // namespace keyval::commands
