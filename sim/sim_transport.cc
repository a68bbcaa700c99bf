// The simulated transport and client port (see sim_transport.h).
#include "sim/sim_transport.h"

namespace keyval::sim {

caf::actor spawn_sim_transport(caf::actor_system& system, uint64_t node_id, PacketSink send) {
  return system.spawn([node_id, send](caf::event_based_actor*) -> caf::behavior {
    return {
        [node_id, send](transport_send_atom, uint64_t to, Frame& frame) { send(node_id, to, std::move(frame.bytes)); },
        // start_node says where incoming messages go; the simulator delivers them itself.
        [](raft_peer_atom, uint64_t, const caf::actor&) {},
    };
  });
}

caf::actor spawn_sim_client_port(caf::actor_system& system, client_gateway_actor gateway, ReplySink reply) {
  return system.spawn([gateway, reply](caf::event_based_actor* self) -> caf::behavior {
    return {
        [self, gateway, reply](client_atom, uint64_t call, Frame& frame) {
          self->request(gateway, caf::infinite, client_atom_v, std::move(frame))
              .then([reply, call](Frame& response) { reply(call, std::move(response.bytes)); },
                    [](caf::error&) {});  // the gateway is gone: the node is stopping, the client times out
        },
    };
  });
}

}  // namespace keyval::sim
