// The TCP peer transport (see tcp_transport.h): one broker, outgoing links per peer with
// bounded queues and backoff, incoming links parsed as the handshake (actors/peer_handshake.h)
// then length-prefixed frames.
#include "actors/tcp_transport.h"

#include "actors/bind_failure.h"
#include "actors/broker_exit.h"
#include "actors/read_size.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <caf/io/all.hpp>
#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>
#include <tuple>

#include "actors/framing.h"
#include "actors/peer_handshake.h"
#include "actors/tls.h"

namespace keyval {
namespace {

using reconnect_atom = caf::atom_constant<caf::atom("tcpreconn")>;
constexpr reconnect_atom reconnect_atom_v{};
// (incoming_handshake_atom, serial) and (dial_handshake_atom, peer id, attempt): a handshake's deadline.
using incoming_handshake_atom = caf::atom_constant<caf::atom("tcphsin")>;
constexpr incoming_handshake_atom incoming_handshake_atom_v{};
using dial_handshake_atom = caf::atom_constant<caf::atom("tcphsout")>;
constexpr dial_handshake_atom dial_handshake_atom_v{};

// The same refusal (remote host and reason) is logged at most once per this interval: a peer
// with a wrong secret redials every half second.
constexpr std::chrono::seconds refusal_log_interval{10};
constexpr size_t refusals_remembered_max = 1024;

// Bytes handed to CAF's write buffer at a time. Small, so that almost everything waiting
// for a slow peer stays in our queue, where the oldest frames can still be dropped.
constexpr size_t socket_window_bytes = 256u << 10;

// Outgoing links never carry data back after the handshake; reading them only notices the peer's close.
constexpr size_t outgoing_read_bytes_max = 256;
// A TLS link reads what the socket has, at most this much at a time.
constexpr size_t tls_read_bytes_max = 64u << 10;
constexpr size_t tls_read_bytes_min = 4u << 10;
// Plaintext an incoming TLS link may hold before its handshake is done (the handshake is 89 bytes).
constexpr size_t tls_plain_before_handshake_bytes_max = 4096;

struct OutgoingLink {
  TcpPeerAddress address;
  std::deque<std::vector<uint8_t>> queue;  // payloads, oldest first (the header is written with each)
  size_t queued_bytes = 0;
  size_t in_flight_bytes = 0;  // handed to the socket, not yet written by it
  std::optional<caf::io::connection_handle> connection;
  bool connected = false;      // the current connection has written bytes: TCP is connected
  bool up = false;             // the current connection's handshake is done: frames may go
  PeerHello hello;             // the current connection's hello (its nonce, for the proofs)
  uint64_t attempt = 0;        // bumped at each connect: older handshake deadlines are stale
  std::string down_reason;     // the reason logged with the last "down"
  std::shared_ptr<TlsStream> tls;  // the current connection's TLS (null: plaintext)
  std::vector<uint8_t> plain;      // TLS: the reply's plaintext read so far
  ReadSize read_size{tls_read_bytes_min, tls_read_bytes_max};  // TLS: what each read asks for
  bool reported_down = false;  // "down" logged since the last "up" (one line per transition)
  bool overflowing = false;    // "queue full" logged since the queue last drained
  uint32_t backoff_ms = 0;
  uint64_t epoch = 0;  // bumped when the address changes: older reconnect timers are stale
};

// An incoming link reads, in turn, the hello's magic, the rest of the hello, the dialer's proof
// (cluster secret only), then frames; each step asks for exactly its bytes, so nothing is
// buffered beyond the step's size before the dialer has proved itself.
enum class IncomingStage { magic, hello, proof, frames };

struct IncomingLink {
  IncomingStage stage = IncomingStage::magic;
  uint64_t serial = 0;         // names the link in its handshake deadline (handles are reused)
  std::string remote;          // "ADDRESS:PORT", for the log
  PeerHello hello;             // once read
  PeerNonce acceptor_nonce{};  // sent in the reply
  uint64_t peer_id = 0;        // 0 until the handshake is done
  uint32_t payload_bytes = 0;  // the frame being read; 0 while reading a header
  std::shared_ptr<TlsStream> tls;  // null: plaintext
  std::vector<uint8_t> plain;      // TLS: plaintext read, not parsed yet
  // TLS: what each read asks for. Records arrive in any size, so reads follow what they bring
  // (read_size.h): a fixed 64 KiB cost a 64 KiB memset per read event in CAF 0.17.
  ReadSize read_size{tls_read_bytes_min, tls_read_bytes_max};
};

struct TransportState {
  TcpTransportConfig config;
  caf::actor raft_node;
  uint16_t port = 0;
  std::map<uint64_t, OutgoingLink> peers;
  std::map<caf::io::connection_handle, uint64_t> outgoing;  // handle -> peer id
  std::map<caf::io::connection_handle, IncomingLink> incoming;
  uint64_t incoming_serial = 0;  // the last serial handed out
  std::map<std::string, std::chrono::steady_clock::time_point> refusals_logged;  // host + reason -> when
  uint64_t frames_dropped_outgoing = 0, frames_dropped_incoming = 0, frames_delivered = 0;
  bool stopping = false;  // an exit message came: no new connection (actors/broker_exit.h)
  static inline const char* name = "tcp_transport";
};

using Broker = caf::io::stateful_broker<TransportState>;

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
};

// "HOST:PORT" or "[V6]:PORT" as an address (the host is checked where it is dialed).
std::optional<TcpPeerAddress> parse_peer_address(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= text.size()) return std::nullopt;
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  uint32_t port = 0;
  for (size_t i = colon + 1; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    port = port * 10 + static_cast<uint32_t>(text[i] - '0');
    if (port > 65535) return std::nullopt;
  }
  if (port == 0) return std::nullopt;
  return TcpPeerAddress{host, static_cast<uint16_t>(port)};
}

std::optional<SocketAddress> numeric_address(const TcpPeerAddress& address) {
  const std::string host = address.host == "localhost" ? "127.0.0.1" : address.host;
  SocketAddress out;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(address.port);
    out.length = sizeof(sockaddr_in);
    return out;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(address.port);
    out.length = sizeof(sockaddr_in6);
    return out;
  }
  return std::nullopt;
}

// Starts a connect without waiting for the handshake; the multiplexer reports the outcome
// (bytes written: up; an error: connection_closed_msg).
Result<int> start_connect(const TcpPeerAddress& address) {
  auto resolved = numeric_address(address);
  if (!resolved) return Status::invalid_argument("not a numeric address: " + address.host);
  int fd = ::socket(resolved->storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::io_error(std::string("socket: ") + std::strerror(errno));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&resolved->storage), resolved->length) != 0 &&
      errno != EINPROGRESS) {
    int error_number = errno;
    ::close(fd);
    return Status::io_error(std::string("connect: ") + std::strerror(error_number));
  }
  return fd;
}

void log_line(Broker* self, const std::string& line) {
  if (self->state.config.log) self->state.config.log("transport " + std::to_string(self->state.config.node_id) + ": " + line);
}

std::string peer_name(uint64_t peer_id) { return "peer " + std::to_string(peer_id); }

PeerLinkMode own_mode(const TransportState& state) {
  return state.config.cluster_secret.empty() ? PeerLinkMode::open : PeerLinkMode::secret;
}

std::string address_text(const TcpPeerAddress& address) { return address.host + ":" + std::to_string(address.port); }

// Logs a refused link, unless the same host was refused for the same reason a moment ago.
void log_refusal(Broker* self, const std::string& host, const std::string& line, const std::string& reason) {
  auto& logged = self->state.refusals_logged;
  const auto now = std::chrono::steady_clock::now();
  auto key = host + "|" + reason;
  auto found = logged.find(key);
  if (found != logged.end() && now - found->second < refusal_log_interval) return;
  if (logged.size() >= refusals_remembered_max) logged.clear();
  logged[key] = now;
  log_line(self, line);
}

// --- outgoing links ------------------------------------------------------------------

// Sent without a sender: a broker's cleanup (CAF 0.17) never empties its mailbox, so a
// message naming the broker as its sender that arrives after the broker quit would keep
// the broker alive through its own mailbox (a reference cycle, found by LeakSanitizer).
void schedule_reconnect(Broker* self, uint64_t peer_id, OutgoingLink& link) {
  caf::delayed_anon_send(caf::actor_cast<caf::actor>(self), std::chrono::milliseconds(link.backoff_ms),
                         reconnect_atom_v, peer_id, link.epoch);
  link.backoff_ms = std::min(link.backoff_ms * 2, self->state.config.reconnect_backoff_ms_max);
}

// The link's connection is gone (failed, closed, or replaced): what it had not written is lost.
void forget_connection(Broker* self, OutgoingLink& link) {
  if (link.connection) self->state.outgoing.erase(*link.connection);
  link.connection.reset();
  link.connected = false;
  link.up = false;
  link.tls.reset();
  link.plain.clear();
  link.in_flight_bytes = 0;
}

void drop_outgoing(Broker* self, uint64_t peer_id, OutgoingLink& link) {
  ++self->state.frames_dropped_outgoing;
  if (!link.overflowing) log_line(self, peer_name(peer_id) + " send queue full: dropping the oldest frames");
  link.overflowing = true;
}

// The bound on a link's queue: smaller while the peer is not reachable.
size_t queue_bound(const TransportState& state, const OutgoingLink& link) {
  return link.up ? state.config.send_queue_bytes_max
                 : std::min(state.config.send_queue_bytes_max, state.config.down_queue_bytes_max);
}

// Evicts the oldest queued frames until `incoming` more bytes fit the link's bound (the
// newest frame always stays).
void trim_queue(Broker* self, uint64_t peer_id, OutgoingLink& link, size_t incoming) {
  const size_t bound = queue_bound(self->state, link);
  while (!link.queue.empty() && (incoming > 0 || link.queue.size() > 1) &&
         link.queued_bytes + link.in_flight_bytes + incoming > bound) {
    link.queued_bytes -= frame_header_bytes + link.queue.front().size();
    link.queue.pop_front();
    drop_outgoing(self, peer_id, link);
  }
}

void link_failed(Broker* self, uint64_t peer_id, OutgoingLink& link, const std::string& why) {
  forget_connection(self, link);
  trim_queue(self, peer_id, link, 0);
  if (!link.reported_down || why != link.down_reason) {
    log_line(self, peer_name(peer_id) + " down" + (why.empty() ? "" : " (" + why + ")"));
  }
  link.reported_down = true;
  link.down_reason = why;
  schedule_reconnect(self, peer_id, link);
}

// Writes bytes on an outgoing link (through its TLS stream when it has one) and counts what was
// handed to the socket as in flight.
void write_outgoing(Broker* self, OutgoingLink& link, const uint8_t* data, size_t bytes) {
  if (!link.tls) {
    self->write(*link.connection, bytes, data);
  } else {
    // A failed TLS write leaves nothing to send: the link's read side reports the failure.
    if (!link.tls->send(data, bytes).is_ok()) return;
    auto out = link.tls->take_output();
    if (out.empty()) return;
    self->write(*link.connection, out.size(), out.data());
    bytes = out.size();
  }
  self->flush(*link.connection);
  link.in_flight_bytes += bytes;
}

void connect_peer(Broker* self, uint64_t peer_id, OutgoingLink& link) {
  if (self->state.stopping) return;
  auto fd = start_connect(link.address);
  if (!fd.is_ok()) return link_failed(self, peer_id, link, fd.status().message());
  auto handle = self->add_scribe(fd.value());
  link.connection = handle;
  self->state.outgoing[handle] = peer_id;
  // Write acknowledgements tell us when TCP is connected and how much is still buffered.
  self->ack_writes(handle, true);
  // The acceptor's reply, exactly; after the handshake, reads only notice the peer's close.
  const PeerLinkMode mode = own_mode(self->state);
  link.hello = PeerHello{self->state.config.node_id, peer_id, mode, make_peer_nonce(mode)};
  auto hello = encode_peer_hello(link.hello);
  if (self->state.config.tls_client) {
    link.tls = std::make_shared<TlsStream>(self->state.config.tls_client);
    link.read_size = ReadSize{tls_read_bytes_min, tls_read_bytes_max};
    self->configure_read(handle, caf::io::receive_policy::at_most(link.read_size.current()));
  } else {
    self->configure_read(handle, caf::io::receive_policy::exactly(peer_reply_bytes));
  }
  write_outgoing(self, link, hello.data(), hello.size());
  ++link.attempt;
  caf::delayed_anon_send(caf::actor_cast<caf::actor>(self),
                         std::chrono::milliseconds(self->state.config.handshake_timeout_ms), dial_handshake_atom_v,
                         peer_id, link.attempt);
}

// The dialer's side of a failed handshake: the connection is closed, the link redialed later.
void dial_failed(Broker* self, uint64_t peer_id, OutgoingLink& link, const std::string& why) {
  if (link.connection) self->close(*link.connection);
  link_failed(self, peer_id, link, "handshake with " + address_text(link.address) + " failed: " + why);
}

void pump(Broker* self, OutgoingLink& link);

// The acceptor's reply on an outgoing link: with a secret, its proof is checked before this
// node proves itself and sends any frame.
void read_reply(Broker* self, uint64_t peer_id, OutgoingLink& link, const std::vector<char>& bytes) {
  auto& state = self->state;
  auto reply = decode_peer_reply(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (!reply.is_ok()) return dial_failed(self, peer_id, link, reply.status().message());
  if (reply->mode != own_mode(state)) {
    return dial_failed(self, peer_id, link, std::string("it answered in mode '") + peer_link_mode_name(reply->mode) +
                                                "', this node uses '" + peer_link_mode_name(own_mode(state)) + "'");
  }
  if (reply->mode == PeerLinkMode::secret) {
    auto expected = peer_proof(state.config.cluster_secret, PeerProofSide::acceptor, link.hello, reply->acceptor_nonce);
    if (!peer_proof_matches(expected, reply->acceptor_proof.data())) {
      return dial_failed(self, peer_id, link,
                         "it did not prove the cluster secret (another secret, or not " + peer_name(peer_id) + ")");
    }
    auto proof = peer_proof(state.config.cluster_secret, PeerProofSide::dialer, link.hello, reply->acceptor_nonce);
    write_outgoing(self, link, proof.data(), proof.size());
  }
  if (!link.tls) self->configure_read(*link.connection, caf::io::receive_policy::at_most(outgoing_read_bytes_max));
  link.up = true;
  link.reported_down = false;
  link.down_reason.clear();
  link.backoff_ms = state.config.reconnect_backoff_ms_min;
  std::string how = reply->mode == PeerLinkMode::secret ? "cluster secret proven both ways" : "";
  if (link.tls) how += std::string(how.empty() ? "" : ", ") + "TLS, certificate " + tls_node_name(peer_id);
  log_line(self, peer_name(peer_id) + " up" + (how.empty() ? "" : " (" + how + ")"));
  pump(self, link);
}

// Hands queued frames to the socket, a window at a time (always at least one frame).
void pump(Broker* self, OutgoingLink& link) {
  if (!link.up) return;
  bool wrote = false;
  while (!link.queue.empty() && (link.in_flight_bytes == 0 || link.in_flight_bytes + frame_header_bytes +
                                                                      link.queue.front().size() <=
                                                                  socket_window_bytes)) {
    auto& payload = link.queue.front();
    uint8_t header[frame_header_bytes];
    write_frame_header(header, static_cast<uint32_t>(payload.size()));
    const size_t bytes = frame_header_bytes + payload.size();
    if (link.tls) {
      // Ciphertext counts in flight (write_outgoing), what left the queue is the plaintext.
      if (link.tls->send(header, sizeof header).is_ok() && link.tls->send(payload.data(), payload.size()).is_ok()) {
        auto out = link.tls->take_output();
        self->write(*link.connection, out.size(), out.data());
        link.in_flight_bytes += out.size();
      }
    } else {
      self->write(*link.connection, sizeof header, header);
      self->write(*link.connection, payload.size(), payload.data());
      link.in_flight_bytes += bytes;
    }
    link.queued_bytes -= bytes;
    link.queue.pop_front();
    wrote = true;
  }
  if (wrote) self->flush(*link.connection);
  if (link.queue.empty()) link.overflowing = false;
}

void enqueue(Broker* self, uint64_t to, Frame& frame) {
  auto& state = self->state;
  auto found = state.peers.find(to);
  if (found == state.peers.end() || frame.bytes.empty() || frame.bytes.size() > state.config.frame_bytes_max) {
    // An unknown peer is a lost message; an empty or oversized frame would be refused by the peer.
    ++state.frames_dropped_outgoing;
    if (found != state.peers.end()) log_line(self, "dropped a frame of " + std::to_string(frame.bytes.size()) + " bytes for " + peer_name(to));
    return;
  }
  auto& link = found->second;
  const size_t bytes = frame_header_bytes + frame.bytes.size();
  trim_queue(self, to, link, bytes);
  if (link.in_flight_bytes + bytes > state.config.send_queue_bytes_max) return drop_outgoing(self, to, link);
  link.queue.push_back(std::move(frame.bytes));
  link.queued_bytes += bytes;
  pump(self, link);
}

void set_peer_address(Broker* self, uint64_t peer_id, TcpPeerAddress address) {
  auto& state = self->state;
  if (peer_id == state.config.node_id) return;
  if (!numeric_address(address)) return log_line(self, peer_name(peer_id) + " ignored: not a numeric address: " + address.host);
  auto [iterator, added] = state.peers.try_emplace(peer_id);
  auto& link = iterator->second;
  if (!added && link.address.host == address.host && link.address.port == address.port) return;
  if (link.connection) self->close(*link.connection);  // no connection_closed_msg follows a close()
  forget_connection(self, link);
  link.address = std::move(address);
  link.backoff_ms = state.config.reconnect_backoff_ms_min;
  ++link.epoch;
  connect_peer(self, peer_id, link);
}

// The configuration changed (raft_node.h transport_follows_configuration): links follow the
// members, a new one dialed, a moved one redialed, a removed one closed and no longer dialed.
void set_peers(Broker* self, const std::vector<uint64_t>& ids, const std::vector<std::string>& addresses) {
  auto& state = self->state;
  std::map<uint64_t, TcpPeerAddress> wanted;
  for (size_t i = 0; i < ids.size() && i < addresses.size(); ++i) {
    if (ids[i] == state.config.node_id) continue;
    auto parsed = parse_peer_address(addresses[i]);
    if (!parsed) {
      log_line(self, peer_name(ids[i]) + " ignored: not a HOST:PORT with a numeric host: " + addresses[i]);
      continue;
    }
    wanted[ids[i]] = *parsed;
  }
  for (auto link = state.peers.begin(); link != state.peers.end();) {
    if (wanted.count(link->first)) {
      ++link;
      continue;
    }
    log_line(self, peer_name(link->first) + " dropped: no longer a member");
    if (link->second.connection) self->close(*link->second.connection);
    forget_connection(self, link->second);
    link = state.peers.erase(link);  // its reconnect timer finds no link and does nothing
  }
  for (auto& [peer_id, address] : wanted) {
    if (!state.peers.count(peer_id)) log_line(self, peer_name(peer_id) + " added at " + address.host + ":" + std::to_string(address.port));
    set_peer_address(self, peer_id, address);
  }
}

// --- incoming links ------------------------------------------------------------------

void close_incoming(Broker* self, caf::io::connection_handle handle, const std::string& why) {
  auto& link = self->state.incoming[handle];
  std::string from = link.peer_id == 0 ? "a new link" : "link from " + peer_name(link.peer_id);
  log_line(self, from + " closed: " + why);
  self->state.incoming.erase(handle);
  self->close(handle);
}

// A link that did not complete the handshake: one log line naming the remote address (and the
// id it claimed, when it got that far) and the reason, then only this connection is closed.
void refuse_incoming(Broker* self, caf::io::connection_handle handle, const std::string& why) {
  auto& link = self->state.incoming[handle];
  std::string claimed = link.stage == IncomingStage::magic || link.stage == IncomingStage::hello
                            ? std::string()
                            : " (claiming " + peer_name(link.hello.dialer_id) + ")";
  log_refusal(self, self->remote_addr(handle), "refused link from " + link.remote + claimed + ": " + why, why);
  self->state.incoming.erase(handle);
  self->close(handle);
}

// The next read of an incoming link: exactly `bytes` in plaintext; a TLS link reads what comes
// and parses its plaintext buffer (parse_incoming_plain).
void expect_incoming(Broker* self, caf::io::connection_handle handle, const IncomingLink& link, size_t bytes) {
  if (!link.tls) self->configure_read(handle, caf::io::receive_policy::exactly(bytes));
}

void write_incoming(Broker* self, caf::io::connection_handle handle, IncomingLink& link, const std::vector<uint8_t>& bytes) {
  if (!link.tls) {
    self->write(handle, bytes.size(), bytes.data());
  } else {
    if (!link.tls->send(bytes.data(), bytes.size()).is_ok()) return;
    auto out = link.tls->take_output();
    self->write(handle, out.size(), out.data());
  }
  self->flush(handle);
}

void accept_incoming(Broker* self, caf::io::connection_handle handle, IncomingLink& link) {
  link.stage = IncomingStage::frames;
  link.peer_id = link.hello.dialer_id;
  std::string how = link.hello.mode == PeerLinkMode::secret ? "cluster secret proven both ways" : "";
  if (link.tls) how += std::string(how.empty() ? "" : ", ") + "TLS, certificate " + tls_node_name(link.peer_id);
  log_line(self, "link from " + peer_name(link.peer_id) + " accepted (" + link.remote + ", " + (how.empty() ? "open" : how) + ")");
  expect_incoming(self, handle, link, frame_header_bytes);
}

void read_magic(Broker* self, caf::io::connection_handle handle, IncomingLink& link, const std::vector<char>& bytes) {
  const std::string refusal = peer_magic_refusal(reinterpret_cast<const uint8_t*>(bytes.data()));
  if (!refusal.empty()) return refuse_incoming(self, handle, refusal);
  link.stage = IncomingStage::hello;
  expect_incoming(self, handle, link, peer_hello_bytes - peer_magic_bytes);
}

// Whether the hello may go on to the reply; refuses it otherwise.
bool check_hello(Broker* self, caf::io::connection_handle handle, const IncomingLink& link) {
  const auto& state = self->state;
  const PeerHello& hello = link.hello;
  const uint64_t own_id = state.config.node_id;
  std::string why;
  if (hello.acceptor_id != own_id) {
    why = "it means to reach node " + std::to_string(hello.acceptor_id) + ", this is node " + std::to_string(own_id);
  } else if (hello.dialer_id == own_id) {
    why = "it claims this node's own id";
  } else if (hello.mode == PeerLinkMode::secret && own_mode(state) == PeerLinkMode::open) {
    why = "it offers a cluster secret and this node has none (give every node the same --cluster-secret-file, or none)";
  } else if (hello.mode == PeerLinkMode::open && own_mode(state) == PeerLinkMode::secret) {
    why = "it has no cluster secret and this node requires one (--cluster-secret-file)";
  } else if (link.tls && link.tls->peer_name() != tls_node_name(hello.dialer_id)) {
    why = "its certificate names '" + link.tls->peer_name() + "', not " + tls_node_name(hello.dialer_id);
  }
  if (why.empty()) return true;
  refuse_incoming(self, handle, why);
  return false;
}

void read_hello(Broker* self, caf::io::connection_handle handle, IncomingLink& link, const std::vector<char>& bytes) {
  std::vector<uint8_t> hello_bytes(peer_hello_magic, peer_hello_magic + peer_magic_bytes);
  hello_bytes.insert(hello_bytes.end(), bytes.begin(), bytes.end());
  auto hello = decode_peer_hello(hello_bytes.data(), hello_bytes.size());
  if (!hello.is_ok()) return refuse_incoming(self, handle, hello.status().message());
  link.hello = *hello;
  link.stage = IncomingStage::proof;  // from here on the log names the id it claims
  if (!check_hello(self, handle, link)) return;
  PeerReply reply;
  reply.mode = link.hello.mode;
  if (reply.mode == PeerLinkMode::secret) {
    link.acceptor_nonce = make_peer_nonce(reply.mode);
    reply.acceptor_nonce = link.acceptor_nonce;
    reply.acceptor_proof = peer_proof(self->state.config.cluster_secret, PeerProofSide::acceptor, link.hello,
                                      link.acceptor_nonce);
  }
  write_incoming(self, handle, link, encode_peer_reply(reply));
  if (reply.mode == PeerLinkMode::open) return accept_incoming(self, handle, link);
  expect_incoming(self, handle, link, peer_proof_bytes);
}

void read_proof(Broker* self, caf::io::connection_handle handle, IncomingLink& link, const std::vector<char>& bytes) {
  auto expected = peer_proof(self->state.config.cluster_secret, PeerProofSide::dialer, link.hello, link.acceptor_nonce);
  if (bytes.size() != peer_proof_bytes || !peer_proof_matches(expected, reinterpret_cast<const uint8_t*>(bytes.data()))) {
    return refuse_incoming(self, handle, "it did not prove the cluster secret (another secret)");
  }
  accept_incoming(self, handle, link);
}

size_t handshakes_pending(const TransportState& state) {
  size_t pending = 0;
  for (const auto& [handle, link] : state.incoming) pending += link.stage != IncomingStage::frames;
  return pending;
}

void new_incoming(Broker* self, caf::io::connection_handle handle) {
  auto& state = self->state;
  IncomingLink link;
  link.serial = ++state.incoming_serial;
  link.remote = self->remote_addr(handle) + ":" + std::to_string(self->remote_port(handle));
  const bool room = handshakes_pending(state) < state.config.handshakes_pending_max;
  state.incoming[handle] = link;
  if (!room) {
    return refuse_incoming(self, handle, "too many handshakes in progress (" +
                                             std::to_string(state.config.handshakes_pending_max) + ")");
  }
  if (state.config.tls_server) {
    auto& added = state.incoming[handle];
    added.tls = std::make_shared<TlsStream>(state.config.tls_server);
    self->configure_read(handle, caf::io::receive_policy::at_most(added.read_size.current()));
  } else {
    self->configure_read(handle, caf::io::receive_policy::exactly(peer_magic_bytes));
  }
  caf::delayed_anon_send(caf::actor_cast<caf::actor>(self), std::chrono::milliseconds(state.config.handshake_timeout_ms),
                         incoming_handshake_atom_v, link.serial);
}

void incoming_handshake_deadline(Broker* self, uint64_t serial) {
  for (auto& [handle, link] : self->state.incoming) {
    if (link.serial != serial) continue;
    if (link.stage != IncomingStage::frames) {
      refuse_incoming(self, handle, "no complete handshake within " +
                                        std::to_string(self->state.config.handshake_timeout_ms) + " ms");
    }
    return;
  }
}

void dial_handshake_deadline(Broker* self, uint64_t peer_id, uint64_t attempt) {
  auto found = self->state.peers.find(peer_id);
  if (found == self->state.peers.end()) return;
  auto& link = found->second;
  if (!link.connection || link.up || link.attempt != attempt) return;
  dial_failed(self, peer_id, link,
              "no reply within " + std::to_string(self->state.config.handshake_timeout_ms) + " ms");
}

void read_header(Broker* self, caf::io::connection_handle handle, IncomingLink& link, const std::vector<char>& bytes) {
  uint32_t length = read_frame_header(reinterpret_cast<const uint8_t*>(bytes.data()));
  if (length == 0 || length > self->state.config.frame_bytes_max) {
    return close_incoming(self, handle, "frame length " + std::to_string(length) + " out of bounds (1.." +
                                            std::to_string(self->state.config.frame_bytes_max) + ")");
  }
  link.payload_bytes = length;
  expect_incoming(self, handle, link, length);
}

void read_payload(Broker* self, caf::io::connection_handle handle, IncomingLink& link, const std::vector<char>& bytes) {
  auto& state = self->state;
  if (state.raft_node) {
    self->send(state.raft_node, raft_message_atom_v, Frame{std::vector<uint8_t>(bytes.begin(), bytes.end())});
    ++state.frames_delivered;
  } else {
    ++state.frames_dropped_incoming;  // no raft node yet: a lost message
  }
  link.payload_bytes = 0;
  expect_incoming(self, handle, link, frame_header_bytes);
}

// One step's bytes of an incoming link, exactly as many as its stage asked for.
void read_incoming_step(Broker* self, caf::io::connection_handle handle, IncomingLink& link, const std::vector<char>& bytes) {
  switch (link.stage) {
    case IncomingStage::magic: return read_magic(self, handle, link, bytes);
    case IncomingStage::hello: return read_hello(self, handle, link, bytes);
    case IncomingStage::proof: return read_proof(self, handle, link, bytes);
    case IncomingStage::frames: break;
  }
  if (link.payload_bytes == 0) return read_header(self, handle, link, bytes);
  read_payload(self, handle, link, bytes);
}

size_t incoming_step_bytes(const IncomingLink& link) {
  switch (link.stage) {
    case IncomingStage::magic: return peer_magic_bytes;
    case IncomingStage::hello: return peer_hello_bytes - peer_magic_bytes;
    case IncomingStage::proof: return peer_proof_bytes;
    case IncomingStage::frames: break;
  }
  return link.payload_bytes == 0 ? frame_header_bytes : link.payload_bytes;
}

// An incoming TLS link's bytes: decrypted, then every complete step in the plaintext.
void read_incoming_tls(Broker* self, caf::io::connection_handle handle, IncomingLink& link, const std::vector<char>& bytes) {
  if (link.read_size.after_read(bytes.size())) {
    self->configure_read(handle, caf::io::receive_policy::at_most(link.read_size.current()));
  }
  auto tls = link.tls;
  Status received = tls->receive(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &link.plain);
  if (auto out = tls->take_output(); !out.empty()) {
    self->write(handle, out.size(), out.data());
    self->flush(handle);
  }
  if (!received.is_ok()) {
    if (link.stage == IncomingStage::frames) return close_incoming(self, handle, received.message());
    return refuse_incoming(self, handle, received.message());
  }
  if (link.stage != IncomingStage::frames && link.plain.size() > tls_plain_before_handshake_bytes_max) {
    return refuse_incoming(self, handle, "more bytes than a handshake before completing one");
  }
  const uint64_t serial = link.serial;
  size_t offset = 0;
  while (true) {
    auto found = self->state.incoming.find(handle);
    if (found == self->state.incoming.end() || found->second.serial != serial) return;  // refused or closed
    auto& current = found->second;
    const size_t need = incoming_step_bytes(current);
    if (current.plain.size() - offset < need) {
      current.plain.erase(current.plain.begin(), current.plain.begin() + static_cast<std::ptrdiff_t>(offset));
      return;
    }
    std::vector<char> step(current.plain.begin() + static_cast<std::ptrdiff_t>(offset),
                           current.plain.begin() + static_cast<std::ptrdiff_t>(offset + need));
    offset += need;
    read_incoming_step(self, handle, current, step);
  }
}

// An outgoing TLS link's bytes: the server's certificate must name the peer dialed, then the
// reply is read from the plaintext.
void read_outgoing_tls(Broker* self, uint64_t peer_id, OutgoingLink& link, const std::vector<char>& bytes) {
  if (link.read_size.after_read(bytes.size())) {
    self->configure_read(*link.connection, caf::io::receive_policy::at_most(link.read_size.current()));
  }
  const bool was_done = link.tls->handshake_done();
  Status received = link.tls->receive(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &link.plain);
  if (auto out = link.tls->take_output(); !out.empty()) {
    self->write(*link.connection, out.size(), out.data());
    self->flush(*link.connection);
  }
  if (!received.is_ok()) {
    if (link.up) return;  // after the handshake the close itself is reported
    return dial_failed(self, peer_id, link, received.message());
  }
  if (!was_done && link.tls->handshake_done() && link.tls->peer_name() != tls_node_name(peer_id)) {
    return dial_failed(self, peer_id, link, "its certificate names '" + link.tls->peer_name() + "', not " +
                                                tls_node_name(peer_id));
  }
  if (link.up) return link.plain.clear();
  if (link.plain.size() < peer_reply_bytes) return;
  std::vector<char> reply(link.plain.begin(), link.plain.begin() + peer_reply_bytes);
  link.plain.clear();  // the acceptor writes nothing after its reply
  read_reply(self, peer_id, link, reply);
}

void read_incoming(Broker* self, caf::io::new_data_msg& message) {
  auto& state = self->state;
  if (auto out = state.outgoing.find(message.handle); out != state.outgoing.end()) {
    // The acceptor writes only its handshake reply; later bytes are ignored.
    auto& link = state.peers[out->second];
    if (link.tls) return read_outgoing_tls(self, out->second, link, message.buf);
    if (!link.up) read_reply(self, out->second, link, message.buf);
    return;
  }
  auto found = state.incoming.find(message.handle);
  if (found == state.incoming.end()) return;
  if (found->second.tls) return read_incoming_tls(self, message.handle, found->second, message.buf);
  read_incoming_step(self, message.handle, found->second, message.buf);
}

void connection_closed(Broker* self, caf::io::connection_handle handle) {
  auto& state = self->state;
  if (auto out = state.outgoing.find(handle); out != state.outgoing.end()) {
    uint64_t peer_id = out->second;
    auto& link = state.peers[peer_id];
    // Connected but closed before the reply: the acceptor refused this node (its log says why).
    const std::string why = link.connected && !link.up ? "closed by " + address_text(link.address) +
                                                             " during the handshake: it refused this node (see its log)"
                                                       : "";
    return link_failed(self, peer_id, link, why);
  }
  if (auto in = state.incoming.find(handle); in != state.incoming.end()) {
    const IncomingLink& link = in->second;
    if (link.stage == IncomingStage::frames) {
      log_line(self, "link from " + peer_name(link.peer_id) + " closed");
    } else if (link.stage == IncomingStage::proof) {
      const std::string why = "closed by the dialer during the handshake (it refused this node: see its log)";
      log_refusal(self, link.remote.substr(0, link.remote.rfind(':')),
                  "refused link from " + link.remote + " (claiming " + peer_name(link.hello.dialer_id) + "): " + why, why);
    }
    state.incoming.erase(in);
  }
}

void data_transferred(Broker* self, const caf::io::data_transferred_msg& message) {
  auto found = self->state.outgoing.find(message.handle);
  if (found == self->state.outgoing.end()) return;
  auto& link = self->state.peers[found->second];
  link.in_flight_bytes -= std::min<size_t>(link.in_flight_bytes, message.written);
  link.connected = true;
  pump(self, link);
}

caf::behavior tcp_transport(Broker* self, TcpTransportConfig config, caf::io::doorman_ptr doorman) {
  auto& state = self->state;
  state.port = doorman->port();
  self->add_doorman(std::move(doorman));
  state.config = std::move(config);
  quit_in_a_later_cycle(self, state.stopping);
  log_line(self, "listening on " + state.config.listen_host + ":" + std::to_string(state.port) +
                     (state.config.cluster_secret.empty() ? " (no cluster secret" : " (cluster secret required") +
                     (state.config.tls_server ? ", TLS)" : state.config.cluster_secret.empty() ? ": open)" : ")"));
  for (auto& [peer_id, address] : state.config.peers) set_peer_address(self, peer_id, address);
  return {
      [self](transport_send_atom, uint64_t to, Frame& frame) { enqueue(self, to, frame); },
      [self](raft_peer_atom, uint64_t own_id, const caf::actor& raft_node) {
        if (own_id != self->state.config.node_id) {
          return log_line(self, "ignored raft node registered as " + std::to_string(own_id));
        }
        self->state.raft_node = raft_node;
      },
      [self](raft_peer_atom, uint64_t peer_id, std::string& host, uint16_t port) {
        set_peer_address(self, peer_id, TcpPeerAddress{std::move(host), port});
      },
      [self](transport_peers_atom, const std::vector<uint64_t>& ids, const std::vector<std::string>& addresses) {
        set_peers(self, ids, addresses);
      },
      [self](reconnect_atom, uint64_t peer_id, uint64_t epoch) {
        auto found = self->state.peers.find(peer_id);
        if (found == self->state.peers.end() || found->second.epoch != epoch || found->second.connection) return;
        connect_peer(self, peer_id, found->second);
      },
      [self](incoming_handshake_atom, uint64_t serial) { incoming_handshake_deadline(self, serial); },
      [self](dial_handshake_atom, uint64_t peer_id, uint64_t attempt) { dial_handshake_deadline(self, peer_id, attempt); },
      [self](bounds_atom) { return self->state.port; },
      [self](stats_atom) {
        auto& s = self->state;
        return std::make_tuple(s.frames_dropped_outgoing, s.frames_dropped_incoming, s.frames_delivered);
      },
      [self](const caf::io::new_connection_msg& message) { new_incoming(self, message.handle); },
      [self](caf::io::new_data_msg& message) { read_incoming(self, message); },
      [self](const caf::io::data_transferred_msg& message) { data_transferred(self, message); },
      [self](const caf::io::connection_closed_msg& message) { connection_closed(self, message.handle); },
      [self](const caf::io::acceptor_closed_msg&) { log_line(self, "listener closed"); },
      [self](broker_quit_atom, caf::error& reason) { self->quit(std::move(reason)); },
  };
}

}  // namespace

bool is_numeric_host(const std::string& host) { return numeric_address(TcpPeerAddress{host, 0}).has_value(); }

caf::actor spawn_tcp_transport(caf::actor_system& system, TcpTransportConfig config) {
  KV_ASSERT(config.node_id != 0);
  KV_ASSERT(config.send_queue_bytes_max >= frame_header_bytes + config.frame_bytes_max);
  KV_ASSERT(config.reconnect_backoff_ms_min > 0 && config.reconnect_backoff_ms_min <= config.reconnect_backoff_ms_max);
  auto say = [&](const std::string& line) {
    if (config.log) config.log("transport " + std::to_string(config.node_id) + ": " + line);
  };
  for (auto& [peer_id, address] : config.peers) {
    if (!numeric_address(address)) {
      say(peer_name(peer_id) + ": not a numeric address: " + address.host);
      return {};
    }
  }
  // Reuse the address so that a restarted node gets its port back despite TIME_WAIT links.
  auto doorman = system.middleman().backend().new_tcp_doorman(config.listen_port, config.listen_host.c_str(), true);
  if (!doorman) {
    say("cannot listen on " + config.listen_host + ":" + std::to_string(config.listen_port) + ": " +
        bind_failure(config.listen_host, config.listen_port, system.render(doorman.error())));
    return {};
  }
  return system.middleman().spawn_broker(tcp_transport, std::move(config), std::move(*doorman));
}

}  // namespace keyval
