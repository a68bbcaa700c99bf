// The in-process transport for tests (see transport.h).
#include <map>

#include "actors/transport.h"

namespace keyval {
namespace {

struct LocalTransportState {
  std::map<uint64_t, caf::actor> peers;
  static inline const char* name = "local_transport";
};

// `unused`: CAF 0.17.6 dereferences a null pointer (UBSan reports it) when a function-based
// actor is spawned without arguments.
caf::behavior local_transport(caf::stateful_actor<LocalTransportState>* self, int /*unused*/) {
  // The state (and with it the peer handles, which hold this transport too) is destroyed
  // when the actor exits, so the cycle ends with it.
  return {
      [self](transport_send_atom, uint64_t to, Frame& frame) {
        auto peer = self->state.peers.find(to);
        if (peer == self->state.peers.end()) return;  // unknown peer: a lost message
        self->send(peer->second, raft_message_atom_v, std::move(frame));
      },
      [self](raft_peer_atom, uint64_t id, const caf::actor& handle) { self->state.peers[id] = handle; },
  };
}

}  // namespace

caf::actor spawn_local_transport(caf::actor_system& system) { return system.spawn(local_transport, 0); }

}  // namespace keyval
