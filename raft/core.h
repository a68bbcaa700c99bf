// raft::Core: the Raft consensus algorithm (extended paper, Figure 2 and §5–§6) as a pure,
// deterministic state machine. No I/O, no clock, no threads, no randomness of its own:
// a host feeds it ticks, peer messages, proposals and durability reports, and drains a
// Ready holding what to persist, what to send and what to apply (etcd/raft's Ready loop).
//
// How a host drives it:
//   loop:
//     on timer:      core.tick();
//     on message:    core.step(message);
//     on client:     core.propose(payload) / core.read_index(request_id);
//     on WAL sync:   core.durable(index, term); core.metadata_durable(metadata);
//     on snapshots:  core.snapshot_taken(index, term) / snapshot_durable(index, term) /
//                    snapshot_failed(peer) (§7, see below);
//     if (core.has_ready()) {
//       Ready ready = core.take_ready();
//       first ready.snapshot: the log was replaced by that snapshot (install it);
//       persist, in this order: ready.metadata, truncate to ready.log_truncated_to, ready.entries;
//       send ready.messages (already safe: whatever they promise is durable);
//       apply ready.committed_entries in order; serve ready.read_states once applied that far;
//     }
// Messages that promise something (a vote, an AppendEntries success) are held inside the
// core until durable()/metadata_durable() say the state they depend on is on disk (§5.1,
// Figure 2 "persistent state ... updated on stable storage before responding to RPCs").
//
// Snapshots and log compaction (§7). The host snapshots its state machine at its applied
// index and reports it with snapshot_taken(); the core then keeps log_tail_entries below it
// and compacts the rest. A leader whose follower needs a compacted entry sends it an
// install_snapshot naming that snapshot; the leader's host streams the file (snapshot_chunk)
// and delivers the install_snapshot to the follower's core once the file is complete there,
// or calls snapshot_failed(peer). A follower whose log does not reach the snapshot replaces
// its log by it and hands the host Ready.snapshot; its success waits for snapshot_durable().
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <set>
#include <string>
#include <vector>

#include "raft/config.h"
#include "raft/log.h"
#include "raft/membership.h"
#include "raft/message.h"
#include "raft/progress.h"
#include "raft/random.h"
#include "storage/types.h"

namespace keyval::raft {

enum class Role : uint8_t { follower, pre_candidate, candidate, leader };
const char* role_name(Role role);

// Volatile state worth logging when it changes.
struct SoftState {
  uint64_t leader_id = 0;  // 0: no known leader
  Role role = Role::follower;
  bool operator==(const SoftState& other) const { return leader_id == other.leader_id && role == other.role; }
};

// A linearizable read may be served once the state machine has applied read_index (§6.4).
struct ReadState {
  uint64_t request_id = 0;
  uint64_t read_index = 0;
};

// A snapshot by its last included entry.
struct SnapshotRef {
  uint64_t index = 0;
  uint64_t term = 0;
  bool operator==(const SnapshotRef& other) const { return index == other.index && term == other.term; }
};

struct Ready {
  // Follower: the log was replaced by the snapshot at (index, term) and is empty after it.
  // Handled before anything else of this Ready: drop the log (entries and any truncation
  // already handed out), make the snapshot the node's base (file + WAL record, durable),
  // install it in the state machine (applied = index), then report snapshot_durable().
  std::optional<SnapshotRef> snapshot;
  std::optional<Metadata> metadata;          // persist; report with metadata_durable()
  std::optional<uint64_t> log_truncated_to;  // the log now ends here: discard later entries first
  std::vector<Entry> entries;                // then append these; report with durable()
  std::vector<Message> messages;             // send now
  std::vector<Entry> committed_entries;      // apply in order; each is handed out once
  std::vector<ReadState> read_states;
  std::optional<SoftState> soft_state;       // set when leader or role changed
};

// The durable state recovery found. Every entry is durable; applied_index is what the
// state machine had applied (entries up to it are committed, so commit_index starts there).
// With a base snapshot (snapshot_index > 0) the state machine holds at least it
// (applied_index >= snapshot_index) and `entries` are the tail kept: they start anywhere at
// or below snapshot_index + 1, right after (log_start_index, log_start_term). Without
// entries, or with log_start_index left 0 and entries not from 1, the start is derived:
// the snapshot when there are no entries, else the position before entries.front() (whose
// term must then be the snapshot's or log_start_term).
struct RecoveredState {
  Metadata metadata;
  std::vector<Entry> entries;
  uint64_t applied_index = 0;
  uint64_t snapshot_index = 0;
  uint64_t snapshot_term = 0;
  uint64_t log_start_index = 0;
  uint64_t log_start_term = 0;
  // The configuration as of the snapshot (snapshot_index > 0) or of the log's start;
  // configuration entries in `entries` supersede it. Empty with no configuration entry at
  // all: a directory made before configurations were logged, and Config::voters is used.
  std::vector<Member> configuration{};
};

struct ProposeResult {
  bool accepted = false;
  uint64_t index = 0;        // accepted: where the entry sits; committed when applied there with `term`
  uint64_t term = 0;
  uint64_t leader_hint = 0;  // rejected: who to ask instead (0: unknown)
  // Rejected by a leader handing over leadership (§3.10): leader_hint names the recipient.
  // Nothing was done; retry there shortly.
  bool transfer_in_progress = false;
};

// Why a leadership transfer (§3.10) did not start.
enum class TransferStart : uint8_t {
  started,     // the recipient is being caught up; proposals are refused until it is over
  not_leader,  // only a leader transfers leadership
  to_self,     // the leader is already the recipient
  not_voter,   // the recipient is not a voting member (or unknown)
};
const char* transfer_start_name(TransferStart start);

class Core {
 public:
  Core(Config config, RecoveredState recovered);

  // Inputs.
  void tick();
  // How many of the coming ticks would only count, if no other input came between them: a
  // follower, candidate or learner waiting out its election timeout (not on probation). A
  // host may hold those ticks back and deliver them in one go before its next input; 0 when
  // the next tick may act (a leader's always may).
  uint32_t quiet_ticks() const;
  void step(const Message& message);
  // An empty payload is reserved for the leader's no-op entry and is refused.
  ProposeResult propose(std::vector<uint8_t> payload);
  // §6.4: returns false (with leader_hint) on a non-leader; the answer comes as a ReadState.
  bool read_index(uint64_t request_id, uint64_t* leader_hint);
  // Persistence wrote and synced the log through (index, term). A report for an entry the
  // log no longer holds (a suffix replaced since) is stale and ignored.
  void durable(uint64_t index, uint64_t term);
  void metadata_durable(const Metadata& metadata);

  // §7. Host: a snapshot of the state machine at (index, term), its applied index, is durable
  // (file + WAL record). It becomes the snapshot InstallSnapshot names, and the in-memory log
  // is compacted through index - log_tail_entries (never past commit_index or applied). An
  // older snapshot than the current one is ignored.
  void snapshot_taken(uint64_t index, uint64_t term);
  // Follower host: the snapshot Ready.snapshot asked for is durable (file + WAL record) and
  // installed; releases the success held for it.
  void snapshot_durable(uint64_t index, uint64_t term);
  // Leader host: the transfer to `peer` ended without success (timeout, read error, peer
  // down). The leader probes again at the next heartbeat, which sends the snapshot anew.
  void snapshot_failed(uint64_t peer);

  // Leadership transfer (thesis §3.10). The leader stops accepting proposals (they fail with
  // transfer_in_progress and the recipient as hint), sends `target` whatever it lacks and,
  // once target's match_index is the leader's last index, a timeout_now: target campaigns
  // at once, without PreVote, and voters grant it despite the lease. The transfer is
  // abandoned (proposals accepted again) if the leader still leads after an election
  // timeout (election_timeout_ticks_min ticks); it ends when the leader steps down. A
  // transfer to another target replaces a running one; to the same target it is a no-op.
  TransferStart transfer_leadership(uint64_t target);

  // Membership (raft/membership.h, thesis §4.1). Leader: appends a configuration entry for
  // the change and returns where it sits; it takes effect at once (the latest configuration
  // in the log is the one in use, committed or not) and is done once committed (it comes
  // out in Ready.committed_entries as an entry of type configuration). Refused, with a
  // reason, while another change is uncommitted, before the leader committed an entry of its
  // term, and for the cases ConfChangeRefusal lists. `member`: for add_learner the new
  // member (id, peer and client address); for promote and remove only its id counts.
  ConfChangeResult propose_conf_change(ConfChangeKind kind, const Member& member);
  // The configuration in use (the latest in the log) and the index of its entry (0: from the
  // snapshot, the recovered state or Config::voters).
  const std::vector<Member>& configuration() const;
  uint64_t configuration_index() const;
  // The configuration in effect at `index` (snapshot_index() <= index <= log().last_index()):
  // what a snapshot taken at `index` records.
  std::vector<Member> configuration_at(uint64_t index) const;
  // The indexes of the configuration entries in the log after the snapshot (ascending).
  std::vector<uint64_t> configuration_entry_indexes() const;
  // This node is in the configuration in use (voter or learner) / votes in it.
  bool is_member() const;
  bool is_voter() const;
  // A voter, or a voter that only an uncommitted configuration entry leaves out.
  bool may_campaign() const;

  // A voter that lost its data (docs/MEMBERSHIP.md, "A voter that lost its data"). A node
  // whose directory --bootstrap just made is on probation (Metadata::probation): it neither
  // votes, campaigns nor acknowledges, and drops every message but probation traffic, until
  // every other voter of its configuration answered that it never counted this node; the
  // cleared flag is persisted before it takes part. Every node records a peer in
  // Metadata::counted, durably, before the peer's first vote or acknowledgement counts.
  bool in_probation() const { return metadata_.probation || durable_metadata_.probation; }
  // Non-empty once a peer answered that it counted this node before, or that the cluster's
  // voters changed since this directory was bootstrapped: this node must not take part under
  // its id. It stays on probation for good; the host stops it and logs this, with the fix.
  const std::string& refusal() const { return refusal_; }

  // Corruption repaired from peers (docs/PERSISTENCE.md). Recovery discarded the log from an
  // entry it could not read (Metadata::repairing): the node may have acknowledged, and helped
  // commit, entries it no longer holds. Until repaired it never votes, never campaigns (nor on
  // timeout_now), and its shorter log shows the leader (Progress::regressed) that it must not
  // count it for what it lost. It leaves the state, durably, once an append from a leader of
  // term T leaves its log matching the leader's through an index at or below the leader's
  // commit index holding an entry of term T: by Leader Completeness (§5.4) it then holds every
  // entry ever committed; and, for a leader of the term it recovered in (which may still
  // count its old acknowledgements), once its log reaches Metadata::repair_last_index again.
  bool in_repair() const { return metadata_.repairing; }
  // Whether the end of the repair is also on disk: until then a crash restarts the node
  // repairing (the simulator's fault budget counts it as down until this holds).
  bool repair_ended_durably() const { return !metadata_.repairing && !durable_metadata_.repairing; }

  // Outputs.
  bool has_ready() const;
  Ready take_ready();

  // Observation (logs, tests, the invariant checker).
  uint64_t id() const { return config_.node_id; }
  uint64_t current_term() const { return metadata_.current_term; }
  uint64_t voted_for() const { return metadata_.voted_for; }
  Role role() const { return role_; }
  uint64_t leader_id() const { return leader_id_; }
  uint64_t commit_index() const { return commit_index_; }
  uint64_t durable_index() const { return durable_index_; }
  uint64_t applied_index() const { return applied_index_; }
  // The node's latest snapshot (taken, recovered or installed); (0, 0) for none.
  uint64_t snapshot_index() const { return snapshot_index_; }
  // False while an installed snapshot is not durable yet: durable_index() then counts the
  // snapshot, but nothing resting on the log leaves until it is (snapshot_durable()).
  bool log_base_durable() const { return durable_snapshot_index_ >= log_.start_index(); }
  uint64_t snapshot_term() const { return snapshot_term_; }
  const Log& log() const { return log_; }
  const Progress* progress(uint64_t peer) const;
  // Leader: one per other member of the configuration in use (voters and learners), and a
  // removed member's until its removal is committed; else empty. A follower whose log went
  // backwards shows as Progress::regressed (with regressions counting the events): its
  // match_index is not lowered, so commit never counts less than was acknowledged.
  const std::map<uint64_t, Progress>& progress_by_peer() const { return progress_; }
  // Leader: the recipient of the leadership transfer in progress; 0 when none.
  uint64_t transfer_target() const { return transfer_target_; }

 private:
  // A message waiting until what it promises is durable (or dropped once stale).
  struct Outgoing {
    Message message;
    // The term (and, for a vote grant or our own candidacy, voted_for) that must be durable.
    std::optional<Metadata> needs_metadata;
    uint64_t needs_log_index = 0;  // an append success: the log through here must be durable
    uint64_t needs_log_term = 0;
    uint64_t needs_snapshot_index = 0;  // an InstallSnapshot success: that snapshot must be durable
    bool planted_snapshot_ack = false;  // PlantedBug::snapshot_ack_before_durable: no snapshot gate
  };
  struct PendingRead {
    uint64_t request_id;
    uint64_t read_index;
    uint64_t context;
  };

  // probation.cc
  void tick_probation();
  void handle_probation_query(const Message& message);
  void handle_probation_answer(const Message& message);
  void maybe_end_probation();
  // Metadata::counted: a peer's vote or acknowledgement counts once recorded durably.
  bool counted_durably(uint64_t peer) const;
  void note_counted(uint64_t peer) { metadata_.add_counted(peer); }

  // election.cc
  void tick_election();
  void campaign(bool pre_vote, bool leadership_transfer = false);
  void become_follower(uint64_t term, uint64_t leader_id);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void reset_timers();
  bool handle_term(const Message& message);
  bool in_lease() const;
  void handle_vote_request(const Message& message);
  void handle_vote_response(const Message& message);
  void check_election_result();
  bool log_up_to_date(uint64_t last_log_index, uint64_t last_log_term) const;
  void handle_timeout_now(const Message& message);

  // transfer.cc (§3.10)
  void tick_transfer();
  void maybe_send_timeout_now(uint64_t peer);
  void end_transfer();

  // replication.cc
  void tick_heartbeat();
  void tick_progress(Progress& progress);
  void check_quorum();
  void broadcast_append();
  void send_append(uint64_t peer, bool send_if_empty);
  void send_heartbeat(uint64_t peer);
  void send_snapshot(uint64_t peer);
  void handle_append(const Message& message);
  void maybe_end_repair(const Message& message, uint64_t matched_index);
  Message append_response_to(const Message& message) const;  // term, addressee, read context
  void handle_install_snapshot(const Message& message);
  void accept_leader(const Message& message);
  void reject_append(const Message& message, Message& response);
  void store_entries(const std::vector<Entry>& entries, size_t from);
  void handle_append_response(const Message& message);
  uint64_t back_off_hint(const Message& message) const;
  void maybe_commit();
  void register_reads(const std::vector<uint64_t>& request_ids);
  void start_read_round(const std::vector<uint64_t>& request_ids);
  void send_read_round();
  void release_reads();
  bool has_sendable_entries() const;

  // core.cc
  void send(Message message, bool needs_vote = false, uint64_t needs_log_index = 0,
            uint64_t needs_snapshot_index = 0);
  bool deliverable(const Outgoing& outgoing, bool* stale) const;
  std::vector<Message> release_messages();
  std::vector<Entry> take_committed();
  // Voters of the configuration in use (learners never count).
  uint64_t quorum() const { return voter_count_ / 2 + 1; }
  bool is_voter(uint64_t id) const;
  bool counts(uint64_t peer) const { return is_voter(peer); }
  void append_local(Entry entry);
  void truncate_local(uint64_t index);
  void recover_log(RecoveredState& recovered);

  // membership.cc (thesis §4.1)
  void recover_configuration(const RecoveredState& recovered);
  void note_configuration_entry(const Entry& entry);  // appended: the latest is in use
  void forget_configurations_after(uint64_t index);   // truncated: roll back
  void use_latest_configuration();
  void sync_progress();                               // leader: one Progress per member
  void step_down_if_removed();                        // §4.2.2
  ConfChangeRefusal check_conf_change(ConfChangeKind kind, const Member& member, std::string* why) const;

  Config config_;
  SplitMix64 random_;
  Log log_;

  // Figure 2 persistent state. metadata_ is the live value; set ⇒ durable before any
  // message that depends on it leaves (see Outgoing). durable_metadata_ is what
  // persistence reported synced; handed_metadata_ what the last Ready carried.
  Metadata metadata_;
  Metadata durable_metadata_;
  Metadata handed_metadata_;

  // The log's durability: entries through durable_index_ are synced; entries from
  // unstable_from_ on have not been handed to persistence yet; truncate_pending_ says a
  // suffix already handed out was replaced, so the next Ready must truncate first.
  uint64_t durable_index_ = 0;
  uint64_t unstable_from_ = 1;
  bool truncate_pending_ = false;

  Role role_ = Role::follower;
  uint64_t leader_id_ = 0;
  uint64_t commit_index_ = 0;  // Figure 2 volatile state; never decreases
  uint64_t applied_index_ = 0; // last entry handed out in committed_entries (or installed)

  // §7. snapshot_index_/term_: the latest snapshot of this node (taken, recovered or
  // installed); the log never starts after it. durable_snapshot_index_: the latest the host
  // reported durable; while it is below the log's start (an installed snapshot not yet
  // durable) no success that rests on the log leaves. snapshot_to_install_: for Ready.snapshot.
  uint64_t snapshot_index_ = 0;
  uint64_t snapshot_term_ = 0;
  uint64_t durable_snapshot_index_ = 0;
  std::optional<SnapshotRef> snapshot_to_install_;
  SoftState handed_soft_state_;

  uint32_t election_elapsed_ = 0;   // ticks since we heard from a leader (or, as leader, since CheckQuorum)
  uint32_t heartbeat_elapsed_ = 0;
  uint32_t randomized_election_timeout_ = 0;

  std::map<uint64_t, bool> votes_;        // candidate: who answered and how
  std::map<uint64_t, Progress> progress_; // leader: one per other voter (std::map: deterministic order)

  std::vector<Outgoing> outbox_;
  std::vector<ReadState> read_states_;
  std::vector<PendingRead> pending_reads_;   // waiting for a quorum to confirm leadership
  std::vector<uint64_t> reads_before_commit_;// waiting for the leader's first commit in its term
  std::vector<uint64_t> reads_next_round_;   // arrived while a confirmation round was in flight
  uint64_t read_context_ = 0;
  // Read rounds sent to a quorum, not to every voter (send_read_round): the round that last
  // went to every voter (0: none yet in this term), the peers in the order they answered it,
  // and the rounds sent since.
  uint64_t read_broadcast_context_ = 0;
  std::vector<uint64_t> read_answer_order_;
  uint32_t read_rounds_since_broadcast_ = 0;
  std::vector<uint64_t> read_chosen_;  // send_read_round's choice (kept: no allocation per round)

  // §3.10 leadership transfer, leader only: the recipient (0: none) and the ticks since it began.
  uint64_t transfer_target_ = 0;
  uint32_t transfer_elapsed_ = 0;

  // Membership (raft/membership.h). base_configuration_: as of snapshot_index_ (the snapshot's,
  // the recovered one, or Config::voters as members without addresses). log_configurations_:
  // the configuration entries in the log after snapshot_index_, by index (a truncation drops
  // the ones it cuts, rolling back to the one before). configuration_: the latest of these,
  // the one in use; configuration_index_ its entry (0: the base).
  std::vector<Member> base_configuration_;
  std::map<uint64_t, std::vector<Member>> log_configurations_;
  std::vector<Member> configuration_;
  uint64_t configuration_index_ = 0;
  uint64_t voter_count_ = 0;

  // Probation (probation.cc): the voters that answered they never counted us, and why we
  // must not serve (empty: no reason known).
  std::set<uint64_t> probation_confirmed_;
  std::string refusal_;

  // Repair (maybe_end_repair): the term this node recovered in. Leaders of it or earlier may
  // still hold acknowledgements of entries it lost; a leader of a later term holds none.
  uint64_t repair_term_ = 0;
  // This life's number, drawn at construction from Config::random_seed (which differs per start:
  // random in a process, drawn by the simulator per start); never 0. Append answers carry it
  // (Progress::fence).
  uint64_t incarnation_ = 0;
};

}  // namespace keyval::raft
