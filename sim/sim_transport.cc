// The simulated transport and client port (see sim_transport.h).
#include "sim/sim_transport.h"

#include <caf/actor_companion.hpp>

namespace keyval::sim {

// The actors' state is passed as spawn arguments, not captured: CAF 0.17 runs a function actor
// spawned without arguments through a null tuple pointer (UBSan: reference binding to null).

// A companion actor: CAF calls its handler in `enqueue`, so a frame the raft node sends is a
// packet in the simulated network when the send returns. A transport actor of its own would
// add a job per packet to the node's schedule, a step that stands for nothing a real node
// does between its raft node and its socket (the network's delays and faults are the
// simulator's). The companion never runs as a job; `stop_sim_transport` ends it.
caf::actor spawn_sim_transport(caf::actor_system& system, uint64_t node_id, PacketSink send) {
  caf::actor transport = system.spawn<caf::actor_companion>();
  auto* companion = static_cast<caf::actor_companion*>(caf::actor_cast<caf::abstract_actor*>(transport));
  companion->on_enqueue([node_id, sink = std::move(send)](caf::mailbox_element_ptr element) {
    caf::message content = element->move_content_to_message();
    if (!content.match_elements<transport_send_atom, uint64_t, Frame>()) return;  // peers to dial, exits
    sink(node_id, content.get_as<uint64_t>(1), std::move(content.get_mutable_as<Frame>(2).bytes));
  });
  return transport;
}

void stop_sim_transport(const caf::actor& transport) {
  if (!transport) return;
  // What actor_companion::disconnect does (declared in CAF 0.17.6, not in its library).
  auto* companion = static_cast<caf::actor_companion*>(caf::actor_cast<caf::abstract_actor*>(transport));
  companion->on_enqueue(nullptr);
  companion->cleanup(caf::make_error(caf::exit_reason::kill), nullptr);
}

namespace {

using port_flush_atom = caf::atom_constant<caf::atom("pflush")>;

// A request the port received since its last flush.
struct Queued {
  uint64_t call = 0;
  Frame request;
  BatchKind kind = BatchKind::alone;
  BatchedGet get;  // kind reads: the get, for a GetBatch
};

struct PortState {
  std::vector<Queued> queued;
};

// As the node's client listener: requests queue until a message the port sends itself comes
// up, then go to the gateway alone or as one client_batch. A real listener flushes at the end
// of its multiplexer's cycle, which under load holds the requests of many connections; the
// simulated clients are few and their requests rarely arrive together, so the port waits a
// short window of virtual time instead: batches, proposal batches and shared ReadIndexes are
// exercised under every fault.
constexpr auto port_batch_window = std::chrono::microseconds(1000);
void send_group(caf::stateful_actor<PortState>* self, const client_gateway_actor& to, const ReplySink& sink,
                std::vector<Queued> queued) {
  if (queued.empty()) return;
  if (queued.size() == 1) {
    const uint64_t call = queued.front().call;
    self->request(to, caf::infinite, client_atom_v, std::move(queued.front().request))
        .then([sink, call](Frame& response) { sink(call, std::move(response.bytes)); },
              [](caf::error&) {});  // the gateway is gone: the node is stopping, the client times out
    return;
  }
  if (queued.front().kind == BatchKind::reads) {
    // Several gets: one GetBatch, as the client listener sends them (get_batch_keys_max is
    // far above what the simulated clients have in flight).
    std::vector<uint64_t> calls;
    std::vector<BatchedGet> gets;
    for (Queued& one : queued) {
      calls.push_back(one.call);
      gets.push_back(std::move(one.get));
    }
    Frame batch = get_batch_frame(gets);
    self->request(to, caf::infinite, client_gets_atom_v, std::move(batch))
        .then(
            [sink, calls, gets](Frame& answer) {
              // A malformed batch answer is a gateway bug: each get then gets no bytes, which
              // the simulator reports as a malformed client response (a violation).
              auto answers = get_batch_answers(gets, answer);
              for (size_t i = 0; i < calls.size(); ++i) {
                sink(calls[i], answers.is_ok() ? std::move((*answers)[i].bytes) : std::vector<uint8_t>{});
              }
            },
            [](caf::error&) {});  // the gateway is gone: the node is stopping, the clients time out
    return;
  }
  std::vector<uint64_t> calls;
  std::vector<Frame> requests;
  for (Queued& one : queued) {
    calls.push_back(one.call);
    requests.push_back(std::move(one.request));
  }
  self->request(to, caf::infinite, client_batch_atom_v, std::move(requests))
      .then(
          [sink, calls](std::vector<Frame>& responses) {
            for (size_t i = 0; i < calls.size() && i < responses.size(); ++i) sink(calls[i], std::move(responses[i].bytes));
          },
          [](caf::error&) {});
}

// Grouped as the listeners group (batch_kind): gets together, writes together, the rest alone.
void flush_port(caf::stateful_actor<PortState>* self, const client_gateway_actor& to, const ReplySink& sink) {
  auto queued = std::move(self->state.queued);
  self->state.queued.clear();
  send_by_kind(std::move(queued),
               [self, &to, &sink](std::vector<Queued> group) { send_group(self, to, sink, std::move(group)); });
}

}  // namespace

caf::actor spawn_sim_client_port(caf::actor_system& system, client_gateway_actor gateway, ReplySink reply) {
  return system.spawn(
      [](caf::stateful_actor<PortState>* self, client_gateway_actor to, ReplySink sink) -> caf::behavior {
        return {
            [self](client_atom, uint64_t call, Frame& frame) {
              if (self->state.queued.empty()) {
                caf::delayed_anon_send(caf::actor_cast<caf::actor>(self), port_batch_window, port_flush_atom::value);
              }
              auto request = decode_client_request(frame.bytes.data(), frame.bytes.size());
              const BatchKind kind = request.is_ok() ? batch_kind(*request) : BatchKind::alone;
              BatchedGet get;
              if (kind == BatchKind::reads) get = BatchedGet{request->request_id, request->key, request->directory_known};
              self->state.queued.push_back(Queued{call, std::move(frame), kind, std::move(get)});
            },
            [self, to, sink](port_flush_atom) { flush_port(self, to, sink); },
        };
      },
      std::move(gateway), std::move(reply));
}

}  // namespace keyval::sim
