// Goal: the deterministic simulator runs whole clusters of real nodes under faults, finds
// no violation in correct code, reproduces a run exactly from its seed (in this process
// and in another one), and catches a planted Raft bug within a bounded number of seeds.
// Method: run_simulation() in process, and the keyval binary (`keyval sim`) as a child.
// Restart-cycle scenarios (`keyval sim --scenario`) go through the binary too.
#define BOOST_TEST_MODULE sim_test
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "sim/history_json.h"
#include "sim/linearizability.h"
#include "sim/simulator.h"
#include "tests/support/run_keyval.h"
#include "tests/support/temp_dir.h"

using keyval::testing::contains;
using keyval::testing::read_text;

using namespace keyval;
using namespace keyval::sim;
using keyval::testing::json_field;
using keyval::testing::run_keyval;

namespace {

uint64_t seeds_from_environment(uint64_t fallback) {
  const char* text = std::getenv("KEYVAL_SIM_SEEDS");
  return text != nullptr ? std::strtoull(text, nullptr, 10) : fallback;
}

std::string describe(const SimResult& result) {
  std::string text = "seed " + std::to_string(result.seed) + ": linearizable " + verdict_name(result.linearizable) +
                     ", lost acked writes " + std::to_string(result.lost_acked_writes);
  for (const std::string& violation : result.violations) text += "\n  " + violation;
  if (result.linearizable == Verdict::no) text += "\n  " + result.linearizability_detail;
  return text + "\n  replay: keyval sim --seed " + std::to_string(result.seed);
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::vector<std::string> split(const std::string& line, char separator) {
  std::vector<std::string> fields;
  std::stringstream in(line);
  std::string field;
  while (std::getline(in, field, separator)) fields.push_back(field);
  return fields;
}

// cycles.csv as rows of column name -> value; every row must have the header's columns.
std::vector<std::map<std::string, std::string>> read_cycles(const std::string& path) {
  std::stringstream lines(read_text(path));
  std::string line;
  std::getline(lines, line);
  const std::vector<std::string> header = split(line, ',');
  BOOST_TEST_REQUIRE(header.size() == 22u, line);
  std::vector<std::map<std::string, std::string>> rows;
  while (std::getline(lines, line)) {
    const std::vector<std::string> fields = split(line, ',');
    BOOST_TEST_REQUIRE(fields.size() == header.size(), line);
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size(); ++i) row[header[i]] = fields[i];
    rows.push_back(row);
  }
  return rows;
}

// Three nodes, the leader killed every second (counted from the previous restart), down for
// 500 ms, under a paced load: a few seconds of virtual time.
std::string leader_scenario(const std::string& name, const std::string& how, uint64_t cycles) {
  return "name " + name + "\nnodes 3\nclients 3\nmix put 60 get 30 cas 10\nkeys 20\nrate 300\n"
         "kill leader\nhow " + how + "\nevery 1s\ndown 500ms\ncycles " + std::to_string(cycles) + "\nsettle 300ms\n";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(simulator)

// The sweep: 200 seeds x 5 nodes x 10 s of virtual time with every fault.
// KEYVAL_SIM_SEEDS widens (or narrows) it.
BOOST_AUTO_TEST_CASE(no_violation_in_200_seeds_of_five_nodes_under_all_faults) {
  const uint64_t seeds = seeds_from_environment(200);
  uint64_t acked = 0, crashes = 0, partitions = 0, sync_failures = 0, ok_ops = 0, snapshots = 0, installs = 0;
  uint64_t leader_transfers = 0, leader_transfers_completed = 0;
  uint64_t member_changes = 0, members_added = 0, members_promoted = 0, members_removed = 0;
  uint64_t wipes = 0, wipes_refused = 0;
  uint64_t media_faults = 0, repairs = 0, repairs_completed = 0, refetched = 0;
  uint64_t restarts = 0, process_crashes = 0, kills_at_sync = 0, lmdb_rebuilds = 0;
  double simulated = 0, wall = 0;
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    SimOptions options;
    options.seed = seed;
    SimResult result = run_simulation(options);
    BOOST_TEST_REQUIRE(result.ok(), describe(result));
    acked += result.acked_writes;
    crashes += result.crashes;
    partitions += result.partitions;
    sync_failures += result.sync_failures;
    ok_ops += result.ops_ok;
    snapshots += result.snapshots;
    installs += result.snapshots_installed;
    leader_transfers += result.leader_transfers;
    leader_transfers_completed += result.leader_transfers_completed;
    member_changes += result.member_changes;
    members_added += result.members_added;
    members_promoted += result.members_promoted;
    members_removed += result.members_removed;
    wipes += result.wipes;
    wipes_refused += result.wipes_refused;
    media_faults += result.bit_flips + result.latent_sector_errors + result.misdirected_writes;
    repairs += result.repairs;
    repairs_completed += result.repairs_completed;
    refetched += result.entries_refetched;
    restarts += result.restarts;
    process_crashes += result.process_crashes;
    kills_at_sync += result.kills_at_sync;
    lmdb_rebuilds += result.lmdb_rebuilds;
    simulated += result.virtual_seconds;
    wall += result.wall_seconds;
  }
  BOOST_TEST_MESSAGE(seeds << " seeds: " << ok_ops << " operations ok, " << acked << " acknowledged writes, "
                           << crashes << " crashes, " << partitions << " partitions, " << sync_failures
                           << " failed fsyncs, " << snapshots << " snapshots (" << installs
                           << " installed from a leader), " << leader_transfers << " leadership transfers asked ("
                           << leader_transfers_completed << " completed), " << member_changes
                           << " membership changes asked (" << members_added << " joined, " << members_promoted
                           << " promoted, " << members_removed << " removed), " << wipes << " voters wiped ("
                           << wipes_refused << " refused), " << media_faults << " media faults (" << repairs
                           << " repairs started, " << repairs_completed << " completed, " << refetched
                           << " entries refetched), " << process_crashes << " process crashes (" << kills_at_sync
                           << " between a write and its fdatasync), " << restarts << " restarts (" << lmdb_rebuilds
                           << " rebuilt LMDB); " << simulated / wall << " simulated s per wall s");
  // The sweep exercised what it claims to.
  BOOST_TEST(crashes > seeds);
  BOOST_TEST(partitions > seeds / 2);
  BOOST_TEST(sync_failures > 0u);
  BOOST_TEST(acked > seeds * 50);
  BOOST_TEST(snapshots > seeds * 5, "every run takes snapshots (tiny threshold)");
  BOOST_TEST(installs > seeds / 4, "InstallSnapshot runs under the faults");
  BOOST_TEST(leader_transfers > seeds, "leadership transfers (§3.10) run under the faults");
  BOOST_TEST(leader_transfers_completed > seeds / 2, "and many of them complete");
  BOOST_TEST(member_changes > seeds, "membership changes (thesis ch. 4) run under the faults");
  BOOST_TEST(members_added > seeds / 2, "fresh nodes join as learners");
  // seeds / 6: the count moves with the schedule of every other fault (53 for 200 seeds before
  // media faults, 49 with them, 43 with seals, 36 once a removal keeps the crash budget: fewer
  // healthy voters leave while others are impaired, so fewer learners are asked to replace them).
  BOOST_TEST(members_promoted > seeds / 6, "and are promoted to voters");
  BOOST_TEST(members_removed > seeds / 4, "members are removed (and stopped for good)");
  BOOST_TEST(wipes > seeds / 2, "the wrong procedure: a voter's data wiped, restarted under its id");
  BOOST_TEST(wipes_refused > wipes / 2, "and it refuses when a peer counted it before");
  BOOST_TEST(media_faults > seeds / 2, "bit flips, latent sector errors and misdirected writes in the WAL");
  BOOST_TEST(repairs > seeds / 4, "nodes salvage a damaged WAL and repair from the leader");
  BOOST_TEST(repairs_completed > repairs / 2, "and most repairs complete under the faults");
  BOOST_TEST(refetched > 0u, "the lost entries are fetched again");
  BOOST_TEST(process_crashes > seeds, "processes killed, the page cache kept");
  BOOST_TEST(kills_at_sync > seeds / 4, "some between a write and its fdatasync");
  // lmdb_rebuilds counts the starts whose recovery reported rebuilding LMDB
  // (RecoveryFigures::lmdb_rebuilt): power cuts must show some, or the count (and the check
  // after it) no longer reads what recovery decided.
  BOOST_TEST(lmdb_rebuilds > seeds, "restarts after a power cut rebuild LMDB");
  BOOST_TEST(restarts > lmdb_rebuilds + seeds / 2, "restarts after a process crash trust the LMDB they find");
}

// Seeds past the default sweep that once failed, each for the reason named (docs/SIMULATION.md):
// replayed at every run, as their schedules are exact.
BOOST_AUTO_TEST_CASE(seeds_that_found_bugs_stay_green) {
  struct Found {
    uint64_t seed;
    const char* what;
    uint64_t value_bytes = 0;  // --value-bytes (0: the default short values)
  };
  const Found found[] = {
      {306, "a start during which fdatasync fails is a fail-stop, not a refusal"},
      {408, "no wipe of a node with a misdirected write pending"},
      {1044, "a voter removal keeps the crash budget"},
      {1396, "a wiped voter counts as down from the wipe on"},
      {2123, "recovery finishes an install whose WAL snapshot record a salvage discarded"},
      {1978, "the commit check credits a voter repairing after a bit flip with what it acknowledged"},
      {3888, "the commit check credits a voter repairing after a misdirected write"},
      {4655, "the commit check credits a wiped voter on probation with what it acknowledged before"},
      {9288, "snapshot chunks sent before a rewind rewind nothing again (they multiplied without end)"},
      // The two below replay runs whose traces the fixes moved away from the failing state;
      // raft_test keeps 417's case, and 4818's was the simulator's own budget.
      {417, "a voter only an uncommitted removal leaves out campaigns"},
      {4818, "the fault budget holds for the committed configuration, not only the latest"},
      {1599, "the fault budget counts a voter repairing until the end of its repair is durable"},
      {9506, "a learner is promoted only once its log holds the configuration that names it"},
      {12662, "a WAL segment drop keeps durable copies of the term, vote and snapshot records"},
      {20541, "a snapshot before the WAL's retained log discards a log of an older term"},
      {24564, "a node that refused to take part stays down: no restart of it stays due"},
      {20741, "a success sent before a repairing restart does not count after the repair"},
      {25402, "a success sent before a repairing restart does not count after the repair"},
      {18521, "a client's request is delivered at most once, as on its TCP connection"},
      {4618, "only the attempt in flight moves a client on (an answer is delivered at most once)"},
      {27818, "a log a snapshot discarded below the active segment's first index is replayed so after a drop"},
      // With 30 KiB values. 152 and 412 failed before the large-probe pacing
      // (raft::Config::probe_resend_bytes), 175 after it; raft_test keeps the case.
      {152, "a learner is promoted only once its log reaches the snapshot whose configuration names it", 30720},
      {175, "a learner is promoted only once its log reaches the snapshot whose configuration names it", 30720},
      {412, "a learner is promoted only once its log reaches the snapshot whose configuration names it", 30720},
  };
  for (const Found& bug : found) {
    BOOST_TEST_CONTEXT("seed " << bug.seed << (bug.value_bytes ? " with --value-bytes " : "")
                               << (bug.value_bytes ? std::to_string(bug.value_bytes) : "") << ": " << bug.what) {
      SimOptions options;
      options.seed = bug.seed;
      options.value_bytes = bug.value_bytes;
      SimResult result = run_simulation(options);
      BOOST_TEST(result.ok(), describe(result));
    }
  }
}

// Runs seed 1 as it is, then with `tighten` applied to its options: the tightened run must stop
// early with a violation holding both `what` and `bound`.
void check_guard_stops_the_run(const std::function<void(SimOptions&)>& tighten, const std::string& what,
                               const std::string& bound) {
  SimOptions options;
  options.seed = 1;
  const SimResult healthy = run_simulation(options);
  BOOST_TEST_REQUIRE(healthy.ok(), describe(healthy));
  tighten(options);
  const SimResult stopped = run_simulation(options);
  BOOST_TEST(!stopped.ok());
  std::string violations;
  bool named = false;
  for (const std::string& violation : stopped.violations) {
    violations += violation + "\n";
    named = named || (violation.find(what) != std::string::npos && violation.find(bound) != std::string::npos);
  }
  BOOST_TEST(named, violations);
  BOOST_TEST(stopped.steps < healthy.steps);  // stopped, not run to its end
}

// The message-storm guard (docs/SIMULATION.md): once more packets than the bound are in
// flight the run stops there with a violation naming it, so a bug that multiplies messages
// fails its seed quickly instead of running forever (seed 9288 once did). A bound below what a
// healthy run of the same seed keeps in flight trips it.
BOOST_AUTO_TEST_CASE(a_message_storm_stops_the_run_with_a_violation) {
  check_guard_stops_the_run([](SimOptions& options) { options.packets_in_flight_max = 3; }, " ms: message storm: ",
                            "(bound 3, run stopped here)");
}

// The livelock guard: a run in which some step stays due without virtual time advancing stops
// with a violation naming it (seed 24564 once ran forever so: a refused node's restart stayed
// due). A bound below the steps a healthy run takes at one instant trips it (seed 1 takes 11
// to 15 at one instant after 0 ms; 29 before the transport ran inside the raft node's send
// and a follower's ticks came one timer per election timeout).
BOOST_AUTO_TEST_CASE(steps_without_virtual_time_advancing_stop_the_run_with_a_violation) {
  check_guard_stops_the_run([](SimOptions& options) { options.steps_at_one_instant_max = 10; },
                            " ms: livelock: 11 steps at ", "(bound 10, run stopped here)");
}

// The Redis gateway's INCR is one entry applied by the state machine with the client's
// session: under every fault, each acknowledged increment answers a value of its own and the
// counter ends between the acknowledged increments and those plus the unknown ones.
SimOptions increment_options(uint64_t seed) {
  SimOptions options;
  options.seed = seed;
  options.get_percent = 20;
  options.increment_percent = 20;
  return options;
}

BOOST_AUTO_TEST_CASE(increments_apply_exactly_once_in_30_seeds_under_all_faults) {
  uint64_t acknowledged = 0, unknown = 0;
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    SimResult result = run_simulation(increment_options(seed));
    BOOST_TEST(result.ok(), "seed " << seed << ": " << describe(result));
    acknowledged += result.increments_acked;
    unknown += result.ops_unknown;
  }
  BOOST_TEST_MESSAGE(acknowledged << " increments acknowledged in 30 seeds");
  BOOST_TEST(acknowledged >= 300u, "the sweep exercised only " << acknowledged << " increments");
}

// Without a session a retried increment whose first attempt was applied is applied again:
// the increment check must see a counter past what its clients were told.
BOOST_AUTO_TEST_CASE(planted_increments_without_a_session_are_caught_within_10_seeds) {
  uint64_t caught = 0;
  std::string violation;
  for (uint64_t seed = 1; seed <= 10 && caught == 0; ++seed) {
    SimOptions options = increment_options(seed);
    options.increments_without_session = true;
    SimResult result = run_simulation(options);
    for (const std::string& found : result.violations) {
      if (found.find("increments of ") != std::string::npos) {
        caught = seed;
        violation = found;
        break;
      }
    }
  }
  BOOST_TEST_REQUIRE(caught != 0u, "a double increment went unnoticed for 10 seeds");
  BOOST_TEST_MESSAGE("caught at seed " << caught << ": " << violation);
  BOOST_TEST(run_simulation(increment_options(caught)).ok(), "seed " << caught << " with sessions");
}

// Values of 30 KiB: a probe after a partition or a crash carries several, more than
// raft::Config::probe_resend_bytes, so leaders resend it only after an election timeout (plain
// heartbeats meanwhile), and a value spans two of the simulated WAL's 16 KiB segments.
BOOST_AUTO_TEST_CASE(values_of_30_kib_lose_nothing_in_10_seeds_under_all_faults) {
  uint64_t acked = 0;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    SimOptions options;
    options.seed = seed;
    options.value_bytes = 30u << 10;
    SimResult result = run_simulation(options);
    BOOST_TEST(result.ok(), "seed " << seed << ": " << describe(result));
    acked += result.acked_writes;
  }
  BOOST_TEST(acked >= 300u, "the sweep acknowledged only " << acked << " writes");
}

BOOST_AUTO_TEST_CASE(without_faults_every_operation_completes) {
  SimOptions options;
  options.seed = 3;
  options.faults = FaultMode::none;
  SimResult result = run_simulation(options);
  BOOST_TEST_REQUIRE(result.ok(), describe(result));
  BOOST_TEST(result.ops_unknown == 0u);
  BOOST_TEST(result.ops_failed == 0u);
  BOOST_TEST(result.ops_ok >= options.ops);
  BOOST_TEST(result.crashes == 0u);
}

BOOST_AUTO_TEST_CASE(same_seed_gives_the_same_trace_in_one_process) {
  SimOptions options;
  options.seed = 11;
  SimResult first = run_simulation(options);
  SimResult second = run_simulation(options);
  BOOST_TEST(first.trace_hash == second.trace_hash);
  BOOST_TEST(first.steps == second.steps);
  BOOST_TEST((first.history == second.history));
  options.seed = 12;
  SimResult other = run_simulation(options);
  BOOST_TEST(other.trace_hash != first.trace_hash);
}

// The step selection reads a node's jobs and timers, and a client's next action, again only
// when its change count moved. With SimOptions::check_step_views every step compares those
// views with fresh reads: a method that changes a node or client without moving its count
// is a violation. The check itself leaves the run as it was (same steps, same trace).
BOOST_AUTO_TEST_CASE(the_step_selection_sees_every_change_of_a_node_or_client) {
  struct Case {
    uint64_t seed;
    size_t nodes;
    uint64_t snapshot_entries;
  };
  // Seeds of each disk regime (seed % 3), five nodes with joins and removals, and three
  // nodes with installs back to back.
  for (const Case& run : {Case{1, 5, 20}, Case{2, 5, 20}, Case{3, 5, 20}, Case{7, 5, 20}, Case{12, 3, 5},
                          Case{13, 3, 5}}) {
    SimOptions options;
    options.seed = run.seed;
    options.nodes = run.nodes;
    options.snapshot_entries = run.snapshot_entries;
    const SimResult plain = run_simulation(options);
    options.check_step_views = true;
    const SimResult checked = run_simulation(options);
    BOOST_TEST(checked.ok(), describe(checked));
    BOOST_TEST(checked.trace_hash == plain.trace_hash, "seed " << run.seed);
    BOOST_TEST(checked.steps == plain.steps, "seed " << run.seed);
  }
}

BOOST_AUTO_TEST_CASE(same_seed_gives_the_same_trace_in_another_process) {
  SimOptions options;
  options.seed = 21;
  SimResult here = run_simulation(options);
  auto first = run_keyval("sim --seed 21");
  auto second = run_keyval("sim --seed 21");
  BOOST_TEST_REQUIRE(first.exit_code == 0, first.output);
  BOOST_TEST_REQUIRE(second.exit_code == 0, second.output);
  BOOST_TEST(json_field(first.last_line(), "trace_hash") == std::to_string(here.trace_hash));
  BOOST_TEST(json_field(second.last_line(), "trace_hash") == std::to_string(here.trace_hash));
}

struct Caught {
  uint64_t seed = 0;  // 0: not caught
  std::string violation;
};

// Runs seeds 1..seeds on 3 nodes with `bug` planted until one fails; that seed run again
// without the bug must be clean (the bug, not the setup, was caught).
Caught planted_bug_caught(raft::PlantedBug bug, uint64_t seeds, uint64_t nodes = 3, uint64_t snapshot_entries = 20,
                          size_t clients = SimOptions{}.clients) {
  Caught caught;
  for (uint64_t seed = 1; seed <= seeds && caught.seed == 0; ++seed) {
    SimOptions options;
    options.seed = seed;
    options.nodes = nodes;
    options.snapshot_entries = snapshot_entries;
    options.clients = clients;
    options.planted_bug = bug;
    SimResult result = run_simulation(options);
    if (!result.ok()) {
      caught.seed = seed;
      caught.violation = result.violations.empty() ? result.linearizability_detail : result.violations.front();
    }
  }
  if (caught.seed == 0) return caught;
  BOOST_TEST_MESSAGE("caught at seed " << caught.seed << ": " << caught.violation);
  SimOptions correct;
  correct.seed = caught.seed;
  correct.nodes = nodes;
  correct.snapshot_entries = snapshot_entries;
  correct.clients = clients;
  SimResult clean = run_simulation(correct);
  BOOST_TEST(clean.ok(), describe(clean));
  return caught;
}

// A Raft that answers votes before they are durable breaks election safety once a voter
// crashes right after voting; the simulator's crashes at such moments must find it (3 of
// seeds 1..60, the first at 25, 2026-12-07 with process crashes in the fault mix; 6 of 1..60,
// the first at 3, 2026-12-06 night; how the seeds moved: docs/SIMULATION.md).
BOOST_AUTO_TEST_CASE(planted_vote_before_durable_is_caught_within_40_seeds) {
  Caught caught = planted_bug_caught(raft::PlantedBug::vote_before_durable, 40);
  BOOST_TEST(caught.seed != 0u, "the planted bug went unnoticed for 40 seeds");
}

// A core that compacts its log past what its snapshot covers (and past commit) breaks the
// invariant that a compacted prefix is committed: the checker must name it at once.
BOOST_AUTO_TEST_CASE(planted_compact_past_commit_is_caught_within_10_seeds) {
  Caught caught = planted_bug_caught(raft::PlantedBug::compact_past_commit, 10);
  BOOST_TEST_REQUIRE(caught.seed != 0u, "the planted bug went unnoticed for 10 seeds");
  BOOST_TEST(caught.violation.find("compacted past") != std::string::npos, caught.violation);
}

// A follower that acknowledges an installed snapshot before its WAL record is durable, and
// crashes right after (the simulator crashes a node after half of such promises), comes back
// with its old log while the leader counts it as holding the snapshot. About one seed in 10
// catches it (`keyval sim --seeds 1..600 --nodes 3 --planted-bug snapshot-ack-before-durable
// --jobs 2`: 45 of 600 seeds, the first at 1, 2026-12-06 evening; 5 of 1..60, the first at 2,
// that night; 15 of 1..60, the first at 11, 2026-12-07, once every power cut checks what the
// node reported durable; the first has been as late as 59 as
// the traces moved, docs/SIMULATION.md), so the bound leaves room for the next shift.
BOOST_AUTO_TEST_CASE(planted_snapshot_ack_before_durable_is_caught_within_150_seeds) {
  Caught caught = planted_bug_caught(raft::PlantedBug::snapshot_ack_before_durable, 150);
  BOOST_TEST_REQUIRE(caught.seed != 0u, "the planted bug went unnoticed for 150 seeds");
  // Named by the durability check at the follower's power cut (it reported the snapshot durable)
  // or, when it was not cut before the leader counted it, by the match index check.
  BOOST_TEST((caught.violation.find("match index past the follower's log") != std::string::npos ||
              caught.violation.find("reported its log durable through") != std::string::npos),
             caught.violation);
}

// A leader that accepts a membership change while the previous one is uncommitted (the
// simulator asks for two removals at once half the time it removes a voter of five) holds two
// uncommitted configuration entries: the checker names it.
BOOST_AUTO_TEST_CASE(planted_conf_changes_at_once_is_caught_within_20_seeds) {
  Caught caught = planted_bug_caught(raft::PlantedBug::conf_changes_at_once, 20, 5);
  BOOST_TEST_REQUIRE(caught.seed != 0u, "the planted bug went unnoticed for 20 seeds");
  BOOST_TEST(caught.violation.find("two configuration changes at once") != std::string::npos, caught.violation);
}

// A node that lost acknowledged entries to a damaged WAL must not vote before a leader
// repaired it: its vote can elect a leader without an entry it helped commit. It takes a
// media fault, a repair and an election at the wrong moments: rare, about one seed in 100
// (`keyval sim --seeds 1..600 --nodes 3 --planted-bug vote-while-repairing --jobs 2`: seeds
// 256, 261, 288, 351, 374, 377, 413, 424 and 563, 2026-12-07 with process crashes;
// 119, 140, 256, 319, 351, 368, 374 and 563, 2026-12-06 night; 125, 312, 335, 400, 508 and
// 525 that evening; 206, 221, 310, 339 and 528 once the
// state machine got its own actor; before
// it 161, 215, 351, 589 and 594; earlier seeds in docs/SIMULATION.md). The bound is
// deterministic for this code; a change that moves the traces may need it found again with
// that sweep.
BOOST_AUTO_TEST_CASE(planted_vote_while_repairing_is_caught_within_300_seeds) {
  Caught caught = planted_bug_caught(raft::PlantedBug::vote_while_repairing, 300);
  BOOST_TEST_REQUIRE(caught.seed != 0u, "the planted bug went unnoticed for 300 seeds");
}

// The raft node pipelines persists (actors/raft_node.cc drain()): a leader replicates and
// takes new Readies while its own fsync runs. The simulated disk takes virtual time to sync
// (SimOptions::disk_latency_*_us), so sweeps run with several persists in flight; with an
// instant disk they never overlap.
BOOST_AUTO_TEST_CASE(sweeps_run_with_several_persists_in_flight) {
  uint64_t pipelined = 0, leader_pipelined = 0, most = 0, instant_pipelined = 0;
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    SimOptions options;  // the seed picks the disk: 1..5 has each of the three
    options.seed = seed;
    SimResult result = run_simulation(options);
    BOOST_TEST(result.ok(), describe(result));
    pipelined += result.persists_pipelined;
    leader_pipelined += result.leader_persists_pipelined;
    most = std::max(most, result.persists_in_flight_max);
    options.disk_latency_by_seed = false;
    options.disk_latency_min_us = 50;
    options.disk_latency_max_us = 2000;
    result = run_simulation(options);
    BOOST_TEST(result.ok(), describe(result));
    pipelined += result.persists_pipelined;
    leader_pipelined += result.leader_persists_pipelined;
    most = std::max(most, result.persists_in_flight_max);
    options.disk_latency_min_us = options.disk_latency_max_us = 0;
    instant_pipelined += run_simulation(options).persists_pipelined;
  }
  BOOST_TEST(pipelined > 0u);
  BOOST_TEST(leader_pipelined > 0u);
  BOOST_TEST(most >= 2u);
  BOOST_TEST(instant_pipelined == 0u);
}

// A leader that counts its own copy of an entry before its fsync reports it durable commits
// on fewer durable copies than a majority: the checker names it as soon as the commit index
// rises (`keyval sim --seeds 1..60 --nodes 3 --planted-bug leader-counts-before-durable`:
// seeds 29, 32, 41, 44 and 47, 2026-12-07 with process crashes in the fault mix;
// seeds 8, 29, 32, 38, 41, 44, 47 and 59, 2026-12-06 night; 5, 11, 14, 23, 35, 47, 50 and 53
// that evening; earlier seeds in
// docs/SIMULATION.md); with an instant disk
// (no fsync to overlap) 100 seeds never did.
BOOST_AUTO_TEST_CASE(planted_leader_counts_before_durable_is_caught_within_50_seeds) {
  Caught caught = planted_bug_caught(raft::PlantedBug::leader_counts_before_durable, 50);
  BOOST_TEST_REQUIRE(caught.seed != 0u, "the planted bug went unnoticed for 50 seeds");
  BOOST_TEST(caught.violation.find("commit not durable on a majority") != std::string::npos, caught.violation);
}

// A node that removes the snapshot files older than an installed snapshot at once, not after
// its state machine has loaded that snapshot, loses the file of a snapshot received just
// before while it still loads (the simulator's state machine loads on a helper for a random
// virtual time, as a default node's does on a thread of its own). The node stops itself,
// and with no injected fault to blame the simulator names it: a stop is not a crash to
// restart from. Snapshots every 5 entries make installs back to back common enough
// (`keyval sim --seeds 1..600 --nodes 3 --snapshot-entries 5 --planted-bug
// release-snapshot-before-load`: 10 seeds, the first 12 and 52, 2026-12-07, sixth session;
// every 20 entries, 0 of 1..600). The clean-clone CI's sanitized cluster test had found the
// real race the day before.
BOOST_AUTO_TEST_CASE(planted_release_snapshot_before_load_is_caught_within_60_seeds) {
  Caught caught = planted_bug_caught(raft::PlantedBug::release_snapshot_before_load, 60, 3, 5);
  BOOST_TEST_REQUIRE(caught.seed != 0u, "the planted bug went unnoticed for 60 seeds");
  BOOST_TEST(caught.violation.find("stopped itself with no injected fault to explain it") != std::string::npos,
             caught.violation);
}

// A gateway that serves a batch of gets (GetBatch: what the client listener sends for the gets
// of one cycle, as the simulator's client port does) without a ReadIndex answers from a
// deposed leader's or a follower's applied state: stale reads. Eight clients make batches of
// gets common enough (`keyval sim --seeds 1..300 --clients 8 --jobs 2 --planted-bug
// get-batch-without-read-index`: seeds 5, 17, 23, 43, ... fail, 2026-12-07, eighth session).
BOOST_AUTO_TEST_CASE(planted_get_batch_without_read_index_is_caught_within_30_seeds) {
  Caught caught = planted_bug_caught(raft::PlantedBug::get_batch_without_read_index, 30, 3, 20, 8);
  BOOST_TEST_REQUIRE(caught.seed != 0u, "the planted bug went unnoticed for 30 seeds");
  BOOST_TEST(caught.violation.find("not linearizable") != std::string::npos, caught.violation);
}

BOOST_AUTO_TEST_CASE(history_file_holds_every_operation_and_checks_linearizable) {
  keyval::testing::TempDir dir;
  const std::string path = dir.path() + "/history.jsonl";
  auto run = run_keyval("sim --seed 5 --nodes 3 --ops 120 --history " + path);
  BOOST_TEST_REQUIRE(run.exit_code == 0, run.output);
  auto history = read_history_file(path);
  BOOST_TEST_REQUIRE(history.is_ok(), history.status().to_string());
  BOOST_TEST(std::to_string(history->size()) == json_field(run.last_line(), "ops"));
  BOOST_TEST(history->size() >= 100u);  // --ops 120 invoked, fewer when the virtual time runs out
  BOOST_TEST((check_linearizable(*history).linearizable == Verdict::yes));
  BOOST_TEST(json_field(run.last_line(), "linearizable") == "yes");
  BOOST_TEST(json_field(run.last_line(), "lost_acked_writes") == "0");
  BOOST_TEST(json_field(run.last_line(), "violations") == "[]");
}

BOOST_AUTO_TEST_CASE(a_sweep_names_each_failing_seed_with_its_replay_command) {
  auto run = run_keyval("sim --seeds 21..40 --nodes 3 --planted-bug snapshot-ack-before-durable");
  BOOST_TEST_REQUIRE(run.exit_code == 1, run.output);
  // Every "FAIL seed N" line is followed by the command that replays seed N, and that
  // command fails the same way on its own.
  std::istringstream lines(run.output);
  std::string line, first_replay;
  size_t failing = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("FAIL seed ", 0) != 0) continue;
    ++failing;
    std::string seed = line.substr(10, line.find(':') - 10);
    std::string replay;
    BOOST_TEST_REQUIRE(static_cast<bool>(std::getline(lines, replay)), run.output);
    BOOST_TEST(replay == "  replay: keyval sim --seed " + seed + " --nodes 3 --planted-bug snapshot-ack-before-durable", replay);
    if (first_replay.empty()) first_replay = replay.substr(std::string("  replay: keyval ").size());
  }
  BOOST_TEST_REQUIRE(failing >= 1u, run.output);
  BOOST_TEST(json_field(run.last_line(), "failing") == std::to_string(failing));
  auto replayed = run_keyval(first_replay);
  BOOST_TEST(replayed.exit_code == 1, replayed.output);
  BOOST_TEST(json_field(replayed.last_line(), "violations") != "[]", replayed.output);

  auto clean = run_keyval("sim --seeds 1..3 --nodes 3 --faults network");
  BOOST_TEST(clean.exit_code == 0, clean.output);
  BOOST_TEST(json_field(clean.last_line(), "failing") == "0");
}

BOOST_AUTO_TEST_CASE(a_work_directory_that_cannot_be_made_fails_the_run_naming_it) {
  SimOptions options;
  options.seed = 1;
  options.work_directory = "/nonexistent-keyval-parent/runs";
  SimResult result = run_simulation(options);
  BOOST_TEST(!result.ok());
  BOOST_TEST_REQUIRE(result.violations.size() == 1u);
  BOOST_TEST(contains(result.violations[0], "/nonexistent-keyval-parent/runs/keyval-sim-XXXXXX"), result.violations[0]);
  BOOST_TEST(result.ops == 0u);
}

BOOST_AUTO_TEST_CASE(bad_flags_are_refused_with_a_message) {
  for (const char* arguments : {"sim --seed x", "sim --faults lots", "sim --nodes 0", "sim --seeds 5..2",
                                "sim --seed 1 --seeds 1..2", "sim --bogus", "sim extra", "sim --disk-latency-us 5",
                                "sim --disk-latency-us 9..3", "sim --disk-latency-us 0..2000000",
                                "sim --value-bytes 70000"}) {
    auto run = run_keyval(arguments);
    BOOST_TEST(run.exit_code == 2, arguments << ": " << run.output);
    BOOST_TEST(run.output.find("keyval sim:") != std::string::npos, run.output);
    for (const char* flag : {"--disk-latency-us", "--value-bytes"}) {
      if (std::string(arguments).find(flag) != std::string::npos) {
        BOOST_TEST(run.output.find(flag) != std::string::npos, run.output);
      }
    }
  }
}

// keyval sim --scenario: every cycle recorded, the leader really changed, nothing acknowledged
// lost, and the same scenario and seed give the same cycles.
BOOST_AUTO_TEST_CASE(scenario_leader_kills_lose_no_acknowledged_write_and_replay_exactly) {
  keyval::testing::TempDir dir;
  const std::string scenario = dir.file("leader.scenario");
  write_text(scenario, leader_scenario("leader-kills", "sigkill", 3));
  std::vector<std::string> csv;
  for (const std::string& out : {dir.file("first"), dir.file("second")}) {
    auto run = run_keyval("sim --scenario " + scenario + " --out " + out);
    BOOST_TEST_REQUIRE(run.exit_code == 0, run.output);
    BOOST_TEST(json_field(run.last_line(), "lost_acked_writes") == "0", run.last_line());
    BOOST_TEST(json_field(run.last_line(), "cycles") == "3", run.last_line());
    BOOST_TEST(json_field(read_text(out + "/summary.json"), "lost_acked_writes") == "0");
    BOOST_TEST(run.output.find("cycle 3 of 3, virtual ") != std::string::npos, run.output);
    const auto rows = read_cycles(out + "/cycles.csv");
    BOOST_TEST_REQUIRE(rows.size() == 3u);
    for (const auto& row : rows) {
      BOOST_TEST(row.at("how") == "sigkill");
      BOOST_TEST(row.at("was_leader") == "1");
      BOOST_TEST(std::stod(row.at("unavailable_ms")) >= 0.0, "cycle " << row.at("cycle"));
      BOOST_TEST(row.at("leader_after") != "0", "cycle " << row.at("cycle"));
      BOOST_TEST(row.at("leader_after") != row.at("target_nodes"), "cycle " << row.at("cycle"));
      BOOST_TEST(row.at("leader_before") == row.at("target_nodes"));
    }
    csv.push_back(read_text(out + "/cycles.csv"));
  }
  BOOST_TEST(csv[0] == csv[1]);
}

// A torn kill cuts the last WAL write mid-way: recovery finds and cuts the torn tail, and the
// cluster still loses nothing it acknowledged.
BOOST_AUTO_TEST_CASE(scenario_torn_leader_kills_are_cut_by_recovery) {
  keyval::testing::TempDir dir;
  const std::string scenario = dir.file("torn.scenario");
  write_text(scenario, leader_scenario("torn-kills", "torn", 2));
  auto run = run_keyval("sim --scenario " + scenario + " --out " + dir.file("out"));
  BOOST_TEST_REQUIRE(run.exit_code == 0, run.output);
  BOOST_TEST(json_field(run.last_line(), "lost_acked_writes") == "0", run.last_line());
  const auto rows = read_cycles(dir.file("out") + "/cycles.csv");
  BOOST_TEST_REQUIRE(rows.size() == 2u);
  uint64_t torn_bytes = 0;
  for (const auto& row : rows) torn_bytes += std::stoull(row.at("torn_bytes_cut"));
  BOOST_TEST(torn_bytes > 0u);
}

// kill replace: each cycle a new node joins (learner, caught up, promoted) and the oldest member
// leaves, the leader included; four cycles replace all three original nodes. Nothing
// acknowledged is lost, and each cycle measured the new member: catch-up, voter, bytes.
BOOST_AUTO_TEST_CASE(scenario_replace_swaps_every_member_and_loses_no_acknowledged_write) {
  keyval::testing::TempDir dir;
  const std::string scenario = dir.file("replace.scenario");
  write_text(scenario, "name replace\nnodes 3\nclients 3\nmix put 60 get 30 cas 10\nkeys 20\nrate 300\n"
                       "kill replace\nhow sigterm\nevery 500ms\ncycles 4\nsettle 300ms\n");
  auto run = run_keyval("sim --scenario " + scenario + " --out " + dir.file("out"));
  BOOST_TEST_REQUIRE(run.exit_code == 0, run.output);
  BOOST_TEST(json_field(run.last_line(), "lost_acked_writes") == "0", run.last_line());
  BOOST_TEST(json_field(run.last_line(), "cycles") == "4", run.last_line());
  const auto rows = read_cycles(dir.file("out") + "/cycles.csv");
  BOOST_TEST_REQUIRE(rows.size() == 4u);
  bool leader_replaced = false;
  for (size_t k = 0; k < rows.size(); ++k) {
    const auto& row = rows[k];
    BOOST_TEST(row.at("target_nodes") == std::to_string(k + 1));      // the oldest member, in turn
    BOOST_TEST(row.at("new_members") == std::to_string(k + 4));     // a new id each time
    BOOST_TEST(std::stod(row.at("catch_up_ms")) >= 0.0, "cycle " << row.at("cycle"));
    BOOST_TEST(std::stod(row.at("voter_ms")) >= 0.0, "cycle " << row.at("cycle"));
    BOOST_TEST(std::stoull(row.at("new_member_bytes")) > 0u, "cycle " << row.at("cycle"));
    BOOST_TEST(std::stod(row.at("unavailable_ms")) >= 0.0, "cycle " << row.at("cycle"));
    BOOST_TEST(row.at("leader_after") != row.at("target_nodes"), "cycle " << row.at("cycle"));
    leader_replaced = leader_replaced || row.at("was_leader") == "1";
  }
  BOOST_TEST(leader_replaced);  // the leader is a member like any other
}

// kill grow: 3 -> 5 -> 3 voters each cycle.
BOOST_AUTO_TEST_CASE(scenario_grow_adds_two_members_then_removes_two) {
  keyval::testing::TempDir dir;
  const std::string scenario = dir.file("grow.scenario");
  write_text(scenario, "nodes 3\nclients 3\nkeys 20\nrate 300\nkill grow\nevery 500ms\ncycles 2\nsettle 300ms\n");
  auto run = run_keyval("sim --scenario " + scenario + " --out " + dir.file("out"));
  BOOST_TEST_REQUIRE(run.exit_code == 0, run.output);
  BOOST_TEST(json_field(run.last_line(), "lost_acked_writes") == "0", run.last_line());
  const auto rows = read_cycles(dir.file("out") + "/cycles.csv");
  BOOST_TEST_REQUIRE(rows.size() == 2u);
  BOOST_TEST(rows[0].at("new_members") == "4 5");
  BOOST_TEST(rows[0].at("target_nodes") == "1 2");
  BOOST_TEST(rows[1].at("new_members") == "6 7");
  BOOST_TEST(rows[1].at("target_nodes") == "3 4");
  for (const auto& row : rows) BOOST_TEST(std::stoull(row.at("new_member_bytes")) > 0u);
}

BOOST_AUTO_TEST_CASE(scenario_errors_are_usage_errors_naming_the_line) {
  keyval::testing::TempDir dir;
  write_text(dir.file("bad.scenario"), "nodes 3\ncycles lots\n");
  auto bad = run_keyval("sim --scenario " + dir.file("bad.scenario"));
  BOOST_TEST(bad.exit_code == 2, bad.output);
  BOOST_TEST(bad.output.find("line 2") != std::string::npos, bad.output);
  write_text(dir.file("good.scenario"), leader_scenario("x", "sigkill", 1));
  auto both = run_keyval("sim --scenario " + dir.file("good.scenario") + " --seeds 1..2");
  BOOST_TEST(both.exit_code == 2, both.output);
}

BOOST_AUTO_TEST_SUITE_END()
