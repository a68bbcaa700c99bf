// Goal: the TCP peer transport and the client listener keep their header contracts: order, queueing for
// a down peer, bounded queues, one bad link or client closed alone, answers to the connection that asked.
// Method: real actor systems with the io middleman, real sockets on 127.0.0.1 (port 0, learned with
// bounds_atom), scoped actors as raft nodes, raw sockets as bad peers and clients; every wait is bounded.
#define BOOST_TEST_MODULE tcp_transport_test
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <caf/io/all.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "actors/client_listener.h"
#include "actors/framing.h"
#include "actors/peer_handshake.h"
#include "actors/tcp_transport.h"
#include "tests/support/temp_dir.h"

using keyval::testing::contains;
using keyval::testing::read_text;

using namespace keyval;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// Long enough for a loaded machine, short enough that a broken contract fails the suite quickly.
constexpr milliseconds wait_max{3000};
// How long "nothing more arrives" is watched.
constexpr milliseconds quiet_period{150};

std::vector<uint8_t> bytes_of(const std::string& text) { return std::vector<uint8_t>(text.begin(), text.end()); }

// A payload that names its sender and sequence number, `size` bytes long.
std::vector<uint8_t> numbered_payload(uint64_t from, uint64_t sequence, size_t size) {
  std::vector<uint8_t> payload(size);
  for (size_t i = 0; i < size; ++i) payload[i] = static_cast<uint8_t>(from * 131 + sequence * 31 + i);
  return payload;
}

// The log lines an actor's callback received (it runs on the multiplexer thread).
class LogLines {
 public:
  std::function<void(const std::string&)> callback() const {
    auto shared = shared_;
    return [shared](const std::string& line) {
      std::lock_guard<std::mutex> lock(shared->mutex);
      shared->lines.push_back(line);
    };
  }

  bool contains_line(const std::string& needle) const {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    for (const auto& line : shared_->lines) {
      if (contains(line, needle)) return true;
    }
    return false;
  }

  // Polls until a line containing `needle` is logged or `timeout` passes.
  bool wait_for(const std::string& needle, milliseconds timeout = wait_max) const {
    auto deadline = Clock::now() + timeout;
    while (!contains_line(needle)) {
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return true;
  }

  std::string all() const {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    std::string text;
    for (const auto& line : shared_->lines) text += line + "\n";
    return text;
  }

 private:
  struct Shared {
    std::mutex mutex;
    std::vector<std::string> lines;
  };
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
};

// --- raw sockets -----------------------------------------------------------------------

// A port nobody listens on right now (bound to learn it, then closed).
uint16_t unused_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  BOOST_REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  socklen_t length = sizeof(address);
  BOOST_REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  ::close(fd);
  return ntohs(address.sin_port);
}

// A socket listening on 127.0.0.1 (port chosen by the system): holds the port taken.
class TakenPort {
 public:
  TakenPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BOOST_REQUIRE(fd_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    BOOST_REQUIRE(::listen(fd_, 4) == 0);
    socklen_t length = sizeof(address);
    BOOST_REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    port_ = ntohs(address.sin_port);
  }
  ~TakenPort() { ::close(fd_); }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// A client connection written byte by byte by the test; every read waits at most its timeout.
class RawSocket {
 public:
  explicit RawSocket(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BOOST_REQUIRE(fd_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    // A loopback connect to a listening socket completes at once (the kernel's backlog accepts it).
    BOOST_REQUIRE_MESSAGE(::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0,
                          "connect to 127.0.0.1:" << port << ": " << std::strerror(errno));
  }
  ~RawSocket() { ::close(fd_); }
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;

  void send(const std::vector<uint8_t>& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      BOOST_REQUIRE_MESSAGE(n > 0, "send: " << std::strerror(errno));
      sent += static_cast<size_t>(n);
    }
  }

  // Exactly `size` bytes, or nothing when the peer closes, fails or is silent past the timeout.
  std::optional<std::vector<uint8_t>> read_exact(size_t size, milliseconds timeout = wait_max) {
    std::vector<uint8_t> bytes(size);
    size_t received = 0;
    auto deadline = Clock::now() + timeout;
    while (received < size) {
      if (!wait_readable(deadline)) return std::nullopt;
      ssize_t n = ::recv(fd_, bytes.data() + received, size - received, 0);
      if (n <= 0) return std::nullopt;
      received += static_cast<size_t>(n);
    }
    return bytes;
  }

  // One length-prefixed frame's payload.
  std::optional<std::vector<uint8_t>> read_frame(milliseconds timeout = wait_max) {
    auto header = read_exact(frame_header_bytes, timeout);
    if (!header) return std::nullopt;
    return read_exact(read_frame_header(header->data()), timeout);
  }

  // Whether the peer closed the connection cleanly (read returns 0) within the timeout, with no
  // bytes before the close.
  bool closed_by_peer_within(milliseconds timeout = wait_max) {
    auto deadline = Clock::now() + timeout;
    if (!wait_readable(deadline)) return false;
    uint8_t byte = 0;
    ssize_t n = ::recv(fd_, &byte, 1, 0);
    BOOST_TEST_MESSAGE("read after the close returned " << n << (n < 0 ? std::string(": ") + std::strerror(errno) : ""));
    return n == 0;
  }

 private:
  bool wait_readable(Clock::time_point deadline) {
    for (;;) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd entry{fd_, POLLIN, 0};
      int ready = ::poll(&entry, 1, static_cast<int>(left));
      if (ready > 0) return true;
      if (ready < 0 && errno != EINTR) return false;
    }
  }

  int fd_ = -1;
};

// An open-mode hello (no cluster secret) from node `from` to node `to`, as a transport sends it.
std::vector<uint8_t> open_hello(uint64_t from, uint64_t to) {
  return encode_peer_hello(PeerHello{from, to, PeerLinkMode::open, PeerNonce{}});
}

// A hello of the first version: "KVPEER01" and a node id, 16 bytes.
std::vector<uint8_t> old_hello(uint64_t from) {
  std::vector<uint8_t> hello(peer_hello_magic_v1, peer_hello_magic_v1 + peer_magic_bytes);
  for (int i = 0; i < 8; ++i) hello.push_back(static_cast<uint8_t>(from >> (8 * i)));
  return hello;
}

std::vector<uint8_t> header_only(uint32_t length) {
  std::vector<uint8_t> header;
  append_frame_header(header, length);
  return header;
}

// --- actor systems -----------------------------------------------------------------------

// One process's actor system: the project's message types and the io middleman.
struct System {
  System() {
    add_message_types(config);
    config.load<caf::io::middleman>();
    system = std::make_unique<caf::actor_system>(config);
  }
  caf::actor_system_config config;
  std::unique_ptr<caf::actor_system> system;
};

// An actor handle that sends its actor an exit when it goes out of scope (also when a
// BOOST_REQUIRE throws halfway through a constructor): the actor system waits for every actor.
template <class Handle>
struct Owned {
  Handle handle;
  ~Owned() {
    if (handle) caf::anon_send_exit(handle, caf::exit_reason::user_shutdown);
  }
};

uint16_t port_of(caf::actor_system& system, const caf::actor& actor) {
  caf::scoped_actor self{system};
  uint16_t port = 0;
  self->request(actor, wait_max, bounds_atom_v)
      .receive([&](uint16_t bound) { port = bound; },
               [&](caf::error& error) { BOOST_FAIL("bounds_atom: " << system.render(error)); });
  BOOST_REQUIRE(port != 0);
  return port;
}

struct TransportStats {
  uint64_t dropped_outgoing = 0, dropped_incoming = 0, delivered = 0;
};

TransportStats stats_of(caf::actor_system& system, const caf::actor& transport) {
  caf::scoped_actor self{system};
  TransportStats stats;
  self->request(transport, wait_max, stats_atom_v)
      .receive([&](uint64_t dropped_outgoing, uint64_t dropped_incoming,
                   uint64_t delivered) { stats = TransportStats{dropped_outgoing, dropped_incoming, delivered}; },
               [&](caf::error& error) { BOOST_FAIL("stats_atom: " << system.render(error)); });
  return stats;
}

// Polls the transport's counters until frames_dropped_incoming reaches `count` or time is up.
bool wait_for_incoming_drops(caf::actor_system& system, const caf::actor& transport, uint64_t count) {
  auto deadline = Clock::now() + wait_max;
  while (stats_of(system, transport).dropped_incoming < count) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

TcpTransportConfig transport_config(uint64_t node_id, const LogLines& log_lines,
                                    std::map<uint64_t, TcpPeerAddress> peers = {}) {
  TcpTransportConfig config;
  config.node_id = node_id;
  config.peers = std::move(peers);
  config.reconnect_backoff_ms_min = 10;
  config.reconnect_backoff_ms_max = 40;
  config.log = log_lines.callback();
  return config;
}

// One node's side of the peer network: its actor system, its transport, and a scoped actor
// registered as its raft node.
class PeerNode {
 public:
  explicit PeerNode(TcpTransportConfig config) : id_(config.node_id) {
    transport_.handle = spawn_tcp_transport(*system_.system, std::move(config));
    BOOST_REQUIRE_MESSAGE(transport_.handle, "transport " << id_ << " did not start");
    raft_ = std::make_unique<caf::scoped_actor>(*system_.system);
    caf::anon_send(transport_.handle, raft_peer_atom_v, id_, caf::actor_cast<caf::actor>(*raft_));
    // Asked after the registration from the same thread: once answered, the raft node is registered.
    port_ = port_of(*system_.system, transport_.handle);
  }

  uint16_t port() const { return port_; }
  TcpPeerAddress address() const { return TcpPeerAddress{"127.0.0.1", port_}; }

  void send(uint64_t to, std::vector<uint8_t> payload) {
    caf::anon_send(transport_.handle, transport_send_atom_v, to, Frame{std::move(payload)});
  }

  void add_peer(uint64_t peer_id, const TcpPeerAddress& address) {
    caf::anon_send(transport_.handle, raft_peer_atom_v, peer_id, address.host, address.port);
  }

  // The payload of the next (raft_message_atom, Frame) for the raft node, if one comes in time.
  std::optional<std::vector<uint8_t>> receive(milliseconds timeout = wait_max) {
    std::optional<std::vector<uint8_t>> payload;
    (*raft_)->receive([&](raft_message_atom, const Frame& frame) { payload = frame.bytes; },
                      caf::after(timeout) >> [] {});
    return payload;
  }

  // Receives `expected.size()` frames and checks that they are `expected`, in order.
  void expect_frames(const std::vector<std::vector<uint8_t>>& expected) {
    for (size_t i = 0; i < expected.size(); ++i) {
      auto payload = receive();
      BOOST_REQUIRE_MESSAGE(payload, "node " << id_ << ": frame " << i << " of " << expected.size() << " did not arrive");
      BOOST_REQUIRE_MESSAGE(*payload == expected[i], "node " << id_ << ": frame " << i << " differs (" << payload->size()
                                                           << " bytes, expected " << expected[i].size() << ")");
    }
  }

  TransportStats stats() { return stats_of(*system_.system, transport_.handle); }

 private:
  uint64_t id_;
  System system_;  // declared first: destroyed last, once its actors are told to exit
  Owned<caf::actor> transport_;
  std::unique_ptr<caf::scoped_actor> raft_;
  uint16_t port_ = 0;
};

}  // namespace

// --- the peer transport ------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(frames_arrive_in_order_with_the_same_bytes_both_ways) {
  LogLines log;
  PeerNode node2(transport_config(2, log));  // learns node 1's address by message, below
  PeerNode node1(transport_config(1, log, {{2, node2.address()}}));
  node2.add_peer(1, node1.address());

  // Sizes from 1 byte to 1 MiB (several socket windows, several reads), in one burst per direction.
  const std::vector<size_t> sizes = {1, 7, 4, 100, 1 << 20, 3, 65536, 5000, 1, 300000, 12, 2};
  std::vector<std::vector<uint8_t>> one_to_two, two_to_one;
  for (size_t i = 0; i < sizes.size(); ++i) {
    one_to_two.push_back(numbered_payload(1, i, sizes[i]));
    two_to_one.push_back(numbered_payload(2, i, sizes[sizes.size() - 1 - i]));
  }
  for (const auto& payload : one_to_two) node1.send(2, payload);
  for (const auto& payload : two_to_one) node2.send(1, payload);

  node2.expect_frames(one_to_two);
  node1.expect_frames(two_to_one);
  BOOST_CHECK_MESSAGE(!node2.receive(quiet_period), "node 2 got a frame nobody sent");
  BOOST_CHECK_MESSAGE(!node1.receive(quiet_period), "node 1 got a frame nobody sent");

  auto stats1 = node1.stats(), stats2 = node2.stats();
  BOOST_CHECK_EQUAL(stats1.delivered, two_to_one.size());
  BOOST_CHECK_EQUAL(stats2.delivered, one_to_two.size());
  BOOST_CHECK_EQUAL(stats1.dropped_outgoing + stats2.dropped_outgoing, 0u);
  BOOST_CHECK_EQUAL(stats1.dropped_incoming + stats2.dropped_incoming, 0u);
  BOOST_CHECK_MESSAGE(log.contains_line("transport 2: link from peer 1 accepted"), log.all());
}

BOOST_AUTO_TEST_CASE(frames_queued_for_a_down_peer_arrive_once_it_listens) {
  LogLines log;
  const uint16_t port2 = unused_port();
  PeerNode node1(transport_config(1, log, {{2, TcpPeerAddress{"127.0.0.1", port2}}}));
  std::vector<std::vector<uint8_t>> queued;
  for (uint64_t i = 0; i < 3; ++i) {
    queued.push_back(numbered_payload(1, i, 200 + i));
    node1.send(2, queued.back());
  }
  // A connect has been refused: the frames wait for a reconnect, not for this first attempt.
  BOOST_REQUIRE_MESSAGE(log.wait_for("transport 1: peer 2 down"), log.all());

  auto config2 = transport_config(2, log);
  config2.listen_port = port2;
  PeerNode node2(std::move(config2));
  node2.expect_frames(queued);
  BOOST_CHECK(!node2.receive(quiet_period));
  BOOST_CHECK_MESSAGE(log.contains_line("transport 1: peer 2 up"), log.all());
  BOOST_CHECK_EQUAL(node1.stats().dropped_outgoing, 0u);
}

BOOST_AUTO_TEST_CASE(a_dead_peer_never_blocks_the_others_and_its_queue_drops_the_oldest) {
  LogLines log;
  const uint16_t port2 = unused_port();
  PeerNode node3(transport_config(3, log));
  auto config1 = transport_config(1, log, {{2, TcpPeerAddress{"127.0.0.1", port2}}, {3, node3.address()}});
  constexpr size_t frame_bytes = 1000;
  constexpr size_t frames_that_fit = 4;
  config1.frame_bytes_max = frame_bytes;
  // Room for exactly four frames, with slack for the 57-byte hello that sits in flight during a
  // connect attempt (it counts against the same bound).
  config1.send_queue_bytes_max = frames_that_fit * (frame_header_bytes + frame_bytes) + 100;
  PeerNode node1(std::move(config1));

  // Link 1 -> 3 is up once a first frame has crossed it.
  node1.send(3, bytes_of("probe"));
  node3.expect_frames({bytes_of("probe")});

  constexpr uint64_t frames_sent = 20;
  std::vector<std::vector<uint8_t>> to_two;
  for (uint64_t i = 0; i < frames_sent; ++i) {
    to_two.push_back(numbered_payload(2, i, frame_bytes));
    node1.send(2, to_two.back());
    auto to_three = numbered_payload(3, i, frame_bytes);
    node1.send(3, to_three);
    node3.expect_frames({to_three});  // each within the deadline, while peer 2 stays down
  }
  BOOST_CHECK_EQUAL(node1.stats().dropped_outgoing, frames_sent - frames_that_fit);
  BOOST_CHECK_MESSAGE(log.contains_line("transport 1: peer 2 send queue full"), log.all());
  BOOST_CHECK_EQUAL(node3.stats().delivered, frames_sent + 1);

  // The queue kept the newest frames: those are what peer 2 gets once it is up.
  auto config2 = transport_config(2, log);
  config2.listen_port = port2;
  PeerNode node2(std::move(config2));
  node2.expect_frames(std::vector<std::vector<uint8_t>>(to_two.end() - frames_that_fit, to_two.end()));
  BOOST_CHECK_MESSAGE(!node2.receive(quiet_period), "an evicted frame reached peer 2");
}

// A peer that is down keeps only down_queue_bytes_max of the newest frames, however large
// send_queue_bytes_max is: a long outage costs the sender little memory.
BOOST_AUTO_TEST_CASE(a_down_peer_keeps_only_the_newest_frames_within_the_down_bound) {
  LogLines log;
  const uint16_t port2 = unused_port();
  auto config1 = transport_config(1, log, {{2, TcpPeerAddress{"127.0.0.1", port2}}});
  constexpr size_t frame_bytes = 1000;
  constexpr size_t frames_kept = 2;
  config1.frame_bytes_max = frame_bytes;
  config1.send_queue_bytes_max = 10 * (frame_header_bytes + frame_bytes);
  config1.down_queue_bytes_max = frames_kept * (frame_header_bytes + frame_bytes) + 100;
  PeerNode node1(std::move(config1));  // peer 2 never listened: its link is not up

  constexpr uint64_t frames_sent = 20;
  std::vector<std::vector<uint8_t>> to_two;
  for (uint64_t i = 0; i < frames_sent; ++i) {
    to_two.push_back(numbered_payload(2, i, frame_bytes));
    node1.send(2, to_two.back());
  }
  BOOST_CHECK_EQUAL(node1.stats().dropped_outgoing, frames_sent - frames_kept);

  auto config2 = transport_config(2, log);
  config2.listen_port = port2;
  PeerNode node2(std::move(config2));
  node2.expect_frames(std::vector<std::vector<uint8_t>>(to_two.end() - frames_kept, to_two.end()));
  BOOST_CHECK_MESSAGE(!node2.receive(quiet_period), "an evicted frame reached peer 2");
}

BOOST_AUTO_TEST_CASE(a_malformed_hello_closes_that_link_only) {
  LogLines log;
  PeerNode node1(transport_config(1, log));
  PeerNode node2(transport_config(2, log, {{1, node1.address()}}));
  node2.send(1, bytes_of("before"));
  node1.expect_frames({bytes_of("before")});

  {
    RawSocket wrong_magic(node1.port());
    auto hello = open_hello(7, 1);
    hello[7] = '9';  // "KVPEER09"
    wrong_magic.send(hello);
    BOOST_CHECK_MESSAGE(wrong_magic.closed_by_peer_within(), "a hello with the wrong magic was not closed");
  }
  {
    RawSocket old_version(node1.port());
    old_version.send(old_hello(7));
    BOOST_CHECK_MESSAGE(old_version.closed_by_peer_within(), "a KVPEER01 hello was not closed");
  }
  {
    RawSocket previous_version(node1.port());
    auto hello = open_hello(7, 1);
    std::copy(peer_hello_magic_v2, peer_hello_magic_v2 + peer_magic_bytes, hello.begin());  // "KVPEER02"
    previous_version.send(hello);
    BOOST_CHECK_MESSAGE(previous_version.closed_by_peer_within(), "a KVPEER02 hello was not closed");
  }
  {
    RawSocket before_frames(node1.port());
    auto hello = open_hello(7, 1);
    std::copy(peer_hello_magic_v3, peer_hello_magic_v3 + peer_magic_bytes, hello.begin());  // "KVPEER03"
    before_frames.send(hello);
    BOOST_CHECK_MESSAGE(before_frames.closed_by_peer_within(), "a KVPEER03 hello was not closed");
  }
  {
    RawSocket node_zero(node1.port());
    node_zero.send(open_hello(0, 1));  // 0 is no node id
    BOOST_CHECK_MESSAGE(node_zero.closed_by_peer_within(), "a hello from node 0 was not closed");
  }
  {
    RawSocket wrong_node(node1.port());
    wrong_node.send(open_hello(7, 9));  // meant for node 9
    BOOST_CHECK_MESSAGE(wrong_node.closed_by_peer_within(), "a hello for another node was not closed");
  }
  for (const std::string reason : {"not a KeyVal peer hello (wrong magic)", "an old hello (KVPEER01)",
                                   "an old hello (KVPEER02): a node of an older version, whose raft entries carry no checksum",
                                   "an old hello (KVPEER03): a node of an older version, whose raft entries are not frames",
                                   "hello from node id 0", "it means to reach node 9, this is node 1"}) {
    BOOST_CHECK_MESSAGE(log.contains_line("transport 1: refused link from 127.0.0.1:"), log.all());
    BOOST_CHECK_MESSAGE(log.contains_line(reason), reason << " not logged:\n" << log.all());
  }

  node2.send(1, bytes_of("after"));
  node1.expect_frames({bytes_of("after")});
  BOOST_CHECK_EQUAL(node1.stats().delivered, 2u);
}

BOOST_AUTO_TEST_CASE(a_frame_length_out_of_bounds_closes_that_link_only) {
  LogLines log;
  auto config1 = transport_config(1, log);
  constexpr uint32_t frame_bytes_max = 1024;
  config1.frame_bytes_max = frame_bytes_max;
  config1.send_queue_bytes_max = 4 * frame_bytes_max;
  PeerNode node1(std::move(config1));
  PeerNode node2(transport_config(2, log, {{1, node1.address()}}));
  node2.send(1, bytes_of("before"));
  node1.expect_frames({bytes_of("before")});

  for (uint32_t length : {0u, frame_bytes_max + 1, 0xffffffffu}) {
    RawSocket raw(node1.port());
    raw.send(open_hello(7, 1));
    BOOST_REQUIRE_MESSAGE(raw.read_exact(peer_reply_bytes), "no handshake reply to an open hello");
    raw.send(header_only(length));
    BOOST_CHECK_MESSAGE(raw.closed_by_peer_within(), "a frame length of " << length << " was not closed");
    BOOST_CHECK_MESSAGE(log.contains_line("transport 1: link from peer 7 closed: frame length " +
                                          std::to_string(length) + " out of bounds"),
                        log.all());
  }
  {
    // The bound itself is accepted, from a raw peer as from a transport.
    RawSocket raw(node1.port());
    raw.send(open_hello(8, 1));
    auto largest = numbered_payload(8, 0, frame_bytes_max);
    raw.send(make_frame(largest));
    node1.expect_frames({largest});
  }

  node2.send(1, bytes_of("after"));
  node1.expect_frames({bytes_of("after")});
  BOOST_CHECK_EQUAL(node1.stats().delivered, 3u);
}

BOOST_AUTO_TEST_CASE(a_link_closed_by_a_restarting_peer_is_reconnected) {
  LogLines log;
  auto node2 = std::make_unique<PeerNode>(transport_config(2, log));
  const TcpPeerAddress address2 = node2->address();
  PeerNode node1(transport_config(1, log, {{2, address2}}));
  node1.send(2, bytes_of("first life"));
  node2->expect_frames({bytes_of("first life")});

  node2.reset();  // its system stops: the link from node 1 is closed under it
  BOOST_REQUIRE_MESSAGE(log.wait_for("transport 1: peer 2 down"), log.all());
  std::vector<std::vector<uint8_t>> while_down = {bytes_of("one"), bytes_of("two"), bytes_of("three")};
  for (const auto& payload : while_down) node1.send(2, payload);

  // The restarted node binds the same port again (the listener reuses the address).
  auto config2 = transport_config(2, log);
  config2.listen_port = address2.port;
  node2 = std::make_unique<PeerNode>(std::move(config2));
  node2->expect_frames(while_down);
  BOOST_CHECK_EQUAL(node1.stats().dropped_outgoing, 0u);
}

BOOST_AUTO_TEST_CASE(a_moved_peer_gets_the_queued_frames_at_its_new_address) {
  LogLines log;
  PeerNode node1(transport_config(1, log, {{2, TcpPeerAddress{"127.0.0.1", unused_port()}}}));
  std::vector<std::vector<uint8_t>> queued = {bytes_of("queued 1"), bytes_of("queued 2")};
  for (const auto& payload : queued) node1.send(2, payload);
  BOOST_REQUIRE_MESSAGE(log.wait_for("transport 1: peer 2 down"), log.all());

  PeerNode node2(transport_config(2, log));
  node1.add_peer(2, node2.address());
  node1.send(2, bytes_of("sent after the move"));
  queued.push_back(bytes_of("sent after the move"));
  node2.expect_frames(queued);
  BOOST_CHECK(!node2.receive(quiet_period));
}

BOOST_AUTO_TEST_CASE(frames_before_the_raft_node_registers_are_dropped) {
  LogLines log;
  System system;
  Owned<caf::actor> transport{spawn_tcp_transport(*system.system, transport_config(1, log))};
  BOOST_REQUIRE(transport.handle);
  RawSocket peer(port_of(*system.system, transport.handle));
  peer.send(open_hello(2, 1));
  peer.send(make_frame(bytes_of("too early")));
  BOOST_CHECK(wait_for_incoming_drops(*system.system, transport.handle, 1));

  // A raft node registered under another node's id is not this node's.
  caf::scoped_actor raft{*system.system};
  caf::anon_send(transport.handle, raft_peer_atom_v, uint64_t{5}, caf::actor_cast<caf::actor>(raft));
  peer.send(make_frame(bytes_of("still too early")));
  BOOST_CHECK(wait_for_incoming_drops(*system.system, transport.handle, 2));
  BOOST_CHECK_MESSAGE(log.contains_line("transport 1: ignored raft node registered as 5"), log.all());

  caf::anon_send(transport.handle, raft_peer_atom_v, uint64_t{1}, caf::actor_cast<caf::actor>(raft));
  peer.send(make_frame(bytes_of("on time")));
  std::optional<std::vector<uint8_t>> payload;
  raft->receive([&](raft_message_atom, const Frame& frame) { payload = frame.bytes; }, caf::after(wait_max) >> [] {});
  BOOST_REQUIRE_MESSAGE(payload, "the frame after the registration did not arrive");
  BOOST_CHECK(*payload == bytes_of("on time"));
  auto stats = stats_of(*system.system, transport.handle);
  BOOST_CHECK_EQUAL(stats.dropped_incoming, 2u);
  BOOST_CHECK_EQUAL(stats.delivered, 1u);
}

BOOST_AUTO_TEST_CASE(spawn_tcp_transport_reports_a_port_in_use) {
  LogLines log;
  TakenPort taken;
  System system;
  auto config = transport_config(1, log);
  config.listen_port = taken.port();
  Owned<caf::actor> transport{spawn_tcp_transport(*system.system, std::move(config))};
  BOOST_CHECK(!transport.handle);
  BOOST_CHECK_MESSAGE(log.contains_line("cannot listen on 127.0.0.1:" + std::to_string(taken.port())), log.all());
}

BOOST_AUTO_TEST_CASE(spawn_tcp_transport_refuses_a_peer_host_that_is_not_numeric) {
  LogLines log;
  System system;
  Owned<caf::actor> transport{
      spawn_tcp_transport(*system.system, transport_config(1, log, {{2, TcpPeerAddress{"peer-two.invalid", 7000}}}))};
  BOOST_CHECK(!transport.handle);
  BOOST_CHECK_MESSAGE(log.contains_line("not a numeric address: peer-two.invalid"), log.all());
}

// --- the handshake: open links and the cluster secret ---------------------------------------

namespace {

const std::string secret_a = "the-first-cluster-secret-0123456789";
const std::string secret_b = "another-cluster-secret-9876543210";

TcpTransportConfig secret_config(uint64_t node_id, const LogLines& log_lines, const std::string& secret,
                                 std::map<uint64_t, TcpPeerAddress> peers = {}) {
  auto config = transport_config(node_id, log_lines, std::move(peers));
  config.cluster_secret = secret;
  return config;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_proof_is_bound_to_the_secret_both_ids_both_nonces_and_its_side) {
  const PeerHello hello{1, 2, PeerLinkMode::secret, make_peer_nonce(PeerLinkMode::secret)};
  const PeerNonce acceptor_nonce = make_peer_nonce(PeerLinkMode::secret);
  const PeerProof proof = peer_proof(secret_a, PeerProofSide::dialer, hello, acceptor_nonce);
  BOOST_CHECK(peer_proof_matches(proof, peer_proof(secret_a, PeerProofSide::dialer, hello, acceptor_nonce).data()));
  auto differs = [&](const std::string& secret, PeerProofSide side, PeerHello changed, const PeerNonce& nonce) {
    return !peer_proof_matches(proof, peer_proof(secret, side, changed, nonce).data());
  };
  BOOST_CHECK(differs(secret_b, PeerProofSide::dialer, hello, acceptor_nonce));
  BOOST_CHECK(differs(secret_a, PeerProofSide::acceptor, hello, acceptor_nonce));
  BOOST_CHECK(differs(secret_a, PeerProofSide::dialer, PeerHello{3, 2, hello.mode, hello.dialer_nonce}, acceptor_nonce));
  BOOST_CHECK(differs(secret_a, PeerProofSide::dialer, PeerHello{1, 3, hello.mode, hello.dialer_nonce}, acceptor_nonce));
  BOOST_CHECK(differs(secret_a, PeerProofSide::dialer, PeerHello{1, 2, hello.mode, make_peer_nonce(hello.mode)},
                      acceptor_nonce));
  BOOST_CHECK(differs(secret_a, PeerProofSide::dialer, hello, make_peer_nonce(PeerLinkMode::secret)));
  BOOST_CHECK(hello.dialer_nonce != acceptor_nonce);  // fresh randomness each time
}

BOOST_AUTO_TEST_CASE(peers_with_the_same_secret_prove_it_both_ways_then_exchange_frames) {
  LogLines log;
  PeerNode node2(secret_config(2, log, secret_a));
  PeerNode node1(secret_config(1, log, secret_a, {{2, node2.address()}}));
  node2.add_peer(1, node1.address());
  node1.send(2, bytes_of("one to two"));
  node2.send(1, bytes_of("two to one"));
  node2.expect_frames({bytes_of("one to two")});
  node1.expect_frames({bytes_of("two to one")});
  BOOST_CHECK_MESSAGE(log.contains_line("transport 1: peer 2 up (cluster secret proven both ways)"), log.all());
  BOOST_CHECK_MESSAGE(log.contains_line("transport 2: link from peer 1 accepted (127.0.0.1:"), log.all());
  BOOST_CHECK_MESSAGE(!log.contains_line("refused"), log.all());
}

BOOST_AUTO_TEST_CASE(a_peer_with_another_secret_is_refused_by_both_sides) {
  LogLines log;
  PeerNode node1(secret_config(1, log, secret_a));
  PeerNode node2(secret_config(2, log, secret_b, {{1, node1.address()}}));
  node1.add_peer(2, node2.address());
  node2.send(1, bytes_of("from the wrong secret"));
  node1.send(2, bytes_of("to the wrong secret"));
  // Each dialer finds the acceptor's proof wrong and closes; neither raft node gets a frame.
  BOOST_REQUIRE_MESSAGE(log.wait_for("transport 2: peer 1 down (handshake with 127.0.0.1:" +
                                     std::to_string(node1.port()) + " failed: it did not prove the cluster secret"),
                        log.all());
  BOOST_REQUIRE_MESSAGE(log.wait_for("transport 1: peer 2 down (handshake with 127.0.0.1:" +
                                     std::to_string(node2.port()) + " failed: it did not prove the cluster secret"),
                        log.all());
  BOOST_CHECK_MESSAGE(log.wait_for("transport 1: refused link from 127.0.0.1:"), log.all());
  BOOST_CHECK_MESSAGE(log.contains_line("(claiming peer 2): closed by the dialer during the handshake"), log.all());
  BOOST_CHECK(!node1.receive(quiet_period));
  BOOST_CHECK(!node2.receive(quiet_period));
  BOOST_CHECK_EQUAL(node1.stats().delivered + node2.stats().delivered, 0u);
}

BOOST_AUTO_TEST_CASE(a_secret_on_one_side_only_is_refused_by_name_both_ways) {
  LogLines log;
  PeerNode node1(secret_config(1, log, secret_a));
  PeerNode node2(transport_config(2, log, {{1, node1.address()}}));
  node1.add_peer(2, node2.address());
  node2.send(1, bytes_of("open to secret"));
  node1.send(2, bytes_of("secret to open"));
  BOOST_CHECK_MESSAGE(log.wait_for("transport 1: refused link from 127.0.0.1:"), log.all());
  BOOST_CHECK_MESSAGE(log.wait_for("(claiming peer 2): it has no cluster secret and this node requires one"), log.all());
  BOOST_CHECK_MESSAGE(log.wait_for("transport 2: refused link from 127.0.0.1:"), log.all());
  BOOST_CHECK_MESSAGE(log.wait_for("(claiming peer 1): it offers a cluster secret and this node has none"), log.all());
  BOOST_CHECK_MESSAGE(log.wait_for("transport 2: peer 1 down (closed by 127.0.0.1:" + std::to_string(node1.port()) +
                                   " during the handshake: it refused this node"),
                      log.all());
  BOOST_CHECK(!node1.receive(quiet_period));
  BOOST_CHECK(!node2.receive(quiet_period));
}

// The attack, on the transport: a stranger claims a node id and sends a frame.
BOOST_AUTO_TEST_CASE(a_stranger_without_the_secret_gets_no_frame_to_the_raft_node) {
  LogLines log;
  PeerNode node1(secret_config(1, log, secret_a));
  PeerNode node2(secret_config(2, log, secret_a, {{1, node1.address()}}));
  {
    RawSocket open_mode(node1.port());  // what worked before the secret: hello, then frames
    open_mode.send(open_hello(7, 1));
    open_mode.send(make_frame(bytes_of("forged")));
    BOOST_CHECK_MESSAGE(open_mode.closed_by_peer_within(), "an open hello to a node with a secret was not closed");
  }
  {
    // A secret-mode hello gets the acceptor's reply (nothing in it helps a forger: the proof
    // covers a fresh nonce), then a made-up proof is refused.
    RawSocket guesser(node1.port());
    PeerHello hello{7, 1, PeerLinkMode::secret, make_peer_nonce(PeerLinkMode::secret)};
    guesser.send(encode_peer_hello(hello));
    auto reply = guesser.read_exact(peer_reply_bytes);
    BOOST_REQUIRE_MESSAGE(reply, "no handshake reply");
    guesser.send(std::vector<uint8_t>(peer_proof_bytes, 0x5a));
    guesser.send(make_frame(bytes_of("forged")));
    BOOST_CHECK_MESSAGE(guesser.closed_by_peer_within(), "a wrong proof was not closed");
  }
  {
    // The acceptor's own proof sent back as the dialer's: the labels differ, so it fails.
    RawSocket reflector(node1.port());
    PeerHello hello{7, 1, PeerLinkMode::secret, make_peer_nonce(PeerLinkMode::secret)};
    reflector.send(encode_peer_hello(hello));
    auto reply = reflector.read_exact(peer_reply_bytes);
    BOOST_REQUIRE_MESSAGE(reply, "no handshake reply");
    reflector.send(std::vector<uint8_t>(reply->begin() + 1 + peer_nonce_bytes, reply->end()));
    BOOST_CHECK_MESSAGE(reflector.closed_by_peer_within(), "a reflected proof was not closed");
  }
  BOOST_CHECK_MESSAGE(log.contains_line("(claiming peer 7): it has no cluster secret and this node requires one"), log.all());
  BOOST_CHECK_MESSAGE(log.contains_line("(claiming peer 7): it did not prove the cluster secret"), log.all());
  BOOST_CHECK_MESSAGE(!node1.receive(quiet_period), "a forged frame reached the raft node");
  BOOST_CHECK_EQUAL(node1.stats().delivered, 0u);
  // The real peer's link is unaffected.
  node2.send(1, bytes_of("real"));
  node1.expect_frames({bytes_of("real")});
}

BOOST_AUTO_TEST_CASE(a_silent_connection_is_refused_after_the_handshake_timeout) {
  LogLines log;
  auto config = secret_config(1, log, secret_a);
  config.handshake_timeout_ms = 200;
  PeerNode node1(std::move(config));
  RawSocket silent(node1.port());
  BOOST_CHECK_MESSAGE(silent.closed_by_peer_within(), "a silent connection was kept");
  BOOST_CHECK_MESSAGE(log.contains_line("transport 1: refused link from 127.0.0.1:"), log.all());
  BOOST_CHECK_MESSAGE(log.contains_line("no complete handshake within 200 ms"), log.all());
}

// --- the client listener -----------------------------------------------------------------

namespace {

// The fake gateway's answer: ok, echoing the request's request_id and key (as the value).
Frame echo_response(const Frame& request, uint64_t node_id) {
  ClientResponse response;
  response.leader_hint = node_id;
  response.node_id = node_id;
  auto decoded = decode_client_request(request.bytes.data(), request.bytes.size());
  if (decoded.is_ok()) {
    response.request_id = decoded->request_id;
    response.status = ClientStatus::ok;
    response.found = true;
    response.value = decoded->key;
  } else {
    response.status = ClientStatus::rejected;
    response.message = "the fake gateway got an undecodable request";
  }
  return Frame{encode_client_response(response)};
}

std::vector<Frame> echo_batch(const std::vector<Frame>& requests, uint64_t node_id) {
  std::vector<Frame> answers;
  for (const Frame& request : requests) answers.push_back(echo_response(request, node_id));
  return answers;
}

// A GetBatch's answer in the same way: ok, every key found with itself as its value.
Frame echo_gets(const Frame& request, uint64_t node_id) {
  ClientResponse header;
  header.leader_hint = node_id;
  header.node_id = node_id;
  auto decoded = decode_get_batch(request.bytes.data(), request.bytes.size());
  if (!decoded.is_ok()) {
    header.status = ClientStatus::rejected;
    header.message = "the fake gateway got an undecodable get batch";
    return Frame{encode_get_batch_answer(header, {}, {})};
  }
  return Frame{encode_get_batch_answer(header, std::vector<uint8_t>(decoded->keys.size(), 1), decoded->keys)};
}

bool held_gets(const Frame& request, const std::string& hold_prefix) {
  auto decoded = decode_get_batch(request.bytes.data(), request.bytes.size());
  if (!decoded.is_ok()) return false;
  for (const std::string& key : decoded->keys) {
    if (key.rfind(hold_prefix, 0) == 0) return true;
  }
  return false;
}

// Stands in for the client gateway: answers each request at once with echo_response.
// (Each fake takes an argument: CAF 0.17.6 dereferences a null argument tuple when a function
// actor is spawned with none, which the sanitizer build reports as undefined behaviour.)
client_gateway_actor::behavior_type echo_gateway(uint64_t node_id) {
  return {[node_id](client_atom, const Frame& request) { return echo_response(request, node_id); },
          [node_id](client_batch_atom, const std::vector<Frame>& requests) { return echo_batch(requests, node_id); },
          [node_id](client_gets_atom, const Frame& request) { return echo_gets(request, node_id); }};
}

// Like echo_gateway, but holds each request whose key starts with `hold_prefix` until it is
// told (apply_atom) to answer the held ones; a batch holding one is answered whole then, as
// the real gateway answers a batch once its last request is answered. stats_atom: how many
// requests it holds.
using holding_gateway_actor =
    client_gateway_actor::extend<caf::reacts_to<apply_atom>, caf::replies_to<stats_atom>::with<uint64_t>>;

struct HoldingState {
  std::vector<std::pair<caf::typed_response_promise<Frame>, Frame>> held;  // promise, its answer
  std::vector<std::pair<caf::typed_response_promise<std::vector<Frame>>, std::vector<Frame>>> held_batches;
  uint64_t held_requests = 0;
};

bool held_key(const Frame& request, const std::string& hold_prefix) {
  auto decoded = decode_client_request(request.bytes.data(), request.bytes.size());
  return decoded.is_ok() && decoded->key.rfind(hold_prefix, 0) == 0;
}

holding_gateway_actor::behavior_type holding_gateway(holding_gateway_actor::stateful_pointer<HoldingState> self,
                                                     std::string hold_prefix) {
  return {
      [self, hold_prefix](client_batch_atom, const std::vector<Frame>& requests) -> caf::result<std::vector<Frame>> {
        uint64_t holds = 0;
        for (const Frame& request : requests) holds += held_key(request, hold_prefix) ? 1 : 0;
        if (holds == 0) return echo_batch(requests, 1);
        auto promise = self->make_response_promise<std::vector<Frame>>();
        self->state.held_batches.emplace_back(promise, echo_batch(requests, 1));
        self->state.held_requests += holds;
        return promise;
      },
      [self, hold_prefix](client_atom, const Frame& request) -> caf::result<Frame> {
        if (!held_key(request, hold_prefix)) return echo_response(request, 1);
        auto promise = self->make_response_promise<Frame>();
        self->state.held.emplace_back(promise, echo_response(request, 1));
        ++self->state.held_requests;
        return promise;
      },
      [self, hold_prefix](client_gets_atom, const Frame& request) -> caf::result<Frame> {
        if (!held_gets(request, hold_prefix)) return echo_gets(request, 1);
        auto promise = self->make_response_promise<Frame>();
        self->state.held.emplace_back(promise, echo_gets(request, 1));
        ++self->state.held_requests;
        return promise;
      },
      [self](apply_atom) {
        for (auto& [promise, response] : self->state.held) promise.deliver(response);
        for (auto& [promise, responses] : self->state.held_batches) promise.deliver(responses);
        self->state.held.clear();
        self->state.held_batches.clear();
        self->state.held_requests = 0;
      },
      [self](stats_atom) { return self->state.held_requests; },
  };
}

std::vector<uint8_t> request_frame(uint64_t request_id, const std::string& key) {
  ClientRequest request;
  request.request_id = request_id;
  request.op = ClientOp::get;
  request.key = key;
  return make_frame(encode_client_request(request));
}

std::optional<ClientResponse> read_response(RawSocket& socket, milliseconds timeout = wait_max) {
  auto payload = socket.read_frame(timeout);
  if (!payload) return std::nullopt;
  auto decoded = decode_client_response(payload->data(), payload->size());
  BOOST_REQUIRE_MESSAGE(decoded.is_ok(), "undecodable response: " << decoded.status().to_string());
  return std::move(decoded).value();
}

// A client listener over the echo gateway in its own actor system.
class ListenerNode {
 public:
  explicit ListenerNode(ClientListenerConfig config, bool holding = false) {
    gateway_.handle = holding ? caf::actor_cast<caf::actor>(system_.system->spawn(holding_gateway, std::string("hold")))
                              : caf::actor_cast<caf::actor>(system_.system->spawn(echo_gateway, uint64_t{1}));
    listener_.handle = spawn_client_listener(*system_.system, std::move(config),
                                             caf::actor_cast<client_gateway_actor>(gateway_.handle));
    BOOST_REQUIRE_MESSAGE(listener_.handle, "the client listener did not start");
    port_ = port_of(*system_.system, listener_.handle);
  }
  uint16_t port() const { return port_; }

  // A holding gateway answers the requests it holds.
  void release_held() { caf::anon_send(gateway_.handle, apply_atom_v); }

  // Waits (up to wait_max) until a holding gateway holds `count` requests; false if it never did.
  bool wait_held(uint64_t count) {
    caf::scoped_actor self{*system_.system};
    const auto until = Clock::now() + wait_max;
    while (Clock::now() < until) {
      uint64_t held = 0;
      self->request(gateway_.handle, wait_max, stats_atom_v).receive([&](uint64_t n) { held = n; }, [](caf::error&) {});
      if (held >= count) return true;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return false;
  }

  // Stops the gateway and returns once it is gone.
  void stop_gateway() {
    caf::scoped_actor self{*system_.system};
    self->send_exit(gateway_.handle, caf::exit_reason::user_shutdown);
    self->wait_for(gateway_.handle);
  }

 private:
  System system_;  // declared first: destroyed last, once its actors are told to exit
  Owned<caf::actor> gateway_;
  Owned<caf::actor> listener_;
  uint16_t port_ = 0;
};

}  // namespace

BOOST_AUTO_TEST_CASE(client_requests_are_answered_and_bad_frames_close_only_their_connection) {
  LogLines log;
  ClientListenerConfig config;
  config.frame_bytes_max = 1024;
  config.request_timeout = wait_max;
  config.log = log.callback();
  ListenerNode node(std::move(config));

  // Two requests in one write; the answers may come in either order.
  RawSocket steady(node.port());
  auto both = request_frame(11, "eleven");
  auto twelve = request_frame(12, "twelve");
  both.insert(both.end(), twelve.begin(), twelve.end());
  steady.send(both);
  std::map<uint64_t, std::string> answered;
  for (int i = 0; i < 2; ++i) {
    auto response = read_response(steady);
    BOOST_REQUIRE_MESSAGE(response, "response " << i << " did not arrive");
    BOOST_CHECK(response->status == ClientStatus::ok);
    answered[response->request_id] = response->value;
  }
  BOOST_CHECK((answered == std::map<uint64_t, std::string>{{11, "eleven"}, {12, "twelve"}}));

  {
    RawSocket oversized(node.port());
    oversized.send(header_only(1025));
    auto response = read_response(oversized);
    BOOST_REQUIRE_MESSAGE(response, "no refusal for an oversized frame");
    BOOST_CHECK(response->status == ClientStatus::rejected);
    BOOST_CHECK_EQUAL(response->request_id, 0u);
    BOOST_CHECK_MESSAGE(contains(response->message, "1025"), response->message);
    BOOST_CHECK_MESSAGE(oversized.closed_by_peer_within(), "the connection stayed open after the refusal");
  }
  {
    RawSocket empty(node.port());
    empty.send(header_only(0));
    auto response = read_response(empty);
    BOOST_REQUIRE_MESSAGE(response, "no refusal for an empty frame");
    BOOST_CHECK(response->status == ClientStatus::rejected);
    BOOST_CHECK_MESSAGE(contains(response->message, "frame length 0"), response->message);
    BOOST_CHECK_MESSAGE(empty.closed_by_peer_within(), "the connection stayed open after the refusal");
  }
  {
    auto garbage = bytes_of("garbage!");
    BOOST_REQUIRE(!decode_client_request(garbage.data(), garbage.size()).is_ok());
    RawSocket malformed(node.port());
    malformed.send(make_frame(garbage));
    auto response = read_response(malformed);
    BOOST_REQUIRE_MESSAGE(response, "no refusal for a malformed request");
    BOOST_CHECK(response->status == ClientStatus::rejected);
    BOOST_CHECK_EQUAL(response->request_id, 0u);
    BOOST_CHECK_MESSAGE(contains(response->message, "malformed request"), response->message);
    BOOST_CHECK_MESSAGE(malformed.closed_by_peer_within(), "the connection stayed open after the refusal");
  }

  // The connection opened before the refusals is still served.
  steady.send(request_frame(13, "thirteen"));
  auto response = read_response(steady);
  BOOST_REQUIRE_MESSAGE(response, "the steady connection is no longer served");
  BOOST_CHECK_EQUAL(response->request_id, 13u);
  BOOST_CHECK(response->status == ClientStatus::ok);
  BOOST_CHECK_EQUAL(response->value, "thirteen");
}

BOOST_AUTO_TEST_CASE(a_connection_beyond_the_bound_gets_busy_and_its_slot_is_freed_on_close) {
  LogLines log;
  ClientListenerConfig config;
  config.connections_max = 1;
  config.log = log.callback();
  ListenerNode node(std::move(config));

  auto first = std::make_unique<RawSocket>(node.port());
  first->send(request_frame(1, "first"));
  auto answer = read_response(*first);
  BOOST_REQUIRE_MESSAGE(answer && answer->status == ClientStatus::ok, "the first connection was not served");
  {
    RawSocket second(node.port());
    auto refusal = read_response(second);
    BOOST_REQUIRE_MESSAGE(refusal, "no busy response for a connection beyond the bound");
    BOOST_CHECK(refusal->status == ClientStatus::busy);
    BOOST_CHECK_MESSAGE(second.closed_by_peer_within(), "the connection beyond the bound stayed open");
  }
  first->send(request_frame(2, "first again"));
  answer = read_response(*first);
  BOOST_REQUIRE_MESSAGE(answer && answer->request_id == 2u, "the first connection is no longer served");

  // Once the first client leaves, its slot serves a new one (the close reaches the listener
  // asynchronously, so a new client may still be told busy for a moment).
  first.reset();
  auto deadline = Clock::now() + wait_max;
  std::optional<ClientResponse> later;
  while (Clock::now() < deadline) {
    RawSocket next(node.port());
    next.send(request_frame(3, "next"));
    later = read_response(next);
    if (later && later->status == ClientStatus::ok) break;
    std::this_thread::sleep_for(milliseconds(10));
  }
  BOOST_REQUIRE_MESSAGE(later, "no answer on a connection after the first one closed");
  BOOST_CHECK(later->status == ClientStatus::ok);
  BOOST_CHECK_EQUAL(later->request_id, 3u);
}

BOOST_AUTO_TEST_CASE(requests_beyond_the_in_flight_bound_get_busy_and_unanswered_ones_time_out) {
  LogLines log;
  ClientListenerConfig config;
  config.requests_in_flight_max = 1;
  config.request_timeout = milliseconds(200);
  config.log = log.callback();
  ListenerNode node(std::move(config), /*holding=*/true);

  RawSocket client(node.port());
  auto requests = request_frame(1, "hold");
  auto second = request_frame(2, "not held");
  requests.insert(requests.end(), second.begin(), second.end());
  auto sent_at = Clock::now();
  client.send(requests);

  auto busy = read_response(client);
  BOOST_REQUIRE_MESSAGE(busy, "no answer to the request beyond the bound");
  BOOST_CHECK_EQUAL(busy->request_id, 2u);
  BOOST_CHECK(busy->status == ClientStatus::busy);

  auto timed_out = read_response(client);
  BOOST_REQUIRE_MESSAGE(timed_out, "no answer to the request the gateway never answered");
  BOOST_CHECK_EQUAL(timed_out->request_id, 1u);
  BOOST_CHECK(timed_out->status == ClientStatus::timeout);
  BOOST_CHECK(Clock::now() - sent_at >= milliseconds(200));

  // The timed-out request no longer counts against the bound.
  client.send(request_frame(3, "after"));
  auto after = read_response(client);
  BOOST_REQUIRE_MESSAGE(after, "no answer after the timeout");
  BOOST_CHECK_EQUAL(after->request_id, 3u);
  BOOST_CHECK(after->status == ClientStatus::ok);
}

BOOST_AUTO_TEST_CASE(an_answer_for_a_closed_connection_never_reaches_a_newer_one) {
  // CAF 0.17 names a connection by its socket descriptor, and the kernel hands a closed
  // descriptor to the next connection: a late answer must not follow the old name.
  LogLines log;
  ClientListenerConfig config;
  config.requests_in_flight_max = 4;
  config.log = log.callback();
  ListenerNode node(std::move(config), /*holding=*/true);
  {
    RawSocket leaving(node.port());
    leaving.send(request_frame(1, "hold: for the client that leaves"));
    // The probe goes once the held request reached the gateway (in a batch with it, it would
    // wait for it: a batch is answered whole).
    BOOST_REQUIRE_MESSAGE(node.wait_held(1), "the held request never reached the gateway");
    leaving.send(request_frame(2, "probe"));
    auto probe = read_response(leaving);
    BOOST_REQUIRE_MESSAGE(probe && probe->request_id == 2u, "the first client was not served");
  }
  // Give the listener time to see the close and release the descriptor for reuse.
  std::this_thread::sleep_for(milliseconds(50));

  RawSocket newer(node.port());
  newer.send(request_frame(1, "mine"));
  auto mine = read_response(newer);
  BOOST_REQUIRE_MESSAGE(mine, "the newer client was not served");
  BOOST_CHECK_EQUAL(mine->value, "mine");

  node.release_held();  // the answer for the client that left
  auto stray = read_response(newer, quiet_period);
  BOOST_CHECK_MESSAGE(!stray, "the newer client got an answer it never asked for: " << (stray ? stray->value : ""));

  // Its in-flight count is its own: requests up to the bound are served.
  std::vector<uint8_t> batch;
  for (uint64_t id = 2; id <= 5; ++id) {
    auto frame = request_frame(id, "key " + std::to_string(id));
    batch.insert(batch.end(), frame.begin(), frame.end());
  }
  newer.send(batch);
  for (int i = 0; i < 4; ++i) {
    auto response = read_response(newer);
    BOOST_REQUIRE_MESSAGE(response, "response " << i << " of the batch did not arrive");
    BOOST_CHECK_MESSAGE(response->status == ClientStatus::ok,
                        "request " << response->request_id << ": " << client_status_name(response->status));
  }
}

BOOST_AUTO_TEST_CASE(a_stopped_gateway_answers_unavailable) {
  LogLines log;
  ClientListenerConfig config;
  config.log = log.callback();
  ListenerNode node(std::move(config));
  node.stop_gateway();

  RawSocket client(node.port());
  client.send(request_frame(5, "anything"));
  auto response = read_response(client);
  BOOST_REQUIRE_MESSAGE(response, "no answer while the gateway is gone");
  BOOST_CHECK_EQUAL(response->request_id, 5u);
  BOOST_CHECK(response->status == ClientStatus::unavailable);
  BOOST_CHECK_MESSAGE(contains(response->message, "gateway failed"), response->message);
}

BOOST_AUTO_TEST_CASE(spawn_client_listener_reports_a_port_in_use) {
  LogLines log;
  TakenPort taken;
  System system;
  Owned<client_gateway_actor> gateway{system.system->spawn(echo_gateway, uint64_t{1})};
  ClientListenerConfig config;
  config.port = taken.port();
  config.log = log.callback();
  Owned<caf::actor> listener{spawn_client_listener(*system.system, std::move(config), gateway.handle)};
  BOOST_CHECK(!listener.handle);
  BOOST_CHECK_MESSAGE(log.contains_line("cannot listen on 127.0.0.1:" + std::to_string(taken.port())), log.all());
}
