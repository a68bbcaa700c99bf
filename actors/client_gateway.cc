// The client gateway (see client_gateway.h).
#include "actors/client_gateway.h"

#include <memory>

#include "actors/client_protocol.h"
#include "actors/deadlines.h"
#include "raft/core.h"
#include "storage/kv_command.h"

namespace keyval {
namespace {

using Promise = caf::typed_response_promise<Frame>;

// A client request not yet answered.
struct PendingRequest {
  Promise promise;
  uint64_t request_id;
};

struct GatewayState {
  ClientGatewayConfig config;
  caf::actor raft_node;
  state_machine_actor state_machine;
  Deadlines<PendingRequest> pending;
  static inline const char* name = "client_gateway";
};

// The gateway's own interface: the client's, plus its deadline timer.
using gateway_impl_actor = client_gateway_actor::extend<caf::reacts_to<sweep_atom>>;
using Self = gateway_impl_actor::stateful_pointer<GatewayState>;

ClientResponse response_for(const ClientRequest& request, ClientStatus status, std::string message = {}) {
  return client_refusal(request.request_id, status, std::move(message));
}

// An error from a stage: a failed node leaves the outcome unknown.
ClientResponse failure(const ClientRequest& request, const caf::error& error) {
  Status status = to_status(error);
  if (status.code() == Code::not_found) return response_for(request, ClientStatus::lost, status.message());
  if (status.code() == Code::busy) return response_for(request, ClientStatus::busy, status.message());
  if (status.code() == Code::unsupported) return response_for(request, ClientStatus::timeout, status.message());
  return response_for(request, ClientStatus::unavailable, status.to_string());
}

ClientResponse not_leader(const ClientRequest& request, uint64_t leader_hint) {
  ClientResponse response = leader_hint == 0 ? response_for(request, ClientStatus::no_leader, "no leader known")
                                             : response_for(request, ClientStatus::not_leader, "not the leader");
  response.leader_hint = leader_hint;
  return response;
}

Command command_of(const ClientRequest& request) {
  Command command;
  command.client_id = request.client_id;
  command.sequence = request.sequence;
  command.key = request.key;
  switch (request.op) {
    case ClientOp::put: command.kind = CommandKind::put; command.value = request.value; break;
    case ClientOp::del: command.kind = CommandKind::erase; break;
    case ClientOp::cas:
      command.kind = CommandKind::cas;
      command.value = request.value;
      command.expected = request.expected;
      break;
    default: break;
  }
  return command;
}

ClientResponse write_response(const ClientRequest& request, const CommandResult& result, uint64_t leader) {
  ClientResponse response = response_for(request, ClientStatus::ok, result.message);
  response.leader_hint = leader;
  response.index = result.index;
  switch (result.status) {
    case CommandStatus::ok: break;
    case CommandStatus::stale_request: response.status = ClientStatus::stale_request; return response;
    case CommandStatus::session_expired: response.status = ClientStatus::session_expired; return response;
    case CommandStatus::rejected: response.status = ClientStatus::rejected; return response;
    case CommandStatus::already_applied: response.status = ClientStatus::timeout; return response;
  }
  response.found = result.found;
  response.value = result.value;
  response.cas_succeeded = result.cas_succeeded;
  return response;
}

// Answers the request behind `token`, unless its deadline passed (then it was answered
// `timeout` by the sweep, and this answer is dropped).
void answer(Self self, uint64_t token, const ClientResponse& response) {
  auto pending = self->state.pending.take(token);
  if (pending) pending->promise.deliver(Frame{encode_client_response(response)});
}

void arm_sweep(Self self) {
  keyval::arm_sweep(self->state.pending, caf::actor_cast<gateway_impl_actor>(self), self->clock());
}

void sweep(Self self) {
  self->state.pending.sweep(self->clock().now(), [](PendingRequest& request) {
    request.promise.deliver(
        Frame{encode_client_response(client_refusal(request.request_id, ClientStatus::timeout, "request timed out"))});
  });
  arm_sweep(self);
}

// The stages below ask actors of this node with no CAF timeout (the request's deadline is
// the gateway's own): the raft node answers a proposal at once and a ReadIndex by the time
// CheckQuorum settles leadership; the state machine answers a wait once that index is
// applied, under its own bound on pending waits.

// Stages share the decoded request: a closure holds a pointer, not a copy of its key and value.
using SharedRequest = std::shared_ptr<const ClientRequest>;

void wait_applied(Self self, const SharedRequest& request, uint64_t token, uint64_t index, uint64_t term,
                  uint64_t leader) {
  self->request(self->state.state_machine, caf::infinite, wait_atom_v, index, term)
      .then(
          [self, request, token, leader](Frame& frame) {
            auto result = decode_result(frame.bytes.data(), frame.bytes.size(), "state machine result");
            if (!result.is_ok()) {
              return answer(self, token, response_for(*request, ClientStatus::unavailable, result.status().to_string()));
            }
            answer(self, token, write_response(*request, *result, leader));
          },
          [self, request, token](caf::error& error) { answer(self, token, failure(*request, error)); });
}

void write(Self self, const SharedRequest& request, uint64_t token) {
  const uint64_t node_id = self->state.config.node_id;
  self->request(self->state.raft_node, caf::infinite, raft_propose_atom_v, encode_command(command_of(*request)))
      .then(
          [self, request, token, node_id](bool accepted, uint64_t index, uint64_t term, uint64_t hint) {
            if (!accepted) return answer(self, token, not_leader(*request, hint));
            wait_applied(self, request, token, index, term, node_id);
          },
          [self, request, token](caf::error& error) { answer(self, token, failure(*request, error)); });
}

void read(Self self, const SharedRequest& request, uint64_t token) {
  const uint64_t node_id = self->state.config.node_id;
  self->request(self->state.raft_node, caf::infinite, raft_read_atom_v)
      .then(
          [self, request, token, node_id](bool ok, uint64_t read_index, uint64_t hint) {
            if (!ok) return answer(self, token, not_leader(*request, hint));
            self->request(self->state.state_machine, caf::infinite, kv_get_atom_v, request->key, read_index)
                .then(
                    [self, request, token, node_id](bool found, std::string& value, uint64_t served_at) {
                      ClientResponse response = response_for(*request, ClientStatus::ok);
                      response.leader_hint = node_id;
                      response.found = found;
                      response.value = std::move(value);
                      response.index = served_at;
                      answer(self, token, response);
                    },
                    [self, request, token](caf::error& error) { answer(self, token, failure(*request, error)); });
          },
          [self, request, token](caf::error& error) { answer(self, token, failure(*request, error)); });
}

void status(Self self, const SharedRequest& request, uint64_t token) {
  const uint64_t node_id = self->state.config.node_id;
  self->request(self->state.raft_node, caf::infinite, raft_status_atom_v)
      .then(
          [self, request, token, node_id](uint64_t role, uint64_t leader, uint64_t term, uint64_t commit, uint64_t) {
            ClientResponse response = response_for(*request, ClientStatus::ok);
            response.node_id = node_id;
            response.leader_hint = leader;
            response.term = term;
            response.commit_index = commit;
            response.role = raft::role_name(static_cast<raft::Role>(role));
            self->request(self->state.state_machine, caf::infinite, kv_applied_atom_v)
                .then(
                    [self, token, response](uint64_t applied) mutable {
                      response.applied_index = applied;
                      answer(self, token, response);
                    },
                    [self, request, token](caf::error& error) { answer(self, token, failure(*request, error)); });
          },
          [self, request, token](caf::error& error) { answer(self, token, failure(*request, error)); });
}

caf::result<Frame> on_client(Self self, const Frame& frame) {
  auto request = decode_client_request(frame.bytes.data(), frame.bytes.size());
  if (!request.is_ok()) {
    ClientResponse response;
    response.status = ClientStatus::rejected;
    response.message = request.status().to_string();
    return Frame{encode_client_response(response)};
  }
  auto promise = self->make_response_promise<Frame>();
  const uint64_t token = self->state.pending.add(self->clock().now(), PendingRequest{promise, request->request_id});
  arm_sweep(self);
  auto shared = std::make_shared<const ClientRequest>(std::move(*request));
  switch (shared->op) {
    case ClientOp::get: read(self, shared, token); break;
    case ClientOp::status: status(self, shared, token); break;
    default: write(self, shared, token); break;
  }
  return promise;
}

gateway_impl_actor::behavior_type client_gateway(Self self, ClientGatewayConfig config, caf::actor raft_node,
                                                   state_machine_actor state_machine) {
  self->state.config = config;
  self->state.raft_node = std::move(raft_node);
  self->state.state_machine = std::move(state_machine);
  self->state.pending = Deadlines<PendingRequest>(config.request_timeout);
  return {
      [self](client_atom, const Frame& frame) { return on_client(self, frame); },
      [self](sweep_atom) { sweep(self); },
  };
}

}  // namespace

client_gateway_actor spawn_client_gateway(caf::actor_system& system, ClientGatewayConfig config, caf::actor raft_node,
                                          state_machine_actor state_machine) {
  return system.spawn(client_gateway, config, std::move(raft_node), std::move(state_machine));
}

}  // namespace keyval
