// The peer-link fault proxy (see fault_proxy.h).
#include "apps/fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>

#include "actors/framing.h"
#include "actors/peer_handshake.h"

namespace keyval {
namespace {

constexpr size_t read_bytes_max = 64u << 10;
constexpr int poll_timeout_ms_max = 100;

uint64_t now_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  return address;
}

void set_non_blocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// A blocking connect to 127.0.0.1:port (immediate on the loopback), then non-blocking; -1 when refused.
int connect_loopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address = loopback(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  set_non_blocking(fd);
  return fd;
}

}  // namespace

struct FaultProxy::Connection {
  struct Chunk {
    uint64_t due_ms = 0;
    std::vector<uint8_t> bytes;
    size_t written = 0;
  };
  int sender = -1;    // the dialing node's connection, accepted here
  int upstream = -1;  // to the receiving node's real listener; -1 until the hello was read
  uint64_t from = 0;  // the sending node (from its hello); 0 until then
  uint64_t to = 0;    // the receiving node (the listener's)
  uint16_t target_port = 0;
  std::vector<uint8_t> hello;
  uint64_t proof_left = 0;  // the dialer's handshake proof still to pass (cluster-secret mode)
  uint8_t header[frame_header_bytes] = {};
  size_t header_bytes = 0;    // of the next frame's header read so far
  uint64_t payload_left = 0;  // of the frame being passed (or dropped)
  bool dropping = false;      // the frame being passed started on a cut pair
  std::deque<Chunk> pending;  // read, to be written upstream when due
  size_t pending_bytes = 0;
  bool closed = false;

  void emit(const uint8_t* bytes, size_t count, uint64_t due_ms) {
    if (count == 0) return;
    if (!pending.empty() && pending.back().due_ms == due_ms && pending.back().written == 0) {
      pending.back().bytes.insert(pending.back().bytes.end(), bytes, bytes + count);
    } else {
      pending.push_back(Chunk{due_ms, std::vector<uint8_t>(bytes, bytes + count), 0});
    }
    pending_bytes += count;
  }
};

Result<std::unique_ptr<FaultProxy>> FaultProxy::start(const std::vector<Link>& links) {
  std::unique_ptr<FaultProxy> proxy(new FaultProxy());
  proxy->links_ = links;
  for (const Link& link : links) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Status::from_errno("socket", "fault proxy", errno);
    proxy->listeners_.push_back(fd);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in address = loopback(link.listen_port);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(fd, 64) != 0) {
      return Status::io_error("fault proxy: cannot listen on 127.0.0.1:" + std::to_string(link.listen_port) + " for node " +
                              std::to_string(link.node) + ": " + std::strerror(errno));
    }
    set_non_blocking(fd);
  }
  if (::pipe2(proxy->wake_, O_CLOEXEC | O_NONBLOCK) != 0) return Status::from_errno("pipe", "fault proxy", errno);
  proxy->thread_ = std::thread([p = proxy.get()] { p->run(); });
  return proxy;
}

FaultProxy::~FaultProxy() {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    stopping_ = true;
  }
  if (wake_[1] >= 0) {
    char byte = 0;
    ssize_t ignored = ::write(wake_[1], &byte, 1);
    (void)ignored;
  }
  if (thread_.joinable()) thread_.join();
  for (auto& connection : connections_) {
    if (connection->sender >= 0) ::close(connection->sender);
    if (connection->upstream >= 0) ::close(connection->upstream);
  }
  for (int fd : listeners_) ::close(fd);
  for (int fd : wake_) {
    if (fd >= 0) ::close(fd);
  }
}

void FaultProxy::cut(uint64_t from, uint64_t to) {
  std::lock_guard<std::mutex> guard(mutex_);
  cut_.insert({from, to});
}

void FaultProxy::delay(uint64_t from, uint64_t to, uint64_t delay_ms) {
  std::lock_guard<std::mutex> guard(mutex_);
  delay_ms_[{from, to}] = delay_ms;
}

void FaultProxy::heal() {
  std::lock_guard<std::mutex> guard(mutex_);
  cut_.clear();
  delay_ms_.clear();
}

FaultProxy::Counters FaultProxy::counters() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return counters_;
}

bool FaultProxy::is_cut(uint64_t from, uint64_t to) {
  std::lock_guard<std::mutex> guard(mutex_);
  return cut_.count({from, to}) != 0;
}

uint64_t FaultProxy::delay_of(uint64_t from, uint64_t to) {
  std::lock_guard<std::mutex> guard(mutex_);
  uint64_t delay = 0;
  for (auto pair : {std::make_pair(from, to), std::make_pair(uint64_t{0}, uint64_t{0})}) {
    auto found = delay_ms_.find(pair);
    if (found != delay_ms_.end()) delay = std::max(delay, found->second);
  }
  return delay;
}

void FaultProxy::accept_on(size_t listener) {
  while (true) {
    int fd = ::accept4(listeners_[listener], nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;  // EAGAIN: no more
    auto connection = std::make_unique<Connection>();
    connection->sender = fd;
    connection->to = links_[listener].node;
    connection->target_port = links_[listener].target_port;
    connections_.push_back(std::move(connection));
  }
}

// Reads what the sender wrote: its hello (then the upstream connection is made), then frames,
// each forwarded (at now + the pair's delay) or, if the pair is cut when it starts, dropped.
void FaultProxy::read_sender(Connection& c, uint64_t now) {
  uint8_t buffer[read_bytes_max];
  ssize_t count = ::read(c.sender, buffer, sizeof buffer);
  if (count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR)) {
    c.closed = true;
    return;
  }
  if (count < 0) return;
  size_t at = 0;
  const size_t n = static_cast<size_t>(count);
  if (c.from == 0) {
    const size_t take = std::min(peer_hello_bytes - c.hello.size(), n);
    c.hello.insert(c.hello.end(), buffer, buffer + take);
    at = take;
    if (c.hello.size() < peer_hello_bytes) return;
    auto hello = decode_peer_hello(c.hello.data(), c.hello.size());
    const uint64_t id = hello.is_ok() ? hello->dialer_id : 0;
    const bool valid = hello.is_ok() && id != 0;
    // With a cluster secret the dialer sends its proof (after the acceptor's reply, which
    // relay_back passes on) before any frame: it passes as it is, never parsed as a frame.
    if (valid && hello->mode == PeerLinkMode::secret) c.proof_left = peer_proof_bytes;
    c.upstream = valid ? connect_loopback(c.target_port) : -1;
    if (c.upstream < 0) {
      std::lock_guard<std::mutex> guard(mutex_);
      ++counters_.refused;
      c.closed = true;
      return;
    }
    c.from = id;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      ++counters_.connections;
    }
    c.emit(c.hello.data(), c.hello.size(), now);
  }
  const uint64_t due = std::max(now + delay_of(c.from, c.to), c.pending.empty() ? 0 : c.pending.back().due_ms);
  while (at < n) {
    if (c.proof_left > 0) {
      const size_t take = static_cast<size_t>(std::min<uint64_t>(c.proof_left, n - at));
      c.emit(buffer + at, take, due);
      c.proof_left -= take;
      at += take;
      continue;
    }
    if (c.payload_left == 0) {
      const size_t take = std::min(frame_header_bytes - c.header_bytes, n - at);
      std::memcpy(c.header + c.header_bytes, buffer + at, take);
      c.header_bytes += take;
      at += take;
      if (c.header_bytes < frame_header_bytes) break;
      c.header_bytes = 0;
      c.payload_left = read_frame_header(c.header);
      c.dropping = is_cut(c.from, c.to);
      {
        std::lock_guard<std::mutex> guard(mutex_);
        ++(c.dropping ? counters_.frames_dropped : counters_.frames_forwarded);
      }
      if (!c.dropping) c.emit(c.header, frame_header_bytes, due);
      continue;
    }
    const size_t take = static_cast<size_t>(std::min<uint64_t>(c.payload_left, n - at));
    if (!c.dropping) c.emit(buffer + at, take, due);
    c.payload_left -= take;
    at += take;
  }
}

void FaultProxy::forward_due(Connection& c, uint64_t now) {
  while (!c.pending.empty() && c.pending.front().due_ms <= now) {
    Connection::Chunk& chunk = c.pending.front();
    ssize_t written = ::send(c.upstream, chunk.bytes.data() + chunk.written, chunk.bytes.size() - chunk.written, MSG_NOSIGNAL);
    if (written < 0) {
      if (errno != EAGAIN && errno != EINTR) c.closed = true;
      return;
    }
    chunk.written += static_cast<size_t>(written);
    c.pending_bytes -= static_cast<size_t>(written);
    if (chunk.written < chunk.bytes.size()) return;
    c.pending.pop_front();
  }
}

// The receiving node's side: it writes nothing in this protocol; whatever comes is passed on,
// and its closing closes the pair.
void FaultProxy::relay_back(Connection& c) {
  uint8_t buffer[4096];
  ssize_t count = ::read(c.upstream, buffer, sizeof buffer);
  if (count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR)) {
    c.closed = true;
    return;
  }
  if (count > 0) {
    ssize_t ignored = ::send(c.sender, buffer, static_cast<size_t>(count), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)ignored;
  }
}

void FaultProxy::run() {
  std::vector<pollfd> fds;
  while (true) {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      if (stopping_) return;
    }
    uint64_t now = now_ms();
    fds.clear();
    fds.push_back({wake_[0], POLLIN, 0});
    for (int fd : listeners_) fds.push_back({fd, POLLIN, 0});
    int timeout = poll_timeout_ms_max;
    for (auto& c : connections_) {
      const bool room = c->pending_bytes < buffered_bytes_max;
      fds.push_back({c->sender, static_cast<short>(room ? POLLIN : 0), 0});
      short upstream_events = POLLIN;
      if (!c->pending.empty()) {
        const uint64_t due = c->pending.front().due_ms;
        if (due <= now) {
          upstream_events |= POLLOUT;
        } else {
          timeout = std::min<int>(timeout, static_cast<int>(due - now));
        }
      }
      fds.push_back({c->upstream, upstream_events, 0});  // -1 before the hello: poll ignores it
    }
    ::poll(fds.data(), fds.size(), timeout);
    now = now_ms();
    for (size_t i = 0; i < listeners_.size(); ++i) {
      if (fds[1 + i].revents & POLLIN) accept_on(i);
    }
    const size_t base = 1 + listeners_.size();
    const size_t polled = (fds.size() - base) / 2;  // connections accepted now were not polled
    for (size_t i = 0; i < polled; ++i) {
      Connection& c = *connections_[i];
      const short sender_events = fds[base + 2 * i].revents, upstream_events = fds[base + 2 * i + 1].revents;
      if (sender_events & (POLLIN | POLLHUP | POLLERR)) read_sender(c, now);
      if (!c.closed && c.upstream >= 0 && (upstream_events & (POLLIN | POLLHUP | POLLERR))) relay_back(c);
      if (!c.closed && c.upstream >= 0) forward_due(c, now);
    }
    for (auto& c : connections_) {
      if (!c->closed) continue;
      ::close(c->sender);
      if (c->upstream >= 0) ::close(c->upstream);
    }
    connections_.erase(std::remove_if(connections_.begin(), connections_.end(), [](const auto& c) { return c->closed; }),
                       connections_.end());
  }
}

}  // namespace keyval
