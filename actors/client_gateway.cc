// The client gateway (see client_gateway.h).
#include "actors/client_gateway.h"

#include "actors/client_protocol.h"
#include "raft/core.h"
#include "storage/kv_command.h"

namespace keyval {
namespace {

struct GatewayState {
  ClientGatewayConfig config;
  caf::actor raft_node;
  state_machine_actor state_machine;
  static inline const char* name = "client_gateway";
};

using Self = client_gateway_actor::stateful_pointer<GatewayState>;
using Promise = caf::typed_response_promise<Frame>;

void answer(Promise& promise, const ClientResponse& response) { promise.deliver(Frame{encode_client_response(response)}); }

ClientResponse response_for(const ClientRequest& request, ClientStatus status, std::string message = {}) {
  return client_refusal(request.request_id, status, std::move(message));
}

// An error from a stage: a timeout or a failed node leaves the outcome unknown.
ClientResponse failure(const ClientRequest& request, const caf::error& error) {
  if (error == caf::sec::request_timeout) return response_for(request, ClientStatus::timeout, "request timed out");
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

void wait_applied(Self self, const ClientRequest& request, Promise promise, uint64_t index, uint64_t term,
                  uint64_t leader) {
  self->request(self->state.state_machine, self->state.config.request_timeout, wait_atom_v, index, term)
      .then(
          [request, promise, leader](Frame& frame) mutable {
            auto result = decode_result(frame.bytes.data(), frame.bytes.size(), "state machine result");
            if (!result.is_ok()) return answer(promise, response_for(request, ClientStatus::unavailable, result.status().to_string()));
            answer(promise, write_response(request, *result, leader));
          },
          [request, promise](caf::error& error) mutable { answer(promise, failure(request, error)); });
}

void write(Self self, const ClientRequest& request, Promise promise) {
  const uint64_t node_id = self->state.config.node_id;
  self->request(self->state.raft_node, self->state.config.request_timeout, raft_propose_atom_v,
                encode_command(command_of(request)))
      .then(
          [self, request, promise, node_id](bool accepted, uint64_t index, uint64_t term, uint64_t hint) mutable {
            if (!accepted) return answer(promise, not_leader(request, hint));
            wait_applied(self, request, promise, index, term, node_id);
          },
          [request, promise](caf::error& error) mutable { answer(promise, failure(request, error)); });
}

void read(Self self, const ClientRequest& request, Promise promise) {
  auto state_machine = self->state.state_machine;
  auto timeout = self->state.config.request_timeout;
  const uint64_t node_id = self->state.config.node_id;
  self->request(self->state.raft_node, timeout, raft_read_atom_v)
      .then(
          [self, request, promise, state_machine, timeout, node_id](bool ok, uint64_t read_index, uint64_t hint) mutable {
            if (!ok) return answer(promise, not_leader(request, hint));
            self->request(state_machine, timeout, kv_get_atom_v, request.key, read_index)
                .then(
                    [request, promise, node_id](bool found, std::string& value, uint64_t served_at) mutable {
                      ClientResponse response = response_for(request, ClientStatus::ok);
                      response.leader_hint = node_id;
                      response.found = found;
                      response.value = std::move(value);
                      response.index = served_at;
                      answer(promise, response);
                    },
                    [request, promise](caf::error& error) mutable { answer(promise, failure(request, error)); });
          },
          [request, promise](caf::error& error) mutable { answer(promise, failure(request, error)); });
}

void status(Self self, const ClientRequest& request, Promise promise) {
  auto state_machine = self->state.state_machine;
  auto timeout = self->state.config.request_timeout;
  const uint64_t node_id = self->state.config.node_id;
  self->request(self->state.raft_node, timeout, raft_status_atom_v)
      .then(
          [self, request, promise, state_machine, timeout, node_id](uint64_t role, uint64_t leader, uint64_t term,
                                                                     uint64_t commit, uint64_t) mutable {
            ClientResponse response = response_for(request, ClientStatus::ok);
            response.node_id = node_id;
            response.leader_hint = leader;
            response.term = term;
            response.commit_index = commit;
            response.role = raft::role_name(static_cast<raft::Role>(role));
            self->request(state_machine, timeout, kv_applied_atom_v)
                .then(
                    [promise, response](uint64_t applied) mutable {
                      response.applied_index = applied;
                      answer(promise, response);
                    },
                    [request, promise](caf::error& error) mutable { answer(promise, failure(request, error)); });
          },
          [request, promise](caf::error& error) mutable { answer(promise, failure(request, error)); });
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
  switch (request->op) {
    case ClientOp::get: read(self, *request, promise); break;
    case ClientOp::status: status(self, *request, promise); break;
    default: write(self, *request, promise); break;
  }
  return promise;
}

client_gateway_actor::behavior_type client_gateway(Self self, ClientGatewayConfig config, caf::actor raft_node,
                                                   state_machine_actor state_machine) {
  self->state.config = config;
  self->state.raft_node = std::move(raft_node);
  self->state.state_machine = std::move(state_machine);
  return {[self](client_atom, const Frame& frame) { return on_client(self, frame); }};
}

}  // namespace

client_gateway_actor spawn_client_gateway(caf::actor_system& system, ClientGatewayConfig config, caf::actor raft_node,
                                          state_machine_actor state_machine) {
  return system.spawn(client_gateway, config, std::move(raft_node), std::move(state_machine));
}

}  // namespace keyval
