// Blocking TCP I/O with deadlines, for the client side (client/kv_client.h): non-blocking
// sockets and poll(), so every wait ends by its deadline (milliseconds on the steady clock).
// Failures are values naming what happened, in words an operator reads in an error message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "actors/tls.h"
#include "storage/status.h"

namespace keyval {

struct SocketIo {
  enum Kind { ok, closed, timed_out, failed };
  Kind kind = ok;
  std::string what;  // "connection closed by the node", "no answer in time", "send failed: ..."
};

// A connected, non-blocking TCP socket (TCP_NODELAY) to host:port, or an io_error:
// "connect failed: Connection refused", "connect timed out", "cannot resolve host ...".
// The name lookup itself (getaddrinfo) is not bounded: numeric hosts resolve at once.
Result<int> socket_connect(const std::string& host, uint16_t port, uint64_t deadline_ms);

// The same without waiting, for an event loop (client/client_loop.h): a non-blocking socket
// whose connect to the first address of host:port that takes one has begun (or is made); once
// it is writable (or in error), socket_connect_end says whether the connect was made (and sets
// TCP_NODELAY). The caller closes the descriptor either way.
Result<int> socket_connect_begin(const std::string& host, uint16_t port);
Status socket_connect_end(int descriptor);

// Writes all of data (no SIGPIPE) or reads exactly bytes, waiting at most until deadline_ms.
SocketIo socket_write_all(int descriptor, const uint8_t* data, size_t bytes, uint64_t deadline_ms);
SocketIo socket_read_exact(int descriptor, uint8_t* data, size_t bytes, uint64_t deadline_ms);

// Bytes read from a connection and not yet consumed: KvClient keeps one per connection, so
// one recv() takes a whole answer (header and payload) and nothing read past it is lost.
// Its storage is kept between answers (grown, never zeroed again).
class ReadBuffer {
 public:
  const uint8_t* data() const { return bytes_.data() + begin_; }
  size_t size() const { return end_ - begin_; }
  void consume(size_t bytes);
  void clear() { begin_ = end_ = 0; }
  // Room for at least `bytes` more at the end (what is held moves to the front first).
  uint8_t* room(size_t bytes);
  size_t room_size() const { return bytes_.size() - end_; }
  void filled(size_t bytes) { end_ += bytes; }

 private:
  std::vector<uint8_t> bytes_;
  size_t begin_ = 0;
  size_t end_ = 0;
};

// Reads into `buffer` until it holds at least `bytes`, waiting until deadline_ms: poll() for
// readability first (an answer is awaited, so it is seldom there already), then one recv() of
// whatever the socket has, up to the buffer's room (at least 16 KiB).
SocketIo socket_read_at_least(int descriptor, ReadBuffer& buffer, size_t bytes, uint64_t deadline_ms);

// TLS on such a socket (docs/SECURITY.md): the client's handshake within deadline_ms (the node's
// certificate verified against the context's CA), then the same two calls over the TLS stream.
// The SSL object owns nothing but its own state: close the descriptor after tls_close.
Result<SSL*> tls_connect(int descriptor, const TlsContext& context, uint64_t deadline_ms);
SocketIo tls_write_all(SSL* ssl, int descriptor, const uint8_t* data, size_t bytes, uint64_t deadline_ms);
SocketIo tls_read_exact(SSL* ssl, int descriptor, uint8_t* data, size_t bytes, uint64_t deadline_ms);
void tls_close(SSL* ssl);  // frees it (no close_notify wait)

// Milliseconds on the steady clock, the unit of the deadlines above.
uint64_t steady_now_ms();

}  // namespace keyval
