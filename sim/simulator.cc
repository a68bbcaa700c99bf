// The deterministic simulator (see simulator.h).
#include "sim/simulator.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>

#include "actors/raft_wire.h"
#include "raft/invariants.h"
#include "sim/sim_client.h"
#include "sim/sim_disk.h"
#include "sim/sim_network.h"
#include "sim/sim_node.h"
#include "storage/kv_command.h"
#include "storage/little_endian.h"
#include "storage/wal.h"
#include "storage/wal_format.h"

namespace keyval::sim {
namespace {

constexpr uint64_t ms = 1'000'000;  // ns
constexpr size_t violations_max = 20;

// The trace hash folds every step in, a 64-bit word at a time (bytes read little-endian, so
// a seed's hash is the same on any host): xor, multiply by an odd constant, fold the high
// half down. A byte at a time (FNV-1a, until 2026-12-07) was a chain of dependent multiplies
// over every packet: 4-5 % of a simulated run's instructions.
class TraceHash {
 public:
  void add(uint64_t value) {
    hash_ ^= value;
    hash_ *= 0x9e3779b97f4a7c15ULL;
    hash_ ^= hash_ >> 32;
  }
  void add(const std::vector<uint8_t>& bytes) {
    add(bytes.size());  // the length first: the zero-padded tail below is then unambiguous
    size_t at = 0;
    for (; at + 8 <= bytes.size(); at += 8) add(little_endian::load_u64(bytes.data() + at));
    if (at == bytes.size()) return;
    uint8_t tail[8] = {};
    std::memcpy(tail, bytes.data() + at, bytes.size() - at);
    add(little_endian::load_u64(tail));
  }
  uint64_t value() const { return hash_; }

 private:
  uint64_t hash_ = 0xcbf29ce484222325ULL;
};

enum StepKind : uint64_t { step_job = 1, step_timer, step_packet, step_client, step_fault };

struct Candidate {
  StepKind kind;
  size_t index;  // node, client or fault slot
};

// A fresh directory for one run's LMDB files (under parent_hint, or /dev/shm, $TMPDIR, /tmp),
// never shared with another run.
Result<std::string> make_work_directory(const std::string& parent_hint) {
  std::string parent = parent_hint;
  if (parent.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    parent = std::filesystem::exists("/dev/shm") ? "/dev/shm" : (tmp != nullptr ? tmp : "/tmp");
  }
  std::string pattern = parent + "/keyval-sim-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) return Status::from_errno("create the work directory", pattern, errno);
  return std::string(buffer.data());
}

// A run that could not start: the reason as its one violation.
SimResult refused_run(const SimOptions& options, const Status& status) {
  SimResult result;
  result.seed = options.seed;
  result.violations.push_back("simulator: " + status.to_string());
  return result;
}

// A KV_ASSERT that fails while a simulation runs on this thread becomes an exception: inside
// an actor, CAF ends that actor with an error; the simulator then reports the assertion as a
// violation and stops the run (the state it checks is broken from there on). Elsewhere it
// still aborts.
struct AssertionFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};
thread_local std::vector<std::string>* failed_assertions = nullptr;

void throw_in_simulation(const std::string& what) {
  if (failed_assertions == nullptr) return;
  failed_assertions->push_back(what);
  throw AssertionFailure(what);
}

class Simulator final : public SimCluster {
 public:
  Simulator(const SimOptions& options, SimController* controller, std::string work_directory)
      : options_(options),
        work_directory_(std::move(work_directory)),
        controller_(controller),
        random_(options.seed * 0x9e3779b97f4a7c15ULL + 1),
        network_(random_) {
    if (controller_ != nullptr) options_.faults = FaultMode::none;  // the controller's downs only
    for (uint64_t id = 1; id <= options.nodes; ++id) voters_.push_back(id);
    ids_ = voters_;
    current_voters_ = voters_;
    committed_voters_ = voters_;
    if (controller_ != nullptr || options_.faults == FaultMode::all) {
      for (uint64_t id = options.nodes + 1; id <= options.nodes + options.spare_nodes; ++id) {
        ids_.push_back(id);
        spares_.insert(id);
      }
    }
    network_.set_faults(base_network());
    for (uint64_t id : ids_) nodes_.push_back(std::make_unique<SimNode>(node_config(id)));
    ClientSettings settings;
    // Pauses that spread the operations over most of the workload phase.
    settings.think_ns_max =
        std::max<uint64_t>(1 * ms, options.duration_ms * ms * options.clients / std::max<uint64_t>(options.ops, 1));
    if (options.closed_loop) settings.think_ns_max = 0;
    settings.pace_ns = options.closed_loop ? 0 : options.client_pace_ns;
    settings.nodes = ids_.size();  // spares and removed nodes refuse connections, as down ones do
    settings.keys = options.keys;
    settings.get_percent = options.get_percent;
    settings.put_percent = options.put_percent;
    settings.cas_percent = options.cas_percent;
    settings.del_percent = options.del_percent;
    settings.increment_percent = options.increment_percent;
    settings.increments_without_session = options.increments_without_session;
    settings.value_bytes = options.value_bytes;
    for (uint64_t slot = 1; slot <= options.clients + 1; ++slot) {
      clients_.push_back(std::make_unique<SimClient>(slot, settings, history_, random_));
    }
    clients_.back()->stop_invoking();  // the last one does the final reads
    node_views_.resize(nodes_.size());
    client_views_.resize(clients_.size());
    restart_at_.assign(ids_.size(), 0);
    faults_met_at_start_.assign(ids_.size(), 0);
    crash_.assign(ids_.size(), PendingCrash{});
    set_assertion_handler(throw_in_simulation);
    failed_assertions = &failed_assertions_;
  }

  ~Simulator() {
    nodes_.clear();
    failed_assertions = nullptr;
    std::error_code ignored;
    if (options_.work_directory.empty()) std::filesystem::remove_all(work_directory_, ignored);
  }

  SimResult run();

  // SimCluster: what a controller sees and does.
  uint64_t now_ns() const override { return now_ns_; }
  size_t node_count() const override { return nodes_.size(); }
  uint64_t leader() const override;
  const raft::Core* leader_core() const;
  bool up(uint64_t id) const override { return nodes_[id - 1]->up(); }
  bool serving(uint64_t id) const override { return nodes_[id - 1]->serving(); }
  bool failed(uint64_t id) const override { return nodes_[id - 1]->up() && nodes_[id - 1]->failed(); }
  uint64_t commit_index(uint64_t id) const override;
  uint64_t last_index(uint64_t id) const override;
  uint64_t applied_index(uint64_t id) const override;
  uint64_t wal_bytes(uint64_t id) const override { return disk_.used_bytes(nodes_[id - 1]->data_directory() + "/wal"); }
  uint64_t unsynced_bytes(uint64_t id) const override { return disk_.unsynced_bytes(nodes_[id - 1]->data_directory()); }
  uint64_t acked_writes() const override;
  uint64_t operations() const override { return history_.operations().size(); }
  void take_down(uint64_t id, Down how) override;
  void restart(uint64_t id) override;
  void set_disk_full(uint64_t id, bool full) override { disk_.set_full(node(id).data_directory(), full); }
  void fail_syncs(uint64_t id, bool fail) override { disk_.fail_syncs(node(id).data_directory(), fail); }
  uint64_t random() override { return random_.next(); }
  void trace(const std::string& line) override {
    if (options_.trace) std::cerr << "[" << now_ns_ / ms << " ms] " << line << "\n";
  }
  Configuration configuration() const override;
  bool change_membership(ConfChangeKind kind, uint64_t id) override;
  void retire(uint64_t id, Down how) override;
  bool spare(uint64_t id) const override { return spares_.count(id) != 0; }
  void cut_link(uint64_t from, uint64_t to) override { network_.cut(from, to); }
  void delay_link(uint64_t from, uint64_t to, uint64_t delay_ns) override { network_.add_delay(from, to, delay_ns); }
  void heal_links() override {
    network_.heal();
    network_.clear_delays();
  }
  void pause(uint64_t id, bool paused) override;
  bool paused(uint64_t id) const override { return paused_.count(id) != 0; }
  uint64_t bytes_delivered(uint64_t id) const override {
    auto found = bytes_delivered_.find(id);
    return found != bytes_delivered_.end() ? found->second : 0;
  }

 private:
  bool faults(FaultMode mode) const { return options_.faults == mode || options_.faults == FaultMode::all; }

  NetworkFaults base_network() const {
    NetworkFaults network;
    if (faults(FaultMode::network)) {
      network.drop = 0.03;
      network.duplicate = 0.02;
      network.spike = 0.02;
      network.spike_ns_max = 60 * ms;
    }
    return network;
  }

  SimNodeConfig node_config(uint64_t id) {
    SimNodeConfig config;
    config.id = id;
    if (id <= options_.nodes) config.voters = voters_;  // the others join a running cluster
    config.ask_cluster = [this] { return cluster_view(); };
    config.disk = &disk_;
    config.lmdb_directory = work_directory_ + "/n" + std::to_string(id) + "-lmdb";
    config.planted_bug = options_.planted_bug;
    config.snapshot_entries = options_.snapshot_entries;
    config.log_tail_entries = options_.log_tail_entries;
    config.snapshot_chunk_bytes = options_.snapshot_chunk_bytes;
    uint64_t latency_min_us = options_.disk_latency_min_us, latency_max_us = options_.disk_latency_max_us;
    if (options_.disk_latency_by_seed) {
      static constexpr uint64_t by_seed[3][2] = {{0, 0}, {10, 300}, {50, 2000}};
      latency_min_us = by_seed[options_.seed % 3][0];
      latency_max_us = by_seed[options_.seed % 3][1];
    }
    config.disk_latency_min_ns = latency_min_us * 1000;
    config.disk_latency_max_ns = latency_max_us * 1000;
    config.installed = [this](uint64_t node, uint64_t index, uint64_t term) {
      checker_.installed_snapshot(node, index, term);  // violations surface at the next observe
      applied_[node] = index;
      ++result_.snapshots_installed;
    };
    config.persist_issued = [this](uint64_t, uint32_t in_flight, bool leader) {
      if (in_flight < 2) return;
      ++result_.persists_pipelined;
      if (leader) ++result_.leader_persists_pipelined;
      result_.persists_in_flight_max = std::max<uint64_t>(result_.persists_in_flight_max, in_flight);
    };
    config.send = [this](uint64_t from, uint64_t to, std::vector<uint8_t> bytes) {
      if (faults_active_ && faults(FaultMode::crash)) maybe_crash_after_promise(from, bytes);
      network_.send(now_ns_, Packet{Packet::raft, from, to, 0, std::move(bytes)});
    };
    config.reply = [this, id](uint64_t call, std::vector<uint8_t> bytes) {
      network_.send(now_ns_, Packet{Packet::client_response, id, 1000 + client_slot_of_call(call), call, std::move(bytes)});
    };
    config.observe = [this](uint64_t node, const raft::Core& core) {
      states_[node].read_roles(core);
      cores_[node] = &core;
      if (transfer_asked_ && core.id() == transfer_asked_->first && core.role() == raft::Role::leader &&
          core.current_term() == transfer_asked_->second + 1) {
        ++result_.leader_transfers_completed;
        transfer_asked_.reset();
      }
      if (core.role() == raft::Role::leader) observe_configuration(core);
      if (core.role() == raft::Role::leader && !core.is_voter() &&
          leaders_outside_.insert({node, core.current_term()}).second) {
        ++result_.leaders_outside_configuration;
        trace("node " + std::to_string(node) + " leads term " + std::to_string(core.current_term()) +
              " outside its configuration (its removal at index " + std::to_string(core.configuration_index()) +
              " is not committed yet)");
      }
      if (!core.refusal().empty() && refused_.insert(node).second) {
        ++result_.wipes_refused;
        trace("node " + std::to_string(node) + " refuses to take part: " + core.refusal());
      }
      uint64_t& snapshot_index = snapshot_index_[node];
      if (core.snapshot_index() > snapshot_index) ++result_.snapshots;
      snapshot_index = core.snapshot_index();
      observed_ = true;
    };
    config.apply = [this](uint64_t node, const std::vector<Entry>& entries) {
      for (const Entry& entry : entries) {
        add_violations(checker_.applied(node, entry));
        // What was committed at each index, for the acknowledged-write check once the logs
        // are compacted past it.
        if (committed_commands_.count(entry.index) != 0 || entry.payload().empty() ||
            entry.type != EntryType::log) {
          continue;
        }
        auto command = decode_command(entry.payload().data(), entry.payload().size(), "applied entry");
        if (command.is_ok()) committed_commands_[entry.index] = {command->client_id, command->sequence};
      }
      if (!entries.empty()) applied_[node] = entries.back().index;
    };
    config.started = [this](uint64_t node, const Result<NodeHandles>& result) { on_started(node, result); };
    return config;
  }

  // What a joining node is told (its --join): the configuration the serving leader uses, with
  // the spares the simulator has asked it to add and not seen in a configuration yet as
  // learners (a spare starts right after the leader is asked, before it appended the change).
  Result<ClusterView> cluster_view() const {
    const raft::Core* leader = leader_core();
    if (leader == nullptr) return Status::io_error("no serving leader to ask for the configuration");
    ClusterView view;
    view.answered_by = leader->id();
    view.configuration_index = leader->configuration_index();
    for (const Member& member : leader->configuration()) {
      view.configuration.push_back({member.id, member.address, member.client_address, member.learner, 0});
    }
    for (uint64_t id : ids_) {
      if (id <= options_.nodes || spares_.count(id) || retired_.count(id) || joined_.count(id)) continue;
      if (raft::find_member(leader->configuration(), id) == nullptr) {
        view.configuration.push_back({id, "sim:" + std::to_string(id), "", true, 0});
      }
    }
    return view;
  }

  void add_violations(const std::vector<std::string>& found) {
    // A broken state is reported once, when first seen: the checks run after every event
    // and would otherwise repeat it until the run ends.
    for (const std::string& violation : found) {
      if (!reported_violations_.insert(violation).second) continue;
      if (result_.violations.size() < violations_max) {
        result_.violations.push_back("at " + std::to_string(now_ns_ / ms) + " ms: " + violation);
      }
    }
  }

  void on_started(uint64_t node, const Result<NodeHandles>& result) {
    if (!result.is_ok() && result.status().code() == Code::io_error &&
        disk_.syncs_failing(this->node(node).data_directory())) {
      // fdatasync was made to fail while the node started: it stops (fail-stop), as it must,
      // and is restarted like any node that stopped itself. Not a refusal of its data.
      trace("node " + std::to_string(node) + " failed to start (" + result.status().to_string() + "): fail-stop");
      return;
    }
    if (!result.is_ok()) {
      add_violations({"node " + std::to_string(node) + " refused to start: " + result.status().to_string()});
      return;
    }
    checker_.restarted(node, result->recovered.metadata.current_term, result->applied_index);
    if (result->recovery.lmdb_rebuilt) ++result_.lmdb_rebuilds;
    applied_[node] = result->applied_index;
    if (controller_ != nullptr) controller_->node_started(node, now_ns_, result->recovery);
    trace("node " + std::to_string(node) + " up in term " + std::to_string(result->recovered.metadata.current_term) +
          " (voted for " + std::to_string(result->recovered.metadata.voted_for) + "): " + result->recovery_summary);
  }

  SimNode& node(uint64_t id) { return *nodes_[id - 1]; }
  const SimNode& node(uint64_t id) const { return *nodes_[id - 1]; }
  const raft::Core* serving_core(uint64_t id) const {
    auto found = cores_.find(id);
    return found != cores_.end() && node(id).serving() ? found->second : nullptr;
  }
  // Crashes keep a majority of the voters up, so the cluster keeps making progress.
  bool may_take_down() const {
    // Both the leader's latest configuration and its committed one: the latest may be lost
    // with its leader (seed 4818: a budget counted on an uncommitted removal of a repairing
    // voter let a second voter be wiped, and the committed configuration had no majority).
    return budget_left(current_voters_) && budget_left(committed_voters_);
  }
  bool budget_left(const std::vector<uint64_t>& voters) const {
    size_t down = 0;
    // A node repairing a damaged WAL votes for no one: as good as down for elections.
    // A wiped voter refuses soon after its restart (its probation): down from the wipe on.
    for (uint64_t id : voters) down += node(id).up() && id != media_damaged_ && wiped_.count(id) == 0 ? 0 : 1;
    return down < (voters.size() - 1) / 2;
  }
  // Whether removing `removed` from `voters` leaves the crash budget may_take_down keeps: fewer
  // than (n - 1) / 2 of the remaining voters down, repairing or refused. A fault injected before
  // the removal commits is budgeted on the larger configuration, so a removal must leave room.
  bool keeps_fault_budget(const std::vector<uint64_t>& voters, const std::vector<uint64_t>& removed) const {
    size_t remaining = 0, impaired = 0;
    for (uint64_t id : voters) {
      if (std::find(removed.begin(), removed.end(), id) != removed.end()) continue;
      ++remaining;
      if (!node(id).up() || id == media_damaged_ || refused_.count(id) != 0 || wiped_.count(id) != 0) ++impaired;
    }
    return impaired < (remaining - 1) / 2 || impaired == 0;
  }
  bool active(uint64_t id) const {
    return spares_.count(id) == 0 && retired_.count(id) == 0 && refused_.count(id) == 0;
  }
  std::vector<uint64_t> active_ids() const {
    std::vector<uint64_t> ids;
    for (uint64_t id : ids_) {
      if (active(id)) ids.push_back(id);
    }
    return ids;
  }
  uint64_t random_active() {
    std::vector<uint64_t> ids = active_ids();
    return ids[random_.between(0, ids.size() - 1)];
  }

  // Membership as the serving leader sees it: the voters crashes are budgeted on, members
  // seen joining or promoted, and members removed by a committed configuration, which are
  // then stopped for good.
  void observe_configuration(const raft::Core& core) {
    const std::vector<Member>& members = core.configuration();
    if (members.empty()) return;
    std::vector<uint64_t> voters;
    for (const Member& member : members) {
      if (!member.learner) voters.push_back(member.id);
      if (member.id > options_.nodes && joined_.insert(member.id).second) {
        ++result_.members_added;
        trace("node " + std::to_string(member.id) + " joined the configuration as a learner");
      }
      if (!member.learner && member.id > options_.nodes && promoted_.insert(member.id).second) {
        ++result_.members_promoted;
        trace("node " + std::to_string(member.id) + " promoted to voter");
      }
    }
    if (!voters.empty()) current_voters_ = voters;
    if (core.configuration_index() > core.commit_index()) {
      const std::vector<uint64_t> committed = raft::voter_ids(core.configuration_at(core.commit_index()));
      if (!committed.empty()) committed_voters_ = committed;
      return;
    }
    committed_voters_ = current_voters_;
    for (uint64_t id : ids_) {
      if (!active(id) || raft::find_member(members, id) != nullptr) continue;
      if (id > options_.nodes && joined_.count(id) == 0) continue;  // asked to join, not added yet
      // An operator stops a removed node some time after the removal, not at once: until then
      // it runs on, and may still hold (and vote in) an older configuration.
      if (to_retire_.count(id) == 0) to_retire_[id] = now_ns_ + random_.between(0, 1000) * ms;
    }
  }

  void retire_removed() {
    for (auto it = to_retire_.begin(); it != to_retire_.end();) {
      const uint64_t id = it->first;
      if (it->second > now_ns_) {
        ++it;
        continue;
      }
      it = to_retire_.erase(it);
      if (!active(id)) continue;
      if (node(id).up()) power_off(id, false, false);
      restart_at_[id - 1] = 0;
      retired_.insert(id);
      ++result_.members_removed;
      trace("node " + std::to_string(id) + " was removed from the configuration: stopped for good");
    }
  }

  void start_node(uint64_t id) {
    if (id == media_damaged_ && !misdirect_pending_) media_restarted_ = true;
    disk_.fail_syncs(node(id).data_directory(), false);
    faults_met_at_start_[id - 1] = disk_.faults_met(node(id).data_directory());
    node(id).start(now_ns_, random_.next());
    restart_at_[id - 1] = 0;
    // After a process crash, half the time the machine loses power soon after the restart: what
    // the restarted node read from the page cache and built on (its log, its vote) must have
    // been made durable by then, or the power cut takes it back after it was promised.
    if (process_killed_.erase(id) > 0 && random_.between(0, 1) == 0 && !crash_[id - 1].pending()) {
      // At that time, not at its first job: it has recovered and serves by then.
      crash_[id - 1] = PendingCrash{now_ns_ + random_.between(1, 30) * ms, faults(FaultMode::disk), false, true};
    }
  }

  // The power goes first: the disk keeps only what was synced (maybe a torn tail). Then the
  // actor system winds down; whatever its actors still do can neither reach the disk durably
  // (syncs fail, and a second cut drops what they wrote) nor leave the node.
  void power_off(uint64_t id, bool tear, bool garbage) {
    const std::string prefix = node(id).data_directory();
    process_killed_.erase(id);
    disk_.disarm_kill(prefix);
    // What the node holds durable (votes and acknowledgements rest on it), to check against
    // what the power cut leaves.
    uint64_t claimed = 0, claimed_term = 0;
    // An installed snapshot not durable yet claims nothing: the core counts it in
    // durable_index() at once, but holds every message resting on its log until the
    // snapshot is durable (seeds 1367 and 1736 were cut in that window).
    if (const raft::Core* core = serving_core(id); core != nullptr && core->log_base_durable()) {
      claimed = core->durable_index();
      claimed_term = core->log().term_at(claimed);
    }
    disk_.fail_syncs(prefix, true);
    disk_.crash(prefix, random_, tear, garbage);
    check_durable_claim(id, claimed, claimed_term);
    node(id).crash();
    disk_.crash(prefix, random_, false, false);
    disk_.fail_syncs(prefix, false);
    forget_node(id);
    ++result_.crashes;
  }

  // A process crash (SIGKILL, the OOM killer): the node's handles die and its actors wind down
  // (nothing they send leaves it; a WAL write they try fails), but its machine keeps the page
  // cache: every byte and name it wrote stays, unsynced, and its boot id does not change, so
  // the restart trusts the LMDB it wrote without sync (storage/lmdb_state.h). A later power cut
  // of the machine may still lose what was never synced, even what the restart read.
  void kill_process(uint64_t id) {
    disk_.disarm_kill(node(id).data_directory());
    disk_.kill_process(node(id).data_directory());
    node(id).crash();
    forget_node(id);
    process_killed_.insert(id);
    ++result_.crashes;
    ++result_.process_crashes;
  }

  // Right after a power cut of a node that reported its log durable through `claimed` (of
  // `claimed_term`): its WAL must still hold that entry, or a snapshot record past it. A media
  // fault on the node (a misdirected write, damage at rest) may take what was synced: not
  // checked there. (A restart after a process crash that took the page cache's unsynced tail
  // for durable, without syncing it, fails this when the power then goes.)
  void check_durable_claim(uint64_t id, uint64_t claimed, uint64_t claimed_term) {
    if (claimed == 0 || id == media_damaged_) return;  // a pending misdirected write is on media_damaged_ too
    WalOptions read_only;
    read_only.read_only = true;
    auto wal = Wal::open(disk_, node(id).data_directory() + "/wal", read_only);
    if (!wal.is_ok() || (*wal)->open_report().damaged) return;  // refused or salvaged at the restart, not here
    const uint64_t last = (*wal)->last_index();
    uint64_t term = 0;
    if (last >= claimed) {
      auto snapshot = (*wal)->snapshot();
      if (snapshot && snapshot->last_included_index >= claimed) return;  // covered by the snapshot
      auto entry = (*wal)->read(claimed);
      term = entry.is_ok() ? entry->term : 0;
      if (term == claimed_term || claimed_term == 0) return;
    }
    add_violations({"node " + std::to_string(id) + " reported its log durable through index " +
                    std::to_string(claimed) + " (term " + std::to_string(claimed_term) +
                    ") but a power cut left its WAL ending at " + std::to_string(last) +
                    (last >= claimed ? " with term " + std::to_string(term) + " there" : "")});
  }

  // The node is down: what the simulator knew of it goes, and the connections to it break.
  void forget_node(uint64_t id) {
    cores_.erase(id);
    states_.erase(id);
    applied_.erase(id);
    crash_[id - 1] = PendingCrash{};
    for (auto it = calls_at_node_.begin(); it != calls_at_node_.end();) {
      if (it->second != id) {
        ++it;
        continue;
      }
      clients_[client_slot_of_call(it->first) - 1]->on_connection_lost(now_ns_, it->first);
      it = calls_at_node_.erase(it);
    }
  }

  // A node that stopped by itself (fail-stop): killed at an fdatasync (kill_at_next_sync), its
  // page cache kept; else it lost power (`tear`: the last write torn) or its disk failed it.
  // A node may stop itself only for a fault the simulator injected into its disk: an error
  // one of its calls met since it started (a failed sync, a full disk, an unreadable sector),
  // or damage still on one of its files (placed in any earlier life: a flip at rest is found
  // when a later start reads it; a file removed, by a repair or a compaction, took its damage
  // with it). Any other stop is a bug of the node (an assertion, an
  // unexpected error, a file missing) and a violation: a sweep that let it pass would count
  // it as one more injected fault.
  void crash_failed(uint64_t id, bool tear) {
    const std::string prefix = node(id).data_directory();
    const bool killed = disk_.killed_at_sync(prefix);
    if (!killed && disk_.faults_met(prefix) == faults_met_at_start_[id - 1] && disk_.damage_present(prefix) == 0) {
      add_violations({"node " + std::to_string(id) + " stopped itself with no injected fault to explain it: " +
                      node(id).failure()});
    }
    if (options_.trace) {
      trace("node " + std::to_string(id) +
            (killed ? " was killed at an fdatasync" : " stopped itself (fail-stop): " + node(id).failure()));
    }
    if (killed) ++result_.kills_at_sync;
    crash_node(id, tear && !killed, tear && !killed, killed);
  }

  // A power cut (`tear`: the last write torn, `garbage`: its lost part random), or with
  // `process` a process crash (kill_process).
  void crash_node(uint64_t id, bool tear, bool garbage, bool process = false) {
    if (process) {
      kill_process(id);
    } else {
      power_off(id, tear, garbage);
    }
    // Down for a moment (a supervisor restarting the process) or for a while.
    uint64_t down_ns = random_.between(50, 600) * ms;
    if (bounce_[id]) down_ns = random_.between(10'000, 300'000);  // back before the election is over
    else if (random_.between(0, 2) == 0) down_ns = random_.between(1, 10) * ms;
    bounce_[id] = false;
    restart_at_[id - 1] = now_ns_ + down_ns;
    trace("node " + std::to_string(id) + (process ? " crashed (process killed, page cache kept)" : " crashed") +
          (tear && !process ? " (torn write)" : ""));
  }

  // Faults --------------------------------------------------------------------
  void schedule_next_fault() { next_fault_ns_ = now_ns_ + random_.between(150, 900) * ms; }

  void inject_fault();
  void inject_media_fault();
  void damage_wal_at_rest(uint64_t id, uint64_t applied, bool unreadable, uint64_t target);
  void track_repairs();
  void inject_network_fault();
  void inject_crash(bool disk);
  void inject_leader_transfer();
  void inject_member_change();
  void inject_wipe();
  void heal_everything();
  void maybe_crash_after_promise(uint64_t from, const std::vector<uint8_t>& bytes);

  // Steps ---------------------------------------------------------------------
  void collect(std::vector<Candidate>& candidates);
  void check_step_views();  // SimOptions::check_step_views
  std::optional<uint64_t> next_due_ns();
  void take(const Candidate& candidate);
  void deliver(Packet packet);
  void client_act(size_t index);
  void after_step();
  void full_check();  // the invariant checks that walk whole logs (after_step)

  void end_workload();
  void start_final_reads();
  bool clients_idle() const;
  void check_acked_writes();
  void check_increments();
  // With --trace: each node's Raft state and configuration when the run ends.
  void trace_node_states() {
    if (!options_.trace) return;
    for (uint64_t id : ids_) {
      const raft::Core* core = serving_core(id);
      if (core == nullptr) {
        trace("end: node " + std::to_string(id) + (spares_.count(id) ? " (spare)" : retired_.count(id) ? " (removed)" : " (down)"));
        continue;
      }
      std::string members;
      for (const Member& member : core->configuration()) {
        members += " " + std::to_string(member.id) + (member.learner ? "(learner)" : "");
      }
      trace("end: node " + std::to_string(id) + " " + raft::role_name(core->role()) + " term " +
            std::to_string(core->current_term()) + " leader " + std::to_string(core->leader_id()) + " commit " +
            std::to_string(core->commit_index()) + " last " + std::to_string(core->log().last_index()) +
            " configuration at " + std::to_string(core->configuration_index()) + ":" + members);
    }
  }

  SimOptions options_;
  std::string work_directory_;  // this run's own (make_work_directory)
  SimController* controller_;  // none: the random faults of options_.faults
  raft::SplitMix64 random_;
  SimDisk disk_;
  SimNetwork network_;
  std::vector<uint64_t> voters_;  // the first configuration: nodes 1..options_.nodes
  std::vector<uint64_t> ids_;     // every node: voters_ and the spares
  std::set<uint64_t> spares_;     // not started yet: added by a membership change
  std::set<uint64_t> retired_;    // removed from the configuration and stopped for good
  std::map<uint64_t, uint64_t> to_retire_;  // removed by a committed configuration: when to stop it
  // Wiped voters that refused to take part (the wrong procedure): stopped, to be removed.
  std::set<uint64_t> refused_;
  std::set<std::pair<uint64_t, uint64_t>> leaders_outside_;  // (node, term): led outside its configuration
  std::set<uint64_t> joined_, promoted_;  // spares seen in a configuration / as voters
  std::vector<uint64_t> current_voters_;  // the serving leader's latest configuration's voters
  std::vector<uint64_t> committed_voters_;  // and its committed configuration's
  std::vector<std::unique_ptr<SimNode>> nodes_;
  std::vector<std::unique_ptr<SimClient>> clients_;
  // What the step selection reads of each node and client, read again only when its change
  // count moved (SimNode::changes, SimClient::changes). Every step used to ask every node for
  // its jobs and timers and every client for its next action; most steps change one node and
  // one client. A node's jobs are read before its timers, as before: the first look at a WAL
  // writer with work draws its disk latency, and that look comes at the same step.
  struct NodeView {
    uint64_t changes = UINT64_MAX;
    bool has_job = false;
    bool up = false;
    bool failed = false;
    std::optional<uint64_t> timer_ns;
  };
  struct ClientView {
    uint64_t changes = UINT64_MAX;
    std::optional<uint64_t> action_ns;
  };
  std::vector<NodeView> node_views_;
  std::vector<ClientView> client_views_;
  const NodeView& node_view(size_t i) {
    NodeView& view = node_views_[i];
    const SimNode& n = *nodes_[i];
    if (view.changes != n.changes()) {
      view.changes = n.changes();
      view.has_job = n.has_job();
      view.timer_ns = n.next_timer_ns();
      view.up = n.up();
      view.failed = n.failed();
    }
    return view;
  }
  const ClientView& client_view(size_t i) {
    ClientView& view = client_views_[i];
    const SimClient& client = *clients_[i];
    if (view.changes != client.changes()) {
      view.changes = client.changes();
      view.action_ns = client.next_action_ns();
    }
    return view;
  }
  History history_;
  raft::InvariantChecker checker_;
  std::map<uint64_t, raft::NodeState> states_;
  std::map<uint64_t, const raft::Core*> cores_;
  std::map<uint64_t, uint64_t> applied_;  // per node up: the last index handed to its state machine
  // Under a controller: client calls delivered to a node and not answered yet (call -> node),
  // so that a node going down breaks their connections as a real process's exit does.
  std::map<uint64_t, uint64_t> calls_at_node_;
  std::set<uint64_t> paused_;                       // nodes paused by a controller
  std::map<uint64_t, std::vector<Packet>> held_;    // delivered to a paused node, in order
  bool observed_ = false;
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> committed_commands_;  // index -> (client id, sequence)
  std::map<uint64_t, uint64_t> snapshot_index_;  // by node: its core's snapshot index last seen
  uint64_t steps_since_full_check_ = 0;
  uint64_t logged_entries_ = 0;  // the live logs' total length at the last full check
  // What the last full check read (full_check): the nodes' states, without log terms, and
  // their logs' versions.
  std::vector<raft::NodeState> checked_states_;
  std::vector<raft::NodeState> observed_states_;  // after_step's copy of states_
  std::vector<raft::NodeState> full_states_;      // full_check's reading, kept for its storage
  std::vector<uint64_t> full_log_versions_;
  std::vector<uint64_t> checked_log_versions_;
  TraceHash hash_;
  SimResult result_;
  std::set<std::string> reported_violations_;
  std::vector<std::string> failed_assertions_;  // KV_ASSERTs that failed during the run  // each violation once (add_violations)
  uint64_t now_ns_ = 0;
  uint64_t next_fault_ns_ = UINT64_MAX;
  uint64_t heal_at_ns_ = UINT64_MAX;
  std::vector<uint64_t> restart_at_;  // per node; 0: not scheduled
  std::vector<uint64_t> faults_met_at_start_;  // per node: disk_.faults_met at its last start (crash_failed)
  // A crash scheduled for a node, and what it does.
  struct PendingCrash {
    uint64_t at_ns = 0;    // its deadline; 0: none pending
    bool tear = false;     // a power cut that tears the last write (and fills its lost part with garbage)
    bool process = false;  // a process crash (kill_process) instead of a power cut
    bool on_time = false;  // waits for at_ns; otherwise it comes at the node's next job, at_ns at the latest
    bool pending() const { return at_ns != 0; }
    // `has_job` is asked only when it matters (a node's first look at its writer draws its latency).
    template <class HasJob>
    bool due(uint64_t now_ns, HasJob has_job) const {
      return pending() && ((!on_time && has_job()) || at_ns <= now_ns);
    }
  };
  std::vector<PendingCrash> crash_;  // per node (index id - 1)
  std::set<uint64_t> process_killed_;  // nodes down after a process crash, until restarted
  bool faults_active_ = true;
  uint64_t crash_now_ = 0;  // a node to crash before anything else happens
  std::map<uint64_t, bool> bounce_;  // per node: restart within milliseconds
  // Media faults: the node whose WAL was damaged (0: none), until it started again and is out
  // of repair: one node at a time, a minority. A misdirected write pending on it (it crashes
  // soon after the write lands), and the disk's count of misdirected writes seen so far.
  uint64_t media_damaged_ = 0;
  bool media_restarted_ = false;
  bool misdirect_pending_ = false;
  std::set<uint64_t> wiped_;  // voters whose data directory was wiped (inject_wipe)
  uint64_t misdirected_seen_ = 0;
  std::map<uint64_t, uint64_t> repairing_from_;  // repairing node -> its last index when first seen so
  // The last leadership transfer asked: its target and the leader's term then.
  std::optional<std::pair<uint64_t, uint64_t>> transfer_asked_;
  std::map<uint64_t, uint64_t> bytes_delivered_;  // per node: Raft message bytes delivered to it
};

void Simulator::inject_fault() {
  std::vector<int> kinds;
  if (faults(FaultMode::network)) kinds.push_back(0);
  if (faults(FaultMode::crash)) kinds.push_back(1);
  if (faults(FaultMode::disk)) kinds.push_back(2);
  if (options_.faults == FaultMode::all) kinds.push_back(3);
  if (options_.faults == FaultMode::all && options_.spare_nodes > 0) kinds.push_back(4);
  if (options_.faults == FaultMode::all && options_.spare_nodes > 0 && result_.wipes == 0) kinds.push_back(5);
  if (!kinds.empty()) {
    switch (kinds[random_.between(0, kinds.size() - 1)]) {
      case 0: inject_network_fault(); break;
      case 1: inject_crash(false); break;
      case 3: inject_leader_transfer(); break;
      case 4: inject_member_change(); break;
      case 5: inject_wipe(); break;
      default: inject_crash(true); break;
    }
  }
  // Media faults come on top of the others (one time in four), not in place of them.
  if (faults(FaultMode::disk) && random_.between(0, 3) == 0) inject_media_fault();
  schedule_next_fault();
}

// Media faults (docs/PERSISTENCE.md, "Corruption repaired from peers"). One node at a time
// (a minority): its WAL loses a record it may have acknowledged, which Raft's fault model does
// not allow; protocol-aware recovery makes the node notice, discard the log from there and
// refetch it before it votes again. The record hit is one of the node's newest entries after
// its WAL's last snapshot record (committed ones included: where a careless repair loses
// committed data), or, targeted, the first entry a lagging voter lacks.
void Simulator::inject_media_fault() {
  if (media_damaged_ != 0 || !may_take_down()) return;
  uint64_t id = random_active();
  // Half of the time, the moment it hurts most: a follower that holds entries another
  // follower lacks loses them, and the leader is cut off, so that the follower lacking them
  // may campaign while the damaged one is repairing (only its vote could elect it).
  uint64_t behind = 0;
  const raft::Core* leader = leader_core();
  if (leader != nullptr && random_.between(0, 1) == 0) {
    for (uint64_t ahead : active_ids()) {
      const raft::Core* a = serving_core(ahead);
      if (a == nullptr || ahead == leader->id() || crash_[ahead - 1].pending()) continue;
      for (uint64_t lagging : active_ids()) {
        const raft::Core* l = serving_core(lagging);
        if (l == nullptr || lagging == ahead || lagging == leader->id() || !l->is_voter()) continue;
        if (a->log().last_index() > l->log().last_index() + 1) {
          id = ahead;
          behind = l->log().last_index();
        }
      }
    }
  }
  // Voters only: a learner being caught up for its promotion is left alone.
  if (!node(id).up() || crash_[id - 1].pending() || !serving_core(id) || !serving_core(id)->is_voter()) return;
  const int kind = behind != 0 ? static_cast<int>(random_.between(0, 1)) : static_cast<int>(random_.between(0, 2));
  media_damaged_ = id;
  media_restarted_ = false;
  if (kind == 2) {
    // The next WAL write lands a few sectors further on; the node crashes soon after it lands.
    const uint64_t shift = 512 * random_.between(1, 16);
    disk_.misdirect_next_write(node(id).data_directory() + "/wal", shift);
    misdirect_pending_ = true;
    trace("node " + std::to_string(id) + ": its next WAL write lands " + std::to_string(shift) + " bytes off");
    return;
  }
  power_off(id, false, false);
  // Entry behind + 1: the damaged node's log then ends where the lagging one's does, so its
  // vote (were it given) could elect the lagging node without that entry.
  damage_wal_at_rest(id, 0, kind == 1, behind != 0 ? behind + 1 : 0);
  restart_at_[id - 1] = now_ns_ + random_.between(1, 300) * ms;
  if (behind != 0 && leader != nullptr && !network_.partitioned()) {
    const uint64_t isolated = leader->id();
    for (uint64_t other : ids_) {
      if (other == isolated) continue;
      network_.cut(isolated, other);
      network_.cut(other, isolated);
    }
    ++result_.partitions;
    heal_at_ns_ = now_ns_ + random_.between(200, 1500) * ms;
    trace("node " + std::to_string(isolated) + " isolated (the leader, while node " + std::to_string(id) +
          " repairs what node(s) behind at " + std::to_string(behind) + " lack)");
  }
}

// Flips a bit in (or makes unreadable) one WAL record of the powered-off node `id` holding an
// entry past `applied`: entry `target` when it can, else one of the newest.
void Simulator::damage_wal_at_rest(uint64_t id, uint64_t applied, bool unreadable, uint64_t target) {
  const std::string wal = node(id).data_directory() + "/wal";
  std::vector<WalRecordInfo> all;
  WalOptions read_only;
  read_only.read_only = true;
  const bool read = Wal::open(disk_, wal, read_only, [&](const WalRecordInfo& record) { all.push_back(record); }).is_ok();
  // Any entry or metadata record may be hit, the newest too: every synced batch ends with a seal
  // (storage/FORMAT.md, "Seals"), so a damaged record always has a valid one after it and is
  // never mistaken for a torn write; a damaged metadata record is restated by its batch's seal.
  // Only records after the WAL's last snapshot record (discarding that record would leave the
  // WAL naming an older base snapshot, whose file is gone: refused, "Not repaired"), and no
  // metadata record carried into a segment's first sector (with the header: refused). The
  // node's LMDB is rebuilt at its restart (the power cut changed the boot id), its state
  // machine from that snapshot.
  size_t after_snapshot = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i].type == EntryType::snapshot) after_snapshot = i + 1;
  }
  std::vector<WalRecordInfo> records;
  for (size_t i = after_snapshot; i < all.size(); ++i) {
    const WalRecordInfo& record = all[i];
    const bool entry = record.type == EntryType::log || record.type == EntryType::configuration;
    if ((entry && record.index > applied) || (record.type == EntryType::metadata && record.offset >= 512)) {
      records.push_back(record);
    }
  }
  if (!read || records.empty()) {
    trace("node " + std::to_string(id) + " crashed (no WAL record to damage after its last snapshot record)");
    return;
  }
  // The last few records: the newest entries, acknowledged but perhaps not yet applied anywhere;
  // or the one asked for.
  size_t pick = records.size() - 1 - random_.between(0, std::min<uint64_t>(3, records.size() - 1));
  for (size_t i = 0; i < records.size(); ++i) {
    if (records[i].index == target && records[i].type != EntryType::metadata) pick = i;
  }
  const WalRecordInfo& record = records[pick];
  const std::string path = wal + "/" + record.segment;
  const uint64_t bytes = wal_format::record_bytes(record.payload_bytes);
  // The first sector holds the segment header and the metadata carried over: unreadable, the
  // node is refused (docs/PERSISTENCE.md, "Not repaired"). A record there gets a bit flip.
  const uint64_t first_sector_end = 512;
  if (unreadable && record.offset + bytes > first_sector_end) {
    const uint64_t from = std::max(record.offset, first_sector_end);
    const uint64_t sector = (from + random_.between(0, record.offset + bytes - 1 - from)) / 512 * 512;
    if (disk_.add_read_error(path, sector, sector + 512).is_ok()) ++result_.latent_sector_errors;
  } else {
    const uint64_t offset = record.offset + random_.between(0, bytes - 1);
    if (disk_.flip_at_rest(path, offset, static_cast<uint8_t>(1u << random_.between(0, 7))).is_ok()) {
      ++result_.bit_flips;
    }
  }
  trace("node " + std::to_string(id) + " crashed; " + (unreadable ? "a sector of" : "a bit flipped in") +
        " its WAL record of " +
        (record.type == EntryType::metadata ? "metadata (log at " : "entry ") + std::to_string(record.index) +
        (record.type == EntryType::metadata ? ")" : "") + " (" + record.segment + " offset " +
        std::to_string(record.offset) + ")");
}

// Counts repairs as the cores show them; ends a media fault once its node is out of repair.
void Simulator::track_repairs() {
  if (misdirect_pending_ && disk_.misdirected_writes() > misdirected_seen_) {
    misdirected_seen_ = disk_.misdirected_writes();
    misdirect_pending_ = false;
    ++result_.misdirected_writes;
    if (media_damaged_ != 0 && node(media_damaged_).up() && !crash_[media_damaged_ - 1].pending()) {
      crash_[media_damaged_ - 1] = PendingCrash{now_ns_ + random_.between(1, 20) * ms};  // found at its next start
    }
  }
  for (const auto& [id, core] : cores_) {
    if (!node(id).serving()) continue;
    auto found = repairing_from_.find(id);
    if (core->in_repair() && found == repairing_from_.end()) {
      repairing_from_[id] = core->log().last_index();
      ++result_.repairs;
    } else if (!core->in_repair() && found != repairing_from_.end()) {
      if (core->log().last_index() > found->second) result_.entries_refetched += core->log().last_index() - found->second;
      ++result_.repairs_completed;
      repairing_from_.erase(found);
    }
  }
  // Repaired durably: a node whose repair ended only in memory restarts repairing after a
  // crash, and abstains again (seed 1599: a second media fault was let in meanwhile, and two
  // of four voters abstained at once).
  if (media_damaged_ != 0 && !misdirect_pending_ && media_restarted_ && node(media_damaged_).up() &&
      serving_core(media_damaged_) != nullptr && serving_core(media_damaged_)->repair_ended_durably()) {
    media_damaged_ = 0;
  }
}

void Simulator::inject_network_fault() {
  if (network_.partitioned()) {
    network_.heal();
    trace("network healed");
    return;
  }
  ++result_.partitions;
  const uint64_t shape = random_.between(0, 2);
  if (shape == 0) {  // two sides
    std::vector<bool> side(ids_.size() + 1);
    for (uint64_t id : ids_) side[id] = random_.between(0, 1) == 1;
    for (uint64_t a : ids_) {
      for (uint64_t b : ids_) {
        if (side[a] != side[b]) network_.cut(a, b);
      }
    }
    trace("network partitioned in two");
  } else if (shape == 1) {  // one node isolated
    uint64_t isolated = random_active();
    for (uint64_t other : ids_) {
      if (other != isolated) {
        network_.cut(isolated, other);
        network_.cut(other, isolated);
      }
    }
    trace("node " + std::to_string(isolated) + " isolated");
  } else {  // one-way: a node hears nobody (or nobody hears it)
    uint64_t node = random_active();
    bool deaf = random_.between(0, 1) == 1;
    for (uint64_t other : ids_) {
      if (other != node) deaf ? network_.cut(other, node) : network_.cut(node, other);
    }
    trace("node " + std::to_string(node) + (deaf ? " cannot hear" : " cannot speak"));
  }
  heal_at_ns_ = now_ns_ + random_.between(200, 1500) * ms;
}

// §3.10 under the other faults: the serving leader is asked to hand over to a random node.
void Simulator::inject_leader_transfer() {
  const uint64_t leader_id = leader();
  if (leader_id == 0) return;
  const uint64_t target = random_active();
  if (!node(leader_id).request_leader_transfer(target)) return;
  ++result_.leader_transfers;
  transfer_asked_ = std::make_pair(target, leader_core()->current_term());
  trace("leader " + std::to_string(leader_id) + " asked to hand leadership to node " + std::to_string(target));
}

// Thesis ch. 4 under the other faults: the serving leader is asked to add a spare as a
// learner (which then starts with an empty data directory), to promote a learner, or to
// remove a member (itself included: it hands leadership over first). Refusals (a change
// still uncommitted, a learner far behind) are part of the test. Fewer than three voters
// are never asked for, so a crash budget remains.
void Simulator::inject_member_change() {
  const raft::Core* leader = leader_core();
  if (leader == nullptr) return;
  const std::vector<Member>& members = leader->configuration();
  std::vector<uint64_t> learners, voters;
  for (const Member& member : members) (member.learner ? learners : voters).push_back(member.id);
  // A learner is promoted half the time there is one (joining is what it is for); otherwise a
  // spare joins or a member leaves.
  const uint64_t choice = !learners.empty() && random_.between(0, 1) == 0 ? 1 : random_.between(0, 1) * 2;
  ConfChangeKind kind;
  uint64_t member = 0;
  // The correct procedure after the wrong one: a voter that refused is removed first (a spare
  // joins in its place later, as any other).
  uint64_t refused_member = 0;
  for (uint64_t id : refused_) {
    if (raft::find_member(members, id) != nullptr && id != leader->id()) refused_member = id;
  }
  if (refused_member != 0 && voters.size() > 1) {
    kind = ConfChangeKind::remove;
    member = refused_member;
  } else if (choice == 0 && !spares_.empty()) {
    kind = ConfChangeKind::add_learner;
    member = *spares_.begin();
  } else if (choice == 1) {
    kind = ConfChangeKind::promote;
    member = learners[random_.between(0, learners.size() - 1)];
  } else if (voters.size() > 3 || !learners.empty()) {
    kind = ConfChangeKind::remove;
    std::vector<uint64_t> removable = voters.size() > 3 ? voters : learners;
    member = removable[random_.between(0, removable.size() - 1)];
    if (!keeps_fault_budget(voters, {member})) {
      // Not a healthy voter while others are impaired: a voter that is down goes instead (what
      // an operator removes), or nothing does.
      member = 0;
      for (uint64_t id : removable) {
        if (!node(id).up() && id != media_damaged_ && id != leader->id() && keeps_fault_budget(voters, {id})) {
          member = id;
        }
      }
      if (member == 0) return;
    }
  } else {
    return;
  }
  if (!node(leader->id()).request_member_change(kind, member)) return;
  ++result_.member_changes;
  trace("leader " + std::to_string(leader->id()) + " asked to " + conf_change_kind_name(kind) + " node " +
        std::to_string(member));
  if (kind == ConfChangeKind::add_learner) {
    spares_.erase(member);
    start_node(member);  // an empty data directory, no configuration: it learns it from the leader
  }
  // Half the time a removal comes with a second one at once (two operators, or a script
  // that does not wait): the leader must refuse it while the first is uncommitted, or the
  // old and the new majorities may not overlap (PlantedBug::conf_changes_at_once).
  if (kind == ConfChangeKind::remove && voters.size() > 4 && random_.between(0, 1) == 0) {
    std::vector<uint64_t> others;
    for (uint64_t id : voters) {
      if (id != member && id != leader->id()) others.push_back(id);
    }
    const uint64_t second = others[random_.between(0, others.size() - 1)];
    if (keeps_fault_budget(voters, {member, second}) &&
        node(leader->id()).request_member_change(ConfChangeKind::remove, second)) {
      ++result_.member_changes;
      trace("leader " + std::to_string(leader->id()) + " asked at once to remove node " + std::to_string(second));
    }
  }
}

// The wrong procedure (docs/MEMBERSHIP.md, "A voter that lost its data"): a voter of the
// first configuration loses its data directory (WAL and LMDB) and is started again under its
// id with --bootstrap. Its probation must make it refuse when any peer counted it before (it
// then stops, and is removed by a later membership change); if no peer ever did, it may take
// part. Either way no invariant may break. Once per run.
void Simulator::inject_wipe() {
  if (!may_take_down()) return;
  std::vector<uint64_t> candidates;
  for (uint64_t id : current_voters_) {
    // Not the node a media fault is pending on: a misdirected write meant for its old disk
    // would land on the new one's first records, before any metadata (refused, "Not repaired").
    if (id <= options_.nodes && active(id) && node(id).up() && !crash_[id - 1].pending() && id != media_damaged_) {
      candidates.push_back(id);
    }
  }
  if (candidates.empty()) return;
  const uint64_t id = candidates[random_.between(0, candidates.size() - 1)];
  power_off(id, false, false);
  disk_.wipe(node(id).data_directory());
  std::error_code ignored;
  std::filesystem::remove_all(work_directory_ + "/n" + std::to_string(id) + "-lmdb", ignored);
  restart_at_[id - 1] = now_ns_ + random_.between(50, 600) * ms;
  ++result_.wipes;
  wiped_.insert(id);
  trace("node " + std::to_string(id) + "'s data directory is wiped; it restarts with --bootstrap under its id");
}

void Simulator::inject_crash(bool disk) {
  // A minority at most is down at once, so the cluster keeps making progress.
  if (!may_take_down()) return;
  uint64_t id = random_active();
  if (!node(id).up() || crash_[id - 1].pending()) return;
  if (disk && random_.between(0, 2) == 0) {
    // fdatasync starts failing: the node must stop by itself (fail-stop); it is restarted.
    disk_.fail_syncs(node(id).data_directory(), true);
    ++result_.sync_failures;
    trace("node " + std::to_string(id) + ": fdatasync fails from now on");
    return;
  }
  // Crash at a moment the node is busy (jobs pending), within 50 ms: the worst moments
  // are between a decision and its fdatasync.
  // A third of these crashes kill the process only: the machine keeps its page cache and its
  // boot, and the restart takes the path a supervisor's restart takes (LMDB trusted, the
  // unsynced WAL tail read back). Half of those come at the node's next fdatasync, after its
  // write landed in the page cache and before it was synced. The rest cut the power (tearing
  // the last write with `disk`).
  const bool process = random_.between(0, 2) == 0;
  if (process && random_.between(0, 1) == 0) {
    disk_.kill_at_next_sync(node(id).data_directory());
    trace("node " + std::to_string(id) + " will be killed at its next fdatasync");
    return;
  }
  crash_[id - 1] = PendingCrash{now_ns_ + 50 * ms, disk, process};
}

// The moments a crash hurts most: right after a node promised something (a vote, an
// append success). Raft is safe only if the promise was durable before it left, so the
// simulator sometimes crashes the sender before it runs another job.
void Simulator::maybe_crash_after_promise(uint64_t from, const std::vector<uint8_t>& bytes) {
  auto message = decode_raft_message(bytes.data(), bytes.size());
  if (!message.is_ok()) return;
  const bool vote = message->type == raft::MessageType::request_vote_response && message->vote_granted;
  const bool append = message->type == raft::MessageType::append_entries_response && message->success;
  const bool install = append && message->snapshot_index > 0;  // rare: crash after most of them
  if (!(vote && chance(random_, 0.9)) && !(install && chance(random_, 0.5)) && !(append && chance(random_, 0.003))) {
    return;
  }
  if (!may_take_down() || !active(from) || crash_[from - 1].pending()) return;
  // A power cut: the promise must survive one, so nothing unsynced may be kept.
  crash_[from - 1] = PendingCrash{now_ns_, faults(FaultMode::disk)};
  crash_now_ = from;
  bounce_[from] = vote;  // and back at once, while the election it voted in is still on
  // Sometimes the node that received the promise goes down soon after acting on it (a new
  // leader, a commit): if the promise was not durable, what it built on is now gone.
  const uint64_t to = message->to;
  if (to >= 1 && to <= ids_.size() && active(to) && !crash_[to - 1].pending() && chance(random_, 0.5)) {
    crash_[to - 1] = PendingCrash{now_ns_ + random_.between(2, 20) * ms, faults(FaultMode::disk)};
  }
  const char* promise = vote ? "granting a vote" : install ? "an installed snapshot's success" : "an append success";
  trace("node " + std::to_string(from) + " crashes right after " + promise + " to node " +
        std::to_string(message->to) + " in term " + std::to_string(message->term));
}

void Simulator::heal_everything() {
  faults_active_ = false;
  network_.heal();
  network_.clear_delays();
  network_.set_faults(NetworkFaults{});
  while (!paused_.empty()) pause(*paused_.begin(), false);
  heal_at_ns_ = UINT64_MAX;
  next_fault_ns_ = UINT64_MAX;
  for (uint64_t id : active_ids()) {
    crash_[id - 1] = PendingCrash{};
    disk_.fail_syncs(node(id).data_directory(), false);
    disk_.set_full(node(id).data_directory(), false);
    if (node(id).up() && node(id).failed()) crash_failed(id, false);
    if (!node(id).up()) restart_at_[id - 1] = now_ns_;
  }
  trace("faults stop: network healed, every node restarting");
}

void Simulator::collect(std::vector<Candidate>& candidates) {
  candidates.clear();
  if (crash_now_ != 0) {
    candidates.push_back({step_fault, 0});
    return;
  }
  const size_t nodes = nodes_.size();
  for (size_t i = 0; i < nodes; ++i) {
    if (node_view(i).has_job && paused_.count(i + 1) == 0) candidates.push_back({step_job, i});
  }
  for (size_t i = 0; i < nodes; ++i) {
    const NodeView& view = node_views_[i];
    if (view.timer_ns && *view.timer_ns <= now_ns_ && paused_.count(i + 1) == 0) candidates.push_back({step_timer, i});
  }
  auto packet = network_.next_due_ns();
  if (packet && *packet <= now_ns_) candidates.push_back({step_packet, 0});
  for (size_t i = 0; i < clients_.size(); ++i) {
    const ClientView& view = client_view(i);
    if (view.action_ns && *view.action_ns <= now_ns_) candidates.push_back({step_client, i});
  }
  bool fault_due = next_fault_ns_ <= now_ns_ || heal_at_ns_ <= now_ns_;
  for (const auto& [id, at] : to_retire_) fault_due = fault_due || at <= now_ns_;
  for (size_t i = 0; i < nodes && !fault_due; ++i) {
    const NodeView& view = node_views_[i];
    if ((restart_at_[i] != 0 && restart_at_[i] <= now_ns_) || crash_[i].due(now_ns_, [&] { return view.has_job; }) ||
        (view.up && view.failed)) {
      fault_due = true;
    }
  }
  if (fault_due) candidates.push_back({step_fault, 0});
  if (options_.check_step_views) check_step_views();
}

// After collect() read every view (a node's jobs before its timers, as it always does): each
// must equal a fresh read. Fresh reads of a current view draw nothing (SimNode::has_job draws
// a writer's latency only at its first look), so they leave the run as it was.
void Simulator::check_step_views() {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const NodeView& view = node_views_[i];
    const SimNode& n = *nodes_[i];
    if (view.has_job != n.has_job() || view.timer_ns != n.next_timer_ns() || view.up != n.up() ||
        view.failed != n.failed()) {
      add_violations({"node " + std::to_string(n.id()) +
                      ": the step selection's view is stale (the node changed without moving SimNode::changes)"});
    }
  }
  for (size_t i = 0; i < clients_.size(); ++i) {
    if (client_views_[i].action_ns != clients_[i]->next_action_ns()) {
      add_violations({"client " + std::to_string(i + 1) +
                      ": the step selection's view is stale (the client changed without moving SimClient::changes)"});
    }
  }
}

// Called right after collect() found nothing to do, so every view is current.
std::optional<uint64_t> Simulator::next_due_ns() {
  std::optional<uint64_t> next;
  auto consider = [&](std::optional<uint64_t> due) {
    if (due && (!next || *due < *next)) next = due;
  };
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (paused_.count(i + 1) == 0) consider(node_views_[i].timer_ns);
  }
  consider(network_.next_due_ns());
  for (const ClientView& view : client_views_) consider(view.action_ns);
  if (next_fault_ns_ != UINT64_MAX) consider(next_fault_ns_);
  if (controller_ != nullptr && faults_active_) {
    auto due = controller_->next_due_ns();
    if (due && *due > now_ns_) consider(due);  // a due in the past would stop time from moving
  }
  if (heal_at_ns_ != UINT64_MAX) consider(heal_at_ns_);
  for (const auto& [id, at] : to_retire_) consider(at);
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (restart_at_[i] != 0) consider(restart_at_[i]);
    if (crash_[i].pending()) consider(crash_[i].at_ns);
  }
  return next;
}

void Simulator::take(const Candidate& candidate) {
  hash_.add(candidate.kind);
  hash_.add(candidate.index);
  hash_.add(now_ns_);
  switch (candidate.kind) {
    case step_job: nodes_[candidate.index]->run_job(random_.next()); break;
    case step_timer: nodes_[candidate.index]->fire_timer(); break;
    case step_packet: {
      auto packet = network_.pop_due();
      if (packet) deliver(std::move(*packet));
      break;
    }
    case step_client: client_act(candidate.index); break;
    case step_fault: {
      retire_removed();
      for (uint64_t id : refused_) {
        // Down until removed: a restart or crash scheduled before it refused (it may have
        // crashed since) is dropped too, or the step stays due and the run never ends (seed
        // 24564: a refused node crashed, and its restart came due).
        if (!node(id).up()) {
          restart_at_[id - 1] = 0;
          crash_[id - 1] = PendingCrash{};
          continue;
        }
        power_off(id, false, false);
        restart_at_[id - 1] = 0;
        crash_[id - 1] = PendingCrash{};
        trace("node " + std::to_string(id) + " stopped itself after refusing (its data was wiped): down until removed");
      }
      for (uint64_t id : active_ids()) {
        SimNode& n = node(id);
        if (!n.up()) crash_[id - 1] = PendingCrash{};  // already down: nothing left to crash
        if (n.up() && n.failed()) {
          crash_failed(id, faults(FaultMode::disk));
        } else if (crash_[id - 1].due(now_ns_, [&] { return n.has_job(); }) && n.up()) {
          const PendingCrash crash = crash_[id - 1];
          crash_node(id, crash.tear, crash.tear, crash.process);
        } else if (restart_at_[id - 1] != 0 && restart_at_[id - 1] <= now_ns_ && !n.up()) {
          ++result_.restarts;
          start_node(id);
        }
      }
      crash_now_ = 0;
      if (heal_at_ns_ <= now_ns_) {
        network_.heal();
        heal_at_ns_ = UINT64_MAX;
        trace("network healed");
      }
      if (next_fault_ns_ <= now_ns_) inject_fault();
      break;
    }
  }
}

void Simulator::pause(uint64_t id, bool paused) {
  if (!paused) {
    if (paused_.erase(id) == 0) return;
    trace("node " + std::to_string(id) + " resumed");
    std::vector<Packet> held = std::move(held_[id]);
    held_.erase(id);
    for (Packet& packet : held) deliver(std::move(packet));
    return;
  }
  if (paused_.insert(id).second) trace("node " + std::to_string(id) + " paused");
}

void Simulator::deliver(Packet packet) {
  if (packet.kind != Packet::client_response && paused_.count(packet.to) != 0) {
    held_[packet.to].push_back(std::move(packet));  // in its socket buffer until it resumes
    return;
  }
  hash_.add(packet.bytes);
  switch (packet.kind) {
    case Packet::raft:
      bytes_delivered_[packet.to] += packet.bytes.size();
      node(packet.to).deliver_raft(std::move(packet.bytes));
      break;
    case Packet::client_request: {
      if (!node(packet.to).deliver_client(packet.call, std::move(packet.bytes))) {
        // Connection refused: the client learns at once that nothing was done.
        clients_[client_slot_of_call(packet.call) - 1]->on_refused(now_ns_, packet.call);
      } else if (controller_ != nullptr) {
        calls_at_node_[packet.call] = packet.to;
      }
      break;
    }
    case Packet::client_response: {
      auto response = decode_client_response(packet.bytes.data(), packet.bytes.size());
      if (!response.is_ok()) {
        add_violations({"malformed client response: " + response.status().to_string()});
        break;
      }
      hash_.add(static_cast<uint64_t>(response->status));
      calls_at_node_.erase(packet.call);
      clients_[client_slot_of_call(packet.call) - 1]->on_response(now_ns_, packet.call, *response);
      break;
    }
  }
}

void Simulator::client_act(size_t index) {
  auto request = clients_[index]->act(now_ns_);
  if (!request) return;
  network_.send(now_ns_, Packet{Packet::client_request, clients_[index]->endpoint(), request->node, request->call,
                                std::move(request->bytes)});
}

// Election safety and monotonic terms and commit indexes are checked after every event. The
// checks that walk whole logs (log matching, leader completeness, committed entries) cost
// O(log length): they run after every event while the logs are short, and then after every
// (total log length / 64) events, so a long run stays linear; and once more at the end.
void Simulator::after_step() {
  ++steps_since_full_check_;
  track_repairs();
  if (!observed_) return;
  observed_ = false;
  // Copied into storage kept from step to step: the states' vectors are reused, not reallocated.
  observed_states_.resize(states_.size());
  size_t i = 0;
  for (const auto& [id, state] : states_) observed_states_[i++] = state;
  add_violations(checker_.observe_roles(observed_states_));
  if (steps_since_full_check_ >= std::max<uint64_t>(1, logged_entries_ / 64)) full_check();
}

// Skipped when every live node's state and log (by Log::version) is what the last full check
// read: the whole-log checks are functions of those and of what they recorded themselves, so
// they would find nothing new (most due checks in a run: a step that changes no log or index).
void Simulator::full_check() {
  steps_since_full_check_ = 0;
  // Read into storage kept between checks (read_roles reuses the states' vectors).
  std::vector<raft::NodeState>& live = full_states_;
  std::vector<uint64_t>& versions = full_log_versions_;
  versions.clear();
  logged_entries_ = 0;
  size_t count = 0;
  for (const auto& [id, core] : cores_) {
    if (!node(id).serving()) continue;  // its core may be gone
    if (count == live.size()) live.emplace_back();
    live[count++].read_roles(*core);
    versions.push_back(core->log().version());
    logged_entries_ += core->log().last_index() - core->log().start_index();
  }
  live.resize(count);
  if (versions == checked_log_versions_ && live == checked_states_) return;
  checked_log_versions_ = versions;
  checked_states_ = live;
  size_t i = 0;
  for (const auto& [id, core] : cores_) {
    if (node(id).serving()) core->log().append_terms(live[i++].log_terms);
  }
  add_violations(checker_.observe(live));
}

SimResult Simulator::run() {
  auto wall_start = std::chrono::steady_clock::now();
  for (uint64_t id : voters_) start_node(id);
  if (options_.faults != FaultMode::none) schedule_next_fault();
  // With a controller the workload lasts until it says so (ops and duration_ms do not count).
  const uint64_t workload_end_ns = controller_ != nullptr ? UINT64_MAX : options_.duration_ms * ms;
  uint64_t settle_end_ns = controller_ != nullptr ? UINT64_MAX : workload_end_ns + options_.settle_ms_max * ms;
  std::vector<Candidate> candidates;
  bool final_reads_started = false;
  uint64_t settled_at_ns = 0;
  uint64_t instant_ns = now_ns_;
  uint64_t steps_at_instant = 0;
  while (now_ns_ < settle_end_ns) {
    if (controller_ != nullptr && faults_active_) {
      controller_->act(*this);
      if (controller_->workload_done()) {
        end_workload();
        settle_end_ns = now_ns_ + options_.settle_ms_max * ms;
      }
    }
    if (faults_active_ && now_ns_ >= workload_end_ns) end_workload();
    if (controller_ == nullptr && faults_active_ && history_.operations().size() >= options_.ops) {
      for (size_t i = 0; i + 1 < clients_.size(); ++i) clients_[i]->stop_invoking();
    }
    if (!faults_active_ && !final_reads_started && clients_idle()) {
      final_reads_started = true;
      start_final_reads();
    }
    if (final_reads_started && clients_idle()) {
      if (settled_at_ns == 0) settled_at_ns = now_ns_ + 500 * ms;  // let followers apply
      if (now_ns_ >= settled_at_ns) break;
    }
    collect(candidates);
    if (candidates.empty()) {
      auto next = next_due_ns();
      if (!next) break;
      now_ns_ = std::max(now_ns_, *next);
      for (auto& n : nodes_) n->set_time(now_ns_);
      continue;
    }
    const Candidate chosen = candidates[random_.next() % candidates.size()];
    try {
      take(chosen);
    } catch (const AssertionFailure&) {
      // Raised in the simulator's own code; failed_assertions_ already holds it.
    }
    ++result_.steps;
    // (Not at 0 ms, where every node starts at once: a run stopped there cannot stop its nodes.)
    if (now_ns_ != instant_ns) {
      instant_ns = now_ns_;
      steps_at_instant = 0;
    } else if (++steps_at_instant > options_.steps_at_one_instant_max && now_ns_ > 0) {
      add_violations({"livelock: " + std::to_string(steps_at_instant) + " steps at " + std::to_string(now_ns_ / ms) +
                      " ms without virtual time advancing (bound " + std::to_string(options_.steps_at_one_instant_max) +
                      ", run stopped here)"});
      break;
    }
    if (network_.in_flight() > options_.packets_in_flight_max) {
      // Bounded by what the nodes may have outstanding; beyond it messages are multiplying
      // (each answer sending more than one message), and the run would not end.
      add_violations({"message storm: " + std::to_string(network_.in_flight()) + " packets in flight at " +
                      std::to_string(now_ns_ / ms) + " ms (bound " + std::to_string(options_.packets_in_flight_max) +
                      ", run stopped here)"});
      break;
    }
    if (!failed_assertions_.empty()) {
      std::string where = chosen.kind == step_job || chosen.kind == step_timer
                              ? "node " + std::to_string(chosen.index + 1) + ": "
                              : std::string();
      add_violations({where + failed_assertions_.front() + " (run stopped here)"});
      break;
    }
    after_step();
  }
  if (failed_assertions_.empty()) full_check();
  trace_node_states();
  if (failed_assertions_.empty()) {
    if (!(final_reads_started && clients_idle())) {
      add_violations({"liveness: the cluster did not answer the final reads within " +
                      std::to_string(options_.settle_ms_max) + " ms after the faults stopped"});
    }
    check_acked_writes();
    check_increments();
  }
  for (const auto& client : clients_) add_violations(client->problems());

  result_.seed = options_.seed;
  result_.history = history_.operations();
  for (const Operation& op : result_.history) {
    (op.status == Operation::ok ? result_.ops_ok : op.status == Operation::fail ? result_.ops_failed : result_.ops_unknown)++;
  }
  result_.ops = result_.history.size();
  CheckResult check = check_linearizable(result_.history);
  result_.linearizable = check.linearizable;
  result_.linearizability_detail = check.explanation;
  result_.trace_hash = hash_.value();
  result_.packets_sent = network_.sent();
  result_.packets_dropped = network_.dropped();
  result_.virtual_seconds = static_cast<double>(now_ns_) / 1e9;
  result_.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  for (auto& n : nodes_) n->crash();
  return result_;
}

void Simulator::end_workload() {
  heal_everything();
  for (size_t i = 0; i + 1 < clients_.size(); ++i) clients_[i]->stop_invoking();
}

// The last client reads every key. Under a controller (restart cycles over a key space of up
// to millions) the keys the history touched are read, each client its share, round-robin: a
// key nobody touched holds nothing to check.
void Simulator::start_final_reads() {
  if (controller_ == nullptr) return clients_.back()->read_all_keys_then_stop();
  std::set<std::string> touched;
  for (const Operation& op : history_.operations()) touched.insert(op.key);
  std::vector<std::vector<std::string>> shares(clients_.size());
  size_t next = 0;
  for (const std::string& key : touched) shares[next++ % clients_.size()].push_back(key);
  for (size_t i = 0; i < clients_.size(); ++i) clients_[i]->read_keys_then_stop(shares[i]);
}

// Once the workload is over a client that is idle stays idle, except for the final reads.
bool Simulator::clients_idle() const {
  for (const auto& client : clients_) {
    if (!client->idle()) return false;
  }
  return true;
}

uint64_t Simulator::leader() const {
  const raft::Core* core = leader_core();
  return core != nullptr ? core->id() : 0;
}

// The serving leader of the highest term, if any.
const raft::Core* Simulator::leader_core() const {
  const raft::Core* leader = nullptr;
  for (const auto& [id, core] : cores_) {
    if (!node(id).serving()) continue;  // its core may be gone
    if (core->role() == raft::Role::leader && (leader == nullptr || core->current_term() > leader->current_term())) {
      leader = core;
    }
  }
  return leader;
}

uint64_t Simulator::commit_index(uint64_t id) const {
  const raft::Core* core = serving_core(id);
  return core != nullptr ? core->commit_index() : 0;
}

uint64_t Simulator::last_index(uint64_t id) const {
  const raft::Core* core = serving_core(id);
  return core != nullptr ? core->log().last_index() : 0;
}

uint64_t Simulator::applied_index(uint64_t id) const {
  auto found = applied_.find(id);
  return found != applied_.end() && node(id).up() ? found->second : 0;
}

uint64_t Simulator::acked_writes() const {
  uint64_t acked = 0;
  for (const auto& client : clients_) acked += client->acked_writes().size();
  return acked;
}

// A controller's down and up go into the trace hash like any fault step.
void Simulator::take_down(uint64_t id, Down how) {
  if (!node(id).up()) return;
  hash_.add(step_fault);
  hash_.add(id);
  hash_.add(now_ns_);
  hash_.add(static_cast<uint64_t>(how));
  restart_at_[id - 1] = 0;
  switch (how) {
    case Down::power_cut: power_off(id, false, false); break;
    case Down::process_crash: kill_process(id); break;
    case Down::power_cut_torn: power_off(id, true, false); break;
    case Down::clean_stop:
      // The process stops: its actors wind down with the disk working, and the operating system
      // keeps every byte written, synced or not (a later power cut may still lose the unsynced
      // ones). Nothing it sends while stopping leaves it.
      node(id).crash();
      forget_node(id);
      break;
  }
  trace("node " + std::to_string(id) + (how == Down::clean_stop ? " stopped" : " crashed") +
        (how == Down::power_cut_torn ? " (torn write)" : "") + (how == Down::process_crash ? " (process killed)" : ""));
}

void Simulator::restart(uint64_t id) {
  if (node(id).up()) return;
  hash_.add(step_fault);
  hash_.add(id);
  hash_.add(now_ns_);
  ++result_.restarts;
  start_node(id);
}

// A controller's membership changes (scenarios): the same request inject_member_change makes.
SimCluster::Configuration Simulator::configuration() const {
  Configuration configuration;
  const raft::Core* leader = leader_core();
  if (leader == nullptr) return configuration;
  configuration.leader = leader->id();
  configuration.members = leader->configuration();
  configuration.committed = leader->configuration_index() <= leader->commit_index();
  return configuration;
}

bool Simulator::change_membership(ConfChangeKind kind, uint64_t id) {
  const raft::Core* leader = leader_core();
  if (leader == nullptr || !node(leader->id()).request_member_change(kind, id)) return false;
  hash_.add(step_fault);
  hash_.add(id);
  hash_.add(now_ns_);
  hash_.add(static_cast<uint64_t>(kind));
  ++result_.member_changes;
  trace("leader " + std::to_string(leader->id()) + " asked to " + conf_change_kind_name(kind) + " node " +
        std::to_string(id));
  if (kind == ConfChangeKind::add_learner && spares_.erase(id) != 0) start_node(id);
  return true;
}

void Simulator::retire(uint64_t id, Down how) {
  if (!active(id)) return;
  take_down(id, how);
  restart_at_[id - 1] = 0;
  retired_.insert(id);
  ++result_.members_removed;
  trace("node " + std::to_string(id) + " was removed from the configuration: stopped for good");
}

// Every acknowledged write must be in the log of the final leader, committed, at the index
// the client was told, as the same command (client id and sequence).
void Simulator::check_acked_writes() {
  const raft::Core* leader = leader_core();
  for (const auto& client : clients_) {
    for (const AckedWrite& write : client->acked_writes()) {
      ++result_.acked_writes;
      std::string problem;
      if (leader == nullptr) {
        problem = "no leader at the end to check it against";
      } else if (write.index > leader->commit_index()) {
        problem = "index " + std::to_string(write.index) + " is past the final commit index " +
                  std::to_string(leader->commit_index());
      } else if (write.index < leader->log().first_index()) {
        // Compacted into the leader's snapshot: check what was applied there.
        auto found = committed_commands_.find(write.index);
        if (found == committed_commands_.end()) {
          problem = "index " + std::to_string(write.index) + " was never applied by any node";
        } else if (found->second != std::make_pair(write.client_id, write.sequence)) {
          problem = "another command was applied at index " + std::to_string(write.index);
        }
      } else {
        const Entry& entry = leader->log().at(write.index);
        auto command = decode_command(entry.payload().data(), entry.payload().size(), "acked write check");
        if (!command.is_ok() || command->client_id != write.client_id || command->sequence != write.sequence) {
          problem = "the log holds another entry at index " + std::to_string(write.index);
        }
      }
      if (!problem.empty()) {
        ++result_.lost_acked_writes;
        add_violations({"acknowledged write lost: " + write.what + ": " + problem});
      }
    }
  }
}

// Increments (ClientSettings::increment_percent) apply exactly once: for each counter, every
// increment acknowledged ok answered a value of its own (two answers alike mean one increment
// counted twice or one answer repeated for two), none above the final value, and the final
// value (read linearizably at the end) lies between the acknowledged increments and those plus
// the ones whose outcome is unknown (a retried increment applied twice would pass it).
void Simulator::check_increments() {
  std::map<std::string, std::vector<int64_t>> acknowledged;
  std::map<std::string, uint64_t> unknown;
  std::map<std::string, std::optional<std::string>> finals;
  for (const auto& client : clients_) {
    for (const IncrementRecord& record : client->increments()) {
      if (record.status == Operation::ok) acknowledged[record.key].push_back(record.value);
      if (record.status == Operation::unknown) ++unknown[record.key];
    }
    for (const auto& [key, value] : client->final_counters()) finals[key] = value;
  }
  for (auto& [key, values] : acknowledged) {
    result_.increments_acked += values.size();
    std::sort(values.begin(), values.end());
    auto repeated = std::adjacent_find(values.begin(), values.end());
    if (repeated != values.end()) {
      add_violations({"increments of " + key + ": two acknowledged increments answered " + std::to_string(*repeated)});
    }
    auto final_value = finals.find(key);
    if (final_value == finals.end()) {
      add_violations({"increments of " + key + ": no final read of the counter"});
      continue;
    }
    const int64_t final_number = final_value->second ? std::stoll(*final_value->second) : 0;
    const auto low = static_cast<int64_t>(values.size());
    const auto high = low + static_cast<int64_t>(unknown[key]);
    if (final_number < low || final_number > high || values.back() > final_number) {
      add_violations({"increments of " + key + ": final value " + std::to_string(final_number) + " after " +
                      std::to_string(low) + " acknowledged and " + std::to_string(unknown[key]) +
                      " unknown increments (largest answer " + std::to_string(values.back()) + ")"});
    }
  }
  for (const auto& [key, value] : finals) {
    const int64_t final_number = value ? std::stoll(*value) : 0;
    if (acknowledged.count(key) == 0 && final_number > static_cast<int64_t>(unknown[key])) {
      add_violations({"increments of " + key + ": final value " + std::to_string(final_number) +
                      " with no acknowledged and " + std::to_string(unknown[key]) + " unknown increments"});
    }
  }
}

}  // namespace

const char* fault_mode_name(FaultMode mode) {
  switch (mode) {
    case FaultMode::none: return "none";
    case FaultMode::network: return "network";
    case FaultMode::crash: return "crash";
    case FaultMode::disk: return "disk";
    case FaultMode::all: return "all";
  }
  return "?";
}

bool parse_fault_mode(const std::string& text, FaultMode* mode) {
  for (FaultMode candidate : {FaultMode::none, FaultMode::network, FaultMode::crash, FaultMode::disk, FaultMode::all}) {
    if (text == fault_mode_name(candidate)) {
      *mode = candidate;
      return true;
    }
  }
  return false;
}

SimResult run_simulation(const SimOptions& options) {
  auto directory = make_work_directory(options.work_directory);
  if (!directory.is_ok()) return refused_run(options, directory.status());
  Simulator simulator(options, nullptr, std::move(directory).value());
  return simulator.run();
}

SimResult run_simulation(const SimOptions& options, SimController& controller) {
  auto directory = make_work_directory(options.work_directory);
  if (!directory.is_ok()) return refused_run(options, directory.status());
  Simulator simulator(options, &controller, std::move(directory).value());
  return simulator.run();
}

}  // namespace keyval::sim
