// The TCP peer transport (see tcp_transport.h): one broker, outgoing links per peer with
// bounded queues and backoff, incoming links parsed as hello then length-prefixed frames.
#include "actors/tcp_transport.h"

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

namespace keyval {
namespace {

using reconnect_atom = caf::atom_constant<caf::atom("tcpreconn")>;
constexpr reconnect_atom reconnect_atom_v{};

// Bytes handed to CAF's write buffer at a time. Small, so that almost everything waiting
// for a slow peer stays in our queue, where the oldest frames can still be dropped.
constexpr size_t socket_window_bytes = 256u << 10;

// Outgoing links never carry data back; reading them only notices the peer's close.
constexpr size_t outgoing_read_bytes_max = 256;

struct OutgoingLink {
  TcpPeerAddress address;
  std::deque<std::vector<uint8_t>> queue;  // payloads, oldest first (the header is written with each)
  size_t queued_bytes = 0;
  size_t in_flight_bytes = 0;  // handed to the socket, not yet written by it
  std::optional<caf::io::connection_handle> connection;
  bool up = false;             // the current connection has written bytes: the handshake is done
  bool reported_down = false;  // "down" logged since the last "up" (one line per transition)
  bool overflowing = false;    // "queue full" logged since the queue last drained
  uint32_t backoff_ms = 0;
  uint64_t epoch = 0;  // bumped when the address changes: older reconnect timers are stale
};

struct IncomingLink {
  uint64_t peer_id = 0;        // 0 until the hello has been read
  uint32_t payload_bytes = 0;  // the frame being read; 0 while reading a header
};

struct TransportState {
  TcpTransportConfig config;
  caf::actor raft_node;
  uint16_t port = 0;
  std::map<uint64_t, OutgoingLink> peers;
  std::map<caf::io::connection_handle, uint64_t> outgoing;  // handle -> peer id
  std::map<caf::io::connection_handle, IncomingLink> incoming;
  uint64_t frames_dropped_outgoing = 0, frames_dropped_incoming = 0, frames_delivered = 0;
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

std::vector<uint8_t> make_hello(uint64_t node_id) {
  std::vector<uint8_t> hello(peer_hello_magic, peer_hello_magic + sizeof(peer_hello_magic));
  for (int i = 0; i < 8; ++i) hello.push_back(static_cast<uint8_t>(node_id >> (8 * i)));
  KV_ASSERT(hello.size() == peer_hello_bytes);
  return hello;
}

// The sender's node id, or 0 for a malformed hello.
uint64_t parse_hello(const std::vector<char>& bytes) {
  if (bytes.size() != peer_hello_bytes) return 0;
  if (std::memcmp(bytes.data(), peer_hello_magic, sizeof(peer_hello_magic)) != 0) return 0;
  uint64_t node_id = 0;
  for (int i = 0; i < 8; ++i) node_id |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[8 + i])) << (8 * i);
  return node_id;
}

void log_line(Broker* self, const std::string& line) {
  if (self->state.config.log) self->state.config.log("transport " + std::to_string(self->state.config.node_id) + ": " + line);
}

std::string peer_name(uint64_t peer_id) { return "peer " + std::to_string(peer_id); }

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
  link.up = false;
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
  if (!link.reported_down) log_line(self, peer_name(peer_id) + " down" + (why.empty() ? "" : " (" + why + ")"));
  link.reported_down = true;
  schedule_reconnect(self, peer_id, link);
}

void connect_peer(Broker* self, uint64_t peer_id, OutgoingLink& link) {
  auto fd = start_connect(link.address);
  if (!fd.is_ok()) return link_failed(self, peer_id, link, fd.status().message());
  auto handle = self->add_scribe(fd.value());
  link.connection = handle;
  self->state.outgoing[handle] = peer_id;
  // Write acknowledgements tell us when the handshake is done and how much is still buffered.
  self->ack_writes(handle, true);
  self->configure_read(handle, caf::io::receive_policy::at_most(outgoing_read_bytes_max));
  auto hello = make_hello(self->state.config.node_id);
  self->write(handle, hello.size(), hello.data());
  self->flush(handle);
  link.in_flight_bytes += hello.size();
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
    self->write(*link.connection, sizeof header, header);
    self->write(*link.connection, payload.size(), payload.data());
    const size_t bytes = frame_header_bytes + payload.size();
    link.in_flight_bytes += bytes;
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

void read_hello(Broker* self, caf::io::connection_handle handle, IncomingLink& link, const std::vector<char>& bytes) {
  uint64_t peer_id = parse_hello(bytes);
  if (peer_id == 0) return close_incoming(self, handle, "malformed hello");
  link.peer_id = peer_id;
  log_line(self, "link from " + peer_name(peer_id) + " accepted");
  self->configure_read(handle, caf::io::receive_policy::exactly(frame_header_bytes));
}

void read_header(Broker* self, caf::io::connection_handle handle, IncomingLink& link, const std::vector<char>& bytes) {
  uint32_t length = read_frame_header(reinterpret_cast<const uint8_t*>(bytes.data()));
  if (length == 0 || length > self->state.config.frame_bytes_max) {
    return close_incoming(self, handle, "frame length " + std::to_string(length) + " out of bounds (1.." +
                                            std::to_string(self->state.config.frame_bytes_max) + ")");
  }
  link.payload_bytes = length;
  self->configure_read(handle, caf::io::receive_policy::exactly(length));
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
  self->configure_read(handle, caf::io::receive_policy::exactly(frame_header_bytes));
}

void read_incoming(Broker* self, caf::io::new_data_msg& message) {
  auto found = self->state.incoming.find(message.handle);
  if (found == self->state.incoming.end()) return;  // an outgoing link: peers never write back
  auto& link = found->second;
  if (link.peer_id == 0) return read_hello(self, message.handle, link, message.buf);
  if (link.payload_bytes == 0) return read_header(self, message.handle, link, message.buf);
  read_payload(self, message.handle, link, message.buf);
}

void connection_closed(Broker* self, caf::io::connection_handle handle) {
  auto& state = self->state;
  if (auto out = state.outgoing.find(handle); out != state.outgoing.end()) {
    uint64_t peer_id = out->second;
    return link_failed(self, peer_id, state.peers[peer_id], "");
  }
  if (auto in = state.incoming.find(handle); in != state.incoming.end()) {
    if (in->second.peer_id != 0) log_line(self, "link from " + peer_name(in->second.peer_id) + " closed");
    state.incoming.erase(in);
  }
}

void data_transferred(Broker* self, const caf::io::data_transferred_msg& message) {
  auto found = self->state.outgoing.find(message.handle);
  if (found == self->state.outgoing.end()) return;
  auto& link = self->state.peers[found->second];
  link.in_flight_bytes -= std::min<size_t>(link.in_flight_bytes, message.written);
  if (!link.up) {
    link.up = true;
    link.reported_down = false;
    link.backoff_ms = self->state.config.reconnect_backoff_ms_min;
    log_line(self, peer_name(found->second) + " up");
  }
  pump(self, link);
}

caf::behavior tcp_transport(Broker* self, TcpTransportConfig config, caf::io::doorman_ptr doorman) {
  auto& state = self->state;
  state.port = doorman->port();
  self->add_doorman(std::move(doorman));
  state.config = std::move(config);
  log_line(self, "listening on " + state.config.listen_host + ":" + std::to_string(state.port));
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
      [self](bounds_atom) { return self->state.port; },
      [self](stats_atom) {
        auto& s = self->state;
        return std::make_tuple(s.frames_dropped_outgoing, s.frames_dropped_incoming, s.frames_delivered);
      },
      [self](const caf::io::new_connection_msg& message) {
        self->state.incoming[message.handle] = IncomingLink{};
        self->configure_read(message.handle, caf::io::receive_policy::exactly(peer_hello_bytes));
      },
      [self](caf::io::new_data_msg& message) { read_incoming(self, message); },
      [self](const caf::io::data_transferred_msg& message) { data_transferred(self, message); },
      [self](const caf::io::connection_closed_msg& message) { connection_closed(self, message.handle); },
      [self](const caf::io::acceptor_closed_msg&) { log_line(self, "listener closed"); },
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
        system.render(doorman.error()));
    return {};
  }
  return system.middleman().spawn_broker(tcp_transport, std::move(config), std::move(*doorman));
}

}  // namespace keyval
