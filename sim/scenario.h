// Restart-cycle experiments: the scenario file, and the per-cycle records both runners produce
// (`keyval experiment run` on real processes, `keyval sim --scenario` in the simulator).
//
// A scenario file is text, one setting per line, '#' starts a comment; blank lines are ignored.
// Every setting has a default; unknown names, malformed values and settings given twice are
// errors naming the file, the line and what was expected. Durations are a whole number with
// a unit: 250ms, 2s, 1m.
//
//   name rolling-restarts          a word ([A-Za-z0-9._-]), used in the outputs (default: file name)
//   nodes 3                        cluster size, 1..9 (default 3)
//   clients 4                      concurrent clients, each one operation in flight (default 4)
//   mix put 80 get 20              operation mix in percent of put, get, del, cas; sums to 100
//                                  (default put 100)
//   keys 1000                      key space for get, del and cas (default 1000)
//   value-bytes 100                (default 100)
//   rate closed                    closed loop (default), or a total target: "rate 500" ops/s
//   kill leader                    which node goes down each cycle: leader, follower, random,
//                                  all, or "node N" (default leader); or a membership change
//                                  instead of a restart: "replace" (each cycle one member, the
//                                  oldest first, leader included, is replaced by a new node with a
//                                  new id and an empty data directory: added as a learner, caught
//                                  up, promoted, then the old one removed and stopped for good) or
//                                  "grow" (each cycle two new nodes join as above, then the two
//                                  oldest members are removed: 3 -> 5 -> 3)
//   how sigkill                    sigkill, sigterm, torn (SIGKILL, then the tail of the last
//                                  WAL write torn off), disk-full (default sigkill); with replace
//                                  or grow, how a removed node's process is stopped: sigkill or
//                                  sigterm
//   every 5s                       when: every T after the previous node came back (default 5s),
//                                  or "after-writes N" acknowledged writes since then, or
//                                  "random 2s..6s" (uniform, from the seeded generator)
//   down 2s                        how long the node stays down (default 1s; refused with
//                                  replace and grow: a removed node never comes back)
//   cycles 5                       number of kill/restart cycles, 1..10000 (default 3)
//   seed 1                         the generator for random choices and the simulator (default 1)
//   settle 2s                      after the last cycle, load continues this long (default 1s)
//   record all                     which outputs: any of csv, summary, plots; or all (default all)
//
// Fault steps (instead of kill/restart cycles; each line is one step, run in the file's order,
// and these lines may repeat). NODE is a node id, `leader` (the leader when the step starts) or
// `follower` (one follower, picked by the seeded generator; the same one within a step). The
// last word of a step may be `for DURATION` (or a bare DURATION): how long the step lasts before
// the next one starts (default 1s). Network faults last until `heal`; a pause and a full disk
// end with their step.
//   partition 1,2|3                cut every link between the groups, both ways
//   oneway 1>2                     drop what 1 sends to 2 (2 still reaches 1)
//   isolate leader                 cut every link to and from the node
//   delay 50ms [1>2]               hold every message that long per direction (or on one
//                                  directed link)
//   heal                           remove every cut and delay
//   pause leader 2s                SIGSTOP, then SIGCONT at the end of the step (in the
//                                  simulator: the node runs no job or timer and receives nothing
//                                  meanwhile; what was sent to it arrives when it resumes)
//   fill-disk NODE                 the node's file system is full for the step; a node that
//                                  stopped (fail-stop) is restarted when the space is back
// With steps, kill, how, down, cycles, every, after-writes and random do not apply (refused).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "storage/status.h"

namespace keyval::sim {

enum class KillTarget { leader, follower, random, all, node, replace, grow };
enum class KillHow { sigkill, sigterm, torn, disk_full };
enum class KillWhen { every, after_writes, random };

const char* kill_target_name(KillTarget target);  // "leader", ..., "node", "replace", "grow"
const char* kill_how_name(KillHow how);           // "sigkill", "sigterm", "torn", "disk-full"

// A node named by a fault step: an id, the leader or a follower (chosen when the step starts).
struct NodeRef {
  enum Kind : uint8_t { id, leader, follower } kind = id;
  uint64_t node = 0;  // Kind::id
  std::string str() const;  // "2", "leader", "follower"
};

enum class StepKind { partition, oneway, isolate, delay, heal, pause, fill_disk };
const char* step_kind_name(StepKind kind);  // "partition", "oneway", ..., "fill-disk"

struct FaultStep {
  StepKind kind = StepKind::heal;
  // partition: two or more groups; oneway and a one-link delay: {from}, {to}; isolate, pause,
  // fill-disk: one group of one node; heal and an every-link delay: none.
  std::vector<std::vector<NodeRef>> groups;
  uint64_t delay_ms = 0;    // delay
  uint64_t hold_ms = 1000;  // how long the step lasts before the next one
  std::string text;         // the line as written (without comment), for outputs
};

struct Scenario {
  std::string name;
  uint64_t nodes = 3;
  uint64_t clients = 4;
  // Percentages, summing to 100.
  uint32_t put_percent = 100, get_percent = 0, del_percent = 0, cas_percent = 0;
  uint64_t keys = 1000;
  uint64_t value_bytes = 100;
  uint64_t rate_ops_per_s = 0;  // 0: closed loop
  KillTarget target = KillTarget::leader;
  uint64_t target_node = 0;     // KillTarget::node
  KillHow how = KillHow::sigkill;
  KillWhen when = KillWhen::every;
  uint64_t every_ms = 5000;                           // KillWhen::every
  uint64_t after_writes = 0;                          // KillWhen::after_writes
  uint64_t random_min_ms = 0, random_max_ms = 0;      // KillWhen::random
  uint64_t down_ms = 1000;
  uint64_t cycles = 3;
  uint64_t seed = 1;
  uint64_t settle_ms = 1000;
  bool record_csv = true, record_summary = true, record_plots = true;
  std::vector<FaultStep> steps;  // fault steps, in order (empty: kill/restart cycles)

  bool has_steps() const { return !steps.empty(); }
  bool fills_disk() const;  // a fill-disk step is among the steps

  // replace and grow change the membership instead of restarting nodes.
  bool changes_membership() const { return target == KillTarget::replace || target == KillTarget::grow; }
  // New members a cycle adds: 1 for replace, 2 for grow, 0 otherwise.
  uint64_t members_added_per_cycle() const {
    return target == KillTarget::replace ? 1 : target == KillTarget::grow ? 2 : 0;
  }
};

// Parses scenario text; `source` names it in errors ("FILE line N: ...").
Result<Scenario> parse_scenario(const std::string& text, const std::string& source);
// Reads and parses a file (invalid_argument when it cannot be read).
Result<Scenario> load_scenario(const std::string& path);

// One kill/restart cycle. Times are milliseconds: wall time on real processes, virtual time in
// the simulator; `_ms` fields that could not be measured are -1.
//
// A membership cycle (kill replace, kill grow) fills them as follows: target_nodes are the
// members removed, was_leader whether one of them led, killed_at_ms when the first removal was
// asked (removing the leader hands leadership over then), down_ms 0 (nobody comes back), no
// recovery (recovery_ms -1), catch_up_ms from the new node's start until it applied the commit
// index the cluster had then (the longest of the new nodes), and the last three fields.
//
// A fault step is one row too: cycle is the step's number, how its kind ("partition", "pause",
// ...), target_nodes the nodes it named as resolved when it started ("1 2|3", "1>2", "2"; empty
// for heal and an every-link delay), was_leader whether the step touched the leader then
// (sim/fault_steps.h, ResolvedStep::names_leader),
// killed_at_ms when it started, down_ms how long it lasted, unavailable_ms from its start to the
// first write acknowledged that was invoked after it, and the operations counted from its start
// to the next step's. A fill-disk step whose node stopped fills the recovery columns of its
// restart.
struct CycleRecord {
  uint64_t cycle = 0;               // from 1
  std::string target_nodes;           // "2" or "1 2 3" (target all)
  std::string how;                  // kill_how_name
  bool was_leader = false;          // a node that went down was the leader
  double killed_at_ms = 0;          // since the run started
  double down_ms = 0;               // how long it stayed down
  int64_t leader_before = 0;        // 0: none known
  int64_t leader_after = 0;         // the leader once the cluster served again
  double unavailable_ms = -1;       // from the kill to the first write acknowledged after it
  uint64_t recovery_entries = 0;    // entries the restarted node recovered (summed for "all")
  uint64_t recovery_wal_bytes = 0;  // bytes of its WAL at restart
  double recovery_ms = -1;          // its recovery's own time (the recovery_coordinator's line)
  uint64_t torn_bytes_cut = 0;      // bytes its recovery cut from a torn tail
  double catch_up_ms = -1;          // from its restart until it applied the leader's commit index
  uint64_t log_entries = 0;         // the leader's last log index when the cycle ended
  uint64_t log_bytes = 0;           // the largest WAL on disk among the nodes when the cycle ended
  uint64_t ops_acked = 0;           // operations during the cycle: acknowledged
  uint64_t ops_failed = 0;          //   refused for sure (not applied)
  uint64_t ops_unknown = 0;         //   outcome unknown
  // Membership cycles only (new columns go last, so existing CSV readers keep working):
  std::string new_members;          // ids of the nodes that joined: "4" or "4 5"; empty otherwise
  double voter_ms = -1;             // from asking to add a new node until it was a voter (longest)
  uint64_t new_member_bytes = 0;    // bytes sent to the new node(s) while they caught up: the
                                    // network's deliveries in the simulator; on processes the
                                    // snapshot bytes received plus the WAL's record bytes
};

// Throughput over time: acknowledged operations per bucket.
struct ThroughputSample {
  double at_ms = 0;        // bucket start, since the run started
  uint64_t acked = 0;
};

struct ExperimentResult {
  Scenario scenario;
  std::string mode;                 // "processes" or "simulation"
  std::vector<CycleRecord> cycles;
  std::vector<ThroughputSample> throughput;
  double bucket_ms = 100;
  uint64_t acked_writes = 0;        // acknowledged writes checked at the end
  uint64_t lost_acked_writes = 0;   // must be 0: the run fails otherwise
  std::vector<std::string> problems;  // what failed, in words (lost writes, a node that never came back...)
  double duration_ms = 0;
  // The history's linearizability check: "yes", "no", "unknown" (a search bound was hit), or
  // empty when it was not checked; the history's operations and where it was written.
  std::string linearizable;
  uint64_t history_operations = 0;
  std::string history_path;
  bool ok() const { return lost_acked_writes == 0 && problems.empty() && linearizable != "no"; }
};

// Writes DIR/cycles.csv (a header row, then one row per cycle, columns as CycleRecord's fields
// in order), DIR/summary.json, DIR/summary.txt (a readable table), and SVG plots:
// DIR/recovery_vs_log_size.svg, DIR/unavailability.svg, DIR/throughput.svg (kills marked),
// as the scenario's `record` asks. Creates DIR.
Status write_experiment_outputs(const std::string& directory, const ExperimentResult& result);

// The summary as one JSON object line (also the last line the commands print).
std::string experiment_summary_json(const ExperimentResult& result);

}  // namespace keyval::sim
