// The client gateway: turns client requests (actors/client_protocol.h) into Raft work and
// answers them. One per node; the TCP client listener and the simulator's clients both
// speak to it with (client_atom, Frame request) -> Frame response; the Redis listener with
// (client_batch_atom, requests) -> responses, every command a connection sent at once.
//
//   put, del, cas: the command (with the client's session) is proposed to the raft node;
//     once the state machine applied that (index, term), its result is the answer. A
//     follower answers not_leader with the leader's id; a proposal replaced by another
//     leader's entry answers lost (not applied); no answer in time is timeout (unknown).
//   get: a ReadIndex (§6.4) from the raft node, then the value once the state machine has
//     applied that far: linearizable, without a log entry.
//   status: the node's role, term, commit and applied index, its latest snapshot and log
//     bounds (the raft node's snapshot_status); with `hash`, also the key-value state's hash
//     and the applied index it was computed at (the state machine's hash_atom), so an
//     operator can see that the replicas agree (`keyval status --hash`).
//   snapshot_begin (a backup): a ReadIndex confirms this node leads, the state machine
//     applies through it (so every write acknowledged before the request is in the state),
//     then the raft node takes a fresh snapshot and answers once it is durable: its index,
//     term and file size.
//   snapshot_chunk: up to client_snapshot_chunk_bytes_max bytes of that snapshot file from the
//     snapshotter. Each chunk is its own request with its own deadline, so a big backup is
//     never one long request.
//   leader_transfer: the raft node hands leadership over (§3.10, raft_node.h) and the answer
//     comes once it is over: ok (node_id handed over to leader_hint, which leads in term),
//     not_leader, rejected (to itself, to a non-member) or unavailable (abandoned: why).
//   member_list: the configuration the node uses (any node; the leader's has match indexes).
//   member_add, member_promote, member_remove (docs/MEMBERSHIP.md): the raft node proposes
//     the change and answers once its entry is committed: ok (index, term, and the
//     configuration now in use), rejected (why: one change at a time, a learner far behind,
//     an id already a member, ...), busy (a new leader's first commit or a hand-off is under
//     way: ask again shortly), lost, or not_leader (a remove of the leader itself, once
//     leadership moved: ask the new leader). member_add with learner false is rejected: a
//     member joins as a learner.
// Every answer, whatever its status, names the answering node (node_id), the leader
// (leader_hint) and its client address, and the members with their client addresses, as the
// raft node last told the gateway (client_directory_atom; actors/client_addresses.h).
// Every request is answered exactly once, within its request timeout: the gateway keeps the
// deadlines itself (actors/deadlines.h) and answers `timeout` (outcome unknown) for what is
// still waiting then; an answer that comes later is dropped. snapshot_begin and status with
// hash read the whole state (seconds for a big one) and have the longer
// slow_request_timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "actors/client_protocol.h"
#include "actors/messages.h"
#include "actors/raft_node.h"
#include "actors/state_machine.h"

namespace keyval {

using client_gateway_actor = caf::typed_actor<
    caf::replies_to<client_atom, Frame>::with<Frame>,
    // A batch of requests (every request a connection's read held): the answers, in order,
    // once all are answered (each within its own deadline). Linearizable gets share one
    // ReadIndex and one read of the state; writes become one proposal batch (consecutive
    // entries of one term) and one wait for their results. Other requests go as they would alone.
    caf::replies_to<client_batch_atom, std::vector<Frame>>::with<std::vector<Frame>>,
    // A batch of linearizable gets (a GetBatch, client_protocol.h) -> a GetBatchAnswer: one
    // ReadIndex, one read of every key, one answer with one status for the batch, within the
    // request timeout (`timeout` after it). A follower answers not_leader, as for a get alone.
    caf::replies_to<client_gets_atom, Frame>::with<Frame>>;

// Which client_batch a request may join: a batch is answered once its last request is, so a
// listener batches only requests that finish together: linearizable gets (one ReadIndex, one
// read), writes (one proposal batch, one wait). Everything else goes alone.
enum class BatchKind { alone, reads, writes };
inline BatchKind batch_kind(const ClientRequest& request) {
  if (request.op == ClientOp::get && !request.serializable) return BatchKind::reads;
  return is_write_op(request.op) ? BatchKind::writes : BatchKind::alone;
}

// Hands `send` the batches a sender's queued requests make (each Item has a BatchKind `kind`):
// every request of kind alone by itself, in order, then all the reads, then all the writes.
template <class Item, class Send>
void send_by_kind(std::vector<Item> items, Send&& send) {
  std::vector<Item> reads, writes;
  for (Item& item : items) {
    if (item.kind == BatchKind::reads) {
      reads.push_back(std::move(item));
    } else if (item.kind == BatchKind::writes) {
      writes.push_back(std::move(item));
    } else {
      std::vector<Item> alone;
      alone.push_back(std::move(item));
      send(std::move(alone));
    }
  }
  if (!reads.empty()) send(std::move(reads));
  if (!writes.empty()) send(std::move(writes));
}

// A linearizable get a listener read from a client, as it goes into a GetBatch: several such
// gets of one cycle travel to the gateway as one client_gets message instead of one
// client_batch of whole requests (the native listener and the simulator's client port).
struct BatchedGet {
  uint64_t request_id = 0;
  std::string key;
  uint64_t directory_known = 0;
};
// The GetBatch of `gets` (at most get_batch_keys_max): their keys, and their directory
// fingerprint when they agree (else 0: the answer carries the members).
Frame get_batch_frame(const std::vector<BatchedGet>& gets);
// Each get's answer, an encoded ClientResponse, from the gateway's answer to get_batch_frame:
// as the gateway answers a get alone (its status, leader, read index, directory; its value).
// An answer that does not decode, or an ok one with a value count other than the gets', is an
// error saying so.
Result<std::vector<Frame>> get_batch_answers(const std::vector<BatchedGet>& gets, const Frame& answer);

struct ClientGatewayConfig {
  uint64_t node_id = 0;
  std::chrono::milliseconds request_timeout{2000};  // from the request's arrival to its answer
  // snapshot_begin and status with hash: they take a snapshot or hash the whole state.
  std::chrono::milliseconds slow_request_timeout{60000};
  // The state machine's applied state (actors/state_machine.h): gets and ranges whose read
  // index it has reached are read here, in one LMDB read transaction, without a hop to the
  // state machine's thread. Null: every read goes to the state machine.
  std::shared_ptr<AppliedReads> applied_reads;
  // Where a batch of kReadHereMax or more gets goes (applied_reader_actor, state_machine.h);
  // null: to the state machine.
  applied_reader_actor reader;
  raft::PlantedBug planted_bug = raft::PlantedBug::none;  // tests only: get_batch_without_read_index
};

// `state_machine` also answers status hashes; `snapshotter` answers backup chunks, and a null
// one makes those requests answer `unavailable` (tests that need none).
// on_network_thread: run it on the network thread (spawn_on_network_thread, node_scheduler.h).
client_gateway_actor spawn_client_gateway(caf::actor_system& system, ClientGatewayConfig config, raft_node_actor raft_node,
                                          state_machine_actor state_machine, snapshotter_actor snapshotter,
                                          bool on_network_thread = false);

}  // namespace keyval
