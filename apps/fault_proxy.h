// A fault proxy for the peer links of real `keyval node` processes: one listener on 127.0.0.1
// in front of each node's peer port, advertised as that node's peer address (the Raft
// configuration records it, so every node dials node j through j's proxy listener), and rules
// per directed pair of nodes: drop, delay, heal.
//
// A peer link carries frames one way only (actors/tcp_transport.cc): the dialer writes the
// hello of actors/peer_handshake.h (its node id at bytes 8..15), the acceptor answers with its
// reply, and with a cluster secret the dialer sends its proof; then the dialer writes
// length-prefixed frames (actors/framing.h). So the proxy learns the sending node from the hello
// and the receiving node from the listener the connection came
// to, and each connection is one directed pair. It reads the frames as they pass:
//   drop (a cut pair)  a frame that starts while the pair is cut is read and discarded whole.
//                      The TCP connection stays up and nothing is refused: the sender sees no
//                      error, as behind a real partition (a blackhole, not a reset), and the
//                      stream's framing stays intact, so when the pair is healed the next frame
//                      goes through on the same connection with no reconnection back-off. A
//                      frame already being forwarded when the cut starts is finished.
//   delay              every byte read on the pair is written D ms after it was read, in order.
// The handshake passes untouched (the reply and proof are never cut: a cut starts at the next
// frame). Bytes going the other way (the acceptor's side) are forwarded as they come. TLS peer
// links (docs/SECURITY.md) cannot be read, so the proxy is for plaintext links, with or without
// a cluster secret. A connection whose first bytes are not a hello, or whose upstream refuses it (the node is down), is
// closed. The proxy's own buffering is bounded (buffered_bytes_max per connection: it stops
// reading from the sender beyond it, which is TCP back-pressure, as on a slow network).
//
// It runs in its own thread (poll over non-blocking sockets); rules are set from any thread.
// Only 127.0.0.1: it binds and connects nowhere else.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "storage/status.h"

namespace keyval {

class FaultProxy {
 public:
  struct Link {
    uint64_t node = 0;          // the node behind this listener (the receiving side)
    uint16_t listen_port = 0;   // on 127.0.0.1: the node's advertised peer address
    uint16_t target_port = 0;   // on 127.0.0.1: the node's real peer listener
  };
  struct Counters {
    uint64_t connections = 0;       // accepted and connected upstream
    uint64_t frames_forwarded = 0;
    uint64_t frames_dropped = 0;    // discarded on a cut pair
    uint64_t refused = 0;           // closed: a bad hello, or the upstream refused
  };
  static constexpr size_t buffered_bytes_max = 8u << 20;

  // Binds every listener (an error names the port) and starts the thread.
  static Result<std::unique_ptr<FaultProxy>> start(const std::vector<Link>& links);
  ~FaultProxy();  // stops the thread, closes every socket
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  void cut(uint64_t from, uint64_t to);                      // frames from -> to are dropped
  void delay(uint64_t from, uint64_t to, uint64_t delay_ms);  // from = to = 0: every pair
  void heal();                                               // no cut, no delay
  Counters counters() const;

 private:
  struct Connection;
  FaultProxy() = default;
  void run();
  void accept_on(size_t listener);
  void read_sender(Connection& connection, uint64_t now_ms);
  void forward_due(Connection& connection, uint64_t now_ms);
  void relay_back(Connection& connection);
  bool is_cut(uint64_t from, uint64_t to);
  uint64_t delay_of(uint64_t from, uint64_t to);

  std::vector<Link> links_;
  std::vector<int> listeners_;
  int wake_[2] = {-1, -1};  // a pipe: writing to it wakes the thread (to stop)
  std::vector<std::unique_ptr<Connection>> connections_;  // the thread's own
  mutable std::mutex mutex_;  // guards the rules and counters below
  std::set<std::pair<uint64_t, uint64_t>> cut_;
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> delay_ms_;
  Counters counters_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace keyval
