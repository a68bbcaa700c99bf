// The client gateway: turns client requests (actors/client_protocol.h) into Raft work and
// answers them. One per node; the TCP client listener and the simulator's clients both
// speak to it with (client_atom, Frame request) -> Frame response.
//
//   put, del, cas: the command (with the client's session) is proposed to the raft node;
//     once the state machine applied that (index, term), its result is the answer. A
//     follower answers not_leader with the leader's id; a proposal replaced by another
//     leader's entry answers lost (not applied); no answer in time is timeout (unknown).
//   get: a ReadIndex (§6.4) from the raft node, then the value once the state machine has
//     applied that far: linearizable, without a log entry.
//   status: the node's role, term, commit and applied index.
// Every request is answered exactly once, within its request timeout: the gateway keeps the
// deadlines itself (actors/deadlines.h) and answers `timeout` (outcome unknown) for what is
// still waiting then; an answer that comes later is dropped.
#pragma once

#include <chrono>
#include <cstdint>

#include "actors/messages.h"
#include "actors/state_machine.h"

namespace keyval {

using client_gateway_actor = caf::typed_actor<caf::replies_to<client_atom, Frame>::with<Frame>>;

struct ClientGatewayConfig {
  uint64_t node_id = 0;
  std::chrono::milliseconds request_timeout{2000};  // from the request's arrival to its answer
};

client_gateway_actor spawn_client_gateway(caf::actor_system& system, ClientGatewayConfig config, caf::actor raft_node,
                                          state_machine_actor state_machine);

}  // namespace keyval
