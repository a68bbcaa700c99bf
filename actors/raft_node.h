// The raft node actor: hosts one raft::Core (raft/core.h) in a CAF event-based actor.
//
// Inputs: a periodic tick (delayed_send tagged with an epoch; stale ticks are ignored), peer
// messages (raft_message_atom + a Frame holding a hand-encoded raft::Message), client
// proposals (raft_propose_atom + payload; the reply is accepted/index/term/leader_hint).
// After every input the actor drains core.take_ready(): metadata, truncation and entries go
// to the WAL in ONE persist request (Persistence::batch); only one persist request is in
// flight at a time and the next Ready is taken once its durable reply has been fed back to
// the core (durable()/metadata_durable()). Messages in a Ready are already durability-gated
// by the core and are sent through the in-process transport: a registry of peer handles
// given with raft_peer_atom after spawn. Committed entries go to the apply callback, on the
// actor, in order.
//
// Transport for this slice: in-process only (peer handles, any actor system of the process).
// The wire encoding of raft::Message below is hand-written (little-endian fixed-width
// fields), not Cap'n Proto yet.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "actors/messages.h"
#include "actors/persistence.h"
#include "raft/config.h"
#include "raft/core.h"
#include "raft/message.h"

namespace keyval {

// CAF 0.17 atoms (at most 10 characters).
using raft_tick_atom = caf::atom_constant<caf::atom("rafttick")>;
using raft_message_atom = caf::atom_constant<caf::atom("raftmsg")>;
using raft_propose_atom = caf::atom_constant<caf::atom("raftprop")>;
using raft_peer_atom = caf::atom_constant<caf::atom("raftpeer")>;
using raft_status_atom = caf::atom_constant<caf::atom("raftstat")>;

// raft::Message <-> bytes carried in a Frame.
std::vector<uint8_t> encode_raft_message(const raft::Message& message);
Result<raft::Message> decode_raft_message(const std::vector<uint8_t>& bytes);

struct RaftNodeConfig {
  raft::Config raft;                                      // node_id, voters, timeouts in ticks
  std::chrono::milliseconds tick_interval{10};            // one core tick
  // Runs on the node actor with each batch of committed entries, in log order (the
  // leader's no-op entries, with empty payloads, included).
  std::function<void(const std::vector<Entry>&)> apply;
  std::function<void(const std::string&)> log;            // one line per event; silent when empty
};

// What raft_status_atom replies: role (raft::Role as uint64_t), leader id, term, commit index,
// durable index.
//
// Messages the actor handles:
//   (raft_tick_atom, uint64_t epoch)                       internal timer
//   (raft_message_atom, Frame)                             a peer's raft::Message
//   (raft_propose_atom, std::vector<uint8_t> payload) ->   (bool accepted, uint64_t index,
//                                                           uint64_t term, uint64_t leader_hint)
//       accepted: committed once the apply callback sees (index, term); refused (not leader,
//       or an empty payload, which is reserved for the no-op): leader_hint, 0 when unknown
//   (raft_peer_atom, uint64_t id, caf::actor handle)       registers (or replaces) a peer
//   (raft_status_atom) -> (uint64_t role, uint64_t leader, uint64_t term, uint64_t commit,
//                          uint64_t durable)
// A failed persist stops the actor (fail-stop) with the error.
caf::actor spawn_raft_node(caf::actor_system& system, RaftNodeConfig config, Persistence persistence,
                           raft::RecoveredState recovered);

}  // namespace keyval
