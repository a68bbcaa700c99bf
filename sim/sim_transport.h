// The simulated node's two doors to the outside, both handing bytes to the simulator
// instead of a socket (the seams DESIGN.md gives the network):
//   * the peer transport (actors/transport.h): (transport_send_atom, to, Frame) becomes a
//     call of `send(from, to, bytes)`, which queues a packet in the simulated network;
//   * the client port: the simulator delivers a client's request as (client_atom, uint64_t
//     call, Frame); the port asks the node's client gateway and hands the answer to
//     `reply(call, bytes)`, which queues the response packet.
// Both callbacks run on the node's actor, on the simulator's thread: they only queue. The
// transport's runs inside the raft node's send (it is a companion actor, no job of its own).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "actors/client_gateway.h"
#include "actors/messages.h"

namespace keyval::sim {

using PacketSink = std::function<void(uint64_t from, uint64_t to, std::vector<uint8_t> bytes)>;
using ReplySink = std::function<void(uint64_t call, std::vector<uint8_t> bytes)>;

caf::actor spawn_sim_transport(caf::actor_system& system, uint64_t node_id, PacketSink send);
// Ends the transport (it runs no jobs, so an exit message does not end it).
void stop_sim_transport(const caf::actor& transport);
caf::actor spawn_sim_client_port(caf::actor_system& system, client_gateway_actor gateway, ReplySink reply);

}  // namespace keyval::sim
