// One simulated node: the real node and its real life cycle (actors/node_lifecycle.h: the
// identity claim on its simulated disk, bootstrap or join, supervision of every actor, the
// stop order) inside its own CAF actor system with the testing scheduler, so that nothing in
// it runs unless the simulator says so. The simulator reads its pending jobs and timers, runs
// one at a time, keeps its clock on the shared virtual time, and crashes it by destroying the
// actor system (after the life cycle's crash stop and cancelling every timer, which a testing
// actor system needs to shut down).
#pragma once

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/node.h"
#include "actors/node_lifecycle.h"
#include "raft/random.h"
#include "sim/sim_disk.h"
#include "sim/sim_transport.h"

namespace keyval::sim {

struct SimNodeConfig {
  uint64_t id = 0;
  // Not empty: a node of the first configuration (bootstrap; the core's fixed voters, as in a
  // directory from before configuration entries: its log starts with the first client entry).
  // Empty: a node joining the running cluster, which asks `ask_cluster` (the simulator's view).
  std::vector<uint64_t> voters;
  AskCluster ask_cluster;
  SimDisk* disk = nullptr;             // IDENTITY and the WAL live here, under "/n<id>" (its machine)
  std::string lmdb_directory;          // a real directory
  raft::PlantedBug planted_bug = raft::PlantedBug::none;
  std::chrono::milliseconds tick_interval{10};
  std::chrono::milliseconds request_timeout{300};  // the client gateway's, per stage
  PacketSink send;                     // raft messages out
  ReplySink reply;                     // client responses out
  std::function<void(uint64_t id, const raft::Core&)> observe;
  std::function<void(uint64_t id, const std::vector<Entry>&)> apply;
  // Snapshots: tiny thresholds so every run takes, sends and installs them.
  uint64_t snapshot_entries = 20;
  uint64_t log_tail_entries = 2;
  uint64_t snapshot_chunk_bytes = 256;
  std::function<void(uint64_t id, uint64_t index, uint64_t term)> installed;
  // The disk's sync latency, in virtual time: once the WAL writer has work it waits a random
  // time in [min, max] before it runs (then it runs its whole mailbox: the requests that
  // arrived while it waited form one group commit, as in a real node while fdatasync runs).
  // Meanwhile the rest of the node goes on, so the raft node has several persists in flight
  // and a leader replicates while its own fsync is pending. max 0: the writer runs at once.
  uint64_t disk_latency_min_ns = 0;
  uint64_t disk_latency_max_ns = 0;
  // A snapshot's load into the state machine, in virtual time: the state machine hands each
  // install to a helper actor, as a default node does (StateMachineConfig::install_on_helper),
  // and the helper's job waits a random time in [min, max] before it may run. Meanwhile the
  // node goes on: the raft node may take and install the next snapshot while one still loads.
  uint64_t snapshot_load_min_ns = 1'000'000;
  uint64_t snapshot_load_max_ns = 40'000'000;
  // Each persist request the raft node sends: how many are in flight with it, and whether it leads.
  std::function<void(uint64_t id, uint32_t in_flight, bool leader)> persist_issued;
  // The node recovered and serves (handles), or refused to start (error).
  std::function<void(uint64_t id, const Result<NodeHandles>&)> started;
};

class SimNode {
 public:
  explicit SimNode(SimNodeConfig config)
      : config_(std::move(config)), machine_(config_.disk->machine(data_directory())) {}
  ~SimNode() { crash(); }
  SimNode(const SimNode&) = delete;
  SimNode& operator=(const SimNode&) = delete;

  uint64_t id() const { return config_.id; }
  std::string data_directory() const { return "/n" + std::to_string(config_.id); }

  // A new actor system at virtual time now_ns; recovery starts as its first jobs.
  // `seed` seeds this incarnation's Raft core.
  void start(uint64_t now_ns, uint64_t seed);
  // Stops everything and destroys the actor system (the disk's crash is the caller's: cut
  // the power first, so that nothing run while winding down becomes durable). Nothing the
  // node sends while winding down leaves it.
  void crash();

  bool up() const { return system_ != nullptr; }
  bool serving() const { return up() && handles_.has_value() && !failed_; }
  // An actor of the node stopped by itself (fail-stop, e.g. the raft node after a failed
  // persist), or start failed (the data directory refused, recovery refused).
  bool failed() const { return failed_; }
  // The first failure the life cycle reported ("wal_writer stopped: ..."); empty when none.
  const std::string& failure() const { return failure_; }

  // Scheduling.
  // Moves whenever has_job(), next_timer_ns(), up() or failed() may have changed: every method
  // below that runs, feeds or restarts the node, and a new time. The simulator reads those
  // again only for a node whose count moved since its last look (most steps change one node).
  uint64_t changes() const { return changes_; }
  bool has_job() const;
  void run_job(uint64_t choice);  // runs the job at choice % jobs: any actor with work
  std::optional<uint64_t> next_timer_ns() const;
  void fire_timer();
  void set_time(uint64_t now_ns);

  // Delivery from the simulated network (dropped when not serving).
  void deliver_raft(std::vector<uint8_t> bytes);
  bool deliver_client(uint64_t call, std::vector<uint8_t> bytes);
  // Asks the raft node to hand leadership to `target` (§3.10); its answer is dropped. False
  // when the node does not serve.
  bool request_leader_transfer(uint64_t target);
  // Asks the raft node for a membership change (raft/membership.h) of node `member`, whose
  // peer address is "sim:<id>"; its answer is dropped. False when the node does not serve.
  bool request_member_change(ConfChangeKind kind, uint64_t member);

 private:
  caf::scheduler::test_coordinator& coordinator() const;
  DataDirectoryOptions directory_options() const;

  // The WAL writer's job, when it may run (disk latency; see SimNodeConfig).
  bool writer_runnable() const;
  // A job the simulator may not run yet: the writer waiting for its disk, an install helper
  // for its load's time.
  bool is_held(const caf::resumable* job) const;

  SimNodeConfig config_;
  uint64_t changes_ = 0;
  std::unique_ptr<Env> machine_;  // config_.disk as this node's machine sees it (its own boot id)
  uint64_t now_ns_ = 0;
  mutable raft::SplitMix64 latency_random_{0};
  caf::resumable* writer_job_ = nullptr;  // the WAL writer actor, once the node serves
  // The writer has work and may run from then on (set when it is first seen waiting, cleared
  // once its mailbox is empty again). Mutable: decided when the simulator first looks.
  mutable std::optional<uint64_t> writer_release_ns_;
  // Install helpers (StateMachineConfig::helper_spawned) and when each may run; a helper
  // runs once (one load) and leaves. Looked up by address only, never iterated for a choice.
  std::map<const caf::resumable*, uint64_t> helpers_;
  raft::SplitMix64 load_random_{0};
  std::unique_ptr<caf::actor_system_config> system_config_;
  std::unique_ptr<caf::actor_system> system_;
  // system_'s scheduler, found once per start: the simulator asks it for jobs and timers
  // several times a step, and a dynamic_cast each time was a measurable share of a sweep.
  caf::scheduler::test_coordinator* coordinator_ = nullptr;
  // coordinator_->clock(), kept: next_timer_ns() reads it for every node at every step, and
  // clock() is a virtual call.
  caf::detail::test_actor_clock* clock_ = nullptr;
  // The clock's first due timeout, read once per change: only this node's own jobs and timer
  // firings (run_job, fire_timer) and its start and crash change its clock's schedule, while
  // next_timer_ns() is asked for every node at every step (cache misses on the schedule's
  // tree were a few per cent of a sweep).
  mutable bool schedule_read_ = false;
  mutable std::optional<uint64_t> first_timeout_ns_;
  std::unique_ptr<NodeLifecycle> lifecycle_;
  std::optional<NodeHandles> handles_;
  caf::actor transport_;
  caf::actor client_port_;
  bool failed_ = false;
  std::string failure_;
  bool crashing_ = false;  // winding down: nothing leaves the node any more
};

}  // namespace keyval::sim
