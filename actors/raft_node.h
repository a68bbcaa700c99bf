// The raft node actor: hosts one raft::Core (raft/core.h) in a CAF event-based actor.
//
// Inputs: a periodic tick (delayed_send through the actor's clock, tagged with an epoch;
// stale ticks are ignored), peer messages from the transport (actors/transport.h: Cap'n
// Proto raft::Message bytes, actors/raft_wire.h), client proposals and ReadIndex requests
// from the client gateway. After every input the actor drains core.take_ready():
//   * metadata, truncation and entries go to the WAL in ONE persist request
//     (Persistence::batch); up to persists_in_flight_max persists are in flight at once
//     (the WAL writer syncs and answers them in order), each durable reply fed back to the
//     core (durable()/metadata_durable()); a Ready that cuts the log or installs a snapshot
//     waits for every persist before it, and later ones wait for it (see drain());
//   * messages (already durability-gated by the core) go to the transport;
//   * committed entries go to the state machine actor (and the apply observer), in order;
//   * read states answer the waiting ReadIndex requests.
// A failed persist stops the actor (fail-stop) with the error.
//
// Snapshots. After enough applied entries the node asks the snapshotter for a snapshot,
// records it in the WAL (the commit point), tells the core (snapshot_taken: in-memory
// compaction) and releases the WAL segments and LMDB log entries it covers; one log line
// each. A leader whose core asks for install_snapshot streams its snapshot file to that
// follower in chunks (snapshot_chunk), a bounded number unacknowledged; the follower writes
// them through its snapshotter, answers each with the offset it expects next (a lost or
// reordered chunk makes the leader go back there), and once the file is verified end to end
// and published steps the core with install_snapshot. The core's Ready.snapshot is persisted
// (a WAL snapshot record, with the rest of that Ready) before the state machine is replaced
// and before the core may acknowledge it (snapshot_durable).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "actors/messages.h"
#include "actors/persistence.h"
#include "actors/state_machine.h"
#include "metrics/node_metrics.h"
#include "raft/config.h"
#include "raft/core.h"

namespace keyval {

struct RaftNodeConfig {
  raft::Config raft;                                      // node_id, voters, timeouts in ticks
  std::chrono::milliseconds tick_interval{10};            // one core tick
  caf::actor transport;                                   // (transport_send_atom, to, Frame); none: messages dropped
  state_machine_actor state_machine;                      // committed entries go here; none: only `apply`
  // Observers, run on the node actor. `apply`: each batch of committed entries, in log
  // order (the leader's no-op entries, with empty payloads, included). `observe`: the core
  // after every input has been handled (the simulator's invariant checker).
  std::function<void(const std::vector<Entry>&)> apply;
  std::function<void(const raft::Core&)> observe;
  std::function<void(const std::string&)> log;            // one line per event; silent when empty
  // When set, takes the place of `log` and is given the current term with each line (the
  // node process writes it as a field of its structured log line).
  std::function<void(uint64_t term, const std::string&)> log_in_term;

  // Snapshots (§7, docs/SNAPSHOTS.md). The node takes one on its own once snapshot_entries
  // entries or snapshot_bytes payload bytes were applied since the last (0: never on its
  // own), then releases the log it covers (keeping raft.log_tail_entries).
  uint64_t snapshot_entries = 10000;
  uint64_t snapshot_bytes = 64ull << 20;
  // A large state is not rewritten every snapshot_entries entries: the entry threshold counts
  // only once the payload applied since the last snapshot reaches 1/snapshot_size_divisor of
  // that snapshot's file size (0: no such wait). Writing snapshots then costs at most that many
  // times the log's own bytes; the byte threshold above still bounds the log whatever the state.
  uint64_t snapshot_size_divisor = 1;
  std::vector<Member> members;                            // the configuration a snapshot records
  // Where this node serves clients ("HOST:PORT"), sent with every raft message so peers can
  // tell clients (actors/client_addresses.h). Empty (the simulator): nothing sent, no bytes.
  std::string client_address;
  // InstallSnapshot transfers: chunk size, chunks unacknowledged at once, and the ticks
  // without progress after which the lost tail is sent again (half) or the transfer is
  // abandoned and started over (whole).
  uint64_t snapshot_chunk_bytes = 1ull << 20;
  uint32_t snapshot_chunks_in_flight_max = 4;
  uint32_t snapshot_transfer_idle_ticks_max = 100;
  // A byte-rate bound on each InstallSnapshot stream (0: none), so that catching a new member
  // up leaves the disk and the CPUs to the writes the cluster serves meanwhile.
  uint64_t snapshot_send_bytes_per_second = 0;
  // The simulator's checker: a snapshot (index, term) replaced this node's state.
  std::function<void(uint64_t, uint64_t)> installed;
  // Membership: whenever the configuration in use changes (and once at start, when the node
  // has one), the transport is told the peers to dial, (transport_peers_atom,
  // std::vector<uint64_t> ids, std::vector<std::string> peer_addresses): every member but this
  // node (the TCP transport adds, moves and drops links to match). Off for transports that
  // know their peers otherwise (the simulator's, the in-process one).
  bool transport_follows_configuration = false;
  // Persist requests outstanding at once (1: each Ready waits for the previous one's fsync).
  uint32_t persists_in_flight_max = 8;
  // The simulator's coverage count: called as each persist is sent, with how many are now in
  // flight (this one included) and whether this node leads.
  std::function<void(uint32_t in_flight, bool leader)> persist_issued;
  // Term, role, leader, commit index, proposals, snapshots and compactions are counted here
  // (metrics/node_metrics.h); null: no metrics.
  std::shared_ptr<metrics::NodeMetrics> metrics;
};

// Messages the actor handles:
//   (raft_tick_atom, uint64_t epoch)                       internal timer
//   (raft_message_atom, Frame)                             a peer's raft::Message (raft_wire)
//   (raft_propose_atom, std::vector<uint8_t> payload) ->   (bool accepted, uint64_t index,
//                                                           uint64_t term, uint64_t leader_hint)
//       accepted: committed once applied at (index, term); refused (not leader, or an empty
//       payload, which is reserved for the no-op): leader_hint, 0 when unknown
//   (raft_propose_many_atom, std::vector<std::vector<uint8_t>> payloads) -> (bool accepted,
//                                     uint64_t first_index, uint64_t term, uint64_t leader_hint)
//       a proposal batch: all accepted at first_index, first_index + 1, ... of `term`, or
//       none (refused as one proposal would be; a batch holding an empty payload is refused)
//   (raft_read_atom) -> (bool ok, uint64_t read_index, uint64_t leader_hint)
//       §6.4 ReadIndex: ok once a quorum confirmed this leader still leads; a read served at
//       an applied index >= read_index is linearizable. Not ok: not leader (or lost leadership
//       while waiting), with the hint
//   (raft_status_atom) -> (uint64_t role, uint64_t leader, uint64_t term, uint64_t commit,
//                          uint64_t durable)
//   (snapshot_status_atom) -> (uint64_t snapshot_index, uint64_t snapshot_term,
//                              uint64_t first_index, uint64_t last_index)
//   (snapshot_take_atom) -> (uint64_t index, uint64_t term, uint64_t file_bytes)
//       a snapshot taken after the request arrived, once durable (a backup's first step)
//   (leader_transfer_atom, uint64_t target) -> (uint64_t outcome, uint64_t leader,
//                                               uint64_t term, std::string why)
//       leadership transfer (thesis §3.10) to `target`, or with target 0 to the most
//       up-to-date follower. Answered once it is over: outcome is a TransferOutcome;
//       done: `leader` (the target) leads in `term`; not_leader: `leader` is the hint (0:
//       unknown); refused (to itself, to a non-voter) and failed (abandoned after an
//       election timeout, or another node won): `why` says. At most one transfer is
//       waited for at a time; a second request while one runs is refused.
enum class TransferOutcome : uint64_t { done = 0, not_leader = 1, refused = 2, failed = 3 };
//   (member_change_atom, uint64_t kind, uint64_t node_id, std::string peer_address,
//    std::string client_address) -> (uint64_t outcome, uint64_t leader, uint64_t index,
//                                     uint64_t term, std::string why)
//       a membership change (raft/membership.h; kind is a ConfChangeKind: add_learner, promote,
//       remove), answered once it is over: outcome is a ConfChangeOutcome. done: the entry
//       (index, term) is committed; not_leader: `leader` is the hint (0: unknown) — a remove of
//       the leader itself first hands leadership to another voter and answers not_leader
//       naming it once that is over, so the client asks the new leader; refused: the core's
//       `why` (one change at a time, a learner far behind, ...), nothing proposed; lost:
//       another entry took its index (not applied); failed: the node stopped, a snapshot
//       replaced the log before the entry was seen, or the leadership hand-off failed (why);
//       retry: refused for a moment only (a new leader that has not committed an entry of its
//       term yet, a leadership hand-off under way), nothing proposed: ask again shortly.
enum class ConfChangeOutcome : uint64_t { done = 0, not_leader = 1, refused = 2, lost = 3, failed = 4, retry = 5 };
//   (member_list_atom) -> (Frame)
//       the configuration in use as an encoded ClientResponse (actors/client_protocol.h):
//       configuration (with match indexes when this node leads), configuration_index,
//       configuration_committed, leader_hint, role, term, commit_index.
//   (client_directory_atom, caf::actor subscriber)
//       from now on, whenever the leader or a member's client address changes (and once at
//       once), the subscriber gets (client_directory_atom, uint64_t leader_id,
//       std::vector<uint64_t> member_ids, std::vector<std::string> client_addresses)
// The interface above, typed: a sender's message and its reply handler are checked against
// it when they are compiled (the transport, which only forwards frames, holds it as a
// caf::actor).
using raft_node_actor = caf::typed_actor<
    caf::reacts_to<raft_tick_atom, uint64_t>,
    caf::reacts_to<raft_message_atom, Frame>,
    caf::replies_to<raft_propose_atom, std::vector<uint8_t>>::with<bool, uint64_t, uint64_t, uint64_t>,
    caf::replies_to<raft_propose_many_atom, std::vector<std::vector<uint8_t>>>::with<bool, uint64_t, uint64_t, uint64_t>,
    caf::replies_to<raft_read_atom>::with<bool, uint64_t, uint64_t>,
    caf::replies_to<raft_status_atom>::with<uint64_t, uint64_t, uint64_t, uint64_t, uint64_t>,
    caf::replies_to<snapshot_status_atom>::with<uint64_t, uint64_t, uint64_t, uint64_t>,
    caf::replies_to<snapshot_take_atom>::with<uint64_t, uint64_t, uint64_t>,
    caf::replies_to<leader_transfer_atom, uint64_t>::with<uint64_t, uint64_t, uint64_t, std::string>,
    caf::replies_to<member_change_atom, uint64_t, uint64_t, std::string, std::string>::with<uint64_t, uint64_t, uint64_t,
                                                                                           uint64_t, std::string>,
    caf::replies_to<member_list_atom>::with<Frame>,
    caf::reacts_to<client_directory_atom, caf::actor>>;

// on_network_thread: run it on the network thread (spawn_on_network_thread, node_scheduler.h).
raft_node_actor spawn_raft_node(caf::actor_system& system, RaftNodeConfig config, Persistence persistence,
                                raft::RecoveredState recovered, bool on_network_thread = false);

}  // namespace keyval
