// The peer transport: how a raft node's messages reach the other nodes. One protocol, two
// implementations: the simulator's network (sim/sim_transport.h) and TCP between processes.
//
//   raft node -> transport:   (transport_send_atom, uint64_t to, Frame)   a raft_wire message
//   transport -> raft node:   (raft_message_atom, Frame)                  a message for it
//
// Delivery is best effort, as Raft assumes: a message may be lost, delayed, duplicated or
// reordered, and a send never blocks the sender (a dead peer must not stall the others).
// The transport never looks inside a frame; the raft node decodes and checks it.
#pragma once

#include "actors/messages.h"

namespace keyval {

using transport_actor = caf::typed_actor<caf::reacts_to<transport_send_atom, uint64_t, Frame>>;

// An in-process transport for tests on the real scheduler: peers are actor handles in this
// process, registered with (raft_peer_atom, uint64_t id, caf::actor raft_node); a frame for an
// unregistered peer is dropped (as a lost message). Only for tests: it delivers straight
// between actor systems, which the simulator must never do.
caf::actor spawn_local_transport(caf::actor_system& system);

}  // namespace keyval
