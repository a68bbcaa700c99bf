// The simulated transport and client port (see sim_transport.h).
#include "sim/sim_transport.h"

namespace keyval::sim {

// The actors' state is passed as spawn arguments, not captured: CAF 0.17 runs a function actor
// spawned without arguments through a null tuple pointer (UBSan: reference binding to null).

caf::actor spawn_sim_transport(caf::actor_system& system, uint64_t node_id, PacketSink send) {
  return system.spawn(
      [](caf::event_based_actor*, uint64_t id, PacketSink sink) -> caf::behavior {
        return {
            [id, sink](transport_send_atom, uint64_t to, Frame& frame) { sink(id, to, std::move(frame.bytes)); },
            // start_node says where incoming messages go; the simulator delivers them itself.
            [](raft_peer_atom, uint64_t, const caf::actor&) {},
        };
      },
      node_id, std::move(send));
}

caf::actor spawn_sim_client_port(caf::actor_system& system, client_gateway_actor gateway, ReplySink reply) {
  return system.spawn(
      [](caf::event_based_actor* self, client_gateway_actor to, ReplySink sink) -> caf::behavior {
        return {
            [self, to, sink](client_atom, uint64_t call, Frame& frame) {
              self->request(to, caf::infinite, client_atom_v, std::move(frame))
                  .then([sink, call](Frame& response) { sink(call, std::move(response.bytes)); },
                        [](caf::error&) {});  // the gateway is gone: the node is stopping, the client times out
            },
        };
      },
      std::move(gateway), std::move(reply));
}

}  // namespace keyval::sim
