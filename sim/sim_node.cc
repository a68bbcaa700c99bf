// One simulated node (see sim_node.h).
#include "sim/sim_node.h"

#include <caf/detail/test_actor_clock.hpp>

namespace keyval::sim {
namespace {

// Virtual time 0 is one second after the clock's epoch (a zero time_point means "unset").
caf::actor_clock::time_point to_time_point(uint64_t now_ns) {
  return caf::actor_clock::time_point{std::chrono::nanoseconds(now_ns + 1'000'000'000ull)};
}

uint64_t to_ns(caf::actor_clock::time_point time) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
  return ns <= 1'000'000'000 ? 0 : static_cast<uint64_t>(ns) - 1'000'000'000ull;
}

// Bound on the jobs run to let a stopping actor system wind down.
constexpr int shutdown_jobs_max = 1'000'000;

}  // namespace

caf::scheduler::test_coordinator& SimNode::coordinator() const {
  KV_ASSERT(coordinator_ != nullptr);
  return *coordinator_;
}

// The data directory as `keyval node` opens it (bootstrap or join), on the simulated disk.
DataDirectoryOptions SimNode::directory_options() const {
  DataDirectoryOptions directory;
  directory.env = machine_.get();
  directory.data_directory = data_directory();
  directory.cluster = "sim";
  directory.node_id = config_.id;
  directory.bootstrap = !config_.voters.empty();
  for (uint64_t voter : config_.voters) directory.bootstrap_members.push_back(Member{voter, "sim:" + std::to_string(voter)});
  directory.join = config_.voters.empty();
  directory.ask_cluster = config_.ask_cluster;
  directory.join_source = "join (the simulator's view of the configuration)";
  directory.peer_address = "sim:" + std::to_string(config_.id);
  directory.add_member_command = "a membership change that adds node " + std::to_string(config_.id);
  return directory;
}

void SimNode::start(uint64_t now_ns, uint64_t seed) {
  KV_ASSERT(!up());
  ++changes_;
  latency_random_ = raft::SplitMix64(seed ^ 0xd15c'1a7e'0000'0000ULL);
  load_random_ = raft::SplitMix64(seed ^ 0x10ad'0000'0000'0000ULL);
  writer_job_ = nullptr;
  writer_release_ns_.reset();
  helpers_.clear();
  failed_ = false;
  failure_.clear();
  system_config_ = std::make_unique<caf::actor_system_config>();
  system_config_->set("scheduler.policy", caf::atom("testing"));
  system_config_->set("logger.verbosity", caf::atom("quiet"));
  add_message_types(*system_config_);
  system_ = std::make_unique<caf::actor_system>(*system_config_);
  coordinator_ = &dynamic_cast<caf::scheduler::test_coordinator&>(system_->scheduler());
  clock_ = &coordinator_->clock();
  set_time(now_ns);

  crashing_ = false;
  transport_ = spawn_sim_transport(*system_, config_.id, [this](uint64_t from, uint64_t to, std::vector<uint8_t> bytes) {
    if (!crashing_) config_.send(from, to, std::move(bytes));
  });
  NodeLifecycleConfig lifecycle;
  lifecycle.transport = transport_;
  lifecycle.failed = [this](const std::string& actor, const std::string& reason) {
    failed_ = true;
    failure_ = actor + " stopped: " + reason;
  };
  lifecycle_ = std::make_unique<NodeLifecycle>(*system_, std::move(lifecycle));

  auto directory = open_data_directory(directory_options());
  if (!directory.is_ok()) {
    failed_ = true;
    failure_ = directory.status().to_string();
    if (config_.started) config_.started(config_.id, directory.status());
    schedule_read_ = false;
    return;
  }

  NodeConfig node;
  node.persistence.env = machine_.get();
  node.persistence.data_directory = data_directory();
  node.persistence.detached = false;
  node.persistence.recovery.lmdb_directory = config_.lmdb_directory;
  node.persistence.recovery.store.reserve_map = false;  // in RAM, its full disks simulated (store.h)
  node.persistence.recovery.store.write_through_map = false;  // fresh map pages are dear in RAM (store.h)
  node.persistence.recovery.wal.segment_bytes = 16u << 10;  // small: segments rotate in every run
  node.persistence.recovery.wal.write_buffer_bytes = 8u << 10;
  node.persistence.log = [](const std::string&) {};
  node.raft.raft.node_id = config_.id;
  node.state_machine.install_on_helper = true;
  node.state_machine.helpers_detached = false;
  node.state_machine.helper_spawned = [this](const caf::actor& helper) {
    const uint64_t low = config_.snapshot_load_min_ns, high = std::max(low, config_.snapshot_load_max_ns);
    helpers_[dynamic_cast<caf::resumable*>(caf::actor_cast<caf::abstract_actor*>(helper))] =
        now_ns_ + load_random_.between(low, high);
  };
  // The first members start as `keyval node --bootstrap` does: a directory never written to
  // gets the bootstrap configuration entry (and probation, raft/probation.cc); a restart
  // keeps what it has. Members added later start empty and learn the configuration.
  node.persistence.recovery.bootstrap = directory->bootstrap;
  node.raft.raft.random_seed = seed;
  node.raft.raft.planted_bug = config_.planted_bug;
  node.raft.tick_interval = config_.tick_interval;
  node.raft.transport = transport_;
  const uint64_t id = config_.id;
  if (config_.observe) node.raft.observe = [observe = config_.observe, id](const raft::Core& core) { observe(id, core); };
  if (config_.apply) node.raft.apply = [apply = config_.apply, id](const std::vector<Entry>& entries) { apply(id, entries); };
  node.gateway.request_timeout = config_.request_timeout;
  node.raft.snapshot_entries = config_.snapshot_entries;
  node.raft.snapshot_bytes = 0;
  // Snapshots often, for coverage: the entry threshold waits only for a quarter of the last
  // snapshot's bytes (a node's default waits for all of them, RaftNodeConfig).
  node.raft.snapshot_size_divisor = 4;
  node.raft.raft.log_tail_entries = config_.log_tail_entries;
  node.raft.snapshot_chunk_bytes = config_.snapshot_chunk_bytes;
  node.raft.snapshot_chunks_in_flight_max = 2;
  for (uint64_t voter : config_.voters) node.raft.members.push_back(Member{voter, "sim:" + std::to_string(voter)});
  if (config_.persist_issued) {
    node.raft.persist_issued = [issued = config_.persist_issued, id](uint32_t in_flight, bool leader) {
      issued(id, in_flight, leader);
    };
  }
  if (config_.installed) {
    node.raft.installed = [installed = config_.installed, id](uint64_t index, uint64_t term) { installed(id, index, term); };
  }

  lifecycle_->start(std::move(node), [this](Result<NodeHandles> result) {
    if (!result.is_ok()) {
      failed_ = true;
      failure_ = result.status().to_string();
    } else {
      handles_ = *result;
      writer_job_ = dynamic_cast<caf::resumable*>(caf::actor_cast<caf::abstract_actor*>(handles_->writer));
      client_port_ = spawn_sim_client_port(*system_, handles_->gateway, [this](uint64_t call, std::vector<uint8_t> bytes) {
        if (!crashing_) config_.reply(call, std::move(bytes));
      });
      // Fail-stop: any actor of the node that stops by itself (the raft node when persistence
      // fails, ...) marks the node failed; the simulator then crashes and restarts it.
      lifecycle_->supervise_client_side(client_port_, "client port");
    }
    // A start that ends while the node crashes (its wind-down) is no start.
    if (config_.started && !crashing_) config_.started(config_.id, result);
  });
  schedule_read_ = false;  // starting may have scheduled timeouts
}

void SimNode::crash() {
  if (!up()) return;
  ++changes_;
  crashing_ = true;
  // kill, not user_shutdown: a crash leaves LMDB unmarked, as SIGKILL or a power cut would.
  lifecycle_->stop(StopMode::crash);
  auto& scheduler = coordinator();
  for (int round = 0; round < 2; ++round) {
    scheduler.clock().cancel_all();
    for (int i = 0; i < shutdown_jobs_max && scheduler.has_job(); ++i) scheduler.run_once();
  }
  scheduler.clock().cancel_all();
  stop_sim_transport(transport_);
  transport_ = nullptr;
  client_port_ = nullptr;
  handles_.reset();
  writer_job_ = nullptr;
  writer_release_ns_.reset();
  helpers_.clear();
  system_.reset();
  coordinator_ = nullptr;
  clock_ = nullptr;
  schedule_read_ = false;
  lifecycle_.reset();
  system_config_.reset();
}

// The WAL writer may run once its disk latency has passed. The first look at a writer with
// work draws the latency, so the draw happens at a deterministic step.
bool SimNode::writer_runnable() const {
  if (!writer_release_ns_) {
    const uint64_t low = config_.disk_latency_min_ns, high = std::max(low, config_.disk_latency_max_ns);
    writer_release_ns_ = now_ns_ + (high == 0 ? 0 : latency_random_.between(low, high));
  }
  return *writer_release_ns_ <= now_ns_;
}

bool SimNode::is_held(const caf::resumable* job) const {
  if (job == writer_job_ && writer_job_ != nullptr) return !writer_runnable();
  if (helpers_.empty()) return false;
  auto helper = helpers_.find(job);
  return helper != helpers_.end() && helper->second > now_ns_;
}

bool SimNode::has_job() const {
  if (!up()) return false;
  for (const caf::resumable* job : coordinator().jobs) {
    if (!is_held(job)) return true;
  }
  return false;
}

// Actors of one node run concurrently in a real node, so the next actor to run is any with
// work, not the first in line (each actor's own mailbox order is kept). A WAL writer still
// waiting for its disk is not a choice.
void SimNode::run_job(uint64_t choice) {
  ++changes_;
  auto& jobs = coordinator().jobs;
  size_t runnable = 0;
  for (const caf::resumable* job : jobs) runnable += is_held(job) ? 0 : 1;
  KV_ASSERT(runnable > 0);
  size_t pick = choice % runnable;
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (is_held(jobs[i])) continue;
    if (pick-- != 0) continue;
    pick = i;
    break;
  }
  if (pick != 0) {
    auto* job = jobs[pick];
    jobs.erase(jobs.begin() + static_cast<std::ptrdiff_t>(pick));
    jobs.push_front(job);
  }
  if (!helpers_.empty()) helpers_.erase(jobs.front());  // a helper's one job: it leaves after it
  coordinator().try_run_once();
  schedule_read_ = false;  // the job may have set or cancelled timeouts
  if (writer_job_ != nullptr && writer_release_ns_) {
    bool writer_has_work = false;
    for (const caf::resumable* job : coordinator().jobs) writer_has_work = writer_has_work || job == writer_job_;
    if (!writer_has_work) writer_release_ns_.reset();  // idle: the next request waits anew
  }
}

std::optional<uint64_t> SimNode::next_timer_ns() const {
  if (!up()) return std::nullopt;
  if (!schedule_read_) {
    const auto& schedule = clock_->schedule();
    first_timeout_ns_ = schedule.empty() ? std::nullopt : std::optional<uint64_t>(to_ns(schedule.begin()->first));
    schedule_read_ = true;
  }
  std::optional<uint64_t> next = first_timeout_ns_;
  if (writer_release_ns_ && *writer_release_ns_ > now_ns_) {
    bool waiting = false;
    for (const caf::resumable* job : coordinator().jobs) waiting = waiting || job == writer_job_;
    if (waiting && (!next || *writer_release_ns_ < *next)) next = writer_release_ns_;
  }
  for (const auto& [job, release_ns] : helpers_) {  // the minimum: the order does not matter
    if (release_ns <= now_ns_ || (next && release_ns >= *next)) continue;
    bool waiting = false;
    for (const caf::resumable* queued : coordinator().jobs) waiting = waiting || queued == job;
    if (waiting) next = release_ns;
  }
  return next;
}

// The writer's release never comes here: next_timer_ns() names it only while it lies ahead,
// and once time reaches it the writer's job is simply runnable (has_job()).
void SimNode::fire_timer() {
  ++changes_;
  clock_->trigger_timeout();
  schedule_read_ = false;
}

void SimNode::set_time(uint64_t now_ns) {
  if (now_ns != now_ns_) ++changes_;
  now_ns_ = now_ns;
  if (up()) clock_->current_time = to_time_point(now_ns);
}

void SimNode::deliver_raft(std::vector<uint8_t> bytes) {
  if (!serving()) return;
  ++changes_;
  caf::anon_send(handles_->raft_node, raft_message_atom_v, Frame{std::move(bytes)});
}

bool SimNode::request_leader_transfer(uint64_t target) {
  if (!serving()) return false;
  ++changes_;
  caf::anon_send(handles_->raft_node, leader_transfer_atom_v, target);
  return true;
}

bool SimNode::request_member_change(ConfChangeKind kind, uint64_t member) {
  if (!serving()) return false;
  ++changes_;
  caf::anon_send(handles_->raft_node, member_change_atom_v, static_cast<uint64_t>(kind), member,
                 "sim:" + std::to_string(member), std::string());
  return true;
}

bool SimNode::deliver_client(uint64_t call, std::vector<uint8_t> bytes) {
  if (!serving() || !client_port_) return false;
  ++changes_;
  caf::anon_send(client_port_, client_atom_v, call, Frame{std::move(bytes)});
  return true;
}

}  // namespace keyval::sim
