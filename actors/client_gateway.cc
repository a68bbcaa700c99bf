// The client gateway (see client_gateway.h).
#include "actors/client_gateway.h"

#include <algorithm>
#include <map>
#include <memory>

#include "actors/client_protocol.h"
#include "actors/deadlines.h"
#include "actors/node_scheduler.h"
#include "actors/raft_node.h"
#include "raft/core.h"
#include "storage/kv_command.h"

namespace keyval {
namespace {

using Promise = caf::typed_response_promise<Frame>;

// The slow requests' deadline timer (sweep_atom is the others').
using slow_sweep_atom = caf::atom_constant<caf::atom("slowsweep")>;
constexpr slow_sweep_atom slow_sweep_atom_v{};

using BatchPromise = caf::typed_response_promise<std::vector<Frame>>;

// A client_batch's answers, sent together once the last slot is filled.
struct BatchAnswer {
  std::vector<Frame> answers;
  size_t remaining = 0;
  BatchPromise promise;
};

// A client request not yet answered: alone (promise), or one slot of a batch.
struct PendingRequest {
  Promise promise;
  uint64_t request_id;
  std::shared_ptr<BatchAnswer> batch;
  size_t slot = 0;
  uint64_t directory_known = 0;  // the request's: members are left out of its answer when current
  bool gets = false;             // a GetBatch: answered with a GetBatchAnswer
};

void fill_slot(BatchAnswer& batch, size_t slot, Frame answer) {
  batch.answers[slot] = std::move(answer);
  if (--batch.remaining == 0) batch.promise.deliver(std::move(batch.answers));
}

void deliver(PendingRequest& request, Frame answer) {
  if (request.batch) return fill_slot(*request.batch, request.slot, std::move(answer));
  request.promise.deliver(std::move(answer));
}

// Which request a stage answers: its token in `pending`, or in `slow` (snapshot_begin and
// status with hash, under slow_request_timeout: one timeout per Deadlines keeps each one's
// entries in deadline order).
struct Ticket {
  uint64_t token = 0;
  bool slow = false;
};

struct GatewayState {
  ClientGatewayConfig config;
  raft_node_actor raft_node;
  state_machine_actor state_machine;
  snapshotter_actor snapshotter;
  Deadlines<PendingRequest> pending;
  Deadlines<PendingRequest> slow;
  // Where the cluster serves clients, as the raft node last told it (client_directory_atom):
  // the leader it follows and each member's client address. Empty until told (a gateway whose
  // node has no client address is never told).
  uint64_t directory_leader = 0;
  std::vector<ClientMember> members;  // in id order, as answers carry them
  uint64_t directory_version = 0;     // directory_fingerprint(members)
  static inline const char* name = "client_gateway";
};

// The gateway's own interface: the client's, plus its deadline timers.
using gateway_impl_actor = client_gateway_actor::extend<
    caf::reacts_to<sweep_atom>, caf::reacts_to<slow_sweep_atom>,
    caf::reacts_to<client_directory_atom, uint64_t, std::vector<uint64_t>, std::vector<std::string>>>;
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
    case ClientOp::put:
      command.kind = CommandKind::put;
      command.value = request.value;
      command.blind = request.blind;
      break;
    case ClientOp::del: command.kind = CommandKind::erase; break;
    case ClientOp::cas:
      command.kind = CommandKind::cas;
      command.value = request.value;
      command.expected = request.expected;
      break;
    case ClientOp::put_many:
      command.kind = CommandKind::put_many;
      command.keys = request.keys;
      command.values = request.values;
      command.condition = static_cast<PutCondition>(request.condition);  // checked by the decoder
      break;
    case ClientOp::del_many: command.kind = CommandKind::erase_many; command.keys = request.keys; break;
    case ClientOp::increment: command.kind = CommandKind::increment; command.delta = request.delta; break;
    case ClientOp::append: command.kind = CommandKind::append; command.value = request.value; break;
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
  response.number = result.number;
  return response;
}

// What every answer says about the cluster: which node answers, the leader and its client
// address, the members and theirs (so a client given one endpoint finds the rest). A hint the
// stage left at 0 is filled with the leader the raft node last named, unless the answer is
// no_leader (the raft node just said it knows none). The members are left out when the
// client says it holds this directory already (`known`, its fingerprint): on a busy
// connection they would be encoded and decoded with every answer for nothing.
ClientResponse with_directory(const GatewayState& state, ClientResponse response, uint64_t known) {
  response.node_id = state.config.node_id;
  if (response.leader_hint == 0 && response.status != ClientStatus::no_leader) {
    response.leader_hint = state.directory_leader;
  }
  if (response.leader_hint != 0) {
    auto leader = std::find_if(state.members.begin(), state.members.end(),
                               [&](const ClientMember& member) { return member.node_id == response.leader_hint; });
    if (leader != state.members.end()) response.leader_client_address = leader->client_address;
  }
  response.directory_version = state.directory_version;
  if (known != 0 && known == state.directory_version) response.members.clear();
  else response.members = state.members;
  return response;
}

void on_directory(Self self, uint64_t leader, const std::vector<uint64_t>& ids, const std::vector<std::string>& addresses) {
  GatewayState& state = self->state;
  state.directory_leader = leader;
  std::map<uint64_t, std::string> by_id;  // one address per id (the last named), in id order
  for (size_t i = 0; i < ids.size() && i < addresses.size() && i < client_members_max; ++i) by_id[ids[i]] = addresses[i];
  state.members.clear();
  for (auto& [id, address] : by_id) state.members.push_back(ClientMember{id, std::move(address)});
  state.directory_version = directory_fingerprint(state.members);
}

// Answers the request behind `ticket`, unless its deadline passed (then it was answered
// `timeout` by the sweep, and this answer is dropped).
// The answer to `request` that says only `response` (a GetBatch's: its header, no values).
Frame encode_answer(const GatewayState& state, const PendingRequest& request, ClientResponse response) {
  response = with_directory(state, std::move(response), request.directory_known);
  if (request.gets) return Frame{encode_get_batch_answer(response, {}, {})};
  return Frame{encode_client_response(response)};
}

void answer(Self self, Ticket ticket, ClientResponse response) {
  auto pending = (ticket.slow ? self->state.slow : self->state.pending).take(ticket.token);
  if (pending) deliver(*pending, encode_answer(self->state, *pending, std::move(response)));
}

// A GetBatch's answer with its values (header ok).
void answer_gets(Self self, Ticket ticket, ClientResponse header, const std::vector<uint8_t>& found,
                 const std::vector<std::string>& values) {
  auto pending = self->state.pending.take(ticket.token);
  if (pending) {
    deliver(*pending, Frame{encode_get_batch_answer(
                          with_directory(self->state, std::move(header), pending->directory_known), found, values)});
  }
}

void arm_sweep(Self self) {
  keyval::arm_sweep(self->state.pending, caf::actor_cast<gateway_impl_actor>(self), self->clock());
}

// As keyval::arm_sweep (deadlines.h), with the slow requests' own atom.
void arm_slow_sweep(Self self) {
  Deadlines<PendingRequest>& slow = self->state.slow;
  if (!slow.arm()) return;
  auto delay = std::max(slow.next_due() - self->clock().now(), caf::actor_clock::duration_type::zero());
  caf::delayed_anon_send(caf::actor_cast<gateway_impl_actor>(self), delay, slow_sweep_atom_v);
}

void expire(const GatewayState& state, PendingRequest& request) {
  deliver(request,
          encode_answer(state, request, client_refusal(request.request_id, ClientStatus::timeout, "request timed out")));
}

void sweep(Self self) {
  self->state.pending.sweep(self->clock().now(), [self](PendingRequest& request) { expire(self->state, request); });
  arm_sweep(self);
}

void slow_sweep(Self self) {
  self->state.slow.sweep(self->clock().now(), [self](PendingRequest& request) { expire(self->state, request); });
  arm_slow_sweep(self);
}

// The stages below ask actors of this node with no CAF timeout (the request's deadline is
// the gateway's own): the raft node answers a proposal at once and a ReadIndex by the time
// CheckQuorum settles leadership; the state machine answers a wait once that index is
// applied, under its own bound on pending waits.

// Stages share the decoded request: a closure holds a pointer, not a copy of its key and value.
using SharedRequest = std::shared_ptr<const ClientRequest>;

void wait_applied(Self self, const SharedRequest& request, Ticket ticket, uint64_t index, uint64_t term,
                  uint64_t leader) {
  self->request(self->state.state_machine, caf::infinite, wait_atom_v, index, term)
      .then(
          [self, request, ticket, leader](Frame& frame) {
            auto result = decode_result(frame.bytes.data(), frame.bytes.size(), "state machine result");
            if (!result.is_ok()) {
              return answer(self, ticket, response_for(*request, ClientStatus::unavailable, result.status().to_string()));
            }
            answer(self, ticket, write_response(*request, *result, leader));
          },
          [self, request, ticket](caf::error& error) { answer(self, ticket, failure(*request, error)); });
}

void write(Self self, const SharedRequest& request, Ticket ticket) {
  const uint64_t node_id = self->state.config.node_id;
  self->request(self->state.raft_node, caf::infinite, raft_propose_atom_v, encode_command(command_of(*request)))
      .then(
          [self, request, ticket, node_id](bool accepted, uint64_t index, uint64_t term, uint64_t hint) {
            if (!accepted) return answer(self, ticket, not_leader(*request, hint));
            wait_applied(self, request, ticket, index, term, node_id);
          },
          [self, request, ticket](caf::error& error) { answer(self, ticket, failure(*request, error)); });
}

// The most keys of one batch read by the gateway itself (read_applied); more go to the
// state machine.
constexpr size_t kReadHereMax = 32;

// Reads `keys` here when the state machine has published an applied index at or past
// `read_index` (AppliedReads): one LMDB read transaction, no hop. False: not applied that far
// yet (or no published state), nothing done; the caller asks the state machine.
template <class Answer, class Fail>
bool read_applied(Self self, const std::vector<std::string>& keys, uint64_t read_index, Answer& answer_all,
                  Fail& fail_all) {
  AppliedReads* reads = self->state.config.applied_reads.get();
  if (reads == nullptr) return false;
  const uint64_t applied = reads->applied_index();
  if (applied < read_index) return false;
  auto read = reads->get_many(keys);
  if (!read.is_ok()) {
    caf::error error = to_error(read.status());
    fail_all(error);
    return true;
  }
  ManyValues answer = many_values(std::move(*read));
  answer_all(answer.values, answer.found, applied);
  return true;
}

// A read at `read_index` (0: serializable, whatever this node has applied): get or range.
void read_at(Self self, const SharedRequest& request, Ticket ticket, uint64_t read_index, uint64_t leader_hint) {
  auto on_error = [self, request, ticket](caf::error& error) { answer(self, ticket, failure(*request, error)); };
  if (request->op == ClientOp::range) {
    auto answer_range = [self, request, ticket, leader_hint](ClientResponse& read) {
      ClientResponse response = response_for(*request, ClientStatus::ok);
      response.leader_hint = leader_hint;
      response.keys = std::move(read.keys);
      response.values = std::move(read.values);
      response.range_count = read.range_count;
      response.more = read.more;
      response.index = read.index;
      answer(self, ticket, std::move(response));
    };
    // Applied far enough already (AppliedReads): read here, in one LMDB read transaction.
    AppliedReads* reads = self->state.config.applied_reads.get();
    if (reads != nullptr) {
      const uint64_t applied = reads->applied_index();
      if (applied >= read_index) {
        auto read = reads->range(*request);
        if (!read.is_ok()) return answer(self, ticket, failure(*request, to_error(read.status())));
        read->index = applied;
        return answer_range(*read);
      }
    }
    self->request(self->state.state_machine, caf::infinite, kv_range_atom_v, Frame{encode_client_request(*request)},
                  read_index)
        .then(
            [self, request, ticket, answer_range](Frame& frame) mutable {
              auto read = decode_client_response(frame.bytes.data(), frame.bytes.size());
              if (!read.is_ok()) {
                return answer(self, ticket, response_for(*request, ClientStatus::unavailable, read.status().to_string()));
              }
              answer_range(*read);
            },
            on_error);
    return;
  }
  auto answer_one = [self, request, ticket, leader_hint](bool found, std::string& value, uint64_t served_at) {
    ClientResponse response = response_for(*request, ClientStatus::ok);
    response.leader_hint = leader_hint;
    response.found = found;
    response.value = std::move(value);
    response.index = served_at;
    answer(self, ticket, std::move(response));
  };
  auto answer_read = [&answer_one](std::vector<std::string>& values, std::vector<uint8_t>& found, uint64_t served_at) {
    answer_one(found[0] != 0, values[0], served_at);
  };
  if (read_applied(self, {request->key}, read_index, answer_read, on_error)) return;
  self->request(self->state.state_machine, caf::infinite, kv_get_atom_v, request->key, read_index)
      .then(answer_one, on_error);
}

// get, range: linearizable through a ReadIndex (§6.4) unless the request is serializable,
// which reads this node's applied state as it is (possibly stale, never blocked by elections).
void read(Self self, const SharedRequest& request, Ticket ticket) {
  const uint64_t node_id = self->state.config.node_id;
  if (request->serializable) return read_at(self, request, ticket, 0, self->state.directory_leader);
  self->request(self->state.raft_node, caf::infinite, raft_read_atom_v)
      .then(
          [self, request, ticket, node_id](bool ok, uint64_t read_index, uint64_t hint) {
            if (!ok) return answer(self, ticket, not_leader(*request, hint));
            read_at(self, request, ticket, read_index, node_id);
          },
          [self, request, ticket](caf::error& error) { answer(self, ticket, failure(*request, error)); });
}

// status, in stages that fill one response: the raft node's view, its log bounds, the
// applied index, and (when asked) the state's hash.
using SharedResponse = std::shared_ptr<ClientResponse>;

void status_hash(Self self, const SharedRequest& request, Ticket ticket, const SharedResponse& response) {
  if (!request->hash) return answer(self, ticket, *response);
  self->request(self->state.state_machine, caf::infinite, hash_atom_v)
      .then(
          [self, ticket, response](uint64_t applied, uint64_t hash) {
            response->hashed = true;
            response->hash_index = applied;
            response->state_hash = hash;
            answer(self, ticket, *response);
          },
          [self, request, ticket](caf::error& error) { answer(self, ticket, failure(*request, error)); });
}

void status_applied(Self self, const SharedRequest& request, Ticket ticket, const SharedResponse& response) {
  self->request(self->state.state_machine, caf::infinite, kv_applied_atom_v)
      .then(
          [self, request, ticket, response](uint64_t applied) {
            response->applied_index = applied;
            status_hash(self, request, ticket, response);
          },
          [self, request, ticket](caf::error& error) { answer(self, ticket, failure(*request, error)); });
}

void status_log_bounds(Self self, const SharedRequest& request, Ticket ticket, const SharedResponse& response) {
  self->request(self->state.raft_node, caf::infinite, snapshot_status_atom_v)
      .then(
          [self, request, ticket, response](uint64_t snapshot_index, uint64_t snapshot_term, uint64_t first_index,
                                            uint64_t last_index) {
            response->snapshot_index = snapshot_index;
            response->snapshot_term = snapshot_term;
            response->first_index = first_index;
            response->last_index = last_index;
            status_applied(self, request, ticket, response);
          },
          [self, request, ticket](caf::error& error) { answer(self, ticket, failure(*request, error)); });
}

void status(Self self, const SharedRequest& request, Ticket ticket) {
  const uint64_t node_id = self->state.config.node_id;
  self->request(self->state.raft_node, caf::infinite, raft_status_atom_v)
      .then(
          [self, request, ticket, node_id](uint64_t role, uint64_t leader, uint64_t term, uint64_t commit, uint64_t) {
            auto response = std::make_shared<ClientResponse>(response_for(*request, ClientStatus::ok));
            response->node_id = node_id;
            response->leader_hint = leader;
            response->term = term;
            response->commit_index = commit;
            response->role = raft::role_name(static_cast<raft::Role>(role));
            status_log_bounds(self, request, ticket, response);
          },
          [self, request, ticket](caf::error& error) { answer(self, ticket, failure(*request, error)); });
}

// A backup's key to read at the ReadIndex: the read only waits for the state machine to apply
// through that index (its value, almost certainly absent, is not used). Any valid key works.
const std::string backup_barrier_key = std::string(1, '\0') + "keyval-backup-barrier";

// The snapshot, once the state holds every write acknowledged before the request.
void snapshot_take(Self self, const SharedRequest& request, Ticket ticket, uint64_t read_index) {
  const uint64_t node_id = self->state.config.node_id;
  self->request(self->state.raft_node, caf::infinite, snapshot_take_atom_v)
      .then(
          [self, request, ticket, node_id, read_index](uint64_t index, uint64_t term, uint64_t file_bytes) {
            if (index < read_index) {
              // The raft node promises a snapshot taken after the request arrived.
              return answer(self, ticket,
                            response_for(*request, ClientStatus::unavailable,
                                         "the snapshot at index " + std::to_string(index) +
                                             " does not reach the read index " + std::to_string(read_index)));
            }
            ClientResponse response = response_for(*request, ClientStatus::ok);
            response.node_id = node_id;
            response.leader_hint = node_id;
            response.snapshot_index = index;
            response.snapshot_term = term;
            response.total_bytes = file_bytes;
            answer(self, ticket, response);
          },
          [self, request, ticket](caf::error& error) {
            answer(self, ticket, response_for(*request, ClientStatus::unavailable,
                                              "taking the snapshot failed: " + to_status(error).to_string()));
          });
}

// §6.4: the ReadIndex confirms this node leads; once applied >= it, every write acknowledged
// before the request (by this leader or an earlier one) is in the state the snapshot reads.
// (The raft node asks its own snapshotter; it answers an error when it has none.)
void snapshot_begin(Self self, const SharedRequest& request, Ticket ticket) {
  self->request(self->state.raft_node, caf::infinite, raft_read_atom_v)
      .then(
          [self, request, ticket](bool ok, uint64_t read_index, uint64_t hint) {
            if (!ok) return answer(self, ticket, not_leader(*request, hint));
            self->request(self->state.state_machine, caf::infinite, kv_get_atom_v, backup_barrier_key, read_index)
                .then(
                    [self, request, ticket, read_index](bool, std::string&, uint64_t) {
                      snapshot_take(self, request, ticket, read_index);
                    },
                    [self, request, ticket](caf::error& error) { answer(self, ticket, failure(*request, error)); });
          },
          [self, request, ticket](caf::error& error) { answer(self, ticket, failure(*request, error)); });
}

void snapshot_chunk(Self self, const SharedRequest& request, Ticket ticket) {
  if (!self->state.snapshotter) {
    return answer(self, ticket, response_for(*request, ClientStatus::unavailable, "this node takes no snapshots"));
  }
  if (request->snapshot_index == 0) {
    return answer(self, ticket, response_for(*request, ClientStatus::rejected, "snapshot_chunk names no snapshot"));
  }
  const uint64_t node_id = self->state.config.node_id;
  self->request(self->state.snapshotter, caf::infinite, snapshot_read_atom_v, request->snapshot_index,
                request->snapshot_term, request->chunk_offset, uint64_t{client_snapshot_chunk_bytes_max})
      .then(
          [self, request, ticket, node_id](Frame& bytes, uint64_t total_bytes) {
            ClientResponse response = response_for(*request, ClientStatus::ok);
            response.node_id = node_id;
            response.snapshot_index = request->snapshot_index;
            response.snapshot_term = request->snapshot_term;
            response.total_bytes = total_bytes;
            response.chunk.assign(bytes.bytes.begin(), bytes.bytes.end());
            answer(self, ticket, response);
          },
          [self, request, ticket](caf::error& error) {
            // Gone (replaced by newer snapshots and removed), or unreadable: a new backup is needed.
            answer(self, ticket, response_for(*request, ClientStatus::unavailable,
                                              "reading snapshot " + std::to_string(request->snapshot_index) +
                                                  " (term " + std::to_string(request->snapshot_term) +
                                                  ") failed: " + to_status(error).to_string()));
          });
}

// §3.10: the raft node answers once the transfer is over (bounded by its election timeouts,
// far inside the request timeout). ok: node_id handed leadership to leader_hint, in `term`.
void leader_transfer(Self self, const SharedRequest& request, Ticket ticket) {
  const uint64_t node_id = self->state.config.node_id;
  self->request(self->state.raft_node, caf::infinite, leader_transfer_atom_v, request->transfer_target)
      .then(
          [self, request, ticket, node_id](uint64_t outcome, uint64_t leader, uint64_t term, std::string& why) {
            ClientResponse response;
            switch (static_cast<TransferOutcome>(outcome)) {
              case TransferOutcome::done: response = response_for(*request, ClientStatus::ok); break;
              case TransferOutcome::not_leader: return answer(self, ticket, not_leader(*request, leader));
              case TransferOutcome::refused: response = response_for(*request, ClientStatus::rejected, why); break;
              default: response = response_for(*request, ClientStatus::unavailable, why); break;
            }
            response.node_id = node_id;
            response.leader_hint = leader;
            response.term = term;
            answer(self, ticket, response);
          },
          [self, request, ticket](caf::error& error) { answer(self, ticket, failure(*request, error)); });
}

// Membership (raft_node.h member_list_atom): any node answers with the configuration it uses.
void member_list(Self self, const SharedRequest& request, Ticket ticket) {
  self->request(self->state.raft_node, caf::infinite, member_list_atom_v)
      .then(
          [self, request, ticket](Frame& frame) {
            auto view = decode_client_response(frame.bytes.data(), frame.bytes.size());
            if (!view.is_ok()) {
              return answer(self, ticket, response_for(*request, ClientStatus::unavailable, view.status().to_string()));
            }
            view->request_id = request->request_id;
            view->status = ClientStatus::ok;
            answer(self, ticket, *view);
          },
          [self, request, ticket](caf::error& error) { answer(self, ticket, failure(*request, error)); });
}

raft::ConfChangeKind change_kind(ClientOp op) {
  switch (op) {
    case ClientOp::member_add: return raft::ConfChangeKind::add_learner;
    case ClientOp::member_promote: return raft::ConfChangeKind::promote;
    default: return raft::ConfChangeKind::remove;
  }
}

// A change's answer carries the configuration in use once it is over (a second question to
// the raft node: the change is committed by then, so it is in that view).
void member_change_answered(Self self, Ticket ticket, ClientResponse response) {
  if (response.status != ClientStatus::ok) return answer(self, ticket, response);
  self->request(self->state.raft_node, caf::infinite, member_list_atom_v)
      .then(
          [self, ticket, response](Frame& frame) mutable {
            auto view = decode_client_response(frame.bytes.data(), frame.bytes.size());
            if (view.is_ok()) {
              response.configuration = std::move(view->configuration);
              response.configuration_index = view->configuration_index;
              response.configuration_committed = view->configuration_committed;
              response.commit_index = view->commit_index;
            }
            answer(self, ticket, response);
          },
          [self, ticket, response](caf::error&) { answer(self, ticket, response); });
}

// member_add, member_promote, member_remove: the raft node answers once the entry is
// committed (ok: index, term), lost, refused (rejected, why), or, for a remove of the leader
// itself, once leadership moved (not_leader naming the new leader).
void member_change(Self self, const SharedRequest& request, Ticket ticket) {
  if (request->op == ClientOp::member_add && !request->member_learner) {
    return answer(self, ticket, response_for(*request, ClientStatus::rejected,
                                             "a new member joins as a learner: add it with learner set, then "
                                             "promote it once it caught up (keyval member add does both)"));
  }
  const uint64_t node_id = self->state.config.node_id;
  self->request(self->state.raft_node, caf::infinite, member_change_atom_v,
                static_cast<uint64_t>(change_kind(request->op)), request->member_id, request->member_peer_address,
                request->member_client_address)
      .then(
          [self, request, ticket, node_id](uint64_t outcome, uint64_t leader, uint64_t index, uint64_t term,
                                           std::string& why) {
            ClientResponse response;
            switch (static_cast<ConfChangeOutcome>(outcome)) {
              case ConfChangeOutcome::done: response = response_for(*request, ClientStatus::ok); break;
              case ConfChangeOutcome::not_leader: {
                response = not_leader(*request, leader);
                if (!why.empty()) response.message = why;
                return answer(self, ticket, response);
              }
              case ConfChangeOutcome::refused: response = response_for(*request, ClientStatus::rejected, why); break;
              case ConfChangeOutcome::lost: response = response_for(*request, ClientStatus::lost, why); break;
              case ConfChangeOutcome::retry: response = response_for(*request, ClientStatus::busy, why); break;
              default: response = response_for(*request, ClientStatus::unavailable, why); break;
            }
            response.node_id = node_id;
            response.leader_hint = leader;
            response.index = index;
            response.term = term;
            member_change_answered(self, ticket, std::move(response));
          },
          [self, request, ticket](caf::error& error) { answer(self, ticket, failure(*request, error)); });
}

// A batch's writes: one proposal batch, then one wait for all their results.
void write_many(Self self, std::shared_ptr<std::vector<SharedRequest>> requests,
                std::shared_ptr<std::vector<Ticket>> tickets) {
  std::vector<std::vector<uint8_t>> payloads;
  payloads.reserve(requests->size());
  for (const SharedRequest& request : *requests) payloads.push_back(encode_command(command_of(*request)));
  auto fail_all = [self, requests, tickets](caf::error& error) {
    for (size_t i = 0; i < requests->size(); ++i) answer(self, (*tickets)[i], failure(*(*requests)[i], error));
  };
  const uint64_t node_id = self->state.config.node_id;
  self->request(self->state.raft_node, caf::infinite, raft_propose_many_atom_v, std::move(payloads))
      .then(
          [self, requests, tickets, node_id, fail_all](bool accepted, uint64_t first, uint64_t term, uint64_t hint) {
            if (!accepted) {
              for (size_t i = 0; i < requests->size(); ++i) {
                answer(self, (*tickets)[i], not_leader(*(*requests)[i], hint));
              }
              return;
            }
            self->request(self->state.state_machine, caf::infinite, wait_many_atom_v, first,
                          static_cast<uint64_t>(requests->size()), term)
                .then(
                    [self, requests, tickets, node_id, first](Frame& frame, std::vector<uint8_t>& outcomes) {
                      auto results = decode_results(frame.bytes.data(), frame.bytes.size(), "state machine results");
                      const bool whole = results.is_ok() && results->size() == requests->size() &&
                                         outcomes.size() == requests->size();
                      for (size_t i = 0; i < requests->size(); ++i) {
                        const ClientRequest& request = *(*requests)[i];
                        const uint64_t index = first + i;
                        if (!whole) {
                          answer(self, (*tickets)[i],
                                 response_for(request, ClientStatus::unavailable,
                                              results.is_ok() ? "state machine results: wrong count"
                                                              : results.status().to_string()));
                        } else if (outcomes[i] == static_cast<uint8_t>(WaitOutcome::applied)) {
                          answer(self, (*tickets)[i], write_response(request, (*results)[i], node_id));
                        } else if (outcomes[i] == static_cast<uint8_t>(WaitOutcome::lost)) {
                          answer(self, (*tickets)[i],
                                 response_for(request, ClientStatus::lost,
                                              "lost: another term's entry applied at index " + std::to_string(index)));
                        } else {
                          answer(self, (*tickets)[i],
                                 response_for(request, ClientStatus::timeout,
                                              "the result of index " + std::to_string(index) + " is no longer held"));
                        }
                      }
                    },
                    fail_all);
          },
          fail_all);
}

// The gets of a batch (read_many) or of a GetBatch (read_batch): one ReadIndex, then one read
// of every key at it: here, in one LMDB read transaction, when the state machine has applied
// that far and the keys are few; a large batch (pipelined clients) on another thread (the
// reader's, else the state machine's), while this one, which may be the network thread,
// reads the sockets' next requests. `values(values, found, served_at)` gets them in key
// order, `refused(hint)` says this node could not confirm it leads, `failed(error)` the rest.
// `without_read_index` is the planted bug get_batch_without_read_index: read whatever this
// node has applied, leader or not.
template <class Values, class Refused, class Failed>
void read_keys_at_read_index(Self self, std::shared_ptr<std::vector<std::string>> keys, bool without_read_index,
                             Values values, Refused refused, Failed failed) {
  self->request(self->state.raft_node, caf::infinite, raft_read_atom_v)
      .then(
          [self, keys, without_read_index, values, refused, failed](bool ok, uint64_t read_index,
                                                                    uint64_t hint) mutable {
            if (!ok && !without_read_index) return refused(hint);
            if (without_read_index) read_index = 0;
            const size_t count = keys->size();
            if (count < kReadHereMax && read_applied(self, *keys, read_index, values, failed)) return;
            if (count >= kReadHereMax && self->state.config.reader) {
              self->request(self->state.config.reader, caf::infinite, kv_get_many_atom_v, std::move(*keys), read_index)
                  .then(values, failed);
              return;
            }
            self->request(self->state.state_machine, caf::infinite, kv_get_many_atom_v, std::move(*keys), read_index)
                .then(values, failed);
          },
          failed);
}

// A client_batch's linearizable gets: each answered as it would be alone.
void read_many(Self self, std::shared_ptr<std::vector<SharedRequest>> requests,
               std::shared_ptr<std::vector<Ticket>> tickets) {
  auto fail_all = [self, requests, tickets](caf::error& error) {
    for (size_t i = 0; i < requests->size(); ++i) answer(self, (*tickets)[i], failure(*(*requests)[i], error));
  };
  auto refuse_all = [self, requests, tickets](uint64_t hint) {
    for (size_t i = 0; i < requests->size(); ++i) answer(self, (*tickets)[i], not_leader(*(*requests)[i], hint));
  };
  const uint64_t node_id = self->state.config.node_id;
  auto answer_all = [self, requests, tickets, node_id](std::vector<std::string>& values, std::vector<uint8_t>& found,
                                                       uint64_t served_at) {
    for (size_t i = 0; i < requests->size(); ++i) {
      ClientResponse response = response_for(*(*requests)[i], ClientStatus::ok);
      response.leader_hint = node_id;
      if (i < values.size() && i < found.size()) {
        response.found = found[i] != 0;
        response.value = std::move(values[i]);
      } else {
        response = response_for(*(*requests)[i], ClientStatus::unavailable, "state machine: wrong number of values");
      }
      response.index = served_at;
      answer(self, (*tickets)[i], std::move(response));
    }
  };
  auto keys = std::make_shared<std::vector<std::string>>();
  keys->reserve(requests->size());
  for (const SharedRequest& request : *requests) keys->push_back(request->key);
  read_keys_at_read_index(self, std::move(keys), false, answer_all, refuse_all, fail_all);
}

// A GetBatch: one answer for all its keys. The header of a refusal is what a get alone would
// be answered (not_leader, timeout, ...).
void read_batch(Self self, std::shared_ptr<std::vector<std::string>> keys, Ticket ticket) {
  static const ClientRequest batch_request;  // request id 0: the batch's answer has no id
  auto fail_all = [self, ticket](caf::error& error) { answer(self, ticket, failure(batch_request, error)); };
  auto refuse_all = [self, ticket](uint64_t hint) { answer(self, ticket, not_leader(batch_request, hint)); };
  const uint64_t node_id = self->state.config.node_id;
  const size_t count = keys->size();
  auto answer_all = [self, ticket, node_id, count](std::vector<std::string>& values, std::vector<uint8_t>& found,
                                                  uint64_t served_at) {
    if (values.size() != count || found.size() != count) {
      return answer(self, ticket,
                    response_for(batch_request, ClientStatus::unavailable, "state machine: wrong number of values"));
    }
    ClientResponse header = response_for(batch_request, ClientStatus::ok);
    header.leader_hint = node_id;
    header.index = served_at;
    answer_gets(self, ticket, std::move(header), found, values);
  };
  const bool planted = self->state.config.planted_bug == raft::PlantedBug::get_batch_without_read_index;
  read_keys_at_read_index(self, std::move(keys), planted, answer_all, refuse_all, fail_all);
}

bool is_slow(const ClientRequest& request) {
  return request.op == ClientOp::snapshot_begin || (request.op == ClientOp::status && request.hash);
}

Frame malformed_answer(const GatewayState& state, const Status& why) {
  ClientResponse response;
  response.status = ClientStatus::rejected;
  response.message = why.to_string();
  return Frame{encode_client_response(with_directory(state, response, 0))};
}

// Registers the request's deadline: its answer goes to `pending` (a promise or a batch slot).
Ticket admit(Self self, const ClientRequest& request, PendingRequest pending) {
  Ticket ticket;
  ticket.slow = is_slow(request);
  pending.request_id = request.request_id;
  pending.directory_known = request.directory_known;
  if (ticket.slow) {
    ticket.token = self->state.slow.add(self->clock().now(), std::move(pending));
    arm_slow_sweep(self);
  } else {
    ticket.token = self->state.pending.add(self->clock().now(), std::move(pending));
    arm_sweep(self);
  }
  return ticket;
}

void dispatch(Self self, const SharedRequest& shared, Ticket ticket);

caf::result<Frame> on_client(Self self, const Frame& frame) {
  auto request = decode_client_request(frame.bytes.data(), frame.bytes.size());
  if (!request.is_ok()) return malformed_answer(self->state, request.status());
  auto promise = self->make_response_promise<Frame>();
  Ticket ticket = admit(self, *request, PendingRequest{promise, 0, nullptr, 0});
  dispatch(self, std::make_shared<const ClientRequest>(std::move(*request)), ticket);
  return promise;
}

caf::result<std::vector<Frame>> on_client_batch(Self self, const std::vector<Frame>& frames) {
  auto batch = std::make_shared<BatchAnswer>();
  batch->answers.resize(frames.size());
  batch->remaining = frames.size() + 1;  // + 1 until every request is on its way: no answer before
  batch->promise = self->make_response_promise<std::vector<Frame>>();
  auto reads = std::make_shared<std::vector<SharedRequest>>();
  auto read_tickets = std::make_shared<std::vector<Ticket>>();
  auto writes = std::make_shared<std::vector<SharedRequest>>();
  auto write_tickets = std::make_shared<std::vector<Ticket>>();
  for (size_t slot = 0; slot < frames.size(); ++slot) {
    auto request = decode_client_request(frames[slot].bytes.data(), frames[slot].bytes.size());
    if (!request.is_ok()) {
      fill_slot(*batch, slot, malformed_answer(self->state, request.status()));
      continue;
    }
    Ticket ticket = admit(self, *request, PendingRequest{Promise{}, 0, batch, slot});
    auto shared = std::make_shared<const ClientRequest>(std::move(*request));
    if (shared->op == ClientOp::get && !shared->serializable) {
      reads->push_back(std::move(shared));
      read_tickets->push_back(ticket);
    } else if (is_write_op(shared->op)) {
      writes->push_back(std::move(shared));
      write_tickets->push_back(ticket);
    } else {
      dispatch(self, shared, ticket);
    }
  }
  if (reads->size() == 1) read(self, reads->front(), read_tickets->front());
  else if (!reads->empty()) read_many(self, reads, read_tickets);
  if (writes->size() == 1) write(self, writes->front(), write_tickets->front());
  else if (!writes->empty()) write_many(self, writes, write_tickets);
  if (--batch->remaining == 0) batch->promise.deliver(std::move(batch->answers));
  return batch->promise;
}

caf::result<Frame> on_client_gets(Self self, const Frame& frame) {
  auto batch = decode_get_batch(frame.bytes.data(), frame.bytes.size());
  if (!batch.is_ok()) {
    ClientResponse refusal = client_refusal(0, ClientStatus::rejected, batch.status().to_string());
    return Frame{encode_get_batch_answer(with_directory(self->state, std::move(refusal), 0), {}, {})};
  }
  auto promise = self->make_response_promise<Frame>();
  ClientRequest request;  // what admit reads: a get, no id, the batch's directory
  request.directory_known = batch->directory_known;
  PendingRequest pending{promise, 0, nullptr, 0};
  pending.gets = true;
  Ticket ticket = admit(self, request, std::move(pending));
  read_batch(self, std::make_shared<std::vector<std::string>>(std::move(batch->keys)), ticket);
  return promise;
}

void dispatch(Self self, const SharedRequest& shared, Ticket ticket) {
  switch (shared->op) {
    case ClientOp::get:
    case ClientOp::range: read(self, shared, ticket); break;
    case ClientOp::status: status(self, shared, ticket); break;
    case ClientOp::snapshot_begin: snapshot_begin(self, shared, ticket); break;
    case ClientOp::snapshot_chunk: snapshot_chunk(self, shared, ticket); break;
    case ClientOp::leader_transfer: leader_transfer(self, shared, ticket); break;
    case ClientOp::member_list: member_list(self, shared, ticket); break;
    case ClientOp::member_add:
    case ClientOp::member_promote:
    case ClientOp::member_remove: member_change(self, shared, ticket); break;
    case ClientOp::put:
    case ClientOp::del:
    case ClientOp::cas:
    case ClientOp::put_many:
    case ClientOp::del_many:
    case ClientOp::increment:
    case ClientOp::append: write(self, shared, ticket); break;
  }
}

gateway_impl_actor::behavior_type client_gateway(Self self, ClientGatewayConfig config, raft_node_actor raft_node,
                                                   state_machine_actor state_machine, snapshotter_actor snapshotter) {
  self->state.config = config;
  self->state.raft_node = std::move(raft_node);
  self->state.state_machine = std::move(state_machine);
  self->state.snapshotter = std::move(snapshotter);
  self->state.pending = Deadlines<PendingRequest>(config.request_timeout);
  self->state.slow = Deadlines<PendingRequest>(config.slow_request_timeout);
  return {
      [self](client_atom, const Frame& frame) { return on_client(self, frame); },
      [self](client_batch_atom, const std::vector<Frame>& frames) { return on_client_batch(self, frames); },
      [self](client_gets_atom, const Frame& frame) { return on_client_gets(self, frame); },
      [self](sweep_atom) { sweep(self); },
      [self](slow_sweep_atom) { slow_sweep(self); },
      [self](client_directory_atom, uint64_t leader, const std::vector<uint64_t>& ids,
             const std::vector<std::string>& addresses) { on_directory(self, leader, ids, addresses); },
  };
}

}  // namespace

Frame get_batch_frame(const std::vector<BatchedGet>& gets) {
  std::vector<std::string> keys;
  keys.reserve(gets.size());
  uint64_t directory_known = gets.empty() ? 0 : gets.front().directory_known;
  for (const BatchedGet& get : gets) {
    keys.push_back(get.key);
    if (get.directory_known != directory_known) directory_known = 0;
  }
  return Frame{encode_get_batch(keys, directory_known)};
}

Result<std::vector<Frame>> get_batch_answers(const std::vector<BatchedGet>& gets, const Frame& answer) {
  auto decoded = decode_get_batch_answer(answer.bytes.data(), answer.bytes.size());
  if (!decoded.is_ok()) return decoded.status();
  if (decoded->header.status == ClientStatus::ok && decoded->values.size() != gets.size()) {
    return Status::corruption("get batch answer: " + std::to_string(decoded->values.size()) + " values for " +
                              std::to_string(gets.size()) + " gets");
  }
  std::vector<Frame> answers;
  answers.reserve(gets.size());
  for (size_t i = 0; i < gets.size(); ++i) {
    answers.push_back(Frame{encode_client_response(get_batch_response(*decoded, i, gets[i].request_id))});
  }
  return answers;
}

client_gateway_actor spawn_client_gateway(caf::actor_system& system, ClientGatewayConfig config, raft_node_actor raft_node,
                                          state_machine_actor state_machine, snapshotter_actor snapshotter,
                                          bool on_network_thread) {
  return spawn_fun_on_network_thread(system, on_network_thread, client_gateway, config, std::move(raft_node),
                                     std::move(state_machine), std::move(snapshotter));
}

}  // namespace keyval
