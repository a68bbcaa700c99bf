// The client listener (see client_listener.h): one broker, each connection read as a stream
// of length-prefixed ClientRequest frames, every request handed to the gateway.
#include "actors/client_listener.h"

#include "actors/read_size.h"

#include <algorithm>
#include <caf/io/all.hpp>
#include <map>

#include "actors/bind_failure.h"
#include "actors/deadlines.h"
#include "actors/direct_send.h"
#include "actors/framing.h"

namespace keyval {
namespace {

// A connection reads whatever the socket has (at most this much at a time) and parses the
// frames from a buffer that holds at most one partial frame besides: every request a read
// holds is handled in one go (one recv for a request and its header, not two).
constexpr size_t read_bytes_min = 4u << 10;   // a connection's reads: 4 KiB ...
constexpr size_t read_bytes_max = 64u << 10;  // ... to 64 KiB (actors/read_size.h)

struct ClientConnection {
  // CAF 0.17 names a connection by its socket descriptor, which the kernel hands to the next
  // connection once this one is closed: a gateway answer finds its connection by this serial.
  uint64_t serial = 0;
  uint32_t payload_bytes = 0;  // the frame being read; 0 while reading a header
  ReadSize read_size{read_bytes_min, read_bytes_max};  // what each read asks for (read_size.h)
  size_t requests_in_flight = 0;
  std::shared_ptr<TlsStream> tls;  // null: plaintext
  std::vector<uint8_t> plain;      // bytes read (decrypted, for TLS), not parsed yet
  DirectSocket socket;             // answers are sent straight to it (actors/direct_send.h)
};

// A request handed to the gateway and not answered yet. The connection may be gone by the
// answer, or replaced by a newer one with the same handle: the serial tells.
struct ForwardedRequest {
  caf::io::connection_handle handle;
  uint64_t serial;
  uint64_t request_id;
  ClientOp op;                                   // for the metrics
  std::chrono::steady_clock::time_point arrived;  // for the metrics
};

// Sends the requests read since the last flush to the gateway (see flush_outbox).
using flush_atom = caf::atom_constant<caf::atom("cflush")>;
constexpr flush_atom flush_atom_v{};

// A request read and not yet sent: its deadline token, its frame, and which batch it may join.
struct Outgoing {
  uint64_t token = 0;
  Frame request;
  BatchKind kind = BatchKind::alone;
  BatchedGet get;  // kind reads: the get, for a GetBatch
};

struct ListenerState {
  ClientListenerConfig config;
  std::vector<Outgoing> outbox;
  client_gateway_actor gateway;
  Deadlines<ForwardedRequest> forwarded;  // a net under the gateway's own deadline
  uint16_t port = 0;
  std::map<caf::io::connection_handle, ClientConnection> connections;
  uint64_t connections_accepted = 0;  // the last serial handed out
  static inline const char* name = "client_listener";
};

using Broker = caf::io::stateful_broker<ListenerState>;

// The open-connections gauge follows the map (a close that CAF reports after the listener
// erased the connection itself is not counted twice).
void publish_connections(Broker* self) {
  if (self->state.config.metrics) {
    self->state.config.metrics->client_connections.set(static_cast<int64_t>(self->state.connections.size()));
  }
}

void log_line(Broker* self, const std::string& line) {
  if (self->state.config.log) self->state.config.log("client listener: " + line);
}

std::string peer_of(Broker* self, caf::io::connection_handle handle) {
  return self->remote_addr(handle) + ":" + std::to_string(self->remote_port(handle));
}

// Every write of a connection goes through here: straight to its socket when it can, in order
// behind what CAF still holds of it otherwise (actors/direct_send.h). A connection this
// listener no longer holds is written by CAF alone.
void write_bytes(Broker* self, caf::io::connection_handle handle, std::initializer_list<DirectPiece> pieces) {
  auto found = self->state.connections.find(handle);
  DirectSocket unknown;
  send_direct(self, handle, found != self->state.connections.end() ? found->second.socket : unknown, pieces);
}

// Writes the ciphertext a TLS connection has produced.
void write_tls_output(Broker* self, caf::io::connection_handle handle, TlsStream& tls) {
  auto out = tls.take_output();
  if (out.empty()) return;
  write_bytes(self, handle, {{out.data(), out.size()}});
}

void write_frame(Broker* self, caf::io::connection_handle handle, const std::vector<uint8_t>& payload) {
  uint8_t header[frame_header_bytes];
  write_frame_header(header, static_cast<uint32_t>(payload.size()));
  auto found = self->state.connections.find(handle);
  if (found != self->state.connections.end() && found->second.tls) {
    auto& tls = *found->second.tls;
    std::vector<uint8_t> frame(header, header + sizeof header);
    frame.insert(frame.end(), payload.begin(), payload.end());
    if (tls.send(frame.data(), frame.size()).is_ok()) write_tls_output(self, handle, tls);
    return;
  }
  write_bytes(self, handle, {{header, sizeof header}, {payload.data(), payload.size()}});
}

// One refusal, then close: CAF writes what is buffered before it sends the FIN.
void refuse_and_close(Broker* self, caf::io::connection_handle handle, ClientStatus status, const std::string& why) {
  log_line(self, "connection " + peer_of(self, handle) + " closed: " + why);
  write_frame(self, handle, encode_client_response(client_refusal(0, status, why)));
  self->state.connections.erase(handle);
  publish_connections(self);
  self->close(handle);
}

void respond(Broker* self, caf::io::connection_handle handle, const ClientResponse& response) {
  write_frame(self, handle, encode_client_response(response));
}

// One request answered: counted by operation and outcome, its time since arrival observed.
void count_request(Broker* self, ClientOp op, ClientStatus outcome, std::chrono::steady_clock::time_point arrived) {
  if (!self->state.config.metrics) return;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - arrived).count();
  self->state.config.metrics->client_request(client_op_name(op), client_status_name(outcome), seconds);
}

void count_answer(Broker* self, const ForwardedRequest& request, const std::vector<uint8_t>& response) {
  if (!self->state.config.metrics) return;
  auto status = peek_client_status(response.data(), response.size());
  count_request(self, request.op, status.is_ok() ? *status : ClientStatus::unavailable, request.arrived);
}

// The connection a forwarded request came on, if the client is still there (not a newer
// connection that got the same handle); it has one request less in flight.
ClientConnection* connection_of(Broker* self, const ForwardedRequest& request) {
  auto found = self->state.connections.find(request.handle);
  if (found == self->state.connections.end() || found->second.serial != request.serial) return nullptr;
  KV_ASSERT(found->second.requests_in_flight > 0);
  --found->second.requests_in_flight;
  return &found->second;
}

void arm_sweep(Broker* self) {
  keyval::arm_sweep(self->state.forwarded, caf::actor_cast<caf::actor>(self), self->clock());
}

void sweep(Broker* self) {
  self->state.forwarded.sweep(self->clock().now(), [self](const ForwardedRequest& request) {
    if (!connection_of(self, request)) return;
    count_request(self, request.op, ClientStatus::timeout, request.arrived);
    respond(self, request.handle,
            client_refusal(request.request_id, ClientStatus::timeout, "gateway did not answer in time"));
  });
  arm_sweep(self);
}

// The gateway keeps each request's deadline (it always answers); the listener's own, longer
// one only catches a gateway that is stuck.
void forward_to_gateway(Broker* self, caf::io::connection_handle handle, ClientConnection& connection,
                        uint64_t request_id, ClientOp op, BatchKind kind, std::chrono::steady_clock::time_point arrived,
                        Frame request, BatchedGet get) {
  ++connection.requests_in_flight;
  const uint64_t token = self->state.forwarded.add(
      self->clock().now(), ForwardedRequest{handle, connection.serial, request_id, op, arrived});
  arm_sweep(self);
  // Sent once the multiplexer has handed this broker every socket event of its cycle: a
  // message to itself is handled after them (CAF 0.17's default_multiplexer resumes brokers
  // posted from its own thread at its next poll), so the requests of every connection read
  // in one cycle go to the gateway together. Sent without a sender, like the sweep.
  if (self->state.outbox.empty()) caf::anon_send(caf::actor_cast<caf::actor>(self), flush_atom_v);
  self->state.outbox.push_back(Outgoing{token, std::move(request), kind, std::move(get)});
}

void answer_forwarded(Broker* self, uint64_t token, const Frame& response) {
  auto request = self->state.forwarded.take(token);
  if (!request || !connection_of(self, *request)) return;  // timed out, or the client left
  if (response.bytes.size() <= self->state.config.frame_bytes_max) {
    count_answer(self, *request, response.bytes);
    return write_frame(self, request->handle, response.bytes);
  }
  count_request(self, request->op, ClientStatus::rejected, request->arrived);
  respond(self, request->handle, client_refusal(request->request_id, ClientStatus::rejected, "response too large"));
}

void fail_forwarded(Broker* self, uint64_t token, const std::string& why) {
  auto request = self->state.forwarded.take(token);
  if (!request || !connection_of(self, *request)) return;
  count_request(self, request->op, ClientStatus::unavailable, request->arrived);
  respond(self, request->handle, client_refusal(request->request_id, ClientStatus::unavailable, why));
}

// One request goes alone; several of a kind go as one client_batch (one message to the
// gateway, whose writes become one proposal batch and whose gets share one ReadIndex).
// Several gets: one GetBatch (at most get_batch_keys_max gets each), each get answered from it.
void send_gets(Broker* self, std::vector<Outgoing> outbox) {
  for (size_t begin = 0; begin < outbox.size(); begin += get_batch_keys_max) {
    const size_t end = std::min(outbox.size(), begin + get_batch_keys_max);
    std::vector<BatchedGet> gets;
    std::vector<uint64_t> tokens;
    gets.reserve(end - begin);
    tokens.reserve(end - begin);
    for (size_t i = begin; i < end; ++i) {
      gets.push_back(std::move(outbox[i].get));
      tokens.push_back(outbox[i].token);
    }
    Frame batch = get_batch_frame(gets);
    self->request(self->state.gateway, caf::infinite, client_gets_atom_v, std::move(batch))
        .then(
            [self, gets, tokens](Frame& answer) {
              auto answers = get_batch_answers(gets, answer);
              for (size_t i = 0; i < tokens.size(); ++i) {
                if (answers.is_ok()) answer_forwarded(self, tokens[i], (*answers)[i]);
                else fail_forwarded(self, tokens[i], "gateway: " + answers.status().to_string());
              }
            },
            [self, tokens](caf::error& error) {
              for (uint64_t token : tokens) fail_forwarded(self, token, "gateway failed: " + self->system().render(error));
            });
  }
}

void send_group(Broker* self, std::vector<Outgoing> outbox) {
  if (outbox.empty()) return;
  if (outbox.size() > 1 && outbox.front().kind == BatchKind::reads) return send_gets(self, std::move(outbox));
  if (outbox.size() == 1) {
    const uint64_t token = outbox.front().token;
    self->request(self->state.gateway, caf::infinite, client_atom_v, std::move(outbox.front().request))
        .then([self, token](Frame& response) { answer_forwarded(self, token, response); },
              [self, token](caf::error& error) {
                fail_forwarded(self, token, "gateway failed: " + self->system().render(error));
              });
    return;
  }
  std::vector<Frame> requests;
  std::vector<uint64_t> tokens;
  requests.reserve(outbox.size());
  tokens.reserve(outbox.size());
  for (Outgoing& one : outbox) {
    tokens.push_back(one.token);
    requests.push_back(std::move(one.request));
  }
  self->request(self->state.gateway, caf::infinite, client_batch_atom_v, std::move(requests))
      .then(
          [self, tokens](std::vector<Frame>& answers) {
            for (size_t i = 0; i < tokens.size(); ++i) {
              if (i < answers.size()) answer_forwarded(self, tokens[i], answers[i]);
              else fail_forwarded(self, tokens[i], "gateway answered too few requests");
            }
          },
          [self, tokens](caf::error& error) {
            for (uint64_t token : tokens) fail_forwarded(self, token, "gateway failed: " + self->system().render(error));
          });
}

// A batch is answered once its last request is: linearizable gets go together (one ReadIndex,
// one read), writes together (one proposal batch, one wait), every other request alone, so
// no request waits for one of another kind (a backup, a membership change, a write).
void flush_outbox(Broker* self) {
  std::vector<Outgoing> outbox = std::move(self->state.outbox);
  self->state.outbox.clear();
  send_by_kind(std::move(outbox), [self](std::vector<Outgoing> group) { send_group(self, std::move(group)); });
}

void read_header(Broker* self, caf::io::connection_handle handle, ClientConnection& connection, const uint8_t* bytes) {
  uint32_t length = read_frame_header(bytes);
  if (length == 0 || length > self->state.config.frame_bytes_max) {
    return refuse_and_close(self, handle, ClientStatus::rejected,
                            "frame length " + std::to_string(length) + " out of bounds (1.." +
                                std::to_string(self->state.config.frame_bytes_max) + ")");
  }
  connection.payload_bytes = length;
}

void read_request(Broker* self, caf::io::connection_handle handle, ClientConnection& connection, const uint8_t* bytes,
                  size_t size) {
  auto request = decode_client_request(bytes, size);
  if (!request.is_ok()) {
    return refuse_and_close(self, handle, ClientStatus::rejected, "malformed request: " + request.status().message());
  }
  connection.payload_bytes = 0;
  uint64_t request_id = request.value().request_id;
  const ClientOp op = request.value().op;
  const BatchKind kind = batch_kind(request.value());
  const auto arrived = std::chrono::steady_clock::now();
  if (connection.requests_in_flight >= self->state.config.requests_in_flight_max) {
    count_request(self, op, ClientStatus::busy, arrived);
    return respond(self, handle, client_refusal(request_id, ClientStatus::busy, "too many requests in flight"));
  }
  BatchedGet get;
  if (kind == BatchKind::reads) get = BatchedGet{request_id, std::move(request.value().key), request.value().directory_known};
  forward_to_gateway(self, handle, connection, request_id, op, kind, arrived,
                     Frame{std::vector<uint8_t>(bytes, bytes + size)}, std::move(get));
}

// Every complete header and request in the connection's buffer, in order; what is left (part
// of a frame) stays for the next read. Stops when the connection is closed meanwhile.
void parse_frames(Broker* self, caf::io::connection_handle handle, uint64_t serial) {
  size_t offset = 0;
  while (true) {
    auto found = self->state.connections.find(handle);
    if (found == self->state.connections.end() || found->second.serial != serial) return;  // closed meanwhile
    auto& current = found->second;
    const size_t need = current.payload_bytes == 0 ? frame_header_bytes : current.payload_bytes;
    if (current.plain.size() - offset < need) {
      current.plain.erase(current.plain.begin(), current.plain.begin() + static_cast<std::ptrdiff_t>(offset));
      return;
    }
    const uint8_t* at = current.plain.data() + offset;
    offset += need;
    if (current.payload_bytes == 0) {
      read_header(self, handle, current, at);
    } else {
      read_request(self, handle, current, at, need);
    }
  }
}

// A TLS connection's bytes: decrypted, then every complete header and request in the plaintext.
void read_tls(Broker* self, caf::io::connection_handle handle, ClientConnection& connection,
              const std::vector<char>& bytes) {
  auto tls = connection.tls;  // kept alive while the connection may be erased below
  const bool was_done = tls->handshake_done();
  Status received = tls->receive(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &connection.plain);
  write_tls_output(self, handle, *tls);
  if (!received.is_ok()) {
    log_line(self, "connection " + peer_of(self, handle) + " closed: " + received.message() +
                       (was_done ? "" : " (a client without TLS, or without an accepted certificate?)"));
    self->state.connections.erase(handle);
    publish_connections(self);
    self->close(handle);
    return;
  }
  parse_frames(self, handle, connection.serial);
}

void read_data(Broker* self, caf::io::new_data_msg& message) {
  auto found = self->state.connections.find(message.handle);
  if (found == self->state.connections.end()) return;
  ReadSize& read_size = found->second.read_size;
  if (read_size.after_read(message.buf.size())) {
    self->configure_read(message.handle, caf::io::receive_policy::at_most(read_size.current()));
  }
  if (found->second.tls) return read_tls(self, message.handle, found->second, message.buf);
  std::vector<uint8_t>& plain = found->second.plain;
  plain.insert(plain.end(), message.buf.begin(), message.buf.end());
  parse_frames(self, message.handle, found->second.serial);
}

void accept_connection(Broker* self, caf::io::connection_handle handle) {
  if (self->state.connections.size() >= self->state.config.connections_max) {
    return refuse_and_close(self, handle, ClientStatus::busy, "too many connections");
  }
  auto& connection = self->state.connections[handle];
  connection.serial = ++self->state.connections_accepted;
  publish_connections(self);
  if (self->state.config.metrics) self->state.config.metrics->client_connections_accepted.add();
  if (self->state.config.tls) {
    connection.tls = std::make_shared<TlsStream>(self->state.config.tls);
  }
  connection.socket.fd = accepted_socket(self, handle);
  self->configure_read(handle, caf::io::receive_policy::at_most(connection.read_size.current()));
}

caf::behavior client_listener(Broker* self, ClientListenerConfig config, client_gateway_actor gateway,
                              caf::io::doorman_ptr doorman) {
  auto& state = self->state;
  state.port = doorman->port();
  self->add_doorman(std::move(doorman));
  state.config = std::move(config);
  state.gateway = std::move(gateway);
  state.forwarded = Deadlines<ForwardedRequest>(state.config.request_timeout);
  log_line(self, "listening on " + state.config.host + ":" + std::to_string(state.port) +
                     (state.config.tls ? " (TLS)" : ""));
  return {
      [self](bounds_atom) { return self->state.port; },
      [self](sweep_atom) { sweep(self); },
      [self](flush_atom) { flush_outbox(self); },
      [self](const caf::io::new_connection_msg& message) { accept_connection(self, message.handle); },
      [self](caf::io::new_data_msg& message) { read_data(self, message); },
      [self](const caf::io::data_transferred_msg& message) {
        auto found = self->state.connections.find(message.handle);
        if (found != self->state.connections.end()) {
          direct_transferred(self, message.handle, found->second.socket, message.written);
        }
      },
      [self](const caf::io::connection_closed_msg& message) {
        self->state.connections.erase(message.handle);
        publish_connections(self);
      },
      [self](const caf::io::acceptor_closed_msg&) { log_line(self, "listener closed"); },
  };
}

}  // namespace

caf::actor spawn_client_listener(caf::actor_system& system, ClientListenerConfig config,
                                 client_gateway_actor gateway) {
  KV_ASSERT(config.frame_bytes_max > 0 && config.connections_max > 0 && config.requests_in_flight_max > 0);
  // Reuse the address so that a restarted node gets its port back despite TIME_WAIT links.
  auto doorman = system.middleman().backend().new_tcp_doorman(config.port, config.host.c_str(), true);
  if (!doorman) {
    if (config.log) {
      config.log("client listener: cannot listen on " + config.host + ":" + std::to_string(config.port) + ": " +
                 bind_failure(config.host, config.port, system.render(doorman.error())));
    }
    return {};
  }
  return system.middleman().spawn_broker(client_listener, std::move(config), std::move(gateway), std::move(*doorman));
}

}  // namespace keyval
