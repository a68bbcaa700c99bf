// TCP helpers with poll() deadlines (see kv_socket.h).
#include "client/kv_socket.h"

#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cerrno>
#include <mutex>
#include <chrono>
#include <algorithm>
#include <climits>
#include <cstring>

namespace keyval {
namespace {

// Waits for `events` on descriptor until deadline_ms: true when ready (or in error, which the
// next call reports), false on timeout.
bool wait_for(int descriptor, short events, uint64_t deadline_ms) {
  while (true) {
    uint64_t now = steady_now_ms();
    if (now >= deadline_ms) return false;
    uint64_t remaining = deadline_ms - now;
    pollfd entry{descriptor, events, 0};
    int ready = ::poll(&entry, 1, static_cast<int>(remaining > INT_MAX ? INT_MAX : remaining));
    if (ready > 0) return true;
    if (ready < 0 && errno != EINTR) return true;  // let the read or write report it
  }
}

std::string error_text(const char* operation, int error_number) {
  return std::string(operation) + " failed: " + std::strerror(error_number);
}

// One address: a non-blocking socket with its connect begun (or already made).
Result<int> connect_begin_address(const addrinfo& address) {
  int descriptor = ::socket(address.ai_family, address.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                            address.ai_protocol);
  if (descriptor < 0) return Status::io_error(error_text("socket", errno));
  int result = ::connect(descriptor, address.ai_addr, address.ai_addrlen);
  if (result != 0 && errno != EINPROGRESS && errno != EINTR) {
    int error_number = errno;
    ::close(descriptor);
    return Status::io_error(error_text("connect", error_number));
  }
  return descriptor;
}

// One address: connect without blocking, then wait for the outcome.
Result<int> connect_address(const addrinfo& address, uint64_t deadline_ms) {
  KV_ASSIGN_OR_RETURN(int descriptor, connect_begin_address(address));
  if (!wait_for(descriptor, POLLOUT, deadline_ms)) {
    ::close(descriptor);
    return Status::io_error("connect timed out");
  }
  Status made = socket_connect_end(descriptor);
  if (!made.is_ok()) {
    ::close(descriptor);
    return made;
  }
  return descriptor;
}

// The addresses of host:port (freed by the caller with freeaddrinfo), or why there are none.
Result<addrinfo*> resolve(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* addresses = nullptr;
  int lookup = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &addresses);
  if (lookup != 0) return Status::io_error("cannot resolve host '" + host + "': " + ::gai_strerror(lookup));
  return addresses;
}

}  // namespace

uint64_t steady_now_ms() {
  using namespace std::chrono;
  return static_cast<uint64_t>(duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
}

// The first address of host:port that `attempt` connects (or begins to), else the last failure.
template <class Attempt>
Result<int> connect_first(const std::string& host, uint16_t port, Attempt attempt) {
  KV_ASSIGN_OR_RETURN(addrinfo* addresses, resolve(host, port));
  Status last = Status::io_error("no address for host '" + host + "'");
  for (addrinfo* address = addresses; address != nullptr; address = address->ai_next) {
    Result<int> connected = attempt(*address);
    if (connected.is_ok()) {
      ::freeaddrinfo(addresses);
      return connected;
    }
    last = connected.status();
  }
  ::freeaddrinfo(addresses);
  return last;
}

Result<int> socket_connect(const std::string& host, uint16_t port, uint64_t deadline_ms) {
  return connect_first(host, port, [deadline_ms](const addrinfo& address) { return connect_address(address, deadline_ms); });
}

Result<int> socket_connect_begin(const std::string& host, uint16_t port) {
  return connect_first(host, port, connect_begin_address);
}

Status socket_connect_end(int descriptor) {
  int error_number = 0;
  socklen_t length = sizeof error_number;
  if (::getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error_number, &length) != 0) error_number = errno;
  if (error_number != 0) return Status::io_error(error_text("connect", error_number));
  int one = 1;
  ::setsockopt(descriptor, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // small frames, one in flight
  return Status::ok();
}

SocketIo socket_write_all(int descriptor, const uint8_t* data, size_t bytes, uint64_t deadline_ms) {
  size_t done = 0;
  while (done < bytes) {
    ssize_t written = ::send(descriptor, data + done, bytes - done, MSG_NOSIGNAL);
    if (written > 0) {
      done += static_cast<size_t>(written);
    } else if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_for(descriptor, POLLOUT, deadline_ms)) return {SocketIo::timed_out, "send timed out"};
    } else if (written < 0 && errno == EINTR) {
      continue;
    } else if (written < 0 && (errno == EPIPE || errno == ECONNRESET)) {
      return {SocketIo::closed, "connection closed by the node"};
    } else {
      return {SocketIo::failed, error_text("send", errno)};
    }
  }
  return {};
}

SocketIo socket_read_exact(int descriptor, uint8_t* data, size_t bytes, uint64_t deadline_ms) {
  size_t done = 0;
  while (done < bytes) {
    ssize_t got = ::recv(descriptor, data + done, bytes - done, 0);
    if (got > 0) {
      done += static_cast<size_t>(got);
    } else if (got == 0 || (got < 0 && errno == ECONNRESET)) {
      return {SocketIo::closed, "connection closed by the node"};
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!wait_for(descriptor, POLLIN, deadline_ms)) return {SocketIo::timed_out, "no answer in time"};
    } else if (errno != EINTR) {
      return {SocketIo::failed, error_text("recv", errno)};
    }
  }
  return {};
}

void ReadBuffer::consume(size_t bytes) {
  begin_ += bytes;
  if (begin_ == end_) begin_ = end_ = 0;
}

uint8_t* ReadBuffer::room(size_t bytes) {
  if (begin_ > 0) {
    std::memmove(bytes_.data(), bytes_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (bytes_.size() - end_ < bytes) bytes_.resize(end_ + bytes);
  return bytes_.data() + end_;
}

SocketIo socket_read_at_least(int descriptor, ReadBuffer& buffer, size_t bytes, uint64_t deadline_ms) {
  constexpr size_t read_bytes_min = 16u << 10;
  while (buffer.size() < bytes) {
    if (!wait_for(descriptor, POLLIN, deadline_ms)) return {SocketIo::timed_out, "no answer in time"};
    uint8_t* at = buffer.room(std::max(bytes - buffer.size(), read_bytes_min));
    ssize_t got = ::recv(descriptor, at, buffer.room_size(), 0);
    if (got > 0) {
      buffer.filled(static_cast<size_t>(got));
    } else if (got == 0 || (got < 0 && errno == ECONNRESET)) {
      return {SocketIo::closed, "connection closed by the node"};
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return {SocketIo::failed, error_text("recv", errno)};
    }
  }
  return {};
}

// --- TLS ------------------------------------------------------------------------------------

namespace {

// After an SSL call returned `result`: wait for what it wants, or say why it failed.
// ok: call again; otherwise the failure.
SocketIo tls_wait(SSL* ssl, int descriptor, int result, uint64_t deadline_ms, const char* what) {
  int error = SSL_get_error(ssl, result);
  if (error == SSL_ERROR_WANT_READ) {
    if (!wait_for(descriptor, POLLIN, deadline_ms)) return {SocketIo::timed_out, std::string(what) + " timed out"};
    return {};
  }
  if (error == SSL_ERROR_WANT_WRITE) {
    if (!wait_for(descriptor, POLLOUT, deadline_ms)) return {SocketIo::timed_out, std::string(what) + " timed out"};
    return {};
  }
  if (error == SSL_ERROR_ZERO_RETURN || (error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
    return {SocketIo::closed, "connection closed by the node"};
  }
  long verify = SSL_get_verify_result(ssl);
  std::string why = verify != X509_V_OK ? std::string("certificate refused: ") + X509_verify_cert_error_string(verify)
                                        : tls_error_text();
  return {SocketIo::failed, std::string(what) + " failed: " + why};
}

}  // namespace

Result<SSL*> tls_connect(int descriptor, const TlsContext& context, uint64_t deadline_ms) {
  // OpenSSL writes with write(2): a node that closed the connection must not kill this process.
  static std::once_flag ignore_sigpipe;
  std::call_once(ignore_sigpipe, [] { ::signal(SIGPIPE, SIG_IGN); });
  ERR_clear_error();
  SSL* ssl = SSL_new(context.native());
  if (ssl == nullptr) return Status::io_error("SSL_new: " + tls_error_text());
  SSL_set_fd(ssl, descriptor);
  while (true) {
    int result = SSL_connect(ssl);
    if (result == 1) return ssl;
    SocketIo io = tls_wait(ssl, descriptor, result, deadline_ms, "TLS handshake");
    if (io.kind != SocketIo::ok) {
      SSL_free(ssl);
      return Status::io_error(io.kind == SocketIo::closed ? "TLS handshake: connection closed by the node" : io.what);
    }
  }
}

SocketIo tls_write_all(SSL* ssl, int descriptor, const uint8_t* data, size_t bytes, uint64_t deadline_ms) {
  size_t done = 0;
  while (done < bytes) {
    ERR_clear_error();
    int wrote = SSL_write(ssl, data + done, static_cast<int>(bytes - done));
    if (wrote > 0) {
      done += static_cast<size_t>(wrote);
      continue;
    }
    SocketIo io = tls_wait(ssl, descriptor, wrote, deadline_ms, "send");
    if (io.kind != SocketIo::ok) return io;
  }
  return {};
}

SocketIo tls_read_exact(SSL* ssl, int descriptor, uint8_t* data, size_t bytes, uint64_t deadline_ms) {
  size_t done = 0;
  while (done < bytes) {
    ERR_clear_error();
    int got = SSL_read(ssl, data + done, static_cast<int>(bytes - done));
    if (got > 0) {
      done += static_cast<size_t>(got);
      continue;
    }
    SocketIo io = tls_wait(ssl, descriptor, got, deadline_ms, "receive");
    if (io.kind == SocketIo::timed_out) return {SocketIo::timed_out, "no answer in time"};
    if (io.kind != SocketIo::ok) return io;
  }
  return {};
}

void tls_close(SSL* ssl) { SSL_free(ssl); }

}  // namespace keyval
