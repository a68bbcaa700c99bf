// The deterministic simulator: a whole KeyVal cluster in one process, on one thread, with
// virtual time, run from one seed (DESIGN.md, "Same code, two worlds").
//
// Each node is the real node code (actors/node.h) in its own CAF actor system with the
// testing scheduler; its WAL lives on the simulated disk (sim/sim_disk.h), its LMDB in a
// real temporary directory. Nothing moves unless the simulator moves it: each step it
// collects what could happen now (a node's next job, a due timer of a node, the next due
// packet, a client's next action, a due fault) and picks one with the seeded generator.
// When nothing can happen now, virtual time jumps to the next due thing. Every node's
// clock shows the same virtual time.
//
// Faults (SimOptions::faults): `network` delays, drops, duplicates and reorders packets
// and makes and heals partitions (also one-way); `crash` destroys a node's actor system
// (the simulated disk loses what was not synced, may tear the last write) and restarts
// it later through the real recovery; `disk` adds failed fsyncs (the node stops, fail-
// stop, and is restarted) and torn writes with garbage; `all` is everything, and also asks
// the leader now and then to hand leadership to a random node (§3.10: itself and nodes that
// are down included, which it refuses or abandons). `disk` and `all` also damage one node's
// WAL at a time at rest (bit flips, latent sector errors, misdirected writes): the node
// salvages its WAL and repairs from the leader (docs/PERSISTENCE.md).
//
// Clients invoke random put/get/del/cas on a small key space with timeouts and retries
// (a write retried with the same session sequence), following leader hints, and record a
// history. After the workload the simulator heals everything, restarts every node, waits
// for the cluster to settle, and checks: the Raft invariants (after every step), the
// history's linearizability, and that every acknowledged write is still in the log.
//
// A SimController (below) can drive a run instead of the random faults: between steps it
// looks at the cluster and takes nodes down and back up (sim/scenario_sim.h runs restart-
// cycle scenarios with one). The checks at the end are the same.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "raft/config.h"
#include "sim/history.h"
#include "sim/linearizability.h"
#include "storage/recovery.h"
#include "storage/types.h"

namespace keyval::sim {

enum class FaultMode : uint8_t { none, network, crash, disk, all };
const char* fault_mode_name(FaultMode mode);
// "none" | "network" | "crash" | "disk" | "all"; false when unknown.
bool parse_fault_mode(const std::string& text, FaultMode* mode);

struct SimOptions {
  uint64_t seed = 1;
  size_t nodes = 5;
  uint64_t ops = 200;                 // client operations to invoke (fewer if time runs out)
  size_t clients = 5;
  size_t keys = 4;                    // key space: "k0".."k{keys-1}"
  FaultMode faults = FaultMode::all;
  uint64_t duration_ms = 10000;       // virtual time of the workload phase
  uint64_t settle_ms_max = 20000;     // after it: virtual time allowed to heal and answer final reads
  raft::PlantedBug planted_bug = raft::PlantedBug::none;  // tests only
  // A run stops with a violation ("message storm") once more packets than this are in
  // flight: bounded by what the nodes may have outstanding, beyond it messages multiply.
  size_t packets_in_flight_max = 20000;
  // A run stops with a violation ("livelock") once this many steps ran without virtual time
  // advancing: a simulator or node bug that keeps some step due forever (seed 24564 once did).
  // Healthy runs take a few hundred steps at one instant at most.
  uint64_t steps_at_one_instant_max = 1000000;
  // Tests only: at every step, compare the step selection's view of each node and client
  // (read again only when its change count moved, docs/SIMULATION.md "One step") with a fresh
  // read, and report a violation where they differ: a method that changes a node or client
  // without moving its count. The fresh reads change nothing when the views are right, so
  // the run is the same with or without the check.
  bool check_step_views = false;
  std::string work_directory;         // real directory for the nodes' LMDB; empty: a temp dir
  bool trace = false;                 // print one line per fault and node event to stderr
  // The clients' operations, in percent (sum 100), and value size (0: short unique values).
  // Increments go to counter keys of their own and are checked exactly-once by their own rule
  // (ClientSettings, Simulator::check_increments).
  uint32_t get_percent = 40, put_percent = 30, cas_percent = 20, del_percent = 10, increment_percent = 0;
  bool increments_without_session = false;  // tests only: the planted double increment
  uint64_t value_bytes = 0;
  // Pace of each client: by default `ops` spread over `duration_ms` with random pauses;
  // closed_loop: no pause at all; client_pace_ns: an invocation every client_pace_ns (at once
  // when the previous operation took longer).
  bool closed_loop = false;
  uint64_t client_pace_ns = 0;
  // Snapshots (§7): taken every snapshot_entries applied entries, keeping log_tail_entries,
  // sent in chunks of snapshot_chunk_bytes; tiny so that every run takes, compacts, sends
  // and installs them under the faults.
  uint64_t snapshot_entries = 20;
  uint64_t log_tail_entries = 2;
  uint64_t snapshot_chunk_bytes = 256;
  // The disk's sync latency (sim/sim_node.h): each time a node's WAL writer gets work it waits
  // a random time in [min, max] microseconds of virtual time, while the rest of the node runs
  // on; so persists pipeline (several in flight, a leader's fsync overlapped with replication).
  // max 0: the WAL syncs at once. With disk_latency_by_seed the seed picks the disk instead,
  // so that a sweep covers all three: seed % 3 == 0 an instant disk, 1 a fast one (10..300 µs),
  // 2 a slow one (50..2000 µs). Each regime finds bugs the others miss: an instant disk
  // never overlaps persists; a slow one makes the windows between a promise and its fsync
  // long and the crashes in them rarer.
  bool disk_latency_by_seed = true;
  uint64_t disk_latency_min_us = 50;
  uint64_t disk_latency_max_us = 2000;
  // Membership (faults `all`, or a controller that changes membership): nodes beyond `nodes`
  // that start outside the cluster. Changes at random add one as a learner (it starts with an empty data directory
  // and joins), promote a learner, remove a member (the leader hands over first), so that
  // over a run nodes are replaced by fresh ones; a removed node is stopped for good.
  size_t spare_nodes = 2;
};

struct SimResult {
  uint64_t seed = 0;
  uint64_t trace_hash = 0;           // FNV-1a of every step taken: same seed, same hash
  uint64_t ops = 0;                  // operations recorded in the history (final reads included)
  uint64_t ops_ok = 0, ops_failed = 0, ops_unknown = 0;
  std::vector<std::string> violations;  // invariant violations and failed checks, with detail
  Verdict linearizable = Verdict::yes;
  std::string linearizability_detail;
  uint64_t acked_writes = 0;
  uint64_t lost_acked_writes = 0;
  uint64_t increments_acked = 0;     // increments acknowledged ok (checked by check_increments)
  uint64_t steps = 0;
  uint64_t crashes = 0, restarts = 0, partitions = 0, sync_failures = 0;
  // Of the crashes, process crashes (the page cache and the boot kept; the rest cut the power),
  // and of those the kills between a write and its fdatasync; starts whose recovery rebuilt LMDB
  // (after a power cut: it was not trusted).
  uint64_t process_crashes = 0, kills_at_sync = 0, lmdb_rebuilds = 0;
  uint64_t snapshots = 0;            // times a node's snapshot index rose (taken or installed)
  uint64_t snapshots_installed = 0;  // of those, InstallSnapshot transfers completed (§7)
  uint64_t leader_transfers = 0;     // leadership transfers asked of the leader (§3.10; faults `all`)
  uint64_t leader_transfers_completed = 0;  // of those, the target led in the leader's term + 1
  // Membership changes asked of the leader (faults `all`): add a learner, promote, remove;
  // and what came of them: nodes that joined the configuration, voters promoted, members
  // removed (and then stopped for good).
  uint64_t member_changes = 0;
  uint64_t members_added = 0, members_promoted = 0, members_removed = 0;
  // Leaderships (node, term) of a voter that only an uncommitted removal left out: elected to
  // commit its own removal (raft::Core::may_campaign, thesis §4.2.2).
  uint64_t leaders_outside_configuration = 0;
  // The wrong procedure (docs/MEMBERSHIP.md): a voter's data wiped and the node started again
  // under its id with --bootstrap; how many of those it refused (a peer had counted it).
  uint64_t wipes = 0, wipes_refused = 0;
  // Media faults (faults `disk` and `all`; docs/PERSISTENCE.md, "Corruption repaired from
  // peers"), on one node at a time: bit flips and latent sector errors in WAL records at rest
  // (the node powered off first), misdirected WAL writes (the node crashed soon after); nodes
  // that started repairing and finished, and the entries they appended while repairing.
  uint64_t bit_flips = 0, latent_sector_errors = 0, misdirected_writes = 0;
  uint64_t repairs = 0, repairs_completed = 0, entries_refetched = 0;
  // Pipelined persists (actors/raft_node.cc drain()): persist requests a node sent while
  // another of its own was still being synced, those sent by a leader (its fsync overlapped
  // with replication and with the next Ready), and the most in flight at once on one node.
  uint64_t persists_pipelined = 0, leader_persists_pipelined = 0, persists_in_flight_max = 0;
  uint64_t packets_sent = 0, packets_dropped = 0;
  double virtual_seconds = 0;
  double wall_seconds = 0;
  std::vector<Operation> history;

  bool ok() const {
    return violations.empty() && linearizable != Verdict::no && lost_acked_writes == 0;
  }
};

SimResult run_simulation(const SimOptions& options);

// What a controller sees of the cluster and may do to it, between two steps. Node ids are
// 1..node_count(); times are virtual nanoseconds since the run started.
class SimCluster {
 public:
  enum class Down : uint8_t {
    power_cut,       // the disk keeps only what was synced
    process_crash,   // SIGKILL: the page cache keeps every byte written, the boot id stays
    power_cut_torn,  // ... and a prefix of the unsynced writes, the last one possibly torn
    clean_stop,      // the process stops; every byte it wrote stays on the disk, synced or not
  };

  virtual ~SimCluster() = default;
  virtual uint64_t now_ns() const = 0;
  virtual size_t node_count() const = 0;
  virtual uint64_t leader() const = 0;  // the serving leader of the highest term; 0: none
  virtual bool up(uint64_t id) const = 0;       // running (maybe still recovering)
  virtual bool serving(uint64_t id) const = 0;  // recovered, its raft node running
  virtual bool failed(uint64_t id) const = 0;   // stopped by itself (fail-stop) or refused to start
  virtual uint64_t commit_index(uint64_t id) const = 0;   // 0 when not serving
  virtual uint64_t last_index(uint64_t id) const = 0;     // 0 when not serving
  virtual uint64_t applied_index(uint64_t id) const = 0;  // handed to its state machine; 0 when down
  virtual uint64_t wal_bytes(uint64_t id) const = 0;      // its WAL's files on the simulated disk
  virtual uint64_t unsynced_bytes(uint64_t id) const = 0;
  virtual uint64_t acked_writes() const = 0;  // writes acknowledged to the clients so far
  virtual uint64_t operations() const = 0;    // operations invoked so far
  virtual void take_down(uint64_t id, Down how) = 0;
  virtual void restart(uint64_t id) = 0;  // through the real recovery, at once
  virtual void set_disk_full(uint64_t id, bool full) = 0;  // its WAL's files cannot grow
  virtual void fail_syncs(uint64_t id, bool fail) = 0;     // its fdatasyncs fail (until take_down)
  virtual uint64_t random() = 0;           // from the run's seeded generator
  virtual void trace(const std::string& line) = 0;  // SimOptions::trace

  // Membership (restart-cycle scenarios `kill replace` and `kill grow`), with the spare nodes
  // (SimOptions::spare_nodes, ids above SimOptions::nodes).
  struct Configuration {
    uint64_t leader = 0;          // whose configuration this is; 0: no serving leader (members empty)
    std::vector<Member> members;  // the latest in its log
    bool committed = false;       // that configuration is committed
  };
  virtual Configuration configuration() const = 0;
  // Asks the serving leader for one change (fire and forget: a refusal is seen only as a
  // configuration that did not change, so ask again). add_learner of a spare also starts the
  // spare, with an empty data directory and no configuration. false: no serving leader.
  virtual bool change_membership(ConfChangeKind kind, uint64_t id) = 0;
  // A removed member stops for good (`how`): the simulator does not restart it at the end.
  virtual void retire(uint64_t id, Down how) = 0;
  virtual bool spare(uint64_t id) const = 0;  // not started yet
  // Bytes of Raft messages the simulated network delivered to the node since the run began.
  virtual uint64_t bytes_delivered(uint64_t id) const = 0;

  // Network and process faults of fault-step scenarios (sim/scenario.h). Raft messages from
  // `from` to `to` are lost (those in flight too); a fixed extra delay on one directed link or,
  // with from = to = 0, on every link; heal_links removes every cut and delay. A paused node
  // runs no job and no timer, and what is delivered to it (Raft messages, client requests) is
  // held and handed to it, in order, when it resumes (as a stopped process's socket buffers).
  virtual void cut_link(uint64_t from, uint64_t to) = 0;
  virtual void delay_link(uint64_t from, uint64_t to, uint64_t delay_ns) = 0;
  virtual void heal_links() = 0;
  virtual void pause(uint64_t id, bool paused) = 0;
  virtual bool paused(uint64_t id) const = 0;
};

// Drives a run in place of the random faults (SimOptions::faults is ignored then): it acts
// before every step, the simulator never jumps time past its next_due_ns(), and when it says
// the workload is done the simulator heals everything, restarts every node that is down,
// does the final reads and checks as usual.
class SimController {
 public:
  virtual ~SimController() = default;
  virtual void act(SimCluster& cluster) = 0;
  virtual std::optional<uint64_t> next_due_ns() const = 0;  // when it wants to act next, if at a time
  virtual bool workload_done() const = 0;
  // A node recovered and serves; `recovery` holds what its recovery did.
  virtual void node_started(uint64_t id, uint64_t now_ns, const RecoveryFigures& recovery) = 0;
};

SimResult run_simulation(const SimOptions& options, SimController& controller);

}  // namespace keyval::sim
